//! What Salt's own YAML loader (PyYAML's YAML 1.1 resolvers, with Salt's changes) makes
//! of a plain scalar, and the text a Jinja `{{ value }}` then renders: how a template
//! project's plaintext `secrets.sls` and an `env.sls` were, or would be, read.
//!
//! vault reads every value the failsafe way (the characters as written); this is for
//! telling a user where the two readings part: `yes` that Salt made `True`, `0123` that
//! it made `123`, `~` that it made `None`.

use regex::Regex;
use std::sync::LazyLock;

/// How Salt reads a plain scalar whose text it does not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaltReading {
    /// Read as a boolean, an integer, a float or null: what Python's `str()` of it
    /// renders (None when vault cannot work that out, e.g. a huge hexadecimal).
    Typed {
        kind: &'static str,
        renders: Option<String>,
    },
    /// A value Salt's loader refuses (`=`, `<<`): the file would not render at all.
    Unreadable,
}

impl SaltReading {
    /// "the boolean True", "the integer 123", "null (None)": for messages.
    pub fn describe(&self) -> String {
        match self {
            SaltReading::Typed {
                kind,
                renders: Some(r),
            } => format!("the {kind} {r}"),
            SaltReading::Typed {
                kind,
                renders: None,
            } => format!("a {kind}"),
            SaltReading::Unreadable => "nothing (Salt's YAML loader refuses it)".into(),
        }
    }
}

// PyYAML's implicit resolvers (yaml/resolver.py), which Salt's loader keeps.
static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .expect("a valid pattern")
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .expect("a valid pattern")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .expect("a valid pattern")
});

/// What Salt makes of plain scalar `text`, when that is not the text itself (a timestamp
/// stays a string in Salt's loader, and so does anything unmatched).
pub fn salt_reading(text: &str) -> Option<SaltReading> {
    let typed = |kind, renders: Option<String>| Some(SaltReading::Typed { kind, renders });
    if BOOL.is_match(text) {
        let truthy = matches!(text.as_bytes()[0], b'y' | b'Y' | b't' | b'T')
            || text.eq_ignore_ascii_case("on");
        return typed(
            "boolean",
            Some(if truthy { "True" } else { "False" }.into()),
        );
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return typed("null", Some("None".into()));
    }
    if text == "=" || text == "<<" {
        return Some(SaltReading::Unreadable);
    }
    if INT.is_match(text) {
        return typed("integer", int_renders(text));
    }
    if FLOAT.is_match(text) {
        return typed("float", float_renders(text));
    }
    None
}

/// What a Jinja `{{ value }}` renders for plain scalar `text` read by Salt: the text
/// itself unless Salt types it, then Python's `str()` of the value (None when vault
/// cannot tell).
pub fn salt_renders(text: &str) -> Option<String> {
    match salt_reading(text) {
        None => Some(text.to_string()),
        Some(SaltReading::Typed { renders, .. }) => renders,
        Some(SaltReading::Unreadable) => None,
    }
}

/// Python's `str(int)` of an int Salt read: Salt first strips the leading zeros of an
/// unsigned one (so `0123` is 123, not octal), then PyYAML reads signs, `_`, `0b`, `0x`,
/// a leading `0` as octal, and `a:b:c` as base 60.
fn int_renders(text: &str) -> Option<String> {
    let mut v = text.to_string();
    if v != "0" && v.starts_with('0') && !v.starts_with("0b") && !v.starts_with("0x") {
        v = v.trim_start_matches('0').to_string();
        if v.is_empty() {
            v = "0".into();
        }
    }
    let v = v.replace('_', "");
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, &v[..]),
    };
    let magnitude = if digits == "0" {
        Some(0)
    } else if let Some(b) = digits.strip_prefix("0b") {
        u128::from_str_radix(b, 2).ok()
    } else if let Some(h) = digits.strip_prefix("0x") {
        u128::from_str_radix(h, 16).ok()
    } else if digits.starts_with('0') {
        u128::from_str_radix(digits, 8).ok()
    } else if digits.contains(':') {
        digits.split(':').try_fold(0u128, |acc, part| {
            acc.checked_mul(60)?.checked_add(part.parse().ok()?)
        })
    } else {
        // Decimal: Python prints the digits as they are, however many there are.
        let trimmed = digits.trim_start_matches('0');
        let sign = if negative && !trimmed.is_empty() {
            "-"
        } else {
            ""
        };
        return Some(format!(
            "{sign}{}",
            if trimmed.is_empty() { "0" } else { trimmed }
        ));
    };
    let m = magnitude?;
    Some(format!("{}{m}", if negative && m != 0 { "-" } else { "" }))
}

/// Python's `str(float)` of a float Salt read (PyYAML drops `_`, reads `a:b.c` as base
/// 60 and `.inf`/`.nan`).
fn float_renders(text: &str) -> Option<String> {
    let v = text.replace('_', "").to_ascii_lowercase();
    let (negative, body) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, &v[..]),
    };
    let sign = if negative { "-" } else { "" };
    if body == ".inf" {
        return Some(format!("{sign}inf"));
    }
    if body == ".nan" {
        return Some("nan".into());
    }
    let value: f64 = if body.contains(':') {
        let mut parts: Vec<&str> = body.split(':').collect();
        let last: f64 = parts.pop()?.parse().ok()?;
        let whole = parts
            .iter()
            .try_fold(0f64, |acc, p| Some(acc * 60.0 + p.parse::<f64>().ok()?))?;
        whole * 60.0 + last
    } else {
        body.parse().ok()?
    };
    Some(format!("{sign}{}", python_repr(value)))
}

/// Python's `repr(float)` of a finite non-negative float: the shortest digits that read
/// back, fixed between 1e-4 and 1e16 (with at least one decimal), else `d.ddde+XX`.
fn python_repr(value: f64) -> String {
    if value.is_infinite() {
        return "inf".into();
    }
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{rest}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_salt_does() {
        for (text, want) in [
            ("yes", Some("True")),
            ("off", Some("False")),
            ("0123", Some("123")),
            ("-012", Some("-10")),
            ("0x1f", Some("31")),
            ("1:20", Some("80")),
            ("1_000", Some("1000")),
            ("1.50", Some("1.5")),
            ("1.0e+3", Some("1000.0")),
            ("190:20:30.15", Some("685230.15")),
            ("~", Some("None")),
            ("1e3", Some("1e3")),
            ("09", Some("09")),
            ("2024-01-01", Some("2024-01-01")),
            ("y", Some("y")),
            ("=", None),
        ] {
            assert_eq!(salt_renders(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn python_float_repr() {
        for (v, want) in [
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123.0, "123.0"),
            (0.5, "0.5"),
        ] {
            assert_eq!(python_repr(v), want);
        }
    }
}

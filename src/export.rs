//! Export formats: the secrets written for another program to read, each exact under
//! that program's own rules, or a clear error naming the key it cannot carry.

use crate::document::{push_double_quoted, Entry};
use crate::error::{Error, Result};
use crate::secret::{SecretBuf, SecretBytes};

/// The formats `vault export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `NAME="value"` lines, as python-dotenv reads them.
    Dotenv,
    /// `export NAME='value'` lines, for `. FILE` or `eval` in bash and POSIX sh.
    Shell,
    /// One JSON object, NAME to value.
    Json,
    /// The canonical pillar: `secrets:` with double-quoted values, as Salt (PyYAML) reads it.
    Sls,
    /// One `environment=` line for a supervisord `[program:x]` section.
    Supervisor,
    /// A systemd `EnvironmentFile=`.
    Systemd,
}

/// Renders `entries` of environment `env` in `format`.
pub fn render(format: Format, env: &str, entries: &[Entry]) -> Result<SecretBytes> {
    // Every escape below at most sextuples a value, so the buffer never grows (and
    // never leaves an unwiped copy behind).
    let size = 128
        + env.len()
        + entries
            .iter()
            .map(|e| e.name().len() + 6 * e.value().expose().len() + 24)
            .sum::<usize>();
    let mut out = SecretBuf::new(String::with_capacity(size));
    match format {
        Format::Dotenv => dotenv(&mut out, env, entries)?,
        Format::Shell => shell(&mut out, entries),
        Format::Json => json(&mut out, entries),
        Format::Sls => sls(&mut out, env, entries),
        Format::Supervisor => supervisor(&mut out, env, entries)?,
        Format::Systemd => systemd(&mut out, env, entries)?,
    }
    Ok(SecretBytes::new(std::mem::take(&mut *out).into_bytes()))
}

fn cannot(env: &str, entry: &Entry, format: &str, why: &str) -> Error {
    Error::new(format!(
        "{env}: {}: the {format} format cannot carry this value: {why}",
        entry.name()
    ))
    .with_hint("use another format (json and shell carry every value), or change the value")
}

/// python-dotenv: double quotes, with its escapes (`\\ \" \n \r \t` and the other C ones).
/// It expands `${NAME}` and `${NAME:-default}` inside any quotes and has no escape for
/// them, so such a value is refused.
fn dotenv(out: &mut SecretBuf, env: &str, entries: &[Entry]) -> Result<()> {
    for e in entries {
        let v = e.value().expose();
        if dotenv_would_expand(v) {
            return Err(cannot(
                env,
                e,
                "dotenv",
                "python-dotenv would expand its `${...}`",
            ));
        }
        out.push_str(e.name());
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{b}' => out.push_str("\\v"),
                '\u{c}' => out.push_str("\\f"),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    Ok(())
}

/// Whether python-dotenv's `\$\{(?P<name>[^\}:]*)(?::-(?P<default>[^\}]*))?\}` matches.
fn dotenv_would_expand(v: &str) -> bool {
    v.match_indices("${").any(|(i, _)| {
        let rest = &v[i + 2..];
        let Some(close) = rest.find('}') else {
            return false;
        };
        let inner = &rest[..close];
        match inner.find(':') {
            None => true,
            Some(colon) => inner[colon..].starts_with(":-"),
        }
    })
}

/// POSIX shell: single quotes hold everything but `'`, written as `'\''`.
fn shell(out: &mut SecretBuf, entries: &[Entry]) {
    for e in entries {
        out.push_str("export ");
        out.push_str(e.name());
        out.push_str("='");
        for c in e.value().expose().chars() {
            if c == '\'' {
                out.push_str("'\\''");
            } else {
                out.push(c);
            }
        }
        out.push_str("'\n");
    }
}

fn json(out: &mut SecretBuf, entries: &[Entry]) {
    out.push('{');
    for (i, e) in entries.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        push_json_string(out, e.name());
        out.push_str(": ");
        push_json_string(out, e.value().expose());
    }
    out.push_str(if entries.is_empty() { "}\n" } else { "\n}\n" });
}

/// A JSON string literal (RFC 8259): `"` and `\` escaped, control characters as `\uXXXX`.
pub fn push_json_string(out: &mut SecretBuf, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The canonical pillar. `#!yaml` makes Salt skip Jinja (a value may hold `{{`); keys
/// and values are double-quoted ASCII so PyYAML's YAML 1.1 reads neither `yes` nor `on`
/// nor anything else as other than the string written.
fn sls(out: &mut SecretBuf, env: &str, entries: &[Entry]) {
    out.push_str("#!yaml\n# Generated by vault from ");
    out.push_str(env);
    out.push_str("/secrets.sls.age. Do not edit: use `vault edit ");
    out.push_str(env);
    out.push_str("`.\nsecrets:");
    if entries.is_empty() {
        out.push_str(" {}");
    }
    out.push('\n');
    for e in entries {
        out.push_str("  ");
        push_double_quoted(out, e.name(), true);
        out.push_str(": ");
        push_double_quoted(out, e.value().expose(), true);
        out.push('\n');
    }
}

/// supervisord reads `environment=` with RawConfigParser (`;` and `#` after white space
/// start a comment, a line ends the value), then `%` expansion, then a non-POSIX shlex
/// (quotes without escapes) and strips quote characters from both ends of each value.
fn supervisor(out: &mut SecretBuf, env: &str, entries: &[Entry]) -> Result<()> {
    out.push_str("environment=");
    for (i, e) in entries.iter().enumerate() {
        let v = e.value().expose();
        let fail = |why: &str| cannot(env, e, "supervisor", why);
        if v.contains(['\n', '\r']) {
            return Err(fail("a line break ends the setting"));
        }
        if v.starts_with(['"', '\'']) || v.ends_with(['"', '\'']) {
            return Err(fail("supervisord strips quote characters from both ends"));
        }
        let quote = match (v.contains('"'), v.contains('\'')) {
            (true, true) => {
                return Err(fail(
                    "it holds both kinds of quote, and supervisord has no escapes",
                ))
            }
            (true, false) => '\'',
            _ => '"',
        };
        let mut prev_space = false;
        for c in v.chars() {
            if prev_space && (c == ';' || c == '#') {
                return Err(fail(
                    "white space followed by ';' or '#' starts a comment there",
                ));
            }
            prev_space = c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
        }
        if v.contains("%(here)s") {
            return Err(fail("supervisord replaces %(here)s before anything else"));
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(e.name());
        out.push('=');
        out.push(quote);
        for c in v.chars() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
        }
        out.push(quote);
    }
    out.push('\n');
    Ok(())
}

/// systemd's EnvironmentFile: double quotes, in which `\` escapes `"`, `\`, `` ` `` and
/// `$`, and line breaks are kept. systemd drops a value holding control characters
/// other than tab and newline, so those are refused.
fn systemd(out: &mut SecretBuf, env: &str, entries: &[Entry]) -> Result<()> {
    for e in entries {
        let v = e.value().expose();
        if v.chars()
            .any(|c| (c < ' ' && c != '\t' && c != '\n') || c == '\u{7f}')
        {
            return Err(cannot(
                env,
                e,
                "systemd",
                "systemd ignores values holding control characters",
            ));
        }
        out.push_str(e.name());
        out.push_str("=\"");
        for c in v.chars() {
            if matches!(c, '"' | '\\' | '`' | '$') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("\"\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Document;

    fn doc(pairs: &[(&str, &str)]) -> Document {
        let mut d = crate::document::empty("t");
        for (k, v) in pairs {
            d = d
                .with_set("t", k, &crate::secret::SecretValue::new(v.to_string()))
                .unwrap()
                .0;
        }
        d
    }

    fn out(f: Format, pairs: &[(&str, &str)]) -> Result<String> {
        let d = doc(pairs);
        render(f, "t", d.entries()).map(|b| String::from_utf8(b.expose().to_vec()).unwrap())
    }

    #[test]
    fn dotenv_expansion_rule_mirrors_python_dotenv() {
        assert!(dotenv_would_expand("${A}"));
        assert!(dotenv_would_expand("x${A:-d}y"));
        assert!(dotenv_would_expand("${}"));
        assert!(!dotenv_would_expand("${A:b}"));
        assert!(!dotenv_would_expand("${A"));
        assert!(!dotenv_would_expand("$A {B}"));
    }

    #[test]
    fn shapes() {
        assert_eq!(
            out(Format::Shell, &[("A", "it's")]).unwrap(),
            "export A='it'\\''s'\n"
        );
        assert_eq!(
            out(Format::Json, &[("A", "x\"\n")]).unwrap(),
            "{\n  \"A\": \"x\\\"\\n\"\n}\n"
        );
        assert_eq!(out(Format::Json, &[]).unwrap(), "{}\n");
        assert_eq!(
            out(Format::Supervisor, &[("A", "50%"), ("B", "x\"y")]).unwrap(),
            "environment=A=\"50%%\",B='x\"y'\n"
        );
        assert_eq!(
            out(Format::Systemd, &[("A", "$x\n\"")]).unwrap(),
            "A=\"\\$x\n\\\"\"\n"
        );
        assert!(out(Format::Sls, &[("yes", "on")])
            .unwrap()
            .ends_with("secrets:\n  \"yes\": \"on\"\n"));
    }

    #[test]
    fn refusals_name_the_key_not_the_value() {
        for (f, v) in [
            (Format::Supervisor, "a\nb"),
            (Format::Supervisor, "'quoted'"),
            (Format::Supervisor, "a\"b'c"),
            (Format::Supervisor, "a ;b"),
            (Format::Systemd, "a\rb"),
            (Format::Dotenv, "${HOME}"),
        ] {
            let err = out(f, &[("SECRET_KEY", v)]).unwrap_err().to_string();
            assert!(err.starts_with("t: SECRET_KEY: "), "{err}");
            assert!(!err.contains(v), "{err}");
        }
    }
}

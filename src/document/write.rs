//! Writing YAML: the canonical document, one entry as a literal block or a
//! double-quoted scalar, and the escapes that make YAML 1.1 (PyYAML, as Salt reads it)
//! and 1.2 both read back the same string.

use crate::secret::SecretBuf;

/// The document holding `entries` in canonical form: `secrets:` over one double-quoted
/// value per line, for when an edit in place could not keep the layout.
pub(super) fn canonical(entries: &[(&str, &str)]) -> SecretBuf {
    let mut out = SecretBuf::new(String::with_capacity(
        64 + entries
            .iter()
            .map(|(n, v)| n.len() + v.len() * 2 + 8)
            .sum::<usize>(),
    ));
    out.push_str("secrets:\n");
    for (n, v) in entries {
        out.push_str("  ");
        out.push_str(n);
        out.push_str(": ");
        push_double_quoted(&mut out, v, false);
        out.push('\n');
    }
    out
}

/// `NAME: value` at indentation `col`, the value as a literal block when that reads
/// back exactly, else double-quoted.
pub(super) fn render_entry(out: &mut SecretBuf, col: usize, name: &str, value: &str) {
    out.extend(std::iter::repeat_n(' ', col));
    out.push_str(name);
    out.push(':');
    if let Some(chomp) = block_chomping(value) {
        out.push_str(" |");
        out.push_str(chomp);
        out.push('\n');
        let body = value.trim_end_matches('\n');
        for line in body.split('\n') {
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', col + 2));
                out.push_str(line);
            }
            out.push('\n');
        }
        // `|+` keeps the trailing newlines beyond the first as empty lines.
        let extra = value.len() - body.len();
        for _ in 1..extra {
            out.push('\n');
        }
    } else {
        out.push(' ');
        push_double_quoted(out, value, false);
        out.push('\n');
    }
}

/// The chomping indicator for a literal block holding `value`, or None when a block
/// cannot hold it (single line, control characters, leading space on the first line).
fn block_chomping(value: &str) -> Option<&'static str> {
    let body = value.trim_end_matches('\n');
    if !body.contains('\n') || body.is_empty() {
        return None;
    }
    let first = body.split('\n').find(|l| !l.is_empty())?;
    if first.starts_with([' ', '\t']) || body.starts_with('\n') {
        return None;
    }
    if value
        .chars()
        .any(|c| c != '\n' && c != '\t' && needs_escape(c))
    {
        return None;
    }
    Some(match value.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    })
}

/// Appends `value` as a YAML double-quoted scalar that YAML 1.1 (PyYAML) and 1.2 both
/// read back as the identical string. With `ascii`, every non-ASCII character is escaped.
pub fn push_double_quoted(out: &mut SecretBuf, value: &str, ascii: bool) {
    use std::fmt::Write;
    out.reserve(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x80 && !needs_escape(c) => out.push(c),
            c if !ascii && !needs_escape(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Characters that YAML 1.1 does not allow literally in a stream (PyYAML's
/// NON_PRINTABLE), plus line-break characters and the BOM, which would not survive.
fn needs_escape(c: char) -> bool {
    let u = c as u32;
    !(u == 0x09
        || (0x20..=0x7e).contains(&u)
        || (0xa0..=0xd7ff).contains(&u)
        || (0xe000..=0xfffd).contains(&u)
        || (0x10000..=0x10ffff).contains(&u))
        || matches!(u, 0x2028 | 0x2029 | 0xfeff)
}

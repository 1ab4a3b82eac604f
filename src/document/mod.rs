//! The secrets document: the YAML people edit, read the failsafe way, and edited in place.
//!
//! Every value is the string exactly as written (`0123`, `yes`, `1e3` stay those
//! characters). Nulls, collections, anchors, aliases, tags, duplicates and NUL are
//! errors that name the environment, key and line, never the value.

use crate::error::{Error, Result};
use crate::secret::{SecretBuf, SecretBytes, SecretValue};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// The largest plaintext document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// A parsed secrets document: the exact bytes as written, and its entries in order.
#[derive(Debug)]
pub struct Document {
    text: SecretBytes,
    entries: Vec<Entry>,
    layout: Layout,
}

/// One `NAME: value` of the document.
#[derive(Debug)]
pub struct Entry {
    name: String,
    value: SecretValue,
    line: usize,
    /// Lines `line..=last_line` hold this entry alone (None when it shares a line).
    last_line: Option<usize>,
    col: usize,
}

impl Entry {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &SecretValue {
        &self.value
    }
}

/// Where new entries go, learnt while parsing.
#[derive(Debug, Default)]
struct Layout {
    /// Line of the `secrets:` key.
    secrets_line: usize,
    secrets_col: usize,
    /// The mapping is in block style (or empty), so lines can be edited one entry at a time.
    block: bool,
}

impl Document {
    /// Reads `text`; `env` names the environment in every error.
    pub fn parse(env: &str, text: SecretBytes) -> Result<Document> {
        let bytes = text.expose();
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::new(format!(
                "{env}: the secrets document is {} bytes, over the limit of {} bytes",
                bytes.len(),
                MAX_DOCUMENT_BYTES
            )));
        }
        let s = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let line = line_of(bytes, e.valid_up_to());
                return Err(Error::new(format!(
                    "{env}: line {line}: the document is not valid UTF-8"
                )));
            }
        };
        if let Some(i) = s.find('\0') {
            let line = line_of(bytes, i);
            return Err(Error::new(format!(
                "{env}: line {line}: the document holds a NUL character"
            )));
        }
        let (entries, layout) = Reader::new(env, s).read()?;
        Ok(Document {
            text,
            entries,
            layout,
        })
    }

    /// The document a new environment starts from in `vault edit`.
    pub fn template(env: &str) -> SecretBytes {
        SecretBytes::new(
            format!(
                "# Secrets for {env}: one NAME: value per line under `secrets:`.\n\
                 # Every value is kept as the exact characters written. Quote values\n\
                 # with leading or trailing spaces; use `|` blocks for multi-line values.\n\
                 secrets:\n  # DB_PASSWORD: 'change me'\n"
            )
            .into_bytes(),
        )
    }

    /// The exact bytes, as written.
    pub fn text(&self) -> &[u8] {
        self.text.expose()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.value)
    }

    /// A new document with `name` set to `value`, keeping every other byte where it can.
    ///
    /// The returned bool is false when comments and layout could not be kept and the
    /// document was written anew in canonical form.
    pub fn with_set(&self, env: &str, name: &str, value: &SecretValue) -> Result<(Document, bool)> {
        check_name(env, name, None)?;
        check_value(env, name, value.expose())?;
        let existing = self.entries.iter().position(|e| e.name == name);
        let expected: Vec<(&str, &str)> = match existing {
            Some(i) => self
                .entries
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    (
                        e.name.as_str(),
                        if i == j {
                            value.expose()
                        } else {
                            e.value.expose()
                        },
                    )
                })
                .collect(),
            None => self
                .entries
                .iter()
                .map(|e| (e.name.as_str(), e.value.expose()))
                .chain(std::iter::once((name, value.expose())))
                .collect(),
        };
        let edited = match existing {
            Some(i) => self.replace_lines(i, Some((name, value))),
            None => self.append(name, value),
        };
        self.verified_or_canonical(env, edited, &expected)
    }

    /// A new document without `name`, or None when there is no such secret.
    pub fn with_unset(&self, env: &str, name: &str) -> Result<Option<(Document, bool)>> {
        let Some(i) = self.entries.iter().position(|e| e.name == name) else {
            return Ok(None);
        };
        let expected: Vec<(&str, &str)> = self
            .entries
            .iter()
            .filter(|e| e.name != name)
            .map(|e| (e.name.as_str(), e.value.expose()))
            .collect();
        let edited = self.replace_lines(i, None);
        self.verified_or_canonical(env, edited, &expected).map(Some)
    }

    /// Parses `edited` and keeps it when it reads back as exactly `expected`; otherwise
    /// writes the document anew in canonical form (comments cannot be kept there).
    fn verified_or_canonical(
        &self,
        env: &str,
        edited: Option<SecretBytes>,
        expected: &[(&str, &str)],
    ) -> Result<(Document, bool)> {
        if let Some(text) = edited {
            if let Ok(doc) = Document::parse(env, text) {
                let same = doc.entries.len() == expected.len()
                    && doc
                        .entries
                        .iter()
                        .zip(expected)
                        .all(|(e, (n, v))| e.name == *n && e.value.expose() == *v);
                if same {
                    return Ok((doc, true));
                }
            }
        }
        let mut out = SecretBuf::new(String::with_capacity(
            64 + expected
                .iter()
                .map(|(n, v)| n.len() + v.len() * 2 + 8)
                .sum::<usize>(),
        ));
        out.push_str("secrets:\n");
        for (n, v) in expected {
            out.push_str("  ");
            out.push_str(n);
            out.push_str(": ");
            push_double_quoted(&mut out, v, false);
            out.push('\n');
        }
        let doc = Document::parse(
            env,
            SecretBytes::new(std::mem::take(&mut *out).into_bytes()),
        )?;
        Ok((doc, false))
    }

    /// The text with entry `i`'s lines replaced by `replacement` (or removed).
    fn replace_lines(
        &self,
        i: usize,
        replacement: Option<(&str, &SecretValue)>,
    ) -> Option<SecretBytes> {
        let entry = &self.entries[i];
        let last = entry.last_line?;
        if !self.layout.block {
            return None;
        }
        let text = self.text.expose();
        let start = line_start(text, entry.line)?;
        let end = line_start(text, last + 1).unwrap_or(text.len());
        let mut out = Vec::with_capacity(
            text.len() + replacement.map_or(0, |(n, v)| n.len() + v.expose().len() * 4 + 16),
        );
        out.extend_from_slice(&text[..start]);
        if let Some((name, value)) = replacement {
            let mut buf = SecretBuf::default();
            render_entry(&mut buf, entry.col, name, value.expose());
            out.extend_from_slice(buf.as_bytes());
        }
        out.extend_from_slice(&text[end..]);
        Some(SecretBytes::new(out))
    }

    /// The text with a new entry after the last one (or after `secrets:` when empty).
    fn append(&self, name: &str, value: &SecretValue) -> Option<SecretBytes> {
        if !self.layout.block {
            return None;
        }
        let text = self.text.expose();
        let (after_line, col) = match self.entries.last() {
            Some(e) => (e.last_line?, e.col),
            None => (self.layout.secrets_line, self.layout.secrets_col + 2),
        };
        let at = line_start(text, after_line + 1).unwrap_or(text.len());
        let mut out = Vec::with_capacity(text.len() + name.len() + value.expose().len() * 4 + 16);
        out.extend_from_slice(&text[..at]);
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        let mut buf = SecretBuf::default();
        render_entry(&mut buf, col, name, value.expose());
        out.extend_from_slice(buf.as_bytes());
        out.extend_from_slice(&text[at..]);
        Some(SecretBytes::new(out))
    }
}

/// A new, empty document for an environment that has none yet.
pub fn empty(env: &str) -> Document {
    Document::parse(env, SecretBytes::new(b"secrets:\n".to_vec()))
        .expect("the empty document parses")
}

/// `NAME: value` at indentation `col`, the value as a literal block when that reads
/// back exactly, else double-quoted.
fn render_entry(out: &mut SecretBuf, col: usize, name: &str, value: &str) {
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

/// Checks a secret name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_name(env: &str, name: &str, line: Option<usize>) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        return Ok(());
    }
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    Err(Error::new(format!(
        "{env}: {at}invalid secret name '{}': use letters, digits and '_', not starting with a digit",
        name.escape_debug()
    )))
}

/// Checks a value given to `set`: no NUL, within the size limit.
pub fn check_value(env: &str, name: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::new(format!(
            "{env}: {name}: the value holds a NUL character, which no environment can carry"
        )));
    }
    if value.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::new(format!(
            "{env}: {name}: the value is over the limit of {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The 1-based line holding byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The byte offset where 1-based `line` starts, if the text has it.
fn line_start(text: &[u8], line: usize) -> Option<usize> {
    if line == 1 {
        return Some(0);
    }
    let mut seen = 1;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            seen += 1;
            if seen == line {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Walks the parser's events and checks the document's shape.
struct Reader<'a> {
    env: &'a str,
    /// The text's lines, split once: entries look their lines up by number.
    lines: Vec<&'a str>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
}

impl<'a> Reader<'a> {
    fn new(env: &'a str, text: &'a str) -> Self {
        Reader {
            env,
            lines: text.split('\n').collect(),
            parser: Parser::new_from_str(text),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span)> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(Error::new(format!(
                "{}: line {}: invalid YAML: {}",
                self.env,
                e.marker().line(),
                e.info()
            ))),
            None => Err(Error::new(format!(
                "{}: unexpected end of the document",
                self.env
            ))),
        }
    }

    fn fail(&self, line: usize, what: &str) -> Error {
        Error::new(format!("{}: line {line}: {what}", self.env))
    }

    fn read(mut self) -> Result<(Vec<Entry>, Layout)> {
        let shape = "the document must be a mapping with the one key `secrets`";
        let hint =
            "write `secrets:` on the first line, then one indented `NAME: 'value'` per secret";
        let (ev, _) = self.next()?;
        debug_assert!(matches!(ev, Event::StreamStart));
        match self.next()? {
            (Event::DocumentStart(_), _) => {}
            (Event::StreamEnd, _) => {
                return Err(
                    Error::new(format!("{}: the document is empty; {shape}", self.env))
                        .with_hint(hint),
                );
            }
            (_, span) => return Err(self.fail(span.start.line(), shape)),
        }
        match self.next()? {
            (Event::MappingStart(anchor, tag), span) => {
                if anchor != 0 || tag.is_some() {
                    return Err(self.fail(span.start.line(), "anchors and tags are not allowed"));
                }
            }
            (_, span) => return Err(self.fail(span.start.line(), shape).with_hint(hint)),
        }
        let mut result = None;
        loop {
            match self.next()? {
                (Event::MappingEnd, _) => break,
                (Event::Scalar(key, _, anchor, tag), span) => {
                    let line = span.start.line();
                    if key != "secrets" {
                        return Err(self
                            .fail(
                                line,
                                &format!(
                                    "unexpected top-level key '{}'; {shape}",
                                    key.escape_debug()
                                ),
                            )
                            .with_hint(hint));
                    }
                    if anchor != 0 || tag.is_some() {
                        return Err(self.fail(line, "anchors and tags are not allowed"));
                    }
                    if result.is_some() {
                        return Err(self.fail(line, "duplicate key 'secrets'"));
                    }
                    let layout = Layout {
                        secrets_line: line,
                        secrets_col: span.start.col(),
                        block: true,
                    };
                    result = Some(self.read_secrets(layout)?);
                }
                (_, span) => return Err(self.fail(span.start.line(), shape).with_hint(hint)),
            }
        }
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (_, span) => {
                return Err(self.fail(span.start.line(), "unexpected content after the document"))
            }
        }
        match self.next()? {
            (Event::StreamEnd, _) => {}
            (_, span) => {
                return Err(self.fail(span.start.line(), "only one YAML document is allowed"))
            }
        }
        result.ok_or_else(|| {
            Error::new(format!("{}: no `secrets` key; {shape}", self.env)).with_hint(hint)
        })
    }

    fn read_secrets(&mut self, mut layout: Layout) -> Result<(Vec<Entry>, Layout)> {
        let (ev, span) = self.next()?;
        match ev {
            Event::MappingStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(self.fail(span.start.line(), "anchors and tags are not allowed"));
                }
                // A flow mapping (`{...}`) starts on the `secrets:` line.
                layout.block = !self.text_at(span).starts_with('{');
            }
            // `secrets:` with nothing under it: no secrets yet.
            Event::Scalar(ref v, ScalarStyle::Plain, 0, None) if is_null(v) => {
                return Ok((Vec::new(), layout))
            }
            _ => {
                return Err(self.fail(
                    span.start.line(),
                    "`secrets` must be a mapping of NAME: value",
                ));
            }
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        loop {
            let (ev, span) = self.next()?;
            let line = span.start.line();
            if let Some(prev) = entries.last_mut() {
                prev.last_line = self.entry_end(prev, line);
            }
            let name = match ev {
                Event::MappingEnd => break,
                Event::Scalar(name, _, anchor, tag) => {
                    check_name(self.env, &name, Some(line))?;
                    if anchor != 0 || tag.is_some() {
                        return Err(
                            self.fail(line, &format!("{name}: anchors and tags are not allowed"))
                        );
                    }
                    if let Some(first) = seen.get(name.as_ref()) {
                        return Err(self.fail(
                            line,
                            &format!("duplicate secret {name} (first at line {first})"),
                        ));
                    }
                    seen.insert(name.to_string(), line);
                    name.into_owned()
                }
                _ => return Err(self.fail(line, "every secret name must be a plain NAME")),
            };
            let (ev, vspan) = self.next()?;
            let vline = vspan.start.line();
            let value = match ev {
                Event::Scalar(value, style, anchor, tag) => {
                    if anchor != 0 {
                        return Err(self.fail(vline, &format!("{name}: anchors are not allowed")));
                    }
                    if tag.is_some() {
                        return Err(self.fail(
                            vline,
                            &format!("{name}: tags are not allowed; every value is a string"),
                        ));
                    }
                    if style == ScalarStyle::Plain && is_null(&value) {
                        return Err(self
                            .fail(vline, &format!("{name}: the value is null"))
                            .with_hint("write the value, or quote it ('' for empty, '~' or 'null' for those characters)"));
                    }
                    if value.contains('\0') {
                        return Err(
                            self.fail(vline, &format!("{name}: the value holds a NUL character"))
                        );
                    }
                    match value {
                        std::borrow::Cow::Owned(s) => SecretValue::new(s),
                        std::borrow::Cow::Borrowed(s) => SecretValue::new(s.to_owned()),
                    }
                }
                Event::Alias(_) => {
                    return Err(self.fail(vline, &format!("{name}: aliases are not allowed")))
                }
                Event::SequenceStart(..) => {
                    return Err(self.fail(
                        vline,
                        &format!("{name}: the value is a list; every value must be a string"),
                    ))
                }
                Event::MappingStart(..) => {
                    return Err(self.fail(
                        vline,
                        &format!("{name}: the value is a mapping; every value must be a string"),
                    ))
                }
                _ => return Err(self.fail(vline, &format!("{name}: unexpected value"))),
            };
            entries.push(Entry {
                name,
                value,
                line,
                last_line: None,
                col: span.start.col(),
            });
        }
        Ok((entries, layout))
    }

    /// The last line belonging to `entry`, given the line where the next token starts:
    /// trailing blank lines and comments at or left of the key's column belong to what follows.
    fn entry_end(&self, entry: &Entry, next_line: usize) -> Option<usize> {
        if next_line <= entry.line {
            return None;
        }
        let mut last = (next_line - 1).min(self.lines.len());
        while last > entry.line {
            let l = self.lines[last - 1].trim_end_matches('\r');
            let indent = l.len() - l.trim_start_matches(' ').len();
            let rest = l.trim_start();
            if rest.is_empty() || (rest.starts_with('#') && indent <= entry.col) {
                last -= 1;
            } else {
                break;
            }
        }
        Some(last)
    }

    fn text_at(&self, span: Span) -> &str {
        // Markers count characters; find the line and skip `col` characters within it.
        let line = self
            .lines
            .get(span.start.line().saturating_sub(1))
            .copied()
            .unwrap_or("");
        let skip: usize = line
            .chars()
            .take(span.start.col())
            .map(char::len_utf8)
            .sum();
        &line[skip.min(line.len())..]
    }
}

/// The plain scalars YAML reads as null.
fn is_null(v: &str) -> bool {
    matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Document> {
        Document::parse("staging", SecretBytes::new(s.as_bytes().to_vec()))
    }

    fn value(doc: &Document, name: &str) -> String {
        doc.get(name).unwrap().expose().to_string()
    }

    #[test]
    fn values_are_kept_as_written() {
        let doc = parse(
            "# comment\nsecrets:\n  A: 0123\n  B: yes\n  C: 1e3\n  D: on\n  E: ~foo\n  F: ' lead'\n  G: \"tab\\there\"\n  H: |\n    -----BEGIN-----\n    abc\n  I: héllo\n  J: 0x1F\n  K: 2001-01-01\n  L: ''\n",
        )
        .unwrap();
        for (k, v) in [
            ("A", "0123"),
            ("B", "yes"),
            ("C", "1e3"),
            ("D", "on"),
            ("E", "~foo"),
            ("F", " lead"),
            ("G", "tab\there"),
            ("H", "-----BEGIN-----\nabc\n"),
            ("I", "héllo"),
            ("J", "0x1F"),
            ("K", "2001-01-01"),
            ("L", ""),
        ] {
            assert_eq!(value(&doc, k), v, "{k}");
        }
    }

    #[test]
    fn shapes_that_are_refused() {
        let cases = [
            ("secrets:\n  A: [1]\n", "line 2: A: the value is a list"),
            (
                "secrets:\n  A: {b: c}\n",
                "line 2: A: the value is a mapping",
            ),
            ("secrets:\n  A:\n", "A: the value is null"),
            ("secrets:\n  A: ~\n", "A: the value is null"),
            ("secrets:\n  A: null\n", "A: the value is null"),
            (
                "secrets:\n  A: &x v\n  B: *x\n",
                "A: anchors are not allowed",
            ),
            ("secrets:\n  B: *x\n", "invalid YAML"),
            ("secrets:\n  A: !!str v\n", "A: tags are not allowed"),
            (
                "secrets:\n  A: 1\n  A: 2\n",
                "line 3: duplicate secret A (first at line 2)",
            ),
            ("secrets:\n  1A: v\n", "line 2: invalid secret name '1A'"),
            ("secrets:\n  A-B: v\n", "invalid secret name 'A-B'"),
            ("other: 1\n", "unexpected top-level key 'other'"),
            (
                "secrets:\n  A: 1\nmore: 2\n",
                "unexpected top-level key 'more'",
            ),
            ("- a\n", "must be a mapping"),
            ("", "the document is empty"),
            ("secrets: [a]\n", "`secrets` must be a mapping"),
            ("secrets:\n  A: 'x\n", "invalid YAML"),
            (
                "secrets:\n  A: 1\n---\nsecrets: {}\n",
                "only one YAML document",
            ),
            ("secrets:\n  A: \"a\\0b\"\n", "NUL"),
            ("secrets:\n  A: a\0b\n", "line 2: the document holds a NUL"),
        ];
        for (text, want) in cases {
            let err = parse(text)
                .err()
                .unwrap_or_else(|| panic!("accepted {text:?}"))
                .to_string();
            assert!(err.starts_with("staging: "), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn errors_never_print_values() {
        for text in [
            "secrets:\n  A: supersecret\n  A: supersecret\n",
            "secrets:\n  A: !!binary supersecret\n",
        ] {
            let err = parse(text).err().unwrap().to_string();
            assert!(!err.contains("supersecret"), "{err}");
        }
    }

    #[test]
    fn set_keeps_comments_and_order() {
        let doc = parse("# top\nsecrets:\n  # about A\n  A: one  # trailing\n  B: |\n    x\n    # not a comment\n  # about C\n  C: three\n").unwrap();
        let (doc2, kept) = doc
            .with_set("staging", "B", &SecretValue::new("new".into()))
            .unwrap();
        assert!(kept);
        let text = std::str::from_utf8(doc2.text()).unwrap();
        assert_eq!(text, "# top\nsecrets:\n  # about A\n  A: one  # trailing\n  B: \"new\"\n  # about C\n  C: three\n");
        let (doc3, _) = doc2
            .with_set("staging", "D", &SecretValue::new("l1\nl2\n".into()))
            .unwrap();
        let text = std::str::from_utf8(doc3.text()).unwrap();
        assert!(
            text.ends_with("  C: three\n  D: |\n    l1\n    l2\n"),
            "{text}"
        );
        let (doc4, _) = doc3.with_unset("staging", "A").unwrap().unwrap();
        let text = std::str::from_utf8(doc4.text()).unwrap();
        assert!(
            text.starts_with("# top\nsecrets:\n  # about A\n  B: \"new\""),
            "{text}"
        );
        assert!(doc4.with_unset("staging", "NOPE").unwrap().is_none());
    }

    #[test]
    fn set_round_trips_awkward_values() {
        let values = [
            "",
            " lead",
            "trail ",
            "a\"b'c",
            "back\\slash",
            "%s $HOME ${X} `x`",
            "a,b=c#d",
            "l1\nl2",
            "l1\nl2\n",
            "l1\n\n",
            "\n",
            "\n\nx",
            "  indented\nblock",
            "tab\tin",
            "cr\r\nlf",
            "é ü 日本 🎉",
            "\u{85}\u{2028}\u{feff}",
            "\u{7f}\u{1}",
            "yes",
            "0123",
            "- dash",
            ": colon",
            "# hash",
            "'",
            "\"",
        ];
        for start in [
            "secrets:\n",
            "secrets:\n  A: x\n",
            "secrets: {}\n",
            "# c\nsecrets:\n    A: x\n    B: y",
        ] {
            let mut doc = parse(start).unwrap();
            for (i, v) in values.iter().enumerate() {
                let name = format!("K{i}");
                doc = doc
                    .with_set("staging", &name, &SecretValue::new(v.to_string()))
                    .unwrap()
                    .0;
                assert_eq!(value(&doc, &name), *v, "{start:?} {v:?}");
                doc = doc
                    .with_set("staging", &name, &SecretValue::new(format!("{v}!")))
                    .unwrap()
                    .0;
                assert_eq!(value(&doc, &name), format!("{v}!"), "{start:?} {v:?}");
            }
            for (i, v) in values.iter().enumerate() {
                assert_eq!(value(&doc, &format!("K{i}")), format!("{v}!"));
            }
        }
    }

    #[test]
    fn set_refuses_bad_names_and_nul() {
        let doc = parse("secrets:\n").unwrap();
        assert!(doc
            .with_set("staging", "A B", &SecretValue::new("x".into()))
            .is_err());
        assert!(doc
            .with_set("staging", "A", &SecretValue::new("a\0".into()))
            .is_err());
    }

    #[test]
    fn double_quoted_ascii_escapes_everything_outside_ascii() {
        let mut out = SecretBuf::default();
        push_double_quoted(&mut out, "é\u{1F389}\u{85}\"\\\n", true);
        assert_eq!(out.as_str(), "\"\\xe9\\U0001f389\\N\\\"\\\\\\n\"");
    }
}

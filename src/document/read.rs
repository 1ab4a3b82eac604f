//! Reading the document the failsafe way: every scalar a string as written, and any
//! shape other than `secrets:` over `NAME: value` an error naming the line, not the value.

use super::{check_name_allowing, Entry, Layout, MAX_DOCUMENT_BYTES};
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::collections::HashMap;

const SHAPE: &str = "the document must be a mapping with the one key `secrets`";
const HINT: &str =
    "write `secrets:` on the first line, then one indented `NAME: 'value'` per secret";

/// Checks the raw bytes (size, UTF-8, NUL), then reads the entries and their layout.
pub(super) fn read(
    env: &str,
    bytes: &[u8],
    allowed: &BTreeSet<String>,
) -> Result<(Vec<Entry>, Layout)> {
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
    Reader::new(env, s, allowed).read()
}

/// The 1-based line holding byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Walks the parser's events and checks the document's shape.
struct Reader<'a> {
    env: &'a str,
    /// Controlling names the signed manifest allows.
    allowed: &'a BTreeSet<String>,
    /// The text's lines, split once: entries look their lines up by number.
    lines: Vec<&'a str>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
}

impl<'a> Reader<'a> {
    fn new(env: &'a str, text: &'a str, allowed: &'a BTreeSet<String>) -> Self {
        Reader {
            env,
            allowed,
            lines: text.split('\n').collect(),
            parser: Parser::new_from_str(text),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span)> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            // The parser's words, cut before any character of the text it quotes.
            Some(Err(e)) => Err(Error::new(format!(
                "{}: line {}: invalid YAML: {}",
                self.env,
                e.marker().line(),
                e.info()
                    .split(['`', '\'', '"'])
                    .next()
                    .unwrap_or("")
                    .trim_end_matches([':', ' '])
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
        self.open_document()?;
        let mut result = None;
        loop {
            match self.next()? {
                (Event::MappingEnd, _) => break,
                (Event::Scalar(key, _, anchor, tag), span) => {
                    let line = span.start.line();
                    let decorated = anchor != 0 || tag.is_some();
                    self.check_top_key(&key, decorated, line, result.is_some())?;
                    let layout = Layout {
                        secrets_line: line,
                        secrets_col: span.start.col(),
                        block: true,
                    };
                    result = Some(self.read_secrets(layout)?);
                }
                (_, span) => return Err(self.fail(span.start.line(), SHAPE).with_hint(HINT)),
            }
        }
        self.close_document()?;
        result.ok_or_else(|| {
            Error::new(format!("{}: no `secrets` key; {SHAPE}", self.env)).with_hint(HINT)
        })
    }

    /// Up to the top-level mapping's start: one document, holding a plain mapping.
    fn open_document(&mut self) -> Result<()> {
        let (ev, _) = self.next()?;
        debug_assert!(matches!(ev, Event::StreamStart));
        match self.next()? {
            (Event::DocumentStart(_), _) => {}
            (Event::StreamEnd, _) => {
                return Err(
                    Error::new(format!("{}: the document is empty; {SHAPE}", self.env))
                        .with_hint(HINT),
                );
            }
            (_, span) => return Err(self.fail(span.start.line(), SHAPE)),
        }
        match self.next()? {
            (Event::MappingStart(anchor, tag), span) => {
                if anchor != 0 || tag.is_some() {
                    return Err(self.fail(span.start.line(), "anchors and tags are not allowed"));
                }
                Ok(())
            }
            (_, span) => Err(self.fail(span.start.line(), SHAPE).with_hint(HINT)),
        }
    }

    /// A top-level key: only `secrets`, once, without anchor or tag.
    fn check_top_key(&self, key: &str, decorated: bool, line: usize, seen: bool) -> Result<()> {
        if key != "secrets" {
            return Err(self
                .fail(line, &format!("unexpected top-level key; {SHAPE}"))
                .with_hint(HINT));
        }
        if decorated {
            return Err(self.fail(line, "anchors and tags are not allowed"));
        }
        if seen {
            return Err(self.fail(line, "duplicate key `secrets`"));
        }
        Ok(())
    }

    /// After the top-level mapping: the end of the one document, and of the stream.
    fn close_document(&mut self) -> Result<()> {
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (_, span) => {
                return Err(self.fail(span.start.line(), "unexpected content after the document"))
            }
        }
        match self.next()? {
            (Event::StreamEnd, _) => Ok(()),
            (_, span) => Err(self.fail(span.start.line(), "only one YAML document is allowed")),
        }
    }

    fn read_secrets(&mut self, mut layout: Layout) -> Result<(Vec<Entry>, Layout)> {
        if !self.open_secrets(&mut layout)? {
            return Ok((Vec::new(), layout));
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
                    let decorated = anchor != 0 || tag.is_some();
                    self.check_secret_name(&name, decorated, line, &seen)?;
                    seen.insert(name.to_string(), line);
                    name.into_owned()
                }
                _ => return Err(self.fail(line, "every secret name must be a plain NAME")),
            };
            let (value, plain) = self.read_value()?;
            entries.push(Entry {
                name,
                value,
                plain,
                line,
                last_line: None,
                col: span.start.col(),
            });
        }
        Ok((entries, layout))
    }

    /// The start of the `secrets` mapping, noting its style in `layout`; false when
    /// `secrets:` has nothing under it (no secrets yet).
    fn open_secrets(&mut self, layout: &mut Layout) -> Result<bool> {
        let (ev, span) = self.next()?;
        match ev {
            Event::MappingStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(self.fail(span.start.line(), "anchors and tags are not allowed"));
                }
                // A flow mapping (`{...}`) starts on the `secrets:` line.
                layout.block = !self.text_at(span).starts_with('{');
                Ok(true)
            }
            Event::Scalar(ref v, ScalarStyle::Plain, 0, None) if is_null(v) => Ok(false),
            _ => Err(self.fail(
                span.start.line(),
                "`secrets` must be a mapping of NAME: value",
            )),
        }
    }

    /// A secret's name: valid, plain, and not seen before (`seen` maps names to lines).
    fn check_secret_name(
        &self,
        name: &str,
        decorated: bool,
        line: usize,
        seen: &HashMap<String, usize>,
    ) -> Result<()> {
        check_name_allowing(self.env, name, Some(line), self.allowed)?;
        if decorated {
            return Err(self.fail(line, "anchors and tags are not allowed"));
        }
        if let Some(first) = seen.get(name) {
            return Err(self.fail(
                line,
                &format!("duplicate secret name (first at line {first})"),
            ));
        }
        Ok(())
    }

    /// A secret's value: a string scalar, never a collection or an alias. Errors name
    /// the line, never the secret (its name may be a value typed in the wrong place).
    /// With it, whether it was written plain (unquoted, not a block).
    fn read_value(&mut self) -> Result<(SecretValue, bool)> {
        let (ev, vspan) = self.next()?;
        let vline = vspan.start.line();
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let value = self.scalar_value(value, style, anchor != 0, tag.is_some(), vline)?;
                Ok((value, plain))
            }
            Event::Alias(_) => Err(self.fail(vline, "aliases are not allowed")),
            Event::SequenceStart(..) => {
                Err(self.fail(vline, "the value is a list; every value must be a string"))
            }
            Event::MappingStart(..) => Err(self.fail(
                vline,
                "the value is a mapping; every value must be a string",
            )),
            _ => Err(self.fail(vline, "unexpected value")),
        }
    }

    /// A scalar value as the string written: no anchor, tag, null or NUL. The parser's
    /// string is moved into the secret when it owns one, copied once when it borrows.
    fn scalar_value(
        &self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        anchored: bool,
        tagged: bool,
        line: usize,
    ) -> Result<SecretValue> {
        if anchored {
            return Err(self.fail(line, "anchors are not allowed"));
        }
        if tagged {
            return Err(self.fail(line, "tags are not allowed; every value is a string"));
        }
        if style == ScalarStyle::Plain && is_null(&value) {
            return Err(self.fail(line, "the value is null").with_hint(
                "write the value, or quote it ('' for empty, '~' or 'null' for those characters)",
            ));
        }
        if value.contains('\0') {
            return Err(self.fail(line, "the value holds a NUL character"));
        }
        Ok(match value {
            Cow::Owned(s) => SecretValue::new(s),
            Cow::Borrowed(s) => SecretValue::new(s.to_owned()),
        })
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

//! Reading the document the failsafe way: every scalar a string as written, and any
//! shape other than `secrets:` over `NAME: value` an error naming the line, not the value.

use super::{check_name, Entry, Layout, MAX_DOCUMENT_BYTES};
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Checks the raw bytes (size, UTF-8, NUL), then reads the entries and their layout.
pub(super) fn read(env: &str, bytes: &[u8]) -> Result<(Vec<Entry>, Layout)> {
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
    Reader::new(env, s).read()
}

/// The 1-based line holding byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
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

//! Editing in place: one entry set or removed, every other byte kept, and the result
//! parsed back to prove it says what was meant (else the document is written anew).

use super::write::{canonical, render_entry};
use super::{check_name_allowing, check_value, Document};
use crate::error::Result;
use crate::secret::{SecretBuf, SecretBytes, SecretValue};

impl Document {
    /// A new document with `name` set to `value`, keeping every other byte where it can.
    ///
    /// The returned bool is false when comments and layout could not be kept and the
    /// document was written anew in canonical form.
    pub fn with_set(&self, env: &str, name: &str, value: &SecretValue) -> Result<(Document, bool)> {
        check_name_allowing(env, name, None, &self.allowed)?;
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
            if let Ok(doc) = Document::parse_allowing(env, text, self.allowed.clone()) {
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
        let mut out = canonical(expected);
        let doc = Document::parse_allowing(
            env,
            SecretBytes::new(std::mem::take(&mut *out).into_bytes()),
            self.allowed.clone(),
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

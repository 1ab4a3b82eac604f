//! The secrets document: the YAML people edit, read the failsafe way, and edited in place.
//!
//! Every value is the string exactly as written (`0123`, `yes`, `1e3` stay those
//! characters). Nulls, collections, anchors, aliases, tags, duplicates and NUL are
//! errors that name the environment, key and line, never the value.
//!
//! By concern: `read` parses and checks the shape, `validate` holds the rules for names
//! and values, `write` renders YAML scalars, and `edit` changes one entry while keeping
//! every other byte; `salt_reading` says where Salt's own YAML reading of a plain
//! scalar parts from vault's.

mod edit;
mod read;
mod salt_reading;
mod validate;
mod write;

pub use salt_reading::{salt_reading, salt_renders, SaltReading};
pub use validate::{
    check_name, check_name_allowing, check_name_syntax, check_value, controlling,
    CONTROLLING_NAMES, CONTROLLING_PREFIXES,
};
pub use write::push_double_quoted;

use crate::error::Result;
use crate::secret::{SecretBytes, SecretValue};
use std::collections::BTreeSet;

/// The largest plaintext document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// A parsed secrets document: the exact bytes as written, and its entries in order.
#[derive(Debug)]
pub struct Document {
    text: SecretBytes,
    entries: Vec<Entry>,
    layout: Layout,
    /// The controlling names its environment's signed manifest allows.
    allowed: BTreeSet<String>,
}

/// One `NAME: value` of the document.
#[derive(Debug)]
pub struct Entry {
    name: String,
    value: SecretValue,
    /// Written plain (unquoted, not a block): Salt's own YAML reading may type it.
    plain: bool,
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

    /// Whether the value was written plain (unquoted, not a block), so that Salt's own
    /// YAML reading may have made something else of it (see [`salt_reading`]).
    pub fn plain(&self) -> bool {
        self.plain
    }

    /// The line the entry starts on (from 1).
    pub fn line(&self) -> usize {
        self.line
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
        Document::parse_allowing(env, text, BTreeSet::new())
    }

    /// Reads `text` where the environment's signed manifest allows the controlling names
    /// in `allowed` (`PYTHONPATH`, say); every other one is refused as always.
    pub fn parse_allowing(
        env: &str,
        text: SecretBytes,
        allowed: BTreeSet<String>,
    ) -> Result<Document> {
        let (entries, layout) = read::read(env, text.expose(), &allowed)?;
        Ok(Document {
            text,
            entries,
            layout,
            allowed,
        })
    }

    /// The controlling names this document may hold.
    pub fn allowed(&self) -> &BTreeSet<String> {
        &self.allowed
    }

    /// The document a new environment starts from in `vault edit`.
    pub fn template(env: &str) -> SecretBytes {
        SecretBytes::new(
            format!(
                "# Secrets for {env}: one NAME: value per line under `secrets:`, indented two\n\
                 # spaces, for example:   DB_PASSWORD: 'change me'\n\
                 # Every value is kept as the exact characters written. Quote values\n\
                 # with leading or trailing spaces; use `|` blocks for multi-line values.\n\
                 # (No comment line below: an editor would continue it as you type.)\n\
                 secrets:\n"
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
}

/// A new, empty document for an environment that has none yet.
pub fn empty(env: &str) -> Document {
    Document::parse(env, SecretBytes::new(b"secrets:\n".to_vec()))
        .expect("the empty document parses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBuf;

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
            ("secrets:\n  A: [1]\n", "line 2: the value is a list"),
            ("secrets:\n  A: {b: c}\n", "line 2: the value is a mapping"),
            ("secrets:\n  A:\n", "line 2: the value is null"),
            ("secrets:\n  A: ~\n", "line 2: the value is null"),
            ("secrets:\n  A: null\n", "line 2: the value is null"),
            (
                "secrets:\n  A: &x v\n  B: *x\n",
                "line 2: anchors are not allowed",
            ),
            ("secrets:\n  B: *x\n", "invalid YAML"),
            ("secrets:\n  A: !!str v\n", "line 2: tags are not allowed"),
            (
                "secrets:\n  A: 1\n  A: 2\n",
                "line 3: duplicate secret name (first at line 2)",
            ),
            (
                "secrets:\n  1A: v\n",
                "line 2: invalid secret name: use letters",
            ),
            ("secrets:\n  A-B: v\n", "line 2: invalid secret name"),
            ("other: 1\n", "line 1: unexpected top-level key;"),
            (
                "secrets:\n  A: 1\nmore: 2\n",
                "line 3: unexpected top-level key;",
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

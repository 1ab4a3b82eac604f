//! Reading the apply script's output as it streams: every secret value redacted from each
//! of Salt's lines before anything else sees it, and what Salt did (changed states, failed
//! ones, and what a failed state reported for the closing table) read from the redacted
//! lines.
//!
//! How a value is found (SECURITY.md, P15). A value is cut into *pieces*: itself, trimmed,
//! or each line of a multi-line one, trimmed (a PEM body appears line by line). A piece is
//! then one of three kinds, by what looking for it would do to Salt's output:
//!
//! - **too short to find safely**: fewer than [`MIN_CHARS`] characters, a number of fewer
//!   than [`MIN_NUMBER_CHARS`], or one of [`COMMON_WORDS`]. Salt prints such strings
//!   everywhere (`changed=yes`, `Result: True`, a duration, a file mode): blanking them
//!   would make the output unreadable, and where the marker landed would spell out the
//!   very word the secret equals. They are not redacted; the closing table names their
//!   secrets, never their values ([`unredacted`]).
//! - **a token** (up to [`ANYWHERE_CHARS`] - 1 characters): redacted where it stands as
//!   a whole token. At each end of the piece that is a token character (a letter or a
//!   digit of any script, or `_`), the line's neighbouring character must not be one
//!   (or be the start or end of the line); an end that is not a token character (`-`,
//!   `~`, `}`) bounds itself. So `hunter2` is redacted in `pw=hunter2;` and in
//!   `"hunter2"`, not in `hunter23` or `app_hunter2` (where it is not what Salt printed).
//! - **findable anywhere** ([`ANYWHERE_CHARS`] characters or more): redacted wherever it
//!   appears, inside a longer word too (a long value glued to another is still a leak),
//!   and where Salt's line wrapping split it: a line ending in its first
//!   [`ANYWHERE_CHARS`] characters or more, or in its first words ([`MIN_CHARS`] or
//!   more, as a token), and the rest of it on the lines that follow (after their
//!   indentation; a space at the break may be dropped, as textwrap does). A shorter
//!   start before a wrap is shown: each line goes out as it comes, before the next.
//!
//! Matching is exact (case and bytes): Salt prints values as they are. A value with a
//! quote, a backslash or a control character is also looked for as JSON and Python
//! escape it, and one a URL cannot hold as it stands, percent-encoded; a findable-anywhere
//! value also in hex and base64 (where it starts at any offset of the encoding: an HTTP
//! Basic header of `user:password`). Every redaction is the one marker [`MARKER`], whatever it hides: spans that
//! overlap or touch (one secret a prefix of another) become one marker, so its length and
//! count say nothing of the values.

use crate::provision::remote::READY;
use crate::provision::report::Applied;
use zeroize::Zeroizing;

/// What replaces every redacted span.
pub(super) const MARKER: &str = "[redacted]";
/// Pieces shorter than this (in characters) are too short to find safely.
const MIN_CHARS: usize = 4;
/// Pieces of at least this many characters are redacted anywhere, and across a wrap: a
/// random string this long does not turn up in Salt's output by chance.
const ANYWHERE_CHARS: usize = 8;
/// Numbers (digits, with `.,:+-`) shorter than this are too short to find safely: Salt
/// prints durations, counts, pids, times and file modes of this size on every state.
const MIN_NUMBER_CHARS: usize = 6;
/// Words too common in Salt's output to find safely (compared ignoring case): YAML's
/// booleans and nulls, and the words of the highstate outputter's own frame, printed for
/// every state. A secret equal to one of these would blank Salt's structure, and the
/// marker's place would say which word it is.
pub(super) const COMMON_WORDS: &[&str] = &[
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "none",
    "nil",
    "local",
    "name",
    "result",
    "comment",
    "started",
    "duration",
    "changes",
    "summary",
    "succeeded",
    "failed",
    "changed",
    "total",
    "states",
    "function",
    "warnings",
];

/// A character that can continue a token: a letter or digit of any script, or `_`.
fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A value's pieces: the value trimmed, or each line of a multi-line one trimmed; empty
/// pieces (nothing to find, nothing to leak) left out.
fn pieces(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(str::trim).filter(|p| !p.is_empty())
}

/// Whether `piece` is too short to find safely (see the module's comment).
fn too_short(piece: &str) -> bool {
    let chars = piece.chars().count();
    let number = piece.chars().any(|c| c.is_ascii_digit())
        && piece
            .chars()
            .all(|c| c.is_ascii_digit() || ".,:+-".contains(c));
    chars < MIN_CHARS
        || (number && chars < MIN_NUMBER_CHARS)
        || COMMON_WORDS.iter().any(|w| w.eq_ignore_ascii_case(piece))
}

/// The names, of `(name, value)` pairs, whose values are not redacted, or not wholly:
/// `NAME` when no piece of it is findable, `NAME (some lines)` for a multi-line value with
/// some too-short lines. Never a value.
pub(crate) fn unredacted<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut names = Vec::new();
    for (name, value) in entries {
        let (short, all) =
            pieces(value).fold((0, 0), |(s, a), p| (s + usize::from(too_short(p)), a + 1));
        if short == 0 {
            continue;
        }
        names.push(if short == all {
            name.to_string()
        } else {
            format!("{name} (some lines)")
        });
    }
    names
}

/// How a piece is looked for.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Find {
    Token,
    Anywhere,
}

/// One string to look for.
struct Needle {
    text: Zeroizing<String>,
    find: Find,
    /// Followed across Salt's line wrapping: the value itself (its pieces) and its JSON
    /// and Python escapes, which a state's comment quotes. Its encodings (hex, base64,
    /// percent, `\uXXXX`) are what a program's log holds, on lines of their own.
    follow: bool,
}

/// `value` as JSON (`quote` `"`) or Python (`quote` `'`) escape it inside quotes.
fn escaped(value: &str, quote: char) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 2));
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON with only ASCII (Python's `json.dumps` default, `ensure_ascii`):
/// inside double quotes, every character beyond ASCII and every control character as
/// `\uXXXX` (UTF-16, lowercase hex), but those JSON names (`\n`, `\t`, ...).
fn json_ascii(value: &str) -> Zeroizing<String> {
    use std::fmt::Write;
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 6));
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out
}

/// `value`'s UTF-8 bytes as Python's `repr` of them shows them inside single quotes:
/// every byte beyond printable ASCII as `\xNN` (`\n`, `\t`, `\r` by name).
fn bytes_repr(value: &str) -> Zeroizing<String> {
    use std::fmt::Write;
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 4));
    for b in value.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// `value` percent-encoded as a URL holds it (a password in a database URL): each byte
/// but the unreserved `A-Za-z0-9-._~` and those of `keep` as `%XX`, a space as `+` with
/// `plus` (Python's `quote(v, safe="")`, `quote(v)` and `quote_plus(v)`).
fn percent_encoded(value: &str, keep: &str, plus: bool) -> Zeroizing<String> {
    use std::fmt::Write;
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus => out.push('+'),
            b if keep.as_bytes().contains(&b) => out.push(char::from(b)),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `value` as a program may log it encoded: its bytes in hex (either case), and in
/// base64 (standard and URL-safe) wherever it starts in what is encoded: for each of
/// the three offsets a value can start at within a group of three bytes, the groups it
/// wholly fills, as they appear whatever comes before and after it; and the value
/// encoded on its own, padded.
fn encoded(value: &str) -> Vec<Zeroizing<String>> {
    use std::fmt::Write;
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut hex = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    out.push(Zeroizing::new(hex.to_uppercase()));
    out.push(hex);
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::Engine;
    for engine in [STANDARD, URL_SAFE] {
        out.push(Zeroizing::new(engine.encode(bytes)));
        for skip in 0..3.min(bytes.len()) {
            let rest = &bytes[skip..];
            let e = Zeroizing::new(engine.encode(&rest[..rest.len() / 3 * 3]));
            if e.chars().count() >= ANYWHERE_CHARS {
                out.push(e);
            }
        }
    }
    out
}

/// Replaces every secret value (and each line of a multi-line one) in Salt's output.
pub(crate) struct Redactor {
    needles: Vec<Needle>,
}

impl Redactor {
    pub fn new(values: &[&str]) -> Redactor {
        let mut texts: Vec<Zeroizing<String>> = Vec::new();
        let mut followed: Vec<Zeroizing<String>> = Vec::new();
        for value in values {
            let findable = pieces(value).filter(|p| !too_short(p));
            followed.extend(findable.map(|p| Zeroizing::new(p.to_string())));
            // As JSON or Python would print it (a comment quoting a value), unless the
            // value itself is too short to find.
            let whole = value.trim();
            if too_short(whole) {
                continue;
            }
            for quote in ['"', '\''] {
                let e = escaped(whole, quote);
                if e.as_str() != whole {
                    followed.push(e);
                }
            }
            // As JSON writes it by default (Python's json.dumps: non-ASCII and control
            // characters as \uXXXX), and as Python shows its UTF-8 bytes (b'\xc3\xa9').
            for e in [json_ascii(whole), bytes_repr(whole)] {
                if e.as_str() != whole {
                    texts.push(e);
                }
            }
            // As a URL holds it (a database URL a program logs).
            for (keep, plus) in [("", false), ("/", false), ("", true)] {
                let e = percent_encoded(whole, keep, plus);
                if e.as_str() != whole {
                    texts.push(e);
                }
            }
            // As a program logs bytes (hex) or a header (base64: an HTTP Basic
            // authorization of `user:password`), when long enough that its encoding is
            // no chance string.
            if whole.chars().count() >= ANYWHERE_CHARS {
                texts.extend(encoded(whole));
            }
        }
        // Each form again as Python's repr of a string holding it shows it (backslashes
        // doubled): Salt logs a failed state's output that way.
        let known: std::collections::HashSet<&str> =
            followed.iter().chain(&texts).map(|t| t.as_str()).collect();
        let in_repr: Vec<Zeroizing<String>> = followed
            .iter()
            .chain(&texts)
            .map(|t| escaped(t, '\''))
            .filter(|e| !known.contains(e.as_str()))
            .collect();
        drop(known);
        texts.extend(in_repr);
        let needle = |follow: bool| {
            move |text: Zeroizing<String>| {
                let long = text.chars().count() >= ANYWHERE_CHARS;
                let find = if long { Find::Anywhere } else { Find::Token };
                Needle { text, find, follow }
            }
        };
        let mut needles: Vec<Needle> = followed.into_iter().map(needle(true)).collect();
        needles.extend(texts.into_iter().map(needle(false)));
        // The followed form first, so dedup keeps it where a text is both.
        needles.sort_by(|a, b| a.text.cmp(&b.text).then(b.follow.cmp(&a.follow)));
        needles.dedup_by(|a, b| a.text == b.text);
        Redactor { needles }
    }

    /// One line on its own, redacted (no line before it).
    #[cfg(test)]
    pub fn line(&self, line: &str) -> String {
        self.stream().line(line)
    }

    /// A stream of lines to redact, in order: one per host's output.
    pub fn stream(&self) -> Stream<'_> {
        Stream {
            redactor: self,
            carry: Vec::new(),
        }
    }
}

/// The lines of one output, redacted in order: a value wrapped over lines is followed
/// from one to the next.
pub(crate) struct Stream<'r> {
    redactor: &'r Redactor,
    /// Values the last line ended inside: the needle, and the bytes of it already seen.
    carry: Vec<(usize, usize)>,
}

impl Stream<'_> {
    pub fn line(&mut self, line: &str) -> String {
        let out = self.one(line);
        // Salt logs a failed state's changes as Python's repr, its output's line breaks
        // written `\n`: a value wrapped over those lines is followed across them too.
        if !out.contains("\\n") {
            return out;
        }
        let mut inner = self.redactor.stream();
        let parts: Vec<String> = out.split("\\n").map(|part| inner.one(part)).collect();
        parts.join("\\n")
    }

    fn one(&mut self, line: &str) -> String {
        let mut spans = Vec::new();
        let carry = std::mem::take(&mut self.carry);
        for (n, seen) in carry {
            self.continuation(line, n, seen, &mut spans);
        }
        let pairs = Pairs::of(line);
        for (n, needle) in self.redactor.needles.iter().enumerate() {
            if pairs.may_hold(&needle.text) {
                whole_matches(line, needle, &mut spans);
            }
            if needle.follow && needle.find == Find::Anywhere {
                self.wrapped_start(line, n, &needle.text, &mut spans);
            }
        }
        redact_spans(line, spans)
    }

    /// Line `line` after one that ended inside needle `n`, `seen` bytes of it shown: the
    /// rest of it at the line's start (after indentation, and a space the wrap dropped),
    /// or the whole line inside it (a value wrapped over three lines or more).
    fn continuation(&mut self, line: &str, n: usize, seen: usize, spans: &mut Vec<(usize, usize)>) {
        let text = &self.redactor.needles[n].text;
        let after = &text[seen..];
        let rest = after.trim_start();
        // After indentation, and the prefix of a log line in a failed start's report.
        let body = line.trim_start();
        let body = body.strip_prefix(LOG_LINE).unwrap_or(body);
        let start = line.len() - body.len();
        if body.starts_with(rest) {
            spans.push((start, start + rest.len()));
            return;
        }
        let body = body.trim_end();
        if body.chars().count() >= ANYWHERE_CHARS && rest.starts_with(body) {
            spans.push((start, start + body.len()));
            let seen = seen + (after.len() - rest.len()) + body.len();
            self.carry.push((n, seen));
        }
    }

    /// Where `line` ends with the start of needle `n` (its `text`): that start redacted if
    /// it is long enough to find safely on its own, or is the needle's first words (a wrap
    /// at a space inside it) and a token's length; the needle followed to the next line
    /// either way. A shorter start is shown: the line goes out before the next arrives.
    fn wrapped_start(&mut self, line: &str, n: usize, text: &str, spans: &mut Vec<(usize, usize)>) {
        let end = line.trim_end();
        // No start longer than the line: a line's worth of comparisons per needle.
        let longest = (1..text.len().min(end.len() + 1))
            .rev()
            .filter(|k| text.is_char_boundary(*k))
            .find(|k| end.ends_with(&text[..*k]));
        if let Some(k) = longest {
            let chars = text[..k].chars().count();
            let words = text[k..].starts_with(char::is_whitespace)
                && chars >= MIN_CHARS
                && bounded(end, end.len() - k, end.len());
            if chars >= ANYWHERE_CHARS || words {
                spans.push((end.len() - k, end.len()));
            }
            self.carry.push((n, k));
        }
    }
}

/// The pairs of bytes a line holds, side by side: a needle whose first two bytes are not
/// among them is not in the line, which spares most of thousands of searches a line.
struct Pairs(Box<[u64; 1024]>);

impl Pairs {
    fn of(line: &str) -> Pairs {
        let mut bits = Box::new([0u64; 1024]);
        for w in line.as_bytes().windows(2) {
            let i = usize::from(w[0]) << 8 | usize::from(w[1]);
            bits[i / 64] |= 1 << (i % 64);
        }
        Pairs(bits)
    }

    fn may_hold(&self, text: &str) -> bool {
        match text.as_bytes() {
            [a, b, ..] => {
                let i = usize::from(*a) << 8 | usize::from(*b);
                self.0[i / 64] & (1 << (i % 64)) != 0
            }
            _ => true,
        }
    }
}

/// Every place `needle` stands in `line` (a token where it must be one), overlapping
/// places included.
fn whole_matches(line: &str, needle: &Needle, spans: &mut Vec<(usize, usize)>) {
    let text = needle.text.as_str();
    let mut from = 0;
    while let Some(i) = line[from..].find(text) {
        let (start, end) = (from + i, from + i + text.len());
        if needle.find == Find::Anywhere || bounded(line, start, end) {
            spans.push((start, end));
        }
        from = start + line[start..].chars().next().map_or(1, char::len_utf8);
    }
}

/// Whether `line[start..end]` is a whole token: neither end continues one that goes on
/// in the line.
fn bounded(line: &str, start: usize, end: usize) -> bool {
    let piece = &line[start..end];
    let glued = |inner: Option<char>, outer: Option<char>| {
        inner.is_some_and(is_token_char) && outer.is_some_and(is_token_char)
    };
    !glued(piece.chars().next(), line[..start].chars().next_back())
        && !glued(piece.chars().next_back(), line[end..].chars().next())
}

/// `line` with each span, merged where spans overlap or touch, replaced by one marker.
fn redact_spans(line: &str, mut spans: Vec<(usize, usize)>) -> String {
    if spans.is_empty() {
        return line.to_string();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    let mut spans = spans.into_iter().peekable();
    while let Some((start, mut end)) = spans.next() {
        while let Some(&(s, e)) = spans.peek() {
            if s > end {
                break;
            }
            end = end.max(e);
            spans.next();
        }
        out.push_str(&line[at..start]);
        out.push_str(MARKER);
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

/// What a state of vault's (the program's checked start) prints, inside its output, for
/// the closing table to show when it fails: the program's state and its log's last lines.
pub(super) const REPORT: &str = "vault-report: ";
/// How such a report starts each line of the program's log (conf/salt/project/init.sls).
const LOG_LINE: &str = "vault-report: | ";
/// What a state of vault's prints of what it did (a program restarted and RUNNING), for
/// the table's account of the run.
const DID: &str = "vault-did: ";

/// One line of the apply script's standard output, read.
pub(super) enum Line {
    /// The script's own, before Salt's output: shown to nobody.
    Script,
    /// The script's marker: the secrets are in place and salt-call starts.
    Ready,
    /// A line of Salt's output, redacted.
    Salt(String),
}

/// `line` with every control character but a tab shown as `?`: what a state or an app's
/// log prints reaches the member's terminal, and an escape sequence must not act on it.
/// Done after redaction, so a secret holding a control character is still found.
pub(crate) fn visible(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

/// The apply script's standard output, line by line.
pub(super) struct SaltOutput<'r> {
    redacted: Stream<'r>,
    ready: bool,
    /// The `ID:` of the state whose result comes next.
    last_id: String,
    /// Whether that state failed: its [`REPORT`] lines then go to the table.
    failing: bool,
    /// Whether it succeeded in a full block (a change, or in a dry run one to come):
    /// its comment then says what it did.
    did: bool,
    applied: Applied,
}

impl<'r> SaltOutput<'r> {
    pub fn new(redactor: &'r Redactor) -> SaltOutput<'r> {
        SaltOutput {
            redacted: redactor.stream(),
            ready: false,
            last_id: String::new(),
            failing: false,
            did: false,
            applied: Applied::default(),
        }
    }

    pub fn read(&mut self, line: &str) -> Line {
        if !self.ready {
            // Only the script's marker comes before Salt's output.
            self.ready = line == READY;
            return if self.ready {
                Line::Ready
            } else {
                Line::Script
            };
        }
        let shown = visible(&self.redacted.line(line));
        let trimmed = shown.trim();
        if let Some(id) = trimmed.strip_prefix("ID: ") {
            self.last_id = id.to_string();
            self.failing = false;
            self.did = false;
        } else if trimmed == "Result: True" || trimmed == "Result: None" {
            self.did = true;
        } else if let Some(comment) = trimmed.strip_prefix("Comment: ").filter(|_| self.did) {
            self.did = false;
            // A command's comment names only the command: its own `vault-did:` says more.
            if !comment.starts_with("Command \"") {
                self.applied
                    .did
                    .push(format!("{}: {comment}", self.last_id));
            }
        } else if let Some(did) = trimmed.strip_prefix(DID) {
            self.applied.did.push(did.to_string());
        } else if trimmed == "Result: False" {
            self.applied.failed.push(self.last_id.clone());
            self.failing = true;
        } else if let Some(report) = trimmed.strip_prefix(REPORT).filter(|_| self.failing) {
            self.applied.details.push(report.to_string());
        } else if let Some(rest) = trimmed.strip_prefix("Succeeded:") {
            self.applied.changed = rest
                .split("changed=")
                .nth(1)
                .and_then(|s| s.trim_end_matches(')').parse().ok())
                .unwrap_or(0);
        }
        Line::Salt(shown)
    }

    /// What Salt did; `None` when the script never got as far as salt-call.
    pub fn finish(self) -> Option<Applied> {
        self.ready.then_some(self.applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_values_and_their_lines() {
        let r = Redactor::new(&["hunter22", "-----BEGIN-----\nabcdef\n", "on"]);
        assert_eq!(r.line("pw hunter22 x"), "pw [redacted] x");
        assert_eq!(r.line("  abcdef"), "  [redacted]");
        assert_eq!(r.line("turn on"), "turn on");
    }

    #[test]
    fn a_value_wrapped_in_a_log_tail_or_its_repr_is_followed() {
        let r = Redactor::new(&["Wd4Kp8Zr2Qm6Tx9Lb3Vn7Hc5Jf1Gs0Ye4"]);
        let mut s = r.stream();
        let shown: Vec<String> = [
            "    vault-report: | Wd4Kp8Zr2Qm6Tx9L",
            "    vault-report: | b3Vn7Hc5Jf1Gs0Ye",
            "    vault-report: | 4",
        ]
        .iter()
        .map(|l| s.line(l))
        .collect();
        assert_eq!(shown, ["    vault-report: | [redacted]"; 3]);
        let repr = r#"{'stdout': "vault-report: | Wd4Kp8Zr2Qm6Tx9L\nvault-report: | b3Vn7Hc5Jf1Gs0Ye\nvault-report: | 4", 'stderr': ''}"#;
        assert_eq!(
            r.line(repr),
            r#"{'stdout': "vault-report: | [redacted]\nvault-report: | [redacted]\nvault-report: | [redacted]", 'stderr': ''}"#
        );
    }

    #[test]
    fn the_pairs_of_a_line_hold_every_piece_of_it() {
        let line = "pw=p%40ss+w%25rd é\u{1F600} tail";
        let pairs = Pairs::of(line);
        for start in (0..line.len()).filter(|i| line.is_char_boundary(*i)) {
            for end in (start..=line.len()).filter(|i| line.is_char_boundary(*i)) {
                assert!(pairs.may_hold(&line[start..end]), "{:?}", &line[start..end]);
            }
        }
        assert!(!pairs.may_hold("zz-not-in-it"));
    }

    #[test]
    fn a_value_is_redacted_percent_encoded_too() {
        let r = Redactor::new(&["p@ss w%rd/x#y"]);
        for line in [
            "postgres://app:p%40ss%20w%25rd%2Fx%23y@db/app",
            "postgres://app:p%40ss%20w%25rd/x%23y@db/app",
            "pw=p%40ss+w%25rd%2Fx%23y&x=1",
        ] {
            assert!(!r.line(line).contains("w%25rd"), "{}", r.line(line));
        }
    }

    #[test]
    fn a_non_ascii_value_is_redacted_as_json_and_python_bytes_escape_it() {
        let secret = "héllo wörld 日本 🎉";
        let r = Redactor::new(&[secret]);
        for line in [
            // json.dumps({"pw": secret})
            r#"{"pw": "h\u00e9llo w\u00f6rld \u65e5\u672c \ud83c\udf89"}"#,
            // repr(secret.encode())
            r"pw=b'h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89'",
        ] {
            // As printed, and inside the repr Salt logs of a failed state's output.
            for line in [line.to_string(), line.replace('\\', "\\\\")] {
                let shown = r.line(&line);
                assert!(!shown.contains("rld"), "{shown}");
                assert!(shown.contains(MARKER), "{shown}");
            }
        }
    }

    #[test]
    fn a_value_is_redacted_in_hex_and_base64_too() {
        let secret = "hunter2-Correct>Horse?Battery";
        let r = Redactor::new(&[secret]);
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        use base64::Engine;
        for prefix in ["", "a:", "ab:", "abc:"] {
            for engine in [STANDARD, URL_SAFE] {
                let b = engine.encode(format!("{prefix}{secret}x"));
                let line = format!("Authorization: Basic {b}");
                // Past the prefix's groups, no 4 characters of the encoding are left.
                let shown = r.line(&line);
                let core = &b[prefix.len().div_ceil(3) * 4..b.len() - 8];
                assert!(!shown.contains(&core[..8]), "{shown}");
                assert!(shown.contains(MARKER), "{shown}");
            }
        }
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for line in [
            format!("bytes {hex}"),
            format!("BYTES {}", hex.to_uppercase()),
        ] {
            assert_eq!(r.line(&line).split(' ').nth(1), Some(MARKER), "{line}");
        }
    }

    #[test]
    fn changed_yes_stays_readable_with_a_secret_yes() {
        let r = Redactor::new(&["yes", "on", "2", "0123", "true", "Result", "1e3"]);
        for line in [
            "changed=yes",
            "Succeeded: 4 (changed=2)",
            "  Mode: 0123",
            "      Result: True",
            "turn on",
            "x=1e3",
        ] {
            assert_eq!(r.line(line), line);
        }
        let named = unredacted([("FLAG", "yes"), ("PIN", "0123"), ("TOKEN", "hunter2-long")]);
        assert_eq!(named, ["FLAG", "PIN"]);
    }

    #[test]
    fn a_value_is_redacted_as_a_token_not_inside_a_longer_word() {
        let r = Redactor::new(&["hunter2", "~foo", "a,b=c,d"]);
        for (line, shown) in [
            ("pw=hunter2;", "pw=[redacted];"),
            ("\"hunter2\"", "\"[redacted]\""),
            ("hunter2", "[redacted]"),
            ("x hunter2\t", "x [redacted]\t"),
            (
                "hunter23 app_hunter2 hunter2x",
                "hunter23 app_hunter2 hunter2x",
            ),
            ("HUNTER2", "HUNTER2"),
            ("at~foo.", "at[redacted]."),
            ("~foobar", "~foobar"),
            ("V=a,b=c,d", "V=[redacted]"),
        ] {
            assert_eq!(r.line(line), shown, "{line}");
        }
        // Bounded matches are found even where an unbounded one overlaps them.
        let r = Redactor::new(&["ab-ab"]);
        assert_eq!(r.line("xab-ab-ab"), "xab-[redacted]");
    }

    #[test]
    fn a_long_secret_inside_a_longer_token_is_redacted() {
        let secret = "Zq8xW2mP4kT7vR1nL5sY";
        assert_eq!(secret.len(), 20);
        let r = Redactor::new(&[secret]);
        let line = format!("url=https://x/?key=sk_{secret}Extra&y=1");
        assert_eq!(r.line(&line), "url=https://x/?key=sk_[redacted]Extra&y=1");
        assert_eq!(r.line(&format!("{secret}{secret}")), "[redacted]");
    }

    #[test]
    fn each_line_of_a_pem_is_redacted() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END PRIVATE KEY-----\n";
        let r = Redactor::new(&[pem]);
        let mut stream = r.stream();
        let shown: Vec<String> = [
            "+-----BEGIN PRIVATE KEY-----",
            "+MIIEvQIBADANBg",
            "+kqhkiG9w0BAQEF",
        ]
        .iter()
        .chain(&[
            "+-----END PRIVATE KEY-----",
            "    -----BEGIN CERTIFICATE-----",
        ])
        .map(|l| stream.line(l))
        .collect();
        assert_eq!(
            shown,
            [
                "+[redacted]",
                "+[redacted]",
                "+[redacted]",
                "+[redacted]",
                "    -----BEGIN CERTIFICATE-----"
            ]
        );
        // Printed by Python or JSON on one line: found too.
        let json = "{\"key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\nkqhkiG9w0BAQEF\\n-----END PRIVATE KEY-----\"}";
        assert_eq!(r.line(json), "{\"key\": \"[redacted]\"}");
    }

    #[test]
    fn the_marker_never_reveals_a_length_or_a_count() {
        let values = ["abcd", "hunter22hunter22hunter22hunter22", "Zq8xW2mP4kT7"];
        let r = Redactor::new(&values);
        for v in values {
            assert_eq!(r.line(&format!("pw={v};")), "pw=[redacted];");
        }
        // Two secrets side by side: one marker, as for one.
        let two = format!("pw={}{};", values[1], values[2]);
        assert_eq!(r.line(&two), "pw=[redacted];");
    }

    #[test]
    fn overlapping_secrets_are_both_redacted() {
        let (short, long) = ("Zq8xW2mP4kT7", "Zq8xW2mP4kT7vR1nL5sY");
        for values in [[short, long], [long, short]] {
            let r = Redactor::new(&values);
            let line = format!("a={short} b={long} c={long}{short} d={short}{long}");
            assert_eq!(
                r.line(&line),
                "a=[redacted] b=[redacted] c=[redacted] d=[redacted]"
            );
        }
        // Token-sized ones too: `hunter2` is not a token inside `hunter22`, but is itself.
        let r = Redactor::new(&["hunter2", "hunter22"]);
        assert_eq!(r.line("hunter2 hunter22"), "[redacted] [redacted]");
    }

    #[test]
    fn a_value_split_by_salts_line_wrapping_is_followed() {
        let secret = format!("sk_live_{}", "a1B2c3D4e5F6g7H8i9J0".repeat(6));
        let spaced = "$HOME and $(id) and `id`";
        let r = Redactor::new(&[&secret, spaced]);
        // As Salt's highstate outputter wraps a warning (textwrap, 80 columns, indent 14).
        let lines = [
            format!("   Warnings: Passing {}", &secret[..58]),
            format!("              {}", &secret[58..124]),
            format!(
                "              {} in the url; with $HOME and $(id)",
                &secret[124..]
            ),
            "              and `id` instead".to_string(),
            "              and `id` again".to_string(),
        ];
        let mut stream = r.stream();
        let shown: Vec<String> = lines.iter().map(|l| stream.line(l)).collect();
        assert_eq!(
            shown,
            [
                "   Warnings: Passing [redacted]",
                "              [redacted]",
                "              [redacted] in the url; with [redacted]",
                "              [redacted] instead",
                "              and `id` again",
            ]
        );
        // Wrapped at a space after its first word: that word is caught too.
        let mut stream = r.stream();
        assert_eq!(stream.line("   with $HOME"), "   with [redacted]");
        assert_eq!(stream.line("     and $(id) and `id`."), "     [redacted].");
        let words = Redactor::new(&["correct horse battery"]);
        assert_eq!(words.line("   the correct"), "   the [redacted]");
        assert_eq!(words.line("   incorrect"), "   incorrect");
        // Wrapped after fewer characters than can be found alone: the rest is caught.
        let mut stream = r.stream();
        assert_eq!(stream.line("   Passing sk_li"), "   Passing sk_li");
        let rest = format!("              {} ok", &secret[5..]);
        assert_eq!(stream.line(&rest), "              [redacted] ok");
    }

    #[test]
    fn unredacted_values_are_named_never_shown() {
        let entries = [
            ("EMPTY", ""),
            ("BLANK", "   "),
            ("PIN", "0123"),
            ("WORD", "NULL"),
            (
                "JSON",
                "{\n  \"private_key\": \"Zq8xW2mP4kT7vR1nL5sY\"\n}\n",
            ),
            ("PEM", "-----BEGIN-----\nabcdefgh\n-----END-----\n"),
            ("TAB", "a\tb"),
            ("LONG", "Zq8xW2mP4kT7"),
            ("ID", "123456"),
        ];
        assert_eq!(
            unredacted(entries),
            ["PIN", "WORD", "JSON (some lines)", "TAB"]
        );
    }

    #[test]
    fn salt_output_is_read_after_the_marker_and_redacted() {
        let r = Redactor::new(&["hunter22"]);
        let mut out = SaltOutput::new(&r);
        assert!(matches!(out.read("sudo: noise"), Line::Script));
        assert!(matches!(out.read(READY), Line::Ready));
        let shown: Vec<String> = [
            "          ID: app_hunter22",
            "      Result: False",
            "Succeeded: 4 (changed=2)",
        ]
        .iter()
        .filter_map(|l| match out.read(l) {
            Line::Salt(s) => Some(s),
            _ => None,
        })
        .collect();
        assert!(shown.iter().all(|l| !l.contains("hunter22")), "{shown:?}");
        let applied = out.finish().unwrap();
        assert_eq!(applied.changed, 2);
        assert_eq!(applied.failed, ["app_[redacted]"]);
        assert!(SaltOutput::new(&r).finish().is_none());
    }

    #[test]
    fn a_failed_states_report_lines_reach_the_table_redacted() {
        let r = Redactor::new(&["Zq8xW2mP4kT7vR1nL5sY"]);
        let mut out = SaltOutput::new(&r);
        out.read(READY);
        for line in [
            // A state that succeeded: its report-looking lines are its own business.
            "          ID: gunicorn_conf",
            "      Result: True",
            "                  vault-report: not from a failure",
            "          ID: gunicorn_restart",
            "      Result: False",
            "                  example-gunicorn: not a report line",
            "                  vault-report: example-gunicorn: did not start: FATAL",
            "                  vault-report: |   key=Zq8xW2mP4kT7vR1nL5sY",
            "          ID: gunicorn_running",
            "      Result: True",
            "                  vault-report: not from a failure either",
        ] {
            out.read(line);
        }
        let applied = out.finish().unwrap();
        assert_eq!(applied.failed, ["gunicorn_restart"]);
        assert_eq!(
            applied.details,
            [
                "example-gunicorn: did not start: FATAL",
                "|   key=[redacted]"
            ]
        );
    }

    #[test]
    fn what_the_changed_states_did_reaches_the_table_redacted() {
        let r = Redactor::new(&["Zq8xW2mP4kT7vR1nL5sY"]);
        let mut out = SaltOutput::new(&r);
        out.read(READY);
        for line in [
            "          ID: secrets_env",
            "    Function: file.managed",
            "      Result: True",
            "     Comment: File /etc/example/secrets.env updated",
            "  Name: run_dir - Function: file.directory - Result: Clean",
            "          ID: gunicorn_restart",
            "    Function: cmd.run",
            "      Result: True",
            "     Comment: Command \"sh -s restart\" run",
            "                  vault-did: example-gunicorn restarted, RUNNING",
            "          ID: dev_alice",
            "      Result: True",
            "     Comment: account alice made with Zq8xW2mP4kT7vR1nL5sY",
            "          ID: broken",
            "      Result: False",
            "     Comment: a failure is not a change",
        ] {
            out.read(line);
        }
        let applied = out.finish().unwrap();
        assert_eq!(
            applied.did,
            [
                "secrets_env: File /etc/example/secrets.env updated",
                "example-gunicorn restarted, RUNNING",
                "dev_alice: account alice made with [redacted]",
            ]
        );
    }

    #[test]
    fn an_escape_in_salt_s_output_never_reaches_the_terminal_and_redaction_comes_first() {
        let r = Redactor::new(&["pass\x1bword-Zq8xW2mP"]);
        let mut out = SaltOutput::new(&r);
        out.read(READY);
        let Line::Salt(shown) =
            out.read("  log: \x1b]0;owned\x07 \x1b[2J pass\x1bword-Zq8xW2mP\tend")
        else {
            panic!("a line of Salt's")
        };
        assert_eq!(shown, "  log: ?]0;owned? ?[2J [redacted]\tend");
    }
}

//! Reading the apply script's output as it streams: every secret value redacted from each
//! of Salt's lines before anything else sees it, and what Salt did (changed states, failed
//! ones) read from the redacted lines.

use crate::provision::remote::READY;
use crate::provision::report::Applied;

/// Replaces every secret value (and each line of a multi-line one) in Salt's output.
pub(super) struct Redactor {
    needles: Vec<zeroize::Zeroizing<String>>,
}

impl Redactor {
    pub fn new(values: &[&str]) -> Redactor {
        let mut needles: Vec<zeroize::Zeroizing<String>> = values
            .iter()
            .flat_map(|v| std::iter::once(*v).chain(v.lines()))
            .map(str::trim)
            .filter(|n| n.chars().count() >= 3)
            .map(|n| zeroize::Zeroizing::new(n.to_string()))
            .collect();
        // Longest first, so a value is not half-replaced by a shorter one inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles }
    }

    pub fn line(&self, line: &str) -> String {
        let mut out = line.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// One line of the apply script's standard output, read.
pub(super) enum Line {
    /// The script's own, before Salt's output: shown to nobody.
    Script,
    /// The script's marker: the secrets are in place and salt-call starts.
    Ready,
    /// A line of Salt's output, redacted.
    Salt(String),
}

/// The apply script's standard output, line by line.
pub(super) struct SaltOutput<'r> {
    redactor: &'r Redactor,
    ready: bool,
    /// The `ID:` of the state whose result comes next.
    last_id: String,
    applied: Applied,
}

impl<'r> SaltOutput<'r> {
    pub fn new(redactor: &'r Redactor) -> SaltOutput<'r> {
        SaltOutput {
            redactor,
            ready: false,
            last_id: String::new(),
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
        let shown = self.redactor.line(line);
        let trimmed = shown.trim();
        if let Some(id) = trimmed.strip_prefix("ID: ") {
            self.last_id = id.to_string();
        } else if trimmed == "Result: False" {
            self.applied.failed.push(self.last_id.clone());
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
}

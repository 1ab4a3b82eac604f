//! What a run tells its caller afterwards: how each host went, and the closing table.

/// What Salt did on a host.
#[derive(Debug, Default)]
pub struct Applied {
    pub changed: usize,
    pub failed: Vec<String>,
    /// What the failed states reported for the table, redacted like the rest of Salt's
    /// output: a program that did not start, its state and its log's last lines.
    pub details: Vec<String>,
    /// What the run did on the server, a line each: the comments of the states that
    /// changed something (would have, in a dry run), and what vault's states said.
    pub did: Vec<String>,
}

/// How one host went.
#[derive(Debug)]
pub struct HostReport {
    pub target: String,
    pub result: std::result::Result<Applied, String>,
    /// For a host refused for a reason the member must act on (a changed host key): the
    /// next step, which the run's error then leads with.
    pub hint: Option<String>,
    pub seconds: f64,
    /// Seconds spent in each step: connect, rsync (with the salt-call check), secrets (minion
    /// config and the pillar), salt-call (with the pillar's removal).
    pub steps: Vec<(&'static str, f64)>,
}

impl HostReport {
    /// Reached, and every state applied.
    pub fn succeeded(&self) -> bool {
        matches!(&self.result, Ok(a) if a.failed.is_empty())
    }
}

/// The closing table: host, result, changed states, time, and under a host whose states
/// failed what they reported; with `steps`, each host's time by step; then, once, the
/// secrets `unredacted` from Salt's output, by name.
pub fn table(reports: &[HostReport], steps: bool, unredacted: &[String]) -> String {
    let mut table = format!("\n{:<30}{:<31}{:>7}  time\n", "host", "result", "changed");
    for r in reports {
        let (result, changed) = match &r.result {
            Ok(a) if a.failed.is_empty() => ("ok".to_string(), a.changed.to_string()),
            Ok(a) => (
                format!("failed: {}", a.failed.join(", ")),
                a.changed.to_string(),
            ),
            Err(e) => (format!("error: {e}"), "-".to_string()),
        };
        table.push_str(&format!(
            "{:<30}{:<31}{:>7}  {:.1}s\n",
            r.target, result, changed, r.seconds
        ));
        if let Ok(a) = &r.result {
            for line in &a.details {
                table.push_str(&format!("  {line}\n"));
            }
        }
    }
    for r in reports {
        if let Ok(a) = &r.result {
            table.push_str(&did(&r.target, &a.did));
        }
    }
    if steps {
        for r in reports {
            let steps: Vec<String> = r
                .steps
                .iter()
                .map(|(n, s)| format!("{n} {s:.2}s"))
                .collect();
            table.push_str(&format!("{}: {}\n", r.target, steps.join(", ")));
        }
    }
    if !unredacted.is_empty() {
        // Names only: the reader learns which values may show in Salt's output above.
        let names = unredacted.join(", ");
        table.push_str(&format!(
            "not redacted: too short to find safely: {names}\n"
        ));
    }
    table
}

/// What a run did on `host`, a line each (the first [`DID_SHOWN`]), under a heading;
/// nothing when it changed nothing.
fn did(host: &str, did: &[String]) -> String {
    if did.is_empty() {
        return String::new();
    }
    let mut out = format!("{host} on the server:\n");
    for line in did.iter().take(DID_SHOWN) {
        out.push_str(&format!("  {line}\n"));
    }
    if did.len() > DID_SHOWN {
        out.push_str(&format!(
            "  and {} more (Salt's output above has them all)\n",
            did.len() - DID_SHOWN
        ));
    }
    out
}

/// How many of a host's changes the table lists.
const DID_SHOWN: usize = 15;

/// Why a host's run stopped: one line, and for a refusal the member must act on (a changed
/// host key) the next step.
pub(super) struct Failure {
    pub message: String,
    pub hint: Option<String>,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            message,
            hint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_each_hosts_result() {
        let report = |target: &str, result| HostReport {
            target: target.into(),
            result,
            hint: None,
            seconds: 1.25,
            steps: vec![("connect", 0.5), ("salt-call", 0.75)],
        };
        let reports = [
            report(
                "web1",
                Ok(Applied {
                    changed: 3,
                    failed: vec![],
                    details: vec![],
                    did: vec![],
                }),
            ),
            report(
                "web2",
                Ok(Applied {
                    changed: 1,
                    failed: vec!["gunicorn_restart".into()],
                    did: vec![],
                    details: vec![
                        "example-gunicorn: did not start: FATAL".into(),
                        "| RuntimeError: [redacted]".into(),
                    ],
                }),
            ),
            report("web3", Err("cannot reach web3".into())),
        ];
        assert!(reports[0].succeeded() && !reports[1].succeeded() && !reports[2].succeeded());
        let shown = table(&reports, false, &[]);
        let rows: Vec<&str> = shown.lines().filter(|l| !l.is_empty()).collect();
        assert!(rows[0].starts_with("host") && rows[0].ends_with("changed  time"));
        assert!(
            rows[1].starts_with("web1") && rows[1].contains(" ok ") && rows[1].ends_with("3  1.2s")
        );
        assert!(rows[2].contains("failed: gunicorn_restart"), "{shown}");
        // What the failed state reported, under its host's row.
        assert_eq!(rows[3], "  example-gunicorn: did not start: FATAL");
        assert_eq!(rows[4], "  | RuntimeError: [redacted]");
        assert!(rows[5].contains("error: cannot reach web3") && rows[5].contains(" - "));
        assert_eq!(rows.len(), 6);
        assert!(table(&reports, true, &[]).contains("web1: connect 0.50s, salt-call 0.75s"));
    }

    #[test]
    fn the_table_names_once_the_secrets_not_redacted() {
        let reports = [HostReport {
            target: "web1".into(),
            result: Ok(Applied::default()),
            seconds: 1.0,
            steps: vec![],
            hint: None,
        }];
        assert!(!table(&reports, false, &[]).contains("not redacted"));
        let names = ["FLAG".to_string(), "PIN".to_string()];
        let shown = table(&reports, true, &names);
        let notes: Vec<&str> = shown
            .lines()
            .filter(|l| l.contains("not redacted"))
            .collect();
        assert_eq!(notes, ["not redacted: too short to find safely: FLAG, PIN"]);
        assert_eq!(shown.lines().last(), Some(notes[0]));
    }
}

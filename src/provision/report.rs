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

/// A part of the closing table a caller may mark (the binary colours them at a terminal);
/// the table's text is the same whatever the marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// A host's result when every state applied.
    Ok,
    /// A host's result when states failed or the run stopped.
    Failed,
    /// The heading over what a run did on a host.
    Heading,
}

/// The closing table: host, result, changed states, time, and under a host whose states
/// failed what they reported; with `steps`, each host's time by step; then, once, the
/// secrets `unredacted` from Salt's output, by name.
pub fn table(reports: &[HostReport], steps: bool, unredacted: &[String]) -> String {
    marked_table(reports, steps, unredacted, &|_, text| text.to_string())
}

/// [`table`], with each [`Part`] passed through `mark` (which must keep its text as it
/// is: columns are measured on the plain text).
pub fn marked_table(
    reports: &[HostReport],
    steps: bool,
    unredacted: &[String],
    mark: &dyn Fn(Part, &str) -> String,
) -> String {
    headed_table("host", reports, steps, unredacted, mark)
}

/// [`marked_table`] whose first column is headed `first` (`minion`, for a run through
/// a master).
pub fn headed_table(
    first: &str,
    reports: &[HostReport],
    steps: bool,
    unredacted: &[String],
    mark: &dyn Fn(Part, &str) -> String,
) -> String {
    let rows: Vec<Row> = reports.iter().map(Row::of).collect();
    // Columns as wide as their longest cell, so a long result keeps the rest in line.
    let host_width = column_width(30, rows.iter().map(|r| r.host));
    let result_width = column_width(31, rows.iter().map(|r| r.result.as_str()));
    let mut table = format!(
        "\n{}{}{:>7}  time\n",
        pad(first, host_width),
        pad("result", result_width),
        "changed"
    );
    for (r, row) in reports.iter().zip(&rows) {
        let result = mark(row.part, &row.result);
        let gap = " ".repeat(result_width - width(&row.result));
        table.push_str(&format!(
            "{}{result}{gap}{:>7}  {:.1}s\n",
            pad(row.host, host_width),
            row.changed,
            r.seconds
        ));
        if let Ok(a) = &r.result {
            for line in &a.details {
                table.push_str(&format!("  {line}\n"));
            }
        }
    }
    for r in reports {
        if let Ok(a) = &r.result {
            table.push_str(&did(&r.target, &a.did, mark));
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

/// One host's row of the table, as plain text.
struct Row<'r> {
    host: &'r str,
    result: String,
    part: Part,
    changed: String,
}

impl<'r> Row<'r> {
    fn of(r: &'r HostReport) -> Row<'r> {
        let (result, part, changed) = match &r.result {
            Ok(a) if a.failed.is_empty() => ("ok".to_string(), Part::Ok, a.changed.to_string()),
            Ok(a) => (
                format!("failed: {}", a.failed.join(", ")),
                Part::Failed,
                a.changed.to_string(),
            ),
            Err(e) => (format!("error: {e}"), Part::Failed, "-".to_string()),
        };
        Row {
            host: &r.target,
            result,
            part,
            changed,
        }
    }
}

/// How wide text shows, in characters (not bytes).
fn width(text: &str) -> usize {
    text.chars().count()
}

/// A column's width: at least `least`, and two more than its widest cell.
fn column_width<'a>(least: usize, cells: impl Iterator<Item = &'a str>) -> usize {
    cells.map(|c| width(c) + 2).fold(least, usize::max)
}

/// `text` and spaces up to `columns` characters.
fn pad(text: &str, columns: usize) -> String {
    format!("{text}{}", " ".repeat(columns.saturating_sub(width(text))))
}

/// What a run did on `host`, a line each (the first [`DID_SHOWN`]), under a heading;
/// nothing when it changed nothing.
fn did(host: &str, did: &[String], mark: &dyn Fn(Part, &str) -> String) -> String {
    if did.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{}\n",
        mark(Part::Heading, &format!("{host} on the server:"))
    );
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

impl Failure {
    /// As an error of the whole command, with its hint.
    pub fn into_error(self) -> crate::error::Error {
        let e = crate::error::Error::new(self.message);
        match self.hint {
            Some(h) => e.with_hint(h),
            None => e,
        }
    }
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
    fn the_columns_stay_in_line_whatever_a_result_says() {
        let report = |target: &str, result| HostReport {
            target: target.into(),
            result,
            hint: None,
            seconds: 12.5,
            steps: vec![],
        };
        let failed = |states: &[&str]| Applied {
            changed: 2,
            failed: states.iter().map(|s| s.to_string()).collect(),
            details: vec!["a state's own line".into()],
            did: vec![],
        };
        let reports = [
            report("web1", Ok(Applied::default())),
            report(
                "deploy@a-rather-long-host-name.example.org:2222",
                Ok(failed(&[
                    "gunicorn_restart",
                    "gunicorn_health",
                    "app_migrate",
                ])),
            ),
            // Characters, not bytes: "é" and "→" are two and three bytes wide.
            report(
                "café",
                Err(
                    "cannot reach café → ssh: connect to host café port 22: Connection refused"
                        .into(),
                ),
            ),
        ];
        // Marks that add bytes (as colours do) move nothing either.
        let marked = marked_table(&reports, false, &[], &|_, t| format!("\x1b[31m{t}\x1b[0m"));
        for shown in [table(&reports, false, &[]), marked] {
            let plain = shown.replace("\x1b[31m", "").replace("\x1b[0m", "");
            let rows: Vec<&str> = plain
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with("  "))
                .collect();
            assert_eq!(rows.len(), 4, "{plain}");
            // Where each column starts on the heading, every row has it too.
            let at = |row: &str, word: &str| row.find(word).map(|i| row[..i].chars().count());
            let result_at = at(rows[0], "result").unwrap();
            let end = rows[0].chars().count();
            for row in &rows[1..] {
                let host_end = row.find(' ').unwrap();
                assert!(row[..host_end].chars().count() < result_at, "{plain}");
                assert_eq!(
                    row.chars().nth(result_at - 1),
                    Some(' '),
                    "the result starts in its column: {plain}"
                );
                assert!(
                    row.chars().skip(result_at).take(2).all(|c| c != ' '),
                    "{plain}"
                );
                // The time ends one column further than "time": "12.5s".
                assert_eq!(row.chars().count(), end + 1, "{plain}");
            }
            assert!(rows[1].ends_with("0  12.5s") && rows[2].ends_with("2  12.5s"));
            assert!(rows[3].ends_with("-  12.5s"), "{plain}");
            assert!(rows[2].contains("failed: gunicorn_restart, gunicorn_health, app_migrate"));
        }
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

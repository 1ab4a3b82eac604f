//! Deploy freshness: a server never goes back to an older secrets version. Each server
//! keeps, root-only under its root, a record of the version it last applied (its
//! manifest's id and serial); this run's version must be that one or descend from it,
//! which the verified manifest's parents tell, followed through the versions in git
//! (each named by the hash of its text, so nothing the server says but the record
//! counts). A version the record's descends from is refused; one on another branch needs
//! `--allow-older`. The record is read by rsync's remote end (see `remote`), judged here,
//! and replaced by the apply script only after Salt succeeded, if unchanged meanwhile.

use crate::manifest::Manifest;
use std::collections::{HashMap, HashSet, VecDeque};

/// How many of this version's ancestors rsync's remote end is given to let through by
/// itself (a record naming any other is judged here, and what may go ahead costs a second
/// copy): the list is part of one command line argument, which must stay well under
/// Linux's 128 KiB.
const GUARD_LIMIT: usize = 500;

/// A secrets version, as a server's record names it: its manifest's id and serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub serial: u64,
}

impl Version {
    /// How a message names it: serial and short hash.
    pub fn label(&self) -> String {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        format!("serial {} ({})", self.serial, &hex[..hex.len().min(12)])
    }

    /// The record's one line, as the server keeps it.
    pub fn record_line(&self) -> String {
        format!("{} {}", self.id, self.serial)
    }
}

/// What a server's record said, as its remote end printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The state exactly as printed (`none`, or `=` and the record's text made safe to
    /// show): what the apply script compares against before it writes a new one.
    pub state: String,
    pub seen: Seen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No record: a server never provisioned by a vault that keeps one.
    Nothing,
    Applied(Version),
    /// Something vault never writes there, as shown.
    Garbled(String),
}

impl Record {
    /// Reads the state the remote end printed after [`remote::APPLIED`].
    pub fn parse(state: &str) -> Record {
        let seen = match state.strip_prefix('=') {
            None if state == "none" => Seen::Nothing,
            None => Seen::Garbled(state.to_string()),
            Some(text) => match parse_line(text) {
                Some(v) => Seen::Applied(v),
                None => Seen::Garbled(text.to_string()),
            },
        };
        Record {
            state: state.to_string(),
            seen,
        }
    }
}

/// `sha256:<64 hex> <serial>`, as [`Version::record_line`] writes it.
fn parse_line(text: &str) -> Option<Version> {
    let (id, serial) = text.split_once(' ')?;
    let hex = id.strip_prefix("sha256:")?;
    let hex_ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let serial_ok = !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit());
    if !(hex_ok && serial_ok) {
        return None;
    }
    Some(Version {
        id: id.to_string(),
        serial: serial.parse().ok()?,
    })
}

/// This run's version and what it descends from, settled before anything connects.
#[derive(Debug, Default)]
pub struct Lineage {
    /// This run's version (None: not verified, read under --insecure-skip-verify).
    pub current: Option<Version>,
    /// The ids of every version it descends from, nearest first.
    ancestors: Vec<String>,
    /// Every version in this checkout's git, by id: its serial and parents.
    versions: HashMap<String, (u64, Vec<String>)>,
}

/// Where this run's version stands against a server's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// No record yet.
    First,
    Same,
    /// This version descends from the applied one.
    Ahead,
    /// The applied one descends from this version: going back.
    Older(Version),
    /// Neither descends from the other, or the applied one is not in this checkout's
    /// history (`known` says which).
    OtherBranch {
        applied: Version,
        known: bool,
    },
    /// The applied version is in this checkout's history, but its ancestry is not
    /// whole there (a version between is in no commit, as two `vault set`s before one
    /// commit leave it), and this version's serial is lower: it may be an ancestor.
    Undecided(Version),
    /// The record is not one vault wrote, or names a version with another serial.
    Garbled(String),
    /// This version is not verified: nothing to compare with a record.
    Unverified,
}

impl Lineage {
    /// The lineage of `current` (the verified manifest of what is shipped), its ancestors
    /// found among `versions` (every manifest in git, by id).
    pub fn new(current: Option<&Manifest>, versions: HashMap<String, Manifest>) -> Lineage {
        Lineage::remembering(current, versions, HashMap::new())
    }

    /// [`Lineage::new`], with the versions this machine verified (`remembered`: serial and
    /// parents by id) filling in those git does not hold, such as uncommitted writes.
    pub fn remembering(
        current: Option<&Manifest>,
        versions: HashMap<String, Manifest>,
        remembered: HashMap<String, (u64, Vec<String>)>,
    ) -> Lineage {
        let mut versions: HashMap<String, (u64, Vec<String>)> = versions
            .into_iter()
            .map(|(id, m)| (id, (m.serial, m.parents)))
            .collect();
        for (id, known) in remembered {
            versions.entry(id).or_insert(known);
        }
        let Some(m) = current else {
            return Lineage {
                versions,
                ..Lineage::default()
            };
        };
        let ancestors = ancestors(&m.parents, &versions);
        Lineage {
            current: Some(Version {
                id: m.id(),
                serial: m.serial,
            }),
            ancestors,
            versions,
        }
    }

    /// The ids rsync's remote end lets through by itself: this version and its nearest
    /// ancestors.
    pub fn guard_ids(&self) -> Vec<&str> {
        let own = self.current.iter().map(|v| v.id.as_str());
        own.chain(self.ancestors.iter().map(String::as_str))
            .take(GUARD_LIMIT)
            .collect()
    }

    /// Where this version stands against what `record` says the server runs.
    pub fn finding(&self, record: &Record) -> Finding {
        let applied = match &record.seen {
            Seen::Nothing => return Finding::First,
            Seen::Garbled(text) => return Finding::Garbled(format!("\"{text}\"")),
            Seen::Applied(v) => v,
        };
        if let Some((serial, _)) = self.versions.get(&applied.id) {
            if *serial != applied.serial {
                return Finding::Garbled(format!(
                    "it says {}, but that version's serial is {serial}",
                    applied.label()
                ));
            }
        }
        let Some(current) = &self.current else {
            return Finding::Unverified;
        };
        if current.id == applied.id {
            return match current.serial == applied.serial {
                true => Finding::Same,
                false => Finding::Garbled(format!(
                    "it says {}, but that version's serial is {}",
                    applied.label(),
                    current.serial
                )),
            };
        }
        if self.ancestors.contains(&applied.id) {
            return Finding::Ahead;
        }
        let known = self.versions.get(&applied.id);
        if let Some((_, parents)) = known {
            let up = ancestors(parents, &self.versions);
            if up.contains(&current.id) {
                return Finding::Older(applied.clone());
            }
            // A child's serial is above its parents': only a lower one can be an
            // ancestor hidden behind a version git does not hold.
            let gap = up.iter().any(|id| !self.versions.contains_key(id));
            if gap && current.serial < applied.serial {
                return Finding::Undecided(applied.clone());
            }
        }
        Finding::OtherBranch {
            applied: applied.clone(),
            known: known.is_some(),
        }
    }
}

/// The ids `parents` name and, through `versions`, all theirs, nearest first. A parent
/// missing from `versions` is still named (its child names it by its hash).
fn ancestors(parents: &[String], versions: &HashMap<String, (u64, Vec<String>)>) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut order = Vec::new();
    let mut queue: VecDeque<&str> = parents.iter().map(String::as_str).collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        order.push(id.to_string());
        if let Some((_, up)) = versions.get(id) {
            queue.extend(up.iter().map(String::as_str));
        }
    }
    order
}

/// The one line (and hint) for a finding a run refuses, or the note for one it goes
/// ahead with but shows.
pub struct Verdict {
    pub refused: bool,
    pub message: String,
    pub hint: Option<String>,
}

/// What a run does with `finding` on `host`: `allow_older` lets another branch's version
/// (or an unreadable record) through; `path` is the record on the server.
pub fn verdict(
    finding: &Finding,
    current: Option<&Version>,
    (env, host): (&str, &str),
    allow_older: bool,
    path: &str,
) -> Option<Verdict> {
    let ours = current.map_or("an unverified version".to_string(), Version::label);
    let refuse = |message: String, hint: String| Verdict {
        refused: true,
        message,
        hint: Some(hint),
    };
    let note = |message: String| Verdict {
        refused: false,
        message,
        hint: None,
    };
    match finding {
        Finding::First | Finding::Same | Finding::Ahead => None,
        Finding::Older(applied) => Some(refuse(
            format!(
                "{host} runs {env} {}, which follows {ours} here: refusing to go back to an older version",
                applied.label()
            ),
            format!(
                "`git pull` to provision the newest; to bring back old values, write them as a new version (`vault set {env} NAME`, or `vault edit {env}`), then `vault provision {env}`"
            ),
        )),
        Finding::Undecided(applied) => Some(refuse(
            format!(
                "{host} runs {env} {}, whose history here is not whole (a version before it is in no commit): {ours} may be older, refusing to go back",
                applied.label()
            ),
            format!(
                "`git pull` and merge to get the version the server runs (a version that follows it goes ahead), or write the values as a new version on top of it (`vault set {env} NAME`)"
            ),
        )),
        Finding::OtherBranch { applied, known } => {
            let why = match known {
                true => "another branch: neither follows the other",
                false => "a version this checkout's history does not hold",
            };
            let message = format!(
                "{host} runs {env} {}, which {ours} here does not follow ({why})",
                applied.label()
            );
            match allow_older {
                true => Some(note(format!("{message}; applying it anyway (--allow-older)"))),
                false => Some(refuse(
                    message,
                    "`git pull` and merge to get the version the server runs, then provision again; --allow-older applies this one over it".to_string(),
                )),
            }
        }
        Finding::Garbled(what) => {
            let message = format!(
                "{host}: the record of the {env} version it runs ({path}) is not one vault wrote: {what}"
            );
            match allow_older {
                true => Some(note(format!("{message}; replacing it (--allow-older)"))),
                false => Some(refuse(
                    message,
                    format!("look at {path} as root on the server (only vault writes it); --allow-older replaces it with this version"),
                )),
            }
        }
        Finding::Unverified => {
            let message = format!(
                "{ours} of {env} cannot be compared with the version {host} runs"
            );
            match allow_older {
                true => Some(note(format!("{message}; applying it anyway (--allow-older), the server's record kept"))),
                false => Some(refuse(
                    message,
                    "provision a verified version; --allow-older applies this one anyway".into(),
                )),
            }
        }
    }
}

/// What a dry run says of `finding`: where this version stands, and what a real run
/// would do.
pub fn dry_run_note(finding: &Finding, current: Option<&Version>, env: &str) -> String {
    let ours = current.map_or("an unverified version".to_string(), Version::label);
    let stands = match finding {
        Finding::First => "the server has no record of an applied version: a real run would record this one".into(),
        Finding::Same => "the server runs this version already".into(),
        Finding::Ahead => "ahead of the version the server runs: a real run would go ahead".into(),
        Finding::Older(v) => format!("older than the version the server runs, {}: a real run would refuse", v.label()),
        Finding::OtherBranch { applied, .. } => format!(
            "on another branch than the version the server runs, {}: a real run would need --allow-older",
            applied.label()
        ),
        Finding::Undecided(v) => format!("maybe older than the version the server runs, {}, whose history here is not whole: a real run would refuse", v.label()),
        Finding::Garbled(what) => format!("the server's record is not one vault wrote ({what}): a real run would refuse"),
        Finding::Unverified => "not verified: a real run would need --allow-older".into(),
    };
    format!("dry run: {env} {ours}: {stands}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(serial: u64, parents: &[&Manifest]) -> Manifest {
        Manifest {
            environment: "staging".into(),
            serial,
            parents: parents.iter().map(|p| p.id()).collect(),
            ciphertext: format!("sha256:{serial:064}"),
            ..Manifest::default()
        }
    }

    fn record(m: &Manifest) -> Record {
        Record::parse(&format!("={} {}", m.id(), m.serial))
    }

    #[test]
    fn a_version_is_judged_by_its_parents_through_git() {
        // v1 <- v2 <- v3 on one branch, v2 <- b3 on another.
        let v1 = manifest(1, &[]);
        let v2 = manifest(2, &[&v1]);
        let v3 = manifest(3, &[&v2]);
        let b3 = Manifest {
            ciphertext: "sha256:b".into(),
            ..manifest(3, &[&v2])
        };
        let git: HashMap<String, Manifest> = [&v1, &v2, &v3, &b3]
            .into_iter()
            .map(|m| (m.id(), m.clone()))
            .collect();
        let at = |m: &Manifest| Lineage::new(Some(m), git.clone());
        assert_eq!(at(&v3).finding(&record(&v1)), Finding::Ahead);
        assert_eq!(at(&v3).finding(&record(&v3)), Finding::Same);
        assert_eq!(
            at(&v1).finding(&record(&v3)),
            Finding::Older(Version {
                id: v3.id(),
                serial: 3
            })
        );
        assert!(matches!(
            at(&b3).finding(&record(&v3)),
            Finding::OtherBranch { known: true, .. }
        ));
        // Outside git, only a direct parent is known.
        let alone = Lineage::new(Some(&v3), HashMap::new());
        assert_eq!(alone.finding(&record(&v2)), Finding::Ahead);
        assert!(matches!(
            alone.finding(&record(&v1)),
            Finding::OtherBranch { known: false, .. }
        ));
        assert_eq!(at(&v3).guard_ids(), [v3.id(), v2.id(), v1.id()]);
    }

    #[test]
    fn a_version_behind_one_git_does_not_hold_may_be_older() {
        // v1 <- v2 <- v3, v2 in no commit; b2 a branch of v1 with a serial past v3's.
        let v1 = manifest(1, &[]);
        let v2 = manifest(2, &[&v1]);
        let v3 = manifest(3, &[&v2]);
        let b4 = Manifest {
            ciphertext: "sha256:b".into(),
            ..manifest(4, &[&v1])
        };
        let git: HashMap<String, Manifest> = [&v1, &v3, &b4]
            .into_iter()
            .map(|m| (m.id(), m.clone()))
            .collect();
        let at = |m: &Manifest| Lineage::new(Some(m), git.clone());
        let finding = at(&v1).finding(&record(&v3));
        assert!(matches!(finding, Finding::Undecided(_)), "{finding:?}");
        let v = verdict(
            &finding,
            at(&v1).current.as_ref(),
            ("staging", "web1"),
            true,
            "r",
        )
        .unwrap();
        assert!(v.refused, "--allow-older does not let it go back");
        // A higher serial cannot be an ancestor: another branch, as before.
        assert!(matches!(
            at(&b4).finding(&record(&v3)),
            Finding::OtherBranch { known: true, .. }
        ));
    }

    #[test]
    fn a_record_vault_did_not_write_is_garbled() {
        let v1 = manifest(1, &[]);
        let lineage = Lineage::new(Some(&v1), HashMap::new());
        assert_eq!(lineage.finding(&Record::parse("none")), Finding::First);
        for state in [
            "=",
            "=garbage",
            "=sha256:abc 1",
            "link",
            &format!("={} x", v1.id()),
        ] {
            assert!(
                matches!(lineage.finding(&Record::parse(state)), Finding::Garbled(_)),
                "{state}"
            );
        }
        // Its own id with another serial.
        let wrong = Record::parse(&format!("={} 9", v1.id()));
        assert!(matches!(lineage.finding(&wrong), Finding::Garbled(_)));
        let v = verdict(
            &lineage.finding(&wrong),
            lineage.current.as_ref(),
            ("staging", "web1"),
            false,
            "/r",
        );
        assert!(v.is_some_and(|v| v.refused && v.message.contains("/r")));
    }
}

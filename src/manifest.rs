//! The signed sidecar `secrets.sls.age.sig`: a manifest of who wrote an environment's
//! secrets and to whom they are encrypted, followed by the writer's SSH signature.
//!
//! ```text
//! vault manifest v2
//! project 5f0c...(32 hex digits)
//! environment staging
//! serial 7
//! parent sha256:<hex id of the manifest this one follows>   (none: founding; two: a merge)
//! ciphertext sha256:<hex of the .age file>
//! recipient alice SHA256:<fp> granted-by SHA256:<fp> 2026-11-25 3 <grant signature>
//! allow PYTHONPATH                                   (a controlling name allowed here)
//! secret DB_PASSWORD 2026-11-25
//! exposed DB_PASSWORD 2026-11-25 carol
//! -----BEGIN SSH SIGNATURE-----
//! ...
//! -----END SSH SIGNATURE-----
//! ```
//!
//! The signature covers every byte before its first line (SSHSIG, namespace `vault`), so
//! `ssh-keygen -Y verify -n vault` checks it. A manifest's id is the SHA-256 of those
//! bytes; its children name it as their parent, so the versions of an environment form
//! a chain, as git commits do. Each roster entry carries the serial of the manifest that
//! let it in, and its grant signs the project and that serial: an old grant line cannot
//! re-admit a key that left the roster after it. Version 1 (no project, parents or grant serials)
//! is still read, for files written by an older vault. No line ever holds a secret value.

use crate::project_id::ProjectId;
use sha2::{Digest, Sha256};
use std::fmt::Write;

const HEADER_V1: &str = "vault manifest v1";
const HEADER_V2: &str = "vault manifest v2";
pub const SIGNATURE_START: &str = "-----BEGIN SSH SIGNATURE-----";

/// Which of a manifest's single lines have been read.
#[derive(Default)]
struct Seen {
    env: bool,
    serial: bool,
    ciphertext: bool,
}

/// The largest sidecar accepted, in bytes.
pub const MAX_SIDECAR_BYTES: usize = 1 << 20;

/// One key allowed to read the environment, and the grant that let it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub member: String,
    pub fingerprint: String,
    /// Fingerprint of the member who granted this key (itself, for a founder).
    pub granted_by: String,
    pub date: String,
    /// The serial of the manifest that let this key in (None in a version 1 manifest).
    pub serial: Option<u64>,
    /// The granter's SSHSIG over [`grant_message`], one line of base64.
    pub grant: String,
}

/// A secret that a departed member could read, until it is given a new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub name: String,
    pub since: String,
    pub member: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The project this manifest belongs to (None: version 1, written before identities).
    pub project: Option<ProjectId>,
    pub environment: String,
    pub serial: u64,
    /// The ids of the manifests this one follows: none for a founding, two for a merge.
    pub parents: Vec<String>,
    /// `sha256:<hex>` of the ciphertext file's bytes.
    pub ciphertext: String,
    pub roster: Vec<RosterEntry>,
    /// Controlling names (`PYTHONPATH`, ...) a member allowed as secrets of this
    /// environment (version 2 only; sorted, each once).
    pub allow: Vec<String>,
    /// Each secret's name and the date its value last changed.
    pub secrets: Vec<(String, String)>,
    pub exposed: Vec<Exposure>,
}

impl Manifest {
    /// The exact text that is signed.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match &self.project {
            Some(p) => {
                let _ = writeln!(out, "{HEADER_V2}\nproject {p}");
            }
            None => {
                let _ = writeln!(out, "{HEADER_V1}");
            }
        }
        let _ = writeln!(out, "environment {}", self.environment);
        let _ = writeln!(out, "serial {}", self.serial);
        for p in &self.parents {
            let _ = writeln!(out, "parent {p}");
        }
        let _ = writeln!(out, "ciphertext {}", self.ciphertext);
        for r in &self.roster {
            let serial = r.serial.map(|s| format!(" {s}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "recipient {} {} granted-by {} {}{serial} {}",
                r.member, r.fingerprint, r.granted_by, r.date, r.grant
            );
        }
        for name in &self.allow {
            let _ = writeln!(out, "allow {name}");
        }
        for (name, date) in &self.secrets {
            let _ = writeln!(out, "secret {name} {date}");
        }
        for e in &self.exposed {
            let _ = writeln!(out, "exposed {} {} {}", e.name, e.since, e.member);
        }
        out
    }

    /// Reads a manifest's text; the error is the reason, with the line.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        // Lines end in '\n' only: `lines()` would also drop a '\r', and then a manifest
        // would not render back to the bytes that were signed (found by fuzzing).
        let mut lines = text.split_terminator('\n').enumerate().peekable();
        let v2 = match lines.next().map(|(_, l)| l) {
            Some(HEADER_V1) => false,
            Some(HEADER_V2) => true,
            _ => return Err("not a vault manifest (line 1)".into()),
        };
        let mut m = Manifest::default();
        let mut seen = Seen::default();
        for (i, line) in lines {
            let n = i + 1;
            if line.chars().any(char::is_control) {
                return Err(format!("malformed line {n}: a control character"));
            }
            let words: Vec<&str> = line.split(' ').collect();
            m.read_line(&words, v2, &mut seen)
                .ok_or_else(|| format!("malformed line {n}"))?;
        }
        if !(seen.env && seen.serial && seen.ciphertext) || (v2 && m.project.is_none()) {
            return Err(
                "the manifest lacks its project, environment, serial or ciphertext line".into(),
            );
        }
        Ok(m)
    }

    /// One line of a manifest, in its place: None when it is malformed or out of order.
    fn read_line(&mut self, words: &[&str], v2: bool, seen: &mut Seen) -> Option<()> {
        match words {
            ["project", p] if v2 && !seen.env && self.project.is_none() => {
                self.project = Some(ProjectId::parse(p)?);
            }
            ["environment", e] if !seen.env => {
                self.environment = e.to_string();
                seen.env = true;
            }
            ["serial", s] if !seen.serial => {
                self.serial = s.parse().ok()?;
                seen.serial = true;
            }
            ["parent", p] if v2 && seen.serial && !seen.ciphertext && self.parents.len() < 2 => {
                self.parents.push(check_hash(p)?);
            }
            ["ciphertext", c] if !seen.ciphertext => {
                self.ciphertext = check_hash(c)?;
                seen.ciphertext = true;
            }
            ["recipient", member, fp, "granted-by", by, date, rest @ ..] => {
                let (serial, grant) = match (v2, rest) {
                    (false, [grant]) => (None, grant),
                    (true, [serial, grant]) => (Some(serial.parse().ok()?), grant),
                    _ => return None,
                };
                self.roster.push(RosterEntry {
                    member: member.to_string(),
                    fingerprint: fp.to_string(),
                    granted_by: by.to_string(),
                    date: check_date(date)?,
                    serial,
                    grant: grant.to_string(),
                })
            }
            ["allow", name] if v2 && self.secrets.is_empty() && self.exposed.is_empty() => {
                if self.allow.last().is_some_and(|last| last.as_str() >= *name) {
                    return None; // sorted, each once: the rendering is the signed text
                }
                self.allow.push(name.to_string())
            }
            ["secret", name, date] => self.secrets.push((name.to_string(), check_date(date)?)),
            ["exposed", name, since, member] => self.exposed.push(Exposure {
                name: name.to_string(),
                since: check_date(since)?,
                member: member.to_string(),
            }),
            _ => return None,
        }
        Some(())
    }

    /// This manifest's id: `sha256:<hex>` of the exact text that is signed.
    pub fn id(&self) -> String {
        hash(self.render().as_bytes())
    }

    pub fn secret_date(&self, name: &str) -> Option<&str> {
        self.secrets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_str())
    }
}

/// Splits a sidecar into the signed manifest text and the armored signature.
pub fn split(sidecar: &str) -> Result<(&str, &str), String> {
    let at = sidecar
        .find(&format!("\n{SIGNATURE_START}\n"))
        .ok_or_else(|| "it holds no SSH signature".to_string())?;
    Ok((&sidecar[..at + 1], &sidecar[at + 1..]))
}

/// Where a grant was made: the project, and the serial of the manifest that let the key
/// in (version 2); a version 1 grant named only the environment.
pub struct GrantPlace<'a> {
    pub project: &'a ProjectId,
    pub serial: u64,
}

/// What a grant signature covers.
pub fn grant_message(
    env: &str,
    member: &str,
    fingerprint: &str,
    date: &str,
    place: Option<&GrantPlace<'_>>,
) -> String {
    match place {
        None => format!(
            "vault grant v1\nenvironment {env}\nmember {member}\nkey {fingerprint}\ndate {date}\n"
        ),
        Some(p) => format!(
            "vault grant v2\nproject {}\nenvironment {env}\nmember {member}\nkey {fingerprint}\ndate {date}\nserial {}\n",
            p.project, p.serial
        ),
    }
}

/// `sha256:<hex>` of `bytes`: how ciphertexts and manifests are named.
pub fn hash(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn check_hash(h: &str) -> Option<String> {
    let hex = h.strip_prefix("sha256:")?;
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| h.to_string())
}

fn check_date(d: &str) -> Option<String> {
    let ok = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| d.to_string())
}

/// Today's date (UTC) as `YYYY-MM-DD`; `VAULT_TODAY` overrides it for tests of ageing.
pub fn today() -> String {
    if let Some(d) = std::env::var("VAULT_TODAY")
        .ok()
        .and_then(|d| check_date(&d))
    {
        return d;
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_from_days((secs / 86_400) as i64)
}

/// Days between two `YYYY-MM-DD` dates (`to - from`).
pub fn days_between(from: &str, to: &str) -> Option<i64> {
    Some(days_from_civil(to)? - days_from_civil(from)?)
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_from_civil(date: &str) -> Option<i64> {
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..10)?.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Manifest {
            project: None,
            parents: vec![],
            allow: vec![],
            environment: "staging".into(),
            serial: 3,
            ciphertext: format!("sha256:{}", "ab".repeat(32)),
            roster: vec![RosterEntry {
                member: "alice".into(),
                fingerprint: "SHA256:x".into(),
                granted_by: "SHA256:x".into(),
                date: "2026-11-25".into(),
                serial: None,
                grant: "U1NIU0lH".into(),
            }],
            secrets: vec![("A".into(), "2026-11-01".into())],
            exposed: vec![Exposure {
                name: "A".into(),
                since: "2026-11-20".into(),
                member: "bob".into(),
            }],
        };
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert!(Manifest::parse("vault manifest v1\nserial 1\n").is_err());
        assert!(Manifest::parse(&m.render().replace("serial 3", "serial x"))
            .unwrap_err()
            .contains("line 3"));
        assert!(Manifest::parse(&format!("{}bogus\n", m.render())).is_err());
    }

    #[test]
    fn version_2_names_its_project_parents_and_grant_serials() {
        let mut m = Manifest::parse(&format!(
            "vault manifest v1\nenvironment staging\nserial 3\nciphertext sha256:{}\n",
            "ab".repeat(32)
        ))
        .unwrap();
        m.project = ProjectId::parse(&"0f".repeat(16));
        m.parents = vec![format!("sha256:{}", "cd".repeat(32))];
        m.roster.push(RosterEntry {
            member: "alice".into(),
            fingerprint: "SHA256:x".into(),
            granted_by: "SHA256:x".into(),
            date: "2026-11-25".into(),
            serial: Some(3),
            grant: "U1NIU0lH".into(),
        });
        let text = m.render();
        assert!(
            text.starts_with("vault manifest v2\nproject 0f0f"),
            "{text}"
        );
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert_ne!(
            m.id(),
            Manifest::parse(&text.replace("serial 3", "serial 4"))
                .unwrap()
                .id()
        );
        // A v2 manifest without its project, or a grant without its serial, is refused.
        assert!(
            Manifest::parse(&text.replace(&format!("project {}\n", "0f".repeat(16)), "")).is_err()
        );
        assert!(Manifest::parse(&text.replace(" 2026-11-25 3 ", " 2026-11-25 ")).is_err());
        // A parent after the ciphertext line, or three parents, is out of place.
        let p = format!("parent sha256:{}\n", "cd".repeat(32));
        assert!(Manifest::parse(&format!("{text}{p}")).is_err());
        assert!(Manifest::parse(&text.replace(&p, &p.repeat(3))).is_err());
    }

    /// Found by `cargo fuzz run sidecar`: a '\r' before a line's end was dropped by the
    /// parser, so the manifest read was not the one signed.
    #[test]
    fn carriage_returns_are_refused() {
        let crash = include_bytes!("../tests/fixtures/fuzz/sidecar-cr-in-field");
        let text = String::from_utf8_lossy(crash);
        let signed = split(&text).map(|(m, _)| m).unwrap_or(&text);
        assert!(Manifest::parse(signed).is_err());
        let ok = "vault manifest v1\nenvironment staging\nserial 1\nciphertext sha256:".to_string()
            + &"ab".repeat(32)
            + "\n";
        assert!(Manifest::parse(&ok).is_ok());
        assert!(Manifest::parse(&ok.replace("staging\n", "staging\r\n")).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), "1970-01-01");
        assert_eq!(civil_from_days(20_417), "2025-11-25");
        assert_eq!(days_between("2026-02-27", "2026-03-01"), Some(2));
        assert_eq!(days_between("2024-02-28", "2024-03-01"), Some(2));
        assert_eq!(days_from_civil(&civil_from_days(12_345)), Some(12_345));
    }
}

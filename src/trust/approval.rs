//! A member's signed approval of what a provision uses: `conf/pillar/<env>/approval.sig`.
//!
//! ```text
//! vault approval v1
//! project 5f0c...(32 hex digits)
//! environment staging
//! serial 4
//! approver SHA256:<fingerprint>
//! date 2026-11-25
//! file conf/pillar/staging/env.sls sha256:<hex of its bytes>
//! file conf/salt/top.sls sha256:<hex>
//! link conf/salt/project/current sha256:<hex of the link's target>
//! host 127.0.0.1:2222
//! -----BEGIN SSH SIGNATURE-----
//! ...
//! -----END SSH SIGNATURE-----
//! ```
//!
//! Files and hosts are sorted and named once; the signature (SSHSIG, namespace
//! `vault-approval`) covers every byte before its first line. It verifies like the
//! secrets' chain: signed by the key it names as approver, that key trusted in the
//! environment's verified roster, for this project and this environment, and with a
//! serial this machine never saw go back.

use super::Verified;
use crate::keys::signing;
use crate::manifest::{self, SIGNATURE_START};
use crate::project_id::ProjectId;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const HEADER: &str = "vault approval v1";
/// Namespace of an approval's signature (`ssh-keygen -Y verify -n vault-approval`).
pub const NAMESPACE: &str = "vault-approval";
/// The largest approval file read, in bytes.
pub const MAX_APPROVAL_BYTES: usize = 1 << 22;

/// How one input is named: a file's bytes, or a symbolic link's target (rsync ships
/// links as links).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Digest {
    File(String),
    Link(String),
}

/// What a provision ships and where: each input's path (from the project root) and
/// digest, and the servers (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inputs {
    pub files: BTreeMap<String, Digest>,
    pub hosts: BTreeSet<String>,
}

/// One approval: who approved which inputs of which environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub project: ProjectId,
    pub environment: String,
    pub serial: u64,
    /// The approver's key fingerprint (`SHA256:...`).
    pub approver: String,
    pub date: String,
    pub inputs: Inputs,
}

impl Approval {
    /// The exact text that is signed.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{HEADER}\nproject {}\nenvironment {}\nserial {}\napprover {}\ndate {}\n",
            self.project, self.environment, self.serial, self.approver, self.date
        );
        for (path, digest) in &self.inputs.files {
            let _ = match digest {
                Digest::File(h) => writeln!(out, "file {path} {h}"),
                Digest::Link(h) => writeln!(out, "link {path} {h}"),
            };
        }
        for h in &self.inputs.hosts {
            let _ = writeln!(out, "host {h}");
        }
        out
    }

    /// Reads an approval's text: it must be in the form [`render`](Self::render) writes,
    /// byte for byte (sorted, each input once), so what is read is what was signed.
    pub fn parse(text: &str) -> Result<Approval, String> {
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(HEADER) {
            return Err("not a vault approval (line 1)".into());
        }
        let mut field = |name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(String::from)
                .ok_or_else(|| format!("no `{name}` line in its place"))
        };
        let project = ProjectId::parse(&field("project")?).ok_or("a malformed project line")?;
        let environment = field("environment")?;
        let serial = field("serial")?.parse().map_err(|_| "a malformed serial")?;
        let approver = field("approver")?;
        let date = field("date")?;
        let mut inputs = Inputs::default();
        for line in lines {
            read_input(line, &mut inputs).ok_or_else(|| format!("a malformed line: {line:?}"))?;
        }
        let a = Approval {
            project,
            environment,
            serial,
            approver,
            date,
            inputs,
        };
        if a.render() != text {
            return Err("it is not in canonical form (unsorted, repeated or stray lines)".into());
        }
        Ok(a)
    }
}

/// One `file`, `link` or `host` line.
fn read_input(line: &str, inputs: &mut Inputs) -> Option<()> {
    if line.chars().any(char::is_control) {
        return None;
    }
    if let Some(h) = line.strip_prefix("host ") {
        if h.is_empty() || h.contains(' ') {
            return None;
        }
        inputs.hosts.insert(h.into());
        return Some(());
    }
    let (kind, rest) = line.split_once(' ')?;
    let (path, hash) = rest.rsplit_once(' ')?;
    let hash = hash.strip_prefix("sha256:")?;
    let hex_ok = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex_ok
        || !(path.starts_with("conf/") || path.starts_with("state_trees/"))
        || path.split('/').any(|c| c.is_empty() || c == "..")
    {
        return None;
    }
    let digest = match kind {
        "file" => Digest::File(format!("sha256:{hash}")),
        "link" => Digest::Link(format!("sha256:{hash}")),
        _ => return None,
    };
    inputs.files.insert(path.into(), digest);
    Some(())
}

/// An approval checked: its signature, its approver, its place, its freshness.
pub struct Checked {
    pub approval: Approval,
    /// The approver's member name in the roster.
    pub member: String,
}

/// Checks an approval file's bytes for `project`'s `env`, against `secrets` (the
/// environment's verified sidecar: its trusted roster says who may approve) and the
/// highest approval serial this machine has seen (`seen_serial`).
pub fn verify(
    bytes: &[u8],
    project: &ProjectId,
    env: &str,
    secrets: &Verified,
    seen_serial: Option<u64>,
) -> Result<Checked, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not text")?;
    let at = text
        .find(&format!("\n{SIGNATURE_START}\n"))
        .ok_or("it holds no SSH signature")?;
    let (signed, armored) = (&text[..at + 1], &text[at + 1..]);
    let sig =
        ssh_key::SshSig::from_pem(armored.trim_end()).map_err(|_| "its signature is malformed")?;
    let signer = signing::verify(NAMESPACE, signed.as_bytes(), &sig)
        .map_err(|_| "its signature does not match it (forged or altered)")?;
    let a = Approval::parse(signed).map_err(|why| format!("it is malformed: {why}"))?;
    if a.approver != signer {
        return Err(format!(
            "it names {} as approver but is signed by {signer}",
            a.approver
        ));
    }
    if a.project != *project {
        return Err(format!(
            "it approves another project's inputs ({}), not this one's ({project})",
            a.project
        ));
    }
    if a.environment != env {
        return Err(format!(
            "it approves environment '{}', not '{env}' (copied from another environment?)",
            a.environment
        ));
    }
    let member = secrets
        .manifest
        .roster
        .iter()
        .find(|r| r.fingerprint == signer && secrets.trusted.contains(&signer))
        .map(|r| r.member.clone())
        .ok_or_else(|| {
            format!(
                "it is signed by {signer}, who is not a trusted member of {env}'s signed roster"
            )
        })?;
    if let Some(seen) = seen_serial.filter(|s| a.serial < *s) {
        return Err(format!(
            "its serial {} is older than serial {seen}, already seen on this machine (an old approval put back)",
            a.serial
        ));
    }
    Ok(Checked {
        approval: a,
        member,
    })
}

/// Signs `approval` with `signer`: the approval file's bytes.
pub fn sign(approval: &Approval, signer: &mut signing::Signer) -> crate::error::Result<String> {
    let text = approval.render();
    let sig = signer.sign(NAMESPACE, text.as_bytes())?;
    let pem = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| crate::error::Error::new(format!("cannot encode the signature: {e}")))?;
    Ok(format!("{text}{pem}"))
}

/// `sha256:<hex>` of `bytes`, as inputs are named.
pub fn digest(bytes: &[u8]) -> String {
    manifest::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Approval {
        let mut inputs = Inputs::default();
        let h = format!("sha256:{}", "ab".repeat(32));
        inputs
            .files
            .insert("conf/salt/top.sls".into(), Digest::File(h.clone()));
        inputs
            .files
            .insert("conf/salt/with space.sls".into(), Digest::Link(h));
        inputs.hosts.insert("127.0.0.1:22".into());
        Approval {
            project: ProjectId::parse(&"0f".repeat(16)).unwrap(),
            environment: "staging".into(),
            serial: 2,
            approver: "SHA256:x".into(),
            date: "2026-11-25".into(),
            inputs,
        }
    }

    #[test]
    fn round_trip_and_canonical_form() {
        let a = sample();
        let text = a.render();
        assert_eq!(Approval::parse(&text).unwrap(), a);
        // A line repeated, out of order, or with a path leaving conf/, is refused.
        let host = "host 127.0.0.1:22\n";
        assert!(Approval::parse(&format!("{text}{host}")).is_err());
        let swapped = text
            .replace("date 2026-11-25\n", "")
            .replace(host, "date 2026-11-25\nhost 127.0.0.1:22\n");
        assert!(Approval::parse(&swapped).is_err());
        assert!(Approval::parse(&text.replace("conf/salt/top.sls", "conf/../x")).is_err());
        assert!(Approval::parse(&text.replace("conf/salt/top.sls", "/etc/x")).is_err());
        assert!(Approval::parse(&text.replace("serial 2", "serial x")).is_err());
    }
}

//! Whether an environment's secrets are authentic and fresh, decided before they are
//! decrypted: the sidecar's signature, its match with the ciphertext and environment, the
//! signer's membership and grant chain, and the serial against what this machine has seen.

use crate::error::{Error, Result};
use crate::keys::recipients::Member;
use crate::keys::signing;
use crate::manifest::{self, Manifest};
use crate::project::{EnvName, Project};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `sha256:<hex>` of a ciphertext.
pub fn ciphertext_hash(ciphertext: &[u8]) -> String {
    let digest = Sha256::digest(ciphertext);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A sidecar that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// The signer's fingerprint and member name.
    pub signer: String,
    pub signer_member: String,
    /// Fingerprints of the roster traced to trusted members.
    pub trusted: BTreeSet<String>,
}

/// The highest serial and the trusted roster this machine has seen for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEnv {
    pub serial: u64,
    pub roster: BTreeSet<String>,
}

/// Checks a sidecar against its ciphertext. `anchors` are the fingerprints trusted
/// already (what this machine saw, or the previous version in git); without them the
/// roster is trusted on first use from its founders.
pub fn verify(
    env: &EnvName,
    ciphertext: &[u8],
    sidecar: Option<&[u8]>,
    folder: &[Member],
    anchors: Option<&SeenEnv>,
) -> std::result::Result<Verified, String> {
    let sidecar = sidecar.ok_or("unsigned: the signature file secrets.sls.age.sig is missing")?;
    let text = std::str::from_utf8(sidecar).map_err(|_| "the signature file is not text")?;
    let (signed, armored) =
        manifest::split(text).map_err(|why| format!("the signature file is malformed: {why}"))?;
    let sig =
        ssh_key::SshSig::from_pem(armored.trim_end()).map_err(|_| "the signature is malformed")?;
    let signer = signing::verify(signing::NAMESPACE, signed.as_bytes(), &sig)
        .map_err(|_| "the signature does not match the manifest (forged or altered)")?;
    let m = Manifest::parse(signed).map_err(|why| format!("the manifest is malformed: {why}"))?;
    if m.environment != env.as_str() {
        return Err(format!(
            "the file is signed for environment '{}', not '{env}' (swapped files?)",
            m.environment
        ));
    }
    if m.ciphertext != ciphertext_hash(ciphertext) {
        return Err("the signature is for another ciphertext: secrets.sls.age was replaced or altered after it was signed".into());
    }
    let in_folder = |fp: &str| {
        folder
            .iter()
            .find(|mem| mem.keys.iter().any(|k| k.fingerprint() == fp))
    };
    let Some(member) = in_folder(&signer) else {
        return Err(format!(
            "signed by {signer}, who is not a member of {env} (no key in recipients/{env}/)"
        ));
    };
    let trusted = trusted_roster(&m, anchors)?;
    if !m.roster.iter().any(|r| r.fingerprint == signer) {
        return Err(format!(
            "signed by {} ({signer}), whose key was never granted in {env}",
            member.name
        ));
    }
    if !trusted.contains(&signer) {
        return Err(format!(
            "signed by {} ({signer}), whose grant does not trace back to a member this machine trusts",
            member.name
        ));
    }
    if let Some(seen) = anchors {
        // An older version is what another git branch holds, and is read. It is a
        // rollback when it lets in a key this machine has seen leave the roster.
        let readmitted: Vec<&str> = m
            .roster
            .iter()
            .filter(|r| !seen.roster.contains(&r.fingerprint))
            .map(|r| r.member.as_str())
            .collect();
        if m.serial < seen.serial && !readmitted.is_empty() {
            return Err(format!(
                "rollback: serial {} is older than serial {} already seen for {env}, and lets in {}, removed since",
                m.serial,
                seen.serial,
                readmitted.join(", ")
            ));
        }
    }
    Ok(Verified {
        manifest: m,
        signer,
        signer_member: member.name.clone(),
        trusted,
    })
}

/// The roster entries whose grants trace back to `anchors` (or, on first use, to the
/// founding writer, whose grant is its own). Grants are checked only as the chain
/// reaches them, so a roster this machine already trusts costs no verification.
pub fn trusted_roster(
    m: &Manifest,
    anchors: Option<&SeenEnv>,
) -> std::result::Result<BTreeSet<String>, String> {
    let grant_ok = |r: &manifest::RosterEntry| -> std::result::Result<(), String> {
        let msg = manifest::grant_message(&m.environment, &r.member, &r.fingerprint, &r.date);
        let sig = signing::from_line(&r.grant)
            .map_err(|_| format!("the grant of {} is malformed", r.member))?;
        let by = signing::verify(signing::GRANT_NAMESPACE, msg.as_bytes(), &sig)
            .map_err(|_| format!("the grant of {} is not validly signed", r.member))?;
        if by != r.granted_by {
            return Err(format!(
                "the grant of {} is signed by another key than it names",
                r.member
            ));
        }
        Ok(())
    };
    let mut trusted: BTreeSet<String> = BTreeSet::new();
    match anchors {
        Some(seen) => trusted.extend(
            m.roster
                .iter()
                .filter(|r| seen.roster.contains(&r.fingerprint))
                .map(|r| r.fingerprint.clone()),
        ),
        None => {
            for r in m.roster.iter().filter(|r| r.granted_by == r.fingerprint) {
                grant_ok(r)?;
                trusted.insert(r.fingerprint.clone());
            }
        }
    }
    loop {
        let mut grew = false;
        for r in &m.roster {
            if !trusted.contains(&r.fingerprint) && trusted.contains(&r.granted_by) {
                grant_ok(r)?;
                trusted.insert(r.fingerprint.clone());
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    Ok(trusted)
}

/// This machine's vault state folder: `$XDG_STATE_HOME/vault` (or `~/.local/state/vault`).
pub fn state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|b| b.join("vault"))
}

/// What this machine has seen, per project: `$XDG_STATE_HOME/vault/` (or `~/.local/state/vault/`).
pub struct SeenStore {
    path: Option<PathBuf>,
    data: serde_json::Map<String, serde_json::Value>,
}

impl SeenStore {
    pub fn load(project: &Project) -> SeenStore {
        let Some(base) = state_dir() else {
            return SeenStore {
                path: None,
                data: Default::default(),
            };
        };
        let id = ciphertext_hash(project.root().as_os_str().as_encoded_bytes());
        let path = base.join(format!("seen-{}.json", &id[7..23]));
        let data = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        SeenStore {
            path: Some(path),
            data,
        }
    }

    pub fn get(&self, env: &EnvName) -> Option<SeenEnv> {
        let e = self.data.get(env.as_str())?;
        Some(SeenEnv {
            serial: e.get("serial")?.as_u64()?,
            roster: e
                .get("roster")?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        })
    }

    /// Records a fully verified sidecar (`sidecar` is its bytes): the serial and trusted
    /// roster when newer, and the exact files verified, so an unchanged pair need not be
    /// verified again.
    pub fn record(&mut self, env: &EnvName, v: &Verified, sidecar: &[u8]) -> Result<()> {
        let seen = self.get(env);
        if seen.as_ref().is_some_and(|s| s.serial > v.manifest.serial) {
            return Ok(());
        }
        let sidecar_hash = ciphertext_hash(sidecar);
        if seen.is_some_and(|s| s.serial == v.manifest.serial)
            && self
                .verified(env)
                .is_some_and(|(sc, ct, _)| sc == sidecar_hash && ct == v.manifest.ciphertext)
        {
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        self.data.insert(
            env.as_str().to_string(),
            serde_json::json!({
                "serial": v.manifest.serial,
                "roster": v.trusted.iter().collect::<Vec<_>>(),
                "verified": {
                    "sidecar": sidecar_hash,
                    "ciphertext": v.manifest.ciphertext,
                    "signer": v.signer,
                    "member": v.signer_member,
                },
            }),
        );
        let dir = path.parent().expect("state path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let bytes = serde_json::to_vec_pretty(&self.data).map_err(|e| Error::new(e.to_string()))?;
        crate::fs::write_atomic(path, &bytes, crate::fs::Mode::Private).map(drop)
    }

    /// The last pair of files fully verified for `env`: sidecar hash, ciphertext hash,
    /// and the signer's fingerprint and member name.
    fn verified(&self, env: &EnvName) -> Option<(&str, &str, (&str, &str))> {
        let v = self.data.get(env.as_str())?.get("verified")?;
        let signer = (v.get("signer")?.as_str()?, v.get("member")?.as_str()?);
        Some((
            v.get("sidecar")?.as_str()?,
            v.get("ciphertext")?.as_str()?,
            signer,
        ))
    }

    /// Whether `sidecar` and `ciphertext` are exactly the files last verified for `env`,
    /// and the signer's key is still in its member file: then the signature need not be
    /// checked again (and only that one recipients file is read).
    pub fn unchanged_since_verified(
        &self,
        project: &Project,
        env: &EnvName,
        sidecar: &[u8],
        ciphertext: &[u8],
    ) -> bool {
        let Some((sc, ct, (signer, member))) = self.verified(env) else {
            return false;
        };
        if sc != ciphertext_hash(sidecar)
            || ct != ciphertext_hash(ciphertext)
            || !crate::project::is_member_name(member)
        {
            return false;
        }
        let file = project.recipients_dir(env).join(format!("{member}.pub"));
        if project.confined(&file).is_err() {
            return false;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            return false;
        };
        crate::keys::recipients::parse_file(&text, member)
            .is_ok_and(|keys| keys.iter().any(|k| k.fingerprint() == signer))
    }
}

//! Key-level differences between two versions of an environment: secrets added, removed
//! and changed, recipients granted and removed, and who signed; values only on request.
//! The one-file views `git diff` shows through vault's textconv driver are in
//! [`super::textconv`].

use crate::error::Result;
use crate::export::push_json_string;
use crate::git::{Git, Version};
use crate::keys::recipients::{self, Member};
use crate::manifest::{Manifest, RosterEntry};
use crate::project::{EnvName, Project};
use crate::secret::{SecretBuf, SecretValue};
use crate::store::{known_roster, signed_manifest, Pair, Store};
use std::collections::BTreeMap;

/// One version of an environment, as far as this machine can read it.
pub struct Snapshot {
    pub label: String,
    /// The secrets file exists in this version.
    pub present: bool,
    /// The signed manifest, when the sidecar parses (verified or not).
    pub manifest: Option<Manifest>,
    /// `member (SHA256:...)` of a signature that verified.
    pub signer: Option<String>,
    /// Why the signature did not verify.
    pub unverified: Option<String>,
    /// The decrypted secrets, by name.
    pub secrets: Option<BTreeMap<String, SecretValue>>,
    /// Why the values were not read.
    pub unread: Option<String>,
    /// The recipients folder of this version.
    pub folder: Vec<Member>,
}

/// Reads `env` as it is in `version`: verifies its signature against that version's
/// recipients folder, and decrypts it when it verified and an identity can.
pub fn load(store: &mut Store, git: &Git, env: &EnvName, version: &Version) -> Result<Snapshot> {
    let (ciphertext, sidecar, folder) = match version {
        Version::Worktree => {
            let disk = store.read_env(env)?;
            let folder = recipients::members(&store.project, env)?;
            match disk {
                Some(d) => (Some(d.ciphertext), d.sidecar, folder),
                None => (None, None, folder),
            }
        }
        // Both files are read even when the secrets file is missing: a sidecar left
        // alone still shows its manifest.
        Version::Rev(rev) => (
            git.show(rev, &Project::git_secrets_path(env))?,
            git.show(rev, &Project::git_sidecar_path(env))?,
            recipients::members_at(git, rev, env)?,
        ),
    };
    let mut side = Snapshot {
        label: version.label(),
        present: ciphertext.is_some(),
        manifest: sidecar.as_deref().and_then(signed_manifest),
        signer: None,
        unverified: None,
        secrets: None,
        unread: None,
        folder,
    };
    let Some(ciphertext) = ciphertext else {
        return Ok(side);
    };
    let pair = Pair {
        ciphertext,
        sidecar,
    };
    // The roster this machine already trusts needs no grant checked again (as for reads);
    // an older serial is expected here, so it is not held against the version.
    let anchors = known_roster(&store.project, env);
    match store.verify_other(env, &pair, &side.folder, anchors.as_ref()) {
        Ok(v) => side.signer = Some(format!("{} ({})", v.signer_member, v.signer)),
        Err(why) => side.unverified = Some(why),
    }
    if side.unverified.is_some() && !store.skip_verify {
        side.unread = Some("its signature did not verify".into());
        return Ok(side);
    }
    let allowed = side
        .manifest
        .as_ref()
        .map(|m| m.allow.clone())
        .unwrap_or_default();
    let order = side
        .manifest
        .as_ref()
        .map(|m| crate::envelope::stanza_order(&m.roster))
        .unwrap_or_default();
    match store.decrypt(env, &pair.ciphertext, &allowed, &order) {
        Ok(doc) => {
            side.secrets = Some(
                doc.entries()
                    .iter()
                    .map(|e| (e.name().to_string(), e.value().clone()))
                    .collect(),
            )
        }
        Err(e) => side.unread = Some(e.to_string()),
    }
    Ok(side)
}

/// The differences from `old` to `new`, one line each; empty when there are none.
/// Values appear only with `values` (JSON-quoted, so every byte shows).
pub fn compare(env: &EnvName, old: &Snapshot, new: &Snapshot, values: bool) -> SecretBuf {
    let mut body: Vec<String> = Vec::new();
    let (so, sn) = (signer_line(old), signer_line(new));
    if so != sn {
        body.push(format!("signer: {so} -> {sn}"));
    }
    recipient_changes(env, old, new, &mut body);
    // Secrets: exact when both sides decrypted; otherwise from the signed manifests,
    // where a value's change shows as a new date.
    let secret_lines = match (&old.secrets, &new.secrets) {
        (Some(o), Some(n)) => secret_changes(o, n, values),
        _ => {
            body.extend(unread_note(old, new));
            dated_secret_changes(old, new)
        }
    };
    let mut out = SecretBuf::new(String::new());
    if body.is_empty() && secret_lines.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "--- {env} ({})\n+++ {env} ({})\n",
        old.label, new.label
    ));
    for line in &body {
        out.push_str(line);
        out.push('\n');
    }
    for line in &secret_lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Who signed a version, with its serial, or why nobody verifiably did.
fn signer_line(s: &Snapshot) -> String {
    if !s.present {
        return "(no secrets file)".into();
    }
    let serial = s
        .manifest
        .as_ref()
        .map(|m| format!(", serial {}", m.serial))
        .unwrap_or_default();
    match (&s.signer, &s.unverified) {
        (Some(who), _) => format!("{who}{serial}"),
        (None, Some(why)) => format!("NOT VERIFIED: {why}"),
        (None, None) => "unsigned".into(),
    }
}

/// A signed roster, by `(member, fingerprint)`.
type Roster = BTreeMap<(String, String), RosterEntry>;

fn roster(s: &Snapshot) -> Roster {
    s.manifest
        .iter()
        .flat_map(|m| &m.roster)
        .map(|r| ((r.member.clone(), r.fingerprint.clone()), r.clone()))
        .collect()
}

/// Recipients: the signed rosters, and keys in the folder still waiting for a grant.
fn recipient_changes(env: &EnvName, old: &Snapshot, new: &Snapshot, body: &mut Vec<String>) {
    let (ro, rn) = (roster(old), roster(new));
    let member_of = |fp: &str| {
        rn.keys()
            .find(|(_, f)| f == fp)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| fp.to_string())
    };
    for (key, r) in &rn {
        if !ro.contains_key(key) {
            body.push(format!(
                "+recipient {} {} (granted by {})",
                key.0,
                key.1,
                member_of(&r.granted_by)
            ));
        }
    }
    for key in ro.keys() {
        if !rn.contains_key(key) {
            body.push(format!("-recipient {} {}", key.0, key.1));
        }
    }
    let (po, pn) = (pending(old, &ro), pending(new, &rn));
    for p in &pn {
        if !po.contains(p) {
            body.push(format!(
                "+pending {} {} (in recipients/{env}/, not granted)",
                p.0, p.1
            ));
        }
    }
    for p in &po {
        if !pn.contains(p) && !rn.keys().any(|(_, f)| *f == p.1) {
            body.push(format!("-pending {} {}", p.0, p.1));
        }
    }
}

/// The `(member, fingerprint)` of keys in a version's folder that its roster lacks.
fn pending(s: &Snapshot, roster: &Roster) -> Vec<(String, String)> {
    s.folder
        .iter()
        .flat_map(|m| {
            m.keys
                .iter()
                .map(move |k| (m.name.clone(), k.fingerprint()))
        })
        .filter(|(_, fp)| !roster.keys().any(|(_, f)| f == fp))
        .collect()
}

/// Secrets added, changed and removed, compared by value.
fn secret_changes(
    o: &BTreeMap<String, SecretValue>,
    n: &BTreeMap<String, SecretValue>,
    values: bool,
) -> Vec<SecretBuf> {
    let mut lines = Vec::new();
    for (name, v) in n {
        match o.get(name) {
            None => lines.push(with_value(&format!("+secret {name}"), values.then_some(v))),
            Some(ov) if ov.expose() != v.expose() => {
                let mut line = SecretBuf::new(format!("~secret {name}"));
                if values {
                    line = with_value(&line, Some(ov));
                    line.push_str(" ->");
                    let mut q = SecretBuf::new(String::new());
                    push_json_string(&mut q, v.expose());
                    line.push(' ');
                    line.push_str(q.as_str());
                }
                lines.push(line);
            }
            Some(_) => {}
        }
    }
    for (name, v) in o {
        if !n.contains_key(name) {
            lines.push(with_value(&format!("-secret {name}"), values.then_some(v)));
        }
    }
    lines
}

/// Each secret's change date: from the manifest, for the names a side holds.
fn change_dates(s: &Snapshot) -> BTreeMap<String, String> {
    match (&s.secrets, &s.manifest) {
        (Some(map), m) => map
            .keys()
            .map(|k| {
                let d = m.as_ref().and_then(|m| m.secret_date(k)).unwrap_or("");
                (k.clone(), d.to_string())
            })
            .collect(),
        (None, Some(m)) => m.secrets.iter().cloned().collect(),
        (None, None) => BTreeMap::new(),
    }
}

/// Secrets added, changed and removed, compared by name and change date.
fn dated_secret_changes(old: &Snapshot, new: &Snapshot) -> Vec<SecretBuf> {
    let mut lines = Vec::new();
    let (dn, dold) = (change_dates(new), change_dates(old));
    for (name, d) in &dn {
        match dold.get(name) {
            None => lines.push(SecretBuf::new(format!("+secret {name}"))),
            Some(od) if od != d => lines.push(SecretBuf::new(format!(
                "~secret {name} (value changed {d})"
            ))),
            Some(_) => {}
        }
    }
    for name in dold.keys() {
        if !dn.contains_key(name) {
            lines.push(SecretBuf::new(format!("-secret {name}")));
        }
    }
    lines
}

/// Without the values, a change within one day does not show: the line that says so.
fn unread_note(old: &Snapshot, new: &Snapshot) -> Option<String> {
    let unread: Vec<&str> = [old, new]
        .iter()
        .filter(|s| s.present && s.secrets.is_none())
        .map(|s| s.label.as_str())
        .collect();
    if unread.is_empty() {
        return None;
    }
    let why = [old, new]
        .iter()
        .find_map(|s| s.unread.as_deref())
        .map(|w| {
            if w.starts_with("no identity opens") {
                "no key of yours opens it"
            } else {
                w
            }
        })
        .unwrap_or("");
    Some(format!(
        "values not read here ({why}): secrets compared by name and change date only ({})",
        unread.join(", ")
    ))
}

/// `line`, followed by the JSON-quoted value when there is one.
fn with_value(line: &str, value: Option<&SecretValue>) -> SecretBuf {
    let mut s = SecretBuf::new(line.to_string());
    if let Some(v) = value {
        let mut q = SecretBuf::new(String::new());
        push_json_string(&mut q, v.expose());
        s.push(' ');
        s.push_str(q.as_str());
    }
    s
}

// The binary calls the textconv driver by its old path here.
pub use super::textconv::textconv;

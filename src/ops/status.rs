//! `vault status` and `vault whoami`: the state of every environment, and who you are.

use crate::envelope;
use crate::error::Result;
use crate::keys::recipients::{self, Member, PublicKey};
use crate::manifest::Exposure;
use crate::project::EnvName;
use crate::store::Store;
use crate::trust::Verified;

/// Whether a file is encrypted to exactly its recipients folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Sync {
    InSync,
    /// What differs: members whose key the file lacks, and keys it holds beyond the folder.
    RekeyNeeded(Vec<String>),
    NoFile,
    Unreadable(String),
}

/// One environment's state.
pub struct EnvStatus {
    pub env: EnvName,
    pub members: std::result::Result<Vec<Member>, String>,
    /// The number of secrets, or why it is not known.
    pub secrets: std::result::Result<Option<usize>, String>,
    /// Who signed the file, or why its signature is refused.
    pub signature: std::result::Result<Option<Verified>, String>,
    /// Whether the ciphertext's header matches the granted roster.
    pub sync: Sync,
    /// Members in the folder whose key was never granted: (member, fingerprint).
    pub pending: Vec<(String, String)>,
    /// Granted members whose key left the folder: a rekey or revoke is needed.
    pub removed: Vec<(String, String)>,
    pub exposed: Vec<Exposure>,
}

/// Compares the file's header with the recipients folder. SSH keys are matched by the
/// tag age writes for them; X25519 stanzas are anonymous, so those are compared by count.
pub fn sync_state(members: &[Member], ciphertext: &[u8]) -> Sync {
    let header = match envelope::header(ciphertext) {
        Ok(h) => h,
        Err(why) => return Sync::Unreadable(why),
    };
    let keys = recipients::distinct_keys(members);
    let mut diffs = Vec::new();
    for m in members {
        for k in &m.keys {
            if let Some(tag) = k.stanza_tag() {
                if !header.ssh_tags.contains(&tag) {
                    diffs.push(format!("not encrypted to {} ({})", m.name, k.fingerprint()));
                }
            }
        }
    }
    let folder_tags: Vec<String> = keys.iter().filter_map(|k| k.stanza_tag()).collect();
    let extra = header
        .ssh_tags
        .iter()
        .filter(|t| !folder_tags.contains(t))
        .count();
    if extra > 0 {
        diffs.push(format!(
            "encrypted to {extra} SSH key(s) no longer in the folder"
        ));
    }
    let folder_x25519 = keys.iter().filter(|k| k.stanza_tag().is_none()).count();
    if folder_x25519 != header.x25519 {
        diffs.push(format!(
            "{} age key(s) in the folder, {} in the file",
            folder_x25519, header.x25519
        ));
    }
    if header.other > 0 {
        diffs.push(format!("{} recipient(s) of another kind", header.other));
    }
    if diffs.is_empty() {
        Sync::InSync
    } else {
        Sync::RekeyNeeded(diffs)
    }
}

/// How the recipients folder stands against a signed roster.
pub struct RosterDiff {
    /// The folder's members, with only their granted keys (members with none left out).
    pub granted: Vec<Member>,
    /// Keys in the folder never granted: (member, fingerprint).
    pub pending: Vec<(String, String)>,
    /// Granted keys no longer in the folder: (member, fingerprint).
    pub removed: Vec<(String, String)>,
}

pub fn roster_diff(folder: &[Member], roster: &[crate::manifest::RosterEntry]) -> RosterDiff {
    let granted_fp = |fp: &str| roster.iter().any(|r| r.fingerprint == fp);
    let granted = folder
        .iter()
        .map(|m| Member {
            keys: m
                .keys
                .iter()
                .filter(|k| granted_fp(&k.fingerprint()))
                .cloned()
                .collect(),
            ..m.clone()
        })
        .filter(|m| !m.keys.is_empty())
        .collect();
    let pending = folder
        .iter()
        .flat_map(|m| {
            m.keys
                .iter()
                .map(move |k| (m.name.clone(), k.fingerprint()))
        })
        .filter(|(_, fp)| !granted_fp(fp))
        .collect();
    let removed = roster
        .iter()
        .filter(|r| {
            !folder
                .iter()
                .flat_map(|m| &m.keys)
                .any(|k| k.fingerprint() == r.fingerprint)
        })
        .map(|r| (r.member.clone(), r.fingerprint.clone()))
        .collect();
    RosterDiff {
        granted,
        pending,
        removed,
    }
}

/// The state of every environment of the project. Nothing is refused here: what would
/// be refused is reported.
pub fn status(store: &mut Store) -> Result<Vec<EnvStatus>> {
    let mut out = Vec::new();
    for env in store.project.environments()? {
        let members = recipients::members(&store.project, &env).map_err(|e| e.to_string());
        let mut st = EnvStatus {
            env: env.clone(),
            members: members.clone(),
            secrets: Ok(None),
            signature: Ok(None),
            sync: Sync::NoFile,
            pending: vec![],
            removed: vec![],
            exposed: vec![],
        };
        let disk = match store.read_env(&env) {
            Ok(Some(d)) => d,
            Ok(None) => {
                out.push(st);
                continue;
            }
            Err(e) => {
                st.sync = Sync::Unreadable(e.to_string());
                st.secrets = Err(e.to_string());
                out.push(st);
                continue;
            }
        };
        let folder = members.unwrap_or_default();
        let verified = store.verify_report(&env, &disk, &folder);
        if let Ok(v) = &verified {
            let diff = roster_diff(&folder, &v.manifest.roster);
            st.sync = sync_state(&diff.granted, &disk.ciphertext);
            st.pending = diff.pending;
            st.removed = diff.removed;
            st.exposed = v.manifest.exposed.clone();
        } else {
            st.sync = sync_state(&folder, &disk.ciphertext);
        }
        st.secrets = if verified.is_ok() || store.skip_verify {
            store
                .decrypt(&env, &disk.ciphertext)
                .map(|d| Some(d.entries().len()))
                .map_err(|e| e.to_string())
        } else {
            Err("not decrypted: its signature is refused".into())
        };
        st.signature = verified.map(Some);
        out.push(st);
    }
    Ok(out)
}

/// The environments whose recipients folder holds any of `keys`, with the member name.
pub fn readable_by(store: &Store, keys: &[PublicKey]) -> Result<Vec<(EnvName, String)>> {
    let mut out = Vec::new();
    for env in store.project.environments()? {
        let Ok(members) = recipients::members(&store.project, &env) else {
            continue;
        };
        if let Some(m) = members.iter().find(|m| {
            m.keys
                .iter()
                .any(|k| keys.iter().any(|p| p.text() == k.text()))
        }) {
            out.push((env, m.name.clone()));
        }
    }
    Ok(out)
}

//! `vault status` and `vault whoami`: the state of every environment, and who you are.

use crate::envelope::{self, RosterKey};
use crate::error::Result;
use crate::keys::recipients::{self, Member, PublicKey};
use crate::manifest::{Exposure, RosterEntry};
use crate::project::EnvName;
use crate::store::{Pair, Store};
use crate::trust::Verified;

/// Whether a file is encrypted to exactly its signed roster.
#[derive(Debug, PartialEq, Eq)]
pub enum Sync {
    InSync,
    /// What differs between the header and the roster, in the words a reader refuses
    /// with (one line each).
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

/// Compares the file's header with the signed `roster` (key types from `folder`), as a
/// reader does before decrypting: the same check, the same words.
pub fn sync_state(roster: &[RosterEntry], folder: &[Member], ciphertext: &[u8]) -> Sync {
    match envelope::header(ciphertext) {
        Ok(h) => differs(h.matches(roster, folder)),
        Err(why) => Sync::Unreadable(why),
    }
}

/// Like [`sync_state`] for a file whose signature is refused: its header against the
/// recipients folder, all of whose keys it would hold.
fn sync_with_folder(folder: &[Member], ciphertext: &[u8]) -> Sync {
    let mut keys: Vec<RosterKey> = Vec::new();
    for m in folder {
        for k in &m.keys {
            if !keys.iter().any(|d| d.fingerprint == k.fingerprint_str()) {
                keys.push(RosterKey {
                    member: &m.name,
                    fingerprint: k.fingerprint_str(),
                    key: Some(k),
                });
            }
        }
    }
    match envelope::header(ciphertext) {
        Ok(h) => differs(h.compare(&keys, "its recipients folder")),
        Err(why) => Sync::Unreadable(why),
    }
}

fn differs(checked: std::result::Result<(), String>) -> Sync {
    match checked {
        Ok(()) => Sync::InSync,
        Err(why) => Sync::RekeyNeeded(vec![why]),
    }
}

/// How the recipients folder stands against a signed roster.
pub struct RosterDiff {
    /// Keys in the folder never granted: (member, fingerprint).
    pub pending: Vec<(String, String)>,
    /// Granted keys no longer in the folder: (member, fingerprint).
    pub removed: Vec<(String, String)>,
}

pub fn roster_diff(folder: &[Member], roster: &[RosterEntry]) -> RosterDiff {
    let granted_fp = |fp: &str| roster.iter().any(|r| r.fingerprint == fp);
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
    RosterDiff { pending, removed }
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
        let verified = store.signature_report(&env, &disk, &folder);
        if let Ok(v) = &verified {
            let diff = roster_diff(&folder, &v.manifest.roster);
            st.sync = sync_state(&v.manifest.roster, &folder, &disk.ciphertext);
            st.pending = diff.pending;
            st.removed = diff.removed;
            st.exposed = v.manifest.exposed.clone();
        } else {
            st.sync = sync_with_folder(&folder, &disk.ciphertext);
        }
        // Decrypted only when a reader would decrypt it: signature and header both hold.
        let refused = match (&verified, &st.sync) {
            (Err(_), _) => Some("its signature is refused"),
            (Ok(_), Sync::InSync) => None,
            (Ok(_), _) => Some("its header differs from its signed roster"),
        };
        st.secrets = match refused {
            Some(why) if !store.skip_verify => Err(format!("not decrypted: {why}")),
            _ => store
                .decrypt(&env, &disk.ciphertext, &allowed_by(&verified, &disk), &[])
                .map(|d| Some(d.entries().len()))
                .map_err(|e| e.to_string()),
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

/// The controlling names a status may find in `disk`: those its verified manifest allows
/// (with --insecure-skip-verify, those its unverified one names).
fn allowed_by(verified: &std::result::Result<Verified, String>, disk: &Pair) -> Vec<String> {
    match verified {
        Ok(v) => v.manifest.allow.clone(),
        Err(_) => disk.manifest().map(|m| m.allow).unwrap_or_default(),
    }
}

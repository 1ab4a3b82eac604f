//! Reading and writing an environment's encrypted secrets: size limits, one writer at a
//! time (a lock on the environment's pillar folder), and atomic replacement.

use crate::document::{self, Document};
use crate::envelope;
use crate::error::{Error, Result};
use crate::keys::identity::Identities;
mod journal;
mod read;

pub use read::{known_roster, signed_manifest, Pair};

use crate::keys::recipients::{self, PublicKey};
use crate::keys::signing;
use crate::manifest::{self, Exposure, Manifest, RosterEntry};
use crate::notice::{Level, Notices};
use crate::project::{EnvName, Project, SECRETS_FILE, SIDECAR_FILE};
use crate::trust::{self, SeenStore, Verified};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;

/// A project with the identities of this run: what every command works through.
pub struct Store {
    pub project: Project,
    pub identities: Identities,
    /// Decrypt even when the signature checks fail (recovery only; said loudly).
    pub skip_verify: bool,
    /// Where the store's messages go: it never prints itself.
    notices: Box<dyn Notices>,
    seen: Option<SeenStore>,
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Changed,
    Unchanged,
}

/// How a write changes who may read the environment.
pub enum RosterChange<'a> {
    /// The roster as it was (members whose key left the folder are dropped).
    Keep,
    /// Add `member`'s keys, granted by the writer.
    Grant {
        member: &'a str,
        keys: &'a [PublicKey],
    },
    /// Remove `member`: every secret they could read is marked exposed.
    Revoke { member: &'a str },
}

/// What a write did, and who it left out.
#[derive(Debug)]
pub struct WriteReport {
    pub written: Written,
    /// Members whose key is in the folder but was never granted.
    pub pending: Vec<String>,
    /// Members dropped from the roster (their secrets are now marked exposed).
    pub dropped: Vec<String>,
    /// Members the file is now encrypted to.
    pub members: Vec<String>,
}

impl Store {
    /// `notices` receives what the store has to say while it works: details of what was
    /// verified and decrypted, waits, recoveries and warnings (never a value).
    pub fn new(
        project: Project,
        identities: Identities,
        skip_verify: bool,
        notices: Box<dyn Notices>,
    ) -> Store {
        Store {
            project,
            identities,
            skip_verify,
            notices,
            seen: None,
        }
    }

    /// `env`'s pair, or None when it has no secrets file yet; confined to the project.
    pub fn read_env(&self, env: &EnvName) -> Result<Option<Pair>> {
        self.confined(env)?;
        // A write is finishing, or was killed after its new files were complete: wait
        // for it, or finish it, before reading a pair that may not match.
        let _lock = if journal::pending(&self.project.env_pillar_dir(env)) {
            Some(self.lock(env)?)
        } else {
            None
        };
        Pair::read(&self.project, env)
    }

    /// The decrypted document of `env`, which must exist, after its signature checks.
    pub fn open(&mut self, env: &EnvName) -> Result<Document> {
        let disk = self.read_env(env)?.ok_or_else(|| {
            Error::new(format!(
                "{env} has no secrets yet ({} does not exist)",
                self.project.display_path(&self.project.secrets_path(env))
            ))
            .with_hint(format!(
                "add one with `vault set {env} NAME`, or `vault edit {env}`"
            ))
        })?;
        self.verify_for_read(env, &disk)?;
        self.decrypt(env, &disk.ciphertext)
    }

    /// The members the verified roster of `env` grants, or None when it has no secrets.
    pub fn granted(&mut self, env: &EnvName) -> Result<Option<BTreeSet<String>>> {
        let Some(disk) = self.read_env(env)? else {
            return Ok(None);
        };
        let folder = recipients::members(&self.project, env)?;
        Ok(self
            .verify(env, &disk, &folder)?
            .map(|v| v.manifest.roster.into_iter().map(|r| r.member).collect()))
    }

    /// Like [`verify`](Self::verify), but files byte-identical to those this machine last
    /// verified, signed by a key still in its member's file, are not verified again.
    fn verify_for_read(&mut self, env: &EnvName, disk: &Pair) -> Result<()> {
        if let Some(sidecar) = &disk.sidecar {
            let project = self.project.clone();
            if self
                .seen()
                .unchanged_since_verified(&project, env, sidecar, &disk.ciphertext)
            {
                self.detail(&format!("{env}: unchanged since this machine verified it"));
                return Ok(());
            }
        }
        let folder = recipients::members(&self.project, env)?;
        self.verify(env, disk, &folder).map(drop)
    }

    /// Checks `disk` against `folder` (the environment's members) before anything is
    /// decrypted; with `skip_verify`, a failure is a loud warning instead. Returns the
    /// verified manifest.
    pub fn verify(
        &mut self,
        env: &EnvName,
        disk: &Pair,
        folder: &[recipients::Member],
    ) -> Result<Option<Verified>> {
        match self.verify_report(env, disk, folder) {
            Ok(v) => {
                self.detail(&format!(
                    "{env}: signature verified: by {} ({}), serial {}",
                    v.signer_member, v.signer, v.manifest.serial
                ));
                self.remember(env, &v, disk.sidecar.as_deref().unwrap_or_default());
                Ok(Some(v))
            }
            Err(why) if self.skip_verify => {
                self.notice(
                    Level::Warning,
                    &format!("WARNING: --insecure-skip-verify: {env}: {why}; using it anyway"),
                );
                Ok(None)
            }
            Err(why) => Err(Error::new(format!(
                "{env} ({}): refused before decrypting: {why}",
                self.project.display_path(&self.project.secrets_path(env))
            ))
            .with_hint(format!(
                "see who changed it: git log -p -- conf/pillar/{env} recipients/{env}; --insecure-skip-verify overrides, for recovery only"
            ))),
        }
    }

    /// The verdict on `disk` without refusing or warning, for reports.
    pub fn verify_report(
        &mut self,
        env: &EnvName,
        disk: &Pair,
        folder: &[recipients::Member],
    ) -> std::result::Result<Verified, String> {
        let seen = self.seen().get(env);
        disk.verify(env, folder, seen.as_ref())
    }

    fn seen(&mut self) -> &mut SeenStore {
        self.seen
            .get_or_insert_with(|| SeenStore::load(&self.project))
    }

    /// Decrypts `ciphertext`, read from `env`'s secrets file, into its document.
    pub fn decrypt(&mut self, env: &EnvName, ciphertext: &[u8]) -> Result<Document> {
        let what = format!(
            "{env} ({})",
            self.project.display_path(&self.project.secrets_path(env))
        );
        let plain = self.identities.decrypt(&what, ciphertext)?;
        if let Some(label) = self.identities.last_used() {
            self.detail(&format!("{env}: decrypted with {label}"));
        }
        Document::parse(env.as_str(), plain)
    }

    /// Records what was verified; a failure (a read-only home) is a warning, not a
    /// reason to refuse secrets that verified.
    fn remember(&mut self, env: &EnvName, v: &Verified, sidecar: &[u8]) {
        if let Err(e) = self.seen().record(env, v, sidecar) {
            self.notice(
                Level::Warning,
                &format!("warning: cannot remember {env}'s serial ({e}): rollback protection on this machine is limited to what it remembered before"),
            );
        }
    }

    /// Hands `msg` to whoever shows the store's messages. The binary puts `vault: `
    /// before it, so a warning names itself ("warning: ...").
    fn notice(&self, level: Level, msg: &str) {
        self.notices.notice(level, msg);
    }

    fn detail(&self, msg: &str) {
        self.notice(Level::Detail, msg);
    }

    /// Reads, changes and writes `env` under its lock, keeping its roster. `change` gets
    /// the current document (None when there is none) and returns the new one, or None
    /// to write nothing.
    pub fn modify(
        &mut self,
        env: &EnvName,
        change: impl FnOnce(Option<Document>) -> Result<Option<Document>>,
    ) -> Result<WriteReport> {
        self.write(env, RosterChange::Keep, change)
    }

    /// The one write path: verify and decrypt the current file, apply `change` and
    /// `roster`, encrypt to the roster, and sign the new manifest with the writer's key.
    pub fn write(
        &mut self,
        env: &EnvName,
        roster_change: RosterChange<'_>,
        change: impl FnOnce(Option<Document>) -> Result<Option<Document>>,
    ) -> Result<WriteReport> {
        let folder = recipients::required(&self.project, env)?;
        let _lock = self.lock(env)?;
        let (old_doc, old, mut signer) = match self.read_env(env)? {
            Some(disk) => {
                let verified = self.verify(env, &disk, &folder)?;
                // Who signs is settled before anything is decrypted: a key never
                // granted is told so at once.
                let granted: BTreeSet<String> = match &verified {
                    Some(v) => v
                        .manifest
                        .roster
                        .iter()
                        .map(|r| r.fingerprint.clone())
                        .collect(),
                    None => folder
                        .iter()
                        .flat_map(|m| &m.keys)
                        .map(PublicKey::fingerprint)
                        .collect(),
                };
                let signer = self.identities.signer(&granted, env.as_str())?;
                let doc = self.decrypt(env, &disk.ciphertext)?;
                crate::fs::checkpoint("decrypted");
                (Some(doc), verified, Some(signer))
            }
            None => {
                // Starting an environment anew is how a forger would replace it: not
                // over one this machine has already seen.
                if let Some(seen) = self.seen().get(env).filter(|_| !self.skip_verify) {
                    return Err(Error::new(format!(
                        "{env}: its secrets file is missing, but this machine has seen it (serial {}); refusing to start it anew",
                        seen.serial
                    ))
                    .with_hint(format!(
                        "restore it: git checkout -- conf/pillar/{env}/; --insecure-skip-verify starts anew"
                    )));
                }
                (None, None, None)
            }
        };
        let old_hashes: HashMap<String, [u8; 32]> = old_doc
            .iter()
            .flat_map(|d| d.entries())
            .map(|e| {
                (
                    e.name().to_string(),
                    Sha256::digest(e.value().expose().as_bytes()).into(),
                )
            })
            .collect();
        let forced = !matches!(roster_change, RosterChange::Keep);
        let new_doc = match change(old_doc)? {
            Some(doc) => doc,
            None if !forced => {
                return Ok(WriteReport {
                    written: Written::Unchanged,
                    pending: vec![],
                    dropped: vec![],
                    members: vec![],
                })
            }
            None => return Err(Error::new(format!("{env} has no secrets to re-encrypt"))),
        };

        let today = manifest::today();
        // A member being revoked no longer counts as in the folder (their file goes next).
        let revoked = match roster_change {
            RosterChange::Revoke { member } => Some(member),
            _ => None,
        };
        let folder_keys: Vec<(&str, &PublicKey)> = folder
            .iter()
            .filter(|m| Some(m.name.as_str()) != revoked)
            .flat_map(|m| m.keys.iter().map(move |k| (m.name.as_str(), k)))
            .collect();
        let in_folder = |fp: &str| folder_keys.iter().any(|(_, k)| k.fingerprint() == fp);
        // Who is granted: the old roster still in the folder, or everyone in the folder
        // when the environment starts (its founders).
        let (mut roster, mut new_grants): (Vec<RosterEntry>, Vec<(String, String)>) = match &old {
            Some(v) => (
                v.manifest
                    .roster
                    .iter()
                    .filter(|r| in_folder(&r.fingerprint))
                    .cloned()
                    .collect(),
                vec![],
            ),
            None => (
                vec![],
                folder_keys
                    .iter()
                    .map(|(m, k)| (m.to_string(), k.fingerprint()))
                    .collect(),
            ),
        };
        let dropped: BTreeSet<String> = old
            .iter()
            .flat_map(|v| &v.manifest.roster)
            .filter(|r| !in_folder(&r.fingerprint))
            .map(|r| r.member.clone())
            .collect();
        match roster_change {
            RosterChange::Keep => {}
            RosterChange::Grant { member, keys } => {
                for k in keys {
                    let fp = k.fingerprint();
                    if roster.iter().any(|r| r.fingerprint == fp) {
                        return Err(Error::new(format!(
                            "{env}: {member}'s key {fp} is already granted"
                        )));
                    }
                    // A new environment's founders already include the key.
                    if !new_grants.iter().any(|(_, f)| *f == fp) {
                        new_grants.push((member.to_string(), fp));
                    }
                }
            }
            RosterChange::Revoke { member } => {
                // Their entries left the roster with their keys, just above.
                if !dropped.contains(member) {
                    return Err(Error::new(format!(
                        "{env}: {member} is not a granted member; nothing to revoke"
                    )));
                }
            }
        }
        let allowed: BTreeSet<String> = match &old {
            Some(_) => roster.iter().map(|r| r.fingerprint.clone()).collect(),
            None => new_grants.iter().map(|(_, fp)| fp.clone()).collect(),
        };
        let mut signer = match signer.take() {
            Some(s) => s,
            None => self.identities.signer(&allowed, env.as_str())?,
        };
        let signer_fp = signer.public()?.fingerprint();
        if !allowed.contains(&signer_fp) {
            return Err(Error::new(format!(
                "{env}: your key ({signer_fp}) would not be a member after this change, so it cannot sign it; another member must"
            ))
            .with_hint("a member cannot revoke themselves, nor write once their key has left the recipients folder"));
        }
        for (member, fp) in new_grants {
            let msg = manifest::grant_message(env.as_str(), &member, &fp, &today);
            let grant = signing::to_line(&signer.sign(signing::GRANT_NAMESPACE, msg.as_bytes())?)?;
            roster.push(RosterEntry {
                member,
                fingerprint: fp,
                granted_by: signer_fp.clone(),
                date: today.clone(),
                grant,
            });
        }
        roster.sort_by(|a, b| (&a.member, &a.fingerprint).cmp(&(&b.member, &b.fingerprint)));
        let pending: BTreeSet<String> = folder_keys
            .iter()
            .filter(|(_, k)| !roster.iter().any(|r| r.fingerprint == k.fingerprint()))
            .map(|(m, _)| m.to_string())
            .collect();

        let old_manifest = old.as_ref().map(|v| &v.manifest);
        let unchanged = |name: &str, value: &str| {
            old_hashes
                .get(name)
                .is_some_and(|h| *h == <[u8; 32]>::from(Sha256::digest(value.as_bytes())))
        };
        let secrets: Vec<(String, String)> = new_doc
            .entries()
            .iter()
            .map(|e| {
                let date = match old_manifest.and_then(|m| m.secret_date(e.name())) {
                    Some(d) if unchanged(e.name(), e.value().expose()) => d.to_string(),
                    _ => today.clone(),
                };
                (e.name().to_string(), date)
            })
            .collect();
        let mut exposed: Vec<Exposure> = old_manifest
            .map(|m| m.exposed.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|x| {
                new_doc
                    .get(&x.name)
                    .is_some_and(|v| unchanged(&x.name, v.expose()))
            })
            .collect();
        for member in &dropped {
            for e in new_doc.entries() {
                if old_hashes.contains_key(e.name())
                    && unchanged(e.name(), e.value().expose())
                    && !exposed
                        .iter()
                        .any(|x| x.name == e.name() && x.member == *member)
                {
                    exposed.push(Exposure {
                        name: e.name().to_string(),
                        since: today.clone(),
                        member: member.clone(),
                    });
                }
            }
        }
        // Above anything this machine has seen, so a write on an older branch still
        // moves the environment forward.
        let serial = old_manifest
            .map(|m| m.serial)
            .into_iter()
            .chain(self.seen().get(env).map(|s| s.serial))
            .max()
            .unwrap_or(0)
            + 1;
        let (ciphertext, sidecar, manifest) = seal(
            env,
            &new_doc,
            &folder,
            Manifest {
                environment: env.to_string(),
                serial,
                ciphertext: String::new(),
                roster,
                secrets,
                exposed,
            },
            &mut signer,
        )?;
        journal::replace_all(
            &self.project.env_pillar_dir(env),
            &[
                (SECRETS_FILE, &ciphertext),
                (SIDECAR_FILE, sidecar.as_bytes()),
            ],
        )?;
        crate::fs::checkpoint("written");
        let trusted = manifest
            .roster
            .iter()
            .map(|r| r.fingerprint.clone())
            .collect();
        let members: BTreeSet<String> = manifest.roster.iter().map(|r| r.member.clone()).collect();
        let signer_member = folder_keys
            .iter()
            .find(|(_, k)| k.fingerprint() == signer_fp)
            .map(|(m, _)| m.to_string());
        let verified = Verified {
            manifest,
            signer: signer_fp,
            signer_member: signer_member.unwrap_or_default(),
            trusted,
        };
        self.remember(env, &verified, sidecar.as_bytes());
        Ok(WriteReport {
            written: Written::Changed,
            pending: pending.into_iter().collect(),
            dropped: dropped.into_iter().collect(),
            members: members.into_iter().collect(),
        })
    }

    /// Refuses `env`'s pillar folder and files when a symbolic link leads them outside
    /// the project.
    fn confined(&self, env: &EnvName) -> Result<()> {
        self.project.confined(&self.project.pillar_dir())?;
        self.project.confined(&self.project.env_pillar_dir(env))?;
        self.project.confined(&self.project.secrets_path(env))?;
        self.project.confined(&self.project.sidecar_path(env))
    }

    /// Locks `env` for writing, waiting (with a message) while another vault holds it.
    pub fn lock(&self, env: &EnvName) -> Result<EnvLock> {
        self.confined(env)?;
        let dir = self.project.env_pillar_dir(env);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let file = File::open(&dir).map_err(|e| Error::io("cannot open", &dir, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                self.notice(
                    Level::Note,
                    &format!("waiting for another vault writing {env} to finish..."),
                );
                file.lock().map_err(|e| Error::io("cannot lock", &dir, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("cannot lock", &dir, e)),
        }
        // Holding the lock, nobody else is writing: what a killed writer left is repaired.
        // Said even with -q: the environment changed (or was cleaned) on its behalf.
        if let Some(said) = journal::take_over(&dir)? {
            self.notice(Level::Warning, &format!("{env}: {said}"));
        }
        crate::fs::checkpoint("locked");
        Ok(EnvLock { dir, _file: file })
    }
}

/// Held while writing an environment; released when dropped (or when the process dies).
pub struct EnvLock {
    dir: std::path::PathBuf,
    _file: File,
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        journal::release(&self.dir);
    }
}

/// Encrypts `doc` to the keys of `folder` that `manifest`'s roster grants, and signs
/// the manifest (its ciphertext line filled in): the two files of an environment.
pub fn seal(
    env: &EnvName,
    doc: &Document,
    folder: &[recipients::Member],
    mut manifest: Manifest,
    signer: &mut signing::Signer,
) -> Result<(Vec<u8>, String, Manifest)> {
    let keys: Vec<&PublicKey> = recipients::distinct_keys(folder)
        .into_iter()
        .filter(|k| {
            manifest
                .roster
                .iter()
                .any(|r| r.fingerprint == k.fingerprint())
        })
        .collect();
    if keys.is_empty() {
        return Err(Error::new(format!("{env}: no granted key to encrypt to")));
    }
    let ciphertext = envelope::encrypt(doc.text(), &keys)?;
    manifest.ciphertext = trust::ciphertext_hash(&ciphertext);
    let text = manifest.render();
    let sig = signer.sign(signing::NAMESPACE, text.as_bytes())?;
    let pem = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| Error::new(format!("cannot encode the signature: {e}")))?;
    Ok((ciphertext, format!("{text}{pem}"), manifest))
}

/// The document to start from when an environment has none.
pub fn or_empty(env: &EnvName, doc: Option<Document>) -> Document {
    doc.unwrap_or_else(|| document::empty(env.as_str()))
}

//! An environment's encrypted secrets, read and written through one type: [`Store`], a
//! project with the identities of this run. Reading and verifying the pair is in
//! [`read`], the write path in [`write`], the per-environment lock in [`lock`], and
//! the replacement of both files as one in [`journal`].

mod journal;
mod lock;
mod read;
mod write;

pub use lock::{tracked_work_files, EnvLock};
pub use read::{known_roster, signed_manifest, Pair};
pub use write::seal;

use crate::document::{self, Document};
use crate::envelope;
use crate::error::{Error, Result};
use crate::keys::identity::Identities;
use crate::keys::recipients::{self, PublicKey};
use crate::manifest::Manifest;
use crate::notice::{Level, Notices};
use crate::project::{EnvName, Project};
use crate::trust::SeenStore;
use std::collections::BTreeSet;

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
    /// Allow (or no longer allow) a controlling name such as `PYTHONPATH` as a secret
    /// of the environment, in its signed manifest.
    Allow { name: &'a str, allow: bool },
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

    /// The decrypted document of `env`, which must exist, after its signature checks.
    pub fn open(&mut self, env: &EnvName) -> Result<Document> {
        self.open_signed(env).map(|(doc, _)| doc)
    }

    /// Like [`open`](Self::open), with the verified manifest that signs what was
    /// decrypted (None when it did not verify and `skip_verify` read it anyway): which
    /// version this is, for a provision to compare with what a server runs.
    pub fn open_signed(&mut self, env: &EnvName) -> Result<(Document, Option<Manifest>)> {
        let pair = self.read_env(env)?.ok_or_else(|| {
            Error::new(format!(
                "{env} has no secrets yet ({} does not exist)",
                self.project.display_path(&self.project.secrets_path(env))
            ))
            .with_hint(format!(
                "add one with `vault set {env} NAME`, or `vault edit {env}`"
            ))
        })?;
        let (manifest, allowed) = self.verify_for_read(env, &pair)?;
        let order = manifest
            .as_ref()
            .map(|m| envelope::stanza_order(&m.roster))
            .unwrap_or_default();
        let doc = self.decrypt(env, &pair.ciphertext, &allowed, &order)?;
        Ok((doc, manifest))
    }

    /// The members the verified roster of `env` grants, or None when it has no secrets.
    pub fn granted(&mut self, env: &EnvName) -> Result<Option<BTreeSet<String>>> {
        let Some(pair) = self.read_env(env)? else {
            return Ok(None);
        };
        let folder = recipients::members(&self.project, env)?;
        Ok(self
            .verify(env, &pair, &folder)?
            .map(|v| v.manifest.roster.into_iter().map(|r| r.member).collect()))
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

    /// What this machine remembers of the project (one copy per run, so that every
    /// record lands in the same file).
    pub fn seen(&mut self) -> &mut SeenStore {
        self.seen
            .get_or_insert_with(|| SeenStore::load(&self.project))
    }

    /// Hands `msg` to whoever shows the store's messages. The binary puts `vault: `
    /// before it, so a warning names itself ("warning: ...").
    fn notice(&self, level: Level, msg: &str) {
        self.notices.notice(level, msg);
    }

    fn detail(&self, msg: &str) {
        self.notice(Level::Detail, msg);
    }
}

/// The document to start from when an environment has none.
pub fn or_empty(env: &EnvName, doc: Option<Document>) -> Document {
    doc.unwrap_or_else(|| document::empty(env.as_str()))
}

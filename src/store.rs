//! Reading and writing an environment's encrypted secrets: size limits, one writer at a
//! time (a lock on the environment's pillar folder), and atomic replacement.

use crate::document::{self, Document};
use crate::envelope::{self, MAX_CIPHERTEXT_BYTES};
use crate::error::{Error, Result};
use crate::identity::Identities;
use crate::project::{EnvName, Project};
use crate::recipients;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// A project with the identities of this run: what every command works through.
pub struct Store {
    pub project: Project,
    pub identities: Identities,
    pub quiet: bool,
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Changed,
    Unchanged,
}

impl Store {
    /// The environment's ciphertext, or None when it has no secrets file yet.
    pub fn read_ciphertext(&self, env: &EnvName) -> Result<Option<Vec<u8>>> {
        read_limited(&self.project.secrets_path(env), MAX_CIPHERTEXT_BYTES)
    }

    /// The decrypted document of `env`, which must exist.
    pub fn open(&mut self, env: &EnvName) -> Result<Document> {
        let ct = self.ciphertext_required(env)?;
        self.decrypt(env, &ct)
    }

    /// The decrypted document, or None when `env` has no secrets file yet.
    pub fn open_optional(&mut self, env: &EnvName) -> Result<Option<Document>> {
        match self.read_ciphertext(env)? {
            Some(ct) => self.decrypt(env, &ct).map(Some),
            None => Ok(None),
        }
    }

    fn ciphertext_required(&self, env: &EnvName) -> Result<Vec<u8>> {
        self.read_ciphertext(env)?.ok_or_else(|| {
            Error::new(format!(
                "{env} has no secrets yet ({} does not exist)",
                self.project.display_path(&self.project.secrets_path(env))
            ))
            .with_hint(format!(
                "add one with `vault set {env} NAME`, or `vault edit {env}`"
            ))
        })
    }

    /// Decrypts `ciphertext`, read from `env`'s secrets file, into its document.
    pub fn decrypt(&mut self, env: &EnvName, ciphertext: &[u8]) -> Result<Document> {
        let what = format!(
            "{env} ({})",
            self.project.display_path(&self.project.secrets_path(env))
        );
        let plain = self.identities.decrypt(&what, ciphertext)?;
        Document::parse(env.as_str(), plain)
    }

    /// Locks `env` for writing, waiting (with a message) while another vault holds it.
    pub fn lock(&self, env: &EnvName) -> Result<EnvLock> {
        let dir = self.project.env_pillar_dir(env);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let file = File::open(&dir).map_err(|e| Error::io("cannot open", &dir, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                if !self.quiet {
                    eprintln!("vault: waiting for another vault writing {env} to finish...");
                }
                file.lock().map_err(|e| Error::io("cannot lock", &dir, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("cannot lock", &dir, e)),
        }
        Ok(EnvLock { _dir: file })
    }

    /// Reads, changes and writes `env` under its lock. `change` gets the current
    /// document (None when there is none) and returns the new one, or None to write nothing.
    pub fn modify(
        &mut self,
        env: &EnvName,
        change: impl FnOnce(Option<Document>) -> Result<Option<Document>>,
    ) -> Result<Written> {
        let members = recipients::required(&self.project, env)?;
        let _lock = self.lock(env)?;
        let current = self.open_optional(env)?;
        let Some(new) = change(current)? else {
            return Ok(Written::Unchanged);
        };
        self.write_locked(env, &new, &members)?;
        Ok(Written::Changed)
    }

    /// Encrypts `doc` to the members and replaces the file; the caller holds the lock.
    pub fn write_locked(
        &self,
        env: &EnvName,
        doc: &Document,
        members: &[recipients::Member],
    ) -> Result<()> {
        let keys = recipients::distinct_keys(members);
        let ciphertext = envelope::encrypt(doc.text(), &keys)?;
        write_atomic(
            &self.project.secrets_path(env),
            &ciphertext,
            Mode::KeepOr0644,
        )
        .map(drop)
    }
}

/// Held while writing an environment; released when dropped (or when the process dies).
pub struct EnvLock {
    _dir: File,
}

/// Reads `path` whole, refusing one larger than `limit`; None when it does not exist.
pub fn read_limited(path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?
        .len();
    if len > limit as u64 {
        return Err(Error::new(format!(
            "{} is {len} bytes, over the limit of {limit} bytes",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", path, e))?;
    Ok(Some(bytes))
}

/// How an atomic write treats the file it replaces.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Keep an existing file's mode; a new file gets 0644 (ciphertext, layout files).
    KeepOr0644,
    /// Always 0600, from the first byte written (plaintext exports).
    Private,
    /// Create only: refuse when the file exists (returns `Created::No`).
    CreateNew,
}

/// Whether a `Mode::CreateNew` write created the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    No,
}

/// Writes `path` atomically: a temporary file in the same folder, flushed to disk,
/// renamed into place (or linked, for `CreateNew`), and the folder flushed. On any
/// failure the old file is left as it was and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> Result<Created> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| Error::io("cannot write", path, e);
    let perms = match (mode, std::fs::metadata(path)) {
        (Mode::KeepOr0644, Ok(meta)) => meta.permissions(),
        (Mode::Private, _) => std::fs::Permissions::from_mode(0o600),
        _ => std::fs::Permissions::from_mode(0o644),
    };
    // The temporary file is created 0600 and only then given its final mode.
    let mut tmp = tempfile::Builder::new()
        .prefix(".vault-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    failpoint("before-fsync").map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.as_file().set_permissions(perms).map_err(fail)?;
    failpoint("before-rename").map_err(fail)?;
    let created = match mode {
        Mode::CreateNew => match tmp.persist_noclobber(path) {
            Ok(_) => Created::Yes,
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Created::No,
            Err(e) => return Err(fail(e.error)),
        },
        _ => {
            tmp.persist(path).map_err(|e| fail(e.error))?;
            Created::Yes
        }
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(created)
}

/// Fails on purpose at the step named by `VAULT_TEST_FAILPOINT`, so tests can show a
/// failure at that step leaves the previous file intact.
fn failpoint(step: &str) -> std::io::Result<()> {
    match std::env::var_os("VAULT_TEST_FAILPOINT") {
        Some(v) if v == step => Err(std::io::Error::other(format!("failpoint {step}"))),
        _ => Ok(()),
    }
}

/// The document to start from when an environment has none.
pub fn or_empty(env: &EnvName, doc: Option<Document>) -> Document {
    doc.unwrap_or_else(|| document::empty(env.as_str()))
}

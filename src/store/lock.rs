//! One writer per environment: a lock on its pillar folder, taken only once the folder
//! and its files are known to be the project's own, and a killed writer's leftovers
//! repaired while it is held.

use super::{journal, Store};
use crate::error::{Error, Result};
use crate::notice::Level;
use crate::project::EnvName;
use std::fs::File;

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

impl Store {
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

    /// Refuses `env`'s pillar folder and files when a symbolic link leads them outside
    /// the project.
    pub(super) fn confined(&self, env: &EnvName) -> Result<()> {
        self.project.confined(&self.project.pillar_dir())?;
        self.project.confined(&self.project.env_pillar_dir(env))?;
        self.project.confined(&self.project.secrets_path(env))?;
        self.project.confined(&self.project.sidecar_path(env))
    }
}

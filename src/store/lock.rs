//! One writer per environment: a lock on its pillar folder, taken only once the folder
//! and its files are known to be the project's own, and a killed writer's leftovers
//! repaired while it is held.

use super::{journal, Store};
use crate::error::{Error, Result};
use crate::notice::Level;
use crate::project::{EnvName, Project};
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
        refuse_tracked(&self.project, env)?;
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

/// vault's work files (journal, writer file, temporary files) that git tracks under
/// `conf/pillar`, as paths from the project's root: none are ever vault's own, since
/// vault removes them before it returns, so one in a commit was put there. Empty
/// outside git.
pub fn tracked_work_files(project: &Project) -> Vec<String> {
    let git = crate::git::Git::new(project.root());
    let pillar = project.display_path(&project.pillar_dir());
    let Ok(out) = git.output(&["ls-files", "-z", "--", &pillar]) else {
        return Vec::new();
    };
    out.split(|&b| b == 0)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter(|p| p.rsplit('/').next().is_some_and(journal::is_work_file))
        .map(String::from)
        .collect()
}

/// Refuses to act on `env` while a commit carries a work file in its folder.
fn refuse_tracked(project: &Project, env: &EnvName) -> Result<()> {
    // Only a work file on disk could be acted on: without one, git is not asked (which
    // would cost every write a process).
    let on_disk = std::fs::read_dir(project.env_pillar_dir(env))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_str().is_some_and(journal::is_work_file))
        })
        .unwrap_or(false);
    if !on_disk {
        return Ok(());
    }
    let secrets = Project::git_secrets_path(env);
    let prefix = secrets
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir)
        .to_string()
        + "/";
    let Some(path) = tracked_work_files(project)
        .into_iter()
        .find(|p| p.starts_with(&prefix))
    else {
        return Ok(());
    };
    Err(Error::new(format!(
        "{path} is carried by a commit (git tracks it); vault never acts on a tracked work file"
    ))
    .with_hint(format!(
        "vault never commits it: see who did (git log -- {path}), then `git rm {path}` and commit"
    )))
}

//! The project's identity: a random id, committed in `conf/vault-project`, that every
//! manifest and every grant signs, so nothing signed for one project verifies in another,
//! and what a machine remembers is shared by every clone and worktree of the project.

use crate::error::{Error, Result};
use crate::project::Project;
use std::path::PathBuf;

/// Where the identity lives, relative to the project root.
pub const PROJECT_FILE: &str = "conf/vault-project";

const HEADER: &str = "vault project v1";

/// A project identity: 32 lowercase hex digits (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProjectId(String);

impl ProjectId {
    /// A new random identity.
    pub fn random() -> ProjectId {
        use ssh_key::rand_core::RngCore;
        let mut bytes = [0u8; 16];
        ssh_key::rand_core::OsRng.fill_bytes(&mut bytes);
        ProjectId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Reads an identity as a manifest or the project file spells it.
    pub fn parse(text: &str) -> Option<ProjectId> {
        let ok = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ProjectId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The project file's text.
    pub fn render(&self) -> String {
        format!("{HEADER}\nid {}\n", self.0)
    }
}

impl std::fmt::Display for ProjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Project {
    pub fn identity_path(&self) -> PathBuf {
        self.root().join(PROJECT_FILE)
    }

    /// The committed identity; None for a project written by a vault older than
    /// identities (it gets one by `vault migrate`).
    pub fn identity(&self) -> Result<Option<ProjectId>> {
        let path = self.identity_path();
        self.confined(&path)?;
        let Some(bytes) = crate::fs::read_limited(&path, 4096)? else {
            return Ok(None);
        };
        let malformed = || {
            Error::new(format!(
                "{PROJECT_FILE} is not a vault project identity (expected `{HEADER}` and an `id` line)"
            ))
            .with_hint(format!("restore it from git: git checkout -- {PROJECT_FILE}"))
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?;
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(HEADER) {
            return Err(malformed());
        }
        let id = lines
            .next()
            .and_then(|l| l.strip_prefix("id "))
            .and_then(ProjectId::parse)
            .ok_or_else(malformed)?;
        if lines.next().is_some() {
            return Err(malformed());
        }
        Ok(Some(id))
    }

    /// The identity, which a write needs: a project without one is told how to get it.
    pub fn required_identity(&self) -> Result<ProjectId> {
        self.identity()?.ok_or_else(|| {
            Error::new(format!(
                "this project has no identity yet ({PROJECT_FILE} is missing): its files were written by an older vault"
            ))
            .with_hint("a member runs `vault migrate` once, and commits conf/vault-project and the re-signed environments")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_random_and_round_trip() {
        let a = ProjectId::random();
        assert_ne!(a, ProjectId::random());
        assert_eq!(ProjectId::parse(a.as_str()), Some(a.clone()));
        assert!(ProjectId::parse("ABCDEF0123456789abcdef0123456789").is_none());
        assert!(ProjectId::parse("abc").is_none());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf")).unwrap();
        let p = Project::at(dir.path());
        assert_eq!(p.identity().unwrap(), None);
        std::fs::write(p.identity_path(), a.render()).unwrap();
        assert_eq!(p.identity().unwrap(), Some(a.clone()));
        std::fs::write(p.identity_path(), format!("{}extra\n", a.render())).unwrap();
        assert!(p.identity().is_err());
    }
}

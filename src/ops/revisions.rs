//! `vault diff`'s two sides: which versions the revisions given name (HEAD and the
//! working tree by default), each checked to exist, loaded, and compared.

use crate::error::{Error, Result};
use crate::git::{Git, Version};
use crate::ops::diff;
use crate::project::EnvName;
use crate::secret::SecretBuf;
use crate::store::Store;

/// The comparison of `env` between `revs` (none: HEAD against the working tree; one: it
/// against the working tree; two: the first against the second), values only with
/// `values`.
pub fn diff(store: &mut Store, env: &str, revs: &[String], values: bool) -> Result<SecretBuf> {
    let env = match store.project.environment(env) {
        Ok(e) => e,
        // An environment removed since an older revision can still be compared.
        Err(e) if revs.is_empty() => return Err(e),
        Err(_) => EnvName::parse(env)?,
    };
    let git = Git::new(store.project.root());
    if !git.is_repo() {
        return Err(Error::new(
            "vault diff compares git revisions, and this project is not in a git repository",
        )
        .with_hint("run `git init` and commit, or use `vault show` to see the current secrets"));
    }
    let (old, new) = versions(revs);
    for v in [&old, &new] {
        if let Version::Rev(r) = v {
            git.commit(r)?;
        }
    }
    let old_side = diff::load(store, &git, &env, &old)?;
    let new_side = diff::load(store, &git, &env, &new)?;
    if [&old_side, &new_side]
        .iter()
        .all(|s| !s.present && s.folder.is_empty())
    {
        return Err(Error::new(format!(
            "no environment '{env}' in {} or {}",
            old.label(),
            new.label()
        ))
        .with_hint("check the name: `vault status` lists the environments"));
    }
    Ok(diff::compare(&env, &old_side, &new_side, values))
}

/// The old and the new side the revisions given name.
fn versions(revs: &[String]) -> (Version, Version) {
    match revs {
        [] => (Version::Rev("HEAD".into()), Version::Worktree),
        [a] => (Version::Rev(a.clone()), Version::Worktree),
        [a, b, ..] => (Version::Rev(a.clone()), Version::Rev(b.clone())),
    }
}

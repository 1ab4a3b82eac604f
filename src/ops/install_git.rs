//! `vault install-git`: makes git show encrypted secrets by key and merge them: the
//! `.gitattributes` lines (committed, shared), and in this clone's own config the diff
//! and merge drivers and the pre-commit hook (each person runs it once per clone).

use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::Git;
use crate::project::Project;
use std::path::Path;

/// The attributes lines vault needs; patterns match at any depth below the project.
pub const ATTRIBUTES: &[&str] = &[
    "*.sls.age diff=vault merge=vault",
    "*.sls.age.sig diff=vault merge=vault",
];

const HOOK_MARK: &str = "# installed by `vault install-git`";

/// What was done, one line each, for the user.
pub fn install(project: &Project, exe: &Path) -> Result<Vec<String>> {
    let git = Git::new(project.root());
    if !git.is_repo() {
        return Err(Error::new(format!(
            "{} is not in a git repository",
            project.root().display()
        ))
        .with_hint("run `git init` first"));
    }
    let exe_q = command_name(exe)?;
    let mut done = Vec::new();
    done.extend(attributes(project)?);
    done.push(drivers(&git, &exe_q)?);
    done.push(hook(&git, &exe_q)?);
    Ok(done)
}

/// `vault` when PATH finds this very binary (it survives upgrades in place); else its
/// full path, so the drivers work from a build folder too.
fn command_name(exe: &Path) -> Result<String> {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            d.join("vault")
                .canonicalize()
                .ok()
                .zip(exe.canonicalize().ok())
                .is_some_and(|(a, b)| a == b)
        })
    });
    if on_path {
        return Ok("vault".to_string());
    }
    let path = exe
        .to_str()
        .ok_or_else(|| Error::new("the vault binary's path is not UTF-8"))?;
    Ok(shell_words::quote(path).into_owned())
}

/// `.gitattributes`: adds what is missing, keeps everything else.
fn attributes(project: &Project) -> Result<Option<String>> {
    let attrs = project.root().join(".gitattributes");
    project.confined(&attrs)?;
    let current = match std::fs::read_to_string(&attrs) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("cannot read", &attrs, e)),
    };
    let missing: Vec<&str> = ATTRIBUTES
        .iter()
        .copied()
        .filter(|l| !current.lines().any(|c| c.trim() == *l))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# vault: diff and merge secrets by key (vault install-git)\n");
    for l in &missing {
        text.push_str(l);
        text.push('\n');
    }
    fs::write_atomic(&attrs, text.as_bytes(), Mode::KeepOr0644)?;
    Ok(Some(
        "wrote .gitattributes (commit it, so every clone uses the drivers)".to_string(),
    ))
}

/// The diff and merge drivers in this clone's `.git/config`.
fn drivers(git: &Git, exe_q: &str) -> Result<String> {
    git.set_config("diff.vault.textconv", &format!("{exe_q} textconv"))?;
    git.set_config(
        "merge.vault.name",
        "vault: merge secrets by key, re-encrypt and sign",
    )?;
    git.set_config(
        "merge.vault.driver",
        &format!("{exe_q} merge-file %O %A %B %P"),
    )?;
    Ok(format!(
        "set diff.vault and merge.vault in .git/config (running {exe_q}; run install-git again if it moves)"
    ))
}

/// The pre-commit hook, unless one that vault did not write is there.
fn hook(git: &Git, exe_q: &str) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let hooks = git.hooks_dir()?;
    let hook = hooks.join("pre-commit");
    if std::fs::read_to_string(&hook).is_ok_and(|t| !t.contains(HOOK_MARK)) {
        return Ok(format!(
            "left the existing {} alone: add `vault pre-commit` to it",
            hook.display()
        ));
    }
    let script = format!("#!/bin/sh\n{HOOK_MARK}: refuse plaintext secrets and what `vault check` rejects\nexec {exe_q} pre-commit\n");
    std::fs::create_dir_all(&hooks).map_err(|e| Error::io("cannot create", &hooks, e))?;
    fs::write_atomic(&hook, script.as_bytes(), Mode::KeepOr0644)?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("cannot make executable", &hook, e))?;
    Ok(format!(
        "installed the pre-commit hook ({})",
        hook.display()
    ))
}

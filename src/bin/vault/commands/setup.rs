//! Setting up: `init`, `import`, `keygen` and `whoami`, and the `man` and `completions`
//! outputs made from the command line's own definition.

use crate::output::{write_stdout, Ui};
use crate::{complete, manual};
use std::io::IsTerminal;
use std::path::Path;
use vault::error::{Error, Result};
use vault::fs;
use vault::keys::{keygen, keystore};
use vault::ops::{import, init, status};
use vault::project::{EnvName, Project};
use vault::store::Store;

// Both are written whole through `write_stdout`, so a reader that stops early
// (`vault man | head`) ends them quietly.

/// The script that registers vault's dynamic completion in `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let out = complete::registration(shell)
        .map_err(|e| Error::new(format!("cannot write the completion script: {e}")))?;
    write_stdout(&out)?;
    Ok(0)
}

/// vault.1 on standard output, or every page written into `dir`.
pub fn man(ui: &Ui, dir: Option<&Path>) -> Result<i32> {
    let fail = |e: std::io::Error| Error::new(format!("cannot write the manual: {e}"));
    let Some(dir) = dir else {
        write_stdout(&manual::main_page().map_err(fail)?.roff)?;
        return Ok(0);
    };
    // Every page is rendered before the first is written.
    let pages = manual::all_pages().map_err(fail)?;
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::io("cannot create", dir, e)
            .with_hint("name a folder you can write: `vault man --dir DIR`")
    })?;
    for page in &pages {
        let path = dir.join(&page.file_name);
        fs::write_atomic(&path, &page.roff, fs::Mode::KeepOr0644)?;
        ui.note(&format!("wrote {}", path.display()));
    }
    Ok(0)
}

/// Lays out a project in `cwd` (made if missing); needs no project yet.
pub fn init(ui: &Ui, cwd: &Path, name: Option<String>, envs: &[String]) -> Result<i32> {
    let envs: Vec<EnvName> = if envs.is_empty() {
        vec![EnvName::parse("staging")?, EnvName::parse("production")?]
    } else {
        envs.iter()
            .map(|e| EnvName::parse(e))
            .collect::<Result<_>>()?
    };
    std::fs::create_dir_all(cwd).map_err(|e| Error::io("cannot create", cwd, e))?;
    let root = cwd
        .canonicalize()
        .map_err(|e| Error::io("cannot open", cwd, e))?;
    let project = Project::at(&root);
    let name = name.unwrap_or_else(|| init::default_project_name(&root));
    let report = init::init(&project, &name, &envs)?;
    for p in &report.created {
        ui.note(&format!("created {}", project.display_path(p)));
    }
    match &report.top_added {
        Some(added) if !added.is_empty() => {
            let names: Vec<&str> = added.iter().map(|e| e.as_str()).collect();
            ui.note(&format!(
                "added {} to conf/pillar/top.sls",
                names.join(", ")
            ));
        }
        Some(_) => {}
        None if report.created.iter().any(|p| p.ends_with("conf/pillar/top.sls")) => {}
        None => ui.note("kept conf/pillar/top.sls as it is (not the shape vault writes): make sure it maps '*-ENV' to [ENV.env, ENV.secrets] for each environment"),
    }
    if report.own_states {
        ui.note("kept conf/salt as it is (the project's own states); vault's env file and run wrapper are in conf/salt/vault: add `- vault` to conf/salt/top.sls, after the states that make the app user");
    }
    for (file, line) in &report.supervisor_env_lines {
        ui.warn(&format!(
            "{}:{line}: this supervisor environment= is built from pillar['secrets'], which breaks on a `%` or a quote in a value: change that line to start the program through vault's env file (README: \"Adopting a template project\")",
            project.display_path(file)
        ));
    }
    if report.needs_migration {
        ui.warn("this project holds secrets but has no identity (conf/vault-project): a member runs `vault migrate` once, and commits what it writes");
    }
    let (first, then) = match report.plaintext.first() {
        Some(env) => (env, format!("`vault import {env}` (it encrypts conf/pillar/{env}/secrets.sls and removes the plaintext)")),
        None => (&envs[0], format!("`vault edit {}`", envs[0])),
    };
    if report.created.is_empty() && report.top_added.as_ref().is_none_or(|a| a.is_empty()) {
        ui.note("nothing to create: the project is laid out");
    }
    // Someone already proposed a key for it: what is left is the first write.
    let proposed = std::fs::read_dir(project.recipients_dir(first))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".pub"))
        })
        .unwrap_or(false);
    match proposed {
        true => ui.note(&format!("next: {then}")),
        false => ui.note(&format!(
            "next: put your public key in recipients/{first}/YOURNAME.pub (`vault whoami` prints it; `vault keygen` makes one), then {then}"
        )),
    }
    Ok(0)
}

pub fn keygen(ui: &Ui, file: Option<&Path>, comment: Option<String>) -> Result<i32> {
    let comment = comment.unwrap_or_else(default_comment);
    let dest = match file {
        Some(p) => keygen::Destination::File(p),
        None => keygen::Destination::Keyring,
    };
    let key = keygen::keygen(dest, &comment)?;
    write_stdout(format!("{} {comment}\n{}\n", key.text(), key.fingerprint()).as_bytes())?;
    match file {
        Some(p) => {
            let full = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            ui.note(&format!(
                "private key written to {} (mode 0600); use it: `export VAULT_IDENTITY={}` (or `-i {}`)",
                p.display(),
                full.display(),
                full.display()
            ))
        }
        None => ui.note(&format!("private key stored in {}", keystore::NAME)),
    }
    ui.note("give the public line to a member as recipients/ENV/YOURNAME.pub, and read them the SHA256 fingerprint over another channel");
    Ok(0)
}

/// `user@host`, as ssh-keygen comments its keys.
fn default_comment() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "vault".into());
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{user}@{host}")
}

pub fn whoami(store: &mut Store) -> Result<i32> {
    let Some((source, keys)) = store.identities.current()? else {
        let tried = store.identities.report()?;
        return Err(
            Error::new(format!("no identity found; tried: {}", tried.join(", ")))
                .with_hint("make one with `vault keygen` (no keyring, as over SSH: `vault keygen --file ~/.ssh/vault_ed25519`, then `export VAULT_IDENTITY=~/.ssh/vault_ed25519`), or pass -i FILE"),
        );
    };
    let mut out = format!("identity: {}\n", source.label());
    for k in &keys {
        out.push_str(&format!(
            "public key: {}\nfingerprint: {}\nread aloud: {}\n",
            k.text(),
            k.fingerprint(),
            k.spoken()
        ));
    }
    if keys.is_empty() {
        out.push_str("public key: unknown (no public part in the file)\n");
    }
    let readable = status::readable_by(store, &keys)?;
    if readable.is_empty() {
        out.push_str("member of: none\n");
    } else {
        let list: Vec<String> = readable
            .iter()
            .map(|(e, m)| format!("{e} (as {m})"))
            .collect();
        out.push_str(&format!("member of: {}\n", list.join(", ")));
    }
    write_stdout(out.as_bytes())?;
    Ok(0)
}

pub fn import(
    ui: &Ui,
    store: &mut Store,
    env: &str,
    file: Option<&Path>,
    yes: bool,
) -> Result<i32> {
    let prepared = import::prepare(store, env, file)?;
    let env = prepared.env.clone();
    let source = store.project.display_path(&prepared.source);
    confirm_readings(ui, &prepared, &source, yes)?;
    let in_git = prepared.in_git;
    let missing = prepared.missing_from_example.clone();
    let done = import::commit(store, prepared)?;
    ui.note(&format!(
        "{env}: imported {} secret(s) from {source}, encrypted to {}",
        done.count,
        done.report.members.join(", ")
    ));
    ui.note(&format!("{source}: overwritten and removed"));
    if done.unstaged {
        ui.warn(&format!(
            "{source}: taken out of git's index, where it was staged (`git rm --cached`); its plaintext blob stays in .git/objects until `git gc --prune=now`"
        ));
    }
    if done.ignored_now {
        ui.note("added secrets.sls to .gitignore");
    }
    if !missing.is_empty() {
        let sets: Vec<String> = missing
            .iter()
            .map(|n| format!("`vault set {env} {n}`"))
            .collect();
        ui.warn(&format!(
            "conf/pillar/{env}/secrets.ex lists {} that {source} did not hold: add them with {}",
            missing.join(", "),
            sets.join(", ")
        ));
    }
    if in_git {
        ui.warn(&format!(
            "{source} is in this repository's history: every value in it was readable by anyone with the repository; give each a new value (`vault set {env} NAME`)"
        ));
    }
    ui.roster(&env, &done.report);
    ui.note(&format!(
        "next: commit conf/pillar/{env}/secrets.sls.age and its .sig, then `vault provision {env}`"
    ));
    Ok(0)
}

/// Names the values whose meaning vault's reading changes (with the values only at a
/// terminal, where the user reads them) and has the user confirm, or `--yes`.
fn confirm_readings(ui: &Ui, p: &import::Prepared, source: &str, yes: bool) -> Result<()> {
    if p.changes.is_empty() {
        return Ok(());
    }
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    ui.warn(&format!(
        "{}: {} value(s) Salt's YAML reading gave the servers as something else; vault keeps each as written:",
        source,
        p.changes.len()
    ));
    for c in &p.changes {
        let written = if terminal {
            format!("`{}`", c.text.as_str())
        } else {
            "the text".to_string()
        };
        ui.item(&format!(
            "{} (line {}): the servers got {}; vault keeps {written}",
            c.name, c.line, c.salt_read
        ));
    }
    if yes {
        return Ok(());
    }
    let refuse = |why: &str| {
        Error::usage(format!("{}: {why}; nothing was imported", p.env)).with_hint(format!(
            "quote the values in {source} as the program should see them, or confirm: `vault import {} --yes`",
            p.env
        ))
    };
    if !terminal {
        return Err(refuse(
            "a value's meaning changes and there is no terminal to confirm it",
        ));
    }
    crate::output::write_stderr("vault: import with each value as written? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(refuse("not confirmed")),
    }
}

//! Whether a provision's inputs are approved, decided before anything is decrypted for
//! the wire or shipped: the files rsync would ship (every file of `conf/salt`, and of
//! `conf/pillar` all but the secrets, the approval itself and other environments'
//! folders) and the servers, compared with the last valid approval in
//! `conf/pillar/<env>/approval.sig` (see [`crate::trust::approval`]). What differs is
//! listed file by file with the commit that last touched it; the member says yes (at a
//! terminal, or `--approve`) and a new approval is signed, or nothing happens.

use super::Target;
use crate::error::{Error, Result};
use crate::git::Git;
use crate::keys::recipients;
use crate::project::{EnvName, Project};
use crate::project_id::ProjectId;
use crate::store::Store;
use crate::trust::approval::{self, Approval, Checked, Digest, Inputs, MAX_APPROVAL_BYTES};
use crate::trust::Verified;
use std::path::{Path, PathBuf};

/// The approval's file name, in the environment's pillar folder.
pub const FILE_NAME: &str = "approval.sig";

/// Where `env`'s approval lives.
pub fn path(project: &Project, env: &EnvName) -> PathBuf {
    project.env_pillar_dir(env).join(FILE_NAME)
}

/// What the member is asked to approve: what changed since the last valid approval.
pub struct Pending {
    pub env: EnvName,
    /// The last valid approval's serial and approver; None when there is none.
    pub last: Option<(u64, String)>,
    /// Why the approval file on disk does not count (forged, another environment's...).
    pub invalid: Option<String>,
    pub files: Vec<FileChange>,
    pub hosts_added: Vec<String>,
    pub hosts_removed: Vec<String>,
}

/// One input file that differs: `added`, `removed` or `changed`, and who last touched
/// it in git (`<commit> <author>`, or that the change is not committed).
pub struct FileChange {
    pub path: String,
    pub change: &'static str,
    pub by: String,
}

/// The member's answer.
pub enum Consent {
    Yes,
    No,
    /// No terminal to ask at, and no `--approve`.
    NoTerminal,
}

impl Pending {
    /// Why an approval is needed, in a few words.
    fn reason(&self) -> String {
        let shown = format!("conf/pillar/{}/{FILE_NAME}", self.env);
        match (&self.invalid, &self.last) {
            (Some(why), _) => format!("the deployment approval {shown} does not verify: {why}"),
            (None, None) => format!("the deployment inputs were never approved (no {shown})"),
            (None, Some((serial, who))) => format!(
                "the deployment inputs changed since the last approval (serial {serial}, by {who})"
            ),
        }
    }

    /// The listing shown before asking: one line per change.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("{}: {}:", self.env, self.reason())];
        for f in &self.files {
            out.push(format!("  {:<8} {}  ({})", f.change, f.path, f.by));
        }
        for h in &self.hosts_added {
            out.push(format!("  {:<8} host {h}", "added"));
        }
        for h in &self.hosts_removed {
            out.push(format!("  {:<8} host {h}", "removed"));
        }
        out
    }

    /// The same in one line, for the error when nobody can be asked.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 8;
        let mut parts: Vec<String> = self
            .files
            .iter()
            .take(SHOWN)
            .map(|f| format!("{} {} ({})", f.change, f.path, f.by))
            .collect();
        if self.files.len() > SHOWN {
            parts.push(format!("and {} more file(s)", self.files.len() - SHOWN));
        }
        parts.extend(self.hosts_added.iter().map(|h| format!("added host {h}")));
        parts.extend(
            self.hosts_removed
                .iter()
                .map(|h| format!("removed host {h}")),
        );
        format!("{}: {}", self.reason(), parts.join(", "))
    }
}

/// Holds a provision of `env` to `targets` to a valid approval of exactly what it ships;
/// when there is none, `ask` says whether this member approves what changed, and a new
/// approval is signed, for the caller to write ([`Signed::write`]). Nothing is
/// decrypted here.
pub fn require(
    store: &mut Store,
    env: &EnvName,
    targets: &[Target],
    other_envs: &[EnvName],
    trees: &[PathBuf],
    ask: &dyn Fn(&Pending) -> Consent,
) -> Result<Option<Signed>> {
    let id = store.project.required_identity()?;
    let secrets = verified_secrets(store, env)?;
    let hosts = targets.iter().map(host_key);
    let now = inputs(&store.project, env, other_envs, trees, hosts)?;
    let seen = store.seen().approval_serial(env);
    let last = last_approval(&store.project, &id, env, &secrets, seen)?;
    let Some(pending) = pending(&store.project, env, &last, &now) else {
        if let Ok(c) = &last {
            remember(store, env, c.approval.serial);
        }
        return Ok(None);
    };
    match ask(&pending) {
        Consent::Yes => {
            let on_disk = last.as_ref().map(|c| c.approval.serial).unwrap_or(0);
            let serial = seen.unwrap_or(0).max(on_disk).saturating_add(1);
            sign_new(store, env, id, &secrets, now, serial).map(Some)
        }
        Consent::No => Err(Error::new(format!(
            "{env}: the deployment inputs were not approved; nothing was shipped"
        ))
        .with_hint(format!(
            "see who changed them: git log -p -- conf/salt conf/pillar; approve with `vault provision {env} --approve`"
        ))),
        Consent::NoTerminal => Err(Error::new(format!(
            "{env}: {}; nothing was shipped",
            pending.summary()
        ))
        .with_hint(format!(
            "review them (git log -p -- conf/salt conf/pillar), then approve: `vault provision {env} --approve`, or run it at a terminal to be asked"
        ))),
    }
}

/// The environment's sidecar, verified as a read verifies it: its trusted roster says
/// who may approve.
fn verified_secrets(store: &mut Store, env: &EnvName) -> Result<Verified> {
    let pair = store.read_env(env)?.ok_or_else(|| {
        Error::new(format!(
            "{env} has no secrets yet ({} does not exist)",
            store.project.display_path(&store.project.secrets_path(env))
        ))
        .with_hint(format!(
            "add one with `vault set {env} NAME`, or `vault edit {env}`"
        ))
    })?;
    let folder = recipients::members(&store.project, env)?;
    store.verify(env, &pair, &folder)?.ok_or_else(|| {
        Error::new(format!(
            "{env}: its deployment approval cannot be checked against secrets whose signature did not verify"
        ))
        .with_hint("--insecure-skip-verify does not extend to what is shipped; restore the secrets' files from git")
    })
}

/// The last approval: Ok when it verifies, Err(why) when the file is there and does not,
/// Err("") when there is none.
fn last_approval(
    project: &Project,
    id: &ProjectId,
    env: &EnvName,
    secrets: &Verified,
    seen: Option<u64>,
) -> Result<std::result::Result<Checked, String>> {
    let file = path(project, env);
    project.confined(&file)?;
    let Some(bytes) = crate::fs::read_limited(&file, MAX_APPROVAL_BYTES)? else {
        return Ok(Err(String::new()));
    };
    Ok(approval::verify(&bytes, id, env.as_str(), secrets, seen))
}

/// What differs between `now` and the last approval; None when it approves `now` (the
/// same files, and no server it did not approve: a run to fewer servers needs no new one).
fn pending(
    project: &Project,
    env: &EnvName,
    last: &std::result::Result<Checked, String>,
    now: &Inputs,
) -> Option<Pending> {
    let before = last.as_ref().map(|c| &c.approval.inputs).ok();
    let empty = Inputs::default();
    let was = before.unwrap_or(&empty);
    let hosts_added: Vec<String> = now.hosts.difference(&was.hosts).cloned().collect();
    if before.is_some() && was.files == now.files && hosts_added.is_empty() {
        return None;
    }
    let git = Git::new(project.root());
    let in_git = git.is_repo();
    let files = file_changes(&was.files, &now.files)
        .into_iter()
        .map(|(path, change)| FileChange {
            by: last_change(&git, in_git, &path),
            path,
            change,
        })
        .collect();
    Some(Pending {
        env: env.clone(),
        last: last
            .as_ref()
            .ok()
            .map(|c| (c.approval.serial, c.member.clone())),
        invalid: last.as_ref().err().filter(|w| !w.is_empty()).cloned(),
        files,
        hosts_added,
        hosts_removed: was.hosts.difference(&now.hosts).cloned().collect(),
    })
}

/// Each path added, removed or changed between two sets of inputs, in path order.
fn file_changes(
    was: &std::collections::BTreeMap<String, Digest>,
    now: &std::collections::BTreeMap<String, Digest>,
) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for (path, d) in now {
        match was.get(path) {
            None => out.push((path.clone(), "added")),
            Some(w) if w != d => out.push((path.clone(), "changed")),
            Some(_) => {}
        }
    }
    out.extend(
        was.keys()
            .filter(|p| !now.contains_key(*p))
            .map(|p| (p.clone(), "removed")),
    );
    out.sort();
    out
}

/// Who last changed `path`: `<commit> <author>` of the last commit touching it, or that
/// the working tree holds a change not committed.
fn last_change(git: &Git, in_git: bool, path: &str) -> String {
    if !in_git {
        return "not in git".into();
    }
    let text = |args: &[&str]| {
        git.output(args)
            .map(|o| String::from_utf8_lossy(&o).trim().to_string())
            .unwrap_or_default()
    };
    let status = text(&["status", "--porcelain", "--", path]);
    let commit = text(&["log", "-1", "--format=%h %an", "--", path]);
    match (status.is_empty(), commit.is_empty()) {
        (true, false) => commit,
        (false, false) => format!("uncommitted change; last commit {commit}"),
        (_, true) => "uncommitted".into(),
    }
}

/// A new approval, signed and not yet written: the run writes it once everything else
/// it checks before connecting holds, so a refused run leaves the project as it was.
#[must_use = "a signed approval is kept only once written"]
pub struct Signed {
    env: EnvName,
    text: String,
    serial: u64,
}

impl Signed {
    /// Writes the approval and remembers its serial.
    pub fn write(self, store: &mut Store) -> Result<()> {
        let file = path(&store.project, &self.env);
        store.project.confined(&file)?;
        crate::fs::write_atomic(&file, self.text.as_bytes(), crate::fs::Mode::KeepOr0644)?;
        remember(store, &self.env, self.serial);
        Ok(())
    }
}

/// Signs an approval of `inputs` as this member.
fn sign_new(
    store: &mut Store,
    env: &EnvName,
    project: ProjectId,
    secrets: &Verified,
    inputs: Inputs,
    serial: u64,
) -> Result<Signed> {
    let mut signer = store.identities.signer(&secrets.trusted, env.as_str())?;
    let a = Approval {
        project,
        environment: env.as_str().to_string(),
        serial,
        approver: signer.public()?.fingerprint(),
        date: crate::manifest::today(),
        inputs,
    };
    let text = approval::sign(&a, &mut signer)?;
    Ok(Signed {
        env: env.clone(),
        text,
        serial,
    })
}

/// Remembers the highest approval serial seen; a read-only home only weakens the
/// protection against an old approval put back, so it does not stop the run.
fn remember(store: &mut Store, env: &EnvName, serial: u64) {
    let _ = store.seen().record_approval_serial(env, serial);
}

/// How a server is named in an approval: `host:port`. The login user is left out: it
/// does not change where the secrets go (a later run as a developer is the same server).
pub fn host_key(t: &Target) -> String {
    format!("{}:{}", t.host, t.port_or_default())
}

/// The inputs of a provision of `env`: each file rsync ships, by path and digest, and
/// the servers.
pub fn inputs(
    project: &Project,
    env: &EnvName,
    other_envs: &[EnvName],
    trees: &[PathBuf],
    hosts: impl Iterator<Item = String>,
) -> Result<Inputs> {
    let mut out = Inputs {
        hosts: hosts.collect(),
        ..Inputs::default()
    };
    let conf = project.root().join("conf");
    for root in ["salt", "pillar"] {
        // rsync ships a link there as a link, which the server resolves among its own
        // folders: what the walk would find through it here is not what Salt reads.
        if std::fs::symlink_metadata(conf.join(root)).is_ok_and(|m| m.is_symlink()) {
            return Err(Error::new(format!(
                "conf/{root} is a link: rsync ships it as one, so the server would read what it points to there, not what is approved here"
            ))
            .with_hint(format!("make conf/{root} a folder (git log -- conf/{root} shows who made it a link)")));
        }
    }
    walk(&conf, &conf.join("salt"), &|_| true, &mut out)?;
    let pillar = conf.join("pillar");
    let own = format!("pillar/{env}/{FILE_NAME}");
    let shipped = |rel: &str| {
        rel != own
            && !other_envs
                .iter()
                .any(|e| rel.starts_with(&format!("pillar/{e}/")))
    };
    walk(&conf, &pillar, &shipped, &mut out)?;
    // An extra state tree's files are named `state_trees/<its folder's name>/...`, as
    // they are shipped (see `host.rs`); rsync leaves out its `.git`.
    let not_git = |rel: &str| rel.split('/').nth(1) != Some(".git");
    for tree in trees {
        walk_named(
            tree.parent().unwrap_or(tree),
            tree,
            "state_trees/",
            &not_git,
            &mut out,
        )?;
    }
    Ok(out)
}

/// The names rsync leaves out wherever they are (see `host.rs`).
fn excluded(name: &str) -> bool {
    name.ends_with(".age")
        || name.ends_with(".age.sig")
        || name.starts_with(".vault-")
        || name == "secrets.sls"
}

/// Every file and link under `dir` (not following links), named from the project root
/// as `conf/<rel>`, where `keep(rel)` says it is shipped.
fn walk(conf: &Path, dir: &Path, keep: &dyn Fn(&str) -> bool, out: &mut Inputs) -> Result<()> {
    walk_named(conf, dir, "conf/", keep, out)
}

/// Every file and link under `dir` (not following links), named `<prefix><rel>` with
/// `rel` its path under `base`, where `keep(rel)` says it is shipped.
fn walk_named(
    base: &Path,
    dir: &Path,
    prefix: &str,
    keep: &dyn Fn(&str) -> bool,
    out: &mut Inputs,
) -> Result<()> {
    let conf = base;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot read", dir, e)),
    };
    for entry in entries {
        let p = entry.map_err(|e| Error::io("cannot read", dir, e))?.path();
        let rel = input_name(conf, &p)?;
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let meta = std::fs::symlink_metadata(&p).map_err(|e| Error::io("cannot read", &p, e))?;
        // A folder is matched as `rel/`, as rsync matches `--exclude=/pillar/ENV/`.
        let matched = if meta.is_dir() {
            format!("{rel}/")
        } else {
            rel.clone()
        };
        if excluded(name) || !keep(&matched) {
            continue;
        }
        let digest = if meta.is_dir() {
            walk_named(conf, &p, prefix, keep, out)?;
            continue;
        } else if meta.is_symlink() {
            let to = std::fs::read_link(&p).map_err(|e| Error::io("cannot read", &p, e))?;
            Digest::Link(approval::digest(to.as_os_str().as_encoded_bytes()))
        } else if meta.is_file() {
            let bytes = std::fs::read(&p).map_err(|e| Error::io("cannot read", &p, e))?;
            Digest::File(approval::digest(&bytes))
        } else {
            return Err(Error::new(format!(
                "{prefix}{rel}: neither a file, a folder nor a link: it cannot be approved"
            )));
        };
        out.files.insert(format!("{prefix}{rel}"), digest);
    }
    Ok(())
}

/// `p`'s path under `conf/`, which an approval line can hold.
fn input_name(conf: &Path, p: &Path) -> Result<String> {
    let rel = p
        .strip_prefix(conf)
        .ok()
        .and_then(|r| r.to_str())
        .filter(|r| !r.chars().any(char::is_control))
        .ok_or_else(|| {
            Error::new(format!(
                "{}: a name that is not UTF-8 or holds a control character cannot be approved",
                p.display()
            ))
            .with_hint("rename it")
        })?;
    Ok(rel.to_string())
}

/// `vault check`'s findings on `env`'s approval, against `secrets` (its verified
/// sidecar): none when nothing is deployed from it yet (no approval, no hosts listed).
/// Servers given with `-H` are not known here: the hosts compared are those listed.
pub fn findings(
    project: &Project,
    env: &EnvName,
    secrets: &Verified,
    id: Option<&ProjectId>,
) -> Vec<String> {
    let env_file = super::pillar::EnvFile::read(project, env);
    let listed: Vec<String> = env_file
        .as_ref()
        .ok()
        .and_then(|f| super::targets(&f.hosts(), None).ok())
        .map(|ts| ts.iter().map(host_key).collect())
        .unwrap_or_default();
    let file = path(project, env);
    let bytes = match project.confined(&file).and_then(|()| crate::fs::read_limited(&file, MAX_APPROVAL_BYTES)) {
        Ok(Some(b)) => b,
        Ok(None) if listed.is_empty() => return vec![],
        Ok(None) => return vec![format!("{env}: deployment inputs never approved (no conf/pillar/{env}/{FILE_NAME}): a member reviews them and runs `vault provision {env} --approve`")],
        Err(e) => return vec![e.to_string()],
    };
    let Some(id) = id else {
        return vec![format!(
            "{env}: conf/pillar/{env}/{FILE_NAME} cannot be checked: the project has no identity"
        )];
    };
    let checked = match approval::verify(&bytes, id, env.as_str(), secrets, None) {
        Ok(c) => c,
        Err(why) => {
            return vec![format!(
                "{env}: conf/pillar/{env}/{FILE_NAME} does not verify: {why}"
            )]
        }
    };
    let others: Vec<EnvName> = project
        .environments()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e != env)
        .collect();
    // Extra state trees are checked out beside the project, so CI may not have them:
    // without them, only the project's own files are compared.
    let trees = env_file.and_then(|f| f.state_trees(project));
    let now = match inputs(
        project,
        env,
        &others,
        trees.as_deref().unwrap_or_default(),
        listed.into_iter(),
    ) {
        Ok(i) => i,
        Err(e) => return vec![format!("{env}: {e}")],
    };
    let mut checked = checked;
    if trees.is_err() {
        checked
            .approval
            .inputs
            .files
            .retain(|p, _| !p.starts_with("state_trees/"));
    }
    changed(env, &checked, &now)
}

/// The finding on inputs that differ from a valid approval, when they do.
fn changed(env: &EnvName, c: &Checked, now: &Inputs) -> Vec<String> {
    let mut what: Vec<String> = file_changes(&c.approval.inputs.files, &now.files)
        .into_iter()
        .map(|(p, how)| format!("{p} ({how})"))
        .collect();
    what.extend(
        now.hosts
            .difference(&c.approval.inputs.hosts)
            .map(|h| format!("host {h} (not approved)")),
    );
    if what.is_empty() {
        return vec![];
    }
    vec![format!(
        "{env}: deployment inputs changed since the last approval (serial {}, by {}): {}: a member reviews them and runs `vault provision {env} --approve`",
        c.approval.serial,
        c.member,
        what.join(", ")
    )]
}

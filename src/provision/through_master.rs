//! `vault provision ENV` for an environment with a salt-master (`master:` and
//! `minions:` in its env.sls): its inputs approved and its secrets verified here (never
//! decrypted: this machine ships ciphertext only), the project shipped to the master
//! over one SSH connection (states, the non-secret pillar, the environment's ciphertext
//! with its signed sidecar, its recipients and the project identity; no other
//! environment's), and the states run on the minions by vault on the master
//! ([`crate::master::apply`]), each minion's result coming back as it returns.

use super::master_admin::{remote_error, remote_vault};
use super::pillar::EnvFile;
use super::plan::Request;
use super::report::{Applied, HostReport};
use super::session;
use super::{Progress, Settings, Target};
use crate::error::{Error, Result};
use crate::master::apply::Minion;
use crate::master::Layout;
use crate::project::EnvName;
use crate::store::Store;
use openssh::{Session, Stdio};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A run through the master, settled before anything connects.
pub struct MasterPlan {
    pub settings: Settings,
    pub master: Target,
    pub minions: Vec<String>,
    /// The hash of the ciphertext shipped: the master applies that one, or nothing.
    ciphertext: String,
}

/// The run through the master `env.sls` names, or None when it names none (or `-H`
/// names servers to provision without it).
pub fn plan(
    store: &mut Store,
    req: &Request,
    ask: &dyn Fn(&super::approval::Pending) -> super::approval::Consent,
) -> Result<Option<MasterPlan>> {
    let env = store.project.environment(&req.env)?;
    let env_file = EnvFile::read(&store.project, &env)?;
    let Some(master) = env_file.master().filter(|_| req.hosts.is_empty()) else {
        return Ok(None);
    };
    let project_name = super::pillar::project_name(&store.project)?;
    let minions = env_file.minions();
    if minions.is_empty() {
        return Err(Error::usage(format!(
            "{env}: a master but no minions: in conf/pillar/{env}/env.sls"
        ))
        .with_hint(format!(
            "list the IDs of {env}'s minions under minions: in conf/pillar/{env}/env.sls"
        )));
    }
    for m in &minions {
        crate::master::check_minion_id(m)?;
    }
    if !env_file.state_trees(&store.project)?.is_empty() {
        return Err(Error::usage(format!(
            "{env}: vault: state_trees is not supported with a master yet"
        ))
        .with_hint("copy the extra states into conf/salt, or provision without master:"));
    }
    env_file.settings()?;
    let other_envs = super::plan::other_envs(&store.project, &env)?;
    shippable(&store.project, &other_envs)?;
    // The master merges pillar files as a minion does: a `secrets:` of a plain one would
    // join those vault serves.
    super::pillar::no_plain_secrets(&store.project, &other_envs)?;
    let targets = super::targets(&[master], req.user.as_deref())?;
    let approval = super::approval::require(store, &env, &targets, &other_envs, &[], ask)?;
    let ciphertext = verify_here(store, &env)?;
    if let Some(signed) = approval {
        signed.write(store)?;
    }
    let mut settings = Settings::connection(
        env,
        req.remote_root.clone(),
        req.accept_new_host_key,
        req.ssh_config.clone(),
    );
    settings.project_name = project_name;
    settings.other_envs = other_envs;
    settings.dry_run = req.dry_run;
    settings.jobs = req.jobs;
    settings.quiet = req.quiet;
    let master = targets.into_iter().next().expect("one master");
    Ok(Some(MasterPlan {
        settings,
        master,
        minions,
        ciphertext,
    }))
}

/// What is shipped to a master holds no link (Salt on the master would follow one out
/// of the roots, as root) and no pillar file Salt would render as a template there
/// (Jinja in a pillar file runs on the master, beside every environment's identity).
fn shippable(project: &crate::project::Project, other_envs: &[EnvName]) -> Result<()> {
    let skip: Vec<std::path::PathBuf> = other_envs
        .iter()
        .map(|e| project.env_pillar_dir(e))
        .collect();
    for top in [project.root().join("conf/salt"), project.pillar_dir()] {
        let mut dirs = vec![top];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("cannot read", &dir, e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let kind = entry
                    .file_type()
                    .map_err(|e| Error::io("cannot read", &path, e))?;
                let shown = project.display_path(&path);
                if kind.is_symlink() {
                    return Err(Error::usage(format!(
                        "{shown} is a link: nothing shipped to a master may be one (Salt there would follow it, as root)"
                    ))
                    .with_hint(format!("replace it with the file itself, or remove it: git rm {shown}")));
                }
                if kind.is_dir()
                    && !skip.contains(&path)
                    && !entry.file_name().to_string_lossy().starts_with(".git")
                {
                    dirs.push(path);
                } else if kind.is_file()
                    && path.starts_with(project.pillar_dir())
                    && templated(&path)?
                {
                    return Err(Error::usage(format!(
                        "{shown} is a template (Jinja or a #! renderer line): with a master, pillar files are rendered there as root, so vault ships plain YAML only"
                    ))
                    .with_hint("write the values out in the file, without Jinja"));
                }
            }
        }
    }
    Ok(())
}

/// A pillar `.sls` file Salt would render as something other than plain YAML.
fn templated(path: &Path) -> Result<bool> {
    if path.extension().is_none_or(|x| x != "sls") {
        return Ok(false);
    }
    let text = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    let text = String::from_utf8_lossy(&text);
    Ok(text.starts_with("#!") || ["{{", "{%", "{#"].iter().any(|m| text.contains(m)))
}

/// The environment's pair verified as any read verifies it, without decrypting it; the
/// hash of its ciphertext.
fn verify_here(store: &mut Store, env: &EnvName) -> Result<String> {
    let pair = store.read_env(env)?.ok_or_else(|| {
        Error::new(format!("{env} has no secrets yet"))
            .with_hint(format!("add one with `vault set {env} NAME`"))
    })?;
    let folder = crate::keys::recipients::members(&store.project, env)?;
    store.verify(env, &pair, &folder)?;
    Ok(crate::trust::ciphertext_hash(&pair.ciphertext))
}

impl MasterPlan {
    /// Ships the project and runs the states through the master; a report per minion.
    pub fn run(&self, store: &Store, progress: &dyn Progress) -> Vec<HostReport> {
        progress.hosts(&self.minions);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let result = match runtime {
            Ok(r) => r.block_on(self.over_ssh(store.project.root(), progress)),
            Err(e) => Err(Error::new(format!("cannot start: {e}"))),
        };
        let mut reports = match result {
            Ok(reports) => reports,
            Err(e) => self.all_failed(&e, progress),
        };
        for (i, m) in self.minions.iter().enumerate() {
            if !reports.iter().any(|r| r.target == *m) {
                let why = Err("the master gave no result for it".to_string());
                progress.finished(i, &why);
                reports.push(report(m, why, 0.0));
            }
        }
        reports.sort_by_key(|r| self.minions.iter().position(|m| *m == r.target));
        reports
    }

    fn all_failed(&self, e: &Error, progress: &dyn Progress) -> Vec<HostReport> {
        let why = match e.hint() {
            Some(h) => format!("{} ({h})", e.message()),
            None => e.message().to_string(),
        };
        self.minions
            .iter()
            .enumerate()
            .map(|(i, m)| {
                progress.finished(i, &Err(why.clone()));
                report(m, Err(why.clone()), 0.0)
            })
            .collect()
    }

    async fn over_ssh(&self, root: &Path, progress: &dyn Progress) -> Result<Vec<HostReport>> {
        for i in 0..self.minions.len() {
            progress.step(i, "connect");
        }
        let (session, accepted) = session::connect(&self.master, &self.settings)
            .await
            .map_err(|f| f.into_error())?;
        if let Some((file, key)) = accepted {
            let msg = format!(
                "host key of the master accepted: {} ({}), now in {file}",
                key.fingerprint, key.kind
            );
            progress.note(0, &msg);
        }
        let result = async {
            for i in 0..self.minions.len() {
                progress.step(i, "rsync");
            }
            self.ship(&session, root).await?;
            self.apply(&session, progress).await
        }
        .await;
        let _ = session.close().await;
        result
    }

    fn layout(&self) -> Layout {
        let root = self.settings.remote_root.as_str();
        Layout::new(Path::new(if root.is_empty() { "/" } else { root }))
    }

    /// rsync of the project's part for this environment into its folder on the master.
    async fn ship(&self, session: &Session, root: &Path) -> Result<()> {
        let s = &self.settings;
        let dir = self.layout().project_dir(&s.project_name, &s.env);
        let q = shell_words::quote(&dir.display().to_string()).into_owned();
        let sudo = if self.master.is_root() {
            ""
        } else {
            "sudo -n "
        };
        let mut cmd = tokio::process::Command::new("rsync");
        cmd.current_dir(root).args([
            "-a",
            // Never a link, though `shippable` refused them already.
            "--no-links",
            "--delete",
            "--relative",
            // No plaintext ever: a working tree's secrets.sls stays here.
            "--exclude=secrets.sls",
            "--exclude=.vault-*",
            // vault's top files on the master are its own (and kept by --delete).
            "--exclude=/conf/salt/vault_top.sls",
            "--exclude=/conf/pillar/vault_top.sls",
        ]);
        for e in &s.other_envs {
            cmd.arg(format!("--exclude=/conf/pillar/{e}/"));
        }
        // The environment's pair, and no other `.age` name: the approval passes over
        // those, so nothing it did not see reaches what the master serves.
        let pair = format!("/conf/pillar/{}/secrets.sls.age", s.env);
        cmd.arg(format!("--include={pair}"))
            .arg(format!("--include={pair}.sig"))
            .args(["--exclude=*.age", "--exclude=*.age.sig"]);
        cmd.arg("-e")
            .arg(session::rsync_ssh(session, s.ssh_config.as_deref()))
            .arg(format!("--rsync-path={sudo}mkdir -p {q} && {sudo}rsync"))
            .args(["./conf/salt", "./conf/pillar", "./conf/vault-project"])
            .arg(format!("./recipients/{}", s.env))
            .arg(format!("{}:{}/", self.master.host, dir.display()));
        let out = cmd
            .output()
            .await
            .map_err(|e| Error::new(format!("cannot run rsync: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "shipping {} to the master {} failed: {}",
                s.env,
                self.master.label(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// vault on the master runs the states; each minion's line read as it comes.
    async fn apply(&self, session: &Session, progress: &dyn Progress) -> Result<Vec<HostReport>> {
        let s = &self.settings;
        let jobs = s.jobs.to_string();
        let mut args = vec!["local-apply", s.env.as_str(), "--jobs", &jobs];
        args.extend([
            "--project",
            &s.project_name,
            "--ciphertext",
            &self.ciphertext,
        ]);
        if s.dry_run {
            args.push("--dry-run");
        }
        let script = remote_vault(&self.layout(), &args);
        for i in 0..self.minions.len() {
            progress.step(i, "salt");
        }
        let mut child = session::shell(session, &self.master, &script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| Error::new(format!("cannot run vault on the master: {e}")))?;
        let stdout = child
            .stdout()
            .take()
            .ok_or_else(|| Error::new("no output"))?;
        let mut stderr = child
            .stderr()
            .take()
            .ok_or_else(|| Error::new("no output"))?;
        let read_err = async {
            let mut buf = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await;
            buf
        };
        let follow = async {
            let mut reports = Vec::new();
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Some(m) = Minion::parse(&line) else {
                    continue;
                };
                let Some(i) = self.minions.iter().position(|id| *id == m.id) else {
                    continue;
                };
                let (result, seconds) = result_of(m);
                progress.finished(i, &result);
                reports.push(report(&self.minions[i], result, seconds));
            }
            reports
        };
        let (err, reports) = tokio::join!(read_err, follow);
        let status = child
            .wait()
            .await
            .map_err(|e| Error::new(format!("the master: {e}")))?;
        if !status.success() && reports.is_empty() {
            return Err(remote_error(&self.master, &String::from_utf8_lossy(&err)));
        }
        Ok(reports)
    }
}

fn result_of(m: Minion) -> (std::result::Result<Applied, String>, f64) {
    if let Some(e) = m.error {
        return (Err(e), m.seconds);
    }
    let applied = Applied {
        changed: m.changed,
        failed: m.failed,
        details: m.details,
        did: m.did,
    };
    (Ok(applied), m.seconds)
}

fn report(minion: &str, result: std::result::Result<Applied, String>, seconds: f64) -> HostReport {
    HostReport {
        target: minion.to_string(),
        result,
        hint: None,
        seconds,
        steps: Vec::new(),
    }
}

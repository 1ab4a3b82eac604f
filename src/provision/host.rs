//! One host's provision, step by step: connect, rsync of the Salt roots (with the server's
//! record of the version it runs, judged), the secrets and salt-call in one remote script, and what the run leaves on the server removed; each
//! step timed as it goes, and reported to the run's [`Progress`] as it starts.

use crate::project::Project;
use crate::provision::freshness::{self, Record};
use crate::provision::layout::Layout;
use crate::provision::progress::Progress;
use crate::provision::remote::{self, apply_script, leftovers_removal, ApplyScript, RecordSwap};
use crate::provision::report::{Applied, Failure, HostReport};
use crate::provision::salt_output::{Line, Redactor, SaltOutput};
use crate::provision::session::{self, shell};
use crate::provision::target::Target;
use crate::provision::Settings;
use crate::secret::SecretBytes;
use openssh::{ChildStdout, Session, Stdio};
use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;

/// One host of a run, and what it shares with the others.
pub(super) struct Host<'a> {
    /// The host's place in the run's list: how [`Progress`] names it.
    pub index: usize,
    pub project: &'a Project,
    pub settings: &'a Settings,
    pub target: &'a Target,
    pub pillar: &'a SecretBytes,
    pub redactor: &'a Redactor,
    pub progress: &'a dyn Progress,
    /// Each step's name, start, and (once over) seconds.
    pub steps: RefCell<Vec<(&'static str, Instant, f64)>>,
}

impl Host<'_> {
    /// Starts step `name` (ending the one before); "" only ends the last.
    fn step(&self, name: &'static str) {
        let mut steps = self.steps.borrow_mut();
        if let Some(last) = steps.last_mut() {
            if last.2 == 0.0 {
                last.2 = last.1.elapsed().as_secs_f64();
            }
        }
        if !name.is_empty() {
            steps.push((name, Instant::now(), 0.0));
            self.progress.step(self.index, name);
        }
    }

    /// The host's run, once one of the run's `jobs` places is free: timed, and its
    /// end reported.
    pub async fn provision(self, limit: &Semaphore) -> HostReport {
        let _permit = limit.acquire().await;
        let start = Instant::now();
        let (result, hint) = match self.run().await {
            Ok(a) => (Ok(a), None),
            Err(f) => (Err(f.message), f.hint),
        };
        self.progress.finished(self.index, &result);
        self.step("");
        let steps = self.steps.into_inner();
        HostReport {
            target: self.target.label(),
            result,
            hint,
            seconds: start.elapsed().as_secs_f64(),
            steps: steps
                .into_iter()
                .map(|(name, _, secs)| (name, secs))
                .collect(),
        }
    }

    /// Connects, provisions, and closes the connection however the steps went.
    async fn run(&self) -> Result<Applied, Failure> {
        self.step("connect");
        let (session, accepted) = session::connect(self.target, self.settings).await?;
        if let Some((file, key)) = accepted {
            let (fp, kind) = (&key.fingerprint, &key.kind);
            let msg = format!("host key accepted: {fp} ({kind}), now in {file}");
            self.progress.note(self.index, &msg);
        }
        let result = self.steps(&session).await;
        let _ = session.close().await;
        result
    }

    /// The two round trips over the connection, and what they leave on the server
    /// removed when they fail.
    async fn steps(&self, session: &Session) -> Result<Applied, Failure> {
        let layout = Layout::new(self.settings, self.target);
        let removal = leftovers_removal(
            &layout.env_dir,
            layout.scratch.as_deref(),
            self.settings.keep_pillar,
        );
        let current = self.settings.lineage.current.as_ref();
        let new_record = current.map(freshness::Version::record_line);
        let applied = async {
            // Round trip 1: rsync of conf/salt and conf/pillar (its remote end first checks
            // for salt-call, so nothing is shipped to a host that cannot apply it).
            // It also reads the server's record of the version it applied, and ships
            // nothing when that is not one this version follows (see `freshness`).
            self.step("rsync");
            let record = self.ship(session, &layout).await?;

            // Round trip 2: the minion config (no secret in it, so on the command line),
            // the secrets from standard input into a 0600 file, a marker line, salt-call,
            // and (from a trap, so it happens however the script ends) the secrets removed.
            self.step("secrets");
            let script = apply_script(&ApplyScript {
                config_dir: &layout.config_dir,
                minion: &layout.minion_config(self.settings),
                env_dir: &layout.env_dir,
                srv: &layout.srv,
                pillar_len: self.pillar.expose().len(),
                salt_call: &self.settings.salt_call,
                removal: removal.as_deref(),
                dry_run: self.settings.dry_run,
                record: (!self.settings.dry_run).then(|| RecordSwap {
                    path: &layout.record,
                    expected: &record.state,
                    new: new_record.as_deref(),
                }),
            });
            let mut applied = self.apply(session, &script).await?;
            if let Some(line) = self.newly_recorded(&record, &applied) {
                applied.did.push(line);
            }
            Ok(applied)
        }
        .await;
        if let (Err(_), Some(rm)) = (&applied, &removal) {
            // The script's trap removes these however it ends; this covers a script that
            // never got to set it (or a dry run's scratch root after a failed rsync).
            // The real pillar only under the server's lock: while another provision
            // holds it, the pillar there is that run's.
            let rm = match layout.scratch {
                Some(_) => rm.clone(),
                None => format!("{}{rm}", remote::lock(&layout.srv)),
            };
            let _ = shell(session, self.target, &rm).status().await;
        }
        applied
    }

    /// What the table says of a real run that applied a version the server's record did
    /// not name yet.
    fn newly_recorded(&self, record: &Record, applied: &Applied) -> Option<String> {
        let current = self.settings.lineage.current.as_ref()?;
        let already = matches!(&record.seen, freshness::Seen::Applied(v) if v == current);
        let applied_now = !self.settings.dry_run && applied.failed.is_empty();
        (applied_now && !already).then(|| {
            let env = &self.settings.env;
            format!(
                "{env} secrets {} recorded as the version applied",
                current.label()
            )
        })
    }

    /// The rsync round trip, judged by the server's record of the version it applied:
    /// guarded (a real run), its remote end ships nothing unless the record names this
    /// version or one of its nearest ancestors; any other is judged here, and copied
    /// again, unguarded, when it may go ahead (a far ancestor's, or with --allow-older
    /// another branch's). Returns the record.
    async fn ship(&self, session: &Session, layout: &Layout) -> Result<Record, Failure> {
        let from = self.project.root().join("conf");
        let s = self.settings;
        let guard = !s.dry_run;
        let (record, stopped) = self.rsync(session, &from, layout, guard).await?;
        let finding = s.lineage.finding(&record);
        let current = s.lineage.current.as_ref();
        if s.dry_run {
            let note = freshness::dry_run_note(&finding, current, s.env.as_str());
            self.progress.note(self.index, &note);
        } else if let Some(v) = freshness::verdict(
            &finding,
            current,
            (s.env.as_str(), &self.target.label()),
            s.allow_older,
            &layout.record,
        ) {
            if v.refused {
                return Err(Failure {
                    message: format!("{}; nothing was applied", v.message),
                    hint: v.hint,
                });
            }
            self.progress.note(self.index, &v.message);
        }
        if stopped {
            self.rsync(session, &from, layout, false).await?;
        }
        Ok(record)
    }

    /// rsync of `from`/salt and `from`/pillar into the layout's roots, over the session's
    /// master: the server's record as its remote end read it, and whether `guard` stopped
    /// it before it copied anything.
    async fn rsync(
        &self,
        session: &Session,
        from: &Path,
        layout: &Layout,
        guard: bool,
    ) -> Result<(Record, bool), String> {
        let out = self
            .rsync_command(session, from, layout, guard)
            .output()
            .await
            .map_err(|e| format!("cannot run rsync: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        let stopped = !out.status.success() && err.contains(remote::NOT_FOLLOWED);
        if !out.status.success() && !stopped {
            return Err(remote::explain(&err, &self.settings.salt_call)
                .unwrap_or_else(|| format!("rsync of {} failed: {}", from.display(), err.trim())));
        }
        let state = err
            .lines()
            .find_map(|l| l.strip_prefix(remote::APPLIED))
            .ok_or("the host did not say which secrets version it runs")?;
        Ok((Record::parse(state.trim_end()), stopped))
    }

    fn rsync_command(
        &self,
        session: &Session,
        from: &Path,
        layout: &Layout,
        guard: bool,
    ) -> tokio::process::Command {
        let to = &layout.srv;
        // tokio's process, so the other hosts go on while this one copies.
        let mut cmd = tokio::process::Command::new("rsync");
        cmd.args([
            "-a",
            "--delete",
            "--exclude=*.age",
            "--exclude=*.age.sig",
            "--exclude=.vault-*",
            // An extra state tree's own repository stays behind: a folder, or the file
            // (or link) of a worktree or submodule, as the approval walk skips either.
            "--exclude=/*/.git",
        ]);
        // No other environment's pillar goes to the server.
        for e in &self.settings.other_envs {
            cmd.arg(format!("--exclude=/pillar/{e}/"));
        }
        // Nor, excluded, does a secrets.sls go from a working tree, or (by --delete)
        // from the host: only the apply script writes and removes it.
        cmd.arg("--exclude=secrets.sls");
        let ssh_config = self.settings.ssh_config.as_deref();
        cmd.arg("-e").arg(session::rsync_ssh(session, ssh_config));
        let sudo = !self.target.is_root();
        let ids = self.settings.lineage.guard_ids();
        let guard = guard.then_some(ids.as_slice());
        let remote_end =
            remote::rsync_path(&self.settings.salt_call, to, sudo, &layout.record, guard);
        cmd.arg(format!("--rsync-path={remote_end}"));
        // conf/salt and conf/pillar (no trailing slash) into srv/: srv/salt and
        // srv/pillar are synchronized, and nothing else in srv/ is touched.
        cmd.arg(from.join("salt"))
            .arg(from.join("pillar"))
            .args(&self.settings.state_trees)
            .arg(format!("{}:{to}/", self.target.host));
        cmd
    }

    /// Runs the apply script with the pillar on its standard input (never on a command
    /// line), streaming Salt's output redacted, and reads what it did.
    async fn apply(&self, session: &Session, script: &str) -> Result<Applied, String> {
        let mut child = shell(session, self.target, script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| format!("cannot start the apply script: {e}"))?;
        if let Some(mut stdin) = child.stdin().take() {
            // The script reads all of its input before it writes anything, so this
            // cannot block on its output. One that fails early (sudo) closes its input:
            // its own error, below, says why better than a broken pipe.
            let _ = stdin.write_all(self.pillar.expose()).await;
            let _ = stdin.shutdown().await;
        }
        let stdout = child.stdout().take().ok_or("no output from the host")?;
        let mut stderr = child.stderr().take().ok_or("no output from the host")?;
        let read_err = async {
            let mut buf = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await;
            buf
        };
        let (err, applied) = tokio::join!(read_err, self.follow(stdout));
        let status = child.wait().await.map_err(|e| format!("the host: {e}"))?;
        let Some(applied) = applied else {
            let err = String::from_utf8_lossy(&err);
            return Err(remote::explain(&err, &self.settings.salt_call)
                .unwrap_or_else(|| format!("pushing the secrets failed: {}", err.trim())));
        };
        if !status.success() && applied.failed.is_empty() {
            let err = String::from_utf8_lossy(&err);
            return Err(remote::explain(&err, &self.settings.salt_call)
                .unwrap_or_else(|| format!("salt-call exited with {status}")));
        }
        Ok(applied)
    }

    /// The apply script's output as it comes: Salt's lines redacted, shown (unless
    /// quiet) and read; `None` when the script never got as far as salt-call.
    async fn follow(&self, stdout: ChildStdout) -> Option<Applied> {
        let mut output = SaltOutput::new(self.redactor);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match output.read(&line) {
                Line::Script => {}
                Line::Ready => self.step("salt-call"),
                Line::Salt(shown) if !self.settings.quiet => {
                    self.progress.salt_output(self.index, &shown)
                }
                Line::Salt(_) => {}
            }
        }
        output.finish()
    }
}

//! `vault provision`: for each host, one multiplexed system-OpenSSH connection, rsync of
//! the Salt roots (no other environment's pillar, no `*.age`), the canonical pillar
//! streamed from memory into a 0600 root file, `salt-call --local state.apply` with every
//! secret redacted from its output, and the plaintext pillar removed afterwards.

mod pillar;
mod report;
mod target;

pub use pillar::pillar_settings;
pub use report::{table, Applied, HostReport};
pub use target::{targets, Target};

use crate::project::{EnvName, Project};
use crate::secret::SecretBytes;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the command line and the project settle for a run.
pub struct Settings {
    pub env: EnvName,
    pub project_name: String,
    /// The server's root for Salt's files: roots under `srv/`, config under `etc/salt`.
    pub remote_root: String,
    pub salt_call: String,
    pub accept_new_host_key: bool,
    pub dry_run: bool,
    pub keep_pillar: bool,
    pub jobs: usize,
    /// Environments whose pillar folders stay off the server.
    pub other_envs: Vec<EnvName>,
    /// An ssh_config file to use instead of ~/.ssh/config (as `ssh -F`).
    pub ssh_config: Option<std::path::PathBuf>,
    /// Keep Salt's output to ourselves (the final table still says what happened).
    pub quiet: bool,
}

/// Provisions every target, `jobs` at a time; one failing does not stop the others.
pub fn provision(
    project: &Project,
    settings: &Settings,
    targets: &[Target],
    pillar: &SecretBytes,
    redact: &[&str],
) -> Vec<HostReport> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return targets
                .iter()
                .map(|t| HostReport {
                    target: t.label(),
                    result: Err(format!("cannot start: {e}")),
                    seconds: 0.0,
                    steps: vec![],
                })
                .collect()
        }
    };
    let progress = MultiProgress::new();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.jobs.max(1)));
    let redactor = Redactor::new(redact);
    runtime.block_on(async {
        let runs = targets.iter().map(|t| {
            let limit = Arc::clone(&limit);
            let bar = progress.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                    .expect("static template"),
            );
            bar.set_prefix(t.label());
            bar.enable_steady_tick(Duration::from_millis(120));
            let host = Host {
                project,
                settings,
                target: t,
                pillar,
                redactor: &redactor,
                bar,
                progress: &progress,
                steps: std::cell::RefCell::new(Vec::new()),
            };
            async move {
                let _permit = limit.acquire().await;
                let start = Instant::now();
                let result = host.run().await;
                match &result {
                    Ok(a) if a.failed.is_empty() => host
                        .bar
                        .finish_with_message(format!("done ({} changed)", a.changed)),
                    Ok(a) => host
                        .bar
                        .finish_with_message(format!("{} state(s) failed", a.failed.len())),
                    Err(e) => host.bar.finish_with_message(format!("failed: {e}")),
                }
                host.step("");
                let steps = host
                    .steps
                    .into_inner()
                    .into_iter()
                    .map(|(name, _, secs)| (name, secs))
                    .collect();
                HostReport {
                    target: t.label(),
                    result,
                    seconds: start.elapsed().as_secs_f64(),
                    steps,
                }
            }
        });
        futures_util::future::join_all(runs).await
    })
}

/// Replaces every secret value (and each line of a multi-line one) in Salt's output.
struct Redactor {
    needles: Vec<zeroize::Zeroizing<String>>,
}

impl Redactor {
    fn new(values: &[&str]) -> Redactor {
        let mut needles: Vec<zeroize::Zeroizing<String>> = values
            .iter()
            .flat_map(|v| std::iter::once(*v).chain(v.lines()))
            .map(str::trim)
            .filter(|n| n.chars().count() >= 3)
            .map(|n| zeroize::Zeroizing::new(n.to_string()))
            .collect();
        // Longest first, so a value is not half-replaced by a shorter one inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles }
    }

    fn line(&self, line: &str) -> String {
        let mut out = line.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "[redacted]");
            }
        }
        out
    }
}

struct Host<'a> {
    project: &'a Project,
    settings: &'a Settings,
    target: &'a Target,
    pillar: &'a SecretBytes,
    redactor: &'a Redactor,
    bar: ProgressBar,
    progress: &'a MultiProgress,
    /// Each step's name, start, and (once over) seconds.
    steps: std::cell::RefCell<Vec<(&'static str, Instant, f64)>>,
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
            self.bar.set_message(name);
        }
    }

    /// The host's root: `--remote-root` with `{host}` and `{port}` filled in.
    fn root(&self) -> String {
        let port = self.target.port_or_default().to_string();
        self.settings
            .remote_root
            .replace("{host}", &self.target.host)
            .replace("{port}", &port)
    }

    fn remote(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root().trim_end_matches('/'))
    }

    /// `sh -c SCRIPT` on the host, through `sudo -n` when the user is not root.
    fn shell<'s>(&self, session: &'s Session, script: &str) -> openssh::OwningCommand<&'s Session> {
        let mut cmd = if self.target.is_root() {
            session.command("sh")
        } else {
            let mut c = session.command("sudo");
            c.arg("-n").arg("sh");
            c
        };
        cmd.arg("-c").arg(script);
        cmd
    }

    fn say(&self, line: &str) {
        // Through the progress display, so lines and spinners do not tangle.
        let msg = format!("[{}] {line}", self.target.label());
        if self.progress.is_hidden() {
            eprintln!("{msg}");
        } else {
            let _ = self.progress.println(msg);
        }
    }

    async fn run(&self) -> std::result::Result<Applied, String> {
        let t = self.target;
        self.step("connect");
        let mut builder = SessionBuilder::default();
        if let Some(u) = &t.user {
            builder.user(u.clone());
        }
        if let Some(p) = t.port {
            builder.port(p);
        }
        builder
            .known_hosts_check(if self.settings.accept_new_host_key {
                KnownHosts::Accept
            } else {
                KnownHosts::Strict
            })
            .connect_timeout(Duration::from_secs(15))
            // vault ends the master itself; one left by a vault that was killed goes
            // away after a minute without a session, rather than never.
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::new(60).expect("60 is not zero"),
            ));
        if let Some(cfg) = &self.settings.ssh_config {
            builder.config_file(cfg);
        }
        let session = builder
            .connect(&t.host)
            .await
            .map_err(|e| connect_error(t, &e))?;
        if self.settings.accept_new_host_key {
            if let Some(fp) = known_host_fingerprint(t, self.settings.ssh_config.as_deref()) {
                self.say(&format!("host key accepted: {fp}"));
            }
        }
        let result = self.steps(&session).await;
        let _ = session.close().await;
        result
    }

    async fn steps(&self, session: &Session) -> std::result::Result<Applied, String> {
        // A dry run ships into a scratch root of its own beside the real one, so that the
        // server's Salt roots and minion config stay as they were; Salt still compares
        // against the live system (the same root_dir), and the scratch root goes however
        // the run ends.
        let scratch = self
            .settings
            .dry_run
            .then(|| self.remote(&format!("srv/.vault-dry-run-{}", run_id())));
        let srv = scratch.clone().unwrap_or_else(|| self.remote("srv"));
        let (salt_root, pillar_root) = (format!("{srv}/salt"), format!("{srv}/pillar"));
        let cfg = match &scratch {
            Some(s) => format!("{s}/etc"),
            None => self.remote("etc/salt"),
        };
        let env_dir = format!("{pillar_root}/{}", self.settings.env);
        let removal = leftovers_removal(&env_dir, scratch.as_deref(), self.settings.keep_pillar);

        // Round trip 1: rsync of conf/salt and conf/pillar (its remote end first checks
        // for salt-call, so nothing is shipped to a host that cannot apply it).
        self.step("rsync");
        let mut excludes: Vec<String> = self
            .settings
            .other_envs
            .iter()
            .map(|e| format!("/pillar/{e}/"))
            .collect();
        excludes.push("secrets.sls".into());
        let applied = async {
            self.rsync(session, &self.project.root().join("conf"), &srv, &excludes)
                .await?;

            // Round trip 2: the minion config (no secret in it, so on the command line),
            // the secrets from standard input into a 0600 file, a marker line, salt-call,
            // and (from a trap, so it happens however the script ends) the secrets removed.
            self.step("secrets");
            let script = apply_script(&ApplyScript {
                config_dir: &cfg,
                minion: &self.minion_config(&salt_root, &pillar_root),
                env_dir: &env_dir,
                pillar_len: self.pillar.expose().len(),
                salt_call: &self.settings.salt_call,
                removal: removal.as_deref(),
                dry_run: self.settings.dry_run,
            });
            self.apply(session, &script).await
        }
        .await;
        if let (Err(_), Some(rm)) = (&applied, &removal) {
            // The script's trap removes these however it ends; this covers a script that
            // never got to set it (or a dry run's scratch root after a failed rsync).
            let _ = self.shell(session, rm).status().await;
        }
        applied
    }

    /// The minion config: this project's id for the environment, a masterless file
    /// client, the host's root and the given Salt roots.
    fn minion_config(&self, salt_root: &str, pillar_root: &str) -> String {
        let root = self.root();
        format!(
            "id: {}-{}\nfile_client: local\nroot_dir: {}\nfile_roots:\n  base:\n    - {salt_root}\npillar_roots:\n  base:\n    - {pillar_root}\n\
             # No reverse DNS for fqdn grains, grains cached between runs, and no sync of custom\n\
             # modules (the project ships none) before each run: a faster salt-call.\n\
             enable_fqdns_grains: False\ngrains_cache: True\nautoload_dynamic_modules: False\n",
            self.settings.project_name,
            self.settings.env,
            if root.is_empty() { "/" } else { &root },
        )
    }

    /// rsync of `from`/salt and `from`/pillar into `to` over the session's master
    /// connection (no second SSH connection).
    async fn rsync(
        &self,
        session: &Session,
        from: &Path,
        to: &str,
        extra_excludes: &[String],
    ) -> std::result::Result<(), String> {
        // tokio's process, so the other hosts go on while this one copies.
        let mut cmd = tokio::process::Command::new("rsync");
        cmd.args([
            "-a",
            "--delete",
            "--exclude=*.age",
            "--exclude=*.age.sig",
            "--exclude=.vault-*",
        ]);
        for e in extra_excludes {
            cmd.arg(format!("--exclude={e}"));
        }
        let mut ssh = format!(
            "ssh -S {} -o ControlMaster=no",
            shell_words::quote(&session.control_socket().display().to_string())
        );
        if let Some(cfg) = &self.settings.ssh_config {
            ssh.push_str(&format!(
                " -F {}",
                shell_words::quote(&cfg.display().to_string())
            ));
        }
        cmd.arg("-e").arg(ssh);
        // The remote end, in the same round trip: no salt-call, no shipping; then the
        // folder `to` (with its parents), and rsync itself with the arguments rsync adds.
        let prelude = format!(
            "command -v {salt} >/dev/null 2>&1 || {{ echo {missing} >&2; exit 3; }}; \
             umask 022 && mkdir -p \"$0\" && exec rsync \"$@\"",
            salt = shell_words::quote(&self.settings.salt_call),
            missing = shell_words::quote(SALT_MISSING),
        );
        let sudo = if self.target.is_root() {
            ""
        } else {
            "sudo -n "
        };
        cmd.arg(format!(
            "--rsync-path={sudo}sh -c {} {}",
            shell_words::quote(&prelude),
            shell_words::quote(to)
        ));
        // conf/salt and conf/pillar (no trailing slash) into srv/: srv/salt and
        // srv/pillar are synchronized, and nothing else in srv/ is touched.
        cmd.arg(from.join("salt"))
            .arg(from.join("pillar"))
            .arg(format!("{}:{to}/", self.target.host));
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("cannot run rsync: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(self
                .remote_error(&err)
                .unwrap_or_else(|| format!("rsync of {} failed: {}", from.display(), err.trim())));
        }
        Ok(())
    }

    /// The one line for what the remote shell reported, when it is one vault knows.
    fn remote_error(&self, stderr: &str) -> Option<String> {
        if stderr.contains(SALT_MISSING) {
            Some(format!(
                "{} not found on the host (install Salt, or name it with --salt-call)",
                self.settings.salt_call
            ))
        } else if stderr.contains(PILLAR_SHORT) {
            Some("the secrets did not all reach the host (the connection was cut while sending them); nothing was applied, run provision again".into())
        } else if stderr.contains("sudo:") && stderr.contains("password") {
            Some("sudo asks for a password: give the user passwordless sudo, or connect as root (-u root)".into())
        } else {
            None
        }
    }

    /// Runs the apply script with the pillar on its standard input (never on a command
    /// line), streaming Salt's output redacted, and reads what it did.
    async fn apply(&self, session: &Session, script: &str) -> std::result::Result<Applied, String> {
        let mut child = self
            .shell(session, script)
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
        let read_out = async {
            let mut lines = BufReader::new(stdout).lines();
            let mut applied = Applied::default();
            let mut ready = false;
            let mut last_id = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if !ready {
                    // Only the script's marker comes before Salt's output.
                    ready = line == READY;
                    if ready {
                        self.step("salt-call");
                    }
                    continue;
                }
                let shown = self.redactor.line(&line);
                let trimmed = shown.trim();
                if let Some(id) = trimmed.strip_prefix("ID: ") {
                    last_id = id.to_string();
                } else if trimmed == "Result: False" {
                    applied.failed.push(last_id.clone());
                } else if let Some(rest) = trimmed.strip_prefix("Succeeded:") {
                    applied.changed = rest
                        .split("changed=")
                        .nth(1)
                        .and_then(|s| s.trim_end_matches(')').parse().ok())
                        .unwrap_or(0);
                }
                if !self.settings.quiet {
                    self.say(&shown);
                }
            }
            (ready, applied)
        };
        let (err, (ready, applied)) = tokio::join!(read_err, read_out);
        let status = child.wait().await.map_err(|e| format!("the host: {e}"))?;
        if !ready {
            let err = String::from_utf8_lossy(&err);
            return Err(self
                .remote_error(&err)
                .unwrap_or_else(|| format!("pushing the secrets failed: {}", err.trim())));
        }
        if !status.success() && applied.failed.is_empty() {
            return Err(format!("salt-call exited with {status}"));
        }
        Ok(applied)
    }
}

/// The shell command that removes what a provision leaves on the server: a dry run's
/// whole scratch root, otherwise the plaintext pillar unless it is kept.
fn leftovers_removal(env_dir: &str, scratch: Option<&str>, keep_pillar: bool) -> Option<String> {
    let q = |s: &str| shell_words::quote(s).into_owned();
    match scratch {
        Some(root) => Some(format!("rm -rf {}", q(root))),
        None if keep_pillar => None,
        None => {
            let d = q(env_dir);
            Some(format!("rm -f {d}/secrets.sls {d}/.secrets.sls.tmp"))
        }
    }
}

/// A name for this run's scratch files, unlike any other run's on the same server.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

/// What the apply script needs to know.
struct ApplyScript<'a> {
    config_dir: &'a str,
    minion: &'a str,
    env_dir: &'a str,
    /// How many bytes of pillar come on standard input.
    pillar_len: usize,
    salt_call: &'a str,
    /// What the trap runs when the script ends: `None` keeps the pillar.
    removal: Option<&'a str>,
    dry_run: bool,
}

/// The one remote script of a provision: the minion config (no secret in it, so on the
/// command line), the pillar from standard input into a 0600 file, a marker line, then
/// salt-call; unless the pillar is kept, a trap removes it however the script ends.
///
/// The pillar is moved into place only when exactly `pillar_len` bytes arrived: a vault
/// killed mid-write closes the stream early, and Salt must never apply a pillar cut
/// short (cut at a line end, it is still valid YAML with fewer secrets).
fn apply_script(a: &ApplyScript) -> String {
    let q = |s: &str| shell_words::quote(s).into_owned();
    let (cfg, d) = (q(a.config_dir), q(a.env_dir));
    let cleanup = match a.removal {
        None => String::new(),
        Some(rm) => format!(
            "trap {} EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; ",
            q(rm)
        ),
    };
    let mut script = format!(
        "umask 022 && mkdir -p {cfg} && printf '%s' {minion} > {cfg}/.minion.tmp && mv {cfg}/.minion.tmp {cfg}/minion || exit 4; \
         umask 077 && mkdir -p {d} || exit 4; {cleanup}\
         cat > {d}/.secrets.sls.tmp || exit 4; \
         [ \"$(wc -c < {d}/.secrets.sls.tmp)\" -eq {len} ] || {{ rm -f {d}/.secrets.sls.tmp; echo {short} >&2; exit 4; }}; \
         mv {d}/.secrets.sls.tmp {d}/secrets.sls || exit 4; \
         echo {ready}; umask 022; \
         {salt} --local --config-dir {cfg} --retcode-passthrough --state-output=changes state.apply",
        minion = q(a.minion),
        len = a.pillar_len,
        short = q(PILLAR_SHORT),
        salt = q(a.salt_call),
        ready = q(READY),
    );
    if a.dry_run {
        script.push_str(" test=True");
    }
    script.push_str(" 2>&1");
    script
}

/// What the rsync prelude says when salt-call is missing.
const SALT_MISSING: &str = "vault: salt-call not found";
/// The line the apply script prints once the secrets are in place, before salt-call.
const READY: &str = "vault: pillar in place";
/// What the apply script says when fewer pillar bytes arrived than were sent.
const PILLAR_SHORT: &str = "vault: the secrets arrived incomplete";

fn connect_error(t: &Target, e: &openssh::Error) -> String {
    let text = format!("{e} {:?}", e);
    if text.contains("Host key verification failed")
        || text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        format!(
            "the host key of {} is not known, or has changed: check it, then pass --accept-new-host-key for a first contact",
            t.label()
        )
    } else if text.contains("Connection refused")
        || text.contains("timed out")
        || text.contains("No route")
        || text.contains("Could not resolve")
    {
        format!("cannot reach {}: {e}", t.label())
    } else {
        format!("cannot connect to {}: {e}", t.label())
    }
}

/// The SHA256 fingerprint the known-hosts file ssh uses now holds for the target.
fn known_host_fingerprint(t: &Target, config: Option<&Path>) -> Option<String> {
    let name = match t.port {
        Some(p) if p != 22 => format!("[{}]:{p}", t.host),
        _ => t.host.clone(),
    };
    // Which file: whatever ssh's own configuration says (`ssh -G`).
    let mut g = std::process::Command::new("ssh");
    g.arg("-G");
    if let Some(c) = config {
        g.arg("-F").arg(c);
    }
    if let Some(p) = t.port {
        g.arg("-p").arg(p.to_string());
    }
    let out = g.arg(&t.host).output().ok()?;
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("userknownhostsfile "))
        .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect();
    files.iter().find_map(|file| {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-l", "-F", &name, "-f", file])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("SHA256:"))
                    .map(String::from)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the apply script under the local `sh` with `input` on its standard input and
    /// a stand-in salt-call that reports which pillar it found.
    fn run_apply(dir: &Path, input: &[u8], sent: usize, keep: bool) -> std::process::Output {
        use std::io::Write;
        let salt = dir.join("salt-call");
        std::fs::write(
            &salt,
            format!(
                "#!/bin/sh\ncat '{}/env/secrets.sls' && echo salt-ran\n",
                dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&salt, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (cfg, env) = (dir.join("cfg"), dir.join("env").display().to_string());
        let removal = leftovers_removal(&env, None, keep);
        let script = apply_script(&ApplyScript {
            config_dir: &cfg.display().to_string(),
            minion: "id: x\n",
            env_dir: &env,
            pillar_len: sent,
            salt_call: &salt.display().to_string(),
            removal: removal.as_deref(),
            dry_run: false,
        });
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn the_apply_script_applies_a_whole_pillar_and_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let pillar = b"secrets:\n  A: \"1\"\n  B: \"2\"\n";
        let out = run_apply(dir.path(), pillar, pillar.len(), false);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with(READY), "{stdout}");
        assert!(stdout.contains("B: \"2\"\nsalt-ran"), "{stdout}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cfg/minion")).unwrap(),
            "id: x\n"
        );
        assert!(!dir.path().join("env/secrets.sls").exists());

        let out = run_apply(dir.path(), pillar, pillar.len(), true);
        assert!(out.status.success(), "{out:?}");
        let kept = dir.path().join("env/secrets.sls");
        assert_eq!(std::fs::read(&kept).unwrap(), pillar);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&kept).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_pillar_cut_short_is_never_applied() {
        // What a vault killed mid-write sends: the stream ends after a whole line, so
        // what arrived is valid YAML holding fewer secrets.
        let dir = tempfile::tempdir().unwrap();
        let pillar = b"secrets:\n  A: \"1\"\n  B: \"2\"\n";
        let cut = &pillar[..b"secrets:\n  A: \"1\"\n".len()];
        for keep in [false, true] {
            let out = run_apply(dir.path(), cut, pillar.len(), keep);
            assert_eq!(out.status.code(), Some(4), "{out:?}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                !stdout.contains(READY) && !stdout.contains("salt-ran"),
                "{stdout}"
            );
            assert!(String::from_utf8_lossy(&out.stderr).contains(PILLAR_SHORT));
            let left: Vec<_> = std::fs::read_dir(dir.path().join("env"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "left on the host: {left:?}");
        }
    }

    #[test]
    fn redaction_covers_values_and_their_lines() {
        let r = Redactor::new(&["hunter22", "-----BEGIN-----\nabcdef\n", "on"]);
        assert_eq!(r.line("pw hunter22 x"), "pw [redacted] x");
        assert_eq!(r.line("  abcdef"), "  [redacted]");
        assert_eq!(r.line("turn on"), "turn on");
    }
}

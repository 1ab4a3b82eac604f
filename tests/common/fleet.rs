//! A real Salt fleet on loopback: one `salt-master` and any number of `salt-minion`s on
//! this machine, each daemon with a root of its own (config, pki, cache, sockets, log,
//! pidfile under a tempdir) and the master on unique free ports, plus a loopback sshd in
//! front of the master (vault reaches the master over SSH and writes under its root, with
//! `--remote-root`). Every daemon runs in the foreground as a child in a process group of
//! its own; Drop kills each whole group.
//!
//! Use:
//! - [`Fleet::prepare`] writes the master's config at `R/etc/salt/master` (root_dir R,
//!   `interface: 127.0.0.1`, never `auto_accept`, `default_include: master.d/*.conf`, so a
//!   drop-in written later into [`Fleet::dropin_dir`] is read) and starts the sshd; the
//!   master is not running yet, so `vault master setup` can write its drop-in first.
//! - [`Fleet::start_master`] starts it and waits until it serves (its `health/ready`
//!   sentinel and its ret port); [`Fleet::restart_master`] after a drop-in changed.
//! - [`Fleet::add_minion`] starts a minion (extra YAML for its config, e.g. grains); its
//!   key lands pending on the master: [`Fleet::wait_pending`] waits for that.
//! - [`Fleet::accept`] accepts keys with `salt-key` (for tests that do not go through
//!   `vault master accept`); [`Fleet::wait_ready`] waits until each minion answers
//!   `test.ping` through the master.
//! - [`Fleet::salt`] is the `salt` command pointed at this master (`-c R/etc/salt`).
//!
//! Salt's `salt-key -f ID` is the SHA-256 of the master's stored key file, which is the
//! minion's `minion.pub` without its final newline: [`Fleet::minion_fingerprint`] computes
//! what a user runs on the minion, `printf %s "$(cat minion.pub)" | sha256sum`.

// The fleet tests of issue 14 use all of this; until they land, parts go unused.
#![allow(dead_code)]

use super::server::{free_port, Sshd};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to come up or a minion to answer before a test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// What a minion logs (at info) each time it has authenticated and subscribed.
const READY_LINE: &str = "Minion is ready to receive requests!";

/// The test venv's bin folder with salt-master and salt-minion, or None with a message
/// (a failure in CI).
pub fn tools() -> Option<PathBuf> {
    let python = super::python()?;
    let bin = python.parent().unwrap().to_path_buf();
    if bin.join("salt-master").exists() && bin.join("salt-minion").exists() {
        Some(bin)
    } else {
        super::require_in_ci("salt-master and salt-minion in the test venv");
        None
    }
}

/// A daemon in a process group of its own, killed as a whole group on Drop.
pub struct Daemon {
    child: Child,
}

impl Daemon {
    pub fn spawn(mut cmd: Command) -> Daemon {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon { child }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The daemon forks workers into its group: end them all, then reap the leader.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One minion: its root (config at `etc/salt/minion`) and its daemon.
pub struct Minion {
    // The daemon goes down before its root is removed (fields drop in order).
    daemon: Option<Daemon>,
    pub id: String,
    pub root: tempfile::TempDir,
}

impl Minion {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    pub fn config_dir(&self) -> PathBuf {
        self.path("etc/salt")
    }
    pub fn pki_dir(&self) -> PathBuf {
        self.path("etc/salt/pki/minion")
    }
    /// The minion's own public key, what it sends the master.
    pub fn pub_path(&self) -> PathBuf {
        self.pki_dir().join("minion.pub")
    }
    pub fn cachedir(&self) -> PathBuf {
        self.path("var/cache/salt/minion")
    }
    pub fn log(&self) -> PathBuf {
        self.path("var/log/salt/minion")
    }
}

/// The master (root R), its sshd, and the minions started so far.
pub struct Fleet {
    // Fields drop in order: the minions, then the master, then its root.
    minions: BTreeMap<String, Minion>,
    master: Option<Daemon>,
    pub sshd: Sshd,
    pub root: tempfile::TempDir,
    pub tools: PathBuf,
    pub ret_port: u16,
    pub publish_port: u16,
}

impl Fleet {
    /// The master's root and config, and the sshd in front of it (root logs in with the
    /// fixture key mallory_ed25519, as in the provision tests); the master is not started.
    pub fn prepare(tools: &Path) -> Fleet {
        let root = tempfile::Builder::new()
            .prefix("vault-master-")
            .tempdir()
            .unwrap();
        let sshd = Sshd::start(Path::new(&super::key("mallory_ed25519")));
        let (ret_port, publish_port) = (free_port(), free_port());
        let r = root.path();
        std::fs::create_dir_all(r.join("etc/salt/master.d")).unwrap();
        std::fs::write(
            r.join("etc/salt/master"),
            format!(
                "root_dir: {r}\npki_dir: {r}/etc/salt/pki/master\ncachedir: {r}/var/cache/salt/master\n\
                 sock_dir: {r}/var/run/salt/master\nlog_file: {r}/var/log/salt/master\n\
                 pidfile: {r}/var/run/salt-master.pid\nuser: root\ninterface: 127.0.0.1\n\
                 ret_port: {ret_port}\npublish_port: {publish_port}\nauto_accept: False\n\
                 log_level: info\nlog_level_logfile: info\ndefault_include: master.d/*.conf\n",
                r = r.display()
            ),
        )
        .unwrap();
        Fleet {
            minions: BTreeMap::new(),
            master: None,
            sshd,
            root,
            tools: tools.to_path_buf(),
            ret_port,
            publish_port,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    /// The master's config folder, for `-c` (`R/etc/salt`).
    pub fn salt_config_dir(&self) -> PathBuf {
        self.path("etc/salt")
    }
    /// Where the master reads drop-ins from (`R/etc/salt/master.d`, `*.conf`).
    pub fn dropin_dir(&self) -> PathBuf {
        self.path("etc/salt/master.d")
    }
    pub fn master_pki(&self) -> PathBuf {
        self.path("etc/salt/pki/master")
    }
    pub fn master_cachedir(&self) -> PathBuf {
        self.path("var/cache/salt/master")
    }
    pub fn master_log(&self) -> PathBuf {
        self.path("var/log/salt/master")
    }

    /// Starts the master and waits until it serves.
    pub fn start_master(&mut self) {
        assert!(self.master.is_none(), "the master is already running");
        // A sentinel left by an earlier start would say ready too soon.
        let ready = self.master_cachedir().join("health/ready");
        let _ = std::fs::remove_file(&ready);
        let mut cmd = Command::new(self.tools.join("salt-master"));
        cmd.arg("-c").arg(self.salt_config_dir());
        self.master = Some(Daemon::spawn(cmd));
        self.wait_for("the master to serve", || {
            ready.exists() && std::net::TcpStream::connect(("127.0.0.1", self.ret_port)).is_ok()
        });
    }

    /// Stops the master and starts it again (a changed drop-in is read only at start),
    /// and waits until each running minion whose key is accepted has reconnected (they
    /// do by themselves, within a few seconds).
    pub fn restart_master(&mut self) {
        let ready_count = |m: &Minion| {
            std::fs::read_to_string(m.log())
                .unwrap_or_default()
                .matches(READY_LINE)
                .count()
        };
        let accepted = self.master_pki().join("minions");
        let before: Vec<(String, usize)> = self
            .minions
            .values()
            .filter(|m| m.daemon.is_some() && accepted.join(&m.id).exists())
            .map(|m| (m.id.clone(), ready_count(m)))
            .collect();
        self.master = None;
        self.start_master();
        for (id, n) in before {
            let m = self.minion(&id);
            self.wait_for(&format!("{id} to reconnect"), || ready_count(m) > n);
        }
    }

    /// Starts minion `id` for this master, with `extra` (YAML) appended to its config
    /// (e.g. "grains:\n  environment: production\n"). Returns at once: its key reaches the
    /// master's pending keys a moment later ([`Fleet::wait_pending`]).
    pub fn add_minion(&mut self, id: &str, extra: &str) {
        assert!(!self.minions.contains_key(id), "minion {id} already added");
        let root = tempfile::Builder::new()
            .prefix(&format!("vault-minion-{id}-"))
            .tempdir()
            .unwrap();
        let m = root.path();
        std::fs::create_dir_all(m.join("etc/salt")).unwrap();
        // Retry the master every second (not 10 s) so an accepted key is used at once.
        std::fs::write(
            m.join("etc/salt/minion"),
            format!(
                "root_dir: {m}\npki_dir: {m}/etc/salt/pki/minion\ncachedir: {m}/var/cache/salt/minion\n\
                 sock_dir: {m}/var/run/salt/minion\nlog_file: {m}/var/log/salt/minion\n\
                 pidfile: {m}/var/run/salt-minion.pid\nuser: root\nid: {id}\nmaster: 127.0.0.1\n\
                 master_port: {ret}\npublish_port: {publish}\nlog_level_logfile: info\n\
                 acceptance_wait_time: 1\nacceptance_wait_time_max: 1\nrandom_reauth_delay: 0\n\
                 auth_tries: 100\n{extra}",
                m = m.display(),
                ret = self.ret_port,
                publish = self.publish_port,
            ),
        )
        .unwrap();
        let mut cmd = Command::new(self.tools.join("salt-minion"));
        cmd.arg("-c").arg(m.join("etc/salt"));
        let daemon = Some(Daemon::spawn(cmd));
        self.minions.insert(
            id.to_string(),
            Minion {
                daemon,
                id: id.to_string(),
                root,
            },
        );
    }

    pub fn minion(&self, id: &str) -> &Minion {
        self.minions
            .get(id)
            .unwrap_or_else(|| panic!("no minion {id}"))
    }

    /// The master daemon's pid (its workers are its descendants), while it runs.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(|d| d.child.id())
    }

    /// Each running minion daemon's pid.
    pub fn minion_pids(&self) -> Vec<u32> {
        self.minions
            .values()
            .filter_map(|m| m.daemon.as_ref().map(|d| d.child.id()))
            .collect()
    }

    pub fn minion_pub_path(&self, id: &str) -> PathBuf {
        self.minion(id).pub_path()
    }

    /// Every minion's root, for tests that grep them all.
    pub fn minions(&self) -> impl Iterator<Item = &Minion> {
        self.minions.values()
    }

    /// Kills minion `id`'s daemon (a host that is down); its files stay.
    pub fn stop_minion(&mut self, id: &str) {
        self.minions.get_mut(id).unwrap().daemon = None;
    }

    /// The pending key file the master stored for `id`.
    pub fn pending_key_path(&self, id: &str) -> PathBuf {
        self.master_pki().join("minions_pre").join(id)
    }

    /// What a user reads on minion `id` to accept it: `salt-key -f ID` without colons,
    /// i.e. `printf %s "$(cat minion.pub)" | sha256sum` (the key without its final newline,
    /// as the master stores it).
    pub fn minion_fingerprint(&self, id: &str) -> String {
        let out = Command::new("sh")
            .args(["-c", r#"printf %s "$(cat "$1")" | sha256sum"#, "sh"])
            .arg(self.minion_pub_path(id))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    /// Waits until each of `ids` has its key pending on the master.
    pub fn wait_pending(&self, ids: &[&str]) {
        for id in ids {
            let p = self.pending_key_path(id);
            self.wait_for(&format!("{id}'s key to reach the master"), || p.exists());
        }
    }

    /// Accepts `id`'s key with `salt-key` once it is pending (no fingerprint check: for
    /// tests that do not exercise `vault master accept`).
    pub fn accept(&self, id: &str) {
        self.wait_pending(&[id]);
        let out = self.salt_key(&["-y", "-a", id]).output().unwrap();
        assert_ok("salt-key -a", &out);
        assert!(self.master_pki().join("minions").join(id).exists());
    }

    /// Waits until each of `ids` (accepted) answers `test.ping` through the master.
    pub fn wait_ready(&self, ids: &[&str]) {
        // A minion says so in its log once it has authenticated and subscribed; a ping
        // sent before then is lost and costs Salt's timeouts (some 15 s), not a retry.
        for id in ids {
            let log = self.minion(id).log();
            self.wait_for(&format!("{id} to authenticate"), || {
                std::fs::read_to_string(&log).is_ok_and(|l| l.contains(READY_LINE))
            });
        }
        let start = Instant::now();
        let mut waiting: Vec<&str> = ids.to_vec();
        while !waiting.is_empty() {
            let out = self
                .salt(&["--out", "json", "--static", "-t", "5", "-L"])
                .args([&waiting.join(","), "test.ping"])
                .output()
                .unwrap();
            let answered: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            waiting.retain(|id| answered.get(id) != Some(&serde_json::Value::Bool(true)));
            assert!(
                waiting.is_empty() || start.elapsed() < PATIENCE,
                "minions {waiting:?} never answered\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// `salt-call ARGS` on minion `id`, through the master, as its owner (root there)
    /// may run it: its standard output and standard error.
    pub fn salt_call(&self, id: &str, args: &[&str]) -> [String; 2] {
        let out = Command::new(self.tools.join("salt-call"))
            .arg("-c")
            .arg(self.minion(id).config_dir())
            .args(["--out", "json"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        [
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ]
    }

    /// `salt -c R/etc/salt ARGS...`: the master's CLI.
    pub fn salt(&self, args: &[&str]) -> Command {
        self.tool("salt", args)
    }

    /// `salt-key -c R/etc/salt ARGS...`.
    pub fn salt_key(&self, args: &[&str]) -> Command {
        self.tool("salt-key", args)
    }

    /// `salt-run -c R/etc/salt ARGS...`.
    pub fn salt_run(&self, args: &[&str]) -> Command {
        self.tool("salt-run", args)
    }

    fn tool(&self, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.tools.join(name));
        c.arg("-c")
            .arg(self.salt_config_dir())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Polls `done` until true; fails (with the master's log) after [`PATIENCE`].
    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > PATIENCE {
                let log = std::fs::read_to_string(self.master_log()).unwrap_or_default();
                panic!("timed out waiting for {what}\nmaster log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[track_caller]
fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! A private server for the Salt tests: a root folder the app user can walk into, a real
//! supervisord with its own socket, and the pillar settings that point the states there.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const APP_USER: &str = "vaulttest";

/// The Python tools (salt-call, supervisord) and the app's venv, or None with a message
/// (a failure in CI).
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let python = super::python()?;
    let tools = python.parent().unwrap().to_path_buf();
    let app = std::env::var_os("VAULT_TEST_APP_VENV")
        .map(PathBuf::from)
        .filter(|v| v.join("bin/gunicorn").exists());
    match app {
        Some(app) if tools.join("salt-call").exists() => Some((tools, app)),
        _ => {
            super::require_in_ci("Salt or the app venv");
            None
        }
    }
}

/// A server's root: the states put everything under it (etc/, usr/local/bin, run/), as
/// they would under `/`, and it runs its own supervisord from etc/supervisor.
pub struct Server {
    pub root: tempfile::TempDir,
    pub tools: PathBuf,
    pub app_venv: PathBuf,
    supervisord: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(self.tools.join("supervisorctl"))
            .args([
                "-c",
                &self.path("etc/supervisor/supervisord.conf"),
                "shutdown",
            ])
            .output();
        // Never hang a test run on a supervisord that would not stop.
        let start = Instant::now();
        while matches!(self.supervisord.try_wait(), Ok(None))
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.supervisord.kill();
        let _ = self.supervisord.wait();
    }
}

impl Server {
    pub fn start(tools: &Path, app_venv: &Path) -> Server {
        let root = tempfile::Builder::new()
            .prefix("vault-server-")
            .tempdir()
            .unwrap();
        Server::start_at(root, tools, app_venv)
    }

    /// A server whose root is `root` (one named as a test needs).
    pub fn start_at(root: tempfile::TempDir, tools: &Path, app_venv: &Path) -> Server {
        // The app user walks into the root to read its wrapper and secrets.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = |rel: &str| root.path().join(rel).display().to_string();
        for d in ["etc/supervisor/conf.d", "logs"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        std::fs::write(
            root.path().join("etc/supervisor/supervisord.conf"),
            format!(
                "[unix_http_server]\nfile={sock}\n[supervisord]\nlogfile={log}\npidfile={pid}\nchildlogdir={logs}\n\
                 [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
                 [supervisorctl]\nserverurl=unix://{sock}\n[include]\nfiles={confd}/*.conf\n",
                sock = path("supervisor.sock"),
                log = path("supervisord.log"),
                pid = path("supervisord.pid"),
                logs = path("logs"),
                confd = path("etc/supervisor/conf.d"),
            ),
        )
        .unwrap();
        let supervisord = Command::new(tools.join("supervisord"))
            .args(["-n", "-c", &path("etc/supervisor/supervisord.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Server {
            root,
            tools: tools.to_path_buf(),
            app_venv: app_venv.to_path_buf(),
            supervisord,
        }
    }

    pub fn path(&self, rel: &str) -> String {
        self.root.path().join(rel).display().to_string()
    }

    /// The flags that point `vault provision` at this server through `sshd`: its
    /// ssh_config, this root as the remote root, and the tests' salt-call.
    pub fn provision_flags(&self, sshd: &Sshd) -> Vec<String> {
        let salt_call = self.tools.join("salt-call").display().to_string();
        [
            "--ssh-config",
            &sshd.ssh_config(),
            "--remote-root",
            &self.path(""),
        ]
        .into_iter()
        .chain(["--salt-call", &salt_call])
        .map(String::from)
        .collect()
    }

    /// `project`'s staging env.sls, listing `sshd` (as root) as its one host, with this
    /// server's pillar settings and then `extra`.
    pub fn staging_env(&self, project: &Path, sshd: &Sshd, extra: &str) {
        let env_sls = project.join("conf/pillar/staging/env.sls");
        let host = format!("hosts: ['root@127.0.0.1:{}']", sshd.port);
        let text = std::fs::read_to_string(&env_sls)
            .unwrap()
            .replace("hosts: []", &host);
        let settings = self.pillar_settings();
        std::fs::write(&env_sls, format!("{text}{settings}{extra}")).unwrap();
    }

    /// The pillar settings (for an env.sls) for the app and tools: the same on every
    /// server (paths follow each server's root). A start is checked after 1 s, not the
    /// default 5, to keep the tests fast.
    pub fn pillar_settings(&self) -> String {
        let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app");
        format!(
            "vault:\n  app_user: {APP_USER}\n  paths:\n    supervisorctl: {ctl}\n\
             app:\n  directory: {app}\n  gunicorn: {gunicorn}\n  wsgi: envapp:app\n  manage: {py} manage.py\n  startsecs: 1\n",
            ctl = self.tools.join("supervisorctl").display(),
            app = app_dir.display(),
            gunicorn = self.app_venv.join("bin/gunicorn").display(),
            py = self.app_venv.join("bin/python").display(),
        )
    }

    /// The app's answer (pid and environment), waiting for one `want` accepts.
    pub fn ask(&self, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(v) =
                http_get(&self.root.path().join("run/example/gunicorn.sock")).filter(|v| want(v))
            {
                return v;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let status = Command::new(self.tools.join("supervisorctl"))
                    .args([
                        "-c",
                        &self.path("etc/supervisor/supervisord.conf"),
                        "status",
                    ])
                    .output()
                    .unwrap();
                let logs: String = std::fs::read_dir(self.root.path().join("logs"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect();
                panic!(
                    "the app never answered as expected\nstatus: {}\nlogs: {logs}",
                    String::from_utf8_lossy(&status.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / over gunicorn's unix socket.
pub fn http_get(socket: &Path) -> Option<serde_json::Value> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    serde_json::from_slice(&buf[at + 4..]).ok()
}

/// Every file under `dir` that holds `needle`.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    super::files_under(dir, &[])
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(path, _)| path)
        .collect()
}

/// A real sshd on 127.0.0.1 with its own host key, set up as Debian's: PAM (account and
/// session checks: an expired account is refused), each user's own
/// `~/.ssh/authorized_keys`, strict modes, and `sshd_config.d/*.conf` drop-ins read
/// first. Root (whose home is the bound `roothome`) is let in with `authorized`; an
/// ssh_config for the client side (key, known hosts: nothing of the machine's own).
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    /// The listening sshd's pid (each connection's sshd is its child), for a bench.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(authorized_private_key: &Path) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("vault-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        // Strict modes: the folders above root's home are no one else's to write.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let key = d.join("client_key");
        std::fs::copy(authorized_private_key, &key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        new_host_key(d, "ed25519");
        std::fs::create_dir(d.join("sshd_config.d")).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Include {dropins}/*.conf\nPort {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                 AuthorizedKeysFile .ssh/authorized_keys\nUsePAM yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
                dropins = d.join("sshd_config.d").display(),
                hk = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  BatchMode yes\n",
                key.display(),
                d.join("known_hosts").display()
            ),
        )
        .unwrap();
        // Root logs in to a fresh server root's home (base-files' dot files), not this
        // machine's: sshd runs in a mount namespace of its own with that home bound over
        // /root, so the tests do not depend on what a developer's ~/.bashrc does. `exec`
        // keeps the child's pid sshd's own.
        let home = d.join("roothome");
        std::fs::create_dir(&home).unwrap();
        for f in ["bashrc", "profile"] {
            let base = PathBuf::from(format!("/usr/share/base-files/dot.{f}"));
            let src = if base.exists() {
                base
            } else {
                PathBuf::from(format!("/etc/skel/.{f}"))
            };
            std::fs::copy(src, home.join(format!(".{f}"))).unwrap();
        }
        let ssh_dir = home.join(".ssh");
        std::fs::create_dir(&ssh_dir).unwrap();
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let public = format!("{}.pub", authorized_private_key.display());
        std::fs::copy(public, ssh_dir.join("authorized_keys")).unwrap();
        std::fs::set_permissions(
            ssh_dir.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let child = spawn_sshd(d, port);
        Sshd { dir, port, child }
    }

    /// The same server on the same port with a new host key of `kind` (what a member's
    /// ssh sees of a man in the middle, or of a reinstalled server).
    pub fn replace_host_key(&mut self, kind: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        new_host_key(self.dir.path(), kind);
        self.child = spawn_sshd(self.dir.path(), self.port);
    }

    /// The main sshd_config (what `sshd -t -f` checks).
    pub fn config(&self) -> String {
        self.dir.path().join("sshd_config").display().to_string()
    }

    /// The folder of drop-ins the main config includes first.
    pub fn dropin_dir(&self) -> String {
        self.dir.path().join("sshd_config.d").display().to_string()
    }

    /// A shell command that makes this sshd read its configuration again (SIGHUP: it
    /// re-executes itself under the same pid, as `systemctl reload ssh` has it do).
    pub fn reload_command(&self) -> String {
        format!(
            "kill -HUP \"$(cat {})\"",
            self.dir.path().join("sshd.pid").display()
        )
    }

    /// `command` run over a new ssh login as `user` with the client key (nothing shared
    /// with vault's connections).
    pub fn login(&self, user: &str, command: &str) -> std::process::Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
            .args(["-o", "StrictHostKeyChecking=accept-new"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ssh_config(&self) -> String {
        self.dir.path().join("ssh_config").display().to_string()
    }

    /// The host key's fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        super::fingerprint_of(&self.dir.path().join("host_key.pub"))
    }
}

/// A new host key at `d`/host_key, of `kind` (ed25519, rsa, ecdsa).
fn new_host_key(d: &Path, kind: &str) {
    for f in ["host_key", "host_key.pub"] {
        let _ = std::fs::remove_file(d.join(f));
    }
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", ""])
        .arg("-f")
        .arg(d.join("host_key"))
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// sshd as set up in `d`, listening on `port` once this returns.
fn spawn_sshd(d: &Path, port: u16) -> Child {
    let home = d.join("roothome");
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /root && exec /usr/sbin/sshd -D -e -f "$2""#)
        .arg("sh")
        .arg(&home)
        .arg(d.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Ends the SSH master connections whose control sockets are in `dir` (those of a vault
/// that was killed, which could not end them itself).
pub fn close_masters(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let socket = entry.path().join("master");
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".ssh-connection")
            && socket.exists()
        {
            let _ = Command::new("ssh")
                .arg("-S")
                .arg(&socket)
                .args(["-O", "exit", "unused"])
                .output();
        }
    }
}

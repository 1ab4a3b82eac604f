//! The Salt states under conf/salt, applied by real `salt-call --local` to a private
//! server root: gunicorn under a real supervisord gets every secret byte for byte, the
//! manage wrapper gives the same environment, secret files are root and app user only,
//! Salt's output and cache hold no value, and the program restarts only when its
//! secrets change.

mod common;
use common::{Project, AWKWARD};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APP_USER: &str = "vaulttest";

/// A private server: its own root, supervisord, pillar and minion config.
struct Server {
    root: tempfile::TempDir,
    tools: PathBuf,
    supervisord: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(self.tools.join("supervisorctl"))
            .args(["-c", &self.path("supervisor/supervisord.conf")])
            .arg("shutdown")
            .output();
        let _ = self.supervisord.wait();
    }
}

impl Server {
    /// None (with a message, or a failure in CI) when Salt or the app's venv is missing.
    fn start(p: &Project) -> Option<Server> {
        let python = common::python()?;
        let tools = python.parent().unwrap().to_path_buf();
        let app_venv = std::env::var_os("VAULT_TEST_APP_VENV")
            .map(PathBuf::from)
            .filter(|v| v.join("bin/gunicorn").exists());
        if !tools.join("salt-call").exists() || app_venv.is_none() {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
                panic!("CI is set but Salt or the app venv is missing: scripts/setup-test-deps installs them");
            }
            eprintln!(
                "SKIPPED: Salt or the app venv is missing (scripts/setup-test-deps installs them)"
            );
            return None;
        }
        let app_venv = app_venv.unwrap();
        let root = tempfile::Builder::new()
            .prefix("vault-server-")
            .tempdir()
            .unwrap();
        // The app user walks into the root to read its wrapper and secrets.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = |rel: &str| root.path().join(rel).display().to_string();
        for d in ["supervisor/conf.d", "cfg", "salt-root", "pillar", "logs"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        std::fs::write(
            root.path().join("supervisor/supervisord.conf"),
            format!(
                "[unix_http_server]\nfile={sock}\n[supervisord]\nlogfile={log}\npidfile={pid}\nchildlogdir={logs}\n\
                 [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
                 [supervisorctl]\nserverurl=unix://{sock}\n[include]\nfiles={confd}/*.conf\n",
                sock = path("supervisor.sock"),
                log = path("supervisord.log"),
                pid = path("supervisord.pid"),
                confd = path("supervisor/conf.d"),
                logs = path("logs"),
            ),
        )
        .unwrap();
        let supervisord = Command::new(tools.join("supervisord"))
            .args(["-n", "-c", &path("supervisor/supervisord.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            root.path().join("cfg/minion"),
            format!(
                "id: example-staging\nfile_client: local\nroot_dir: {}\nfile_roots:\n  base: [{}]\npillar_roots:\n  base: [{}]\n",
                path("salt-root"),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/salt").display(),
                path("pillar"),
            ),
        )
        .unwrap();
        let server = Server {
            root,
            tools,
            supervisord,
            port,
        };
        // The project's pillar, with this server's paths and app.
        copy_dir(
            &p.root().join("conf/pillar"),
            &server.root.path().join("pillar"),
        );
        let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app");
        let mut env_sls = std::fs::OpenOptions::new()
            .append(true)
            .open(server.root.path().join("pillar/staging/env.sls"))
            .unwrap();
        write!(
            env_sls,
            "vault:\n  app_user: {APP_USER}\n  paths:\n    etc: {etc}\n    bin: {bin}\n    supervisor_conf_dir: {confd}\n    supervisor_conf: {conf}\n    supervisorctl: {ctl}\n\
             app:\n  directory: {app}\n  gunicorn: {gunicorn}\n  wsgi: envapp:app\n  bind: 127.0.0.1:{port}\n  manage: {py} manage.py\n",
            etc = server.path("etc"),
            bin = server.path("bin"),
            confd = server.path("supervisor/conf.d"),
            conf = server.path("supervisor/supervisord.conf"),
            ctl = server.tools.join("supervisorctl").display(),
            app = app_dir.display(),
            gunicorn = app_venv.join("bin/gunicorn").display(),
            py = app_venv.join("bin/python").display(),
        )
        .unwrap();
        Some(server)
    }

    fn path(&self, rel: &str) -> String {
        self.root.path().join(rel).display().to_string()
    }

    /// Ships the canonical pillar as `vault provision` will, then applies the states.
    fn apply(&self, p: &Project) -> String {
        p.vault(&[
            "export",
            "staging",
            "--format",
            "sls",
            "-o",
            &self.path("pillar/staging/secrets.sls"),
        ])
        .success();
        let out = Command::new(self.tools.join("salt-call"))
            .args([
                "--local",
                "--config-dir",
                &self.path("cfg"),
                "--retcode-passthrough",
                "state.apply",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "salt-call failed:\n{text}");
        text
    }

    /// The app's answer: its pid and environment, waiting for it to (re)start.
    fn ask(&self, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(v) = http_get(self.port).filter(|v| want(v)) {
                return v;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let status = Command::new(self.tools.join("supervisorctl"))
                    .args(["-c", &self.path("supervisor/supervisord.conf"), "status"])
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

fn http_get(port: u16) -> Option<serde_json::Value> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    serde_json::from_slice(&buf[at + 4..]).ok()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn gunicorn_under_supervisord_gets_every_secret_exactly() {
    let p = Project::new();
    for (k, v) in AWKWARD {
        p.set("staging", k, v);
    }
    let Some(server) = Server::start(&p) else {
        return;
    };
    let output = server.apply(&p);

    let answer = server.ask(|v| v["env"]["LEADING_ZERO"] == "0123");
    for (k, v) in AWKWARD {
        assert_eq!(answer["env"][k], *v, "{k} did not arrive exactly");
    }
    // No value in Salt's output (the distinctive ones; `yes` and `on` are common words).
    for (k, v) in AWKWARD.iter().filter(|(_, v)| v.len() > 6) {
        assert!(!output.contains(v), "{k} appears in Salt's output");
        let line = v.lines().nth(1).unwrap_or(v);
        assert!(
            line.len() < 7 || !output.contains(line),
            "a line of {k} appears in Salt's output"
        );
    }
    // Secret-bearing files: root and the app user only.
    let etc = std::fs::metadata(server.path("etc")).unwrap();
    let env = std::fs::metadata(server.path("etc/secrets.env")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o777, 0o750);
    assert_eq!(env.permissions().mode() & 0o777, 0o640);
    assert_eq!((env.uid(), etc.uid()), (0, 0));
    let group = Command::new("getent")
        .args(["group", APP_USER])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&group.stdout)
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((env.gid(), etc.gid()), (gid, gid));
    // Nothing of the values in Salt's cache or logs.
    for (k, v) in AWKWARD.iter().filter(|(_, v)| v.len() > 6) {
        let leaked = files_holding(&server.root.path().join("salt-root"), v.as_bytes());
        assert!(leaked.is_empty(), "{k} is in {leaked:?}");
    }

    // The manage wrapper: the same environment, as the app user.
    let out = Command::new(server.path("bin/example-manage"))
        .args(["migrate", "--noinput"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manage["user"], APP_USER);
    assert_eq!(manage["argv"], serde_json::json!(["migrate", "--noinput"]));
    for (k, v) in AWKWARD {
        assert_eq!(manage["env"][k], *v, "manage: {k}");
    }

    // Applied again unchanged: left alone (same process).
    let pid = answer["pid"].clone();
    server.apply(&p);
    assert_eq!(
        server.ask(|_| true)["pid"],
        pid,
        "restarted without a change"
    );
    // One secret changed: restarted, with the new value.
    p.set("staging", "PIN", "4321");
    server.apply(&p);
    let after = server.ask(|v| v["env"]["PIN"] == "4321");
    assert_ne!(after["pid"], pid, "not restarted after its secrets changed");
    assert_eq!(
        after["env"]["PEM"],
        AWKWARD.iter().find(|(k, _)| *k == "PEM").unwrap().1
    );
}

//! Health-checked starts, through the real `vault provision` over a loopback sshd into a
//! real supervisord and gunicorn: a program that cannot start (its settings raise at
//! import, its gunicorn is missing) or that answers its health path with a 500 fails the
//! provision, and the closing table names it and shows its log's last lines, redacted; an
//! honest start passes; a run with nothing to do checks nothing.

use crate::common::server::{free_port, tools, Server, Sshd};
use crate::common::{self, key, Project};
use crate::provision::provision;
use std::path::{Path, PathBuf};

/// A secret the broken app prints to its log (and puts in its exception) on the way down.
const TOKEN: &str = "brk-Zq8xW2mP4kT7vR1nL5sY";

/// A project whose staging server is `server`, reached through `sshd`.
struct Setup {
    p: Project,
    server: Server,
    sshd: Sshd,
    env_sls: PathBuf,
    /// env.sls as the test starts it: the host, and the server's app settings.
    base: String,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !common::have("rsync") || !common::have("sshd") && !Path::new("/usr/sbin/sshd").exists()
        {
            common::require_in_ci("rsync and sshd");
            return None;
        }
        let (tools, app) = tools()?;
        let p = Project::new();
        p.set("staging", "BROKEN_TOKEN", TOKEN);
        let server = Server::start(&tools, &app);
        let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
        let env_sls = p.root().join("conf/pillar/staging/env.sls");
        let text = std::fs::read_to_string(&env_sls).unwrap().replace(
            "hosts: []",
            &format!("hosts: ['root@127.0.0.1:{}']", sshd.port),
        );
        let base = format!("{text}{}", server.pillar_settings());
        Some(Setup {
            p,
            server,
            sshd,
            env_sls,
            base,
        })
    }

    /// env.sls as it started, with each of `app`'s settings (`key: value`) in its `app:`,
    /// and none of those named in `without`.
    fn app_settings(&self, app: &[(&str, &str)], without: &[&str]) {
        let mut text = self.base.clone();
        for key in without {
            let at = text.lines().find(|l| l.starts_with(&format!("  {key}: ")));
            text = text.replace(&format!("{}\n", at.expect("a setting to take out")), "");
        }
        for (key, value) in app {
            let setting = format!("  {key}: {value}\n");
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("  {key}: ")))
                .map(|l| format!("{l}\n"));
            text = match line {
                Some(line) => text.replace(&line, &setting),
                None => text.replace("app:\n", &format!("app:\n{setting}")),
            };
        }
        std::fs::write(&self.env_sls, text).unwrap();
    }

    fn provision(&self, extra: &[&str]) -> common::Run {
        provision(&self.p, &self.sshd, &self.server, extra)
    }
}

/// The closing table's lines under a failed host: what its failed states reported.
fn reported(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("  ")).collect()
}

/// `out` failed, and its table says `example-gunicorn` did not start or answer, with
/// its log's last lines; no trace of [`TOKEN`] anywhere in vault's output.
fn assert_failed_naming_the_program(out: &common::Run) -> Vec<String> {
    let (log, err) = (format!("{}{}", out.stdout(), out.stderr()), out.stderr());
    assert_eq!(out.code(), 1, "{log}");
    assert!(!log.contains(TOKEN), "the secret in vault's output: {log}");
    assert!(
        err.lines()
            .any(|l| l.contains("failed: ") && l.contains("gunicorn_")),
        "{err}"
    );
    let lines = reported(&err);
    assert!(
        lines[0].starts_with("  example-gunicorn: "),
        "the table names the program: {err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  example-gunicorn's log, last 10 lines:")),
        "{err}"
    );
    let last = err.lines().rev().nth(1).unwrap();
    assert!(
        last.contains("provisioning failed on root@127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.ends_with("hint: the table above says what failed on each host; fix that, then run `vault provision staging` again\n"),
        "{err}"
    );
    lines.iter().map(|l| l.to_string()).collect()
}

#[test]
fn a_program_that_cannot_start_fails_the_provision_with_its_log() {
    let Some(s) = Setup::new() else { return };
    // Settings that raise at import, with the default startsecs (5): the app must be
    // seen to die before supervisord would call it RUNNING, however slowly gunicorn
    // boots on a busy machine. A start that fails costs no wait.
    s.app_settings(&[("wsgi", "brokenapp:app")], &["startsecs"]);
    let out = s.provision(&["--accept-new-host-key"]);
    let lines = assert_failed_naming_the_program(&out);
    assert!(
        lines[0].contains("BACKOFF") || lines[0].contains("FATAL"),
        "{lines:?}"
    );
    // The app's own last words, with the secret it printed redacted.
    assert!(
        lines
            .iter()
            .any(|l| l == "  | RuntimeError: settings: the token [redacted] is refused"),
        "{lines:?}"
    );
    let conf = s.server.path("etc/supervisor/conf.d/example-gunicorn.conf");
    let conf = std::fs::read_to_string(conf).unwrap();
    assert!(
        conf.contains("\nstartsecs=5\n") && conf.contains("\nstartretries=3\n"),
        "{conf}"
    );

    // Settings fixed: the next provision starts it (startsecs 1 again, for speed).
    s.app_settings(&[], &[]);
    let out = s.provision(&[]).success();
    assert!(out.stderr().contains(" ok "), "{}", out.stderr());
    assert_eq!(s.server.ask(|_| true)["env"]["BROKEN_TOKEN"], TOKEN);

    // A gunicorn that is not there.
    s.app_settings(&[("gunicorn", "/nonexistent/gunicorn")], &["startsecs"]);
    let lines = assert_failed_naming_the_program(&s.provision(&[]));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  | ") && l.contains("/nonexistent/gunicorn")),
        "the log says what is missing: {lines:?}"
    );
    // Nothing changed since, but the program is still down: the provision still fails.
    assert_failed_naming_the_program(&s.provision(&[]));

    // Its gunicorn back: running again.
    s.app_settings(&[], &[]);
    s.provision(&[]).success();
    assert_eq!(s.server.ask(|_| true)["env"]["BROKEN_TOKEN"], TOKEN);
}

#[test]
fn a_health_path_must_answer_and_an_unchanged_run_checks_nothing() {
    let Some(s) = Setup::new() else { return };
    // On the unix socket: a path that answers 200 passes.
    s.app_settings(&[("health", "/healthz")], &[]);
    let out = s.provision(&["--accept-new-host-key"]).success();
    let log = out.stderr();
    assert!(
        log.contains("example-gunicorn answered GET /healthz with 200"),
        "{log}"
    );
    let pid = s.server.ask(|_| true)["pid"].clone();

    // Nothing to do: no check, no restart, nothing changed.
    let out = s.provision(&[]).success();
    let log = out.stderr();
    assert!(!log.contains("GET /healthz"), "a check ran: {log}");
    assert!(
        log.lines()
            .any(|l| l.contains(" ok ") && l.trim_end().ends_with("s") && l.contains(" 0  ")),
        "{log}"
    );
    assert_eq!(s.server.ask(|_| true)["pid"], pid);

    // On host:port: 200 passes, a 500 fails the provision and names the program.
    let bind = format!("127.0.0.1:{}", free_port());
    s.app_settings(&[("health", "/healthz"), ("bind", &bind)], &[]);
    let out = s.provision(&[]).success();
    assert!(
        out.stderr()
            .contains("example-gunicorn answered GET /healthz with 200"),
        "{}",
        out.stderr()
    );
    s.app_settings(&[("health", "/broken"), ("bind", &bind)], &[]);
    s.p.set("staging", "BROKEN_TOKEN", &format!("{TOKEN}-2"));
    let lines = assert_failed_naming_the_program(&s.provision(&[]));
    assert_eq!(
        lines[0], "  example-gunicorn: GET /broken answered 500",
        "{lines:?}"
    );
}

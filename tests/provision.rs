//! `vault provision` end to end on loopback: a real sshd, rsync over its master
//! connection, the pillar streamed from memory, real salt-call, supervisord and gunicorn.

use crate::common::server::{files_holding, tools, Server, Sshd};
use crate::common::{self, key, Project, AWKWARD};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `vault provision staging` against `sshd`, into `server`, with `extra` flags.
pub(crate) fn provision(p: &Project, sshd: &Sshd, server: &Server, extra: &[&str]) -> common::Run {
    let salt_call = server.tools.join("salt-call").display().to_string();
    let mut args = provision_args(sshd, server, &salt_call);
    args.extend(extra.iter().map(|a| a.to_string()));
    p.vault(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The arguments of `vault provision staging` against `sshd`, into `server`, with `salt_call`.
pub(crate) fn provision_args(sshd: &Sshd, server: &Server, salt_call: &str) -> Vec<String> {
    let (config, remote) = (sshd.ssh_config(), server.path(""));
    ["provision", "staging", "--ssh-config", &config]
        .into_iter()
        .chain(["--remote-root", &remote, "--salt-call", salt_call])
        // Each change these tests make to the states is approved as a member would:
        // tests/approvals.rs holds what an unapproved one meets.
        .chain(["--approve"])
        .map(String::from)
        .collect()
}

/// Waits up to 30 s for `done`, failing with `what` if it never is.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The AWKWARD values too short to find safely (under 4 characters, a number under 6,
/// `null`): Salt's output may show them, and the closing table names them instead.
const UNREDACTED: &[&str] = &["LEADING_ZERO", "YES", "ON", "FLOAT", "NULL_WORD", "TAB"];

/// Long values besides AWKWARD's: one Salt prints glued inside a longer word, one it
/// wraps over three lines.
const LONG: &[(&str, &str)] = &[
    ("GLUED", "Zq8xW2mP4kT7vR1nL5sYb3Hc"),
    (
        "WRAPPED",
        "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",
    ),
];

/// A state printing every secret, as a careless one would: in its comment (`pw=VALUE;`,
/// each line of a multi-line one on a line of its own) and in a warning, which Salt
/// wraps at 80 columns (a long value glued to the words around it, split after its
/// eighth character).
const LEAKY_STATE: &str = r#"{%- for name, value in salt['pillar.get']('secrets', {}).items() %}
{%- set glue = '' if value|length >= 8 and value.split()|length == 1 and value == value|trim else ' ' %}
leak_{{ name }}:
  test.configurable_test_state:
    - changes: True
    - comment: {{ ('pw=' ~ value ~ ';')|yaml_dquote }}
    - warnings: {{ ('w' * 58 ~ glue ~ value ~ glue ~ 'w' * 8)|yaml_dquote }}
{%- endfor %}
"#;

/// Adds [`LEAKY_STATE`] to `p`'s states, or (`add` false) takes it away.
fn add_leaky_state(p: &Project, add: bool) {
    let salt = p.root().join("conf/salt");
    let top = std::fs::read_to_string(salt.join("top.sls")).unwrap();
    let (without, with) = ("    - project\n", "    - project\n    - leak\n");
    let top = if add {
        std::fs::write(salt.join("leak.sls"), LEAKY_STATE).unwrap();
        top.replace(without, with)
    } else {
        std::fs::remove_file(salt.join("leak.sls")).unwrap();
        top.replace(with, without)
    };
    std::fs::write(salt.join("top.sls"), top).unwrap();
}

/// No secret of ordinary length in `log`, vault's whole output (progress, Salt's stream,
/// the table, errors): no AWKWARD or LONG value but those `unredacted` names, nor any
/// line of one; and the closing table names the `unredacted` once, never their values.
fn assert_redacted(log: &str, unredacted: &[&str]) {
    let findable = AWKWARD.iter().chain(LONG);
    for (k, v) in findable.filter(|(k, _)| !unredacted.contains(k)) {
        for piece in v.lines().map(str::trim).filter(|p| !p.is_empty()) {
            assert!(!log.contains(piece), "{k} appears in the output: {log}");
        }
    }
    let notes: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("not redacted: too short to find safely: "))
        .collect();
    assert_eq!(notes.len(), 1, "the names once: {log}");
    let mut names: Vec<&str> = notes[0].split(", ").collect();
    names.sort_unstable();
    let mut want = unredacted.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "{log}");
    for (k, v) in AWKWARD.iter().filter(|(k, _)| unredacted.contains(k)) {
        assert!(!notes[0].contains(v), "{k}'s value in the table");
    }
}

#[test]
fn provision_over_loopback_ssh_end_to_end() {
    if !common::have("rsync") || !common::have("sshd") && !Path::new("/usr/sbin/sshd").exists() {
        return;
    }
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    for (k, v) in AWKWARD.iter().chain(LONG) {
        p.set("staging", k, v);
    }
    p.set("production", "PROD_ONLY", "production-secret-value");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        "hosts: []",
        &format!("hosts: ['root@127.0.0.1:{}']", sshd.port),
    );
    std::fs::write(&env_sls, format!("{text}{}", server.pillar_settings())).unwrap();

    // A first contact needs the flag: strict host key checking.
    let out = provision(&p, &sshd, &server, &[]);
    assert_eq!(out.code(), 1);
    let err = out.stderr();
    assert!(err.contains("the host key of root@127.0.0.1:"), "{err}");
    assert!(
        err.contains("--accept-new-host-key for a first contact"),
        "{err}"
    );
    let last = err.lines().rev().nth(1).unwrap();
    assert!(
        last.starts_with("vault: error: staging: provisioning failed on root@127.0.0.1:"),
        "{err}"
    );
    let remote = server.root.path().to_path_buf();
    assert!(
        !remote.join("srv/salt").exists(),
        "nothing is shipped to an unverified host"
    );

    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]).success();
    let log = format!("{}{}", out.stdout(), out.stderr());
    assert!(
        log.contains(&format!("host key accepted: {}", sshd.fingerprint())),
        "{log}"
    );
    assert!(log.contains(" ok "), "{log}");
    // The table says what the run did on the server, in words.
    let did = log
        .split_once("on the server:\n")
        .map(|(_, d)| d)
        .unwrap_or_default();
    for what in [
        "secrets_env: File ",
        "/etc/example/secrets.env updated",
        "example-gunicorn started: RUNNING past its startsecs",
        "staging secrets serial ",
        "recorded as the version applied",
    ] {
        assert!(did.contains(what), "{what}: {log}");
    }
    let answer = server.ask(|v| v["env"]["LEADING_ZERO"] == "0123");
    for (k, v) in AWKWARD {
        assert_eq!(answer["env"][k], *v, "{k} did not arrive exactly");
    }
    // No value of ordinary length in vault's output; the short ones are named.
    assert_redacted(&log, UNREDACTED);
    // The staging server: no production files, nothing encrypted, no plaintext pillar left.
    assert!(!remote.join("srv/pillar/production").exists());
    assert!(remote.join("srv/pillar/staging/env.sls").exists());
    assert!(files_holding(&remote, b"-----BEGIN AGE ENCRYPTED FILE-----").is_empty());
    assert!(files_holding(&remote, b"vault manifest v").is_empty());
    assert!(!remote.join("srv/pillar/staging/secrets.sls").exists());
    assert!(files_holding(&remote, b"production-secret-value").is_empty());
    // The values live only in the app's 0640 env file: not in Salt's cache or logs, and no
    // plaintext secrets file was ever written on this side.
    for (k, v) in AWKWARD.iter().filter(|(_, v)| v.len() > 6) {
        // Only the env file may hold it (shell-escaped where it has a quote).
        let holders = files_holding(&remote, v.as_bytes());
        assert!(
            holders
                .iter()
                .all(|h| h.ends_with("etc/example/secrets.env")),
            "{k}: {holders:?}"
        );
        assert!(
            files_holding(p.root(), v.as_bytes()).is_empty(),
            "{k} in plaintext in the project"
        );
    }
    let mode = std::fs::metadata(server.path("etc/example/secrets.env"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);

    // A state that prints every secret: no value of ordinary length in vault's output
    // (Salt's, streamed through vault, is redacted); the short ones are named instead.
    add_leaky_state(&p, true);
    let out = provision(&p, &sshd, &server, &[]).success();
    let log = format!("{}{}", out.stdout(), out.stderr());
    assert_redacted(&log, UNREDACTED);
    assert!(log.contains("Comment: pw=[redacted];"), "{log}");
    assert!(
        log.contains("Warnings: wwww"),
        "Salt wrapped no warning: {log}"
    );
    // Readable: a short value, and Salt's own words and figures, are not blanked.
    assert!(
        log.contains("Comment: pw=yes;") && log.contains("pw=on;"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("] Succeeded: ") && l.contains("(changed=")),
        "{log}"
    );
    // Wrapped at a space inside a value: its first word is not left at a line's end.
    for (k, v) in AWKWARD.iter().filter(|(k, _)| !UNREDACTED.contains(k)) {
        let first = v.split_whitespace().next().unwrap_or("");
        if first.chars().count() >= 4 && first != v.trim() {
            assert!(!log.lines().any(|l| l.ends_with(first)), "{k}: {log}");
        }
    }
    add_leaky_state(&p, false);

    // A changed value: shipped, and the app restarted with it (host key known now).
    let pid = answer["pid"].clone();
    p.set("staging", "LEADING_ZERO", "00999");
    provision(&p, &sshd, &server, &[]).success();
    let after = server.ask(|v| v["env"]["LEADING_ZERO"] == "00999");
    assert_ne!(after["pid"], pid);

    // --dry-run says what would change and changes nothing: not the app, not the
    // server's Salt roots (a state file only the dry run has never lands there), not the
    // minion config; its scratch copy of the roots is gone afterwards.
    p.set("staging", "LEADING_ZERO", "dry");
    let only_dry = p.root().join("conf/salt/project/dry-run-only.txt");
    std::fs::write(&only_dry, "only in the dry run\n").unwrap();
    let (roots, minion) = (
        common::files_under(&remote.join("srv"), &[]),
        remote.join("etc/salt/minion"),
    );
    let minion_before = std::fs::read(&minion).unwrap();
    let out = provision(&p, &sshd, &server, &["--dry-run"]).success();
    let log = out.stderr();
    assert!(
        log.contains("ID: secrets_env") && log.contains("Result: None"),
        "Salt's test run should show the secrets file would change: {log}"
    );
    // LEADING_ZERO, now `dry`, is still too short to find.
    assert_redacted(&log, UNREDACTED);
    assert_eq!(server.ask(|_| true)["env"]["LEADING_ZERO"], "00999");
    assert_eq!(
        common::files_under(&remote.join("srv"), &[]),
        roots,
        "a dry run changed the Salt roots"
    );
    assert_eq!(std::fs::read(&minion).unwrap(), minion_before);
    std::fs::remove_file(&only_dry).unwrap();
    let out = provision(&p, &sshd, &server, &["--dry-run", "--keep-pillar"]);
    assert_eq!(out.code(), 2, "a dry run keeps nothing: {}", out.stderr());

    // --keep-pillar leaves the 0600 plaintext pillar.
    provision(&p, &sshd, &server, &["--keep-pillar"]).success();
    let kept = remote.join("srv/pillar/staging/secrets.sls");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A failing state fails the command, and the table names it.
    let ctl = tools.join("supervisorctl").display().to_string();
    let broken = std::fs::read_to_string(&env_sls)
        .unwrap()
        .replace(&ctl, "/nonexistent/supervisorctl");
    std::fs::write(&env_sls, broken).unwrap();
    p.set("staging", "LEADING_ZERO", "again");
    let out = provision(&p, &sshd, &server, &[]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let err = out.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains("failed: ") && l.contains("gunicorn_restart")),
        "{err}"
    );
    assert!(
        err.lines()
            .rev()
            .nth(1)
            .unwrap()
            .contains("provisioning failed on root@127.0.0.1:"),
        "{err}"
    );
    assert!(!kept.exists(), "a failed apply removes the pillar too");
    let fixed = std::fs::read_to_string(&env_sls)
        .unwrap()
        .replace("/nonexistent/supervisorctl", &ctl);
    std::fs::write(&env_sls, fixed).unwrap();

    // vault killed while Salt runs: the host removes the pillar when the script ends,
    // with no further word from vault.
    let config = sshd.ssh_config();
    let slow_dir = tempfile::tempdir().unwrap();
    let slow = slow_dir.path().join("salt-call");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\nsleep 2\nexec '{}' \"$@\"\n",
            tools.join("salt-call").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let slow_s = slow.display().to_string();
    let args = provision_args(&sshd, &server, &slow_s);
    let mut child = p
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the pillar never arrived", || kept.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the pillar outlived a killed vault", || !kept.exists());
    common::server::close_masters(&p.home.join(".local/state"));

    // Clear errors: no salt-call (and then nothing is shipped), an unreachable host.
    std::fs::write(p.root().join("conf/salt/project/new.txt"), "new\n").unwrap();
    let args = provision_args(&sshd, &server, "/nonexistent/salt-call");
    let out = p.vault(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.stderr()
            .contains("/nonexistent/salt-call not found on the host"),
        "{}",
        out.stderr()
    );
    assert!(!remote.join("srv/salt/project/new.txt").exists());
    let out = p.vault(&[
        "provision",
        "staging",
        "-H",
        "root@127.0.0.1:1",
        "--ssh-config",
        &config,
        "--approve",
    ]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr().contains("cannot reach root@127.0.0.1:1")
            || out.stderr().contains("cannot connect to root@127.0.0.1:1"),
        "{}",
        out.stderr()
    );
}

#[test]
fn two_hosts_are_provisioned_in_parallel() {
    if !common::have("rsync") {
        return;
    }
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    p.set("staging", "SHARED", "same-on-both-hosts");
    // Two servers on one machine: each its own sshd, and its own root named by its port.
    let sshds = [
        Sshd::start(Path::new(&key("mallory_ed25519"))),
        Sshd::start(Path::new(&key("mallory_ed25519"))),
    ];
    let parent = tempfile::Builder::new()
        .prefix("vault-hosts-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let servers: Vec<Server> = sshds
        .iter()
        .map(|s| {
            let root = tempfile::Builder::new()
                .prefix(&s.port.to_string())
                .rand_bytes(0)
                .tempdir_in(parent.path())
                .unwrap();
            Server::start_at(root, &tools, &app)
        })
        .collect();
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(&env_sls, format!("{text}{}", servers[0].pillar_settings())).unwrap();
    let hosts: Vec<String> = sshds
        .iter()
        .map(|s| format!("root@127.0.0.1:{}", s.port))
        .collect();
    let root = format!("{}/{{port}}", parent.path().display());
    let salt_call = tools.join("salt-call").display().to_string();
    let config = sshds[0].ssh_config();
    // `vault provision staging` to `targets`, each host's root named by its port.
    let command = |targets: &[&str], extra: &[&str]| {
        let mut args = vec!["provision", "staging"];
        for t in targets {
            args.extend(["-H", t]);
        }
        args.extend(["--ssh-config", &config, "--remote-root", &root]);
        args.extend(["--salt-call", &salt_call, "--approve"]);
        args.extend_from_slice(extra);
        p.cmd(&args)
    };
    let both = [hosts[0].as_str(), hosts[1].as_str()];
    let out = common::Run(
        command(&both, &["--jobs", "2", "--accept-new-host-key"])
            .output()
            .unwrap(),
    )
    .success();
    // The final table: one row per host, each ok.
    let err = out.stderr();
    for h in &hosts {
        assert!(
            err.lines()
                .any(|l| l.starts_with(h.as_str()) && l.contains(" ok ")),
            "{err}"
        );
    }
    for server in &servers {
        let answer = server.ask(|v| v["env"]["SHARED"] == "same-on-both-hosts");
        assert_eq!(answer["env"]["SHARED"], "same-on-both-hosts");
    }

    // At a terminal: a live line per host naming its step, each ending in its result,
    // then the table; Salt's output goes through, and no value shows on the screen.
    if common::have("script") {
        p.set("staging", "SHARED", "changed-on-both-hosts");
        let (status, screen) = common::on_terminal(&command(&both, &[]), None);
        assert!(status.success(), "{screen}");
        for h in &hosts {
            for shown in [format!("{h} salt-call"), format!("{h} done (")] {
                assert!(
                    screen.contains(&shown),
                    "no '{shown}' on the screen: {screen}"
                );
            }
            assert!(
                screen
                    .lines()
                    .any(|l| l.starts_with(h.as_str()) && l.contains(" ok ")),
                "{screen}"
            );
        }
        assert!(screen.contains("Succeeded:"), "Salt's output: {screen}");
        assert!(!screen.contains("changed-on-both-hosts"), "{screen}");
        for server in &servers {
            server.ask(|v| v["env"]["SHARED"] == "changed-on-both-hosts");
        }
    }
    // One host failing does not stop the other, and the exit status says so.
    let out = common::Run(
        command(&[&hosts[0], "root@127.0.0.1:1"], &[])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code(), 1);
    let err = out.stderr();
    assert!(
        err.lines()
            .any(|l| l.starts_with(hosts[0].as_str()) && l.contains(" ok ")),
        "{err}"
    );
    assert!(
        err.contains("provisioning failed on root@127.0.0.1:1"),
        "{err}"
    );
}

/// Points staging's hosts at `sshd`, and its settings at `server`.
fn staging_to(p: &Project, sshd: &Sshd, server: &Server) {
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        "hosts: []",
        &format!("hosts: ['root@127.0.0.1:{}']", sshd.port),
    );
    std::fs::write(&env_sls, format!("{text}{}", server.pillar_settings())).unwrap();
}

/// A refused run: exit 1, the error line (last but one) naming the host, the key
/// known_hosts hold and the one presented, the hint how to check and replace it; and
/// with -q, nothing but those two lines.
#[track_caller]
fn assert_refused(out: &common::Run, sshd: &Sshd, known: &str, presented: &str) {
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let err = out.stderr();
    let lines: Vec<&str> = err.lines().collect();
    let (error, hint) = (lines[lines.len() - 2], lines[lines.len() - 1]);
    let name = format!("[127.0.0.1]:{}", sshd.port);
    assert_eq!(
        error,
        format!(
            "vault: error: staging: the host key of root@127.0.0.1:{} has changed: known_hosts \
             holds {known} for {name}, the host now presents {presented}; refused, nothing was sent",
            sshd.port
        ),
        "{err}"
    );
    let kind = presented.split(' ').next().unwrap().to_lowercase();
    let known_hosts = sshd.dir.path().join("known_hosts");
    for part in [
        format!("ssh-keygen -lf /etc/ssh/ssh_host_{kind}_key.pub"),
        format!("only if it says {},", presented.split(' ').nth(1).unwrap()),
        format!("`ssh-keygen -f {} -R '{name}'`", known_hosts.display()),
        "`vault provision staging --accept-new-host-key`".into(),
    ] {
        assert!(hint.starts_with("hint: ") && hint.contains(&part), "{hint}");
    }
}

#[test]
fn a_changed_host_key_is_refused_with_or_without_the_flag() {
    if !common::have("rsync") {
        return;
    }
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    p.set("staging", "TOKEN", "first-token-value");
    let server = Server::start(&tools, &app);
    let mut sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    staging_to(&p, &sshd, &server);
    let known_hosts = sshd.dir.path().join("known_hosts");

    // First contact: the flag adds the key (accept-new), and says which.
    let first = sshd.fingerprint();
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]).success();
    let shown = format!(
        "host key accepted: {first} (ED25519), now in {}",
        known_hosts.display()
    );
    assert!(out.stderr().contains(&shown), "{}", out.stderr());
    server.ask(|v| v["env"]["TOKEN"] == "first-token-value");

    // What a run would ship now: a new value, a new state file.
    p.set("staging", "TOKEN", "second-token-value");
    let new_state = p.root().join("conf/salt/project/after-the-change.txt");
    std::fs::write(&new_state, "shipped only to the real server\n").unwrap();
    let remote = server.root.path().to_path_buf();
    let shipped = || {
        let etc = common::files_under(&remote.join("etc"), &[]);
        (common::files_under(&remote.join("srv"), &[]), etc)
    };
    let (before, known_before) = (shipped(), std::fs::read(&known_hosts).unwrap());

    // Someone else answers on the server's address with a key of their own: of the same
    // type, then of another. With or without the flag, nothing goes to it.
    let mut last = String::new();
    for kind in ["ed25519", "rsa"] {
        sshd.replace_host_key(kind);
        let presented = format!("{} {}", kind.to_uppercase(), sshd.fingerprint());
        for flags in [
            &[][..],
            &["--accept-new-host-key"],
            &["-q", "--accept-new-host-key"],
        ] {
            let out = provision(&p, &sshd, &server, flags);
            assert_refused(&out, &sshd, &format!("ED25519 {first}"), &presented);
            if flags.contains(&"-q") {
                out.refused(1);
            }
            assert!(!out.stderr().contains("second-token-value"));
            assert_eq!(shipped(), before, "something was shipped to a changed host");
            assert!(files_holding(&remote, b"second-token-value").is_empty());
            assert!(!remote.join("srv/pillar/staging/secrets.sls").exists());
            let known_now = std::fs::read(&known_hosts).unwrap();
            assert_eq!(known_now, known_before, "known_hosts took the new key");
        }
        last = presented;
    }
    assert!(!remote
        .join("srv/salt/project/after-the-change.txt")
        .exists());

    // The honest flow: the admin confirms the new key; the member removes the old one as
    // the hint says, accepts the new one, and later runs need no flag.
    let name = format!("[127.0.0.1]:{}", sshd.port);
    let out = std::process::Command::new("ssh-keygen")
        .arg("-f")
        .arg(&known_hosts)
        .args(["-R", &name])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]).success();
    let fingerprint = last.split(' ').nth(1).unwrap();
    assert!(
        out.stderr()
            .contains(&format!("host key accepted: {fingerprint} (RSA)")),
        "{}",
        out.stderr()
    );
    server.ask(|v| v["env"]["TOKEN"] == "second-token-value");
    assert!(remote
        .join("srv/salt/project/after-the-change.txt")
        .exists());
    p.set("staging", "TOKEN", "third-token-value");
    let out = provision(&p, &sshd, &server, &[]).success();
    assert!(
        !out.stderr().contains("host key accepted"),
        "{}",
        out.stderr()
    );
    server.ask(|v| v["env"]["TOKEN"] == "third-token-value");
}

//! What an environment's env.sls adds to a provision, end to end on loopback (real sshd,
//! rsync, salt-call, supervisord, gunicorn): the `env:` settings exported beside the
//! secrets, never redacted, checked as Salt will read them; and extra state trees
//! (`vault: state_trees:`) shipped in the same rsync and held to the approval.

use crate::common::server::{tools, Server, Sshd};
use crate::common::{self, key, Project};
use std::path::Path;

/// A project whose staging lists `sshd`, with `server`'s settings and `extra` in env.sls.
fn staging(p: &Project, sshd: &Sshd, server: &Server, extra: &str) {
    server.staging_env(p.root(), sshd, extra);
}

/// `vault provision staging` into `server`, with `extra` flags.
fn provision(p: &Project, sshd: &Sshd, server: &Server, extra: &[&str]) -> common::Run {
    let flags = server.provision_flags(sshd);
    let mut args: Vec<&str> = vec!["provision", "staging", "--accept-new-host-key"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(extra);
    p.vault(&args)
}

/// The parts the tests need, or None (a failure in CI).
fn parts() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    if !common::have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
        common::require_in_ci("rsync and sshd");
        return None;
    }
    tools()
}

/// Settings Salt prints in a state's comment, as a careless state would: nothing of it
/// is redacted, since none is a secret.
const SHOW_SETTINGS: &str = r#"show_settings:
  test.configurable_test_state:
    - changes: True
    - comment: {{ ('settings: ' ~ salt['pillar.get']('env:DB_NAME') ~ ' at ' ~ salt['pillar.get']('env:DB_HOST'))|yaml_dquote }}
"#;

#[test]
fn env_settings_reach_the_program_beside_the_secrets_and_are_never_redacted() {
    let Some((tools, app)) = parts() else { return };
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "s3cret-Passw0rd-value");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    let env = "env:\n  DB_NAME: example_database\n  DB_HOST: 127.0.0.1\n  DB_PORT: '5432'\n  \
               DEBUG: 'off'\n  GREETING: \"it's 100% $HOME, \\\"quoted\\\"\"\n  PADDED: '  x  '\n";
    staging(&p, &sshd, &server, env);
    let salt = p.root().join("conf/salt");
    std::fs::write(salt.join("show.sls"), SHOW_SETTINGS).unwrap();
    let top = std::fs::read_to_string(salt.join("top.sls")).unwrap();
    std::fs::write(
        salt.join("top.sls"),
        top.replace("    - project\n", "    - project\n    - show\n"),
    )
    .unwrap();

    let out = provision(&p, &sshd, &server, &["--approve"]).success();
    let log = format!("{}{}", out.stdout(), out.stderr());
    let answer = server.ask(|v| v["env"]["DB_NAME"] == "example_database");
    for (k, v) in [
        ("DB_NAME", "example_database"),
        ("DB_HOST", "127.0.0.1"),
        ("DB_PORT", "5432"),
        ("DEBUG", "off"),
        ("GREETING", "it's 100% $HOME, \"quoted\""),
        ("PADDED", "  x  "),
        ("DB_PASSWORD", "s3cret-Passw0rd-value"),
    ] {
        assert_eq!(answer["env"][k], v, "{k} did not arrive exactly");
    }
    assert!(
        log.contains("settings: example_database at 127.0.0.1"),
        "{log}"
    );
    assert!(!log.contains("s3cret-Passw0rd-value"), "{log}");
}

#[test]
fn a_setting_salt_would_read_otherwise_or_that_is_also_a_secret_is_refused_before_shipping() {
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "s3cret-Passw0rd-value");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let base = std::fs::read_to_string(&env_sls)
        .unwrap()
        .replace("hosts: []", "hosts: ['root@127.0.0.1:9']");
    for (env, says, hint) in [
        (
            "env:\n  DEBUG: off\n",
            "line 6: env: DEBUG: Salt reads `off` as the boolean False",
            "quote it in conf/pillar/staging/env.sls: DEBUG: 'off'",
        ),
        (
            "env:\n  ZIP: 0123\n",
            "env: ZIP: Salt reads `0123` as the integer 123",
            "ZIP: '0123'",
        ),
        (
            "env:\n  EMPTY:\n",
            "env: EMPTY: Salt reads `` as the null None",
            "EMPTY: ''",
        ),
        (
            "env:\n  DB_PASSWORD: guess\n",
            "staging: DB_PASSWORD is both a setting (env: in conf/pillar/staging/env.sls) and a secret",
            "vault unset staging DB_PASSWORD",
        ),
        (
            "env:\n  2FA: x\n",
            "env: 2FA: not a name a program's environment can hold",
            "DB_HOST",
        ),
        ("env:\n  LIST: [a, b]\n", "env: LIST: not a single value", ""),
        (
            "env:\n  DB_PORT: 5432\n",
            "env: DB_PORT: Salt reads `5432` as the integer 5432, and every setting must be a string",
            "DB_PORT: '5432'",
        ),
        (
            "env:\n  LD_PRELOAD: /tmp/x.so\n",
            "env: LD_PRELOAD: the name controls how programs run",
            "vault allow ENV NAME",
        ),
    ] {
        std::fs::write(&env_sls, format!("{base}{env}")).unwrap();
        let before = p.snapshot();
        let out = p.vault(&["provision", "staging", "--dry-run", "--approve"]);
        let err = out.stderr();
        assert_ne!(out.code(), 0, "{env}: {err}");
        assert!(err.contains(says), "{env}: {err}");
        assert!(err.contains(hint), "{env}: {err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(!err.contains("connect"), "nothing connects: {err}");
        assert!(p.snapshot() == before, "{env}: nothing changes on disk");
    }
}

#[test]
fn salt_itself_refuses_a_setting_that_is_also_a_secret_in_a_templated_env_sls() {
    let Some((tools, app)) = parts() else { return };
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "s3cret-Passw0rd-value");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    // Jinja in env.sls: vault cannot read it as it stands, Salt renders it.
    staging(
        &p,
        &sshd,
        &server,
        "env:\n  \"{{ 'DB_' ~ 'PASSWORD' }}\": guess\n",
    );
    let out = provision(&p, &sshd, &server, &["--approve"]);
    let log = format!("{}{}", out.stdout(), out.stderr());
    assert_eq!(out.code(), 1, "{log}");
    assert!(
        log.contains("env: DB_PASSWORD is also a secret: keep one"),
        "{log}"
    );
    assert!(!log.contains("s3cret-Passw0rd-value"), "{log}");
    assert!(!Path::new(&server.path("etc/example/secrets.env")).exists());
}

#[test]
fn an_extra_state_tree_ships_in_the_same_rsync_and_is_approved_with_the_rest() {
    let Some((tools, app)) = parts() else { return };
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "s3cret-Passw0rd-value");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    // A checkout of base states beside the project's own, with a repository of its own.
    let tree = p.root().join("vendor/margarita");
    std::fs::create_dir_all(tree.join("base")).unwrap();
    std::fs::create_dir_all(tree.join(".git")).unwrap();
    std::fs::write(tree.join(".git/config"), "[core]\n").unwrap();
    let marker = server.path("etc/margarita-was-here");
    let state =
        format!("marker:\n  file.managed:\n    - name: {marker}\n    - contents: base states\n");
    std::fs::write(tree.join("base/init.sls"), &state).unwrap();
    staging(&p, &sshd, &server, "");
    // Beside the test server's own `vault:` settings.
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    let text = text.replacen("vault:\n", "vault:\n  state_trees: [vendor/margarita]\n", 1);
    std::fs::write(&env_sls, text).unwrap();
    let salt = p.root().join("conf/salt");
    let top = std::fs::read_to_string(salt.join("top.sls")).unwrap();
    std::fs::write(
        salt.join("top.sls"),
        top.replace("    - project\n", "    - base\n    - project\n"),
    )
    .unwrap();

    provision(&p, &sshd, &server, &["--approve"]).success();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "base states\n");
    assert!(Path::new(&server.path("srv/margarita/base/init.sls")).exists());
    assert!(
        !Path::new(&server.path("srv/margarita/.git")).exists(),
        "its .git stays behind"
    );
    let approval =
        std::fs::read_to_string(p.root().join("conf/pillar/staging/approval.sig")).unwrap();
    assert!(
        approval.contains("file state_trees/margarita/base/init.sls sha256:"),
        "{approval}"
    );

    // A change in the tree is a change of what decides where the secrets go.
    std::fs::write(
        tree.join("base/init.sls"),
        state.replace("base states", "changed"),
    )
    .unwrap();
    let out = provision(&p, &sshd, &server, &[]);
    let err = out.stderr();
    assert_eq!(out.code(), 1, "{err}");
    assert!(err.contains("state_trees/margarita/base/init.sls"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "base states\n",
        "nothing applied"
    );

    // A tree that is not there is named, with what to do.
    std::fs::remove_dir_all(&tree).unwrap();
    let out = provision(&p, &sshd, &server, &["--approve"]);
    let err = out.stderr();
    assert!(
        err.contains("vault: state_trees: vendor/margarita: no such folder"),
        "{err}"
    );
    assert!(err.contains("git clone"), "{err}");
}

/// Plain scalars of every kind Salt's loader types, and some it keeps: vault's account of
/// what `{{ value }}` renders must be real Salt's, value by value.
const PLAIN: &[&str] = &[
    "yes",
    "No",
    "ON",
    "off",
    "True",
    "y",
    "n",
    "0123",
    "-012",
    "+12",
    "00",
    "0",
    "0_7",
    "0x1F",
    "0b101",
    "1_000",
    "1:20",
    "-1:20:30",
    "1.50",
    "1.0e+3",
    "-.5",
    "190:20:30.15",
    ".inf",
    "-.Inf",
    ".NaN",
    "1e3",
    "09",
    "08.5",
    "~",
    "null",
    "NULL",
    "2024-01-01",
    "2001-12-14t21:59:43.10-05:00",
    "12345678901234567890123456789012345678901234567890",
    "0o17",
    "1__2",
    "3.",
    "1e16",
    "123456789012345678.0",
    "0.00001",
    "hello",
    "+0",
];

#[test]
fn vault_knows_what_salt_renders_for_each_plain_scalar() {
    let Some(python) = common::python() else {
        return;
    };
    let doc: String = PLAIN
        .iter()
        .enumerate()
        .map(|(i, v)| format!("k{i}: {v}\n"))
        .collect();
    let script = "import sys, salt.utils.yamlloader as y\n\
                  d = y.load(sys.stdin.read())\n\
                  for i in range(len(d)): print(repr(str(d['k%d' % i])))\n";
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-c", script]).current_dir("/");
    let out = common::run_with_input(cmd, doc.as_bytes()).success();
    let salt: Vec<String> = out.stdout().lines().map(String::from).collect();
    assert_eq!(salt.len(), PLAIN.len());
    for (text, salt) in PLAIN.iter().zip(salt) {
        let ours = vault::document::salt_renders(text).expect("Salt reads each of these");
        // Python's repr of a str: quoted with ' (no value here holds a quote).
        assert_eq!(format!("'{ours}'"), salt, "{text}");
    }
}

#[test]
fn a_project_name_that_could_not_name_files_on_a_server_is_refused() {
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "s3cret-Passw0rd-value");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let env = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        env.replace("hosts: []", "hosts: ['root@127.0.0.1:9']"),
    )
    .unwrap();
    for bad in ["a/b", "../x", "Shop Two"] {
        std::fs::write(
            p.root().join("conf/pillar/project.sls"),
            format!("project_name: '{bad}'\n"),
        )
        .unwrap();
        let before = p.snapshot();
        let out = p.vault(&["provision", "staging", "--dry-run", "--approve"]);
        let err = out.stderr();
        assert_eq!(out.code(), 1, "{err}");
        assert!(
            err.contains("is not a name vault can use on a server"),
            "{bad}: {err}"
        );
        assert!(p.snapshot() == before, "nothing changes on disk");
    }
}

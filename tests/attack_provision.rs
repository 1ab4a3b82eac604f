//! Attacks on what provisioning claims (SECURITY.md P16, P18 and the `env:` settings),
//! mounted as an attacker would: a repo writer's commits, then a member's honest
//! `vault provision` over the loopback sshd with real rsync and salt-call.

use crate::common::server::{tools, Server, Sshd};
use crate::common::{self, fingerprint, git, key, Project};
use std::path::Path;

/// A loopback server and its sshd, or None with a message (a failure in CI).
fn loopback() -> Option<(Server, Sshd)> {
    if !common::have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
        common::require_in_ci("rsync and sshd");
        return None;
    }
    let (tools, app) = tools()?;
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    Some((server, sshd))
}

/// `vault provision staging` to `sshd`/`server` as `cmd` does it (alice, or a member on
/// a machine of their own), with `extra` flags.
fn provision_with(
    mut cmd: std::process::Command,
    sshd: &Sshd,
    server: &Server,
    extra: &[&str],
) -> common::Run {
    let host = format!("root@127.0.0.1:{}", sshd.port);
    cmd.args(server.provision_flags(sshd))
        .args(["-H", &host])
        .args(extra);
    common::Run(cmd.output().unwrap())
}

fn provision(p: &Project, sshd: &Sshd, server: &Server, extra: &[&str]) -> common::Run {
    provision_with(p.cmd(&["provision", "staging"]), sshd, server, extra)
}

/// A project whose staging env.sls holds the server's settings (and `more`), one
/// secret `A`, and a first provision (approved, host key accepted) already done.
fn provisioned(sshd: &Sshd, server: &Server, more: &str) -> Project {
    let p = Project::new();
    p.set("staging", "A", "first-value-1");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        format!("{text}{}{more}", server.pillar_settings()),
    )
    .unwrap();
    provision(&p, sshd, server, &["--approve", "--accept-new-host-key"]).success();
    p
}

/// P18: a repo writer hides the newer versions from `git log`'s default history
/// simplification (a merge that takes the old side whole, `-s ours`): they are still in
/// the checkout's history (the merge's second parent), but vault's walk does not see
/// them, so a member who runs the old version is told the server's version is "not in
/// this history" and that `--allow-older` applies it: the server goes back. A version
/// the record's follows must be refused, `--allow-older` or not.
#[test]
fn attack_a_merge_that_hides_newer_versions_lets_allow_older_go_back() {
    let Some((server, sshd)) = loopback() else {
        return;
    };
    let p = provisioned(&sshd, &server, "");
    let root = p.root();
    std::fs::write(root.join(".gitignore"), "/home/\n").unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "v1"]);
    let v1 = git(root, &["rev-parse", "HEAD"]).trim().to_string();
    for (i, value) in ["second-value-2", "third-value-3"].iter().enumerate() {
        p.set("staging", "A", value);
        git(root, &["commit", "-qam", &format!("v{}", i + 2)]);
    }
    provision(&p, &sshd, &server, &[]).success();
    assert_eq!(
        server.ask(|v| v["env"]["A"] == "third-value-3")["env"]["A"],
        "third-value-3"
    );

    // The repo writer: a branch from v1, merged with the newer history taken out whole,
    // pushed as main.
    git(root, &["checkout", "-q", "-b", "old", &v1]);
    git(
        root,
        &["merge", "-q", "-s", "ours", "main", "-m", "merge main"],
    );
    git(root, &["branch", "-f", "main", "old"]);
    git(root, &["checkout", "-q", "main"]);
    git(root, &["branch", "-D", "old"]);
    // The newer versions are in the history of what is checked out.
    let full = git(
        root,
        &[
            "log",
            "--all",
            "--full-history",
            "--format=%s",
            "--",
            "conf/pillar/staging/secrets.sls.age.sig",
        ],
    );
    assert!(full.contains("v3"), "{full}");

    // bob, on a machine of his own that last saw v1 (he trusts alice's key).
    let bob_home = tempfile::tempdir().unwrap();
    let bob = |args: &[&str]| p.on_machine(bob_home.path(), "bob.agekey", args);
    common::Run(
        bob(&[
            "trust",
            "staging",
            "--fingerprint",
            &fingerprint("alice_ed25519.pub"),
        ])
        .output()
        .unwrap(),
    )
    .success();
    std::fs::create_dir_all(bob_home.path().join(".ssh")).unwrap();
    let out = provision_with(bob(&["provision", "staging"]), &sshd, &server, &[]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let out = provision_with(
        bob(&["provision", "staging"]),
        &sshd,
        &server,
        &["--allow-older"],
    );
    let app_sees = server.ask(|_| true)["env"]["A"].clone();
    assert_eq!(
        (out.code(), app_sees.as_str().unwrap_or_default()),
        (1, "third-value-3"),
        "the server went back to v1 over v3, which follows it: {}",
        out.stderr()
    );
    assert!(
        out.stderr()
            .contains("refusing to go back to an older version"),
        "{}",
        out.stderr()
    );
}

/// A project like [`provisioned`] with an extra state tree `margarita` (a folder in the
/// project, listed in env.sls) holding `files`, all approved by the first provision.
fn provisioned_with_tree(sshd: &Sshd, server: &Server, files: &[(&str, &str)]) -> Project {
    let p = Project::new();
    p.set("staging", "A", "first-value-1");
    let tree = p.root().join("margarita");
    for (rel, text) in files {
        let f = tree.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    let settings = server
        .pillar_settings()
        .replace("vault:\n", "vault:\n  state_trees: [margarita]\n");
    std::fs::write(&env_sls, format!("{text}{settings}")).unwrap();
    provision(&p, sshd, server, &["--approve", "--accept-new-host-key"]).success();
    assert!(Path::new(&server.path("srv/margarita")).is_dir());
    p
}

/// P16: rsync leaves out only a *folder* `.git` at the top of an extra state tree, but
/// the approval walk skips anything named so: a file (or a link) `.git` there, as a
/// worktree or submodule checkout has, ships with no approval, whatever it holds.
#[test]
fn attack_a_dot_git_file_in_a_state_tree_ships_unapproved() {
    let Some((server, sshd)) = loopback() else {
        return;
    };
    let p = provisioned_with_tree(&sshd, &server, &[("hello.sls", "{}\n")]);
    std::fs::write(
        p.root().join("margarita/.git"),
        "anything the attacker wants\n",
    )
    .unwrap();
    let out = provision(&p, &sshd, &server, &[]);
    let shipped = Path::new(&server.path("srv/margarita/.git")).exists();
    assert!(
        out.code() == 1 || !shipped,
        "a file the approval never named was shipped: {}",
        out.stderr()
    );
}

/// What a tree's own top file runs when it governs: a state that writes the secrets
/// where anyone on the server reads them.
const LEAKING_TOP: &str = "base:\n  '*':\n    - leak\n";
const LEAK: &str = "leak:\n  file.managed:\n    - name: {{ salt['config.get']('root_dir') }}/leaked\n    - mode: '0644'\n    - contents: {{ salt['pillar.get']('secrets:A') }}\n";

/// P16: `conf/salt` replaced by a link (to a copy of itself beside it, `conf/margarita`):
/// the approval walk follows it and finds the same files, so nothing changed; rsync
/// ships the link as it is, and on the server `srv/salt -> margarita` is the extra
/// state tree, whose own (approved, dormant) top file now governs: a state it names
/// writes the secrets out. What decides where secrets go changed with no approval.
#[test]
fn attack_conf_salt_as_a_link_changes_what_runs_without_an_approval() {
    let Some((server, sshd)) = loopback() else {
        return;
    };
    let p = provisioned_with_tree(
        &sshd,
        &server,
        &[("top.sls", LEAKING_TOP), ("leak.sls", LEAK)],
    );
    let leaked = server.path("leaked");
    assert!(
        !Path::new(&leaked).exists(),
        "the tree's top file is dormant"
    );
    // The repo writer's commit: conf/salt moved aside, and a link in its place.
    let conf = p.root().join("conf");
    std::fs::rename(conf.join("salt"), conf.join("margarita")).unwrap();
    std::os::unix::fs::symlink("margarita", conf.join("salt")).unwrap();
    let out = provision(&p, &sshd, &server, &[]);
    assert!(
        out.code() == 1 && !Path::new(&leaked).exists(),
        "ran unapproved: exit {}, leaked: {:?}\n{}",
        out.code(),
        std::fs::read_to_string(&leaked).ok(),
        out.stderr()
    );
}

/// `env:` settings: a Jinja comment atop env.sls (`{# ... #}`, which vault's check does
/// not take for a template) makes the file YAML vault cannot read, so no setting is
/// checked; Salt renders the comment away and reads `PIN: 0123` as the number 83, which
/// the project's state writes as `83`: the program does not see what env.sls says.
#[test]
fn attack_a_jinja_comment_in_env_sls_skips_the_settings_check() {
    let Some((server, sshd)) = loopback() else {
        return;
    };
    let p = provisioned(&sshd, &server, "");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        format!("{{# the staging servers #}}\n{text}env:\n  PIN: 0123\n"),
    )
    .unwrap();
    // vault cannot read a templated env.sls as it stands; the states refuse what Salt
    // typed, so the program never sees 123 for 0123.
    let out = provision(&p, &sshd, &server, &["--approve"]);
    let log = format!("{}{}", out.stdout(), out.stderr());
    assert_eq!(out.code(), 1, "{log}");
    assert!(log.contains("env: PIN is not a string"), "{log}");
    let env_file =
        std::fs::read_to_string(server.path("etc/example/secrets.env")).unwrap_or_default();
    assert!(!env_file.contains("PIN="), "{env_file}");
}

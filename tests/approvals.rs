//! What decides where secrets go is approved: `vault provision` ships nothing until the
//! `conf/salt` tree, the environment's pillar files and its servers match a member's
//! signed approval (`conf/pillar/<env>/approval.sig`). Each attack as one with commit
//! access mounts it (a commit, a host line, `ssh-keygen -Y sign`, a copied file),
//! against a real loopback sshd and real Salt, beside the honest flow.

use crate::common::forge::{attacker_key, ssh_sign};
use crate::common::server::{files_holding, tools, Server, Sshd};
use crate::common::{self, key, Project};
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "approval-test-secret-value";

/// `vault provision staging` as `p`'s alice, through `sshd`'s config, into `root`.
fn provision(p: &Project, config: &str, root: &str, salt_call: &str, extra: &[&str]) -> Command {
    let mut args = vec!["provision", "staging", "--ssh-config", config];
    args.extend(["--remote-root", root, "--salt-call", salt_call]);
    args.extend_from_slice(extra);
    p.cmd(&args)
}

fn run(c: &mut Command) -> common::Run {
    common::Run(c.output().unwrap())
}

/// Commits everything as `name`, as a collaborator with push access would.
fn commit_as(p: &Project, name: &str, msg: &str) -> String {
    common::git(p.root(), &["add", "-A"]);
    let out = Command::new("git")
        .args(["-c", &format!("user.name={name}")])
        .args(["-c", "user.email=x@example.invalid", "commit", "-qm", msg])
        .current_dir(p.root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::git(p.root(), &["log", "-1", "--format=%h"])
        .trim()
        .to_string()
}

/// A project in git whose staging lists `hosts`, with the app's settings for `server`.
fn project_in_git(hosts: &[String], server: Option<&Server>) -> Project {
    let p = Project::new();
    p.set("staging", "TOKEN", SECRET);
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let listed = hosts
        .iter()
        .map(|h| format!("'root@{h}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = std::fs::read_to_string(&env_sls)
        .unwrap()
        .replace("hosts: []", &format!("hosts: [{listed}]"));
    let settings = server.map(Server::pillar_settings).unwrap_or_default();
    std::fs::write(&env_sls, format!("{text}{settings}")).unwrap();
    std::fs::write(p.root().join(".gitignore"), "home/\n").unwrap();
    common::git(p.root(), &["init", "-q"]);
    commit_as(&p, "Alice", "the project");
    p
}

/// The state mallory commits: every pillar value into a world-readable file.
fn plant_leak(p: &Project) -> String {
    let salt = p.root().join("conf/salt");
    std::fs::write(
        salt.join("project/leak.sls"),
        "leak:\n  file.managed:\n    - name: {{ salt['config.get']('root_dir', '/').rstrip('/') }}/tmp/leaked\n    - makedirs: True\n    - mode: '0644'\n    - contents: {{ pillar | json }}\n",
    )
    .unwrap();
    let top = std::fs::read_to_string(salt.join("top.sls")).unwrap();
    std::fs::write(salt.join("top.sls"), format!("{top}    - project.leak\n")).unwrap();
    commit_as(p, "Mallory", "tidy the states")
}

fn have_servers() -> Option<(PathBuf, PathBuf)> {
    if !common::have("rsync") {
        return None;
    }
    tools()
}

#[test]
fn attack_a_committed_state_that_copies_the_secrets_is_refused_before_anything_is_shipped() {
    let Some((tools, app)) = have_servers() else {
        return;
    };
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    let host = format!("127.0.0.1:{}", sshd.port);
    let p = project_in_git(std::slice::from_ref(&host), Some(&server));
    let (config, root) = (sshd.ssh_config(), server.path(""));
    let salt_call = tools.join("salt-call").display().to_string();
    let go = |extra: &[&str]| provision(&p, &config, &root, &salt_call, extra);
    // alice approves and provisions; her approval is committed.
    run(&mut go(&["--approve", "--accept-new-host-key"])).success();
    server.ask(|v| v["env"]["TOKEN"] == SECRET);
    commit_as(&p, "Alice", "approve staging");

    let commit = plant_leak(&p);
    let err = run(&mut go(&[])).error();
    for want in [
        "staging: the deployment inputs changed since the last approval (serial 1, by alice)",
        &format!("added conf/salt/project/leak.sls ({commit} Mallory)"),
        &format!("changed conf/salt/top.sls ({commit} Mallory)"),
        "nothing was shipped",
    ] {
        assert!(err.contains(want), "no '{want}' in: {err}");
    }
    let hint = run(&mut go(&[])).stderr();
    assert!(
        hint.contains("hint: ") && hint.contains("vault provision staging --approve"),
        "{hint}"
    );
    // At a terminal the member is shown the change and says no: nothing either.
    if common::have("script") {
        let (status, screen) = common::on_terminal(&go(&[]), Some("n"));
        assert!(!status.success(), "{screen}");
        assert!(
            screen.contains("added    conf/salt/project/leak.sls") && screen.contains("Mallory"),
            "{screen}"
        );
        assert!(screen.contains("[y/N]"), "{screen}");
    }
    let remote = server.root.path();
    assert!(
        !remote.join("srv/salt/project/leak.sls").exists(),
        "the state was shipped"
    );
    assert!(!remote.join("tmp/leaked").exists(), "the state ran");
    assert!(files_holding(remote, SECRET.as_bytes())
        .iter()
        .all(|f| f.ends_with("etc/example/secrets.env")));
    // CI sees it too.
    let out = run(&mut p.cmd(&["check"]));
    assert_eq!(out.code(), 1, "{}", out.stdout());
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(
        all.contains("staging: deployment inputs changed since the last approval (serial 1, by alice): conf/salt/project/leak.sls (added), conf/salt/top.sls (changed)"),
        "{all}"
    );
}

#[test]
fn attack_a_host_added_to_hosts_receives_nothing() {
    let Some((tools, app)) = have_servers() else {
        return;
    };
    let sshds = [
        Sshd::start(Path::new(&key("mallory_ed25519"))),
        Sshd::start(Path::new(&key("mallory_ed25519"))),
    ];
    let parent = tempfile::Builder::new()
        .prefix("vault-hosts-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = tempfile::Builder::new()
        .prefix(&sshds[0].port.to_string())
        .rand_bytes(0)
        .tempdir_in(parent.path())
        .unwrap();
    let server = Server::start_at(first, &tools, &app);
    let hosts: Vec<String> = sshds
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let p = project_in_git(&hosts[..1], Some(&server));
    let (config, root) = (
        sshds[0].ssh_config(),
        format!("{}/{{port}}", parent.path().display()),
    );
    let salt_call = tools.join("salt-call").display().to_string();
    let go = |extra: &[&str]| provision(&p, &config, &root, &salt_call, extra);
    run(&mut go(&["--approve", "--accept-new-host-key"])).success();
    commit_as(&p, "Alice", "approve staging");

    // mallory adds her server to the list.
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        &format!("'root@{}'", hosts[0]),
        &format!("'root@{}', 'root@{}'", hosts[0], hosts[1]),
    );
    std::fs::write(&env_sls, text).unwrap();
    let commit = commit_as(&p, "Mallory", "one more server");
    let err = run(&mut go(&["--accept-new-host-key"])).error();
    assert!(err.contains(&format!("added host {}", hosts[1])), "{err}");
    assert!(
        err.contains(&format!(
            "changed conf/pillar/staging/env.sls ({commit} Mallory)"
        )),
        "{err}"
    );
    let second_root = parent.path().join(sshds[1].port.to_string());
    assert!(!second_root.exists(), "the added host received something");
    // A dry run is a provision too: it would ship the pillar to a scratch root there.
    let err = run(&mut go(&["--accept-new-host-key", "--dry-run"])).error();
    assert!(err.contains(&format!("added host {}", hosts[1])), "{err}");
    assert!(
        !second_root.exists(),
        "the dry run shipped to the added host"
    );
    let check = run(&mut p.cmd(&["check"]));
    assert!(
        check
            .stdout()
            .contains(&format!("host {} (not approved)", hosts[1])),
        "{}",
        check.stdout()
    );
    // A run to fewer servers than approved ships nowhere new: no approval needed.
    common::git(p.root(), &["revert", "--no-edit", "HEAD"]);
    run(&mut go(&["-H", &format!("root@{}", hosts[0])])).success();
}

/// A staging provision approved by alice, refused or not before any connection: the
/// hosts are unreachable on purpose (port 1), so the run fails after its approval.
fn approve_unreachable(p: &Project, env: &str) -> common::Run {
    run(&mut p.cmd(&["provision", env, "-H", "root@127.0.0.1:1", "--approve"]))
}

fn approval_path(p: &Project, env: &str) -> PathBuf {
    p.root().join(format!("conf/pillar/{env}/approval.sig"))
}

#[test]
fn attack_a_forged_or_replayed_approval_is_refused() {
    let p = Project::new();
    p.set("staging", "TOKEN", SECRET);
    p.set("production", "TOKEN", SECRET);
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        text.replace("hosts: []", "hosts: ['root@127.0.0.1:1']"),
    )
    .unwrap();
    let out = approve_unreachable(&p, "staging");
    assert!(
        out.stderr().contains("cannot reach root@127.0.0.1:1"),
        "{}",
        out.stderr()
    );
    let honest = std::fs::read(approval_path(&p, "staging")).unwrap();
    let refused = |want: &str| {
        let err = run(&mut p.cmd(&["provision", "staging"])).error();
        assert!(err.contains(want), "no '{want}' in: {err}");
        assert!(err.contains("nothing was shipped"), "{err}");
    };
    // The approval verifies with ssh-keygen as alice's, in its own namespace.
    let text = String::from_utf8(honest.clone()).unwrap();
    assert!(text.starts_with("vault approval v1\nproject "), "{text}");
    assert!(
        text.contains("\nhost 127.0.0.1:1\n") && text.contains("\nfile conf/salt/top.sls sha256:")
    );

    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed_signers");
    let alice = common::forge::pub_line("alice_ed25519.pub");
    std::fs::write(&allowed, format!("alice {}", alice.trim())).unwrap();
    let at = text.find("-----BEGIN SSH SIGNATURE-----").unwrap();
    std::fs::write(dir.path().join("approval.sig"), &text[at..]).unwrap();
    let mut verify = Command::new("ssh-keygen");
    verify.args(["-Y", "verify", "-I", "alice", "-n", "vault-approval", "-f"]);
    verify
        .arg(&allowed)
        .arg("-s")
        .arg(dir.path().join("approval.sig"));
    common::run_with_input(verify, &text.as_bytes()[..at]).success();

    // mallory approves her own state, signing with her key.
    let mkey = attacker_key(dir.path(), "mallory_ed25519");
    std::fs::write(
        p.root().join("conf/salt/project/leak.sls"),
        "x:\n  test.nop\n",
    )
    .unwrap();
    let body = common::forge::manifest_of(&honest).replace(
        &common::fingerprint("alice_ed25519.pub"),
        &common::fingerprint("mallory_ed25519.pub"),
    );
    std::fs::write(
        approval_path(&p, "staging"),
        format!("{body}{}", ssh_sign(&mkey, "vault-approval", &body)),
    )
    .unwrap();
    refused("is signed by SHA256:");
    refused("who is not a trusted member of staging's signed roster");
    let check = run(&mut p.cmd(&["check"]));
    assert!(
        check
            .stdout()
            .contains("staging: conf/pillar/staging/approval.sig does not verify"),
        "{}",
        check.stdout()
    );
    // Or alters alice's, keeping her signature.
    let altered = String::from_utf8(honest.clone())
        .unwrap()
        .replace("host 127.0.0.1:1", "host 127.0.0.2:1");
    std::fs::write(approval_path(&p, "staging"), altered).unwrap();
    refused("does not match it (forged or altered)");
    std::fs::remove_file(p.root().join("conf/salt/project/leak.sls")).unwrap();

    // production's approval, alice's own, copied over staging's.
    let prod_env = p.root().join("conf/pillar/production/env.sls");
    let text = std::fs::read_to_string(&prod_env).unwrap();
    std::fs::write(
        &prod_env,
        text.replace("hosts: []", "hosts: ['root@127.0.0.1:1']"),
    )
    .unwrap();
    approve_unreachable(&p, "production");
    std::fs::copy(
        approval_path(&p, "production"),
        approval_path(&p, "staging"),
    )
    .unwrap();
    refused("it approves environment 'production', not 'staging'");

    // Another project's approval of the same files, by alice too.
    let other = Project::new();
    other.set("staging", "TOKEN", SECRET);
    std::fs::copy(&env_sls, other.root().join("conf/pillar/staging/env.sls")).unwrap();
    approve_unreachable(&other, "staging");
    std::fs::copy(
        approval_path(&other, "staging"),
        approval_path(&p, "staging"),
    )
    .unwrap();
    refused("it approves another project's inputs");

    // An older approval of alice's put back after a newer one was seen here.
    std::fs::write(approval_path(&p, "staging"), &honest).unwrap();
    std::fs::write(p.root().join("conf/salt/project/extra.txt"), "newer\n").unwrap();
    approve_unreachable(&p, "staging");
    std::fs::remove_file(p.root().join("conf/salt/project/extra.txt")).unwrap();
    std::fs::write(approval_path(&p, "staging"), &honest).unwrap();
    refused("its serial 1 is older than serial 2, already seen on this machine");
}

#[test]
fn an_approved_change_provisions_without_asking_here_and_on_the_next_members_machine() {
    let Some((tools, app)) = have_servers() else {
        return;
    };
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    let host = format!("127.0.0.1:{}", sshd.port);
    let p = project_in_git(&[host], Some(&server));
    let (config, root) = (sshd.ssh_config(), server.path(""));
    let salt_call = tools.join("salt-call").display().to_string();
    let go = |extra: &[&str]| provision(&p, &config, &root, &salt_call, extra);
    // The first provision of an environment needs an approval too.
    let err = run(&mut go(&["--accept-new-host-key"])).error();
    assert!(
        err.contains(
            "the deployment inputs were never approved (no conf/pillar/staging/approval.sig)"
        ),
        "{err}"
    );
    assert!(!server.root.path().join("srv").exists());
    run(&mut go(&["--approve", "--accept-new-host-key"])).success();

    // alice's own change: approved once, then provisioned without asking.
    let note = p.root().join("conf/salt/project/notes.txt");
    std::fs::write(&note, "a change of alice's\n").unwrap();
    let out = run(&mut go(&["--approve"])).success();
    assert!(
        out.stderr()
            .contains("added    conf/salt/project/notes.txt  (uncommitted)"),
        "{}",
        out.stderr()
    );
    run(&mut go(&[])).success();
    assert!(server
        .root
        .path()
        .join("srv/salt/project/notes.txt")
        .exists());
    commit_as(&p, "Alice", "notes, approved");
    assert!(run(&mut p.cmd(&["check"]))
        .stdout()
        .contains("0 finding(s)"));

    // At a terminal, a change is shown and a yes approves it.
    if common::have("script") {
        std::fs::write(&note, "a second change\n").unwrap();
        let (status, screen) = common::on_terminal(&go(&[]), Some("y"));
        assert!(status.success(), "{screen}");
        assert!(
            screen.contains("changed  conf/salt/project/notes.txt"),
            "{screen}"
        );
        commit_as(&p, "Alice", "notes again, approved");
    }

    // bob, on his own machine, with the same repository: nothing to approve, nothing
    // asked (his age key could not sign one anyway).
    p.set("staging", "TOKEN", "bobs-turn");
    commit_as(&p, "Alice", "new token");
    let bob = tempfile::tempdir().unwrap();
    let as_bob = |args: &[&str]| {
        let mut c = p.cmd(args);
        c.env("VAULT_IDENTITY", key("bob.agekey"))
            .env("HOME", bob.path())
            .env("XDG_STATE_HOME", bob.path().join("state"));
        c
    };
    run(&mut as_bob(&[
        "trust",
        "staging",
        "--fingerprint",
        &common::fingerprint("alice_ed25519.pub"),
    ]))
    .success();
    let mut args = vec![
        "provision",
        "staging",
        "--ssh-config",
        &config,
        "--remote-root",
        &root,
    ];
    args.extend(["--salt-call", &salt_call, "--accept-new-host-key"]);
    run(&mut as_bob(&args)).success();
    server.ask(|v| v["env"]["TOKEN"] == "bobs-turn");
}

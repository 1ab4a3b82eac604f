//! Attacks on the developer accounts of devs.sls and on `vault import`, each mounted
//! for real: a devs.sls change a careless approver lets through, provisioned as root
//! over a real sshd into real accounts; a template project's plaintext file imported.

use crate::common::server::{tools, Server, Sshd};
use crate::common::{self, key, Project};
use crate::provision::provision;
use std::path::Path;
use std::process::Command;

/// A user name no parallel test uses: `tag` and this process's id.
fn unique(tag: &str) -> String {
    format!("bx{tag}{}", std::process::id())
}

/// Removes the accounts on drop (home and all), and puts `nobody` back as it was.
struct Accounts(Vec<String>);

impl Drop for Accounts {
    fn drop(&mut self) {
        for n in &self.0 {
            if n == "nobody" {
                let _ = Command::new("usermod")
                    .args(["-s", "/usr/sbin/nologin", "-e", "", "nobody"])
                    .output();
                for g in ["admin", "login"] {
                    let _ = Command::new("gpasswd").args(["-d", "nobody", g]).output();
                }
            } else {
                let _ = Command::new("userdel").args(["-r", n]).output();
            }
        }
    }
}

/// A project whose staging goes to `sshd` as root, into `server`, with `devs` as its
/// devs.sls.
fn project_with_devs(sshd: &Sshd, server: &Server, devs: &str) -> Project {
    let p = Project::new();
    p.set("staging", "TOKEN", "attack-accounts-token-value");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        "hosts: []",
        &format!("hosts: ['root@127.0.0.1:{}']", sshd.port),
    );
    std::fs::write(&env_sls, format!("{text}{}", server.pillar_settings())).unwrap();
    std::fs::write(p.root().join("conf/pillar/devs.sls"), devs).unwrap();
    p
}

fn real_parts() -> Option<(Server, Sshd)> {
    if !common::have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
        common::require_in_ci("rsync and sshd");
        return None;
    }
    let (tools, app) = tools()?;
    Some((
        Server::start(&tools, &app),
        Sshd::start(Path::new(&key("mallory_ed25519"))),
    ))
}

/// A key line whose comment holds Unicode line separators (`\u2028`, written as an
/// escape in a quoted YAML string, which a reviewer reads past as part of a long key
/// line). devs.sls's key check lets it through (`.` matches them), and the key state
/// put it into a plain YAML scalar, which Salt's YAML reader breaks at each separator:
/// the rest became a state of its own, a command run as root on the server.
#[test]
fn a_key_line_with_line_separators_runs_no_state_of_its_own() {
    let Some((server, sshd)) = real_parts() else {
        return;
    };
    let name = unique("ls");
    let _cleanup = Accounts(vec![name.clone()]);
    let marker = server.path("pwned-by-key-line");
    let devs = format!(
        "users:\n  {name}:\n    groups: [login]\n    public_key:\n      - \"ssh-ed25519 \
         AAAAC3NzaC1lZDI1NTE5AAAAIH7p1BYqWTE1b1QbPnUAHHHHHHHHHHHHHHHHHHHHHHHH {name}@laptop #\
         \\u2028injected_by_key:\\u2028  cmd.run:\\u2028    - name: id > {marker} #\"\n"
    );
    let p = project_with_devs(&sshd, &server, &devs);
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]);
    assert!(
        !Path::new(&marker).exists(),
        "a devs.sls key line ran a command as root: {}{}",
        out.stdout(),
        out.stderr()
    );
    assert_eq!(out.code(), 1, "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("public_key entry 1 is not one public key line"),
        "{}",
        out.stderr()
    );
}

/// A key comment with `: ` and ` #` in it (`alice: laptop #2`): put unquoted into Salt's
/// YAML, it failed the rendering of every run ("mapping values are not allowed"), or cut
/// the key short at the `#`. Now it reaches authorized_keys byte for byte.
#[test]
fn a_key_comment_with_colon_and_hash_arrives_whole() {
    let Some((server, sshd)) = real_parts() else {
        return;
    };
    let name = unique("cm");
    let _cleanup = Accounts(vec![name.clone()]);
    let line = format!(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7p1BYqWTE1b1QbPnUAHHHHHHHHHHHHHHHHHHHHHHHH {name}: laptop #2 it's"
    );
    let devs = format!(
        "users:\n  {name}:\n    groups: [login]\n    public_key:\n      - '{}'\n",
        line.replace('\'', "''")
    );
    let p = project_with_devs(&sshd, &server, &devs);
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]);
    assert_eq!(out.code(), 0, "{}{}", out.stdout(), out.stderr());
    let home = Command::new("getent")
        .args(["passwd", &name])
        .output()
        .unwrap();
    let home = String::from_utf8_lossy(&home.stdout)
        .split(':')
        .nth(5)
        .unwrap()
        .to_string();
    let keys = std::fs::read_to_string(Path::new(&home).join(".ssh/authorized_keys")).unwrap();
    assert_eq!(keys, format!("{line}\n"));
}

/// `nobody` (uid 65534, above the 1000 the states take for a developer) in devs.sls
/// with `groups: [admin]`: the states took it for a developer's account, gave it bash
/// and the admin group, and so passwordless sudo to every daemon that runs as nobody.
#[test]
fn nobody_is_no_developer_account() {
    let Some((server, sshd)) = real_parts() else {
        return;
    };
    let _cleanup = Accounts(vec!["nobody".into()]);
    let devs =
        "users:\n  nobody:\n    groups: [admin, login]\n    public_key:\n      - ssh-ed25519 \
                AAAAC3NzaC1lZDI1NTE5AAAAIH7p1BYqWTE1b1QbPnUAHHHHHHHHHHHHHHHHHHHHHHHH nobody@x\n";
    let p = project_with_devs(&sshd, &server, devs);
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]);
    let groups = Command::new("id").args(["-nG", "nobody"]).output().unwrap();
    let groups = String::from_utf8_lossy(&groups.stdout).to_string();
    assert!(
        !groups
            .split_whitespace()
            .any(|g| g == "admin" || g == "login"),
        "nobody joined {groups}: {}{}",
        out.stdout(),
        out.stderr()
    );
    assert_eq!(out.code(), 1, "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("nobody is a system account (uid 65534)"),
        "{}",
        out.stderr()
    );
}

/// A template project whose `secrets.sls` was staged (`git add -f`, or `git add .` before
/// `vault init` ignored it) but never committed: the import overwrote and removed the
/// file, yet git's index still held its plaintext, and the next `git commit` published
/// every value.
#[test]
fn an_imported_file_staged_in_git_is_not_left_in_the_index() {
    let p = Project::new();
    let file = p.root().join("conf/pillar/staging/secrets.sls");
    std::fs::write(&file, "secrets:\n  STAGED: staged-plaintext-value-91\n").unwrap();
    common::git(p.root(), &["init", "-q"]);
    common::git(p.root(), &["add", "-f", "conf/pillar/staging/secrets.sls"]);
    let out = p.vault(&["import", "staging", "--yes"]);
    let staged = common::git_command(p.root())
        .args(["show", ":conf/pillar/staging/secrets.sls"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&staged.stdout).contains("staged-plaintext-value-91"),
        "the plaintext is still staged for the next commit: {}",
        out.stderr()
    );
    assert!(
        out.stderr().contains("taken out of git's index"),
        "{}",
        out.stderr()
    );
    assert!(!file.exists());
}

#[test]
fn an_existing_account_is_taken_over_only_when_devs_sls_says_adopt() {
    let Some((server, sshd)) = real_parts() else {
        return;
    };
    // A cloud image's default user, made before vault ever ran.
    let name = unique("img");
    let _cleanup = Accounts(vec![name.clone()]);
    let made = Command::new("useradd")
        .args(["--create-home", "--shell", "/bin/bash", &name])
        .status()
        .unwrap();
    assert!(made.success());
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7p1BYqWTE1b1QbPnUAHHHHHHHHHHHHHHHHHHHHHHHH dev@x";
    let entry = |adopt: &str| {
        format!("users:\n  {name}:\n    groups: [login]\n{adopt}    public_key:\n      - {key}\n")
    };
    let p = project_with_devs(&sshd, &server, &entry(""));
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]);
    let log = format!("{}{}", out.stdout(), out.stderr());
    assert_eq!(out.code(), 1, "{log}");
    assert!(
        log.contains(&format!(
            "{name} is an account these states did not make: add `adopt: True`"
        )),
        "{log}"
    );
    let home = std::path::PathBuf::from(format!("/home/{name}"));
    assert!(
        !home.join(".ssh/authorized_keys").exists(),
        "its keys were replaced"
    );

    std::fs::write(
        p.root().join("conf/pillar/devs.sls"),
        entry("    adopt: True\n"),
    )
    .unwrap();
    provision(&p, &sshd, &server, &[]).success();
    let keys = std::fs::read_to_string(home.join(".ssh/authorized_keys")).unwrap();
    assert_eq!(keys.trim(), key);
}

//! Developers' accounts from devs.sls (conf/salt/project/devs.sls) on this real machine:
//! the first provision as root makes them, later ones come in as a developer through
//! `sudo -n`, against a Debian-like sshd (PAM, each user's own authorized_keys); a
//! developer taken out of devs.sls can no longer log in; the admin group's sudoers file;
//! and the optional sshd hardening, which never locks out whoever provisions.
//!
//! The accounts are real (this machine's /etc/passwd), named uniquely per test and removed
//! by [`Devs`] however the test ends; the sudoers file goes to the real /etc/sudoers.d
//! under a per-test name, for real sudo to read it.

use crate::common::server::{tools, Server, Sshd};
use crate::common::{self, key, Project};
use crate::provision::provision;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The key every test account (and root) logs in with: the Sshd client's.
const CLIENT_KEY: &str = "mallory_ed25519";

/// Test accounts and their sudoers file, removed on drop (even when the test panics).
struct Devs {
    names: Vec<String>,
    sudoers_name: String,
}

impl Devs {
    /// `n` account names and a sudoers file name unlike any other test's: a prefix
    /// and a suffix of this process, the time and a counter (well under 32 characters).
    fn new(prefixes: &[&str]) -> Devs {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let suffix = format!("{:x}{:x}{n}", std::process::id() % 0xfff, nanos % 0xfffff);
        Devs {
            names: prefixes.iter().map(|p| format!("{p}-{suffix}")).collect(),
            sudoers_name: format!("vault-test-{suffix}"),
        }
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    fn sudoers(&self) -> PathBuf {
        Path::new("/etc/sudoers.d").join(&self.sudoers_name)
    }
}

impl Drop for Devs {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.sudoers());
        for name in &self.names {
            let _ = Command::new("userdel").args(["-r", "-f", name]).output();
        }
    }
}

/// Skips (or, in CI, fails) without the real parts: sudo, sshd, rsync, Salt.
fn real_parts() -> Option<(PathBuf, PathBuf)> {
    if !common::have("sudo") || !common::have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
        common::require_in_ci("sudo, rsync and sshd");
        return None;
    }
    tools()
}

/// A project whose staging runs on `server` through `sshd` (hosts without a user: each
/// run names it with -u), with the account settings for this machine: the real
/// /etc/sudoers.d with `devs`' file name, `sshd`'s drop-ins, config and reload.
fn project(server: &Server, sshd: &Sshd, devs: &Devs, harden: bool) -> Project {
    let p = Project::new();
    p.set("staging", "TOKEN", "first-value");
    let settings = server
        .pillar_settings()
        .replacen(
            "vault:\n",
            &format!(
                "vault:\n  sudoers_name: {}\n  sshd_reload: '{}'\n  harden_sshd: {}\n",
                devs.sudoers_name,
                sshd.reload_command(),
                if harden { "True" } else { "False" }
            ),
            1,
        )
        .replacen(
            "  paths:\n",
            &format!(
                "  paths:\n    sudoers_dir: /etc/sudoers.d\n    sshd_config_dir: {}\n    sshd_config: {}\n",
                sshd.dropin_dir(),
                sshd.config()
            ),
            1,
        );
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls)
        .unwrap()
        .replace("hosts: []", &format!("hosts: ['127.0.0.1:{}']", sshd.port));
    std::fs::write(&env_sls, format!("{text}{settings}")).unwrap();
    p
}

/// conf/pillar/devs.sls with `users`: a name, its groups, and whether it has the client key.
fn write_devs(p: &Project, users: &[(&str, &[&str], bool)]) {
    let key_line = std::fs::read_to_string(key(&format!("{CLIENT_KEY}.pub"))).unwrap();
    let mut text = String::from("users:\n");
    for (name, groups, with_key) in users {
        text.push_str(&format!("  {name}:\n    groups: [{}]\n", groups.join(", ")));
        if *with_key {
            text.push_str(&format!("    public_key:\n      - {}\n", key_line.trim()));
        } else {
            text.push_str("    public_key: []\n");
        }
    }
    if users.is_empty() {
        text.push_str("  {}\n");
    }
    std::fs::write(p.root().join("conf/pillar/devs.sls"), text).unwrap();
}

/// One field of `name`'s /etc/shadow line (1 the password, 7 the expiry day).
fn shadow_field(name: &str, field: usize) -> String {
    let out = Command::new("getent")
        .args(["shadow", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "no shadow entry for {name}");
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim_end().split(':').nth(field).unwrap().to_string()
}

/// `name`'s groups, as `id -nG` lists them.
fn groups_of(name: &str) -> Vec<String> {
    let out = Command::new("id").args(["-nG", name]).output().unwrap();
    assert!(out.status.success(), "no user {name}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// `name`'s passwd entry: (uid, home, shell).
fn passwd_of(name: &str) -> (u32, PathBuf, String) {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "no user {name}");
    let line = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = line.trim_end().split(':').collect();
    (f[2].parse().unwrap(), PathBuf::from(f[5]), f[6].to_string())
}

/// Whether `user` gets a shell on `sshd`; a refusal must be sshd's (not a connection
/// that failed while sshd reloads).
fn logs_in(sshd: &Sshd, user: &str) -> bool {
    let out = sshd.login(user, "true");
    if out.status.success() {
        return true;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Permission denied") || err.contains("Your account has expired"),
        "ssh as {user} failed, but not by sshd's refusal: {err}"
    );
    false
}

/// Asserts `name`'s authorized keys are exactly `lines`, 0600 in a 0700 .ssh, the user's.
#[track_caller]
fn assert_keys(name: &str, lines: &str) {
    let (uid, home, _) = passwd_of(name);
    let ssh = std::fs::symlink_metadata(home.join(".ssh")).unwrap();
    assert!(ssh.is_dir());
    assert_eq!(
        (ssh.mode() & 0o7777, ssh.uid()),
        (0o700, uid),
        "{name}'s .ssh"
    );
    let file = home.join(".ssh/authorized_keys");
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(meta.is_file(), "{name}'s authorized_keys is a plain file");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid()),
        (0o600, uid),
        "{name}'s keys"
    );
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        lines,
        "{name}'s keys"
    );
}

#[test]
fn later_runs_as_a_developer_through_sudo() {
    let Some((tools, app)) = real_parts() else {
        return;
    };
    let devs = Devs::new(&["vdev", "vpw", "vby"]);
    let (dev, pw, bystander) = (devs.name(0), devs.name(1), devs.name(2));
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key(CLIENT_KEY)));
    let p = project(&server, &sshd, &devs, false);
    write_devs(
        &p,
        &[(dev, &["admin", "login"], true), (pw, &["login"], true)],
    );
    let key_line = std::fs::read_to_string(key(&format!("{CLIENT_KEY}.pub"))).unwrap();

    // The first provision, as root, makes the accounts.
    provision(&p, &sshd, &server, &["-u", "root", "--accept-new-host-key"]).success();
    server.ask(|v| v["env"]["TOKEN"] == "first-value");
    for (name, groups) in [(dev, vec!["admin", "login"]), (pw, vec!["login"])] {
        let (_, home, shell) = passwd_of(name);
        assert_eq!(shell, "/bin/bash");
        assert!(home.join(".bashrc").exists(), "{name}'s home, from skel");
        let mut got = groups_of(name);
        got.retain(|g| g != name);
        assert_eq!(got, groups, "{name}'s groups");
        assert_keys(name, &format!("{}\n", key_line.trim()));
    }
    let record = std::fs::metadata(server.path("var/lib/vault/example/users")).unwrap();
    assert_eq!((record.mode() & 0o777, record.uid()), (0o600, 0));
    let sudoers = std::fs::metadata(devs.sudoers()).unwrap();
    assert_eq!((sudoers.mode() & 0o7777, sudoers.uid()), (0o440, 0));
    let check = Command::new("visudo")
        .arg("-c")
        .arg("-f")
        .arg(devs.sudoers())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the sudoers file installed is valid"
    );
    let installed = std::fs::read(devs.sudoers()).unwrap();

    // Later runs: the developer the states made, whose sudo needs no password.
    p.set("staging", "TOKEN", "second-value");
    provision(&p, &sshd, &server, &["-u", dev]).success();
    server.ask(|v| v["env"]["TOKEN"] == "second-value");
    let env_file = std::fs::metadata(server.path("etc/example/secrets.env")).unwrap();
    assert_eq!(env_file.uid(), 0, "files are still root's");

    // A login-only developer: one clear line, nothing half-done.
    let out = provision(&p, &sshd, &server, &["-u", pw]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr().contains("sudo asks for a password"),
        "{}",
        out.stderr()
    );

    // A broken sudoers file is never installed: visudo refuses it, the old one stays,
    // and the developer's sudo with it.
    let states = p.root().join("conf/salt/project/devs.sls");
    let good = std::fs::read_to_string(&states).unwrap();
    let rule = "%admin ALL=(ALL:ALL) NOPASSWD: ALL";
    assert!(good.contains(rule));
    std::fs::write(
        &states,
        good.replace(rule, "%admin ALL=(ALL:ALL NOPASSWD: ALL"),
    )
    .unwrap();
    let out = provision(&p, &sshd, &server, &["-u", dev]);
    assert_ne!(out.code(), 0, "{}", out.stderr());
    assert!(
        out.stderr().contains("check_cmd execution failed"),
        "{}",
        out.stderr()
    );
    assert_eq!(std::fs::read(devs.sudoers()).unwrap(), installed);
    std::fs::write(&states, good).unwrap();

    // An attack: the login-only developer (no sudo) links its authorized_keys to a file
    // of root's, for the next run to write (and give) it.
    let target = PathBuf::from(server.path("etc/roots-own"));
    std::fs::write(&target, "root's own\n").unwrap();
    let out = sshd.login(
        pw,
        &format!("ln -sfn {} ~/.ssh/authorized_keys", target.display()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Someone with a login account these states never made: never theirs to retire.
    let made = Command::new("useradd")
        .args(["-m", "-G", "login", "-p", "*", bystander])
        .output()
        .unwrap();
    assert!(made.status.success());
    let bystander_shadow = shadow_field(bystander, 1);

    // The developer taken out of devs.sls, a run as root: no more logins, home kept.
    assert!(logs_in(&sshd, dev));
    write_devs(&p, &[(pw, &["login"], true)]);
    provision(&p, &sshd, &server, &["-u", "root"]).success();
    assert!(!logs_in(&sshd, dev), "{dev} was taken out of devs.sls");
    assert!(logs_in(&sshd, pw), "{pw} is still in");
    let (uid, home, _) = passwd_of(dev);
    assert!(home.join(".bashrc").exists(), "the home is kept");
    assert!(!home.join(".ssh/authorized_keys").exists());
    assert!(shadow_field(dev, 1).starts_with('!'), "password locked");
    assert_eq!(shadow_field(dev, 7), "1", "account expired");
    let left = groups_of(dev);
    assert!(
        !left.iter().any(|g| g == "admin" || g == "login"),
        "{left:?}"
    );
    // With UsePAM, a locked password alone would not stop a key: the expiry does.
    std::fs::write(home.join(".ssh/authorized_keys"), &key_line).unwrap();
    std::os::unix::fs::chown(home.join(".ssh/authorized_keys"), Some(uid), None).unwrap();
    std::fs::set_permissions(
        home.join(".ssh/authorized_keys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = sshd.login(dev, "true");
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("Your account has expired"),
        "an expired account is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The attack came to nothing: root's file as it was, the link replaced.
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's own\n");
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);
    assert_keys(pw, &format!("{}\n", key_line.trim()));
    // The bystander is untouched.
    assert_eq!(shadow_field(bystander, 1), bystander_shadow);
    assert_eq!(shadow_field(bystander, 7), "");
    assert!(groups_of(bystander).iter().any(|g| g == "login"));

    // Back in devs.sls: unlocked, and a developer again.
    write_devs(
        &p,
        &[(dev, &["admin", "login"], true), (pw, &["login"], true)],
    );
    provision(&p, &sshd, &server, &["-u", "root"]).success();
    assert_eq!(shadow_field(dev, 1), "*");
    assert_eq!(shadow_field(dev, 7), "");
    assert!(logs_in(&sshd, dev));
}

#[test]
fn sshd_hardening_never_locks_out_whoever_provisions() {
    let Some((tools, app)) = real_parts() else {
        return;
    };
    let devs = Devs::new(&["vhd"]);
    let dev = devs.name(0);
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key(CLIENT_KEY)));
    let p = project(&server, &sshd, &devs, true);
    write_devs(&p, &[(dev, &["admin", "login"], true)]);
    let dropin = Path::new(&sshd.dropin_dir()).join("10-vault-example.conf");

    // On, in a run as root: skipped (root is not a developer), and said so.
    let out = provision(&p, &sshd, &server, &["-u", "root", "--accept-new-host-key"]).success();
    assert!(
        out.stderr().contains("sshd hardening skipped"),
        "{}",
        out.stderr()
    );
    assert!(!dropin.exists());
    assert!(logs_in(&sshd, "root"), "root is not locked out");

    // On, in a run as the developer, with an earlier drop-in that permits root (sshd
    // keeps the first value it reads): the run fails, saying the hardening has no effect.
    let early = Path::new(&sshd.dropin_dir()).join("05-early.conf");
    std::fs::write(&early, "PermitRootLogin yes\n").unwrap();
    let out = provision(&p, &sshd, &server, &["-u", dev]);
    let log = format!("{}{}", out.stdout(), out.stderr());
    assert_eq!(out.code(), 1, "{log}");
    assert!(
        log.contains("sshd hardening has no effect: an earlier setting wins"),
        "{log}"
    );
    std::fs::remove_file(&early).unwrap();
    std::fs::remove_file(&dropin).unwrap();
    wait_until_in(&sshd, dev);

    // On, in a run as the developer: root refused by the real sshd, the developer in.
    provision(&p, &sshd, &server, &["-u", dev]).success();
    let text = std::fs::read_to_string(&dropin).unwrap();
    assert!(
        text.contains("PermitRootLogin no\nAllowGroups login\n"),
        "{text}"
    );
    // sshd re-executes itself on the reload: wait until it answers again.
    wait_until_in(&sshd, dev);
    assert!(!logs_in(&sshd, "root"), "root logins are refused");
    assert!(logs_in(&sshd, dev), "the developer is still in");

    // Off again (as the developer): the drop-in goes, root may log in again.
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        text.replace("harden_sshd: True", "harden_sshd: False"),
    )
    .unwrap();
    provision(&p, &sshd, &server, &["-u", dev]).success();
    assert!(!dropin.exists());
    wait_until_in(&sshd, dev);
    assert!(logs_in(&sshd, "root"));
}

/// Waits (up to 30 s) until `user` logs in: sshd answers again after a reload.
fn wait_until_in(sshd: &Sshd, user: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sshd.login(user, "true").status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "{user} never got in after the reload"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_bad_devs_sls_fails_clearly_and_changes_nothing() {
    let Some((tools, app)) = real_parts() else {
        return;
    };
    let devs = Devs::new(&["vbad"]);
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(Path::new(&key(CLIENT_KEY)));
    let p = project(&server, &sshd, &devs, false);
    let devs_sls = p.root().join("conf/pillar/devs.sls");
    let mut flags = vec!["-u", "root", "--accept-new-host-key"];
    for (text, says) in [
        (
            "users:\n  Bad.Name:\n    groups: [login]\n".to_string(),
            "devs.sls: bad user name Bad.Name",
        ),
        (
            format!(
                "users:\n  {}:\n    public_key: ssh-ed25519 AAAAC3Nza\n",
                devs.name(0)
            ),
            "public_key must be a list of key lines",
        ),
        (
            format!(
                "users:\n  {}:\n    public_key:\n      - not a key\n",
                devs.name(0)
            ),
            "public_key entry 1 is not one public key line",
        ),
        (
            "users:\n  root: {}\n".to_string(),
            "root cannot be a developer account",
        ),
    ] {
        std::fs::write(&devs_sls, text).unwrap();
        let out = provision(&p, &sshd, &server, &flags);
        assert_ne!(out.code(), 0, "{says}: {}", out.stderr());
        assert!(out.stderr().contains(says), "{says}: {}", out.stderr());
        assert!(
            out.stderr().contains("failed: devs_pillar_invalid"),
            "{}",
            out.stderr()
        );
        flags.truncate(2);
        assert!(!Path::new(&server.path("var/lib/vault")).exists(), "{says}");
        assert!(!Path::new(&server.path("etc/example")).exists(), "{says}");
    }
    assert!(
        Command::new("id")
            .arg(devs.name(0))
            .output()
            .unwrap()
            .status
            .code()
            != Some(0)
    );
    assert!(!devs.sudoers().exists());
}

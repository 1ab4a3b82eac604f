//! Deploy freshness end to end, on a real loopback sshd with real salt-call: the server
//! keeps root-only the secrets version it last applied, and a provision never takes it
//! back: not by a stale member, not by an attacker who checks out an older commit; a
//! version from another branch only with --allow-older; a dry run reports and writes
//! nothing; a record planted on the server is a clear error.

use crate::common::server::{tools, Server, Sshd};
use crate::common::{self, key, Project};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A project in git whose staging is served by `server` through `sshd`.
struct Setup {
    p: Project,
    server: Server,
    sshd: Sshd,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !common::have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
            common::require_in_ci("rsync and sshd");
            return None;
        }
        let (tools, app) = tools()?;
        let p = Project::new();
        let server = Server::start(&tools, &app);
        let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
        server.staging_env(p.root(), &sshd, "");
        let ignore = p.root().join(".gitignore");
        let ignored = std::fs::read_to_string(&ignore).unwrap_or_default();
        std::fs::write(&ignore, format!("{ignored}home/\n")).unwrap();
        common::git(p.root(), &["init", "-q"]);
        Some(Setup { p, server, sshd })
    }

    /// `vault provision staging` as alice from `dir` (the project, or a clone of it) on
    /// the machine whose home is `home`, with `extra` flags.
    fn provision_from(&self, dir: &Path, home: &Path, extra: &[&str]) -> common::Run {
        let flags = self.server.provision_flags(&self.sshd);
        let mut args: Vec<&str> =
            vec!["provision", "staging", "--approve", "--accept-new-host-key"];
        args.extend(flags.iter().map(String::as_str));
        args.extend(extra);
        common::Run(self.alice(dir, home, &args).output().unwrap())
    }

    /// `vault ARGS` as alice in `dir`: the project on its own machine, or a clone on
    /// the machine whose home is `home`.
    fn alice(&self, dir: &Path, home: &Path, args: &[&str]) -> Command {
        if dir == self.p.root() {
            return self.p.cmd(args);
        }
        let mut cmd = self.p.on_machine(home, "alice_ed25519", args);
        cmd.current_dir(dir);
        cmd
    }

    fn provision(&self, extra: &[&str]) -> common::Run {
        self.provision_from(self.p.root(), &self.p.home, extra)
    }

    /// Sets TOKEN in `dir`'s staging and commits it: the version's id and serial.
    fn commit_token(&self, dir: &Path, home: &Path, value: &str) -> (String, u64) {
        let f = dir.join(".value");
        std::fs::write(&f, value).unwrap();
        let set = [
            "set",
            "staging",
            "TOKEN",
            "--from-file",
            f.to_str().unwrap(),
        ];
        common::Run(self.alice(dir, home, &set).output().unwrap()).success();
        std::fs::remove_file(f).unwrap();
        common::git(dir, &["add", "-A"]);
        common::git(dir, &["commit", "-qm", &format!("staging: TOKEN {value}")]);
        version(dir)
    }

    fn record_path(&self) -> PathBuf {
        self.server
            .root
            .path()
            .join("var/lib/vault/example/applied-staging")
    }

    fn record(&self) -> String {
        std::fs::read_to_string(self.record_path()).unwrap()
    }

    /// The token the running app has, once it has `want`.
    fn app_has(&self, want: &str) {
        self.server.ask(|v| v["env"]["TOKEN"] == want);
    }
}

/// The id and serial of the staging version in `dir`'s working tree.
fn version(dir: &Path) -> (String, u64) {
    let sidecar = std::fs::read(dir.join("conf/pillar/staging/secrets.sls.age.sig")).unwrap();
    let m = vault::store::signed_manifest(&sidecar).unwrap();
    (m.id(), m.serial)
}

/// How vault names a version: serial and short hash.
fn label((id, serial): &(String, u64)) -> String {
    format!("serial {serial} ({})", &id["sha256:".len()..][..12])
}

/// A clone of the project, checked out at `rev`, with a home of its own: another
/// member's machine (or an attacker's, or a stale one's).
fn clone_at(s: &Setup, rev: &str, name: &str) -> (PathBuf, PathBuf) {
    let dir = s.p.root().join(format!("home/{name}-clone"));
    let home = s.p.root().join(format!("home/{name}-home"));
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(s.p.root())
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    common::git(&dir, &["checkout", "-q", rev]);
    (dir, home)
}

#[test]
fn a_deploy_goes_forward_and_never_back() {
    let Some(s) = Setup::new() else { return };
    let v1 = s.commit_token(s.p.root(), &s.p.home, "value-one");
    let at_v1 = common::git(s.p.root(), &["rev-parse", "HEAD"]);
    s.provision(&[]).success();
    s.app_has("value-one");
    assert_eq!(s.record(), format!("{} {}\n", v1.0, v1.1));

    // Forward: v2 follows v1, and goes ahead silently; the record names it, root's alone.
    let v2 = s.commit_token(s.p.root(), &s.p.home, "value-two");
    let out = s.provision(&[]).success();
    assert!(
        !out.stderr().contains("does not follow"),
        "{}",
        out.stderr()
    );
    s.app_has("value-two");
    assert_eq!(s.record(), format!("{} {}\n", v2.0, v2.1));
    let (file, dir) = (
        std::fs::metadata(s.record_path()).unwrap(),
        std::fs::metadata(s.record_path().parent().unwrap()).unwrap(),
    );
    assert_eq!((file.mode() & 0o777, file.uid()), (0o600, 0));
    assert_eq!((dir.mode() & 0o777, dir.uid()), (0o700, 0));
    // The same version again: silently.
    s.provision(&[]).success();

    // A member on the older commit (a stale checkout, or an attacker replaying the old
    // values): refused, naming both versions, with or without --allow-older; nothing is
    // shipped, not even the states, and the app keeps the newer values.
    let (old, old_home) = clone_at(&s, at_v1.trim(), "stale");
    std::fs::write(old.join("conf/salt/project/stale-only.txt"), "old\n").unwrap();
    for flags in [&[][..], &["--allow-older"]] {
        let out = s.provision_from(&old, &old_home, flags);
        let err = out.stderr();
        assert_eq!(out.code(), 1, "{err}");
        assert!(
            err.contains(&label(&v2)) && err.contains(&label(&v1)),
            "{err}"
        );
        assert!(err.contains("refusing to go back"), "{err}");
        assert!(err.contains("vault set staging"), "the hint: {err}");
    }
    assert!(!s
        .server
        .root
        .path()
        .join("srv/salt/project/stale-only.txt")
        .exists());
    assert_eq!(s.record(), format!("{} {}\n", v2.0, v2.1));
    s.app_has("value-two");

    // A dry run there says so, and changes no record.
    let out = s.provision_from(&old, &old_home, &["--dry-run"]).success();
    let err = out.stderr();
    assert!(
        err.contains(&format!("dry run: staging {}: older than the version the server runs, {}: a real run would refuse", label(&v1), label(&v2))),
        "{err}"
    );
    assert_eq!(s.record(), format!("{} {}\n", v2.0, v2.1));
    s.app_has("value-two");

    // A dry run of a version ahead says so too, and writes nothing.
    let before = std::fs::metadata(s.record_path())
        .unwrap()
        .modified()
        .unwrap();
    s.p.set("staging", "TOKEN", "value-three");
    let v3 = version(s.p.root());
    let out = s.provision(&["--dry-run"]).success();
    assert!(
        out.stderr().contains(&format!(
            "dry run: staging {}: ahead of the version the server runs: a real run would go ahead",
            label(&v3)
        )),
        "{}",
        out.stderr()
    );
    assert_eq!(s.record(), format!("{} {}\n", v2.0, v2.1));
    let after = std::fs::metadata(s.record_path())
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    s.app_has("value-two");
}

#[test]
fn another_branch_needs_allow_older() {
    let Some(s) = Setup::new() else { return };
    let v1 = s.commit_token(s.p.root(), &s.p.home, "value-one");
    let at_v1 = common::git(s.p.root(), &["rev-parse", "HEAD"]);
    let v2 = s.commit_token(s.p.root(), &s.p.home, "value-two");
    s.provision(&[]).success();
    s.app_has("value-two");

    // A member who branched off at v1 and wrote their own version: it does not follow
    // the one the server runs.
    let (other, home) = clone_at(&s, at_v1.trim(), "branch");
    common::git(&other, &["checkout", "-q", "-b", "other"]);
    let b2 = s.commit_token(&other, &home, "branch-value");
    assert_ne!(b2.0, v1.0);
    let out = s.provision_from(&other, &home, &[]);
    let err = out.stderr();
    assert_eq!(out.code(), 1, "{err}");
    assert!(
        err.contains(&label(&v2)) && err.contains(&label(&b2)),
        "{err}"
    );
    assert!(err.contains("another branch"), "{err}");
    assert!(
        err.contains("git pull") && err.contains("--allow-older"),
        "{err}"
    );
    assert_eq!(s.record(), format!("{} {}\n", v2.0, v2.1));
    s.app_has("value-two");

    // With --allow-older it is shown and goes through; the record names it.
    let out = s
        .provision_from(&other, &home, &["--allow-older"])
        .success();
    assert!(
        out.stderr().contains("applying it anyway (--allow-older)"),
        "{}",
        out.stderr()
    );
    s.app_has("branch-value");
    assert_eq!(s.record(), format!("{} {}\n", b2.0, b2.1));

    // Back in the project, which has never seen that branch: the version the server
    // runs is unknown here, so the same holds.
    let out = s.provision(&[]);
    let err = out.stderr();
    assert_eq!(out.code(), 1, "{err}");
    assert!(
        err.contains("a version this checkout's history does not hold"),
        "{err}"
    );
    s.app_has("branch-value");
}

#[test]
fn a_record_planted_on_the_server_is_a_clear_error() {
    let Some(s) = Setup::new() else { return };
    let v1 = s.commit_token(s.p.root(), &s.p.home, "value-one");
    s.provision(&[]).success();
    let v2 = s.commit_token(s.p.root(), &s.p.home, "value-two");
    // What someone with root on the server (or a disk) might leave there: garbage with
    // a terminal escape, the right id with another serial, a link.
    let record = s.record_path();
    let serial_99 = format!("{} 99\n", v1.0);
    // (what it says, the record's text; None: a link to a root-only file)
    let plants = [
        (
            "\"31mnot a record id\"",
            Some("\x1b[31mnot a record $(id)\n"),
        ),
        ("that version's serial is", Some(serial_99.as_str())),
        ("\"link\"", None),
    ];
    for (said, text) in plants {
        match text {
            Some(t) => std::fs::write(&record, t).unwrap(),
            None => {
                std::fs::remove_file(&record).unwrap();
                std::os::unix::fs::symlink("/etc/shadow", &record).unwrap();
            }
        }
        let out = s.provision(&[]);
        let err = out.stderr();
        assert_eq!(out.code(), 1, "{err}");
        assert!(
            err.contains("is not one vault wrote") && err.contains(said),
            "{err}"
        );
        assert!(err.contains(&record.display().to_string()), "{err}");
        assert!(!err.contains('\x1b') && !err.contains("root:"), "{err}");
        s.app_has("value-one");
        if record.is_symlink() {
            std::fs::remove_file(&record).unwrap();
        }
    }
    // --allow-older replaces it with this version.
    std::fs::write(&record, "garbage\n").unwrap();
    s.provision(&["--allow-older"]).success();
    s.app_has("value-two");
    assert_eq!(s.record(), format!("{} {}\n", v2.0, v2.1));

    // Another provision that records its version while this one's Salt runs (a state
    // does what it would): this one's record is not written over it, and it says so.
    let salt = s.p.root().join("conf/salt");
    let other = format!("{} {}", v1.0, v1.1);
    std::fs::write(
        salt.join("race.sls"),
        format!(
            "race:\n  cmd.run:\n    - name: printf '%s\\n' '{other}' > '{}'\n",
            record.display()
        ),
    )
    .unwrap();
    let top = std::fs::read_to_string(salt.join("top.sls")).unwrap();
    let top = top.replace("    - project\n", "    - project\n    - race\n");
    std::fs::write(salt.join("top.sls"), top).unwrap();
    s.p.set("staging", "TOKEN", "value-three");
    let out = s.provision(&[]);
    let err = out.stderr();
    assert_eq!(out.code(), 1, "{err}");
    assert!(
        err.contains(
            "another provision changed the version the server runs while this one applied"
        ),
        "{err}"
    );
    assert_eq!(s.record(), format!("{other}\n"));
}

/// Provision, then `vault set` twice without a commit in between, then provision again
/// (the README's later-run flow, as a newcomer does it): the new version follows the one
/// the server runs through versions git never held, which this machine verified as it
/// wrote them, so it goes forward.
#[test]
fn uncommitted_writes_since_the_last_provision_go_forward() {
    let Some(s) = Setup::new() else { return };
    s.commit_token(s.p.root(), &s.p.home, "value-one");
    s.provision(&[]).success();
    s.p.set("staging", "TOKEN", "value-two");
    s.p.set("staging", "TOKEN", "value-three");
    let now = version(s.p.root());
    let out = s.provision(&[]);
    let err = out.stderr();
    assert_eq!(out.code(), 0, "{err}");
    assert!(!err.contains("does not follow"), "{err}");
    s.app_has("value-three");
    assert_eq!(s.record(), format!("{} {}\n", now.0, now.1));
}

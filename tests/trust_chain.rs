//! Trust v2 on a member's machine: the project identity every manifest and grant signs,
//! grants bound to the serial that made them, founding that admits only verified keys,
//! and what a machine remembers shared by every checkout of a project. Each attack is
//! mounted as a repository writer without membership would mount it (public keys, `age`,
//! `ssh-keygen -Y sign`), beside the honest flow it must not break.

use crate::common::forge::{self, age_encrypt, attacker_key, grant_line, pub_line, sha256};
use crate::common::{self, fingerprint, git, key, Project};
use std::path::{Path, PathBuf};

fn sidecar_path(root: &Path, env: &str) -> PathBuf {
    root.join("conf/pillar")
        .join(env)
        .join("secrets.sls.age.sig")
}

fn secrets_path(root: &Path, env: &str) -> PathBuf {
    root.join("conf/pillar").join(env).join("secrets.sls.age")
}

/// `vault get ENV A` as alice in `p`: it must be refused before decrypting; the reason.
fn refused(p: &Project, env: &str) -> String {
    let err = p.vault(&["get", env, "A"]).error();
    assert!(err.contains("refused before decrypting"), "{err}");
    err
}

fn grant_mallory(p: &Project, env: &str) {
    p.vault(&[
        "grant",
        env,
        "mallory",
        "--key",
        &key("mallory_ed25519.pub"),
        "--fingerprint",
        &fingerprint("mallory_ed25519.pub"),
    ])
    .success();
}

/// `current`'s manifest moved on one version by mallory: serial + 1, its parent the
/// current one, `line` added to the roster, a ciphertext of her own to `to`; signed by her.
fn mallory_extends(p: &Project, env: &str, line: &str, to: &[&str], dir: &Path) {
    let current = std::fs::read(sidecar_path(p.root(), env)).unwrap();
    let manifest = forge::manifest_of(&current);
    let ct = age_encrypt(
        &to.iter().map(|f| pub_line(f)).collect::<Vec<_>>(),
        b"secrets:\n  A: evil\n",
    );
    let mut out = Vec::new();
    for l in manifest.lines() {
        if let Some(s) = l.strip_prefix("serial ") {
            out.push(format!("serial {}", s.parse::<u64>().unwrap() + 1));
            out.push(format!("parent {}", sha256(manifest.as_bytes())));
        } else if l.starts_with("parent ") || l.starts_with("exposed ") {
            continue;
        } else if l.starts_with("ciphertext ") {
            out.push(format!("ciphertext {}", sha256(&ct)));
            out.push(line.to_string());
        } else {
            out.push(l.to_string());
        }
    }
    let text = out.join("\n") + "\n";
    let mkey = attacker_key(dir, "mallory_ed25519");
    std::fs::write(secrets_path(p.root(), env), ct).unwrap();
    std::fs::write(sidecar_path(p.root(), env), forge::sidecar(&mkey, &text)).unwrap();
}

fn roster_line(sidecar: &[u8], member: &str) -> String {
    forge::manifest_of(sidecar)
        .lines()
        .find(|l| l.starts_with(&format!("recipient {member} ")))
        .unwrap()
        .to_string()
}

#[test]
fn attack_a_revoked_member_signs_his_old_grant_back_in() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    grant_mallory(&p, "staging");
    let old_line = roster_line(
        &std::fs::read(sidecar_path(p.root(), "staging")).unwrap(),
        "mallory",
    );
    p.vault(&["revoke", "staging", "mallory"]).success();
    p.set("staging", "A", "rotated");
    // She puts her key back and her old grant line in a version she signs herself.
    let dir = tempfile::tempdir().unwrap();
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    mallory_extends(
        &p,
        "staging",
        &old_line,
        &["alice_ed25519.pub", "bob.agekey.pub", "mallory_ed25519.pub"],
        dir.path(),
    );
    let err = refused(&p, "staging");
    assert!(err.contains("lets in mallory ("), "{err}");
    assert!(
        err.contains("an old grant cannot bring a key back"),
        "{err}"
    );
    assert!(!err.contains("evil"), "{err}");
    // Nor may anyone write over it: the next write of a member is refused, not encrypted
    // to her.
    let err = p.vault_in(&["set", "staging", "B"], b"x").error();
    assert!(err.contains("lets in mallory ("), "{err}");
}

#[test]
fn a_key_that_left_comes_back_by_a_new_grant() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    grant_mallory(&p, "staging");
    p.vault(&["revoke", "staging", "mallory"]).success();
    grant_mallory(&p, "staging");
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("mallory_ed25519"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"secret-value");
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"secret-value");
}

#[test]
fn attack_a_grant_from_another_project_is_spliced_in() {
    // In another project, alice granted mallory staging, honestly.
    let other = Project::new();
    other.set("staging", "A", "other-project");
    grant_mallory(&other, "staging");
    let spliced = roster_line(
        &std::fs::read(sidecar_path(other.root(), "staging")).unwrap(),
        "mallory",
    );
    // Here, mallory was never granted: she splices that line into a version of her own.
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    let dir = tempfile::tempdir().unwrap();
    mallory_extends(
        &p,
        "staging",
        &spliced,
        &["alice_ed25519.pub", "bob.agekey.pub", "mallory_ed25519.pub"],
        dir.path(),
    );
    let err = refused(&p, "staging");
    assert!(err.contains("mallory"), "{err}");
    // A fresh machine that trusts alice refuses it too: the grant signs another project.
    let fresh = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = p.on_machine(fresh.path(), "alice_ed25519", args);
        common::Run(c.output().unwrap())
    };
    run(&[
        "trust",
        "staging",
        "--fingerprint",
        &fingerprint("alice_ed25519.pub"),
    ])
    .success();
    let err = run(&["get", "staging", "A"]).error();
    assert!(
        err.contains("the grant of mallory is not validly signed"),
        "{err}"
    );
    // The same kind of line, granted here, is accepted.
    let q = Project::new();
    q.set("staging", "A", "secret-value");
    grant_mallory(&q, "staging");
    assert_eq!(q.vault(&["get", "staging", "A"]).0.stdout, b"secret-value");
}

#[test]
fn a_founding_admits_only_its_founder_and_the_keys_they_verified() {
    let p = Project::new();
    // A second line slipped into alice's own production key file.
    let mut alice = pub_line("alice_ed25519.pub");
    alice.push_str(&pub_line("mallory_ed25519.pub"));
    std::fs::write(p.root().join("recipients/production/alice.pub"), alice).unwrap();
    p.set("production", "A", "prod-value");
    let status = p.vault(&["status"]).stdout();
    assert!(status.contains("  pending: alice ("), "{status}");
    // mallory's key cannot open it; carol, whom alice verified, can.
    let ct = std::fs::read(secrets_path(p.root(), "production")).unwrap();
    let mut c = std::process::Command::new("age");
    c.args(["-d", "-i", &key("mallory_ed25519")]);
    assert!(!common::run_with_input(c, &ct).0.status.success());
    let out = p
        .cmd(&["get", "production", "A"])
        .env("VAULT_IDENTITY", key("carol_rsa"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"prod-value");
    // A key nobody verified waits for a grant by fingerprint.
    let q = Project::new();
    q.add_member("staging", "dave", "dave_ed25519_pass.pub");
    q.set("staging", "A", "v");
    assert!(q.vault(&["status"]).stdout().contains("  pending: dave ("));
}

#[test]
fn attack_an_environment_founded_by_a_stranger_is_refused() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    // Nobody wrote production yet; mallory founds it on her own machine.
    p.add_member("production", "mallory", "mallory_ed25519.pub");
    let home = tempfile::tempdir().unwrap();
    let c = p.on_machine(home.path(), "mallory_ed25519", &["set", "production", "A"]);
    common::run_with_input(c, b"evil").success();
    let err = refused(&p, "production");
    let mfp = fingerprint("mallory_ed25519.pub");
    assert!(
        err.contains(&format!(
            "production was founded by mallory ({mfp}), a key this machine has not verified"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("vault trust production --fingerprint {mfp}")),
        "{err}"
    );
    let before = p.snapshot();
    let err = p.vault_in(&["set", "production", "B"], b"x").error();
    assert!(err.contains("founded by mallory"), "{err}");
    assert_eq!(p.snapshot(), before, "nothing written over her founding");
    // The honest way: alice founds it herself, and bob (who verified alice) reads.
    std::fs::remove_file(secrets_path(p.root(), "production")).unwrap();
    std::fs::remove_file(sidecar_path(p.root(), "production")).unwrap();
    std::fs::remove_file(p.root().join("recipients/production/mallory.pub")).unwrap();
    p.set("production", "A", "honest");
    let bob = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = p.on_machine(bob.path(), "carol_rsa", args);
        common::Run(c.output().unwrap())
    };
    let first = run(&["get", "production", "A"]);
    // A newcomer's first read is told the trust step, not to look for tampering.
    let hint = first.stderr();
    assert!(
        hint.contains("has not met production's founder") && !hint.contains("git log -p"),
        "{hint}"
    );
    let err = first.error();
    assert!(err.contains("founded by alice"), "{err}");
    run(&[
        "trust",
        "production",
        "--fingerprint",
        &fingerprint("alice_ed25519.pub"),
    ])
    .success();
    assert_eq!(run(&["get", "production", "A"]).0.stdout, b"honest");
}

#[test]
fn trust_refuses_a_fingerprint_no_key_of_the_folder_has() {
    let p = Project::new();
    let before = p.snapshot();
    let err = p
        .vault(&[
            "trust",
            "staging",
            "--fingerprint",
            &fingerprint("mallory_ed25519.pub"),
        ])
        .error();
    assert!(
        err.contains("no key in recipients/staging/ has the fingerprint"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
}

#[test]
fn every_checkout_of_a_project_shares_what_this_machine_has_seen() {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    p.set("staging", "A", "old");
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "v1"]);
    let with_bob = (
        std::fs::read(secrets_path(p.root(), "staging")).unwrap(),
        std::fs::read(sidecar_path(p.root(), "staging")).unwrap(),
    );
    p.vault(&["revoke", "staging", "bob"]).success();
    p.set("staging", "A", "new");
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "revoke bob"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}", p.root().display());
    git(elsewhere.path(), &["clone", "-q", &url, "clone"]);
    git(
        p.root(),
        &[
            "worktree",
            "add",
            "-q",
            elsewhere.path().join("wt").to_str().unwrap(),
        ],
    );
    // A checkout moved to another folder.
    let moved = elsewhere.path().join("moved");
    git(elsewhere.path(), &["clone", "-q", &url, "before-move"]);
    std::fs::rename(elsewhere.path().join("before-move"), &moved).unwrap();
    for checkout in ["clone", "wt", "moved"] {
        let root = elsewhere.path().join(checkout);
        // The rollback this machine's usual checkout refuses...
        std::fs::write(secrets_path(&root, "staging"), &with_bob.0).unwrap();
        std::fs::write(sidecar_path(&root, "staging"), &with_bob.1).unwrap();
        let out = p
            .cmd(&["-C", root.to_str().unwrap(), "get", "staging", "A"])
            .output()
            .unwrap();
        let err = common::Run(out).error();
        // ...is refused in every other checkout of it on this machine.
        assert!(err.contains("lets in bob ("), "{checkout}: {err}");
    }
    assert!(moved.exists());
    // And the honest current version reads in each.
    git(&elsewhere.path().join("clone"), &["checkout", "--", "."]);
    let out = p
        .cmd(&[
            "-C",
            elsewhere.path().join("clone").to_str().unwrap(),
            "get",
            "staging",
            "A",
        ])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"new");
}

#[test]
fn attack_a_swapped_project_identity_trusts_nothing() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    std::fs::write(
        p.root().join("conf/vault-project"),
        "vault project v1\nid 0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let err = refused(&p, "staging");
    assert!(
        err.contains("project identity (conf/vault-project) is no longer"),
        "{err}"
    );
}

#[test]
fn attack_a_file_of_the_old_format_after_the_new_is_a_downgrade() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    // A version 1 manifest, validly signed by alice (as an old genuine version would be),
    // encrypted to the same members.
    let ct = age_encrypt(
        &[pub_line("alice_ed25519.pub"), pub_line("bob.agekey.pub")],
        b"secrets:\n  A: old\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let akey = attacker_key(dir.path(), "alice_ed25519");
    let afp = fingerprint("alice_ed25519.pub");
    let bfp = common::fingerprint("bob.agekey.pub");
    let date = "2026-11-30";
    let g = |member: &str, fp: &str| {
        grant_line(
            &akey,
            &format!(
                "vault grant v1\nenvironment staging\nmember {member}\nkey {fp}\ndate {date}\n"
            ),
        )
    };
    let text = format!(
        "vault manifest v1\nenvironment staging\nserial 9\nciphertext {}\nrecipient alice {afp} granted-by {afp} {date} {}\nrecipient bob {bfp} granted-by {afp} {date} {}\nsecret A {date}\n",
        sha256(&ct),
        g("alice", &afp),
        g("bob", &bfp)
    );
    std::fs::write(secrets_path(p.root(), "staging"), ct).unwrap();
    std::fs::write(
        sidecar_path(p.root(), "staging"),
        forge::sidecar(&akey, &text),
    )
    .unwrap();
    let err = refused(&p, "staging");
    assert!(err.contains("(a downgrade)"), "{err}");
}

#[test]
fn a_project_of_the_old_format_is_read_then_migrated_by_a_member() {
    // This repository's example project was written by the vault before identities.
    let p = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["conf", "recipients"] {
        let status = std::process::Command::new("cp")
            .args(["-r"])
            .arg(src.join(dir))
            .arg(p.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let home = tempfile::tempdir().unwrap();
    let vault = |who: &str, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vault"))
            .arg("-C")
            .arg(p.path())
            .args(args)
            .env("VAULT_IDENTITY", key(who))
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .unwrap();
        common::Run(out)
    };
    assert_eq!(
        vault("alice_ed25519", &["get", "staging", "PIN"])
            .success()
            .0
            .stdout,
        b"0123"
    );
    let value = home.path().join("value");
    std::fs::write(&value, "4567").unwrap();
    let before = std::fs::read(sidecar_path(p.path(), "staging")).unwrap();
    let out = vault(
        "alice_ed25519",
        &[
            "set",
            "staging",
            "PIN",
            "--from-file",
            value.to_str().unwrap(),
        ],
    );
    let said = out.stderr();
    assert!(out.error().contains("has no identity yet"), "{said}");
    assert!(
        said.contains("hint: a member runs `vault migrate` once"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(sidecar_path(p.path(), "staging")).unwrap(),
        before
    );
    let out = vault("alice_ed25519", &["migrate"]).success();
    let said = out.stderr();
    assert!(said.contains("created conf/vault-project"), "{said}");
    assert!(
        said.contains("staging: signed anew in the current format"),
        "{said}"
    );
    assert!(
        said.contains("production: signed anew in the current format"),
        "{said}"
    );
    let sidecar = std::fs::read_to_string(sidecar_path(p.path(), "staging")).unwrap();
    assert!(
        sidecar.starts_with("vault manifest v2\nproject "),
        "{sidecar}"
    );
    // Nothing lost: every member reads what they read before.
    assert_eq!(
        vault("bob.agekey", &["get", "staging", "PIN"])
            .success()
            .0
            .stdout,
        b"0123"
    );
    assert!(!vault("carol_rsa", &["get", "production", "DB_PASSWORD"])
        .success()
        .0
        .stdout
        .is_empty());
    let again = vault("alice_ed25519", &["migrate"]).success().stderr();
    assert!(
        again.contains("staging: already in the current format"),
        "{again}"
    );
}

// What a fresh-context attack review of trust v2 found, each a regression test.

#[test]
fn attack_a_second_founder_beside_a_copied_founding_line_is_refused() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let alice_line = roster_line(
        &std::fs::read(sidecar_path(p.root(), "staging")).unwrap(),
        "alice",
    );
    // mallory's own founding: alice's genuine founding line copied in, and her own.
    let dir = tempfile::tempdir().unwrap();
    let mkey = attacker_key(dir.path(), "mallory_ed25519");
    let id = std::fs::read_to_string(p.root().join("conf/vault-project")).unwrap();
    let id = id
        .lines()
        .find_map(|l| l.strip_prefix("id "))
        .unwrap()
        .to_string();
    let mfp = fingerprint("mallory_ed25519.pub");
    let date = "2026-11-30";
    let grant = grant_line(
        &mkey,
        &format!("vault grant v2\nproject {id}\nenvironment staging\nmember mallory\nkey {mfp}\ndate {date}\nserial 50\n"),
    );
    let ct = age_encrypt(
        &[
            pub_line("alice_ed25519.pub"),
            pub_line("mallory_ed25519.pub"),
        ],
        b"secrets:\n  A: evil\n",
    );
    let text = format!(
        "vault manifest v2\nproject {id}\nenvironment staging\nserial 50\nciphertext {}\n{alice_line}\nrecipient mallory {mfp} granted-by {mfp} {date} 50 {grant}\nsecret A {date}\n",
        sha256(&ct)
    );
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    std::fs::write(secrets_path(p.root(), "staging"), ct).unwrap();
    std::fs::write(
        sidecar_path(p.root(), "staging"),
        forge::sidecar(&mkey, &text),
    )
    .unwrap();
    // alice's fresh machine, where she trusts her own key: refused, and nothing written.
    let fresh = tempfile::tempdir().unwrap();
    let run = |args: &[&str], input: Option<&[u8]>| {
        let mut c = p.on_machine(fresh.path(), "alice_ed25519", args);
        match input {
            Some(i) => common::run_with_input(c, i),
            None => common::Run(c.output().unwrap()),
        }
    };
    let err = run(&["get", "staging", "A"], None).error();
    assert!(err.contains("the roster names 2 founders"), "{err}");
    let before = p.snapshot();
    let err = run(&["set", "staging", "B"], Some(b"for-alice-only")).error();
    assert!(err.contains("the roster names 2 founders"), "{err}");
    assert_eq!(p.snapshot(), before);
    // Her usual machine refuses it too.
    assert!(refused(&p, "staging").contains("mallory"));
}

#[test]
fn attack_a_removed_project_identity_trusts_nothing_on_a_machine_that_knew_it() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    std::fs::remove_file(p.root().join("conf/vault-project")).unwrap();
    let err = refused(&p, "staging");
    assert!(
        err.contains("project identity (conf/vault-project) is no longer"),
        "{err}"
    );
}

/// A project in git, with vault's drivers, where alice granted and then revoked carol
/// in staging (carol's key can sign: she is the departed member).
fn revoked_carol() -> Project {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    std::fs::write(p.root().join(".gitignore"), "secrets.sls\n/home/\n").unwrap();
    p.vault(&["install-git"]).success();
    p.set("staging", "A", "alpha");
    commit_all(&p, "found");
    p.vault(&[
        "grant",
        "staging",
        "carol",
        "--key",
        &key("carol_rsa.pub"),
        "--fingerprint",
        &fingerprint("carol_rsa.pub"),
    ])
    .success();
    commit_all(&p, "grant carol");
    p.vault(&["revoke", "staging", "carol"]).success();
    p.set("staging", "A", "rotated");
    commit_all(&p, "revoke carol, rotate");
    p
}

fn commit_all(p: &Project, msg: &str) {
    git(p.root(), &["add", "-A"]);
    common::git_command(p.root())
        .args(["commit", "--no-verify", "-qm", msg])
        .status()
        .unwrap();
}

fn merge_as_alice(p: &Project, branch: &str) -> std::process::Output {
    crate::git_workflow::git_as(p, "alice_ed25519", &["merge", "--no-edit", branch])
}

fn carol_reads(p: &Project) -> bool {
    let ct = std::fs::read(secrets_path(p.root(), "staging")).unwrap();
    let mut c = std::process::Command::new("age");
    c.args(["-d", "-i", &key("carol_rsa")]);
    common::run_with_input(c, &ct).0.status.success()
}

#[test]
fn attack_a_branch_from_before_a_revoke_brings_nobody_back_through_a_merge() {
    let p = revoked_carol();
    // mallory branches from the founding and commits the old pair that granted carol.
    let granted = git(p.root(), &["rev-parse", "HEAD~1"]);
    git(p.root(), &["checkout", "-qb", "old", "HEAD~2"]);
    git(
        p.root(),
        &[
            "checkout",
            granted.trim(),
            "--",
            "conf/pillar/staging",
            "recipients/staging",
        ],
    );
    commit_all(&p, "carol again");
    git(p.root(), &["checkout", "-q", "main"]);
    let out = merge_as_alice(&p, "old");
    let said = crate::git_workflow::text(&out);
    // Whatever git makes of it, the file on main is never encrypted to carol.
    assert!(!carol_reads(&p), "{said}");
    let sidecar = std::fs::read_to_string(sidecar_path(p.root(), "staging")).unwrap();
    assert!(!sidecar.contains("recipient carol "), "{said}\n{sidecar}");
}

#[test]
fn attack_a_departed_members_write_on_an_old_branch_is_not_merged() {
    let p = revoked_carol();
    // carol, on her own machine, writes on a branch from when she was a member.
    git(p.root(), &["checkout", "-qb", "old", "HEAD~1"]);
    let home = tempfile::tempdir().unwrap();
    let c = p.on_machine(home.path(), "carol_rsa", &["set", "staging", "EVIL_URL"]);
    let alice = fingerprint("alice_ed25519.pub");
    let trust = p
        .on_machine(
            home.path(),
            "carol_rsa",
            &["trust", "staging", "--fingerprint", &alice],
        )
        .output()
        .unwrap();
    assert!(trust.status.success());
    common::run_with_input(c, b"https://attacker.example").success();
    commit_all(&p, "carol's url");
    git(p.root(), &["checkout", "-q", "main"]);
    let out = merge_as_alice(&p, "old");
    let said = crate::git_workflow::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("whose key left the roster at serial"),
        "{said}"
    );
    git(p.root(), &["merge", "--abort"]);
    let err = p.vault(&["get", "staging", "EVIL_URL"]).error();
    assert!(err.contains("no secret named EVIL_URL"), "{err}");
}

#[test]
fn attack_a_replayed_older_version_on_a_branch_is_not_merged() {
    let p = revoked_carol();
    // mallory commits the founding's pair again on a branch from main.
    git(p.root(), &["checkout", "-qb", "replay"]);
    let founding = git(p.root(), &["rev-list", "--max-parents=0", "HEAD"]);
    git(
        p.root(),
        &["checkout", founding.trim(), "--", "conf/pillar/staging"],
    );
    commit_all(&p, "replay");
    git(p.root(), &["checkout", "-q", "main"]);
    p.set("staging", "B", "on-main");
    commit_all(&p, "B");
    let out = merge_as_alice(&p, "replay");
    let said = crate::git_workflow::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("is older than the common ancestor"), "{said}");
    git(p.root(), &["merge", "--abort"]);
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"rotated");
}

// What the second attack review found, each a regression test.

/// `vault ARGS` as `who` on a machine of its own (`home`), in `p`.
fn on_machine(
    p: &Project,
    home: &Path,
    who: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> common::Run {
    let mut c = p.on_machine(home, who, args);
    match input {
        Some(i) => common::run_with_input(c, i),
        None => common::Run(c.output().unwrap()),
    }
}

#[test]
fn attack_a_machine_that_pulled_the_revoke_with_later_writes_still_learns_it() {
    let p = revoked_carol_on_two_laptops();
    // carol signs a version of her own: alice's founding line, her old grant line, a
    // parent that is the revoke's, and a value she chose.
    let (laptop, carol_line, alice_line, revoke_id) = p;
    let (p, laptop) = (laptop.0, laptop.1);
    p.add_member("staging", "carol", "carol_rsa.pub");
    let dir = tempfile::tempdir().unwrap();
    let ckey = attacker_key(dir.path(), "carol_rsa");
    let ct = age_encrypt(
        &[pub_line("alice_ed25519.pub"), pub_line("carol_rsa.pub")],
        b"secrets:\n  A: carol-chose-this\n",
    );
    let id = std::fs::read_to_string(p.root().join("conf/vault-project")).unwrap();
    let id = id
        .lines()
        .find_map(|l| l.strip_prefix("id "))
        .unwrap()
        .to_string();
    let text = format!(
        "vault manifest v2\nproject {id}\nenvironment staging\nserial 100\nparent {revoke_id}\nciphertext {}\n{alice_line}\n{carol_line}\nsecret A 2026-12-01\n",
        sha256(&ct)
    );
    std::fs::write(secrets_path(p.root(), "staging"), ct).unwrap();
    std::fs::write(
        sidecar_path(p.root(), "staging"),
        forge::sidecar(&ckey, &text),
    )
    .unwrap();
    let err = on_machine(
        &p,
        laptop.path(),
        "alice_ed25519",
        &["get", "staging", "A"],
        None,
    )
    .error();
    assert!(err.contains("lets in carol ("), "{err}");
    assert!(err.contains("whose key left the roster at serial"), "{err}");
}

type TwoLaptops = ((Project, tempfile::TempDir), String, String, String);

/// alice's second laptop last read staging while carol was granted; alice (on her first)
/// then revoked carol and rotated, in two commits the laptop pulls together and reads.
fn revoked_carol_on_two_laptops() -> TwoLaptops {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    std::fs::write(p.root().join(".gitignore"), "secrets.sls\n/home/\n").unwrap();
    p.set("staging", "A", "alpha");
    p.vault(&[
        "grant",
        "staging",
        "carol",
        "--key",
        &key("carol_rsa.pub"),
        "--fingerprint",
        &fingerprint("carol_rsa.pub"),
    ])
    .success();
    commit_all(&p, "grant carol");
    let laptop = tempfile::tempdir().unwrap();
    let alice = fingerprint("alice_ed25519.pub");
    on_machine(
        &p,
        laptop.path(),
        "alice_ed25519",
        &["trust", "staging", "--fingerprint", &alice],
        None,
    )
    .success();
    on_machine(
        &p,
        laptop.path(),
        "alice_ed25519",
        &["get", "staging", "A"],
        None,
    )
    .success();
    let granted = std::fs::read(sidecar_path(p.root(), "staging")).unwrap();
    let (carol_line, alice_line) = (
        roster_line(&granted, "carol"),
        roster_line(&granted, "alice"),
    );
    p.vault(&["revoke", "staging", "carol"]).success();
    commit_all(&p, "revoke carol");
    let revoke_id = sha256(
        forge::manifest_of(&std::fs::read(sidecar_path(p.root(), "staging")).unwrap()).as_bytes(),
    );
    p.set("staging", "A", "rotated");
    commit_all(&p, "rotate");
    let out = on_machine(
        &p,
        laptop.path(),
        "alice_ed25519",
        &["get", "staging", "A"],
        None,
    );
    assert_eq!(out.0.stdout, b"rotated");
    ((p, laptop), carol_line, alice_line, revoke_id)
}

#[test]
fn attack_a_roster_rooted_only_by_a_copied_grant_line_is_refused_on_first_use() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    grant_mallory(&p, "staging");
    // alice's genuine grant of mallory, copied into a founding of mallory's own in which
    // mallory "grants" alice: every signature checks, but mallory is the root.
    let genuine = std::fs::read(sidecar_path(p.root(), "staging")).unwrap();
    let copied = roster_line(&genuine, "mallory");
    let dir = tempfile::tempdir().unwrap();
    let mkey = attacker_key(dir.path(), "mallory_ed25519");
    let id = std::fs::read_to_string(p.root().join("conf/vault-project")).unwrap();
    let id = id
        .lines()
        .find_map(|l| l.strip_prefix("id "))
        .unwrap()
        .to_string();
    let (afp, mfp, date) = (
        fingerprint("alice_ed25519.pub"),
        fingerprint("mallory_ed25519.pub"),
        "2026-11-30",
    );
    let g = |member: &str, fp: &str| {
        grant_line(&mkey, &format!("vault grant v2\nproject {id}\nenvironment staging\nmember {member}\nkey {fp}\ndate {date}\nserial 60\n"))
    };
    let ct = age_encrypt(
        &[
            pub_line("alice_ed25519.pub"),
            pub_line("mallory_ed25519.pub"),
        ],
        b"secrets:\n  A: evil\n",
    );
    let text = format!(
        "vault manifest v2\nproject {id}\nenvironment staging\nserial 60\nciphertext {}\nrecipient mallory {mfp} granted-by {mfp} {date} 60 {}\nrecipient alice {afp} granted-by {mfp} {date} 60 {}\n{copied}\nsecret A {date}\n",
        sha256(&ct),
        g("mallory", &mfp),
        g("alice", &afp)
    );
    let text = text.replacen(&format!("{copied}\n"), "", 1);
    std::fs::write(secrets_path(p.root(), "staging"), ct).unwrap();
    std::fs::write(
        sidecar_path(p.root(), "staging"),
        forge::sidecar(&mkey, &text),
    )
    .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let err = on_machine(
        &p,
        fresh.path(),
        "alice_ed25519",
        &["get", "staging", "A"],
        None,
    )
    .error();
    assert!(err.contains("staging was founded by mallory"), "{err}");
}

#[test]
fn attack_a_removed_identity_is_recognised_in_a_new_clone_of_the_same_repository() {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    std::fs::write(p.root().join(".gitignore"), "secrets.sls\n/home/\n").unwrap();
    p.set("staging", "A", "secret-value");
    commit_all(&p, "staging");
    // This machine has used the committed project since.
    p.vault(&["get", "staging", "A"]).success();
    git(p.root(), &["rm", "-q", "conf/vault-project"]);
    commit_all(&p, "no identity");
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}", p.root().display());
    git(elsewhere.path(), &["clone", "-q", &url, "clone"]);
    let clone = elsewhere.path().join("clone");
    let out = p
        .cmd(&["-C", clone.to_str().unwrap(), "get", "staging", "A"])
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains("project identity (conf/vault-project) is no longer"),
        "{err}"
    );
}

#[test]
fn a_merge_on_a_machine_new_to_the_environment_holds_the_ancestor_to_verified_keys() {
    let p = revoked_carol();
    // mallory commits, on a branch of its own, a founding of hers and a child of it.
    git(p.root(), &["checkout", "-q", "--orphan", "evil"]);
    for f in ["secrets.sls.age", "secrets.sls.age.sig"] {
        std::fs::remove_file(p.root().join("conf/pillar/staging").join(f)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    for value in ["one", "two"] {
        let c = p.on_machine(home.path(), "mallory_ed25519", &["set", "staging", "A"]);
        common::run_with_input(c, value.as_bytes()).success();
        commit_all(&p, value);
    }
    drop(dir);
    git(p.root(), &["checkout", "-q", "main"]);
    // alice on a new laptop (she trusts only her own key) cherry-picks the second.
    let laptop = tempfile::tempdir().unwrap();
    let out = common::git_command(p.root())
        .args(["cherry-pick", "evil"])
        .env("VAULT_IDENTITY", key("alice_ed25519"))
        .env("HOME", laptop.path())
        .env("XDG_STATE_HOME", laptop.path().join("state"))
        .output()
        .unwrap();
    let said = crate::git_workflow::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("founded by mallory"), "{said}");
    let _ = git(p.root(), &["cherry-pick", "--abort"]);
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"rotated");
}

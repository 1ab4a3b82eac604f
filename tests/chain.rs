//! The CI gate walks the whole history: every committed version of an environment's
//! sidecar is checked against its predecessor's roster, from the founding version on.
//! Each attack is mounted as an attacker with repository write access would: only public
//! keys, `age` and `ssh-keygen -Y sign`, then a commit. Beside each, the honest flow.

use crate::common::forge::{
    age_encrypt, attacker_key, grant_line, manifest_of, pub_line, sha256, sidecar as forge,
};
use crate::common::{self, fingerprint, git, key, Project};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sidecar(p: &Project, env: &str) -> PathBuf {
    p.root()
        .join("conf/pillar")
        .join(env)
        .join("secrets.sls.age.sig")
}

/// A project in git with staging written and committed by alice.
fn committed_project() -> Project {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    // The test's home (keys' state) lives in the folder; keep it out of git.
    let ignore = p.root().join(".gitignore");
    let mut ig = std::fs::read_to_string(&ignore).unwrap_or_default();
    ig.push_str("/home/\n");
    std::fs::write(&ignore, ig).unwrap();
    p.set("staging", "A", "secret-value");
    commit(&p, "staging by alice");
    p
}

fn commit(p: &Project, msg: &str) {
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", msg]);
}

fn check(p: &Project) -> (i32, String, String) {
    let out = p.bare(&["check"]).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The roster lines of staging as alice founded it (alice's own grant and bob's, both
/// signed by her): public, in the first commit, for an attacker to copy.
fn founding_roster(p: &Project) -> String {
    let first = git(p.root(), &["rev-list", "--max-parents=0", "HEAD"]);
    let sidecar = git(
        p.root(),
        &[
            "show",
            &format!("{}:conf/pillar/staging/secrets.sls.age.sig", first.trim()),
        ],
    );
    let lines: Vec<String> = manifest_of(sidecar.as_bytes())
        .lines()
        .filter(|l| l.starts_with("recipient "))
        .map(str::to_string)
        .collect();
    lines.join("\n")
}

/// The project identity, committed for anyone to copy into a forgery.
fn project_id(p: &Project) -> String {
    let text = std::fs::read_to_string(p.root().join("conf/vault-project")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("id "))
        .unwrap()
        .to_string()
}

/// mallory's own staging, founded by her: a valid age file to her, alice and bob, and a
/// manifest she signs as its founder, at `serial`. alice's genuine founding grants are
/// copied in, so nobody is pending and the file is in sync with its roster: only the
/// chain can tell.
fn mallory_founds(p: &Project, dir: &Path, serial: u64, value: &str) {
    let roster = founding_roster(p);
    let key = attacker_key(dir, "mallory_ed25519");
    let ct = age_encrypt(
        &[
            pub_line("mallory_ed25519.pub"),
            pub_line("alice_ed25519.pub"),
            pub_line("bob.agekey.pub"),
        ],
        format!("secrets:\n  A: {value}\n").as_bytes(),
    );
    let fp = fingerprint("mallory_ed25519.pub");
    let date = "2026-11-30";
    let project = project_id(p);
    let grant = grant_line(
        &key,
        &format!("vault grant v2\nproject {project}\nenvironment staging\nmember mallory\nkey {fp}\ndate {date}\nserial {serial}\n"),
    );
    let manifest = format!(
        "vault manifest v2\nproject {project}\nenvironment staging\nserial {serial}\nciphertext {}\n{roster}\nrecipient mallory {fp} granted-by {fp} {date} {serial} {grant}\nsecret A {date}\n",
        sha256(&ct)
    );
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    std::fs::write(p.secrets("staging"), ct).unwrap();
    std::fs::write(sidecar(p, "staging"), forge(&key, &manifest)).unwrap();
}

/// git as `who`, with this project's home: for the merge driver, which decrypts.
fn git_as(p: &Project, who: &str, args: &[&str]) -> std::process::Output {
    common::git_command(p.root())
        .args(args)
        .env("VAULT_IDENTITY", key(who))
        .env("HOME", &p.home)
        .env("XDG_STATE_HOME", p.home.join(".local/state"))
        .output()
        .unwrap()
}

/// `vault check` (with `extra` options) in a fresh clone of `p` with no state of its own.
fn check_clone(p: &Project, depth: Option<&str>, extra: &[&str]) -> std::process::Output {
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", p.root().display());
    let mut args = vec!["clone", "-q"];
    if let Some(d) = depth {
        args.extend(["--depth", d]);
    }
    args.extend([url.as_str(), "c"]);
    git(clone.path(), &args);
    Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(extra)
        .args(["-C", "c", "check"])
        .current_dir(clone.path())
        .env("HOME", &p.home)
        .env("XDG_STATE_HOME", clone.path().join("state"))
        .env_remove("VAULT_IDENTITY")
        .output()
        .unwrap()
}

/// The findings lines of a check's output (every line but the summary).
fn findings(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.starts_with("vault check: "))
        .collect()
}

#[test]
fn a_full_clone_with_grants_revokes_rekeys_and_a_merge_passes() {
    let p = committed_project();
    p.vault(&[
        "grant",
        "staging",
        "dave",
        "--key",
        &key("dave_ed25519_pass.pub"),
        "--fingerprint",
        &fingerprint("dave_ed25519_pass.pub"),
    ])
    .success();
    commit(&p, "grant dave");
    git(p.root(), &["checkout", "-qb", "feature"]);
    p.set("staging", "B", "on-feature");
    commit(&p, "B on feature");
    git(p.root(), &["checkout", "-q", "main"]);
    p.vault(&["revoke", "staging", "bob"]).success();
    p.set("staging", "A", "rotated");
    commit(&p, "revoke bob, rotate A");
    p.vault(&["install-git"]).success();
    commit(&p, "vault's git setup");
    let merge = git_as(
        &p,
        "alice_ed25519",
        &["merge", "-q", "--no-edit", "feature"],
    );
    assert!(
        merge.status.success(),
        "{}{}",
        String::from_utf8_lossy(&merge.stdout),
        String::from_utf8_lossy(&merge.stderr)
    );
    p.add_member("staging", "erin", "carol_rsa.pub");
    p.vault(&[
        "grant",
        "staging",
        "erin",
        "--fingerprint",
        &fingerprint("carol_rsa.pub"),
    ])
    .success();
    p.vault(&["rekey"]).success();
    commit(&p, "grant erin, rekey");
    // The merge joined two versions: it verifies against each.
    let parents = git(p.root(), &["log", "-1", "--format=%P", "HEAD~1"]);
    assert_eq!(parents.split_whitespace().count(), 2, "{parents}");

    let before = p.snapshot();
    let (code, out, _) = check(&p);
    assert_eq!((code, findings(&out)), (0, vec![]), "{out}");
    assert_eq!(p.snapshot(), before, "check changed files");

    let out = check_clone(&p, None, &["-v"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("0 finding(s)"), "{stdout}");
    // The founding is named: the history's trust is trust in it.
    assert!(
        stderr.contains(&format!(
            "staging: commit {} (staging by alice): founded by alice ({})",
            git(p.root(), &["log", "--format=%h", "--reverse", "main"])
                .lines()
                .next()
                .unwrap(),
            fingerprint("alice_ed25519.pub")
        )),
        "{stderr}"
    );
}

#[test]
fn a_project_not_in_git_is_checked_as_it_stands_and_says_so() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let (code, out, _) = check(&p);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "vault check: 2 environment(s), 1 secret(s), 0 finding(s); not in git: the files as they stand, no history checked\n"
    );
}

#[test]
fn attack_a_shallow_clone_is_refused_not_passed() {
    let p = committed_project();
    p.set("staging", "A", "v2");
    commit(&p, "v2");
    let out = check_clone(&p, Some("1"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = common::Run(out).error();
    assert!(err.contains("shallow"), "{err}");
    assert!(err.contains("fetch-depth: 0"), "{err}");
    assert!(err.contains("git fetch --unshallow"), "{err}");
}

#[test]
fn attack_a_forgery_behind_a_junk_version_is_found() {
    let p = committed_project();
    let dir = tempfile::tempdir().unwrap();
    // One commit of junk, so "the previous differing version" is not a roster at all...
    std::fs::write(sidecar(&p, "staging"), "not a sidecar\n").unwrap();
    commit(&p, "junk");
    // ...then mallory's own founding.
    mallory_founds(&p, dir.path(), 7, "evil");
    commit(&p, "forged");
    let before = p.snapshot();
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("staging: commit "), "{out}");
    assert!(
        out.contains("(junk): signature check failed: the signature file is malformed"),
        "{out}"
    );
    assert!(
        out.contains("(forged): signature check failed: signed by mallory"),
        "{out}"
    );
    assert_eq!(p.snapshot(), before, "check changed files");
}

#[test]
fn a_junk_version_is_a_finding_and_the_next_honest_write_verifies_against_the_one_before() {
    let p = committed_project();
    std::fs::write(sidecar(&p, "staging"), "not a sidecar\n").unwrap();
    commit(&p, "junk");
    // alice puts the last good sidecar back, and writes again.
    git(
        p.root(),
        &[
            "checkout",
            "-q",
            "HEAD~1",
            "--",
            "conf/pillar/staging/secrets.sls.age.sig",
        ],
    );
    p.set("staging", "B", "later");
    commit(&p, "alice again");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    let junk = git(p.root(), &["log", "-1", "--format=%h", "HEAD~1"]);
    assert_eq!(
        findings(&out),
        [format!(
            "staging: commit {} (junk): signature check failed: the signature file is malformed: it holds no SSH signature",
            junk.trim()
        )],
        "{out}"
    );
    // The working tree is alice's later write: it reads, and counts.
    assert!(out.contains(", 2 secret(s), 1 finding(s)"), "{out}");
}

#[test]
fn an_unsigned_version_after_the_founding_is_a_finding() {
    let p = committed_project();
    std::fs::remove_file(sidecar(&p, "staging")).unwrap();
    commit(&p, "drop the signature");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("(drop the signature): signature check failed: unsigned"),
        "{out}"
    );
}

#[test]
fn attack_an_environment_deleted_then_founded_anew_by_mallory() {
    let p = committed_project();
    std::fs::remove_file(p.secrets("staging")).unwrap();
    std::fs::remove_file(sidecar(&p, "staging")).unwrap();
    commit(&p, "drop staging");
    // The deletion itself is no finding: nothing is trusted that was not before.
    let (code, out, _) = check(&p);
    assert_eq!((code, findings(&out)), (0, vec![]), "{out}");
    // mallory founds it anew, at serial 1 as if it had never existed, then writes
    // again, so that her second version has her first to verify against.
    let dir = tempfile::tempdir().unwrap();
    mallory_founds(&p, dir.path(), 1, "evil");
    commit(&p, "new staging");
    mallory_founds(&p, dir.path(), 2, "evil-again");
    commit(&p, "new staging, again");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    for subject in ["new staging", "new staging, again"] {
        assert!(
            out.contains(&format!(
                "({subject}): signature check failed: signed by mallory"
            )),
            "{out}"
        );
    }
    assert!(!out.contains("(drop staging)"), "{out}");
}

#[test]
fn attack_a_merge_that_takes_a_pre_revoke_branch_as_it_is() {
    let p = committed_project();
    p.vault(&[
        "grant",
        "staging",
        "mallory",
        "--key",
        &key("mallory_ed25519.pub"),
        "--fingerprint",
        &fingerprint("mallory_ed25519.pub"),
    ])
    .success();
    commit(&p, "grant mallory");
    git(p.root(), &["branch", "side"]);
    p.vault(&["revoke", "staging", "mallory"]).success();
    commit(&p, "revoke mallory");
    // On the branch from before the revoke she is still a member, and writes.
    git(p.root(), &["checkout", "-q", "side"]);
    let mallory_home = tempfile::tempdir().unwrap();
    let as_mallory = |args: &[&str]| {
        let mut c = p.bare(args);
        c.env("VAULT_IDENTITY", key("mallory_ed25519"))
            .env("HOME", mallory_home.path())
            .env("XDG_STATE_HOME", mallory_home.path().join("state"));
        c
    };
    // As a member once, she had checked alice's fingerprint.
    let alice = fingerprint("alice_ed25519.pub");
    common::Run(
        as_mallory(&["trust", "staging", "--fingerprint", &alice])
            .output()
            .unwrap(),
    )
    .success();
    common::run_with_input(as_mallory(&["set", "staging", "A"]), b"evil").success();
    commit(&p, "mallory on side");
    // Then she merges it, taking her side's files as they are: git's default history
    // would follow only that side, and never show the revoke.
    git(p.root(), &["checkout", "-q", "main"]);
    git(
        p.root(),
        &[
            "merge",
            "-q",
            "--no-commit",
            "--no-ff",
            "-s",
            "ours",
            "side",
        ],
    );
    git(
        p.root(),
        &[
            "checkout",
            "-q",
            "side",
            "--",
            "conf/pillar/staging",
            "recipients/staging",
        ],
    );
    commit(&p, "merge side");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    let revoke = git(p.root(), &["log", "-1", "--format=%h", "HEAD^1"]);
    assert!(
        out.contains(&format!(
            "(merge side): signature check failed: lets in mallory ({}), whose key left the roster at serial 3",
            fingerprint("mallory_ed25519.pub"),
        )) && out.contains(&format!("(against the version at {})", revoke.trim())),
        "{out}"
    );
}

#[test]
fn a_past_finding_does_not_stop_the_pre_commit_hook_committing_the_fix() {
    let p = committed_project();
    p.vault(&["install-git"]).success();
    commit(&p, "vault's git setup");
    std::fs::write(sidecar(&p, "staging"), "not a sidecar\n").unwrap();
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "--no-verify", "-qm", "junk"]);
    git(
        p.root(),
        &[
            "checkout",
            "-q",
            "HEAD~1",
            "--",
            "conf/pillar/staging/secrets.sls.age.sig",
        ],
    );
    p.set("staging", "B", "later");
    git(p.root(), &["add", "-A"]);
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "alice again"]);
    assert!(
        c.status.success(),
        "{}{}",
        String::from_utf8_lossy(&c.stdout),
        String::from_utf8_lossy(&c.stderr)
    );
    // The gate still names the junk commit: it stays in the history.
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(junk): signature check failed"), "{out}");
}

#[test]
fn attack_a_forgery_followed_by_a_second_forged_commit_is_found() {
    let p = committed_project();
    let dir = tempfile::tempdir().unwrap();
    mallory_founds(&p, dir.path(), 7, "evil");
    commit(&p, "forged");
    // Her second commit verifies against her first: trust must not restart from it.
    mallory_founds(&p, dir.path(), 8, "evil-again");
    commit(&p, "forged again");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    // Each forged commit is a finding of its own.
    assert!(
        out.contains("(forged): signature check failed: signed by mallory"),
        "{out}"
    );
    assert!(
        out.contains("(forged again): signature check failed: signed by mallory"),
        "{out}"
    );
}

#[test]
fn attack_a_committed_rollback_is_found() {
    let p = committed_project();
    let v1 = (
        std::fs::read(p.secrets("staging")).unwrap(),
        std::fs::read(sidecar(&p, "staging")).unwrap(),
    );
    p.set("staging", "A", "v2");
    commit(&p, "v2");
    std::fs::write(p.secrets("staging"), &v1.0).unwrap();
    std::fs::write(sidecar(&p, "staging"), &v1.1).unwrap();
    commit(&p, "v1 again");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("serial goes back from 2 to 1"), "{out}");
}

#[test]
fn attack_a_revoked_member_copies_his_old_grant_back() {
    let p = committed_project();
    // mallory was a member once, with an ssh key that can sign.
    p.vault(&[
        "grant",
        "staging",
        "mallory",
        "--key",
        &key("mallory_ed25519.pub"),
        "--fingerprint",
        &fingerprint("mallory_ed25519.pub"),
    ])
    .success();
    commit(&p, "grant mallory");
    let granted = manifest_of(&std::fs::read(sidecar(&p, "staging")).unwrap());
    let old_line = granted
        .lines()
        .find(|l| l.starts_with("recipient mallory "))
        .unwrap()
        .to_string();
    p.vault(&["revoke", "staging", "mallory"]).success();
    commit(&p, "revoke mallory");
    // She puts her key back, and her old grant line in a manifest of her own.
    let dir = tempfile::tempdir().unwrap();
    let mkey = attacker_key(dir.path(), "mallory_ed25519");
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    let revoked = manifest_of(&std::fs::read(sidecar(&p, "staging")).unwrap());
    let ct = age_encrypt(
        &[
            pub_line("alice_ed25519.pub"),
            pub_line("bob.agekey.pub"),
            pub_line("mallory_ed25519.pub"),
        ],
        b"secrets:\n  A: evil\n",
    );
    let mut lines: Vec<String> = Vec::new();
    for l in revoked.lines() {
        if l.starts_with("serial ") {
            lines.push("serial 99".into());
        } else if l.starts_with("ciphertext ") {
            lines.push(format!("ciphertext {}", sha256(&ct)));
        } else if l.starts_with("exposed ") {
            continue;
        } else {
            lines.push(l.to_string());
        }
        if l.starts_with("ciphertext ") {
            lines.push(old_line.clone());
        }
    }
    let manifest = lines.join("\n") + "\n";
    std::fs::write(p.secrets("staging"), ct).unwrap();
    std::fs::write(sidecar(&p, "staging"), forge(&mkey, &manifest)).unwrap();
    commit(&p, "mallory is back");
    let (code, out, _) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("commit ") && out.contains("(mallory is back)"),
        "{out}"
    );
    // Her old grant is bound to the serial it was made at, before she left.
    assert!(
        out.contains("lets in mallory (") && out.contains("an old grant cannot bring a key back"),
        "{out}"
    );
}

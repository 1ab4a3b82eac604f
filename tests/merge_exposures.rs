//! Exposures through git merges, with real git and vault's merge driver: a value a
//! revoked member could read on either branch (or their common ancestor) stays marked
//! exposed in the merged manifest, listed by `vault status`, until it gets a value he
//! never could read; an honest merge with nobody revoked marks nothing.

use crate::common::{self, fingerprint, git, key, Project};
use crate::git_workflow::{git_as, repo, text};
use std::process::Command;

/// `vault revoke staging bob`, committed.
fn revoke_bob(p: &Project) {
    p.vault(&["revoke", "staging", "bob"]).success();
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "revoke bob"]);
}

/// `vault revoke staging bob`, committed, from another machine of alice's (one that has
/// not seen the other branch: on this one, the older version on main that still lets bob
/// in would be refused as a rollback).
fn revoke_bob_elsewhere(p: &Project) {
    let out = p
        .cmd(&["revoke", "staging", "bob"])
        .env("XDG_STATE_HOME", p.home.join("other-machine"))
        .output()
        .unwrap();
    common::Run(out).success();
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "revoke bob"]);
}

/// `p.set`, committed.
fn set_commit(p: &Project, name: &str, value: &str) {
    p.set("staging", name, value);
    git(p.root(), &["commit", "-qam", &format!("set {name}")]);
}

/// `git merge BRANCH` into the checked-out branch by alice, through the driver: clean.
fn merge(p: &Project, branch: &str) {
    let merge = git_as(p, "alice_ed25519", &["merge", "--no-edit", branch]);
    assert!(merge.status.success(), "{}", text(&merge));
    assert_eq!(git(p.root(), &["status", "--porcelain"]), "");
}

/// Staging's exposures as `vault status` lists them: `NAME to MEMBER`, in its order.
fn exposed(p: &Project) -> Vec<String> {
    let status = p.vault(&["status"]).success().stdout();
    status
        .lines()
        .filter_map(|l| l.strip_prefix("  exposed: "))
        .map(|l| {
            let (name, rest) = l.split_once(" (since ").unwrap();
            let member = rest
                .split_once(", when ")
                .and_then(|(_, m)| m.strip_suffix(" left)"))
                .unwrap();
            format!("{name} to {member}")
        })
        .collect()
}

/// What bob's key (still in his hands) decrypts from staging's file at `rev`.
fn bob_reads(p: &Project, rev: &str) -> String {
    let ct = common::git_command(p.root())
        .args([
            "show",
            &format!("{rev}:conf/pillar/staging/secrets.sls.age"),
        ])
        .output()
        .unwrap()
        .stdout;
    let mut c = Command::new("age");
    c.args(["-d", "-i", &key("bob.agekey")]);
    common::run_with_input(c, &ct).success().stdout()
}

#[test]
fn revoked_on_ours_a_value_changed_on_theirs_stays_exposed() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    set_commit(&p, "A", "feature-A");
    git(p.root(), &["checkout", "-q", "main"]);
    revoke_bob(&p);
    merge(&p, "feature");
    // He can read feature's A from that branch's commit: it is exposed, with B and C.
    assert!(bob_reads(&p, "feature").contains("feature-A"));
    assert_eq!(exposed(&p), ["A to bob", "B to bob", "C to bob"]);
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().stdout(),
        "feature-A"
    );
    p.vault(&["check"]).success();
    set_commit(&p, "A", "after the merge");
    assert_eq!(exposed(&p), ["B to bob", "C to bob"]);
}

#[test]
fn revoked_on_theirs_a_value_changed_on_ours_stays_exposed() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    revoke_bob_elsewhere(&p);
    git(p.root(), &["checkout", "-q", "main"]);
    set_commit(&p, "A", "main-A");
    merge(&p, "feature");
    assert!(bob_reads(&p, "HEAD~1").contains("main-A"));
    assert_eq!(exposed(&p), ["A to bob", "B to bob", "C to bob"]);
    // The merged file is encrypted to the roster without him.
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("bob.agekey"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "bob reads the merge");
    p.vault(&["check"]).success();
    set_commit(&p, "A", "after the merge");
    assert_eq!(exposed(&p), ["B to bob", "C to bob"]);
}

#[test]
fn exposures_present_before_the_branches_clear_only_where_a_side_changed_the_value() {
    let p = repo();
    revoke_bob(&p);
    git(p.root(), &["checkout", "-qb", "feature"]);
    set_commit(&p, "A", "feature-A");
    git(p.root(), &["checkout", "-q", "main"]);
    set_commit(&p, "B", "main-B");
    merge(&p, "feature");
    assert_eq!(exposed(&p), ["C to bob"]);
    set_commit(&p, "C", "after the merge");
    assert_eq!(exposed(&p), Vec::<String>::new());
    p.vault(&["check"]).success();
}

#[test]
fn a_value_changed_after_the_revoke_is_clear_but_the_other_sides_value_is_exposed() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    set_commit(&p, "C", "feature-C");
    git(p.root(), &["checkout", "-q", "main"]);
    revoke_bob(&p);
    // Changed after the revoke: bob never held these values.
    set_commit(&p, "A", "main-A");
    set_commit(&p, "B", "main-B");
    assert_eq!(exposed(&p), ["C to bob"]);
    merge(&p, "feature");
    // C's exposed value left main, but feature's, readable by him, came in by the merge.
    assert!(bob_reads(&p, "feature").contains("feature-C"));
    assert_eq!(
        p.vault(&["get", "staging", "C"]).success().stdout(),
        "feature-C"
    );
    assert_eq!(exposed(&p), ["C to bob"]);
    set_commit(&p, "C", "after the merge");
    assert_eq!(exposed(&p), Vec::<String>::new());
}

#[test]
fn an_honest_merge_with_a_grant_on_one_side_marks_nothing_exposed() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    p.vault(&[
        "grant",
        "staging",
        "mallory",
        "--fingerprint",
        &fingerprint("mallory_ed25519.pub"),
        "--key",
        &key("mallory_ed25519.pub"),
    ])
    .success();
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "grant mallory"]);
    git(p.root(), &["checkout", "-q", "main"]);
    set_commit(&p, "A", "main-A");
    merge(&p, "feature");
    assert_eq!(exposed(&p), Vec::<String>::new());
    let status = p.vault(&["status"]).success().stdout();
    assert!(!status.contains("exposed"), "{status}");
    p.vault(&["check"]).success();
}

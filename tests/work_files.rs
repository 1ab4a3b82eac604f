//! vault's own files in a pillar folder (`.vault-writer`, `.vault-journal`,
//! `.vault-*.tmp`) as an attacker plants them: committed, as links, or holding
//! something vault never wrote. None is followed, printed, or acted on.

use crate::common::{git, Project};
use std::os::unix::fs::symlink;

/// A project in git, with staging's secrets committed.
fn committed() -> Project {
    let p = Project::new();
    p.set("staging", "A", "honest");
    git(p.root(), &["init", "-q"]);
    git(p.root(), &["add", "-A", "."]);
    git(p.root(), &["commit", "-qm", "start"]);
    p
}

/// The attacker's commit: a journal and temporary files naming the real pair, holding
/// their own files, as if a write had been interrupted.
fn plant_journal(p: &Project) {
    let dir = p.root().join("conf/pillar/staging");
    std::fs::write(dir.join(".vault-x.tmp"), b"attacker ciphertext").unwrap();
    std::fs::write(dir.join(".vault-y.tmp"), b"attacker sidecar").unwrap();
    std::fs::write(
        dir.join(".vault-journal"),
        "vault journal v1\n.vault-x.tmp secrets.sls.age\n.vault-y.tmp secrets.sls.age.sig\n",
    )
    .unwrap();
    git(p.root(), &["add", "-f", "conf/pillar/staging"]);
    git(p.root(), &["commit", "-qm", "innocent-looking change"]);
}

#[test]
fn attack_a_committed_journal_renames_nothing() {
    let p = committed();
    plant_journal(&p);
    let before = p.snapshot();
    for args in [
        &["set", "staging", "B"][..],
        &["get", "staging", "A"],
        &["edit", "staging"],
    ] {
        let err = p.vault_in(args, b"new").error();
        assert!(
            err.contains("conf/pillar/staging/.vault-") && err.contains("carried by a commit"),
            "{args:?}: {err}"
        );
        assert_eq!(p.snapshot(), before, "{args:?} changed the project");
    }
    let check = p.vault(&["check"]);
    assert_eq!(check.code(), 1, "{}", check.stdout());
    assert!(
        check
            .stdout()
            .contains(".vault-journal: a vault work file is carried by a commit"),
        "{}",
        check.stdout()
    );
    let hook = p.vault(&["pre-commit"]);
    assert_ne!(hook.code(), 0);
    assert!(
        format!("{}{}", hook.stdout(), hook.stderr()).contains("carried by a commit"),
        "{}{}",
        hook.stdout(),
        hook.stderr()
    );
    // Once the commit's work files are removed, the honest flow is back.
    git(p.root(), &["rm", "-q", "conf/pillar/staging/.vault-*"]);
    git(p.root(), &["commit", "-qm", "remove the planted files"]);
    p.vault_in(&["set", "staging", "B"], b"new").success();
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"honest");
    assert_eq!(p.vault(&["get", "staging", "B"]).0.stdout, b"new");
    assert_eq!(p.vault(&["check"]).code(), 0);
}

#[test]
fn an_untracked_journal_of_a_killed_writer_is_still_finished() {
    // The honest case beside the attack: the same files, never committed, are what a
    // killed vault leaves, and the next one finishes the write.
    let p = committed();
    let dir = p.root().join("conf/pillar/staging");
    let ct = std::fs::read(p.secrets("staging")).unwrap();
    let sig = std::fs::read(dir.join("secrets.sls.age.sig")).unwrap();
    std::fs::write(dir.join(".vault-a1.tmp"), &ct).unwrap();
    std::fs::write(dir.join(".vault-b2.tmp"), &sig).unwrap();
    std::fs::write(
        dir.join(".vault-journal"),
        "vault journal v1\n.vault-a1.tmp secrets.sls.age\n.vault-b2.tmp secrets.sls.age.sig\n",
    )
    .unwrap();
    let out = p.vault(&["get", "staging", "A"]).success();
    assert_eq!(out.0.stdout, b"honest");
    assert!(
        out.stderr().contains("finished its write"),
        "{}",
        out.stderr()
    );
    assert!(!dir.join(".vault-journal").exists());
}

#[test]
fn attack_a_committed_writer_link_to_a_deploy_key() {
    let p = committed();
    // `../../../deploy.key` from conf/pillar/staging: a key kept at the checkout's top.
    let key = p.root().join("deploy.key");
    let secret = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAdeploy\n";
    std::fs::write(&key, secret).unwrap();
    let link = p.root().join("conf/pillar/staging/.vault-writer");
    symlink("../../../deploy.key", &link).unwrap();
    git(
        p.root(),
        &["add", "-f", "conf/pillar/staging/.vault-writer"],
    );
    git(p.root(), &["commit", "-qm", "add writer"]);
    // Untracked, the same link: refused as a link (tracked: refused as committed).
    for tracked in [true, false] {
        if !tracked {
            git(
                p.root(),
                &["rm", "-q", "--cached", "conf/pillar/staging/.vault-writer"],
            );
            git(p.root(), &["commit", "-qm", "untrack"]);
        }
        let run = p.vault_in(&["set", "staging", "B"], b"new");
        let all = format!("{}{}", run.stdout(), run.stderr());
        let err = run.error();
        assert!(
            err.contains(".vault-writer")
                && (err.contains("carried by a commit") || err.contains("symbolic link")),
            "{err}"
        );
        assert!(
            !all.contains("AAAAdeploy") && !all.contains("PRIVATE KEY"),
            "{all}"
        );
        assert_eq!(std::fs::read(&key).unwrap(), secret);
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }
    // Removed, the honest flow works, and the key is as it was.
    std::fs::remove_file(&link).unwrap();
    p.vault_in(&["set", "staging", "B"], b"new").success();
    assert_eq!(std::fs::read(&key).unwrap(), secret);
    assert!(!link.exists());
}

#[test]
fn a_writer_file_holding_other_content_is_refused_unshown() {
    let p = Project::new();
    p.set("staging", "A", "honest");
    let owner = p.root().join("conf/pillar/staging/.vault-writer");
    std::fs::write(&owner, "hunter2-not-a-pid\n").unwrap();
    let run = p.vault_in(&["set", "staging", "B"], b"new");
    let all = format!("{}{}", run.stdout(), run.stderr());
    let err = run.error();
    assert!(err.contains("not a writer file vault wrote"), "{err}");
    assert!(!all.contains("hunter2"), "{all}");
    // A pid, as a killed vault leaves it: reported and taken over.
    std::fs::write(&owner, "4242\n").unwrap();
    let out = p.vault_in(&["set", "staging", "B"], b"new").success();
    assert!(out.stderr().contains("pid 4242"), "{}", out.stderr());
    assert!(!owner.exists());
}

//! The git workflow: key-level `vault diff`, `git diff` through the textconv driver,
//! the merge driver, and the pre-commit hook, all with real git.

use crate::common::{self, fingerprint, git, key, Project};
use std::process::Output;

/// git in the project as `who` (their key decrypts and signs in the drivers).
pub fn git_as(p: &Project, who: &str, args: &[&str]) -> Output {
    common::git_command(p.root())
        .args(args)
        .env("VAULT_IDENTITY", key(who))
        .env("HOME", &p.home)
        .env("XDG_STATE_HOME", p.home.join(".local/state"))
        .env("GIT_PAGER", "cat")
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A committed project: staging holds A, B and a multi-line C, with vault's git setup.
pub fn repo() -> Project {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    // The test's home (keys' state, the tag key) lives in the folder; keep it out of git.
    let ignore = p.root().join(".gitignore");
    let mut ig = std::fs::read_to_string(&ignore).unwrap_or_default();
    ig.push_str("/home/\n");
    std::fs::write(&ignore, ig).unwrap();
    p.set("staging", "A", "alpha-old");
    p.set("staging", "B", "bravo");
    p.set("staging", "C", "line one\nline two");
    p.vault(&["install-git"]).success();
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "staging secrets"]);
    p
}

/// Lets mallory (an ed25519 key) write staging, as a second person on the team.
fn grant_mallory(p: &Project) {
    let fp = fingerprint("mallory_ed25519.pub");
    let key_file = key("mallory_ed25519.pub");
    p.vault(&[
        "grant",
        "staging",
        "mallory",
        "--fingerprint",
        &fp,
        "--key",
        &key_file,
    ])
    .success();
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "grant mallory"]);
}

#[test]
fn vault_diff_names_what_changed_and_shows_values_only_when_asked() {
    let p = repo();
    p.set("staging", "A", "alpha-new");
    p.set("staging", "D", "delta");
    p.vault(&["unset", "staging", "B"]).success();
    let out = p.vault(&["diff", "staging"]).success().stdout();
    assert!(
        out.starts_with("--- staging (HEAD)\n+++ staging (working tree)\n"),
        "{out}"
    );
    assert!(out.contains("\n~secret A\n"), "{out}");
    assert!(out.contains("\n+secret D\n"), "{out}");
    assert!(out.contains("\n-secret B\n"), "{out}");
    assert!(!out.contains("secret C"), "C did not change: {out}");
    assert!(out.contains("signer: alice (SHA256:"), "{out}");
    for v in ["alpha", "delta", "bravo"] {
        assert!(!out.contains(v), "a value shown without --values: {out}");
    }
    let out = p.vault(&["diff", "staging", "--values"]).success().stdout();
    assert!(
        out.contains("~secret A \"alpha-old\" -> \"alpha-new\"\n"),
        "{out}"
    );
    assert!(out.contains("+secret D \"delta\"\n"), "{out}");
    assert!(out.contains("-secret B \"bravo\"\n"), "{out}");

    // Two revisions; nothing changed between a revision and itself.
    git(p.root(), &["commit", "-qam", "change"]);
    let out = p
        .vault(&["diff", "staging", "HEAD~1", "HEAD"])
        .success()
        .stdout();
    assert!(
        out.contains("~secret A\n") && out.contains("+secret D\n"),
        "{out}"
    );
    assert_eq!(
        p.vault(&["diff", "staging", "HEAD", "HEAD"])
            .success()
            .stdout(),
        ""
    );
    assert_eq!(p.vault(&["diff", "staging"]).success().stdout(), "");
    let err = p.vault(&["diff", "staging", "no-such-rev"]).error();
    assert!(err.contains("'no-such-rev' is not a commit"), "{err}");
    // A misspelt environment is an error, not an empty diff.
    let err = p.vault(&["diff", "stagign", "HEAD~1", "HEAD"]).error();
    assert!(
        err.contains("no environment 'stagign' in HEAD~1 or HEAD"),
        "{err}"
    );
    let err = p.vault(&["diff", "stagign"]).error();
    assert!(err.contains("stagign"), "{err}");
}

#[test]
fn install_git_outside_a_repository_is_one_error_and_writes_nothing() {
    let p = Project::new();
    let before = p.snapshot();
    let err = p.vault(&["install-git"]).error();
    assert!(err.contains("is not in a git repository"), "{err}");
    assert_eq!(p.snapshot(), before);
    let err = p.vault(&["diff", "staging"]).error();
    assert!(err.contains("not in a git repository"), "{err}");
}

#[test]
fn a_member_who_cannot_decrypt_still_sees_recipient_and_signer_changes() {
    let p = repo();
    grant_mallory(&p);
    // mallory changes a value and signs; carol (production only) looks at the history.
    let f = p.root().join(".v");
    std::fs::write(&f, "changed by mallory").unwrap();
    p.cmd(&["set", "staging", "A", "--from-file", f.to_str().unwrap()])
        .env("VAULT_IDENTITY", key("mallory_ed25519"))
        .status()
        .unwrap();
    std::fs::remove_file(&f).unwrap();
    git(p.root(), &["commit", "-qam", "mallory sets A"]);
    let out = p
        .cmd(&["diff", "staging", "HEAD~2", "HEAD"])
        .env("VAULT_IDENTITY", key("carol_rsa"))
        .output()
        .unwrap();
    let out = common::Run(out).success().stdout();
    let mallory = fingerprint("mallory_ed25519.pub");
    assert!(
        out.contains(&format!("+recipient mallory {mallory} (granted by alice)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("-> mallory ({mallory}), serial")),
        "{out}"
    );
    assert!(out.contains("values not read here"), "{out}");
    assert!(!out.contains("changed by mallory"), "{out}");
}

#[test]
fn git_diff_and_log_show_keys_with_values_hidden() {
    let p = repo();
    let attrs = std::fs::read_to_string(p.root().join(".gitattributes")).unwrap();
    assert!(
        attrs.contains("*.sls.age diff=vault merge=vault"),
        "{attrs}"
    );
    // install-git twice changes nothing more.
    p.vault(&["install-git"]).success();
    assert_eq!(
        std::fs::read_to_string(p.root().join(".gitattributes")).unwrap(),
        attrs
    );

    p.set("staging", "A", "alpha-new");
    let diff = text(&git_as(&p, "alice_ed25519", &["diff"]));
    assert!(diff.contains("vault secrets (values hidden"), "{diff}");
    let a_lines: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with("-A ") || l.starts_with("+A "))
        .collect();
    assert_eq!(a_lines.len(), 2, "A changed, with a different tag: {diff}");
    assert!(
        !diff
            .lines()
            .any(|l| l.starts_with("-B ") || l.starts_with("+B ")),
        "{diff}"
    );
    assert!(diff.contains("-vault manifest: staging serial 3"), "{diff}");
    assert!(diff.contains("+vault manifest: staging serial 4"), "{diff}");
    for v in ["alpha", "bravo", "line one"] {
        assert!(!diff.contains(v), "a value in git diff: {diff}");
    }
    git(p.root(), &["commit", "-qam", "new A"]);
    let log = text(&git_as(&p, "alice_ed25519", &["log", "-p"]));
    assert!(log.contains("+A ") && log.contains("+C "), "{log}");
    assert!(
        !log.contains("alpha") && !log.contains("-----BEGIN AGE"),
        "{log}"
    );

    // Someone who cannot decrypt sees the signed manifest: signer, recipients, names.
    let log = text(&git_as(&p, "carol_rsa", &["log", "-p"]));
    assert!(log.contains("+vault secrets: not readable here"), "{log}");
    assert!(log.contains("+vault manifest: staging serial 4"), "{log}");
    assert!(log.contains("+signed by alice SHA256:"), "{log}");
    assert!(log.contains("+recipient bob SHA256:"), "{log}");
    assert!(log.contains("+secret A changed"), "{log}");
    assert!(!log.contains("alpha"), "{log}");
}

#[test]
fn merging_different_secrets_is_clean_re_encrypted_and_signed_by_the_merger() {
    let p = repo();
    grant_mallory(&p);
    git(p.root(), &["checkout", "-qb", "feature"]);
    p.set("staging", "A", "from feature");
    git(p.root(), &["commit", "-qam", "feature: A"]);
    git(p.root(), &["checkout", "-q", "main"]);
    let f = p.root().join(".v");
    std::fs::write(&f, "from main\nby mallory").unwrap();
    let set = p
        .cmd(&["set", "staging", "B", "--from-file", f.to_str().unwrap()])
        .env("VAULT_IDENTITY", key("mallory_ed25519"))
        .output()
        .unwrap();
    common::Run(set).success();
    std::fs::remove_file(&f).unwrap();
    git(p.root(), &["commit", "-qam", "main: B"]);

    let merge = git_as(&p, "alice_ed25519", &["merge", "--no-edit", "feature"]);
    let out = text(&merge);
    assert!(merge.status.success(), "{out}");
    assert!(
        out.contains("staging: merged by key (from the other branch: A)"),
        "{out}"
    );
    assert!(
        !out.contains("from feature") && !out.contains("by mallory"),
        "{out}"
    );
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().stdout(),
        "from feature"
    );
    assert_eq!(
        p.vault(&["get", "staging", "B"]).success().stdout(),
        "from main\nby mallory"
    );
    assert_eq!(
        p.vault(&["get", "staging", "C"]).success().stdout(),
        "line one\nline two"
    );
    let status = p.vault(&["status"]).success().stdout();
    assert!(status.contains("signed: by alice"), "{status}");
    assert!(!status.contains("exposed"), "nobody left: {status}");
    // The merge is committed, verifies for everyone, and passes the CI gate.
    assert_eq!(git(p.root(), &["status", "--porcelain"]), "");
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("bob.agekey"))
        .output()
        .unwrap();
    assert_eq!(common::Run(out).success().stdout(), "from feature");
    p.vault(&["check"]).success();
    let left: Vec<_> = std::fs::read_dir(p.root().join(".git/vault-merge"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "hand-over files left: {left:?}");
}

/// git has so far merged the secrets file before its signature; the driver does not rely
/// on it: run as git would, signature first, the pair comes out whole.
#[test]
fn the_merge_driver_works_in_either_order() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    p.set("staging", "A", "from feature");
    git(p.root(), &["commit", "-qam", "feature: A"]);
    git(p.root(), &["checkout", "-q", "main"]);
    p.set("staging", "B", "from main");
    git(p.root(), &["commit", "-qam", "main: B"]);
    let base = git(p.root(), &["merge-base", "main", "feature"]);
    let scratch = tempfile::tempdir().unwrap();
    let rel = "conf/pillar/staging/secrets.sls.age";
    let mut results = Vec::new();
    for path in [format!("{rel}.sig"), rel.to_string()] {
        let version = |rev: &str, tag: &str| {
            let f = scratch
                .path()
                .join(format!("{tag}-{}", path.replace('/', "_")));
            let out = common::git_command(p.root())
                .args(["show", &format!("{}:{path}", rev.trim())])
                .output()
                .unwrap();
            std::fs::write(&f, out.stdout).unwrap();
            f
        };
        let (o, a, b) = (
            version(&base, "o"),
            version("main", "a"),
            version("feature", "b"),
        );
        let out = p
            .cmd(&[
                "merge-file",
                o.to_str().unwrap(),
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                &path,
            ])
            .output()
            .unwrap();
        common::Run(out).success();
        results.push((path.clone(), std::fs::read(&a).unwrap()));
    }
    for (path, bytes) in results {
        std::fs::write(p.root().join(path), bytes).unwrap();
    }
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().stdout(),
        "from feature"
    );
    assert_eq!(
        p.vault(&["get", "staging", "B"]).success().stdout(),
        "from main"
    );
}

#[test]
fn the_same_secret_changed_on_both_sides_is_a_conflict_naming_it() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    p.set("staging", "A", "feature value");
    git(p.root(), &["commit", "-qam", "feature: A"]);
    git(p.root(), &["checkout", "-q", "main"]);
    p.set("staging", "A", "main value");
    git(p.root(), &["commit", "-qam", "main: A"]);
    let ours = (
        std::fs::read(p.secrets("staging")).unwrap(),
        std::fs::read(p.root().join("conf/pillar/staging/secrets.sls.age.sig")).unwrap(),
    );

    let merge = git_as(&p, "alice_ed25519", &["merge", "--no-edit", "feature"]);
    let out = text(&merge);
    assert!(!merge.status.success(), "{out}");
    assert!(
        out.contains("vault: error: staging: both branches changed A differently"),
        "{out}"
    );
    assert!(
        !out.contains("feature value") && !out.contains("main value"),
        "{out}"
    );
    // Nothing half-written: ours, whole, and git's conflict state.
    assert_eq!(std::fs::read(p.secrets("staging")).unwrap(), ours.0);
    assert_eq!(
        std::fs::read(p.root().join("conf/pillar/staging/secrets.sls.age.sig")).unwrap(),
        ours.1
    );
    let status = git(p.root(), &["status", "--porcelain"]);
    assert!(
        status.contains("UU conf/pillar/staging/secrets.sls.age"),
        "{status}"
    );
    // Both values are one command away; the merge is settled with vault and committed.
    let both = p
        .vault(&["diff", "staging", "HEAD", "MERGE_HEAD", "--values"])
        .success()
        .stdout();
    assert!(
        both.contains("~secret A \"main value\" -> \"feature value\""),
        "{both}"
    );
    p.set("staging", "A", "settled");
    git(p.root(), &["add", "conf/pillar/staging"]);
    git(p.root(), &["commit", "-qm", "merge feature"]);
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().stdout(),
        "settled"
    );
    p.vault(&["check"]).success();
}

#[test]
fn a_merger_who_cannot_decrypt_gets_a_clear_conflict() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "feature"]);
    p.set("staging", "A", "feature value");
    git(p.root(), &["commit", "-qam", "feature: A"]);
    git(p.root(), &["checkout", "-q", "main"]);
    p.set("staging", "B", "main value");
    git(p.root(), &["commit", "-qam", "main: B"]);
    let ours = std::fs::read(p.secrets("staging")).unwrap();
    let merge = git_as(&p, "carol_rsa", &["merge", "--no-edit", "feature"]);
    let out = text(&merge);
    assert!(!merge.status.success(), "{out}");
    assert!(
        out.contains("vault: error: staging: cannot merge without reading it"),
        "{out}"
    );
    assert!(
        out.contains("hint: a member who can read it runs the merge"),
        "{out}"
    );
    assert_eq!(std::fs::read(p.secrets("staging")).unwrap(), ours);
    let status = git(p.root(), &["status", "--porcelain"]);
    assert!(
        status.contains("UU conf/pillar/staging/secrets.sls.age"),
        "{status}"
    );
    // A member can redo it.
    git(p.root(), &["merge", "--abort"]);
    let merge = git_as(&p, "alice_ed25519", &["merge", "--no-edit", "feature"]);
    assert!(merge.status.success(), "{}", text(&merge));
}

#[test]
fn a_branch_that_refounds_the_environment_is_not_merged() {
    let p = repo();
    git(p.root(), &["checkout", "-qb", "evil"]);
    // mallory replaces the folder with her key alone and starts staging anew.
    for m in ["alice", "bob"] {
        std::fs::remove_file(p.root().join(format!("recipients/staging/{m}.pub"))).unwrap();
    }
    std::fs::remove_file(p.secrets("staging")).unwrap();
    std::fs::remove_file(p.root().join("conf/pillar/staging/secrets.sls.age.sig")).unwrap();
    p.add_member("staging", "alice", "mallory_ed25519.pub");
    let f = p.root().join(".v");
    std::fs::write(&f, "evil").unwrap();
    let out = p
        .bare(&[
            "--insecure-skip-verify",
            "set",
            "staging",
            "A",
            "--from-file",
            f.to_str().unwrap(),
        ])
        .env("VAULT_IDENTITY", key("mallory_ed25519"))
        .env("XDG_STATE_HOME", p.home.join("mallory-state"))
        .output()
        .unwrap();
    common::Run(out).success();
    std::fs::remove_file(&f).unwrap();
    git(p.root(), &["add", "-A"]);
    // An attacker skips the hook.
    git(p.root(), &["commit", "--no-verify", "-qm", "evil"]);
    git(p.root(), &["checkout", "-q", "main"]);
    p.set("staging", "B", "main value");
    git(p.root(), &["commit", "-qam", "main: B"]);
    let merge = git_as(&p, "alice_ed25519", &["merge", "--no-edit", "evil"]);
    let out = text(&merge);
    assert!(!merge.status.success(), "{out}");
    assert!(out.contains("the secrets of theirs are refused"), "{out}");
}

#[test]
fn the_pre_commit_hook_refuses_plaintext_and_what_check_rejects() {
    let p = repo();
    let hook = p.root().join(".git/hooks/pre-commit");
    assert!(std::fs::read_to_string(&hook)
        .unwrap()
        .contains("pre-commit"));

    // A plaintext secrets file, forced past .gitignore.
    std::fs::write(
        p.root().join("conf/pillar/staging/secrets.sls"),
        "secrets:\n  A: x\n",
    )
    .unwrap();
    git(p.root(), &["add", "-f", "conf/pillar/staging/secrets.sls"]);
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "oops"]);
    let out = text(&c);
    assert!(!c.status.success(), "{out}");
    assert!(out.contains("vault: pre-commit: conf/pillar/staging/secrets.sls: a plaintext secrets file is staged"), "{out}");
    git(
        p.root(),
        &["rm", "-q", "--cached", "conf/pillar/staging/secrets.sls"],
    );
    std::fs::remove_file(p.root().join("conf/pillar/staging/secrets.sls")).unwrap();

    // A pillar file with a password in the clear.
    std::fs::write(
        p.root().join("conf/pillar/staging/env.sls"),
        "db_password: hunter2\n",
    )
    .unwrap();
    git(p.root(), &["add", "conf/pillar/staging/env.sls"]);
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "oops"]);
    let out = text(&c);
    assert!(!c.status.success(), "{out}");
    assert!(
        out.contains("env.sls: looks like unencrypted secrets (a PASSWORD value, line 1)"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
    git(
        p.root(),
        &[
            "checkout",
            "-q",
            "HEAD",
            "--",
            "conf/pillar/staging/env.sls",
        ],
    );

    // A work file left by a killed writer.
    std::fs::write(p.root().join("conf/pillar/staging/.vault-writer"), "4242\n").unwrap();
    git(
        p.root(),
        &["add", "-f", "conf/pillar/staging/.vault-writer"],
    );
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "oops"]);
    let out = text(&c);
    assert!(!c.status.success(), "{out}");
    assert!(out.contains("conf/pillar/staging/.vault-writer: a vault work file of an interrupted write is staged"), "{out}");
    git(
        p.root(),
        &["rm", "-q", "--cached", "conf/pillar/staging/.vault-writer"],
    );
    std::fs::remove_file(p.root().join("conf/pillar/staging/.vault-writer")).unwrap();

    // The ciphertext staged without its signature.
    p.set("staging", "A", "new");
    git(p.root(), &["add", "conf/pillar/staging/secrets.sls.age"]);
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "half"]);
    let out = text(&c);
    assert!(!c.status.success(), "{out}");
    assert!(
        out.contains(
            "its staged signature (conf/pillar/staging/secrets.sls.age.sig) is not for it"
        ),
        "{out}"
    );

    // A key added to the folder without a grant: what `vault check` rejects.
    git(p.root(), &["add", "conf/pillar/staging"]);
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    git(p.root(), &["add", "recipients"]);
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "sneak"]);
    let out = text(&c);
    assert!(!c.status.success(), "{out}");
    assert!(out.contains("vault: pre-commit: vault check: "), "{out}");
    assert!(out.contains("mallory"), "{out}");
    git(
        p.root(),
        &["rm", "-q", "--cached", "recipients/staging/mallory.pub"],
    );
    std::fs::remove_file(p.root().join("recipients/staging/mallory.pub")).unwrap();

    // And a proper change goes through.
    let c = git_as(&p, "alice_ed25519", &["commit", "-qm", "good"]);
    assert!(c.status.success(), "{}", text(&c));
}

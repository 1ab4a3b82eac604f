//! What `git log -p` and `git show` display through vault's textconv driver when the
//! history holds a forgery: a repository writer who is not a member commits an age file
//! of their own (only public keys needed) with a sidecar signed by their own key
//! (`ssh-keygen -Y sign`), under a member's name. It shows as NOT VERIFIED, with no value
//! and no tag; the honest commits beside it still show their secrets and signer.

use crate::common::{self, fingerprint, git, key, Project};
use crate::git_workflow::{git_as, repo, text};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `ssh-keygen -Y sign -n NAMESPACE` of `message` with fixture key `who`: the armored
/// signature.
fn ssh_sign(who: &str, namespace: &str, message: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    // ssh-keygen refuses a private key others can read; the fixture is copied 0600.
    let key_file = dir.path().join("key");
    std::fs::copy(key(who), &key_file).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, message).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(&key_file)
        .arg(&msg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join("msg.sig")).unwrap()
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// mallory, with write access only: staging's secrets replaced by her own age file to
/// alice's public key, `alice.pub` replaced by her key, and a sidecar signed by her
/// whose roster names her key "alice", founded by itself. Committed past the hook.
fn forge_as_mallory(p: &Project, value: &str) {
    let alice = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let mut c = Command::new("age");
    c.args(["-a", "-r", alice.trim(), "-o"])
        .arg(p.secrets("staging"));
    common::run_with_input(c, format!("secrets:\n  A: {value}\n").as_bytes()).success();
    std::fs::copy(
        key("mallory_ed25519.pub"),
        p.root().join("recipients/staging/alice.pub"),
    )
    .unwrap();
    let fp = fingerprint("mallory_ed25519.pub");
    let date = "2026-01-01";
    let grant_msg =
        format!("vault grant v1\nenvironment staging\nmember alice\nkey {fp}\ndate {date}\n");
    let grant: String = ssh_sign("mallory_ed25519", "vault-grant", &grant_msg)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let manifest = format!(
        "vault manifest v1\nenvironment staging\nserial 99\nciphertext sha256:{}\nrecipient alice {fp} granted-by {fp} {date} {grant}\nsecret A {date}\n",
        sha256_hex(&p.secrets("staging"))
    );
    let sig = ssh_sign("mallory_ed25519", "vault", &manifest);
    std::fs::write(
        p.root().join("conf/pillar/staging/secrets.sls.age.sig"),
        format!("{manifest}{sig}"),
    )
    .unwrap();
    git(p.root(), &["add", "-A"]);
    git(
        p.root(),
        &["commit", "--no-verify", "-qm", "forged by mallory"],
    );
}

/// The part of `git log -p` output about `commit`.
fn section<'a>(log: &'a str, commit: &str) -> &'a str {
    let start = log
        .find(&format!("commit {commit}"))
        .unwrap_or_else(|| panic!("{commit} not in the log: {log}"));
    let rest = &log[start + 7..];
    let end = rest.find("\ncommit ").map_or(log.len(), |e| start + 7 + e);
    &log[start..end]
}

/// The lines a commit adds, without git's leading `+`.
fn added(section: &str) -> Vec<&str> {
    section
        .lines()
        .filter(|l| !l.starts_with("+++"))
        .filter_map(|l| l.strip_prefix('+'))
        .collect()
}

#[test]
fn attack_a_forged_commit_shows_not_verified_in_git_log_and_show() {
    let p = repo();
    p.set("staging", "A", "alpha-honest");
    git(p.root(), &["commit", "-qam", "honest: new A"]);
    let honest = git(p.root(), &["rev-parse", "HEAD"]).trim().to_string();
    forge_as_mallory(&p, "forged-value");
    let forged = git(p.root(), &["rev-parse", "HEAD"]).trim().to_string();
    let mallory = fingerprint("mallory_ed25519.pub");

    let log = text(&git_as(&p, "alice_ed25519", &["log", "-p"]));
    assert!(!log.contains("forged-value"), "{log}");
    let bad = added(section(&log, &forged));
    assert!(
        bad.iter().any(|l| l
            .starts_with("vault secrets: NOT VERIFIED (its signature is refused: signed by ")
            && l.contains("whose grant does not trace back to a member this machine trusts")),
        "{bad:?}"
    );
    assert!(
        bad.contains(&format!("signed by: NOT VERIFIED (signed by {mallory}, whose grant does not trace back to a member this machine trusts)").as_str()),
        "{bad:?}"
    );
    assert!(
        !bad.iter().any(|l| l.contains("signed by alice")),
        "{bad:?}"
    );
    assert!(
        !bad.iter()
            .any(|l| l.starts_with("A ") || l.contains("values hidden")),
        "no name or tag read from the forgery: {bad:?}"
    );
    // The honest commits of the same log still show their secrets, tags and signer.
    let good = added(section(&log, &honest));
    assert!(good.iter().any(|l| l.starts_with("A ")), "{good:?}");
    assert!(
        good.iter()
            .any(|l| l.starts_with("signed by alice SHA256:") && l.ends_with("serial 4")),
        "{good:?}"
    );
    let first = git(p.root(), &["rev-list", "--max-parents=0", "HEAD"]);
    let founding = added(section(&log, first.trim()));
    assert!(
        founding.iter().any(|l| l.starts_with("C "))
            && founding
                .contains(&"vault secrets (values hidden; a tag changes when its value does)"),
        "{founding:?}"
    );

    // `git show` of the forged commit, and of the forged blob alone.
    let show = text(&git_as(&p, "alice_ed25519", &["show", "HEAD"]));
    assert!(!show.contains("forged-value"), "{show}");
    assert!(
        !added(&show).iter().any(|l| l.contains("signed by alice")),
        "{show}"
    );
    let blob = text(&git_as(
        &p,
        "alice_ed25519",
        &[
            "show",
            "--textconv",
            "HEAD:conf/pillar/staging/secrets.sls.age",
        ],
    ));
    assert!(blob.starts_with("vault secrets: NOT VERIFIED ("), "{blob}");
    assert!(
        !blob.contains("forged-value") && !blob.contains("\nA "),
        "{blob}"
    );
}

#[test]
fn attack_a_replaced_secrets_file_under_an_honest_sidecar_shows_not_verified() {
    let p = repo();
    // Only the age file replaced: the committed sidecar signs another ciphertext.
    let alice = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let mut c = Command::new("age");
    c.args(["-a", "-r", alice.trim(), "-o"])
        .arg(p.secrets("staging"));
    common::run_with_input(c, b"secrets:\n  A: planted-value\n").success();
    git(p.root(), &["commit", "--no-verify", "-qam", "planted"]);
    let blob = text(&git_as(
        &p,
        "alice_ed25519",
        &[
            "show",
            "--textconv",
            "HEAD:conf/pillar/staging/secrets.sls.age",
        ],
    ));
    assert_eq!(
        blob.lines().next(),
        Some("vault secrets: NOT VERIFIED (no signature in the working tree, the index or the history signs this version); not decrypted"),
        "{blob}"
    );
    assert!(!blob.contains("planted-value"), "{blob}");
    // The version before it, honestly signed, still shows.
    let before = text(&git_as(
        &p,
        "alice_ed25519",
        &[
            "show",
            "--textconv",
            "HEAD~1:conf/pillar/staging/secrets.sls.age",
        ],
    ));
    assert!(
        before.starts_with("vault secrets (values hidden"),
        "{before}"
    );
    assert!(before.contains("\nsigned by alice SHA256:"), "{before}");
}

#[test]
fn a_machine_that_has_verified_nothing_shows_nothing_as_verified() {
    let p = repo();
    // A fresh clone's machine: no remembered roster, so nothing is trusted on sight.
    let out = common::git_command(p.root())
        .args(["log", "-p"])
        .env("VAULT_IDENTITY", key("alice_ed25519"))
        .env("HOME", &p.home)
        .env("XDG_STATE_HOME", p.home.join("fresh-state"))
        .env("GIT_PAGER", "cat")
        .output()
        .unwrap();
    let log = text(&out);
    assert!(
        log.contains("+vault secrets: NOT VERIFIED (its signature is refused: this machine has not verified staging yet: read it once with `vault show staging`)"),
        "{log}"
    );
    assert!(!log.contains("+signed by alice"), "{log}");
    assert!(!log.contains("alpha"), "{log}");
}

//! Trust and key lifecycle: onboarding with fingerprints, signed writes checked before
//! anything is decrypted, revoke with exposure tracking, `vault check`, and the attacks
//! that must be refused.

use crate::common::{self, fingerprint, git, key, Project};
use std::path::Path;
use std::process::Command;

fn sidecar(p: &Project, env: &str) -> std::path::PathBuf {
    p.root()
        .join("conf/pillar")
        .join(env)
        .join("secrets.sls.age.sig")
}

/// Both files of an environment, to copy around as an attacker would.
fn files(p: &Project, env: &str) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(p.secrets(env)).unwrap(),
        std::fs::read(sidecar(p, env)).unwrap(),
    )
}

fn put(p: &Project, env: &str, (ct, sig): &(Vec<u8>, Vec<u8>)) {
    std::fs::write(p.secrets(env), ct).unwrap();
    std::fs::write(sidecar(p, env), sig).unwrap();
}

/// `vault get ENV NAME` as `who`; its one error line (it must fail).
fn refused(p: &Project, who: &str, env: &str) -> String {
    let out = p
        .cmd(&["get", env, "A"])
        .env("VAULT_IDENTITY", key(who))
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains(&format!(
            "{env} (conf/pillar/{env}/secrets.sls.age): refused before decrypting: "
        )),
        "{err}"
    );
    assert!(!err.contains("secret-value"), "{err}");
    err
}

fn check(p: &Project, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    let out = p.bare(&args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn whoami_prints_the_fingerprint_as_ssh_keygen_does_and_a_spoken_form() {
    let p = Project::new();
    let out = p.vault(&["whoami"]).success().stdout();
    assert!(
        out.contains(&format!(
            "fingerprint: {}\n",
            fingerprint("alice_ed25519.pub")
        )),
        "{out}"
    );
    let spoken = out
        .lines()
        .find_map(|l| l.strip_prefix("read aloud: "))
        .unwrap();
    let groups: Vec<&str> = spoken.split(' ').collect();
    assert_eq!(groups.len(), 6, "{spoken}");
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())),
        "{spoken}"
    );
}

#[test]
fn onboarding_checks_the_fingerprint_then_lets_the_newcomer_read() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    // dave proposes his key; until granted he is pending, and cannot read.
    p.add_member("staging", "dave", "dave_ed25519_pass.pub");
    assert!(p.vault(&["status"]).stdout().contains("  pending: dave ("));
    let (code, out) = check(&p, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("staging: pending member dave ("), "{out}");
    let before = p.snapshot();
    let err = p
        .vault(&[
            "grant",
            "staging",
            "dave",
            "--fingerprint",
            &fingerprint("alice_ed25519.pub"),
        ])
        .error();
    assert!(
        err.contains("refusing to grant dave: the key has fingerprint"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before, "a refused grant changes nothing");
    p.vault(&[
        "grant",
        "staging",
        "dave",
        "--fingerprint",
        &fingerprint("dave_ed25519_pass.pub"),
    ])
    .success();
    assert!(!p.vault(&["status"]).stdout().contains("pending"));
    let err = p
        .vault(&[
            "grant",
            "staging",
            "dave",
            "--fingerprint",
            &fingerprint("dave_ed25519_pass.pub"),
        ])
        .error();
    assert!(err.contains("already granted"), "{err}");

    // With --key: the file is written by the grant; a name holding another key is refused.
    let fp = fingerprint("carol_rsa.pub");
    p.vault(&[
        "grant",
        "staging",
        "carol",
        "--key",
        &key("carol_rsa.pub"),
        "--fingerprint",
        &fp,
    ])
    .success();
    assert!(p.root().join("recipients/staging/carol.pub").exists());
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("carol_rsa"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"secret-value");
    let err = p
        .vault(&[
            "grant",
            "staging",
            "carol",
            "--key",
            &key("mallory_ed25519.pub"),
            "--fingerprint",
            &fingerprint("mallory_ed25519.pub"),
        ])
        .error();
    assert!(
        err.contains("recipients/staging/carol.pub already holds another key"),
        "{err}"
    );
    // An unsupported key type is refused with its file and line.
    std::fs::write(
        p.root().join("eve.pub"),
        std::fs::read(key("bad_ecdsa.pub")).unwrap(),
    )
    .unwrap();
    let err = p
        .vault(&[
            "grant",
            "staging",
            "eve",
            "--key",
            "eve.pub",
            "--fingerprint",
            "SHA256:x",
        ])
        .error();
    assert!(
        err.contains("line 1: unsupported key type ecdsa-sha2-nistp256"),
        "{err}"
    );
    assert!(!p.root().join("recipients/staging/eve.pub").exists());
}

#[test]
fn signatures_verify_with_ssh_keygen_and_an_allowed_signers_file() {
    if !common::have("ssh-keygen") {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "x");
    let out = p
        .cmd(&["set", "production", "B", "--from-file", &key("README.md")])
        .env("VAULT_IDENTITY", key("carol_rsa"))
        .output()
        .unwrap();
    // production has no file yet: carol founds it, signing with her RSA key.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (env, member, file) in [
        ("staging", "alice", "alice_ed25519.pub"),
        ("production", "carol", "carol_rsa.pub"),
    ] {
        let text = std::fs::read_to_string(sidecar(&p, env)).unwrap();
        let at = text.find("-----BEGIN SSH SIGNATURE-----").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("msg"), &text[..at]).unwrap();
        std::fs::write(dir.path().join("msg.sig"), &text[at..]).unwrap();
        let public = std::fs::read_to_string(key(file)).unwrap();
        std::fs::write(dir.path().join("allowed"), format!("{member} {public}")).unwrap();
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("ssh-keygen -Y verify -f allowed -I {member} -n vault -s msg.sig < msg"),
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{env}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains(&format!("Good \"vault\" signature for {member}")));
    }
}

#[test]
fn keys_in_ssh_agent_sign_and_deploy_keys_cannot_write() {
    if !common::have("ssh-agent") {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "1");
    // bob holds only an age key: he reads, but is told he cannot write.
    let bob = |args: &[&str], input: &[u8]| {
        let mut c = p.cmd(args);
        c.env("VAULT_IDENTITY", key("bob.agekey"));
        common::run_with_input(c, input)
    };
    assert_eq!(bob(&["get", "staging", "A"], b"").success().0.stdout, b"1");
    let before = p.snapshot();
    let err = bob(&["set", "staging", "B"], b"2").error();
    assert!(
        err.contains("age X25519 identities (deploy keys) can read but not write"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
    // With alice's key in ssh-agent (and only bob's age key given), the write is signed by the agent's key.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Stopped however the test ends.
    let _agent = KillOnDrop(agent);
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A clone does not keep file modes, and ssh-add refuses a key others can read.
    let private = dir.path().join("alice");
    std::fs::copy(key("alice_ed25519"), &private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let added = Command::new("ssh-add")
        .arg(&private)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut c = p.cmd(&["set", "staging", "B"]);
    c.env("VAULT_IDENTITY", key("bob.agekey"))
        .env("SSH_AUTH_SOCK", &sock);
    let out = common::run_with_input(c, b"2");
    out.success();
    let status = p.vault(&["status"]).stdout();
    assert!(
        status.contains(&format!(
            "signed: by alice ({}), serial 2",
            fingerprint("alice_ed25519.pub")
        )),
        "{status}"
    );
}

#[test]
fn revoke_marks_exposure_until_each_secret_changes() {
    let p = Project::new();
    p.set("staging", "A", "a1");
    p.set("staging", "B", "b1");
    let err = p.vault(&["revoke", "staging", "nobody"]).error();
    assert!(err.contains("nobody is not a granted member"), "{err}");
    p.vault(&["revoke", "staging", "bob"]).success();
    assert!(!p.root().join("recipients/staging/bob.pub").exists());
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("bob.agekey"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "bob can no longer read");
    let status = p.vault(&["status"]).stdout();
    assert!(
        status.contains("  exposed: A (since ") && status.contains("  exposed: B (since "),
        "{status}"
    );
    // The same value again does not clear the mark; a new value does.
    p.set("staging", "A", "a1");
    p.set("staging", "B", "b2");
    let json: serde_json::Value =
        serde_json::from_str(&p.vault(&["status", "--json"]).success().stdout()).unwrap();
    let staging = json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging")
        .unwrap();
    let exposed: Vec<&str> = staging["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(exposed, ["A"]);
    assert_eq!(staging["exposed"][0]["member"], "bob");
    assert_eq!(staging["signature"]["valid"], true);
    assert_eq!(staging["secrets"], 2);
    // check: fine within the limit, a finding past it.
    let (code, out) = check(&p, &[]);
    assert_eq!(code, 0, "{out}");
    let later = p
        .bare(&["check"])
        .env("VAULT_TODAY", "2099-01-01")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&later.stdout);
    assert_eq!(later.status.code(), Some(1));
    assert!(
        out.contains("staging: A exposed for ")
            && out.contains("when bob left): give it a new value (`vault rotate staging A`)"),
        "{out}"
    );
    assert!(!out.contains("a1"));
    p.set("staging", "A", "a2");
    let later = p
        .bare(&["check"])
        .env("VAULT_TODAY", "2099-01-01")
        .output()
        .unwrap();
    assert_eq!(
        later.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&later.stdout)
    );
}

#[test]
fn attack_forged_or_missing_signature() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    // Someone with only the public keys writes a valid age file of their own.
    let alice = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let mut c = Command::new("age");
    c.args(["-a", "-r", alice.trim(), "-o"])
        .arg(p.secrets("staging"));
    common::run_with_input(c, b"secrets:\n  A: attacker-value\n").success();
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(
        err.contains("the signature is for another ciphertext"),
        "{err}"
    );
    std::fs::remove_file(sidecar(&p, "staging")).unwrap();
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(
        err.contains("unsigned: the signature file secrets.sls.age.sig is missing"),
        "{err}"
    );
    for args in [
        &["exec", "staging", "--", "true"][..],
        &["export", "staging", "--format", "json"],
    ] {
        let err = p.vault(args).error();
        assert!(err.contains("refused before decrypting: unsigned"), "{err}");
    }
    let (code, out) = check(&p, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "staging: conf/pillar/staging/secrets.sls.age.sig: signature check failed: unsigned"
        ),
        "{out}"
    );
}

#[test]
fn attack_rollback_to_an_older_signed_version() {
    let p = Project::new();
    p.set("staging", "A", "old-value");
    let old = files(&p, "staging");
    p.set("staging", "A", "new-value");
    // An older version with the same members is what another branch holds: read.
    put(&p, "staging", &old);
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"old-value");
    // One that lets back in a member removed since is a rollback.
    let other = files(&p, "staging");
    p.set("staging", "A", "newer");
    p.vault(&["revoke", "staging", "bob"]).success();
    put(&p, "staging", &other);
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(
        err.contains("lets in bob (") && err.contains("whose key left the roster at serial 4, with a grant from serial 1: an old grant cannot bring a key back"),
        "{err}"
    );
}

#[test]
fn attack_files_swapped_between_environments() {
    let p = Project::new();
    p.set("staging", "A", "s");
    p.set("production", "A", "p");
    let prod = files(&p, "production");
    put(&p, "staging", &prod);
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(
        err.contains(
            "the file is signed for environment 'production', not 'staging' (swapped files?)"
        ),
        "{err}"
    );
}

#[test]
fn attack_a_staging_member_signs_a_production_file() {
    let p = Project::new();
    p.set("production", "A", "real");
    // mallory, a staging member only, forges production in a copy where she is a member.
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
    let forge = Project::new();
    // The forgery is made for this project: its identity is committed for all to copy.
    std::fs::copy(
        p.root().join("conf/vault-project"),
        forge.root().join("conf/vault-project"),
    )
    .unwrap();
    forge.add_member("production", "mallory", "mallory_ed25519.pub");
    let mut c = forge.cmd(&["set", "production", "A"]);
    c.env("VAULT_IDENTITY", key("mallory_ed25519"));
    common::run_with_input(c, b"forged").success();
    put(&p, "production", &files(&forge, "production"));
    let err = refused(&p, "alice_ed25519", "production");
    assert!(err.contains("who is not a member of production"), "{err}");
    assert!(err.contains(&fingerprint("mallory_ed25519.pub")), "{err}");
}

#[test]
fn attack_a_key_added_to_the_folder_without_a_grant() {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    p.set("staging", "A", "secret-value");
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"secret-value");
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "staging"]);
    // mallory adds her key to the folder: check flags it at once.
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    let (code, out) = check(&p, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("staging: pending member mallory ("), "{out}");
    // Her write is refused: her key was never granted by a member...
    let mut c = p.cmd(&["set", "staging", "A"]);
    c.env("VAULT_IDENTITY", key("mallory_ed25519"));
    let err = common::run_with_input(c, b"evil").error();
    assert!(
        err.contains("staging: none of your keys is a granted member, so you cannot write"),
        "{err}"
    );
    // ...so she replaces it with a new one that she signs as a founder (on her own
    // machine: this one has seen staging and refuses to start it anew).
    std::fs::remove_file(p.secrets("staging")).unwrap();
    std::fs::remove_file(sidecar(&p, "staging")).unwrap();
    let err = p.vault_in(&["set", "staging", "A"], b"x").error();
    assert!(
        err.contains(
            "staging: its secrets file is missing, but this machine has seen it (serial 1)"
        ),
        "{err}"
    );
    let mallory_home = tempfile::tempdir().unwrap();
    let mut c = p.cmd(&["set", "staging", "A"]);
    c.env("VAULT_IDENTITY", key("mallory_ed25519"))
        .env("HOME", mallory_home.path())
        .env("XDG_STATE_HOME", mallory_home.path().join("state"));
    common::run_with_input(c, b"evil").success();
    // alice's machine knows better, and so does CI (from git history).
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(
        err.contains("whose grant does not trace back to a member this machine trusts"),
        "{err}"
    );
    let (code, out) = check(&p, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("staging: conf/pillar/staging/secrets.sls.age.sig: signature check failed: signed by mallory"), "{out}");
}

#[test]
fn attack_a_sidecar_altered_after_signing() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let path = sidecar(&p, "staging");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("serial 1", "serial 9")).unwrap();
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(
        err.contains("the signature does not match the manifest (forged or altered)"),
        "{err}"
    );
    std::fs::write(&path, text.replace("-----BEGIN SSH SIGNATURE-----\n", "")).unwrap();
    let err = refused(&p, "alice_ed25519", "staging");
    assert!(err.contains("malformed"), "{err}");
    // The override reads it anyway, loudly, for recovery.
    let out = p.vault(&["--insecure-skip-verify", "get", "staging", "A"]);
    assert_eq!(out.0.stdout, b"secret-value");
    assert!(
        out.stderr()
            .contains("vault: WARNING: --insecure-skip-verify: staging: "),
        "{}",
        out.stderr()
    );
}

#[test]
fn check_finds_plaintext_duplicates_and_passes_a_clean_project() {
    let p = Project::new();
    git(p.root(), &["init", "-q"]);
    p.set("staging", "A", "1");
    let (code, out) = check(&p, &[]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "vault check: 2 environment(s), 1 secret(s), 0 finding(s)\n"
        )
    );
    // An unignored plaintext pillar, then a tracked one.
    std::fs::write(p.root().join(".gitignore"), "home/\n").unwrap();
    std::fs::write(
        p.root().join("conf/pillar/staging/secrets.sls"),
        "secrets: {}\n",
    )
    .unwrap();
    let (code, out) = check(&p, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("conf/pillar/staging/secrets.sls: a plaintext secrets file is not ignored"),
        "{out}"
    );
    git(p.root(), &["add", "-f", "conf/pillar/staging/secrets.sls"]);
    let (_, out) = check(&p, &[]);
    assert!(
        out.contains("conf/pillar/staging/secrets.sls: a plaintext secrets file is tracked by git"),
        "{out}"
    );
    git(
        p.root(),
        &["rm", "-q", "--cached", "conf/pillar/staging/secrets.sls"],
    );
    std::fs::remove_file(p.root().join("conf/pillar/staging/secrets.sls")).unwrap();
    // One key under two names.
    p.add_member("staging", "alice2", "alice_ed25519.pub");
    let (_, out) = check(&p, &[]);
    assert!(
        out.contains(&format!(
            "staging: the key {} is both alice and alice2",
            fingerprint("alice_ed25519.pub")
        )),
        "{out}"
    );
    let _ = Path::new("");
}

#[test]
fn a_cached_verification_never_outlives_the_signers_membership() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    // Read once (verified and remembered), then the signer's key leaves the folder.
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"secret-value");
    std::fs::remove_file(p.root().join("recipients/staging/alice.pub")).unwrap();
    let err = refused(&p, "bob.agekey", "staging");
    assert!(err.contains("who is not a member of staging"), "{err}");
}

#[test]
fn a_member_cannot_revoke_themselves() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    let err = p.vault(&["revoke", "staging", "alice"]).error();
    assert!(
        err.contains("staging: your key (SHA256:")
            && err.contains("would not be a member after this change"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
}

/// A child process killed when the guard goes, even if the test fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! The age header against the signed roster: a file a trusted writer encrypted to other
//! keys than the roster it signed is refused before any identity is tried, by every
//! reader, and `check` and `status` name the difference in the same words; the honest
//! flows (grant, revoke, rekey, deploy keys, a key gone from the folder) keep reading.
//!
//! Each attack is mounted as a writer with a member's key would: the plaintext is
//! re-encrypted with the `age` tool, the manifest's ciphertext line changed to match,
//! and the manifest signed with `ssh-keygen -Y sign -n vault` by alice, so the signature
//! is valid and only the header check stands in the way.

use crate::common::{self, key, Project, Run};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sidecar(p: &Project, env: &str) -> PathBuf {
    p.root()
        .join("conf/pillar")
        .join(env)
        .join("secrets.sls.age.sig")
}

/// The public key line of a fixture.
fn public(file: &str) -> String {
    std::fs::read_to_string(key(file))
        .unwrap()
        .trim()
        .to_string()
}

/// A fresh age X25519 key pair in `dir`: (identity file, recipient).
fn x25519_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    (
        path,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

/// Re-encrypts `env`'s plaintext (decrypted with alice's key, as the writer can) to
/// `recipients` with the `age` tool, and signs the old manifest with its ciphertext line
/// changed to match, as alice, with `ssh-keygen`: a valid signature over a roster the
/// header no longer follows.
fn reseal(p: &Project, env: &str, recipients: &[&str]) {
    let work = p.root().join("home/attack");
    std::fs::create_dir_all(&work).unwrap();
    let signing_key = work.join("alice_ed25519");
    std::fs::copy(key("alice_ed25519"), &signing_key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&signing_key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut decrypt = Command::new("age");
    decrypt
        .args(["-d", "-i"])
        .arg(&signing_key)
        .arg(p.secrets(env));
    let plain = decrypt.output().unwrap();
    assert!(plain.status.success(), "{plain:?}");
    let mut encrypt = Command::new("age");
    encrypt.arg("-a");
    for r in recipients {
        encrypt.args(["-r", r]);
    }
    encrypt.arg("-o").arg(p.secrets(env));
    common::run_with_input(encrypt, &plain.stdout).success();

    let hash: String = Sha256::digest(std::fs::read(p.secrets(env)).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let old = std::fs::read_to_string(sidecar(p, env)).unwrap();
    let signed = &old[..old.find("-----BEGIN SSH SIGNATURE-----").unwrap()];
    let manifest: String = signed
        .lines()
        .map(|l| match l.starts_with("ciphertext ") {
            true => format!("ciphertext sha256:{hash}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    let msg = work.join("manifest");
    std::fs::write(&msg, &manifest).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "vault", "-f"])
        .arg(&signing_key)
        .arg(&msg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sig = std::fs::read_to_string(work.join("manifest.sig")).unwrap();
    std::fs::write(sidecar(p, env), format!("{manifest}{sig}")).unwrap();
    std::fs::remove_file(work.join("manifest.sig")).unwrap();
}

fn have_tools() -> bool {
    let ok = ["age", "age-keygen", "ssh-keygen"]
        .iter()
        .all(|t| common::have(t));
    if !ok {
        common::require_in_ci("age, age-keygen and ssh-keygen");
    }
    ok
}

/// `vault ARGS` as `who` (a fixture key or a key file); its run.
fn as_who(p: &Project, who: &Path, args: &[&str]) -> Run {
    Run(p.cmd(args).env("VAULT_IDENTITY", who).output().unwrap())
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(key(name))
}

/// Every reader refuses `env` with `why`, before any identity is tried, and `check` and
/// `status` name the same difference.
#[track_caller]
fn refused_everywhere(p: &Project, env: &str, readers: &[&Path], why: &str) {
    let want = format!(
        "vault: error: {env} (conf/pillar/{env}/secrets.sls.age): refused before decrypting: {why}"
    );
    for who in readers {
        for args in [
            &["get", env, "A"][..],
            &["show", env],
            &["exec", env, "--", "true"],
            &["export", env, "--format", "json"],
        ] {
            let err = as_who(p, who, args).error();
            assert_eq!(err, want, "{args:?} as {}", who.display());
            assert!(!err.contains("secret-value"), "{err}");
        }
    }
    // Writes decrypt first: they refuse the same way and change nothing.
    let value = p.home.join("value");
    std::fs::write(&value, "new-value").unwrap();
    let before = p.snapshot();
    let set = ["set", env, "B", "--from-file", value.to_str().unwrap()];
    for args in [&set[..], &["rekey", env], &["edit", env]] {
        assert_eq!(p.vault(args).error(), want, "{args:?}");
    }
    assert_eq!(p.snapshot(), before);

    let out = p.bare(&["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.contains(&format!(
            "{env}: not encrypted to exactly its roster: {why}\n"
        )),
        "{out}"
    );
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains(&format!("  recipients: rekey needed ({why})\n")),
        "{out}"
    );
    assert!(
        out.contains("  secrets: ? (not decrypted: its header differs from its signed roster)\n"),
        "{out}"
    );
    let out = p.vault(&["status", "--json"]).success().stdout();
    assert!(out.contains(&serde_json::to_string(why).unwrap()), "{out}");
}

#[test]
fn attack_a_writer_re_encrypts_to_an_extra_ssh_key() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let (alice, bob, mallory) = (
        public("alice_ed25519.pub"),
        public("bob.agekey.pub"),
        public("mallory_ed25519.pub"),
    );
    reseal(&p, "staging", &[&alice, &bob, &mallory]);
    // The point of the attack: mallory, never granted, can read the file.
    let out = Command::new("age")
        .args(["-d", "-i", &key("mallory_ed25519")])
        .arg(p.secrets("staging"))
        .output()
        .unwrap();
    assert_eq!(
        out.stdout
            .windows(12)
            .filter(|w| w == b"secret-value")
            .count(),
        1
    );
    refused_everywhere(
        &p,
        "staging",
        &[&fixture("alice_ed25519"), &fixture("bob.agekey")],
        "the file is encrypted to 3 keys, its signed roster lists 2",
    );
}

#[test]
fn attack_a_writer_re_encrypts_to_an_extra_x25519_key() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let (_, extra) = x25519_key(p.root(), "extra.agekey");
    reseal(
        &p,
        "staging",
        &[
            &public("alice_ed25519.pub"),
            &public("bob.agekey.pub"),
            &extra,
        ],
    );
    refused_everywhere(
        &p,
        "staging",
        &[&fixture("alice_ed25519"), &fixture("bob.agekey")],
        "the file is encrypted to 3 keys, its signed roster lists 2",
    );
}

#[test]
fn attack_a_writer_re_encrypts_to_one_key_fewer() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    reseal(&p, "staging", &[&public("alice_ed25519.pub")]);
    // bob is told why, not merely that his key does not open it.
    refused_everywhere(
        &p,
        "staging",
        &[&fixture("alice_ed25519"), &fixture("bob.agekey")],
        "the file is encrypted to 1 key, its signed roster lists 2",
    );
}

#[test]
fn attack_a_writer_swaps_a_roster_key_for_another_of_the_same_count() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    p.set("production", "A", "secret-value");
    let (alice, mallory) = (public("alice_ed25519.pub"), public("mallory_ed25519.pub"));
    // bob's X25519 stanza replaced by mallory's SSH one: its tag is in no roster.
    reseal(&p, "staging", &[&alice, &mallory]);
    let tag = {
        let blob = base64_decode(mallory.split(' ').nth(1).unwrap());
        base64_no_pad(&Sha256::digest(blob)[..4])
    };
    let why = format!(
        "the file is encrypted to an ssh-ed25519 key (tag {tag}) that its signed roster does not list"
    );
    refused_everywhere(&p, "staging", &[&fixture("alice_ed25519")], &why);

    // carol's ssh-rsa stanza replaced by an X25519 one: the count holds, carol's is gone.
    let (_, extra) = x25519_key(p.root(), "extra.agekey");
    reseal(&p, "production", &[&alice, &extra]);
    let why = format!(
        "the file is not encrypted to carol's key ({}), which its signed roster lists",
        common::fingerprint("carol_rsa.pub")
    );
    let err = as_who(&p, &fixture("carol_rsa"), &["get", "production", "A"]).error();
    assert!(err.ends_with(&why), "{err}");
    let err = p.vault(&["get", "production", "A"]).error();
    assert!(err.ends_with(&why), "{err}");
}

/// The limit of the check, as it stands: an X25519 stanza names no key, so one swapped
/// for another X25519 key passes the header check (the signed hash still binds it to
/// the writer). Only the holder of the roster's X25519 key finds out: their key opens
/// no stanza.
#[test]
fn an_x25519_stanza_swapped_for_another_is_seen_only_by_its_holder() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let (_, other) = x25519_key(p.root(), "other.agekey");
    reseal(&p, "staging", &[&public("alice_ed25519.pub"), &other]);
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().0.stdout,
        b"secret-value"
    );
    let err = as_who(&p, &fixture("bob.agekey"), &["get", "staging", "A"]).error();
    assert!(!err.contains("refused before decrypting"), "{err}");
    assert!(err.contains("not a recipient"), "{err}");
}

/// The control for the attacks above: the same re-encryption and signature, to exactly
/// the roster, is read. What refuses them is the header, nothing else.
#[test]
fn a_re_encryption_to_exactly_the_roster_is_read() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    p.set("production", "A", "prod-value");
    // Go's age writes the stanzas in another order, and no grease stanza.
    reseal(
        &p,
        "staging",
        &[&public("bob.agekey.pub"), &public("alice_ed25519.pub")],
    );
    reseal(
        &p,
        "production",
        &[&public("carol_rsa.pub"), &public("alice_ed25519.pub")],
    );
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().0.stdout,
        b"secret-value"
    );
    let bob = as_who(&p, &fixture("bob.agekey"), &["get", "staging", "A"]).success();
    assert_eq!(bob.0.stdout, b"secret-value");
    let carol = as_who(&p, &fixture("carol_rsa"), &["get", "production", "A"]).success();
    assert_eq!(carol.0.stdout, b"prod-value");
    let out = p.vault(&["status"]).success().stdout();
    assert_eq!(out.matches("  recipients: in sync\n").count(), 2, "{out}");
    let out = p.bare(&["check"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A pair this machine verified before the header was checked (as an older vault
/// remembered it) is not let through by that memory: the header is checked anyway.
#[test]
fn a_remembered_verification_does_not_skip_the_header_check() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    p.vault(&["get", "staging", "A"]).success();
    reseal(
        &p,
        "staging",
        &[
            &public("alice_ed25519.pub"),
            &public("bob.agekey.pub"),
            &public("mallory_ed25519.pub"),
        ],
    );
    // Plant the new pair's hashes as the last verified, as an older vault would have.
    let state = p.home.join(".local/state/vault");
    let seen = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("project-")
        })
        .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
    let hash = |f: PathBuf| {
        let d = Sha256::digest(std::fs::read(f).unwrap());
        format!(
            "sha256:{}",
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let verified = &mut json["staging"]["verified"];
    // An older vault recorded no header check with it.
    verified.as_object_mut().unwrap().remove("header");
    verified["sidecar"] = hash(sidecar(&p, "staging")).into();
    verified["ciphertext"] = hash(p.secrets("staging")).into();
    std::fs::write(&seen, serde_json::to_vec(&json).unwrap()).unwrap();

    let out = p.cmd(&["get", "staging", "A", "-v"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unchanged since this machine verified it"),
        "{err}"
    );
    assert!(
        err.contains(
            "refused before decrypting: the file is encrypted to 3 keys, its signed roster lists 2"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn grant_revoke_rekey_and_deploy_keys_keep_reading() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    let read = |who: &str, env: &str| {
        as_who(&p, &fixture(who), &["get", env, "A"])
            .success()
            .0
            .stdout
    };
    // A grant of an ssh-rsa key, and of a deploy key (X25519, reads but never signs).
    p.add_member("staging", "carol", "carol_rsa.pub");
    let fp = common::fingerprint("carol_rsa.pub");
    p.vault(&["grant", "staging", "carol", "--fingerprint", &fp])
        .success();
    p.add_member("staging", "deploy", "deploy.agekey.pub");
    let deploy_fp = fingerprint_of_age("deploy.agekey.pub");
    p.vault(&["grant", "staging", "deploy", "--fingerprint", &deploy_fp])
        .success();
    for who in ["alice_ed25519", "bob.agekey", "carol_rsa", "deploy.agekey"] {
        assert_eq!(read(who, "staging"), b"secret-value", "{who}");
    }
    // A revoke, then a rekey.
    p.vault(&["revoke", "staging", "bob"]).success();
    p.vault(&["rekey", "staging"]).success();
    for who in ["alice_ed25519", "carol_rsa", "deploy.agekey"] {
        assert_eq!(read(who, "staging"), b"secret-value", "{who}");
    }
    let out = as_who(&p, &fixture("bob.agekey"), &["get", "staging", "A"]).error();
    assert!(!out.contains("refused before decrypting"), "{out}");
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains("staging\n  members: alice, carol, deploy\n"),
        "{out}"
    );
    assert!(out.contains("  recipients: in sync\n"), "{out}");
    let out = p.bare(&["check"]).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    // The exposure of A to bob is a finding only after seven days.
    assert!(out.contains(", 0 finding(s)"), "{out}");
}

/// Keys that left the folder without a revoke are still in the signed roster: their
/// type is no longer known, and the header still matches (an SSH key by the tag its
/// fingerprint gives, an X25519 key by count), so the file still reads.
#[test]
fn a_key_gone_from_the_folder_before_its_rekey_still_reads() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    p.set("production", "A", "prod-value");
    std::fs::remove_file(p.root().join("recipients/staging/bob.pub")).unwrap();
    std::fs::remove_file(p.root().join("recipients/production/carol.pub")).unwrap();
    assert_eq!(
        p.vault(&["get", "staging", "A"]).success().0.stdout,
        b"secret-value"
    );
    assert_eq!(
        p.vault(&["get", "production", "A"]).success().0.stdout,
        b"prod-value"
    );
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains("recipients: rekey needed (bob (SHA256:"),
        "{out}"
    );
    assert!(!out.contains("encrypted to"), "{out}");
    p.vault(&["rekey"]).success();
    let out = p.vault(&["status"]).success().stdout();
    assert_eq!(out.matches("  recipients: in sync\n").count(), 2, "{out}");
}

/// The fingerprint vault gives an age key: the SHA-256 of its `age1...` text.
fn fingerprint_of_age(file: &str) -> String {
    format!("SHA256:{}", base64_no_pad(&Sha256::digest(public(file))))
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_no_pad(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}

/// git in the project as alice (her key decrypts and signs in the drivers).
fn git_as_alice(p: &Project, args: &[&str]) -> std::process::Output {
    common::git_command(p.root())
        .args(args)
        .env("VAULT_IDENTITY", key("alice_ed25519"))
        .env("HOME", &p.home)
        .env("XDG_STATE_HOME", p.home.join(".local/state"))
        .env("GIT_PAGER", "cat")
        .output()
        .unwrap()
}

/// A branch whose pair is re-encrypted to an extra key under the old signed roster is
/// neither merged nor read by `vault diff`.
#[test]
fn attack_a_branch_re_encrypted_to_an_extra_key_is_not_merged() {
    if !have_tools() {
        return;
    }
    let p = Project::new();
    let root = p.root();
    common::git(root, &["init", "-q"]);
    std::fs::write(root.join(".gitignore"), "/home/\n").unwrap();
    p.set("staging", "A", "secret-value");
    p.vault(&["install-git"]).success();
    common::git(root, &["add", "-A"]);
    common::git(root, &["commit", "-qm", "staging"]);
    common::git(root, &["checkout", "-qb", "evil"]);
    reseal(
        &p,
        "staging",
        &[
            &public("alice_ed25519.pub"),
            &public("bob.agekey.pub"),
            &public("mallory_ed25519.pub"),
        ],
    );
    common::git(root, &["commit", "--no-verify", "-qam", "evil"]);
    common::git(root, &["checkout", "-q", "main"]);
    p.set("staging", "B", "main value");
    common::git(root, &["commit", "-qam", "main: B"]);

    let why = "the file is encrypted to 3 keys, its signed roster lists 2";
    let out = p.vault(&["diff", "staging", "main", "evil"]).stdout();
    assert!(out.contains(why), "{out}");
    assert!(!out.contains("secret-value"), "{out}");
    let merge = git_as_alice(&p, &["merge", "--no-edit", "evil"]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&merge.stdout),
        String::from_utf8_lossy(&merge.stderr)
    );
    assert!(!merge.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "staging: the secrets of theirs are refused: {why}; kept ours, unmerged"
        )),
        "{out}"
    );
}

//! No lock-in: Debian's `age` reads what vault writes, and vault reads what `age` writes.

use crate::common::{self, key, Project};
use std::process::Command;

fn age_decrypt(identity: &str, file: &std::path::Path) -> Vec<u8> {
    let out = Command::new("age")
        .args(["-d", "-i", identity, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d -i {identity}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `age ARGS -o DEST` with `plaintext` on standard input.
fn age_encrypt(args: &[&str], dest: &std::path::Path, plaintext: &[u8]) {
    let mut c = Command::new("age");
    c.args(args).arg("-o").arg(dest);
    common::run_with_input(c, plaintext).success();
}

#[test]
fn age_decrypts_what_vault_writes() {
    if !common::have("age") {
        return;
    }
    let p = Project::new();
    p.set("staging", "PEM", "-----BEGIN-----\nabc\n-----END-----\n");
    p.set("staging", "PIN", "0123");
    let doc = p.vault(&["get", "staging", "PIN"]).success();
    assert_eq!(doc.0.stdout, b"0123");
    // The ssh-ed25519 member and the X25519 member both read the exact document.
    let by_alice = age_decrypt(&key("alice_ed25519"), &p.secrets("staging"));
    let by_bob = age_decrypt(&key("bob.agekey"), &p.secrets("staging"));
    assert_eq!(by_alice, by_bob);
    assert_eq!(
        String::from_utf8(by_alice).unwrap(),
        "secrets:\n  PEM: |\n    -----BEGIN-----\n    abc\n    -----END-----\n  PIN: \"0123\"\n"
    );
    // And the ssh-rsa member of production.
    p.set("production", "A", "b");
    assert_eq!(
        age_decrypt(&key("carol_rsa"), &p.secrets("production")),
        b"secrets:\n  A: \"b\"\n"
    );
}

#[test]
fn vault_decrypts_what_age_writes() {
    if !common::have("age") {
        return;
    }
    let p = Project::new();
    let recipients = p.root().join("all.txt");
    let lines = [
        std::fs::read_to_string(key("alice_ed25519.pub")).unwrap(),
        std::fs::read_to_string(key("bob.agekey.pub")).unwrap(),
    ];
    std::fs::write(&recipients, lines.concat()).unwrap();
    let doc = "# written by hand\nsecrets:\n  TOKEN: 'a b'  # spaces kept\n  YES: yes\n";
    let dest = p.secrets("staging");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    age_encrypt(
        &["-a", "-R", recipients.to_str().unwrap()],
        &dest,
        doc.as_bytes(),
    );
    // A file from plain age is unsigned: refused by default, read with the override.
    let err = p.vault(&["get", "staging", "TOKEN"]).error();
    assert!(err.contains("refused before decrypting: unsigned"), "{err}");
    for id in ["alice_ed25519", "bob.agekey"] {
        for (name, want) in [("TOKEN", &b"a b"[..]), ("YES", b"yes")] {
            let out = p
                .cmd(&["--insecure-skip-verify", "get", "staging", name])
                .env("VAULT_IDENTITY", key(id))
                .output()
                .unwrap();
            assert_eq!(
                out.stdout,
                want,
                "{id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The header tells vault who it is encrypted to, signature or not.
    let out = p.vault(&["status"]).stdout();
    assert!(out.contains("staging\n  members: alice, bob\n"), "{out}");
    assert!(out.contains("  recipients: in sync\n"), "{out}");
    // A member adopts it: re-encrypted and signed; from then on it reads normally, and
    // the bytes people wrote (comments included) are what is committed.
    p.vault(&["--insecure-skip-verify", "rekey", "staging"])
        .success();
    assert_eq!(
        p.vault(&["get", "staging", "TOKEN"]).success().0.stdout,
        b"a b"
    );
    p.set("staging", "NEW", "n");
    let text = String::from_utf8(age_decrypt(&key("bob.agekey"), &dest)).unwrap();
    assert_eq!(text, format!("{doc}  NEW: \"n\"\n"));
}

#[test]
fn vault_reads_binary_age_files_too() {
    if !common::have("age") {
        return;
    }
    let p = Project::new();
    let dest = p.secrets("staging");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let bob = std::fs::read_to_string(key("bob.agekey.pub")).unwrap();
    age_encrypt(&["-r", bob.trim()], &dest, b"secrets:\n  B: x\n");
    let out = p
        .cmd(&["--insecure-skip-verify", "get", "staging", "B"])
        .env("VAULT_IDENTITY", key("bob.agekey"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"x");
}

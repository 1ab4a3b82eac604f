//! Identities: passphrase-protected keys (one prompt per run, a clear error without a
//! terminal) and the OS keyring, a real Secret Service (gnome-keyring in its own D-Bus
//! session).

use crate::common::{self, key, Project};
use std::process::{Command, Stdio};

const PASSPHRASE: &str = "test-passphrase";

/// A project where dave (passphrase-protected key) reads both environments.
fn daves_project() -> Project {
    let p = Project::new();
    p.add_member("staging", "dave", "dave_ed25519_pass.pub");
    p.add_member("production", "dave", "dave_ed25519_pass.pub");
    // alice checked dave's fingerprint with him, so her foundings admit him.
    let fp = common::fingerprint("dave_ed25519_pass.pub");
    p.vault(&["trust", "staging", "--fingerprint", &fp])
        .success();
    p.set("staging", "A", "stage-value");
    p.set("production", "B", "prod-value");
    p
}

/// Runs `vault -i DAVE'S KEY ARGS` on a pseudo-terminal, typing `typed` once.
fn on_terminal(p: &Project, args: &str, typed: &str) -> (bool, String) {
    let key = key("dave_ed25519_pass");
    let mut argv = vec!["-i", key.as_str()];
    argv.extend(args.split_whitespace());
    let (status, shown) = common::on_terminal(&p.bare(&argv), Some(typed));
    (status.success(), shown)
}

#[test]
fn a_passphrase_is_asked_once_per_run() {
    if !common::have("script") {
        return;
    }
    let p = daves_project();
    // status opens both environments: one prompt.
    let (ok, out) = on_terminal(&p, "status", PASSPHRASE);
    assert!(ok, "{out}");
    assert_eq!(out.matches("Enter passphrase for").count(), 1, "{out}");
    assert!(
        out.contains("production\r\n  members: alice, carol, dave\r\n  secrets: 1"),
        "{out}"
    );
    assert!(
        out.contains("staging\r\n  members: alice, bob, dave\r\n  secrets: 1"),
        "{out}"
    );
    assert!(
        !out.contains(PASSPHRASE),
        "the passphrase was echoed: {out}"
    );

    let (ok, out) = on_terminal(&p, "get staging A", PASSPHRASE);
    assert!(ok && out.ends_with("stage-value"), "{out}");

    // A write needs the key twice, to decrypt and to sign: still one prompt.
    std::fs::write(p.root().join("v"), "from-dave").unwrap();
    let (ok, out) = on_terminal(&p, "set staging B --from-file v", PASSPHRASE);
    assert!(ok, "{out}");
    assert_eq!(out.matches("Enter passphrase for").count(), 1, "{out}");
    let status = p.vault(&["status"]).stdout();
    assert!(
        status.contains(&format!(
            "signed: by dave ({})",
            common::fingerprint("dave_ed25519_pass.pub")
        )),
        "{status}"
    );

    let (ok, out) = on_terminal(&p, "get staging A", "wrong");
    assert!(
        !ok && out.contains("vault: error: wrong passphrase for"),
        "{out}"
    );
}

/// `vault -i dave get staging A` with no controlling terminal (setsid); its error line.
fn get_without_terminal(p: &Project) -> String {
    let out = Command::new("setsid")
        .args([
            "-w",
            env!("CARGO_BIN_EXE_vault"),
            "-i",
            &key("dave_ed25519_pass"),
            "get",
            "staging",
            "A",
        ])
        .current_dir(p.root())
        .env("HOME", &p.home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    common::Run(out).error()
}

#[test]
fn no_terminal_is_a_clear_error() {
    if !common::have("setsid") {
        return;
    }
    let p = daves_project();
    let err = get_without_terminal(&p);
    assert!(
        err.contains("is passphrase-protected and there is no terminal to ask for its passphrase"),
        "{err}"
    );
}

#[test]
fn a_key_not_among_the_recipients_is_never_unlocked() {
    // dave is not a member of a fresh project: no prompt, straight to the next identity.
    if !common::have("setsid") {
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "x");
    let err = get_without_terminal(&p);
    assert!(err.contains("dave_ed25519_pass (not a recipient)"), "{err}");
}

/// Runs `script` (sh) inside a new D-Bus session with gnome-keyring unlocked, HOME in the project.
fn in_keyring_session(p: &Project, script: &str) -> std::process::Output {
    let full = format!(
        "printf 'keyring-test-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || exit 90\n{script}"
    );
    Command::new("timeout")
        .args(["120", "dbus-run-session", "--", "sh", "-c", &full])
        .current_dir(p.root())
        .env("HOME", &p.home)
        .env("VAULT", env!("CARGO_BIN_EXE_vault"))
        .env_remove("VAULT_IDENTITY")
        .env_remove("XDG_DATA_HOME")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap()
}

#[test]
fn keygen_stores_the_key_in_the_real_secret_service() {
    if !common::have("dbus-run-session") || !common::have("gnome-keyring-daemon") {
        return;
    }
    let p = Project::new();
    let out = in_keyring_session(
        &p,
        "set -e\n$VAULT keygen --comment newbie > key.out\n\
         head -n1 key.out > recipients/staging/newbie.pub\n\
         $VAULT whoami > whoami.out\n\
         printf 'kept-in-keyring' | $VAULT set staging FROM_KEYRING\n\
         $VAULT keygen 2> second.err && exit 91 || true",
    );
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let key_out = std::fs::read_to_string(p.root().join("key.out")).unwrap();
    let public = key_out.lines().next().unwrap();
    let fp = key_out.lines().nth(1).unwrap();
    assert!(
        public.starts_with("ssh-ed25519 ") && fp.starts_with("SHA256:"),
        "{key_out}"
    );
    let whoami = std::fs::read_to_string(p.root().join("whoami.out")).unwrap();
    assert!(
        whoami.contains("identity: the OS keyring") && whoami.contains(fp),
        "{whoami}"
    );
    assert!(
        whoami.contains("member of: staging (as newbie)"),
        "{whoami}"
    );
    let second = std::fs::read_to_string(p.root().join("second.err")).unwrap();
    assert!(
        second.contains("an identity is already stored there"),
        "{second}"
    );
    // No key file was written anywhere in the project or home.
    assert!(!p.home.join(".ssh/id_ed25519").exists());

    // A later session (the keyring read back from disk) still decrypts with it, alone.
    let out = in_keyring_session(&p, "$VAULT get staging FROM_KEYRING");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kept-in-keyring",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_explicit_identity_is_the_only_one_tried() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    // alice's own key sits where vault would look by default...
    std::fs::copy(key("alice_ed25519"), p.home.join(".ssh/id_ed25519")).unwrap();
    // ...but the newcomer's key is named, and it is not granted: nothing falls back.
    let newcomer = key("dave_ed25519_pass.pub").replace(".pub", "");
    let out = p
        .bare(&["-i", &newcomer, "get", "staging", "A"])
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(err.contains("no identity opens staging"), "{err}");
    assert!(
        !err.contains("id_ed25519 ("),
        "only the named key is tried: {err}"
    );
    let mut c = p.bare(&["-i", &key("mallory_ed25519"), "set", "staging", "B"]);
    c.env("HOME", &p.home);
    let before = p.snapshot();
    let err = common::run_with_input(c, b"x").error();
    assert!(
        err.contains("none of your keys is a granted member"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before, "nothing signed by another key");
    // Without -i, the default key is used as before.
    let out = p.bare(&["get", "staging", "A"]).output().unwrap();
    assert_eq!(out.stdout, b"secret-value");
}

//! The example project committed in this repository (conf/, recipients/) is what
//! `vault` writes and reads: each member opens their environments, and nothing needs a rekey.

use crate::common::{self, key};
use std::process::Command;

/// `vault ARGS` as `identity` on a fresh machine whose user has checked the founder's
/// (alice's) fingerprint with her and trusts it, as a newcomer does first.
fn vault(identity: &str, args: &[&str]) -> common::Run {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vault"))
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("VAULT_IDENTITY", key(identity))
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .unwrap();
        common::Run(out)
    };
    let alice = common::fingerprint("alice_ed25519.pub");
    for env in ["staging", "production"] {
        run(&["trust", env, "--fingerprint", &alice]).success();
    }
    run(args)
}

#[test]
fn members_read_their_environments() {
    assert_eq!(
        vault("bob.agekey", &["get", "staging", "PIN"])
            .success()
            .0
            .stdout,
        b"0123"
    );
    assert_eq!(
        vault("alice_ed25519", &["get", "staging", "GREETING"])
            .success()
            .0
            .stdout,
        "  héllo wörld  ".as_bytes()
    );
    assert_eq!(
        vault("carol_rsa", &["get", "production", "DB_PASSWORD"])
            .success()
            .0
            .stdout,
        b"pr0d-p%ss"
    );
    let err = vault("bob.agekey", &["get", "production", "DB_PASSWORD"]).error();
    assert!(err.contains("no identity opens production"), "{err}");
    let err = vault("mallory_ed25519", &["get", "staging", "PIN"]).error();
    assert!(err.contains("no identity opens staging"), "{err}");
}

#[test]
fn every_environment_is_signed_and_in_sync_with_its_recipients() {
    let alice = "SHA256:t//QVDZqwMqplDGMvQmtwXheAGFcD0TtBCaHJ/TXPmQ";
    let out = vault("alice_ed25519", &["status"]).success().stdout();
    assert_eq!(
        out,
        format!(
            "production\n  members: alice, carol\n  secrets: 2\n  signed: by alice ({alice}), serial 1\n  recipients: in sync\n\
             staging\n  members: alice, bob\n  secrets: 6\n  signed: by alice ({alice}), serial 1\n  recipients: in sync\n"
        )
    );
    // The CI gate passes on it with no private key at all.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "check"])
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env_remove("VAULT_IDENTITY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout,
        "vault check: 2 environment(s), 8 secret(s), 0 finding(s)\n"
    );
}

#[test]
fn the_layout_matches_the_design() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in [
        "conf/pillar/top.sls",
        "conf/pillar/project.sls",
        "conf/pillar/devs.sls",
        "conf/pillar/staging/env.sls",
        "conf/pillar/staging/secrets.sls.age",
        "conf/pillar/production/env.sls",
        "conf/pillar/production/secrets.sls.age",
        "conf/pillar/production/secrets.sls.age.sig",
        "conf/pillar/staging/secrets.sls.age.sig",
        "recipients/staging/alice.pub",
        "recipients/staging/bob.pub",
        "recipients/production/alice.pub",
        "recipients/production/carol.pub",
    ] {
        assert!(root.join(f).is_file(), "{f}");
    }
    let top = std::fs::read_to_string(root.join("conf/pillar/top.sls")).unwrap();
    assert!(top.contains("'*-staging':\n    - staging.env\n    - staging.secrets"));
    let ct = std::fs::read_to_string(root.join("conf/pillar/staging/secrets.sls.age")).unwrap();
    assert!(ct.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
}

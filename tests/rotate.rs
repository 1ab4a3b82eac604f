//! `vault rotate`: after a revoke, the exposed secrets get new values in one signed
//! version, readable by the remaining members and not by the revoked key; values come
//! generated, from standard input or a hidden prompt, never argv; bad input writes nothing.

use crate::common::{self, fingerprint, key, Project};
use std::process::Command;

/// The serial of `env`'s signed manifest on disk.
fn serial(p: &Project, env: &str) -> u64 {
    let sidecar = p.secrets(env).with_extension("age.sig");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("serial "))
        .unwrap()
        .parse()
        .unwrap()
}

fn get(p: &Project, env: &str, name: &str) -> String {
    p.vault(&["get", env, name]).success().stdout()
}

/// What the real age binary decrypts of `env`'s file with the fixture key `who`.
fn age_decrypt(p: &Project, env: &str, who: &str) -> std::process::Output {
    Command::new("age")
        .args(["-d", "-i", &key(who), p.secrets(env).to_str().unwrap()])
        .output()
        .unwrap()
}

/// staging: A, B, C and DB_PASSWORD, readable by alice, bob and the deploy key; bob is
/// then revoked, so all four are exposed to him. production: P, exposed to carol.
fn revoked_project() -> Project {
    let p = Project::new();
    for (name, value) in [
        ("A", "old-a"),
        ("B", "old-b"),
        ("C", "old-c"),
        ("DB_PASSWORD", "old-db"),
    ] {
        p.set("staging", name, value);
    }
    p.vault(&[
        "grant",
        "staging",
        "deploy",
        "--key",
        &key("deploy.agekey.pub"),
        "--fingerprint",
        &fingerprint("deploy.agekey.pub"),
    ])
    .success();
    p.set("production", "P", "old-p");
    let revoked = p.vault(&["revoke", "staging", "bob"]).success().stderr();
    // The revoke names the step that follows it.
    assert!(
        revoked.contains("give each a new value with `vault rotate staging --generate`"),
        "{revoked}"
    );
    p.vault(&["revoke", "production", "carol"]).success();
    p
}

#[test]
fn generate_rotates_every_exposed_secret_in_one_version() {
    if !common::have("age") {
        return;
    }
    let p = revoked_project();
    let status = p.vault(&["status"]).success().stdout();
    for name in ["A", "B", "C", "DB_PASSWORD"] {
        assert!(
            status.contains(&format!("exposed: {name} (since")),
            "{status}"
        );
    }
    let before = serial(&p, "staging");
    let out = p.vault(&["rotate", "staging", "--generate"]).success();
    let said = out.stderr();
    assert_eq!(
        serial(&p, "staging"),
        before + 1,
        "one version for all: {said}"
    );
    assert!(
        said.contains("staging: rotating the exposed: A, B, C, DB_PASSWORD"),
        "{said}"
    );
    assert!(
        said.contains("staging: rotated A, B, C, DB_PASSWORD"),
        "{said}"
    );
    assert!(said.contains("staging: nothing left exposed"), "{said}");
    assert!(
        said.contains("production: still exposed: P (to carol since")
            && said.contains("`vault rotate production`"),
        "{said}"
    );
    assert!(
        said.trim_end()
            .ends_with("next: `vault provision staging` puts the new values on its servers"),
        "{said}"
    );
    let deploy = String::from_utf8(age_decrypt(&p, "staging", "deploy.agekey").stdout).unwrap();
    for (name, old) in [
        ("A", "old-a"),
        ("B", "old-b"),
        ("C", "old-c"),
        ("DB_PASSWORD", "old-db"),
    ] {
        let v = get(&p, "staging", name);
        assert_ne!(v, old);
        assert_eq!(v.len(), 32, "{name}");
        assert!(v.bytes().all(|c| c.is_ascii_alphanumeric()), "{name}");
        assert!(
            !out.stdout().contains(&v) && !said.contains(&v),
            "{name} printed"
        );
        // The remaining members read it (deploy with the real age binary) ...
        assert!(deploy.contains(&v), "{name}: not readable by deploy");
    }
    // ... and the revoked key does not.
    let bob = age_decrypt(&p, "staging", "bob.agekey");
    assert!(!bob.status.success() && bob.stdout.is_empty());
    let status = p.vault(&["status"]).success().stdout();
    let staging = status.split("production").next().unwrap();
    assert!(!staging.contains("exposed:"), "{status}");
    assert!(status.contains("exposed: P (since"), "{status}");
    // Nothing is exposed any more: a bare rotate is refused, with the way to rotate anyway.
    let snap = p.snapshot();
    let refused = p.vault(&["rotate", "staging", "--generate"]);
    let err = refused.refused(1);
    assert!(
        err.contains("staging: no secret is exposed; nothing to rotate"),
        "{err}"
    );
    assert!(refused
        .stderr()
        .contains("`vault rotate staging NAME... --generate`"));
    assert_eq!(p.snapshot(), snap);
}

#[test]
fn named_secrets_are_rotated_exposed_or_not_at_the_length_asked() {
    let p = revoked_project();
    p.vault(&["rotate", "staging", "A", "--generate"]).success();
    let before = serial(&p, "staging");
    let out = p
        .vault(&[
            "rotate",
            "staging",
            "A",
            "B",
            "--generate",
            "--length",
            "20",
        ])
        .success();
    let said = out.stderr();
    assert_eq!(serial(&p, "staging"), before + 1);
    assert!(
        said.contains("staging: A was not exposed; rotated all the same"),
        "{said}"
    );
    assert!(!said.contains("B was not exposed"), "{said}");
    assert!(
        said.contains("staging: still exposed: C (to bob since")
            && said.contains("DB_PASSWORD (to bob since")
            && said.contains("`vault rotate staging`"),
        "{said}"
    );
    for name in ["A", "B"] {
        let v = get(&p, "staging", name);
        assert_eq!(v.len(), 20);
        assert!(v.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(!said.contains(&v));
    }
    assert_eq!(get(&p, "staging", "C"), "old-c");
}

#[test]
fn a_value_from_standard_input_rotates_one_secret() {
    let p = revoked_project();
    let before = serial(&p, "staging");
    let out = p
        .vault_in(&["rotate", "staging", "DB_PASSWORD"], b"issued-by-the-db\n")
        .success();
    assert_eq!(get(&p, "staging", "DB_PASSWORD"), "issued-by-the-db");
    assert_eq!(serial(&p, "staging"), before + 1);
    assert!(!out.stderr().contains("issued-by-the-db"));
    let status = p.vault(&["status"]).success().stdout();
    assert!(!status.contains("exposed: DB_PASSWORD"), "{status}");
    assert!(status.contains("exposed: A (since"), "{status}");
    // Standard input holds one value: for several secrets, refused, nothing written.
    let snap = p.snapshot();
    let run = p.vault_in(&["rotate", "staging"], b"one-value\n");
    let err = run.refused(1);
    assert!(
        err.contains("standard input gives one value, and 3 secrets"),
        "{err}"
    );
    assert!(run.stderr().contains("`vault rotate staging --generate`"));
    // The old value again does not clear an exposure: refused.
    let err = p.vault_in(&["rotate", "staging", "A"], b"old-a").error();
    assert!(err.contains("the new value is the old one"), "{err}");
    assert!(!err.contains("old-a"), "{err}");
    assert_eq!(p.snapshot(), snap);
}

#[test]
fn at_a_terminal_each_value_is_asked_twice_hidden() {
    let p = revoked_project();
    let before = serial(&p, "staging");
    let (status, screen) = common::on_terminal(
        &p.cmd(&["rotate", "staging", "B"]),
        Some("typed-secret\ntyped-secret"),
    );
    assert!(status.success(), "{screen}");
    assert!(screen.contains("Value for B (input hidden): "), "{screen}");
    assert!(
        screen.contains("Value for B again, to confirm: "),
        "{screen}"
    );
    assert!(!screen.contains("typed-secret"), "echoed: {screen}");
    assert_eq!(get(&p, "staging", "B"), "typed-secret");
    assert_eq!(serial(&p, "staging"), before + 1);
    // Two values that differ: refused, nothing written.
    let snap = p.snapshot();
    let (status, screen) = common::on_terminal(
        &p.cmd(&["rotate", "staging", "C"]),
        Some("first-try\nsecond-try"),
    );
    assert!(!status.success(), "{screen}");
    assert!(
        screen.contains("C: the two values typed differ; nothing written"),
        "{screen}"
    );
    assert_eq!(p.snapshot(), snap);
}

#[test]
fn an_unknown_name_or_a_bad_length_changes_nothing() {
    let p = revoked_project();
    let snap = p.snapshot();
    let run = p.vault(&["rotate", "staging", "A", "DB_PASSWRD", "--generate"]);
    let err = run.refused(1);
    assert!(
        err.contains("staging: no secret named DB_PASSWRD; nothing rotated"),
        "{err}"
    );
    assert!(
        run.stderr().contains("hint: did you mean DB_PASSWORD?"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.snapshot(), snap);
    for length in ["8", "15", "1025"] {
        let run = p.vault(&["rotate", "staging", "--generate", "--length", length]);
        let err = run.refused(2);
        assert!(
            err.contains("a generated value has 16 to 1024 characters"),
            "{err}"
        );
        assert_eq!(p.snapshot(), snap);
    }
    // --length means nothing without --generate.
    p.vault_in(&["rotate", "staging", "A", "--length", "20"], b"x")
        .refused(2);
    let err = p.vault(&["rotate", "stagin", "--generate"]).error();
    assert!(err.contains("unknown environment 'stagin'"), "{err}");
    assert_eq!(p.snapshot(), snap);
}

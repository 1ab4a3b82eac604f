//! A fleet through a real salt-master on loopback: `vault master setup` over a real
//! sshd, minions accepted by `vault master accept` (a wrong fingerprint refused), and
//! `vault provision` through the master to three real salt-minions (two staging, one
//! production whose grains claim staging... and a staging one whose grains claim
//! production): each minion gets exactly its own environment's values, byte for byte,
//! nothing plaintext stays in any cache, log or root, a rotation reaches every minion,
//! and a failing minion is named while the others succeed.

use crate::common::fleet::{tools, Fleet};
use crate::common::{self, Project, AWKWARD};
use std::path::Path;

/// The states a fleet test applies: vault's own (the secrets file and the run wrapper),
/// for the app user root (every minion shares this machine's accounts).
pub(crate) fn fleet_project(fleet: &Fleet, staging: &[&str], production: &[&str]) -> Project {
    let p = Project::new();
    let salt = p.root().join("conf/salt");
    std::fs::write(salt.join("top.sls"), "base:\n  '*':\n    - vault\n").unwrap();
    let master = format!("root@127.0.0.1:{}", fleet.sshd.port);
    for (env, minions) in [("staging", staging), ("production", production)] {
        let file = p.root().join(format!("conf/pillar/{env}/env.sls"));
        let text = std::fs::read_to_string(&file).unwrap();
        let list = minions.join(", ");
        std::fs::write(
            &file,
            format!("{text}master: {master}\nminions: [{list}]\nvault:\n  app_user: root\nenv:\n  DB_NAME: db_{env}\n"),
        )
        .unwrap();
    }
    p
}

/// The flags that reach the fixture's master.
pub(crate) fn reach(fleet: &Fleet) -> Vec<String> {
    vec![
        "--ssh-config".into(),
        fleet.sshd.ssh_config(),
        "--remote-root".into(),
        fleet.root.path().display().to_string(),
    ]
}

fn vault(p: &Project, args: &[&str], extra: &[String]) -> common::Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(extra.iter().map(String::as_str));
    p.vault(&all)
}

/// `vault master setup ENV` and the grant of the key it printed, as a member does.
pub(crate) fn setup_and_grant(p: &Project, fleet: &Fleet, env: &str) {
    let host = format!("root@127.0.0.1:{}", fleet.sshd.port);
    let mut flags = reach(fleet);
    // Staging and production share this master, knowingly (see the test below).
    flags.extend([
        "--accept-new-host-key".into(),
        "--shared".into(),
        "--salt-dir".into(),
    ]);
    flags.push(fleet.tools.display().to_string());
    let run = vault(p, &["master", "setup", env, &host], &flags).success();
    let key = run.stdout();
    assert!(key.trim().starts_with("age1"), "{key}");
    let file = p.root().join(format!("recipients/{env}/salt-master.pub"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), key);
    let err = run.stderr();
    let fp = err
        .lines()
        .find_map(|l| l.split("fingerprint: ").nth(1))
        .unwrap_or_else(|| panic!("{err}"))
        .trim()
        .to_string();
    assert_eq!(fp, common::fingerprint_of(&file));
    p.vault(&["grant", env, "salt-master", "--fingerprint", &fp])
        .success();
    // The private key never left the master, and only root reads it there.
    let id = fleet.path(&format!("etc/vault/{env}.key"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&id).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(common::server::files_holding(p.root(), b"AGE-SECRET-KEY").is_empty());
}

pub(crate) fn accept(p: &Project, fleet: &Fleet, env: &str, id: &str, fp: &str) -> common::Run {
    let flags = reach(fleet);
    vault(
        p,
        &["master", "accept", env, id, "--fingerprint", fp],
        &flags,
    )
}

fn provision(p: &Project, fleet: &Fleet, env: &str) -> common::Run {
    let mut flags = reach(fleet);
    flags.push("--approve".into());
    vault(p, &["provision", env], &flags)
}

/// The environment the `example-run` wrapper gives a program on minion `m`.
fn program_env(fleet: &Fleet, m: &str) -> std::collections::BTreeMap<String, String> {
    let wrapper = fleet.minion(m).path("usr/local/bin/example-run");
    let out = std::process::Command::new(&wrapper)
        .args(["env", "-0"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{wrapper:?}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every file under `dir` holding any of `values` (each long enough to be told apart),
/// but for `allowed`.
fn holding_any(dir: &Path, values: &[&str], allowed: &[&Path]) -> Vec<String> {
    let mut hits = Vec::new();
    for v in values.iter().filter(|v| v.len() >= 8) {
        for f in common::server::files_holding(dir, v.as_bytes()) {
            if !allowed.iter().any(|a| f.starts_with(a)) {
                hits.push(format!("{} holds {v:?}", f.display()));
            }
        }
    }
    hits
}

#[test]
fn a_fleet_gets_its_secrets_through_the_master_by_minion_id() {
    let Some(tools) = tools() else { return };
    let mut fleet = Fleet::prepare(&tools);
    let p = fleet_project(&fleet, &["stg-1", "stg-2"], &["prod-1"]);
    for (name, value) in AWKWARD {
        p.set("staging", name, value);
    }
    let prod_secret = "production-only-9f8e7d6c5b4a";
    p.set("production", "PROD_TOKEN", prod_secret);
    setup_and_grant(&p, &fleet, "staging");
    setup_and_grant(&p, &fleet, "production");
    fleet.start_master();
    fleet.add_minion("stg-1", "");
    // Grains are the minion's own word: this staging minion claims production.
    fleet.add_minion("stg-2", "grains:\n  environment: production\n");
    fleet.add_minion("prod-1", "grains:\n  environment: staging\n");
    fleet.wait_pending(&["stg-1", "stg-2", "prod-1"]);

    // A wrong fingerprint accepts nothing.
    let wrong = fleet.minion_fingerprint("stg-2");
    let err = accept(&p, &fleet, "staging", "stg-1", &wrong).error();
    assert!(err.contains("not accepted"), "{err}");
    assert!(fleet.pending_key_path("stg-1").exists());
    for (env, id) in [
        ("staging", "stg-1"),
        ("staging", "stg-2"),
        ("production", "prod-1"),
    ] {
        let fp = fleet.minion_fingerprint(id);
        accept(&p, &fleet, env, id, &fp).success();
    }
    fleet.wait_ready(&["stg-1", "stg-2", "prod-1"]);

    let run = provision(&p, &fleet, "staging").success();
    let table = run.stderr();
    for m in ["stg-1", "stg-2"] {
        assert!(
            table.lines().any(|l| l.starts_with(m) && l.contains("ok")),
            "{table}"
        );
        let env = program_env(&fleet, m);
        for (name, value) in AWKWARD {
            assert_eq!(
                env.get(*name).map(String::as_str),
                Some(*value),
                "{m} {name}"
            );
        }
        assert_eq!(env.get("DB_NAME").map(String::as_str), Some("db_staging"));
        assert!(!env.contains_key("PROD_TOKEN"), "{m}");
    }
    assert!(!table.contains("prod-1"), "{table}");
    provision(&p, &fleet, "production").success();
    let env = program_env(&fleet, "prod-1");
    assert_eq!(env.get("PROD_TOKEN").map(String::as_str), Some(prod_secret));
    assert!(!env.contains_key("PEM"));
    // The staging minion whose grains say production got nothing of production.
    assert!(holding_any(fleet.minion("stg-2").root.path(), &[prod_secret], &[]).is_empty());

    // Nothing plaintext at rest: not in the master's root (cache, job cache, logs, the
    // shipped project), nor in any minion's cache or log; only each minion's secrets
    // file holds them, and the local project never did.
    let mut values: Vec<&str> = AWKWARD.iter().map(|(_, v)| *v).collect();
    values.push(prod_secret);
    let hits = holding_any(fleet.root.path(), &values, &[]);
    assert!(hits.is_empty(), "{hits:#?}");
    for m in fleet.minions() {
        let allowed = [m.path("etc/example").as_path().to_owned()];
        let allowed: Vec<&Path> = allowed.iter().map(|p| p.as_path()).collect();
        let hits = holding_any(m.root.path(), &values, &allowed);
        assert!(hits.is_empty(), "{}: {hits:#?}", m.id);
    }
    assert!(holding_any(p.root(), &values, &[]).is_empty());

    // A rotation reaches every minion of the environment; a dry run first says what
    // would change on each and changes nothing.
    p.set("staging", "PEM", "rotated-value-0a1b2c3d4e");
    let mut dry = reach(&fleet);
    dry.extend(["--approve".into(), "--dry-run".into()]);
    let table = vault(&p, &["provision", "staging"], &dry)
        .success()
        .stderr();
    for m in ["stg-1", "stg-2"] {
        assert!(
            table.lines().any(|l| l.starts_with(m) && l.contains("ok")),
            "{table}"
        );
        let env = program_env(&fleet, m);
        assert_eq!(
            env.get("PEM").map(String::as_str),
            Some(AWKWARD[13].1),
            "{m}"
        );
    }
    assert!(table.contains("secrets_env"), "{table}");
    provision(&p, &fleet, "staging").success();
    for m in ["stg-1", "stg-2"] {
        let env = program_env(&fleet, m);
        assert_eq!(
            env.get("PEM").map(String::as_str),
            Some("rotated-value-0a1b2c3d4e"),
            "{m}"
        );
    }

    // A minion whose state fails is named, the others still succeed, and the run fails.
    let etc = fleet.minion("stg-2").path("etc/example");
    std::fs::remove_dir_all(&etc).unwrap();
    std::fs::write(&etc, "in the way").unwrap();
    let run = provision(&p, &fleet, "staging");
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let table = run.stderr();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("stg-1") && l.contains("ok")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("stg-2") && l.contains("failed")),
        "{table}"
    );
    assert!(table.contains("provisioning failed on stg-2"), "{table}");
}

/// What the master's ext_pillar gives minion `id` (pillar.items masks values; the keys
/// say what it got).
fn pillar_keys(fleet: &Fleet, id: &str) -> serde_json::Value {
    let out = fleet
        .salt(&["--out", "json", "--static", id, "pillar.items"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v[id].clone()
}

#[test]
fn attack_the_master_refuses_what_a_member_s_machine_refuses() {
    let Some(tools) = tools() else { return };
    let mut fleet = Fleet::prepare(&tools);
    let p = fleet_project(&fleet, &["stg-1"], &[]);
    p.set("staging", "TOKEN", "first-value-1a2b3c4d5e");
    setup_and_grant(&p, &fleet, "staging");
    fleet.start_master();
    fleet.add_minion("stg-1", "");
    // Accepted by hand, never through vault: the master may serve other minions.
    fleet.add_minion("rogue", "grains:\n  environment: staging\n");
    fleet.wait_pending(&["stg-1", "rogue"]);
    let fp = fleet.minion_fingerprint("stg-1");
    accept(&p, &fleet, "staging", "stg-1", &fp).success();
    fleet.accept("rogue");
    fleet.wait_ready(&["stg-1", "rogue"]);
    let old = (
        std::fs::read(p.secrets("staging")).unwrap(),
        std::fs::read(p.secrets("staging").with_extension("age.sig")).unwrap(),
    );
    p.set("staging", "TOKEN", "second-value-6f7a8b9c0d");
    provision(&p, &fleet, "staging").success();
    let token = |fleet: &Fleet| program_env(fleet, "stg-1").get("TOKEN").cloned();
    assert_eq!(token(&fleet).as_deref(), Some("second-value-6f7a8b9c0d"));

    // A minion vault never accepted gets nothing of staging, whatever its grains say.
    let rogue = pillar_keys(&fleet, "rogue");
    assert!(rogue.get("secrets").is_none(), "{rogue}");
    // Nor does listing it in minions: (a committed env.sls) accept it.
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let honest = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(&env_sls, honest.replace("[stg-1]", "[stg-1, rogue]")).unwrap();
    let run = provision(&p, &fleet, "staging");
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("rogue has not been accepted for staging"),
        "{}",
        run.stderr()
    );
    assert!(pillar_keys(&fleet, "rogue").get("secrets").is_none());
    std::fs::write(&env_sls, &honest).unwrap();

    // A rolled-back pair (the older signed version, committed by anyone), shipped by a
    // member who overrode their own check: the master refuses it before decrypting.
    std::fs::write(p.secrets("staging"), &old.0).unwrap();
    std::fs::write(p.secrets("staging").with_extension("age.sig"), &old.1).unwrap();
    let run = provision(&p, &fleet, "staging");
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let mut flags = reach(&fleet);
    flags.extend(["--approve".into(), "--insecure-skip-verify".into()]);
    let run = vault(&p, &["provision", "staging"], &flags);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("refused before decrypting"),
        "{}",
        run.stderr()
    );
    assert_eq!(token(&fleet).as_deref(), Some("second-value-6f7a8b9c0d"));

    // A forged ciphertext (age and the public keys only) under the signed sidecar.
    let recipients: Vec<String> = std::fs::read_dir(p.root().join("recipients/staging"))
        .unwrap()
        .flat_map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let keys: Vec<String> = text
                .lines()
                .filter(|l| l.starts_with("ssh-") || l.starts_with("age1"))
                .map(String::from)
                .collect();
            keys
        })
        .collect();
    let forged = common::forge::age_encrypt(&recipients, b"secrets:\n  TOKEN: \"attacker\"\n");
    std::fs::write(p.secrets("staging"), &forged).unwrap();
    let err = vault(&p, &["provision", "staging"], &flags).error();
    assert!(err.contains("cannot be checked"), "{err}");
    // Planted straight into what the master serves, then a highstate the minion runs
    // on its own: the ext_pillar verifies before it decrypts, and serves nothing.
    let shipped = fleet.path("srv/vault/example/staging/conf/pillar/staging/secrets.sls.age");
    std::fs::write(&shipped, &forged).unwrap();
    let out = fleet
        .salt(&["--out", "json", "--static", "stg-1", "state.apply"])
        .args(["saltenv=staging", "pillarenv=staging"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("refused before decrypting"), "{said}");
    assert!(!said.contains("attacker"), "{said}");
    assert_eq!(token(&fleet).as_deref(), Some("second-value-6f7a8b9c0d"));
}

#[test]
fn attack_a_fresh_master_never_trusts_a_stranger_s_founding() {
    let Some(tools) = tools() else { return };
    let fleet = Fleet::prepare(&tools);
    let p = fleet_project(&fleet, &["stg-1"], &[]);
    p.set("staging", "TOKEN", "alice-value-1a2b3c4d5e");
    // The member's machine knows alice's staging; the environment is then founded anew
    // by a stranger (mallory, who has repository access) with a key of their own.
    setup_and_grant(&p, &fleet, "staging");
    let stranger = p.root().join("stranger-home");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::remove_file(p.secrets("staging")).unwrap();
    std::fs::remove_file(p.secrets("staging").with_extension("age.sig")).unwrap();
    for f in std::fs::read_dir(p.root().join("recipients/staging")).unwrap() {
        let f = f.unwrap().path();
        if !f.ends_with("salt-master.pub") {
            std::fs::remove_file(f).unwrap();
        }
    }
    p.add_member("staging", "mallory", "mallory_ed25519.pub");
    let value = stranger.join("value");
    std::fs::write(&value, "mallory-value-9z8y7x").unwrap();
    let set = [
        "set",
        "staging",
        "TOKEN",
        "--from-file",
        value.to_str().unwrap(),
    ];
    // A founding admits only keys its founder verified: mallory verifies the master's
    // key, as anyone with the public keys can.
    let fp = common::fingerprint_of(&p.root().join("recipients/staging/salt-master.pub"));
    let trust = ["trust", "staging", "--fingerprint", &fp];
    let out = p
        .on_machine(&stranger, "mallory_ed25519", &trust)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = p
        .on_machine(&stranger, "mallory_ed25519", &set)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Shipped by mallory's machine, which trusts its own founding: the master, anchored
    // in alice's trust at setup, refuses it.
    let mut flags = reach(&fleet);
    flags.push("--approve".into());
    let mut args = vec!["provision", "staging"];
    args.extend(flags.iter().map(String::as_str));
    let out = p
        .on_machine(&stranger, "mallory_ed25519", &args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused before decrypting"), "{err}");
    assert!(holding_any(fleet.root.path(), &["mallory-value-9z8y7x"], &[]).is_empty());
}

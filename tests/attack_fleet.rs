//! Attacks on the fleet through a real salt-master (issue 14, DESIGN §4-5), mounted as an
//! attacker would: a repo writer's commits then a member's honest `vault provision`, a
//! minion's own `salt-call` asking the master for what it should not get, and an operator
//! habit (`salt-key -a` by hand). Each test stands up its own small fleet (the
//! `common::fleet` fixture: a real salt-master behind a loopback sshd, real minions) and
//! reads what a minion can get with `salt-call pillar.items` on that minion, which is
//! exactly what a compromised minion can ask for.

use crate::common::fleet::{self, Daemon, Fleet};
use crate::common::{self, fingerprint_of, Project};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) const STAGING_VALUE: &str = "staging-secret-value-11";
pub(crate) const PRODUCTION_VALUE: &str = "production-secret-value-22";

/// A project served by a fleet's master: both environments set up on it and granted,
/// their minions accepted through `vault master accept`, each provisioned once.
pub(crate) struct Bed {
    // The fleet goes down before the project (fields drop in order).
    pub(crate) fleet: Fleet,
    pub(crate) p: Project,
    pub(crate) host: String,
}

impl Bed {
    /// `envs`: each environment with its minions (`(id, extra minion config)`).
    pub(crate) fn new(tools: &Path, envs: &[(&str, &[(&str, &str)])]) -> Bed {
        let fleet = Fleet::prepare(tools);
        let p = Project::new();
        let host = format!("root@127.0.0.1:{}", fleet.sshd.port);
        let mut bed = Bed { fleet, p, host };
        // A trivial state tree: what matters here is what each minion's pillar holds.
        let root = bed.p.root().to_path_buf();
        std::fs::write(
            root.join("conf/salt/top.sls"),
            "base:\n  '*':\n    - probe\n",
        )
        .unwrap();
        std::fs::write(
            root.join("conf/salt/probe.sls"),
            "probe:\n  test.succeed_without_changes: []\n",
        )
        .unwrap();
        for (env, minions) in envs {
            let value = if *env == "production" {
                PRODUCTION_VALUE
            } else {
                STAGING_VALUE
            };
            bed.p.set(env, "A", value);
            bed.setup(env);
            let ids: Vec<&str> = minions.iter().map(|(id, _)| *id).collect();
            bed.set_minions(env, &ids);
        }
        bed.fleet.start_master();
        for (env, minions) in envs {
            for (id, extra) in minions.iter() {
                bed.fleet.add_minion(id, extra);
            }
            for (id, _) in minions.iter() {
                bed.fleet.wait_pending(&[id]);
                let fp = bed.fleet.minion_fingerprint(id);
                bed.accept(env, id, &fp).success();
            }
        }
        let all: Vec<&str> = envs
            .iter()
            .flat_map(|(_, m)| m.iter().map(|(id, _)| *id))
            .collect();
        bed.fleet.wait_ready(&all);
        for (env, _) in envs {
            bed.provision(env, &["--approve"]).success();
        }
        bed
    }

    pub(crate) fn reach(&self) -> Vec<String> {
        vec![
            "--remote-root".into(),
            self.fleet.root.path().display().to_string(),
            "--ssh-config".into(),
            self.fleet.sshd.ssh_config(),
        ]
    }

    pub(crate) fn run(&self, mut c: Command) -> common::Run {
        c.args(self.reach());
        common::Run(c.output().unwrap())
    }

    /// `vault master setup ENV` and the grant of the master's key, as alice.
    pub(crate) fn setup(&self, env: &str) {
        let salt_dir = self.fleet.tools.display().to_string();
        let mut c = self.p.cmd(&["master", "setup", env, &self.host]);
        // Every environment of the bed shares its one master, knowingly.
        c.args(["--salt-dir", &salt_dir, "--accept-new-host-key", "--shared"]);
        self.run(c).success();
        let pub_file = self
            .p
            .root()
            .join(format!("recipients/{env}/salt-master.pub"));
        let fp = fingerprint_of(&pub_file);
        self.p
            .vault(&["grant", env, "salt-master", "--fingerprint", &fp])
            .success();
    }

    pub(crate) fn accept(&self, env: &str, id: &str, fp: &str) -> common::Run {
        let c = self
            .p
            .cmd(&["master", "accept", env, id, "--fingerprint", fp]);
        self.run(c)
    }

    pub(crate) fn provision(&self, env: &str, extra: &[&str]) -> common::Run {
        let mut c = self.p.cmd(&["provision", env]);
        c.args(extra);
        self.run(c)
    }

    /// `env`'s env.sls names this master and exactly `ids` as its minions.
    pub(crate) fn set_minions(&self, env: &str, ids: &[&str]) {
        let path = self.p.root().join(format!("conf/pillar/{env}/env.sls"));
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("master:") && !l.starts_with("minions:"))
            .collect();
        let list: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
        std::fs::write(
            &path,
            format!(
                "{}\nmaster: '{}'\nminions: [{}]\n",
                kept.join("\n"),
                self.host,
                list.join(", ")
            ),
        )
        .unwrap();
    }

    pub(crate) fn env_sls(&self, env: &str) -> PathBuf {
        self.p.root().join(format!("conf/pillar/{env}/env.sls"))
    }

    /// What minion `id` itself gets when it asks the master for its pillar (with
    /// `args`, e.g. `pillarenv=production`): `salt-call pillar.items` on the minion.
    pub(crate) fn pillar_of(&self, id: &str, args: &[&str]) -> String {
        self.pillar_at(&self.fleet.minion(id).config_dir(), args)
    }

    pub(crate) fn pillar_at(&self, config_dir: &Path, args: &[&str]) -> String {
        let out = Command::new(self.fleet.tools.join("salt-call"))
            .arg("-c")
            .arg(config_dir)
            .args([
                "--out",
                "json",
                "--retcode-passthrough",
                "pillar.items",
                "unmask=True",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// A salt-minion started from a config folder of the fixture's (a machine that claims
/// an ID the fixture's minion had), its process group killed on Drop.
pub(crate) struct Impostor {
    _daemon: Daemon,
}

impl Impostor {
    pub(crate) fn start(tools: &Path, config_dir: &Path) -> Impostor {
        let mut cmd = Command::new(tools.join("salt-minion"));
        cmd.arg("-c").arg(config_dir);
        Impostor {
            _daemon: Daemon::spawn(cmd),
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool, log: &Path) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting for {what}\n{}",
            {
                let l = std::fs::read_to_string(log).unwrap_or_default();
                l[l.len().saturating_sub(2500)..].to_string()
            }
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Attacks the master refuses, each mounted against one fleet (a staging minion whose
/// grains say production, a production minion, and a third machine): a wrong
/// fingerprint accepts nothing; a staging minion asking for `pillarenv=production`
/// gets nothing of production; a production minion listed in staging's env.sls is
/// refused before Salt runs; a minion accepted by hand with salt-key gets no secrets
/// and is refused as a target; a pair forged by a repo writer and shipped by a member
/// with --insecure-skip-verify never reaches a minion.
#[test]
fn attacks_the_master_refuses() {
    let Some(tools) = fleet::tools() else {
        return;
    };
    let bed = Bed::new(
        &tools,
        &[
            ("staging", &[("s1", "grains:\n  environment: production\n")]),
            ("production", &[("p1", "")]),
        ],
    );
    // The staging minion sees its own value, never production's.
    let own = bed.pillar_of("s1", &[]);
    assert!(own.contains(STAGING_VALUE), "{own}");
    for args in [
        &["pillarenv=production"][..],
        &["pillarenv=production", "saltenv=production"],
    ] {
        let got = bed.pillar_of("s1", args);
        assert!(!got.contains(PRODUCTION_VALUE), "{args:?}: {got}");
    }

    // A third machine: a wrong fingerprint accepts nothing.
    let mut bed = bed;
    bed.fleet.add_minion("h1", "");
    bed.fleet.wait_pending(&["h1"]);
    let wrong = "ab".repeat(32);
    bed.accept("staging", "h1", &wrong).error();
    assert!(!bed.fleet.master_pki().join("minions/h1").exists());
    assert!(bed.fleet.pending_key_path("h1").exists());
    // A production minion, or one never accepted by vault, listed in staging's env.sls.
    let err = {
        bed.set_minions("staging", &["s1", "p1"]);
        bed.provision("staging", &["--approve"]).stderr()
    };
    assert!(err.contains("p1"), "{err}");
    let got = bed.pillar_of("p1", &["pillarenv=staging"]);
    assert!(!got.contains(STAGING_VALUE), "{got}");
    // Accepted by hand (salt-key, no fingerprint checked): no secrets, and refused.
    bed.fleet.accept("h1");
    bed.fleet.wait_ready(&["h1"]);
    bed.set_minions("staging", &["s1", "h1"]);
    let err = bed.provision("staging", &["--approve"]).stderr();
    assert!(err.contains("h1"), "{err}");
    for args in [&[][..], &["pillarenv=staging"]] {
        let got = bed.pillar_of("h1", args);
        assert!(!got.contains(STAGING_VALUE), "{got}");
        assert!(!got.contains(PRODUCTION_VALUE), "{got}");
    }
    bed.set_minions("staging", &["s1"]);

    // A repo writer replaces staging's ciphertext with one of their own (to the master's
    // public key); a member ships it with --insecure-skip-verify.
    let master_pub =
        std::fs::read_to_string(bed.p.root().join("recipients/staging/salt-master.pub")).unwrap();
    let forged = crate::common::forge::age_encrypt(
        &[master_pub],
        b"secrets:\n  A: 'forged-by-a-stranger-33'\n",
    );
    std::fs::write(bed.p.secrets("staging"), forged).unwrap();
    let run = bed.provision("staging", &["--approve", "--insecure-skip-verify"]);
    assert_ne!(run.code(), 0, "{}", run.stderr());
    let got = bed.pillar_of("s1", &[]);
    assert!(!got.contains("forged-by-a-stranger-33"), "{got}");
}

/// A repo writer puts back the pair of an older version (signed by a member then, so it
/// verifies), say from before `vault rotate` replaced a leaked value; a member runs an
/// ordinary `vault provision`. Masterless, the server's record refuses a version its
/// last one follows; through the master nothing keeps that record: the master's memory
/// only refuses a rollback that readmits a removed key, so the old value is served to
/// every minion.
#[test]
fn attack_a_rolled_back_pair_is_served_through_the_master() {
    let Some(tools) = fleet::tools() else {
        return;
    };
    let bed = Bed::new(&tools, &[("staging", &[("r1", "")])]);
    assert!(bed.pillar_of("r1", &[]).contains(STAGING_VALUE));
    let old_pair: Vec<(PathBuf, Vec<u8>)> = [
        bed.p.secrets("staging"),
        bed.p.root().join("conf/pillar/staging/secrets.sls.age.sig"),
    ]
    .into_iter()
    .map(|f| {
        let b = std::fs::read(&f).unwrap();
        (f, b)
    })
    .collect();
    bed.p.set("staging", "A", "rotated-value-44");
    bed.provision("staging", &[]).success();
    assert!(bed.pillar_of("r1", &[]).contains("rotated-value-44"));
    // The attacker's commit: the old files, byte for byte.
    for (f, b) in &old_pair {
        std::fs::write(f, b).unwrap();
    }
    let run = bed.provision("staging", &[]);
    let got = bed.pillar_of("r1", &[]);
    assert!(
        !got.contains(STAGING_VALUE),
        "the rolled-back value reached the minion (provision exit {}: {})\n{got}",
        run.code(),
        run.stderr()
    );
}

/// The master's record binds a minion ID to an environment, not to the key that was
/// checked: when the minion's key is deleted (a reinstalled machine, or `salt-key -d`)
/// and another machine's key under that ID is accepted by hand (`salt-key -a`/`-A`, the
/// habit of every Salt operator, no fingerprint read), that machine gets the
/// environment's secrets from the ext_pillar.
#[test]
fn attack_a_new_key_accepted_by_hand_under_an_accepted_id_gets_the_secrets() {
    let Some(tools) = fleet::tools() else {
        return;
    };
    let mut bed = Bed::new(&tools, &[("staging", &[("k1", "")])]);
    assert!(bed.pillar_of("k1", &[]).contains(STAGING_VALUE));
    // Another machine claims k1: the old minion is gone, its key deleted.
    bed.fleet.stop_minion("k1");
    let out = bed.fleet.salt_key(&["-y", "-d", "k1"]).output().unwrap();
    assert!(out.status.success());
    // A new machine of its own (a root, a key, no pidfile of the old one's), as k1.
    let m = bed.fleet.minion("k1");
    let machine = tempfile::tempdir().unwrap();
    let old_root = m.root.path().display().to_string();
    let new_root = machine.path().display().to_string();
    let conf = std::fs::read_to_string(m.config_dir().join("minion")).unwrap();
    let config = machine.path().join("etc/salt");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("minion"), conf.replace(&old_root, &new_root)).unwrap();
    let _impostor = Impostor::start(&tools, &config);
    let pending = bed.fleet.pending_key_path("k1");
    let log = machine.path().join("var/log/salt/minion");
    wait_until(
        "the new key of k1 to reach the master",
        || pending.exists(),
        &log,
    );
    let out = bed.fleet.salt_key(&["-y", "-a", "k1"]).output().unwrap();
    assert!(out.status.success());
    let got = bed.pillar_at(&config, &[]);
    assert!(
        !got.contains(STAGING_VALUE),
        "a key vault never checked got staging's secrets\n{got}"
    );
}

/// A link in staging's conf/salt (a repo writer's commit, approved for staging: the
/// approval lists it as one more file) points at the master's identity for production.
/// Salt's fileserver follows links (fileserver_followsymlinks defaults to True), so a
/// staging minion fetches production's private key with `cp.get_file_str` and can
/// decrypt production's committed ciphertext itself.
#[test]
fn attack_a_link_in_staging_s_states_serves_production_s_identity() {
    let Some(tools) = fleet::tools() else {
        return;
    };
    let bed = Bed::new(
        &tools,
        &[("staging", &[("l1", "")]), ("production", &[("l2", "")])],
    );
    // From R/srv/vault/example/staging/conf/salt up to R, then etc/vault: the same
    // relative path on a real master (R = /).
    std::os::unix::fs::symlink(
        "../../../../../../etc/vault/production.key",
        bed.p.root().join("conf/salt/logo.png"),
    )
    .unwrap();
    let err = bed.provision("staging", &["--approve"]).refused(2);
    assert!(err.contains("conf/salt/logo.png is a link"), "{err}");
    // Planted on the master itself (an older vault, a hand copy): Salt serves no link.
    std::fs::remove_file(bed.p.root().join("conf/salt/logo.png")).unwrap();
    bed.provision("staging", &["--approve"]).success();
    std::os::unix::fs::symlink(
        "../../../../../../etc/vault/production.key",
        bed.fleet
            .path("srv/vault/example/staging/conf/salt/logo.png"),
    )
    .unwrap();
    let out = Command::new(bed.fleet.tools.join("salt-call"))
        .arg("-c")
        .arg(bed.fleet.minion("l1").config_dir())
        .args([
            "--out",
            "json",
            "cp.get_file_str",
            "salt://logo.png",
            "saltenv=staging",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(
        !got.contains("AGE-SECRET-KEY-"),
        "a staging minion read production's identity through the master\n{got}"
    );
}

/// A pillar file of staging (approved for staging) is rendered on the master, by Salt's
/// Jinja, as root: `salt['cmd.run']` there reads production's identity (or anything
/// else) into staging's pillar, which a staging minion then reads.
#[test]
fn attack_jinja_in_staging_s_pillar_runs_on_the_master() {
    let Some(tools) = fleet::tools() else {
        return;
    };
    let bed = Bed::new(
        &tools,
        &[("staging", &[("j1", "")]), ("production", &[("j2", "")])],
    );
    let key = bed.fleet.path("etc/vault/production.key");
    let env_sls = bed.env_sls("staging");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        format!(
            "{text}note: \"{{{{ salt['cmd.run']('grep AGE-SECRET {}') }}}}\"\n",
            key.display()
        ),
    )
    .unwrap();
    let err = bed.provision("staging", &["--approve"]).refused(2);
    assert!(err.contains("is a template"), "{err}");
    // Planted in what the master serves (an older vault, a hand copy): the master renders
    // pillar files as plain YAML only, so the Jinja never runs.
    std::fs::write(&env_sls, &text).unwrap();
    bed.provision("staging", &["--approve"]).success();
    let shipped = bed
        .fleet
        .path("srv/vault/example/staging/conf/pillar/staging/env.sls");
    let planted = std::fs::read_to_string(&shipped).unwrap();
    std::fs::write(
        &shipped,
        format!(
            "{planted}note: \"{{{{ salt['cmd.run']('grep AGE-SECRET {}') }}}}\"\n",
            key.display()
        ),
    )
    .unwrap();
    let got = bed.pillar_of("j1", &[]);
    assert!(
        !got.contains("AGE-SECRET-KEY-"),
        "staging's pillar, rendered on the master, read production's identity\n{got}"
    );
}

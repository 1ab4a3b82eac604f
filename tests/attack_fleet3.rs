//! A third round of attacks on the fleet through a real salt-master (issue 14, DESIGN
//! §4-5), by a helper who read the code but not the earlier attack tests, each mounted as
//! an attacker would on the `attack_fleet` test bed (a real salt-master behind a loopback
//! sshd, real minions accepted through `vault master accept`, each environment
//! provisioned once): what root on a staging minion can make the master tell a
//! production member, what a member of staging only can reach by doing what vault asks
//! of them, what a repository writer's approved rename does to a rotation, and what the
//! ext_pillar makes of a minion ID that is not one.

use crate::attack_fleet::{Bed, Impostor, PRODUCTION_VALUE, STAGING_VALUE};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `salt-call ARGS` on minion `id` (its owner is root there): standard output and error.
fn salt_call(bed: &Bed, id: &str, args: &[&str]) -> String {
    bed.fleet.salt_call(id, args).concat()
}

/// What Salt's ext_pillar gets from vault on the master for `minion_id`, run exactly as
/// `vault_pillar.py` runs it.
fn master_pillar(bed: &Bed, minion_id: &str) -> (bool, String) {
    let root = bed.fleet.root.path();
    let state = root.join("var/lib/vault/master");
    let out = Command::new(root.join("usr/local/bin/vault"))
        .args(["--color", "never", "master", "pillar", "--root"])
        .arg(root)
        .arg("--")
        .arg(minion_id)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &state)
        .env("XDG_STATE_HOME", &state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The ext_pillar is called with whatever ID Salt authenticated; vault must serve only
/// the IDs it accepted, whatever the characters (paths, globs, lists, control bytes,
/// another accepted ID with a suffix). Refused: each gets `{}` or an error, no value.
fn odd_minion_ids_get_nothing(bed: &Bed) {
    for id in [
        "../../etc/vault/staging",
        "s1/../s1",
        "s1\n",
        "s1 ",
        "S1",
        "s1,p1",
        "*",
        "s1\u{0}x",
        "",
        "-s1",
        "--root=/",
    ] {
        if id.contains('\u{0}') {
            continue; // not an argument the kernel passes
        }
        let (_ok, text) = master_pillar(bed, id);
        assert!(
            !text.contains(STAGING_VALUE) && !text.contains(PRODUCTION_VALUE),
            "the ext_pillar served a value for {id:?}: {text}"
        );
    }
    // The accepted ID itself does get its secrets (the probe above can fail).
    let (ok, text) = master_pillar(bed, "s1");
    assert!(ok && text.contains(STAGING_VALUE), "{text}");
}

/// A repository writer renames the project (`project_name` in conf/pillar/project.sls,
/// a one-line diff the member approves), then a member rotates staging's secret, as one
/// does after a leak, and provisions. The laptop ships to `srv/vault/<new name>/staging`,
/// the master keeps serving `srv/vault/<name it was set up with>/staging`: the old,
/// leaked value, verified (it is no older than what the master has seen, as the master
/// never saw the new one), while the run reports every minion ok. Property: a rotation
/// that `vault provision` reports as applied has reached every minion (issue 14 §4).
///
/// Also refused on the same bed: odd minion IDs through the ext_pillar.
#[test]
fn attack_a_renamed_project_leaves_the_rotated_secret_unshipped_while_provision_says_ok() {
    let Some(tools) = crate::common::fleet::tools() else {
        return;
    };
    let bed = Bed::new(&tools, &[("staging", &[("s1", "")])]);
    odd_minion_ids_get_nothing(&bed);

    let project_sls = bed.p.root().join("conf/pillar/project.sls");
    let text = std::fs::read_to_string(&project_sls).unwrap();
    let renamed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("project_name:") {
                "project_name: renamed".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&project_sls, format!("{}\n", renamed.join("\n"))).unwrap();
    let rotated = "rotated-after-a-leak-33";
    bed.p.set("staging", "A", rotated);
    let run = bed.provision("staging", &["--approve"]);
    let pillar = bed.pillar_of("s1", &[]);
    assert!(
        !run.0.status.success() || pillar.contains(rotated),
        "provision reported success, yet minion s1 still gets the old value (the master serves \
         what was shipped under the old name):\nrun: {}{}\npillar: {pillar}",
        run.stdout(),
        run.stderr()
    );
}

/// vault provisions staging through the master as root there (`root@` or `sudo -n`: it
/// runs rsync and `vault master local-apply` as root), and the master holds every
/// environment's identity. So a member of staging only, given what `vault provision
/// staging` needs, reads production's identity over that very connection and decrypts
/// production's ciphertext (which is in git). Property: a member of one environment never
/// reads another's secrets (DESIGN §4). The README's "One master, many environments"
/// guards against what staging *ships*, not against who *reaches* the master.
#[test]
fn attack_a_staging_only_member_reaches_the_shared_master_and_reads_production() {
    let Some(tools) = crate::common::fleet::tools() else {
        return;
    };
    // Whoever provisions staging through a master is root on it. So a master that
    // serves staging takes production only when the member setting it up says that
    // everyone who provisions staging may read production (--shared).
    let bed = Bed::new(&tools, &[("staging", &[("s1", "")])]);
    let salt_dir = bed.fleet.tools.display().to_string();
    let mut c = bed.p.cmd(&["master", "setup", "production", &bed.host]);
    c.args(["--salt-dir", &salt_dir]);
    let err = bed.run(c).error();
    assert!(err.contains("serves staging already"), "{err}");
    let key = bed.fleet.root.path().join("etc/vault/production.key");
    assert!(
        !key.exists(),
        "a production identity was made on staging's master"
    );
    assert!(!bed
        .p
        .root()
        .join("recipients/production/salt-master.pub")
        .exists());
    // Over the access provisioning staging needs, there is nothing of production.
    bed.provision("staging", &[]).success();
    let out = Command::new("ssh")
        .args(["-F", &bed.fleet.sshd.ssh_config()])
        .args(["-p", &bed.fleet.sshd.port.to_string()])
        .arg("root@127.0.0.1")
        .arg(format!("cat {}", key.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("AGE-SECRET-KEY"));
}

/// Root on a staging minion forges a production minion's return. Every minion gets every
/// publication (Salt's ZeroMQ publisher broadcasts, and a minion logs each one it
/// decodes at debug: `PubChannel received`), so the attacker learns the jid of
/// production's `state.apply`; then, with a plain `salt-call event.fire ... fire_master`
/// carrying an `events` list, its minion forwards an event tagged
/// `salt/job/<jid>/ret/p1` whose data says `id: p1` (Salt's master fires each listed
/// event's data as is, and blacklists `.../return` but not `.../ret/<id>`). The `salt`
/// CLI on the master takes it as p1's return. Here p1 is down (its states never ran):
/// an honest run says p1 did not return and exits 1; with the forgery it says p1 ok.
/// Property: `vault provision` exits non-zero if any minion failed (issue 14), and one
/// environment's minion cannot speak for another environment's.
#[test]
fn attack_a_staging_minion_forges_a_production_minion_s_return() {
    let Some(tools) = crate::common::fleet::tools() else {
        return;
    };
    let mut bed = Bed::new(
        &tools,
        &[("staging", &[("s1", "")]), ("production", &[("p1", "")])],
    );
    // Refused: root on s1 asks the master to run production's pillar on p1 for it
    // (`peer` is off), to take a file (`file_recv` is off), or reads the mine.
    for args in [
        &["publish.publish", "p1", "pillar.items", "timeout=3"][..],
        &["publish.runner", "jobs.list_jobs"][..],
        &["mine.get", "*", "pillar.items"][..],
        &["cp.push", "/etc/hostname"][..],
    ] {
        let got = salt_call(&bed, "s1", args);
        assert!(!got.contains(PRODUCTION_VALUE), "{args:?}: {got}");
    }
    bed.fleet.stop_minion("p1");
    // Root on s1 has its own minion log at debug, and restarts it.
    bed.fleet.stop_minion("s1");
    let config = bed.fleet.minion("s1").config_dir();
    let file = config.join("minion");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("log_level_logfile: info", "log_level_logfile: debug"),
    )
    .unwrap();
    for f in ["salt-minion.pid", "process_responsibility_salt-minion.pid"] {
        let _ = std::fs::remove_file(bed.fleet.minion("s1").path(&format!("var/run/{f}")));
    }
    let _s1 = Impostor::start(&bed.fleet.tools, &config);
    bed.fleet.wait_ready(&["s1"]);
    let log = bed.fleet.minion("s1").log();
    let start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
    let salt_call_bin = bed.fleet.tools.join("salt-call");
    let attacker =
        std::thread::spawn(move || forge_when_published(&log, start, &salt_call_bin, &config));
    let run = bed.provision("production", &["--approve"]);
    let forged = attacker.join().unwrap();
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        !run.0.status.success(),
        "root on staging's minion made production's run pass for a minion that is down \
         (forged: {forged:?}):\n{said}"
    );
}

/// Root on the staging minion: waits for a publication of `state.apply` in its own log,
/// then has its minion forward a forged return for p1. The jid forged, if any.
fn forge_when_published(
    log: &Path,
    start: usize,
    salt_call_bin: &Path,
    config: &Path,
) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(50);
    let jid = loop {
        if Instant::now() > deadline {
            return None;
        }
        let text = std::fs::read(log).unwrap_or_default();
        let new = String::from_utf8_lossy(text.get(start..).unwrap_or_default()).into_owned();
        let found = new
            .lines()
            .filter(|l| l.contains("PubChannel received") && l.contains("state.apply"))
            .find_map(|l| {
                let at = l.find("'jid': '")? + "'jid': '".len();
                let jid: String = l[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
                (!jid.is_empty()).then_some(jid)
            });
        if let Some(jid) = found {
            break jid;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ret = serde_json::json!({
        "test_|-probe_|-probe_|-succeed_without_changes": {
            "__id__": "probe", "name": "probe", "result": true, "changes": {},
            "comment": "Success!", "duration": 1.0, "__run_num__": 0, "start_time": "00:00:00.0"
        }
    });
    let data = serde_json::json!({
        "id": "p1", "jid": jid, "fun": "state.apply", "fun_args": [], "return": ret,
        "retcode": 0, "success": true, "cmd": "_return",
    });
    let event = serde_json::json!({
        "data": {}, "tag": "vault-attack", "pretag": null,
        "events": [{"tag": format!("salt/job/{jid}/ret/p1"), "data": data}],
    });
    let _ = Command::new(salt_call_bin)
        .arg("-c")
        .arg(config)
        .args(["event.fire", &event.to_string(), "fire_master"])
        .stdin(Stdio::null())
        .output();
    Some(jid)
}

//! A second round of attacks on the fleet through a real salt-master (issue 14, DESIGN
//! §4-5), each mounted as an attacker would, on the `attack_fleet` test bed (a real
//! salt-master behind a loopback sshd, real minions accepted through `vault master
//! accept`, each environment provisioned once): what a minion (its owner is root on it)
//! asks the master for, what an everyday `salt-call` on a minion leaves on the master,
//! and what a repository writer's commit gets shipped to the master without approval.

use crate::attack_fleet::{Bed, PRODUCTION_VALUE, STAGING_VALUE};
use crate::common;
use std::path::Path;

/// `salt-call ARGS` on minion `id`, through the master: what that minion's owner can ask
/// (its standard output, then its standard error).
fn salt_call(bed: &Bed, id: &str, args: &[&str]) -> String {
    bed.fleet.salt_call(id, args).concat()
}

/// Files under `dir` holding `value`.
fn holding(dir: &Path, value: &str) -> Vec<String> {
    common::server::files_holding(dir, value.as_bytes())
        .iter()
        .map(|f| f.display().to_string())
        .collect()
}

/// A staging minion (its owner is root on it) asks the master for production's files
/// and states in every way Salt offers one: production's file_roots listed and each file
/// fetched, a path out of the roots to the master's identities, production's states
/// applied with `saltenv=production pillarenv=production`, its pillar with the top files
/// of every environment merged (no pillarenv). None of it holds a production value or
/// any identity: production's roots hold states only, and its secrets come by minion ID.
#[test]
fn attack_a_staging_minion_reads_production_s_roots_on_the_master() {
    let Some(tools) = crate::common::fleet::tools() else {
        return;
    };
    let bed = Bed::new(
        &tools,
        &[("staging", &[("s1", "")]), ("production", &[("p1", "")])],
    );
    let mut got = String::new();
    for env in ["production", "staging"] {
        let [list, err] = bed
            .fleet
            .salt_call("s1", &["cp.list_master", &format!("saltenv={env}")]);
        got.push_str(&list);
        got.push_str(&err);
        let files: Vec<String> = serde_json::from_str::<serde_json::Value>(&list)
            .ok()
            .and_then(|v| v["local"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.as_str().map(String::from))
            .collect();
        assert!(!files.is_empty(), "{env}: {list}");
        for f in files {
            let url = format!("salt://{f}");
            got.push_str(&salt_call(
                &bed,
                "s1",
                &["cp.get_file_str", &url, &format!("saltenv={env}")],
            ));
        }
    }
    // Out of the roots, to where the identities and the shipped ciphertext are.
    for url in [
        "salt://../../../../../etc/vault/production.key",
        "salt://../pillar/production/secrets.sls.age",
        "salt://%2e%2e/pillar/production/env.sls",
    ] {
        got.push_str(&salt_call(
            &bed,
            "s1",
            &["cp.get_file_str", url, "saltenv=production"],
        ));
    }
    got.push_str(&salt_call(
        &bed,
        "s1",
        &[
            "state.apply",
            "saltenv=production",
            "pillarenv=production",
            "test=True",
        ],
    ));
    got.push_str(&salt_call(&bed, "s1", &["pillar.items", "unmask=True"]));
    got.push_str(&salt_call(
        &bed,
        "s1",
        &[
            "pillar.item",
            "secrets",
            "pillarenv=production",
            "unmask=True",
        ],
    ));
    assert!(!got.contains(PRODUCTION_VALUE), "{got}");
    assert!(!got.contains("AGE-SECRET-KEY"), "{got}");
    // A staging member's env.sls, approved for staging: minions named by a glob or a
    // compound target, and a master that is an ssh option, are refused before anything
    // connects; nothing runs.
    let env_sls = bed.env_sls("staging");
    let honest = std::fs::read_to_string(&env_sls).unwrap();
    let marker = bed.fleet.path("proxy-command-ran");
    let port = bed.fleet.sshd.port;
    let proxy = format!(
        "-oProxyCommand=touch\t{}@127.0.0.1:{port}",
        marker.display()
    );
    for (what, minions, master) in [
        ("glob", "['*']", bed.host.as_str()),
        ("compound", "['L@p1,s1']", bed.host.as_str()),
        ("glob in an ID", "['s*']", bed.host.as_str()),
        ("ssh option", "['s1']", "-oProxyCommand=true"),
        ("ssh option as user", "['s1']", proxy.as_str()),
    ] {
        let text: Vec<&str> = honest
            .lines()
            .filter(|l| !l.starts_with("master:") && !l.starts_with("minions:"))
            .collect();
        let text = format!(
            "{}\nmaster: '{master}'\nminions: {minions}\n",
            text.join("\n")
        );
        std::fs::write(&env_sls, text).unwrap();
        let run = bed.provision("staging", &["--approve"]);
        assert_ne!(run.code(), 0, "{what}: {}", run.stderr());
        assert!(!marker.exists(), "{what}: the ssh option ran");
    }
    std::fs::write(&env_sls, honest).unwrap();
    // The honest flow reached it (the bed is not silently empty).
    assert!(
        salt_call(&bed, "s1", &["pillar.get", "secrets:A", "unmask=True"]).contains(STAGING_VALUE),
        "s1 got no staging secrets"
    );
}

/// Salt keeps every return a minion sends the master in its job cache
/// (`cachedir/jobs/.../return.p`, for `keep_jobs` hours), beside every environment's
/// identity, and the drop-in does not turn it off. So a value lies there in plain text
/// when a state of vault's own run says it (vault redacts it from what the member sees,
/// since states do: masterless, nothing keeps it), and when a minion's owner (or a
/// minion taken over) runs `salt-call pillar.get secrets:A unmask=True`, whose return
/// goes to the master too.
#[test]
fn attack_a_minion_s_return_leaves_its_secrets_in_the_master_s_job_cache() {
    let Some(tools) = crate::common::fleet::tools() else {
        return;
    };
    let bed = Bed::new(&tools, &[("staging", &[("s1", "")])]);
    let master = bed.fleet.root.path();
    assert!(holding(master, STAGING_VALUE).is_empty());

    // A state that fails and says the value, as a command's error output can: the run
    // redacts it, the master keeps it.
    std::fs::write(
        bed.p.root().join("conf/salt/probe.sls"),
        "probe:\n  cmd.run:\n    - name: 'printf \"%s\" \"$A\"; exit 1'\n    - env:\n      - A: {{ pillar['secrets']['A'] | yaml_dquote }}\n",
    )
    .unwrap();
    let run = bed.provision("staging", &["--approve"]);
    let shown = format!("{}{}", run.stdout(), run.stderr());
    assert!(shown.contains("failed"), "{shown}");
    assert!(!shown.contains(STAGING_VALUE), "{shown}");
    let by_provision = holding(master, STAGING_VALUE);

    // A minion's own call, sent to the master.
    std::fs::write(
        bed.p.root().join("conf/salt/probe.sls"),
        "probe:\n  test.succeed_without_changes: []\n",
    )
    .unwrap();
    let out = salt_call(&bed, "s1", &["pillar.get", "secrets:A", "unmask=True"]);
    assert!(out.contains(STAGING_VALUE), "{out}");
    let after_salt_call = holding(master, STAGING_VALUE);
    assert!(
        by_provision.is_empty() && after_salt_call.is_empty(),
        "secrets at rest on the master: after vault provision: {by_provision:#?}; after salt-call on the minion: {after_salt_call:#?}"
    );
}

/// The approval leaves out every file whose name ends in `.age` or `.age.sig`, anywhere
/// (masterless, rsync leaves them out too), but the rsync to a master leaves out only
/// `secrets.sls` and `.vault-*`: it must ship the environment's ciphertext. So a repo
/// writer's `conf/salt/project/files/payload.age` (or a whole folder `x.age/`) reaches
/// the master's roots unapproved, where the master serves it to every minion of the
/// environment: a state that deploys a folder (`file.recurse`) installs it there.
#[test]
fn attack_an_unapproved_age_file_is_shipped_into_the_master_s_roots() {
    let Some(tools) = crate::common::fleet::tools() else {
        return;
    };
    let bed = Bed::new(&tools, &[("staging", &[("s1", "")])]);
    let root = bed.p.root();
    let payload = "* * * * * root touch /tmp/not-approved\n";
    std::fs::create_dir_all(root.join("conf/salt/project/files.age")).unwrap();
    std::fs::write(root.join("conf/salt/payload.age"), payload).unwrap();
    std::fs::write(root.join("conf/salt/project/files.age/cron"), payload).unwrap();
    // The member's run, with no terminal to ask at and no --approve: only what was
    // approved may go.
    let run = bed.provision("staging", &[]);
    let shipped = bed
        .fleet
        .path("srv/vault/example/staging/conf/salt/payload.age");
    let served = salt_call(
        &bed,
        "s1",
        &[
            "cp.get_file_str",
            "salt://project/files.age/cron",
            "saltenv=staging",
        ],
    );
    assert!(
        !shipped.exists() && !served.contains(payload.trim()),
        "an unapproved file reached the master's roots (provision exited {}): {} / s1 got: {served}",
        run.code(),
        run.stderr()
    );
}

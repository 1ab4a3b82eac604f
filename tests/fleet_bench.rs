//! Not a test: the runs bench/fleet times (ignored; it runs them with `--ignored`). A fleet
//! of N staging minions (`VAULT_FLEET_BENCH_MINIONS`, default 1) through one real
//! salt-master on loopback, set up as a member does (`vault master setup`, `vault grant`,
//! `vault master accept`), then `vault provision staging --jobs J` (`VAULT_FLEET_BENCH_JOBS`,
//! default N) timed: the first run, R runs that each change every minion's secrets
//! file (a rotation of one value before each, outside the timing) and R runs with nothing
//! to change (`VAULT_FLEET_BENCH_RUNS`, default 3). For each run it prints one line,
//! `fleet-bench: KEY=VALUE ...`: the wall time and the CPU seconds (utime + stime, from
//! /proc, with the children each process reaped) of the salt-master's process tree (its
//! workers and the `vault master pillar` each minion's pillar runs), of the minions' trees,
//! of the sshd in front of the master (`vault master local-apply` and the `salt` command it
//! runs), of the member's `vault` (and its ssh), and of the whole machine (/proc/stat).
//! No assertion on time: the figures vary with the machine.

use crate::common::fleet::{tools, Fleet};
use crate::common::Project;
use crate::fleet::{accept, fleet_project, reach, setup_and_grant};
use std::collections::HashMap;
use std::time::Instant;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Clock ticks of CPU (own and reaped children's) of every live process under each of
/// `roots` (itself included).
fn tree_ticks(roots: &[u32]) -> u64 {
    let mut parent = HashMap::new();
    let mut ticks = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses and may hold spaces.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // ppid is field 4, utime..cstime fields 14..17 (1-based, the state being 3).
        parent.insert(pid, f[0] as u32);
        ticks.insert(pid, f[10] + f[11] + f[12] + f[13]);
    }
    let under = |mut pid: u32| loop {
        if roots.contains(&pid) {
            return true;
        }
        match parent.get(&pid) {
            Some(&p) if p != 0 && p != pid => pid = p,
            _ => return false,
        }
    };
    ticks
        .iter()
        .filter(|(pid, _)| under(**pid))
        .map(|(_, t)| t)
        .sum()
}

/// Busy ticks of the whole machine (all but idle and iowait).
fn machine_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    cpu.iter().sum::<u64>() - cpu[3] - cpu[4]
}

/// This process's children's CPU: the member's `vault` runs, which it reaps.
fn client_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f[13] + f[14]
}

struct Meters {
    master: u64,
    minions: u64,
    sshd: u64,
    client: u64,
    machine: u64,
}

fn read_meters(fleet: &Fleet) -> Meters {
    Meters {
        master: tree_ticks(&[fleet.master_pid().unwrap()]),
        minions: tree_ticks(&fleet.minion_pids()),
        sshd: tree_ticks(&[fleet.sshd.pid()]),
        client: client_ticks(),
        machine: machine_ticks(),
    }
}

/// Runs `f` once with the meters read around it; prints its line.
fn measured(fleet: &Fleet, n: usize, jobs: usize, kind: &str, f: impl FnOnce() -> usize) {
    let tick = 100.0; // USER_HZ, 100 on Linux
    let before = read_meters(fleet);
    let start = Instant::now();
    let oks = f();
    let wall = start.elapsed().as_secs_f64();
    let after = read_meters(fleet);
    println!(
        "fleet-bench: n={n} jobs={jobs} kind={kind} wall={wall:.3} master={:.2} minions={:.2} sshd={:.2} client={:.2} machine={:.2} ok={oks}",
        (after.master - before.master) as f64 / tick,
        (after.minions - before.minions) as f64 / tick,
        (after.sshd - before.sshd) as f64 / tick,
        (after.client - before.client) as f64 / tick,
        (after.machine - before.machine) as f64 / tick,
    );
}

/// One timed `vault provision staging --jobs JOBS`: the number of minions it says ok.
fn timed(p: &Project, fleet: &Fleet, n: usize, jobs: usize, kind: &str) {
    let mut args = vec![
        "provision".to_string(),
        "staging".into(),
        "--approve".into(),
        "--jobs".into(),
        jobs.to_string(),
    ];
    args.extend(reach(fleet));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    measured(fleet, n, jobs, kind, || {
        let run = p.vault(&args);
        let out = run.stderr();
        assert_eq!(run.code(), 0, "{out}");
        if std::env::var_os("VAULT_FLEET_BENCH_SHOW").is_some() {
            eprintln!("{out}");
        }
        out.lines()
            .filter(|l| l.starts_with('m') && l.contains(" ok"))
            .count()
    });
}

/// Salt alone, for comparison: `salt -L IDS ARGS...` straight on the master (no SSH, no
/// vault on either side but the ext_pillar's), with vault's timeout (60 s; Salt's 5 s
/// would leave the jobs running past the CLI): the number of minions that answered.
fn salt_alone(fleet: &Fleet, ids: &[&str], jobs: usize, kind: &str, args: &[&str]) {
    measured(fleet, ids.len(), jobs, kind, || {
        let list = ids.join(",");
        let mut all = vec![
            "--out",
            "json",
            "--out-indent",
            "-1",
            "--timeout=60",
            "-L",
            &list,
        ];
        all.extend(args);
        let out = fleet.salt(&all).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if std::env::var_os("VAULT_FLEET_BENCH_SHOW").is_some() {
            eprintln!("{kind}: {:.600}", text);
        }
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|d| {
                d.as_object()
                    .is_some_and(|o| o.keys().any(|k| ids.contains(&k.as_str())))
            })
            .count()
    });
}

#[test]
#[ignore = "a benchmark: bench/fleet runs it"]
fn fleet_bench() {
    let Some(tools) = tools() else { return };
    let n = env_number("VAULT_FLEET_BENCH_MINIONS", 1).max(1);
    let jobs = env_number("VAULT_FLEET_BENCH_JOBS", n).max(1);
    let runs = env_number("VAULT_FLEET_BENCH_RUNS", 3).max(1);
    let ids: Vec<String> = (1..=n).map(|i| format!("m{i:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut fleet = Fleet::prepare(&tools);
    let p = fleet_project(&fleet, &ids, &[]);
    p.set("staging", "TOKEN", "bench-token-0");
    p.set("staging", "DB_PASSWORD", "p@ss,w%rd \"q\" 100%");
    setup_and_grant(&p, &fleet, "staging");
    fleet.start_master();
    for id in &ids {
        fleet.add_minion(id, "");
    }
    fleet.wait_pending(&ids);
    for id in &ids {
        let fp = fleet.minion_fingerprint(id);
        accept(&p, &fleet, "staging", id, &fp).success();
    }
    fleet.wait_ready(&ids);

    timed(&p, &fleet, n, jobs, "first");
    for i in 1..=runs {
        p.set("staging", "TOKEN", &format!("bench-token-{i}"));
        timed(&p, &fleet, n, jobs, "change");
    }
    for _ in 0..runs {
        timed(&p, &fleet, n, jobs, "idle");
    }
    // Where the time goes: Salt's own part of an idle run, and the cost of one job.
    let batch = format!("--batch-size={jobs}");
    let apply = ["state.apply", "saltenv=staging", "pillarenv=staging"];
    let batched: Vec<&str> = [batch.as_str()].into_iter().chain(apply).collect();
    for _ in 0..runs {
        timed(&p, &fleet, n, jobs, "idle");
        salt_alone(&fleet, &ids, jobs, "salt-batch", &batched);
        salt_alone(&fleet, &ids, n, "salt", &apply);
        salt_alone(&fleet, &ids, n, "ping", &["test.ping"]);
    }
}

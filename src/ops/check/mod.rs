//! `vault check`: the CI gate. It needs no private key: signatures, the grant chain
//! against the previous version in git, recipients against the roster, the ciphertext's
//! header, plaintext secrets files, duplicate keys, and how long secrets stay exposed.

use crate::error::Result;
use crate::keys::recipients::{self, Member};
use crate::manifest::{self, Manifest};
use crate::ops::status::{roster_diff, sync_state, Sync};
use crate::project::{EnvName, Project};
use crate::store::{signed_manifest, Pair};
use crate::trust::{SeenEnv, Verified};
use std::path::Path;
use std::process::Command;

/// What `check` found: one line per problem, and a summary.
pub struct Findings {
    pub findings: Vec<String>,
    pub summary: String,
}

/// Checks every environment of `project`, and the project for plaintext secrets files.
pub fn check(project: &Project, max_exposure_days: i64) -> Result<Findings> {
    let mut findings = Vec::new();
    let today = manifest::today();
    let envs = project.environments()?;
    let mut secrets = 0;
    for env in &envs {
        let folder = match recipients::members(project, env) {
            Ok(f) => f,
            Err(e) => {
                findings.push(e.to_string());
                continue;
            }
        };
        duplicates(env, &folder, &mut findings);
        let sc_path = project.sidecar_path(env);
        // Read as it is, without the store's lock: the gate must not write.
        let Some(pair) = Pair::read(project, env)? else {
            if sc_path.exists() {
                findings.push(format!(
                    "{env}: {} exists without its secrets file",
                    project.display_path(&sc_path)
                ));
            }
            continue;
        };
        let previous = pair
            .sidecar
            .as_deref()
            .and_then(|current| previous_in_git(project, env, current));
        let anchors = previous.map(|m| SeenEnv {
            serial: m.serial,
            roster: m.roster.into_iter().map(|r| r.fingerprint).collect(),
        });
        let v = match pair.verify(env, &folder, anchors.as_ref()) {
            Ok(v) => v,
            Err(why) => {
                findings.push(format!(
                    "{env}: {}: signature check failed: {why}",
                    project.display_path(&sc_path)
                ));
                continue;
            }
        };
        secrets += v.manifest.secrets.len();
        roster_findings(env, &folder, &v, &pair.ciphertext, &mut findings);
        exposure_findings(env, &v, &today, max_exposure_days, &mut findings);
    }
    plaintext(project, &mut findings);
    let summary = format!(
        "vault check: {} environment(s), {secrets} secret(s), {} finding(s)",
        envs.len(),
        findings.len()
    );
    Ok(Findings { findings, summary })
}

/// Members the roster and the folder disagree on, and a ciphertext not encrypted to
/// exactly the roster.
fn roster_findings(
    env: &EnvName,
    folder: &[Member],
    v: &Verified,
    ct: &[u8],
    findings: &mut Vec<String>,
) {
    let diff = roster_diff(folder, &v.manifest.roster);
    for (member, fp) in &diff.pending {
        findings.push(format!(
            "{env}: pending member {member} ({fp}): in recipients/{env}/ but never granted; a member runs `vault grant {env} {member} --fingerprint ...` after checking it"
        ));
    }
    for (member, fp) in &diff.removed {
        findings.push(format!(
            "{env}: removed member {member} ({fp}) can still read the file: run `vault revoke {env} {member}` (or `vault rekey {env}`)"
        ));
    }
    match sync_state(&diff.granted, ct) {
        Sync::InSync | Sync::NoFile => {}
        Sync::RekeyNeeded(why) => findings.push(format!(
            "{env}: not encrypted to exactly its roster: {}",
            why.join("; ")
        )),
        Sync::Unreadable(why) => findings.push(format!("{env}: unreadable ciphertext: {why}")),
    }
}

/// Secrets exposed to a departed member for longer than `max_days`.
fn exposure_findings(
    env: &EnvName,
    v: &Verified,
    today: &str,
    max_days: i64,
    findings: &mut Vec<String>,
) {
    for x in &v.manifest.exposed {
        let days = manifest::days_between(&x.since, today).unwrap_or(i64::MAX);
        if days > max_days {
            findings.push(format!(
                "{env}: {} exposed for {days} days (since {}, when {} left): give it a new value",
                x.name, x.since, x.member
            ));
        }
    }
}

/// The same key under two member names.
fn duplicates(env: &EnvName, folder: &[Member], findings: &mut Vec<String>) {
    for (i, a) in folder.iter().enumerate() {
        for b in &folder[i + 1..] {
            for k in &a.keys {
                if b.keys.iter().any(|o| o.fingerprint() == k.fingerprint()) {
                    findings.push(format!(
                        "{env}: the key {} is both {} and {}",
                        k.fingerprint(),
                        a.name,
                        b.name
                    ));
                }
            }
        }
    }
}

/// A plaintext `secrets.sls` tracked by git, or present and not ignored.
fn plaintext(project: &Project, findings: &mut Vec<String>) {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(project.root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let named = |out: &[u8]| -> Vec<String> {
        out.split(|&b| b == 0)
            .filter_map(|p| std::str::from_utf8(p).ok())
            .filter(|p| Path::new(p).file_name().is_some_and(|n| n == "secrets.sls"))
            .map(String::from)
            .collect()
    };
    match (
        git(&["ls-files", "-z"]),
        git(&["ls-files", "-z", "--others", "--exclude-standard"]),
    ) {
        (Some(tracked), Some(untracked)) => {
            for p in named(&tracked.stdout) {
                findings.push(format!("{p}: a plaintext secrets file is tracked by git: `git rm --cached {p}`, then rotate what it held"));
            }
            for p in named(&untracked.stdout) {
                findings.push(format!("{p}: a plaintext secrets file is not ignored: add `secrets.sls` to .gitignore, or delete it"));
            }
        }
        _ => {
            // No git: any plaintext pillar on disk is a finding.
            let mut stack = vec![project.pillar_dir()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.file_name().is_some_and(|n| n == "secrets.sls") {
                        findings.push(format!(
                            "{}: a plaintext secrets file (no git here to say it is ignored)",
                            project.display_path(&p)
                        ));
                    }
                }
            }
        }
    }
}

/// The manifest of the latest committed version of `env`'s sidecar that differs from
/// `current`, if git has one.
fn previous_in_git(project: &Project, env: &EnvName, current: &[u8]) -> Option<Manifest> {
    let rel = format!("./{}", Project::git_sidecar_path(env));
    let log = Command::new("git")
        .arg("-C")
        .arg(project.root())
        .args(["log", "--format=%H", "--", &rel])
        .output()
        .ok()?;
    if !log.status.success() {
        return None;
    }
    for commit in String::from_utf8_lossy(&log.stdout).lines() {
        let Ok(out) = Command::new("git")
            .arg("-C")
            .arg(project.root())
            .args(["show", &format!("{commit}:{rel}")])
            .output()
        else {
            continue;
        };
        if !out.status.success() || out.stdout == current {
            continue;
        }
        return signed_manifest(&out.stdout);
    }
    None
}

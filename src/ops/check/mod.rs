//! `vault check`: the CI gate. It needs no private key: every committed version of each
//! environment along the checked-out history (signatures and the grant chain, each
//! version against the one before it: see [`chain`]), then the working tree's files
//! against the trust at HEAD, recipients against the roster, the ciphertext's header,
//! plaintext secrets files, duplicate keys, and how long secrets stay exposed.

mod chain;

use crate::error::{Error, Result};
use crate::git::{Batch, Git};
use crate::keys::recipients::{self, Member};
use crate::manifest;
use crate::ops::status::{roster_diff, sync_state, Sync};
use crate::project::{EnvName, Project};
use crate::project_id::ProjectId;
use crate::store::Pair;
use crate::trust::{SeenEnv, Verified};
use chain::{Chain, Edge, Folders, Version};
use std::path::Path;
use std::process::Command;

/// What `check` found: one line per problem, notes on what was checked (the founding
/// of each environment's history; shown with `-v`), and a summary.
pub struct Findings {
    pub findings: Vec<String>,
    pub notes: Vec<String>,
    pub summary: String,
}

/// How much of the history a check reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The CI gate: every committed version, and a shallow clone is refused.
    Gate,
    /// The pre-commit hook: the working tree against the trust at HEAD; past commits'
    /// findings are the gate's to report, and a shallow clone anchors nothing.
    WorkingTree,
}

/// The CI gate: checks every environment of `project` along its whole git history, and
/// the project for plaintext secrets files. A shallow clone is refused: its history is
/// cut, so it cannot be checked. A project not in git is checked as its files stand.
pub fn check(project: &Project, max_exposure_days: i64) -> Result<Findings> {
    run(project, max_exposure_days, Scope::Gate)
}

/// What the pre-commit hook refuses: the gate's findings on the files about to be
/// committed, without those on commits already made.
pub fn check_working_tree(project: &Project, max_exposure_days: i64) -> Result<Findings> {
    run(project, max_exposure_days, Scope::WorkingTree)
}

/// Where the trust each working-tree pair is judged against comes from.
enum History {
    /// Not a git repository: no history, each environment trusted from its founders.
    None,
    /// A git repository with HEAD (None before the first commit), read by one batch.
    Git {
        git: Git,
        batch: Option<Batch>,
        folders: Folders,
    },
    /// A shallow clone, for the pre-commit hook only.
    Shallow,
}

fn run(project: &Project, max_exposure_days: i64, scope: Scope) -> Result<Findings> {
    let mut history = history(project, scope)?;
    let mut out = Findings {
        findings: Vec::new(),
        notes: Vec::new(),
        summary: String::new(),
    };
    let today = manifest::today();
    let envs = project.environments()?;
    let id = project.identity()?;
    let mut secrets = 0;
    let mut versions = 0;
    for env in &envs {
        let chain = walk(&mut history, env, id.as_ref())?;
        versions += chain.versions;
        out.notes.extend(chain.notes.iter().cloned());
        if scope == Scope::Gate {
            out.findings.extend(chain.findings.iter().cloned());
        }
        let Some(v) = working_tree(project, env, &chain, &mut out.findings, id.as_ref())? else {
            continue;
        };
        secrets += v.manifest.secrets.len();
        // Deployment inputs not approved: the gate's, not the pre-commit hook's (a member
        // commits a change to conf/salt before approving it).
        if scope == Scope::Gate {
            let approval = crate::provision::approval::findings(project, env, &v, id.as_ref());
            out.findings.extend(approval);
        }
        exposure_findings(env, &v, &today, max_exposure_days, &mut out.findings);
    }
    plaintext(project, &mut out.findings);
    for path in crate::store::tracked_work_files(project) {
        out.findings.push(format!("{path}: a vault work file is carried by a commit; vault refuses to act on it: `git rm {path}`, and see who added it"));
    }
    out.summary = format!(
        "vault check: {} environment(s), {secrets} secret(s), {} finding(s){}",
        envs.len(),
        out.findings.len(),
        match history {
            History::None => "; not in git: the files as they stand, no history checked",
            History::Shallow => "; a shallow clone: no history checked",
            History::Git { .. } => "",
        }
    );
    match history {
        History::Git { batch: None, .. } => out
            .notes
            .push("nothing committed yet: each environment is trusted from its founders".into()),
        History::Git { .. } => out.notes.push(format!(
            "{versions} committed version(s) checked, each against the one before it"
        )),
        _ => {}
    }
    Ok(out)
}

/// The project's history, refused for the gate when it is cut short.
fn history(project: &Project, scope: Scope) -> Result<History> {
    let git = Git::new(project.root());
    if !git.is_repo() {
        return Ok(History::None);
    }
    if git.is_shallow()? {
        if scope == Scope::WorkingTree {
            return Ok(History::Shallow);
        }
        return Err(Error::new(
            "this is a shallow clone: its history is cut off, so the versions before the cut cannot be checked (fetch it whole: `git fetch --unshallow`, or `fetch-depth: 0` for a CI checkout)",
        )
        .with_hint("run `git fetch --unshallow`, then `vault check`; in CI set `fetch-depth: 0` on the checkout step"));
    }
    let batch = match git.head()? {
        Some(_) => Some(git.batch()?),
        None => None,
    };
    Ok(History::Git {
        git,
        batch,
        folders: Folders::default(),
    })
}

/// `env`'s committed history, or an empty one where there is none to read.
fn walk(history: &mut History, env: &EnvName, project: Option<&ProjectId>) -> Result<Chain> {
    match history {
        History::Git {
            git,
            batch: Some(batch),
            folders,
        } => chain::walk(git, batch, folders, env, project),
        _ => Ok(Chain {
            head: None,
            head_version: None,
            findings: Vec::new(),
            notes: Vec::new(),
            versions: 0,
        }),
    }
}

/// The working tree's pair of `env` judged against the trust at HEAD (as a founding when
/// nothing is committed), with the findings on its folder and roster. None when it has
/// no pair, or it fails.
fn working_tree(
    project: &Project,
    env: &EnvName,
    chain: &Chain,
    findings: &mut Vec<String>,
    id: Option<&ProjectId>,
) -> Result<Option<Verified>> {
    let folder = match recipients::members(project, env) {
        Ok(f) => f,
        Err(e) => {
            findings.push(e.to_string());
            return Ok(None);
        }
    };
    duplicates(env, &folder, findings);
    let sc_path = project.sidecar_path(env);
    // Read as it is, without the store's lock: the gate must not write. A file it
    // cannot read (a link out of the project, a FIFO) is a finding, not the end.
    let pair = match Pair::read(project, env) {
        Ok(pair) => pair,
        Err(e) => {
            findings.push(e.to_string());
            return Ok(None);
        }
    };
    let Some(pair) = pair else {
        if sc_path.exists() {
            findings.push(format!(
                "{env}: {} exists without its secrets file",
                project.display_path(&sc_path)
            ));
        }
        return Ok(None);
    };
    let v = match judge_working_tree(env, &pair, &folder, chain, id) {
        Ok(v) => v,
        Err(whys) => {
            let shown = project.display_path(&sc_path);
            findings.extend(whys.into_iter().map(|w| format!("{env}: {shown}: {w}")));
            return Ok(None);
        }
    };
    roster_findings(env, &folder, &v, &pair.ciphertext, findings);
    Ok(Some(v))
}

/// The working tree's pair as the next version after HEAD's; HEAD's own verification
/// when it is the same files.
fn judge_working_tree(
    env: &EnvName,
    pair: &Pair,
    folder: &[Member],
    chain: &Chain,
    id: Option<&ProjectId>,
) -> std::result::Result<Verified, Vec<String>> {
    let version = Version::of(pair);
    let same = match &chain.head_version {
        Some((head, Some(v))) if *head == version => Some(v),
        _ => None,
    };
    let edges: Vec<Edge> = chain
        .head
        .iter()
        .map(|state: &SeenEnv| Edge {
            state,
            same,
            at: "HEAD",
        })
        .collect();
    chain::judge(
        env,
        &pair.ciphertext,
        pair.sidecar.as_deref(),
        folder,
        &edges,
        id,
    )
    .map(|(v, _)| v)
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
    match sync_state(&v.manifest.roster, folder, ct) {
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
                "{env}: {} exposed for {days} days (since {}, when {} left): give it a new value (`vault rotate {env} {}`)",
                x.name, x.since, x.member, x.name
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

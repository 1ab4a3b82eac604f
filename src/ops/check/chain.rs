//! The history half of `vault check`: every committed version of an environment's pair,
//! parents first from its founding, judged against the trust state of the version(s)
//! before it. A version that fails is a finding and never becomes an anchor: the trust
//! after it is its predecessors', so trust never restarts from an attacker's commit.

use crate::envelope::MAX_CIPHERTEXT_BYTES;
use crate::error::Result;
use crate::git::{Batch, Commit, Git};
use crate::keys::recipients::{self, Member};
use crate::manifest::MAX_SIDECAR_BYTES;
use crate::project::{EnvName, Project};
use crate::project_id::ProjectId;
use crate::store::Pair;
use crate::trust::{self, SeenEnv, Verified};
use std::collections::{BTreeSet, HashMap};

/// One version of a pair as committed: the files' bytes (None where a file is absent).
#[derive(Clone, PartialEq, Eq)]
pub struct Version {
    pub ciphertext: Option<Vec<u8>>,
    pub sidecar: Option<Vec<u8>>,
}

impl Version {
    pub fn of(pair: &Pair) -> Version {
        Version {
            ciphertext: Some(pair.ciphertext.clone()),
            sidecar: pair.sidecar.clone(),
        }
    }
}

/// One version's place in the history: what it is, what it verified to (None: it did
/// not, or there was nothing to verify), and what is trusted after it.
struct Node {
    version: Version,
    verified: Option<Verified>,
    state: Option<SeenEnv>,
    /// Its commit, short, to name it.
    short: String,
}

/// What one version is judged against: a predecessor's trust state, the predecessor's
/// verified version when it is the very same one (a merge that took one side as it was),
/// and the predecessor's short commit, to name it.
pub struct Edge<'a> {
    pub state: &'a SeenEnv,
    pub same: Option<&'a Verified>,
    pub at: &'a str,
}

/// The history of one environment as `check` walked it.
pub struct Chain {
    /// What is trusted at HEAD: the anchors the working tree is judged against.
    pub head: Option<SeenEnv>,
    /// HEAD's version and what it verified to, reused when the working tree is the same.
    pub head_version: Option<(Version, Option<Verified>)>,
    pub findings: Vec<String>,
    pub notes: Vec<String>,
    /// How many committed versions were judged.
    pub versions: usize,
}

/// Parsed recipients folders by their git tree id: a folder that did not change between
/// commits is read once.
#[derive(Default)]
pub struct Folders {
    by_tree: HashMap<String, std::result::Result<Vec<Member>, String>>,
}

impl Folders {
    /// The members of `env` at `commit`.
    fn at(
        &mut self,
        git: &Git,
        batch: &mut Batch,
        commit: &str,
        env: &EnvName,
    ) -> Result<std::result::Result<Vec<Member>, String>> {
        let Some(tree) = batch.object(commit, &format!("recipients/{env}"), 0)? else {
            return Ok(Ok(Vec::new()));
        };
        if tree.kind != "tree" {
            return Ok(Ok(Vec::new()));
        }
        if !self.by_tree.contains_key(&tree.id) {
            let members = recipients::members_at(git, commit, env).map_err(|e| e.to_string());
            self.by_tree.insert(tree.id.clone(), members);
        }
        Ok(self.by_tree[&tree.id].clone())
    }
}

/// Walks `env`'s committed versions up to HEAD, parents first.
pub fn walk(
    git: &Git,
    batch: &mut Batch,
    folders: &mut Folders,
    env: &EnvName,
    project: Option<&ProjectId>,
) -> Result<Chain> {
    let commits = git.path_history(&[
        Project::git_secrets_path(env),
        Project::git_sidecar_path(env),
    ])?;
    let mut walk = Walk {
        git,
        batch,
        folders,
        env,
        project,
        nodes: HashMap::new(),
        chain: Chain {
            head: None,
            head_version: None,
            findings: Vec::new(),
            notes: Vec::new(),
            versions: 0,
        },
    };
    let mut replaced: BTreeSet<&str> = BTreeSet::new();
    for c in &commits {
        let node = walk.step(c)?;
        replaced.extend(c.parents.iter().map(String::as_str));
        walk.nodes.insert(c.id.clone(), node);
    }
    // HEAD's version is the one no later commit of this history replaced.
    let tips: Vec<&Node> = commits
        .iter()
        .filter(|c| !replaced.contains(c.id.as_str()))
        .filter_map(|c| walk.nodes.get(&c.id))
        .collect();
    let mut chain = Chain {
        head: combine(tips.iter().map(|n| n.state.as_ref())),
        ..walk.chain
    };
    if let [tip] = tips.as_slice() {
        chain.head_version = Some((tip.version.clone(), tip.verified.clone()));
    }
    Ok(chain)
}

/// One environment's walk in progress: the nodes judged so far, by commit.
struct Walk<'a> {
    git: &'a Git,
    /// The identity every version's manifest must name, where it names one.
    project: Option<&'a ProjectId>,
    batch: &'a mut Batch,
    folders: &'a mut Folders,
    env: &'a EnvName,
    nodes: HashMap<String, Node>,
    chain: Chain,
}

impl Walk<'_> {
    /// Judges the version at commit `c` against its predecessors: its node.
    fn step(&mut self, c: &Commit) -> Result<Node> {
        let env = self.env;
        let version = Version {
            ciphertext: self.file(c, Project::git_secrets_path(env), MAX_CIPHERTEXT_BYTES)?,
            sidecar: self.file(c, Project::git_sidecar_path(env), MAX_SIDECAR_BYTES)?,
        };
        let at = format!("{env}: commit {} ({})", c.short, printable(&c.subject));
        let mut preds: Vec<&Node> = Vec::new();
        for p in &c.parents {
            let Some(n) = self.nodes.get(p) else {
                // git lists rewritten parents within the history it prints: a parent
                // outside it means the history cannot be followed, so nothing new is trusted.
                self.chain.findings.push(format!(
                    "{at}: its parent {p} is not in the history git lists"
                ));
                return Ok(node(
                    c,
                    version,
                    None,
                    combine(preds.iter().map(|n| n.state.as_ref())),
                ));
            };
            preds.push(n);
        }
        let before = combine(preds.iter().map(|n| n.state.as_ref()));
        if version.ciphertext.is_none() {
            if version.sidecar.is_some() {
                self.chain.findings.push(format!(
                    "{at}: {} without its secrets file",
                    Project::git_sidecar_path(env)
                ));
            }
            // Deleted: what was trusted stays trusted, so a re-founding is judged by it.
            return Ok(node(c, version, None, before));
        }
        self.chain.versions += 1;
        let folder = match self.folders.at(self.git, self.batch, &c.id, env)? {
            Ok(f) => f,
            Err(why) => {
                self.chain.findings.push(format!("{at}: {why}"));
                return Ok(node(c, version, None, before));
            }
        };
        let edges: Vec<Edge> = preds
            .iter()
            .filter_map(|n| {
                n.state.as_ref().map(|state| Edge {
                    state,
                    same: n.verified.as_ref().filter(|_| n.version == version),
                    at: &n.short,
                })
            })
            .collect();
        let outcome = record(
            &mut self.chain,
            env,
            &at,
            &version,
            &folder,
            &edges,
            self.project,
        );
        Ok(match outcome {
            Some((v, state)) => node(c, version, Some(v), Some(state)),
            None => node(c, version, None, before),
        })
    }

    /// A file of commit `c`, or None when it has none. One too large to be a secrets
    /// file or a sidecar reads as empty, which no check passes.
    fn file(&mut self, c: &Commit, path: String, limit: usize) -> Result<Option<Vec<u8>>> {
        Ok(self
            .batch
            .object(&c.id, &path, limit as u64)?
            .filter(|o| o.kind == "blob")
            .map(|o| o.blob.unwrap_or_default()))
    }
}

/// [`judge`] with its findings and notes recorded: the verified version and the
/// trust after it, or None when it anchors nothing.
fn record(
    chain: &mut Chain,
    env: &EnvName,
    at: &str,
    version: &Version,
    folder: &[Member],
    edges: &[Edge],
    project: Option<&ProjectId>,
) -> Option<(Verified, SeenEnv)> {
    let ct = version.ciphertext.as_deref()?;
    let sidecar = version.sidecar.as_deref();
    if edges.is_empty() && sidecar.is_none() {
        // Written before the environment was ever signed: it anchors nothing.
        chain.notes.push(format!(
            "{at}: unsigned, before any signed version: trusted by nothing"
        ));
        return None;
    }
    match judge(env, ct, sidecar, folder, edges, project) {
        Ok((v, state)) => {
            if edges.is_empty() {
                chain.notes.push(format!(
                    "{at}: founded by {} ({}), serial {}: trust in the history starts here",
                    v.signer_member, v.signer, v.manifest.serial
                ));
            }
            Some((v, state))
        }
        Err(whys) => {
            chain
                .findings
                .extend(whys.into_iter().map(|w| format!("{at}: {w}")));
            None
        }
    }
}

fn node(c: &Commit, version: Version, verified: Option<Verified>, state: Option<SeenEnv>) -> Node {
    Node {
        version,
        verified,
        state,
        short: c.short.clone(),
    }
}

/// What is trusted after `v`, which verified against `before` (none: a founding) to
/// `roster`: its id, and every key that left on the way, from when it left.
fn state_after(before: &[&SeenEnv], v: &Verified, roster: BTreeSet<String>) -> SeenEnv {
    let mut removed: std::collections::BTreeMap<String, u64> =
        before.iter().flat_map(|s| s.removed.clone()).collect();
    for fp in before.iter().flat_map(|s| &s.roster) {
        if !roster.contains(fp) {
            removed.entry(fp.clone()).or_insert(v.manifest.serial);
        }
    }
    SeenEnv {
        serial: v.manifest.serial,
        id: Some(v.manifest.id()),
        removed,
        v2: v.manifest.project.is_some() || before.iter().any(|s| s.v2),
        project: v
            .manifest
            .project
            .clone()
            .or_else(|| before.iter().find_map(|s| s.project.clone())),
        roster,
    }
}

/// The trust of several predecessors together: the highest serial, and only the keys
/// trusted on every side.
fn combine<'a>(states: impl Iterator<Item = Option<&'a SeenEnv>>) -> Option<SeenEnv> {
    states.flatten().fold(None, |acc: Option<SeenEnv>, s| {
        Some(match acc {
            None => s.clone(),
            Some(a) => SeenEnv {
                serial: a.serial.max(s.serial),
                roster: a.roster.intersection(&s.roster).cloned().collect(),
                id: None,
                removed: a.removed.into_iter().chain(s.removed.clone()).collect(),
                v2: a.v2 || s.v2,
                project: a.project.or_else(|| s.project.clone()),
            },
        })
    })
}

/// A version judged against each of `edges` (none: a founding, trusted from its own
/// founders). Against a predecessor it must verify with that predecessor's roster as
/// anchors, be signed by a key already in that roster (an old grant copied into a new
/// manifest re-admits nobody), and raise the serial. Ok: what it verified to, and the
/// trust after it. Err: one reason per edge it fails.
pub fn judge(
    env: &EnvName,
    ct: &[u8],
    sidecar: Option<&[u8]>,
    folder: &[Member],
    edges: &[Edge],
    project: Option<&ProjectId>,
) -> std::result::Result<(Verified, SeenEnv), Vec<String>> {
    if edges.is_empty() {
        let ctx = trust::Context {
            project,
            ..trust::Context::default()
        };
        let v = trust::verify_in(env, ct, sidecar, folder, &ctx)
            .map_err(|why| vec![format!("signature check failed: {why}")])?;
        let state = state_after(&[], &v, v.trusted.clone());
        return Ok((v, state));
    }
    let mut whys = Vec::new();
    let mut verified: Option<Verified> = None;
    let mut roster: Option<BTreeSet<String>> = None;
    for e in edges {
        let against = if edges.len() > 1 {
            format!(" (against the version at {})", e.at)
        } else {
            String::new()
        };
        match judge_edge(env, ct, sidecar, folder, e, project) {
            Ok((v, trusted)) => {
                roster = Some(match roster {
                    None => trusted,
                    Some(r) => r.intersection(&trusted).cloned().collect(),
                });
                verified.get_or_insert(v);
            }
            Err(why) => whys.push(format!("{why}{against}")),
        }
    }
    match (whys.is_empty(), verified, roster) {
        (true, Some(v), Some(roster)) => {
            let before: Vec<&SeenEnv> = edges.iter().map(|e| e.state).collect();
            let state = state_after(&before, &v, roster);
            Ok((v, state))
        }
        _ => Err(whys),
    }
}

/// One edge of [`judge`]: the version and the keys it trusts, or why it fails.
fn judge_edge(
    env: &EnvName,
    ct: &[u8],
    sidecar: Option<&[u8]>,
    folder: &[Member],
    e: &Edge,
    project: Option<&ProjectId>,
) -> std::result::Result<(Verified, BTreeSet<String>), String> {
    if let Some(v) = e.same {
        // The predecessor's own version, verified already: nothing new to trust.
        return Ok((v.clone(), e.state.roster.clone()));
    }
    let ctx = trust::Context {
        seen: Some(e.state),
        project,
        verified_keys: None,
    };
    let v = trust::verify_in(env, ct, sidecar, folder, &ctx)
        .map_err(|why| format!("signature check failed: {why}"))?;
    if !e.state.roster.contains(&v.signer) {
        return Err(format!(
            "signature check failed: signed by {} ({}), who is not in the roster of the version before it",
            v.signer_member, v.signer
        ));
    }
    let (was, now) = (e.state.serial, v.manifest.serial);
    if now < was {
        return Err(format!("serial goes back from {was} to {now}"));
    }
    if now == was {
        return Err(format!("serial does not increase ({now} again)"));
    }
    let trusted = v.trusted.clone();
    Ok((v, trusted))
}

/// A commit subject as one line of plain text: control characters (a terminal escape
/// in an attacker's commit message) are shown as `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

//! What this machine remembers of each environment it verified: the highest serial, the
//! trusted roster, the keys seen to leave it, and the exact pair last verified (so an
//! unchanged pair is not verified again); and the keys its user verified. It is kept per
//! project identity, so every clone and worktree of a project on this machine shares it.

use super::{ciphertext_hash, SeenEnv, Verified};
use crate::error::{Error, Result};
use crate::project::{EnvName, Project};
use std::path::PathBuf;

/// This machine's vault state folder: `$XDG_STATE_HOME/vault` (or `~/.local/state/vault`).
pub fn state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|b| b.join("vault"))
}

/// What this machine has seen, per project: `$XDG_STATE_HOME/vault/` (or `~/.local/state/vault/`).
pub struct SeenStore {
    path: Option<PathBuf>,
    data: serde_json::Map<String, serde_json::Value>,
    /// The identity this checkout had before, when it is not the one it has now.
    changed_from: Option<String>,
}

/// The key under which the keys this user verified are kept (no environment is named so:
/// environment names never start with `_`).
const VERIFIED_KEYS: &str = "_verified-keys";
/// How many verified versions of an environment this machine remembers the lineage of:
/// enough for the writes between two commits, few enough that every read, which loads
/// this file, stays quick. Past them, a provision asks for `--allow-older` as before.
const LINEAGE_KEPT: usize = 16;
/// The key under which the highest approval serial seen per environment is kept.
const APPROVALS: &str = "_approvals";

impl SeenStore {
    /// What this machine remembers of `project`: by its identity when it has one (an
    /// unreadable identity remembers nothing), else by its folder's path.
    pub fn load(project: &Project) -> SeenStore {
        let mut store = SeenStore {
            path: None,
            data: Default::default(),
            changed_from: None,
        };
        let Some(base) = state_dir() else {
            return store;
        };
        let at = ciphertext_hash(project.root().as_os_str().as_encoded_bytes());
        let by_path = base.join(format!("seen-{}.json", &at[7..23]));
        let path = match project.identity() {
            Ok(Some(id)) => {
                store.changed_from = bind_checkout(&base, project, id.as_str());
                base.join(format!("project-{id}.json"))
            }
            Ok(None) => {
                // A checkout that had an identity and lost it is not a new project.
                store.changed_from = bound_identity(&base, project);
                by_path.clone()
            }
            Err(_) => return store,
        };
        // A project that just got its identity starts from what its folder remembered.
        store.data = read_map(&path)
            .or_else(|| read_map(&by_path))
            .unwrap_or_default();
        store.path = Some(path);
        store
    }

    /// The identity this checkout had when this machine last used it, if it changed
    /// since: a committed identity swapped for another is a fresh start nobody asked for.
    pub fn identity_changed_from(&self) -> Option<&str> {
        self.changed_from.as_deref()
    }

    /// The keys this user verified in this project: confirmed with `vault trust`,
    /// granted with a checked fingerprint, or their own.
    pub fn verified_keys(&self) -> std::collections::BTreeSet<String> {
        strings(self.data.get(VERIFIED_KEYS))
    }

    /// Remembers that this user verified `fingerprint`.
    pub fn add_verified_key(&mut self, fingerprint: &str) -> Result<()> {
        let mut keys = self.verified_keys();
        if !keys.insert(fingerprint.to_string()) {
            return Ok(());
        }
        self.data
            .insert(VERIFIED_KEYS.to_string(), serde_json::json!(keys));
        self.save()
    }

    /// What this machine trusts of `env`, for another machine that is to verify it the
    /// same way (a salt-master, at `vault master setup`): the keys its user verified,
    /// and what it has seen of `env` (its serial, trusted roster and last pair).
    pub fn anchor(&self, env: &EnvName) -> serde_json::Value {
        serde_json::json!({
            "verified_keys": self.verified_keys(),
            "env": self.data.get(env.as_str()),
        })
    }

    /// Seeds this machine's memory of project `id` with another machine's
    /// [`anchor`](Self::anchor) for `env`: its verified keys are added, and its record
    /// of `env` taken when this machine has none or an older one, so that the first
    /// verification here is held to what that member trusts, not to first use.
    pub fn seed(
        id: &crate::project_id::ProjectId,
        env: &EnvName,
        anchor: &serde_json::Value,
    ) -> Result<()> {
        let base = state_dir().ok_or_else(|| Error::new("no state folder (HOME is not set)"))?;
        let mut store = SeenStore {
            path: Some(base.join(format!("project-{id}.json"))),
            data: read_map(&base.join(format!("project-{id}.json"))).unwrap_or_default(),
            changed_from: None,
        };
        let mut keys = store.verified_keys();
        keys.extend(strings(anchor.get("verified_keys")));
        store
            .data
            .insert(VERIFIED_KEYS.to_string(), serde_json::json!(keys));
        let given = anchor.get("env").filter(|e| e.is_object());
        let serial = |v: Option<&serde_json::Value>| v.and_then(|e| e.get("serial")?.as_u64());
        if let Some(e) = given {
            if serial(store.data.get(env.as_str())) < serial(Some(e)) {
                store.data.insert(env.as_str().to_string(), e.clone());
            }
        }
        store.save()
    }

    /// The highest serial of `env`'s deployment approval this machine has seen.
    pub fn approval_serial(&self, env: &EnvName) -> Option<u64> {
        self.data.get(APPROVALS)?.get(env.as_str())?.as_u64()
    }

    /// Remembers `serial` as seen for `env`'s approval, when it is the highest yet.
    pub fn record_approval_serial(&mut self, env: &EnvName, serial: u64) -> Result<()> {
        if self.approval_serial(env).is_some_and(|s| s >= serial) {
            return Ok(());
        }
        let mut map = self
            .data
            .get(APPROVALS)
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        map.insert(env.as_str().to_string(), serde_json::json!(serial));
        self.data.insert(APPROVALS.to_string(), map.into());
        self.save()
    }

    pub fn get(&self, env: &EnvName) -> Option<SeenEnv> {
        let e = self.data.get(env.as_str())?;
        Some(SeenEnv {
            serial: e.get("serial")?.as_u64()?,
            roster: strings(e.get("roster")),
            id: e.get("id").and_then(|v| v.as_str()).map(String::from),
            removed: e
                .get("removed")
                .and_then(|v| v.as_object())
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
            v2: e.get("v2").and_then(|v| v.as_bool()).unwrap_or(false),
            project: e
                .get("project")
                .and_then(|v| v.as_str())
                .and_then(crate::project_id::ProjectId::parse),
        })
    }

    /// Records a fully verified sidecar (`sidecar` is its bytes): the serial and trusted
    /// roster when newer, and the exact files verified, so an unchanged pair need not be
    /// verified again.
    pub fn record(&mut self, env: &EnvName, v: &Verified, sidecar: &[u8]) -> Result<()> {
        let seen = self.get(env);
        if seen.as_ref().is_some_and(|s| s.serial > v.manifest.serial) {
            return Ok(());
        }
        let sidecar_hash = ciphertext_hash(sidecar);
        if seen.as_ref().is_some_and(|s| s.serial == v.manifest.serial)
            && self
                .verified(env)
                .is_some_and(|(sc, ct, _)| sc == sidecar_hash && ct == v.manifest.ciphertext)
            && self.header_checked(env)
        {
            return Ok(());
        }
        // A key left when a version that follows the one remembered drops it; a version
        // of another branch without it (granted on this one since) removed nothing.
        let mut removed = seen.as_ref().map(|s| s.removed.clone()).unwrap_or_default();
        let follows = seen
            .as_ref()
            .and_then(|s| s.id.as_ref())
            .is_some_and(|id| v.manifest.parents.contains(id));
        for fp in seen.iter().filter(|_| follows).flat_map(|s| &s.roster) {
            if !v.trusted.contains(fp) {
                removed.entry(fp.clone()).or_insert(v.manifest.serial);
            }
        }
        let lineage = self.lineage_with(env, v);
        let v2 = v.manifest.project.is_some() || seen.as_ref().is_some_and(|s| s.v2);
        let project = v
            .manifest
            .project
            .clone()
            .or_else(|| seen.as_ref().and_then(|s| s.project.clone()));
        self.data.insert(
            env.as_str().to_string(),
            serde_json::json!({
                "serial": v.manifest.serial,
                "id": v.manifest.id(),
                "roster": v.trusted.iter().collect::<Vec<_>>(),
                "removed": removed,
                "v2": v2,
                "project": project.as_ref().map(|p| p.as_str()),
                "lineage": lineage,
                "verified": {
                    "sidecar": sidecar_hash,
                    "ciphertext": v.manifest.ciphertext,
                    "signer": v.signer,
                    "member": v.signer_member,
                    // Verified with the header against the roster, as every pair now is.
                    "header": true,
                },
            }),
        );
        self.save_env(env)
    }

    /// The versions of `env` this machine verified, by id: serial and parents. They link
    /// a version written here to the one a server was last given, when those in between
    /// were never committed (provision, `vault set` twice, provision).
    pub fn lineage(&self, env: &EnvName) -> std::collections::HashMap<String, (u64, Vec<String>)> {
        let Some(map) = self
            .data
            .get(env.as_str())
            .and_then(|e| e.get("lineage"))
            .and_then(|l| l.as_object())
        else {
            return Default::default();
        };
        map.iter()
            .filter_map(|(id, v)| {
                let serial = v.get("serial")?.as_u64()?;
                Some((
                    id.clone(),
                    (serial, strings(v.get("parents")).into_iter().collect()),
                ))
            })
            .collect()
    }

    /// The remembered lineage with `v`'s version added, the newest `LINEAGE_KEPT` kept.
    fn lineage_with(&self, env: &EnvName, v: &Verified) -> serde_json::Value {
        let mut known: Vec<(String, (u64, Vec<String>))> = self.lineage(env).into_iter().collect();
        // The id hashes the manifest's text: once, not once per version remembered.
        let id = v.manifest.id();
        known.retain(|(k, _)| *k != id);
        known.push((id, (v.manifest.serial, v.manifest.parents.clone())));
        known.sort_by_key(|k| std::cmp::Reverse(k.1 .0));
        known.truncate(LINEAGE_KEPT);
        let map: serde_json::Map<String, serde_json::Value> = known
            .into_iter()
            .map(|(id, (serial, parents))| {
                (
                    id,
                    serde_json::json!({ "serial": serial, "parents": parents }),
                )
            })
            .collect();
        serde_json::Value::Object(map)
    }

    /// Saves this machine's record of `env` over what is on disk now, under a lock: two
    /// runs at once (a salt-master verifying two environments) each keep the other's
    /// record, and a record with a higher serial on disk is never written over.
    fn save_env(&mut self, env: &EnvName) -> Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let dir = path.parent().expect("state path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let lock = std::fs::File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
        lock.lock().map_err(|e| Error::io("cannot lock", dir, e))?;
        let mut disk = read_map(&path).unwrap_or_default();
        let serial = |v: Option<&serde_json::Value>| v.and_then(|e| e.get("serial")?.as_u64());
        let mine = self.data.get(env.as_str()).cloned();
        if let Some(mine) = mine.filter(|m| serial(disk.get(env.as_str())) <= serial(Some(m))) {
            disk.insert(env.as_str().to_string(), mine);
        }
        self.data = disk;
        self.save()
    }

    fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().expect("state path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let bytes = serde_json::to_vec_pretty(&self.data).map_err(|e| Error::new(e.to_string()))?;
        crate::fs::write_atomic(path, &bytes, crate::fs::Mode::Private).map(drop)
    }

    /// The last pair of files fully verified for `env`: sidecar hash, ciphertext hash,
    /// and the signer's fingerprint and member name.
    fn verified(&self, env: &EnvName) -> Option<(&str, &str, (&str, &str))> {
        let v = self.data.get(env.as_str())?.get("verified")?;
        let signer = (v.get("signer")?.as_str()?, v.get("member")?.as_str()?);
        Some((
            v.get("sidecar")?.as_str()?,
            v.get("ciphertext")?.as_str()?,
            signer,
        ))
    }

    /// Whether `sidecar` and `ciphertext` are exactly the files last verified for `env`,
    /// and the signer's key is still in its member file: then the signature need not be
    /// checked again (and only that one recipients file is read).
    /// Whether the pair last verified for `env` had its header checked then (a pair
    /// remembered by an older vault did not).
    pub fn header_checked(&self, env: &EnvName) -> bool {
        self.data
            .get(env.as_str())
            .and_then(|e| e.get("verified"))
            .and_then(|v| v.get("header"))
            .and_then(|h| h.as_bool())
            .unwrap_or(false)
    }

    /// Adds keys that left `env`'s roster (with the serial they left at), learnt from the
    /// versions between the remembered one and a newer one.
    pub fn learn_removals(
        &mut self,
        env: &EnvName,
        learnt: &std::collections::BTreeMap<String, u64>,
    ) -> Result<()> {
        let Some(e) = self
            .data
            .get_mut(env.as_str())
            .and_then(|e| e.as_object_mut())
        else {
            return Ok(());
        };
        if learnt.is_empty() {
            return Ok(());
        }
        let removed = e.entry("removed").or_insert_with(|| serde_json::json!({}));
        let Some(map) = removed.as_object_mut() else {
            return Ok(());
        };
        for (fp, serial) in learnt {
            map.entry(fp.clone()).or_insert(serde_json::json!(serial));
        }
        self.save()
    }

    /// Remembers that the pair last verified for `env` has had its header checked.
    pub fn mark_header_checked(&mut self, env: &EnvName) -> Result<()> {
        let Some(v) = self
            .data
            .get_mut(env.as_str())
            .and_then(|e| e.get_mut("verified"))
            .and_then(|v| v.as_object_mut())
        else {
            return Ok(());
        };
        v.insert("header".into(), serde_json::Value::Bool(true));
        self.save()
    }

    pub fn unchanged_since_verified(
        &self,
        project: &Project,
        env: &EnvName,
        sidecar: &[u8],
        ciphertext: &[u8],
    ) -> bool {
        let Some((sc, ct, (signer, member))) = self.verified(env) else {
            return false;
        };
        if sc != ciphertext_hash(sidecar)
            || ct != ciphertext_hash(ciphertext)
            || !crate::project::is_member_name(member)
        {
            return false;
        }
        let file = project.recipients_dir(env).join(format!("{member}.pub"));
        if project.confined(&file).is_err() {
            return false;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            return false;
        };
        crate::keys::recipients::parse_file(&text, member)
            .is_ok_and(|keys| keys.iter().any(|k| k.fingerprint() == signer))
    }
}

fn read_map(path: &std::path::Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .as_object()
        .cloned()
}

fn strings(v: Option<&serde_json::Value>) -> std::collections::BTreeSet<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The identity this machine last knew the checkout at `project`'s path by.
/// By its path, or by its repository's first commit (a new clone or worktree of it).
fn bound_identity(base: &std::path::Path, project: &Project) -> Option<String> {
    let map = read_map(&base.join("checkouts.json"))?;
    let at = ciphertext_hash(project.root().as_os_str().as_encoded_bytes());
    let by_repo = || {
        map.get(&repository_key(project)?)?
            .as_str()
            .map(String::from)
    };
    map.get(&at)
        .and_then(|v| v.as_str())
        .map(String::from)
        .or_else(by_repo)
}

/// The key a repository's checkouts share: its first commit (None outside git, or
/// before its first commit).
fn repository_key(project: &Project) -> Option<String> {
    // No git run for a folder that is not a checkout's top (most test and scratch
    // projects): the cost would fall on every command.
    if !project.root().join(".git").exists() {
        return None;
    }
    let out = crate::git::Git::new(project.root())
        .output(&["rev-list", "--max-parents=0", "HEAD"])
        .ok()?;
    let first = String::from_utf8_lossy(&out)
        .lines()
        .last()?
        .trim()
        .to_string();
    (!first.is_empty()).then(|| format!("repository {first}"))
}

/// Records which identity the checkout at `project`'s path has, and returns the one it
/// had before when that differs.
fn bind_checkout(base: &std::path::Path, project: &Project, id: &str) -> Option<String> {
    let path = base.join("checkouts.json");
    let mut map = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let at = ciphertext_hash(project.root().as_os_str().as_encoded_bytes());
    let before = map.get(&at).and_then(|v| v.as_str()).map(String::from);
    // The repository's key is bound once it has a first commit (one git run per
    // checkout, not per command).
    let bound_at = format!("repository of {at}");
    let repo = match map.contains_key(&bound_at) {
        true => None,
        false => repository_key(project),
    };
    if before.as_deref() == Some(id) && repo.is_none() {
        return None;
    }
    if before.is_none() || repo.is_some() {
        // The path keeps the identity it was first seen with: a changed one is refused
        // until it is restored, never adopted.
        map.entry(at).or_insert(serde_json::json!(id));
        if let Some(repo) = repo {
            map.entry(repo.clone()).or_insert(serde_json::json!(id));
            map.insert(bound_at, serde_json::json!(repo));
        }
        let _ = std::fs::create_dir_all(base);
        let bytes = serde_json::to_vec_pretty(&map).unwrap_or_default();
        let _ = crate::fs::write_atomic(&path, &bytes, crate::fs::Mode::Private);
    }
    before.filter(|b| b != id)
}

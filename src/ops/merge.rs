//! git's merge driver for an environment's two files: a three-way merge by secret
//! name, re-encrypted and signed by the person merging. The `.age` file's merge does
//! the work and leaves the new signature in `.git/vault-merge/` for the `.sig` file's
//! merge, which git runs right after it; on any refusal both keep "ours", unchanged,
//! and git records a conflict.

use crate::document::Document;
use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::Git;
use crate::keys::recipients::{self, Member};
use crate::manifest::{self, Exposure, Manifest, RosterEntry, MAX_SIDECAR_BYTES};
use crate::project::{EnvName, Project, SECRETS_FILE};
use crate::secret::SecretValue;
use crate::store::{self, Store};
use crate::trust::{self, SeenEnv, Verified};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The files git hands a merge driver (`%O %A %B %P`).
pub struct MergeFiles<'a> {
    pub ancestor: &'a Path,
    /// Ours: the result is written here.
    pub current: &'a Path,
    pub other: &'a Path,
    /// The path being merged, relative to the repository's top.
    pub path: &'a str,
}

/// What a merge did.
pub enum Merged {
    /// Merged and signed: `changed` names the secrets taken from the other side.
    Clean {
        env: EnvName,
        from_other: Vec<String>,
    },
    /// The second file of a pair whose merge was done just before, with the first.
    Finished,
}

/// Which of the pair git is merging.
enum Part {
    Secrets,
    Signature,
}

/// Where the environment's files are: the project (found from the merged path) and
/// the environment named in it.
fn locate(top: &Path, path: &str) -> Result<(Project, EnvName, Part)> {
    let (part, secrets_rel) = match path.strip_suffix(".sig") {
        Some(p) => (Part::Signature, p),
        None => (Part::Secrets, path),
    };
    let not_ours = || {
        Error::new(format!(
            "{path}: not an environment's secrets file (conf/pillar/ENV/{SECRETS_FILE})"
        ))
        .with_hint("the vault merge driver handles only conf/pillar/*/secrets.sls.age and its .sig")
    };
    let rel = Path::new(secrets_rel);
    if rel.file_name().and_then(|n| n.to_str()) != Some(SECRETS_FILE) {
        return Err(not_ours());
    }
    let env_dir = rel.parent().ok_or_else(not_ours)?;
    let env = env_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(not_ours)?;
    let pillar = env_dir.parent().ok_or_else(not_ours)?;
    if !pillar.ends_with("conf/pillar") {
        return Err(not_ours());
    }
    let root = top.join(
        pillar
            .parent()
            .and_then(Path::parent)
            .ok_or_else(not_ours)?,
    );
    Ok((Project::at(&root), EnvName::parse(env)?, part))
}

/// Merges one file of the pair, as git's merge driver (run in the repository's top).
///
/// Whichever of the pair git merges first does the work for both, and hands the other
/// file's result (or its refusal) over in `.git/vault-merge/`, under a name made from
/// the three versions' ciphertext hashes, so nothing left from another merge is taken.
pub fn merge_file(
    store_for: impl FnOnce(Project) -> Store,
    files: &MergeFiles<'_>,
) -> Result<Merged> {
    let top = std::env::current_dir()
        .map_err(|e| Error::new(format!("cannot read the working directory: {e}")))?;
    let (project, env, part) = locate(&top, files.path)?;
    let git = Git::new(project.root());
    let hashes = match part {
        Part::Secrets => [files.ancestor, files.current, files.other].map(|p| {
            read(p, crate::envelope::MAX_CIPHERTEXT_BYTES).map(|b| trust::ciphertext_hash(&b))
        }),
        Part::Signature => [files.ancestor, files.current, files.other].map(|p| {
            read(p, MAX_SIDECAR_BYTES).and_then(|b| {
                signed_ciphertext(&b).ok_or_else(|| {
                    Error::new(format!(
                        "{}: a version of the signature file is malformed",
                        files.path
                    ))
                })
            })
        }),
    };
    let [o, a, b] = hashes;
    let (o, a, b) = (o?, a?, b?);
    let dir = git.git_dir()?.join("vault-merge");
    let key = &trust::ciphertext_hash(format!("{env} {o} {a} {b}").as_bytes())[7..23];
    let hand_over = |ext: &str| dir.join(format!("{env}-{key}.{ext}"));
    let (mine, theirs) = match part {
        Part::Secrets => ("age", "sig"),
        Part::Signature => ("sig", "age"),
    };
    // The second of the pair: take what the first left.
    if let Some(bytes) = fs::read_limited(&hand_over(mine), crate::envelope::MAX_CIPHERTEXT_BYTES)?
    {
        fs::write_atomic(files.current, &bytes, Mode::KeepOr0644)?;
        let _ = std::fs::remove_file(hand_over(mine));
        return Ok(Merged::Finished);
    }
    if hand_over(&format!("{mine}.refused")).exists() {
        let _ = std::fs::remove_file(hand_over(&format!("{mine}.refused")));
        return Err(Error::silent_exit(1));
    }
    // The first: merge both files.
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let mut store = store_for(project);
    let merged = (|| {
        let sig_rel = Project::git_sidecar_path(&env);
        let ct_rel = Project::git_secrets_path(&env);
        let cts = match part {
            Part::Secrets => [files.ancestor, files.current, files.other]
                .map(|p| read(p, crate::envelope::MAX_CIPHERTEXT_BYTES)),
            Part::Signature => {
                let commits = git.commits_touching(&ct_rel)?;
                [&o, &a, &b].map(|h| find_by_hash(&git, &commits, &ct_rel, h))
            }
        };
        let [oc, ac, bc] = cts;
        merge_secrets(&mut store, &git, &env, [oc?, ac?, bc?], &sig_rel)
    })();
    match merged {
        Ok((ciphertext, sidecar, from_other)) => {
            let (result, other) = match part {
                Part::Secrets => (ciphertext, sidecar.into_bytes()),
                Part::Signature => (sidecar.into_bytes(), ciphertext),
            };
            fs::write_atomic(&hand_over(theirs), &other, Mode::KeepOr0644)?;
            fs::write_atomic(files.current, &result, Mode::KeepOr0644)?;
            Ok(Merged::Clean { env, from_other })
        }
        Err(e) => {
            let _ = std::fs::write(hand_over(&format!("{theirs}.refused")), b"");
            Err(e)
        }
    }
}

fn read(path: &Path, limit: usize) -> Result<Vec<u8>> {
    fs::read_limited(path, limit)?.ok_or_else(|| Error::new(format!("{}: missing", path.display())))
}

/// The `ciphertext sha256:...` a sidecar's manifest names.
fn signed_ciphertext(sidecar: &[u8]) -> Option<String> {
    store::signed_manifest(sidecar).map(|m| m.ciphertext)
}

/// The version of `rel` whose hash is `hash`, among `commits`.
fn find_by_hash(git: &Git, commits: &[String], rel: &str, hash: &str) -> Result<Vec<u8>> {
    for commit in commits {
        if let Some(bytes) = git.show(commit, rel)? {
            if trust::ciphertext_hash(&bytes) == hash {
                return Ok(bytes);
            }
        }
    }
    Err(Error::new(format!(
        "{rel}: no commit holds the secrets a version of its signature names; kept ours, unmerged"
    ))
    .with_hint("commit both conf/pillar/ENV/secrets.sls.age and its .sig together on each branch"))
}

/// One of the merge's three inputs (ancestor, ours, theirs): its verified manifest,
/// the recipients folder of the commit that signed it, and its decrypted secrets.
struct MergeInput {
    verified: Verified,
    folder: Vec<Member>,
    doc: Document,
}

/// A side signed by a key this machine saw leave the roster, with the grant it had
/// before it left: a departed member writing on a branch from before their removal.
fn no_departed_signer(
    env: &EnvName,
    removed: &std::collections::BTreeMap<String, u64>,
    sides: [(&str, &MergeInput); 2],
) -> Result<()> {
    for (name, side) in sides {
        let v = &side.verified;
        let Some(left) = removed.get(&v.signer) else {
            continue;
        };
        let granted_at = v
            .manifest
            .roster
            .iter()
            .find(|r| r.fingerprint == v.signer)
            .and_then(|r| r.serial)
            .unwrap_or(0);
        if granted_at <= *left {
            return Err(Error::new(format!(
                "{env}: {name} is signed by {} ({}), whose key left the roster at serial {left}: a departed member's write; kept ours, unmerged",
                v.signer_member, v.signer
            ))
            .with_hint(format!("see who committed it: git log -p -- conf/pillar/{env}")));
        }
    }
    Ok(())
}

/// A side older than the common ancestor is a replay of a version from before the
/// branches parted (its values may be ones a departed member read), not a branch.
fn no_older_than_the_ancestor(
    env: &EnvName,
    o: &MergeInput,
    sides: [(&str, &MergeInput); 2],
) -> Result<()> {
    let base = o.verified.manifest.serial;
    for (name, side) in sides {
        let serial = side.verified.manifest.serial;
        if serial < base {
            return Err(Error::new(format!(
                "{env}: {name} (serial {serial}) is older than the common ancestor (serial {base}): a replayed version, not a branch; kept ours, unmerged"
            ))
            .with_hint(format!("see who committed it: git log -p -- conf/pillar/{env}")));
        }
    }
    Ok(())
}

fn merge_secrets(
    store: &mut Store,
    git: &Git,
    env: &EnvName,
    [o_ct, a_ct, b_ct]: [Vec<u8>; 3],
    sig_rel: &str,
) -> Result<(Vec<u8>, String, Vec<String>)> {
    let candidates = git.commits_touching(sig_rel)?;
    // The ancestor is trusted as far as this machine trusts the environment; each
    // branch must trace its signer back to the ancestor's roster and not go back in
    // serial, so a branch cannot slip in a re-founded or rolled-back environment.
    let seen = store::known_roster(&store.project, env);
    // The ancestor is from before the branches parted: a key that left since is
    // expected in it, and is kept out of the result below, not held against it.
    let before = seen.clone().map(|s| SeenEnv {
        removed: Default::default(),
        ..s
    });
    let o = side(
        store,
        git,
        env,
        "the common ancestor",
        &o_ct,
        &candidates,
        sig_rel,
        before.as_ref(),
    )?;
    // A branch from before a revoke still lists the departed key: its values merge (and
    // are marked exposed to him), its roster does not bring him back, and nothing he
    // signed after he left is taken (no_departed_signer, merged_manifest).
    let anchors = SeenEnv {
        serial: o.verified.manifest.serial,
        roster: o.verified.trusted.clone(),
        project: seen.as_ref().and_then(|s| s.project.clone()),
        ..SeenEnv::default()
    };
    let a = side(
        store,
        git,
        env,
        "ours",
        &a_ct,
        &candidates,
        sig_rel,
        Some(&anchors),
    )?;
    let b = side(
        store,
        git,
        env,
        "theirs",
        &b_ct,
        &candidates,
        sig_rel,
        Some(&anchors),
    )?;
    no_older_than_the_ancestor(env, &o, [("ours", &a), ("theirs", &b)])?;
    let (doc, from_other) = merge_values(env, &o, &a, &b)?;
    let base = recipients_side(env, &o, &a, &b)?;
    let removed = seen.as_ref().map(|s| s.removed.clone()).unwrap_or_default();
    no_departed_signer(env, &removed, [("ours", &a), ("theirs", &b)])?;
    let manifest = merged_manifest(env, &doc, base, [&o, &a, &b], &removed);
    let allowed: BTreeSet<String> = manifest
        .roster
        .iter()
        .map(|r| r.fingerprint.clone())
        .collect();
    let mut signer = store.identities.signer(&allowed, env.as_str())?;
    let (ciphertext, sidecar, _) = store::seal(env, &doc, &base.folder, manifest, &mut signer)?;
    Ok((ciphertext, sidecar, from_other))
}

/// Secrets: a three-way merge by name, on ours' text (so its comments and layout stay).
/// Returns the merged document and the names taken from theirs.
fn merge_values(
    env: &EnvName,
    o: &MergeInput,
    a: &MergeInput,
    b: &MergeInput,
) -> Result<(Document, Vec<String>)> {
    let values = |s: &MergeInput| -> BTreeMap<String, SecretValue> {
        s.doc
            .entries()
            .iter()
            .map(|e| (e.name().to_string(), e.value().clone()))
            .collect()
    };
    let (ov, av, bv) = (values(o), values(a), values(b));
    let names: BTreeSet<&String> = ov.keys().chain(av.keys()).chain(bv.keys()).collect();
    let mut conflicts = Vec::new();
    let allowed = a.doc.allowed().union(b.doc.allowed()).cloned().collect();
    let mut doc = Document::parse_allowing(
        env.as_str(),
        crate::secret::SecretBytes::new(a.doc.text().to_vec()),
        allowed,
    )?;
    let mut from_other = Vec::new();
    for name in names {
        let (x, y, z) = (ov.get(name), av.get(name), bv.get(name));
        let same = |p: Option<&SecretValue>, q: Option<&SecretValue>| {
            p.map(SecretValue::expose) == q.map(SecretValue::expose)
        };
        if same(y, z) || same(x, z) {
            continue; // Both agree, or theirs did not change it: ours stands.
        }
        if !same(x, y) {
            conflicts.push(name.clone());
            continue;
        }
        // Only theirs changed it.
        doc = take_theirs(env, doc, name, z)?;
        from_other.push(name.clone());
    }
    if !conflicts.is_empty() {
        return Err(Error::new(format!(
            "{env}: both branches changed {} differently; kept ours, unmerged",
            conflicts.join(", ")
        ))
        .with_hint(format!(
            "see both with `vault diff {env} HEAD MERGE_HEAD --values`, settle them with `vault edit {env}`, then `git add conf/pillar/{env}` and commit"
        )));
    }
    Ok((doc, from_other))
}

/// `doc` with `name` as theirs has it: set to their value, or removed.
fn take_theirs(
    env: &EnvName,
    doc: Document,
    name: &str,
    theirs: Option<&SecretValue>,
) -> Result<Document> {
    Ok(match theirs {
        Some(v) => doc.with_set(env.as_str(), name, v)?.0,
        None => match doc.with_unset(env.as_str(), name)? {
            Some((d, _)) => d,
            None => doc,
        },
    })
}

/// Recipients: merged only when one side alone changed them; the side whose roster
/// and folder the result takes.
fn recipients_side<'s>(
    env: &EnvName,
    o: &MergeInput,
    a: &'s MergeInput,
    b: &'s MergeInput,
) -> Result<&'s MergeInput> {
    let roster_of = |s: &MergeInput| -> BTreeSet<String> {
        s.verified
            .manifest
            .roster
            .iter()
            .map(|r| format!("{} {}", r.member, r.fingerprint))
            .collect()
    };
    let (or, ar, br) = (roster_of(o), roster_of(a), roster_of(b));
    if ar == br || br == or {
        Ok(a)
    } else if ar == or {
        Ok(b)
    } else {
        Err(Error::new(format!(
            "{env}: both branches changed who can read it; kept ours, unmerged"
        ))
        .with_hint(format!(
            "merge one change of recipients at a time, or redo one side's grant or revoke after the merge; `vault diff {env} HEAD MERGE_HEAD` shows both"
        )))
    }
}

/// The manifest of the merged `doc`: `base`'s roster, each secret's date from the side
/// whose value it kept (today for a value neither had), its exposures (see
/// [`merged_exposures`]), and a serial past both sides'.
fn merged_manifest(
    env: &EnvName,
    doc: &Document,
    base: &MergeInput,
    [o, a, b]: [&MergeInput; 3],
    removed: &std::collections::BTreeMap<String, u64>,
) -> Manifest {
    let today = manifest::today();
    // A key this machine saw leave comes back only by a grant made after it left, not
    // from a branch of before: what that branch let it read is exposed below.
    let roster: Vec<RosterEntry> = base
        .verified
        .manifest
        .roster
        .iter()
        .filter(|r| {
            removed
                .get(&r.fingerprint)
                .is_none_or(|left| r.serial.unwrap_or(0) > *left)
        })
        .cloned()
        .collect();
    let changed_on = |name: &str, value: &str| -> String {
        for s in [a, b] {
            if s.doc.get(name).map(SecretValue::expose) == Some(value) {
                if let Some(d) = s.verified.manifest.secret_date(name) {
                    return d.to_string();
                }
            }
        }
        today.clone()
    };
    let secrets = doc
        .entries()
        .iter()
        .map(|e| {
            (
                e.name().to_string(),
                changed_on(e.name(), e.value().expose()),
            )
        })
        .collect();
    // Both sides are parents, as in git; a side in the old format names no id.
    let (ma, mb) = (&a.verified.manifest, &b.verified.manifest);
    let parents = match (&ma.project, &mb.project) {
        (Some(_), Some(_)) => vec![ma.id(), mb.id()],
        _ => vec![],
    };
    // A name allowed on either side (each signed by a member) is allowed in the result.
    let mut allow: Vec<String> = ma.allow.iter().chain(&mb.allow).cloned().collect();
    allow.sort();
    allow.dedup();
    Manifest {
        allow,
        project: ma.project.clone().or_else(|| mb.project.clone()),
        parents,
        environment: env.to_string(),
        serial: a.verified.manifest.serial.max(b.verified.manifest.serial) + 1,
        ciphertext: String::new(),
        exposed: merged_exposures(doc, base, &roster, [o, a, b], &today),
        roster,
        secrets,
    }
}

/// Who could read each merged value and is no longer a member: a value any of the three
/// inputs held stays exposed to whom that input already marked it exposed, and becomes
/// exposed to every key of that input's roster that `base`'s (the merged) roster lacks,
/// since that key's holder can decrypt it from that input's commit. A value none of them
/// held for a departed key (changed after the revoke) is exposed to nobody.
fn merged_exposures(
    doc: &Document,
    base: &MergeInput,
    roster: &[RosterEntry],
    inputs: [&MergeInput; 3],
    today: &str,
) -> Vec<Exposure> {
    let kept: BTreeSet<&str> = roster.iter().map(|r| r.fingerprint.as_str()).collect();
    let mut exposed: Vec<Exposure> = Vec::new();
    for e in doc.entries() {
        let (name, value) = (e.name(), e.value().expose());
        let holding = inputs
            .iter()
            .filter(|s| s.doc.get(name).map(SecretValue::expose) == Some(value));
        for s in holding {
            let m = &s.verified.manifest;
            let marked = m.exposed.iter().filter(|x| x.name == name).cloned();
            let departed = m
                .roster
                .iter()
                .filter(|r| !kept.contains(r.fingerprint.as_str()))
                .map(|r| Exposure {
                    name: name.to_string(),
                    since: exposed_since(base, &r.member, m.secret_date(name), today),
                    member: r.member.clone(),
                });
            for x in marked.chain(departed) {
                add_exposure(&mut exposed, x);
            }
        }
    }
    exposed
}

/// When a departed member's exposure of a value began: the day they left, as the side
/// that removed them records it (its earliest exposure to them), or the value's own date
/// when it was made after; today when the revoking side no longer records the day.
fn exposed_since(base: &MergeInput, member: &str, value_date: Option<&str>, today: &str) -> String {
    let left = base
        .verified
        .manifest
        .exposed
        .iter()
        .filter(|x| x.member == member)
        .map(|x| x.since.as_str())
        .min();
    match (left, value_date) {
        (Some(l), Some(v)) => l.max(v).to_string(),
        (Some(l), None) => l.to_string(),
        (None, _) => today.to_string(),
    }
}

/// Adds `x`, once per secret and member, keeping the earliest date.
fn add_exposure(exposed: &mut Vec<Exposure>, x: Exposure) {
    match exposed
        .iter_mut()
        .find(|y| y.name == x.name && y.member == x.member)
    {
        Some(y) if x.since < y.since => y.since = x.since,
        Some(_) => {}
        None => exposed.push(x),
    }
}

/// Finds the signature of `ciphertext` among the commits that touched the sidecar,
/// verifies it against the recipients of the commit it was found in, and decrypts.
#[allow(clippy::too_many_arguments)]
fn side(
    store: &mut Store,
    git: &Git,
    env: &EnvName,
    name: &'static str,
    ciphertext: &[u8],
    candidates: &[String],
    sig_rel: &str,
    anchors: Option<&SeenEnv>,
) -> Result<MergeInput> {
    let want = format!("\nciphertext {}\n", trust::ciphertext_hash(ciphertext));
    let mut found: Option<(Vec<u8>, Vec<Member>)> = None;
    for commit in candidates {
        let Some(sidecar) = git.show(commit, sig_rel)? else {
            continue;
        };
        if sidecar.windows(want.len()).any(|w| w == want.as_bytes()) {
            found = Some((sidecar, recipients::members_at(git, commit, env)?));
            break;
        }
    }
    let (sidecar, folder) = found.ok_or_else(|| {
        Error::new(format!(
            "{env}: no commit holds the signature of the secrets of {name}; kept ours, unmerged"
        ))
        .with_hint(
            "commit both conf/pillar/ENV/secrets.sls.age and its .sig together on each branch",
        )
    })?;
    let pair = store::Pair {
        ciphertext: ciphertext.to_vec(),
        sidecar: Some(sidecar),
    };
    let verified = store
        .verify_other(env, &pair, &folder, anchors)
        .map_err(|why| {
            Error::new(format!(
                "{env}: the secrets of {name} are refused: {why}; kept ours, unmerged"
            ))
        })?;
    let order = crate::envelope::stanza_order(&verified.manifest.roster);
    let doc = store
        .decrypt(env, ciphertext, &verified.manifest.allow, &order)
        .map_err(|e| {
        Error::new(format!("{env}: cannot merge without reading it: {e}"))
            .with_hint("a member who can read it runs the merge; git has recorded a conflict and left ours in place")
    })?;
    Ok(MergeInput {
        verified,
        folder,
        doc,
    })
}

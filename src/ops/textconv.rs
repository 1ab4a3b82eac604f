//! What `git diff`, `git log -p` and `git show` display for one blob of an environment's
//! pair: vault's textconv driver. git hands over only the blob's bytes, so a secrets
//! blob is matched to the sidecars that sign it by the ciphertext hash they name (in the
//! working tree, the index, or any commit, as the merge driver finds its sidecars), and
//! is decrypted only when one of them verifies as the store would verify it. A sidecar
//! blob shows its manifest, and names its signer only when the signature verifies and
//! the key is one of its roster traced to keys this machine trusts. Never a value.

use crate::envelope;
use crate::error::{Error, Result};
use crate::git::Git;
use crate::keys::recipients::{self, Member};
use crate::keys::signing;
use crate::manifest::{self, Manifest};
use crate::project::{EnvName, Project, SIDECAR_FILE};
use crate::store::{known_roster, Pair, Store};
use crate::trust::{self, SeenEnv, Verified};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Read;

/// The view of one blob of a `*.age` or `*.age.sig` file: the manifest and its signer,
/// or the secret names with a tag per value that changes when the value does. The tags
/// are keyed with a secret of this machine, so the output cannot be used to guess a
/// value.
pub fn textconv(store: &mut Store, bytes: &[u8]) -> String {
    if bytes.starts_with(b"vault manifest v") {
        return sidecar_view(store, bytes);
    }
    match envelope::header(bytes) {
        Ok(header) => secrets_view(store, bytes, &header),
        // Not ours to interpret: show it as it is.
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The roster fingerprints a blob of `env` is verified against: those this machine
/// trusts already (its grants need no checking again; an older serial is what history
/// holds). Never a blob's own founders: a forged version in the history would found
/// itself.
fn anchors(project: &Project, env: &EnvName) -> std::result::Result<SeenEnv, String> {
    known_roster(project, env).ok_or_else(|| {
        format!("this machine has not verified {env} yet: read it once with `vault show {env}`")
    })
}

fn sidecar_view(store: &Store, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let (signed, armored) = match manifest::split(&text) {
        Ok(parts) => parts,
        Err(why) => return format!("vault manifest: malformed: {why}\n"),
    };
    let m = match Manifest::parse(signed) {
        Ok(m) => m,
        Err(why) => return format!("vault manifest: malformed: {why}\n"),
    };
    let mut out = format!("vault manifest: {} serial {}\n", m.environment, m.serial);
    match sidecar_signer(&store.project, &m, signed, armored) {
        Ok((member, fp)) => out.push_str(&format!("signed by {member} {fp}\n")),
        Err(why) => out.push_str(&format!("signed by: NOT VERIFIED ({why})\n")),
    }
    manifest_lines(&m, &mut out);
    out
}

/// The roster, secrets and exposures a manifest lists, as it lists them.
fn manifest_lines(m: &Manifest, out: &mut String) {
    let name_of = |fp: &str| {
        m.roster
            .iter()
            .find(|r| r.fingerprint == fp)
            .map(|r| r.member.clone())
            .unwrap_or_else(|| "not in the roster".into())
    };
    for r in &m.roster {
        out.push_str(&format!(
            "recipient {} {} granted by {} on {}\n",
            r.member,
            r.fingerprint,
            name_of(&r.granted_by),
            r.date
        ));
    }
    for (name, date) in &m.secrets {
        out.push_str(&format!("secret {name} changed {date}\n"));
    }
    for x in &m.exposed {
        out.push_str(&format!(
            "exposed {} to {} since {}\n",
            x.name, x.member, x.since
        ));
    }
}

/// The member and fingerprint that signed a sidecar: the signature must verify, and the
/// key must be in its roster, traced by grants to keys this machine trusts. The reason
/// otherwise names only a fingerprint, never a name the manifest gives it.
fn sidecar_signer(
    project: &Project,
    m: &Manifest,
    signed: &str,
    armored: &str,
) -> std::result::Result<(String, String), String> {
    let sig = ssh_key::SshSig::from_pem(armored.trim_end())
        .map_err(|_| "the signature is malformed".to_string())?;
    let fp = signing::verify(signing::NAMESPACE, signed.as_bytes(), &sig)
        .map_err(|_| "the signature does not match the manifest (forged or altered)".to_string())?;
    let env = EnvName::parse(&m.environment)
        .map_err(|_| "the manifest names no valid environment".to_string())?;
    let anchors = anchors(project, &env)?;
    let trusted = trust::trusted_roster(m, Some(&anchors))?;
    let entry = m
        .roster
        .iter()
        .find(|r| r.fingerprint == fp)
        .ok_or_else(|| format!("signed by {fp}, a key its roster does not grant"))?;
    if !trusted.contains(&fp) {
        return Err(format!(
            "signed by {fp}, whose grant does not trace back to a member this machine trusts"
        ));
    }
    Ok((entry.member.clone(), fp))
}

/// A sidecar naming the blob, and the recipients folder of where it was found.
struct Candidate {
    env: EnvName,
    sidecar: Vec<u8>,
    folder: Vec<Member>,
}

/// The verified signature of `ciphertext`: the first sidecar naming its hash that
/// verifies, looked for in the working tree, then the index, then every commit. Err is
/// one line saying why there is none.
fn verified_signature(
    project: &Project,
    ciphertext: &[u8],
) -> std::result::Result<Verified, String> {
    let hash = trust::ciphertext_hash(ciphertext);
    let names_it = |sidecar: &[u8]| {
        let want = format!("\nciphertext {hash}\n");
        sidecar.windows(want.len()).any(|w| w == want.as_bytes())
    };
    let git = Git::new(project.root());
    let mut first_refusal: Option<String> = None;
    let sources: [&dyn Fn() -> Result<Vec<Candidate>>; 3] = [
        &|| Ok(worktree_candidates(project, &git, false)),
        &|| Ok(worktree_candidates(project, &git, true)),
        &|| history_candidates(&git, &hash),
    ];
    for source in sources {
        let found = source().map_err(|e| format!("cannot search the history: {e}"))?;
        for c in found.into_iter().filter(|c| names_it(&c.sidecar)) {
            match verify_candidate(project, ciphertext, c) {
                Ok(v) => return Ok(v),
                Err(why) => {
                    first_refusal.get_or_insert(why);
                }
            }
        }
    }
    Err(match first_refusal {
        Some(why) => format!("its signature is refused: {why}"),
        None => {
            "no signature in the working tree, the index or the history signs this version".into()
        }
    })
}

/// `c` checked as a read checks it. Its signer's trust is checked first, in words that
/// name only a fingerprint: a forger chooses the names in the folder and the roster.
fn verify_candidate(
    project: &Project,
    ciphertext: &[u8],
    c: Candidate,
) -> std::result::Result<Verified, String> {
    let text = std::str::from_utf8(&c.sidecar).map_err(|_| "the signature file is not text")?;
    let (signed, armored) =
        manifest::split(text).map_err(|why| format!("the signature file is malformed: {why}"))?;
    let m = Manifest::parse(signed).map_err(|why| format!("the manifest is malformed: {why}"))?;
    sidecar_signer(project, &m, signed, armored)?;
    let anchors = anchors(project, &c.env)?;
    let pair = Pair {
        ciphertext: ciphertext.to_vec(),
        sidecar: Some(c.sidecar),
    };
    pair.verify_for(project, &c.env, &c.folder, Some(&anchors))
}

/// Each environment's sidecar on disk (or, with `index`, as staged), with the working
/// tree's recipients folder.
fn worktree_candidates(project: &Project, git: &Git, index: bool) -> Vec<Candidate> {
    let envs = project.environments().unwrap_or_default();
    envs.into_iter()
        .filter_map(|env| {
            let sidecar = if index {
                git.show("", &Project::git_sidecar_path(&env)).ok()??
            } else {
                crate::fs::read_limited(&project.sidecar_path(&env), manifest::MAX_SIDECAR_BYTES)
                    .ok()??
            };
            let folder = recipients::members(project, &env).ok()?;
            Some(Candidate {
                env,
                sidecar,
                folder,
            })
        })
        .collect()
}

/// The sidecars of the commits (on any branch, merges included) where a sidecar naming
/// `hash` appears or goes, each with the recipients folder of its commit. One pickaxe
/// search, on the raw blobs (`--no-textconv`: this driver must not run itself).
fn history_candidates(git: &Git, hash: &str) -> Result<Vec<Candidate>> {
    let needle = format!("ciphertext {hash}");
    let pathspec = format!("./conf/pillar/*/{SIDECAR_FILE}");
    let log = git.output(&[
        "log",
        "--all",
        "-m",
        "--no-textconv",
        "--relative",
        "--name-only",
        "--format=commit %H",
        "-S",
        &needle,
        "--",
        &pathspec,
    ])?;
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let mut commit = String::new();
    for line in String::from_utf8_lossy(&log).lines() {
        if let Some(c) = line.strip_prefix("commit ") {
            commit = c.to_string();
            continue;
        }
        let Some(env) = env_of_sidecar(line) else {
            continue;
        };
        if !seen.insert((commit.clone(), env.to_string())) {
            continue;
        }
        let Some(sidecar) = git.show(&commit, line)? else {
            continue;
        };
        let folder = recipients::members_at(git, &commit, &env)?;
        found.push(Candidate {
            env,
            sidecar,
            folder,
        });
    }
    Ok(found)
}

/// The environment of `conf/pillar/<env>/secrets.sls.age.sig`.
fn env_of_sidecar(path: &str) -> Option<EnvName> {
    let env = path
        .strip_prefix("conf/pillar/")?
        .strip_suffix(SIDECAR_FILE)?
        .strip_suffix('/')?;
    EnvName::parse(env).ok()
}

fn secrets_view(store: &mut Store, bytes: &[u8], header: &envelope::Header) -> String {
    let mut out = String::new();
    match verified_signature(&store.project, bytes) {
        Ok(v) => secret_lines(store, bytes, &v, &mut out),
        // Nothing is decrypted, so nothing derived from a value shows.
        Err(why) => out.push_str(&format!(
            "vault secrets: NOT VERIFIED ({why}); not decrypted\n"
        )),
    }
    out.push_str(&format!(
        "encrypted to {} X25519 and {} SSH keys\n",
        header.x25519,
        header.ssh_tags.len()
    ));
    out
}

/// The names and keyed tags of a blob whose signature verified, and who signed it.
fn secret_lines(store: &mut Store, bytes: &[u8], v: &Verified, out: &mut String) {
    // The environment it is signed for: a pair copied over another's shows as what it is.
    let signer = format!(
        "environment {}\nsigned by {} {}, serial {}\n",
        v.manifest.environment, v.signer_member, v.signer, v.manifest.serial
    );
    let doc = store
        .identities
        .decrypt(
            "this version",
            bytes,
            &envelope::stanza_order(&v.manifest.roster),
        )
        .and_then(|plain| {
            let allowed = v.manifest.allow.iter().cloned().collect();
            crate::document::Document::parse_allowing("this version", plain, allowed)
        });
    let doc = match doc {
        Ok(doc) => doc,
        Err(e) => {
            out.push_str(&format!("vault secrets: not readable here ({e})\n"));
            out.push_str(&signer);
            return;
        }
    };
    let key = match tag_key() {
        Ok(key) => key,
        Err(e) => {
            out.push_str(&format!("vault secrets: names only ({e})\n"));
            out.push_str(&signer);
            for e in doc.entries() {
                out.push_str(&format!("{}\n", e.name()));
            }
            return;
        }
    };
    out.push_str("vault secrets (values hidden; a tag changes when its value does)\n");
    out.push_str(&signer);
    for e in doc.entries() {
        let mut h = Sha256::new();
        h.update(key);
        h.update(e.name().as_bytes());
        h.update([0]);
        h.update(e.value().expose().as_bytes());
        let tag = h.finalize();
        out.push_str(&format!(
            "{} {:02x}{:02x}{:02x}{:02x}{:02x}\n",
            e.name(),
            tag[0],
            tag[1],
            tag[2],
            tag[3],
            tag[4]
        ));
    }
}

/// This machine's secret for keying value tags (32 random bytes, made on first use,
/// mode 0600 in the state folder).
fn tag_key() -> Result<[u8; 32]> {
    let dir = trust::state_dir().ok_or_else(|| Error::new("no HOME or XDG_STATE_HOME"))?;
    let path = dir.join("diff-tag-key");
    let mut key = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open(&path) {
        if f.read_exact(&mut key).is_ok() {
            return Ok(key);
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut r| r.read_exact(&mut key))
        .map_err(|e| Error::new(format!("cannot read random bytes: {e}")))?;
    // Two diffs racing both write a key; the one that lands first wins for both.
    match crate::fs::write_atomic(&path, &key, crate::fs::Mode::CreateNewPrivate)? {
        crate::fs::Created::Yes => Ok(key),
        crate::fs::Created::No => {
            let mut f =
                std::fs::File::open(&path).map_err(|e| Error::io("cannot read", &path, e))?;
            f.read_exact(&mut key)
                .map_err(|e| Error::io("cannot read", &path, e))?;
            Ok(key)
        }
    }
}

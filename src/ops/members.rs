//! `vault grant`, `vault revoke` and `vault rekey`: who may read an environment, changed
//! and re-encrypted. Each returns what it did; the binary says it.

use crate::error::{Error, Result};
use crate::fs;
use crate::keys::recipients::{self, PublicKey};
use crate::project::{self, EnvName};
use crate::store::{self, RosterChange, Store, WriteReport};
use std::path::{Path, PathBuf};

/// What a grant was given: the member, the fingerprints read to the granter over another
/// channel, and optionally the file their key comes from.
pub struct GrantRequest<'a> {
    pub env: &'a str,
    pub name: &'a str,
    pub fingerprints: &'a [String],
    pub key: Option<&'a Path>,
}

/// Grants a member: their keys (from `recipients/ENV/NAME.pub`, or `key`, which then
/// becomes that file) must match the fingerprints given, each one, both ways. The key file
/// is written before the re-encryption and removed again if it fails, so a refused grant
/// leaves the folder as it was.
pub fn grant(store: &mut Store, req: &GrantRequest<'_>) -> Result<(EnvName, WriteReport)> {
    let env = store.project.environment(req.env)?;
    let name = req.name;
    if !project::is_member_name(name) {
        return Err(Error::usage(format!(
            "invalid member name '{name}': use lowercase letters, digits, '.', '_' and '-'"
        )));
    }
    let pub_path = key_file(store, &env, name);
    let shown = store.project.display_path(&pub_path);
    let (keys, new_file) = grant_keys(&env, &pub_path, &shown, req.key)?;
    confirm_fingerprints(&env, name, &shown, &keys, req.fingerprints)?;
    // Checked by voice: this user has verified them (a founding admits them too).
    for k in &keys {
        store.remember_key(&k.fingerprint());
    }
    if let Some(text) = &new_file {
        fs::write_atomic(&pub_path, text.as_bytes(), fs::Mode::CreateNew)?;
        fs::checkpoint("key-file-written");
    }
    let result = store.write(
        &env,
        RosterChange::Grant {
            member: name,
            keys: &keys,
        },
        |doc| Ok(Some(store::or_empty(&env, doc))),
    );
    match result {
        Ok(report) => Ok((env, report)),
        Err(e) => {
            if new_file.is_some() {
                let _ = std::fs::remove_file(&pub_path);
            }
            Err(e)
        }
    }
}

/// `recipients/ENV/NAME.pub`.
fn key_file(store: &Store, env: &EnvName, name: &str) -> PathBuf {
    store
        .project
        .recipients_dir(env)
        .join(format!("{name}.pub"))
}

/// The keys to grant, and the text of a key file still to write (None when the folder
/// already holds it). A key file already there is never replaced by another key.
fn grant_keys(
    env: &EnvName,
    pub_path: &Path,
    shown: &str,
    key: Option<&Path>,
) -> Result<(Vec<PublicKey>, Option<String>)> {
    let existing = match std::fs::read_to_string(pub_path) {
        Ok(text) => Some(recipients::parse_file(&text, shown)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("cannot read", pub_path, e)),
    };
    let Some(file) = key else {
        return match existing {
            Some(keys) => Ok((keys, None)),
            None => Err(Error::new(format!("{env}: {shown} does not exist")).with_hint(
                "the newcomer proposes it (their `vault whoami` public key), or pass --key FILE",
            )),
        };
    };
    let text = std::fs::read_to_string(file).map_err(|e| Error::io("cannot read", file, e))?;
    let keys = recipients::parse_file(&text, &file.display().to_string())?;
    match existing {
        Some(old)
            if old
                .iter()
                .map(|k| k.fingerprint())
                .ne(keys.iter().map(|k| k.fingerprint())) =>
        {
            Err(Error::new(format!(
                "{env}: {shown} already holds another key; not replacing it"
            ))
            .with_hint("a member's key changes by revoking the old one and granting the new one"))
        }
        Some(_) => Ok((keys, None)),
        None => Ok((keys, Some(text))),
    }
}

/// Every key must carry a fingerprint the granter was given, and every fingerprint given
/// must name one of the keys: a grant never goes further than what was confirmed.
fn confirm_fingerprints(
    env: &EnvName,
    name: &str,
    shown: &str,
    keys: &[PublicKey],
    fingerprints: &[String],
) -> Result<()> {
    for k in keys {
        if !fingerprints.iter().any(|f| *f == k.fingerprint()) {
            return Err(Error::new(format!(
                "{env}: refusing to grant {name}: the key has fingerprint {}, which is not the one you were given ({})",
                k.fingerprint(),
                fingerprints.join(", ")
            ))
            .with_hint("check the fingerprint with them again over another channel; do not grant a key you cannot confirm"));
        }
    }
    for f in fingerprints {
        if !keys.iter().any(|k| k.fingerprint() == *f) {
            return Err(Error::new(format!(
                "{env}: refusing to grant {name}: no key with fingerprint {f} in {shown}"
            )));
        }
    }
    Ok(())
}

/// What a revoke did.
pub enum Revoked {
    /// Removed from the roster and re-encrypted; every secret they could read is exposed.
    Revoked(WriteReport),
    /// An earlier revoke had re-encrypted but was stopped before removing the key file
    /// (shown here as a project path); this one removed it.
    Finished(String),
}

/// Revokes a member: re-encrypts without them (marking what they could read as exposed),
/// then removes their key file. The file goes last, so an interrupted revoke is finished
/// by running it again.
pub fn revoke(store: &mut Store, env: &str, name: &str) -> Result<(EnvName, Revoked)> {
    let env = store.project.environment(env)?;
    if !project::is_member_name(name) {
        return Err(Error::usage(format!("invalid member name '{name}'")));
    }
    let pub_path = key_file(store, &env, name);
    // A revoke killed after re-encrypting left only the key file: finish it.
    if pub_path.exists() && store.granted(&env)?.is_some_and(|g| !g.contains(name)) {
        std::fs::remove_file(&pub_path).map_err(|e| Error::io("cannot remove", &pub_path, e))?;
        let shown = store.project.display_path(&pub_path);
        return Ok((env, Revoked::Finished(shown)));
    }
    let report = store.write(
        &env,
        RosterChange::Revoke { member: name },
        |doc| match doc {
            Some(doc) => Ok(Some(doc)),
            None => Err(Error::new(format!(
                "{env} has no secrets yet; remove recipients/{env}/{name}.pub instead"
            ))),
        },
    )?;
    fs::checkpoint("before-key-file-removed");
    match std::fs::remove_file(&pub_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove", &pub_path, e)),
    }
    Ok((env, Revoked::Revoked(report)))
}

/// The environments a rekey covers: those named, or every one with secrets.
pub fn rekey_targets(store: &Store, envs: &[String]) -> Result<Vec<EnvName>> {
    if envs.is_empty() {
        Ok(store
            .project
            .environments()?
            .into_iter()
            .filter(|e| store.project.secrets_path(e).exists())
            .collect())
    } else {
        envs.iter().map(|e| store.project.environment(e)).collect()
    }
}

/// Re-encrypts one environment's unchanged content to its recipients folder as it stands.
pub fn rekey(store: &mut Store, env: &EnvName) -> Result<WriteReport> {
    store.modify(env, |doc| match doc {
        Some(doc) => Ok(Some(doc)),
        None => Err(Error::new(format!(
            "{env} has no secrets yet; nothing to rekey"
        ))),
    })
}

/// Who a confirmed key is: the member names it has in the environment's folder.
pub struct Trusted {
    pub env: EnvName,
    pub members: Vec<String>,
}

/// Remembers `fingerprint` as a key this user checked with its holder, so a roster it
/// founded or vouches for is trusted on this machine. It must be a key of `env`'s folder:
/// a fingerprint confirmed for nobody is a typo.
pub fn trust(store: &mut Store, env: &str, fingerprint: &str) -> Result<Trusted> {
    let env = store.project.environment(env)?;
    let folder = recipients::members(&store.project, &env)?;
    let members: Vec<String> = folder
        .iter()
        .filter(|m| m.keys.iter().any(|k| k.fingerprint() == fingerprint))
        .map(|m| m.name.clone())
        .collect();
    if members.is_empty() {
        return Err(Error::new(format!(
            "{env}: no key in recipients/{env}/ has the fingerprint {fingerprint}"
        ))
        .with_hint(format!(
            "copy the fingerprint exactly as `vault status` or the refusal printed it; `ssh-keygen -lf recipients/{env}/NAME.pub` shows each"
        )));
    }
    store.remember_key(fingerprint);
    Ok(Trusted { env, members })
}

/// Allows (or, with `allow` false, no longer allows) a controlling name such as
/// `PYTHONPATH` as a secret of `env`, in its signed manifest: a member's deliberate,
/// signed choice that the environment sets it. The content is re-encrypted unchanged.
pub fn allow(
    store: &mut Store,
    env: &str,
    name: &str,
    allow: bool,
) -> Result<(EnvName, WriteReport)> {
    let env = store.project.environment(env)?;
    // The name's form only: allowing it is the point.
    let itself = std::iter::once(name.to_string()).collect();
    crate::document::check_name_allowing(env.as_str(), name, None, &itself)?;
    let report = store.write(&env, RosterChange::Allow { name, allow }, |doc| {
        Ok(Some(store::or_empty(&env, doc)))
    })?;
    Ok((env, report))
}

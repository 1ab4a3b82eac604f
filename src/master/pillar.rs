//! The secrets Salt's ext_pillar serves one minion: those of the environment the
//! master's record says the minion was accepted for (never what its grains claim),
//! and only when that environment's shipped `env.sls` lists it; verified exactly as a
//! member's machine verifies them, then decrypted, in memory.

use super::{Config, Layout};
use crate::document::Document;
use crate::error::{Error, Result};
use crate::export::{self, Format};
use crate::keys::identity::Identities;
use crate::project::{EnvName, Project};
use crate::provision::pillar::EnvFile;
use crate::secret::SecretBytes;
use crate::store::Store;

/// The pillar for `minion`, as JSON: `{"secrets": {...}}`, or `{}` for a minion vault
/// did not accept (the master may serve others).
pub fn pillar(layout: &Layout, minion: &str) -> Result<SecretBytes> {
    let config = Config::required(layout)?;
    let Some(env) = config.accepted(layout, minion)? else {
        return Ok(SecretBytes::new(b"{}".to_vec()));
    };
    let env = config.served(env)?;
    let mut store = open(layout, &config, &env)?;
    listed(&store.project, &env, minion)?;
    let doc = open_fresh(&mut store, &env)?;
    let secrets = export::render(Format::Json, env.as_str(), doc.entries())?;
    let mut out = Vec::with_capacity(secrets.expose().len() + 16);
    out.extend_from_slice(b"{\"secrets\": ");
    out.extend_from_slice(secrets.expose());
    out.extend_from_slice(b"}\n");
    Ok(SecretBytes::new(out))
}

/// The store of `env`'s shipped project, reading with the master's identity only.
pub(super) fn open(layout: &Layout, config: &Config, env: &EnvName) -> Result<Store> {
    let dir = layout.project_dir(&config.project, env);
    if !dir.join("conf/pillar").is_dir() {
        return Err(Error::new(format!(
            "nothing of {env} has been shipped to this master yet"
        ))
        .with_hint(format!(
            "run `vault provision {env}` from a member's machine"
        )));
    }
    let project = Project::at(&dir);
    // What was shipped is this master's project, not one founded anew beside it.
    let shipped = project.required_identity()?;
    if shipped.as_str() != config.project_id {
        return Err(Error::new(format!(
            "what was shipped for {env} is project {shipped}, not {} which this master serves",
            config.project_id
        ))
        .with_hint("provision from a checkout of the project this master was set up for"));
    }
    let ids = Identities::standard(Some(layout.identity(env)));
    Ok(Store::new(
        project,
        ids,
        false,
        Box::new(crate::notice::Quiet),
    ))
}

/// `env`'s secrets, decrypted only once verified and no older than the newest version
/// this master has verified: a member's machine may read an old commit, a master
/// never serves one (old values go back as a new version).
pub(super) fn open_fresh(store: &mut Store, env: &EnvName) -> Result<Document> {
    let newest = store.seen().get(env).map(|s| s.serial);
    let pair = store.read_env(env)?.ok_or_else(|| {
        Error::new(format!("{env} has no secrets on this master")).with_hint(format!(
            "run `vault provision {env}` from a member's machine"
        ))
    })?;
    let folder = crate::keys::recipients::members(&store.project, env)?;
    // The master never skips verification, so a pair it reads is verified or refused.
    let manifest = store
        .verify(env, &pair, &folder)?
        .map(|v| v.manifest)
        .ok_or_else(|| Error::new(format!("{env}: refused before decrypting")))?;
    let serial = manifest.serial;
    if let Some(newest) = newest {
        if serial < newest {
            return Err(Error::new(format!(
                "{env}: refused before decrypting: rollback: serial {serial} is older than serial {newest}, which this master has verified"
            ))
            .with_hint(format!(
                "`git pull` and provision the newest; to bring back old values, write them as a new version (`vault set {env} NAME`)"
            )));
        }
    }
    // The pair just verified, decrypted as it is: not read or verified again.
    let order = crate::envelope::stanza_order(&manifest.roster);
    store.decrypt(env, &pair.ciphertext, &manifest.allow, &order)
}

/// `minion` must be one of `env`'s `minions:`.
pub(super) fn listed(project: &Project, env: &EnvName, minion: &str) -> Result<()> {
    let minions = EnvFile::read(project, env)?.minions();
    if minions.iter().any(|m| m == minion) {
        return Ok(());
    }
    Err(Error::new(format!(
        "minion {minion} is accepted for {env} but not in its minions: (conf/pillar/{env}/env.sls)"
    ))
    .with_hint(format!(
        "list it under minions: in conf/pillar/{env}/env.sls and provision {env} again"
    )))
}

//! `vault migrate`: gives a project written by an older vault its identity, and signs
//! each environment this user can write anew in the current format (bound to the
//! project, its grants vouched for by the writer). What the user cannot write is named,
//! for a member of that environment to migrate.

use crate::error::Result;
use crate::fs::{self, Mode};
use crate::ops::members;
use crate::project::EnvName;
use crate::project_id::ProjectId;
use crate::store::{signed_manifest, Pair, Store};

/// What migrate did to one environment.
pub enum Migrated {
    /// Re-signed in the current format, encrypted to these members.
    Upgraded(Vec<String>),
    /// Already in the current format.
    Current,
    /// Left as it was, and why (the user is not a member of it, say).
    Left(String),
}

/// What migrate did: whether it created the identity, and each environment's outcome.
pub struct Migration {
    pub created_identity: bool,
    pub envs: Vec<(EnvName, Migrated)>,
}

pub fn migrate(store: &mut Store) -> Result<Migration> {
    let created_identity = match store.project.identity()? {
        Some(_) => false,
        None => {
            let path = store.project.identity_path();
            fs::write_atomic(
                &path,
                ProjectId::random().render().as_bytes(),
                Mode::CreateNew,
            )?;
            true
        }
    };
    let mut envs = Vec::new();
    for env in members::rekey_targets(store, &[])? {
        let outcome = migrate_env(store, &env)?;
        envs.push((env, outcome));
    }
    Ok(Migration {
        created_identity,
        envs,
    })
}

fn migrate_env(store: &mut Store, env: &EnvName) -> Result<Migrated> {
    let current = Pair::read(&store.project, env)?
        .and_then(|p| p.sidecar)
        .and_then(|s| signed_manifest(&s))
        .is_some_and(|m| m.project.is_some());
    if current {
        return Ok(Migrated::Current);
    }
    Ok(match members::rekey(store, env) {
        Ok(report) => Migrated::Upgraded(report.members),
        Err(e) => Migrated::Left(e.to_string()),
    })
}

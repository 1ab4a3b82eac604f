//! Who may read an environment, and whom this machine trusts: `grant`, `revoke`, `rekey`,
//! `trust` and `migrate`, over `vault::ops::members` and `vault::ops::migrate`.

use crate::output::Ui;
use vault::error::Result;
use vault::ops::members::{self, GrantRequest, Revoked};
use vault::ops::migrate::{self, Migrated};
use vault::store::Store;

pub fn grant(ui: &Ui, store: &mut Store, req: &GrantRequest<'_>) -> Result<i32> {
    let (env, report) = members::grant(store, req)?;
    ui.note(&format!(
        "{env}: granted {}; re-encrypted to {}",
        req.name,
        report.members.join(", ")
    ));
    ui.roster(&env, &report);
    Ok(0)
}

pub fn revoke(ui: &Ui, store: &mut Store, env: &str, name: &str) -> Result<i32> {
    match members::revoke(store, env, name)? {
        (env, Revoked::Finished(key_file)) => ui.note(&format!(
            "{env}: {name} was already revoked (an earlier revoke was interrupted); removed {key_file}"
        )),
        (env, Revoked::Revoked(report)) => {
            ui.note(&format!(
                "{env}: revoked {name}; re-encrypted to {}",
                report.members.join(", ")
            ));
            ui.warn(&format!(
                "{env}: every secret {name} could read is marked exposed: give each a new value with `vault rotate {env} --generate` (`vault status` lists them)"
            ));
        }
    }
    Ok(0)
}

/// One environment after another, each said as it is done.
pub fn rekey(ui: &Ui, store: &mut Store, envs: &[String]) -> Result<i32> {
    let targets = members::rekey_targets(store, envs)?;
    if targets.is_empty() {
        ui.note("no environment has secrets yet; nothing to rekey");
    }
    for env in targets {
        let report = members::rekey(store, &env)?;
        ui.note(&format!(
            "{env}: re-encrypted to {}",
            report.members.join(", ")
        ));
        ui.roster(&env, &report);
    }
    Ok(0)
}

pub fn trust(ui: &Ui, store: &mut Store, env: &str, fingerprint: &str) -> Result<i32> {
    let t = members::trust(store, env, fingerprint)?;
    ui.note(&format!(
        "{}: this machine now trusts {fingerprint} ({} in recipients/{}/), and what it founded or vouched for",
        t.env,
        t.members.join(", "),
        t.env
    ));
    Ok(0)
}

/// Exit 1 when an environment is left for another member to migrate.
pub fn migrate(ui: &Ui, store: &mut Store) -> Result<i32> {
    let m = migrate::migrate(store)?;
    if m.created_identity {
        ui.note("created conf/vault-project, this project's identity: commit it");
    }
    let mut left = false;
    for (env, outcome) in &m.envs {
        match outcome {
            Migrated::Upgraded(members) => ui.note(&format!(
                "{env}: signed anew in the current format, encrypted to {}",
                members.join(", ")
            )),
            Migrated::Current => ui.note(&format!("{env}: already in the current format")),
            Migrated::Left(why) => {
                left = true;
                ui.warn(&format!(
                    "{env}: not migrated ({why}); a member of {env} runs `vault migrate`"
                ));
            }
        }
    }
    Ok(i32::from(left))
}

pub fn allow(ui: &Ui, store: &mut Store, env: &str, name: &str, on: bool) -> Result<i32> {
    let (env, report) = members::allow(store, env, name, on)?;
    ui.note(&if on {
        format!("{env}: {name} is allowed as a secret, in the signed manifest")
    } else {
        format!("{env}: {name} is no longer allowed")
    });
    ui.roster(&env, &report);
    Ok(0)
}

//! Who may read an environment: `grant`, `revoke` and `rekey`, over `vault::ops::members`.

use crate::output::Ui;
use vault::error::Result;
use vault::ops::members::{self, GrantRequest, Revoked};
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
                "{env}: every secret {name} could read is marked exposed: give each a new value (`vault status` lists them)"
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

//! Reading the state without changing it: `status`, `check` (the CI gate) and `diff`.

use crate::output::{write_stdout, Ui};
use serde_json::json;
use vault::error::{Error, Result};
use vault::ops::{check, revisions, status};
use vault::store::Store;

pub fn status(store: &mut Store, json: bool) -> Result<i32> {
    let envs = status::status(store)?;
    let out = if json {
        status_json(&envs)?
    } else {
        status_text(&envs)
    };
    write_stdout(out.as_bytes())?;
    Ok(0)
}

fn status_text(envs: &[status::EnvStatus]) -> String {
    let mut out = String::new();
    if envs.is_empty() {
        out.push_str("no environments (see `vault init --env ENV`)\n");
    }
    for s in envs {
        push_env_status(&mut out, s);
    }
    out
}

/// One environment's lines of `vault status`.
fn push_env_status(out: &mut String, s: &status::EnvStatus) {
    out.push_str(&format!("{}\n", s.env));
    match &s.members {
        Ok(m) if m.is_empty() => out.push_str("  members: none\n"),
        Ok(m) => out.push_str(&format!(
            "  members: {}\n",
            m.iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) => out.push_str(&format!("  members: error: {e}\n")),
    }
    match &s.secrets {
        Ok(Some(n)) => out.push_str(&format!("  secrets: {n}\n")),
        Ok(None) => out.push_str("  secrets: none yet\n"),
        Err(e) => out.push_str(&format!("  secrets: ? ({e})\n")),
    }
    match &s.signature {
        Ok(Some(v)) => out.push_str(&format!(
            "  signed: by {} ({}), serial {}\n",
            v.signer_member, v.signer, v.manifest.serial
        )),
        Ok(None) => {}
        Err(why) => out.push_str(&format!("  signed: REFUSED: {why}\n")),
    }
    push_recipients(out, s);
    for (m, fp) in &s.pending {
        out.push_str(&format!("  pending: {m} ({fp}): not granted yet\n"));
    }
    for x in &s.exposed {
        out.push_str(&format!(
            "  exposed: {} (since {}, when {} left)\n",
            x.name, x.since, x.member
        ));
    }
}

/// The `recipients:` line: in sync, unknown, or what a rekey would change.
fn push_recipients(out: &mut String, s: &status::EnvStatus) {
    let mut rekey: Vec<String> = s
        .removed
        .iter()
        .map(|(m, fp)| format!("{m} ({fp}) removed from the folder"))
        .collect();
    match &s.sync {
        status::Sync::InSync if rekey.is_empty() => out.push_str("  recipients: in sync\n"),
        status::Sync::NoFile => {}
        status::Sync::Unreadable(why) => out.push_str(&format!("  recipients: unknown ({why})\n")),
        status::Sync::RekeyNeeded(why) => rekey.extend(why.iter().cloned()),
        status::Sync::InSync => {}
    }
    if !rekey.is_empty() {
        out.push_str(&format!(
            "  recipients: rekey needed ({})\n",
            rekey.join("; ")
        ));
    }
}

/// `vault status --json`, pretty-printed with a final newline.
fn status_json(envs: &[status::EnvStatus]) -> Result<String> {
    let list: Vec<serde_json::Value> = envs.iter().map(env_json).collect();
    let text = serde_json::to_string_pretty(&json!({ "environments": list }))
        .map_err(|e| Error::new(e.to_string()))?;
    Ok(format!("{text}\n"))
}

fn env_json(s: &status::EnvStatus) -> serde_json::Value {
    let sync = match &s.sync {
        status::Sync::InSync if s.removed.is_empty() => json!({ "state": "in sync" }),
        status::Sync::InSync => json!({ "state": "rekey needed", "why": [] }),
        status::Sync::RekeyNeeded(why) => json!({ "state": "rekey needed", "why": why }),
        status::Sync::NoFile => json!({ "state": "no file" }),
        status::Sync::Unreadable(why) => json!({ "state": "unknown", "why": [why] }),
    };
    let signature = match &s.signature {
        Ok(Some(v)) => json!({
            "valid": true,
            "signer": v.signer,
            "member": v.signer_member,
            "serial": v.manifest.serial,
        }),
        Ok(None) => json!(null),
        Err(why) => json!({ "valid": false, "error": why }),
    };
    let members: Vec<&str> = match &s.members {
        Ok(m) => m.iter().map(|m| m.name.as_str()).collect(),
        Err(_) => Vec::new(),
    };
    let member_keys = |list: &[(String, String)]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|(m, fp)| json!({ "member": m, "fingerprint": fp }))
            .collect()
    };
    let exposed: Vec<serde_json::Value> = s
        .exposed
        .iter()
        .map(|x| json!({ "name": x.name, "since": x.since, "member": x.member }))
        .collect();
    json!({
        "name": s.env.as_str(),
        "members": members,
        "secrets": s.secrets.as_ref().ok().copied().flatten(),
        "signature": signature,
        "recipients": sync,
        "pending": member_keys(&s.pending),
        "removed": member_keys(&s.removed),
        "exposed": exposed,
    })
}

/// Exit 1 when anything is found.
pub fn check(store: &Store, ui: Ui, max_exposure_days: i64) -> Result<i32> {
    let report = check::check(&store.project, max_exposure_days)?;
    for note in &report.notes {
        ui.detail(note);
    }
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(f);
        out.push('\n');
    }
    out.push_str(&report.summary);
    out.push('\n');
    write_stdout(out.as_bytes())?;
    Ok(if report.findings.is_empty() { 0 } else { 1 })
}

pub fn diff(store: &mut Store, env: &str, revs: &[String], values: bool) -> Result<i32> {
    let out = revisions::diff(store, env, revs, values)?;
    crate::output::write_diff(&out)?;
    Ok(0)
}

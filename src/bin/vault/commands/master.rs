//! `vault master`: setting up a salt-master and accepting its minions (a member's
//! side), and the hidden commands vault runs on the master itself (a member's setup,
//! accept and provision arriving over SSH, and Salt's ext_pillar asking for a minion).

use crate::cli::{MasterCommand, MasterReach};
use crate::commands::Context;
use crate::output;
use std::path::Path;
use vault::error::Result;
use vault::master::{self, Layout};
use vault::provision::master_admin::{self, Reach};

pub fn run(ctx: &Context, cmd: MasterCommand) -> Result<i32> {
    match cmd {
        MasterCommand::Setup {
            env,
            host,
            name,
            salt_dir,
            shared,
            reach,
        } => setup(ctx, &env, &name, reach_of(host, reach), (salt_dir, shared)),
        MasterCommand::Accept {
            env,
            minion,
            fingerprint,
            reach,
        } => accept(ctx, &env, &minion, &fingerprint, reach),
        MasterCommand::LocalSetup { root } => local_setup(&root),
        MasterCommand::LocalAccept {
            env,
            minion,
            fingerprint,
            root,
        } => local_accept(&root, &env, &minion, &fingerprint),
        MasterCommand::LocalApply {
            env,
            jobs,
            dry_run,
            timeout,
            project,
            ciphertext,
            root,
        } => {
            let shipped = project.as_deref().zip(ciphertext.as_deref());
            local_apply(&root, &env, (jobs, dry_run, timeout), shipped)
        }
        MasterCommand::Pillar { root, minion } => {
            let json = master::pillar::pillar(&Layout::new(&root), &minion)?;
            output::write_stdout(json.expose())?;
            Ok(0)
        }
    }
}

fn reach_of(host: String, r: MasterReach) -> Reach {
    Reach {
        host,
        remote_root: r.remote_root,
        accept_new_host_key: r.accept_new_host_key,
        ssh_config: r.ssh_config,
    }
}

fn setup(
    ctx: &Context,
    env: &str,
    name: &str,
    reach: Reach,
    salt: (Option<String>, bool),
) -> Result<i32> {
    let ui = &ctx.ui;
    let store = ctx.store()?;
    let env = store.project.environment(env)?;
    let host = reach.host.clone();
    let o = master_admin::setup(&store.project, &env, name, &reach, salt)?;
    if let Some(k) = &o.accepted_host_key {
        ui.note(k);
    }
    let made = if o.created { "made" } else { "kept" };
    ui.note(&format!(
        "{env}: the master's identity ({made} on {host}, root-only, never copied):"
    ));
    output::write_stdout(format!("{}\n", o.key.text()).as_bytes())?;
    ui.note(&format!("fingerprint: {}", o.key.fingerprint()));
    ui.note(&format!(
        "written as {}; it reads nothing until it is granted",
        o.file
    ));
    if o.env_sls_lacks_master {
        ui.note(&format!(
            "add `master: {host}` and `minions: [...]` to conf/pillar/{env}/env.sls"
        ));
    }
    if o.restart {
        ui.note("vault's drop-in on the master changed: restart salt-master (systemctl restart salt-master)");
    }
    output::hint(&format!(
        "check the fingerprint, then `vault grant {env} {} --fingerprint {}`",
        o.member,
        o.key.fingerprint()
    ));
    Ok(0)
}

fn accept(ctx: &Context, env: &str, minion: &str, fp: &str, r: MasterReach) -> Result<i32> {
    master_admin::check_accept(minion, fp)?;
    let store = ctx.store()?;
    let env = store.project.environment(env)?;
    let host = master_admin::master_of(&store.project, &env)?;
    let (outcome, host_key) = master_admin::accept(&env, minion, fp, &reach_of(host, r))?;
    if let Some(k) = host_key {
        ctx.ui.note(&k);
    }
    let said = match outcome {
        master::accept::Accepted::Now => "accepted",
        master::accept::Accepted::Already => "was accepted already; now recorded",
    };
    ctx.ui.note(&format!(
        "{env}: minion {minion} {said} (its key's fingerprint matches)"
    ));
    Ok(0)
}

fn local_setup(root: &Path) -> Result<i32> {
    let mut input = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut input)
        .map_err(|e| vault::error::Error::new(format!("cannot read the request: {e}")))?;
    let req = master::setup::Request::parse(&input)?;
    let o = master::setup::setup(&Layout::new(root), &req)?;
    let text = format!(
        "public: {}\ncreated: {}\ndropin: {}\n",
        o.public_key,
        o.created,
        if o.dropin_changed {
            "changed"
        } else {
            "unchanged"
        }
    );
    output::write_stdout(text.as_bytes())?;
    Ok(0)
}

fn local_accept(root: &Path, env: &str, minion: &str, fp: &str) -> Result<i32> {
    let req = master::accept::Request {
        env,
        minion,
        fingerprint: fp,
    };
    let outcome = master::accept::accept(&Layout::new(root), &req)?;
    let said = match outcome {
        master::accept::Accepted::Now => "accepted: now",
        master::accept::Accepted::Already => "accepted: already",
    };
    output::write_stdout(format!("{said}\n").as_bytes())?;
    Ok(0)
}

fn local_apply(
    root: &Path,
    env: &str,
    (jobs, dry_run, timeout): (usize, bool, u64),
    shipped: Option<(&str, &str)>,
) -> Result<i32> {
    let req = master::apply::Request {
        env,
        jobs,
        dry_run,
        timeout,
        shipped,
    };
    master::apply::apply(&Layout::new(root), &req, &mut |m| {
        // Each minion's line goes out as it comes, for the member's progress.
        let _ = output::write_stdout(format!("{}\n", m.to_line()).as_bytes());
    })?;
    Ok(0)
}

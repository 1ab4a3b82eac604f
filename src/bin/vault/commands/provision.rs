//! `vault provision`: the plan from `vault::provision::plan` (its inputs approved first:
//! asked here, at a terminal, or `--approve`), run, its table, its verdict.

use crate::cli::ProvisionArgs;
use crate::output::{self, Ui};
use crate::progress::Terminal;
use std::io::{BufRead, IsTerminal};
use vault::error::Result;
use vault::provision::approval::{Consent, Pending};
use vault::provision::{self, plan, through_master};
use vault::store::Store;

pub fn provision(ui: &Ui, store: &mut Store, args: ProvisionArgs) -> Result<i32> {
    let approve = args.approve;
    let ask = |p: &Pending| consent(ui, approve, p);
    let req = request(args, ui.quiet);
    if let Some(through) = through_master::plan(store, &req, &ask)? {
        let reports = through.run(store, &Terminal::new());
        if !ui.quiet {
            output::write_stderr(&provision::headed_table(
                "minion",
                &reports,
                false,
                &[],
                &output::table_part,
            ));
        }
        plan::verdict(&through.settings.env, &reports)?;
        return Ok(0);
    }
    let plan = plan::plan(store, req, &ask)?;
    // The display is dropped before the table is printed.
    let reports = plan.run(store, &Terminal::new());
    if !ui.quiet {
        output::write_stderr(&provision::marked_table(
            &reports,
            ui.verbose,
            &plan.unredacted(),
            &output::table_part,
        ));
    }
    plan::verdict(&plan.settings.env, &reports)?;
    Ok(0)
}

/// Whether the member approves `p`: yes with `--approve` (what is approved is still
/// shown), else asked (y/N) when there is a terminal to ask at.
fn consent(ui: &Ui, approve: bool, p: &Pending) -> Consent {
    let at_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !approve && !at_terminal {
        return Consent::NoTerminal;
    }
    for line in p.lines() {
        if approve {
            ui.note(&line);
        } else {
            output::line(&format!("vault: {line}"));
        }
    }
    if approve {
        ui.note(&format!(
            "{}: approved with --approve; signing the approval",
            p.env
        ));
        return Consent::Yes;
    }
    output::write_stderr(&format!(
        "vault: approve these inputs, sign the approval and provision {}? [y/N] ",
        p.env
    ));
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" | "Yes" => Consent::Yes,
        _ => Consent::No,
    }
}

fn request(args: ProvisionArgs, quiet: bool) -> plan::Request {
    plan::Request {
        env: args.env,
        hosts: args.hosts,
        user: args.user,
        remote_root: args.remote_root,
        salt_call: args.salt_call,
        accept_new_host_key: args.accept_new_host_key,
        dry_run: args.dry_run,
        allow_older: args.allow_older,
        keep_pillar: args.keep_pillar,
        jobs: args.jobs,
        ssh_config: args.ssh_config,
        quiet,
    }
}

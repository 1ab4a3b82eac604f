//! `vault provision`: the plan from `vault::provision::plan`, run, its table, its verdict.

use crate::cli::ProvisionArgs;
use crate::output::Ui;
use crate::progress::Terminal;
use vault::error::Result;
use vault::provision::{self, plan};
use vault::store::Store;

pub fn provision(ui: &Ui, store: &mut Store, args: ProvisionArgs) -> Result<i32> {
    let plan = plan::plan(store, request(args, ui.quiet))?;
    // The display is dropped before the table is printed.
    let reports = plan.run(store, &Terminal::new());
    if !ui.quiet {
        eprint!(
            "{}",
            provision::table(&reports, ui.verbose, &plan.unredacted())
        );
    }
    plan::verdict(&plan.settings.env, &reports)?;
    Ok(0)
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
        keep_pillar: args.keep_pillar,
        jobs: args.jobs,
        ssh_config: args.ssh_config,
        quiet,
    }
}

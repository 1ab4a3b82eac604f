//! The `vault` command: parse the command line, run the one command it names, and
//! report an error in vault's form. The commands live in `commands/`, their flags in
//! `cli.rs`, and everything printed goes through `output.rs`.

mod cli;
mod commands;
mod complete;
mod examples;
mod manual;
mod output;
mod progress;
mod usage;

use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command};
use commands::{git, master, members, provision, report, secrets, setup, Context};
use vault::ops::members::GrantRequest;
use vault::ops::merge::MergeFiles;

fn main() {
    // Before anything else: every command may come to hold plaintext.
    if let Err(e) = vault::process::harden() {
        let err = vault::error::Error::new(format!(
            "cannot turn off core dumps for this process: {e}; refusing to run"
        ))
        .with_hint(
            "run vault where prctl and setrlimit are allowed (no seccomp filter denying them)",
        );
        output::report(&err);
        std::process::exit(1);
    }
    // A shell asking for completions (`COMPLETE=bash vault -- ...`) is answered, and vault exits.
    complete::answer_if_asked();
    // Read first, so even a usage error is coloured (or not) as asked.
    let colour = output::colour_in_args();
    output::set_colour(colour);
    let mut command = Cli::command().color(colour.into());
    let cli = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|m| Cli::from_arg_matches(&m))
        .unwrap_or_else(|e| usage::usage_failure(e));
    // Freeing every command's definition costs more than parsing with it did, and the
    // process ends soon anyway.
    std::mem::forget(command);
    output::set_colour(cli.color);
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if !err.message().is_empty() {
                output::report(&err);
            }
            err.exit_code()
        }
    };
    // Ends by the signal that interrupted the command, if one did (after its cleanup).
    vault::process::exit(code);
}

/// Runs the command and returns the exit code. Commands that need no project (or find
/// their own) come first; the others open the nearest project's store.
fn run(cli: Cli) -> vault::error::Result<i32> {
    let ctx = Context::new(&cli)?;
    let ui = &ctx.ui;
    match cli.command {
        Command::Completions { shell } => setup::completions(shell),
        Command::Man { dir } => setup::man(ui, dir.as_deref()),
        Command::Keygen { file, comment } => setup::keygen(ui, file.as_deref(), comment),
        Command::Init { project, envs } => setup::init(ui, &ctx.cwd, project, &envs),
        Command::Textconv { file } => git::textconv(&ctx, &file),
        Command::MergeFile {
            ancestor,
            current,
            other,
            path,
        } => git::merge_file(
            &ctx,
            &MergeFiles {
                ancestor: &ancestor,
                current: &current,
                other: &other,
                path: &path,
            },
        ),
        Command::Whoami => setup::whoami(&mut ctx.store()?),
        Command::InstallGit => git::install(ui, &ctx.store()?),
        Command::PreCommit => git::pre_commit(&ctx.store()?),
        Command::Edit {
            env,
            allow_disk_tmp,
        } => secrets::edit(ui, &mut ctx.store()?, &env, allow_disk_tmp),
        Command::Set {
            env,
            name,
            from_file,
            raw,
        } => secrets::set(ui, &mut ctx.store()?, &env, &name, from_file, raw),
        Command::Rotate {
            env,
            names,
            generate,
            length,
        } => secrets::rotate(
            ui,
            &mut ctx.store()?,
            &env,
            &names,
            generate.then_some(length),
        ),
        Command::Unset { env, name } => secrets::unset(ui, &mut ctx.store()?, &env, &name),
        Command::Get { env, name } => secrets::get(&mut ctx.store()?, &env, &name),
        Command::Show { env, values, json } => secrets::show(&mut ctx.store()?, &env, values, json),
        Command::Exec {
            env,
            clean,
            command,
        } => secrets::exec(ui, &mut ctx.store()?, &env, clean, &command),
        Command::Export {
            env,
            format,
            output,
        } => secrets::export(&mut ctx.store()?, &env, format, output.as_deref()),
        Command::Grant {
            env,
            name,
            fingerprint,
            key,
        } => {
            let req = GrantRequest {
                env: &env,
                name: &name,
                fingerprints: &fingerprint,
                key: key.as_deref(),
            };
            members::grant(ui, &mut ctx.store()?, &req)
        }
        Command::Revoke { env, name } => members::revoke(ui, &mut ctx.store()?, &env, &name),
        Command::Rekey { envs } => members::rekey(ui, &mut ctx.store()?, &envs),
        Command::Trust { env, fingerprint } => {
            members::trust(ui, &mut ctx.store()?, &env, &fingerprint)
        }
        Command::Migrate => members::migrate(ui, &mut ctx.store()?),
        Command::Import { env, file, yes } => {
            setup::import(ui, &mut ctx.store()?, &env, file.as_deref(), yes)
        }
        Command::Allow { env, name, remove } => {
            members::allow(ui, &mut ctx.store()?, &env, &name, !remove)
        }
        Command::Status { json } => report::status(&mut ctx.store()?, json),
        Command::Check { max_exposure_days } => {
            report::check(&ctx.store()?, ctx.ui, max_exposure_days)
        }
        Command::Diff { env, revs, values } => report::diff(&mut ctx.store()?, &env, &revs, values),
        Command::Provision(args) => provision::provision(ui, &mut ctx.store()?, args),
        Command::Master(cmd) => master::run(&ctx, cmd),
    }
}

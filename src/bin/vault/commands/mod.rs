//! One module per group of subcommands, each function a thin layer over one library
//! operation: it turns arguments into a call, and the result into output.

pub mod git;
pub mod master;
pub mod members;
pub mod provision;
pub mod report;
pub mod secrets;
pub mod setup;

use crate::cli::Cli;
use crate::output::Ui;
use std::path::PathBuf;
use vault::error::{Error, Result};
use vault::keys::identity::Identities;
use vault::project::Project;
use vault::store::Store;

/// The global options of a run, for every command.
pub struct Context {
    pub ui: Ui,
    /// Where the project is looked for (`-C DIR`, else the working directory).
    pub cwd: PathBuf,
    pub identity: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl Context {
    pub fn new(cli: &Cli) -> Result<Context> {
        let cwd = match &cli.directory {
            Some(d) => d.clone(),
            None => std::env::current_dir()
                .map_err(|e| Error::new(format!("cannot read the working directory: {e}")))?,
        };
        Ok(Context {
            ui: Ui {
                quiet: cli.quiet,
                verbose: cli.verbose,
            },
            cwd,
            identity: cli.identity.clone(),
            insecure_skip_verify: cli.insecure_skip_verify,
        })
    }

    /// The store of the nearest project at or above `cwd`.
    pub fn store(&self) -> Result<Store> {
        let project = Project::discover(&self.cwd)?;
        self.ui
            .detail(&format!("project {}", project.root().display()));
        Ok(Store::new(
            project,
            self.identities(),
            self.insecure_skip_verify,
            Box::new(self.ui),
        ))
    }

    /// The identities this run decrypts with (`-i FILE` first).
    pub fn identities(&self) -> Identities {
        Identities::standard(self.identity.clone())
    }
}

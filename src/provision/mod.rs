//! `vault provision`: for each host, one multiplexed system-OpenSSH connection, rsync of
//! the Salt roots (no other environment's pillar, no `*.age`), the canonical pillar
//! streamed from memory into a 0600 root file, `salt-call --local state.apply` with every
//! secret redacted from its output, and the plaintext pillar removed afterwards.
//!
//! Here, the run: its settings, and the fan-out over its hosts ([`targets`]), `jobs` at a
//! time. Each host goes through `host`'s steps over one `session`, shipping into the
//! folders `layout` names and running `remote`'s scripts, Salt's output read and redacted
//! by `salt_output`; `freshness` holds each server to the secrets version it last
//! applied. What happens is told to a [`Progress`] as it goes, and comes back as
//! [`HostReport`]s for the closing [`table`]. `pillar` reads the project's plain settings.

pub mod approval;
pub mod freshness;
mod host;
mod known_hosts;
mod layout;
pub mod master_admin;
pub mod pillar;
pub mod plan;
mod progress;
mod remote;
mod report;
pub(crate) mod salt_output;
mod session;
mod target;
pub mod through_master;

pub use progress::Progress;
pub use report::{headed_table, marked_table, table, Applied, HostReport, Part};
pub use target::{targets, Target};

use crate::project::{EnvName, Project};
use crate::secret::SecretBytes;
use futures_util::future::join_all;
use host::Host;
use salt_output::Redactor;
use std::cell::RefCell;
use tokio::sync::Semaphore;

/// What the command line and the project settle for a run.
pub struct Settings {
    pub env: EnvName,
    pub project_name: String,
    /// The server's root for Salt's files: roots under `srv/`, config under `etc/salt`.
    pub remote_root: String,
    pub salt_call: String,
    pub accept_new_host_key: bool,
    pub dry_run: bool,
    /// Apply a version that does not follow the one a server runs (another branch's),
    /// though never one that the server's follows.
    pub allow_older: bool,
    /// This run's secrets version and what it follows, for each server's record.
    pub lineage: freshness::Lineage,
    pub keep_pillar: bool,
    pub jobs: usize,
    /// Environments whose pillar folders stay off the server.
    pub other_envs: Vec<EnvName>,
    /// Extra state trees (`vault: state_trees:`), shipped as `srv/<name>` beside the
    /// project's and listed after its own in Salt's file_roots.
    pub state_trees: Vec<std::path::PathBuf>,
    /// An ssh_config file to use instead of ~/.ssh/config (as `ssh -F`).
    pub ssh_config: Option<std::path::PathBuf>,
    /// Keep Salt's output to ourselves (the final table still says what happened).
    pub quiet: bool,
}

impl Settings {
    /// The settings of a run that only connects to one host and runs vault there (`vault
    /// master setup` and `accept`).
    pub fn connection(
        env: EnvName,
        remote_root: String,
        accept_new_host_key: bool,
        ssh_config: Option<std::path::PathBuf>,
    ) -> Settings {
        Settings {
            env,
            project_name: String::new(),
            remote_root,
            salt_call: String::new(),
            accept_new_host_key,
            dry_run: false,
            allow_older: false,
            lineage: freshness::Lineage::default(),
            keep_pillar: false,
            jobs: 1,
            other_envs: Vec::new(),
            state_trees: Vec::new(),
            ssh_config,
            quiet: true,
        }
    }
}

/// Provisions every target, `jobs` at a time, telling `progress` as it goes; one failing
/// does not stop the others.
pub fn run(
    project: &Project,
    settings: &Settings,
    targets: &[Target],
    pillar: &SecretBytes,
    redact: &[&str],
    progress: &dyn Progress,
) -> Vec<HostReport> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return none_started(targets, &e),
    };
    progress.hosts(&targets.iter().map(Target::label).collect::<Vec<_>>());
    let limit = Semaphore::new(settings.jobs.max(1));
    let redactor = Redactor::new(redact);
    let hosts = targets.iter().enumerate().map(|(index, target)| Host {
        index,
        project,
        settings,
        target,
        pillar,
        redactor: &redactor,
        progress,
        steps: RefCell::default(),
    });
    runtime.block_on(join_all(hosts.map(|h| h.provision(&limit))))
}

/// Every host's report when the run could not even start.
fn none_started(targets: &[Target], e: &std::io::Error) -> Vec<HostReport> {
    targets
        .iter()
        .map(|t| HostReport {
            target: t.label(),
            result: Err(format!("cannot start: {e}")),
            hint: None,
            seconds: 0.0,
            steps: vec![],
        })
        .collect()
}

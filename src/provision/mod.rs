//! `vault provision`: for each host, one multiplexed system-OpenSSH connection, rsync of
//! the Salt roots (no other environment's pillar, no `*.age`), the canonical pillar
//! streamed from memory into a 0600 root file, `salt-call --local state.apply` with every
//! secret redacted from its output, and the plaintext pillar removed afterwards.

mod host;
mod layout;
mod pillar;
mod remote;
mod report;
mod salt_output;
mod session;
mod target;

pub use pillar::pillar_settings;
pub use report::{table, Applied, HostReport};
pub use target::{targets, Target};

use crate::project::{EnvName, Project};
use crate::secret::SecretBytes;
use host::Host;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use salt_output::Redactor;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the command line and the project settle for a run.
pub struct Settings {
    pub env: EnvName,
    pub project_name: String,
    /// The server's root for Salt's files: roots under `srv/`, config under `etc/salt`.
    pub remote_root: String,
    pub salt_call: String,
    pub accept_new_host_key: bool,
    pub dry_run: bool,
    pub keep_pillar: bool,
    pub jobs: usize,
    /// Environments whose pillar folders stay off the server.
    pub other_envs: Vec<EnvName>,
    /// An ssh_config file to use instead of ~/.ssh/config (as `ssh -F`).
    pub ssh_config: Option<std::path::PathBuf>,
    /// Keep Salt's output to ourselves (the final table still says what happened).
    pub quiet: bool,
}

/// Provisions every target, `jobs` at a time; one failing does not stop the others.
pub fn provision(
    project: &Project,
    settings: &Settings,
    targets: &[Target],
    pillar: &SecretBytes,
    redact: &[&str],
) -> Vec<HostReport> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return targets
                .iter()
                .map(|t| HostReport {
                    target: t.label(),
                    result: Err(format!("cannot start: {e}")),
                    seconds: 0.0,
                    steps: vec![],
                })
                .collect()
        }
    };
    let progress = MultiProgress::new();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.jobs.max(1)));
    let redactor = Redactor::new(redact);
    runtime.block_on(async {
        let runs = targets.iter().map(|t| {
            let limit = Arc::clone(&limit);
            let bar = progress.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                    .expect("static template"),
            );
            bar.set_prefix(t.label());
            bar.enable_steady_tick(Duration::from_millis(120));
            let host = Host {
                project,
                settings,
                target: t,
                pillar,
                redactor: &redactor,
                bar,
                progress: &progress,
                steps: std::cell::RefCell::new(Vec::new()),
            };
            async move {
                let _permit = limit.acquire().await;
                let start = Instant::now();
                let result = host.run().await;
                match &result {
                    Ok(a) if a.failed.is_empty() => host
                        .bar
                        .finish_with_message(format!("done ({} changed)", a.changed)),
                    Ok(a) => host
                        .bar
                        .finish_with_message(format!("{} state(s) failed", a.failed.len())),
                    Err(e) => host.bar.finish_with_message(format!("failed: {e}")),
                }
                host.step("");
                let steps = host
                    .steps
                    .into_inner()
                    .into_iter()
                    .map(|(name, _, secs)| (name, secs))
                    .collect();
                HostReport {
                    target: t.label(),
                    result,
                    seconds: start.elapsed().as_secs_f64(),
                    steps,
                }
            }
        });
        futures_util::future::join_all(runs).await
    })
}

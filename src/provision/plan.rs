//! A provisioning run settled before anything connects: the servers (from the command
//! line, else the pillar), the rendered pillar and the version it is, the values to
//! redact, and the verdict on how the run went.

use super::pillar::{EnvFile, EnvSetting};
use super::{HostReport, Settings, Target};
use crate::document::Document;
use crate::error::{Error, Result};
use crate::export::{self, Format};
use crate::project::EnvName;
use crate::secret::SecretBytes;
use crate::store::Store;
use std::path::PathBuf;

/// What the command line asks for.
pub struct Request {
    pub env: String,
    /// Servers given with `-H`; none means those listed in the pillar.
    pub hosts: Vec<String>,
    /// The SSH user for servers that name none.
    pub user: Option<String>,
    pub remote_root: String,
    pub salt_call: String,
    pub accept_new_host_key: bool,
    pub dry_run: bool,
    pub allow_older: bool,
    pub keep_pillar: bool,
    pub jobs: usize,
    pub ssh_config: Option<PathBuf>,
    pub quiet: bool,
}

/// Everything a run needs, decrypted and checked.
pub struct Plan {
    pub settings: Settings,
    pub targets: Vec<Target>,
    /// The canonical pillar pushed to each server.
    pub pillar: SecretBytes,
    /// The decrypted document: its values are redacted from everything Salt prints.
    doc: Document,
}

/// Settles a run: reads the pillar's settings, picks the servers, holds what would be
/// shipped to a member's signed approval (`ask` says whether this member approves what
/// changed), decrypts the secrets and renders the pillar. Nothing is decrypted before
/// the servers are known to be valid and the inputs approved.
pub fn plan(
    store: &mut Store,
    req: Request,
    ask: &dyn Fn(&super::approval::Pending) -> super::approval::Consent,
) -> Result<Plan> {
    let env = store.project.environment(&req.env)?;
    let project_name = super::pillar::project_name(&store.project)?;
    let env_file = EnvFile::read(&store.project, &env)?;
    let given = if req.hosts.is_empty() {
        env_file.hosts()
    } else {
        req.hosts
    };
    if given.is_empty() {
        return Err(Error::usage(format!(
            "{env}: no hosts: none in conf/pillar/{env}/env.sls, and no -H"
        ))
        .with_hint(format!(
            "list them under `hosts:` in conf/pillar/{env}/env.sls, or pass -H [user@]host[:port]"
        )));
    }
    let targets = super::targets(&given, req.user.as_deref())?;
    let other_envs = other_envs(&store.project, &env)?;
    // A dry run too: Salt renders every state (Jinja runs code) and the pillar goes to
    // a scratch root, so it ships the secrets to the same states and servers.
    let state_trees = env_file.state_trees(&store.project)?;
    let settings_env = env_file.settings()?;
    super::pillar::no_plain_secrets(&store.project, &other_envs)?;
    let approval = super::approval::require(store, &env, &targets, &other_envs, &state_trees, ask)?;
    let (doc, manifest) = store.open_signed(&env)?;
    no_setting_is_a_secret(&env, &settings_env, &doc)?;
    if let Some(signed) = approval {
        signed.write(store)?;
    }
    let remembered = store.seen().lineage(&env);
    let lineage = super::freshness::Lineage::remembering(
        manifest.as_ref(),
        store.versions_in_git(&env),
        remembered,
    );
    let pillar = export::render(Format::Sls, env.as_str(), doc.entries())?;
    let settings = Settings {
        env,
        project_name,
        remote_root: req.remote_root,
        salt_call: req.salt_call,
        accept_new_host_key: req.accept_new_host_key,
        dry_run: req.dry_run,
        allow_older: req.allow_older,
        lineage,
        keep_pillar: req.keep_pillar,
        jobs: req.jobs,
        other_envs,
        state_trees,
        ssh_config: req.ssh_config,
        quiet: req.quiet,
    };
    Ok(Plan {
        settings,
        targets,
        pillar,
        doc,
    })
}

/// The project's environments but `env`: their pillar folders never ship with it.
pub(super) fn other_envs(project: &crate::project::Project, env: &EnvName) -> Result<Vec<EnvName>> {
    Ok(project
        .environments()?
        .into_iter()
        .filter(|e| e != env)
        .collect())
}

/// A name that is both an `env:` setting and a secret is refused: the program can see
/// only one of them, and which one would be an accident of the env file's order.
fn no_setting_is_a_secret(env: &EnvName, settings: &[EnvSetting], doc: &Document) -> Result<()> {
    let both = settings
        .iter()
        .find(|s| doc.entries().iter().any(|e| e.name() == s.name));
    match both {
        None => Ok(()),
        Some(s) => Err(Error::usage(format!(
            "{env}: {} is both a setting (env: in conf/pillar/{env}/env.sls) and a secret: the program can have only one",
            s.name
        ))
        .with_hint(format!(
            "keep it a secret and take it out of env:, or `vault unset {env} {}`",
            s.name
        ))),
    }
}

impl Plan {
    /// Provisions every server of the plan, telling `progress` as it goes; one failing
    /// does not stop the others.
    pub fn run(&self, store: &Store, progress: &dyn super::Progress) -> Vec<HostReport> {
        let redact: Vec<&str> = self
            .doc
            .entries()
            .iter()
            .map(|e| e.value().expose())
            .collect();
        super::run(
            &store.project,
            &self.settings,
            &self.targets,
            &self.pillar,
            &redact,
            progress,
        )
    }

    /// The secrets not redacted from Salt's output, by name (too short to find safely,
    /// see `salt_output`): for the closing table to say so once.
    pub fn unredacted(&self) -> Vec<String> {
        let entries = self.doc.entries().iter();
        super::salt_output::unredacted(entries.map(|e| (e.name(), e.value().expose())))
    }
}

/// The run's outcome: an error naming every server that failed, led by a refusal the
/// member must act on (a changed host key), with its hint.
pub fn verdict(env: &EnvName, reports: &[HostReport]) -> Result<()> {
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| r.target.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let refused = reports
        .iter()
        .find_map(|r| Some((r.result.as_ref().err()?, r.hint.as_ref()?, &r.target)));
    let Some((why, hint, target)) = refused else {
        return Err(Error::new(format!(
            "{env}: provisioning failed on {}",
            failed.join(", ")
        ))
        .with_hint(format!(
            "the table above says what failed on each host; fix that, then run `vault provision {env}` again"
        )));
    };
    let others: Vec<&str> = failed.into_iter().filter(|t| t != target).collect();
    let mut message = format!("{env}: {why}");
    if !others.is_empty() {
        message.push_str(&format!("; provisioning failed on {}", others.join(", ")));
    }
    Err(Error::new(message).with_hint(hint.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_host_key_leads_the_verdict_with_its_hint() {
        let report =
            |target: &str, result: std::result::Result<(), &str>, hint: Option<&str>| HostReport {
                target: target.into(),
                result: result.map(|_| Default::default()).map_err(String::from),
                hint: hint.map(String::from),
                seconds: 0.0,
                steps: vec![],
            };
        let env = EnvName::parse("staging").unwrap();
        let err = verdict(
            &env,
            &[
                report("web1", Err("cannot reach web1"), None),
                report(
                    "web2",
                    Err("the host key of web2 has changed"),
                    Some("check it"),
                ),
                report("web3", Ok(()), None),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "staging: the host key of web2 has changed; provisioning failed on web1"
        );
        assert_eq!(err.hint(), Some("check it"));
        let err = verdict(&env, &[report("web1", Err("cannot reach web1"), None)]).unwrap_err();
        assert_eq!(err.message(), "staging: provisioning failed on web1");
        assert_eq!(
            err.hint(),
            Some("the table above says what failed on each host; fix that, then run `vault provision staging` again")
        );
        assert!(verdict(&env, &[report("web3", Ok(()), None)]).is_ok());
    }
}

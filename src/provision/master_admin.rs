//! A member's side of `vault master setup` and `vault master accept`: one SSH
//! connection to the master (as provision makes them), the vault build copied there,
//! and vault run there as root (`sudo -n` for another user) to do the master's part
//! (`crate::master`). What comes back is public: the master's public key, whether a
//! minion was accepted.

use crate::error::{Error, Result};
use crate::keys::recipients::PublicKey;
use crate::master::{self, Layout};
use crate::project::{EnvName, Project};
use crate::provision::session::{self, shell};
use crate::provision::target::Target;
use crate::provision::Settings;
use openssh::{Session, Stdio};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// How to reach the master.
pub struct Reach {
    pub host: String,
    pub remote_root: String,
    pub accept_new_host_key: bool,
    pub ssh_config: Option<std::path::PathBuf>,
}

/// What `vault master setup` did.
pub struct SetupOutcome {
    pub member: String,
    pub key: PublicKey,
    /// `recipients/ENV/<member>.pub`, as shown.
    pub file: String,
    /// A new identity was made on the master (else its existing one was kept).
    pub created: bool,
    /// The master's vault drop-in changed: salt-master must be restarted.
    pub restart: bool,
    /// The host key a first contact accepted.
    pub accepted_host_key: Option<String>,
    /// `master:` in the environment's env.sls does not name this host yet.
    pub env_sls_lacks_master: bool,
}

/// The remote root as the master's [`Layout`] sees it.
fn layout(reach: &Reach) -> Layout {
    Layout::new(Path::new(if reach.remote_root.is_empty() {
        "/"
    } else {
        &reach.remote_root
    }))
}

/// `vault master ARGS` on the master, with its memory in the master's state folder.
pub(crate) fn remote_vault(layout: &Layout, args: &[&str]) -> String {
    let q = |p: &Path| shell_words::quote(&p.display().to_string()).into_owned();
    let state = q(&layout.state_home());
    let args: Vec<String> = args
        .iter()
        .map(|a| shell_words::quote(a).into_owned())
        .collect();
    format!(
        "XDG_STATE_HOME={state} HOME={state} exec {} --color never master {} --root {}",
        q(&layout.binary()),
        args.join(" "),
        q(layout.root())
    )
}

/// Runs `f` over one connection to `reach`, closed however it went.
fn over_ssh<T>(
    env: &EnvName,
    reach: &Reach,
    f: impl AsyncFnOnce(&Session, &Target) -> Result<T>,
) -> Result<(T, Option<String>)> {
    let target = Target::parse(&reach.host)?;
    let settings = Settings::connection(
        env.clone(),
        reach.remote_root.clone(),
        reach.accept_new_host_key,
        reach.ssh_config.clone(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let (session, accepted) = session::connect(&target, &settings)
            .await
            .map_err(|f| f.into_error())?;
        let accepted = accepted.map(|(file, key)| {
            format!(
                "host key accepted: {} ({}), now in {file}",
                key.fingerprint, key.kind
            )
        });
        let result = f(&session, &target).await;
        let _ = session.close().await;
        result.map(|r| (r, accepted))
    })
}

/// Runs `script` on the host with `input` on its standard input; its standard output,
/// or its error as vault said it there.
pub(crate) async fn run(
    session: &Session,
    target: &Target,
    script: &str,
    input: &[u8],
) -> Result<String> {
    let mut child = shell(session, target, script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
        .map_err(|e| Error::new(format!("cannot run on {}: {e}", target.label())))?;
    if let Some(mut stdin) = child.stdin().take() {
        let _ = stdin.write_all(input).await;
        let _ = stdin.shutdown().await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::new(format!("{}: {e}", target.label())))?;
    if !out.status.success() {
        return Err(remote_error(target, &String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// vault's own error on the master (with its hint), or the last line said there.
pub(crate) fn remote_error(target: &Target, stderr: &str) -> Error {
    let said = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|s| crate::provision::salt_output::visible(s.trim()))
    };
    if let Some(message) = said("vault: error: ") {
        let mut e = Error::new(format!("on the master {}: {message}", target.label()));
        if let Some(hint) = said("hint: ").or_else(|| said("vault: hint: ")) {
            e = e.with_hint(hint);
        }
        return e;
    }
    let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    Error::new(format!(
        "on the master {}: {}",
        target.label(),
        crate::provision::salt_output::visible(last.trim())
    ))
}

/// Copies this vault build to the master, after checking it is the same kind of
/// machine; then checks it runs there.
async fn install_binary(
    session: &Session,
    target: &Target,
    layout: &Layout,
    ssh_config: Option<&Path>,
) -> Result<()> {
    let bin = layout.binary();
    let dir = bin.parent().expect("the binary is in a folder");
    let q = |p: &Path| shell_words::quote(&p.display().to_string()).into_owned();
    let uname = run(
        session,
        target,
        &format!("uname -sm && mkdir -p {}", q(dir)),
        b"",
    )
    .await?;
    let here = format!("{} {}", uname_os(), std::env::consts::ARCH);
    if uname.trim() != here {
        return Err(Error::new(format!(
            "the master {} is {}, this vault build is for {here}",
            target.label(),
            uname.trim()
        ))
        .with_hint("build vault on a machine like the master, or install it there with `cargo install`, to /usr/local/bin/vault"));
    }
    let exe =
        std::env::current_exe().map_err(|e| Error::new(format!("cannot find this vault: {e}")))?;
    let mut rsync = tokio::process::Command::new("rsync");
    rsync
        .args(["-a", "--chmod=F0755"])
        .arg("-e")
        .arg(session::rsync_ssh(session, ssh_config));
    if !target.is_root() {
        rsync.arg("--rsync-path=sudo -n rsync");
    }
    let out = rsync
        .arg(&exe)
        .arg(format!("{}:{}", target.host, bin.display()))
        .output()
        .await
        .map_err(|e| Error::new(format!("cannot run rsync: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "copying vault to {} failed: {}",
            target.label(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    run(session, target, &format!("{} --version", q(&bin)), b"")
        .await
        .map_err(|e| {
            Error::new(format!(
                "this vault build does not run on {}: {}",
                target.label(),
                e.message()
            ))
            .with_hint("install vault on the master with `cargo install`, to /usr/local/bin/vault")
        })?;
    Ok(())
}

fn uname_os() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// `vault master setup ENV HOST`: the master gets vault, its ext_pillar and drop-in,
/// an identity for `env` and the trust anchor of this machine; its public key is
/// written as `recipients/ENV/<member>.pub`, pending until a member grants it.
pub fn setup(
    project: &Project,
    env: &EnvName,
    member: &str,
    reach: &Reach,
    (salt_dir, shared): (Option<String>, bool),
) -> Result<SetupOutcome> {
    if !crate::project::is_member_name(member) {
        return Err(Error::usage(format!("{member:?} is not a member name"))
            .with_hint("use letters, digits, '.', '-' and '_' (--name salt-master)"));
    }
    let file = project.recipients_dir(env).join(format!("{member}.pub"));
    let existing = crate::fs::read_own(&file, 64 * 1024)?;
    let request = master::setup::Request {
        project: super::pillar::project_name(project)?,
        project_id: project.required_identity()?,
        env: env.clone(),
        anchor: crate::trust::SeenStore::load(project).anchor(env),
        salt_dir,
        shared,
    };
    let layout = layout(reach);
    let script = remote_vault(&layout, &["local-setup"]);
    let input = request.to_json();
    let (said, accepted_host_key) = over_ssh(env, reach, async |s, t| {
        install_binary(s, t, &layout, reach.ssh_config.as_deref()).await?;
        run(s, t, &script, input.as_bytes()).await
    })?;
    let field = |k: &str| said.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    let key = field("public: ")
        .and_then(|k| PublicKey::parse(k).ok())
        .ok_or_else(|| Error::new("the master did not say its public key"))?;
    let line = format!("{}\n", key.text());
    match existing {
        Some(old) if old == line.as_bytes() => {}
        Some(_) => {
            return Err(Error::new(format!(
                "{} holds another key than the master's ({})",
                project.display_path(&file),
                key.fingerprint()
            ))
            .with_hint(format!(
                "if the master's identity was made anew, `vault revoke {env} {member}`, then run setup again"
            )))
        }
        None => {
            std::fs::create_dir_all(project.recipients_dir(env))
                .map_err(|e| Error::io("cannot create", &project.recipients_dir(env), e))?;
            crate::fs::write_atomic(&file, line.as_bytes(), crate::fs::Mode::KeepOr0644)?;
        }
    }
    let env_file = super::pillar::EnvFile::read(project, env)?;
    Ok(SetupOutcome {
        member: member.to_string(),
        file: project.display_path(&file),
        key,
        created: field("created: ") == Some("true"),
        restart: field("dropin: ") == Some("changed"),
        accepted_host_key,
        env_sls_lacks_master: env_file.master().as_deref() != Some(reach.host.as_str()),
    })
}

/// `vault master accept ENV MINION --fingerprint FP`, on the master `master:` names.
pub fn accept(
    env: &EnvName,
    minion: &str,
    fingerprint: &str,
    reach: &Reach,
) -> Result<(master::accept::Accepted, Option<String>)> {
    check_accept(minion, fingerprint)?;
    let layout = layout(reach);
    let script = remote_vault(
        &layout,
        &[
            "local-accept",
            env.as_str(),
            minion,
            "--fingerprint",
            fingerprint,
        ],
    );
    let (said, host_key) = over_ssh(env, reach, async |s, t| run(s, t, &script, b"").await)?;
    let outcome = if said.contains("accepted: already") {
        master::accept::Accepted::Already
    } else {
        master::accept::Accepted::Now
    };
    Ok((outcome, host_key))
}

/// A minion ID and a fingerprint `vault master accept` can use, checked before anything
/// is read or reached.
pub fn check_accept(minion: &str, fingerprint: &str) -> Result<()> {
    master::check_minion_id(minion)?;
    if master::accept::normalize(fingerprint).is_none() {
        return Err(
            Error::usage(format!("{fingerprint:?} is not a key fingerprint")).with_hint(format!(
                "on the minion, run `{}` and pass its hex",
                master::accept::ON_THE_MINION
            )),
        );
    }
    Ok(())
}

/// The master an environment's env.sls names.
pub fn master_of(project: &Project, env: &EnvName) -> Result<String> {
    super::pillar::EnvFile::read(project, env)?
        .master()
        .ok_or_else(|| {
            Error::usage(format!("{env}: no master: in conf/pillar/{env}/env.sls")).with_hint(
                format!("add `master: [user@]host[:port]` to conf/pillar/{env}/env.sls (the host `vault master setup {env} HOST` set up)"),
            )
        })
}

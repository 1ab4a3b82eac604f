//! The SSH connection to one host: a system-OpenSSH master that every later step (the
//! remote shell, rsync) multiplexes over, the one-line reasons a connection fails, and the
//! host key a first contact accepted.

use crate::provision::known_hosts::{self, HostKey, KnownHost};
use crate::provision::report::Failure;
use crate::provision::target::Target;
use crate::provision::Settings;
use openssh::{ControlPersist, KnownHosts, OwningCommand, Session, SessionBuilder};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The master connection to `t`, as `settings` say (ssh_config, `--accept-new-host-key`),
/// and the key of a server met for the first time that it accepted (with the known_hosts
/// file it went to).
pub(super) async fn connect(
    t: &Target,
    settings: &Settings,
) -> Result<(Session, Option<(String, HostKey)>), Failure> {
    let config = settings.ssh_config.as_deref();
    let known = KnownHost::lookup(t, config);
    // The flag adds a key only for a server known_hosts do not name (`accept-new`, never
    // `no`); one they name is held to its keys, flag or not: a changed key is refused.
    let first_contact = settings.accept_new_host_key && known.is_new();
    let check = if first_contact {
        KnownHosts::Add
    } else {
        KnownHosts::Strict
    };
    let session = match builder(t, settings, check).connect(&t.host).await {
        Ok(s) => s,
        Err(e) => return Err(refused(t, settings, &known, &ssh_log(&e)).await),
    };
    let accepted = match first_contact {
        true => KnownHost::lookup(t, config).keys.into_iter().next(),
        false => None,
    };
    Ok((session, accepted))
}

fn builder(t: &Target, settings: &Settings, check: KnownHosts) -> SessionBuilder {
    let mut builder = SessionBuilder::default();
    if let Some(u) = &t.user {
        builder.user(u.clone());
    }
    if let Some(p) = t.port {
        builder.port(p);
    }
    builder
        .known_hosts_check(check)
        .connect_timeout(Duration::from_secs(15))
        // vault ends the master itself; one left by a vault that was killed goes
        // away after a minute without a session, rather than never.
        .control_persist(ControlPersist::IdleFor(
            std::num::NonZeroUsize::new(60).expect("60 is not zero"),
        ));
    if let Some(cfg) = &settings.ssh_config {
        builder.config_file(cfg);
    }
    builder
}

/// What ssh said when the connection failed (the openssh crate carries its log as the
/// error's source).
fn ssh_log(e: &openssh::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push('\n');
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The one-line reason the connection failed, from ssh's log.
async fn refused(t: &Target, settings: &Settings, known: &KnownHost, log: &str) -> Failure {
    if is_host_key_refusal(log) {
        if let Some(f) = host_key_refusal(t, settings, known, log).await {
            return f;
        }
    }
    connect_error(t, log)
}

fn is_host_key_refusal(log: &str) -> bool {
    log.contains("Host key verification failed")
        || log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
}

/// Why ssh refused the server's key: not known (a first contact), or not the one known
/// (with both fingerprints, and the hint). None when neither fits: ssh's own words then.
async fn host_key_refusal(
    t: &Target,
    settings: &Settings,
    known: &KnownHost,
    log: &str,
) -> Option<Failure> {
    if known.is_new() {
        // A changed key that ssh found and the look-up did not: ssh's own words, then.
        let changed = log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED");
        return (!changed).then(|| {
            Failure::from(format!(
                "the host key of {} is not known: check its fingerprint with the server's admin, then pass --accept-new-host-key for a first contact",
                t.label()
            ))
        });
    }
    let presented = match known_hosts::presented_in_warning(log) {
        Some(k) => Some(k),
        None => probe(t, settings.ssh_config.as_deref()).await,
    };
    // A known key refused all the same (revoked, say): not a change to report.
    if presented
        .as_ref()
        .is_some_and(|p| known.keys.iter().any(|(_, k)| k == p))
    {
        return None;
    }
    let (message, hint) = known_hosts::changed(t, settings.env.as_str(), known, presented.as_ref());
    Some(Failure {
        message,
        hint: Some(hint),
    })
}

/// The key the server presents, when ssh's refusal did not name it: from a connection
/// that stops at the host key check (no key known to it, strict, batch mode, no shared
/// master), so nothing is authenticated and nothing sent.
async fn probe(t: &Target, config: Option<&Path>) -> Option<HostKey> {
    let mut ssh = tokio::process::Command::new("ssh");
    ssh.arg("-v");
    if let Some(c) = config {
        ssh.arg("-F").arg(c);
    }
    if let Some(p) = t.port {
        ssh.arg("-p").arg(p.to_string());
    }
    if let Some(u) = &t.user {
        ssh.arg("-l").arg(u);
    }
    for o in [
        "UserKnownHostsFile=/dev/null",
        "GlobalKnownHostsFile=/dev/null",
        "KnownHostsCommand=none",
        "VerifyHostKeyDNS=no",
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "ControlPath=none",
        "ConnectTimeout=15",
    ] {
        ssh.arg("-o").arg(o);
    }
    ssh.arg("--").arg(&t.host).arg("true").stdin(Stdio::null());
    let out = ssh.output().await.ok()?;
    known_hosts::presented_in_debug(&String::from_utf8_lossy(&out.stderr))
}

fn connect_error(t: &Target, log: &str) -> Failure {
    let first = log.lines().next().unwrap_or_default();
    let reason = log.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(first);
    let message = if is_host_key_refusal(log) {
        format!(
            "ssh refused the host key of {}: {}",
            t.label(),
            reason.trim()
        )
    } else if log.contains("Connection refused")
        || log.contains("timed out")
        || log.contains("No route")
        || log.contains("Could not resolve")
    {
        format!("cannot reach {}: {}", t.label(), reason.trim())
    } else {
        format!("cannot connect to {}: {}", t.label(), reason.trim())
    };
    Failure::from(message)
}

/// `sh -c SCRIPT` on the host, through `sudo -n` when the user is not root.
pub(super) fn shell<'s>(
    session: &'s Session,
    t: &Target,
    script: &str,
) -> OwningCommand<&'s Session> {
    let mut cmd = if t.is_root() {
        session.command("sh")
    } else {
        let mut c = session.command("sudo");
        c.arg("-n").arg("sh");
        c
    };
    cmd.arg("-c").arg(script);
    cmd
}

/// The ssh command for rsync's `-e`: through the session's master connection (no second
/// SSH connection), with the run's ssh_config.
pub(super) fn rsync_ssh(session: &Session, ssh_config: Option<&Path>) -> String {
    // Strict: should the master be gone, a connection of its own takes no new key.
    let mut ssh = format!(
        "ssh -S {} -o ControlMaster=no -o StrictHostKeyChecking=yes",
        shell_words::quote(&session.control_socket().display().to_string())
    );
    if let Some(cfg) = ssh_config {
        ssh.push_str(&format!(
            " -F {}",
            shell_words::quote(&cfg.display().to_string())
        ));
    }
    ssh
}

//! The SSH connection to one host: a system-OpenSSH master that every later step (the
//! remote shell, rsync) multiplexes over, the one-line reasons a connection fails, and the
//! host key a first contact accepted.

use crate::provision::target::Target;
use crate::provision::Settings;
use openssh::{ControlPersist, KnownHosts, OwningCommand, Session, SessionBuilder};
use std::path::Path;
use std::time::Duration;

/// The master connection to `t`, as `settings` say (host key policy, ssh_config).
pub(super) async fn connect(t: &Target, settings: &Settings) -> Result<Session, String> {
    let mut builder = SessionBuilder::default();
    if let Some(u) = &t.user {
        builder.user(u.clone());
    }
    if let Some(p) = t.port {
        builder.port(p);
    }
    builder
        .known_hosts_check(if settings.accept_new_host_key {
            KnownHosts::Accept
        } else {
            KnownHosts::Strict
        })
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
        .connect(&t.host)
        .await
        .map_err(|e| connect_error(t, &e))
}

fn connect_error(t: &Target, e: &openssh::Error) -> String {
    let text = format!("{e} {:?}", e);
    if text.contains("Host key verification failed")
        || text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        format!(
            "the host key of {} is not known, or has changed: check it, then pass --accept-new-host-key for a first contact",
            t.label()
        )
    } else if text.contains("Connection refused")
        || text.contains("timed out")
        || text.contains("No route")
        || text.contains("Could not resolve")
    {
        format!("cannot reach {}: {e}", t.label())
    } else {
        format!("cannot connect to {}: {e}", t.label())
    }
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
    let mut ssh = format!(
        "ssh -S {} -o ControlMaster=no",
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

/// The SHA256 fingerprint the known-hosts file ssh uses now holds for the target.
pub(super) fn known_host_fingerprint(t: &Target, config: Option<&Path>) -> Option<String> {
    let name = match t.port {
        Some(p) if p != 22 => format!("[{}]:{p}", t.host),
        _ => t.host.clone(),
    };
    known_hosts_files(t, config)?
        .iter()
        .find_map(|file| fingerprint_in(file, &name))
}

/// Which files ssh checks host keys against: whatever ssh's own configuration says
/// (`ssh -G`).
fn known_hosts_files(t: &Target, config: Option<&Path>) -> Option<Vec<String>> {
    let mut g = std::process::Command::new("ssh");
    g.arg("-G");
    if let Some(c) = config {
        g.arg("-F").arg(c);
    }
    if let Some(p) = t.port {
        g.arg("-p").arg(p.to_string());
    }
    let out = g.arg(&t.host).output().ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("userknownhostsfile "))
            .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .collect(),
    )
}

/// The fingerprint `file` holds for the host `name` (`host` or `[host]:port`).
fn fingerprint_in(file: &str, name: &str) -> Option<String> {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-F", name, "-f", file])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("SHA256:"))
                .map(String::from)
        })
}

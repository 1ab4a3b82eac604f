//! What the member's known_hosts say about a server before vault connects, and the words
//! for a server whose host key is not the one they hold.
//!
//! `--accept-new-host-key` may only ever add a key for a server known_hosts does not
//! name at all: a server it names is connected to strictly, whatever the flag, so a
//! changed key (a man in the middle, or a reinstalled server) is refused before anything
//! is sent, and the refusal names both fingerprints for the member to check with the
//! server's admin.

use crate::provision::target::Target;
use std::fmt;
use std::path::Path;
use std::process::Command;

/// A host key as ssh names it: its type and SHA256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostKey {
    /// `ED25519`, `RSA`, `ECDSA`, ...
    pub kind: String,
    pub fingerprint: String,
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.fingerprint)
    }
}

/// What known_hosts hold for one server.
#[derive(Debug)]
pub(super) struct KnownHost {
    /// How known_hosts name it: the ssh_config's HostKeyAlias or HostName, as
    /// `[host]:port` off port 22.
    pub name: String,
    /// Each key they hold for `name`, with its file.
    pub keys: Vec<(String, HostKey)>,
}

impl KnownHost {
    /// The server `t` as ssh (with `config`, as `ssh -F`) sees it, and the keys known
    /// for it.
    pub fn lookup(t: &Target, config: Option<&Path>) -> KnownHost {
        let g = ssh_g(t, config);
        let value = |key: &str| {
            g.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::to_string)
        };
        let host = value("hostkeyalias")
            .or_else(|| value("hostname"))
            .unwrap_or_else(|| t.host.clone());
        let port = value("port")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(t.port_or_default());
        let name = match port {
            22 => host,
            p => format!("[{host}]:{p}"),
        };
        // The files ssh checks (user's first), and each key they hold for `name`.
        let files: Vec<String> = ["userknownhostsfile", "globalknownhostsfile"]
            .into_iter()
            .filter_map(value)
            .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .collect();
        let keys = files
            .iter()
            .flat_map(|f| keys_in(f, &name).into_iter().map(|k| (f.clone(), k)))
            .collect();
        KnownHost { name, keys }
    }

    /// No key known for the server: the one case `--accept-new-host-key` is for.
    pub fn is_new(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `ssh -G`'s view of the server (its settings after ssh_config), or "" if ssh cannot say.
fn ssh_g(t: &Target, config: Option<&Path>) -> String {
    let mut g = Command::new("ssh");
    g.arg("-G");
    if let Some(c) = config {
        g.arg("-F").arg(c);
    }
    if let Some(p) = t.port {
        g.arg("-p").arg(p.to_string());
    }
    match g.arg("--").arg(&t.host).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    }
}

/// The keys `file` holds for the host `name` (`ssh-keygen -l -F`, which reads hashed
/// entries too); none when the file does not exist.
pub(super) fn keys_in(file: &str, name: &str) -> Vec<HostKey> {
    let Ok(out) = Command::new("ssh-keygen")
        .args(["-l", "-F", name, "-f", file])
        .output()
    else {
        return vec![];
    };
    // Lines read `NAME TYPE SHA256:...` (a marker such as @revoked before NAME).
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| w.starts_with("SHA256:"))?;
            Some(HostKey {
                kind: words.get(at.checked_sub(1)?)?.to_string(),
                fingerprint: words[at].to_string(),
            })
        })
        .collect()
}

/// The key a refused server presented, as ssh's "REMOTE HOST IDENTIFICATION HAS CHANGED"
/// warning names it ("The fingerprint for the RSA key sent by the remote host is" and
/// the fingerprint on the next line, ending in a full stop).
pub(super) fn presented_in_warning(ssh_log: &str) -> Option<HostKey> {
    let lines: Vec<&str> = ssh_log.lines().map(str::trim).collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with("key sent by the remote host is"))?;
    let kind = lines[at]
        .strip_prefix("The fingerprint for the ")?
        .split_whitespace()
        .next()?;
    let fingerprint = lines.get(at + 1)?.trim_end_matches('.');
    fingerprint.starts_with("SHA256:").then(|| HostKey {
        kind: kind.to_string(),
        fingerprint: fingerprint.to_string(),
    })
}

/// The key the server presented, as `ssh -v` logs it (`debug1: Server host key:
/// ssh-ed25519 SHA256:...`); the last such line is the server's own, after any jump host's.
pub(super) fn presented_in_debug(ssh_log: &str) -> Option<HostKey> {
    let line = ssh_log
        .lines()
        .filter_map(|l| l.split_once("Server host key: ").map(|(_, k)| k))
        .next_back()?;
    let mut words = line.split_whitespace();
    let algorithm = words.next()?;
    let fingerprint = words.next().filter(|f| f.starts_with("SHA256:"))?;
    Some(HostKey {
        kind: kind_of(algorithm),
        fingerprint: fingerprint.to_string(),
    })
}

/// ssh's short name of a host key algorithm: `ssh-ed25519` is ED25519, as known_hosts
/// listings say it.
fn kind_of(algorithm: &str) -> String {
    let a = algorithm.trim_start_matches("ssh-");
    let a = a.split('-').next().unwrap_or(a);
    match a {
        "ecdsa" => "ECDSA".into(),
        "sk" => "ED25519-SK".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// The refusal of a server whose key is not a known one: the one-line reason, naming both
/// fingerprints, and the hint for checking and replacing it.
pub(super) fn changed(
    t: &Target,
    env: &str,
    known: &KnownHost,
    presented: Option<&HostKey>,
) -> (String, String) {
    let held: Vec<String> = known.keys.iter().map(|(_, k)| k.to_string()).collect();
    let now = presented.map_or(
        "a key it does not name (ssh did not say which)".into(),
        |k| k.to_string(),
    );
    let message = format!(
        "the host key of {} has changed: known_hosts holds {} for {}, the host now presents {now}; refused, nothing was sent",
        t.label(),
        held.join(", "),
        known.name,
    );
    let (file, _) = &known.keys[0];
    let (pub_file, matches) = match presented {
        Some(k) => (
            format!("/etc/ssh/ssh_host_{}_key.pub", k.kind.to_ascii_lowercase()),
            format!("it says {}", k.fingerprint),
        ),
        None => ("/etc/ssh/ssh_host_*_key.pub".into(), "it matches".into()),
    };
    let hint = format!(
        "this may be a man in the middle: ask the server's admin for `ssh-keygen -lf {pub_file}` run on it; only if {matches}, `ssh-keygen -f {} -R {}`, then `vault provision {env} --accept-new-host-key`",
        shell_words::quote(file),
        shell_words::quote(&known.name),
    );
    (message, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGED: &str = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
        @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
        @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
        IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
        The fingerprint for the RSA key sent by the remote host is\n\
        SHA256:esly/jrEwoQyHG7JIIcLE+Whc2WDYVWQ5e/y4N9lYxQ.\n\
        Please contact your system administrator.\n\
        Offending ED25519 key in /tmp/hk/known_hosts:1\n\
        Host key for [127.0.0.1]:23457 has changed and you have requested strict checking.\n\
        Host key verification failed.\n";

    #[test]
    fn reads_the_presented_key_from_the_warning() {
        assert_eq!(
            presented_in_warning(CHANGED),
            Some(HostKey {
                kind: "RSA".into(),
                fingerprint: "SHA256:esly/jrEwoQyHG7JIIcLE+Whc2WDYVWQ5e/y4N9lYxQ".into()
            })
        );
        assert_eq!(
            presented_in_warning("Host key verification failed.\n"),
            None
        );
    }

    #[test]
    fn reads_the_presented_key_from_a_debug_log() {
        let log = "debug1: Server host key: ssh-ed25519 SHA256:jump\n\
                   debug1: Server host key: ecdsa-sha2-nistp256 SHA256:abc+/x\n\
                   Host key verification failed.\n";
        assert_eq!(
            presented_in_debug(log),
            Some(HostKey {
                kind: "ECDSA".into(),
                fingerprint: "SHA256:abc+/x".into()
            })
        );
        assert_eq!(kind_of("ssh-ed25519"), "ED25519");
        assert_eq!(kind_of("rsa-sha2-512"), "RSA");
        assert_eq!(kind_of("ssh-rsa"), "RSA");
        assert_eq!(presented_in_debug("debug1: Connecting to x\n"), None);
    }

    #[test]
    fn the_refusal_names_both_keys_and_how_to_replace_the_old_one() {
        let t = Target::parse("root@127.0.0.1:23001").unwrap();
        let known = KnownHost {
            name: "[127.0.0.1]:23001".into(),
            keys: vec![(
                "/home/m/.ssh/known_hosts".into(),
                HostKey {
                    kind: "ED25519".into(),
                    fingerprint: "SHA256:old".into(),
                },
            )],
        };
        let new = HostKey {
            kind: "ED25519".into(),
            fingerprint: "SHA256:new".into(),
        };
        let (message, hint) = changed(&t, "staging", &known, Some(&new));
        assert_eq!(
            message,
            "the host key of root@127.0.0.1:23001 has changed: known_hosts holds ED25519 SHA256:old \
             for [127.0.0.1]:23001, the host now presents ED25519 SHA256:new; refused, nothing was sent"
        );
        assert!(hint.contains("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"));
        assert!(hint.contains("only if it says SHA256:new,"));
        assert!(hint.contains("ssh-keygen -f /home/m/.ssh/known_hosts -R '[127.0.0.1]:23001'"));
        assert!(hint.ends_with("`vault provision staging --accept-new-host-key`"));
    }
}

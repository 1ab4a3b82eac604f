//! `vault master accept`, on the master: a minion's key is accepted only when the
//! fingerprint of the key file it sent matches the one read from the minion over a
//! second channel, and the minion is recorded as a member of one environment. Never
//! `auto_accept`.
//!
//! The fingerprint is SHA-256 over the minion's public key file without its final
//! newline, which is how the master stores the key it received: what `salt-key -f ID`
//! prints (colon-separated), and what `printf %s "$(cat minion.pub)" | sha256sum`
//! prints on the minion. (The minion's own `salt-call --local key.finger` hashes the
//! file without its armour lines, so it never matches: salt#69970.)

use super::{check_minion_id, Config, Layout};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// What to run on the minion for its fingerprint, with standard tools only.
pub const ON_THE_MINION: &str = r#"printf %s "$(cat /etc/salt/pki/minion/minion.pub)" | sha256sum"#;

/// What a member asks.
pub struct Request<'a> {
    pub env: &'a str,
    pub minion: &'a str,
    /// As the member typed it: hex, with or without colons.
    pub fingerprint: &'a str,
}

/// What happened.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Pending, now accepted.
    Now,
    /// Accepted before (by vault or by hand): its fingerprint matches, now recorded.
    Already,
}

/// The fingerprint of a key file's bytes (final newlines aside), as `salt-key -f`
/// prints it.
pub fn fingerprint(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|b| *b != b'\n').map_or(0, |i| i + 1);
    let hex: Vec<String> = Sha256::digest(&bytes[..end])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.join(":")
}

/// A fingerprint as typed, in the form [`fingerprint`] gives; None when it is not one.
pub fn normalize(typed: &str) -> Option<String> {
    let hex: String = typed
        .trim()
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let ok = hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| {
        let pairs: Vec<&str> = (0..32).map(|i| &hex[2 * i..2 * i + 2]).collect();
        pairs.join(":")
    })
}

/// Salt's key folders on the master.
fn pki(layout: &Layout, state: &str, minion: &str) -> PathBuf {
    layout
        .salt_config_dir()
        .join("pki/master")
        .join(state)
        .join(minion)
}

/// The fingerprint of the key Salt has accepted for `minion`, if any.
pub fn accepted_key(layout: &Layout, minion: &str) -> Result<Option<String>> {
    key_fingerprint(&pki(layout, "minions", minion))
}

fn key_fingerprint(path: &std::path::Path) -> Result<Option<String>> {
    Ok(crate::fs::read_own(path, 64 * 1024)?.map(|b| fingerprint(&b)))
}

/// Accepts `req.minion` for `req.env` when its key's fingerprint matches.
pub fn accept(layout: &Layout, req: &Request) -> Result<Accepted> {
    let mut config = Config::required(layout)?;
    let env = config.served(req.env)?;
    check_minion_id(req.minion)?;
    let want = normalize(req.fingerprint).ok_or_else(|| {
        Error::usage(format!("{:?} is not a key fingerprint", req.fingerprint)).with_hint(format!(
            "on the minion, run `{ON_THE_MINION}` and pass its hex"
        ))
    })?;
    if let Some(other) = config.env_of(req.minion).filter(|e| *e != env.as_str()) {
        return Err(Error::new(format!(
            "minion {} is accepted for {other}: a minion belongs to one environment",
            req.minion
        ))
        .with_hint(format!("give it an ID of its own for {env}")));
    }
    let accepted = pki(layout, "minions", req.minion);
    let outcome = match key_fingerprint(&accepted)? {
        Some(have) => {
            matches(req, &have, &want, "accepted")?;
            Accepted::Already
        }
        None => {
            accept_pending(layout, &config.salt_command("salt-key"), req, &want)?;
            Accepted::Now
        }
    };
    let member = super::Member {
        env: env.to_string(),
        key: want,
    };
    config.minions.insert(req.minion.to_string(), member);
    config.save(layout)?;
    Ok(outcome)
}

fn matches(req: &Request, have: &str, want: &str, state: &str) -> Result<()> {
    if have == want {
        return Ok(());
    }
    Err(Error::new(format!(
        "the {state} key of minion {} has fingerprint {have}, not {want}: not accepted",
        req.minion
    ))
    .with_hint(format!(
        "read it again on the minion (`{ON_THE_MINION}`); a key that differs is another machine's: delete it with `salt-key -d ID`"
    )))
}

/// Accepts the pending key when it matches, then checks the key Salt accepted is that
/// one: a key swapped in between is deleted again.
fn accept_pending(layout: &Layout, salt_key: &str, req: &Request, want: &str) -> Result<()> {
    let pending = pki(layout, "minions_pre", req.minion);
    let have = key_fingerprint(&pending)?.ok_or_else(|| {
        Error::new(format!(
            "no key of minion {} is waiting on this master",
            req.minion
        ))
        .with_hint("start salt-minion on it (master: this master), then accept it")
    })?;
    matches(req, &have, want, "pending")?;
    run_salt_key(layout, salt_key, req, "-a")?;
    let now = key_fingerprint(&pki(layout, "minions", req.minion))?;
    if now.as_deref() != Some(want) {
        let _ = run_salt_key(layout, salt_key, req, "-d");
        return Err(Error::new(format!(
            "the key of minion {} changed while it was accepted: deleted again",
            req.minion
        ))
        .with_hint("another machine may be using its ID: check it, then accept it again"));
    }
    Ok(())
}

fn run_salt_key(layout: &Layout, salt_key: &str, req: &Request, action: &str) -> Result<()> {
    let out = std::process::Command::new(salt_key)
        .arg("-c")
        .arg(layout.salt_config_dir())
        .args(["-y", "--out", "json", action, req.minion])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot run {salt_key}: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "{salt_key} {action} {} failed: {}",
            req.minion,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_salt_key_s_form_however_typed() {
        let fp = fingerprint(b"key\n");
        assert_eq!(fp.len(), 95);
        // The master keeps the key without the minion file's final newline.
        assert_eq!(fingerprint(b"key"), fp);
        let hex: String = fp.chars().filter(|c| *c != ':').collect();
        assert_eq!(normalize(&hex).as_deref(), Some(fp.as_str()));
        assert_eq!(normalize(&fp.to_uppercase()).as_deref(), Some(fp.as_str()));
        assert_eq!(
            normalize(&format!("  {hex}\n")).as_deref(),
            Some(fp.as_str())
        );
        for bad in ["", "zz", &hex[..62], &format!("{hex}00")] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}

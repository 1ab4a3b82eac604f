//! Who may read an environment: the public keys in `recipients/<env>/<member>.pub`.

use crate::error::{Error, Result};
use crate::git::Git;
use crate::project::{is_member_name, EnvName, Project};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::str::FromStr;

/// RSA modulus sizes accepted, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

const ACCEPTED: &str =
    "vault accepts ssh-ed25519, ssh-rsa (2048 to 4096 bits) and age X25519 (age1...) keys";

/// A member of an environment: one `.pub` file and the keys in it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub keys: Vec<PublicKey>,
}

/// The kinds of public key a recipient may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    Rsa { bits: usize },
    X25519,
}

/// One recipient public key, normalised (no comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    /// `ssh-ed25519 AAAA...`, `ssh-rsa AAAA...` or `age1...`.
    text: String,
    /// The SSH wire-format key, for SSH keys.
    blob: Vec<u8>,
    /// The fingerprint, computed once: writes compare it across every roster entry.
    fp: String,
}

impl PublicKey {
    /// Parses one line of a `.pub` file; the error is the reason alone.
    pub fn parse(line: &str) -> std::result::Result<PublicKey, String> {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        // Post-quantum keys have the prefix `age1pq1` (their own bech32 part); an X25519
        // key's data may itself begin with "pq" (found by bench/edge: one key in 1,024).
        if first.starts_with("age1") && !first.starts_with("age1pq1") && first.len() > 4 {
            age::x25519::Recipient::from_str(first)
                .map_err(|e| format!("invalid age recipient: {e}"))?;
            return Ok(PublicKey::new(
                KeyKind::X25519,
                first.to_string(),
                Vec::new(),
            ));
        }
        if first.starts_with("AGE-SECRET-KEY-") || first.starts_with("-----BEGIN") {
            return Err(
                "this is a private key, not a public key: never share it; put the public key here"
                    .into(),
            );
        }
        if first != "ssh-ed25519" && first != "ssh-rsa" {
            let known_other = first.starts_with("ecdsa-")
                || first.starts_with("sk-")
                || first.starts_with("ssh-")
                || first.starts_with("age1");
            return Err(if known_other {
                format!("unsupported key type {first}; {ACCEPTED}")
            } else {
                format!("not a public key; {ACCEPTED}")
            });
        }
        let b64 = words
            .next()
            .ok_or_else(|| format!("{first} key without key data"))?;
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| format!("{first} key data is not valid base64"))?;
        let key = ssh_key::PublicKey::from_bytes(&blob)
            .map_err(|_| format!("{first} key data is malformed"))?;
        let kind = match key.key_data() {
            ssh_key::public::KeyData::Ed25519(_) if first == "ssh-ed25519" => KeyKind::Ed25519,
            ssh_key::public::KeyData::Rsa(rsa) if first == "ssh-rsa" => {
                let n = rsa.n.as_positive_bytes().unwrap_or(&[]);
                let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
                if !RSA_BITS.contains(&bits) {
                    return Err(format!("ssh-rsa key of {bits} bits; {ACCEPTED}"));
                }
                KeyKind::Rsa { bits }
            }
            _ => return Err(format!("the key data is not a {first} key")),
        };
        let text = format!("{first} {b64}");
        // age's own parse (which checks the curve point) runs when encrypting: reads,
        // which only need fingerprints, skip its cost.
        Ok(PublicKey::new(kind, text, blob))
    }

    fn new(kind: KeyKind, text: String, blob: Vec<u8>) -> PublicKey {
        let digest = match kind {
            KeyKind::X25519 => Sha256::digest(text.as_bytes()),
            _ => Sha256::digest(&blob),
        };
        let fp = format!("SHA256:{}", STANDARD_NO_PAD.encode(digest));
        PublicKey {
            kind,
            text,
            blob,
            fp,
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key as one line, without comment.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `SHA256:...`: for SSH keys exactly what `ssh-keygen -lf` prints; for age keys
    /// the same digest taken over the `age1...` string.
    pub fn fingerprint(&self) -> String {
        self.fp.clone()
    }

    /// [`fingerprint`](Self::fingerprint), borrowed.
    pub fn fingerprint_str(&self) -> &str {
        &self.fp
    }

    /// The tag age writes in an SSH recipient stanza for this key; None for X25519,
    /// whose stanzas are anonymous.
    pub fn stanza_tag(&self) -> Option<String> {
        match self.kind {
            KeyKind::X25519 => None,
            _ => Some(STANDARD_NO_PAD.encode(&Sha256::digest(&self.blob)[..4])),
        }
    }

    /// The type of the stanza age writes for this key: `ssh-ed25519`, `ssh-rsa` or
    /// `X25519`.
    pub fn stanza_type(&self) -> &'static str {
        match self.kind {
            KeyKind::Ed25519 => "ssh-ed25519",
            KeyKind::Rsa { .. } => "ssh-rsa",
            KeyKind::X25519 => "X25519",
        }
    }

    /// The fingerprint as six groups of five digits, easy to read aloud and compare by
    /// voice (taken from the same SHA-256 digest as [`fingerprint`](Self::fingerprint)).
    pub fn spoken(&self) -> String {
        let digest = match self.kind {
            KeyKind::X25519 => Sha256::digest(self.text.as_bytes()),
            _ => Sha256::digest(&self.blob),
        };
        digest[..30]
            .chunks(5)
            .map(|c| {
                format!(
                    "{:05}",
                    c.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)) % 100_000
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The key as an age recipient; an error names the fingerprint of a key age refuses.
    pub fn age_recipient(&self) -> Result<Box<dyn age::Recipient + Send>> {
        let unusable = || {
            Error::new(format!(
                "the key {} is not usable by age",
                self.fingerprint()
            ))
        };
        Ok(match self.kind {
            KeyKind::X25519 => {
                Box::new(age::x25519::Recipient::from_str(&self.text).map_err(|_| unusable())?)
            }
            _ => Box::new(age::ssh::Recipient::from_str(&self.text).map_err(|_| unusable())?),
        })
    }
}

/// The stanza tag an SSH key with fingerprint `fp` (`SHA256:...`) would have: both are
/// taken from the SHA-256 of the key's wire form, the tag from its first 4 bytes. For a
/// key that is not an SSH key the result means nothing; None when `fp` is malformed.
pub fn stanza_tag_of_fingerprint(fp: &str) -> Option<String> {
    let digest = STANDARD_NO_PAD.decode(fp.strip_prefix("SHA256:")?).ok()?;
    (digest.len() == 32).then(|| STANDARD_NO_PAD.encode(&digest[..4]))
}

/// The members of `env`, sorted by name. A missing folder is an empty list.
pub fn members(project: &Project, env: &EnvName) -> Result<Vec<Member>> {
    let dir = project.recipients_dir(env);
    project.confined(&dir)?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot list", &dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        if file_name.starts_with('.') || !file_name.ends_with(".pub") {
            continue;
        }
        let path = entry.path();
        let text = read_member_file(project, &path)?;
        files.push((file_name, text));
    }
    members_of(files, &project.display_path(&dir))
}

/// The members of `env` as committed at `rev`.
pub fn members_at(git: &Git, rev: &str, env: &EnvName) -> Result<Vec<Member>> {
    let dir = format!("recipients/{env}");
    let names: Vec<String> = git
        .list(rev, &dir)?
        .into_iter()
        .filter(|n| !n.starts_with('.') && n.ends_with(".pub"))
        .collect();
    let paths: Vec<String> = names.iter().map(|n| format!("{dir}/{n}")).collect();
    let mut files = Vec::new();
    for (name, bytes) in names.into_iter().zip(git.show_all(rev, &paths)?) {
        if let Some(bytes) = bytes {
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::new(format!("{dir}/{name} at {rev}: not text")))?;
            files.push((name, text));
        }
    }
    members_of(files, &format!("{dir} at {rev}"))
}

/// A member file's text, refusing one that leads outside the project: a recipients
/// folder decides who can read secrets, so its keys must be the project's own.
fn read_member_file(project: &Project, path: &std::path::Path) -> Result<String> {
    let shown = project.display_path(path);
    project.confined(path)?;
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    if meta.len() > 64 * 1024 {
        return Err(Error::new(format!(
            "{shown} is {} bytes, too large for public keys",
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
}

/// Members from `(file name, text)` pairs of a recipients folder shown as `dir`.
fn members_of(files: Vec<(String, String)>, dir: &str) -> Result<Vec<Member>> {
    let mut members = Vec::new();
    for (file_name, text) in files {
        let Some(name) = file_name.strip_suffix(".pub") else {
            continue;
        };
        let shown = format!("{dir}/{file_name}");
        if !is_member_name(name) {
            return Err(Error::new(format!(
                "{shown}: invalid member name '{name}': use lowercase letters, digits, '.', '_' and '-'"
            )));
        }
        let keys = parse_file(&text, &shown)?;
        members.push(Member {
            name: name.to_string(),
            keys,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

/// The keys of one `.pub` file's text; `shown` names the file in errors.
pub fn parse_file(text: &str, shown: &str) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = PublicKey::parse(line)
            .map_err(|why| Error::new(format!("{shown}: line {}: {why}", i + 1)))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Error::new(format!("{shown}: no public key in the file")));
    }
    Ok(keys)
}

/// The members of `env`, which must be at least one: whom a write encrypts to.
pub fn required(project: &Project, env: &EnvName) -> Result<Vec<Member>> {
    let members = members(project, env)?;
    if members.is_empty() {
        let dir = project.display_path(&project.recipients_dir(env));
        return Err(
            Error::new(format!("{env}: no recipients: {dir}/ holds no .pub file")).with_hint(
                format!("add a member's public key as {dir}/NAME.pub (see `vault keygen`)"),
            ),
        );
    }
    Ok(members)
}

/// Every distinct key of `members`, in order.
pub fn distinct_keys(members: &[Member]) -> Vec<&PublicKey> {
    let mut keys: Vec<&PublicKey> = Vec::new();
    for k in members.iter().flat_map(|m| &m.keys) {
        if !keys.iter().any(|seen| seen.text == k.text) {
            keys.push(k);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_x25519_key_whose_data_begins_with_pq_is_x25519() {
        let k = PublicKey::parse("age1pqd3qkgf80fqywaunamvcfwffycsfapkfwxxhkhvv0939y8hkc2q6ka0vp")
            .unwrap();
        assert_eq!(k.kind(), KeyKind::X25519);
        let pq = PublicKey::parse("age1pq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq")
            .unwrap_err();
        assert!(pq.contains("unsupported key type"), "{pq}");
    }

    // A published test key; never used for anything real.
    const ED: &str = include_str!("../../tests/fixtures/keys/alice_ed25519.pub");

    #[test]
    fn ed25519_with_comment_and_fingerprint() {
        let k = PublicKey::parse(ED).unwrap();
        assert_eq!(k.kind(), KeyKind::Ed25519);
        assert!(!k.text().contains("alice"));
        assert!(k.fingerprint().starts_with("SHA256:"));
        assert_eq!(k.stanza_tag().unwrap().len(), 6);
        assert_eq!(k.stanza_type(), "ssh-ed25519");
        assert_eq!(stanza_tag_of_fingerprint(&k.fingerprint()), k.stanza_tag());
        assert_eq!(stanza_tag_of_fingerprint("SHA256:short"), None);
        assert_eq!(stanza_tag_of_fingerprint("MD5:x"), None);
    }

    #[test]
    fn an_rsa_keys_tag_follows_from_its_fingerprint() {
        let k = PublicKey::parse(include_str!("../../tests/fixtures/keys/carol_rsa.pub")).unwrap();
        assert_eq!(k.stanza_type(), "ssh-rsa");
        assert_eq!(stanza_tag_of_fingerprint(&k.fingerprint()), k.stanza_tag());
    }

    #[test]
    fn refusals_name_the_reason() {
        for (line, want) in [
            (
                "ecdsa-sha2-nistp256 AAAA",
                "unsupported key type ecdsa-sha2-nistp256",
            ),
            ("ssh-dss AAAA", "unsupported key type ssh-dss"),
            (
                "sk-ssh-ed25519@openssh.com AAAA",
                "unsupported key type sk-ssh-ed25519",
            ),
            ("hello world", "not a public key"),
            ("AGE-SECRET-KEY-1ABC", "private key"),
            ("ssh-ed25519", "without key data"),
            ("ssh-ed25519 !!!", "not valid base64"),
            ("ssh-ed25519 AAAA", "malformed"),
            ("age1notvalid", "invalid age recipient"),
        ] {
            let err = PublicKey::parse(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}

//! Who is decrypting: the identities tried in order (`-i`/`VAULT_IDENTITY`, the OS
//! keyring, `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`), each loaded at most once per run,
//! with a passphrase asked for at most once per key.

use crate::envelope::{self, OpenError};
use crate::error::{Error, Result};
use crate::keys::keystore;
use crate::keys::recipients::PublicKey;
use crate::keys::signing::{self, Signer};
use crate::secret::SecretBytes;
use age::secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where an identity comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `-i FILE` or `VAULT_IDENTITY`.
    File(PathBuf),
    Keyring,
    /// `~/.ssh/id_ed25519` or `~/.ssh/id_rsa`.
    DefaultSsh(PathBuf),
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::File(p) | Source::DefaultSsh(p) => p.display().to_string(),
            Source::Keyring => keystore::NAME.to_string(),
        }
    }
}

/// An identity's public keys, derived only when asked: deriving an X25519 key costs a
/// scalar multiplication that decrypting does not need (it tries the identity itself).
struct Publics {
    keys: std::sync::OnceLock<Vec<PublicKey>>,
    x25519: Vec<age::x25519::Identity>,
}

impl Publics {
    fn known(keys: Vec<PublicKey>) -> Publics {
        Publics {
            keys: std::sync::OnceLock::from(keys),
            x25519: Vec::new(),
        }
    }

    fn get(&self) -> &[PublicKey] {
        self.keys.get_or_init(|| {
            let lines = self.x25519.iter().map(|id| id.to_public().to_string());
            lines.filter_map(|l| PublicKey::parse(&l).ok()).collect()
        })
    }
}

/// An identity as loaded from its source.
enum Loaded {
    /// `ssh` keeps an SSH key's text (and its passphrase once asked), so it can also sign.
    Ready {
        ids: Vec<Box<dyn age::Identity>>,
        public: Publics,
        ssh: Option<SshKey>,
    },
    /// A passphrase-protected OpenSSH key, decrypted only when a file needs it.
    Locked {
        key: age::ssh::EncryptedKey,
        public: Publics,
        ssh: SshKey,
    },
    /// Not there, or not usable: the reason, for the final error.
    Unavailable(String),
}

/// An OpenSSH private key's text, and its passphrase once it has been asked for.
struct SshKey {
    text: SecretBytes,
    passphrase: Option<SecretString>,
}

/// The identities of this run, in the order they are tried.
pub struct Identities {
    sources: Vec<(Source, Option<Loaded>)>,
    /// The source that opened the last file.
    last_used: Option<usize>,
    /// An identity was named (`-i` or `VAULT_IDENTITY`): it is the only one tried, for
    /// reading and for signing (ssh-agent's keys sign only for a named age identity,
    /// which cannot), so nothing is read or signed by a key the user did not choose.
    explicit: bool,
}

impl Identities {
    /// The standard order; `explicit` is `-i` or `VAULT_IDENTITY`, and when given, the
    /// only identity.
    pub fn standard(explicit: Option<PathBuf>) -> Identities {
        if let Some(p) = explicit {
            return Identities {
                sources: vec![(Source::File(p), None)],
                last_used: None,
                explicit: true,
            };
        }
        let mut sources = vec![Source::Keyring];
        if let Some(home) = std::env::var_os("HOME") {
            let ssh = Path::new(&home).join(".ssh");
            sources.push(Source::DefaultSsh(ssh.join("id_ed25519")));
            sources.push(Source::DefaultSsh(ssh.join("id_rsa")));
        }
        Identities {
            sources: sources.into_iter().map(|s| (s, None)).collect(),
            last_used: None,
            explicit: false,
        }
    }

    /// Decrypts `ciphertext`; `what` names the file in errors (e.g. "staging (conf/pillar/...)").
    /// `order` is the fingerprints of its stanzas, in order, when known (see
    /// [`envelope::stanza_order`]): a key finds its own stanza first.
    pub fn decrypt(
        &mut self,
        what: &str,
        ciphertext: &[u8],
        order: &[&str],
    ) -> Result<SecretBytes> {
        let header = envelope::header(ciphertext)
            .map_err(|why| Error::new(format!("cannot read {what}: {why}")))?;
        let mut tried = Vec::new();
        for i in 0..self.sources.len() {
            self.load(i)?;
            let (source, loaded) = &mut self.sources[i];
            let loaded = loaded.as_mut().expect("just loaded");
            if let Loaded::Locked { key, public, ssh } = loaded {
                // Ask for the passphrase only when the file is encrypted to this key.
                let tag = public.get().first().and_then(PublicKey::stanza_tag);
                if tag.is_none_or(|t| !header.ssh_tags.contains(&t)) {
                    tried.push(format!("{} (not a recipient)", source.label()));
                    continue;
                }
                // Asked once per run: signing may have asked already.
                let passphrase = match ssh.passphrase.take() {
                    Some(p) => p,
                    None => ask_passphrase(&source.label())?,
                };
                let passphrase_copy = SecretString::from(passphrase.expose_secret().to_owned());
                let unlocked = key
                    .decrypt(passphrase)
                    .map_err(|_| Error::new(format!("wrong passphrase for {}", source.label())))?;
                let public = Publics::known(public.get().to_vec());
                let text = std::mem::replace(&mut ssh.text, SecretBytes::new(Vec::new()));
                *loaded = Loaded::Ready {
                    ids: vec![Box::new(age::ssh::Identity::Unencrypted(unlocked))],
                    public,
                    ssh: Some(SshKey {
                        text,
                        passphrase: Some(passphrase_copy),
                    }),
                };
            }
            match loaded {
                Loaded::Ready { ids, public, .. } => {
                    let tries = first_tries(ids, public, order);
                    let refs: Vec<&dyn age::Identity> =
                        tries.iter().map(|t| t as &dyn age::Identity).collect();
                    match envelope::decrypt(ciphertext, &refs) {
                        Ok(plain) => {
                            self.last_used = Some(i);
                            return Ok(plain);
                        }
                        Err(OpenError::NoMatchingKey) => {
                            tried.push(format!("{} (not a recipient)", source.label()))
                        }
                        Err(OpenError::Damaged(why)) => {
                            return Err(Error::new(format!("cannot decrypt {what}: {why}")));
                        }
                    }
                }
                Loaded::Unavailable(why) => tried.push(format!("{} ({why})", source.label())),
                Loaded::Locked { .. } => unreachable!("unlocked above"),
            }
        }
        Err(Error::new(format!("no identity opens {what}; tried: {}", tried.join(", "))).with_hint(
            "pass your key with -i FILE; or propose your public key (`vault whoami` prints it) as recipients/ENV/YOURNAME.pub, and read its fingerprint to a member, who runs `vault grant ENV YOURNAME --fingerprint SHA256:...`",
        ))
    }

    /// What opened the last file decrypted, for `-v`.
    pub fn last_used(&self) -> Option<String> {
        self.last_used.map(|i| self.sources[i].0.label())
    }

    /// The first identity that is there and usable, with its public keys.
    pub fn current(&mut self) -> Result<Option<(Source, Vec<PublicKey>)>> {
        for i in 0..self.sources.len() {
            self.load(i)?;
            let (source, loaded) = &self.sources[i];
            match loaded {
                Some(Loaded::Ready { public, .. } | Loaded::Locked { public, .. }) => {
                    return Ok(Some((source.clone(), public.get().to_vec())));
                }
                _ => continue,
            }
        }
        Ok(None)
    }

    /// A key to sign with, whose fingerprint is in `allowed`: the identities in order
    /// (an SSH key file or the keyring's key), then ssh-agent. `what` names the
    /// environment in errors.
    pub fn signer(&mut self, allowed: &BTreeSet<String>, what: &str) -> Result<Signer> {
        let mut age_only = false;
        for i in 0..self.sources.len() {
            self.load(i)?;
            let (source, loaded) = &mut self.sources[i];
            let (public, ssh) = match loaded {
                Some(Loaded::Ready { public, ssh, .. }) => (public, ssh.as_mut()),
                Some(Loaded::Locked { public, ssh, .. }) => (public, Some(ssh)),
                _ => continue,
            };
            let member = public
                .get()
                .iter()
                .any(|p| allowed.contains(&p.fingerprint()));
            match ssh {
                Some(ssh) if member => return unlock_signer(&source.label(), ssh),
                None if member => age_only = true,
                _ => {}
            }
        }
        // A named SSH key signs alone; a named age identity cannot sign, so the agent's
        // keys (which the user loaded) may.
        let agent = if self.explicit && !age_only {
            vec![]
        } else {
            signing::agent_keys()
        };
        for (key, fp) in agent {
            if allowed.contains(&fp) {
                return signing::agent_signer(key);
            }
        }
        if age_only {
            return Err(Error::new(format!(
                "{what}: age X25519 identities (deploy keys) can read but not write: every write is signed with a member's SSH key"
            ))
            .with_hint("write with your ssh-ed25519 or ssh-rsa key (-i FILE, the keyring, ~/.ssh, or ssh-agent)"));
        }
        Err(Error::new(format!(
            "{what}: none of your keys is a granted member, so you cannot write"
        ))
        .with_hint(format!(
            "a member grants your key with `vault grant {what} NAME --fingerprint SHA256:...`"
        )))
    }

    /// Every source with what became of it, for `whoami` when none is usable.
    pub fn report(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for i in 0..self.sources.len() {
            self.load(i)?;
            let (source, loaded) = &self.sources[i];
            let state = match loaded {
                Some(Loaded::Unavailable(why)) => why.clone(),
                _ => "usable".into(),
            };
            out.push(format!("{} ({state})", source.label()));
        }
        Ok(out)
    }

    fn load(&mut self, i: usize) -> Result<()> {
        if self.sources[i].1.is_some() {
            return Ok(());
        }
        let source = &self.sources[i].0;
        let loaded = match source {
            Source::File(path) => match std::fs::read(path) {
                Ok(bytes) => {
                    let bytes = SecretBytes::new(bytes);
                    // An explicitly named identity must be usable: say why not, now.
                    match parse(&bytes, &path.display().to_string()) {
                        Loaded::Unavailable(why) => {
                            return Err(Error::new(format!("identity {}: {why}", path.display())))
                        }
                        l => l,
                    }
                }
                Err(e) => return Err(Error::io("cannot read identity", path, e)),
            },
            Source::DefaultSsh(path) => match std::fs::read(path) {
                Ok(bytes) => parse(&SecretBytes::new(bytes), &path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Loaded::Unavailable("not found".into())
                }
                Err(e) => Loaded::Unavailable(e.to_string()),
            },
            Source::Keyring => match keystore::load() {
                Ok(Some(key)) => parse(
                    &SecretBytes::new(key.expose_secret().as_bytes().to_vec()),
                    keystore::NAME,
                ),
                Ok(None) => Loaded::Unavailable("no identity stored".into()),
                Err(why) => Loaded::Unavailable(format!("unavailable: {why}")),
            },
        };
        self.sources[i].1 = Some(loaded);
        Ok(())
    }
}

/// Reads an age identity file or an OpenSSH private key.
fn parse(bytes: &SecretBytes, label: &str) -> Loaded {
    let Ok(text) = std::str::from_utf8(bytes.expose()) else {
        return Loaded::Unavailable("not an age identity file or OpenSSH private key".into());
    };
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
        || text.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        let public = ssh_key::PrivateKey::from_openssh(text)
            .ok()
            .and_then(|k| k.public_key().to_openssh().ok())
            .and_then(|line| PublicKey::parse(&line).ok())
            .into_iter()
            .collect::<Vec<_>>();
        let public = Publics::known(public);
        return match age::ssh::Identity::from_buffer(text.as_bytes(), Some(label.to_string())) {
            Ok(age::ssh::Identity::Unencrypted(k)) => Loaded::Ready {
                ids: vec![Box::new(age::ssh::Identity::Unencrypted(k))],
                public,
                ssh: Some(SshKey {
                    text: SecretBytes::new(bytes.expose().to_vec()),
                    passphrase: None,
                }),
            },
            Ok(age::ssh::Identity::Encrypted(key)) => Loaded::Locked {
                key,
                public,
                ssh: SshKey {
                    text: SecretBytes::new(bytes.expose().to_vec()),
                    passphrase: None,
                },
            },
            Ok(age::ssh::Identity::Unsupported(_)) => Loaded::Unavailable(
                "unsupported SSH key type (vault reads ssh-ed25519 and ssh-rsa keys)".into(),
            ),
            Err(_) => Loaded::Unavailable("malformed OpenSSH private key".into()),
        };
    }
    let mut ids: Vec<Box<dyn age::Identity>> = Vec::new();
    let mut x25519 = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match age::x25519::Identity::from_str(line) {
            Ok(id) => {
                x25519.push(id.clone());
                ids.push(Box::new(id));
            }
            Err(_) => {
                return Loaded::Unavailable(
                    "not an age identity file or OpenSSH private key".into(),
                )
            }
        }
    }
    if ids.is_empty() {
        return Loaded::Unavailable("no identity in the file".into());
    }
    Loaded::Ready {
        ids,
        public: Publics {
            keys: std::sync::OnceLock::new(),
            x25519,
        },
        ssh: None,
    }
}

/// Each of `ids` with the stanza `order` says is its own. Only X25519 identities gain:
/// age tells an SSH key's stanza by its tag, without a key agreement.
fn first_tries<'a>(
    ids: &'a [Box<dyn age::Identity>],
    public: &Publics,
    order: &[&str],
) -> Vec<envelope::FirstTry<'a>> {
    let keys = match public.x25519.is_empty() || order.is_empty() {
        true => &[][..],
        false => public.get(),
    };
    let stanza = |i: usize| {
        let key = keys.get(i).filter(|_| keys.len() == ids.len())?;
        order.iter().position(|fp| *fp == key.fingerprint_str())
    };
    ids.iter()
        .enumerate()
        .map(|(i, id)| envelope::FirstTry {
            identity: id.as_ref(),
            stanza: stanza(i),
        })
        .collect()
}

/// Parses an SSH key for signing, asking for its passphrase once if it has one.
fn unlock_signer(label: &str, ssh: &mut SshKey) -> Result<Signer> {
    let text = std::str::from_utf8(ssh.text.expose())
        .map_err(|_| Error::new(format!("{label}: not text")))?;
    let key = ssh_key::PrivateKey::from_openssh(text).map_err(|_| {
        Error::new(format!(
            "{label}: this key type cannot sign (vault signs with OpenSSH ed25519 and rsa keys)"
        ))
    })?;
    if !key.is_encrypted() {
        return Ok(Signer::Key(Box::new(key)));
    }
    if ssh.passphrase.is_none() {
        ssh.passphrase = Some(ask_passphrase(label)?);
    }
    let pass = ssh.passphrase.as_ref().expect("set above");
    let key = key
        .decrypt(pass.expose_secret())
        .map_err(|_| Error::new(format!("wrong passphrase for {label}")))?;
    Ok(Signer::Key(Box::new(key)))
}

/// Asks for a key's passphrase on the terminal; an error when there is none.
fn ask_passphrase(label: &str) -> Result<SecretString> {
    let no_tty = || {
        Error::new(format!(
            "{label} is passphrase-protected and there is no terminal to ask for its passphrase"
        ))
        .with_hint("run vault from a terminal, or pass an unprotected identity with -i FILE")
    };
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Err(no_tty());
    }
    let pass = rpassword::prompt_password(format!("Enter passphrase for {label}: "))
        .map_err(|_| no_tty())?;
    Ok(SecretString::from(pass))
}

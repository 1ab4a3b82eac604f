//! `vault keygen`: a new ed25519 key, kept in the OS keyring or a 0600 file.

use crate::error::{Error, Result};
use crate::keys::keystore;
use crate::keys::recipients::PublicKey;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where the new private key goes.
pub enum Destination<'a> {
    Keyring,
    File(&'a Path),
}

/// Makes a key, stores its private part, and returns the public key.
pub fn keygen(dest: Destination<'_>, comment: &str) -> Result<PublicKey> {
    let mut key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .map_err(|e| Error::new(format!("cannot make a key: {e}")))?;
    key.set_comment(comment);
    let private = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| Error::new(format!("cannot encode the key: {e}")))?;
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::new(format!("cannot encode the key: {e}")))?;
    if let Destination::File(path) = dest {
        // Check both names first, so a refusal leaves no half-written key behind.
        for p in [path.to_path_buf(), pub_path(path)] {
            if p.exists() {
                return Err(Error::new(format!(
                    "{} already exists; not overwriting it",
                    p.display()
                )));
            }
        }
    }
    match dest {
        Destination::Keyring => keystore::store_new(&private).map_err(|why| {
            Error::new(format!("cannot store the key in {}: {why}", keystore::NAME))
                .with_hint("no keyring here (the usual case over SSH or on a server): an existing ~/.ssh/id_ed25519 works as it is (`vault whoami` shows it); `vault keygen --file ~/.ssh/vault_ed25519` writes a key file; or start a keyring session: `dbus-run-session -- sh -c 'read -rs P; printf %s \"$P\" | gnome-keyring-daemon --unlock >/dev/null; vault keygen'`")
        })?,
        Destination::File(path) => make_parent(path)
            .and_then(|()| write_new(path, private.as_bytes(), 0o600))
            .and_then(|()| write_new(&pub_path(path), format!("{public_line}\n").as_bytes(), 0o644))?,
    }
    PublicKey::parse(&public_line).map_err(Error::new)
}

fn pub_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    s.into()
}

/// Creates the key's missing folder, 0700, as ssh-keygen does for a fresh `~/.ssh`.
fn make_parent(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("cannot create", dir, e)),
        _ => Ok(()),
    }
}

/// Creates `path` with `mode`, refusing to replace anything.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::new(format!(
                    "{} already exists; not overwriting it",
                    path.display()
                ))
            } else {
                Error::io("cannot create", path, e)
            }
        })?;
    if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
        let _ = std::fs::remove_file(path);
        return Err(Error::io("cannot write", path, e));
    }
    Ok(())
}

//! An attacker's tools, as one with repository write access but no membership has them:
//! public keys, `age`, and `ssh-keygen -Y sign` with a key of their own.

use super::{key, run_with_input};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private key file the attacker holds, with the mode ssh-keygen insists on.
pub fn attacker_key(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join(name);
    std::fs::copy(key(name), &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

/// `ssh-keygen -Y sign -n NAMESPACE` over `text` with `key`: the armored signature.
pub fn ssh_sign(key: &Path, namespace: &str, text: &str) -> String {
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-Y", "sign", "-n", namespace, "-f"]).arg(key);
    run_with_input(c, text.as_bytes()).success().stdout()
}

/// A sidecar the attacker signs: the manifest text and its SSH signature.
pub fn sidecar(key: &Path, manifest: &str) -> String {
    format!("{manifest}{}", ssh_sign(key, "vault", manifest))
}

/// A grant's signature in one line, as a manifest's recipient line holds it.
pub fn grant_line(key: &Path, message: &str) -> String {
    ssh_sign(key, "vault-grant", message)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// `age -a` encryption of `plain` to the public key lines given.
pub fn age_encrypt(recipients: &[String], plain: &[u8]) -> Vec<u8> {
    let mut c = Command::new("age");
    c.arg("-a");
    for r in recipients {
        c.args(["-r", r.trim()]);
    }
    run_with_input(c, plain).success().0.stdout
}

/// A fixture's public key line.
pub fn pub_line(file: &str) -> String {
    std::fs::read_to_string(key(file)).unwrap()
}

/// `sha256:<hex>`, as manifests name ciphertexts and each other.
pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The manifest text of a sidecar (every byte before its signature).
pub fn manifest_of(sidecar: &[u8]) -> String {
    let text = String::from_utf8(sidecar.to_vec()).unwrap();
    let at = text.find("-----BEGIN SSH SIGNATURE-----").unwrap();
    text[..at].to_string()
}

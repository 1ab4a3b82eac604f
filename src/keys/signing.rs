//! SSH signatures (SSHSIG, as `ssh-keygen -Y sign` makes them) by a member's key, held
//! in a file, the OS keyring or ssh-agent; and their verification.

use crate::error::{Error, Result};
use crate::keys::recipients::PublicKey;
use ssh_key::{HashAlg, SshSig};

/// Namespace of the sidecar's signature (`ssh-keygen -Y verify -n vault`).
pub const NAMESPACE: &str = "vault";
/// Namespace of grant signatures inside the manifest.
pub const GRANT_NAMESPACE: &str = "vault-grant";

/// A key that can sign: a private key in memory, or one held by ssh-agent.
pub enum Signer {
    Key(Box<ssh_key::PrivateKey>),
    Agent {
        client: Box<ssh_agent_client_rs::Client>,
        key: ssh_key::PublicKey,
    },
}

impl Signer {
    /// The signer's public key.
    pub fn public(&self) -> Result<PublicKey> {
        let key = match self {
            Signer::Key(k) => k.public_key().clone(),
            Signer::Agent { key, .. } => key.clone(),
        };
        let line = key
            .to_openssh()
            .map_err(|e| Error::new(format!("cannot encode a public key: {e}")))?;
        PublicKey::parse(&line).map_err(Error::new)
    }

    pub fn sign(&mut self, namespace: &str, msg: &[u8]) -> Result<SshSig> {
        let fail = |e: &dyn std::fmt::Display| Error::new(format!("cannot sign: {e}"));
        match self {
            Signer::Key(k) => match k.key_data() {
                ssh_key::private::KeypairData::Rsa(rsa) => {
                    let data = SshSig::signed_data(namespace, HashAlg::Sha512, msg)
                        .map_err(|e| fail(&e))?;
                    let signature = rsa_sign(rsa, &data).map_err(|e| fail(&e))?;
                    SshSig::new(
                        k.public_key().key_data().clone(),
                        namespace,
                        HashAlg::Sha512,
                        signature,
                    )
                    .map_err(|e| fail(&e))
                }
                _ => k
                    .sign(namespace, HashAlg::Sha512, msg)
                    .map_err(|e| fail(&e)),
            },
            Signer::Agent { client, key } => {
                let data =
                    SshSig::signed_data(namespace, HashAlg::Sha512, msg).map_err(|e| fail(&e))?;
                let signature = client.sign(key.clone(), &data).map_err(|e| fail(&e))?;
                SshSig::new(
                    key.key_data().clone(),
                    namespace,
                    HashAlg::Sha512,
                    signature,
                )
                .map_err(|e| fail(&e))
            }
        }
    }
}

/// rsa-sha2-512 by hand: ssh-key 0.6 builds the RSA private key from the wrong primes
/// (p twice), so its own RSA signing always fails.
fn rsa_sign(
    kp: &ssh_key::private::RsaKeypair,
    data: &[u8],
) -> std::result::Result<ssh_key::Signature, String> {
    use rsa::signature::{SignatureEncoding, Signer as _};
    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or_else(|| "malformed RSA key".to_string())
    };
    let key = rsa::RsaPrivateKey::from_components(
        int(&kp.public.n)?,
        int(&kp.public.e)?,
        int(&kp.private.d)?,
        vec![int(&kp.private.p)?, int(&kp.private.q)?],
    )
    .map_err(|e| e.to_string())?;
    let signing = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(key);
    let sig = signing.try_sign(data).map_err(|e| e.to_string())?;
    ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        sig.to_vec(),
    )
    .map_err(|e| e.to_string())
}

/// Keys in ssh-agent (`$SSH_AUTH_SOCK`), none when there is no agent.
pub fn agent_keys() -> Vec<(ssh_key::PublicKey, String)> {
    let Some(sock) = std::env::var_os("SSH_AUTH_SOCK") else {
        return Vec::new();
    };
    let Ok(mut client) = ssh_agent_client_rs::Client::connect(std::path::Path::new(&sock)) else {
        return Vec::new();
    };
    client
        .list_all_identities()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| match id {
            ssh_agent_client_rs::Identity::PublicKey(k) => Some(k.into_owned()),
            _ => None,
        })
        .filter_map(|k| {
            let fp = PublicKey::parse(&k.to_openssh().ok()?).ok()?.fingerprint();
            Some((k, fp))
        })
        .collect()
}

/// A signer for the agent key with fingerprint `fp`.
pub fn agent_signer(key: ssh_key::PublicKey) -> Result<Signer> {
    let sock = std::env::var_os("SSH_AUTH_SOCK")
        .ok_or_else(|| Error::new("no ssh-agent (SSH_AUTH_SOCK is not set)"))?;
    let client = ssh_agent_client_rs::Client::connect(std::path::Path::new(&sock))
        .map_err(|e| Error::new(format!("cannot reach ssh-agent: {e}")))?;
    Ok(Signer::Agent {
        client: Box::new(client),
        key,
    })
}

/// Checks `sig` over `msg` in `namespace`; returns the signer's fingerprint.
pub fn verify(namespace: &str, msg: &[u8], sig: &SshSig) -> std::result::Result<String, String> {
    let key = ssh_key::PublicKey::from(sig.public_key().clone());
    key.verify(namespace, msg, sig)
        .map_err(|_| "the signature does not match".to_string())?;
    Ok(key.fingerprint(HashAlg::Sha256).to_string())
}

/// An SSHSIG on one line (the PEM body without its armor and line breaks).
pub fn to_line(sig: &SshSig) -> Result<String> {
    let pem = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| Error::new(format!("cannot encode a signature: {e}")))?;
    Ok(pem.lines().filter(|l| !l.starts_with("-----")).collect())
}

pub fn from_line(line: &str) -> std::result::Result<SshSig, String> {
    let mut pem = String::from("-----BEGIN SSH SIGNATURE-----\n");
    for chunk in line.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).map_err(|_| "malformed signature")?);
        pem.push('\n');
    }
    pem.push_str("-----END SSH SIGNATURE-----\n");
    SshSig::from_pem(pem).map_err(|_| "malformed signature".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_one_line_form() {
        let text = include_str!("../../tests/fixtures/keys/alice_ed25519");
        let mut s = Signer::Key(Box::new(ssh_key::PrivateKey::from_openssh(text).unwrap()));
        let sig = s.sign(NAMESPACE, b"hello").unwrap();
        let fp = verify(NAMESPACE, b"hello", &sig).unwrap();
        assert_eq!(fp, s.public().unwrap().fingerprint());
        assert!(verify(NAMESPACE, b"hellO", &sig).is_err());
        assert!(verify(GRANT_NAMESPACE, b"hello", &sig).is_err());
        let line = to_line(&sig).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(from_line(&line).unwrap(), sig);
        let rsa = include_str!("../../tests/fixtures/keys/carol_rsa");
        let mut r = Signer::Key(Box::new(ssh_key::PrivateKey::from_openssh(rsa).unwrap()));
        let sig = r.sign(NAMESPACE, b"x").unwrap();
        assert_eq!(
            verify(NAMESPACE, b"x", &sig).unwrap(),
            r.public().unwrap().fingerprint()
        );
    }
}

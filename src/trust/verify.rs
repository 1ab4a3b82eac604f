//! One sidecar checked against its ciphertext, its environment's recipients folder and
//! what is trusted already.

use super::{ciphertext_hash, trusted_roster, SeenEnv, Verified};
use crate::keys::recipients::Member;
use crate::keys::signing;
use crate::manifest::{self, Manifest};
use crate::project::EnvName;

/// Checks a sidecar against its ciphertext. `anchors` are the fingerprints trusted
/// already (what this machine saw, or the previous version in git); without them the
/// roster is trusted on first use from its founders.
pub fn verify(
    env: &EnvName,
    ciphertext: &[u8],
    sidecar: Option<&[u8]>,
    folder: &[Member],
    anchors: Option<&SeenEnv>,
) -> std::result::Result<Verified, String> {
    let sidecar = sidecar.ok_or("unsigned: the signature file secrets.sls.age.sig is missing")?;
    let text = std::str::from_utf8(sidecar).map_err(|_| "the signature file is not text")?;
    let (signed, armored) =
        manifest::split(text).map_err(|why| format!("the signature file is malformed: {why}"))?;
    let sig =
        ssh_key::SshSig::from_pem(armored.trim_end()).map_err(|_| "the signature is malformed")?;
    let signer = signing::verify(signing::NAMESPACE, signed.as_bytes(), &sig)
        .map_err(|_| "the signature does not match the manifest (forged or altered)")?;
    let m = Manifest::parse(signed).map_err(|why| format!("the manifest is malformed: {why}"))?;
    if m.environment != env.as_str() {
        return Err(format!(
            "the file is signed for environment '{}', not '{env}' (swapped files?)",
            m.environment
        ));
    }
    if m.ciphertext != ciphertext_hash(ciphertext) {
        return Err("the signature is for another ciphertext: secrets.sls.age was replaced or altered after it was signed".into());
    }
    let in_folder = |fp: &str| {
        folder
            .iter()
            .find(|mem| mem.keys.iter().any(|k| k.fingerprint() == fp))
    };
    let Some(member) = in_folder(&signer) else {
        return Err(format!(
            "signed by {signer}, who is not a member of {env} (no key in recipients/{env}/)"
        ));
    };
    let trusted = trusted_roster(&m, anchors)?;
    if !m.roster.iter().any(|r| r.fingerprint == signer) {
        return Err(format!(
            "signed by {} ({signer}), whose key was never granted in {env}",
            member.name
        ));
    }
    if !trusted.contains(&signer) {
        return Err(format!(
            "signed by {} ({signer}), whose grant does not trace back to a member this machine trusts",
            member.name
        ));
    }
    if let Some(seen) = anchors {
        // An older version is what another git branch holds, and is read. It is a
        // rollback when it lets in a key this machine has seen leave the roster.
        let readmitted: Vec<&str> = m
            .roster
            .iter()
            .filter(|r| !seen.roster.contains(&r.fingerprint))
            .map(|r| r.member.as_str())
            .collect();
        if m.serial < seen.serial && !readmitted.is_empty() {
            return Err(format!(
                "rollback: serial {} is older than serial {} already seen for {env}, and lets in {}, removed since",
                m.serial,
                seen.serial,
                readmitted.join(", ")
            ));
        }
    }
    Ok(Verified {
        manifest: m,
        signer,
        signer_member: member.name.clone(),
        trusted,
    })
}

//! One sidecar checked against its ciphertext, its environment's recipients folder and
//! what is trusted already.

use super::{ciphertext_hash, trusted_roster, SeenEnv, Verified};
use crate::keys::recipients::Member;
use crate::keys::signing;
use crate::manifest::{self, Manifest};
use crate::project::EnvName;
use crate::project_id::ProjectId;
use std::collections::BTreeSet;

/// How a refusal says that a founding is a stranger's to this machine: the reader has
/// verified no key that vouches for it (a newcomer's first read, before `vault trust`).
pub const UNVERIFIED_FOUNDER: &str = "a key this machine has not verified";

/// What a sidecar is held against beyond its own files.
#[derive(Default, Clone, Copy)]
pub struct Context<'a> {
    /// What is trusted already for this environment: what this machine saw, or the
    /// version before it in git. None: first use.
    pub seen: Option<&'a SeenEnv>,
    /// The project identity the manifest must name. None: not checked (a project
    /// written before identities).
    pub project: Option<&'a ProjectId>,
    /// On first use, the keys this user verified: a roster founded and signed by none of
    /// them is refused. None: the founders are trusted (the CI gate, which anchors on the
    /// first version in the history instead).
    pub verified_keys: Option<&'a BTreeSet<String>>,
}

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
    let ctx = Context {
        seen: anchors,
        ..Context::default()
    };
    verify_in(env, ciphertext, sidecar, folder, &ctx)
}

/// Checks a sidecar against its ciphertext, its folder, and `ctx`.
pub fn verify_in(
    env: &EnvName,
    ciphertext: &[u8],
    sidecar: Option<&[u8]>,
    folder: &[Member],
    ctx: &Context<'_>,
) -> std::result::Result<Verified, String> {
    let (m, signer) = signed(sidecar)?;
    belongs(env, &m, ciphertext, ctx)?;
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
    if let Some(seen) = ctx.seen {
        no_old_grants(&m, seen)?;
    }
    let trusted = trusted_roster(&m, ctx.seen)?;
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
    // In the current format every reader is vouched for: a line no trusted member
    // granted is a reader slipped in, whoever signed the rest.
    if m.project.is_some() {
        if let Some(r) = m.roster.iter().find(|r| !trusted.contains(&r.fingerprint)) {
            return Err(format!(
                "lets in {} ({}), whose grant does not trace back to a member this machine trusts",
                r.member, r.fingerprint
            ));
        }
    }
    match (ctx.seen, ctx.verified_keys) {
        (Some(seen), _) => no_rollback(env, &m, seen)?,
        (None, Some(keys)) => rooted_in(env, &m, &signer, &trusted, keys)?,
        (None, None) => {}
    }
    Ok(Verified {
        manifest: m,
        signer,
        signer_member: member.name.clone(),
        trusted,
    })
}

/// The manifest a sidecar signs, and the signer's fingerprint.
fn signed(sidecar: Option<&[u8]>) -> std::result::Result<(Manifest, String), String> {
    let sidecar = sidecar.ok_or("unsigned: the signature file secrets.sls.age.sig is missing")?;
    let text = std::str::from_utf8(sidecar).map_err(|_| "the signature file is not text")?;
    let (signed, armored) =
        manifest::split(text).map_err(|why| format!("the signature file is malformed: {why}"))?;
    let sig =
        ssh_key::SshSig::from_pem(armored.trim_end()).map_err(|_| "the signature is malformed")?;
    let signer = signing::verify(signing::NAMESPACE, signed.as_bytes(), &sig)
        .map_err(|_| "the signature does not match the manifest (forged or altered)")?;
    let m = Manifest::parse(signed).map_err(|why| format!("the manifest is malformed: {why}"))?;
    Ok((m, signer))
}

/// The manifest is this project's, this environment's, and this ciphertext's.
fn belongs(
    env: &EnvName,
    m: &Manifest,
    ciphertext: &[u8],
    ctx: &Context<'_>,
) -> std::result::Result<(), String> {
    let expected = ctx.project.or(ctx.seen.and_then(|s| s.project.as_ref()));
    match (expected, &m.project) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            return Err(format!(
                "the file is signed for another project ({theirs}), not this one ({ours})"
            ));
        }
        (_, None) if ctx.seen.is_some_and(|s| s.v2) => {
            return Err(format!(
                "the file is in vault's old format (manifest v1), older than the one already seen for {env} (a downgrade)"
            ));
        }
        _ => {}
    }
    if m.environment != env.as_str() {
        return Err(format!(
            "the file is signed for environment '{}', not '{env}' (swapped files?)",
            m.environment
        ));
    }
    if m.ciphertext != ciphertext_hash(ciphertext) {
        return Err("the signature is for another ciphertext: secrets.sls.age was replaced or altered after it was signed".into());
    }
    Ok(())
}

/// No entry brings back a key that left the roster with a grant from before it left,
/// and a version that follows the one trusted adds keys only by grants of its own.
fn no_old_grants(m: &Manifest, seen: &SeenEnv) -> std::result::Result<(), String> {
    let follows = m.parents.len() == 1 && m.parents.first() == seen.id.as_ref();
    for r in &m.roster {
        let granted_at = r.serial.unwrap_or(0);
        if let Some(left) = seen.removed.get(&r.fingerprint) {
            if granted_at <= *left {
                return Err(format!(
                    "lets in {} ({}), whose key left the roster at serial {left}, with a grant from serial {granted_at}: an old grant cannot bring a key back; a member grants it anew",
                    r.member, r.fingerprint
                ));
            }
        }
        if follows && !seen.roster.contains(&r.fingerprint) && r.serial != Some(m.serial) {
            return Err(format!(
                "lets in {} ({}) with a grant from serial {granted_at}, not one made by this version (serial {}): an old grant line copied in",
                r.member, r.fingerprint, m.serial
            ));
        }
    }
    Ok(())
}

/// An older version is what another git branch holds, and is read. It is a rollback
/// when it lets in a key this machine has seen leave the roster.
fn no_rollback(env: &EnvName, m: &Manifest, seen: &SeenEnv) -> std::result::Result<(), String> {
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
    Ok(())
}

/// On first use, the roster must be rooted in a key this user verified: its founder (the
/// one self-granted line), or the key that signed this very version. A granter further
/// down the chain proves nothing: a grant line of theirs can be copied into anyone's
/// roster, and a key that is only granted in a roster anyone can put there.
fn rooted_in(
    env: &EnvName,
    m: &Manifest,
    signer: &str,
    trusted: &BTreeSet<String>,
    keys: &BTreeSet<String>,
) -> std::result::Result<(), String> {
    let founder = m
        .roster
        .iter()
        .find(|r| r.granted_by == r.fingerprint && trusted.contains(&r.fingerprint));
    if keys.contains(signer) || founder.is_some_and(|f| keys.contains(&f.fingerprint)) {
        return Ok(());
    }
    let founders: Vec<String> = m
        .roster
        .iter()
        .filter(|r| r.granted_by == r.fingerprint)
        .map(|r| format!("{} ({})", r.member, r.fingerprint))
        .collect();
    let founder_fp = m
        .roster
        .iter()
        .find(|r| r.granted_by == r.fingerprint)
        .map_or(signer, |r| r.fingerprint.as_str());
    Err(format!(
        "{env} was founded by {}, {UNVERIFIED_FOUNDER}; check that fingerprint with them over a second channel, then run `vault trust {env} --fingerprint {founder_fp}`",
        if founders.is_empty() { signer.to_string() } else { founders.join(", ") }
    ))
}

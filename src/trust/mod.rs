//! Whether an environment's secrets are authentic and fresh, decided before they are
//! decrypted: `verify` checks a sidecar (signature, ciphertext, environment, signer,
//! serial), `roster` traces its grants to trusted members, and `memory` is what this
//! machine has seen.

pub mod approval;
mod memory;
mod roster;
mod verify;

pub use memory::{state_dir, SeenStore};
pub use roster::trusted_roster;
pub use verify::{verify, verify_in, Context, UNVERIFIED_FOUNDER};

use crate::manifest::Manifest;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// `sha256:<hex>` of a ciphertext.
pub fn ciphertext_hash(ciphertext: &[u8]) -> String {
    let digest = Sha256::digest(ciphertext);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A sidecar that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// The signer's fingerprint and member name.
    pub signer: String,
    pub signer_member: String,
    /// Fingerprints of the roster traced to trusted members.
    pub trusted: BTreeSet<String>,
}

/// The highest serial and the trusted roster this machine has seen for one environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenEnv {
    pub serial: u64,
    pub roster: BTreeSet<String>,
    /// The id of the manifest last verified at that serial (None: not known).
    pub id: Option<String>,
    /// Keys seen to leave the roster, with the serial of the version that left them
    /// out: an entry granted at or before it cannot bring the key back.
    pub removed: std::collections::BTreeMap<String, u64>,
    /// A version 2 manifest has been seen: a version 1 one now is a downgrade.
    pub v2: bool,
    /// The project identity the versions seen were signed for: no other is accepted,
    /// even where the checkout's own identity file is gone.
    pub project: Option<crate::project_id::ProjectId>,
}

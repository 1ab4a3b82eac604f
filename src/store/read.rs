//! Reading an environment's pair (ciphertext and signed sidecar) and deciding whether to
//! trust it: the one reader every command goes through, with or without a [`Store`].

use crate::envelope::MAX_CIPHERTEXT_BYTES;
use crate::error::Result;
use crate::fs::read_limited;
use crate::keys::recipients::Member;
use crate::manifest::{self, Manifest, MAX_SIDECAR_BYTES};
use crate::project::{EnvName, Project};
use crate::trust::{self, SeenEnv, SeenStore, Verified};

/// An environment's two files: its ciphertext, and the sidecar signing it (None when
/// the sidecar is missing: unsigned).
pub struct Pair {
    pub ciphertext: Vec<u8>,
    pub sidecar: Option<Vec<u8>>,
}

impl Pair {
    /// `env`'s files as they are on disk, size-limited; None when it has no secrets file
    /// yet. Neither confined nor waited for: [`Store::read_env`](super::Store::read_env) does both.
    pub fn read(project: &Project, env: &EnvName) -> Result<Option<Pair>> {
        let Some(ciphertext) = read_limited(&project.secrets_path(env), MAX_CIPHERTEXT_BYTES)?
        else {
            return Ok(None);
        };
        let sidecar = read_limited(&project.sidecar_path(env), MAX_SIDECAR_BYTES)?;
        Ok(Some(Pair {
            ciphertext,
            sidecar,
        }))
    }

    /// The manifest the sidecar carries, not verified: for showing, never for trusting.
    pub fn manifest(&self) -> Option<Manifest> {
        self.sidecar.as_deref().and_then(signed_manifest)
    }

    /// Checks the sidecar against the ciphertext, `folder` (the environment's members)
    /// and `anchors` (what is trusted already); see [`trust::verify`].
    pub fn verify(
        &self,
        env: &EnvName,
        folder: &[Member],
        anchors: Option<&SeenEnv>,
    ) -> std::result::Result<Verified, String> {
        trust::verify(
            env,
            &self.ciphertext,
            self.sidecar.as_deref(),
            folder,
            anchors,
        )
    }
}

/// The manifest a sidecar's bytes carry (its signature neither checked nor needed), or
/// None when they are not a well-formed sidecar.
pub fn signed_manifest(sidecar: &[u8]) -> Option<Manifest> {
    let text = std::str::from_utf8(sidecar).ok()?;
    let (signed, _) = manifest::split(text).ok()?;
    Manifest::parse(signed).ok()
}

/// The roster this machine trusts for `env`, as anchors for reading another version
/// (a git revision, a merge's side): its grants need no checking again, and an older
/// serial is expected there, so none is held against it.
pub fn known_roster(project: &Project, env: &EnvName) -> Option<SeenEnv> {
    SeenStore::load(project).get(env).map(|s| SeenEnv {
        serial: 0,
        roster: s.roster,
    })
}

//! What this machine remembers of each environment it verified: the highest serial, the
//! trusted roster, and the exact pair last verified (so an unchanged pair is not
//! verified again).

use super::{ciphertext_hash, SeenEnv, Verified};
use crate::error::{Error, Result};
use crate::project::{EnvName, Project};
use std::path::PathBuf;

/// This machine's vault state folder: `$XDG_STATE_HOME/vault` (or `~/.local/state/vault`).
pub fn state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|b| b.join("vault"))
}

/// What this machine has seen, per project: `$XDG_STATE_HOME/vault/` (or `~/.local/state/vault/`).
pub struct SeenStore {
    path: Option<PathBuf>,
    data: serde_json::Map<String, serde_json::Value>,
}

impl SeenStore {
    pub fn load(project: &Project) -> SeenStore {
        let Some(base) = state_dir() else {
            return SeenStore {
                path: None,
                data: Default::default(),
            };
        };
        let id = ciphertext_hash(project.root().as_os_str().as_encoded_bytes());
        let path = base.join(format!("seen-{}.json", &id[7..23]));
        let data = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        SeenStore {
            path: Some(path),
            data,
        }
    }

    pub fn get(&self, env: &EnvName) -> Option<SeenEnv> {
        let e = self.data.get(env.as_str())?;
        Some(SeenEnv {
            serial: e.get("serial")?.as_u64()?,
            roster: e
                .get("roster")?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        })
    }

    /// Records a fully verified sidecar (`sidecar` is its bytes): the serial and trusted
    /// roster when newer, and the exact files verified, so an unchanged pair need not be
    /// verified again.
    pub fn record(&mut self, env: &EnvName, v: &Verified, sidecar: &[u8]) -> Result<()> {
        let seen = self.get(env);
        if seen.as_ref().is_some_and(|s| s.serial > v.manifest.serial) {
            return Ok(());
        }
        let sidecar_hash = ciphertext_hash(sidecar);
        if seen.is_some_and(|s| s.serial == v.manifest.serial)
            && self
                .verified(env)
                .is_some_and(|(sc, ct, _)| sc == sidecar_hash && ct == v.manifest.ciphertext)
        {
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        self.data.insert(
            env.as_str().to_string(),
            serde_json::json!({
                "serial": v.manifest.serial,
                "roster": v.trusted.iter().collect::<Vec<_>>(),
                "verified": {
                    "sidecar": sidecar_hash,
                    "ciphertext": v.manifest.ciphertext,
                    "signer": v.signer,
                    "member": v.signer_member,
                },
            }),
        );
        let dir = path.parent().expect("state path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let bytes = serde_json::to_vec_pretty(&self.data).map_err(|e| Error::new(e.to_string()))?;
        crate::fs::write_atomic(path, &bytes, crate::fs::Mode::Private).map(drop)
    }

    /// The last pair of files fully verified for `env`: sidecar hash, ciphertext hash,
    /// and the signer's fingerprint and member name.
    fn verified(&self, env: &EnvName) -> Option<(&str, &str, (&str, &str))> {
        let v = self.data.get(env.as_str())?.get("verified")?;
        let signer = (v.get("signer")?.as_str()?, v.get("member")?.as_str()?);
        Some((
            v.get("sidecar")?.as_str()?,
            v.get("ciphertext")?.as_str()?,
            signer,
        ))
    }

    /// Whether `sidecar` and `ciphertext` are exactly the files last verified for `env`,
    /// and the signer's key is still in its member file: then the signature need not be
    /// checked again (and only that one recipients file is read).
    pub fn unchanged_since_verified(
        &self,
        project: &Project,
        env: &EnvName,
        sidecar: &[u8],
        ciphertext: &[u8],
    ) -> bool {
        let Some((sc, ct, (signer, member))) = self.verified(env) else {
            return false;
        };
        if sc != ciphertext_hash(sidecar)
            || ct != ciphertext_hash(ciphertext)
            || !crate::project::is_member_name(member)
        {
            return false;
        }
        let file = project.recipients_dir(env).join(format!("{member}.pub"));
        if project.confined(&file).is_err() {
            return false;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            return false;
        };
        crate::keys::recipients::parse_file(&text, member)
            .is_ok_and(|keys| keys.iter().any(|k| k.fingerprint() == signer))
    }
}

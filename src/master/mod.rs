//! A salt-master's side of a fleet: what the vault binary installed on the master does
//! when a member's `vault master setup`, `vault master accept` or `vault provision`
//! reaches it over SSH, and when Salt's ext_pillar asks it for one minion's secrets.
//!
//! Everything lives under the master's root (`--remote-root`, `/` on a real master):
//! [`Layout`] names the files, [`Config`] is the root-only record of the project it
//! serves and which environment each accepted minion belongs to (by minion ID, never
//! by grains). `setup` creates an environment's age identity and the trust anchor,
//! `accept` accepts a minion's key by fingerprint, `pillar` serves a minion its
//! environment's secrets after verifying them as a member's machine does, `top` writes
//! the top files that target each environment's minions by ID, and `apply` runs the
//! states through Salt, redacting what it prints.

pub mod accept;
pub mod apply;
pub mod pillar;
pub mod setup;
mod top;

use crate::error::{Error, Result};
use crate::project::EnvName;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where vault keeps its files on a master, under its root.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    fn under(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The vault binary the ext_pillar and the member's runs call.
    pub fn binary(&self) -> PathBuf {
        self.under("usr/local/bin/vault")
    }

    /// vault's root-only folder: the config and each environment's identity.
    pub fn etc(&self) -> PathBuf {
        self.under("etc/vault")
    }

    pub fn config(&self) -> PathBuf {
        self.etc().join("master.json")
    }

    /// The age identity the master decrypts `env` with: root-only, made there, never sent.
    pub fn identity(&self, env: &EnvName) -> PathBuf {
        self.etc().join(format!("{env}.key"))
    }

    /// The master's memory of what it verified (`XDG_STATE_HOME` of its vault runs).
    pub fn state_home(&self) -> PathBuf {
        self.under("var/lib/vault/master")
    }

    /// Where a member's provision ships the project for `env`: a copy holding only
    /// `env`'s ciphertext, never plaintext.
    pub fn project_dir(&self, project: &str, env: &EnvName) -> PathBuf {
        self.under(&format!("srv/vault/{project}/{env}"))
    }

    /// Salt's `extension_modules`: vault's ext_pillar is `pillar/vault.py` in it.
    pub fn extmods(&self) -> PathBuf {
        self.under("srv/vault/extmods")
    }

    /// Where vault's job cache records that a minion returned (beside `extmods`).
    pub fn returns(&self) -> PathBuf {
        self.under("srv/vault/returns")
    }

    /// Salt's config folder on the master, with vault's drop-in in `master.d/`.
    pub fn salt_config_dir(&self) -> PathBuf {
        self.under("etc/salt")
    }

    pub fn dropin(&self) -> PathBuf {
        self.salt_config_dir().join("master.d/vault.conf")
    }
}

/// The top file vault writes into each environment's roots (Salt's `state_top`), beside
/// the project's own `top.sls`, which is read but never served.
pub const TOP_FILE: &str = "vault_top.sls";

/// A minion as `vault master accept` recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub env: String,
    /// The fingerprint of the key that was checked ([`accept::fingerprint`]).
    pub key: String,
}

/// The master's record: the project it serves, its environments, and the environment
/// each accepted minion belongs to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub project: String,
    pub project_id: String,
    pub envs: Vec<String>,
    /// Minion ID to the environment it was accepted for, and its key's fingerprint then.
    pub minions: BTreeMap<String, Member>,
    /// The folder holding Salt's commands (`salt`, `salt-key`); None: found on PATH.
    pub salt_dir: Option<String>,
}

impl Config {
    /// The record; None before the first setup.
    pub fn load(layout: &Layout) -> Result<Option<Config>> {
        let path = layout.config();
        let Some(bytes) = crate::fs::read_limited(&path, 1 << 20)? else {
            return Ok(None);
        };
        let bad = || Error::new(format!("{} is not vault's master record", path.display()));
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let text = |k: &str| v.get(k).and_then(|s| s.as_str()).map(String::from);
        let envs = v.get("envs").and_then(|e| e.as_array()).ok_or_else(bad)?;
        let minions = v
            .get("minions")
            .and_then(|m| m.as_object())
            .ok_or_else(bad)?;
        Ok(Some(Config {
            project: text("project").ok_or_else(bad)?,
            project_id: text("project_id").ok_or_else(bad)?,
            envs: envs
                .iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect(),
            minions: minions
                .iter()
                .filter_map(|(k, m)| {
                    let field = |f: &str| m.get(f)?.as_str().map(String::from);
                    let member = Member {
                        env: field("env")?,
                        key: field("key")?,
                    };
                    Some((k.clone(), member))
                })
                .collect(),
            salt_dir: text("salt_dir"),
        }))
    }

    /// Like [`load`](Self::load), for a master that must have been set up already.
    pub fn required(layout: &Layout) -> Result<Config> {
        Config::load(layout)?.ok_or_else(|| {
            Error::new(format!(
                "this master is not set up for vault ({} is missing)",
                layout.config().display()
            ))
            .with_hint("run `vault master setup ENV HOST` from a member's machine first")
        })
    }

    /// Written root-only, atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let v = serde_json::json!({
            "project": self.project,
            "project_id": self.project_id,
            "envs": self.envs,
            "minions": self.minions.iter().map(|(id, m)| {
                (id.clone(), serde_json::json!({"env": m.env, "key": m.key}))
            }).collect::<serde_json::Map<_, _>>(),
            "salt_dir": self.salt_dir,
        });
        let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::new(e.to_string()))?;
        private_dir(&layout.etc())?;
        crate::fs::write_atomic(&layout.config(), &bytes, crate::fs::Mode::Private).map(drop)
    }

    /// Salt's command `name` (`salt`, `salt-key`) on the master.
    pub fn salt_command(&self, name: &str) -> String {
        match &self.salt_dir {
            Some(d) => Path::new(d).join(name).display().to_string(),
            None => name.to_string(),
        }
    }

    /// The environment `minion` was accepted for.
    pub fn env_of(&self, minion: &str) -> Option<&str> {
        self.minions.get(minion).map(|m| m.env.as_str())
    }

    /// The environment `minion` was accepted for, once the key Salt holds for it now is
    /// the one that was checked: a key accepted by hand under its ID since (another
    /// machine's) is refused.
    pub fn accepted(&self, layout: &Layout, minion: &str) -> Result<Option<&str>> {
        let Some(m) = self.minions.get(minion) else {
            return Ok(None);
        };
        let now = accept::accepted_key(layout, minion)?;
        if now.as_deref() != Some(m.key.as_str()) {
            return Err(Error::new(format!(
                "the key Salt holds for minion {minion} is not the one `vault master accept` checked: it gets nothing"
            ))
            .with_hint(format!(
                "if the minion was rebuilt, read its fingerprint there and `vault master accept {} {minion} --fingerprint FP` again",
                m.env
            )));
        }
        Ok(Some(&m.env))
    }

    /// The environment `env`, when this master serves it.
    pub fn served(&self, env: &str) -> Result<EnvName> {
        if !self.envs.iter().any(|e| e == env) {
            return Err(Error::new(format!(
                "this master is not set up for {env} (it serves {})",
                if self.envs.is_empty() {
                    "none".to_string()
                } else {
                    self.envs.join(", ")
                }
            ))
            .with_hint(format!("run `vault master setup {env} HOST` first")));
        }
        EnvName::parse(env)
    }
}

/// A folder only root enters (made with its parents where missing).
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("cannot restrict", dir, e))
}

/// A minion ID as Salt allows and vault accepts: it names files on the master and goes
/// into top files, so plain characters only.
pub fn check_minion_id(id: &str) -> Result<()> {
    let plain = !id.is_empty()
        && id.len() <= 253
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if plain {
        Ok(())
    } else {
        Err(
            Error::usage(format!("{id:?} is not a minion ID vault accepts")).with_hint(
                "minion IDs are letters, digits, '.', '-' and '_' (as `salt-key -L` lists them)",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_is_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert_eq!(Config::load(&layout).unwrap(), None);
        let c = Config {
            project: "example".into(),
            project_id: "x".into(),
            envs: vec!["staging".into()],
            minions: [(
                "web1".to_string(),
                Member {
                    env: "staging".into(),
                    key: "ab:cd".into(),
                },
            )]
            .into(),
            salt_dir: Some("/opt/salt/bin".into()),
        };
        c.save(&layout).unwrap();
        assert_eq!(Config::load(&layout).unwrap(), Some(c));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&layout.config()), 0o600);
        assert_eq!(mode(&layout.etc()), 0o700);
    }

    #[test]
    fn minion_ids_are_plain() {
        for ok in ["web1", "web-1.staging", "a_b"] {
            assert!(check_minion_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a,b", "a*", "a/b", "a\nb", "L@x"] {
            assert!(check_minion_id(bad).is_err(), "{bad:?}");
        }
    }
}

//! Where things live in a project: the root, environments, and the paths of the layout.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A project root: the directory holding `conf/pillar/`.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    /// The root with its links resolved, once: every confinement check compares with it.
    real_root: std::sync::OnceLock<PathBuf>,
}

/// The name of the committed, encrypted secrets file inside `conf/pillar/<env>/`.
pub const SECRETS_FILE: &str = "secrets.sls.age";

/// The name of its signed sidecar (the manifest and its signature), beside it.
pub const SIDECAR_FILE: &str = "secrets.sls.age.sig";

impl Project {
    /// The nearest ancestor of `start` (inclusive) holding `conf/pillar/`.
    pub fn discover(start: &Path) -> Result<Project> {
        let start = start
            .canonicalize()
            .map_err(|e| Error::io("cannot open directory", start, e))?;
        for dir in start.ancestors() {
            if dir.join("conf").join("pillar").is_dir() {
                return Ok(Project {
                    root: dir.to_path_buf(),
                    // `start` was canonical, so its ancestors are too.
                    real_root: std::sync::OnceLock::from(dir.to_path_buf()),
                });
            }
        }
        Err(Error::new(format!(
            "no vault project in {} or any parent (no conf/pillar/ directory)",
            start.display()
        ))
        .with_hint("run `vault init` to create one, or `-C DIR` to name the project"))
    }

    /// A project rooted exactly at `root`, whether or not it has been initialised yet.
    pub fn at(root: &Path) -> Project {
        Project {
            root: root.to_path_buf(),
            real_root: std::sync::OnceLock::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pillar_dir(&self) -> PathBuf {
        self.root.join("conf").join("pillar")
    }

    pub fn env_pillar_dir(&self, env: &EnvName) -> PathBuf {
        self.pillar_dir().join(env.as_str())
    }

    pub fn secrets_path(&self, env: &EnvName) -> PathBuf {
        self.env_pillar_dir(env).join(SECRETS_FILE)
    }

    pub fn sidecar_path(&self, env: &EnvName) -> PathBuf {
        self.env_pillar_dir(env).join(SIDECAR_FILE)
    }

    /// The secrets file's path relative to the root, as git names it (`rev:./<path>`).
    pub fn git_secrets_path(env: &EnvName) -> String {
        format!("conf/pillar/{env}/{SECRETS_FILE}")
    }

    /// The sidecar's path relative to the root, as git names it.
    pub fn git_sidecar_path(env: &EnvName) -> String {
        format!("conf/pillar/{env}/{SIDECAR_FILE}")
    }

    pub fn recipients_dir(&self, env: &EnvName) -> PathBuf {
        self.root.join("recipients").join(env.as_str())
    }

    /// Refuses `path` when it (or a folder on the way to it) is a symbolic link leading
    /// outside the project: what vault reads and writes must be the project's own files,
    /// not whatever a link planted in a checkout points at. A missing path passes.
    pub fn confined(&self, path: &Path) -> Result<()> {
        let shown = self.display_path(path);
        let real = match path.canonicalize() {
            Ok(real) => real,
            Err(_) if std::fs::symlink_metadata(path).is_ok() => {
                return Err(Error::new(format!(
                    "{shown} is a symbolic link to a missing target; refusing to follow it"
                ))
                .with_hint(format!("remove it: rm {shown}")));
            }
            // Missing: check the nearest folder that exists.
            Err(_) => {
                return match path.parent() {
                    Some(parent) if parent.starts_with(&self.root) && parent != self.root => {
                        self.confined(parent)
                    }
                    _ => Ok(()),
                }
            }
        };
        // Kept only once it resolves: a root made later (by `vault init`) is looked up again.
        let root = match self.real_root.get() {
            Some(real) => real,
            None => match self.root.canonicalize() {
                Ok(real) => self.real_root.get_or_init(|| real),
                Err(_) => &self.root,
            },
        };
        if !real.starts_with(root) {
            return Err(Error::new(format!(
                "{shown} leads outside the project (to {}) through a symbolic link; refusing it",
                real.display()
            ))
            .with_hint(
                "keep recipients and conf/pillar as real files and folders inside the project",
            ));
        }
        Ok(())
    }

    /// A path relative to the root, for messages.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Every environment: a `recipients/<env>/` folder or a `conf/pillar/<env>/` holding
    /// `env.sls` or the secrets file. Sorted; names that are not valid are skipped.
    pub fn environments(&self) -> Result<Vec<EnvName>> {
        let mut found = std::collections::BTreeSet::new();
        for (dir, marker) in [
            (self.root.join("recipients"), None),
            (self.pillar_dir(), Some(())),
        ] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("cannot list", &dir, e)),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Ok(env) = EnvName::parse(&name) else {
                    continue;
                };
                if marker.is_some()
                    && !path.join("env.sls").exists()
                    && !path.join(SECRETS_FILE).exists()
                {
                    continue;
                }
                found.insert(env);
            }
        }
        Ok(found.into_iter().collect())
    }

    /// The member names of `env`'s recipients folder (`recipients/<env>/NAME.pub`), sorted;
    /// read from the file names alone (for completion), so a key that does not parse is
    /// still listed. A missing folder has none.
    pub fn member_names(&self, env: &EnvName) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.recipients_dir(env)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".pub")
                    .map(str::to_owned)
            })
            .filter(|n| is_member_name(n))
            .collect();
        names.sort();
        names
    }

    /// `env` as given on the command line, checked to name an environment of this project.
    pub fn environment(&self, name: &str) -> Result<EnvName> {
        let env = EnvName::parse(name)?;
        if self.recipients_dir(&env).is_dir() || self.secrets_path(&env).exists() {
            return Ok(env);
        }
        let known = self.environments()?;
        let list = if known.is_empty() {
            "none".to_string()
        } else {
            known
                .iter()
                .map(EnvName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hint = match closest(name, known.iter().map(EnvName::as_str)) {
            Some(near) => {
                format!("did you mean {near}? (or create {name} with `vault init --env {name}`)")
            }
            None => format!("create it with `vault init --env {name}`"),
        };
        Err(Error::new(format!("unknown environment '{name}' (known: {list})")).with_hint(hint))
    }
}

/// The one of `names` nearest to `typed`, when it is near enough to be a typo, or the
/// only one `typed` begins (`prod` for `production`).
pub fn closest<'a>(typed: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let names: Vec<&str> = names.collect();
    let longer: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| typed.len() >= 3 && n.len() > typed.len() && n.starts_with(typed))
        .collect();
    if let [only] = longer[..] {
        return Some(only);
    }
    names
        .into_iter()
        .map(|n| (strsim::damerau_levenshtein(typed, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4) && *d < n.len())
        .min()
        .map(|(_, n)| n)
}

/// A valid environment name: `[a-z0-9][a-z0-9_-]*`, never a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvName(String);

impl EnvName {
    pub fn parse(name: &str) -> Result<EnvName> {
        if is_name(name, |c| c == '_' || c == '-') {
            Ok(EnvName(name.to_string()))
        } else {
            Err(Error::usage(format!(
                "invalid environment name '{}': use lowercase letters, digits, '_' and '-', starting with a letter or digit",
                name.escape_debug()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EnvName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Member names: `[a-z0-9][a-z0-9._-]*`.
pub fn is_member_name(name: &str) -> bool {
    is_name(name, |c| c == '.' || c == '_' || c == '-')
}

fn is_name(name: &str, extra: impl Fn(char) -> bool) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_never_paths() {
        for bad in [
            "", "../x", "a/b", "..", ".", "Staging", "-x", "a b", "a.b", "x\0",
        ] {
            assert!(EnvName::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["staging", "production", "qa-2", "eu_west"] {
            assert_eq!(EnvName::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn member_names() {
        assert!(is_member_name("alice"));
        assert!(is_member_name("a.b-c_d9"));
        assert!(!is_member_name(".alice"));
        assert!(!is_member_name("Alice"));
        assert!(!is_member_name("al/ice"));
    }
}

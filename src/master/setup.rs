//! `vault master setup`, on the master: the environment's age identity (made here,
//! root-only, never sent anywhere), the trust anchor the member's machine gave (what
//! that member trusts, so the master's first verification is not trust on first use),
//! vault's ext_pillar module and Salt drop-in, and the record naming the environment.

use super::{private_dir, Config, Layout, TOP_FILE};
use crate::error::{Error, Result};
use crate::project::EnvName;
use crate::project_id::ProjectId;
use age::secrecy::ExposeSecret;
use std::str::FromStr;

/// What the member's machine sends, on standard input (no secret in it).
pub struct Request {
    pub project: String,
    pub project_id: ProjectId,
    pub env: EnvName,
    /// The member's [`anchor`](crate::trust::SeenStore::anchor) for `env`.
    pub anchor: serde_json::Value,
    /// The folder of Salt's commands on the master (None: on PATH).
    pub salt_dir: Option<String>,
    /// The member knows the master serves other environments too (`--shared`).
    pub shared: bool,
}

impl Request {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "project": self.project,
            "project_id": self.project_id.as_str(),
            "env": self.env.as_str(),
            "anchor": self.anchor,
            "salt_dir": self.salt_dir,
            "shared": self.shared,
        })
        .to_string()
    }

    pub fn parse(bytes: &[u8]) -> Result<Request> {
        let bad = || Error::new("the setup request is malformed");
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad())?;
        let text = |k: &str| v.get(k).and_then(|s| s.as_str()).ok_or_else(bad);
        let project = text("project")?.to_string();
        EnvName::parse(&project)?;
        Ok(Request {
            project,
            project_id: ProjectId::parse(text("project_id")?).ok_or_else(bad)?,
            env: EnvName::parse(text("env")?)?,
            anchor: v.get("anchor").cloned().ok_or_else(bad)?,
            salt_dir: v.get("salt_dir").and_then(|s| s.as_str()).map(String::from),
            shared: v.get("shared").and_then(|s| s.as_bool()).unwrap_or(false),
        })
    }
}

/// What setup did.
pub struct Outcome {
    /// The environment's public key (`age1...`), for `recipients/ENV/<name>.pub`.
    pub public_key: String,
    /// A new identity was made (else the one there is kept).
    pub created: bool,
    /// The drop-in changed: the master must be restarted to read it.
    pub dropin_changed: bool,
}

/// Sets the master up for `req.env`, keeping what an earlier setup made.
pub fn setup(layout: &Layout, req: &Request) -> Result<Outcome> {
    let mut config = match Config::load(layout)? {
        Some(c) if c.project_id != req.project_id.as_str() => {
            return Err(Error::new(format!(
            "this master serves another project ({}, identity {}); one master serves one project",
            c.project, c.project_id
        ))
            .with_hint("use a master of its own for this project"))
        }
        Some(c) => c,
        None => Config {
            project: req.project.clone(),
            project_id: req.project_id.as_str().to_string(),
            ..Config::default()
        },
    };
    let others: Vec<&String> = config
        .envs
        .iter()
        .filter(|e| *e != req.env.as_str())
        .collect();
    if !others.is_empty() && !req.shared {
        let list: Vec<&str> = others.iter().map(|e| e.as_str()).collect();
        return Err(Error::usage(format!(
            "this master serves {} already: whoever provisions any environment through a master is root there, and can read every identity it holds",
            list.join(", ")
        ))
        .with_hint(format!(
            "give {} a master of its own; or, if everyone who provisions {} may read {} too, pass --shared",
            req.env,
            list.join(", "),
            req.env
        )));
    }
    let (public_key, created) = identity(layout, &req.env)?;
    crate::trust::SeenStore::seed(&req.project_id, &req.env, &req.anchor)?;
    if req.salt_dir.is_some() {
        config.salt_dir = req.salt_dir.clone();
    }
    if !config.envs.iter().any(|e| e == req.env.as_str()) {
        config.envs.push(req.env.as_str().to_string());
        config.envs.sort();
    }
    config.save(layout)?;
    install_module(layout)?;
    let dropin_changed = write_dropin(layout, &config)?;
    Ok(Outcome {
        public_key,
        created,
        dropin_changed,
    })
}

/// The environment's identity's public key: made now (root-only) when there is none.
fn identity(layout: &Layout, env: &EnvName) -> Result<(String, bool)> {
    let path = layout.identity(env);
    private_dir(&layout.etc())?;
    if let Some(bytes) = crate::fs::read_own(&path, 4096)? {
        let text = String::from_utf8_lossy(&bytes);
        let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-"));
        let id = line
            .and_then(|l| age::x25519::Identity::from_str(l.trim()).ok())
            .ok_or_else(|| {
                Error::new(format!("{} is not an age identity", path.display()))
                    .with_hint("move it away and run `vault master setup` again for a new one")
            })?;
        return Ok((id.to_public().to_string(), false));
    }
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let text = zeroize::Zeroizing::new(format!(
        "# vault: the master's identity for {env}; root-only, never copied.\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    ));
    crate::fs::write_atomic(&path, text.as_bytes(), crate::fs::Mode::CreateNewPrivate)?;
    Ok((public, true))
}

/// vault's Salt modules on the master: the ext_pillar, and the job cache that keeps no
/// return.
fn install_module(layout: &Layout) -> Result<()> {
    let modules = [
        ("pillar", "vault.py", include_str!("files/vault_pillar.py")),
        (
            "returners",
            "vault_jobs.py",
            include_str!("files/vault_jobs.py"),
        ),
    ];
    for (kind, name, text) in modules {
        let dir = layout.extmods().join(kind);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        crate::fs::write_atomic(
            &dir.join(name),
            text.as_bytes(),
            crate::fs::Mode::KeepOr0644,
        )?;
    }
    Ok(())
}

/// Writes the drop-in for `config`'s environments; whether it changed.
fn write_dropin(layout: &Layout, config: &Config) -> Result<bool> {
    let path = layout.dropin();
    let text = dropin(layout, config);
    if std::fs::read(&path).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(false);
    }
    let dir = path.parent().expect("the drop-in is in master.d");
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    crate::fs::write_atomic(&path, text.as_bytes(), crate::fs::Mode::KeepOr0644)?;
    Ok(true)
}

/// The master's settings for vault: its ext_pillar, no pillar in the master's cache, no
/// key accepted unasked, and each environment's roots as a Salt environment of its own.
pub fn dropin(layout: &Layout, config: &Config) -> String {
    let q = |p: &std::path::Path| serde_json::json!(p.display().to_string()).to_string();
    let mut text = format!(
        "# Written by `vault master setup`, and rewritten by each: restart salt-master after it changes.\n\
         # Each minion gets its environment's secrets from vault's ext_pillar, by minion ID.\n\
         ext_pillar:\n  - vault: {root}\n\
         extension_modules: {extmods}\n\
         # No minion's compiled pillar is kept in the master's cache, nor any job's return\n\
         # (a return may hold a secret): vault_jobs keeps only that a minion returned.\n\
         minion_data_cache: False\npillar_cache: False\n\
         job_cache: True\nmaster_job_cache: vault_jobs\n\
         # A minion's key is accepted only by `vault master accept`, its fingerprint checked.\n\
         auto_accept: False\nopen_mode: False\n\
         # vault's top files, targeting each environment's minions by ID.\n\
         state_top: {TOP_FILE}\n\
         # No file is served through a link, and pillar files are rendered here as plain YAML\n\
         # only (Jinja is skipped): in one it would run as root on the master, beside every\n\
         # environment's identity. (The master's `renderer` is the minions' too: left as is.)\n\
         fileserver_followsymlinks: False\nrenderer_whitelist:\n  - yaml\n",
        root = q(layout.root()),
        extmods = q(&layout.extmods()),
    );
    for (key, sub) in [("file_roots", "conf/salt"), ("pillar_roots", "conf/pillar")] {
        text.push_str(&format!("{key}:\n"));
        for env in config.envs.iter().filter_map(|e| EnvName::parse(e).ok()) {
            let dir = layout.project_dir(&config.project, &env).join(sub);
            text.push_str(&format!("  {env}:\n    - {}\n", q(&dir)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &ProjectId, env: &str) -> Request {
        Request {
            project: "example".into(),
            project_id: id.clone(),
            env: EnvName::parse(env).unwrap(),
            anchor: serde_json::json!({"verified_keys": ["SHA256:x"], "env": null}),
            salt_dir: None,
            shared: false,
        }
    }

    #[test]
    fn a_request_round_trips() {
        let id = ProjectId::random();
        let r = Request::parse(request(&id, "staging").to_json().as_bytes()).unwrap();
        assert_eq!((r.project.as_str(), r.env.as_str()), ("example", "staging"));
        assert_eq!(r.project_id, id);
        assert!(Request::parse(b"{\"project\":\"../x\"}").is_err());
    }

    #[test]
    fn the_dropin_names_each_environment_s_roots() {
        let layout = Layout::new(std::path::Path::new("/m"));
        let config = Config {
            project: "example".into(),
            project_id: "x".into(),
            envs: vec!["production".into(), "staging".into()],
            minions: Default::default(),
            salt_dir: None,
        };
        let text = dropin(&layout, &config);
        for want in [
            "ext_pillar:\n  - vault: \"/m\"\n",
            "minion_data_cache: False\n",
            "master_job_cache: vault_jobs\n",
            "auto_accept: False\n",
            "state_top: vault_top.sls\n",
            "fileserver_followsymlinks: False\n",
            "renderer_whitelist:\n  - yaml\n",
            "file_roots:\n  production:\n    - \"/m/srv/vault/example/production/conf/salt\"\n  staging:\n",
            "pillar_roots:\n  production:\n    - \"/m/srv/vault/example/production/conf/pillar\"\n",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
    }
}

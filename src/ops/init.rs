//! `vault init`: the project layout written where missing, never over an existing file.

use crate::error::{Error, Result};
use crate::fs::{write_atomic, Created, Mode};
use crate::project::{EnvName, Project};
use crate::project_id::ProjectId;
use std::path::{Path, PathBuf};

/// The layout `init` wrote: the paths it created, and those it found and kept.
#[derive(Debug, Default)]
pub struct Scaffold {
    pub created: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
    /// The project holds secrets but no identity: a member runs `vault migrate`.
    pub needs_migration: bool,
    /// Environments added to an existing `conf/pillar/top.sls`; None when it could not
    /// be done safely (a top.sls of another shape), for the user to do by hand.
    pub top_added: Option<Vec<EnvName>>,
    /// The project had a state tree of its own (`conf/salt/top.sls`): only vault's part
    /// (`conf/salt/vault/`) was added, for its states to include.
    pub own_states: bool,
    /// Where the project's own states build a supervisor `environment=` from the
    /// secrets pillar (a template project's): file and line, for the user to change.
    pub supervisor_env_lines: Vec<(PathBuf, usize)>,
    /// Environments holding a template's plaintext `secrets.sls` and no vault file yet:
    /// the next step there is `vault import`, not `vault edit`.
    pub plaintext: Vec<EnvName>,
}

/// The Salt states `init` writes under `conf/salt/`: vault's env file and run wrapper
/// (`vault/`), and the project's states (`project/`): the app user, gunicorn under
/// supervisord, a manage wrapper and the developers' accounts.
pub const SALT_STATES: &[(&str, &str)] = &[
    ("top.sls", include_str!("../../conf/salt/top.sls")),
    (
        "vault/init.sls",
        include_str!("../../conf/salt/vault/init.sls"),
    ),
    (
        "project/init.sls",
        include_str!("../../conf/salt/project/init.sls"),
    ),
    (
        "project/devs.sls",
        include_str!("../../conf/salt/project/devs.sls"),
    ),
    (
        "vault/map.jinja",
        include_str!("../../conf/salt/vault/map.jinja"),
    ),
    (
        "vault/secrets.env.jinja",
        include_str!("../../conf/salt/vault/secrets.env.jinja"),
    ),
];

/// A project name from a folder name: lowercase, other characters as `-`.
pub fn default_project_name(root: &Path) -> String {
    let raw = root
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "project".into()
    } else {
        name
    }
}

/// Writes the layout of DESIGN.md section 1 under `project`.
pub fn init(project: &Project, name: &str, envs: &[EnvName]) -> Result<Scaffold> {
    EnvName::parse(name).map_err(|_| {
        Error::usage(format!(
            "invalid project name '{name}': use lowercase letters, digits, '_' and '-'"
        ))
    })?;
    let root = project.root();
    let mut report = Scaffold::default();
    let pillar = project.pillar_dir();
    let mut top = String::from("base:\n  '*':\n    - project\n    - devs\n");
    for env in envs {
        top.push_str(&format!(
            "  '*-{env}':\n    - {env}.env\n    - {env}.secrets\n"
        ));
    }
    let top_path = pillar.join("top.sls");
    create(&mut report, &top_path, &top)?;
    if report.kept.contains(&top_path) {
        report.top_added = add_to_top(&top_path, envs)?;
    }
    create(
        &mut report,
        &pillar.join("project.sls"),
        &format!("project_name: {name}\n"),
    )?;
    create(
        &mut report,
        &pillar.join("devs.sls"),
        include_str!("../../conf/pillar/devs.sls"),
    )?;
    for env in envs {
        create(
            &mut report,
            &project.env_pillar_dir(env).join("env.sls"),
            &format!(
                "environment: {env}\ndomain: {env}.example.com\n# Servers of {env}: [user@]host[:port]\nhosts: []\n"
            ),
        )?;
        let recipients = project.recipients_dir(env);
        create(&mut report, &recipients.join(".gitkeep"), "")?;
    }
    // The Salt states, as this repository carries them; beside a state tree of the
    // project's own (a template project's), only vault's part, for its states to include.
    let salt = root.join("conf").join("salt");
    report.own_states = own_state_tree(&salt.join("top.sls"));
    for (rel, content) in SALT_STATES {
        if !report.own_states || rel.starts_with("vault/") {
            create(&mut report, &salt.join(rel), content)?;
        }
    }
    add_gitignore(&mut report, &root.join(".gitignore"))?;
    identity(project, &mut report)?;
    report.supervisor_env_lines = supervisor_env_lines(&salt);
    report.plaintext = project
        .environments()?
        .into_iter()
        .filter(|env| {
            let dir = project.env_pillar_dir(env);
            dir.join("secrets.sls").is_file() && !project.secrets_path(env).exists()
        })
        .collect();
    Ok(report)
}

/// The lines of the files under `salt` where a supervisor `environment=` is built from
/// the secrets pillar, as a template project's gunicorn.conf does: supervisor reads `%`
/// as its own expansion and the quotes the loop writes are broken by a quote in a value,
/// so these must give way to vault's env file.
fn supervisor_env_lines(salt: &Path) -> Vec<(PathBuf, usize)> {
    let mut found = Vec::new();
    let mut stack = vec![salt.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && meta.len() < 1 << 20 {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                found.extend(environment_loops(&text).into_iter().map(|l| (p.clone(), l)));
            }
        }
    }
    found
}

/// The lines (from 1) of `environment=` settings whose value, on that line or the
/// indented ones continuing it, reads the `secrets` pillar.
fn environment_loops(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let reads_secrets = |l: &str| {
        l.contains("pillar['secrets']")
            || l.contains("pillar[\"secrets\"]")
            || l.contains("pillar.secrets")
            || l.contains("('secrets'")
            || l.contains("(\"secrets\"")
    };
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.trim_start().starts_with("environment") || !l.contains('=') {
            continue;
        }
        // supervisor continues a setting on lines that start with white space.
        let continued = lines[i + 1..]
            .iter()
            .take_while(|n| n.starts_with([' ', '\t']) || n.trim_start().starts_with("{%"));
        if reads_secrets(l) || continued.into_iter().any(|n| reads_secrets(n)) {
            out.push(i + 1);
        }
    }
    out
}

/// Whether `top` is a state tree of the project's own (a template project's): a top
/// file that does not apply vault's `project` states, as the one `init` writes does.
fn own_state_tree(top: &Path) -> bool {
    match std::fs::read_to_string(top) {
        Ok(text) => !text.lines().any(|l| l.trim() == "- project"),
        Err(_) => false,
    }
}

/// A new project gets its random identity. One that already holds secrets gets it only
/// by `vault migrate`, which a member runs and which signs every environment anew.
fn identity(project: &Project, report: &mut Scaffold) -> Result<()> {
    let path = project.identity_path();
    if path.exists() {
        report.kept.push(path);
        return Ok(());
    }
    for env in project.environments()? {
        if project.secrets_path(&env).exists() {
            report.needs_migration = true;
            return Ok(());
        }
    }
    create(report, &path, &ProjectId::random().render())
}

/// Adds each of `envs` that an existing top.sls does not map yet, as `init` writes it,
/// at the end of its `base:` block; None when `base:` is not its last top-level key
/// (then appending could land in another block).
fn add_to_top(path: &Path, envs: &[EnvName]) -> Result<Option<Vec<EnvName>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let top_level: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t', '#']))
        .collect();
    if top_level.last() != Some(&"base:") {
        return Ok(None);
    }
    let missing: Vec<EnvName> = envs
        .iter()
        .filter(|env| {
            let key = format!("'*-{env}':");
            !text.lines().any(|l| l.trim() == key)
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(Some(missing));
    }
    let mut new = text;
    if !new.ends_with('\n') {
        new.push('\n');
    }
    for env in &missing {
        new.push_str(&format!(
            "  '*-{env}':\n    - {env}.env\n    - {env}.secrets\n"
        ));
    }
    write_atomic(path, new.as_bytes(), Mode::KeepOr0644)?;
    Ok(Some(missing))
}

/// Creates `path` with `content` unless it exists; atomic, never overwriting.
fn create(report: &mut Scaffold, path: &Path, content: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    match write_atomic(path, content.as_bytes(), Mode::CreateNew)? {
        Created::Yes => report.created.push(path.to_path_buf()),
        Created::No => report.kept.push(path.to_path_buf()),
    }
    Ok(())
}

/// Adds a `secrets.sls` line to `.gitignore` so plaintext pillars are never committed.
fn add_gitignore(report: &mut Scaffold, path: &Path) -> Result<()> {
    match ensure_ignored(path)? {
        true => report.created.push(path.to_path_buf()),
        false => report.kept.push(path.to_path_buf()),
    }
    Ok(())
}

/// Makes `.gitignore` at `path` hold a `secrets.sls` line (creating the file if need
/// be); whether it had to be written.
pub(super) fn ensure_ignored(path: &Path) -> Result<bool> {
    let current = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            String::from("# Plaintext pillars never belong in git (vault keeps secrets.sls.age).\n")
        }
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    if current.lines().any(|l| l.trim() == "secrets.sls") {
        return Ok(false);
    }
    let mut new = current;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str("secrets.sls\n");
    write_atomic(path, new.as_bytes(), Mode::KeepOr0644)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::environment_loops;

    #[test]
    fn finds_the_template_s_environment_loop() {
        let conf = "[program:x-server]\ncommand=gunicorn\nenvironment=DJANGO_SETTINGS_MODULE=\"x\",\n    ALLOWED_HOSTS=\"{{ pillar['domain'] }}\",\n    {%- for key, value in pillar['secrets'].items() -%}\n    {{ key }}=\"{{ value }}\"{%- if not loop.last -%},{%- endif -%}\n    {%- endfor %}\nuser=x\n";
        assert_eq!(environment_loops(conf), [3]);
        assert!(environment_loops("environment=A=\"b\"\nuser=x\n").is_empty());
        assert_eq!(environment_loops("environment={% for k, v in salt['pillar.get']('secrets', {}).items() %}{{k}}={{v}}{% endfor %}\n"), [1]);
    }
}

//! The plain settings vault reads from a project's pillar: `project_name:` of
//! `project.sls`; and of an environment's `env.sls` ([`EnvFile`], read once), its
//! `hosts:`, the `env:` settings exported beside the secrets, and the extra state trees
//! (`vault: state_trees:`). Read as YAML events into a tree of strings (no typing:
//! where Salt's reading would give a value other than its text, `settings` says so).

use crate::document::{salt_reading, salt_renders};
use crate::error::{Error, Result};
use crate::project::{EnvName, Project};
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::path::{Path, PathBuf};

/// `project_name:` of `project.sls`, checked: it names files and folders on the
/// server (the minion id, the record of the applied version), so it follows the rules
/// of `vault init --project`.
pub fn project_name(project: &Project) -> Result<String> {
    let file = project.pillar_dir().join("project.sls");
    let shown = project.display_path(&file);
    let name = read_text(&file)?
        .and_then(|t| tree(&t)?.get("project_name")?.scalar())
        .ok_or_else(|| Error::new(format!("{shown}: no project_name")))?;
    if EnvName::parse(&name).is_err() {
        return Err(Error::new(format!(
            "{shown}: project_name {name:?} is not a name vault can use on a server"
        ))
        .with_hint("use lowercase letters, digits, '_' and '-', starting with a letter or digit"));
    }
    Ok(name)
}

/// One `NAME: value` of an `env:` mapping: the text the program will see.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvSetting {
    pub name: String,
    pub value: String,
}

/// An environment's `conf/pillar/<env>/env.sls`, read once.
pub struct EnvFile {
    /// How messages name it.
    shown: String,
    /// None when it is absent, or not YAML as it stands (a Jinja template may not be:
    /// Salt renders it first).
    tree: Option<Node>,
    /// It holds Jinja: what it says is known only once Salt renders it.
    templated: bool,
}

impl EnvFile {
    pub fn read(project: &Project, env: &EnvName) -> Result<EnvFile> {
        let file = project.env_pillar_dir(env).join("env.sls");
        let text = read_text(&file)?.unwrap_or_default();
        Ok(EnvFile {
            shown: project.display_path(&file),
            templated: text.contains("{{") || text.contains("{%") || text.contains("{#"),
            tree: tree(&text),
        })
    }

    /// `hosts:`, as written.
    pub fn hosts(&self) -> Vec<String> {
        let hosts = self.tree.as_ref().and_then(|t| t.get("hosts"));
        hosts.map(Node::scalars).unwrap_or_default()
    }

    /// `master:`, the salt-master that serves this environment's minions, as written.
    pub fn master(&self) -> Option<String> {
        self.tree.as_ref()?.get("master")?.scalar()
    }

    /// `minions:`, the IDs of the environment's minions behind its master, as written.
    pub fn minions(&self) -> Vec<String> {
        let minions = self.tree.as_ref().and_then(|t| t.get("minions"));
        minions.map(Node::scalars).unwrap_or_default()
    }

    /// The `env:` mapping, checked as Salt will read it: names the shell can export
    /// (none that controls programs), once each, and values Salt reads as strings: a
    /// plain one it would type (`off`, `0123`, `5432`, `~`) is quoted. A templated file
    /// is left to the project's state, which refuses the same (see secrets.env.jinja).
    pub fn settings(&self) -> Result<Vec<EnvSetting>> {
        let entries = match self.tree.as_ref().and_then(|t| t.get("env")) {
            Some(Node::Map(entries)) if !self.templated => entries,
            _ => return Ok(Vec::new()),
        };
        let mut out: Vec<EnvSetting> = Vec::new();
        for (name, line, node) in entries {
            let at = format!("{}: line {line}: env: {name}", self.shown);
            if out.iter().any(|s| &s.name == name) {
                return Err(Error::new(format!("{at}: given twice")));
            }
            out.push(self.setting(&at, name, node)?);
        }
        Ok(out)
    }

    /// One setting of `env:`, or why it cannot be one (`at` says where).
    fn setting(&self, at: &str, name: &str, node: &Node) -> Result<EnvSetting> {
        if !is_shell_name(name) {
            return Err(
                Error::new(format!("{at}: not a name a program's environment can hold"))
                    .with_hint("use letters, digits and _ (not first), as in DB_HOST"),
            );
        }
        if crate::document::controlling(name).is_some() {
            return Err(Error::new(format!("{at}: the name controls how programs run (as LD_PRELOAD or PATH do), and is not a setting"))
                .with_hint("if the program truly needs it, make it a secret and let it through with `vault allow ENV NAME`"));
        }
        let Node::Scalar { text, plain } = node else {
            return Err(Error::new(format!(
                "{at}: not a single value (a list or mapping)"
            )));
        };
        // Every setting must reach Salt as a string: the states refuse any other (they
        // cannot tell `0123` from `123` once Salt has read it), so a number is quoted too.
        if let Some(reading) = plain.then(|| salt_reading(text)).flatten() {
            let why = match salt_renders(text).as_deref() == Some(text.as_str()) {
                true => "and every setting must be a string".to_string(),
                false => format!("so the program would not see `{text}`"),
            };
            return Err(Error::new(format!(
                "{at}: Salt reads `{text}` as {}, {why}",
                reading.describe()
            ))
            .with_hint(format!("quote it in {}: {name}: '{text}'", self.shown)));
        }
        Ok(EnvSetting {
            name: name.to_string(),
            value: text.clone(),
        })
    }

    /// The extra state trees of `vault: state_trees:` (such as a checkout of margarita
    /// beside the project), as folders: relative ones are from the project root. Each
    /// must be a folder with a name of its own that can ship beside `conf/salt`.
    pub fn state_trees(&self, project: &Project) -> Result<Vec<PathBuf>> {
        let listed = self
            .tree
            .as_ref()
            .and_then(|t| Some(t.get("vault")?.get("state_trees")?.scalars()))
            .unwrap_or_default();
        let mut trees: Vec<PathBuf> = Vec::new();
        for p in listed {
            let at = format!("{}: vault: state_trees: {p}", self.shown);
            let dir = std::fs::canonicalize(project.root().join(&p))
                .ok()
                .filter(|d| d.is_dir())
                .ok_or_else(|| {
                    Error::new(format!("{at}: no such folder")).with_hint(
                        "check it out there (e.g. git clone ... beside the project), or take it off the list",
                    )
                })?;
            let name = tree_name(&dir).ok_or_else(|| {
                Error::new(format!("{at}: a folder named salt, pillar, or with a leading dot or an odd character, cannot be shipped beside conf/salt"))
                    .with_hint("give the checkout a plain name of its own, such as margarita")
            })?;
            if trees.iter().any(|t| tree_name(t) == Some(name)) {
                return Err(
                    Error::new(format!("{at}: a second tree named {name}")).with_hint(
                        "each tree ships as a folder of its name: give each a name of its own",
                    ),
                );
            }
            trees.push(dir);
        }
        Ok(trees)
    }
}

/// Refuses a `secrets:` mapping in a plain pillar file that ships (`conf/pillar` but
/// the encrypted secrets and `other_envs`' folders): Salt merges it into the secrets
/// vault sends, so the program's environment would take names no `vault allow` let
/// through, and values (over real ones, as the pillar top orders them) that nothing
/// redacts. A templated file is code the approval covers, which vault cannot read.
pub fn no_plain_secrets(project: &Project, other_envs: &[EnvName]) -> Result<()> {
    let pillar = project.pillar_dir();
    let skip: Vec<PathBuf> = other_envs
        .iter()
        .map(|e| project.env_pillar_dir(e))
        .collect();
    let mut dirs = vec![pillar];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("cannot read", &dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && !skip.contains(&path) {
                dirs.push(path);
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !kind.is_file() || !name.ends_with(".sls") || name == "secrets.sls" {
                continue;
            }
            let text = read_text(&path)?.unwrap_or_default();
            let templated =
                text.starts_with("#!") || ["{{", "{%", "{#"].iter().any(|m| text.contains(m));
            if !templated && tree(&text).is_some_and(|t| t.get("secrets").is_some()) {
                let shown = project.display_path(&path);
                return Err(Error::new(format!(
                    "{shown}: a `secrets:` mapping outside the encrypted secrets: Salt would merge it into them, unchecked and unredacted"
                ))
                .with_hint("make each one a secret (`vault set ENV NAME`), or a setting under `env:` in the environment's env.sls"));
            }
        }
    }
    Ok(())
}

/// The folder name an extra state tree ships as (`srv/<name>` on the server), when it
/// can be one: not `salt` or `pillar` (vault's own), no leading dot, plain characters.
pub fn tree_name(dir: &Path) -> Option<&str> {
    let name = dir.file_name()?.to_str()?;
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    (plain && !name.starts_with('.') && name != "salt" && name != "pillar").then_some(name)
}

/// One target of a top file's `base:` section: its target, its `match:` (None: a
/// glob) and the SLS files it lists.
#[derive(Debug, PartialEq, Eq)]
pub struct TopEntry {
    pub target: String,
    pub matcher: Option<String>,
    pub sls: Vec<String>,
}

/// The `base:` section of a top file that is plain YAML (Salt renders a templated one
/// first, so vault cannot read it); None when it is absent.
pub fn top_file(project: &Project, path: &Path) -> Result<Option<Vec<TopEntry>>> {
    let shown = project.display_path(path);
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let unreadable = || {
        Error::new(format!("{shown}: vault cannot read it as plain YAML"))
            .with_hint("with a master, vault reads the project's top files to target each environment's minions by ID: write them without Jinja")
    };
    let Some(Node::Map(envs)) = tree(&text) else {
        return Err(unreadable());
    };
    let Some((_, _, Node::Map(targets))) = envs.iter().find(|(k, ..)| k == "base") else {
        return Ok(Some(Vec::new()));
    };
    let mut entries = Vec::new();
    for (target, _, items) in targets {
        let Node::Seq(items) = items else {
            return Err(unreadable());
        };
        let mut entry = TopEntry {
            target: target.clone(),
            matcher: None,
            sls: Vec::new(),
        };
        for item in items {
            match item {
                Node::Scalar { text, .. } => entry.sls.push(text.clone()),
                Node::Map(_) => entry.matcher = item.get("match").and_then(Node::scalar),
                Node::Seq(_) => return Err(unreadable()),
            }
        }
        entries.push(entry);
    }
    Ok(Some(entries))
}

/// A file's text; None if it is absent.
fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", path, e)),
    }
}

/// A YAML node with every scalar a string as written.
#[derive(Debug)]
enum Node {
    Scalar {
        text: String,
        /// Unquoted and not a block: Salt's reading may type it.
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Key, its line (from 1), value.
    Map(Vec<(String, usize, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, ..)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    fn scalar(&self) -> Option<String> {
        match self {
            Node::Scalar { text, .. } => Some(text.clone()),
            _ => None,
        }
    }

    /// The scalar, or the scalars of the list.
    fn scalars(&self) -> Vec<String> {
        match self {
            Node::Scalar { text, .. } => vec![text.clone()],
            Node::Seq(items) => items.iter().filter_map(Node::scalar).collect(),
            Node::Map(_) => Vec::new(),
        }
    }
}

/// The document's root node, or None when it is not YAML vault can read.
fn tree(text: &str) -> Option<Node> {
    let mut events = Parser::new_from_str(text).peekable();
    // StreamStart, DocumentStart.
    while let Some(Ok((ev, _))) = events.peek() {
        if matches!(ev, Event::StreamStart | Event::DocumentStart(_)) {
            events.next();
        } else {
            break;
        }
    }
    node(&mut events, 0)
}

fn node<'a>(
    events: &mut std::iter::Peekable<
        impl Iterator<Item = Result<(Event<'a>, saphyr_parser::Span), saphyr_parser::ScanError>>,
    >,
    depth: usize,
) -> Option<Node> {
    if depth > 64 {
        return None;
    }
    let (ev, _) = events.next()?.ok()?;
    match ev {
        Event::Scalar(v, style, ..) => Some(Node::Scalar {
            text: v.into_owned(),
            plain: style == ScalarStyle::Plain,
        }),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                if let Some(Ok((Event::SequenceEnd, _))) = events.peek() {
                    events.next();
                    return Some(Node::Seq(items));
                }
                items.push(node(events, depth + 1)?);
            }
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                let (ev, span) = events.next()?.ok()?;
                match ev {
                    Event::MappingEnd => return Some(Node::Map(entries)),
                    Event::Scalar(k, ..) => {
                        let value = node(events, depth + 1)?;
                        entries.push((k.into_owned(), span.start.line(), value));
                    }
                    _ => return None,
                }
            }
        }
        // An empty document, an alias: nothing vault reads.
        _ => None,
    }
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_level_values() {
        let doc = "environment: staging\nhosts:\n  - root@10.0.0.1\n  - web2:2222\ndomain: x\nvault:\n  state_trees: [../m]\n";
        let t = tree(doc).unwrap();
        assert_eq!(
            t.get("hosts").unwrap().scalars(),
            ["root@10.0.0.1", "web2:2222"]
        );
        assert_eq!(t.get("domain").unwrap().scalars(), ["x"]);
        assert_eq!(
            t.get("vault")
                .unwrap()
                .get("state_trees")
                .unwrap()
                .scalars(),
            ["../m"]
        );
        assert!(tree("hosts: []\n")
            .unwrap()
            .get("hosts")
            .unwrap()
            .scalars()
            .is_empty());
        assert!(tree("a: 1\n").unwrap().get("hosts").is_none());
    }
}

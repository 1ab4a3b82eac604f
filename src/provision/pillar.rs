//! The plain settings vault reads from a project's pillar: `project_name:` of
//! `project.sls`; and of an environment's `env.sls`, its `hosts:`, the `env:` settings
//! exported beside the secrets, and the extra state trees (`vault: state_trees:`).
//! Read as YAML events into a tree of strings (no typing: where Salt's reading would
//! give a value other than its text, `env_settings` says so).

use crate::document::{salt_reading, salt_renders};
use crate::error::{Error, Result};
use crate::project::{EnvName, Project};
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::path::{Path, PathBuf};

/// `project_name:` of `project.sls`, and `hosts:` of `conf/pillar/<env>/env.sls`.
pub fn pillar_settings(project: &Project, env: &EnvName) -> Result<(String, Vec<String>)> {
    let project_file = project.pillar_dir().join("project.sls");
    let name = read_tree(&project_file)?
        .and_then(|t| t.get("project_name")?.scalar())
        .ok_or_else(|| {
            Error::new(format!(
                "{}: no project_name",
                project.display_path(&project_file)
            ))
        })?;
    // It names files and folders on the server (the minion id, the record of the
    // applied version): the rules of `vault init --project`.
    if EnvName::parse(&name).is_err() {
        return Err(Error::new(format!(
            "{}: project_name {name:?} is not a name vault can use on a server",
            project.display_path(&project_file)
        ))
        .with_hint("use lowercase letters, digits, '_' and '-', starting with a letter or digit"));
    }
    let hosts = env_tree(project, env)?
        .and_then(|t| t.get("hosts").map(Node::scalars))
        .unwrap_or_default();
    Ok((name, hosts))
}

/// One `NAME: value` of an `env:` mapping: the text the program will see.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvSetting {
    pub name: String,
    pub value: String,
}

/// The `env:` mapping of `conf/pillar/<env>/env.sls`, checked as Salt will read it:
/// names the shell can export (none that controls programs), once each, and values Salt
/// reads as strings: a plain one it would type (`off`, `0123`, `5432`, `~`) is quoted.
pub fn env_settings(project: &Project, env: &EnvName) -> Result<Vec<EnvSetting>> {
    let file = project.env_pillar_dir(env).join("env.sls");
    let shown = project.display_path(&file);
    // A templated env.sls says what its settings are only once Salt renders it; the
    // project's state then refuses what vault would have (see secrets.env.jinja).
    if templated(&file) {
        return Ok(Vec::new());
    }
    let Some(Node::Map(entries)) = env_tree(project, env)?.and_then(|t| t.take("env")) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<EnvSetting> = Vec::new();
    for (name, line, node) in entries {
        let at = format!("{shown}: line {line}: env: {name}");
        if !is_shell_name(&name) {
            return Err(
                Error::new(format!("{at}: not a name a program's environment can hold"))
                    .with_hint("use letters, digits and _ (not first), as in DB_HOST"),
            );
        }
        if out.iter().any(|s| s.name == name) {
            return Err(Error::new(format!("{at}: given twice")));
        }
        if crate::document::controlling(&name).is_some() {
            return Err(Error::new(format!("{at}: the name controls how programs run (as LD_PRELOAD or PATH do), and is not a setting"))
                .with_hint("if the program truly needs it, make it a secret and let it through with `vault allow ENV NAME`"));
        }
        let Node::Scalar { text, plain, .. } = node else {
            return Err(Error::new(format!(
                "{at}: not a single value (a list or mapping)"
            )));
        };
        // Every setting must reach Salt as a string: the states refuse any other (they
        // cannot tell `0123` from `123` once Salt has read it), so a number is quoted too.
        if let Some(reading) = plain.then(|| salt_reading(&text)).flatten() {
            let why = match salt_renders(&text).as_deref() == Some(text.as_str()) {
                true => "and every setting must be a string".to_string(),
                false => format!("so the program would not see `{text}`"),
            };
            return Err(Error::new(format!(
                "{at}: Salt reads `{text}` as {}, {why}",
                reading.describe()
            ))
            .with_hint(format!("quote it in {shown}: {name}: '{text}'")));
        }
        out.push(EnvSetting { name, value: text });
    }
    Ok(out)
}

/// The extra state trees of `vault: state_trees:` in the environment's env.sls (such as
/// a checkout of margarita beside the project), as folders: relative ones are from the
/// project root. Each must be a folder.
pub fn state_trees(project: &Project, env: &EnvName) -> Result<Vec<PathBuf>> {
    let listed = env_tree(project, env)?
        .and_then(|t| Some(t.get("vault")?.get("state_trees")?.scalars()))
        .unwrap_or_default();
    let file = project.env_pillar_dir(env).join("env.sls");
    let at = |p: &str| format!("{}: vault: state_trees: {p}", project.display_path(&file));
    let mut trees: Vec<PathBuf> = Vec::new();
    for p in listed {
        let dir = std::fs::canonicalize(project.root().join(&p))
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| {
                Error::new(format!("{}: no such folder", at(&p))).with_hint(
                    "check it out there (e.g. git clone ... beside the project), or take it off the list",
                )
            })?;
        let name = tree_name(&dir).ok_or_else(|| {
            Error::new(format!("{}: a folder named salt, pillar, or with a leading dot or an odd character, cannot be shipped beside conf/salt", at(&p)))
                .with_hint("give the checkout a plain name of its own, such as margarita")
        })?;
        if trees.iter().any(|t| tree_name(t) == Some(name)) {
            return Err(
                Error::new(format!("{}: a second tree named {name}", at(&p))).with_hint(
                    "each tree ships as a folder of its name: give each a name of its own",
                ),
            );
        }
        trees.push(dir);
    }
    Ok(trees)
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

/// Whether `file` holds Jinja.
fn templated(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .is_ok_and(|t| t.contains("{{") || t.contains("{%") || t.contains("{#"))
}

/// The environment's env.sls as a tree, if it exists.
fn env_tree(project: &Project, env: &EnvName) -> Result<Option<Node>> {
    read_tree(&project.env_pillar_dir(env).join("env.sls"))
}

/// A YAML file as a tree of strings; None if the file is absent, or is not YAML as it
/// stands (a Jinja template may not be: Salt renders it first).
fn read_tree(path: &Path) -> Result<Option<Node>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    Ok(tree(&text))
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

    fn take(self, key: &str) -> Option<Node> {
        match self {
            Node::Map(entries) => entries
                .into_iter()
                .find(|(k, ..)| k == key)
                .map(|(.., v)| v),
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

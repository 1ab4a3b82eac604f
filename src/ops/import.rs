//! `vault import`: adopts a template project's plaintext `secrets.sls`. The file is read
//! as vault reads every document (each value the text as written), the values Salt's
//! own YAML reading made something else of are named for the user to confirm, and then
//! it is encrypted and signed, the plaintext overwritten and removed, and `secrets.sls`
//! kept out of git.

use crate::document::{salt_reading, Document, MAX_DOCUMENT_BYTES};
use crate::error::{Error, Result};
use crate::git::Git;
use crate::project::EnvName;
use crate::secret::SecretBytes;
use crate::store::{Store, WriteReport};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A plaintext file read and checked, not yet imported.
pub struct Prepared {
    pub env: EnvName,
    /// The file, as given or the default.
    pub source: PathBuf,
    /// The file as opened to read it: the one overwritten afterwards, whatever the path
    /// names by then.
    plaintext: Plaintext,
    doc: Document,
    /// The values whose meaning vault's reading changes, in the file's order.
    pub changes: Vec<Change>,
    /// The file is in the repository's history: its values were never private.
    pub in_git: bool,
    /// The file's path in the repository when git's index holds it (staged, or
    /// committed): a blob of the plaintext the next commit would record.
    in_index: Option<String>,
    /// Names the environment's `secrets.ex` lists that the file does not hold.
    pub missing_from_example: Vec<String>,
}

/// One value Salt read as something other than its text.
pub struct Change {
    pub name: String,
    pub line: usize,
    /// "the boolean True", "the integer 123": what the servers were given.
    pub salt_read: String,
    /// The text as written, which vault keeps (for a terminal only: it is a value).
    pub text: Zeroizing<String>,
}

/// What the import did.
pub struct Imported {
    pub count: usize,
    pub report: WriteReport,
    /// `.gitignore` gained the `secrets.sls` line.
    pub ignored_now: bool,
    /// The file was taken out of git's index (`git rm --cached`).
    pub unstaged: bool,
}

/// Reads `file` (default `conf/pillar/ENV/secrets.sls`) for `env`, which must hold no
/// encrypted secrets yet. Nothing is written.
pub fn prepare(store: &Store, env: &str, file: Option<&Path>) -> Result<Prepared> {
    let env = store.project.environment(env)?;
    let source = match file {
        Some(f) => f.to_path_buf(),
        None => store.project.env_pillar_dir(&env).join("secrets.sls"),
    };
    if store.project.secrets_path(&env).exists() {
        return Err(Error::usage(format!(
            "{env} already has encrypted secrets; importing would replace them"
        ))
        .with_hint(format!(
            "add the values one by one with `vault set {env} NAME`, or `vault edit {env}`"
        )));
    }
    let copies = copies_beside(&source);
    if !copies.is_empty() {
        let shown: Vec<String> = copies
            .iter()
            .map(|c| store.project.display_path(c))
            .collect();
        return Err(Error::usage(format!(
            "{}: copies of the plaintext beside it would stay behind: {}",
            store.project.display_path(&source),
            shown.join(", ")
        ))
        .with_hint("remove them (shred -u FILE), then import again"));
    }
    let (plaintext, text) = Plaintext::open(&source)?;
    let doc = Document::parse(env.as_str(), text)?;
    let changes = doc
        .entries()
        .iter()
        .filter(|e| e.plain())
        .filter_map(|e| {
            let reading = salt_reading(e.value().expose())?;
            Some(Change {
                name: e.name().to_string(),
                line: e.line(),
                salt_read: reading.describe(),
                text: Zeroizing::new(e.value().expose().to_string()),
            })
        })
        .collect();
    let in_git = tracked_in_history(store, &source);
    let in_index = in_index(store, &source);
    let missing_from_example = missing_from_example(store, &env, &doc);
    Ok(Prepared {
        env,
        source,
        plaintext,
        doc,
        changes,
        in_git,
        in_index,
        missing_from_example,
    })
}

/// Encrypts and signs the prepared document, then overwrites and removes the plaintext
/// and adds `secrets.sls` to `.gitignore`. The plaintext goes only once the encrypted
/// pair is written.
pub fn commit(store: &mut Store, p: Prepared) -> Result<Imported> {
    let Prepared {
        env,
        plaintext,
        doc,
        in_index,
        ..
    } = p;
    let count = doc.entries().len();
    let report = store.modify(&env, |current| match current {
        Some(_) => Err(Error::new(format!(
            "{env} gained encrypted secrets meanwhile; nothing was imported"
        ))),
        None => Ok(Some(doc)),
    })?;
    plaintext.shred()?;
    let unstaged = match in_index {
        Some(rel) => {
            Git::new(store.project.root()).output(&["rm", "--cached", "-q", "--", &rel])?;
            true
        }
        None => false,
    };
    let ignored_now = super::init::ensure_ignored(&store.project.root().join(".gitignore"))?;
    Ok(Imported {
        count,
        report,
        ignored_now,
        unstaged,
    })
}

/// The plaintext file, opened once: read through this descriptor, and overwritten
/// through it, so a file swapped for a link or another file meanwhile is never the one
/// zeroed, and a read-only one is refused before anything is written.
struct Plaintext {
    file: std::fs::File,
    path: PathBuf,
}

impl Plaintext {
    /// Opens `path` for reading and writing, never through a link (one planted in a
    /// repository could point at a private key, which the import would then
    /// overwrite), and reads it: a regular file of at most the document limit.
    fn open(path: &Path) -> Result<(Plaintext, SecretBytes)> {
        use rustix::fs::OFlags;
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let shown = path.display();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::usage(format!("{shown}: no such file"))
                    .with_hint("name the template's plaintext file: vault import ENV PATH"),
                _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => not_regular(path),
                std::io::ErrorKind::PermissionDenied => Error::usage(format!(
                    "{shown}: cannot open it for writing, and vault overwrites and removes it once imported"
                ))
                .with_hint(format!("make it writable (chmod u+w {shown}), then import again")),
                _ => Error::io("cannot open", path, e),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?;
        if !meta.is_file() {
            return Err(not_regular(path));
        }
        if meta.len() > MAX_DOCUMENT_BYTES as u64 {
            return Err(Error::usage(format!(
                "{shown}: larger than a secrets document can be"
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&file)
            .take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read", path, e))?;
        let plaintext = Plaintext {
            file,
            path: path.to_path_buf(),
        };
        Ok((plaintext, SecretBytes::new(bytes)))
    }

    /// Overwrites the file's bytes with zeros, flushed, then removes its name if it
    /// still names this file: the plaintext does not stay readable through a hard link
    /// or in the file's old blocks.
    fn shred(self) -> Result<()> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let path = &self.path;
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?;
        let zeros = vec![0u8; 64 * 1024];
        let mut at = 0u64;
        while at < meta.len() {
            let n = (meta.len() - at).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| Error::io("cannot overwrite", path, e))?;
            at += n as u64;
        }
        self.file
            .sync_all()
            .map_err(|e| Error::io("cannot overwrite", path, e))?;
        let same = std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if !same {
            return Err(Error::new(format!(
                "{}: replaced while it was imported; the file imported was overwritten, the one there now was left alone",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| Error::io("cannot remove", path, e))?;
        if let Some(dir) = path.parent() {
            crate::fs::sync_dir(dir);
        }
        Ok(())
    }
}

/// The copies editors and merge tools leave beside a file, which hold its plaintext and
/// which `secrets.sls` in .gitignore does not cover: any name that is the file's with
/// something added (`secrets.sls~`, `.bak`, `.orig.1`, `.~1~`, nano's `.save`, patch's
/// `.rej`), a hidden one built on it (vim's `.secrets.sls.swp`..`.swn`, Kate's, Emacs's
/// lock), Emacs's `#secrets.sls#`, and git mergetool's `secrets_BACKUP_1234.sls` (BASE,
/// LOCAL, REMOTE). The encrypted pair vault writes beside it is not a copy.
fn copies_beside(source: &Path) -> Vec<PathBuf> {
    let Some(name) = source.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let dir = source.parent().unwrap_or(Path::new(""));
    let stem = name.split_once('.').map_or(name, |(s, _)| s);
    let ours = [format!("{name}.age"), format!("{name}.age.sig")];
    let is_copy = |other: &str| {
        let merge = ["BACKUP", "BASE", "LOCAL", "REMOTE"]
            .iter()
            .any(|side| other.starts_with(&format!("{stem}_{side}_")));
        other != name
            && !ours.iter().any(|o| o == other)
            && (other.starts_with(name)
                || other.starts_with(&format!(".{name}"))
                || other.starts_with(&format!(".#{name}"))
                || other.starts_with(&format!("#{name}"))
                || merge)
    };
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    let mut copies: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| is_copy(&e.file_name().to_string_lossy()))
        .map(|e| dir.join(e.file_name()))
        .collect();
    copies.sort();
    copies
}

fn not_regular(path: &Path) -> Error {
    Error::usage(format!(
        "{}: not a regular file (a link, say): vault imports only a plain file, which it then removes",
        path.display()
    ))
    .with_hint("copy the file's contents to a regular file and import that")
}

/// Whether any commit of the project's repository holds `path`.
fn tracked_in_history(store: &Store, path: &Path) -> bool {
    let Some(rel) = repo_path(store, path) else {
        return false;
    };
    let git = Git::new(store.project.root());
    git.is_repo() && git.commits_touching(&rel).is_ok_and(|c| !c.is_empty())
}

/// `path` in the repository when git's index holds it.
fn in_index(store: &Store, path: &Path) -> Option<String> {
    let rel = repo_path(store, path)?;
    let git = Git::new(store.project.root());
    let listed = git.output(&["ls-files", "-z", "--", &rel]).ok()?;
    (git.is_repo() && !listed.is_empty()).then_some(rel)
}

/// `path` relative to the project's root, when it lies in it.
fn repo_path(store: &Store, path: &Path) -> Option<String> {
    let root = store.project.root();
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| {
            Some(
                p.strip_prefix(std::fs::canonicalize(root).ok()?)
                    .ok()?
                    .to_path_buf(),
            )
        })
        .and_then(|r| r.to_str().map(String::from))
}

/// The names of the environment's `secrets.ex` (the template's example file) that `doc`
/// lacks; none when there is no such file or it does not read.
fn missing_from_example(store: &Store, env: &EnvName, doc: &Document) -> Vec<String> {
    let example = store.project.env_pillar_dir(env).join("secrets.ex");
    let Ok(Some(bytes)) = crate::fs::read_own(&example, MAX_DOCUMENT_BYTES) else {
        return Vec::new();
    };
    let Ok(ex) = Document::parse(env.as_str(), SecretBytes::new(bytes)) else {
        return Vec::new();
    };
    ex.entries()
        .iter()
        .map(|e| e.name().to_string())
        .filter(|n| doc.get(n).is_none())
        .collect()
}

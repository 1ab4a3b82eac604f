//! The project's git repository, through the system `git`: files as they are at a
//! revision (for diffs, merges and the history checks) and the repository's settings.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where a version of the project's files comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// The files on disk.
    Worktree,
    /// The files as committed at a revision (anything `git rev-parse` reads).
    Rev(String),
}

impl Version {
    pub fn label(&self) -> String {
        match self {
            Version::Worktree => "working tree".into(),
            Version::Rev(r) => r.clone(),
        }
    }
}

/// A git repository holding the project.
#[derive(Debug, Clone)]
pub struct Git {
    root: PathBuf,
}

impl Git {
    pub fn new(root: &Path) -> Git {
        Git {
            root: root.to_path_buf(),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(&self.root).stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        self.command().args(args).output().map_err(|e| {
            Error::new(format!("cannot run git: {e}"))
                .with_hint("install git, or run from a machine that has it")
        })
    }

    /// Standard output of `git ARGS`, which must succeed; its error is git's first line.
    pub fn output(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.run(args)?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why
                .lines()
                .next()
                .unwrap_or("failed")
                .trim_start_matches("fatal: ");
            return Err(Error::new(format!("git {}: {why}", args.join(" "))));
        }
        Ok(out.stdout)
    }

    /// True when the project is inside a git work tree.
    pub fn is_repo(&self) -> bool {
        self.run(&["rev-parse", "--is-inside-work-tree"])
            .is_ok_and(|o| o.status.success())
    }

    /// The commit `rev` names, refusing anything else with a clear line.
    pub fn commit(&self, rev: &str) -> Result<String> {
        if rev.starts_with('-') {
            return Err(Error::usage(format!("'{rev}' is not a revision")));
        }
        let out = self.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])?;
        if !out.status.success() {
            return Err(
                Error::new(format!("'{rev}' is not a commit of this repository"))
                    .with_hint("name a commit, branch or tag: `git log --oneline` lists them"),
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The bytes of `path` (relative to the project root) at `rev`, or None when it has
    /// no such file.
    pub fn show(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let out = self.run(&["cat-file", "blob", &format!("{rev}:./{path}")])?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// The bytes of each of `paths` at `rev` (None where it has no such file), read by
    /// one `git cat-file --batch` rather than a process per file.
    pub fn show_all(&self, rev: &str, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        use std::io::{BufRead, BufReader, Read, Write};
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = String::from_utf8_lossy(&self.output(&["rev-parse", "--show-prefix"])?)
            .trim()
            .to_string();
        let mut child = self
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::new(format!("cannot run git: {e}")))?;
        let mut requests = String::new();
        for p in paths {
            requests.push_str(&format!("{rev}:{prefix}{p}\n"));
        }
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::new("git cat-file: no input"))?;
        // Written from a thread, so a full output pipe cannot stall the requests.
        let writer = std::thread::spawn(move || stdin.write_all(requests.as_bytes()));
        let mut out = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| Error::new("git cat-file: no output"))?,
        );
        let fail = |e: std::io::Error| Error::new(format!("git cat-file: {e}"));
        let mut result = Vec::with_capacity(paths.len());
        for _ in paths {
            let mut header = String::new();
            out.read_line(&mut header).map_err(fail)?;
            let fields: Vec<&str> = header.split_whitespace().collect();
            match fields.as_slice() {
                [_, "blob", size] => {
                    let size: usize = size
                        .parse()
                        .map_err(|_| Error::new("git cat-file: bad size"))?;
                    let mut bytes = vec![0u8; size + 1];
                    out.read_exact(&mut bytes).map_err(fail)?;
                    bytes.pop();
                    result.push(Some(bytes));
                }
                [_, _, size] => {
                    // Not a file (a folder): skip its content.
                    let size: u64 = size
                        .parse()
                        .map_err(|_| Error::new("git cat-file: bad size"))?;
                    std::io::copy(&mut (&mut out).take(size + 1), &mut std::io::sink())
                        .map_err(fail)?;
                    result.push(None);
                }
                _ => result.push(None),
            }
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(result)
    }

    /// True when the repository is a shallow clone: its history is cut off, so nothing
    /// older than the cut can be read.
    pub fn is_shallow(&self) -> Result<bool> {
        let out = self.output(&["rev-parse", "--is-shallow-repository"])?;
        Ok(String::from_utf8_lossy(&out).trim() == "true")
    }

    /// The commit HEAD names, or None before the first commit.
    pub fn head(&self) -> Result<Option<String>> {
        let out = self.run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    /// The commits up to HEAD that change any of `paths` (relative to the project root),
    /// parents first, each with its parents in that same path-limited history. Merges are
    /// kept whenever both sides changed the paths (`--full-history --simplify-merges`):
    /// git's default would follow only the side a merge took as it is, hiding the other.
    pub fn path_history(&self, paths: &[String]) -> Result<Vec<Commit>> {
        let mut args = vec![
            "--no-replace-objects",
            "log",
            "--no-show-signature",
            "--reverse",
            "--topo-order",
            "--full-history",
            "--simplify-merges",
            "--parents",
            "--format=%H %P%x1f%h%x1f%s",
            "HEAD",
            "--",
        ];
        let specs: Vec<String> = paths.iter().map(|p| format!("./{p}")).collect();
        args.extend(specs.iter().map(String::as_str));
        let out = self.output(&args)?;
        let mut commits = Vec::new();
        for line in String::from_utf8_lossy(&out).lines() {
            let mut fields = line.splitn(3, '\x1f');
            let (Some(ids), Some(short), subject) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let mut ids = ids.split_whitespace().map(str::to_string);
            let Some(id) = ids.next() else { continue };
            commits.push(Commit {
                id,
                parents: ids.collect(),
                short: short.to_string(),
                subject: subject.unwrap_or("").to_string(),
            });
        }
        Ok(commits)
    }

    /// One `git cat-file --batch` kept open, to read many files by one process.
    pub fn batch(&self) -> Result<Batch> {
        let prefix = String::from_utf8_lossy(&self.output(&["rev-parse", "--show-prefix"])?)
            .trim()
            .to_string();
        let mut child = self
            .command()
            .args(["--no-replace-objects", "cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::new(format!("cannot run git: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(std::io::BufReader::new);
        match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => Ok(Batch {
                child,
                stdin,
                stdout,
                prefix,
            }),
            _ => Err(Error::new("git cat-file: no pipe")),
        }
    }

    /// The names of the files directly in folder `dir` at `rev`.
    pub fn list(&self, rev: &str, dir: &str) -> Result<Vec<String>> {
        let out = self.run(&[
            "ls-tree",
            "--name-only",
            "-z",
            rev,
            "--",
            &format!("./{dir}/"),
        ])?;
        if !out.status.success() {
            return Ok(Vec::new());
        }
        Ok(out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .filter_map(|p| std::str::from_utf8(p).ok())
            .filter_map(|p| p.rsplit('/').next().map(str::to_string))
            .collect())
    }

    /// Commits (newest first) that touched `path`, on any branch or remote. Every one:
    /// `--full-history`, so a merge that took one side whole still leads to the other
    /// side's (git's default simplification would follow only the side it took).
    pub fn commits_touching(&self, path: &str) -> Result<Vec<String>> {
        let out = self.run(&[
            "log",
            "--all",
            "--full-history",
            "--format=%H",
            "--",
            &format!("./{path}"),
        ])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The repository's private folder (`.git`), for state shared by one git operation.
    pub fn git_dir(&self) -> Result<PathBuf> {
        let out = self.output(&["rev-parse", "--absolute-git-dir"])?;
        Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
    }

    /// The folder git runs hooks from (`core.hooksPath` or `.git/hooks`).
    pub fn hooks_dir(&self) -> Result<PathBuf> {
        let out = self.output(&["rev-parse", "--git-path", "hooks"])?;
        let p = PathBuf::from(String::from_utf8_lossy(&out).trim());
        Ok(if p.is_absolute() {
            p
        } else {
            self.root.join(p)
        })
    }

    /// Sets `key` to `value` in this repository's own config.
    pub fn set_config(&self, key: &str, value: &str) -> Result<()> {
        self.output(&["config", "--local", key, value]).map(drop)
    }

    /// Paths staged in the index (added, copied, modified or renamed), relative to the root.
    pub fn staged(&self) -> Result<Vec<String>> {
        let out = self.output(&[
            "diff",
            "--cached",
            "--name-only",
            "--diff-filter=ACMR",
            "-z",
            "--relative",
        ])?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }
}

/// A commit of a path-limited history (see [`Git::path_history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    /// Its parents in that history: the nearest commits before it that change the paths.
    pub parents: Vec<String>,
    pub short: String,
    pub subject: String,
}

/// An object read by [`Batch`]: its id, kind (`blob` for a file, `tree` for a folder),
/// size, and its bytes when it is a file within the limit asked for.
pub struct Object {
    pub id: String,
    pub kind: String,
    pub size: u64,
    pub blob: Option<Vec<u8>>,
}

/// A running `git cat-file --batch`: each request is answered before the next is sent,
/// so neither pipe can fill up.
pub struct Batch {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    prefix: String,
}

impl Batch {
    /// The object at `path` (relative to the project root) in commit `rev`, or None
    /// when it has none. A file larger than `limit` bytes is skipped, not read.
    pub fn object(&mut self, rev: &str, path: &str, limit: u64) -> Result<Option<Object>> {
        use std::io::{BufRead, Read, Write};
        let fail = |e: std::io::Error| Error::new(format!("git cat-file: {e}"));
        if path.contains('\n') || rev.contains('\n') {
            return Ok(None);
        }
        writeln!(self.stdin, "{rev}:{}{path}", self.prefix).map_err(fail)?;
        self.stdin.flush().map_err(fail)?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).map_err(fail)?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let [id, kind, size] = fields.as_slice() else {
            // "<rev>:<path> missing"
            return Ok(None);
        };
        let size: u64 = size
            .parse()
            .map_err(|_| Error::new("git cat-file: bad size"))?;
        let keep = *kind == "blob" && size <= limit;
        let mut bytes = Vec::new();
        let read = if keep {
            (&mut self.stdout).take(size + 1).read_to_end(&mut bytes)
        } else {
            std::io::copy(&mut (&mut self.stdout).take(size + 1), &mut std::io::sink())
                .map(|n| n as usize)
        };
        if read.map_err(fail)? as u64 != size + 1 {
            return Err(Error::new("git cat-file: its output was cut short"));
        }
        bytes.pop();
        Ok(Some(Object {
            id: id.to_string(),
            kind: kind.to_string(),
            size,
            blob: keep.then_some(bytes),
        }))
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Its input closes as it is dropped; a git still running is not left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

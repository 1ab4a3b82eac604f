//! Replacing an environment's two files (ciphertext and signed sidecar) as one, and
//! recovering from a writer killed part-way.
//!
//! A write puts both new files beside their targets (flushed to disk), then writes a
//! journal naming them, renames both into place, and removes the journal. Killed before
//! the journal exists, the old pair stands and the next writer removes the leftovers;
//! killed after, the new pair is whole on disk and the next vault finishes the renames.
//! Either way the environment decrypts to the old or the new content, never neither.
//! Each writer also leaves its pid in an owner file while it holds the lock, so a lock
//! left by a killed vault is recognised and reported.

use crate::error::{Error, Result};
use crate::fs::{checkpoint, sync_dir};

use std::path::{Path, PathBuf};

const JOURNAL: &str = ".vault-journal";
const OWNER: &str = ".vault-writer";
const HEADER: &str = "vault journal v1";
/// A journal names two files; anything longer is not one vault wrote.
const MAX_JOURNAL_BYTES: usize = 512;

/// Replaces the files in `dir` named by `files` (file name, new bytes) all together,
/// keeping each existing file's mode (0644 for a new one).
pub fn replace_all(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let mut temps: Vec<(PathBuf, &str)> = Vec::with_capacity(files.len());
    let staged = stage(dir, files, &mut temps);
    if let Err(e) = staged {
        for (t, _) in &temps {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    let mut journal = String::from(HEADER);
    journal.push('\n');
    for (tmp, target) in &temps {
        let name = tmp.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        journal.push_str(&format!("{name} {target}\n"));
    }
    let journal_path = dir.join(JOURNAL);
    if let Err(e) = crate::fs::write_atomic(
        &journal_path,
        journal.as_bytes(),
        crate::fs::Mode::KeepOr0644,
    ) {
        for (t, _) in &temps {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    checkpoint("journal-written");
    // From here the new files are the environment: a failure leaves the journal for
    // the next vault to finish.
    for (tmp, target) in &temps {
        let to = dir.join(target);
        std::fs::rename(tmp, &to).map_err(|e| Error::io("cannot write", &to, e))?;
        checkpoint(&format!("renamed-{target}"));
    }
    sync_dir(dir);
    std::fs::remove_file(&journal_path)
        .map_err(|e| Error::io("cannot remove", &journal_path, e))?;
    sync_dir(dir);
    Ok(())
}

fn stage<'a>(
    dir: &Path,
    files: &[(&'a str, &[u8])],
    temps: &mut Vec<(PathBuf, &'a str)>,
) -> Result<()> {
    for (target, bytes) in files {
        let path = dir.join(target);
        let tmp = crate::fs::write_temp(dir, &path, bytes, crate::fs::Mode::KeepOr0644)?;
        checkpoint(&format!("temp-written-{target}"));
        let (_, kept) = tmp
            .keep()
            .map_err(|e| Error::io("cannot write", &path, e.error))?;
        temps.push((kept, target));
    }
    sync_dir(dir);
    checkpoint("temps-synced");
    Ok(())
}

/// Whether a write of `dir` was interrupted after its new files were complete (or
/// something sits where its journal would: the lock is taken and it is examined).
pub fn pending(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(JOURNAL)).is_ok()
}

/// Marks `dir` as being written by this process; call with the lock held. Returns what
/// a killed predecessor left, in words, if anything (after repairing it).
pub fn take_over(dir: &Path) -> Result<Option<String>> {
    let owner = dir.join(OWNER);
    let previous = read_owner(&owner)?;
    let repaired = recover(dir)?;
    crate::fs::write_own(&owner, format!("{}\n", std::process::id()).as_bytes())?;
    let who = previous
        .map(|p| format!("a vault (pid {p}) was stopped while writing, and its lock is free now"));
    Ok(match (who, repaired) {
        (Some(w), Some(r)) => Some(format!("{w}; {r}")),
        (Some(w), None) => Some(format!("{w}; nothing was left half-written")),
        (None, Some(r)) => Some(r),
        (None, None) => None,
    })
}

/// The pid a killed writer left in its owner file, if any. The file must be what vault
/// writes there, a line of at most 10 digits (or empty: killed mid-write); anything
/// else (a link, a FIFO, other content) is refused and never shown.
fn read_owner(owner: &Path) -> Result<Option<String>> {
    let Some(bytes) = crate::fs::read_own(owner, 4096)? else {
        return Ok(None);
    };
    let digits = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if digits.len() <= 10 && digits.iter().all(u8::is_ascii_digit) {
        let pid = String::from_utf8_lossy(digits).into_owned();
        return Ok((!pid.is_empty()).then_some(pid));
    }
    Err(Error::new(format!(
        "{} is not a writer file vault wrote (it holds something other than a pid); refusing to use it",
        owner.display()
    ))
    .with_hint(format!("check who put it there (git log -- {}), then remove it", owner.display())))
}

/// Ends this process's ownership of `dir` (the lock is released right after).
pub fn release(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(OWNER));
}

/// Finishes a journaled write, or removes the temporary files of one that never reached
/// its journal. Says what it did.
fn recover(dir: &Path) -> Result<Option<String>> {
    let journal_path = dir.join(JOURNAL);
    let mut done = None;
    if let Some(bytes) = crate::fs::read_own(&journal_path, MAX_JOURNAL_BYTES)? {
        let damaged = || {
            Error::new(format!("{} is damaged", journal_path.display()))
                .with_hint("compare the folder with `git status`; remove the journal once the two files agree (`vault check`)")
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| damaged())?;
        let pairs = parse(text).ok_or_else(damaged)?;
        for (tmp, target) in &pairs {
            let from = dir.join(tmp);
            match std::fs::symlink_metadata(&from) {
                // Only a file vault wrote is moved into place: never a link or a FIFO.
                Ok(meta) if !meta.is_file() => return Err(damaged()),
                Ok(_) => {
                    let to = dir.join(target);
                    std::fs::rename(&from, &to).map_err(|e| Error::io("cannot write", &to, e))?;
                }
                Err(_) => {}
            }
        }
        sync_dir(dir);
        std::fs::remove_file(&journal_path)
            .map_err(|e| Error::io("cannot remove", &journal_path, e))?;
        sync_dir(dir);
        done = Some("finished its write (both new files were complete)".to_string());
    }
    let mut removed = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if is_temp_name(&name) && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 && done.is_none() {
        done = Some(format!(
            "removed {removed} unfinished file(s); the previous version stands"
        ));
    }
    Ok(done)
}

fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(".vault-")
        .and_then(|r| r.strip_suffix(".tmp"))
        .is_some_and(|mid| !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The journal's (temporary file, target) pairs; only vault's own names are accepted,
/// each target at most once, so a planted journal cannot move other files.
fn parse(text: &str) -> Option<Vec<(String, String)>> {
    let mut lines = text.split_terminator('\n');
    if lines.next()? != HEADER {
        return None;
    }
    let targets = [crate::project::SECRETS_FILE, crate::project::SIDECAR_FILE];
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in lines {
        let (tmp, target) = line.split_once(' ')?;
        if !is_temp_name(tmp)
            || !targets.contains(&target)
            || pairs.iter().any(|(_, t)| t == target)
        {
            return None;
        }
        pairs.push((tmp.to_string(), target.to_string()));
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// Whether `name` is one of vault's work files in a pillar folder: the journal, the
/// writer file, or a temporary file.
pub fn is_work_file(name: &str) -> bool {
    name == JOURNAL || name == OWNER || is_temp_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_both_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secrets.sls.age"), b"old").unwrap();
        replace_all(
            d.path(),
            &[("secrets.sls.age", b"new"), ("secrets.sls.age.sig", b"sig")],
        )
        .unwrap();
        assert_eq!(
            std::fs::read(d.path().join("secrets.sls.age")).unwrap(),
            b"new"
        );
        assert_eq!(
            std::fs::read(d.path().join("secrets.sls.age.sig")).unwrap(),
            b"sig"
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_journal_is_finished_and_leftovers_removed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secrets.sls.age"), b"old").unwrap();
        std::fs::write(d.path().join(".vault-abc123.tmp"), b"new").unwrap();
        std::fs::write(
            d.path().join(JOURNAL),
            "vault journal v1\n.vault-abc123.tmp secrets.sls.age\n",
        )
        .unwrap();
        let said = take_over(d.path()).unwrap().unwrap();
        assert!(said.contains("finished its write"), "{said}");
        assert_eq!(
            std::fs::read(d.path().join("secrets.sls.age")).unwrap(),
            b"new"
        );
        release(d.path());
        std::fs::write(d.path().join(".vault-zz9.tmp"), b"half").unwrap();
        std::fs::write(d.path().join(OWNER), "4242\n").unwrap();
        let said = take_over(d.path()).unwrap().unwrap();
        assert!(
            said.contains("pid 4242") && said.contains("previous version stands"),
            "{said}"
        );
        assert_eq!(
            std::fs::read(d.path().join("secrets.sls.age")).unwrap(),
            b"new"
        );
    }

    #[test]
    fn a_planted_journal_moves_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x"), b"x").unwrap();
        std::fs::write(
            d.path().join(JOURNAL),
            "vault journal v1\nx ../../etc/passwd\n",
        )
        .unwrap();
        assert!(take_over(d.path()).is_err());
        assert!(d.path().join("x").exists());
    }

    #[test]
    fn a_writer_file_that_is_a_link_is_neither_read_nor_written_through() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("deploy.key");
        std::fs::write(&key, b"-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        std::os::unix::fs::symlink(&key, d.path().join(OWNER)).unwrap();
        let err = take_over(d.path()).unwrap_err();
        assert!(err.message().contains("symbolic link"), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
        assert_eq!(
            std::fs::read(&key).unwrap(),
            b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn a_writer_file_must_hold_a_pid() {
        let d = tempfile::tempdir().unwrap();
        for bad in [
            &b"12 34\n"[..],
            b"secret-value\n",
            b"12345678901\n",
            b"1\n\n",
        ] {
            std::fs::write(d.path().join(OWNER), bad).unwrap();
            let err = take_over(d.path()).unwrap_err();
            assert!(err.message().contains("not a writer file"), "{err}");
            assert!(!err.to_string().contains("secret-value"), "{err}");
        }
        for good in [&b""[..], b"4242\n", b"4242"] {
            std::fs::write(d.path().join(OWNER), good).unwrap();
            take_over(d.path()).unwrap();
        }
    }

    #[test]
    fn a_journal_naming_a_target_twice_or_a_link_moves_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".vault-a.tmp"), b"x").unwrap();
        std::fs::write(
            d.path().join(JOURNAL),
            "vault journal v1\n.vault-a.tmp secrets.sls.age\n.vault-a.tmp secrets.sls.age\n",
        )
        .unwrap();
        assert!(take_over(d.path()).is_err());
        std::fs::write(
            d.path().join(JOURNAL),
            "vault journal v1\n.vault-b.tmp secrets.sls.age\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join(".vault-b.tmp")).unwrap();
        assert!(take_over(d.path()).is_err());
        assert!(!d.path().join("secrets.sls.age").exists());
    }
}

//! The file system as vault uses it: size-limited reads, atomic writes, folder
//! flushes, and the pause and fail points the crash tests stop vault at.

use crate::error::{Error, Result};
use rustix::fs::OFlags;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// Stops at a named step when `VAULT_TEST_PAUSE` is set (printing the step on stderr,
/// then SIGSTOP), so crash tests can SIGKILL vault exactly there.
pub fn checkpoint(step: &str) {
    if std::env::var_os("VAULT_TEST_PAUSE").is_some() {
        eprintln!("vault-test-pause: {step}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
    }
}

/// Flushes a folder's entries (a rename or removal) to disk; best effort.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads `path` whole, refusing one larger than `limit`; None when it does not exist.
/// Opened without blocking and read only when it is a regular file, so a FIFO, a
/// device or a link to one is refused at once rather than waited on or read forever.
pub fn read_limited(path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    read_regular(path, limit, OFlags::empty())
}

/// Like [`read_limited`], but a symbolic link is refused rather than followed: for
/// vault's own work files, which vault never makes links.
pub fn read_own(path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    read_regular(path, limit, OFlags::NOFOLLOW)
}

fn read_regular(path: &Path, limit: usize, extra: OFlags) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = OFlags::NONBLOCK | OFlags::NOCTTY | extra;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::new(format!(
                "{} is a symbolic link; refusing to follow it",
                path.display()
            ))
            .with_hint(format!(
                "vault never makes it a link: remove it (rm {})",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?;
    if !meta.is_file() {
        return Err(Error::new(format!(
            "{} is not a regular file (a FIFO, a device or a folder); refusing to read it",
            path.display()
        ))
        .with_hint(format!(
            "replace it with the file itself: rm {}",
            path.display()
        )));
    }
    let len = meta.len();
    if len > limit as u64 {
        return Err(Error::new(format!(
            "{} is {len} bytes, over the limit of {limit} bytes",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", path, e))?;
    Ok(Some(bytes))
}

/// Creates or replaces the contents of `path`, one of vault's own work files: never
/// through a symbolic link (refused), mode 0644 for a new one.
pub fn write_own(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            Error::new(format!(
                "{} is a symbolic link; refusing to write through it",
                path.display()
            ))
            .with_hint(format!(
                "vault never makes it a link: remove it (rm {})",
                path.display()
            ))
        } else {
            Error::io("cannot write", path, e)
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(fail)?;
    let meta = f.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(Error::new(format!(
            "{} is not a regular file; refusing to write to it",
            path.display()
        )));
    }
    f.write_all(bytes).map_err(fail)
}

/// How an atomic write treats the file it replaces.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Keep an existing file's mode; a new file gets 0644 (ciphertext, layout files).
    KeepOr0644,
    /// Always 0600, from the first byte written (plaintext exports).
    Private,
    /// Create only: refuse when the file exists (returns `Created::No`).
    CreateNew,
    /// Create only, mode 0600 (this machine's own secrets).
    CreateNewPrivate,
}

/// Whether a `Mode::CreateNew` write created the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    No,
}

/// Writes `path` atomically: a temporary file in the same folder, flushed to disk,
/// renamed into place (or linked, for `CreateNew`), and the folder flushed. On any
/// failure the old file is left as it was and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> Result<Created> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| Error::io("cannot write", path, e);
    let tmp = write_temp(dir, path, bytes, mode)?;
    failpoint("before-rename").map_err(fail)?;
    let created = match mode {
        Mode::CreateNew | Mode::CreateNewPrivate => match tmp.persist_noclobber(path) {
            Ok(_) => Created::Yes,
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Created::No,
            Err(e) => return Err(fail(e.error)),
        },
        _ => {
            tmp.persist(path).map_err(|e| fail(e.error))?;
            Created::Yes
        }
    };
    sync_dir(dir);
    Ok(created)
}

/// A temporary file beside `path` in `dir` holding `bytes`, flushed to disk and given
/// the mode `path` will have: created 0600, so nothing is readable before the mode is
/// set. The caller renames it into place (it is removed if dropped first).
pub fn write_temp(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    mode: Mode,
) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| Error::io("cannot write", path, e);
    let perms = match (mode, std::fs::metadata(path)) {
        (Mode::KeepOr0644, Ok(meta)) => meta.permissions(),
        (Mode::Private | Mode::CreateNewPrivate, _) => std::fs::Permissions::from_mode(0o600),
        _ => std::fs::Permissions::from_mode(0o644),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".vault-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    failpoint("before-fsync").map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.as_file().set_permissions(perms).map_err(fail)?;
    Ok(tmp)
}

/// Fails on purpose at the step named by `VAULT_TEST_FAILPOINT`, so tests can show a
/// failure at that step leaves the previous file intact.
pub fn failpoint(step: &str) -> std::io::Result<()> {
    match std::env::var_os("VAULT_TEST_FAILPOINT") {
        Some(v) if v == step => Err(std::io::Error::other(format!("failpoint {step}"))),
        _ => Ok(()),
    }
}

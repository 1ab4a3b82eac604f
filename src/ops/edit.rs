//! `vault edit`: the plaintext in a private folder on tmpfs, the user's editor, and
//! validation before anything is re-encrypted. The plaintext is overwritten and
//! removed on every way out: success, invalid content, editor failure, and every
//! signal that can be caught and whose default would end vault ([`CAUGHT`]); vault then
//! ends as that signal would have ended it. SIGKILL and SIGSTOP cannot be caught, and a
//! fault in vault itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE) cannot safely be returned
//! from: the process holds no core (see `crate::process`), and the next `vault edit`
//! wipes the folder the killed one left.

use crate::document::{Document, MAX_DOCUMENT_BYTES};
use crate::error::{Error, Result};
use crate::notice::{Level, Notices};
use crate::secret::SecretBytes;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the editing session ended with.
pub enum Outcome {
    /// New, valid content different from what was there.
    Changed(Document),
    /// The user saved nothing new.
    Unchanged,
}

/// The private folder the plaintext lives in while it is edited.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// A 0700 folder under `$XDG_RUNTIME_DIR` or `/dev/shm`, refusing a disk-backed one
    /// unless `allow_disk`. Plaintext a killed session left there is removed, told to
    /// `notices`.
    pub fn create(allow_disk: bool, notices: &dyn Notices) -> Result<Workspace> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            candidates.push(PathBuf::from(x));
        }
        candidates.push(PathBuf::from("/dev/shm"));
        Workspace::create_in(&candidates, allow_disk, notices)
    }

    /// The same, trying `candidates` in order.
    pub fn create_in(
        candidates: &[PathBuf],
        allow_disk: bool,
        notices: &dyn Notices,
    ) -> Result<Workspace> {
        let base = candidates.iter().find(|p| is_memory_fs(p)).cloned();
        let base = match base {
            Some(b) => b,
            None if allow_disk => std::env::temp_dir(),
            None => {
                return Err(Error::new(format!(
                    "no memory-backed folder to edit in (tried {}); refusing to write plaintext to disk",
                    candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ))
                .with_hint("set XDG_RUNTIME_DIR to a tmpfs folder, or pass --allow-disk-tmp to accept the risk"));
            }
        };
        remove_abandoned(&base, notices);
        let prefix = format!("vault-edit-{}-", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| Error::io("cannot create a private folder in", &base, e))?;
        let ws = Workspace { dir };
        ws.verify()?;
        Ok(ws)
    }

    /// The folder, verified to be a real folder of ours that only we can enter: a
    /// link or someone else's folder in its place is refused.
    fn verify(&self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let p = self.dir.path();
        let meta = std::fs::symlink_metadata(p).map_err(|e| Error::io("cannot read", p, e))?;
        if !meta.is_dir()
            || meta.uid() != rustix::process::geteuid().as_raw()
            || meta.mode() & 0o077 != 0
        {
            return Err(Error::new(format!(
                "{} is not a private folder of yours; refusing to put plaintext there",
                p.display()
            )));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Overwrites every file in the folder (the editor's backups and swap files too)
    /// with zeros before the folder is removed.
    pub fn wipe(&self) {
        wipe_dir(self.dir.path());
    }
}

/// Overwrites every file in `dir` with zeros, then removes the files.
fn wipe_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.is_file() {
                if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                    let zeros = vec![0u8; meta.len() as usize];
                    let _ = f.write_all(&zeros);
                    let _ = f.sync_all();
                }
            }
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Whether `path` is on tmpfs (or ramfs): memory, never disk.
fn is_memory_fs(path: &Path) -> bool {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    const RAMFS_MAGIC: u64 = 0x8584_58f6;
    match rustix::fs::statfs(path) {
        Ok(st) => {
            let t = st.f_type as u64;
            (t == TMPFS_MAGIC || t == RAMFS_MAGIC) && path.is_dir()
        }
        Err(_) => false,
    }
}

/// The editor command: `$VISUAL`, then `$EDITOR`, split as a shell splits words; `vi` last,
/// and only on a terminal: without one, vi would draw the decrypted file on whatever
/// reads its output (a log, a pipe).
pub fn editor_command() -> Result<Vec<String>> {
    for var in ["VISUAL", "EDITOR"] {
        if let Some(v) = std::env::var_os(var) {
            let v = v.to_string_lossy().to_string();
            if v.trim().is_empty() {
                continue;
            }
            let words = shell_words::split(&v)
                .map_err(|e| Error::new(format!("cannot read ${var}: {e}")))?;
            return Ok(words);
        }
    }
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(Error::new(
            "no $VISUAL or $EDITOR, and no terminal for vi: nothing was opened",
        )
        .with_hint(
            "set EDITOR to an editor that runs here, or set one secret without an editor: `printf %s \"$VALUE\" | vault set ENV NAME`",
        ));
    }
    Ok(vec!["vi".to_string()])
}

/// Runs the editing loop on `original` (the current plaintext). Invalid content
/// reopens the editor with the error as a comment on top, and told to `notices`;
/// saving it unchanged gives up.
pub fn run(
    env: &str,
    original: &SecretBytes,
    allowed: &BTreeSet<String>,
    allow_disk: bool,
    notices: &dyn Notices,
) -> Result<Outcome> {
    let signal = Arc::new(AtomicUsize::new(0));
    let ids = watch_signals(&signal)?;
    let result = edit_until_valid(env, original, allowed, allow_disk, notices, &signal);
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    let sig = signal.load(Ordering::SeqCst);
    if sig != 0 {
        // The workspace is already wiped (it is dropped when the session returns); the
        // caller's lock is released on the way out, then vault ends by the signal.
        crate::process::end_by_signal(sig as i32);
        return Err(Error::silent_exit(128 + sig as i32));
    }
    result
}

/// The signals watched while the plaintext exists: every one whose default action
/// ends the process (terminating, or dumping core) and that a handler may return from.
/// The real-time signals (SIGRTMIN..=SIGRTMAX, default: terminate) are added to these.
pub const CAUGHT: &[i32] = &[
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGTRAP,
    signal_hook::consts::SIGABRT,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGUSR2,
    signal_hook::consts::SIGPIPE,
    signal_hook::consts::SIGALRM,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGXCPU,
    signal_hook::consts::SIGXFSZ,
    signal_hook::consts::SIGVTALRM,
    signal_hook::consts::SIGPROF,
    signal_hook::consts::SIGIO,
    signal_hook::consts::SIGSYS,
    #[cfg(target_os = "linux")]
    rustix::process::Signal::STKFLT.as_raw(),
    #[cfg(target_os = "linux")]
    rustix::process::Signal::POWER.as_raw(),
];

/// The real-time signals, on Linux as glibc and musl leave them to programs (none
/// elsewhere).
fn realtime() -> impl Iterator<Item = i32> {
    (34..=64).filter(|_| cfg!(target_os = "linux"))
}

/// Each of [`CAUGHT`] and the real-time signals recorded in `signal` rather than
/// killing vault, so the plaintext is wiped on the way out.
fn watch_signals(signal: &Arc<AtomicUsize>) -> Result<Vec<signal_hook::SigId>> {
    let mut ids = Vec::new();
    for sig in CAUGHT.iter().copied().chain(realtime()) {
        let id = signal_hook::flag::register_usize(sig, Arc::clone(signal), sig as usize)
            .map_err(|e| Error::new(format!("cannot set up signal handling: {e}")))?;
        ids.push(id);
    }
    Ok(ids)
}

/// The editing session proper: the workspace lives (and is wiped) within it.
fn edit_until_valid(
    env: &str,
    original: &SecretBytes,
    allowed: &BTreeSet<String>,
    allow_disk: bool,
    notices: &dyn Notices,
    signal: &AtomicUsize,
) -> Result<Outcome> {
    let ws = Workspace::create(allow_disk, notices)?;
    let file = ws.path().join("secrets.sls");
    let editor = editor_command()?;
    let mut content = SecretBytes::new(original.expose().to_vec());
    loop {
        write_private(&file, content.expose())?;
        crate::fs::checkpoint("plaintext-written");
        run_editor(&editor, &file, signal)?;
        crate::fs::checkpoint("edited");
        let edited = read_back(&file)?;
        let body = strip_error_banner(edited.expose());
        if body == original.expose() {
            return Ok(Outcome::Unchanged);
        }
        let err =
            match Document::parse_allowing(env, SecretBytes::new(body.to_vec()), allowed.clone()) {
                Ok(doc) => return Ok(Outcome::Changed(doc)),
                Err(err) => err,
            };
        if body == strip_error_banner(content.expose()) {
            // Saved again without a fix: give up, leaving the file as it was.
            return Err(Error::new(format!("{err} (nothing was changed)")));
        }
        notices.notice(Level::Warning, &format!("error: {err}"));
        content = with_error_banner(&err, body);
    }
}

const BANNER_START: &str = "# vault: ";
const BANNER_END: &str = "# vault: fix the error above, or save the file unchanged to give up.\n";

fn with_error_banner(err: &Error, body: &[u8]) -> SecretBytes {
    let banner = format!(
        "{BANNER_START}error: {}\n{BANNER_END}",
        err.message().replace('\n', " ")
    );
    let mut out = Vec::with_capacity(banner.len() + body.len());
    out.extend_from_slice(banner.as_bytes());
    out.extend_from_slice(body);
    SecretBytes::new(out)
}

/// The content without vault's error banner, if it is still on top.
fn strip_error_banner(text: &[u8]) -> &[u8] {
    if !text.starts_with(BANNER_START.as_bytes()) {
        return text;
    }
    match text
        .windows(BANNER_END.len())
        .position(|w| w == BANNER_END.as_bytes())
    {
        Some(i) => &text[i + BANNER_END.len()..],
        None => text,
    }
}

/// Wipes and removes editing folders of ours left by a `vault edit` that was killed
/// (its pid no longer runs), saying so: plaintext must not outlive its editor.
fn remove_abandoned(base: &Path, notices: &dyn Notices) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("vault-edit-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let alive = rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        let ours = std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if alive || !ours {
            continue;
        }
        wipe_dir(&e.path());
        let _ = std::fs::remove_dir(e.path());
        notices.notice(
            Level::Note,
            &format!(
                "removed plaintext left in {} by a vault edit that was killed (pid {pid})",
                e.path().display()
            ),
        );
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| Error::io("cannot write", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("cannot write", path, e))?;
    Ok(())
}

fn read_back(path: &Path) -> Result<SecretBytes> {
    match crate::fs::read_limited(path, MAX_DOCUMENT_BYTES) {
        Ok(Some(b)) => Ok(SecretBytes::new(b)),
        Ok(None) => Err(Error::new(
            "the editor removed the file; nothing was changed",
        )),
        Err(e) => Err(Error::new(format!("{e}; nothing was changed"))),
    }
}

/// Runs the editor and waits, watching for a signal to vault; on one, the editor is
/// stopped and the session ends (the caller wipes the plaintext).
fn run_editor(editor: &[String], file: &Path, signal: &AtomicUsize) -> Result<()> {
    let (program, args) = editor
        .split_first()
        .ok_or_else(|| Error::new("the editor command is empty"))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .arg(file)
        .spawn()
        .map_err(|e| {
            Error::new(format!("cannot start the editor '{program}': {e}"))
                .with_hint("set $VISUAL or $EDITOR")
        })?;
    loop {
        if signal.load(Ordering::SeqCst) != 0 {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::TERM,
            );
            let _ = child.wait();
            return Err(Error::new("interrupted; nothing was changed"));
        }
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(Error::new(format!(
                    "the editor exited with {status}; nothing was changed"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::new(format!("cannot wait for the editor: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::Quiet;

    #[test]
    fn a_link_planted_in_the_private_folder_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let ws = Workspace::create_in(&[PathBuf::from("/dev/shm")], true, &Quiet).unwrap();
        let planted = ws.path().join("secrets.sls");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(write_private(&planted, b"secrets:\n  A: plain\n").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    }

    #[test]
    fn refuses_a_disk_backed_folder_unless_allowed() {
        let disk = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        if is_memory_fs(&disk) {
            eprintln!(
                "SKIPPED: this checkout is on tmpfs, so it cannot stand for a disk-backed folder"
            );
            return;
        }
        let err = Workspace::create_in(std::slice::from_ref(&disk), false, &Quiet)
            .err()
            .unwrap();
        assert!(
            err.message()
                .contains("refusing to write plaintext to disk"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("--allow-disk-tmp"));
        let ws = Workspace::create_in(&[disk], true, &Quiet).unwrap();
        let mode = std::fs::metadata(ws.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn uses_tmpfs_when_there_is_one() {
        let shm = PathBuf::from("/dev/shm");
        if !is_memory_fs(&shm) {
            return;
        }
        let ws = Workspace::create_in(&[PathBuf::from("/nonexistent"), shm.clone()], false, &Quiet)
            .unwrap();
        assert!(ws.path().starts_with(&shm));
        let path = ws.path().to_path_buf();
        std::fs::write(path.join("x"), b"plain").unwrap();
        drop(ws);
        assert!(!path.exists());
    }

    #[test]
    fn error_banner_round_trip() {
        let body = b"secrets:\n  A: [\n";
        let with = with_error_banner(&Error::new("staging: line 2: bad"), body);
        assert!(with
            .expose()
            .starts_with(b"# vault: error: staging: line 2: bad\n"));
        assert_eq!(strip_error_banner(with.expose()), body);
        assert_eq!(strip_error_banner(body), body);
    }
}

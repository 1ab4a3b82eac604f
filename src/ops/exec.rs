//! Running a program with the secrets in its environment: `execve`, no shell, so the
//! program replaces vault, gets signals directly, and its exit status is vault's.

use crate::document::Document;
use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Replaces this process with `program`; returns only on failure, with the exit status
/// to report for it, as shells do: 127 when there is no such program, 126 otherwise.
///
/// `clean` starts from an environment holding only `PATH` and the secrets. `warn` is
/// told the name (never the value) of each variable a secret overrides.
pub fn exec(
    doc: &Document,
    program: &OsStr,
    args: &[std::ffi::OsString],
    clean: bool,
    warn: impl Fn(&str),
) -> (Error, i32) {
    let shown = program.to_string_lossy().into_owned();
    // Resolved here, with access(2): std would try execve in each PATH folder in turn,
    // copying the whole environment (secrets included) into the kernel at every try.
    let Some(path) = resolve(program) else {
        return (not_found(&shown), 127);
    };
    // The document refuses such names already (unless its signed manifest allows
    // them); never exported otherwise, whatever built it.
    if let Some(shown) = doc
        .entries()
        .iter()
        .filter(|e| !doc.allowed().contains(e.name()))
        .find_map(|e| crate::document::controlling(e.name()))
    {
        return (
            Error::new(format!(
                "{shown} changes how programs or the loader behave; vault never exports it"
            )),
            126,
        );
    }
    let mut cmd = Command::new(path);
    cmd.arg0(program).args(args);
    if clean {
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
    }
    for e in doc.entries() {
        if !clean && std::env::var_os(e.name()).is_some() {
            warn(e.name());
        }
        cmd.env(e.name(), OsStr::from_bytes(e.value().expose().as_bytes()));
    }
    let err = cmd.exec();
    match err.kind() {
        std::io::ErrorKind::NotFound => (not_found(&shown), 127),
        std::io::ErrorKind::PermissionDenied => (
            Error::new(format!("cannot run {shown}: permission denied")),
            126,
        ),
        _ => (Error::new(format!("cannot run {shown}: {err}")), 126),
    }
}

fn not_found(shown: &str) -> Error {
    Error::new(format!("cannot run {shown}: command not found")).with_hint(
        "vault runs the program directly, without a shell; name a program on PATH or give its path",
    )
}

/// The file `program` names: itself when it holds a `/`, else the first executable
/// file of that name in a `PATH` folder (as execvp searches).
fn resolve(program: &OsStr) -> Option<std::path::PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(program.into());
    }
    if program.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file() && rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok())
}

/// Checks the arguments of `vault exec` before anything is decrypted.
pub fn check_command(command: &[std::ffi::OsString]) -> Result<()> {
    if command.is_empty() {
        return Err(
            Error::usage("no command given").with_hint("vault exec ENV -- COMMAND [ARG]...")
        );
    }
    Ok(())
}

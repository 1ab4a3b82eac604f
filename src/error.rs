//! The one error type: a single line for the user, an optional hint, and an exit code.

use std::fmt;
use std::path::Path;

/// What went wrong, phrased for the person at the terminal.
///
/// Messages never hold a secret value: they name environments, files, keys and lines.
#[derive(Debug)]
pub struct Error {
    message: String,
    hint: Option<String>,
    usage: bool,
    /// An exit status other than 1 or 2 (a signal's 128 + N), said by nobody.
    code: Option<i32>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
            usage: false,
            code: None,
        }
    }

    /// Ends the run with `code` and no message, after everything held is released
    /// (locks, plaintext folders): how a signal that stopped the editor ends vault.
    pub fn silent_exit(code: i32) -> Self {
        Error {
            message: String::new(),
            hint: None,
            usage: false,
            code: Some(code),
        }
    }

    /// A usage error (exit status 2), like clap's own.
    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
            usage: true,
            code: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An I/O failure on `path`, with the OS reason.
    pub fn io(what: &str, path: &Path, err: std::io::Error) -> Self {
        Error::new(format!("{what} {}: {}", path.display(), plain_io(&err)))
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn exit_code(&self) -> i32 {
        if let Some(code) = self.code {
            code
        } else if self.usage {
            2
        } else {
            1
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The OS reason without Rust's "(os error N)" suffix.
fn plain_io(err: &std::io::Error) -> String {
    let s = err.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

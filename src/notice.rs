//! What the library tells the user while it works (a wait, a recovery, a warning),
//! handed to the binary to print: below the binary nothing writes to the terminal.

/// Who sees a message: details only with `-v`, notes unless `-q`, warnings always. A
/// warning's text names its kind (`warning: ...`, `error: ...`), as the user reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Detail,
    Note,
    Warning,
}

/// Where the library's messages go. Never handed a secret value.
pub trait Notices: Send + Sync {
    fn notice(&self, level: Level, msg: &str);
}

/// Drops every message: for library callers that print nothing.
pub struct Quiet;

impl Notices for Quiet {
    fn notice(&self, _: Level, _: &str) {}
}

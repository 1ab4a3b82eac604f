//! Everything the binary writes to the terminal: notes, warnings and details on stderr
//! (the Ui), errors in vault's one-line form, and results on stdout.

use std::io::Write;
use vault::error::{Error, Result};
use vault::project::EnvName;
use vault::store::WriteReport;

/// Messages for the person at the terminal, on stderr; silent with -q.
#[derive(Clone, Copy)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: bool,
}

impl Ui {
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("vault: {msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        eprintln!("vault: warning: {msg}");
    }

    /// A line of a list that a warning leads, shown even with -q (it goes with it).
    pub fn item(&self, msg: &str) {
        eprintln!("vault:   {msg}");
    }

    pub fn detail(&self, msg: &str) {
        if self.verbose {
            eprintln!("vault: {msg}");
        }
    }

    /// Tells about members a write left out: never granted, or dropped from the folder.
    pub fn roster(&self, env: &EnvName, report: &WriteReport) {
        for m in &report.pending {
            self.warn(&format!(
                "{env}: {m} is pending: their key is in recipients/{env}/ but was never granted, so they cannot read it; \
                 a member checks the fingerprint with them and runs `vault grant {env} {m} --fingerprint SHA256:...`"
            ));
        }
        for m in &report.dropped {
            self.warn(&format!(
                "{env}: {m} was removed; the secrets they could read are marked exposed until changed"
            ));
        }
    }
}

/// The library's messages, by the same rules as the binary's own.
impl vault::notice::Notices for Ui {
    fn notice(&self, level: vault::notice::Level, msg: &str) {
        use vault::notice::Level;
        match level {
            Level::Detail => self.detail(msg),
            Level::Note => self.note(msg),
            // Shown even with -q; the library's warnings name themselves ("warning: ...").
            Level::Warning => eprintln!("vault: {msg}"),
        }
    }
}

/// An error as `vault: error: ...`, with its hint on the next line.
pub fn report(err: &Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "vault: error: {err}");
    if let Some(hint) = err.hint() {
        let _ = writeln!(stderr, "hint: {hint}");
    }
}

/// Writes a command's result on standard output.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(format!("cannot write to standard output: {e}"))),
    }
}

//! Everything the binary writes to the terminal: notes, warnings and details on stderr
//! (the Ui), errors in vault's one-line form, and results on stdout; and where it is
//! coloured. Colour is decided here for each stream on its own: on at a terminal, off
//! when the stream is not one, when `NO_COLOR` is set (non-empty) or `TERM=dumb`;
//! `CLICOLOR_FORCE` (non-empty, not `0`) turns it on off a terminal; `--color=always` or
//! `never` overrides them all, `NO_COLOR` included, as in ripgrep. A reader that goes
//! away (a closed pipe on stdout or stderr) ends nothing: what it would have read is
//! dropped, and the command's work goes on.

use anstyle::{AnsiColor, Style};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use vault::error::{Error, Result};
use vault::project::EnvName;
use vault::provision::Part;
use vault::secret::SecretBuf;
use vault::store::WriteReport;

/// `--color`: when output is coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// At a terminal, unless `NO_COLOR` is set or `TERM=dumb`.
    #[default]
    Auto,
    /// Always, even off a terminal or with `NO_COLOR` set.
    Always,
    /// Never.
    Never,
}

impl From<ColorChoice> for clap::ColorChoice {
    fn from(c: ColorChoice) -> clap::ColorChoice {
        match c {
            ColorChoice::Auto => clap::ColorChoice::Auto,
            ColorChoice::Always => clap::ColorChoice::Always,
            ColorChoice::Never => clap::ColorChoice::Never,
        }
    }
}

/// The run's `--color`, as [`ColorChoice`]'s index.
static CHOICE: AtomicU8 = AtomicU8::new(0);

pub fn set_colour(choice: ColorChoice) {
    CHOICE.store(choice as u8, Ordering::Relaxed);
}

/// The `--color` on the command line (before `--`), for what is printed before clap has
/// read it (a usage error); clap checks its value.
pub fn colour_in_args() -> ColorChoice {
    let args: Vec<String> = std::env::args().skip(1).take_while(|a| a != "--").collect();
    let mut choice = ColorChoice::Auto;
    for (i, a) in args.iter().enumerate() {
        let value = match a.strip_prefix("--color") {
            Some("") => args.get(i + 1).map(String::as_str),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        match value {
            Some("always") => choice = ColorChoice::Always,
            Some("never") => choice = ColorChoice::Never,
            Some("auto") => choice = ColorChoice::Auto,
            _ => {}
        }
    }
    choice
}

/// Where a text goes, each coloured or not on its own.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Whether what goes to `stream` is coloured.
fn coloured(stream: Stream) -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        return false;
    }
    match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    }
}

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default();
const GOOD: Style = AnsiColor::Green.on_default();
const BAD: Style = AnsiColor::Red.on_default();
const CHANGED: Style = AnsiColor::Yellow.on_default();
const HEADING: Style = Style::new().bold();

/// `text` in `style` if `stream` is coloured, else as it is.
fn paint(stream: Stream, style: Style, text: &str) -> String {
    if coloured(stream) {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_string()
    }
}

/// A line on stderr; a closed stderr drops it (and ends nothing).
pub fn line(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
}

/// Text on stderr as it is (a question to answer on the same line, the provision table);
/// a closed stderr drops it.
pub fn write_stderr(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{msg}").and_then(|()| err.flush());
}

/// `hint: MSG` on stderr, its label coloured.
pub fn hint(msg: &str) {
    line(&format!("{} {msg}", paint(Stream::Stderr, HINT, "hint:")));
}

/// A library message whose text names its kind (`warning: ...`, `error: ...`), that
/// label coloured.
fn labelled(msg: &str) -> String {
    for (label, style) in [("warning:", WARNING), ("error:", ERROR)] {
        if let Some(rest) = msg.strip_prefix(label) {
            return format!("{}{rest}", paint(Stream::Stderr, style, label));
        }
    }
    msg.to_string()
}

/// The provision table's parts, coloured for stderr.
pub fn table_part(part: Part, text: &str) -> String {
    let style = match part {
        Part::Ok => GOOD,
        Part::Failed => BAD,
        Part::Heading => HEADING,
    };
    paint(Stream::Stderr, style, text)
}

/// Messages for the person at the terminal, on stderr; silent with -q.
#[derive(Clone, Copy)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: bool,
}

impl Ui {
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            line(&format!("vault: {msg}"));
        }
    }

    pub fn warn(&self, msg: &str) {
        line(&format!("vault: {}", labelled(&format!("warning: {msg}"))));
    }

    /// A line of a list that a warning leads, shown even with -q (it goes with it).
    pub fn item(&self, msg: &str) {
        line(&format!("vault:   {msg}"));
    }

    pub fn detail(&self, msg: &str) {
        if self.verbose {
            line(&format!("vault: {msg}"));
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
            Level::Warning => line(&format!("vault: {}", labelled(msg))),
        }
    }
}

/// An error as `vault: error: ...`, with its hint on the next line.
pub fn report(err: &Error) {
    line(&format!(
        "vault: {} {err}",
        paint(Stream::Stderr, ERROR, "error:")
    ));
    if let Some(msg) = err.hint() {
        hint(msg);
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

/// `vault diff`'s comparison on standard output; at a terminal, what it adds green, what
/// it removes red, what it changes yellow. With `--values` the text holds values, so the
/// coloured copy is a [`SecretBuf`] too.
pub fn write_diff(diff: &SecretBuf) -> Result<()> {
    if !coloured(Stream::Stdout) {
        return write_stdout(diff.as_bytes());
    }
    let mut out = SecretBuf::new(String::with_capacity(diff.len() + 256));
    for l in diff.lines() {
        let style = if l.starts_with("--- ") || l.starts_with("+++ ") {
            HEADING
        } else if l.starts_with('+') {
            GOOD
        } else if l.starts_with('-') {
            BAD
        } else if l.starts_with('~') {
            CHANGED
        } else {
            Style::new()
        };
        out.push_str(&format!("{}", style.render()));
        out.push_str(l);
        out.push_str(&format!("{}\n", style.render_reset()));
    }
    write_stdout(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_table_parts_are_coloured_only_when_asked() {
        set_colour(ColorChoice::Always);
        assert_eq!(
            labelled("warning: cannot remember"),
            "\x1b[1m\x1b[33mwarning:\x1b[0m cannot remember"
        );
        assert_eq!(table_part(Part::Ok, "ok"), "\x1b[32mok\x1b[0m");
        assert_eq!(
            table_part(Part::Failed, "failed: x"),
            "\x1b[31mfailed: x\x1b[0m"
        );
        assert_eq!(labelled("a note"), "a note");
        set_colour(ColorChoice::Never);
        assert_eq!(labelled("warning: w"), "warning: w");
        assert_eq!(
            table_part(Part::Heading, "web1 on the server:"),
            "web1 on the server:"
        );
    }
}

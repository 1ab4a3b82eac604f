//! The manual pages, made from the command line's own definition: vault.1 and one
//! vault-COMMAND.1 per visible command, each ending with the command's EXAMPLES.

use crate::cli::Cli;
use clap::CommandFactory;

/// One page: its file name (`vault-edit.1`) and its roff text.
pub struct Page {
    pub file_name: String,
    pub roff: Vec<u8>,
}

/// vault.1 alone.
pub fn main_page() -> std::io::Result<Page> {
    page(&built())
}

/// vault.1, then a page for each visible command, in the order `vault --help` lists them.
pub fn all_pages() -> std::io::Result<Vec<Page>> {
    let cmd = built();
    let mut pages = vec![page(&cmd)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(page(sub)?);
    }
    Ok(pages)
}

/// The command line, built: each command knows its full name (`vault-edit`) and has the
/// global flags. No `help` command: it has no page of its own.
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// clap_mangen's sections, with the examples as an EXAMPLES section of their own
/// (clap_mangen would fill them into one paragraph headed EXTRA).
fn page(cmd: &clap::Command) -> std::io::Result<Page> {
    let man =
        clap_mangen::Man::new(cmd.clone()).source(format!("vault {}", env!("CARGO_PKG_VERSION")));
    let mut roff = Vec::new();
    man.render_title(&mut roff)?;
    man.render_name_section(&mut roff)?;
    man.render_synopsis_section(&mut roff)?;
    man.render_description_section(&mut roff)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut roff)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut roff)?;
    }
    if let Some(examples) = cmd.get_after_long_help() {
        roff.extend_from_slice(examples_section(&examples.to_string()).as_bytes());
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut roff)?;
    }
    Ok(Page {
        file_name: man.get_filename(),
        roff,
    })
}

/// The examples text as roff: prose filled, the "Examples:" heading as the section's,
/// comments in italics and commands in bold, each on a line of its own.
fn examples_section(text: &str) -> String {
    let mut out = String::from(".SH EXAMPLES\n");
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed == "Examples:" {
            continue;
        } else if trimmed.is_empty() {
            out.push_str(".PP\n");
        } else if let Some(comment) = trimmed.strip_prefix("# ") {
            out.push_str(&format!(".br\n\\fI{}\\fR\n.br\n", escape(comment)));
        } else if line.starts_with("  ") {
            out.push_str(&format!(".RS\n\\fB{}\\fR\n.RE\n", escape(trimmed)));
        } else {
            out.push_str(&escape(trimmed));
            out.push('\n');
        }
    }
    out
}

/// Text that roff shows as written: backslashes and dashes escaped, and no line that
/// starts with a control character.
fn escape(text: &str) -> String {
    let body = text.replace('\\', "\\e").replace('-', "\\-");
    if body.starts_with('.') || body.starts_with('\'') {
        format!("\\&{body}")
    } else {
        body
    }
}

//! clap's usage errors rewritten in vault's own form: one `vault: error:` line, a hint,
//! exit 2.

use crate::cli::Cli;
use crate::output::report;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;
use vault::error::Error;

/// clap's usage errors in vault's own form (one `vault: error:` line, a hint, exit 2),
/// never repeating an unexpected argument: it may be a secret someone tried to pass on the
/// command line (`vault set ENV NAME VALUE`). Help and version go out as clap has them.
pub fn usage_failure(e: clap::Error) -> ! {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    // "error: MESSAGE\n\n  tip: ...\n\nUsage: vault CMD ...\n\nFor more information, ..."
    let text = e.to_string();
    let (message, tips) = message_and_tips(&e, &text);
    report(&Error::usage(message).with_hint(hint(&tips, &text)));
    std::process::exit(2)
}

/// clap's message on one line, and its tips; for an unexpected argument, only a flag's
/// name is kept, and no tip (clap's own tips repeat the argument too).
fn message_and_tips<'t>(e: &clap::Error, text: &'t str) -> (String, Vec<&'t str>) {
    if e.kind() == ErrorKind::UnknownArgument {
        let message = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) if arg.starts_with('-') => {
                let flag = arg.split('=').next().unwrap_or_default();
                format!("unexpected argument '{flag}'")
            }
            _ => "unexpected argument (not shown, in case it is a secret: vault never takes a value from the command line)".into(),
        };
        return (message, Vec::new());
    }
    let first = text.split("\n\n").next().unwrap_or_default();
    let message = first
        .lines()
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ");
    let tips = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    (message, tips)
}

/// clap's tips, else the usage line and where to read more.
fn hint(tips: &[&str], text: &str) -> String {
    if !tips.is_empty() {
        return tips.join("; ");
    }
    if let Some(usage) = text.lines().find_map(|l| l.strip_prefix("Usage: ")) {
        let command: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect();
        return format!("usage: {usage} (more with `{} --help`)", command.join(" "));
    }
    // No usage line (a bad option value): name the subcommand that was typed.
    let cli = Cli::command();
    let typed = std::env::args()
        .skip(1)
        .find(|a| cli.get_subcommands().any(|c| c.get_name() == a));
    format!(
        "more with `vault {}--help`",
        typed.map(|c| c + " ").unwrap_or_default()
    )
}

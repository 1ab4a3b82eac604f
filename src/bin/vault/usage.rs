//! clap's usage errors rewritten in vault's own form: one `vault: error:` line, a hint,
//! exit 2.

use crate::cli::Cli;
use crate::output::report;
use clap::CommandFactory;
use vault::error::Error;

/// clap's usage errors in vault's own form (one `vault: error:` line, a hint, exit 2),
/// never repeating an unexpected argument: it may be a secret someone tried to pass on the
/// command line (`vault set ENV NAME VALUE`). Help and version go out as clap has them.
pub fn usage_failure(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
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
    let first = text.split("\n\n").next().unwrap_or_default();
    let mut message = first
        .lines()
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ");
    let mut tips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    if e.kind() == ErrorKind::UnknownArgument {
        // clap's own tips repeat the argument too.
        tips.clear();
        message = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) if arg.starts_with('-') => {
                let flag = arg.split('=').next().unwrap_or_default();
                format!("unexpected argument '{flag}'")
            }
            _ => "unexpected argument (not shown, in case it is a secret: vault never takes a value from the command line)".into(),
        };
    }
    let usage = text.lines().find_map(|l| l.strip_prefix("Usage: "));
    let hint = if !tips.is_empty() {
        tips.join("; ")
    } else if let Some(usage) = usage {
        let command: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect();
        format!("usage: {usage} (more with `{} --help`)", command.join(" "))
    } else {
        // No usage line (a bad option value): name the subcommand that was typed.
        let cli = Cli::command();
        let typed = std::env::args()
            .skip(1)
            .find(|a| cli.get_subcommands().any(|c| c.get_name() == a));
        format!(
            "more with `vault {}--help`",
            typed.map(|c| c + " ").unwrap_or_default()
        )
    };
    report(&Error::usage(message).with_hint(hint));
    std::process::exit(2)
}

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
    let hint = match e.kind() {
        ErrorKind::UnknownArgument if typed_subcommand().as_deref() == Some("set") => set_hint(),
        ErrorKind::InvalidSubcommand => other_name(&e).unwrap_or_else(|| hint(&tips, &text)),
        ErrorKind::MissingRequiredArgument if missing_fingerprint(&e) => fingerprint_hint(),
        _ => hint(&tips, &text),
    };
    let hint = match suggested_flag(&e) {
        Some(flag) => format!("did you mean {flag}? {hint}"),
        None => hint,
    };
    report(&Error::usage(message).with_hint(hint));
    std::process::exit(2)
}

/// `vault set ENV NAME VALUE`: the value is refused; show the ways that work, with the
/// environment and name as typed (never the value).
fn set_hint() -> String {
    let words = typed_words("set");
    let (env, name) = match words.as_slice() {
        [env, name] => (env.as_str(), name.as_str()),
        _ => ("ENV", "NAME"),
    };
    format!(
        "give the value on standard input: `printf %s \"$VALUE\" | vault set {env} {name}`, or from a file: `vault set {env} {name} --from-file FILE`; on a terminal, `vault set {env} {name}` asks with hidden input"
    )
}

fn missing_fingerprint(e: &clap::Error) -> bool {
    matches!(e.get(ContextKind::InvalidArg), Some(ContextValue::Strings(args))
        if args.iter().any(|a| a.starts_with("--fingerprint")))
}

/// `vault grant ENV NAME` or `vault trust ENV` without `--fingerprint`: where the
/// fingerprint comes from, and the command to run with it.
fn fingerprint_hint() -> String {
    let typed = typed_subcommand().unwrap_or_else(|| "grant".into());
    let words = typed_words(&typed);
    let env = words.first().map_or("ENV", String::as_str);
    if typed == "trust" {
        return format!(
            "a member of {env} reads you their fingerprint (`vault whoami` prints it) over another channel; then `vault trust {env} --fingerprint SHA256:...`"
        );
    }
    let name = words.get(1).map_or("NAME", String::as_str);
    format!(
        "{name} reads you their fingerprint (`vault whoami` on their machine prints it) over another channel, a call say; then `vault grant {env} {name} --fingerprint SHA256:...`"
    )
}

/// The first two words typed after `command` that are not flags or their values (the
/// environment and the name, as typed; a third, a value perhaps, is never kept).
fn typed_words(command: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == command).unwrap_or(0);
    let mut words = Vec::new();
    let mut rest = args[at + 1..].iter();
    while let Some(a) = rest.next() {
        if [
            "-i",
            "--identity",
            "-C",
            "--from-file",
            "--key",
            "--fingerprint",
        ]
        .contains(&a.as_str())
        {
            rest.next(); // the flag's value
        } else if !a.starts_with('-') && words.len() < 2 {
            words.push(a.clone());
        }
    }
    words
}

/// What other tools call the commands vault names otherwise.
const OTHER_NAMES: &[(&str, &str)] = &[
    ("add", "`vault set ENV NAME` sets a secret; `vault grant ENV MEMBER --fingerprint ...` adds a member"),
    ("put", "`vault set ENV NAME`"),
    ("rm", "`vault unset ENV NAME`"),
    ("remove", "`vault unset ENV NAME` removes a secret; `vault revoke ENV MEMBER` removes a member"),
    ("delete", "`vault unset ENV NAME`"),
    ("cat", "`vault get ENV NAME`"),
    ("read", "`vault get ENV NAME`"),
    ("list", "`vault show ENV` lists names; `vault status` every environment"),
    ("ls", "`vault show ENV`"),
    ("run", "`vault exec ENV -- CMD`"),
    ("decrypt", "`vault get ENV NAME`, `vault show ENV --values`, or `vault export ENV --format F`"),
    ("encrypt", "`vault set ENV NAME` or `vault edit ENV`: vault encrypts every write"),
    ("updatekeys", "`vault rekey ENV`"),
    ("invite", "`vault grant ENV MEMBER --fingerprint ...`"),
];

/// For a subcommand vault does not have but another tool does, what vault calls it.
fn other_name(e: &clap::Error) -> Option<String> {
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    OTHER_NAMES
        .iter()
        .find(|(name, _)| name == typed)
        .map(|(_, what)| format!("vault has no `{typed}`: {what}"))
}

/// The flag clap offers for a misspelt one (`--valus`: `--values`), never a value.
fn suggested_flag(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    match e.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(flag)) if flag.starts_with("--") => {
            flag.split_whitespace().next().map(str::to_owned)
        }
        _ => None,
    }
}

/// The subcommand typed on the command line, if any.
fn typed_subcommand() -> Option<String> {
    let cli = Cli::command();
    std::env::args()
        .skip(1)
        .find(|a| cli.get_subcommands().any(|c| c.get_name() == a))
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
        // clap lists an argument given through the environment (VAULT_IDENTITY, the usual
        // headless setup) as if the command required it.
        let usage = usage.replace(" --identity <FILE>", "");
        let command: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect();
        return format!("usage: {usage} (more with `{} --help`)", command.join(" "));
    }
    // No usage line (a bad option value): name the subcommand that was typed.
    let typed = typed_subcommand();
    format!(
        "more with `vault {}--help`",
        typed.map(|c| c + " ").unwrap_or_default()
    )
}

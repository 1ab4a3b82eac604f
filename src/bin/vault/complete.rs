//! Shell completion, answered by vault itself: the shell's script (`vault completions
//! SHELL`, or `COMPLETE=SHELL vault`) asks `COMPLETE=SHELL vault -- WORDS...` at each
//! <TAB>, and vault offers its visible commands and flags, the project's environment
//! names, and the member names of the environment typed. The git drivers are never offered.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::Shells;
use clap_complete::CompleteEnv;
use std::path::PathBuf;
use vault::project::{EnvName, Project};

/// The variable the shell's script sets to ask for candidates.
const VAR: &str = "COMPLETE";

/// Answers a completion request and exits, when the shell's script made one; otherwise
/// returns at once.
pub fn answer_if_asked() {
    CompleteEnv::with_factory(visible_command)
        .var(VAR)
        .complete();
}

/// The script that registers vault's completion in `shell`: the same as
/// `COMPLETE=SHELL vault` prints.
pub fn registration(shell: clap_complete::Shell) -> std::io::Result<Vec<u8>> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| std::io::Error::other(format!("no dynamic completion for {name}")))?;
    let mut out = Vec::new();
    completer.write_registration(VAR, "vault", "vault", &completer_path(), &mut out)?;
    Ok(out)
}

/// How the script calls vault back: as it was called now (a path made absolute, so the
/// script works from any folder).
fn completer_path() -> String {
    let arg0 = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "vault".into()));
    let path = match std::env::current_dir() {
        Ok(cwd) if arg0.components().count() > 1 => cwd.join(arg0),
        _ => arg0,
    };
    path.to_string_lossy().into_owned()
}

/// vault's command line without its hidden commands: so they are not offered even for
/// a prefix only they match (`vault tex<TAB>`).
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("vault").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd.args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// The project's environments, for an ENV argument.
pub fn environments() -> Vec<CompletionCandidate> {
    let Some(project) = project() else {
        return Vec::new();
    };
    project
        .environments()
        .unwrap_or_default()
        .iter()
        .map(|e| CompletionCandidate::new(e.as_str()))
        .collect()
}

/// The members of the environment typed before the NAME being completed.
pub fn members() -> Vec<CompletionCandidate> {
    let words = words();
    let (Some(project), Some(env)) = (project(), env_typed(&words)) else {
        return Vec::new();
    };
    let Ok(env) = EnvName::parse(&env) else {
        return Vec::new();
    };
    project
        .member_names(&env)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The words of the command line being completed (after the `--` the script passes),
/// up to the one under the cursor.
fn words() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let index = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse().ok())
        .unwrap_or(args.len());
    args.into_iter().take(index).collect()
}

/// The project the command line names (`-C DIR`) or the nearest one.
fn project() -> Option<Project> {
    let words = words();
    let dir = flag_value(&words, "-C").map(PathBuf::from);
    let cwd = std::env::current_dir().ok()?;
    Project::discover(&dir.map_or(cwd.clone(), |d| cwd.join(d))).ok()
}

/// The value given to the short flag `flag`, as `-C DIR` or `-CDIR`.
fn flag_value(words: &[String], flag: &str) -> Option<String> {
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == flag {
            return it.next().cloned();
        }
        if let Some(v) = w.strip_prefix(flag).filter(|v| !v.is_empty()) {
            return Some(v.to_owned());
        }
    }
    None
}

/// Flags whose value is the next word, anywhere on vault's command line.
const TAKES_VALUE: &[&str] = &["-C", "-i", "--identity", "--fingerprint", "--key"];

/// The first positional word after the command name: the ENV of `grant ENV NAME`.
fn env_typed(words: &[String]) -> Option<String> {
    let mut positional = Vec::new();
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        if TAKES_VALUE.contains(&w.as_str()) {
            it.next();
        } else if !w.starts_with('-') {
            positional.push(w);
        }
    }
    positional.get(1).map(|w| w.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_environment_is_the_word_after_the_command_whatever_flags_come_first() {
        for line in [
            "vault revoke staging",
            "vault -C ../shop revoke staging",
            "vault -q -i key revoke staging",
            "vault grant --fingerprint SHA256:x staging",
        ] {
            assert_eq!(
                env_typed(&words(line)).as_deref(),
                Some("staging"),
                "{line}"
            );
        }
        assert_eq!(env_typed(&words("vault revoke")), None);
        assert_eq!(
            flag_value(&words("vault -C../shop x"), "-C").as_deref(),
            Some("../shop")
        );
    }

    #[test]
    fn completion_never_offers_the_hidden_commands() {
        let cmd = visible_command();
        assert!(cmd.find_subcommand("edit").is_some());
        assert!(cmd.find_subcommand("textconv").is_none());
        assert!(cmd.find_subcommand("merge-file").is_none());
    }
}

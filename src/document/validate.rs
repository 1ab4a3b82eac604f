//! The rules for secret names and for values given to `set`. A secret becomes an
//! environment variable (`vault exec`, exports), so a name that changes how a program,
//! a shell or the dynamic loader behaves is refused: whoever can write a secret would
//! otherwise choose the code every consumer runs.

use super::MAX_DOCUMENT_BYTES;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// Names that change how a program or the loader behaves, refused as secret names.
/// Each is read by a loader, shell, interpreter or tool to find code or config to run.
/// `HOME` and the XDG config folders too: shells, git, ssh and interpreters read their
/// startup and config files there (`~/.ssh/config`'s ProxyCommand, `~/.gitconfig`'s
/// core.sshCommand), so choosing them chooses commands. (A setting, signed into the
/// environment's manifest, allowing one of these is for the trust-chain format.)
pub const CONTROLLING_NAMES: &[&str] = &[
    // The dynamic loader and libc.
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "DYLD_INSERT_LIBRARIES",
    "DYLD_LIBRARY_PATH",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    // Shells.
    "PATH",
    "IFS",
    "HOME",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "CDPATH",
    "ZDOTDIR",
    // Interpreters and runtimes.
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_REPL_EXTERNAL_MODULE",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    // git and the programs tools start.
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_PAGER",
    "GIT_PROXY_COMMAND",
    "GIT_EXTERNAL_DIFF",
    "GIT_TEMPLATE_DIR",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "BROWSER",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    // What the states run: gunicorn reads GUNICORN_CMD_ARGS as more of its command line
    // (`--pythonpath DIR`, `--config FILE` choose the code it runs).
    "GUNICORN_CMD_ARGS",
    // vault's own: a child that runs vault would run it as the secret says.
    "VAULT_IDENTITY",
    "VAULT_TEST_PAUSE",
    "VAULT_TEST_FAILPOINT",
];

/// Whole families of such names, by how they start.
pub const CONTROLLING_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "BASH_FUNC_",
    "PYTHON",
    "PERL",
    "RUBY",
    "GIT_CONFIG",
];

/// How `name` is shown when it is one of the controlling names: itself when it is in
/// the fixed list, its family (`LD_*`) when only its start matches, so nothing the
/// user typed beyond the list is repeated. None for an ordinary name.
pub fn controlling(name: &str) -> Option<String> {
    if let Some(n) = CONTROLLING_NAMES.iter().find(|n| **n == name) {
        return Some((*n).to_string());
    }
    CONTROLLING_PREFIXES
        .iter()
        .find(|p| name.starts_with(**p))
        .map(|p| format!("a name starting {p}"))
}

/// Checks a secret name: `[A-Za-z_][A-Za-z0-9_]*`, and not one that changes how a
/// program behaves. With `line` (the name was read from a document) an invalid name is
/// not repeated: it may be a value typed where a name belongs.
pub fn check_name(env: &str, name: &str, line: Option<usize>) -> Result<()> {
    check_name_allowing(env, name, line, &BTreeSet::new())
}

/// A name's characters only: `[A-Za-z_][A-Za-z0-9_]*`. A name typed with its value
/// (`DB_PASSWORD=hunter2`, the way other tools take it) is named without the value.
pub fn check_name_syntax(env: &str, name: &str, line: Option<usize>) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    let rule = "use letters, digits and '_', not starting with a digit";
    if ok {
        return Ok(());
    }
    if let (None, Some(at)) = (line, name.find(|c: char| c == '=' || c.is_whitespace())) {
        let before = &name[..at];
        let shown = if check_name_syntax(env, before, None).is_ok() {
            before
        } else {
            "NAME"
        };
        return Err(Error::new(format!(
            "{env}: '{}' followed by a value (not shown) is no secret name: a value never goes on the command line",
            before.escape_debug()
        ))
        .with_hint(format!(
            "give the value on standard input: `printf %s \"$VALUE\" | vault set {env} {shown}`; the one you typed is in your shell's history now, so choose a new one"
        )));
    }
    Err(Error::new(match line {
        Some(l) => format!("{env}: line {l}: invalid secret name: {rule}"),
        None => format!(
            "{env}: invalid secret name '{}': {rule}",
            name.escape_debug()
        ),
    }))
}

/// [`check_name`], where the environment's signed manifest allows the controlling names
/// in `allowed` (`vault allow ENV NAME`).
pub fn check_name_allowing(
    env: &str,
    name: &str,
    line: Option<usize>,
    allowed: &BTreeSet<String>,
) -> Result<()> {
    check_name_syntax(env, name, line)?;
    if let Some(shown) = controlling(name).filter(|_| !allowed.contains(name)) {
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        return Err(Error::new(format!(
            "{env}: {at}{shown} changes how programs or the loader behave; vault refuses it as a secret name"
        ))
        .with_hint(format!("name the secret otherwise (README, Secrets, lists the refused names), or, if {env} really must set it, a member allows it in the signed manifest: `vault allow {env} NAME`; a file holding one otherwise is refused whole: restore an earlier version from git")));
    }
    Ok(())
}

/// Checks a value given to `set`: no NUL, within the size limit.
pub fn check_value(env: &str, name: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::new(format!(
            "{env}: {name}: the value holds a NUL character, which no environment can carry"
        )));
    }
    if value.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::new(format!(
            "{env}: {name}: the value is over the limit of {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_file_state_refuses_the_same_names() {
        // conf/salt/vault/secrets.env.jinja checks the `env:` settings Salt merged
        // against a copy of these lists.
        let state = include_str!("../../conf/salt/vault/secrets.env.jinja");
        for n in CONTROLLING_NAMES.iter().chain(CONTROLLING_PREFIXES) {
            assert!(
                state.contains(&format!("'{n}'")),
                "{n} is not in secrets.env.jinja"
            );
        }
    }

    #[test]
    fn controlling_names_are_refused_and_others_pass() {
        for name in [
            "LD_PRELOAD",
            "LD_BIND_NOW",
            "DYLD_FALLBACK_LIBRARY_PATH",
            "BASH_ENV",
            "BASH_FUNC_x",
            "PYTHONPATH",
            "PERL5OPT",
            "RUBYOPT",
            "NODE_OPTIONS",
            "GIT_CONFIG_COUNT",
            "GIT_SSH_COMMAND",
            "PATH",
            "HOME",
            "IFS",
        ] {
            let err = check_name("staging", name, None).unwrap_err();
            assert!(err.message().contains("changes how programs"), "{err}");
        }
        for name in [
            "DB_PASSWORD",
            "NODE_ENV",
            "GIT_TOKEN",
            "PATHS",
            "HOME_URL",
            "ld_preload",
        ] {
            check_name("staging", name, None).unwrap();
        }
        // A family member the list does not name is shown by its family only.
        let err = check_name("staging", "LD_hunter2", Some(3)).unwrap_err();
        assert!(!err.message().contains("hunter2"), "{err}");
        assert!(
            err.message().contains("line 3: a name starting LD_"),
            "{err}"
        );
    }
}

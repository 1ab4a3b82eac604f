//! The shell vault runs on a server: the apply script (minion config, the pillar from
//! standard input, salt-call, the pillar's removal), rsync's remote end, the markers and
//! exit codes they report with, and the one-line reading of what they reported.

/// What the apply script needs to know.
pub(super) struct ApplyScript<'a> {
    pub config_dir: &'a str,
    pub minion: &'a str,
    pub env_dir: &'a str,
    /// How many bytes of pillar come on standard input.
    pub pillar_len: usize,
    pub salt_call: &'a str,
    /// What the trap runs when the script ends: `None` keeps the pillar.
    pub removal: Option<&'a str>,
    pub dry_run: bool,
}

/// The one remote script of a provision: the minion config (no secret in it, so on the
/// command line), the pillar from standard input into a 0600 file, a marker line, then
/// salt-call; unless the pillar is kept, a trap removes it however the script ends.
///
/// The pillar is moved into place only when exactly `pillar_len` bytes arrived: a vault
/// killed mid-write closes the stream early, and Salt must never apply a pillar cut
/// short (cut at a line end, it is still valid YAML with fewer secrets).
pub(super) fn apply_script(a: &ApplyScript) -> String {
    let q = |s: &str| shell_words::quote(s).into_owned();
    let (cfg, d) = (q(a.config_dir), q(a.env_dir));
    let cleanup = match a.removal {
        None => String::new(),
        Some(rm) => format!(
            "trap {} EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; ",
            q(rm)
        ),
    };
    let mut script = format!(
        "umask 022 && mkdir -p {cfg} && printf '%s' {minion} > {cfg}/.minion.tmp && mv {cfg}/.minion.tmp {cfg}/minion || exit 4; \
         umask 077 && mkdir -p {d} || exit 4; {cleanup}\
         cat > {d}/.secrets.sls.tmp || exit 4; \
         [ \"$(wc -c < {d}/.secrets.sls.tmp)\" -eq {len} ] || {{ rm -f {d}/.secrets.sls.tmp; echo {short} >&2; exit 4; }}; \
         mv {d}/.secrets.sls.tmp {d}/secrets.sls || exit 4; \
         echo {ready}; umask 022; \
         {salt} --local --config-dir {cfg} --retcode-passthrough --state-output=changes state.apply",
        minion = q(a.minion),
        len = a.pillar_len,
        short = q(PILLAR_SHORT),
        salt = q(a.salt_call),
        ready = q(READY),
    );
    if a.dry_run {
        script.push_str(" test=True");
    }
    script.push_str(" 2>&1");
    script
}

// The markers the scripts print for vault to read, beside their exit codes: 3 for no
// salt-call (rsync's remote end), 4 for anything before salt-call in the apply script.

/// What the rsync prelude says when salt-call is missing.
const SALT_MISSING: &str = "vault: salt-call not found";
/// The line the apply script prints once the secrets are in place, before salt-call.
pub(super) const READY: &str = "vault: pillar in place";
/// What the apply script says when fewer pillar bytes arrived than were sent.
const PILLAR_SHORT: &str = "vault: the secrets arrived incomplete";

/// rsync's `--rsync-path`: the remote end of the copy, in the same round trip. No
/// salt-call, no shipping; then the folder `to` (with its parents), and rsync itself with
/// the arguments rsync adds.
pub(super) fn rsync_path(salt_call: &str, to: &str, sudo: bool) -> String {
    let prelude = format!(
        "command -v {salt} >/dev/null 2>&1 || {{ echo {missing} >&2; exit 3; }}; \
         umask 022 && mkdir -p \"$0\" && exec rsync \"$@\"",
        salt = shell_words::quote(salt_call),
        missing = shell_words::quote(SALT_MISSING),
    );
    let sudo = if sudo { "sudo -n " } else { "" };
    format!(
        "{sudo}sh -c {} {}",
        shell_words::quote(&prelude),
        shell_words::quote(to)
    )
}

/// The one line for what the remote shell reported on standard error, when it is one
/// vault knows; `salt_call` is the name the run looked for.
pub(super) fn explain(stderr: &str, salt_call: &str) -> Option<String> {
    if stderr.contains(SALT_MISSING) {
        Some(format!(
            "{salt_call} not found on the host (install Salt, or name it with --salt-call)"
        ))
    } else if stderr.contains(PILLAR_SHORT) {
        Some("the secrets did not all reach the host (the connection was cut while sending them); nothing was applied, run provision again".into())
    } else if stderr.contains("sudo:") && stderr.contains("password") {
        Some("sudo asks for a password: give the user passwordless sudo, or connect as root (-u root)".into())
    } else {
        None
    }
}

/// The shell command that removes what a provision leaves on the server: a dry run's
/// whole scratch root, otherwise the plaintext pillar unless it is kept.
pub(super) fn leftovers_removal(
    env_dir: &str,
    scratch: Option<&str>,
    keep_pillar: bool,
) -> Option<String> {
    let q = |s: &str| shell_words::quote(s).into_owned();
    match scratch {
        Some(root) => Some(format!("rm -rf {}", q(root))),
        None if keep_pillar => None,
        None => {
            let d = q(env_dir);
            Some(format!("rm -f {d}/secrets.sls {d}/.secrets.sls.tmp"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Runs the apply script under the local `sh` with `input` on its standard input and
    /// a stand-in salt-call that reports which pillar it found.
    fn run_apply(dir: &Path, input: &[u8], sent: usize, keep: bool) -> std::process::Output {
        use std::io::Write;
        let salt = dir.join("salt-call");
        std::fs::write(
            &salt,
            format!(
                "#!/bin/sh\ncat '{}/env/secrets.sls' && echo salt-ran\n",
                dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&salt, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (cfg, env) = (dir.join("cfg"), dir.join("env").display().to_string());
        let removal = leftovers_removal(&env, None, keep);
        let script = apply_script(&ApplyScript {
            config_dir: &cfg.display().to_string(),
            minion: "id: x\n",
            env_dir: &env,
            pillar_len: sent,
            salt_call: &salt.display().to_string(),
            removal: removal.as_deref(),
            dry_run: false,
        });
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn the_apply_script_applies_a_whole_pillar_and_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let pillar = b"secrets:\n  A: \"1\"\n  B: \"2\"\n";
        let out = run_apply(dir.path(), pillar, pillar.len(), false);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with(READY), "{stdout}");
        assert!(stdout.contains("B: \"2\"\nsalt-ran"), "{stdout}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cfg/minion")).unwrap(),
            "id: x\n"
        );
        assert!(!dir.path().join("env/secrets.sls").exists());

        let out = run_apply(dir.path(), pillar, pillar.len(), true);
        assert!(out.status.success(), "{out:?}");
        let kept = dir.path().join("env/secrets.sls");
        assert_eq!(std::fs::read(&kept).unwrap(), pillar);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&kept).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_pillar_cut_short_is_never_applied() {
        // What a vault killed mid-write sends: the stream ends after a whole line, so
        // what arrived is valid YAML holding fewer secrets.
        let dir = tempfile::tempdir().unwrap();
        let pillar = b"secrets:\n  A: \"1\"\n  B: \"2\"\n";
        let cut = &pillar[..b"secrets:\n  A: \"1\"\n".len()];
        for keep in [false, true] {
            let out = run_apply(dir.path(), cut, pillar.len(), keep);
            assert_eq!(out.status.code(), Some(4), "{out:?}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                !stdout.contains(READY) && !stdout.contains("salt-ran"),
                "{stdout}"
            );
            assert!(String::from_utf8_lossy(&out.stderr).contains(PILLAR_SHORT));
            let left: Vec<_> = std::fs::read_dir(dir.path().join("env"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "left on the host: {left:?}");
        }
    }
}

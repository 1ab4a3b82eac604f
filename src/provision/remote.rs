//! The shell vault runs on a server: the apply script (minion config, the pillar from
//! standard input, salt-call, the pillar's removal), rsync's remote end, the markers and
//! exit codes they report with, and the one-line reading of what they reported.

/// What the apply script needs to know.
pub(super) struct ApplyScript<'a> {
    pub config_dir: &'a str,
    pub minion: &'a str,
    pub env_dir: &'a str,
    /// Where conf/salt and conf/pillar are shipped to: a real run's lock is there.
    pub srv: &'a str,
    /// How many bytes of pillar come on standard input.
    pub pillar_len: usize,
    pub salt_call: &'a str,
    /// What the trap runs when the script ends: `None` keeps the pillar.
    pub removal: Option<&'a str>,
    pub dry_run: bool,
    /// The server's record of the version it applied, and what to do with it (None: a dry
    /// run, which leaves it alone).
    pub record: Option<RecordSwap<'a>>,
}

/// The record's compare-and-swap: the apply script goes on only while the record is as
/// rsync's remote end read it, and replaces it once salt-call succeeded.
pub(super) struct RecordSwap<'a> {
    pub path: &'a str,
    /// The state read before (see [`record_state`]).
    pub expected: &'a str,
    /// The record's new line (None: keep the old one).
    pub new: Option<&'a str>,
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
        "{lock}{check}umask 022 && mkdir -p {cfg} && printf '%s' {minion} > {cfg}/.minion.tmp && mv {cfg}/.minion.tmp {cfg}/minion || exit 4; \
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
        check = match &a.record {
            Some(r) => unchanged(r, CHANGED_BEFORE),
            None => String::new(),
        },
        lock = match &a.record {
            Some(_) => lock(a.srv),
            None => String::new(),
        },
    );
    if a.dry_run {
        script.push_str(" test=True");
    }
    // Salt's children do not hold the lock: a daemon a state starts would keep it.
    script.push_str(" 2>&1 9>&-");
    if let Some(r) = &a.record {
        script.push_str(&format!(
            "; rc=$?; [ $rc -eq 0 ] || exit $rc; {}{}exit 0",
            unchanged(r, CHANGED_AFTER),
            r.new
                .map(|line| write_record(r.path, line))
                .unwrap_or_default(),
        ));
    }
    script
}

/// Shell that takes the server's provision lock, `.vault-provision.lock` in `srv` (where
/// the Salt roots go: one per server root, shared, with the minion config, by every
/// project and environment there), on descriptor 9 for as long as the shell runs; or
/// exits with 8 and [`BUSY`] when another run holds it. Two provisions at once would
/// otherwise swap each other's secrets and states under Salt. Without `flock`
/// (util-linux) there is no lock.
pub(super) fn lock(srv: &str) -> String {
    let q = |s: &str| shell_words::quote(s).into_owned();
    format!(
        "if command -v flock >/dev/null 2>&1; then {{ umask 022 && mkdir -p {d} && exec 9>>{f} && flock -n 9; }} || {{ echo {busy} >&2; exit 8; }}; fi; ",
        d = q(srv),
        f = q(&format!("{srv}/.vault-provision.lock")),
        busy = q(BUSY),
    )
}

/// Shell that sets `$s` to the state of the record at `path`: `none` when there is
/// none, else `=` and its first 200 bytes with all but letters, digits, `:` and spaces
/// left out (a planted record cannot put anything else on a member's terminal). A link
/// or anything but a file reads as `=link` or `=notafile`, never followed.
pub(super) fn record_state(path: &str) -> String {
    let r = shell_words::quote(path);
    format!(
        "if [ -L {r} ]; then s==link; elif [ -f {r} ]; then s=\"=$(head -c 200 {r} 2>/dev/null | tr -cd 'A-Za-z0-9: ')\"; \
         elif [ -e {r} ]; then s==notafile; else s=none; fi; "
    )
}

/// Shell that exits with 6 and `marker` unless the record is still as `r` expects.
fn unchanged(r: &RecordSwap, marker: &str) -> String {
    format!(
        "{}[ \"$s\" = {} ] || {{ echo {} >&2; exit 6; }}; ",
        record_state(r.path),
        shell_words::quote(r.expected),
        shell_words::quote(marker)
    )
}

/// Shell that writes `line` as the record at `path`, atomically, root's alone: its
/// folder 0700, the file 0600. Exits 7 with a marker when it cannot.
fn write_record(path: &str, line: &str) -> String {
    let dir = path.rsplit_once('/').map_or(".", |(d, _)| d);
    let (q, d) = (shell_words::quote(path), shell_words::quote(dir));
    let tmp = shell_words::quote(&format!("{path}.tmp")).into_owned();
    format!(
        "{{ umask 022 && mkdir -p {d} && chmod 700 {d} && umask 077 && rm -f {tmp} && printf '%s\\n' {line} > {tmp} && mv -f {tmp} {q}; }} \
         || {{ rm -f {tmp}; echo {failed} >&2; exit 7; }}; ",
        line = shell_words::quote(line),
        failed = shell_words::quote(RECORD_FAILED),
    )
}

// The markers the scripts print for vault to read, beside their exit codes: 3 for no
// salt-call (rsync's remote end), 4 for anything before salt-call in the apply script.

/// What the rsync prelude says when salt-call is missing.
const SALT_MISSING: &str = "vault: salt-call not found";
/// The line the apply script prints once the secrets are in place, before salt-call.
pub(super) const READY: &str = "vault: pillar in place";
/// What the apply script says when fewer pillar bytes arrived than were sent.
const PILLAR_SHORT: &str = "vault: the secrets arrived incomplete";
/// What rsync's remote end prints before the state of the server's record.
pub(super) const APPLIED: &str = "vault: applied version: ";
/// What rsync's remote end says when the record names a version not let through.
pub(super) const NOT_FOLLOWED: &str = "vault: the applied version is not one this follows";
/// What the apply script says when the record changed since rsync's remote end read it.
const CHANGED_BEFORE: &str = "vault: the applied version changed before this applied";
const CHANGED_AFTER: &str = "vault: the applied version changed while this applied";
/// What either remote end says when another provision holds the server's lock.
const BUSY: &str = "vault: another provision is running on this server";
/// What the apply script says when Salt succeeded but the record could not be written.
const RECORD_FAILED: &str = "vault: cannot write the record of the applied version";

/// rsync's `--rsync-path`: the remote end of the copy, in the same round trip. No
/// salt-call, no shipping; then the state of the server's `record` printed (see
/// [`record_state`]); with `guard`, the ids let through, no shipping when the record
/// names another; then the server's provision lock taken (see [`lock`]), held by rsync
/// while it copies; then the folder `to` (with its parents), and rsync itself with the
/// arguments rsync adds.
pub(super) fn rsync_path(
    salt_call: &str,
    to: &str,
    sudo: bool,
    record: &str,
    guard: Option<&[&str]>,
) -> String {
    let guard = match guard {
        None => String::new(),
        Some(ids) => {
            // Ids are `sha256:` and hex: nothing a pattern would read otherwise.
            let ids: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':'))
                .collect();
            let known = match ids.is_empty() {
                true => "false".to_string(),
                false => format!("case \"$id\" in {}) ;; *) false;; esac", ids.join("|")),
            };
            format!(
                "case \"$s\" in none) ;; *) id=${{s#=}}; id=${{id%% *}}; {known} || {{ echo {stop} >&2; exit 5; }};; esac; ",
                stop = shell_words::quote(NOT_FOLLOWED),
            )
        }
    };
    let prelude = format!(
        "command -v {salt} >/dev/null 2>&1 || {{ echo {missing} >&2; exit 3; }}; \
         {state}printf '%s%s\\n' {applied} \"$s\" >&2; {guard}{lock}\
         umask 022 && mkdir -p \"$0\" && exec rsync \"$@\"",
        salt = shell_words::quote(salt_call),
        missing = shell_words::quote(SALT_MISSING),
        state = record_state(record),
        applied = shell_words::quote(APPLIED),
        lock = lock(to),
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
    } else if stderr.contains(BUSY) {
        Some("another provision is running on this server: nothing was applied; run provision again once it is done".into())
    } else if stderr.contains(CHANGED_BEFORE) {
        Some("another provision changed the version the server runs since this one read it: nothing was applied, run provision again".into())
    } else if stderr.contains(CHANGED_AFTER) {
        Some("another provision changed the version the server runs while this one applied: its record was kept; run provision again to know which version runs".into())
    } else if stderr.contains(RECORD_FAILED) {
        Some("applied, but the server's record of the applied version could not be written: the next provision cannot tell whether it goes back".into())
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
        run_apply_with(dir, input, sent, keep, None)
    }

    /// [`run_apply`] with the record's compare-and-swap.
    fn run_apply_with(
        dir: &Path,
        input: &[u8],
        sent: usize,
        keep: bool,
        record: Option<RecordSwap>,
    ) -> std::process::Output {
        use std::io::Write;
        let salt = dir.join("salt-call");
        std::fs::write(
            &salt,
            format!(
                "#!/bin/sh\ncat '{d}/env/secrets.sls' && echo salt-ran && [ ! -e '{d}/fail' ]\n",
                d = dir.display()
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
            srv: &dir.display().to_string(),
            pillar_len: sent,
            salt_call: &salt.display().to_string(),
            removal: removal.as_deref(),
            dry_run: false,
            record,
        });
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The script may refuse and exit before reading its input, as the
        // real one does when the record changed: a broken pipe is expected.
        let _ = child.stdin.take().unwrap().write_all(input);
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

    /// The state the rsync prelude prints of the record at `path`, and whether it went
    /// on to rsync (a stand-in that says so), with `guard`'s ids.
    fn run_prelude(dir: &Path, path: &str, guard: Option<&[&str]>) -> (String, bool) {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, body) in [("rsync", "echo rsync-ran"), ("salt-call", "true")] {
            let f = bin.join(name);
            std::fs::write(&f, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let to = dir.join("srv").display().to_string();
        let cmd = rsync_path("salt-call", &to, false, path, guard);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let state = err
            .lines()
            .find_map(|l| l.strip_prefix(APPLIED))
            .unwrap_or_else(|| panic!("no state: {err}"))
            .to_string();
        let ran = String::from_utf8_lossy(&out.stdout).contains("rsync-ran");
        assert_eq!(ran, out.status.success(), "{out:?}");
        assert_eq!(!ran && guard.is_some(), err.contains(NOT_FOLLOWED), "{err}");
        (state, ran)
    }

    #[test]
    fn the_rsync_prelude_reports_the_record_and_guards_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("lib/vault/example-staging");
        let path = record.display().to_string();
        let (a, b) = ("sha256:aa", "sha256:bb");
        assert_eq!(
            run_prelude(dir.path(), &path, Some(&[a])),
            ("none".into(), true)
        );
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        std::fs::write(&record, format!("{a} 3\n")).unwrap();
        assert_eq!(
            run_prelude(dir.path(), &path, Some(&[b, a])),
            (format!("={a} 3"), true)
        );
        assert_eq!(
            run_prelude(dir.path(), &path, Some(&[b])),
            (format!("={a} 3"), false)
        );
        assert!(!run_prelude(dir.path(), &path, Some(&[])).1);
        assert_eq!(
            run_prelude(dir.path(), &path, None),
            (format!("={a} 3"), true)
        );
        // What a member's terminal is shown of a planted record: safe characters only;
        // a link is never followed.
        std::fs::write(&record, "\x1b[31mred $(id) `x`\n").unwrap();
        assert_eq!(
            run_prelude(dir.path(), &path, Some(&[a])),
            ("=31mred id x".into(), false)
        );
        std::fs::remove_file(&record).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &record).unwrap();
        assert_eq!(
            run_prelude(dir.path(), &path, Some(&[a])),
            ("=link".into(), false)
        );
    }

    #[test]
    fn the_record_is_swapped_only_after_salt_and_only_if_unchanged() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pillar = b"secrets:\n  A: \"1\"\n";
        let record = dir.path().join("var/lib/vault/example/applied-staging");
        let path = record.display().to_string();
        let swap = |expected: &'static str| RecordSwap {
            path: Box::leak(path.clone().into_boxed_str()),
            expected,
            new: Some("sha256:bb 4"),
        };
        // First: no record, written root-only after salt-call.
        let out = run_apply_with(dir.path(), pillar, pillar.len(), false, Some(swap("none")));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "sha256:bb 4\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&record), 0o600);
        assert_eq!(mode(record.parent().unwrap()), 0o700);
        // Changed since it was read: nothing applied, the record kept.
        let out = run_apply_with(
            dir.path(),
            pillar,
            pillar.len(),
            false,
            Some(swap("=sha256:aa 3")),
        );
        assert_eq!(out.status.code(), Some(6), "{out:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("salt-ran"));
        assert!(String::from_utf8_lossy(&out.stderr).contains(CHANGED_BEFORE));
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "sha256:bb 4\n");
        // A failed salt-call, or one never run, writes no record.
        std::fs::remove_file(&record).unwrap();
        let out = run_apply_with(
            dir.path(),
            pillar,
            pillar.len() + 1,
            false,
            Some(swap("none")),
        );
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        std::fs::write(dir.path().join("fail"), "").unwrap();
        let out = run_apply_with(dir.path(), pillar, pillar.len(), false, Some(swap("none")));
        assert!(String::from_utf8_lossy(&out.stdout).contains("salt-ran"));
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(!record.exists());
    }
}

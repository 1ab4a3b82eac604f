//! Shared helpers for the integration tests: a scratch project with the published test
//! keys, a `vault` command isolated from the machine's own keys, and the awkward values.

pub mod fleet;
pub mod forge;
pub mod postgres;
pub mod server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

/// Values that trip up every naive format, each of which must come back byte for byte.
pub const AWKWARD: &[(&str, &str)] = &[
    ("LEADING_ZERO", "0123"),
    ("YES", "yes"),
    ("ON", "on"),
    ("FLOAT", "1e3"),
    ("TILDE", "~foo"),
    ("NULL_WORD", "null"),
    ("PERCENT", "100%s %(here)x %%"),
    ("QUOTES", "it's \"quoted\""),
    ("BACKSLASH", "C:\\path\\n\\x41"),
    ("DOLLAR", "$HOME and $(id) and `id`"),
    ("COMMA_EQ", "a,b=c,d"),
    ("HASH", "value # not a comment"),
    ("SPACES", "  padded  "),
    (
        "PEM",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END PRIVATE KEY-----\n",
    ),
    ("NON_ASCII", "héllo wörld 日本 🎉"),
    ("EMPTY", ""),
    ("JINJA", "{{ pillar }} {% raw %}"),
    ("TAB", "a\tb"),
];

/// A scratch project: staging readable by alice (ssh-ed25519) and bob (age X25519),
/// production by alice and carol (ssh-rsa).
pub struct Project {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let p = Project { dir, home };
        p.vault(&["init", "--project", "example"]).success();
        p.add_member("staging", "alice", "alice_ed25519.pub");
        p.add_member("staging", "bob", "bob.agekey.pub");
        p.add_member("production", "alice", "alice_ed25519.pub");
        p.add_member("production", "carol", "carol_rsa.pub");
        // alice checked bob's and carol's fingerprints with them: her founding writes
        // admit them (a founding admits only keys its founder verified).
        for (env, key_file) in [
            ("staging", "bob.agekey.pub"),
            ("production", "carol_rsa.pub"),
        ] {
            p.vault(&["trust", env, "--fingerprint", &fingerprint(key_file)])
                .success();
        }
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn add_member(&self, env: &str, name: &str, key_file: &str) {
        let key = std::fs::read_to_string(Path::new(KEYS).join(key_file)).unwrap();
        let dir = self.root().join("recipients").join(env);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.pub")), key).unwrap();
    }

    pub fn secrets(&self, env: &str) -> PathBuf {
        self.root()
            .join("conf/pillar")
            .join(env)
            .join("secrets.sls.age")
    }

    /// `vault` in this project, as alice, with nothing of the machine's own.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.bare(args);
        c.env("VAULT_IDENTITY", key("alice_ed25519"));
        c
    }

    /// `vault` in this project with no identity given.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
        c.args(args)
            .current_dir(self.root())
            .env_remove("VAULT_IDENTITY")
            .env_remove("VISUAL")
            .env_remove("EDITOR")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            // Colour as the test asks, not as the machine running it is set up.
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("HOME", &self.home)
            // What vault remembers lives in this test's own home, never the machine's.
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .stdin(Stdio::null());
        c
    }

    /// `vault` in this project as `who` (a fixture key) on a machine of its own, whose
    /// home (and so what vault remembers) is `home`.
    pub fn on_machine(&self, home: &Path, who: &str, args: &[&str]) -> Command {
        let mut c = self.bare(args);
        c.env("VAULT_IDENTITY", key(who))
            .env("HOME", home)
            .env("XDG_STATE_HOME", home.join("state"));
        c
    }

    pub fn vault(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().unwrap())
    }

    /// Runs with `input` on standard input.
    pub fn vault_in(&self, args: &[&str], input: &[u8]) -> Run {
        run_with_input(self.cmd(args), input)
    }

    /// Sets `name` to exactly `value` (through a file, so nothing is trimmed).
    pub fn set(&self, env: &str, name: &str, value: &str) {
        let f = self.root().join(".value");
        std::fs::write(&f, value).unwrap();
        self.vault(&["set", env, name, "--from-file", f.to_str().unwrap()])
            .success();
        std::fs::remove_file(f).unwrap();
    }

    /// Every file under the project with its bytes, to show a command changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        files_under(self.root(), &["home"])
    }
}

/// Every regular file under `dir` with its bytes, in order, passing over entries named
/// in `skip` (and sockets and the like, which have no bytes to compare). A file a running
/// server removes while this walks is passed over; any other failure to read fails.
pub fn files_under(dir: &Path, skip: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => continue,
            Err(e) => panic!("{}: {e}", d.display()),
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| skip.iter().any(|s| n == *s)) {
                continue;
            }
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                todo.push(p);
            } else if kind.is_file() {
                match std::fs::read(&p) {
                    Ok(bytes) => out.push((p, bytes)),
                    Err(e) if gone(&e) => {}
                    Err(e) => panic!("{}: {e}", p.display()),
                }
            }
        }
    }
    out.sort();
    out
}

pub fn key(name: &str) -> String {
    format!("{KEYS}/{name}")
}

pub fn run_with_input(mut c: Command, input: &[u8]) -> Run {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit without reading its input (a usage error): a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    Run(child.wait_with_output().unwrap())
}

/// A finished command, with assertions that print its output when they fail.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.0.status.success(),
            "failed ({:?})\nstdout: {}\nstderr: {}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Exit 1 with one `vault: error:` line (and at most a hint line); returns the error line.
    #[track_caller]
    pub fn error(self) -> String {
        self.refused(1)
    }

    /// Exit `code` (1 failure, 2 usage) with one `vault: error:` line (and at most a hint
    /// line); returns the error line.
    #[track_caller]
    pub fn refused(&self, code: i32) -> String {
        let err = self.stderr();
        assert_eq!(
            self.code(),
            code,
            "expected exit {code}\nstdout: {}\nstderr: {err}",
            self.stdout()
        );
        // The override's loud warning is expected where a test asks for it.
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("vault: WARNING: --insecure-skip-verify"))
            .collect();
        assert!(
            !lines.is_empty() && lines[0].starts_with("vault: error: "),
            "stderr: {err}"
        );
        assert!(
            lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
            "not one error line: {err}"
        );
        lines[0].to_string()
    }
}

/// The Python interpreter with the export formats' consumers, or None (with a message)
/// when it is missing outside CI. In CI its absence fails the test.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("VAULT_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
    {
        Some(p) => Some(p),
        None => {
            require_in_ci("the Python consumers (run scripts/test, which sets VAULT_TEST_PYTHON)");
            None
        }
    }
}

/// Runs `cmd` on a pseudo-terminal (util-linux `script`), as at a person's terminal, with
/// its environment and folder, typing `typed` (and Enter) once after a second; returns
/// its status and what the terminal showed, with the terminal's escape sequences taken out.
pub fn on_terminal(cmd: &Command, typed: Option<&str>) -> (std::process::ExitStatus, String) {
    let (status, raw) = on_terminal_raw(cmd, typed);
    // ESC [ parameters final-byte: cursor moves, line clears, colours.
    let mut shown = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        if b != 0x1b {
            shown.push(b);
        } else if bytes.next() == Some(b'[') {
            bytes.by_ref().find(|c| (0x40..=0x7e).contains(c));
        }
    }
    (status, String::from_utf8_lossy(&shown).into_owned())
}

/// [`on_terminal`], with what the terminal showed as it came, escape sequences and all.
pub fn on_terminal_raw(cmd: &Command, typed: Option<&str>) -> (std::process::ExitStatus, Vec<u8>) {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect();
    let shell = match typed {
        Some(_) => "(sleep 1; printf '%s\\n' \"$TYPED\") | script -qec \"$CMD\" /dev/null",
        None => "script -qec \"$CMD\" /dev/null < /dev/null",
    };
    let mut c = Command::new("sh");
    c.args(["-c", shell])
        .env("CMD", line.join(" "))
        .env("TYPED", typed.unwrap_or_default());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    let out = c.output().unwrap();
    (out.status, out.stdout)
}

/// Whether `program` is on PATH; in CI its absence fails the test.
pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        require_in_ci(program);
    }
    found
}

/// Fails the test in CI (where the setup must provide `what`); elsewhere says it skips.
pub fn require_in_ci(what: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("CI is set but {what} is missing: the test setup must install it");
    }
    eprintln!("SKIPPED: {what} is not available (install with scripts/setup-test-deps); CI never skips this");
}

/// What `ssh-keygen -lf` prints as the fingerprint of a fixture public key.
pub fn fingerprint(pub_file: &str) -> String {
    fingerprint_of(Path::new(&key(pub_file)))
}

/// What `ssh-keygen -lf` prints as the fingerprint of the public key in `path`; for an
/// age X25519 key (which ssh-keygen does not read), vault's: the SHA-256 of its text.
pub fn fingerprint_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    if let Some(age) = text.lines().map(str::trim).find(|l| l.starts_with("age1")) {
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(age.as_bytes());
        return format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        );
    }
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// git in `dir` with a fixed author, so commits need no machine configuration.
pub fn git_command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.args([
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "-c",
        "init.defaultBranch=main",
    ])
    .current_dir(dir);
    c
}

/// Runs git in `dir` with a fixed identity; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reader of every export format by its real consumer (tests/consumers/read.py).
pub const READER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/consumers/read.py");

/// `file`, an export in `format`, as its real consumer reads it: NAME to value.
pub fn read_export(
    python: &Path,
    format: &str,
    file: &Path,
) -> std::collections::BTreeMap<String, String> {
    let out = Command::new(python)
        .args([READER, format, file.to_str().unwrap()])
        .env("HOME", "/home/consumer")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

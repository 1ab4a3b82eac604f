//! `vault edit` with scripted editors: where the plaintext lives, validation and the
//! error banner, unchanged content, and cleanup on every way out, signals included.

use crate::common::{self, Project};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmpfs folder standing in for $XDG_RUNTIME_DIR.
struct Runtime(tempfile::TempDir);

impl Runtime {
    fn new() -> Runtime {
        Runtime(
            tempfile::Builder::new()
                .prefix("vault-test-xdg-")
                .tempdir_in("/dev/shm")
                .unwrap(),
        )
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Whatever is left in it (vault's folder must be gone).
    fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.ends_with("editor.sh") && !p.ends_with("state"))
            .collect()
    }
}

/// `vault edit staging` with `$VISUAL` running `script` (sh) on the file, as "$1".
fn edit_with(p: &Project, rt: &Runtime, script: &str) -> Command {
    let editor = rt.path().join("editor.sh");
    std::fs::write(&editor, script).unwrap();
    let mut c = p.cmd(&["edit", "staging"]);
    c.env("XDG_RUNTIME_DIR", rt.path())
        .env("VISUAL", format!("sh {}", editor.display()))
        .env("STATE", rt.path().join("state"));
    c
}

#[test]
fn edits_happen_on_tmpfs_in_a_private_file() {
    let p = Project::new();
    let rt = Runtime::new();
    let script = r#"
stat -c '%a' "$1" > "$STATE.filemode"
stat -c '%a' "$(dirname "$1")" > "$STATE.dirmode"
stat -f -c '%T' "$1" > "$STATE.fs"
basename "$1" > "$STATE.name"
cat > "$1" <<'EOF'
# my comment
secrets:
  DB_PASSWORD: 'p@ss'
  PIN: 0123
EOF
"#;
    let out = common::Run(edit_with(&p, &rt, script).output().unwrap()).success();
    assert!(
        out.stderr().contains("staging: saved 2 secret(s)"),
        "{}",
        out.stderr()
    );
    let read = |s: &str| {
        std::fs::read_to_string(rt.path().join(format!("state.{s}")))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("filemode"), "600");
    assert_eq!(read("dirmode"), "700");
    assert_eq!(read("fs"), "tmpfs");
    assert_eq!(read("name"), "secrets.sls");
    assert_eq!(p.vault(&["get", "staging", "PIN"]).0.stdout, b"0123");
    for f in ["filemode", "dirmode", "fs", "name"] {
        std::fs::remove_file(rt.path().join(format!("state.{f}"))).unwrap();
    }
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
    // Comments are kept in the committed document.
    let out = Command::new("age")
        .args([
            "-d",
            "-i",
            &common::key("alice_ed25519"),
            p.secrets("staging").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# my comment\n"));
}

#[test]
fn unchanged_content_rewrites_nothing() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    let rt = Runtime::new();
    let out = common::Run(edit_with(&p, &rt, "true").output().unwrap()).success();
    assert!(out.stderr().contains("staging: no changes"));
    assert_eq!(
        p.snapshot(),
        before,
        "the ciphertext's bytes must not change"
    );
    // The template of a new environment, saved as is, creates nothing.
    let out = common::Run(
        edit_with(&p, &rt, "true")
            .args(["-C", "."])
            .output()
            .unwrap(),
    )
    .success();
    assert!(out.stderr().contains("no changes"));
    let mut c = p.cmd(&["edit", "production"]);
    c.env("XDG_RUNTIME_DIR", rt.path()).env("VISUAL", "true");
    let out = common::Run(c.output().unwrap()).success();
    assert!(
        out.stderr()
            .contains("production: the document holds no secret, so nothing was written"),
        "{}",
        out.stderr()
    );
    assert!(!p.secrets("production").exists());
    assert!(rt.leftovers().is_empty());
}

/// No $VISUAL or $EDITOR and no terminal (a script, CI, output to a pipe): vi is not
/// started, since it would draw the decrypted file on its output; the error names the
/// way that needs no editor.
#[test]
fn without_an_editor_or_a_terminal_nothing_is_opened_or_shown() {
    let p = Project::new();
    p.set("staging", "A", "shown-nowhere-value");
    let before = p.snapshot();
    let rt = Runtime::new();
    let mut c = p.cmd(&["edit", "staging"]);
    c.env("XDG_RUNTIME_DIR", rt.path());
    let out = c.output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("shown-nowhere-value"), "{all}");
    assert!(
        all.contains(
            "vault: error: no $VISUAL or $EDITOR, and no terminal for vi: nothing was opened"
        ),
        "{all}"
    );
    assert!(
        all.contains("`printf %s \"$VALUE\" | vault set ENV NAME`"),
        "{all}"
    );
    assert_eq!(p.snapshot(), before);
    assert!(rt.leftovers().is_empty());
}

#[test]
fn invalid_content_reopens_with_the_error_on_top() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let rt = Runtime::new();
    // First save: a duplicate. Second: the banner is there; fix it (keep the banner).
    let script = r#"
if [ ! -e "$STATE" ]; then
  touch "$STATE"
  printf 'secrets:\n  A: 1\n  A: 2\n' > "$1"
else
  head -n 2 "$1" > "$STATE.banner"
  { head -n 2 "$1"; printf 'secrets:\n  A: 2\n  B: new\n'; } > "$1.new" && mv "$1.new" "$1"
fi
"#;
    let out = common::Run(edit_with(&p, &rt, script).output().unwrap()).success();
    assert!(
        out.stderr()
            .contains("vault: error: staging: line 3: duplicate secret name"),
        "{}",
        out.stderr()
    );
    let banner = std::fs::read_to_string(rt.path().join("state.banner")).unwrap();
    assert_eq!(
        banner,
        "# vault: error: staging: line 3: duplicate secret name (first at line 2)\n# vault: fix the error above, or save the file unchanged to give up.\n"
    );
    assert_eq!(p.vault(&["get", "staging", "B"]).0.stdout, b"new");
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"2");
}

#[test]
fn giving_up_on_invalid_content_leaves_the_file_untouched() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    let rt = Runtime::new();
    let script = r#"if [ ! -e "$STATE" ]; then touch "$STATE"; printf 'secrets: [\n' > "$1"; fi"#;
    let err = common::Run(edit_with(&p, &rt, script).output().unwrap()).stderr();
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(p.snapshot(), before);
    std::fs::remove_file(rt.path().join("state")).unwrap();
    assert!(rt.leftovers().is_empty());
    // An editor that fails.
    let out = edit_with(&p, &rt, "printf 'secrets:\\n  A: 9\\n' > \"$1\"; exit 3")
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains("the editor exited with exit status: 3; nothing was changed"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
    assert!(rt.leftovers().is_empty());
}

/// Starts `c` (a `vault edit` whose editor records the file's path, then waits) and
/// returns it once the editor holds the plaintext, with the plaintext file's path.
fn with_editor_open(mut c: Command, rt: &Runtime) -> (std::process::Child, PathBuf) {
    let child = c.spawn().unwrap();
    let marker = rt.path().join("state.path");
    let start = Instant::now();
    while !marker.exists() || std::fs::read_to_string(&marker).unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "editor never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let file = PathBuf::from(std::fs::read_to_string(&marker).unwrap().trim());
    std::fs::remove_file(marker).unwrap();
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("plain-secret"));
    (child, file)
}

const WAITING_EDITOR: &str = "echo \"$1\" > \"$STATE.path\"; exec sleep 30";

/// `c` run by a shell that first allows core dumps of any size, as a user might.
fn with_core_dumps(c: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.args(["-c", "ulimit -c unlimited && exec \"$0\" \"$@\""])
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = c.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// Files named like a core dump (`core`, `core.PID`, `vault.core`) anywhere under `dir`.
fn cores_under(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir, &[])
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n == "core" || n.starts_with("core.") || n.ends_with(".core")
        })
        .collect()
}

/// Every signal vault edit catches, by number and name, and how vault must end on it:
/// by the signal itself, or (where its default cannot be restored) with 128 + it.
fn caught_signals() -> Vec<(i32, String, bool)> {
    use signal_hook::consts::*;
    let mut all: Vec<(i32, String, bool)> = [
        (SIGQUIT, "QUIT"),
        (SIGUSR1, "USR1"),
        (SIGUSR2, "USR2"),
        (SIGALRM, "ALRM"),
        (SIGPIPE, "PIPE"),
        (SIGTERM, "TERM"),
        (SIGINT, "INT"),
        (SIGHUP, "HUP"),
        (SIGTRAP, "TRAP"),
        (SIGABRT, "ABRT"),
        (SIGXCPU, "XCPU"),
        (SIGXFSZ, "XFSZ"),
        (SIGVTALRM, "VTALRM"),
        (SIGPROF, "PROF"),
        (SIGSYS, "SYS"),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.to_string(), true))
    .collect();
    // SIGIO's default (terminate) is not one signal-hook restores, nor SIGSTKFLT's,
    // SIGPWR's or a real-time signal's: those end with 128 + the signal.
    for (n, s) in [
        (SIGIO, "IO"),
        (16, "STKFLT"),
        (30, "PWR"),
        (34, "RTMIN"),
        (64, "RTMAX"),
    ] {
        all.push((n, s.to_string(), false));
    }
    all
}

#[test]
fn signals_remove_the_plaintext() {
    use std::os::unix::process::ExitStatusExt;
    let p = Project::new();
    p.set("staging", "A", "plain-secret");
    let before = p.snapshot();
    for (num, name, by_signal) in caught_signals() {
        let rt = Runtime::new();
        let c = with_core_dumps(&edit_with(&p, &rt, WAITING_EDITOR));
        let (mut child, file) = with_editor_open(c, &rt);
        Command::new("kill")
            .args([&format!("-{num}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        if by_signal {
            assert_eq!(status.signal(), Some(num), "SIG{name}: {status}");
            assert!(!status.core_dumped(), "SIG{name} dumped core");
        } else {
            assert_eq!(status.code(), Some(128 + num), "SIG{name}: {status}");
        }
        assert!(
            !file.exists() && !file.parent().unwrap().exists(),
            "SIG{name} left the plaintext"
        );
        assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
        assert!(cores_under(p.root()).is_empty(), "SIG{name}: a core file");
        assert_eq!(p.snapshot(), before, "SIG{name}");
    }
    // The honest flow after all that: the editor's save is written.
    let rt = Runtime::new();
    let script = "printf 'secrets:\\n  A: new-secret\\n' > \"$1\"";
    common::Run(edit_with(&p, &rt, script).output().unwrap()).success();
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"new-secret");
}

/// Where cores are written on this machine: a file name (relative to the dumping
/// process's folder, or absolute), or None when a program receives them.
fn core_pattern() -> Option<String> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").ok()?;
    let pattern = pattern.trim().to_string();
    (!pattern.starts_with('|')).then_some(pattern)
}

/// With core dumps allowed by the shell, a vault edit holding plaintext has a core
/// limit of 0 and is not dumpable, and SIGQUIT (whose default dumps core) leaves no
/// core, while the same shell's own process does dump one: the machine would write it.
#[test]
fn an_editing_vault_dumps_no_core() {
    use std::os::unix::process::ExitStatusExt;
    let p = Project::new();
    p.set("staging", "A", "plain-secret");
    let rt = Runtime::new();
    let c = with_core_dumps(&edit_with(&p, &rt, WAITING_EDITOR));
    let (mut child, _file) = with_editor_open(c, &rt);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );
    Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(3), "{status}");
    assert!(!status.core_dumped());
    assert!(cores_under(p.root()).is_empty());
    // The control: the same shell, its own process quitting, dumps core here.
    let Some(pattern) = core_pattern() else {
        eprintln!("SKIPPED the control: cores go to a program on this machine (core_pattern)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = Command::new("sh")
        .args(["-c", "ulimit -c unlimited; exec sleep 5"])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    Command::new("kill")
        .args(["-QUIT", &ctl.id().to_string()])
        .status()
        .unwrap();
    let st = ctl.wait().unwrap();
    if pattern.starts_with('/') || !st.core_dumped() {
        eprintln!("SKIPPED the control: this machine writes no core in the folder ({pattern})");
        return;
    }
    assert!(!cores_under(dir.path()).is_empty(), "{pattern}");
}

/// A non-dumpable process's /proc files belong to root, whoever runs it: seen by
/// running vault as an unprivileged user (`setpriv`, when the tests run as root).
#[test]
fn an_editing_vault_is_not_dumpable() {
    if !rustix::process::geteuid().is_root() || !common::have("setpriv") {
        eprintln!("SKIPPED: needs root and setpriv to run vault as another user");
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "plain-secret");
    let rt = Runtime::new();
    // The user `nobody` gets the project, the runtime folder and a copy of alice's key.
    let key = p.home.join("alice");
    std::fs::copy(common::key("alice_ed25519"), &key).unwrap();
    for path in [p.root(), rt.path()] {
        let ok = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let as_nobody = |c: &Command| {
        let mut s = with_core_dumps(c);
        let sh_args: Vec<_> = std::iter::once(s.get_program().to_owned())
            .chain(s.get_args().map(|a| a.to_owned()))
            .collect();
        let mut n = Command::new("setpriv");
        n.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(sh_args);
        for (k, v) in s.get_envs() {
            match v {
                Some(v) => n.env(k, v),
                None => n.env_remove(k),
            };
        }
        n.current_dir(s.get_current_dir().unwrap());
        s = n;
        s
    };
    let mut c = edit_with(&p, &rt, WAITING_EDITOR);
    c.env("VAULT_IDENTITY", &key);
    let (mut child, file) = with_editor_open(as_nobody(&c), &rt);
    let owner = |pid: u32| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/status"))
            .unwrap()
            .uid()
    };
    assert_eq!(
        owner(child.id()),
        0,
        "vault's /proc files are not root's: dumpable"
    );
    // The control: the editor it started (a new program: dumpable again) is nobody's.
    let editor =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .unwrap();
    let editor: u32 = editor.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(owner(editor), 65534);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    assert!(!file.exists());
}

#[test]
fn editor_from_visual_then_editor_split_like_a_shell() {
    let p = Project::new();
    let rt = Runtime::new();
    let dir = rt.path().join("dir with space");
    std::fs::create_dir(&dir).unwrap();
    let script = dir.join("ed.sh");
    std::fs::write(
        &script,
        "[ \"$1\" = --flag ] || exit 9\nprintf 'secrets:\\n  VIA: editor\\n' > \"$2\"\n",
    )
    .unwrap();
    let mut c = p.cmd(&["edit", "staging"]);
    c.env("XDG_RUNTIME_DIR", rt.path())
        .env("EDITOR", format!("sh '{}' --flag", script.display()));
    common::Run(c.output().unwrap()).success();
    assert_eq!(p.vault(&["get", "staging", "VIA"]).0.stdout, b"editor");
    // $VISUAL wins over $EDITOR.
    let mut c = p.cmd(&["edit", "staging"]);
    c.env("XDG_RUNTIME_DIR", rt.path())
        .env("EDITOR", "false")
        .env("VISUAL", "sed -i s/editor/visual/");
    common::Run(c.output().unwrap()).success();
    assert_eq!(p.vault(&["get", "staging", "VIA"]).0.stdout, b"visual");
}

#[test]
fn an_edit_that_empties_an_environment_is_not_saved_without_a_yes() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    let rt = Runtime::new();
    // Every line turned into a comment (an editor's comment continuation, say).
    let out = edit_with(&p, &rt, "printf 'secrets:\\n#  A: 1\\n' > \"$1\"")
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains("staging: the edit removes every secret (1); nothing was saved"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
    assert!(rt.leftovers().is_empty());
}

#[test]
fn a_first_edit_with_no_secret_writes_nothing_and_says_why() {
    let p = Project::new();
    let rt = Runtime::new();
    let mut c = p.cmd(&["edit", "production"]);
    let editor = rt.path().join("editor.sh");
    // The user typed under the example comment of the template, commented out.
    std::fs::write(&editor, "printf '# DB: x\\nsecrets:\\n' > \"$1\"").unwrap();
    c.env("XDG_RUNTIME_DIR", rt.path())
        .env("VISUAL", format!("sh {}", editor.display()));
    let out = common::Run(c.output().unwrap()).success();
    assert!(
        out.stderr()
            .contains("production: the document holds no secret, so nothing was written"),
        "{}",
        out.stderr()
    );
    assert!(!p.secrets("production").exists());
}

#[test]
fn the_template_ends_in_the_secrets_key_not_in_a_comment_an_editor_would_continue() {
    let t = vault::document::Document::template("staging");
    let text = String::from_utf8(t.expose().to_vec()).unwrap();
    assert_eq!(text.lines().last(), Some("secrets:"), "{text}");
    assert!(text.contains("DB_PASSWORD: 'change me'"), "{text}");
}

#[test]
fn emptying_an_environment_at_a_terminal_is_saved_on_a_yes() {
    if !common::have("script") {
        common::require_in_ci("script (bsdutils)");
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "1");
    let rt = Runtime::new();
    let c = edit_with(&p, &rt, "printf 'secrets:\\n' > \"$1\"");
    let (status, shown) = common::on_terminal(&c, Some("y"));
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("this edit removes all 1 secret(s). Save it? [y/N]"),
        "{shown}"
    );
    let err = p.vault(&["get", "staging", "A"]).error();
    assert!(err.contains("no secret named A"), "{err}");
}

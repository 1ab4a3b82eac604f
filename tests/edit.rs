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
    common::Run(c.output().unwrap()).success();
    assert!(!p.secrets("production").exists());
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
            .contains("vault: error: staging: line 3: duplicate secret A"),
        "{}",
        out.stderr()
    );
    let banner = std::fs::read_to_string(rt.path().join("state.banner")).unwrap();
    assert_eq!(
        banner,
        "# vault: error: staging: line 3: duplicate secret A (first at line 2)\n# vault: fix the error above, or save the file unchanged to give up.\n"
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

#[test]
fn signals_remove_the_plaintext() {
    let p = Project::new();
    p.set("staging", "A", "plain-secret");
    let before = p.snapshot();
    for (sig, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let rt = Runtime::new();
        let script = "echo \"$1\" > \"$STATE.path\"; exec sleep 30";
        let mut child = edit_with(&p, &rt, script).spawn().unwrap();
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
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("plain-secret"));
        Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{sig}");
        assert!(
            !file.exists() && !file.parent().unwrap().exists(),
            "SIG{sig} left the plaintext"
        );
        std::fs::remove_file(marker).unwrap();
        assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
        assert_eq!(p.snapshot(), before);
    }
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

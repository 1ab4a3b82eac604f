//! Crash safety: vault is SIGKILLed at every step of edit, set, rekey, grant and revoke
//! (it stops itself at each named step under VAULT_TEST_PAUSE, and the test kills it
//! there). Afterwards the environment decrypts to the old or the new content, never
//! neither; no plaintext is left outside the tmpfs editing folder (and the next edit
//! removes that); the lock a killed writer held is reported and the next write works.

use crate::common::{fingerprint, key, Project};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OLD: &str = "old-7f3a-plaintext";
const NEW: &str = "new-9c2e-plaintext";

/// A project where staging holds A = OLD, and a tmpfs folder for editing.
struct Case {
    p: Project,
    shm: tempfile::TempDir,
    /// Outside the project: files holding plaintext on purpose (the value to set).
    aside: tempfile::TempDir,
}

fn case() -> Case {
    let p = Project::new();
    p.set("staging", "A", OLD);
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let aside = tempfile::tempdir().unwrap();
    std::fs::write(aside.path().join("value"), NEW).unwrap();
    let editor = aside.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\nprintf 'secrets:\\n  A: \"{NEW}\"\\n' > \"$1\"\n"),
    )
    .unwrap();
    Case { p, shm, aside }
}

impl Case {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.p.cmd(args);
        c.env("XDG_RUNTIME_DIR", self.shm.path()).env(
            "EDITOR",
            format!("sh '{}'", self.aside.path().join("editor.sh").display()),
        );
        c
    }
}

/// Whether process `pid` is stopped (state T in /proc).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('T')))
        .unwrap_or(false)
}

/// Runs `args` and SIGKILLs it at its `k`-th step. Returns the step's name, or None
/// when the command finished before reaching it.
// A failed assertion ends the test; the child is then killed with the test process.
#[allow(clippy::zombie_processes)]
fn kill_at(c: &Case, args: &[&str], k: usize) -> Option<String> {
    let mut child = c
        .command(args)
        .env("VAULT_TEST_PAUSE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut seen = 0;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            assert!(status.success(), "{args:?} failed unpaused at step {k}");
            return None;
        }
        let Some(step) = line.trim_end().strip_prefix("vault-test-pause: ") else {
            continue;
        };
        if seen == k {
            unsafe_kill(pid, "KILL");
            child.wait().unwrap();
            return Some(step.to_string());
        }
        seen += 1;
        let start = Instant::now();
        while !stopped(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never stopped at {step}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        unsafe_kill(pid, "CONT");
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Every file below `dir` whose bytes contain `needle`.
fn holding(dir: &Path, needle: &[u8], out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            holding(&p, needle, out);
        } else if meta.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                out.push(p);
            }
        }
    }
}

/// Kills `args` at each of its steps in turn, checking the environment after each.
fn at_every_step(args: &[&str], new_value: &str) -> Vec<String> {
    let mut steps = Vec::new();
    for k in 0.. {
        let c = case();
        let Some(step) = kill_at(&c, args, k) else {
            break;
        };
        // Old or new, whole.
        let get = c.command(&["get", "staging", "A"]).output().unwrap();
        let got = String::from_utf8_lossy(&get.stdout);
        assert!(
            get.status.success() && (got == OLD || got == new_value),
            "{args:?} killed at {step}: get gave {got:?}: {}",
            String::from_utf8_lossy(&get.stderr)
        );
        // No plaintext on disk outside the tmpfs editing folder.
        for v in [OLD, NEW] {
            let mut found = Vec::new();
            holding(c.p.root(), v.as_bytes(), &mut found);
            assert!(
                found.is_empty(),
                "{args:?} killed at {step}: plaintext in {found:?}"
            );
        }
        // The lock is free, a killed writer is reported, and writing goes on.
        let set = c
            .command(&["set", "staging", "Z", "--from-file"])
            .arg(c.aside.path().join("value"))
            .output()
            .unwrap();
        // The first vault to lock the folder after the kill (a reader finding a journal,
        // or this writer) repairs it and says so.
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&get.stderr),
            String::from_utf8_lossy(&set.stderr)
        );
        assert!(
            set.status.success(),
            "{args:?} killed at {step}: then set: {said}"
        );
        let writing = ![
            "plaintext-written",
            "edited",
            "key-file-written",
            "before-key-file-removed",
        ]
        .contains(&step.as_str());
        if writing {
            assert!(
                said.contains("was stopped while writing, and its lock is free now"),
                "{args:?} killed at {step}: {said}"
            );
        }
        let z = c.command(&["get", "staging", "Z"]).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&z.stdout),
            NEW,
            "{args:?} at {step}"
        );
        // Leftovers of the killed writer are gone.
        let left: Vec<String> = std::fs::read_dir(c.p.root().join("conf/pillar/staging"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".vault-"))
            .collect();
        assert!(left.is_empty(), "{args:?} at {step}: left {left:?}");
        // A revoke killed after re-encrypting is finished by running it again.
        if step == "before-key-file-removed" {
            let again = c.command(args).output().unwrap();
            assert!(
                again.status.success(),
                "{}",
                String::from_utf8_lossy(&again.stderr)
            );
            assert!(String::from_utf8_lossy(&again.stderr).contains("was already revoked"));
            assert!(!c.p.root().join("recipients/staging/bob.pub").exists());
        }
        // Plaintext a killed edit left on tmpfs is wiped by the next edit.
        if args[0] == "edit" {
            let out = c.command(&["edit", "staging"]).output().unwrap();
            assert!(out.status.success());
            let mut found = Vec::new();
            holding(c.shm.path(), NEW.as_bytes(), &mut found);
            assert!(found.is_empty(), "edit killed at {step}: left {found:?}");
            if step == "plaintext-written" || step == "edited" {
                assert!(
                    String::from_utf8_lossy(&out.stderr)
                        .contains("by a vault edit that was killed"),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        steps.push(step);
    }
    steps
}

#[test]
fn set_killed_at_any_step() {
    let shared = tempfile::tempdir().unwrap();
    let f = shared.path().join("v");
    std::fs::write(&f, NEW).unwrap();
    let steps = at_every_step(
        &["set", "staging", "A", "--from-file", f.to_str().unwrap()],
        NEW,
    );
    for s in [
        "locked",
        "decrypted",
        "temp-written-secrets.sls.age",
        "temp-written-secrets.sls.age.sig",
        "temps-synced",
        "journal-written",
        "renamed-secrets.sls.age",
        "renamed-secrets.sls.age.sig",
        "written",
    ] {
        assert!(steps.iter().any(|x| x == s), "no step {s} in {steps:?}");
    }
}

#[test]
fn edit_killed_at_any_step() {
    let steps = at_every_step(&["edit", "staging"], NEW);
    assert!(steps.iter().any(|s| s == "plaintext-written"), "{steps:?}");
    assert!(
        steps.iter().any(|s| s == "renamed-secrets.sls.age"),
        "{steps:?}"
    );
}

#[test]
fn rekey_killed_at_any_step() {
    let steps = at_every_step(&["rekey", "staging"], OLD);
    assert!(steps.iter().any(|s| s == "journal-written"), "{steps:?}");
}

#[test]
fn grant_killed_at_any_step() {
    let fp = fingerprint("mallory_ed25519.pub");
    let k = key("mallory_ed25519.pub");
    let steps = at_every_step(
        &[
            "grant",
            "staging",
            "mallory",
            "--fingerprint",
            &fp,
            "--key",
            &k,
        ],
        OLD,
    );
    assert!(steps.iter().any(|s| s == "key-file-written"), "{steps:?}");
    assert!(
        steps.iter().any(|s| s == "renamed-secrets.sls.age"),
        "{steps:?}"
    );
}

#[test]
fn revoke_killed_at_any_step() {
    let steps = at_every_step(&["revoke", "staging", "bob"], OLD);
    assert!(
        steps.iter().any(|s| s == "before-key-file-removed"),
        "{steps:?}"
    );
}

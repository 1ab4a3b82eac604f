//! Writes are atomic and serialized: a failure at any step leaves the previous file,
//! and concurrent writers never lose an update.

use crate::common::{self, Project};

#[test]
fn a_failed_write_leaves_the_previous_file() {
    let p = Project::new();
    p.set("staging", "A", "old");
    let before = p.snapshot();
    for step in ["before-fsync", "before-rename"] {
        let mut c = p.cmd(&["set", "staging", "A"]);
        c.env("VAULT_TEST_FAILPOINT", step);
        let out = common::run_with_input(c, b"new");
        let err = out.error();
        assert!(err.contains(&format!("failpoint {step}")), "{err}");
        assert_eq!(
            p.snapshot(),
            before,
            "{step}: the old file (and no temporary file) must remain"
        );
        assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"old");
    }
}

#[test]
fn concurrent_writers_never_lose_an_update() {
    let p = Project::new();
    p.set("staging", "SEED", "0");
    let children: Vec<_> = (0..12)
        .map(|i| {
            let mut c = p.cmd(&["set", "staging", &format!("K{i}")]);
            c.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("v{i}").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = p.vault(&["show", "staging"]).success().stdout();
    for i in 0..12 {
        assert!(
            names.lines().any(|l| l == format!("K{i}")),
            "K{i} lost:\n{names}"
        );
        assert_eq!(
            p.vault(&["get", "staging", &format!("K{i}")]).0.stdout,
            format!("v{i}").as_bytes()
        );
    }
    // No temporary files left beside the secrets.
    let dir = p.secrets("staging").parent().unwrap().to_path_buf();
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let mut names: Vec<String> = names
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["env.sls", "secrets.sls.age", "secrets.sls.age.sig"]);
}

#[test]
fn a_writer_waits_for_the_lock_and_says_so() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let rt = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    let marker = rt.path().join("started");
    // An edit session holds the lock while its editor runs.
    let mut edit = p.cmd(&["edit", "staging"]);
    edit.env("XDG_RUNTIME_DIR", rt.path()).env(
        "VISUAL",
        format!(
            "sh -c 'touch {}; sleep 1; sed -i s/1/2/ \"$0\"'",
            marker.display()
        ),
    );
    let mut editing = edit.stderr(std::process::Stdio::null()).spawn().unwrap();
    while !marker.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = p.vault_in(&["set", "staging", "B"], b"b").success();
    assert!(
        out.stderr()
            .contains("waiting for another vault writing staging to finish"),
        "{}",
        out.stderr()
    );
    assert!(editing.wait().unwrap().success());
    // Both updates are there: the set ran after the edit was saved.
    assert_eq!(p.vault(&["get", "staging", "A"]).0.stdout, b"2");
    assert_eq!(p.vault(&["get", "staging", "B"]).0.stdout, b"b");
}

//! Symbolic links: a recipients or pillar path leading outside the project is refused
//! before anything is read or written; a link inside the project is fine; a link
//! planted where vault writes plaintext is never followed.

use crate::common::{self, Project};
use std::os::unix::fs::symlink;
use std::path::Path;

/// A folder outside the project, holding what an attacker wants vault to use.
fn outside() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{}/mallory_ed25519.pub", common::KEYS),
        d.path().join("mallory.pub"),
    )
    .unwrap();
    d
}

#[test]
fn a_member_file_linked_from_outside_is_refused() {
    let p = Project::new();
    p.set("staging", "A", "x");
    let out = outside();
    symlink(
        out.path().join("mallory.pub"),
        p.root().join("recipients/staging/eve.pub"),
    )
    .unwrap();
    let before = p.snapshot();
    let err = p.vault_in(&["set", "staging", "B"], b"y").error();
    assert!(
        err.contains("recipients/staging/eve.pub leads outside the project"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
    let check = p.vault(&["check"]);
    assert_eq!(check.code(), 1, "{}", check.stdout());
    assert!(
        check.stdout().contains("leads outside the project"),
        "{}",
        check.stdout()
    );
}

#[test]
fn a_recipients_folder_linked_from_outside_is_refused() {
    let p = Project::new();
    let out = outside();
    let dir = p.root().join("recipients/staging");
    std::fs::remove_dir_all(&dir).unwrap();
    symlink(out.path(), &dir).unwrap();
    let before = p.snapshot();
    let err = p.vault_in(&["set", "staging", "A"], b"y").error();
    assert!(
        err.contains("recipients/staging leads outside the project"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
}

#[test]
fn pillar_paths_linked_from_outside_are_refused() {
    let p = Project::new();
    p.set("staging", "A", "x");
    let out = tempfile::tempdir().unwrap();
    // The secrets file itself.
    let secrets = p.secrets("staging");
    std::fs::rename(&secrets, out.path().join("secrets.sls.age")).unwrap();
    symlink(out.path().join("secrets.sls.age"), &secrets).unwrap();
    let err = p.vault(&["get", "staging", "A"]).error();
    assert!(
        err.contains("conf/pillar/staging/secrets.sls.age leads outside the project"),
        "{err}"
    );
    let before = std::fs::read(out.path().join("secrets.sls.age")).unwrap();
    let err = p.vault_in(&["set", "staging", "A"], b"y").error();
    assert!(err.contains("leads outside the project"), "{err}");
    assert_eq!(
        std::fs::read(out.path().join("secrets.sls.age")).unwrap(),
        before
    );

    // The environment's pillar folder.
    let p = Project::new();
    let dir = p.root().join("conf/pillar/production");
    std::fs::remove_dir_all(&dir).unwrap();
    symlink(out.path(), &dir).unwrap();
    let err = p.vault_in(&["set", "production", "A"], b"y").error();
    assert!(
        err.contains("conf/pillar/production leads outside the project"),
        "{err}"
    );
    assert!(!out.path().join("secrets.sls.age.sig").exists());
}

#[test]
fn links_inside_the_project_are_fine() {
    let p = Project::new();
    let prod = p.root().join("recipients/production/alice.pub");
    std::fs::remove_file(&prod).unwrap();
    symlink("../staging/alice.pub", &prod).unwrap();
    p.set("production", "A", "inside");
    assert_eq!(
        p.vault(&["get", "production", "A"]).success().stdout(),
        "inside"
    );
}

#[test]
fn a_link_planted_at_an_export_path_is_replaced_not_followed() {
    let p = Project::new();
    p.set("staging", "A", "value");
    let out = tempfile::tempdir().unwrap();
    let victim = out.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let target = out.path().join("secrets.env");
    symlink(&victim, &target).unwrap();
    p.vault(&[
        "export",
        "staging",
        "-f",
        "dotenv",
        "-o",
        target.to_str().unwrap(),
    ])
    .success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let meta = std::fs::symlink_metadata(&target).unwrap();
    assert!(meta.is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

/// `vault ARGS` in `p`, killed (and failed) if it runs for more than ten seconds.
fn within_ten_seconds(p: &Project, args: &[&str]) -> common::Run {
    let mut child = p
        .cmd(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("vault {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    common::Run(child.wait_with_output().unwrap())
}

#[test]
fn a_sidecar_that_is_a_fifo_or_a_device_never_blocks_a_reader() {
    let p = Project::new();
    p.set("staging", "A", "x");
    let sidecar = p.root().join("conf/pillar/staging/secrets.sls.age.sig");
    let honest = std::fs::read(&sidecar).unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("sig"), &honest).unwrap();
    let fifo = p.root().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // What is put in the sidecar's place: a FIFO itself (None), or a link to a target.
    let outside = out.path().join("sig");
    let plant: [(&str, Option<&Path>); 4] = [
        ("a FIFO", None),
        (
            "a link to a FIFO in the project",
            Some(Path::new("../../../fifo")),
        ),
        ("a link to /dev/stdin", Some(Path::new("/dev/stdin"))),
        ("a link outside the project", Some(&outside)),
    ];
    for (what, target) in plant {
        std::fs::remove_file(&sidecar).unwrap();
        match target {
            Some(t) => symlink(t, &sidecar).unwrap(),
            None => assert!(std::process::Command::new("mkfifo")
                .arg(&sidecar)
                .status()
                .unwrap()
                .success()),
        }
        let check = within_ten_seconds(&p, &["check"]);
        assert_eq!(check.code(), 1, "{what}: {}", check.stdout());
        assert!(
            check.stdout().contains("secrets.sls.age.sig"),
            "{what}: {}",
            check.stdout()
        );
        for args in [&["get", "staging", "A"][..], &["show", "staging"]] {
            let run = within_ten_seconds(&p, args);
            assert_ne!(run.code(), 0, "{what}: {args:?} read it");
        }
        // status reports it, and goes on.
        let status = within_ten_seconds(&p, &["status"]);
        assert!(
            status.stdout().contains("secrets.sls.age.sig"),
            "{what}: {}",
            status.stdout()
        );
        let err = within_ten_seconds(&p, &["get", "staging", "A"]).error();
        assert!(
            err.contains("not a regular file")
                || err.contains("outside the project")
                || err.contains("symbolic link"),
            "{what}: {err}"
        );
    }
    // The real file back: every reader reads it.
    std::fs::remove_file(&sidecar).unwrap();
    std::fs::write(&sidecar, &honest).unwrap();
    assert_eq!(within_ten_seconds(&p, &["check"]).code(), 0);
    assert_eq!(
        within_ten_seconds(&p, &["get", "staging", "A"]).0.stdout,
        b"x"
    );
}

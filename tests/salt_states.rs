//! The Salt states under conf/salt, applied by real `salt-call --local` to a private
//! server root: gunicorn under a real supervisord gets every secret byte for byte, the
//! manage wrapper gives the same environment, secret files are root and app user only,
//! Salt's output and cache hold no value, and the program restarts only when its
//! secrets change.

use crate::common::server::{files_holding, tools, Server, APP_USER};
use crate::common::{Project, AWKWARD};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// The server, with a minion config of its own and the project's pillar beside it.
fn prepare(p: &Project) -> Option<Server> {
    let (tools, app) = tools()?;
    let server = Server::start(&tools, &app);
    for d in ["cfg", "pillar"] {
        std::fs::create_dir_all(server.root.path().join(d)).unwrap();
    }
    std::fs::write(
        server.root.path().join("cfg/minion"),
        format!(
            "id: example-staging\nfile_client: local\nroot_dir: {}\nfile_roots:\n  base: [{}]\npillar_roots:\n  base: [{}]\n",
            server.path(""),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/salt").display(),
            server.path("pillar"),
        ),
    )
    .unwrap();
    copy_dir(
        &p.root().join("conf/pillar"),
        &server.root.path().join("pillar"),
    );
    let env_sls = server.root.path().join("pillar/staging/env.sls");
    let mut text = std::fs::read_to_string(&env_sls).unwrap();
    text.push_str(&server.pillar_settings());
    std::fs::write(env_sls, text).unwrap();
    Some(server)
}

/// Ships the canonical pillar as `vault provision` does, then applies the states.
fn apply(server: &Server, p: &Project) -> String {
    p.vault(&[
        "export",
        "staging",
        "--format",
        "sls",
        "-o",
        &server.path("pillar/staging/secrets.sls"),
    ])
    .success();
    let out = Command::new(server.tools.join("salt-call"))
        .args([
            "--local",
            "--config-dir",
            &server.path("cfg"),
            "--retcode-passthrough",
            "state.apply",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "salt-call failed:\n{text}");
    text
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn gunicorn_under_supervisord_gets_every_secret_exactly() {
    let p = Project::new();
    for (k, v) in AWKWARD {
        p.set("staging", k, v);
    }
    let Some(server) = prepare(&p) else { return };
    let output = apply(&server, &p);

    let answer = server.ask(|v| v["env"]["LEADING_ZERO"] == "0123");
    for (k, v) in AWKWARD {
        assert_eq!(answer["env"][k], *v, "{k} did not arrive exactly");
    }
    // No value in Salt's output (the distinctive ones; `yes` and `on` are common words).
    for (k, v) in AWKWARD.iter().filter(|(_, v)| v.len() > 6) {
        assert!(!output.contains(v), "{k} appears in Salt's output");
        let line = v.lines().nth(1).unwrap_or(v);
        assert!(
            line.len() < 7 || !output.contains(line),
            "a line of {k} appears in Salt's output"
        );
    }
    // Secret-bearing files: root and the app user only.
    let etc = std::fs::metadata(server.path("etc/example")).unwrap();
    let env = std::fs::metadata(server.path("etc/example/secrets.env")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o777, 0o750);
    assert_eq!(env.permissions().mode() & 0o777, 0o640);
    assert_eq!((env.uid(), etc.uid()), (0, 0));
    let group = Command::new("getent")
        .args(["group", APP_USER])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&group.stdout)
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((env.gid(), etc.gid()), (gid, gid));
    // Nothing of the values in Salt's cache or logs.
    for (k, v) in AWKWARD.iter().filter(|(_, v)| v.len() > 6) {
        let leaked = files_holding(server.root.path(), v.as_bytes());
        // The env file, and the pillar this test wrote as Salt's input; nothing else.
        let allowed = |f: &&std::path::PathBuf| {
            f.ends_with("etc/example/secrets.env") || f.ends_with("pillar/staging/secrets.sls")
        };
        assert!(leaked.iter().all(|f| allowed(&f)), "{k} is in {leaked:?}");
    }

    // The manage wrapper: the same environment, as the app user.
    let out = Command::new(server.path("usr/local/bin/example-manage"))
        .args(["migrate", "--noinput"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manage["user"], APP_USER);
    assert_eq!(manage["argv"], serde_json::json!(["migrate", "--noinput"]));
    for (k, v) in AWKWARD {
        assert_eq!(manage["env"][k], *v, "manage: {k}");
    }

    // Applied again unchanged: left alone (same process).
    let pid = answer["pid"].clone();
    apply(&server, &p);
    assert_eq!(
        server.ask(|_| true)["pid"],
        pid,
        "restarted without a change"
    );
    // One secret changed: restarted, with the new value.
    p.set("staging", "PIN", "4321");
    apply(&server, &p);
    let after = server.ask(|v| v["env"]["PIN"] == "4321");
    assert_ne!(after["pid"], pid, "not restarted after its secrets changed");
    assert_eq!(
        after["env"]["PEM"],
        AWKWARD.iter().find(|(k, _)| *k == "PEM").unwrap().1
    );
    // Stopped behind Salt's back (its pid file stays): the next apply starts it again.
    let stop = Command::new(server.tools.join("supervisorctl"))
        .args([
            "-c",
            &server.path("etc/supervisor/supervisord.conf"),
            "stop",
            "example-gunicorn",
        ])
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stdout)
    );
    let output = apply(&server, &p);
    assert!(output.contains("started"), "{output}");
    let again = server.ask(|v| v["env"]["PIN"] == "4321");
    assert_ne!(again["pid"], after["pid"]);
}

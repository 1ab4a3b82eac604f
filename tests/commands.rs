//! The everyday commands, end to end through the binary.

use crate::common::{self, key, Project, AWKWARD, KEYS};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn init_writes_the_layout_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let vault = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vault"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    std::fs::write(dir.path().join(".gitignore"), "target/").unwrap();
    let first = vault(&[
        "init",
        "--project",
        "shop",
        "--env",
        "staging",
        "--env",
        "qa",
    ]);
    assert!(first.status.success());
    // A top.sls it just wrote is not one it "kept".
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(said.contains("created conf/pillar/top.sls"), "{said}");
    assert!(!said.contains("kept conf/pillar/top.sls"), "{said}");
    for f in [
        "conf/pillar/top.sls",
        "conf/pillar/project.sls",
        "conf/pillar/devs.sls",
        "conf/pillar/staging/env.sls",
        "conf/pillar/qa/env.sls",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    assert!(dir.path().join("recipients/qa").is_dir());
    // The Salt states are this repository's own.
    for f in [
        "top.sls",
        "project/init.sls",
        "project/devs.sls",
        "vault/init.sls",
        "vault/map.jinja",
        "vault/secrets.env.jinja",
    ] {
        let ours = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("conf/salt")
                .join(f),
        )
        .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("conf/salt").join(f)).unwrap(),
            ours,
            "{f}"
        );
    }
    let top = std::fs::read_to_string(dir.path().join("conf/pillar/top.sls")).unwrap();
    assert!(
        top.contains("'*-qa':\n    - qa.env\n    - qa.secrets"),
        "{top}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf/pillar/project.sls")).unwrap(),
        "project_name: shop\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        "target/\nsecrets.sls\n"
    );

    std::fs::write(
        dir.path().join("conf/pillar/project.sls"),
        "project_name: mine\n",
    )
    .unwrap();
    assert!(vault(&["init", "--project", "other"]).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf/pillar/project.sls")).unwrap(),
        "project_name: mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        "target/\nsecrets.sls\n"
    );
    assert!(dir.path().join("conf/pillar/production/env.sls").is_file());
}

#[test]
fn every_awkward_value_comes_back_exactly_from_get_and_exec() {
    let p = Project::new();
    for (k, v) in AWKWARD {
        p.set("staging", k, v);
    }
    for (k, v) in AWKWARD {
        let out = p.vault(&["get", "staging", k]).success();
        assert_eq!(out.0.stdout, v.as_bytes(), "get {k}");
    }
    // bob (age X25519) reads the same file.
    for (k, v) in AWKWARD {
        let out = p
            .cmd(&["get", "staging", k])
            .env("VAULT_IDENTITY", key("bob.agekey"))
            .output()
            .unwrap();
        assert_eq!(out.stdout, v.as_bytes(), "get as bob {k}");
    }
    // The program's environment, read back raw: NUL-separated name=value pairs.
    let out = p.vault(&["exec", "staging", "--", "env", "-0"]).success();
    for (k, v) in AWKWARD {
        let want = format!("{k}={v}");
        assert!(
            out.0
                .stdout
                .split(|&b| b == 0)
                .any(|kv| kv == want.as_bytes()),
            "exec {k}"
        );
    }
}

#[test]
fn set_reads_stdin_and_never_argv() {
    let p = Project::new();
    p.vault_in(&["set", "staging", "TOKEN"], b"abc\n").success();
    assert_eq!(p.vault(&["get", "staging", "TOKEN"]).0.stdout, b"abc");
    p.vault_in(&["set", "staging", "RAW", "--raw"], b"abc\n")
        .success();
    assert_eq!(p.vault(&["get", "staging", "RAW"]).0.stdout, b"abc\n");
    // A value on the command line is a usage error, not a secret in argv.
    let out = p.vault(&["set", "staging", "TOKEN", "hunter2"]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
}

#[test]
fn setting_the_same_value_rewrites_nothing() {
    let p = Project::new();
    p.set("staging", "A", "one");
    let before = std::fs::read(p.secrets("staging")).unwrap();
    p.set("staging", "A", "one");
    assert_eq!(std::fs::read(p.secrets("staging")).unwrap(), before);
}

#[test]
fn show_unset_and_json() {
    let p = Project::new();
    p.set("staging", "B_KEY", "bee");
    p.set("staging", "A_KEY", "a\"y");
    assert_eq!(
        p.vault(&["show", "staging"]).success().stdout(),
        "B_KEY\nA_KEY\n"
    );
    assert!(!p.vault(&["show", "staging"]).stdout().contains("bee"));
    assert_eq!(
        p.vault(&["show", "staging", "--values"]).success().stdout(),
        "B_KEY: \"bee\"\nA_KEY: \"a\\\"y\"\n"
    );
    assert_eq!(
        p.vault(&["show", "staging", "--json"]).success().stdout(),
        "{\"environment\":\"staging\",\"names\":[\"B_KEY\",\"A_KEY\"]}\n"
    );
    assert!(p
        .vault(&["show", "staging", "--json", "--values"])
        .stdout()
        .contains("\"secrets\":{\"B_KEY\":\"bee\",\"A_KEY\":\"a\\\"y\"}"));
    p.vault(&["unset", "staging", "B_KEY"]).success();
    assert_eq!(p.vault(&["show", "staging"]).stdout(), "A_KEY\n");
    let before = p.snapshot();
    let err = p.vault(&["unset", "staging", "B_KEY"]).error();
    assert!(err.contains("no secret named B_KEY"), "{err}");
    assert_eq!(p.snapshot(), before);
    let err = p.vault(&["get", "staging", "NOPE"]).error();
    assert!(err.contains("staging: no secret named NOPE"), "{err}");
}

#[test]
fn exec_passes_status_overrides_with_a_warning_and_cleans() {
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "s3cret-value");
    let out = p.vault(&["exec", "staging", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code(), 7);

    let out = p
        .cmd(&[
            "exec",
            "staging",
            "--",
            "sh",
            "-c",
            "printf %s \"$DB_PASSWORD\"",
        ])
        .env("DB_PASSWORD", "old")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"s3cret-value");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DB_PASSWORD is already set"), "{err}");
    assert!(!err.contains("s3cret") && !err.contains("old"), "{err}");

    let out = p
        .cmd(&["exec", "staging", "--clean", "--", "env"])
        .env("SOMETHING_ELSE", "x")
        .output()
        .unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('=').next().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["DB_PASSWORD", "PATH"]);

    let out = p.vault(&["exec", "staging", "--", "no-such-program-xyz"]);
    assert_eq!(out.code(), 127);
    assert!(out.stderr().contains("command not found"));
    // A file that is not executable: 126, as a shell says.
    std::fs::write(p.root().join("script.sh"), "#!/bin/sh\ntrue\n").unwrap();
    let out = p.vault(&["exec", "staging", "--", "./script.sh"]);
    assert_eq!(out.code(), 126, "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("cannot run ./script.sh: permission denied"),
        "{}",
        out.stderr()
    );
}

#[test]
fn exec_replaces_the_process() {
    let p = Project::new();
    p.set("staging", "A", "1");
    // `$PPID` of the shell is the test process only if vault is no longer in between.
    let out = p
        .vault(&["exec", "staging", "--", "sh", "-c", "echo $$"])
        .success();
    let pid: u32 = out.stdout().trim().parse().unwrap();
    let mut child = p
        .cmd(&["exec", "staging", "--", "sh", "-c", "echo $$; sleep 5"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(
        line.trim().parse::<u32>().unwrap(),
        child.id(),
        "the program runs in vault's own process"
    );
    // A signal to that process reaches the program directly.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    assert!(pid > 0);
}

#[test]
fn status_and_rekey_follow_the_recipients_folder() {
    let p = Project::new();
    p.set("staging", "A", "1");
    p.set("production", "B", "2");
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains("staging\n  members: alice, bob\n  secrets: 1\n  signed: by alice (SHA256:"),
        "{out}"
    );
    assert!(
        out.contains("production\n  members: alice, carol\n  secrets: 1\n"),
        "{out}"
    );
    assert_eq!(out.matches("  recipients: in sync\n").count(), 2, "{out}");

    // A key added to the folder is pending: a rekey does not let it in, a grant does.
    p.add_member("staging", "carol", "carol_rsa.pub");
    let out = p.vault(&["status"]).success().stdout();
    assert!(out.contains("  pending: carol (SHA256:"), "{out}");
    p.vault(&["rekey", "staging"]).success();
    let carol = |args: &[&str]| {
        p.cmd(args)
            .env("VAULT_IDENTITY", key("carol_rsa"))
            .output()
            .unwrap()
    };
    assert!(
        !carol(&["get", "staging", "A"]).status.success(),
        "a pending member cannot read"
    );
    let fp = common::fingerprint("carol_rsa.pub");
    p.vault(&["grant", "staging", "carol", "--fingerprint", &fp])
        .success();
    assert_eq!(carol(&["get", "staging", "A"]).stdout, b"1");
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains("staging\n  members: alice, bob, carol\n  secrets: 1\n"),
        "{out}"
    );
    assert!(!out.contains("pending"), "{out}");

    // A key removed from the folder: rekey needed, then the rekey drops it and marks
    // what it could read as exposed.
    std::fs::remove_file(p.root().join("recipients/staging/bob.pub")).unwrap();
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains("recipients: rekey needed (bob (SHA256:"),
        "{out}"
    );
    p.vault(&["rekey"]).success();
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("bob.agekey"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a removed member can no longer read the rekeyed file"
    );
    let out = p.vault(&["status"]).success().stdout();
    assert!(
        out.contains("staging\n  members: alice, carol\n  secrets: 1\n"),
        "{out}"
    );
    assert!(
        out.contains("  recipients: in sync\n  exposed: A (since "),
        "{out}"
    );
}

#[test]
fn whoami_names_the_identity_and_its_environments() {
    let p = Project::new();
    let out = p.vault(&["whoami"]).success().stdout();
    let pubkey = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let fp = common::fingerprint("alice_ed25519.pub");
    assert!(
        out.contains(&format!("identity: {}", key("alice_ed25519"))),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "public key: {}",
            pubkey
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        )),
        "{out}"
    );
    assert!(out.contains(&format!("fingerprint: {fp}")), "{out} vs {fp}");
    assert!(
        out.contains("member of: production (as alice), staging (as alice)"),
        "{out}"
    );
    let err = p.bare(&["whoami"]).output().unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("no identity found"));
}

#[test]
fn default_ssh_key_is_used_when_nothing_else_is_given() {
    let p = Project::new();
    p.set("staging", "A", "from-default");
    std::fs::copy(key("alice_ed25519"), p.home.join(".ssh/id_ed25519")).unwrap();
    let out = p.bare(&["get", "staging", "A"]).output().unwrap();
    assert_eq!(
        out.stdout,
        b"from-default",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keygen_to_a_file_is_private_and_usable() {
    let p = Project::new();
    let keyfile = p.root().join("new.key");
    let out = p
        .bare(&[
            "keygen",
            "--file",
            keyfile.to_str().unwrap(),
            "--comment",
            "newbie",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let public = lines.next().unwrap();
    assert!(
        public.starts_with("ssh-ed25519 ") && public.ends_with(" newbie"),
        "{stdout}"
    );
    let fp = lines.next().unwrap();
    assert_eq!(
        common::fingerprint_of(&keyfile.with_extension("key.pub")),
        fp
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&keyfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // It opens what is encrypted to it.
    std::fs::write(
        p.root().join("recipients/staging/newbie.pub"),
        format!("{public}\n"),
    )
    .unwrap();
    // The founder checked the printed fingerprint with the newcomer.
    p.vault(&["trust", "staging", "--fingerprint", fp])
        .success();
    p.set("staging", "A", "for-newbie");
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", &keyfile)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"for-newbie");
    // Never over an existing key.
    let again = p
        .bare(&["keygen", "--file", keyfile.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // A stray PATH.pub is refused before anything is written: no private key left behind.
    let other = p.root().join("other.key");
    std::fs::write(p.root().join("other.key.pub"), "x").unwrap();
    let out = p
        .bare(&["keygen", "--file", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!other.exists());
}

/// A fresh account has no ~/.ssh: `keygen --file ~/.ssh/vault_ed25519` (the headless way
/// the README and keygen's own hint give) makes the folder, 0700, and says how to use the key.
#[test]
fn keygen_to_a_file_in_a_missing_folder_makes_it_private() {
    let p = Project::new();
    let dir = p.root().join("fresh-home/.ssh");
    let keyfile = dir.join("vault_ed25519");
    let out = p
        .bare(&["keygen", "--file", keyfile.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(keyfile.is_file());
    assert!(
        said.contains(&format!(
            "`export VAULT_IDENTITY={}`",
            keyfile.canonicalize().unwrap().display()
        )),
        "{said}"
    );
    // whoami without it names the headless way, not only the keyring one.
    let out = p.bare(&["whoami"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("`vault keygen --file ~/.ssh/vault_ed25519`, then `export VAULT_IDENTITY="),
        "{said}"
    );
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    let p = Project::new();
    // The script asks vault itself for candidates (tests/help.rs follows it through).
    let bash = p.vault(&["completions", "bash"]).success().stdout();
    assert!(bash.contains("COMPLETE=\"bash\"") && bash.contains("_clap_complete_vault"));
    let man = p.vault(&["man"]).success().stdout();
    assert!(man.contains(".TH vault") && man.contains("exec"));
    let help = p.vault(&["exec", "--help"]).success().stdout();
    assert!(help.contains("--clean"));
}

#[test]
fn verbose_says_what_was_verified_and_what_decrypted_never_values() {
    let p = Project::new();
    p.set("staging", "A", "hush-value");
    std::fs::remove_dir_all(p.home.join(".local")).unwrap();
    let first = p.vault(&["-v", "get", "staging", "A"]).success();
    let err = first.stderr();
    assert!(
        err.contains("vault: staging: signature verified: by alice (SHA256:"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "vault: staging: decrypted with {}",
            key("alice_ed25519")
        )),
        "{err}"
    );
    let again = p.vault(&["-v", "get", "staging", "A"]).success().stderr();
    assert!(
        again.contains("vault: staging: unchanged since this machine verified it"),
        "{again}"
    );
    assert!(!err.contains("hush") && !again.contains("hush"));
    assert!(p.vault(&["get", "staging", "A"]).stderr().is_empty());
}

#[test]
fn init_with_a_new_environment_maps_it_in_the_pillar_top() {
    let p = Project::new();
    let out = p.vault(&["init", "--env", "qa"]).success();
    assert!(
        out.stderr().contains("added qa to conf/pillar/top.sls"),
        "{}",
        out.stderr()
    );
    let top = std::fs::read_to_string(p.root().join("conf/pillar/top.sls")).unwrap();
    assert!(
        top.ends_with("  '*-qa':\n    - qa.env\n    - qa.secrets\n"),
        "{top}"
    );
    assert!(top.contains("  '*-staging':\n"), "{top}");
    // Again: nothing to add, and nothing said about top.sls at all.
    let again = p.vault(&["init", "--env", "qa"]).success().stderr();
    assert!(!again.contains("top.sls"), "{again}");
    // Said so, and the next step is the one left: qa has no proposed key yet.
    assert!(again.contains("nothing to create"), "{again}");
    assert!(
        again.contains("put your public key in recipients/qa/"),
        "{again}"
    );
    std::fs::copy(
        Path::new(KEYS).join("alice_ed25519.pub"),
        p.root().join("recipients/qa/alice.pub"),
    )
    .unwrap();
    let keyed = p.vault(&["init", "--env", "qa"]).success().stderr();
    assert!(keyed.contains("next: `vault edit qa`"), "{keyed}");
    assert_eq!(
        std::fs::read_to_string(p.root().join("conf/pillar/top.sls")).unwrap(),
        top
    );
    // A top.sls of another shape is left alone, and said so once.
    std::fs::write(
        p.root().join("conf/pillar/top.sls"),
        "base:\n  '*':\n    - project\nother:\n  '*': []\n",
    )
    .unwrap();
    let odd = p.vault(&["init", "--env", "uat"]).success().stderr();
    assert_eq!(odd.matches("top.sls").count(), 1, "{odd}");
    assert!(odd.contains("kept conf/pillar/top.sls as it is"), "{odd}");
}

/// The README's quick start, run as written on a headless machine (no Secret Service, no
/// ~/.ssh yet), taking the headless way its comment gives where `vault keygen` needs a
/// keyring: every step works, and the commit holds everything init made.
#[test]
fn the_readme_quick_start_works_headless_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("## Quick start\n\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a quick start block");
    let mut script = String::from("set -euo pipefail\n");
    for line in block.lines() {
        let command = line.split(" #").next().unwrap().trim();
        match command {
            c if c.starts_with("cargo install") => {}
            "cd your-project" => script.push_str("cd \"$PROJECT\"\n"),
            "vault keygen" => script.push_str(
                "if vault keygen 2>keygen.err; then exit 1; fi\n\
                 grep -q 'vault keygen --file ~/.ssh/vault_ed25519' keygen.err; rm keygen.err\n\
                 vault keygen --file ~/.ssh/vault_ed25519\nexport VAULT_IDENTITY=~/.ssh/vault_ed25519\n",
            ),
            "# put the public line in recipients/staging/yourname.pub, then:" => {
                script.push_str("cp ~/.ssh/vault_ed25519.pub recipients/staging/yourname.pub\n")
            }
            c if c.is_empty() || c.starts_with('#') => {}
            c => script.push_str(&format!("{c}\n")),
        }
    }
    assert!(script.contains("vault edit staging"), "{script}");
    let scratch = tempfile::tempdir().unwrap();
    let (home, project, bin) = (
        scratch.path().join("home"),
        scratch.path().join("project"),
        scratch.path().join("bin"),
    );
    for d in [&home, &project, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vault"), bin.join("vault")).unwrap();
    common::git(&project, &["init", "-q"]);
    let editor = scratch.path().join("editor.sh");
    std::fs::write(
        &editor,
        "printf 'secrets:\\n  DB_PASSWORD: \"from the quick start\"\\n' > \"$1\"\n",
    )
    .unwrap();
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(scratch.path())
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("PROJECT", &project)
        .env("EDITOR", format!("sh {}", editor.display()))
        .env("GIT_EDITOR", "sh -c 'echo quick start > \"$1\"' sh")
        .env("GIT_AUTHOR_NAME", "new user")
        .env("GIT_AUTHOR_EMAIL", "new@example.invalid")
        .env("GIT_COMMITTER_NAME", "new user")
        .env("GIT_COMMITTER_EMAIL", "new@example.invalid")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{said}");
    assert_eq!(
        common::git(&project, &["status", "--porcelain"]),
        "",
        "{said}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(["get", "staging", "DB_PASSWORD"])
        .current_dir(&project)
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("VAULT_IDENTITY", home.join(".ssh/vault_ed25519"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"from the quick start");
}

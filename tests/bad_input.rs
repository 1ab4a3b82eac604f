//! Bad input: each case is one `vault: error:` line, exit 1 (2 for usage), and nothing
//! changed on disk.

use crate::common::{self, key, Project};

/// Writes `plaintext` as staging's document (encrypted with the real age binary, as
/// someone might have), then checks `vault get` refuses it with `want` in one line.
fn refuses_document(p: &Project, plaintext: &[u8], want: &str) {
    let alice = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let dest = p.secrets("staging");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let out = common::run_with_input(
        {
            let mut c = std::process::Command::new("age");
            c.args(["-a", "-r", alice.trim(), "-o", dest.to_str().unwrap()]);
            c
        },
        plaintext,
    );
    assert!(out.0.status.success(), "{}", out.stderr());
    let before = p.snapshot();
    // Written behind vault's back, it is unsigned: refused before it is even decrypted.
    let err = p.vault(&["get", "staging", "A"]).error();
    assert!(err.contains("refused before decrypting: unsigned"), "{err}");
    // Past that check (recovery), the document's own errors.
    let err = p
        .vault(&["--insecure-skip-verify", "get", "staging", "A"])
        .error();
    assert!(
        err.contains(want),
        "{:?}: {err}",
        String::from_utf8_lossy(plaintext)
    );
    assert!(err.contains("staging"), "{err}");
    assert!(!err.contains("sekrit"), "a value leaked: {err}");
    // `set` refuses to build on it as well, and writes nothing.
    let err = p
        .vault_in(&["--insecure-skip-verify", "set", "staging", "OTHER"], b"x")
        .error();
    assert!(err.contains(want), "{err}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn malformed_documents() {
    if !common::have("age") {
        return;
    }
    let p = Project::new();
    for (doc, want) in [
        (&b"secrets:\n  A: 'sekrit\n"[..], "line 2: invalid YAML"),
        (
            b"secrets:\n  A: sekrit\n  A: sekrit\n",
            "line 3: duplicate secret name (first at line 2)",
        ),
        (
            b"secrets:\n  my-key: sekrit\n",
            "line 2: invalid secret name: use letters",
        ),
        (b"secrets:\n  A:\n", "line 2: the value is null"),
        (b"secrets:\n  A: [sekrit]\n", "line 2: the value is a list"),
        (
            b"secrets:\n  A: {x: sekrit}\n",
            "line 2: the value is a mapping",
        ),
        (
            b"secrets:\n  B: &a sekrit\n  A: *a\n",
            "line 2: anchors are not allowed",
        ),
        (
            b"secrets:\n  A: !!binary sekrit\n",
            "line 2: tags are not allowed",
        ),
        (
            b"secrets:\n  A: sek\0rit\n",
            "line 2: the document holds a NUL",
        ),
        (
            b"secret:\n  A: sekrit\n",
            "line 1: unexpected top-level key;",
        ),
        (b"\xff\xfe", "not valid UTF-8"),
    ] {
        refuses_document(&p, doc, want);
    }
    let big = format!("secrets:\n  A: '{}'\n", "x".repeat(1 << 20));
    refuses_document(&p, big.as_bytes(), "over the limit");
}

#[test]
fn bad_names_and_environments() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    for (args, want, code) in [
        (
            &["set", "staging", "BAD-NAME"][..],
            "invalid secret name 'BAD-NAME'",
            1,
        ),
        (&["set", "staging", "1ST"], "invalid secret name '1ST'", 1),
        (
            &["get", "qa", "A"],
            "unknown environment 'qa' (known: production, staging)",
            1,
        ),
        (&["set", "../x", "A"], "invalid environment name '../x'", 2),
        (
            &["set", "staging/../production", "A"],
            "invalid environment name",
            2,
        ),
        (&["get", "..", "A"], "invalid environment name", 2),
        (&["edit", "a/b"], "invalid environment name", 2),
    ] {
        let line = p.vault_in(args, b"value").refused(code);
        assert!(line.contains(want), "{args:?}: {line}");
        assert_eq!(p.snapshot(), before, "{args:?} changed files");
    }
    assert!(!p.root().join("conf/x").exists() && !p.root().join("x").exists());
    // A NUL in a value given to set.
    let err = p.vault_in(&["set", "staging", "B"], b"a\0b").error();
    assert!(err.contains("NUL"), "{err}");
    let err = p.vault_in(&["set", "staging", "B"], b"\xff").error();
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn bad_recipients_name_file_and_line() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before_ct = std::fs::read(p.secrets("staging")).unwrap();
    let read = |f: &str| std::fs::read_to_string(key(f)).unwrap();
    let cases = [
        (format!("# ok\n{}", read("bad_ecdsa.pub")), "eve.pub: line 2: unsupported key type ecdsa-sha2-nistp256"),
        (read("bad_dsa.pub"), "eve.pub: line 1: unsupported key type ssh-dss"),
        (
            "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIHzxPC4Ve1fVQJ0IHhsHUIt7rT3ZGzxAHGCyj/uTuaOSAAAABHNzaDo= eve\n".to_string(),
            "line 1: unsupported key type sk-ssh-ed25519@openssh.com",
        ),
        (read("bad_rsa1024.pub"), "line 1: ssh-rsa key of 1024 bits"),
        ("\n\nnot a key at all\n".to_string(), "eve.pub: line 3: not a public key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAA\n".to_string(), "line 1: ssh-ed25519 key data is malformed"),
        ("# only a comment\n".to_string(), "eve.pub: no public key in the file"),
        (read("bob.agekey"), "private key"),
    ];
    for (content, want) in cases {
        let f = p.root().join("recipients/staging/eve.pub");
        std::fs::write(&f, &content).unwrap();
        let before = p.snapshot();
        for args in [
            &["set", "staging", "B"][..],
            &["rekey", "staging"],
            &["edit", "staging"],
        ] {
            let err = p.vault_in(args, b"v").error();
            assert!(
                err.contains("recipients/staging/eve.pub") && err.contains(want),
                "{args:?} {content:?}: {err}"
            );
            assert!(!err.contains("AGE-SECRET-KEY"), "{err}");
        }
        assert_eq!(p.snapshot(), before);
        std::fs::remove_file(f).unwrap();
    }
    let f = p.root().join("recipients/staging/Eve.pub");
    std::fs::write(&f, read("alice_ed25519.pub")).unwrap();
    let err = p.vault_in(&["set", "staging", "B"], b"v").error();
    assert!(err.contains("invalid member name 'Eve'"), "{err}");
    std::fs::remove_file(f).unwrap();
    assert_eq!(std::fs::read(p.secrets("staging")).unwrap(), before_ct);
}

#[test]
fn empty_recipients_folder() {
    let p = Project::new();
    for f in ["alice.pub", "bob.pub"] {
        std::fs::remove_file(p.root().join("recipients/staging").join(f)).unwrap();
    }
    let before = p.snapshot();
    let err = p.vault_in(&["set", "staging", "A"], b"v").error();
    assert!(
        err.contains("staging: no recipients: recipients/staging/ holds no .pub file"),
        "{err}"
    );
    assert_eq!(p.snapshot(), before);
}

#[test]
fn no_identity_names_those_tried() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", key("mallory_ed25519"))
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains("no identity opens staging (conf/pillar/staging/secrets.sls.age)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} (not a recipient)", key("mallory_ed25519"))),
        "{err}"
    );
    // A named identity is the only one tried.
    assert!(!err.contains("the OS keyring ("), "{err}");
    // Without one, the keyring and ~/.ssh are, each named with what became of it.
    let out = p.bare(&["get", "staging", "A"]).output().unwrap();
    let err = common::Run(out).error();
    assert!(err.contains("the OS keyring ("), "{err}");
    assert!(
        err.contains("id_ed25519 (not found)") && err.contains("id_rsa (not found)"),
        "{err}"
    );

    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", "/nonexistent/key")
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains("cannot read identity /nonexistent/key"),
        "{err}"
    );

    let junk = p.root().join("junk.key");
    std::fs::write(&junk, "hello\n").unwrap();
    let out = p
        .cmd(&["get", "staging", "A"])
        .env("VAULT_IDENTITY", &junk)
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(
        err.contains("not an age identity file or OpenSSH private key"),
        "{err}"
    );
}

#[test]
fn damaged_ciphertext() {
    let p = Project::new();
    p.set("staging", "A", "sekrit-value");
    let path = p.secrets("staging");
    let good = std::fs::read(&path).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let flip = |s: &str, line: usize| {
        let mut l: Vec<String> = s.lines().map(String::from).collect();
        let chars: Vec<char> = l[line].chars().collect();
        let i = chars.len() / 2;
        let mut c = chars.clone();
        c[i] = if c[i] == 'A' { 'B' } else { 'A' };
        l[line] = c.into_iter().collect();
        l.join("\n") + "\n"
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not an age file\n".to_vec(), "not an age file"),
        (b"".to_vec(), "not an age file"),
        (lines[..lines.len() / 2].join("\n").into_bytes(), "cannot"),
        (flip(&text, 1).into_bytes(), "cannot"),
        (flip(&text, lines.len() - 2).into_bytes(), "cannot decrypt"),
        (good[..good.len() - 40].to_vec(), "cannot"),
    ];
    for (bytes, want) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let before = p.snapshot();
        let err = p.vault(&["get", "staging", "A"]).error();
        assert!(
            err.contains("staging") && err.contains("the signature is for another ciphertext"),
            "{err}"
        );
        // Past the signature check (recovery), age's own verdict.
        let err = p
            .vault(&["--insecure-skip-verify", "get", "staging", "A"])
            .error();
        assert!(err.contains(want) && err.contains("staging"), "{err}");
        assert!(!err.contains("sekrit"));
        let err = p.vault_in(&["set", "staging", "B"], b"x").error();
        assert!(err.contains("staging"), "{err}");
        assert_eq!(p.snapshot(), before);
    }
    let big = vec![b'a'; 3 << 20];
    std::fs::write(&path, &big).unwrap();
    let err = p.vault(&["get", "staging", "A"]).error();
    assert!(err.contains("over the limit"), "{err}");
}

#[test]
fn no_project() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(["get", "staging", "A"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = common::Run(out).error();
    assert!(err.contains("no vault project in"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn provision_usage_errors_touch_nothing() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    for (args, want, code) in [
        (
            &["provision", "staging"][..],
            "staging: no hosts: none in conf/pillar/staging/env.sls, and no -H",
            2,
        ),
        (
            &["provision", "staging", "--host=-oProxyCommand=touch /tmp/x"],
            "invalid host",
            2,
        ),
        (
            &["provision", "staging", "-H", "root@host:notaport"],
            "invalid host 'root@host:notaport'",
            2,
        ),
        (&["provision", "qa"], "unknown environment 'qa'", 1),
        (
            &["provision", "staging", "-H", "web1", "-H", "root@web1:22"],
            "web1 and root@web1:22 are the same server",
            2,
        ),
        (
            &["provision", "staging", "-H", "x", "--jobs", "0"],
            "invalid value '0' for '--jobs <N>'",
            2,
        ),
        (
            &[
                "provision",
                "staging",
                "-H",
                "x",
                "--dry-run",
                "--keep-pillar",
            ],
            "'--dry-run' cannot be used with '--keep-pillar'",
            2,
        ),
    ] {
        let line = p.vault(args).refused(code);
        assert!(line.contains(want), "{args:?}: {line}");
        assert_eq!(p.snapshot(), before, "{args:?}");
    }
}

#[test]
fn usage_errors_are_one_line_and_never_repeat_an_argument() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    for (args, want) in [
        (
            &["set", "staging", "TOKEN", "hunter2-secret"][..],
            "unexpected argument (not shown",
        ),
        (
            &["set", "staging", "TOKEN", "--password=hunter2-secret"],
            "unexpected argument '--password'",
        ),
        (&["get", "staging"], "required arguments were not provided"),
        (&["frob"], "unrecognized subcommand 'frob'"),
    ] {
        let out = p.vault(args);
        let line = out.refused(2);
        assert!(line.contains(want), "{args:?}: {line}");
        let err = out.stderr();
        assert!(
            err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
            "{args:?}: no hint: {err}"
        );
        assert!(!err.contains("hunter2"), "{args:?} repeated a value: {err}");
        assert_eq!(p.snapshot(), before, "{args:?}");
    }
    // Help is still help.
    let out = p.vault(&["set", "--help"]);
    assert_eq!(out.code(), 0);
    assert!(out.stdout().contains("Usage: vault set"));
}

#[test]
fn a_reader_that_stops_early_ends_vault_quietly() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["show", "staging"],
        &["status"],
        &["get", "staging", "A"],
        &["export", "staging", "--format", "json"],
    ] {
        let mut child = p
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before vault writes a byte: its write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("broken pipe"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn each_stumble_is_answered_with_the_next_command() {
    let p = Project::new();
    // A value on the command line: refused, unrepeated, and the ways that work shown.
    let out = p.vault(&["set", "-i", "k", "staging", "TOKEN", "hunter2"]);
    let said = out.stderr();
    assert!(!said.contains("hunter2"), "{said}");
    assert!(
        said.contains("hint: give the value on standard input: `printf %s \"$VALUE\" | vault set staging TOKEN`, or from a file: `vault set staging TOKEN --from-file FILE`"),
        "{said}"
    );
    // A misspelt environment: the nearest one.
    let out = p.vault(&["edit", "stagin"]);
    assert!(
        out.stderr().contains(
            "hint: did you mean staging? (or create stagin with `vault init --env stagin`)"
        ),
        "{}",
        out.stderr()
    );
    let out = p.vault(&["edit", "qa"]);
    assert!(
        out.stderr()
            .contains("hint: create it with `vault init --env qa`"),
        "{}",
        out.stderr()
    );
    // Another tool's command name: what vault calls it.
    let out = p.vault(&["updatekeys"]);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr()
            .contains("hint: vault has no `updatekeys`: `vault rekey ENV`"),
        "{}",
        out.stderr()
    );
    // keygen without a keyring (no D-Bus session here): the ways that work headless.
    let out = p.bare(&["keygen"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("an existing ~/.ssh/id_ed25519 works as it is"),
        "{said}"
    );
    assert!(
        said.contains("`vault keygen --file ~/.ssh/vault_ed25519`"),
        "{said}"
    );
    assert!(said.contains("dbus-run-session"), "{said}");
}

#[test]
fn a_newcomer_not_yet_granted_is_told_to_read_their_fingerprint_to_a_member() {
    let p = Project::new();
    p.set("staging", "A", "secret-value");
    p.add_member("staging", "erin", "carol_rsa.pub");
    let fp = common::fingerprint("carol_rsa.pub");
    let home = tempfile::tempdir().unwrap();
    let erin = |args: &[&str]| {
        let mut c = p.bare(args);
        c.env("VAULT_IDENTITY", key("carol_rsa"))
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"));
        common::Run(c.output().unwrap())
    };
    let alice = common::fingerprint("alice_ed25519.pub");
    erin(&["trust", "staging", "--fingerprint", &alice]).success();
    let out = erin(&["get", "staging", "A"]);
    let said = out.stderr();
    assert!(out.error().contains("no identity opens staging"), "{said}");
    assert!(
        said.contains(&format!("hint: your key is in recipients/staging/erin.pub but not granted yet: read your fingerprint {fp} (`vault whoami`) to a member of staging over another channel; they run `vault grant staging erin --fingerprint {fp}`")),
        "{said}"
    );
    assert!(!said.contains("rekey"), "{said}");
}

/// `vault master` refuses what it cannot use before it reads the project or reaches a
/// master: an odd minion ID, a fingerprint that is not one, an environment without a
/// master, a member name that is not one; nothing changes.
#[test]
fn master_commands_refuse_bad_input_first() {
    let p = Project::new();
    let before = p.snapshot();
    let fp = "ab".repeat(32);
    for (args, want, code) in [
        (
            vec!["master", "accept", "staging", "a b", "--fingerprint", &fp],
            "is not a minion ID",
            2,
        ),
        (
            vec!["master", "accept", "staging", "L@x,y", "--fingerprint", &fp],
            "is not a minion ID",
            2,
        ),
        (
            vec!["master", "accept", "staging", "web1", "--fingerprint", "zz"],
            "is not a key fingerprint",
            2,
        ),
        (
            vec!["master", "accept", "staging", "web1", "--fingerprint", &fp],
            "no master:",
            2,
        ),
        (
            vec![
                "master",
                "setup",
                "staging",
                "root@127.0.0.1:1",
                "--name",
                "../x",
            ],
            "is not a member name",
            2,
        ),
        (
            vec!["master", "setup", "nosuchenv", "root@127.0.0.1:1"],
            "nosuchenv",
            1,
        ),
    ] {
        let err = p.vault(&args).refused(code);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(p.snapshot(), before);
}

/// A newcomer's near misses are offered the name that exists: an environment's short form
/// (`prod`), a misspelt secret name for get and unset, and a misspelt flag; never a value.
#[test]
fn a_near_miss_is_offered_the_name_that_exists() {
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "hunter2-value");
    let out = p.vault(&["show", "prod"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr().contains("hint: did you mean production?"),
        "{}",
        out.stderr()
    );
    for args in [
        &["get", "staging", "DB_PASSWRD"][..],
        &["unset", "staging", "DB_PASS"],
    ] {
        let out = p.vault(args);
        assert_eq!(out.code(), 1, "{args:?}");
        let said = out.stderr();
        assert!(
            said.contains("hint: did you mean DB_PASSWORD? (`vault show staging` lists the names)"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("hunter2"), "{said}");
    }
    let out = p.vault(&["show", "staging", "--valus"]);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr().contains("hint: did you mean --values?"),
        "{}",
        out.stderr()
    );
    // A flag with a value glued on: the value is not repeated, suggestion or not.
    let out = p.vault(&["show", "staging", "--value=hunter2"]);
    assert_eq!(out.code(), 2);
    assert!(!out.stderr().contains("hunter2"), "{}", out.stderr());
}

/// `grant` or `trust` without `--fingerprint` says where the fingerprint comes from and
/// the command to run with it, with the environment and member as typed.
#[test]
fn a_grant_without_a_fingerprint_says_where_it_comes_from() {
    let p = Project::new();
    p.add_member("staging", "dave", "carol_rsa.pub");
    let before = p.snapshot();
    let out = p.vault(&["grant", "staging", "dave"]);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr().contains("hint: dave reads you their fingerprint (`vault whoami` on their machine prints it) over another channel, a call say; then `vault grant staging dave --fingerprint SHA256:...`"),
        "{}",
        out.stderr()
    );
    let out = p.vault(&["trust", "production"]);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr().contains("hint: a member of production reads you their fingerprint (`vault whoami` prints it) over another channel; then `vault trust production --fingerprint SHA256:...`"),
        "{}",
        out.stderr()
    );
    assert_eq!(p.snapshot(), before);
}

/// With VAULT_IDENTITY set (the headless setup the README gives), a usage error's usage
/// line does not show `--identity <FILE>` as if the command required it.
#[test]
fn usage_lines_do_not_show_an_identity_from_the_environment_as_required() {
    let p = Project::new();
    for (args, usage) in [
        (
            &["exec", "staging"][..],
            "usage: vault exec <ENV> -- <COMMAND>...",
        ),
        (
            &["export", "staging"],
            "usage: vault export --format <FORMAT> <ENV>",
        ),
    ] {
        let out = p.vault(args);
        assert_eq!(out.code(), 2, "{args:?}");
        let said = out.stderr();
        assert!(!said.contains("--identity <FILE>"), "{args:?}: {said}");
        assert!(said.contains(usage), "{args:?}: {said}");
    }
}

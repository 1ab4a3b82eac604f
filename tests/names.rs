//! Secret names: one that changes how a program or the loader behaves (LD_PRELOAD,
//! BASH_ENV, PATH, ...) is refused on set and edit, and a file carrying one, even
//! signed by a member, is refused whole on read: never exported. And a document's
//! errors name the line and the kind of problem, never what was written in it.

use crate::common::{self, key, Project};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vault::secret::SecretBytes;

const REFUSED: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "DYLD_INSERT_LIBRARIES",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_ls",
    "SHELLOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PERL5OPT",
    "RUBYOPT",
    "NODE_OPTIONS",
    "JAVA_TOOL_OPTIONS",
    "GIT_SSH_COMMAND",
    "GIT_CONFIG_COUNT",
    "PATH",
    "IFS",
    "HOME",
    "GCONV_PATH",
];

#[test]
fn set_and_edit_refuse_names_that_control_programs() {
    let p = Project::new();
    p.set("staging", "A", "1");
    let before = p.snapshot();
    for name in REFUSED {
        let err = p.vault_in(&["set", "staging", name], b"/tmp/x.so").error();
        assert!(
            err.contains("changes how programs or the loader behave"),
            "{name}: {err}"
        );
        assert!(!err.contains("/tmp/x.so"), "{err}");
        assert_eq!(p.snapshot(), before, "{name}");
    }
    let rt = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    let script = rt.path().join("ed.sh");
    std::fs::write(
        &script,
        "printf 'secrets:\\n  A: 1\\n  LD_PRELOAD: /tmp/evil.so\\n' > \"$1\"\n",
    )
    .unwrap();
    let out = common::Run(
        p.cmd(&["edit", "staging"])
            .env("XDG_RUNTIME_DIR", rt.path())
            .env("VISUAL", format!("sh {}", script.display()))
            .output()
            .unwrap(),
    );
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr()
            .contains("line 3: LD_PRELOAD changes how programs"),
        "{}",
        out.stderr()
    );
    assert!(!out.stderr().contains("evil"), "{}", out.stderr());
    assert_eq!(p.snapshot(), before);
    // Ordinary names, even close ones, are fine.
    for name in ["NODE_ENV", "GIT_TOKEN", "HOME_URL", "PATHS", "DATABASE_URL"] {
        p.vault_in(&["set", "staging", name], b"v").success();
    }
}

/// Staging's pair replaced by an attacker holding alice's key (or alice herself): the
/// document encrypted with plain `age` to staging's members, and a sidecar for it made
/// from the current one and signed with `ssh-keygen -Y sign`.
fn forge_signed(p: &Project, plaintext: &[u8]) {
    let dir = p.root().join("conf/pillar/staging");
    let mut age = std::process::Command::new("age");
    age.arg("-a");
    for member in ["alice", "bob"] {
        age.arg("-R")
            .arg(p.root().join(format!("recipients/staging/{member}.pub")));
    }
    let out = common::run_with_input(age, plaintext);
    assert!(out.0.status.success(), "{}", out.stderr());
    let ct = out.0.stdout;
    let sidecar = std::fs::read_to_string(dir.join("secrets.sls.age.sig")).unwrap();
    let (signed, _) = vault::manifest::split(&sidecar).unwrap();
    let mut m = vault::manifest::Manifest::parse(signed).unwrap();
    m.serial += 1;
    m.ciphertext = vault::trust::ciphertext_hash(&ct);
    m.secrets
        .push(("LD_PRELOAD".into(), m.secrets[0].1.clone()));
    let text = m.render();
    let msg = p.root().join("manifest");
    std::fs::write(&msg, &text).unwrap();
    let signing = p.home.join("alice");
    std::fs::copy(key("alice_ed25519"), &signing).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&signing, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "vault", "-f"])
        .arg(&signing)
        .arg(&msg)
        .status()
        .unwrap();
    assert!(ok.success());
    let sig = std::fs::read_to_string(p.root().join("manifest.sig")).unwrap();
    std::fs::write(dir.join("secrets.sls.age"), &ct).unwrap();
    std::fs::write(dir.join("secrets.sls.age.sig"), format!("{text}{sig}")).unwrap();
    std::fs::remove_file(&msg).unwrap();
    std::fs::remove_file(p.root().join("manifest.sig")).unwrap();
}

#[test]
fn attack_a_member_signed_file_carrying_ld_preload_is_refused_whole() {
    if !common::have("age") || !common::have("ssh-keygen") {
        common::require_in_ci("age and ssh-keygen");
        return;
    }
    let p = Project::new();
    p.set("staging", "A", "honest");
    forge_signed(
        &p,
        b"secrets:\n  A: honest\n  LD_PRELOAD: /tmp/evil-lib.so\n",
    );
    // The signature is good: check finds nothing wrong with it.
    let check = p.vault(&["check"]);
    assert!(
        !check.stdout().contains("signature check failed"),
        "{}",
        check.stdout()
    );
    let marker = p.root().join("ran");
    let sh = format!("touch {}", marker.display());
    for args in [
        &["get", "staging", "A"][..],
        &["show", "staging"],
        &["export", "staging", "--format", "dotenv"],
        &["exec", "staging", "--", "sh", "-c", &sh],
    ] {
        let run = p.vault(args);
        let all = format!("{}{}", run.stdout(), run.stderr());
        let err = run.error();
        assert!(
            err.contains("line 3: LD_PRELOAD changes how programs"),
            "{args:?}: {err}"
        );
        assert!(
            !all.contains("evil-lib") && !all.contains("honest"),
            "{args:?}: {all}"
        );
    }
    assert!(!marker.exists(), "exec ran the program");
    // The honest flow: a file without it, signed the same way, is read.
    forge_signed(&p, b"secrets:\n  A: honest\n  B: two\n");
    assert_eq!(p.vault(&["get", "staging", "B"]).0.stdout, b"two");
    let out = p
        .vault(&["exec", "staging", "--", "sh", "-c", "printf %s \"$A\""])
        .success();
    assert_eq!(out.0.stdout, b"honest");
}

/// Documents with `v` where a name (or the top-level key) belongs, or written twice.
fn in_key_position(v: &str) -> Vec<String> {
    [
        "secrets:\n  {v}: x\n",
        "secrets:\n  {v}\n",
        "secrets:\n  A: 1\n  {v}\n",
        "{v}:\n  A: b\n",
        "{v}: 1\n",
        "secrets:\n  A: 1\n{v}: 2\n",
        "secrets:\n  {v}: 1\n  {v}: 2\n",
        "secrets:\n  {v}:\n",
        "secrets:\n  {v}: [a]\n",
        "secrets:\n  {v}: {a: b}\n",
        "secrets:\n  {v}: &x a\n",
        "secrets:\n  {v}: !!str a\n",
        "secrets:\n  {v}: *x\n",
        "secrets:\n  ? {v}\n  : a\n",
        "secrets:\n  [{v}]: a\n",
        "secrets:\n  \"{v}\": a\n",
        "secrets:\n  '{v}': a\n",
        "secrets:\n  {v} : a\n  {v} : b\n",
        "secrets: {{{v}: a, {v}: b}}\n",
        "secrets:\n  A: \"{v}\n",
        "secrets:\n  A: b\n{v}\n",
        "secrets:\n  A: b\n  - {v}\n",
        "secrets:\n  {v}: a\n---\nsecrets: {}\n",
    ]
    .iter()
    .map(|t| t.replace("{v}", v).replace("{{", "{").replace("}}", "}"))
    .collect()
}

/// Distinctive strings, some shaped like names (`Passw0rd_x9`), some not (`p@ss-w0rd!`),
/// that no message could contain by chance (a letter and a digit, 8 characters or more).
fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{7,20}",
        "[A-Za-z0-9_@!%+=.-]{8,20}",
        "[A-Za-z][A-Za-z0-9]{3,8}-[0-9]{3,6}",
    ]
    .prop_filter("a letter and a digit", |v| {
        v.chars().any(|c| c.is_ascii_digit()) && v.chars().any(|c| c.is_ascii_alphabetic())
    })
}

fn runner() -> TestRunner {
    let seed = [7u8; 32];
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    )
}

#[test]
fn document_errors_never_repeat_what_was_written() {
    let mut runner = runner();
    let strategy = values();
    for _ in 0..200 {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        for text in in_key_position(&v) {
            let Err(err) = vault::document::Document::parse(
                "staging",
                SecretBytes::new(text.clone().into_bytes()),
            ) else {
                continue;
            };
            let shown = format!("{err} {}", err.hint().unwrap_or_default());
            assert!(!shown.contains(&v), "{text:?}: {shown}");
            assert!(shown.starts_with("staging: "), "{shown}");
        }
    }
}

#[test]
fn the_binary_never_prints_a_scalar_of_a_bad_document() {
    if !common::have("age") {
        common::require_in_ci("age");
        return;
    }
    let p = Project::new();
    let alice = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let dest = p.secrets("staging");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let mut runner = runner();
    let strategy = values();
    for _ in 0..2 {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        for text in in_key_position(&v) {
            let mut age = std::process::Command::new("age");
            age.args(["-a", "-r", alice.trim(), "-o", dest.to_str().unwrap()]);
            assert!(common::run_with_input(age, text.as_bytes())
                .0
                .status
                .success());
            let run = p.vault(&["--insecure-skip-verify", "get", "staging", "A"]);
            let all = format!("{}{}", run.stdout(), run.stderr());
            assert!(!all.contains(&v), "{text:?}: {all}");
        }
    }
}

#[test]
fn a_member_allows_a_controlling_name_in_the_signed_manifest() {
    let p = Project::new();
    p.set("staging", "A", "a");
    let err = p
        .vault_in(&["set", "staging", "PYTHONPATH"], b"/srv/app/lib")
        .error();
    assert!(err.contains("changes how programs"), "{err}");
    // Allowing an ordinary name is a usage error; allowing a controlling one is signed.
    assert_eq!(p.vault(&["allow", "staging", "DB_URL"]).code(), 2);
    p.vault(&["allow", "staging", "PYTHONPATH"]).success();
    let sidecar =
        std::fs::read_to_string(p.root().join("conf/pillar/staging/secrets.sls.age.sig")).unwrap();
    assert!(sidecar.contains("\nallow PYTHONPATH\n"), "{sidecar}");
    p.vault_in(&["set", "staging", "PYTHONPATH"], b"/srv/app/lib")
        .success();
    assert_eq!(
        p.vault(&["get", "staging", "PYTHONPATH"]).0.stdout,
        b"/srv/app/lib"
    );
    let out = p
        .vault(&[
            "exec",
            "staging",
            "--",
            "sh",
            "-c",
            "printf %s \"$PYTHONPATH\"",
        ])
        .success();
    assert_eq!(out.0.stdout, b"/srv/app/lib");
    // Another member's machine reads it too (the allow list travels signed).
    let out = p
        .cmd(&["get", "staging", "PYTHONPATH"])
        .env("VAULT_IDENTITY", key("bob.agekey"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"/srv/app/lib");
    // Other controlling names stay refused.
    let err = p
        .vault_in(&["set", "staging", "LD_PRELOAD"], b"x.so")
        .error();
    assert!(err.contains("changes how programs"), "{err}");
    // Taken back only once no secret holds it.
    let err = p
        .vault(&["allow", "staging", "PYTHONPATH", "--remove"])
        .error();
    assert!(err.contains("stays allowed while it is there"), "{err}");
    p.vault(&["unset", "staging", "PYTHONPATH"]).success();
    p.vault(&["allow", "staging", "PYTHONPATH", "--remove"])
        .success();
    let err = p.vault_in(&["set", "staging", "PYTHONPATH"], b"x").error();
    assert!(err.contains("changes how programs"), "{err}");
}

/// `vault set staging DB_PASSWORD=hunter2`, as other tools take a setting: refused by set,
/// unset, get and rotate without repeating what follows the `=` (or a space), with the way
/// that works; nothing changes.
#[test]
fn a_name_typed_with_its_value_is_refused_without_repeating_the_value() {
    let p = Project::new();
    p.set("staging", "DB_PASSWORD", "old-value");
    let before = p.snapshot();
    for args in [
        &["set", "staging", "DB_PASSWORD=hunter2-typed"][..],
        &["set", "staging", "DB_PASSWORD hunter2-typed"],
        &["unset", "staging", "DB_PASSWORD=hunter2-typed"],
        &["get", "staging", "DB_PASSWORD=hunter2-typed"],
        &[
            "rotate",
            "staging",
            "DB_PASSWORD=hunter2-typed",
            "--generate",
        ],
    ] {
        let out = p.vault_in(args, b"");
        assert_eq!(out.code(), 1, "{args:?}: {}", out.stderr());
        let said = out.stderr();
        assert!(!said.contains("hunter2"), "{args:?}: {said}");
        assert!(
            said.contains("vault: error: staging: 'DB_PASSWORD' followed by a value (not shown) is no secret name"),
            "{args:?}: {said}"
        );
        assert!(
            said.contains("hint: give the value on standard input: `printf %s \"$VALUE\" | vault set staging DB_PASSWORD`"),
            "{args:?}: {said}"
        );
        assert!(out.stdout().is_empty(), "{args:?}");
    }
    assert_eq!(p.snapshot(), before);
}

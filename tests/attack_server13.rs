//! Attacks on what issue 13 built (SECURITY.md P12, P15, P19), each mounted as an attacker
//! would against the real loopback sshd, salt-call and supervisord: a developer about to
//! be retired who prepares to stay, a log tail that cuts a secret in two, and `env:`
//! settings that reach the program's environment past vault's own check.

use crate::common::server::{tools, Server, Sshd};
use crate::common::{Project, KEYS};
use std::path::Path;
use std::process::Command;

/// Real accounts a test makes through devs.sls, and removes however it ends: their
/// processes ended, the accounts and homes gone.
struct Users(&'static [&'static str]);

impl Drop for Users {
    fn drop(&mut self) {
        for u in self.0 {
            let _ = Command::new("pkill").args(["-KILL", "-u", u]).output();
            let _ = Command::new("userdel").args(["-r", "-f", u]).output();
        }
    }
}

fn provision(p: &Project, server: &Server, sshd: &Sshd) -> crate::common::Run {
    let flags = server.provision_flags(sshd);
    let mut args = vec!["provision", "staging", "--approve", "--accept-new-host-key"];
    args.extend(flags.iter().map(String::as_str));
    p.vault(&args)
}

fn alice_pub() -> String {
    std::fs::read_to_string(Path::new(KEYS).join("alice_ed25519.pub"))
        .unwrap()
        .trim()
        .to_string()
}

fn devs(p: &Project, users: &[&str]) {
    let mut text = String::from("users:\n");
    for u in users {
        text.push_str(&format!(
            "  {u}:\n    groups: [login]\n    public_key:\n      - {}\n",
            alice_pub()
        ));
    }
    if users.is_empty() {
        text = "users: {}\n".into();
    }
    std::fs::write(p.root().join("conf/pillar/devs.sls"), text).unwrap();
}

fn shadow(user: &str) -> String {
    let out = Command::new("getent")
        .args(["shadow", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A non-admin developer who knows they are about to be taken out of devs.sls prepares
/// to stay: `chmod 500 ~/.ssh` (the retirement removes keys as the user, who then cannot
/// delete in it), and a process left running (a held SSH session, a backdoor loop). P19:
/// someone taken out loses their keys and has the account locked and expired.
#[test]
fn attack_a_developer_about_to_be_retired_keeps_no_way_in() {
    let Some((tools, app)) = tools() else { return };
    let users = Users(&["atk13ra", "atk13rb"]);
    let p = Project::new();
    p.set("staging", "SECRET_TOKEN", "Tq3vN8pLr2Xw7Kz5");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    server.staging_env(p.root(), &sshd, "");
    devs(&p, users.0);
    provision(&p, &server, &sshd).success();
    for u in users.0 {
        let o = sshd.login(u, "true");
        assert!(o.status.success(), "{u} cannot log in: {o:?}");
    }

    // The attackers' preparations, made over their own logins.
    let o = sshd.login("atk13ra", "chmod 500 ~/.ssh");
    assert!(o.status.success(), "{o:?}");
    let o = sshd.login(
        "atk13rb",
        "setsid sh -c 'exec sleep 3600' </dev/null >/dev/null 2>&1 & echo started",
    );
    assert!(o.status.success(), "{o:?}");
    let running = |u: &str| {
        // A process killed but not yet reaped (a zombie) runs nothing.
        let o = Command::new("ps")
            .args(["-o", "stat=,pid=,args=", "-u", u])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.lines()
            .filter(|l| !l.trim_start().starts_with('Z'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        !running("atk13rb").is_empty(),
        "the held process did not start"
    );

    // A member takes both out of devs.sls and provisions.
    devs(&p, &[]);
    let run = provision(&p, &server, &sshd);
    for u in users.0 {
        let o = sshd.login(u, "true");
        assert!(!o.status.success(), "{u} still logs in after retirement");
        let entry = shadow(u);
        let fields: Vec<&str> = entry.split(':').collect();
        assert!(
            fields.len() > 7 && fields[1].starts_with('!') && fields[7] == "1",
            "{u} not locked and expired: {entry}\nprovision: {}\n{}",
            run.stdout(),
            run.stderr()
        );
        let home = Path::new("/home").join(u);
        assert!(home.exists(), "the home is kept");
        assert!(
            !home.join(".ssh/authorized_keys").exists(),
            "{u}'s keys are left"
        );
    }
    assert_eq!(
        running("atk13rb"),
        "",
        "a retired developer's process still runs as them\n{}\n{}",
        run.stdout(),
        run.stderr()
    );
    run.success();
}

/// A project whose program is `script` (a shell script standing in for gunicorn, as
/// `app: gunicorn:` allows), provisioned once: the failed provision's output.
fn failed_start(script: &str, secrets: &[(&str, &str)]) -> Option<crate::common::Run> {
    let (tools, app) = tools()?;
    let p = Project::new();
    for (name, value) in secrets {
        p.set("staging", name, value);
    }
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    server.staging_env(p.root(), &sshd, "");
    let fake = server.root.path().join("fake-gunicorn");
    std::fs::write(&fake, script).unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .unwrap();
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        &app.join("bin/gunicorn").display().to_string(),
        &fake.display().to_string(),
    );
    std::fs::write(&env_sls, text).unwrap();
    let run = provision(&p, &server, &sshd);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!run.0.status.success(), "the start did not fail: {all}");
    assert!(all.contains("example-gunicorn"), "{all}");
    Some(run)
}

/// P15 and the health check: the table shows the failed program's last log lines,
/// redacted. supervisorctl's tail is the log's last 8000 bytes, which may begin inside a
/// line: an app that printed a secret (a settings dump, a DSN in a traceback) followed by
/// less than 8000 bytes has it cut in two there, and the half after the cut is no whole
/// value, nor the start of one, for the redactor to find.
#[test]
fn attack_the_log_tail_cut_inside_a_secret_shows_its_end() {
    let secret = "Kx7Qm2Vp9Lr4Tz8Wn3Yb6Hc1Jd5Fg0Ns7Pq2Re4";
    // After the secret's first 20 characters: its other 20, a line end, then 9 lines
    // making up 8000 bytes in all, so that the tail begins at its middle.
    let script = "#!/bin/sh\nprintf 'token: %s\\n' \"$SECRET_TOKEN\"\n\
                  i=0; while [ $i -lt 8 ]; do printf '%0885d\\n' 0; i=$((i+1)); done\n\
                  printf '%0890d\\n' 0\nexit 1\n";
    let Some(run) = failed_start(script, &[("SECRET_TOKEN", secret)]) else {
        return;
    };
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains("log, last"), "no log shown: {all}");
    assert!(
        !all.contains(&secret[20..]),
        "half of the secret is shown: {all}"
    );
    assert!(
        !all.contains(&secret[24..]),
        "a part of the secret is shown"
    );
}

/// P12 and `env:`: vault refuses a setting whose name controls how programs run
/// (PYTHONPATH, LD_PRELOAD, PATH) in env.sls, but reads only a plain env.sls's own
/// `env:`. A `{#` in a comment makes vault take the file for a template and check none
/// of it; an `env:` in project.sls, which Salt merges into every environment's, is never
/// read. Either way the name reaches the program's environment file.
#[test]
fn attack_a_controlling_env_setting_past_vaults_check() {
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    p.set("staging", "SECRET_TOKEN", "Tq3vN8pLr2Xw7Kz5");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    let evil = "/tmp/atk13-not-the-app";
    server.staging_env(p.root(), &sshd, "");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let plain = std::fs::read_to_string(&env_sls).unwrap();
    let templated = format!("{plain}# {{# reviewed #}}\nenv:\n  PYTHONPATH: {evil}\n");
    std::fs::write(&env_sls, templated).unwrap();
    let env_file = server.root.path().join("etc/example/secrets.env");
    let exported = || std::fs::read_to_string(&env_file).unwrap_or_default();
    let run = provision(&p, &server, &sshd);
    assert!(
        !exported().contains("PYTHONPATH"),
        "a templated env.sls exported PYTHONPATH: {}",
        run.stderr()
    );
    assert!(!run.0.status.success(), "{}", run.stderr());

    // The same through project.sls, with a plain env.sls.
    std::fs::write(&env_sls, plain).unwrap();
    let project_sls = p.root().join("conf/pillar/project.sls");
    let text = std::fs::read_to_string(&project_sls).unwrap();
    std::fs::write(&project_sls, format!("{text}env:\n  PYTHONPATH: {evil}\n")).unwrap();
    let run = provision(&p, &server, &sshd);
    assert!(
        !exported().contains("PYTHONPATH"),
        "env: of project.sls exported PYTHONPATH: {}",
        run.stderr()
    );
    assert!(!run.0.status.success(), "{}", run.stderr());
    assert!(run.stderr().contains("PYTHONPATH"), "{}", run.stderr());
}

/// P20: `vault import` opens the file without following a link, but only its last
/// component: a repository that makes `conf/pillar/staging` a link (git keeps links to
/// folders) sends the default path somewhere else on the member's machine, whose file
/// vault then encrypts into the project and overwrites with zeros.
#[test]
fn attack_import_through_a_linked_pillar_folder_touches_nothing_outside() {
    let p = Project::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let theirs = elsewhere.path().join("secrets.sls");
    let original = "secrets:\n  API_TOKEN: not-this-projects-9f3k2\n";
    std::fs::write(&theirs, original).unwrap();
    let env_dir = p.root().join("conf/pillar/staging");
    for f in std::fs::read_dir(&env_dir).unwrap().flatten() {
        let to = elsewhere.path().join(f.file_name());
        if !to.exists() {
            std::fs::rename(f.path(), to).unwrap();
        }
    }
    std::fs::remove_dir(&env_dir).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &env_dir).unwrap();
    let run = p.vault(&["import", "staging", "--yes"]);
    assert_eq!(
        std::fs::read_to_string(&theirs).ok().as_deref(),
        Some(original),
        "the file behind the link was overwritten or removed: {} {}",
        run.stdout(),
        run.stderr()
    );
    assert!(!p.secrets("staging").exists(), "it was imported");
    let err = run.error();
    assert!(err.contains("link"), "{err}");
}

/// P20: the plaintext leaves none behind. An editor's backup of the template's file
/// (`secrets.sls~`, `.secrets.sls.swp`) holds the same values, and `secrets.sls` in
/// .gitignore does not cover it: the next `git add -A` commits it.
#[test]
fn attack_import_leaves_an_editor_backup_of_the_plaintext() {
    let p = Project::new();
    let env_dir = p.root().join("conf/pillar/staging");
    let text = "secrets:\n  API_TOKEN: zq81-backup-kept-value\n";
    std::fs::write(env_dir.join("secrets.sls"), text).unwrap();
    std::fs::write(env_dir.join("secrets.sls~"), text).unwrap();
    let run = p.vault(&["import", "staging", "--yes"]);
    let left = crate::common::server::files_holding(&env_dir, b"zq81-backup-kept-value");
    assert!(
        left.is_empty() || !run.0.status.success(),
        "plaintext left after the import: {left:?}\n{}",
        run.stderr()
    );
    // Refused, naming the copy, and nothing changed: once it is gone, the import goes.
    let err = run.refused(2);
    assert!(err.contains("secrets.sls~"), "{err}");
    assert!(!p.secrets("staging").exists());
    assert_eq!(
        std::fs::read_to_string(env_dir.join("secrets.sls")).unwrap(),
        text
    );
    std::fs::remove_file(env_dir.join("secrets.sls~")).unwrap();
    p.vault(&["import", "staging", "--yes"]).success();
    assert!(crate::common::server::files_holding(&env_dir, b"zq81-backup-kept-value").is_empty());
}

/// P12 and P15 through Salt's pillar merge: the program's environment file exports the
/// merged `secrets:` pillar, and any pillar file can add to it. An approved-looking
/// env.sls with a `secrets:` mapping (and a pillar top that lists it after the real
/// secrets) would export PYTHONPATH with no `vault allow`, and replace a real secret's
/// value with one its author knows, which the redaction does not know to hide. vault
/// refuses a plain pillar file with `secrets:` before it connects (a templated one is
/// code, which the approval covers as such).
#[test]
fn attack_a_secrets_mapping_in_a_plain_pillar_file_reaches_the_program() {
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    let real = "Tq3vN8pLr2Xw7Kz5";
    p.set("staging", "SECRET_TOKEN", real);
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    server.staging_env(
        p.root(),
        &sshd,
        "secrets:\n  PYTHONPATH: /tmp/atk13-not-the-app\n  SECRET_TOKEN: known-to-the-author\n",
    );
    let top = p.root().join("conf/pillar/top.sls");
    let text = std::fs::read_to_string(&top).unwrap().replace(
        "    - staging.env\n    - staging.secrets\n",
        "    - staging.secrets\n    - staging.env\n",
    );
    std::fs::write(&top, text).unwrap();
    let run = provision(&p, &server, &sshd);
    let exported = std::fs::read_to_string(server.root.path().join("etc/example/secrets.env"))
        .unwrap_or_default();
    assert!(
        !exported.contains("PYTHONPATH") && !exported.contains("known-to-the-author"),
        "the program's environment took a plain file's secrets: {}",
        exported.replace(real, "<real>")
    );
    let err = run.error();
    assert!(
        err.contains("conf/pillar/staging/env.sls") && err.contains("secrets:"),
        "{err}"
    );
}

/// The same planted `secrets:` with a salt-master: the master merges pillar files as a
/// minion does, so it is refused before anything is shipped to it.
#[test]
fn attack_a_secrets_mapping_in_a_plain_pillar_file_reaches_a_fleet() {
    let p = Project::new();
    p.set("staging", "SECRET_TOKEN", "Tq3vN8pLr2Xw7Kz5");
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap();
    std::fs::write(
        &env_sls,
        format!(
            "{text}master: root@127.0.0.1:1\nminions: [web1]\nsecrets:\n  PYTHONPATH: /tmp/x\n"
        ),
    )
    .unwrap();
    let err = p.vault(&["provision", "staging", "--approve"]).error();
    assert!(
        err.contains("conf/pillar/staging/env.sls") && err.contains("secrets:"),
        "{err}"
    );
    assert!(
        !err.contains("127.0.0.1"),
        "refused before connecting: {err}"
    );
}

/// P19: passwordless sudo only for admin; the secrets readable by root and the app user
/// only. A devs.sls entry that looks like a login-only developer, with the app user's
/// group (which may read the secrets file) or a system group that is root by another name
/// (`disk`: the raw block devices), gives root's powers or the secrets without `admin`.
#[test]
fn attack_a_login_only_developer_in_a_powerful_group() {
    let Some((tools, app)) = tools() else { return };
    let users = Users(&["atk13ga"]);
    let p = Project::new();
    p.set("staging", "SECRET_TOKEN", "Tq3vN8pLr2Xw7Kz5");
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    server.staging_env(p.root(), &sshd, "");
    let devs_sls = p.root().join("conf/pillar/devs.sls");
    for group in [crate::common::server::APP_USER, "disk"] {
        std::fs::write(
            &devs_sls,
            format!(
                "users:\n  {}:\n    groups: [login, {group}]\n    public_key:\n      - {}\n",
                users.0[0],
                alice_pub()
            ),
        )
        .unwrap();
        let run = provision(&p, &server, &sshd);
        let groups = Command::new("id")
            .args(["-nG", users.0[0]])
            .output()
            .unwrap();
        let groups = String::from_utf8_lossy(&groups.stdout).into_owned();
        assert!(
            !groups.split_whitespace().any(|g| g == group),
            "a login-only developer is in {group}: {groups}"
        );
        assert!(!run.0.status.success(), "{group} was accepted");
        assert!(run.stderr().contains(group), "{}", run.stderr());
    }
}

/// P15 and the health check: a database password with characters a URL cannot hold is
/// printed percent-encoded wherever the app logs its database URL (as Django's
/// dj-database-url and SQLAlchemy have it written), and a start that fails on the
/// database shows that line in the log tail.
#[test]
fn attack_the_log_tail_shows_a_url_encoded_password() {
    let password = "p@ss w%rd/with#chars";
    let script = "#!/bin/sh\necho starting\n\
                  python3 -c 'import os,urllib.parse;print(\"cannot connect to postgres://app:\"+urllib.parse.quote(os.environ[\"DB_PASSWORD\"],safe=\"\")+\"@db/app\")'\n\
                  python3 -c 'import os,urllib.parse;print(\"or to postgres://app:\"+urllib.parse.quote_plus(os.environ[\"DB_PASSWORD\"])+\"@db/app\")'\n\
                  exit 1\n";
    let Some(run) = failed_start(script, &[("DB_PASSWORD", password)]) else {
        return;
    };
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains("cannot connect to postgres://app:"), "{all}");
    for shown in [
        "p%40ss%20w%25rd%2Fwith%23chars",
        "p%40ss+w%25rd%2Fwith%23chars",
    ] {
        assert!(
            !all.contains(shown),
            "the password is shown URL-encoded: {all}"
        );
    }
}

/// A real run and a dry run leave the secrets nowhere on the server but the program's
/// environment file: not in Salt's cache under the root, not in a rendered template Salt
/// left in the temporary folder, not in a dry run's scratch root.
#[test]
fn a_real_and_a_dry_run_leave_no_plaintext_behind() {
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    let secret = "Lq9-leftover-probe-7Zx2Wm";
    p.set("staging", "SECRET_TOKEN", secret);
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    server.staging_env(p.root(), &sshd, "");
    let salt_tmp = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("__salt"))
            .map(|e| e.path())
            .filter(|f| {
                std::fs::read(f)
                    .is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret.as_bytes()))
            })
            .collect()
    };
    provision(&p, &server, &sshd).success();
    p.set("staging", "SECRET_TOKEN", &format!("{secret}-v2"));
    let flags = server.provision_flags(&sshd);
    let mut args = vec!["provision", "staging", "--dry-run"];
    args.extend(flags.iter().map(String::as_str));
    p.vault(&args).success();
    let env_file = server.root.path().join("etc/example/secrets.env");
    let mut left = crate::common::server::files_holding(server.root.path(), secret.as_bytes());
    assert!(
        left.contains(&env_file),
        "the search finds nothing: {left:?}"
    );
    left.retain(|f| f != &env_file);
    assert!(left.is_empty(), "plaintext left on the server: {left:?}");
    assert_eq!(salt_tmp(), Vec::<std::path::PathBuf>::new());
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        !env.contains("-v2"),
        "the dry run changed the program's environment"
    );
}

/// P18: a version the record's follows is refused, `--allow-older` or not. Ancestry is
/// followed through the versions git holds; two `vault set`s between commits (the
/// honest way to change two values) leave the middle version in no commit, so the chain
/// from the applied version back to an older one breaks there. A member whose checkout
/// is at the older version then sees "another branch", and `--allow-older` goes back.
#[test]
fn attack_a_version_missing_from_git_lets_allow_older_go_back() {
    let Some((tools, app)) = tools() else { return };
    let p = Project::new();
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(&Path::new(KEYS).join("alice_ed25519"));
    server.staging_env(p.root(), &sshd, "");
    let git = |args: &[&str]| crate::common::git(p.root(), args);
    git(&["init", "-q"]);
    p.set("staging", "SECRET_TOKEN", "first-value-v1-aaaa");
    git(&["add", "-A"]);
    git(&["commit", "-qm", "v1"]);
    let v1 = git(&["rev-parse", "HEAD"]).trim().to_string();
    p.set("staging", "SECRET_TOKEN", "second-value-v2-bbbb");
    p.set("staging", "OTHER", "second-value-v3-cccc");
    git(&["add", "-A"]);
    git(&["commit", "-qm", "v3"]);
    provision(&p, &server, &sshd).success();
    git(&["add", "-A"]);
    git(&["commit", "-qm", "approval"]);

    // bob, on his own machine, with the checkout back at v1's secrets (and the newer
    // commits in his history).
    let bob = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bob.path().join(".ssh")).unwrap();
    git(&[
        "checkout",
        "-q",
        &v1,
        "--",
        "conf/pillar/staging/secrets.sls.age",
    ]);
    for f in std::fs::read_dir(p.root().join("conf/pillar/staging"))
        .unwrap()
        .flatten()
    {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with("secrets.sls.age.") {
            git(&[
                "checkout",
                "-q",
                &v1,
                "--",
                &format!("conf/pillar/staging/{name}"),
            ]);
        }
    }
    let fp = crate::common::fingerprint("alice_ed25519.pub");
    let trust = ["trust", "staging", "--fingerprint", &fp];
    crate::common::Run(
        p.on_machine(bob.path(), "bob.agekey", &trust)
            .output()
            .unwrap(),
    )
    .success();
    let flags = server.provision_flags(&sshd);
    let mut args = vec!["provision", "staging", "--allow-older"];
    args.extend(flags.iter().map(String::as_str));
    let run = crate::common::Run(
        p.on_machine(bob.path(), "bob.agekey", &args)
            .output()
            .unwrap(),
    );
    let env = std::fs::read_to_string(server.root.path().join("etc/example/secrets.env")).unwrap();
    assert!(
        env.contains("second-value-v2-bbbb") && !env.contains("first-value-v1-aaaa"),
        "the server went back to v1: {}",
        run.stderr()
    );
    assert!(!run.0.status.success(), "{}", run.stderr());
    let err = run.stderr();
    assert!(
        err.contains("serial 3") && err.contains("serial 1") && err.contains("not whole"),
        "{err}"
    );
}

/// P15 and the health check: a value the app prints wrapped over lines (a token folded
/// at a column, as base64 and PEM bodies are) is followed from one line to the next
/// after Salt's indentation, but each line of the log tail also starts with the
/// `vault-report: | ` prefix, after which the rest of the value was shown; and Salt logs
/// the failed state's output again as Python's repr, where the lines are joined by a
/// literal `\n` and the value's start was shown too.
#[test]
fn attack_the_log_tail_shows_the_rest_of_a_wrapped_secret() {
    let secret = "Wd4Kp8Zr2Qm6Tx9Lb3Vn7Hc5Jf1Gs0Ye4";
    let script =
        "#!/bin/sh\nprintf 'token:\\n'\nprintf '%s\\n' \"$SECRET_TOKEN\" | fold -w 16\nexit 1\n";
    let Some(run) = failed_start(script, &[("SECRET_TOKEN", secret)]) else {
        return;
    };
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains("log, last"), "no log shown: {all}");
    for part in [&secret[..16], &secret[16..32]] {
        assert!(
            !all.contains(part),
            "a part of the secret is shown ({part}): {all}"
        );
    }
}

//! Adopting a template project: `vault init` beside its own states (which it keeps,
//! naming the supervisor line to change), then `vault import` of its plaintext
//! `secrets.sls`, with the values Salt's YAML reading typed named for the user to confirm.

use crate::common::{self, fingerprint, git, Project};
use std::os::unix::fs::PermissionsExt;

/// The caktus template's supervisor program: its environment= built from the secrets.
const GUNICORN_CONF: &str = r#"[program:{{ pillar['project_name'] }}-server]
command={{ virtualenv_root }}/bin/gunicorn {{ pillar['project_name'] }}.wsgi:application --bind=0.0.0.0:8000
user={{ pillar['project_name'] }}
autostart=true
environment=DJANGO_SETTINGS_MODULE="{{ settings }}",ALLOWED_HOSTS="{{ pillar['domain'] }}",
    {%- for key, value in pillar['secrets'].items() -%}
    {{ key }}="{{ value }}"{%- if not loop.last -%},{%- endif -%}
    {%- endfor %}
stdout_logfile={{ log_dir }}/gunicorn.log
"#;

/// A plaintext secrets.sls as the template's users wrote it: plain scalars, some of
/// which Salt typed.
const PLAINTEXT: &str = "# staging secrets, passed out of band\nsecrets:\n  DB_PASSWORD: it's 100% \"hard\", $HOME\n  DEBUG_TOOLBAR: yes\n  ZIP_CODE: 0123\n  API_TOKEN: 'sk_live_0123456789abcdefghij'\n  RATE: 1_000\n";

/// A template project (its states, pillar, secrets.ex, and a plaintext staging
/// secrets.sls git ignores), committed, with alice and bob able to join staging.
fn template_project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let p = Project { dir, home };
    let files = [
        ("conf/salt/top.sls", "base:\n  '*':\n    - base\n    - project.web.app\n"),
        ("conf/salt/project/web/gunicorn.conf", GUNICORN_CONF),
        ("conf/salt/project/web/app.sls", "# the template's app states\n"),
        ("conf/pillar/top.sls", "base:\n  '*':\n    - project\n    - devs\n  'staging':\n    - staging.env\n    - staging.secrets\n"),
        ("conf/pillar/project.sls", "project_name: example\n"),
        ("conf/pillar/devs.sls", "users: {}\n"),
        ("conf/pillar/staging/env.sls", "environment: staging\ndomain: staging.example.com\n"),
        ("conf/pillar/staging/secrets.ex", "secrets:\n  DB_PASSWORD: 'XXXXXX'\n  SENTRY_DSN: 'XXXXXX'\n"),
        (".gitignore", "conf/pillar/*/secrets.sls\n"),
    ];
    for (rel, text) in files {
        let path = p.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(p.root(), &["init", "-q"]);
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "the template"]);
    std::fs::write(p.root().join("conf/pillar/staging/secrets.sls"), PLAINTEXT).unwrap();
    p
}

/// `vault init` in the template project, then alice (having checked bob's fingerprint)
/// and bob as staging's members.
fn adopt(p: &Project) -> common::Run {
    let out = p.vault(&["init", "--env", "staging"]).success();
    p.add_member("staging", "alice", "alice_ed25519.pub");
    p.add_member("staging", "bob", "bob.agekey.pub");
    p.vault(&[
        "trust",
        "staging",
        "--fingerprint",
        &fingerprint("bob.agekey.pub"),
    ])
    .success();
    out
}

#[test]
fn init_keeps_a_template_s_states_and_names_the_supervisor_line_to_change() {
    let p = template_project();
    let before: Vec<_> = common::files_under(&p.root().join("conf/salt"), &[]);
    let out = adopt(&p);
    let err = out.stderr();
    assert!(
        err.contains("vault: warning: conf/salt/project/web/gunicorn.conf:5: this supervisor environment= is built from pillar['secrets']"),
        "{err}"
    );
    assert!(err.contains("Adopting a template project"), "{err}");
    assert!(err.contains("add `- vault` to conf/salt/top.sls"), "{err}");
    // vault's part only, for the template's states to include; none of vault's own
    // project states beside the template's.
    assert!(p.root().join("conf/salt/vault/init.sls").exists());
    assert!(!p.root().join("conf/salt/project/init.sls").exists());
    assert!(!p.root().join("conf/salt/project/devs.sls").exists());
    for (path, bytes) in before {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{} kept as it was",
            path.display()
        );
    }
}

/// In a template project the next step is the import of its plaintext, not an edit
/// that would start an empty document beside it.
#[test]
fn init_in_a_template_project_says_import_comes_next() {
    let p = template_project();
    let err = adopt(&p).stderr();
    assert!(
        err.contains("vault: next: put your public key in recipients/staging/YOURNAME.pub (`vault whoami` prints it; `vault keygen` makes one), then `vault import staging`"),
        "{err}"
    );
    assert!(!err.contains("`vault edit staging`"), "{err}");
}

#[test]
fn import_names_what_salt_typed_then_encrypts_and_removes_the_plaintext() {
    let p = template_project();
    adopt(&p);
    let plaintext = p.root().join("conf/pillar/staging/secrets.sls");

    // No terminal: the typed values are named, by line, without a value; nothing changes.
    let before = p.snapshot();
    let out = p.vault(&["import", "staging"]);
    let err = out.stderr();
    assert_eq!(out.code(), 2, "{err}");
    for line in [
        "DEBUG_TOOLBAR (line 4): the servers got the boolean True; vault keeps the text",
        "ZIP_CODE (line 5): the servers got the integer 123; vault keeps the text",
        "RATE (line 7): the servers got the integer 1000; vault keeps the text",
    ] {
        assert!(err.contains(line), "{err}");
    }
    assert!(
        !err.contains("DB_PASSWORD ("),
        "a string Salt kept is not named: {err}"
    );
    assert!(err.contains("vault import staging --yes"), "{err}");
    for v in ["0123", "100%", "sk_live"] {
        assert!(!err.contains(v), "{v} shown: {err}");
    }
    assert!(p.snapshot() == before, "nothing changes on disk");

    // A hard link elsewhere to the same file: it must not keep the plaintext alive.
    let linked = p.home.join("copy-of-secrets.sls");
    std::fs::hard_link(&plaintext, &linked).unwrap();
    let out = p.vault(&["import", "staging", "--yes"]).success();
    let err = out.stderr();
    let left = std::fs::read(&linked).unwrap();
    assert!(
        left.len() == PLAINTEXT.len() && left.iter().all(|b| *b == 0),
        "the plaintext survives through a hard link"
    );
    assert!(err.contains("staging: imported 5 secret(s) from conf/pillar/staging/secrets.sls, encrypted to alice, bob"), "{err}");
    assert!(
        err.contains("conf/pillar/staging/secrets.sls: overwritten and removed"),
        "{err}"
    );
    assert!(
        err.contains(
            "secrets.ex lists SENTRY_DSN that conf/pillar/staging/secrets.sls did not hold: add them with `vault set staging SENTRY_DSN`"
        ),
        "{err}"
    );
    assert!(!err.contains("sk_live") && !err.contains("100%"), "{err}");
    assert!(!plaintext.exists());
    let ignore = std::fs::read_to_string(p.root().join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "secrets.sls"), "{ignore}");
    for (name, want) in [
        ("DB_PASSWORD", "it's 100% \"hard\", $HOME"),
        ("DEBUG_TOOLBAR", "yes"),
        ("ZIP_CODE", "0123"),
        ("API_TOKEN", "sk_live_0123456789abcdefghij"),
        ("RATE", "1_000"),
    ] {
        assert_eq!(p.vault(&["get", "staging", name]).success().stdout(), want);
    }
    // Comments and order survive: the encrypted document is the file as written.
    let age = std::process::Command::new("age")
        .args(["-d", "-i", &common::key("alice_ed25519")])
        .arg(p.secrets("staging"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&age.stdout), PLAINTEXT);
    // The CI gate passes on what the import left.
    p.vault(&["check"]).success();

    // A second import would replace the encrypted secrets: refused.
    std::fs::write(&plaintext, PLAINTEXT).unwrap();
    let out = p.vault(&["import", "staging", "--yes"]);
    assert!(out
        .refused(2)
        .contains("staging already has encrypted secrets"));
    assert!(plaintext.exists(), "the plaintext is left for the user");
}

#[test]
fn at_a_terminal_the_values_are_shown_and_confirmed() {
    let p = template_project();
    adopt(&p);
    let (status, shown) = common::on_terminal(&p.cmd(&["import", "staging"]), Some("n"));
    assert!(!status.success(), "{shown}");
    assert!(
        shown.contains(
            "DEBUG_TOOLBAR (line 4): the servers got the boolean True; vault keeps `yes`"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("staging: not confirmed; nothing was imported"),
        "{shown}"
    );
    assert!(p.root().join("conf/pillar/staging/secrets.sls").exists());

    let (status, shown) = common::on_terminal(&p.cmd(&["import", "staging"]), Some("y"));
    assert!(status.success(), "{shown}");
    assert_eq!(
        p.vault(&["get", "staging", "ZIP_CODE"]).success().stdout(),
        "0123"
    );
}

#[test]
fn a_planted_link_or_a_tracked_file_is_never_taken_quietly() {
    let p = template_project();
    adopt(&p);
    let plaintext = p.root().join("conf/pillar/staging/secrets.sls");
    // An attacker's commit makes secrets.sls a link to the user's private key: the import
    // would encrypt it to the roster, then overwrite it.
    std::fs::remove_file(&plaintext).unwrap();
    let victim = p.home.join(".ssh/id_ed25519");
    std::fs::write(&victim, "secrets:\n  KEY: the user's own private key\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&victim, &plaintext).unwrap();
    let before = p.snapshot();
    let err = p.vault(&["import", "staging", "--yes"]).refused(2);
    assert!(err.contains("not a regular file"), "{err}");
    assert!(p.snapshot() == before);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "secrets:\n  KEY: the user's own private key\n"
    );

    // A secrets.sls that was committed: imported, and the user told its values were
    // never private.
    std::fs::remove_file(&plaintext).unwrap();
    std::fs::write(&plaintext, PLAINTEXT).unwrap();
    git(p.root(), &["add", "-f", "conf/pillar/staging/secrets.sls"]);
    git(p.root(), &["commit", "-qm", "oops"]);
    let err = p.vault(&["import", "staging", "--yes"]).success().stderr();
    assert!(
        err.contains("is in this repository's history: every value in it was readable by anyone with the repository"),
        "{err}"
    );
}

#[test]
fn import_refuses_a_file_that_is_not_a_secrets_document() {
    let p = template_project();
    adopt(&p);
    let plaintext = p.root().join("conf/pillar/staging/secrets.sls");
    std::fs::write(&plaintext, "secrets:\n  EMPTY:\n").unwrap();
    let out = p.vault(&["import", "staging", "--yes"]);
    let err = out.stderr();
    assert_ne!(out.code(), 0, "{err}");
    assert!(err.contains("line 2: the value is null"), "{err}");
    assert!(plaintext.exists(), "kept when nothing was imported");
    let err = p
        .vault(&["import", "staging", "conf/pillar/staging/none.sls"])
        .refused(2);
    assert!(err.contains("no such file"), "{err}");
}

/// The template's app states, switched to vault's env file as the README says: they
/// make the app user, include `vault`, and restart their program when its env file
/// changes; the program's file is `conf` (its `command=` through `<project>-run`).
const TEMPLATE_APP_SLS: &str = r#"{%- set root = salt['config.get']('root_dir', '/').rstrip('/') %}
{%- set ctl = salt['pillar.get']('vault:paths:supervisorctl') ~ ' -c ' ~ root ~ '/etc/supervisor/supervisord.conf' %}
include:
  - vault
app_user:
  user.present:
    - name: {{ salt['pillar.get']('vault:app_user') }}
    - system: True
    - createhome: False
    - require_in:
      - file: secrets_dir
run_dir:
  file.directory:
    - name: {{ root }}/run/example
    - user: {{ salt['pillar.get']('vault:app_user') }}
    - makedirs: True
server_conf:
  file.managed:
    - name: {{ root }}/etc/supervisor/conf.d/example-server.conf
    - source: salt://project/web/gunicorn.conf
    - template: jinja
    - context:
        root: {{ root }}
server_update:
  cmd.run:
    - name: {{ ctl }} update
    - onchanges:
      - file: server_conf
server_restart:
  cmd.run:
    - name: {{ ctl }} restart example-server
    - onchanges:
      - file: secrets_env
    - require:
      - cmd: server_update
"#;

/// The template's program, before and after its one line is changed.
fn template_program(switched: bool) -> String {
    let (command, environment) = match switched {
        true => (
            "{{ root }}/usr/local/bin/{{ pillar['project_name'] }}-run {{ pillar['app']['gunicorn'] }}",
            "environment=DJANGO_SETTINGS_MODULE=\"example.settings\"\n".to_string(),
        ),
        false => (
            "{{ pillar['app']['gunicorn'] }}",
            GUNICORN_CONF[GUNICORN_CONF.find("environment=").unwrap()..GUNICORN_CONF.find("stdout_logfile").unwrap()]
                .replace("{{ settings }}", "example.settings")
                .replace("{{ pillar['domain'] }}", "example.com"),
        ),
    };
    format!(
        "[program:example-server]\ncommand={command} --bind unix:{{{{ root }}}}/run/example/gunicorn.sock envapp:app\n\
         directory={{{{ pillar['app']['directory'] }}}}\nuser={{{{ salt['pillar.get']('vault:app_user') }}}}\nautostart=true\n\
         startsecs=1\n{environment}"
    )
}

#[test]
fn a_template_project_switched_to_vault_s_env_file_runs_with_every_secret() {
    use crate::common::server::{tools, Server, Sshd};
    if !common::have("rsync") || !std::path::Path::new("/usr/sbin/sshd").exists() {
        return common::require_in_ci("rsync and sshd");
    }
    let Some((tools, app)) = tools() else { return };
    let p = template_project();
    adopt(&p);
    p.vault(&["import", "staging", "--yes"]).success();
    for (k, v) in common::AWKWARD.iter().filter(|(k, _)| *k != "EMPTY") {
        p.set("staging", k, v);
    }
    let server = Server::start(&tools, &app);
    let sshd = Sshd::start(std::path::Path::new(&common::key("mallory_ed25519")));
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let env = std::fs::read_to_string(&env_sls).unwrap();
    let hosts = format!("hosts: ['root@127.0.0.1:{}']\n", sshd.port);
    std::fs::write(
        &env_sls,
        format!("{env}{hosts}{}", server.pillar_settings()),
    )
    .unwrap();
    // vault init mapped '*-staging' (the minion id vault gives) in the pillar top.
    let salt = p.root().join("conf/salt");
    std::fs::write(
        salt.join("top.sls"),
        "base:\n  '*':\n    - project.web.app\n    - vault\n",
    )
    .unwrap();
    std::fs::write(salt.join("project/web/app.sls"), TEMPLATE_APP_SLS).unwrap();
    let flags = server.provision_flags(&sshd);
    let provision = || {
        let mut args: Vec<&str> =
            vec!["provision", "staging", "--accept-new-host-key", "--approve"];
        args.extend(flags.iter().map(String::as_str));
        p.vault(&args)
    };

    // As the template had it: supervisor's environment= from the secrets loop breaks.
    std::fs::write(
        salt.join("project/web/gunicorn.conf"),
        template_program(false),
    )
    .unwrap();
    let out = provision();
    let exact = || {
        common::server::http_get(&server.root.path().join("run/example/gunicorn.sock")).is_some_and(
            |v| {
                common::AWKWARD
                    .iter()
                    .all(|(k, val)| *k == "EMPTY" || v["env"][k] == *val)
            },
        )
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        !out.0.status.success() || !exact(),
        "the loop carried every value: {}",
        out.stderr()
    );

    // The one line changed: the program starts through vault's env file.
    std::fs::write(
        salt.join("project/web/gunicorn.conf"),
        template_program(true),
    )
    .unwrap();
    let out = provision().success();
    let answer = server.ask(|v| {
        v["env"]["DJANGO_SETTINGS_MODULE"] == "example.settings"
            && v["env"]["PERCENT"] == "100%s %(here)x %%"
    });
    for (k, v) in common::AWKWARD.iter().filter(|(k, _)| *k != "EMPTY") {
        assert_eq!(answer["env"][k], *v, "{k} did not arrive exactly");
    }
    assert_eq!(answer["env"]["API_TOKEN"], "sk_live_0123456789abcdefghij");
    assert!(!out.stderr().contains("sk_live_0123456789abcdefghij"));
}

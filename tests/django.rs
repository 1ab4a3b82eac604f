//! A real Django app on a real PostgreSQL, end to end: a project made with
//! `django-admin startproject`, provisioned as root over loopback ssh, answering over
//! gunicorn's socket with what the database says to the role its env: settings name;
//! migrated through the manage wrapper; and a password rotated as an admin would.

use crate::common::postgres::{django_python, Postgres};
use crate::common::server::{tools, Server, Sshd, APP_USER};
use crate::common::{self, key, Project};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every character a naive layer trips on: `%` (supervisor, Python formats), both quotes
/// and a backslash (shell, SQL, libpq's conninfo), `$` and `#` (shell, env files), `,`
/// and `=` (supervisor's environment=, conninfo), a space, non-ASCII.
const FIRST_PASSWORD: &str = "p%s 100% it's \"q\" C:\\x\\n $HOME #h a,b=c é日本";
const NEW_PASSWORD: &str = "n%(x)s 'o' \"k\" \\\\ $(id) # x=y, ü späce";
const SECRET_KEY: &str = "k%s 'sq' \"dq\" \\ $PATH # , = ключ";

#[test]
fn a_django_app_on_postgresql_end_to_end() {
    let Some((tools, app)) = tools() else { return };
    let Some(python) = django_python(&app) else {
        return;
    };
    let Some(pg) = Postgres::find() else { return };
    let db = pg.database(FIRST_PASSWORD);
    assert_eq!(db.login(&python, FIRST_PASSWORD), Ok(db.name.clone()));

    let p = Project::new();
    let server = Server::start(&tools, &app);
    let site = start_project(&server, &app);
    let sshd = Sshd::start(Path::new(&key("mallory_ed25519")));
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        "hosts: []",
        &format!("hosts: ['root@127.0.0.1:{}']", sshd.port),
    );
    // The states' defaults but for where this server keeps things: the wsgi module is
    // the default, example.wsgi:application. Where the database is, is a setting (env:);
    // only the password and the key are secrets.
    let settings = format!(
        "vault:\n  app_user: {APP_USER}\n  paths:\n    supervisorctl: {ctl}\n\
         app:\n  directory: {site}\n  gunicorn: {gunicorn}\n  manage: {python} manage.py\n\
         env:\n  DB_NAME: {name}\n  DB_USER: {name}\n  DB_HOST: 127.0.0.1\n  DB_PORT: '{port}'\n",
        ctl = tools.join("supervisorctl").display(),
        site = site.display(),
        gunicorn = app.join("bin/gunicorn").display(),
        python = python.display(),
        name = db.name,
        port = pg.port,
    );
    std::fs::write(&env_sls, format!("{text}{settings}")).unwrap();
    p.set("staging", "SECRET_KEY", SECRET_KEY);
    p.set("staging", "DB_PASSWORD", FIRST_PASSWORD);

    // The first provision, as root: the app answers as the role, before any migration.
    let out = provision(&p, &sshd, &server, &["--accept-new-host-key"]);
    assert_hidden(&out);
    // The port is a setting, not a secret too short to redact: the closing table names
    // no such secret.
    let log = out.stderr();
    assert!(!log.contains("not redacted"), "{log}");
    let answer = ask(&server, |v| v["user"] == db.name.as_str());
    assert_eq!(answer["one"], 1);
    assert_eq!(answer["note"], serde_json::Value::Null, "not migrated yet");
    assert_eq!(answer["secret_key_sha256"], sha256(SECRET_KEY));

    // migrate through the manage wrapper the states installed, on the server as root: it
    // runs as the app user with the same environment, and the tables are the role's.
    let out = common::Run(
        std::process::Command::new(server.path("usr/local/bin/example-manage"))
            .args(["migrate", "--noinput"])
            .output()
            .unwrap(),
    )
    .success();
    assert!(
        out.stdout().contains("Applying notes.0001_initial... OK"),
        "{}",
        out.stdout()
    );
    assert_hidden(&out);
    assert_eq!(db.table_owner("notes_note"), db.name);
    let migrated = ask(&server, |v| v["note"] == "written by migrate");
    assert_eq!(migrated["user"], db.name.as_str());

    // Rotation: the admin changes the role's password. The running app's next
    // connection is refused (the password really is what lets it in) ...
    db.set_password(NEW_PASSWORD);
    assert!(db
        .login(&python, FIRST_PASSWORD)
        .is_err_and(|e| e.contains("password authentication failed")));
    let (status, _) = get(&server, "/db/").expect("the app answers");
    assert_eq!(status, 500, "the old password still let the app in");
    // ... until the member sets the new one and provisions: the program restarts and
    // connects with it.
    p.set("staging", "DB_PASSWORD", NEW_PASSWORD);
    let out = provision(&p, &sshd, &server, &[]);
    assert_hidden(&out);
    let rotated = ask(&server, |v| v["pid"] != migrated["pid"]);
    assert_eq!(rotated["user"], db.name.as_str());
    assert_eq!(rotated["note"], "written by migrate");
    assert_eq!(db.login(&python, NEW_PASSWORD), Ok(db.name.clone()));
    assert!(db.login(&python, FIRST_PASSWORD).is_err());
}

/// `django-admin startproject example` in the server's srv/example/app, from the app
/// venv, with tests/fixtures/django added: settings that read the secret key and the
/// database from the environment, and the notes app with its /db/ view.
fn start_project(server: &Server, app: &Path) -> PathBuf {
    let site = server.root.path().join("srv/example/app");
    std::fs::create_dir_all(&site).unwrap();
    common::Run(
        std::process::Command::new(app.join("bin/django-admin"))
            .args(["startproject", "example"])
            .arg(&site)
            .output()
            .unwrap(),
    )
    .success();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django");
    for (from, _) in common::files_under(&fixture.join("notes"), &["__pycache__"]) {
        let to = site.join(from.strip_prefix(&fixture).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, to).unwrap();
    }
    let settings = site.join("example/settings.py");
    let generated = std::fs::read_to_string(&settings).unwrap();
    let mut kept = without_setting(&generated, "SECRET_KEY");
    for name in ["DEBUG", "ALLOWED_HOSTS", "DATABASES"] {
        kept = without_setting(&kept, name);
    }
    let tail = std::fs::read_to_string(fixture.join("settings_tail.py")).unwrap();
    std::fs::write(&settings, format!("{kept}{tail}")).unwrap();
    let urls = site.join("example/urls.py");
    let text = std::fs::read_to_string(&urls).unwrap();
    std::fs::write(
        &urls,
        format!("{text}\nfrom notes.views import db  # noqa: E402\n\nurlpatterns += [path(\"db/\", db)]\n"),
    )
    .unwrap();
    site
}

/// `settings` without the assignment to `name` (one line, or a `{` block to its `}`);
/// panics if the generated file has none, so a changed template is seen.
fn without_setting(settings: &str, name: &str) -> String {
    let mut out = String::new();
    let (mut found, mut in_block) = (false, false);
    for line in settings.lines() {
        if in_block {
            in_block = line != "}";
        } else if line.starts_with(&format!("{name} = ")) {
            found = true;
            in_block = line.ends_with('{');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(found, "startproject's settings have no {name}: {settings}");
    out
}

/// `vault provision staging` against `sshd` into `server`, as root; it must succeed.
fn provision(p: &Project, sshd: &Sshd, server: &Server, extra: &[&str]) -> common::Run {
    let flags = server.provision_flags(sshd);
    let mut args: Vec<&str> = vec!["provision", "staging", "--approve"];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(extra);
    p.vault(&args).success()
}

/// Neither password nor the key in `out` (vault's output, or the manage wrapper's).
#[track_caller]
fn assert_hidden(out: &common::Run) {
    let log = format!("{}{}", out.stdout(), out.stderr());
    for secret in [FIRST_PASSWORD, NEW_PASSWORD, SECRET_KEY] {
        assert!(!log.contains(secret), "a secret in the output: {log}");
    }
}

fn sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// GET `path` over gunicorn's unix socket: the status and the body.
fn get(server: &Server, path: &str) -> Option<(u16, Vec<u8>)> {
    let socket = server.root.path().join("run/example/gunicorn.sock");
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = String::from_utf8_lossy(&buf[..head_end])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, buf[head_end + 4..].to_vec()))
}

/// The app's answer at /db/, waiting (30 s at most) for a 200 that `want` accepts.
fn ask(server: &Server, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Some((status, body)) = get(server, "/db/") {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                if status == 200 && want(&v) {
                    return v;
                }
            }
            last = Some((status, String::from_utf8_lossy(&body).into_owned()));
        }
        if start.elapsed() > Duration::from_secs(30) {
            let logs: String = common::files_under(&server.root.path().join("logs"), &[])
                .into_iter()
                .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned())
                .collect();
            panic!("the app never answered as expected; last: {last:?}\nlogs: {logs}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

//! Attacks on what issue 13 built, by a second helper who had not read the tests:
//! plaintext copies beside an import the first review's list left out, a secret the app
//! printed encoded (base64, hex) in the failed program's log tail, and a health path that
//! makes the check ask another server.

use crate::common::server::{free_port, tools, Server, Sshd};
use crate::common::{git, key, Project};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A plaintext secrets.sls shaped like the template's.
const PLAIN: &str = "secrets:\n  DB_PASSWORD: s3cr3t-Pa55word-value\n";

#[test]
fn attack_import_leaves_other_copies_of_the_plaintext() {
    // Copies of the plaintext that editors, cp --backup, and git mergetool leave beside
    // a file, none of them in the first review's list: the import would encrypt the file
    // and remove it, leaving the copy in the working tree (untracked, not ignored).
    for copy in [
        "secrets.sls.~1~",         // Emacs numbered backups, cp --backup=numbered
        "secrets.sls.save",        // nano, when it is killed
        ".secrets.sls.swn",        // vim's third swap file
        "secrets.sls.rej",         // patch
        "secrets_BACKUP_4242.sls", // git mergetool
        "secrets_LOCAL_4242.sls",  // git mergetool
        "secrets.sls.orig.1",      // a numbered .orig
        ".secrets.sls.kate-swp",   // Kate
        "secrets.sls.bak.2026",    // a dated backup
        ".secrets.sls.un~",        // listed: still refused
    ] {
        let p = Project::new();
        let dir = p.root().join("conf/pillar/staging");
        std::fs::write(dir.join("secrets.sls"), PLAIN).unwrap();
        std::fs::write(dir.join(copy), PLAIN).unwrap();
        let err = p.vault(&["import", "staging", "--yes"]).refused(2);
        assert!(err.contains(copy), "{copy}: {err}");
        assert!(
            dir.join("secrets.sls").exists() && !p.secrets("staging").exists(),
            "{copy}: the import went on"
        );
    }
    // What vault itself keeps beside it is no copy: a file vault writes is not refused.
    let p = Project::new();
    let dir = p.root().join("conf/pillar/staging");
    std::fs::write(dir.join("secrets.sls"), PLAIN).unwrap();
    std::fs::write(dir.join("secrets.ex"), "secrets:\n  DB_PASSWORD: example\n").unwrap();
    p.vault(&["import", "staging", "--yes"]).success();
}

/// A folder holding one WSGI app, `code`, readable by the app user.
fn app_dir(code: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("vault-atk13b-app-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.path().join("atkapp.py"), code).unwrap();
    d
}

/// The server's pillar settings with the app `atkapp:app` in `dir`, then `extra` lines
/// under `app:`.
fn settings(server: &Server, dir: &Path, extra: &str) -> String {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app");
    server
        .pillar_settings()
        .replace(&fixture.display().to_string(), &dir.display().to_string())
        .replace("wsgi: envapp:app", "wsgi: atkapp:app")
        + extra
}

fn staging_env(p: &Project, sshd: &Sshd, settings: &str) {
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let text = std::fs::read_to_string(&env_sls).unwrap().replace(
        "hosts: []",
        &format!("hosts: ['root@127.0.0.1:{}']", sshd.port),
    );
    std::fs::write(&env_sls, format!("{text}{settings}")).unwrap();
}

fn provision(p: &Project, server: &Server, sshd: &Sshd) -> crate::common::Run {
    let mut args: Vec<String> = ["provision", "staging", "--approve", "--accept-new-host-key"]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(server.provision_flags(sshd));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.vault(&args)
}

/// Provisions staging with `secrets` and the app in `app`, which fails to start: the run
/// must fail, and what vault showed (stdout and stderr) must hold the log tail's lines
/// that say each of `tail`. Returns what vault showed.
fn failed_start(
    (tools, venv): (&Path, &Path),
    app: &tempfile::TempDir,
    secrets: &[(&str, &str)],
    tail: &[&str],
) -> String {
    let p = Project::new();
    for (name, value) in secrets {
        p.set("staging", name, value);
    }
    let server = Server::start(tools, venv);
    let sshd = Sshd::start(Path::new(&key("alice_ed25519")));
    staging_env(&p, &sshd, &settings(&server, app.path(), ""));
    let run = provision(&p, &server, &sshd);
    let shown = format!("{}{}", run.stdout(), run.stderr());
    assert_ne!(run.code(), 0, "a failing app passed: {shown}");
    assert!(
        tail.iter().all(|t| shown.contains(t)),
        "no log tail in the table: {shown}"
    );
    shown
}

#[test]
fn attack_the_log_tail_shows_a_secret_base64_or_hex_encoded() {
    let Some((tools, venv)) = tools() else { return };
    // An app that fails at import, logging on the way down what careless apps log: an
    // HTTP Basic authorization header (base64 of user:password, so the password starts
    // at any offset of the encoding), the token's bytes in hex, and its base64.
    let app = app_dir(
        r#"import base64, os, sys
pw = os.environ["API_PASSWORD"]
tok = os.environ["API_TOKEN"]
basic = [base64.b64encode(f"{user}:{pw}".encode()).decode() for user in ("a", "ab", "abc")]
print("request headers: " + " ".join(f"Authorization: Basic {b}" for b in basic), file=sys.stderr)
print("token bytes: " + tok.encode().hex() + " TOKEN HEX: " + tok.encode().hex().upper(), file=sys.stderr)
print("token b64: " + base64.b64encode(tok.encode()).decode() + " urlsafe: " + base64.urlsafe_b64encode(b"?>" + tok.encode()).decode().rstrip("="), file=sys.stderr)
sys.stderr.flush()
os._exit(3)
"#,
    );
    let password = "hunter2-Correct>Horse?Battery";
    let token = "tok_9f8e7d6c5b4a~~??>>";
    let secrets = [("API_PASSWORD", password), ("API_TOKEN", token)];
    let shown = failed_start(
        (&tools, &venv),
        &app,
        &secrets,
        &["request headers", "token b64"],
    );
    let mut encoded: Vec<(String, String)> = Vec::new();
    for user in ["a", "ab", "abc"] {
        let b = b64(format!("{user}:{password}").as_bytes(), STANDARD);
        // The part of it that the user name's bytes do not reach.
        let skip = (user.len() + 1).div_ceil(3) * 4;
        encoded.push((format!("basic auth after {user}:"), b[skip..].to_string()));
    }
    let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
    encoded.push(("hex".into(), hex.clone()));
    encoded.push(("HEX".into(), hex.to_uppercase()));
    encoded.push(("base64".into(), b64(token.as_bytes(), STANDARD)));
    let mut prefixed = b"?>".to_vec();
    prefixed.extend_from_slice(token.as_bytes());
    let url = b64(&prefixed, URL_SAFE);
    encoded.push((
        "urlsafe base64".into(),
        url[4..].trim_end_matches('=').to_string(),
    ));
    for (how, text) in &encoded {
        // Any 12 characters of the encoding decode to 9 bytes of the secret.
        let probe = &text[..12.min(text.len())];
        assert!(
            !shown.contains(probe),
            "the secret, {how} ({probe}), is in vault's output:\n{shown}"
        );
    }
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= n {
                out.push(alphabet[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An HTTP server on 127.0.0.1:`port` that answers every GET with 200: anyone on the
/// server may run one on a port above 1024.
struct Impostor(Child);

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn impostor(port: u16) -> Impostor {
    let python = crate::common::python().unwrap();
    let child = Command::new(python)
        .args([
            "-c",
            "import http.server, sys\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')\n\
             \x20   def log_message(self, *a): pass\n\
             http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed().as_secs() < 20,
            "the impostor never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Impostor(child)
}

#[test]
fn attack_a_health_path_that_asks_another_server() {
    let Some((tools, venv)) = tools() else { return };
    // The app runs, but its health path fails (500). A health setting that reads as a
    // path to a reviewer, `@127.0.0.1:PORT/broken`, makes curl take everything before the
    // `@` for a user name, and ask the impostor instead: the check would pass.
    let app = app_dir(
        "def app(environ, start_response):\n    start_response('500 Internal Server Error', [('Content-Length', '0')])\n    return [b'']\n",
    );
    let (app_port, other) = (free_port(), free_port());
    let _impostor = impostor(other);
    let p = Project::new();
    p.set("staging", "API_TOKEN", "tok_9f8e7d6c5b4a");
    let server = Server::start(&tools, &venv);
    let sshd = Sshd::start(Path::new(&key("alice_ed25519")));
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let original = std::fs::read_to_string(&env_sls).unwrap();
    for (health, said) in [
        (
            format!("'@127.0.0.1:{other}/broken'"),
            "app: health must be a path",
        ),
        (
            format!("'127.0.0.1:{other}/'"),
            "app: health must be a path",
        ),
        // The honest path is asked of the program itself, which answers 500.
        ("/broken".to_string(), "answered 500"),
    ] {
        std::fs::write(&env_sls, &original).unwrap();
        let extra = format!("  bind: 127.0.0.1:{app_port}\n  health: {health}\n");
        staging_env(&p, &sshd, &settings(&server, app.path(), &extra));
        let run = provision(&p, &server, &sshd);
        let shown = format!("{}{}", run.stdout(), run.stderr());
        assert_ne!(run.code(), 0, "{health}: the health check passed:\n{shown}");
        assert!(shown.contains(said), "{health}: not said why: {shown}");
    }
}

#[test]
fn attack_gunicorn_cmd_args_chooses_the_code_the_program_runs() {
    let Some((tools, venv)) = tools() else { return };
    // gunicorn, which the states run, reads GUNICORN_CMD_ARGS as more of its command
    // line: `--pythonpath DIR` imports the app from a folder of the attacker's choosing
    // (`--config FILE` runs a Python file), as the app user, with every secret. As a
    // secret it is reviewed by no approval; as a setting of a templated env.sls, vault
    // does not read it. Either way it is a name that chooses the code that runs.
    let p = Project::new();
    let value = p.root().join("value");
    std::fs::write(&value, "--pythonpath /tmp").unwrap();
    let value = value.display().to_string();
    let set = p.vault(&["set", "staging", "GUNICORN_CMD_ARGS", "--from-file", &value]);
    assert_ne!(
        set.code(),
        0,
        "GUNICORN_CMD_ARGS taken as a secret: {}",
        set.stderr()
    );
    assert!(
        set.stderr().contains("GUNICORN_CMD_ARGS"),
        "{}",
        set.stderr()
    );

    let app = app_dir(
        "def app(environ, start_response):\n    start_response('200 OK', [('Content-Length', '2')])\n    return [b'ok']\n",
    );
    let evil = app_dir(&format!(
        "open({:?}, 'w').write('imported')\nfrom wsgiref.simple_server import demo_app as app\n",
        app.path().join("marker").display().to_string()
    ));
    // The app user writes the marker beside the honest app. A project of its own: in
    // the one above, a setting would also be a secret.
    let p = Project::new();
    std::fs::set_permissions(app.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    p.set("staging", "API_TOKEN", "tok_9f8e7d6c5b4a");
    let server = Server::start(&tools, &venv);
    let sshd = Sshd::start(Path::new(&key("alice_ed25519")));
    let env_sls = p.root().join("conf/pillar/staging/env.sls");
    let original = std::fs::read_to_string(&env_sls).unwrap();
    let args = format!("--pythonpath {}", evil.path().display());
    let project_sls = p.root().join("conf/pillar/project.sls");
    let project_text = std::fs::read_to_string(&project_sls).unwrap();
    let setting = format!("env:\n  GUNICORN_CMD_ARGS: '{args}'\n");
    // In env.sls, which vault reads; in project.sls, which only the states see merged.
    for in_env_sls in [true, false] {
        let extra = if in_env_sls {
            setting.clone()
        } else {
            String::new()
        };
        std::fs::write(&env_sls, &original).unwrap();
        staging_env(&p, &sshd, &(settings(&server, app.path(), "") + &extra));
        let other = if in_env_sls {
            String::new()
        } else {
            setting.clone()
        };
        std::fs::write(&project_sls, format!("{project_text}{other}")).unwrap();
        let run = provision(&p, &server, &sshd);
        let shown = format!("{}{}", run.stdout(), run.stderr());
        assert_ne!(
            run.code(),
            0,
            "in env.sls {in_env_sls}: GUNICORN_CMD_ARGS went through:\n{shown}"
        );
        assert!(
            shown.contains("GUNICORN_CMD_ARGS"),
            "in env.sls {in_env_sls}: {shown}"
        );
        assert!(
            !app.path().join("marker").exists(),
            "in env.sls {in_env_sls}: gunicorn imported the attacker's module"
        );
    }
}

/// `vault` in the project copy at `dir` (its own home, as another member's machine).
fn vault_at(dir: &Path, args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
    c.args(args)
        .current_dir(dir)
        .env("VAULT_IDENTITY", key("alice_ed25519"))
        .env("HOME", dir.join("home"))
        .env("XDG_STATE_HOME", dir.join("home/.local/state"))
        .env_remove("VISUAL")
        .env_remove("EDITOR")
        .stdin(Stdio::null());
    c
}

/// Where the race holds a run: in a state (after Salt read the pillar), or while Salt
/// reads the pillar, before it reads the secrets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hold {
    InAState,
    InThePillar,
}

/// v1 runs. A member provisions v3 and the run is slow (held as `hold` says); meanwhile
/// another member, on a branch still at v2 (v3's parent), provisions v2: the record
/// still says v1, so nothing stops it at rsync. Whichever way the two interleave, the
/// record must name what runs, and v2 must never be applied over v3.
fn race(hold: Hold) {
    let Some((tools, venv)) = tools() else { return };
    let p = Project::new();
    let server = Server::start(&tools, &venv);
    let sshd = Sshd::start(Path::new(&key("alice_ed25519")));
    let app = app_dir(
        "def app(environ, start_response):\n    start_response('200 OK', [('Content-Length', '2')])\n    return [b'ok']\n",
    );
    staging_env(&p, &sshd, &settings(&server, app.path(), ""));
    let at = |f: &str| server.path(f);
    let wait = |mark: &str, go: &str| {
        format!(
            "touch {m}; for i in $(seq 600); do [ -e {g} ] && break; sleep 0.1; done",
            m = at(mark),
            g = at(go)
        )
    };
    match hold {
        // v3's run waits in a state, once it has read its pillar.
        Hold::InAState => {
            std::fs::write(
                p.root().join("conf/salt/atkslow.sls"),
                format!(
                    "{{%- if salt['pillar.get']('secrets:API_TOKEN') == 'version-three-value' %}}\n\
                     atk_slow_state:\n  cmd.run:\n    - name: {}\n    - order: 1\n{{%- endif %}}\n",
                    wait("blocked", "go")
                ),
            )
            .unwrap();
            let top = p.root().join("conf/salt/top.sls");
            let text = std::fs::read_to_string(&top).unwrap();
            std::fs::write(
                &top,
                text.replace("    - project\n", "    - atkslow\n    - project\n"),
            )
            .unwrap();
        }
        // The first run once armed (v3's) waits while Salt reads the pillar, before the
        // secrets; the second (v2's) waits there too, its secrets in place, until v3's
        // has read them.
        Hold::InThePillar => {
            let (armed, first, second) = (at("armed"), at("first"), at("second"));
            let script = format!(
                "if [ -e {armed} ] && mkdir {first} 2>/dev/null; then {}; elif [ -e {armed} ] && mkdir {second} 2>/dev/null; then {}; fi",
                wait("blocked", "go"),
                wait("blocked2", "go2")
            );
            std::fs::write(
                p.root().join("conf/pillar/staging/slow.sls"),
                format!(
                    "{{%- do salt['cmd.run']({}, python_shell=True) %}}\nslow: done\n",
                    serde_json::to_string(&script).unwrap()
                ),
            )
            .unwrap();
            let top = p.root().join("conf/pillar/top.sls");
            let text = std::fs::read_to_string(&top).unwrap();
            let text = text.replace(
                "    - staging.env\n",
                "    - staging.env\n    - staging.slow\n",
            );
            std::fs::write(&top, text).unwrap();
        }
    }
    let secrets_env = at("etc/example/secrets.env");
    // Each version committed, as members share them.
    git(p.root(), &["init", "-q"]);
    std::fs::write(p.root().join(".gitignore"), "home/\n").unwrap();
    let commit = |v: &str| {
        p.set("staging", "API_TOKEN", v);
        git(p.root(), &["add", "-A"]);
        git(p.root(), &["commit", "-qm", v]);
    };
    commit("version-one-value");
    provision(&p, &server, &sshd).success();
    commit("version-two-value");
    // The other member's checkout, at v2.
    let other = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", p.root().display()))
        .arg(other.path())
        .status()
        .unwrap();
    assert!(copied.success());
    commit("version-three-value");
    std::fs::write(at("armed"), "").unwrap();

    let mut args: Vec<String> = ["provision", "staging", "--approve", "--accept-new-host-key"]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(server.provision_flags(&sshd));
    let spawn = |dir: &Path, home: &Path| {
        vault_at(dir, &args)
            .env("HOME", home)
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let until = |mark: &str, child: &mut Child| {
        while !Path::new(&at(mark)).exists() {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        true
    };
    let shown = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let mut a = spawn(p.root(), &p.home);
    if !until("blocked", &mut a) {
        panic!(
            "{hold:?}: v3's run ended before it was held:\n{}",
            shown(&a.wait_with_output().unwrap())
        );
    }
    let mut b = spawn(other.path(), &other.path().join("home"));
    if hold == Hold::InThePillar {
        // v2's secrets are in place; v3's run reads the pillar now.
        until("blocked2", &mut b);
        std::fs::write(at("go"), "").unwrap();
        let a = a.wait_with_output().unwrap();
        std::fs::write(at("go2"), "").unwrap();
        let b = b.wait_with_output().unwrap();
        check(hold, &a, &b, &secrets_env, &at, &other, &args);
    } else {
        let b = b.wait_with_output().unwrap();
        std::fs::write(at("go"), "").unwrap();
        let a = a.wait_with_output().unwrap();
        check(hold, &a, &b, &secrets_env, &at, &other, &args);
    }
}

/// After the race: the record names what runs, and v2 again is refused over v3.
fn check(
    hold: Hold,
    a: &std::process::Output,
    b: &std::process::Output,
    secrets_env: &str,
    at: &dyn Fn(&str) -> String,
    other: &tempfile::TempDir,
    args: &[String],
) {
    let shown = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let running = std::fs::read_to_string(secrets_env).unwrap();
    let record = std::fs::read_to_string(at("var/lib/vault/example/applied-staging")).unwrap();
    let context = format!(
        "{hold:?}\nv3's run ({:?}):\n{}\nv2's run ({:?}):\n{}\nrunning: {running}\nrecord: {record}",
        a.status,
        shown(a),
        b.status,
        shown(b)
    );
    // v3's run, which held the server, is not disturbed by the one refused.
    assert!(a.status.success(), "v3's run failed:\n{context}");
    // v2's run came while v3's held the server: refused, saying why.
    assert!(
        !b.status.success() && shown(b).contains("another provision is running on this server"),
        "v2's run was not refused as concurrent:\n{context}"
    );
    let serial = record.trim_end().rsplit(' ').next().unwrap_or_default();
    let value = match serial {
        "1" => "version-one-value",
        "2" => "version-two-value",
        "3" => "version-three-value",
        _ => panic!("a record vault does not write:\n{context}"),
    };
    assert!(
        running.contains(value),
        "the record names serial {serial}, another version runs:\n{context}"
    );
    let again = vault_at(other.path(), args).output().unwrap();
    let now = std::fs::read_to_string(secrets_env).unwrap();
    assert!(
        !(running.contains("version-three-value") && now.contains("version-two-value")),
        "v2 went over v3 after the race:\n{context}\nagain:\n{}",
        shown(&again)
    );
}

#[test]
fn attack_a_provision_while_another_holds_salt_is_refused() {
    race(Hold::InAState);
}

#[test]
fn attack_a_provision_that_swaps_the_secrets_while_another_reads_its_pillar() {
    race(Hold::InThePillar);
}

#[test]
fn attack_a_state_tree_named_etc_configures_a_dry_run_s_salt() {
    let Some((tools, venv)) = tools() else { return };
    // A dry run ships into a scratch root whose `etc` holds Salt's minion config, and
    // ships each extra state tree as a folder of its name there: a tree named `etc`
    // lands in Salt's config folder, and its `minion.d/*.conf` (no state file, nothing
    // any top includes) configures the run: here Salt's log goes where the tree says.
    let p = Project::new();
    p.set("staging", "API_TOKEN", "tok_9f8e7d6c5b4a");
    let server = Server::start(&tools, &venv);
    let sshd = Sshd::start(Path::new(&key("alice_ed25519")));
    let beside = tempfile::tempdir().unwrap();
    let tree = beside.path().join("etc");
    std::fs::create_dir_all(tree.join("minion.d")).unwrap();
    let planted = server.path("planted-by-the-tree");
    std::fs::write(
        tree.join("minion.d/zz.conf"),
        format!("log_file: {planted}\nlog_level_logfile: debug\n"),
    )
    .unwrap();
    let app = app_dir(
        "def app(environ, start_response):\n    start_response('200 OK', [('Content-Length', '2')])\n    return [b'ok']\n",
    );
    let extra = format!("  state_trees: [{}]\n", tree.display());
    let settings =
        settings(&server, app.path(), "").replacen("vault:\n", &format!("vault:\n{extra}"), 1);
    staging_env(&p, &sshd, &settings);
    let mut args: Vec<String> = [
        "provision",
        "staging",
        "--dry-run",
        "--approve",
        "--accept-new-host-key",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(server.provision_flags(&sshd));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = p.vault(&args);
    let shown = format!("{}{}", run.stdout(), run.stderr());
    assert_eq!(run.code(), 0, "the dry run failed:\n{shown}");
    assert!(
        shown.contains("dry run") || shown.contains("would"),
        "{shown}"
    );
    assert!(
        !Path::new(&planted).exists(),
        "the tree's minion.d configured Salt:\n{shown}"
    );
}

/// A developer account the states make, removed with its home when the test ends.
struct Account(String);

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.0])
            .status();
        let _ = Command::new("userdel").args(["-r", &self.0]).output();
    }
}

#[test]
fn attack_a_retired_developer_s_keys_in_another_authorized_keys_file() {
    let Some((tools, venv)) = tools() else { return };
    // The server's admin lists a second AuthorizedKeysFile (as some images do); a
    // login-only developer about to be retired copies their key there, and leaves an
    // ~/.ssh/rc. Retirement removes only the files it knows, so the key stays: the
    // account must still not let them in.
    let name = format!("atk13bret{}", std::process::id() % 100000);
    let account = Account(name.clone());
    let p = Project::new();
    p.set("staging", "API_TOKEN", "tok_9f8e7d6c5b4a");
    let server = Server::start(&tools, &venv);
    let sshd = Sshd::start(Path::new(&key("alice_ed25519")));
    std::fs::write(
        Path::new(&sshd.dropin_dir()).join("05-more-keys.conf"),
        "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys_extra\n",
    )
    .unwrap();
    let reload = Command::new("sh")
        .args(["-c", &sshd.reload_command()])
        .status()
        .unwrap();
    assert!(reload.success());
    let app = app_dir(
        "def app(environ, start_response):\n    start_response('200 OK', [('Content-Length', '2')])\n    return [b'ok']\n",
    );
    staging_env(&p, &sshd, &settings(&server, app.path(), ""));
    let public = std::fs::read_to_string(key("alice_ed25519.pub")).unwrap();
    let devs = p.root().join("conf/pillar/devs.sls");
    std::fs::write(
        &devs,
        format!(
            "users:\n  {name}:\n    groups: [login]\n    public_key:\n      - {}\n",
            public.trim()
        ),
    )
    .unwrap();
    provision(&p, &server, &sshd).success();
    let planted = sshd.login(
        &name,
        "cp .ssh/authorized_keys .ssh/authorized_keys_extra && echo 'touch $HOME/rc-ran' > .ssh/rc && echo planted",
    );
    assert!(
        String::from_utf8_lossy(&planted.stdout).contains("planted"),
        "the developer could not log in: {}",
        String::from_utf8_lossy(&planted.stderr)
    );
    std::fs::write(&devs, "users: {}\n").unwrap();
    provision(&p, &server, &sshd).success();
    let home = Path::new("/home").join(&name);
    assert!(home.join(".ssh/authorized_keys_extra").exists());
    let _ = std::fs::remove_file(home.join("rc-ran"));
    let login = sshd.login(&name, "echo in");
    assert!(
        !login.status.success() && !String::from_utf8_lossy(&login.stdout).contains("in"),
        "the retired developer logged in through the other keys file"
    );
    assert!(!home.join("rc-ran").exists(), "~/.ssh/rc ran");
    drop(account);
}

#[test]
fn attack_the_log_tail_shows_a_non_ascii_secret_as_json_writes_it() {
    let Some((tools, venv)) = tools() else { return };
    // Structured logging (json.dumps, whose default writes non-ASCII as \uXXXX) and a
    // bytes repr (b'\xc3\xa9') of a password with non-ASCII letters, on the way down.
    let app = app_dir(
        r#"import json, os, sys
pw = os.environ["DB_PASSWORD"]
print(json.dumps({"event": "connect", "password": pw}), file=sys.stderr)
print("auth with %r" % pw.encode(), file=sys.stderr)
sys.stderr.flush()
os._exit(3)
"#,
    );
    let password = "pässwörd-für-日本-db";
    let shown = failed_start(
        (&tools, &venv),
        &app,
        &[("DB_PASSWORD", password)],
        &["\"event\": \"connect\"", "auth with"],
    );
    for fragment in ["rd-f", "p\\u00e4", "p\\xc3\\xa4"] {
        assert!(
            !shown.contains(fragment),
            "the password ({fragment}) is in vault's output:\n{shown}"
        );
    }
}

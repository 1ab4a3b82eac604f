//! A member's provision, on the master: the shipped environment verified and decrypted
//! (refused before Salt runs when it is forged or older than what the master has
//! seen), every listed minion checked as accepted for it, the top files written, and
//! the states run on the minions through `salt`, `jobs` minions at a time. Each minion's
//! return is read from Salt's JSON as it comes (Salt exits 0 even when states failed),
//! every secret value redacted from what it says, and handed on as one [`Minion`].

use super::{check_minion_id, pillar, top, Config, Layout};
use crate::error::{Error, Result};
use crate::project::EnvName;
use crate::provision::pillar::EnvFile;
use crate::provision::salt_output::{self, Redactor};
use std::io::BufRead;
use std::process::{Command, Stdio};

/// What the member's run asks.
pub struct Request<'a> {
    pub env: &'a str,
    /// Minions at once (each batch one `salt` run).
    pub jobs: usize,
    pub dry_run: bool,
    /// Seconds Salt waits for a minion that does not answer.
    pub timeout: u64,
    /// What the member shipped, as they name it: the project, and the hash of the
    /// ciphertext. A run on anything else (a folder the master does not serve, an older
    /// copy left there) is refused.
    pub shipped: Option<(&'a str, &'a str)>,
}

/// How one minion went, every string in it redacted.
#[derive(Debug, Default, PartialEq)]
pub struct Minion {
    pub id: String,
    /// It returned, and every state succeeded.
    pub ok: bool,
    /// Why it did not return, or returned no states (a render error, a pillar error).
    pub error: Option<String>,
    pub changed: usize,
    pub failed: Vec<String>,
    /// What failed states said.
    pub details: Vec<String>,
    /// What states that changed something said.
    pub did: Vec<String>,
    pub seconds: f64,
}

/// The line prefix a minion's result goes out with, for the member's machine.
pub const MINION: &str = "vault-minion: ";

impl Minion {
    pub fn to_line(&self) -> String {
        let v = serde_json::json!({
            "id": self.id, "ok": self.ok, "error": self.error, "changed": self.changed,
            "failed": self.failed, "details": self.details, "did": self.did,
            "seconds": self.seconds,
        });
        format!("{MINION}{v}")
    }

    pub fn parse(line: &str) -> Option<Minion> {
        let v: serde_json::Value = serde_json::from_str(line.strip_prefix(MINION)?).ok()?;
        let texts = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Minion {
            id: v.get("id")?.as_str()?.to_string(),
            ok: v.get("ok")?.as_bool()?,
            error: v.get("error").and_then(|e| e.as_str()).map(String::from),
            changed: v.get("changed").and_then(|c| c.as_u64()).unwrap_or(0) as usize,
            failed: texts("failed"),
            details: texts("details"),
            did: texts("did"),
            seconds: v.get("seconds").and_then(|s| s.as_f64()).unwrap_or(0.0),
        })
    }
}

/// The run: `each` is told every minion as its return comes, then those that never
/// returned. Errors stop it before Salt runs.
pub fn apply(layout: &Layout, req: &Request, each: &mut dyn FnMut(Minion)) -> Result<()> {
    let config = Config::required(layout)?;
    let env = config.served(req.env)?;
    let mut store = pillar::open(layout, &config, &env)?;
    if let Some(shipped) = req.shipped {
        is_what_was_shipped(&store, &config, &env, shipped)?;
    }
    let doc = pillar::open_fresh(&mut store, &env)?;
    let minions = EnvFile::read(&store.project, &env)?.minions();
    check_minions(layout, &config, &env, &minions)?;
    top::write(&store.project, &config.project, &env, &minions)?;
    let values: Vec<&str> = doc.entries().iter().map(|e| e.value().expose()).collect();
    let redactor = Redactor::new(&values);
    let salt = config.salt_command("salt");
    let redact = |text: &str| redactor.stream().line(text);
    run_salt(
        layout,
        &salt,
        req,
        &env,
        &minions,
        &redact,
        &mut |id, ret| each(summary(&redactor, id, ret)),
    )
}

/// The member's run applies what they shipped: this master's project, and the very
/// ciphertext they have.
fn is_what_was_shipped(
    store: &crate::store::Store,
    config: &Config,
    env: &EnvName,
    (project, ciphertext): (&str, &str),
) -> Result<()> {
    if project != config.project {
        return Err(Error::new(format!(
            "this master serves project {} (its project_name when it was set up), not {project}: what was shipped is not what it serves",
            config.project
        ))
        .with_hint(format!(
            "put project_name: {} back in conf/pillar/project.sls, or set up a master for {project}",
            config.project
        )));
    }
    let on_master = store
        .read_env(env)?
        .map(|pair| crate::trust::ciphertext_hash(&pair.ciphertext));
    if on_master.as_deref() != Some(ciphertext) {
        return Err(Error::new(format!(
            "{env}: the secrets on the master are not the ones just shipped"
        ))
        .with_hint(format!("run `vault provision {env}` again")));
    }
    Ok(())
}

/// Every minion of `env.sls` is one vault accepted for `env`.
fn check_minions(
    layout: &Layout,
    config: &Config,
    env: &EnvName,
    minions: &[String],
) -> Result<()> {
    if minions.is_empty() {
        return Err(Error::usage(format!(
            "{env}: no minions: none under minions: in conf/pillar/{env}/env.sls"
        ))
        .with_hint(format!(
            "list its minions' IDs under minions: in conf/pillar/{env}/env.sls"
        )));
    }
    for m in minions {
        check_minion_id(m)?;
        match config.accepted(layout, m)? {
            Some(e) if e == env.as_str() => {}
            Some(other) => {
                return Err(Error::new(format!(
                    "{env}: minion {m} is accepted for {other}, not {env}: it gets nothing of {env}"
                ))
                .with_hint(format!("take {m} off minions: in conf/pillar/{env}/env.sls")))
            }
            None => {
                return Err(Error::new(format!(
                    "{env}: minion {m} has not been accepted for {env} on the master"
                ))
                .with_hint(format!(
                    "read its fingerprint on the minion, then `vault master accept {env} {m} --fingerprint FP`"
                )))
            }
        }
    }
    Ok(())
}

/// `salt` on the minions, `jobs` at a time, each return handed to `each` as it is
/// printed. The batches are vault's own: Salt's batch mode keeps every return in the
/// master's job folder (`.batch.p`), and a return may hold a secret.
fn run_salt(
    layout: &Layout,
    salt: &str,
    req: &Request,
    env: &EnvName,
    minions: &[String],
    redact: &dyn Fn(&str) -> String,
    each: &mut dyn FnMut(&str, &serde_json::Value),
) -> Result<()> {
    for batch in minions.chunks(req.jobs.max(1)) {
        let mut seen: Vec<String> = Vec::new();
        let mut said = String::new();
        // A minion whose return never came (Salt's CLI can miss one on a busy master,
        // as one reconnecting) is asked once more; state.apply is idempotent.
        for _ in 0..2 {
            let missing: Vec<String> = batch
                .iter()
                .filter(|m| !seen.contains(m))
                .cloned()
                .collect();
            if missing.is_empty() {
                break;
            }
            said = run_batch(layout, salt, req, env, &missing, redact, &mut |id, ret| {
                // Only the minions asked, once: nothing else may stand for one of them.
                if missing.iter().any(|m| m == id) && !seen.iter().any(|m| m == id) {
                    seen.push(id.to_string());
                    each(id, ret);
                }
            })?;
        }
        for id in batch.iter().filter(|m| !seen.contains(m)) {
            let why = match said.is_empty() {
                true => "did not return (is its salt-minion running?)".to_string(),
                false => format!("did not return (is its salt-minion running?); salt said: {said}"),
            };
            each(id, &serde_json::Value::String(why));
        }
    }
    Ok(())
}

/// One `salt` run on `minions`; the last line it said on its standard error.
fn run_batch(
    layout: &Layout,
    salt: &str,
    req: &Request,
    env: &EnvName,
    minions: &[String],
    redact: &dyn Fn(&str) -> String,
    each: &mut dyn FnMut(&str, &serde_json::Value),
) -> Result<String> {
    let mut cmd = Command::new(salt);
    cmd.arg("-c")
        .arg(layout.salt_config_dir())
        .args([
            "--out",
            "json",
            "--out-indent",
            "-1",
            "--no-color",
            "--show-jid",
        ])
        .arg(format!("--timeout={}", req.timeout))
        .args(["-L", &minions.join(","), "state.apply"])
        .arg(format!("saltenv={env}"))
        .arg(format!("pillarenv={env}"));
    if req.dry_run {
        cmd.arg("test=True");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("cannot run {salt} on the master: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut buf);
        buf
    });
    let mut reader = Documents::default();
    let mut jid: Option<String> = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(j) = line
            .strip_prefix("jid: ")
            .filter(|j| j.bytes().all(|b| b.is_ascii_digit()))
        {
            jid = Some(j.to_string());
        }
        if let Some(doc) = reader.line(&line) {
            for (id, ret) in doc.as_object().into_iter().flatten() {
                match authentic(layout, jid.as_deref(), id, ret) {
                    true => each(id, ret),
                    false => each(id, &serde_json::Value::String(FORGED.into())),
                }
            }
        }
    }
    if let Some(j) = &jid {
        let _ = std::fs::remove_dir_all(layout.returns().join(j));
    }
    let status = child
        .wait()
        .map_err(|e| Error::new(format!("{salt}: {e}")))?;
    let err = errors.join().unwrap_or_default();
    let why = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    let why = salt_output::visible(&redact(why.trim()));
    if !status.success() && reader.docs == 0 && !why.contains("did not return") {
        return Err(Error::new(format!(
            "{salt} on the master exited with {status}: {why}"
        )));
    }
    Ok(why)
}

/// What a minion's row says when Salt's CLI printed a return the master has no record
/// of it sending: an event another minion fired in its name.
const FORGED: &str = "the return Salt printed for it is not one it sent (the master has no record of it): another minion may have forged it";

/// Whether minion `id`'s return `ret` is one the master received from it: vault's job
/// cache records the digest of each authenticated return (see `files/vault_jobs.py`),
/// a moment after Salt's CLI may have printed it. A string (Salt's own "did not
/// return") needs no record.
fn authentic(layout: &Layout, jid: Option<&str>, id: &str, ret: &serde_json::Value) -> bool {
    if ret.is_string() {
        return true;
    }
    let (Some(jid), true) = (jid, check_minion_id(id).is_ok()) else {
        return false;
    };
    let want = crate::trust::ciphertext_hash(states_summary(ret).as_bytes());
    let record = layout.returns().join(jid).join(id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(have) = std::fs::read_to_string(&record) {
            return format!("sha256:{}", have.trim()) == want;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a return says of each state, as `files/vault_jobs.py` writes it: its key, its
/// result, whether it changed something; never a value.
fn states_summary(ret: &serde_json::Value) -> String {
    use serde_json::Value;
    let Some(states) = ret.as_object().filter(|o| !o.is_empty()) else {
        return "not states\n".into();
    };
    let mut keys: Vec<&String> = states.keys().collect();
    keys.sort();
    let mut out = String::new();
    for key in keys {
        let state = &states[key];
        let result = match state.get("result") {
            Some(Value::Bool(true)) => "true",
            Some(Value::Bool(false)) => "false",
            _ => "null",
        };
        let changed = match state.get("changes") {
            Some(Value::Object(m)) => !m.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::String(t)) => !t.is_empty(),
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            _ => false,
        };
        out.push_str(&format!(
            "{key}\0{result}\0{}\n",
            if changed { "c" } else { "-" }
        ));
    }
    out
}

/// Salt's JSON documents in its output, one a line (`--out-indent -1`) or spread over
/// lines; other lines skipped.
#[derive(Default)]
struct Documents {
    buf: String,
    docs: usize,
}

impl Documents {
    fn line(&mut self, line: &str) -> Option<serde_json::Value> {
        if self.buf.is_empty() && !line.starts_with('{') {
            return None;
        }
        self.buf.push_str(line);
        self.buf.push('\n');
        if !line.ends_with('}') {
            return None;
        }
        let doc = serde_json::from_str::<serde_json::Value>(&self.buf).ok()?;
        self.buf.clear();
        self.docs += 1;
        Some(doc)
    }
}

/// One minion's return, read and redacted.
fn summary(r: &Redactor, id: &str, ret: &serde_json::Value) -> Minion {
    let clean = |s: &str| -> String {
        let mut stream = r.stream();
        let lines: Vec<String> = s
            .lines()
            .map(|l| salt_output::visible(&stream.line(l)))
            .collect();
        lines.join(" / ")
    };
    let mut m = Minion {
        id: clean(id),
        ..Minion::default()
    };
    let Some(states) = ret.as_object().filter(|o| !o.is_empty()) else {
        // A render or pillar error comes as a list of strings; no return as a string.
        let text = match ret {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| s.to_string())
                })
                .collect::<Vec<_>>()
                .join("; "),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.error = Some(clean(&text));
        return m;
    };
    let mut ordered: Vec<(&String, &serde_json::Value)> = states.iter().collect();
    ordered.sort_by_key(|(_, s)| s.get("__run_num__").and_then(|n| n.as_u64()).unwrap_or(0));
    for (key, s) in ordered {
        let name = s
            .get("__id__")
            .and_then(|v| v.as_str())
            .unwrap_or(key.as_str());
        let comment = match s.get("comment") {
            Some(serde_json::Value::String(c)) => c.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let changed = s
            .get("changes")
            .and_then(|c| c.as_object())
            .is_some_and(|c| !c.is_empty());
        m.seconds += s.get("duration").and_then(|d| d.as_f64()).unwrap_or(0.0) / 1000.0;
        match s.get("result") {
            Some(serde_json::Value::Bool(false)) => {
                m.failed.push(clean(name));
                m.details
                    .push(format!("{}: {}", clean(name), clean(&comment)));
            }
            Some(serde_json::Value::Null) => {
                m.did.push(format!("{}: {}", clean(name), clean(&comment)))
            }
            _ if changed => {
                m.changed += 1;
                m.did.push(format!("{}: {}", clean(name), clean(&comment)));
            }
            _ => {}
        }
    }
    m.ok = m.failed.is_empty();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minion_s_return_is_read_and_redacted() {
        let r = Redactor::new(&["hunter2-secret-value"]);
        let ret = serde_json::json!({
            "file_|-a_|-/x_|-managed": {"__id__": "a", "result": true, "changes": {"diff": "x"},
                "comment": "wrote hunter2-secret-value", "duration": 1500.0, "__run_num__": 0},
            "cmd_|-b_|-x_|-run": {"__id__": "b", "result": false, "changes": {},
                "comment": "failed:\nhunter2-secret-value\x1b[31m", "duration": 500.0, "__run_num__": 1},
            "file_|-c_|-/y_|-managed": {"__id__": "c", "result": true, "changes": {},
                "comment": "unchanged", "__run_num__": 2},
        });
        let m = summary(&r, "web1", &ret);
        assert_eq!(m.changed, 1);
        assert_eq!(m.failed, ["b"]);
        assert!(!m.ok);
        assert_eq!(m.did, ["a: wrote [redacted]"]);
        assert_eq!(m.details, ["b: failed: / [redacted]?[31m"]);
        assert!((m.seconds - 2.0).abs() < 1e-9);
        let back = Minion::parse(&m.to_line()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn errors_and_no_returns_are_failures() {
        let r = Redactor::new(&[]);
        let m = summary(&r, "web1", &serde_json::json!(["Pillar failed to render"]));
        assert!(!m.ok);
        assert_eq!(m.error.as_deref(), Some("Pillar failed to render"));
        let m = summary(
            &r,
            "web2",
            &serde_json::json!("Minion did not return. [No response]"),
        );
        assert!(!m.ok && m.error.is_some());
    }

    #[test]
    fn documents_come_one_a_line_or_over_lines() {
        let mut d = Documents::default();
        assert!(d.line("Executing run on ['web1']").is_none());
        assert!(d.line("{\"web1\": {}}").is_some());
        assert!(d.line("{").is_none());
        assert!(d.line("  \"web2\": {\"x\": \"}\"}").is_none());
        assert!(d.line("}").is_some());
        assert_eq!(d.docs, 2);
    }
}

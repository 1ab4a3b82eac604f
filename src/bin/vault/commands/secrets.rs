//! The secrets themselves: `edit`, `set`, `rotate`, `unset`, `get`, `show`, `exec` and
//! `export`.
//! A value comes in only from a file, standard input or a hidden prompt, never argv.

use crate::output::{report, write_stdout, Ui};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use vault::document::{self, Document, Entry};
use vault::error::{Error, Result};
use vault::export::{self, Format};
use vault::fs;
use vault::ops::rotate::{self, NewValues};
use vault::ops::{edit, exec};
use vault::project::EnvName;
use vault::secret::{SecretBuf, SecretBytes, SecretValue};
use vault::store::{self, Store, Written};

pub fn edit(ui: &Ui, store: &mut Store, env: &str, allow_disk: bool) -> Result<i32> {
    let env = store.project.environment(env)?;
    let mut saved = 0;
    let mut empty_first = false;
    // The editor runs inside the write, under the lock: another writer waits rather
    // than being lost.
    let report = store.modify(&env, |current| {
        let original = match &current {
            Some(doc) => SecretBytes::new(doc.text().to_vec()),
            None => Document::template(env.as_str()),
        };
        let allowed = current
            .as_ref()
            .map(|d| d.allowed().clone())
            .unwrap_or_default();
        let had = current.as_ref().map(|d| d.entries().len());
        drop(current);
        match edit::run(env.as_str(), &original, &allowed, allow_disk, ui)? {
            edit::Outcome::Unchanged => {
                empty_first = had.is_none();
                Ok(None)
            }
            edit::Outcome::Changed(doc) if doc.entries().is_empty() => match had {
                // Nothing to keep: a new environment is not founded on an empty edit.
                None | Some(0) => {
                    empty_first = had.is_none();
                    Ok(None)
                }
                Some(n) => confirm_emptying(&env, n).map(|()| Some(doc)),
            },
            edit::Outcome::Changed(doc) => {
                saved = doc.entries().len();
                Ok(Some(doc))
            }
        }
    })?;
    match report.written {
        Written::Unchanged if empty_first => ui.note(&format!(
            "{env}: the document holds no secret, so nothing was written; add one as `  NAME: value` under `secrets:`"
        )),
        Written::Unchanged => ui.note(&format!("{env}: no changes")),
        Written::Changed => ui.note(&format!(
            "{env}: saved {saved} secret(s), encrypted to {}",
            report.members.join(", ")
        )),
    }
    ui.roster(&env, &report);
    Ok(0)
}

/// An edit that leaves none of an environment's `had` secrets (a slip of the editor as
/// often as a wish): saved only when the person at a terminal says so.
fn confirm_emptying(env: &EnvName, had: usize) -> Result<()> {
    let refuse = || {
        Error::new(format!(
            "{env}: the edit removes every secret ({had}); nothing was saved"
        ))
        .with_hint(format!(
            "to empty {env} on purpose, run `vault edit {env}` at a terminal and confirm, or `vault unset {env} NAME` for each"
        ))
    };
    if !std::io::stdin().is_terminal() {
        return Err(refuse());
    }
    crate::output::write_stderr(&format!(
        "vault: {env}: this edit removes all {had} secret(s). Save it? [y/N] "
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::new(format!("cannot read the answer: {e}")))?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(refuse()),
    }
}

/// Reads a value for `set`: from a file exactly, or from standard input.
fn read_value(name: &str, from_file: Option<PathBuf>, raw: bool) -> Result<SecretValue> {
    let bytes = match from_file {
        Some(path) => SecretBytes::new(
            fs::read_limited(&path, document::MAX_DOCUMENT_BYTES)?
                .ok_or_else(|| Error::new(format!("{} does not exist", path.display())))?,
        ),
        None if std::io::stdin().is_terminal() => prompt_value(name, false)?,
        None => read_stdin(raw)?,
    };
    checked_text(name, bytes)
}

/// Asks for `name`'s value with hidden input; with `confirm`, twice, and the two must match.
fn prompt_value(name: &str, confirm: bool) -> Result<SecretBytes> {
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(|v| SecretBytes::new(v.into_bytes()))
            .map_err(|e| Error::new(format!("cannot read the value: {e}")))
    };
    let value = ask(format!("Value for {name} (input hidden): "))?;
    if confirm && ask(format!("Value for {name} again, to confirm: "))?.expose() != value.expose() {
        return Err(Error::new(format!(
            "{name}: the two values typed differ; nothing written"
        )));
    }
    Ok(value)
}

/// Standard input, whole; one final newline (or CRLF) dropped unless `raw`.
fn read_stdin(raw: bool) -> Result<SecretBytes> {
    let mut buf = SecretBytes::new(Vec::with_capacity(8192));
    std::io::stdin()
        .take(document::MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(buf.expose_mut())
        .map_err(|e| Error::new(format!("cannot read standard input: {e}")))?;
    if !raw && buf.expose().ends_with(b"\n") {
        let v = buf.expose_mut();
        v.pop();
        if v.ends_with(b"\r") {
            v.pop();
        }
    }
    Ok(buf)
}

/// `bytes` as a value: within the size limit, and UTF-8 text.
fn checked_text(name: &str, bytes: SecretBytes) -> Result<SecretValue> {
    if bytes.expose().len() > document::MAX_DOCUMENT_BYTES {
        return Err(Error::new(format!(
            "{name}: the value is over the limit of {} bytes",
            document::MAX_DOCUMENT_BYTES
        )));
    }
    match std::str::from_utf8(bytes.expose()) {
        Ok(s) => Ok(SecretValue::new(s.to_owned())),
        Err(_) => Err(
            Error::new(format!("{name}: the value is not valid UTF-8 text"))
                .with_hint("store binary data base64-encoded"),
        ),
    }
}

pub fn set(
    ui: &Ui,
    store: &mut Store,
    env: &str,
    name: &str,
    from_file: Option<PathBuf>,
    raw: bool,
) -> Result<i32> {
    let env = store.project.environment(env)?;
    document::check_name_allowing(env.as_str(), name, None, &store.allowed_names(&env))?;
    let value = read_value(name, from_file, raw)?;
    document::check_value(env.as_str(), name, value.expose())?;
    let mut layout_lost = false;
    let report = store.modify(&env, |doc| {
        let doc = store::or_empty(&env, doc);
        if doc.get(name) == Some(&value) {
            return Ok(None);
        }
        let (new, kept) = doc.with_set(env.as_str(), name, &value)?;
        layout_lost = !kept;
        Ok(Some(new))
    })?;
    if layout_lost {
        ui.warn(&format!(
            "{env}: the document's layout could not be kept; it was rewritten in canonical form"
        ));
    }
    ui.roster(&env, &report);
    match report.written {
        Written::Changed => ui.note(&format!("{env}: set {name}")),
        Written::Unchanged => ui.note(&format!(
            "{env}: {name} already has that value; nothing written"
        )),
    }
    Ok(0)
}

/// `vault rotate`: new values for ENV's named (or exposed) secrets, in one write; then
/// what still needs rotating, and the next command.
pub fn rotate(
    ui: &Ui,
    store: &mut Store,
    env: &str,
    names: &[String],
    generate: Option<usize>,
) -> Result<i32> {
    if let Some(length) = generate {
        rotate::check_length(length)?;
    }
    let targets = rotate::targets(store, env, names)?;
    let env = &targets.env;
    let listed: Vec<&str> = targets.names.iter().map(|t| t.name.as_str()).collect();
    let values = match generate {
        Some(length) => NewValues::Generate { length },
        None => NewValues::Given(rotation_values(env, &listed)?),
    };
    if targets.all_exposed {
        ui.note(&format!(
            "{env}: rotating the exposed: {}",
            listed.join(", ")
        ));
    }
    let done = rotate::rotate(store, &targets, values)?;
    ui.roster(env, &done.report);
    let how = match generate {
        Some(length) => format!(" (generated, {length} letters and digits each)"),
        None => String::new(),
    };
    let serial = done
        .serial
        .map(|s| format!("; version {s}"))
        .unwrap_or_default();
    ui.note(&format!(
        "{env}: rotated {}{how}{serial}",
        done.names.join(", ")
    ));
    for name in &done.not_exposed {
        ui.note(&format!(
            "{env}: {name} was not exposed; rotated all the same"
        ));
    }
    for (other, exposed) in &done.still_exposed {
        let left: Vec<String> = exposed
            .iter()
            .map(|x| format!("{} (to {} since {})", x.name, x.member, x.since))
            .collect();
        match (other == env, left.is_empty()) {
            (true, true) => ui.note(&format!("{env}: nothing left exposed")),
            (false, true) => {}
            (_, false) => ui.warn(&format!(
                "{other}: still exposed: {}: `vault rotate {other}`",
                left.join(", ")
            )),
        }
    }
    ui.note(&format!(
        "next: `vault provision {env}` puts the new values on its servers"
    ));
    Ok(0)
}

/// One value per name, read as `set` reads one: standard input for a single name, or a
/// hidden prompt per name (asked twice) at a terminal.
fn rotation_values(env: &EnvName, names: &[&str]) -> Result<Vec<SecretValue>> {
    let terminal = std::io::stdin().is_terminal();
    if !terminal && names.len() > 1 {
        return Err(Error::new(format!(
            "{env}: standard input gives one value, and {} secrets are to be rotated ({}); nothing rotated",
            names.len(),
            names.join(", ")
        ))
        .with_hint(format!(
            "`vault rotate {env} --generate` makes each value, or name one secret: `printf %s \"$VALUE\" | vault rotate {env} NAME`; at a terminal each is asked for"
        )));
    }
    names
        .iter()
        .map(|name| {
            let bytes = match terminal {
                true => prompt_value(name, true)?,
                false => read_stdin(false)?,
            };
            let value = checked_text(name, bytes)?;
            if value.expose().is_empty() {
                return Err(Error::new(format!(
                    "{env}: {name}: the new value is empty; nothing rotated"
                ))
                .with_hint("give a value, or `--generate` one"));
            }
            Ok(value)
        })
        .collect()
}

pub fn unset(ui: &Ui, store: &mut Store, env: &str, name: &str) -> Result<i32> {
    let env = store.project.environment(env)?;
    document::check_name_allowing(env.as_str(), name, None, &store.allowed_names(&env))?;
    let mut missing = false;
    let mut names: Vec<String> = Vec::new();
    let report = store.modify(&env, |doc| {
        let Some(doc) = doc else {
            missing = true;
            return Ok(None);
        };
        match doc.with_unset(env.as_str(), name)? {
            Some((new, _)) => Ok(Some(new)),
            None => {
                missing = true;
                names = doc.entries().iter().map(|e| e.name().to_string()).collect();
                Ok(None)
            }
        }
    })?;
    if missing {
        return Err(
            Error::new(format!("{env}: no secret named {name}; nothing changed"))
                .with_hint(names_hint(&env, name, &names)),
        );
    }
    ui.roster(&env, &report);
    ui.note(&format!("{env}: removed {name}"));
    Ok(0)
}

pub fn show(store: &mut Store, env: &str, values: bool, json: bool) -> Result<i32> {
    let env = store.project.environment(env)?;
    let doc = store.open(&env)?;
    if json {
        write_stdout(show_json(&env, &doc, values)?.expose())?;
    } else {
        write_stdout(show_text(&doc, values).as_bytes())?;
    }
    Ok(0)
}

/// A buffer large enough for the whole listing, so that it never grows: growing would
/// leave copies of the values behind, unzeroed.
fn listing_capacity(doc: &Document, values: bool) -> usize {
    64 + doc
        .entries()
        .iter()
        .map(|e| {
            e.name().len() * 2
                + 8
                + if values {
                    e.value().expose().len() * 10
                } else {
                    0
                }
        })
        .sum::<usize>()
}

/// One name a line; with values, as `NAME: "VALUE"` (double-quoted YAML: one line per
/// secret, exact and unambiguous).
fn show_text(doc: &Document, values: bool) -> SecretBuf {
    let mut out = SecretBuf::new(String::with_capacity(listing_capacity(doc, values)));
    for e in doc.entries() {
        out.push_str(e.name());
        if values {
            out.push_str(": ");
            document::push_double_quoted(&mut out, e.value().expose(), false);
        }
        out.push('\n');
    }
    out
}

/// `{"environment":..,"names":[..]}`, with `"secrets":{..}` in the document's order when
/// values are asked for; serialized straight into a zeroed-on-drop buffer, so no value
/// is copied anywhere else.
fn show_json(env: &EnvName, doc: &Document, values: bool) -> Result<SecretBytes> {
    let mut out = SecretBytes::new(Vec::with_capacity(listing_capacity(doc, values)));
    let listing = Listing {
        env: env.as_str(),
        entries: doc.entries(),
        values,
    };
    let mut ser = serde_json::Serializer::with_formatter(out.expose_mut(), Escapes);
    listing
        .serialize(&mut ser)
        .map_err(|e| Error::new(format!("cannot write the listing: {e}")))?;
    out.expose_mut().push(b'\n');
    Ok(out)
}

/// What `show --json` prints.
struct Listing<'a> {
    env: &'a str,
    entries: &'a [Entry],
    values: bool,
}

impl Serialize for Listing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("environment", self.env)?;
        let names: Vec<&str> = self.entries.iter().map(|e| e.name()).collect();
        map.serialize_entry("names", &names)?;
        if self.values {
            map.serialize_entry("secrets", &Values(self.entries))?;
        }
        map.end()
    }
}

/// The secrets as one object, in the document's order.
struct Values<'a>(&'a [Entry]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for e in self.0 {
            map.serialize_entry(e.name(), e.value().expose())?;
        }
        map.end()
    }
}

/// Compact JSON escaped as `vault export --format json` escapes (`\u0008` and `\u000c`
/// rather than `\b` and `\f`), so both print a value the same way.
struct Escapes;

impl serde_json::ser::Formatter for Escapes {
    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::{CharEscape, CompactFormatter};
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(w, other),
        }
    }
}

pub fn get(store: &mut Store, env: &str, name: &str) -> Result<i32> {
    let env = store.project.environment(env)?;
    let doc = store.open(&env)?;
    let value = lookup(&doc, &env, name)?;
    write_stdout(value.expose().as_bytes())?;
    Ok(0)
}

/// Runs the command and returns its exit status; vault's own output stays on stderr.
pub fn exec(
    ui: &Ui,
    store: &mut Store,
    env: &str,
    clean: bool,
    command: &[OsString],
) -> Result<i32> {
    exec::check_command(command)?;
    let env = store.project.environment(env)?;
    let doc = store.open(&env)?;
    let Some((program, args)) = command.split_first() else {
        unreachable!("check_command refuses an empty command")
    };
    let (err, status) = exec::exec(&doc, program, args, clean, |name| {
        ui.warn(&format!(
            "{name} is already set in the environment; the secret from {env} overrides it"
        ))
    });
    report(&err);
    Ok(status)
}

pub fn export(store: &mut Store, env: &str, format: Format, output: Option<&Path>) -> Result<i32> {
    let env = store.project.environment(env)?;
    let doc = store.open(&env)?;
    let out = export::render(format, env.as_str(), doc.entries())?;
    match output {
        Some(path) => fs::write_atomic(path, out.expose(), fs::Mode::Private).map(drop)?,
        None => write_stdout(out.expose())?,
    }
    Ok(0)
}

fn lookup<'d>(doc: &'d Document, env: &EnvName, name: &str) -> Result<&'d SecretValue> {
    document::check_name_syntax(env.as_str(), name, None)?;
    doc.get(name).ok_or_else(|| {
        let names: Vec<String> = doc.entries().iter().map(|e| e.name().to_string()).collect();
        Error::new(format!("{env}: no secret named {name}"))
            .with_hint(names_hint(env, name, &names))
    })
}

/// For a name `env` does not hold: the nearest one it does, and where to see them all.
fn names_hint(env: &EnvName, name: &str, names: &[String]) -> String {
    match vault::project::closest(name, names.iter().map(String::as_str)) {
        Some(near) => format!("did you mean {near}? (`vault show {env}` lists the names)"),
        None => format!("`vault show {env}` lists the names"),
    }
}

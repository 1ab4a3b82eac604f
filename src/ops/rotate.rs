//! `vault rotate`: give secrets (by default the exposed ones) new values in one signed
//! write, generated from the OS's random source or given by the caller, and say what
//! still needs a new value.

use crate::document;
use crate::error::{Error, Result};
use crate::keys::recipients;
use crate::manifest::Exposure;
use crate::project::{self, EnvName};
use crate::secret::{SecretBytes, SecretValue};
use crate::store::{self, Store, WriteReport};

/// The shortest and longest value `generate` makes.
pub const MIN_LENGTH: usize = 16;
pub const MAX_LENGTH: usize = 1024;
pub const DEFAULT_LENGTH: usize = 32;

/// Letters and digits only: nothing any export format, shell, URL or config file
/// quotes or escapes (no quote, `%`, `$`, `#`, `,`, `=`, backslash or space).
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A secret to rotate, and whom its current value is exposed to (empty: not exposed).
pub struct Target {
    pub name: String,
    pub exposed_to: Vec<String>,
}

/// What `rotate` will give new values to, found before any value is asked for.
pub struct Targets {
    pub env: EnvName,
    pub names: Vec<Target>,
    /// True when no name was given and the exposed ones were taken.
    pub all_exposed: bool,
}

/// Where the new values come from.
pub enum NewValues {
    /// Random, of this many characters from [`ALPHABET`].
    Generate { length: usize },
    /// One per target, in order.
    Given(Vec<SecretValue>),
}

/// What a rotation did.
pub struct Rotated {
    pub env: EnvName,
    pub names: Vec<String>,
    /// Rotated at the user's word though nothing exposed them.
    pub not_exposed: Vec<String>,
    pub report: WriteReport,
    /// The serial of the version written.
    pub serial: Option<u64>,
    /// Every environment's exposures still standing after the write (the rotated one first).
    pub still_exposed: Vec<(EnvName, Vec<Exposure>)>,
}

/// The secrets of `env` to rotate: `names`, each of which must exist, or with none every
/// exposed one. Refused (nothing asked, nothing written) for an unknown name, with the
/// nearest existing one, or when nothing is exposed.
pub fn targets(store: &mut Store, env: &str, names: &[String]) -> Result<Targets> {
    let env = store.project.environment(env)?;
    let (doc, manifest) = store.open_signed(&env)?;
    let exposed = manifest.map(|m| m.exposed).unwrap_or_default();
    let exposed_to = |name: &str| -> Vec<String> {
        exposed
            .iter()
            .filter(|x| x.name == name)
            .map(|x| x.member.clone())
            .collect()
    };
    let existing: Vec<&str> = doc.entries().iter().map(|e| e.name()).collect();
    let all_exposed = names.is_empty();
    let chosen: Vec<String> = if all_exposed {
        existing
            .iter()
            .filter(|n| exposed.iter().any(|x| x.name == **n))
            .map(|n| n.to_string())
            .collect()
    } else {
        let mut chosen: Vec<String> = Vec::new();
        for name in names {
            crate::document::check_name_syntax(env.as_str(), name, None)?;
            if !existing.contains(&name.as_str()) {
                return Err(unknown_name(&env, name, &existing));
            }
            if !chosen.contains(name) {
                chosen.push(name.clone());
            }
        }
        chosen
    };
    if chosen.is_empty() {
        return Err(
            Error::new(format!("{env}: no secret is exposed; nothing to rotate"))
                .with_hint(format!(
                    "name the secrets to give new values anyway: `vault rotate {env} NAME... --generate` (`vault show {env}` lists them)"
                )),
        );
    }
    let names = chosen
        .into_iter()
        .map(|name| Target {
            exposed_to: exposed_to(&name),
            name,
        })
        .collect();
    Ok(Targets {
        env,
        names,
        all_exposed,
    })
}

fn unknown_name(env: &EnvName, name: &str, existing: &[&str]) -> Error {
    let hint = match project::closest(name, existing.iter().copied()) {
        Some(near) => format!("did you mean {near}? (`vault show {env}` lists the names)"),
        None => format!("`vault show {env}` lists the names; `vault set {env} {name}` adds one"),
    };
    Error::new(format!("{env}: no secret named {name}; nothing rotated")).with_hint(hint)
}

/// Gives every target its new value in one signed write (one new version), which clears
/// their exposures; then lists what is still exposed, in every environment.
pub fn rotate(store: &mut Store, targets: &Targets, values: NewValues) -> Result<Rotated> {
    let env = &targets.env;
    let values = match values {
        NewValues::Generate { length } => {
            check_length(length)?;
            targets
                .names
                .iter()
                .map(|_| generate(length))
                .collect::<Result<Vec<_>>>()?
        }
        NewValues::Given(v) if v.len() == targets.names.len() => v,
        NewValues::Given(_) => {
            return Err(Error::new("one value is needed for each secret rotated"))
        }
    };
    for (t, v) in targets.names.iter().zip(&values) {
        document::check_value(env.as_str(), &t.name, v.expose())?;
    }
    let report = store.modify(env, |doc| {
        let mut doc = store::or_empty(env, doc);
        for (t, v) in targets.names.iter().zip(&values) {
            match doc.get(&t.name) {
                None => {
                    return Err(Error::new(format!(
                        "{env}: {} was removed meanwhile; nothing rotated",
                        t.name
                    )))
                }
                Some(old) if old == v => {
                    return Err(Error::new(format!(
                        "{env}: {}: the new value is the old one; nothing rotated",
                        t.name
                    ))
                    .with_hint("give a different value, or `--generate` one"))
                }
                Some(_) => {}
            }
            doc = doc.with_set(env.as_str(), &t.name, v)?.0;
        }
        Ok(Some(doc))
    })?;
    Ok(Rotated {
        env: env.clone(),
        names: targets.names.iter().map(|t| t.name.clone()).collect(),
        not_exposed: targets
            .names
            .iter()
            .filter(|t| t.exposed_to.is_empty())
            .map(|t| t.name.clone())
            .collect(),
        report,
        serial: store
            .read_env(env)?
            .and_then(|p| p.manifest())
            .map(|m| m.serial),
        still_exposed: still_exposed(store, env)?,
    })
}

/// `--length`: refused outside [MIN_LENGTH, MAX_LENGTH].
pub fn check_length(length: usize) -> Result<()> {
    if (MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--length {length}: a generated value has {MIN_LENGTH} to {MAX_LENGTH} characters"
    ))
    .with_hint(format!(
        "the default, {DEFAULT_LENGTH}, gives about 190 bits; for a value another system dictates, pipe it in: `printf %s \"$VALUE\" | vault rotate ENV NAME`"
    )))
}

/// A random value of `length` characters of [`ALPHABET`], from the OS's CSPRNG,
/// uniform (bytes past the last whole multiple of 62 are drawn again).
pub fn generate(length: usize) -> Result<SecretValue> {
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8; // 248
    let mut out = SecretBytes::new(Vec::with_capacity(length));
    let mut pool = SecretBytes::new(vec![0u8; 64]);
    while out.expose().len() < length {
        getrandom::getrandom(pool.expose_mut())
            .map_err(|e| Error::new(format!("cannot read the OS's random source: {e}")))?;
        for &b in pool.expose() {
            if b < limit && out.expose().len() < length {
                out.expose_mut()
                    .push(ALPHABET[usize::from(b) % ALPHABET.len()]);
            }
        }
    }
    let text = String::from_utf8(std::mem::take(out.expose_mut()))
        .map_err(|_| Error::new("a generated value is not text"))?;
    Ok(SecretValue::new(text))
}

/// Every environment's standing exposures, as its signed manifest lists them (`first`
/// first); an environment whose signature is refused is left to `vault status`.
fn still_exposed(store: &mut Store, first: &EnvName) -> Result<Vec<(EnvName, Vec<Exposure>)>> {
    let mut envs = store.project.environments()?;
    envs.sort_by_key(|e| e != first);
    let mut out = Vec::new();
    for env in envs {
        let (Ok(Some(pair)), Ok(folder)) = (
            store.read_env(&env),
            recipients::members(&store.project, &env),
        ) else {
            continue;
        };
        if let Ok(v) = store.signature_report(&env, &pair, &folder) {
            out.push((env, v.manifest.exposed));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_alphanumeric_of_the_length_asked_and_differ() {
        let a = generate(32).unwrap();
        let b = generate(32).unwrap();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        let long = generate(MAX_LENGTH).unwrap();
        assert_eq!(long.expose().len(), MAX_LENGTH);
        // Over 1024 draws every kind of character turns up.
        let s = long.expose();
        assert!(s.bytes().any(|c| c.is_ascii_uppercase()));
        assert!(s.bytes().any(|c| c.is_ascii_lowercase()));
        assert!(s.bytes().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn lengths_outside_the_bounds_are_refused() {
        assert!(check_length(MIN_LENGTH - 1).is_err());
        assert!(check_length(MAX_LENGTH + 1).is_err());
        assert!(check_length(MIN_LENGTH).is_ok());
        assert!(check_length(MAX_LENGTH).is_ok());
    }
}

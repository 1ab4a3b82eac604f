//! Property tests: for any string without NUL, the canonical pillar and every export
//! format carry the value exactly through its real consumer (PyYAML as Salt reads the
//! pillar, vault's own reader, python-dotenv, json, supervisord's parser, the systemd
//! rules, and bash `set -a; .`), or refuse it with an error naming only the key.
//!
//! proptest generates the values; they are checked in batches (one consumer run per
//! format for all of them), so hundreds of values cost seconds. A failure prints the
//! seed: `VAULT_PROPTEST_SEED=<seed> cargo test --test main export_properties::` replays it.

use crate::common;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::process::Command;
use vault::document::{self, Document};
use vault::export::{self, Format};
use vault::secret::{SecretBytes, SecretValue};

const VALUES: usize = 300;

/// Strings without NUL, leaning on the characters every format has to escape.
fn value() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\'', '"', '\\', '$', '`', '%', '#', ';', ',', '=', ':', '{', '}', '(', ')', '\n', '\r',
        '\t', ' ', '~', '!', '&', '*', '|', '>', '-', '?', '@', '[', ']', 'é', '😀', '\u{85}',
        '\u{2028}', '\u{feff}', '\u{7f}', '\u{1b}', '\u{b}', '\u{c}',
    ]);
    let ch = prop_oneof![
        4 => special,
        3 => any::<char>(),
        3 => prop::char::range('a', 'z'),
    ]
    .prop_filter("no NUL", |c| *c != '\0');
    prop_oneof![
        1 => prop::sample::select(vec![
            "", " ", "yes", "No", "on", "off", "~", "null", "0123", "1e3", "0x1F", ".inf",
            "-", "---", "...", "- a", "? x", "&a", "*a", "!tag", "|", ">", "@x", "`x`",
            "%(here)s", "${HOME}", "$HOME", "a\\", "\\", "'", "\"", "# c", "a #b", " lead",
            "trail ", "\n", "\nx", "x\n", "\r\n", "line1\nline2\n",
        ])
        .prop_map(String::from),
        6 => prop::collection::vec(ch, 0..40).prop_map(|v| v.into_iter().collect()),
    ]
}

fn runner() -> (TestRunner, String) {
    let seed: [u8; 32] = match std::env::var("VAULT_PROPTEST_SEED") {
        Ok(hex) => {
            let mut s = [0u8; 32];
            for (i, b) in s.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("64 hex digits");
            }
            s
        }
        Err(_) => {
            let mut s = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut s))
                .unwrap();
            s
        }
    };
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    (TestRunner::new_with_rng(Config::default(), rng), hex)
}

/// `VALUES` generated values, named V0, V1, ...
fn generated() -> (Vec<(String, String)>, String) {
    let (mut runner, seed) = runner();
    let strategy = value();
    let values = (0..VALUES)
        .map(|i| {
            let v = strategy.new_tree(&mut runner).unwrap().current();
            (format!("V{i}"), v)
        })
        .collect();
    (values, seed)
}

fn document(values: &[(String, String)]) -> Document {
    let mut doc = document::empty("staging");
    for (k, v) in values {
        doc = doc
            .with_set("staging", k, &SecretValue::new(v.clone()))
            .unwrap()
            .0;
    }
    doc
}

/// Splits `values` into those `format` carries and checks the refusals name only the key.
fn carried(format: Format, values: &[(String, String)], seed: &str) -> Vec<(String, String)> {
    let mut ok = Vec::new();
    for (k, v) in values {
        match export::render(
            format,
            "staging",
            document(&[(k.clone(), v.clone())]).entries(),
        ) {
            Ok(_) => ok.push((k.clone(), v.clone())),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!("staging: {k}: the ")),
                    "seed {seed}: {format:?} refusal of {v:?} does not name the key: {msg}"
                );
                // Only the fixed reason may quote text (supervisord's `%(here)s`).
                let reason_free = msg.replace("%(here)s", "");
                assert!(
                    v.len() < 3 || !reason_free.contains(v.as_str()),
                    "seed {seed}: value in {msg}"
                );
            }
        }
    }
    ok
}

fn consume(python: &std::path::Path, format: &str, text: &[u8]) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export");
    std::fs::write(&file, text).unwrap();
    common::read_export(python, format, &file)
}

fn assert_same(what: &str, seed: &str, want: &[(String, String)], got: &BTreeMap<String, String>) {
    for (k, v) in want {
        assert_eq!(
            got.get(k),
            Some(v),
            "seed {seed}: {what} changed {k} = {v:?}"
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "seed {seed}: {what} read other names"
    );
}

#[test]
fn the_canonical_pillar_and_the_document_carry_any_value() {
    let (values, seed) = generated();
    let doc = document(&values);
    // vault's own reader: the document as edited, and the canonical pillar.
    let again = Document::parse("staging", SecretBytes::new(doc.text().to_vec())).unwrap();
    let sls = export::render(Format::Sls, "staging", doc.entries()).unwrap();
    let canonical = Document::parse("staging", SecretBytes::new(sls.expose().to_vec())).unwrap();
    for d in [&again, &canonical] {
        let got: BTreeMap<String, String> = d
            .entries()
            .iter()
            .map(|e| (e.name().to_string(), e.value().expose().to_string()))
            .collect();
        assert_same("vault's reader", &seed, &values, &got);
    }
    // PyYAML, as Salt reads the pillar.
    let Some(py) = common::python() else { return };
    assert_same("PyYAML", &seed, &values, &consume(&py, "sls", sls.expose()));
}

#[test]
fn every_export_format_carries_any_value_or_names_it() {
    let (values, seed) = generated();
    let py = common::python();
    for (format, name) in [
        (Format::Json, "json"),
        (Format::Dotenv, "dotenv"),
        (Format::Supervisor, "supervisor"),
        (Format::Systemd, "systemd"),
        (Format::Shell, "shell"),
    ] {
        let ok = carried(format, &values, &seed);
        eprintln!("{name}: carries {} of {} values", ok.len(), values.len());
        if matches!(format, Format::Json | Format::Shell) {
            assert_eq!(
                ok.len(),
                values.len(),
                "seed {seed}: {name} refused a value"
            );
        }
        let text = export::render(format, "staging", document(&ok).entries()).unwrap();
        let got = if format == Format::Shell {
            bash(text.expose())
        } else {
            let Some(py) = &py else { return };
            consume(py, name, text.expose())
        };
        assert_same(name, &seed, &ok, &got);
    }
}

/// What a program started after `set -a; . FILE` in bash sees.
fn bash(text: &[u8]) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.sh");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("bash")
        .args([
            "-c",
            "set -a; . \"$1\"; env -0",
            "bash",
            file.to_str().unwrap(),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| {
            k.starts_with('V') && k[1..].bytes().all(|b| b.is_ascii_digit()) && k.len() > 1
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

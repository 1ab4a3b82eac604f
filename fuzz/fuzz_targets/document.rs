//! The secrets document parser on any bytes: it never panics, and whatever it accepts
//! survives the canonical pillar and an edit of every entry unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault::document::Document;
use vault::export::{self, Format};
use vault::secret::SecretBytes;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = Document::parse("fuzz", SecretBytes::new(data.to_vec())) else {
        return;
    };
    let pairs: Vec<(String, String)> = doc
        .entries()
        .iter()
        .map(|e| (e.name().to_string(), e.value().expose().to_string()))
        .collect();
    // The canonical pillar reads back to the same secrets.
    let sls = export::render(Format::Sls, "fuzz", doc.entries()).expect("sls renders any document");
    let again = Document::parse("fuzz", sls).expect("the canonical pillar parses");
    let back: Vec<(String, String)> = again
        .entries()
        .iter()
        .map(|e| (e.name().to_string(), e.value().expose().to_string()))
        .collect();
    assert_eq!(pairs, back, "canonical pillar changed a secret");
    // Setting each entry to its own value keeps every secret; setting a new one keeps the rest.
    let secrets = |d: &Document| -> Vec<(String, String)> {
        d.entries()
            .iter()
            .map(|e| (e.name().to_string(), e.value().expose().to_string()))
            .collect()
    };
    for (name, value) in &pairs {
        let v = vault::secret::SecretValue::new(value.clone());
        let (same, _) = doc.with_set("fuzz", name, &v).expect("re-set an existing value");
        assert_eq!(secrets(&same), pairs, "setting {name} to its own value changed a secret");
    }
    for (name, _) in &pairs {
        let (fewer, _) = doc.with_unset("fuzz", name).expect("unset").expect("it exists");
        let expected: Vec<_> = pairs.iter().filter(|(n, _)| n != name).cloned().collect();
        assert_eq!(secrets(&fewer), expected, "unsetting {name} changed another secret");
    }
    let v = vault::secret::SecretValue::new("new 'value' \"x\"\n  y".to_string());
    if let Ok((edited, _)) = doc.with_set("fuzz", "FUZZ_NEW_NAME", &v) {
        for (name, value) in &pairs {
            if name != "FUZZ_NEW_NAME" {
                assert_eq!(edited.get(name).map(|v| v.expose()), Some(value.as_str()));
            }
        }
        assert_eq!(edited.get("FUZZ_NEW_NAME").map(|v| v.expose()), Some(v.expose()));
    }
});

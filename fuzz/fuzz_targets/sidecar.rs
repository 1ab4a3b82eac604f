//! The signature sidecar on any bytes, through the same entry point every read uses:
//! verification never panics and never accepts an unsigned or forged file, and a
//! manifest that parses renders back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault::manifest::{self, Manifest};
use vault::project::EnvName;

fuzz_target!(|data: &[u8]| {
    let env = EnvName::parse("staging").expect("a valid name");
    // No member in the folder: nothing may verify, whatever the sidecar says.
    let verdict = vault::trust::verify(&env, b"ciphertext", Some(data), &[], None);
    assert!(verdict.is_err(), "a sidecar verified with no members");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let manifest_text = manifest::split(text).map(|(m, _)| m).unwrap_or(text);
    if let Ok(m) = Manifest::parse(manifest_text) {
        for r in &m.roster {
            let _ = vault::keys::signing::from_line(&r.grant);
        }
        let again = Manifest::parse(&m.render()).expect("a rendered manifest parses");
        assert_eq!(again, m);
    }
});

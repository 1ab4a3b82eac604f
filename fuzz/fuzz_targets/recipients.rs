//! The recipients file parser on any text: it never panics, and every key it accepts
//! has a fingerprint and reads back from its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault::keys::recipients::{self, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keys) = recipients::parse_file(text, "fuzz") {
        for k in keys {
            let again = PublicKey::parse(k.text()).expect("a parsed key's text parses");
            assert_eq!(again.fingerprint(), k.fingerprint());
            let _ = k.spoken();
        }
    }
});

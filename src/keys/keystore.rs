//! The OS key store (Secret Service on Linux, Keychain on macOS): where `vault keygen`
//! keeps the private key.

use age::secrecy::SecretString;

const SERVICE: &str = "vault";
const ACCOUNT: &str = "identity";

/// Where the key lives, for messages.
pub const NAME: &str = "the OS keyring";

fn entry() -> Result<keyring::Entry, String> {
    keyring::Entry::new(SERVICE, ACCOUNT).map_err(|e| e.to_string())
}

/// The stored private key, or None when nothing is stored. Err says why the store
/// could not be asked (no Secret Service running, locked, ...).
pub fn load() -> Result<Option<SecretString>, String> {
    match entry()?.get_password() {
        Ok(key) => Ok(Some(SecretString::from(key))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Stores `key`, refusing to replace one already there.
pub fn store_new(key: &str) -> Result<(), String> {
    if load()?.is_some() {
        return Err("an identity is already stored there".into());
    }
    entry()?.set_password(key).map_err(|e| e.to_string())
}

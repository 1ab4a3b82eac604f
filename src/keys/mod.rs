//! Keys: public recipients, the identities that decrypt, the OS keyring, new keys,
//! and SSH signatures.

pub mod identity;
pub mod keygen;
pub mod keystore;
pub mod recipients;
pub mod signing;

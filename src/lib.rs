//! vault: per-environment secrets for Salt-provisioned projects, kept in git
//! encrypted with age to each environment's members.

pub mod check;
pub mod diff;
pub mod document;
pub mod edit;
pub mod envelope;
pub mod error;
pub mod exec;
pub mod export;
pub mod git;
pub mod identity;
pub mod init;
pub mod install_git;
pub mod journal;
pub mod keygen;
pub mod keystore;
pub mod manifest;
pub mod merge;
pub mod precommit;
pub mod project;
pub mod provision;
pub mod recipients;
pub mod secret;
pub mod signing;
pub mod status;
pub mod store;
pub mod trust;

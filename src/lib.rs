//! vault: per-environment secrets for Salt-provisioned projects, kept in git
//! encrypted with age to each environment's members.

pub mod document;
pub mod error;
pub mod project;
pub mod secret;

//! vault: per-environment secrets for Salt-provisioned projects, kept in git
//! encrypted with age to each environment's members.
//!
//! Layers, each using only those below it:
//! - [`ops`] and [`provision`]: the commands, as functions that return data;
//! - [`store`]: one environment's pair of files, read, verified and written;
//! - [`trust`]: the signed roster, its grant chain, and the machine's memory;
//! - [`keys`], [`envelope`], [`manifest`], [`document`], [`export`]: keys and formats;
//! - [`project`], [`process`], [`git`], [`fs`], [`error`], [`secret`], [`notice`]: the ground they stand on.

pub mod document;
pub mod envelope;
pub mod error;
pub mod export;
pub mod fs;
pub mod git;
pub mod keys;
pub mod manifest;
pub mod master;
pub mod notice;
pub mod ops;
pub mod process;
pub mod project;
pub mod project_id;
pub mod provision;
pub mod secret;
pub mod store;
pub mod trust;

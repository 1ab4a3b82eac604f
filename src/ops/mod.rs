//! The commands, as library operations: each returns what it found or did, and the
//! binary decides what to print.

pub mod check;
pub mod diff;
pub mod edit;
pub mod exec;
pub mod import;
pub mod init;
pub mod install_git;
pub mod members;
pub mod merge;
pub mod migrate;
pub mod precommit;
pub mod revisions;
pub mod rotate;
pub mod status;
pub mod textconv;

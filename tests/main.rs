//! The integration tests: one binary, a module per area, the shared helpers compiled once
//! (`cargo test --test main AREA::` runs one area). Every test runs the `vault` binary
//! (or, in export_properties, the library) in a scratch folder of its own, and all share
//! this process: a test passes what it needs to its child commands and never changes
//! this process's environment, working folder or signal handling.

mod common;

mod accounts;
mod approvals;
mod attack_accounts;
mod attack_fleet;
mod attack_fleet2;
mod attack_fleet3;
mod attack_provision;
mod attack_server13;
mod attack_server13b;
mod bad_input;
mod chain;
mod colour;
mod commands;
mod crash;
mod django;
mod edit;
mod example_project;
mod export_consumers;
mod export_properties;
mod fleet;
mod fleet_bench;
mod fleet_fixture;
mod freshness;
mod git_workflow;
mod header;
mod health;
mod help;
mod identities;
mod import;
mod interop;
mod layout;
mod merge_exposures;
mod names;
mod provision;
mod rotate;
mod salt_states;
mod settings;
mod symlinks;
mod textconv;
mod trust;
mod trust_chain;
mod work_files;
mod writes;

//! The command line: every flag, argument and help text, as clap reads them.

use crate::complete;
use crate::examples;
use crate::output::ColorChoice;
use clap::{Args, Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;
use std::ffi::OsString;
use std::path::PathBuf;
use vault::export::Format;

/// Per-environment secrets for Salt-provisioned projects, kept in git encrypted with age.
///
/// Secrets live in conf/pillar/ENV/secrets.sls.age, encrypted to the public keys in
/// recipients/ENV/. Only public keys travel out of band; values are decrypted only
/// when needed, and never appear in argv, logs or errors.
#[derive(Parser)]
#[command(
    name = "vault",
    version,
    about,
    long_about,
    max_term_width = 100,
    after_long_help = examples::VAULT
)]
pub struct Cli {
    /// Run in DIR's project instead of the nearest one above the working directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Decrypt and sign with FILE only (an age identity file or an OpenSSH private key).
    #[arg(
        short,
        long,
        global = true,
        value_name = "FILE",
        env = "VAULT_IDENTITY"
    )]
    pub identity: Option<PathBuf>,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more about what is done (never values).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Use secrets whose signature checks fail (recovery only: say why, loudly).
    #[arg(long, global = true)]
    pub insecure_skip_verify: bool,

    /// Colour the output: auto (at a terminal, unless NO_COLOR is set or TERM=dumb), always, never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write the project layout (conf/pillar, recipients) where missing; never overwrites.
    #[command(after_long_help = examples::INIT)]
    Init {
        /// The project name (conf/pillar/project.sls); default: the folder's name.
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// An environment to lay out (repeatable); default: staging and production.
        #[arg(long = "env", value_name = "ENV")]
        envs: Vec<String>,
    },
    /// Make a new ed25519 key: private part in the OS keyring (or --file), public line printed.
    #[command(after_long_help = examples::KEYGEN)]
    Keygen {
        /// Write the private key to PATH (mode 0600) and the public one to PATH.pub.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// The key's comment.
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Show which identity would be used, its public key, and what it can read.
    #[command(after_long_help = examples::WHOAMI)]
    Whoami,
    /// Edit ENV's secrets in $VISUAL/$EDITOR (on tmpfs), validate, and re-encrypt if changed.
    #[command(after_long_help = examples::EDIT)]
    Edit {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// Accept a disk-backed temporary folder when no tmpfs is available.
        #[arg(long)]
        allow_disk_tmp: bool,
    },
    /// Set one secret from standard input (or --from-file), never from the command line.
    #[command(after_long_help = examples::SET)]
    Set {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The secret's name: letters, digits and '_', not starting with a digit.
        name: String,
        /// Read the value from PATH, byte for byte.
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
        /// Keep standard input exactly, final newline included (by default one final newline is dropped).
        #[arg(long, conflicts_with = "from_file")]
        raw: bool,
    },
    /// Remove one secret.
    #[command(after_long_help = examples::UNSET)]
    Unset {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The secret's name: letters, digits and '_', not starting with a digit.
        name: String,
    },
    /// Print one secret's value on standard output, with nothing added.
    #[command(after_long_help = examples::GET)]
    Get {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The secret's name: letters, digits and '_', not starting with a digit.
        name: String,
    },
    /// List ENV's secret names (values only with --values).
    #[command(after_long_help = examples::SHOW)]
    Show {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// Show the values too.
        #[arg(long)]
        values: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run COMMAND (no shell) with ENV's secrets added to its environment.
    #[command(after_long_help = examples::EXEC)]
    Exec {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// Start from an environment holding only PATH and the secrets.
        #[arg(long)]
        clean: bool,
        /// The program and its arguments.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Write ENV's secrets in a format another program reads.
    #[command(after_long_help = examples::EXPORT)]
    Export {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The format to write.
        #[arg(long, short = 'f', value_enum)]
        format: Format,
        /// Write to PATH (mode 0600, atomically) instead of standard output.
        #[arg(long, short = 'o', value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Re-encrypt environments (default: all) to their recipients folder as it stands.
    #[command(after_long_help = examples::REKEY)]
    Rekey {
        /// The environments to re-encrypt (default: every one with secrets).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        envs: Vec<String>,
    },
    /// Show every environment: members, secrets, signer, pending members and exposed secrets.
    #[command(after_long_help = examples::STATUS)]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a member read ENV, after checking their key's fingerprint, and re-encrypt.
    #[command(after_long_help = examples::GRANT)]
    Grant {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The member's name: their key is recipients/ENV/NAME.pub.
        #[arg(add = ArgValueCandidates::new(complete::members))]
        name: String,
        /// The fingerprint the member read to you over another channel (repeat for each key).
        #[arg(long, required = true, value_name = "SHA256:...")]
        fingerprint: Vec<String>,
        /// Take the key from FILE (it becomes recipients/ENV/NAME.pub).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Remove a member from ENV, re-encrypt, and mark every secret they could read as exposed.
    #[command(after_long_help = examples::REVOKE)]
    Revoke {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The member's name.
        #[arg(add = ArgValueCandidates::new(complete::members))]
        name: String,
    },
    /// Give secrets new values in one signed write (default: every exposed one of ENV).
    ///
    /// After a revoke, `vault status` lists the secrets the departed member could read.
    /// Each value is generated (--generate), or read like `vault set` reads it: from
    /// standard input (one secret), or at a terminal with a hidden prompt, asked twice.
    /// Never from the command line, and a generated value is never printed.
    #[command(after_long_help = examples::ROTATE)]
    Rotate {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The secrets to rotate (default: every exposed one of ENV).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Generate each value: letters and digits from the OS's random source.
        #[arg(long)]
        generate: bool,
        /// How many characters a generated value has (16 to 1024).
        #[arg(long, value_name = "N", requires = "generate",
              default_value_t = vault::ops::rotate::DEFAULT_LENGTH)]
        length: usize,
    },
    /// Trust a key on this machine, after checking its fingerprint with its holder.
    ///
    /// A machine trusts an environment only when its chain is rooted in a key its user
    /// verified: their own, one they granted, or one confirmed with this command.
    #[command(after_long_help = examples::TRUST)]
    Trust {
        /// The environment whose folder holds the key.
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The fingerprint its holder read to you over another channel.
        #[arg(long, required = true, value_name = "SHA256:...")]
        fingerprint: String,
    },
    /// Allow a name that changes how programs behave (PYTHONPATH, LD_PRELOAD, ...) as a
    /// secret of ENV, in its signed manifest; --remove takes it back.
    #[command(after_long_help = examples::ALLOW)]
    Allow {
        /// The environment.
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The name (README, Secrets, lists those that need allowing).
        name: String,
        /// No longer allow it (refused while a secret of that name is there).
        #[arg(long)]
        remove: bool,
    },
    /// Adopt a template project's plaintext secrets.sls: encrypt and sign it, then remove the plaintext.
    ///
    /// Each value becomes the text as written. The values Salt's own YAML reading made
    /// something else of (`yes` as True, `0123` as 123) are shown first, to confirm.
    #[command(after_long_help = examples::IMPORT)]
    Import {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The plaintext file; default: conf/pillar/ENV/secrets.sls.
        file: Option<PathBuf>,
        /// Confirm without asking (needed without a terminal when a value's meaning changes).
        #[arg(long)]
        yes: bool,
    },
    /// Give a project written by an older vault its identity, and sign each environment
    /// you can write anew, bound to it.
    #[command(after_long_help = examples::MIGRATE)]
    Migrate,
    /// The CI gate (no private key needed): signatures, recipients, plaintext, exposures.
    #[command(after_long_help = examples::CHECK)]
    Check {
        /// Fail when a secret has been exposed for longer than this.
        #[arg(long, value_name = "DAYS", default_value_t = 7)]
        max_exposure_days: i64,
    },
    /// Push ENV's Salt states and secrets to its servers over SSH, and apply them with Salt.
    #[command(after_long_help = examples::PROVISION)]
    Provision(ProvisionArgs),
    /// Serve environments to a fleet through a salt-master: set it up, accept its minions.
    #[command(subcommand, after_long_help = examples::MASTER)]
    Master(MasterCommand),
    /// Show which secrets, recipients and signer changed between two versions (no values unless --values).
    ///
    /// With no revision: HEAD against the working tree; with one: it against the working
    /// tree; with two: the first against the second.
    #[command(after_long_help = examples::DIFF)]
    Diff {
        /// The environment (a folder of recipients/ and conf/pillar/).
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The versions to compare (git revisions).
        #[arg(num_args = 0..=2, value_name = "REV")]
        revs: Vec<String>,
        /// Show the values of what changed (JSON-quoted).
        #[arg(long)]
        values: bool,
    },
    /// Set up this clone's git: key-level diffs, the merge driver and the pre-commit hook.
    #[command(after_long_help = examples::INSTALL_GIT)]
    InstallGit,
    /// The pre-commit gate: refuse staged plaintext secrets and what `vault check` rejects.
    #[command(after_long_help = examples::PRE_COMMIT)]
    PreCommit,
    /// (git's diff driver) Print one version of an encrypted file as key-level text.
    #[command(hide = true)]
    Textconv {
        /// The file git hands over.
        file: PathBuf,
    },
    /// (git's merge driver) Merge one file of an environment's pair: %O %A %B %P.
    #[command(hide = true)]
    MergeFile {
        /// The common ancestor's version.
        ancestor: PathBuf,
        /// Ours; the result is written here.
        current: PathBuf,
        /// Theirs.
        other: PathBuf,
        /// The path being merged.
        path: String,
    },
    /// Print the shell script that completes vault's commands, flags, environments and members.
    #[command(after_long_help = examples::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into DIR.
    #[command(after_long_help = examples::MAN)]
    Man {
        /// Write vault.1 and vault-COMMAND.1 for each command into DIR (made if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

// `vault provision`'s arguments, kept together: they become one provisioning request.
// (A plain comment: a doc comment here would be taken for the command's help.)
#[derive(Args)]
pub struct ProvisionArgs {
    /// The environment (a folder of recipients/ and conf/pillar/).
    #[arg(add = ArgValueCandidates::new(complete::environments))]
    pub env: String,
    /// A server, [user@]host[:port] (repeatable); default: `hosts` in conf/pillar/ENV/env.sls.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// The SSH user for hosts that name none: root for a first provision, later a developer with sudo.
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Accept and remember the host key of a server met for the first time (prints its fingerprint); a changed key is always refused.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Run Salt with test=True from a scratch copy of the roots: show what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply this version over one a server runs that it does not follow (another branch's); one it is older than is refused all the same.
    #[arg(long)]
    pub allow_older: bool,
    /// Approve what this run ships (conf/salt, ENV's pillar files, its servers) and sign the approval, without asking.
    #[arg(long)]
    pub approve: bool,
    /// Leave the plaintext pillar secrets on the server afterwards.
    #[arg(long, conflicts_with = "dry_run")]
    pub keep_pillar: bool,
    /// How many servers at once.
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = parse_jobs)]
    pub jobs: usize,
    /// The server's root for Salt: roots in DIR/srv/{salt,pillar}, config in DIR/etc/salt
    /// (`{host}` and `{port}` are replaced per host).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub remote_root: String,
    /// salt-call on the server.
    #[arg(long, default_value = "salt-call", value_name = "PATH")]
    pub salt_call: String,
    /// Use this ssh_config instead of ~/.ssh/config (as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
}

/// How to reach a master, as provision reaches a server.
#[derive(Args)]
pub struct MasterReach {
    /// Accept and remember the master's host key at a first contact (prints its fingerprint); a changed key is always refused.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// The master's root: vault in DIR/usr/local/bin, its files in DIR/etc/vault, Salt's config in DIR/etc/salt.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub remote_root: String,
    /// Use this ssh_config instead of ~/.ssh/config (as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum MasterCommand {
    /// Install vault's ext_pillar on a salt-master and make it an identity for ENV (its public key pending a grant).
    #[command(after_long_help = examples::MASTER_SETUP)]
    Setup {
        /// The environment the master is to serve.
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The master, [user@]host[:port], reached over SSH.
        host: String,
        /// The member name its key goes under: recipients/ENV/NAME.pub.
        #[arg(long, default_value = "salt-master", value_name = "NAME")]
        name: String,
        /// The folder of Salt's commands (salt, salt-key) on the master; default: its PATH.
        #[arg(long, value_name = "DIR")]
        salt_dir: Option<String>,
        /// The master serves other environments too: everyone who provisions one of them may read ENV.
        #[arg(long)]
        shared: bool,
        #[command(flatten)]
        reach: MasterReach,
    },
    /// Accept a minion's key on ENV's master when its fingerprint matches (read on the minion, see the examples).
    #[command(after_long_help = examples::MASTER_ACCEPT)]
    Accept {
        /// The environment the minion belongs to.
        #[arg(add = ArgValueCandidates::new(complete::environments))]
        env: String,
        /// The minion's ID, as salt-key -L lists it.
        minion: String,
        /// The fingerprint read on the minion over a second channel (hex, colons optional).
        #[arg(long, value_name = "FP")]
        fingerprint: String,
        #[command(flatten)]
        reach: MasterReach,
    },
    /// (on the master) A member's setup: the request on standard input.
    #[command(hide = true)]
    LocalSetup {
        /// The master's root.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
    },
    /// (on the master) Accept a minion.
    #[command(hide = true)]
    LocalAccept {
        /// The environment.
        env: String,
        /// The minion's ID.
        minion: String,
        /// Its fingerprint.
        #[arg(long, value_name = "FP")]
        fingerprint: String,
        /// The master's root.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
    },
    /// (on the master) Run a member's provision on the minions.
    #[command(hide = true)]
    LocalApply {
        /// The environment.
        env: String,
        /// Minions at once.
        #[arg(long, default_value_t = 4, value_parser = parse_jobs)]
        jobs: usize,
        /// Salt's test=True.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for a minion.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// The project the member shipped.
        #[arg(long, value_name = "NAME", requires = "ciphertext")]
        project: Option<String>,
        /// The hash of the ciphertext the member shipped.
        #[arg(long, value_name = "HASH", requires = "project")]
        ciphertext: Option<String>,
        /// The master's root.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
    },
    /// (Salt's ext_pillar, on the master) One minion's secrets, as JSON.
    #[command(hide = true)]
    Pillar {
        /// The master's root.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// The minion's ID.
        minion: String,
    },
}

/// `--jobs`: at least one server at a time.
fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("give a whole number of servers, 1 or more".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_and_argument_has_help() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        for arg in cmd.get_arguments() {
            assert!(arg.get_help().is_some(), "global {}", arg.get_id());
        }
        for sub in cmd.get_subcommands() {
            assert!(sub.get_about().is_some(), "{}", sub.get_name());
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "{} {}",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}

//! The EXAMPLES each command's `--help` and manual page end with (never `-h`): a
//! comment line saying what a command does, then the command, as typed in a shell. A
//! unit test parses every `vault ...` line with the real command line, so none rots.

pub const VAULT: &str = "\
Examples:
  # Start a project: the layout, a key, the first secrets
  vault init --project shop
  vault keygen
  vault edit staging

  # Run a program with staging's secrets in its environment
  vault exec staging -- ./manage.py migrate

  # Push the states and secrets to staging's servers
  vault provision staging

Each command's --help has its own examples; `vault man --dir DIR` writes a manual page
for each.";

pub const INIT: &str = "\
Examples:
  # Lay out staging and production; the project is named after the folder
  vault init

  # Name the project and its environments
  vault init --project shop --env staging --env production

  # Add an environment to a project (what exists is kept)
  vault init --env qa";

pub const KEYGEN: &str = "\
Examples:
  # A key in the OS keyring (Secret Service, macOS Keychain); prints the public line
  vault keygen

  # No keyring (a server, SSH): a key file instead, then use it
  vault keygen --file ~/.ssh/vault_ed25519 --comment alice@laptop
  export VAULT_IDENTITY=~/.ssh/vault_ed25519";

pub const WHOAMI: &str = "\
Examples:
  # The identity in use, its fingerprint, and what it can read
  vault whoami

  # The same for a given key
  vault -i ~/.ssh/id_ed25519 whoami";

pub const EDIT: &str = "\
Examples:
  # Change staging's secrets in $VISUAL/$EDITOR; saving re-encrypts and signs them
  vault edit staging

  # With another editor (it must wait until the file is closed)
  VISUAL='code --wait' vault edit production

  # Where no tmpfs exists (macOS), accept a temporary folder on disk
  vault edit staging --allow-disk-tmp";

pub const SET: &str = "\
Examples:
  # From standard input (a final newline is dropped)
  printf %s \"$DB_PASSWORD\" | vault set staging DB_PASSWORD

  # On a terminal: asks for the value with hidden input
  vault set staging API_TOKEN

  # From a file, byte for byte
  vault set production TLS_KEY --from-file server.key

  # Keep standard input exactly, final newline included
  cat banner.txt | vault set staging MOTD --raw";

pub const UNSET: &str = "\
Examples:
  # Remove one secret
  vault unset staging OLD_API_KEY

  # In another project
  vault -C ~/src/shop unset production SENTRY_DSN";

pub const GET: &str = "\
Examples:
  # The raw value on standard output, nothing added
  vault get staging DATABASE_URL

  # Read with a given key (an age identity or an OpenSSH private key)
  vault -i deploy.agekey get production DATABASE_URL";

pub const SHOW: &str = "\
Examples:
  # The names of staging's secrets
  vault show staging

  # With their values, or as JSON
  vault show production --values
  vault show staging --json";

pub const EXEC: &str = "\
Examples:
  # Run a program with staging's secrets added to its environment (no shell)
  vault exec staging -- ./manage.py migrate

  # Only PATH and the secrets: see exactly what the program gets
  vault exec production --clean -- env";

pub const EXPORT: &str = "\
Examples:
  # A .env file for python-dotenv (mode 0600, written atomically)
  vault export staging --format dotenv -o .env

  # A systemd EnvironmentFile=
  vault export production -f systemd -o /etc/shop/secrets.env

  # JSON for another program
  vault export staging -f json | jq .";

pub const REKEY: &str = "\
Examples:
  # Re-encrypt every environment to its recipients folder as it stands
  vault rekey

  # Only these
  vault rekey staging production";

pub const STATUS: &str = "\
Examples:
  # Members, secrets, signer, pending members and exposed secrets of every environment
  vault status

  # The same as JSON
  vault status --json";

pub const GRANT: &str = "\
Examples:
  # dave put recipients/staging/dave.pub in a pull request and read you his fingerprint
  vault grant staging dave --fingerprint SHA256:...

  # Take his key from a file he sent
  vault grant production dave --fingerprint SHA256:... --key dave.pub

  # A member with two keys: one fingerprint for each
  vault grant staging erin --fingerprint SHA256:... --fingerprint SHA256:...";

pub const REVOKE: &str = "\
Examples:
  # Remove dave from staging and re-encrypt without him
  vault revoke staging dave

  # From every environment he was in
  vault revoke staging dave && vault revoke production dave

  # Then see what he could read, and give each exposed secret a new value
  vault status
  vault set staging DB_PASSWORD";

pub const ROTATE: &str = "\
Examples:
  # After `vault revoke staging bob`: new random values for all bob could read
  vault rotate staging --generate

  # One secret, 48 characters
  vault rotate staging DJANGO_SECRET_KEY --generate --length 48

  # A value another system issued, on standard input
  printf %s \"$NEW_DB_PASSWORD\" | vault rotate staging DB_PASSWORD

  # Then put the new values on the servers
  vault provision staging";

pub const TRUST: &str = "\
Examples:
  # On a new machine: trust the key of the member who signed, once checked with them
  vault trust staging --fingerprint SHA256:...

  # In another project
  vault -C ~/src/shop trust production --fingerprint SHA256:...";

pub const ALLOW: &str = "\
Examples:
  # Let staging hold a PYTHONPATH secret
  vault allow staging PYTHONPATH

  # Take it back (once no secret of that name is there)
  vault allow staging PYTHONPATH --remove";

pub const IMPORT: &str = "\
Examples:
  # Adopt conf/pillar/staging/secrets.sls: encrypt and sign it, remove the plaintext
  vault import staging

  # From another file, confirming changed values without asking
  vault import production old/secrets.sls --yes";

pub const MIGRATE: &str = "\
Examples:
  # Once, by a member: give the project its identity and re-sign what you can write
  vault migrate
  git add conf && git commit -m 'vault migrate'

  # In another project
  vault -C ~/src/shop migrate";

pub const CHECK: &str = "\
Examples:
  # The CI gate: exit 1 with one line per finding
  vault check

  # Fail sooner on a secret left exposed after a revoke
  vault check --max-exposure-days 3";

pub const MASTER: &str = "\
Examples:
  # Set the master up for staging, then grant its key (the fingerprint it printed)
  vault master setup staging root@salt.example.com --accept-new-host-key
  vault grant staging salt-master --fingerprint SHA256:...

  # Accept a minion whose key fingerprint was read on it over a second channel
  vault master accept staging web1 --fingerprint 4f:2a:...";

pub const MASTER_SETUP: &str = "\
Examples:
  # A first contact with the master, as root
  vault master setup staging root@salt.example.com --accept-new-host-key

  # Salt installed in a virtualenv on the master
  vault master setup production salt.example.com --salt-dir /opt/salt/bin";

pub const MASTER_ACCEPT: &str = "\
Examples:
  # On the minion: printf %s \"$(cat /etc/salt/pki/minion/minion.pub)\" | sha256sum; then here:
  vault master accept staging web1 --fingerprint 4f2a...";

pub const PROVISION: &str = "\
Examples:
  # A new server: as root, accepting its host key (check the fingerprint printed)
  vault provision staging -u root --accept-new-host-key

  # Later runs, as a developer with sudo on the servers in conf/pillar/staging/env.sls
  vault provision staging

  # Show what would change, change nothing
  vault provision production --dry-run

  # One server, approving this run's inputs without asking
  vault provision staging -H alice@10.0.0.5:2222 --approve";

pub const DIFF: &str = "\
Examples:
  # What changed in staging since the last commit
  vault diff staging

  # Since an older version, or between two
  vault diff staging HEAD~3
  vault diff staging v1.2 v1.3

  # During a merge conflict: both sides' values
  vault diff staging HEAD MERGE_HEAD --values";

pub const INSTALL_GIT: &str = "\
Examples:
  # Once per clone: key-level diffs, the merge driver, the pre-commit hook
  vault install-git

  # In another clone
  vault -C ~/src/shop install-git";

pub const PRE_COMMIT: &str = "\
Examples:
  # What the hook `vault install-git` installs runs before each commit
  vault pre-commit

  # The same, printing only errors
  vault -q pre-commit";

pub const COMPLETIONS: &str = "\
The script asks vault for candidates as you type, so environment and member names come
from the project at hand.

Examples:
  # bash: complete vault in every new shell
  vault completions bash > ~/.local/share/bash-completion/completions/vault

  # zsh: in ~/.zshrc
  source <(vault completions zsh)

  # fish
  vault completions fish > ~/.config/fish/completions/vault.fish";

pub const MAN: &str = "\
Examples:
  # Read the manual
  vault man | man -l -

  # Write vault.1 and a page per command (vault-edit.1, ...) into a folder
  vault man --dir ~/.local/share/man/man1";

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::{CommandFactory, Parser};

    /// The `vault ...` commands of an examples text, as argv: each line that is not a
    /// comment, split as a shell would into commands (at `|`, `&&`, `;`), dropping
    /// redirections and leading `NAME=value` assignments.
    fn vault_commands(text: &str) -> Vec<Vec<String>> {
        let mut found = Vec::new();
        for line in text.lines().filter(|l| l.starts_with("  ")) {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let words = shell_words::split(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            for command in words.split(|w| ["|", "&&", "||", ";"].contains(&w.as_str())) {
                let mut argv = Vec::new();
                let mut it = command.iter();
                while let Some(w) = it.next() {
                    if [">", ">>", "<"].contains(&w.as_str()) {
                        it.next();
                    } else if !(argv.is_empty() && w.contains('=') && !w.starts_with('-')) {
                        argv.push(w.clone());
                    }
                }
                if argv.first().is_some_and(|w| w == "vault") {
                    found.push(argv);
                }
            }
        }
        found
    }

    #[test]
    fn every_visible_command_has_examples_that_parse() {
        let top = Cli::command();
        let subs = top.get_subcommands().filter(|s| !s.is_hide_set());
        for cmd in std::iter::once(&top).chain(subs) {
            let name = cmd.get_name();
            let text = cmd
                .get_after_long_help()
                .unwrap_or_else(|| panic!("{name}: no examples"))
                .to_string();
            assert!(text.contains("Examples:"), "{name}");
            assert!(cmd.get_after_help().is_none(), "{name}: -h stays short");
            let commands = vault_commands(&text);
            for argv in &commands {
                if let Err(e) = Cli::try_parse_from(argv) {
                    panic!(
                        "{name}: the example `{}` does not parse:\n{e}",
                        argv.join(" ")
                    );
                }
            }
            let own = commands
                .iter()
                .filter(|argv| name == "vault" || argv.iter().any(|w| w == name))
                .count();
            assert!(own >= 2, "{name}: {own} example(s) of it; give 2 to 4");
        }
    }

    #[test]
    fn the_extraction_finds_commands_in_pipes_and_skips_the_rest() {
        let text = "Examples:\n  # vault not-a-command\n  printf %s \"$V\" | vault set a B\n  \
                    X='a b' vault edit a > out\n  git add conf && vault check\n  source <(vault x)";
        let found: Vec<String> = vault_commands(text).iter().map(|a| a.join(" ")).collect();
        assert_eq!(found, ["vault set a B", "vault edit a", "vault check"]);
    }
}

//! The `vault` command: argument parsing and output over the `vault` library.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use vault::document::{self, Document};
use vault::error::{Error, Result};
use vault::export::Format;
use vault::keys::identity::Identities;
use vault::keys::{keygen, keystore, recipients};
use vault::notice::{Level, Notices};
use vault::ops::{edit, exec, init, status};
use vault::project::{EnvName, Project};
use vault::secret::{SecretBytes, SecretValue};
use vault::store::{self, Store, Written};
use vault::{export, fs, provision};

/// Per-environment secrets for Salt-provisioned projects, kept in git encrypted with age.
///
/// Secrets live in conf/pillar/ENV/secrets.sls.age, encrypted to the public keys in
/// recipients/ENV/. Only public keys travel out of band; values are decrypted only
/// when needed, and never appear in argv, logs or errors.
#[derive(Parser)]
#[command(name = "vault", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// Run in DIR's project instead of the nearest one above the working directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    directory: Option<PathBuf>,

    /// Decrypt with FILE (an age identity file or an OpenSSH private key) first.
    #[arg(
        short,
        long,
        global = true,
        value_name = "FILE",
        env = "VAULT_IDENTITY"
    )]
    identity: Option<PathBuf>,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Say more about what is done (never values).
    #[arg(short, long, global = true)]
    verbose: bool,

    /// Use secrets whose signature checks fail (recovery only: say why, loudly).
    #[arg(long, global = true)]
    insecure_skip_verify: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the project layout (conf/pillar, recipients) where missing; never overwrites.
    Init {
        /// The project name (conf/pillar/project.sls); default: the folder's name.
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// An environment to lay out (repeatable); default: staging and production.
        #[arg(long = "env", value_name = "ENV")]
        envs: Vec<String>,
    },
    /// Make a new ed25519 key: private part in the OS keyring (or --file), public line printed.
    Keygen {
        /// Write the private key to PATH (mode 0600) and the public one to PATH.pub.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// The key's comment.
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Show which identity would be used, its public key, and what it can read.
    Whoami,
    /// Edit ENV's secrets in $VISUAL/$EDITOR (on tmpfs), validate, and re-encrypt if changed.
    Edit {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// Accept a disk-backed temporary folder when no tmpfs is available.
        #[arg(long)]
        allow_disk_tmp: bool,
    },
    /// Set one secret from standard input (or --from-file), never from the command line.
    Set {
        /// The environment (a folder of recipients/ and conf/pillar/).
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
    Unset {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// The secret's name: letters, digits and '_', not starting with a digit.
        name: String,
    },
    /// Print one secret's value on standard output, with nothing added.
    Get {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// The secret's name: letters, digits and '_', not starting with a digit.
        name: String,
    },
    /// List ENV's secret names (values only with --values).
    Show {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// Show the values too.
        #[arg(long)]
        values: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run COMMAND (no shell) with ENV's secrets added to its environment.
    Exec {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// Start from an environment holding only PATH and the secrets.
        #[arg(long)]
        clean: bool,
        /// The program and its arguments.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Write ENV's secrets in a format another program reads.
    Export {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// The format to write.
        #[arg(long, short = 'f', value_enum)]
        format: Format,
        /// Write to PATH (mode 0600, atomically) instead of standard output.
        #[arg(long, short = 'o', value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Re-encrypt environments (default: all) to their recipients folder as it stands.
    Rekey {
        /// The environments to re-encrypt (default: every one with secrets).
        envs: Vec<String>,
    },
    /// Show every environment: members, secrets, signer, pending members and exposed secrets.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a member read ENV, after checking their key's fingerprint, and re-encrypt.
    Grant {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// The member's name: their key is recipients/ENV/NAME.pub.
        name: String,
        /// The fingerprint the member read to you over another channel (repeat for each key).
        #[arg(long, required = true, value_name = "SHA256:...")]
        fingerprint: Vec<String>,
        /// Take the key from FILE (it becomes recipients/ENV/NAME.pub).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Remove a member from ENV, re-encrypt, and mark every secret they could read as exposed.
    Revoke {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// The member's name.
        name: String,
    },
    /// The CI gate (no private key needed): signatures, recipients, plaintext, exposures.
    Check {
        /// Fail when a secret has been exposed for longer than this.
        #[arg(long, value_name = "DAYS", default_value_t = 7)]
        max_exposure_days: i64,
    },
    /// Push ENV's Salt states and secrets to its servers over SSH, and apply them with Salt.
    Provision {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// A server, [user@]host[:port] (repeatable); default: `hosts` in conf/pillar/ENV/env.sls.
        #[arg(short = 'H', long = "host", value_name = "HOST")]
        hosts: Vec<String>,
        /// The SSH user for hosts that name none: root for a first provision, later a developer with sudo.
        #[arg(short = 'u', long, value_name = "USER")]
        user: Option<String>,
        /// Accept and remember the host key of a server met for the first time (prints its fingerprint).
        #[arg(long)]
        accept_new_host_key: bool,
        /// Run Salt with test=True from a scratch copy of the roots: show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Leave the plaintext pillar secrets on the server afterwards.
        #[arg(long, conflicts_with = "dry_run")]
        keep_pillar: bool,
        /// How many servers at once.
        #[arg(long, default_value_t = 4, value_name = "N",
              value_parser = parse_jobs)]
        jobs: usize,
        /// The server's root for Salt: roots in DIR/srv/{salt,pillar}, config in DIR/etc/salt
        /// (`{host}` and `{port}` are replaced per host).
        #[arg(long, default_value = "/", value_name = "DIR")]
        remote_root: String,
        /// salt-call on the server.
        #[arg(long, default_value = "salt-call", value_name = "PATH")]
        salt_call: String,
        /// Use this ssh_config instead of ~/.ssh/config (as `ssh -F`).
        #[arg(long, value_name = "FILE")]
        ssh_config: Option<PathBuf>,
    },
    /// Show which secrets, recipients and signer changed between two versions (no values unless --values).
    ///
    /// With no revision: HEAD against the working tree; with one: it against the working
    /// tree; with two: the first against the second.
    Diff {
        /// The environment (a folder of recipients/ and conf/pillar/).
        env: String,
        /// The versions to compare (git revisions).
        #[arg(num_args = 0..=2, value_name = "REV")]
        revs: Vec<String>,
        /// Show the values of what changed (JSON-quoted).
        #[arg(long)]
        values: bool,
    },
    /// Set up this clone's git: key-level diffs, the merge driver and the pre-commit hook.
    InstallGit,
    /// The pre-commit gate: refuse staged plaintext secrets and what `vault check` rejects.
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
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    Man,
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| usage_failure(e));
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if !err.message().is_empty() {
                report(&err);
            }
            err.exit_code()
        }
    };
    std::process::exit(code);
}

/// `--jobs`: at least one server at a time.
fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("give a whole number of servers, 1 or more".into()),
    }
}

/// clap's usage errors in vault's own form (one `vault: error:` line, a hint, exit 2),
/// never repeating an unexpected argument: it may be a secret someone tried to pass on the
/// command line (`vault set ENV NAME VALUE`). Help and version go out as clap has them.
fn usage_failure(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    // "error: MESSAGE\n\n  tip: ...\n\nUsage: vault CMD ...\n\nFor more information, ..."
    let text = e.to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let mut message = first
        .lines()
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ");
    let mut tips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    if e.kind() == ErrorKind::UnknownArgument {
        // clap's own tips repeat the argument too.
        tips.clear();
        message = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) if arg.starts_with('-') => {
                let flag = arg.split('=').next().unwrap_or_default();
                format!("unexpected argument '{flag}'")
            }
            _ => "unexpected argument (not shown, in case it is a secret: vault never takes a value from the command line)".into(),
        };
    }
    let usage = text.lines().find_map(|l| l.strip_prefix("Usage: "));
    let hint = if !tips.is_empty() {
        tips.join("; ")
    } else if let Some(usage) = usage {
        let command: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect();
        format!("usage: {usage} (more with `{} --help`)", command.join(" "))
    } else {
        // No usage line (a bad option value): name the subcommand that was typed.
        let cli = Cli::command();
        let typed = std::env::args()
            .skip(1)
            .find(|a| cli.get_subcommands().any(|c| c.get_name() == a));
        format!(
            "more with `vault {}--help`",
            typed.map(|c| c + " ").unwrap_or_default()
        )
    };
    report(&Error::usage(message).with_hint(hint));
    std::process::exit(2)
}

fn report(err: &Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "vault: error: {err}");
    if let Some(hint) = err.hint() {
        let _ = writeln!(stderr, "hint: {hint}");
    }
}

/// Messages for the person at the terminal, on stderr; silent with -q.
#[derive(Clone, Copy)]
struct Ui {
    quiet: bool,
    verbose: bool,
}

impl Ui {
    fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("vault: {msg}");
        }
    }

    fn warn(&self, msg: &str) {
        eprintln!("vault: warning: {msg}");
    }

    fn detail(&self, msg: &str) {
        if self.verbose {
            eprintln!("vault: {msg}");
        }
    }
}

/// The library's messages, shown as the binary's own.
impl Notices for Ui {
    fn notice(&self, level: Level, msg: &str) {
        match level {
            Level::Detail => self.detail(msg),
            Level::Note => self.note(msg),
            // Shown even with -q; the library's warnings name themselves ("warning: ...").
            Level::Warning => eprintln!("vault: {msg}"),
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let cwd = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()
            .map_err(|e| Error::new(format!("cannot read the working directory: {e}")))?,
    };
    // Commands that need no project.
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "vault", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| Error::new(format!("cannot write the manual: {e}")))?;
            return Ok(0);
        }
        Command::Keygen { file, comment } => {
            return cmd_keygen(&ui, file.as_deref(), comment.clone())
        }
        Command::Init { project, envs } => return cmd_init(&ui, &cwd, project.clone(), envs),
        Command::Textconv { file } => {
            // git runs this from the repository's top, which may lie above the project.
            let project = Project::discover(&cwd).unwrap_or_else(|_| Project::at(&cwd));
            let notices = Ui {
                quiet: true,
                verbose: false,
            };
            let mut store = Store::new(
                project,
                Identities::standard(cli.identity.clone()),
                false,
                Box::new(notices),
            );
            let bytes = fs::read_limited(file, vault::envelope::MAX_CIPHERTEXT_BYTES)?
                .ok_or_else(|| Error::new(format!("{}: no such file", file.display())))?;
            write_stdout(vault::ops::diff::textconv(&mut store, &bytes).as_bytes())?;
            return Ok(0);
        }
        Command::MergeFile {
            ancestor,
            current,
            other,
            path,
        } => {
            let files = vault::ops::merge::MergeFiles {
                ancestor,
                current,
                other,
                path,
            };
            let identity = cli.identity.clone();
            let notices = Ui {
                quiet: cli.quiet,
                verbose: false,
            };
            let result = vault::ops::merge::merge_file(
                |project| {
                    Store::new(
                        project,
                        Identities::standard(identity),
                        false,
                        Box::new(notices),
                    )
                },
                &files,
            );
            return match result {
                Ok(vault::ops::merge::Merged::Clean { env, from_other }) => {
                    if from_other.is_empty() {
                        ui.note(&format!(
                            "{env}: merged; nothing new from the other branch, re-signed"
                        ));
                    } else {
                        ui.note(&format!("{env}: merged by key (from the other branch: {}), re-encrypted and signed", from_other.join(", ")));
                    }
                    Ok(0)
                }
                Ok(vault::ops::merge::Merged::Finished) => Ok(0),
                Err(e) => {
                    // git takes a non-zero exit as a conflict, and keeps ours in place.
                    if !e.message().is_empty() {
                        report(&e);
                    }
                    Ok(1)
                }
            };
        }
        _ => {}
    }
    let project = Project::discover(&cwd)?;
    ui.detail(&format!("project {}", project.root().display()));
    let mut store = Store::new(
        project,
        Identities::standard(cli.identity.clone()),
        cli.insecure_skip_verify,
        Box::new(ui),
    );
    match cli.command {
        Command::Whoami => cmd_whoami(&mut store),
        Command::Diff { env, revs, values } => cmd_diff(&mut store, &env, &revs, values),
        Command::InstallGit => {
            let exe = std::env::current_exe()
                .map_err(|e| Error::new(format!("cannot find vault's own binary: {e}")))?;
            for line in vault::ops::install_git::install(&store.project, &exe)? {
                ui.note(&line);
            }
            Ok(0)
        }
        Command::PreCommit => {
            let findings = vault::ops::precommit::findings(&store.project)?;
            if findings.is_empty() {
                return Ok(0);
            }
            for f in &findings {
                eprintln!("vault: pre-commit: {f}");
            }
            eprintln!("hint: the commit was refused; fix the above and commit again");
            Ok(1)
        }
        Command::Edit {
            env,
            allow_disk_tmp,
        } => cmd_edit(&ui, &mut store, &env, allow_disk_tmp),
        Command::Set {
            env,
            name,
            from_file,
            raw,
        } => cmd_set(&ui, &mut store, &env, &name, from_file, raw),
        Command::Unset { env, name } => cmd_unset(&ui, &mut store, &env, &name),
        Command::Get { env, name } => {
            let env = store.project.environment(&env)?;
            let doc = store.open(&env)?;
            let value = lookup(&doc, &env, &name)?;
            write_stdout(value.expose().as_bytes())?;
            Ok(0)
        }
        Command::Show { env, values, json } => cmd_show(&mut store, &env, values, json),
        Command::Exec {
            env,
            clean,
            command,
        } => {
            exec::check_command(&command)?;
            let env = store.project.environment(&env)?;
            let doc = store.open(&env)?;
            let (program, args) = command.split_first().expect("checked above");
            let (err, status) = exec::exec(&doc, program, args, clean, |name| {
                ui.warn(&format!(
                    "{name} is already set in the environment; the secret from {env} overrides it"
                ))
            });
            report(&err);
            Ok(status)
        }
        Command::Export {
            env,
            format,
            output,
        } => {
            let env = store.project.environment(&env)?;
            let doc = store.open(&env)?;
            let out = export::render(format, env.as_str(), doc.entries())?;
            match output {
                Some(path) => fs::write_atomic(&path, out.expose(), fs::Mode::Private).map(drop)?,
                None => write_stdout(out.expose())?,
            }
            Ok(0)
        }
        Command::Rekey { envs } => cmd_rekey(&ui, &mut store, &envs),
        Command::Status { json } => cmd_status(&mut store, json),
        Command::Grant {
            env,
            name,
            fingerprint,
            key,
        } => cmd_grant(&ui, &mut store, &env, &name, &fingerprint, key),
        Command::Revoke { env, name } => cmd_revoke(&ui, &mut store, &env, &name),
        Command::Check { max_exposure_days } => cmd_check(&store, max_exposure_days),
        Command::Provision {
            env,
            hosts,
            user,
            accept_new_host_key,
            dry_run,
            keep_pillar,
            jobs,
            remote_root,
            salt_call,
            ssh_config,
        } => {
            let env = store.project.environment(&env)?;
            let (project_name, listed) = provision::pillar_settings(&store.project, &env)?;
            let given = if hosts.is_empty() { listed } else { hosts };
            if given.is_empty() {
                return Err(Error::usage(format!("{env}: no hosts: none in conf/pillar/{env}/env.sls, and no -H"))
                    .with_hint(format!("list them under `hosts:` in conf/pillar/{env}/env.sls, or pass -H [user@]host[:port]")));
            }
            let targets = provision::targets(&given, user.as_deref())?;
            let doc = store.open(&env)?;
            let pillar = export::render(Format::Sls, env.as_str(), doc.entries())?;
            let values: Vec<&str> = doc.entries().iter().map(|e| e.value().expose()).collect();
            let other_envs = store
                .project
                .environments()?
                .into_iter()
                .filter(|e| *e != env)
                .collect();
            let settings = provision::Settings {
                env: env.clone(),
                project_name,
                remote_root,
                salt_call,
                accept_new_host_key,
                dry_run,
                keep_pillar,
                jobs,
                other_envs,
                ssh_config,
                quiet: cli.quiet,
            };
            let reports =
                provision::provision(&store.project, &settings, &targets, &pillar, &values);
            if !cli.quiet {
                eprint!("{}", provision::table(&reports, cli.verbose));
            }
            let failed: Vec<&str> = reports
                .iter()
                .filter(|r| !r.succeeded())
                .map(|r| r.target.as_str())
                .collect();
            if !failed.is_empty() {
                return Err(Error::new(format!(
                    "{env}: provisioning failed on {}",
                    failed.join(", ")
                )));
            }
            Ok(0)
        }
        Command::Init { .. }
        | Command::Keygen { .. }
        | Command::Completions { .. }
        | Command::Textconv { .. }
        | Command::MergeFile { .. }
        | Command::Man => {
            unreachable!("handled above")
        }
    }
}

fn lookup<'d>(doc: &'d Document, env: &EnvName, name: &str) -> Result<&'d SecretValue> {
    doc.get(name).ok_or_else(|| {
        Error::new(format!("{env}: no secret named {name}"))
            .with_hint(format!("`vault show {env}` lists the names"))
    })
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(format!("cannot write to standard output: {e}"))),
    }
}

fn cmd_init(ui: &Ui, cwd: &std::path::Path, name: Option<String>, envs: &[String]) -> Result<i32> {
    let envs: Vec<EnvName> = if envs.is_empty() {
        vec![EnvName::parse("staging")?, EnvName::parse("production")?]
    } else {
        envs.iter()
            .map(|e| EnvName::parse(e))
            .collect::<Result<_>>()?
    };
    std::fs::create_dir_all(cwd).map_err(|e| Error::io("cannot create", cwd, e))?;
    let root = cwd
        .canonicalize()
        .map_err(|e| Error::io("cannot open", cwd, e))?;
    let project = Project::at(&root);
    let name = name.unwrap_or_else(|| init::default_project_name(&root));
    let report = init::init(&project, &name, &envs)?;
    for p in &report.created {
        ui.note(&format!("created {}", project.display_path(p)));
    }
    for p in &report.kept {
        if p.file_name().is_some_and(|n| n == "top.sls") {
            ui.note("kept conf/pillar/top.sls: make sure it maps '*-ENV' to [ENV.env, ENV.secrets] for each environment");
        }
    }
    let first = &envs[0];
    ui.note(&format!(
        "next: `vault keygen`, put your public key in recipients/{first}/YOURNAME.pub, then `vault edit {first}`"
    ));
    Ok(0)
}

fn cmd_keygen(ui: &Ui, file: Option<&std::path::Path>, comment: Option<String>) -> Result<i32> {
    let comment = comment.unwrap_or_else(|| {
        let user = std::env::var("USER").unwrap_or_else(|_| "vault".into());
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        format!("{user}@{host}")
    });
    let dest = match file {
        Some(p) => keygen::Destination::File(p),
        None => keygen::Destination::Keyring,
    };
    let key = keygen::keygen(dest, &comment)?;
    write_stdout(format!("{} {comment}\n{}\n", key.text(), key.fingerprint()).as_bytes())?;
    match file {
        Some(p) => ui.note(&format!(
            "private key written to {} (mode 0600)",
            p.display()
        )),
        None => ui.note(&format!("private key stored in {}", keystore::NAME)),
    }
    ui.note("give the public line to a member as recipients/ENV/YOURNAME.pub, and read them the SHA256 fingerprint over another channel");
    Ok(0)
}

fn cmd_whoami(store: &mut Store) -> Result<i32> {
    let Some((source, keys)) = store.identities.current()? else {
        let tried = store.identities.report()?;
        return Err(
            Error::new(format!("no identity found; tried: {}", tried.join(", ")))
                .with_hint("make one with `vault keygen`, or pass -i FILE"),
        );
    };
    let mut out = format!("identity: {}\n", source.label());
    for k in &keys {
        out.push_str(&format!(
            "public key: {}
fingerprint: {}
read aloud: {}
",
            k.text(),
            k.fingerprint(),
            k.spoken()
        ));
    }
    if keys.is_empty() {
        out.push_str("public key: unknown (no public part in the file)\n");
    }
    let readable = status::readable_by(store, &keys)?;
    if readable.is_empty() {
        out.push_str("member of: none\n");
    } else {
        let list: Vec<String> = readable
            .iter()
            .map(|(e, m)| format!("{e} (as {m})"))
            .collect();
        out.push_str(&format!("member of: {}\n", list.join(", ")));
    }
    write_stdout(out.as_bytes())?;
    Ok(0)
}

fn cmd_edit(ui: &Ui, store: &mut Store, env: &str, allow_disk: bool) -> Result<i32> {
    let env = store.project.environment(env)?;
    let mut saved = 0;
    // The editor runs inside the write, under the lock: another writer waits rather
    // than being lost.
    let report = store.modify(&env, |current| {
        let original = match &current {
            Some(doc) => SecretBytes::new(doc.text().to_vec()),
            None => Document::template(env.as_str()),
        };
        drop(current);
        match edit::run(env.as_str(), &original, allow_disk)? {
            edit::Outcome::Unchanged => Ok(None),
            edit::Outcome::Changed(doc) => {
                saved = doc.entries().len();
                Ok(Some(doc))
            }
        }
    })?;
    match report.written {
        Written::Unchanged => ui.note(&format!("{env}: no changes")),
        Written::Changed => ui.note(&format!(
            "{env}: saved {saved} secret(s), encrypted to {}",
            report.members.join(", ")
        )),
    }
    note_roster(ui, &env, &report);
    Ok(0)
}

/// Tells about members a write left out: never granted, or dropped from the folder.
fn note_roster(ui: &Ui, env: &EnvName, report: &store::WriteReport) {
    for m in &report.pending {
        ui.warn(&format!(
            "{env}: {m} is pending: their key is in recipients/{env}/ but was never granted, so they cannot read it; \
             a member checks the fingerprint with them and runs `vault grant {env} {m} --fingerprint SHA256:...`"
        ));
    }
    for m in &report.dropped {
        ui.warn(&format!(
            "{env}: {m} was removed; the secrets they could read are marked exposed until changed"
        ));
    }
}

/// Reads a value for `set`: from a file exactly, or from standard input.
fn read_value(name: &str, from_file: Option<PathBuf>, raw: bool) -> Result<SecretValue> {
    let bytes = match from_file {
        Some(path) => SecretBytes::new(
            fs::read_limited(&path, document::MAX_DOCUMENT_BYTES)?
                .ok_or_else(|| Error::new(format!("{} does not exist", path.display())))?,
        ),
        None if std::io::stdin().is_terminal() => {
            let v = rpassword::prompt_password(format!("Value for {name} (input hidden): "))
                .map_err(|e| Error::new(format!("cannot read the value: {e}")))?;
            SecretBytes::new(v.into_bytes())
        }
        None => {
            let mut buf = SecretBytes::new(Vec::with_capacity(8192));
            std::io::stdin()
                .take(document::MAX_DOCUMENT_BYTES as u64 + 1)
                .read_to_end(buf.expose_mut())
                .map_err(|e| Error::new(format!("cannot read standard input: {e}")))?;
            if !raw && buf.expose().ends_with(b"\n") {
                let v = buf.expose_mut();
                v.pop();
                if v.ends_with(b"\r") {
                    v.pop();
                }
            }
            buf
        }
    };
    if bytes.expose().len() > document::MAX_DOCUMENT_BYTES {
        return Err(Error::new(format!(
            "{name}: the value is over the limit of {} bytes",
            document::MAX_DOCUMENT_BYTES
        )));
    }
    match std::str::from_utf8(bytes.expose()) {
        Ok(s) => Ok(SecretValue::new(s.to_owned())),
        Err(_) => Err(
            Error::new(format!("{name}: the value is not valid UTF-8 text"))
                .with_hint("store binary data base64-encoded"),
        ),
    }
}

fn cmd_set(
    ui: &Ui,
    store: &mut Store,
    env: &str,
    name: &str,
    from_file: Option<PathBuf>,
    raw: bool,
) -> Result<i32> {
    let env = store.project.environment(env)?;
    document::check_name(env.as_str(), name, None)?;
    let value = read_value(name, from_file, raw)?;
    document::check_value(env.as_str(), name, value.expose())?;
    let mut layout_lost = false;
    let report = store.modify(&env, |doc| {
        let doc = store::or_empty(&env, doc);
        if doc.get(name) == Some(&value) {
            return Ok(None);
        }
        let (new, kept) = doc.with_set(env.as_str(), name, &value)?;
        layout_lost = !kept;
        Ok(Some(new))
    })?;
    if layout_lost {
        ui.warn(&format!(
            "{env}: the document's layout could not be kept; it was rewritten in canonical form"
        ));
    }
    note_roster(ui, &env, &report);
    match report.written {
        Written::Changed => ui.note(&format!("{env}: set {name}")),
        Written::Unchanged => ui.note(&format!(
            "{env}: {name} already has that value; nothing written"
        )),
    }
    Ok(0)
}

fn cmd_unset(ui: &Ui, store: &mut Store, env: &str, name: &str) -> Result<i32> {
    let env = store.project.environment(env)?;
    document::check_name(env.as_str(), name, None)?;
    let mut missing = false;
    let report = store.modify(&env, |doc| {
        let Some(doc) = doc else {
            missing = true;
            return Ok(None);
        };
        match doc.with_unset(env.as_str(), name)? {
            Some((new, _)) => Ok(Some(new)),
            None => {
                missing = true;
                Ok(None)
            }
        }
    })?;
    if missing {
        return Err(
            Error::new(format!("{env}: no secret named {name}; nothing changed"))
                .with_hint(format!("`vault show {env}` lists the names")),
        );
    }
    note_roster(ui, &env, &report);
    ui.note(&format!("{env}: removed {name}"));
    Ok(0)
}

fn cmd_show(store: &mut Store, env: &str, values: bool, json: bool) -> Result<i32> {
    let env = store.project.environment(env)?;
    let doc = store.open(&env)?;
    let size = 64
        + doc
            .entries()
            .iter()
            .map(|e| {
                e.name().len() * 2
                    + 8
                    + if values {
                        e.value().expose().len() * 10
                    } else {
                        0
                    }
            })
            .sum::<usize>();
    let mut out = vault::secret::SecretBuf::new(String::with_capacity(size));
    if json {
        out.push_str("{\"environment\":");
        export::push_json_string(&mut out, env.as_str());
        out.push_str(",\"names\":[");
        for (i, e) in doc.entries().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            export::push_json_string(&mut out, e.name());
        }
        out.push(']');
        if values {
            out.push_str(",\"secrets\":{");
            for (i, e) in doc.entries().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                export::push_json_string(&mut out, e.name());
                out.push(':');
                export::push_json_string(&mut out, e.value().expose());
            }
            out.push('}');
        }
        out.push_str("}\n");
    } else {
        for e in doc.entries() {
            out.push_str(e.name());
            if values {
                // Double-quoted YAML: one line per secret, exact and unambiguous.
                out.push_str(": ");
                document::push_double_quoted(&mut out, e.value().expose(), false);
            }
            out.push('\n');
        }
    }
    write_stdout(out.as_bytes())?;
    Ok(0)
}

fn cmd_rekey(ui: &Ui, store: &mut Store, envs: &[String]) -> Result<i32> {
    let targets: Vec<EnvName> = if envs.is_empty() {
        store
            .project
            .environments()?
            .into_iter()
            .filter(|e| store.project.secrets_path(e).exists())
            .collect()
    } else {
        envs.iter()
            .map(|e| store.project.environment(e))
            .collect::<Result<_>>()?
    };
    if targets.is_empty() {
        ui.note("no environment has secrets yet; nothing to rekey");
    }
    for env in targets {
        // Unchanged content, written anew: encrypted to the recipients folder as it stands.
        let report = store.modify(&env, |doc| match doc {
            Some(doc) => Ok(Some(doc)),
            None => Err(Error::new(format!(
                "{env} has no secrets yet; nothing to rekey"
            ))),
        })?;
        ui.note(&format!(
            "{env}: re-encrypted to {}",
            report.members.join(", ")
        ));
        note_roster(ui, &env, &report);
    }
    Ok(0)
}

fn cmd_status(store: &mut Store, json: bool) -> Result<i32> {
    let envs = status::status(store)?;
    if json {
        let list: Vec<serde_json::Value> = envs.iter().map(status_json).collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({ "environments": list }))
            .map_err(|e| Error::new(e.to_string()))?;
        write_stdout(format!("{text}\n").as_bytes())?;
        return Ok(0);
    }
    let mut out = String::new();
    if envs.is_empty() {
        out.push_str("no environments (see `vault init --env ENV`)\n");
    }
    for s in envs {
        out.push_str(&format!("{}\n", s.env));
        match &s.members {
            Ok(m) if m.is_empty() => out.push_str("  members: none\n"),
            Ok(m) => out.push_str(&format!(
                "  members: {}\n",
                m.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => out.push_str(&format!("  members: error: {e}\n")),
        }
        match &s.secrets {
            Ok(Some(n)) => out.push_str(&format!("  secrets: {n}\n")),
            Ok(None) => out.push_str("  secrets: none yet\n"),
            Err(e) => out.push_str(&format!("  secrets: ? ({e})\n")),
        }
        match &s.signature {
            Ok(Some(v)) => out.push_str(&format!(
                "  signed: by {} ({}), serial {}\n",
                v.signer_member, v.signer, v.manifest.serial
            )),
            Ok(None) => {}
            Err(why) => out.push_str(&format!("  signed: REFUSED: {why}\n")),
        }
        let mut rekey: Vec<String> = s
            .removed
            .iter()
            .map(|(m, fp)| format!("{m} ({fp}) removed from the folder"))
            .collect();
        match &s.sync {
            status::Sync::InSync if rekey.is_empty() => out.push_str("  recipients: in sync\n"),
            status::Sync::NoFile => {}
            status::Sync::Unreadable(why) => {
                out.push_str(&format!("  recipients: unknown ({why})\n"))
            }
            status::Sync::RekeyNeeded(why) => rekey.extend(why.iter().cloned()),
            status::Sync::InSync => {}
        }
        if !rekey.is_empty() {
            out.push_str(&format!(
                "  recipients: rekey needed ({})\n",
                rekey.join("; ")
            ));
        }
        for (m, fp) in &s.pending {
            out.push_str(&format!("  pending: {m} ({fp}): not granted yet\n"));
        }
        for x in &s.exposed {
            out.push_str(&format!(
                "  exposed: {} (since {}, when {} left)\n",
                x.name, x.since, x.member
            ));
        }
    }
    write_stdout(out.as_bytes())?;
    Ok(0)
}

fn status_json(s: &status::EnvStatus) -> serde_json::Value {
    use serde_json::json;
    let sync = match &s.sync {
        status::Sync::InSync if s.removed.is_empty() => json!({ "state": "in sync" }),
        status::Sync::InSync => json!({ "state": "rekey needed", "why": [] }),
        status::Sync::RekeyNeeded(why) => json!({ "state": "rekey needed", "why": why }),
        status::Sync::NoFile => json!({ "state": "no file" }),
        status::Sync::Unreadable(why) => json!({ "state": "unknown", "why": [why] }),
    };
    json!({
        "name": s.env.as_str(),
        "members": s.members.as_ref().map(|m| m.iter().map(|m| m.name.clone()).collect::<Vec<_>>()).unwrap_or_default(),
        "secrets": s.secrets.as_ref().ok().copied().flatten(),
        "signature": match &s.signature {
            Ok(Some(v)) => json!({ "valid": true, "signer": v.signer, "member": v.signer_member, "serial": v.manifest.serial }),
            Ok(None) => json!(null),
            Err(why) => json!({ "valid": false, "error": why }),
        },
        "recipients": sync,
        "pending": s.pending.iter().map(|(m, fp)| json!({ "member": m, "fingerprint": fp })).collect::<Vec<_>>(),
        "removed": s.removed.iter().map(|(m, fp)| json!({ "member": m, "fingerprint": fp })).collect::<Vec<_>>(),
        "exposed": s.exposed.iter().map(|x| json!({ "name": x.name, "since": x.since, "member": x.member })).collect::<Vec<_>>(),
    })
}

fn cmd_grant(
    ui: &Ui,
    store: &mut Store,
    env: &str,
    name: &str,
    fingerprints: &[String],
    key: Option<PathBuf>,
) -> Result<i32> {
    let env = store.project.environment(env)?;
    if !vault::project::is_member_name(name) {
        return Err(Error::usage(format!(
            "invalid member name '{name}': use lowercase letters, digits, '.', '_' and '-'"
        )));
    }
    let pub_path = store
        .project
        .recipients_dir(&env)
        .join(format!("{name}.pub"));
    let shown = store.project.display_path(&pub_path);
    let existing = match std::fs::read_to_string(&pub_path) {
        Ok(text) => Some(recipients::parse_file(&text, &shown)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("cannot read", &pub_path, e)),
    };
    let (keys, new_file) = match (key, existing) {
        (Some(file), existing) => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| Error::io("cannot read", &file, e))?;
            let keys = recipients::parse_file(&text, &file.display().to_string())?;
            match existing {
                Some(old)
                    if old
                        .iter()
                        .map(|k| k.fingerprint())
                        .ne(keys.iter().map(|k| k.fingerprint())) =>
                {
                    return Err(Error::new(format!(
                        "{env}: {shown} already holds another key; not replacing it"
                    ))
                    .with_hint(
                        "a member's key changes by revoking the old one and granting the new one",
                    ));
                }
                Some(_) => (keys, None),
                None => (keys, Some(text)),
            }
        }
        (None, Some(keys)) => (keys, None),
        (None, None) => {
            return Err(Error::new(format!("{env}: {shown} does not exist"))
                .with_hint("the newcomer proposes it (their `vault whoami` public key), or pass --key FILE"));
        }
    };
    for k in &keys {
        if !fingerprints.iter().any(|f| *f == k.fingerprint()) {
            return Err(Error::new(format!(
                "{env}: refusing to grant {name}: the key has fingerprint {}, which is not the one you were given ({})",
                k.fingerprint(),
                fingerprints.join(", ")
            ))
            .with_hint("check the fingerprint with them again over another channel; do not grant a key you cannot confirm"));
        }
    }
    for f in fingerprints {
        if !keys.iter().any(|k| k.fingerprint() == *f) {
            return Err(Error::new(format!(
                "{env}: refusing to grant {name}: no key with fingerprint {f} in {shown}"
            )));
        }
    }
    if let Some(text) = &new_file {
        fs::write_atomic(&pub_path, text.as_bytes(), fs::Mode::CreateNew)?;
        vault::fs::checkpoint("key-file-written");
    }
    let result = store.write(
        &env,
        store::RosterChange::Grant {
            member: name,
            keys: &keys,
        },
        |doc| Ok(Some(store::or_empty(&env, doc))),
    );
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if new_file.is_some() {
                let _ = std::fs::remove_file(&pub_path);
            }
            return Err(e);
        }
    };
    ui.note(&format!(
        "{env}: granted {name}; re-encrypted to {}",
        report.members.join(", ")
    ));
    note_roster(ui, &env, &report);
    Ok(0)
}

fn cmd_revoke(ui: &Ui, store: &mut Store, env: &str, name: &str) -> Result<i32> {
    let env = store.project.environment(env)?;
    if !vault::project::is_member_name(name) {
        return Err(Error::usage(format!("invalid member name '{name}'")));
    }
    let pub_path = store
        .project
        .recipients_dir(&env)
        .join(format!("{name}.pub"));
    // A revoke killed after re-encrypting left only the key file: finish it.
    if pub_path.exists() && store.granted(&env)?.is_some_and(|g| !g.contains(name)) {
        std::fs::remove_file(&pub_path).map_err(|e| Error::io("cannot remove", &pub_path, e))?;
        ui.note(&format!(
            "{env}: {name} was already revoked (an earlier revoke was interrupted); removed {}",
            store.project.display_path(&pub_path)
        ));
        return Ok(0);
    }
    let report = store.write(
        &env,
        store::RosterChange::Revoke { member: name },
        |doc| match doc {
            Some(doc) => Ok(Some(doc)),
            None => Err(Error::new(format!(
                "{env} has no secrets yet; remove recipients/{env}/{name}.pub instead"
            ))),
        },
    )?;
    vault::fs::checkpoint("before-key-file-removed");
    match std::fs::remove_file(&pub_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove", &pub_path, e)),
    }
    ui.note(&format!(
        "{env}: revoked {name}; re-encrypted to {}",
        report.members.join(", ")
    ));
    ui.warn(&format!(
        "{env}: every secret {name} could read is marked exposed: give each a new value (`vault status` lists them)"
    ));
    Ok(0)
}

fn cmd_diff(store: &mut Store, env: &str, revs: &[String], values: bool) -> Result<i32> {
    use vault::git::{Git, Version};
    let env = match store.project.environment(env) {
        Ok(e) => e,
        // An environment removed since an older revision can still be compared.
        Err(e) if revs.is_empty() => return Err(e),
        Err(_) => EnvName::parse(env)?,
    };
    let git = Git::new(store.project.root());
    if !git.is_repo() {
        return Err(Error::new(
            "vault diff compares git revisions, and this project is not in a git repository",
        )
        .with_hint("run `git init` and commit, or use `vault show` to see the current secrets"));
    }
    let (old, new) = match revs {
        [] => (Version::Rev("HEAD".into()), Version::Worktree),
        [a] => (Version::Rev(a.clone()), Version::Worktree),
        [a, b, ..] => (Version::Rev(a.clone()), Version::Rev(b.clone())),
    };
    for v in [&old, &new] {
        if let Version::Rev(r) = v {
            git.commit(r)?;
        }
    }
    let old_side = vault::ops::diff::load(store, &git, &env, &old)?;
    let new_side = vault::ops::diff::load(store, &git, &env, &new)?;
    if [&old_side, &new_side]
        .iter()
        .all(|s| !s.present && s.folder.is_empty())
    {
        return Err(Error::new(format!(
            "no environment '{env}' in {} or {}",
            old.label(),
            new.label()
        ))
        .with_hint("check the name: `vault status` lists the environments"));
    }
    let out = vault::ops::diff::compare(&env, &old_side, &new_side, values);
    write_stdout(out.as_bytes())?;
    Ok(0)
}

fn cmd_check(store: &Store, max_exposure_days: i64) -> Result<i32> {
    let report = vault::ops::check::check(&store.project, max_exposure_days)?;
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(f);
        out.push('\n');
    }
    out.push_str(&report.summary);
    out.push('\n');
    write_stdout(out.as_bytes())?;
    Ok(if report.findings.is_empty() { 0 } else { 1 })
}
#[cfg(test)]
mod tests {
    use super::*;

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

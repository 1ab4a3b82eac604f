//! Help, manual pages and shell completion, as a user meets them: each command's
//! `--help` ends with examples (and `-h` stays short), `vault man --dir` writes a page per
//! command that man reads, and completion offers the project's environments and members
//! (through the shell's own protocol, and through bash itself), never the git drivers.

use crate::common::{self, Project};
use std::path::Path;
use std::process::Command;

/// The commands `vault --help` lists (its "Commands:" section), `help` aside.
fn listed_commands(p: &Project) -> Vec<String> {
    let help = p.vault(&["--help"]).success().stdout();
    let section = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap();
    let names: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() > 20, "{help}");
    names
}

#[test]
fn every_command_help_ends_with_examples_and_short_help_stays_short() {
    let p = Project::new();
    let commands = listed_commands(&p);
    for hidden in ["textconv", "merge-file"] {
        assert!(!commands.iter().any(|c| c == hidden), "{hidden} is listed");
    }
    let top = p.vault(&["--help"]).success().stdout();
    assert!(top.contains("Examples:\n  # "), "{top}");
    for cmd in &commands {
        let long = p.vault(&[cmd, "--help"]).success().stdout();
        let examples = long
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd} --help has no examples:\n{long}"));
        assert!(
            examples.contains(&format!("vault {cmd}")) || examples.contains("vault -"),
            "{cmd}: {examples}"
        );
        let short = p.vault(&[cmd, "-h"]).success().stdout();
        assert!(!short.contains("Examples:"), "{cmd} -h:\n{short}");
        assert!(short.len() < long.len(), "{cmd}");
    }
}

#[test]
fn man_writes_a_page_per_command_that_man_reads() {
    let p = Project::new();
    let dir = p.root().join("share/man/man1");
    let run = p.vault(&["man", "--dir", dir.to_str().unwrap()]).success();
    let mut want: Vec<String> = listed_commands(&p)
        .iter()
        .map(|c| format!("vault-{c}.1"))
        .collect();
    want.push("vault.1".into());
    want.sort();
    let mut have: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    have.sort();
    // Exactly the pages, nothing half-written beside them, and each one announced.
    assert_eq!(have, want);
    for page in &want {
        assert!(run
            .stderr()
            .contains(&format!("wrote {}", dir.join(page).display())));
    }
    for page in &want {
        let path = dir.join(page);
        let roff = std::fs::read_to_string(&path).unwrap();
        let title = page.trim_end_matches(".1");
        assert!(roff.contains(&format!(".TH {title} 1")), "{page}");
        assert!(roff.contains(".SH EXAMPLES"), "{page}");
        assert!(read_as_man(&path).contains("EXAMPLES"), "{page}");
    }
    // A subcommand's page is its own: its synopsis and flags.
    let set = read_as_man(&dir.join("vault-set.1"));
    assert!(
        set.contains("vault set") && set.contains("--from-file"),
        "{set}"
    );
    assert!(set.contains("printf %s \"$DB_PASSWORD\" | vault set staging DB_PASSWORD"));
    // Without --dir, the one page on standard output, as before.
    let one = p.vault(&["man"]).success();
    assert!(one.stdout().contains(".TH vault 1") && one.stderr().is_empty());
    // A folder that cannot be made is an error in vault's form, and nothing is written.
    let file = p.root().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = p
        .vault(&["man", "--dir", file.join("man1").to_str().unwrap()])
        .error();
    assert!(err.contains("cannot create"), "{err}");
}

/// A page as the reader sees it: through `man -l` where it is installed, else groff,
/// else the roff text itself.
fn read_as_man(path: &Path) -> String {
    let run = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(out.status.success(), "{path:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("warning"), "{path:?}: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if common::have("man") {
        let mut c = Command::new("man");
        c.args(["--warnings", "-l"]).arg(path);
        c.env("MANPAGER", "cat").env("MANWIDTH", "100");
        run(c)
    } else if common::have("groff") {
        let mut c = Command::new("groff");
        c.args(["-man", "-Tutf8", "-ww"]).arg(path);
        run(c)
    } else {
        std::fs::read_to_string(path).unwrap()
    }
}

/// What vault offers for the last of `words` (the word being typed), asked the way the
/// shell's script asks: `COMPLETE=bash vault -- WORDS...`.
fn offered(p: &Project, cwd: &Path, words: &[&str]) -> Vec<String> {
    let out = p
        .bare(&[])
        .current_dir(cwd)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .arg("--")
        .args(words)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn values(offered: &[String]) -> Vec<&str> {
    offered
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect()
}

#[test]
fn completion_offers_the_projects_environments_and_members() {
    let p = Project::new();
    let root = p.root();
    assert_eq!(
        values(&offered(&p, root, &["vault", "edit", ""])),
        ["production", "staging"]
    );
    assert_eq!(
        values(&offered(&p, root, &["vault", "get", "st"])),
        ["staging"]
    );
    assert_eq!(
        values(&offered(&p, root, &["vault", "rekey", "staging", ""])),
        ["production", "staging"]
    );
    // Members come from the environment typed: recipients/ENV/*.pub.
    assert_eq!(
        values(&offered(&p, root, &["vault", "revoke", "staging", ""])),
        ["alice", "bob"]
    );
    assert_eq!(
        values(&offered(&p, root, &["vault", "revoke", "production", ""])),
        ["alice", "carol"]
    );
    let grant = [
        "vault",
        "grant",
        "--fingerprint",
        "SHA256:x",
        "staging",
        "b",
    ];
    assert_eq!(values(&offered(&p, root, &grant)), ["bob"]);
    // From a subfolder, and from elsewhere with -C DIR, as the command itself would.
    let sub = root.join("conf/pillar");
    assert_eq!(
        values(&offered(&p, &sub, &["vault", "show", ""])),
        ["production", "staging"]
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let c = root.to_str().unwrap();
    assert_eq!(
        values(&offered(
            &p,
            elsewhere.path(),
            &["vault", "-C", c, "revoke", "staging", ""]
        )),
        ["alice", "bob"]
    );
    // Outside any project there is nothing to offer, and no error either.
    assert!(values(&offered(&p, elsewhere.path(), &["vault", "edit", ""])).is_empty());
}

#[test]
fn completion_never_offers_the_git_drivers() {
    let p = Project::new();
    let all = offered(&p, p.root(), &["vault", ""]);
    for visible in ["edit", "provision", "grant", "man", "completions"] {
        assert!(all.iter().any(|w| w == visible), "{visible}: {all:?}");
    }
    for typed in ["", "t", "tex", "textconv", "m", "merge", "merge-file"] {
        let got = offered(&p, p.root(), &["vault", typed]);
        for hidden in ["textconv", "merge-file"] {
            assert!(!got.iter().any(|w| w == hidden), "{typed:?}: {got:?}");
        }
    }
}

#[test]
fn the_completion_script_completes_names_in_bash() {
    let p = Project::new();
    let script = p.vault(&["completions", "bash"]).success().stdout();
    assert!(script.contains("complete -o nospace"), "{script}");
    // bash itself runs the script's function for `vault revoke staging <TAB>`.
    let tab = |words: &str, cword: usize| {
        let out = p.bare(&["completions", "bash"]).output().unwrap();
        let register = String::from_utf8(out.stdout).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{register}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n\
                 _clap_complete_vault vault \"${{COMP_WORDS[COMP_CWORD]}}\"\n\
                 printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .current_dir(p.root())
            .env("HOME", &p.home)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let members = tab("vault revoke staging ''", 3);
    assert!(members.lines().any(|l| l == "alice"), "{members}");
    assert!(members.lines().any(|l| l == "bob"), "{members}");
    assert!(!members.contains("carol"), "{members}");
    let envs = tab("vault edit ''", 2);
    assert!(envs.lines().any(|l| l == "staging"), "{envs}");
    assert!(envs.lines().any(|l| l == "production"), "{envs}");
    let commands = tab("vault ''", 1);
    assert!(commands.lines().any(|l| l == "provision"), "{commands}");
    assert!(!commands.contains("textconv") && !commands.contains("merge-file"));
    // zsh and fish get their own scripts, calling the same vault.
    for shell in ["zsh", "fish"] {
        let s = p.vault(&["completions", shell]).success().stdout();
        assert!(
            s.contains(env!("CARGO_BIN_EXE_vault")) && s.contains("COMPLETE"),
            "{s}"
        );
    }
}

//! Colour: at a terminal errors, warnings, hints and `vault diff` are coloured; off a
//! terminal, with `NO_COLOR` or `TERM=dumb`, not a byte of escape; `--color` overrides
//! it all. And a reader of stderr that goes away ends nothing.

use crate::common::{on_terminal, on_terminal_raw, Project};
use crate::git_workflow::repo;
use std::process::Stdio;

const ESC: u8 = 0x1b;

fn has_escape(bytes: &[u8]) -> bool {
    bytes.contains(&ESC)
}

/// A command that fails with an error and a hint: a misspelt environment.
const FAILING: &[&str] = &["edit", "stagin"];

#[test]
fn off_a_terminal_or_with_no_color_nothing_is_coloured() {
    let p = Project::new();
    p.set("staging", "A", "alpha");
    // Off a terminal (as here): neither stream is coloured, an error's or a result's.
    for args in [FAILING, &["show", "staging"], &["status"]] {
        let out = p.cmd(args).output().unwrap();
        assert!(
            !has_escape(&out.stdout) && !has_escape(&out.stderr),
            "{args:?}"
        );
    }
    let out = p.cmd(FAILING).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("vault: error: "));

    // At a terminal, NO_COLOR (any value), TERM=dumb or --color=never turn it off.
    let off: [(&str, &str, &[&str]); 4] = [
        ("NO_COLOR", "1", &[]),
        ("NO_COLOR", "yes", &[]),
        ("TERM", "dumb", &[]),
        ("TERM", "xterm-256color", &["--color=never"]),
    ];
    for (name, value, flags) in off {
        let args: Vec<&str> = flags.iter().chain(FAILING).copied().collect();
        let mut cmd = p.cmd(&args);
        cmd.env("TERM", "xterm-256color").env(name, value);
        let (_, shown) = on_terminal_raw(&cmd, None);
        assert!(!has_escape(&shown), "{name}={value} {flags:?}");
        assert!(String::from_utf8_lossy(&shown).contains("vault: error: "));
    }
}

#[test]
fn at_a_terminal_an_error_and_its_hint_are_coloured() {
    let p = Project::new();
    let mut cmd = p.cmd(FAILING);
    cmd.env("TERM", "xterm-256color");
    let (status, shown) = on_terminal_raw(&cmd, None);
    assert!(!status.success());
    let shown = String::from_utf8_lossy(&shown);
    // The labels are coloured, the words are not: without the escapes, the same text.
    assert!(
        shown.contains("vault: \x1b[1m\x1b[31merror:\x1b[0m unknown environment 'stagin'"),
        "{shown:?}"
    );
    assert!(
        shown.contains("\x1b[36mhint:\x1b[0m did you mean staging?"),
        "{shown:?}"
    );
    let (_, plain) = on_terminal(&cmd, None);
    assert!(
        plain.contains("vault: error: unknown environment 'stagin'"),
        "{plain}"
    );
}

#[test]
fn color_always_colours_off_a_terminal_and_over_no_color() {
    let p = Project::new();
    // As ripgrep: an explicit --color=always is the user's word, over NO_COLOR too.
    for no_color in [None, Some("1")] {
        let mut cmd = p.cmd(&["--color=always", FAILING[0], FAILING[1]]);
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("\x1b[31merror:\x1b[0m"),
            "{no_color:?}: {err:?}"
        );
    }
    // CLICOLOR_FORCE turns it on off a terminal; NO_COLOR still wins over it.
    let forced = |no_color: bool| {
        let mut cmd = p.cmd(FAILING);
        cmd.env("CLICOLOR_FORCE", "1");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        has_escape(&cmd.output().unwrap().stderr)
    };
    assert!(forced(false));
    assert!(!forced(true));
    // A usage error, before the command line is read, is coloured as asked too.
    let out = p.cmd(&["--color=always", "bogus"]).output().unwrap();
    assert!(has_escape(&out.stderr));
    let out = p.cmd(&["--color", "never", "bogus"]).output().unwrap();
    assert!(!has_escape(&out.stderr));
}

#[test]
fn vault_diff_colours_what_it_adds_removes_and_changes() {
    let p = repo();
    p.set("staging", "A", "alpha-new");
    p.set("staging", "D", "delta");
    p.vault(&["unset", "staging", "B"]).success();
    let out = p
        .cmd(&["--color=always", "diff", "staging"])
        .output()
        .unwrap();
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("\x1b[32m+secret D\x1b[0m\n"), "{shown:?}");
    assert!(shown.contains("\x1b[31m-secret B\x1b[0m\n"), "{shown:?}");
    assert!(shown.contains("\x1b[33m~secret A\x1b[0m\n"), "{shown:?}");
    assert!(
        shown.starts_with("\x1b[1m--- staging (HEAD)\x1b[0m\n"),
        "{shown:?}"
    );
    // Off a terminal, the text as before.
    let plain = p.vault(&["diff", "staging"]).success().stdout();
    assert!(
        plain.contains("\n+secret D\n") && !plain.contains('\x1b'),
        "{plain}"
    );
}

#[test]
fn a_closed_stderr_ends_nothing_and_nothing_is_lost() {
    let p = Project::new();
    let all = p.root().join("all");
    p.vault(&["man", "--dir", all.to_str().unwrap()]).success();
    let pages = std::fs::read_dir(&all).unwrap().count();
    assert!(pages > 10, "{pages} pages");
    // `vault man --dir D 2>&1 | head -1`, with the reader gone before vault writes: each
    // page's note meets a closed pipe, and every page is still written.
    let some = p.root().join("some");
    let mut child = p
        .cmd(&["man", "--dir", some.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(std::fs::read_dir(&some).unwrap().count(), pages);

    // A write and its warnings: the secret is saved, the exit is clean.
    let value = p.root().join(".v");
    std::fs::write(&value, "bravo").unwrap();
    let mut child = p
        .cmd(&[
            "set",
            "staging",
            "B",
            "--from-file",
            value.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(
        p.vault(&["get", "staging", "B"]).success().stdout(),
        "bravo"
    );
    // An error with nowhere to go still exits as an error, not killed by a signal.
    let mut child = p.cmd(FAILING).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

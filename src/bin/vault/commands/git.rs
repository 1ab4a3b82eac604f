//! vault inside git: `install-git`, the `pre-commit` gate, and the drivers git runs
//! itself (`textconv` for diffs, `merge-file` for merges).

use super::Context;
use crate::output::{self, report, write_stdout, Ui};
use std::path::Path;
use vault::error::{Error, Result};
use vault::ops::{diff, install_git, merge, precommit};
use vault::project::Project;
use vault::store::Store;
use vault::{envelope, fs};

pub fn install(ui: &Ui, store: &Store) -> Result<i32> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(format!("cannot find vault's own binary: {e}")))?;
    for line in install_git::install(&store.project, &exe)? {
        ui.note(&line);
    }
    Ok(0)
}

/// Exit 1 refuses the commit.
pub fn pre_commit(store: &Store) -> Result<i32> {
    let findings = precommit::findings(&store.project)?;
    if findings.is_empty() {
        return Ok(0);
    }
    for f in &findings {
        output::line(&format!("vault: pre-commit: {f}"));
    }
    output::hint("the commit was refused; fix the above and commit again");
    Ok(1)
}

pub fn textconv(ctx: &Context, file: &Path) -> Result<i32> {
    // git runs this from the repository's top, which may lie above the project.
    let project = Project::discover(&ctx.cwd).unwrap_or_else(|_| Project::at(&ctx.cwd));
    let mut store = Store::new(
        project,
        ctx.identities(),
        false,
        Box::new(Ui {
            quiet: true,
            verbose: false,
        }),
    );
    let bytes = fs::read_limited(file, envelope::MAX_CIPHERTEXT_BYTES)?
        .ok_or_else(|| Error::new(format!("{}: no such file", file.display())))?;
    write_stdout(diff::textconv(&mut store, &bytes).as_bytes())?;
    Ok(0)
}

/// Exit 1 is a conflict for git.
pub fn merge_file(ctx: &Context, files: &merge::MergeFiles<'_>) -> Result<i32> {
    let ui = Ui {
        quiet: ctx.ui.quiet,
        verbose: false,
    };
    let result = merge::merge_file(
        |project| Store::new(project, ctx.identities(), false, Box::new(ui)),
        files,
    );
    match result {
        Ok(merge::Merged::Clean { env, from_other }) => {
            if from_other.is_empty() {
                ctx.ui.note(&format!(
                    "{env}: merged; nothing new from the other branch, re-signed"
                ));
            } else {
                ctx.ui.note(&format!(
                    "{env}: merged by key (from the other branch: {}), re-encrypted and signed",
                    from_other.join(", ")
                ));
            }
            Ok(0)
        }
        Ok(merge::Merged::Finished) => Ok(0),
        Err(e) => {
            // git takes a non-zero exit as a conflict, and keeps ours in place.
            if !e.message().is_empty() {
                report(&e);
            }
            Ok(1)
        }
    }
}

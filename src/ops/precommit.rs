//! The pre-commit gate: refuses a commit that stages a plaintext secrets file, a pillar
//! file that looks like unencrypted secrets, an environment's secrets without their
//! matching signature, or anything `vault check` rejects.

use crate::error::Result;
use crate::git::Git;
use crate::ops::check;
use crate::project::{Project, SECRETS_FILE};
use crate::store::signed_manifest;
use crate::trust;

/// One line per reason to refuse the commit; empty when it may go ahead.
pub fn findings(project: &Project) -> Result<Vec<String>> {
    let git = Git::new(project.root());
    let mut out = Vec::new();
    let staged = git.staged()?;
    for path in &staged {
        let name = path.rsplit('/').next().unwrap_or(path);
        if name == "secrets.sls" {
            out.push(format!(
                "{path}: a plaintext secrets file is staged: `git restore --staged {path}`; vault keeps it encrypted as {SECRETS_FILE}"
            ));
            continue;
        }
        if name.starts_with(".vault-") {
            out.push(format!(
                "{path}: a vault work file of an interrupted write is staged: `git restore --staged {path}`; the next vault command on that environment finishes the write and removes it"
            ));
            continue;
        }
        let content = git.show("", path)?.unwrap_or_default();
        if name == SECRETS_FILE {
            match crate::envelope::header(&content) {
                Err(_) => out.push(format!("{path}: staged, but it is not an age file (plaintext under an encrypted name?)")),
                Ok(_) => {
                    // The pair must be staged together: the signature must be for this ciphertext.
                    let sig = git.show("", &format!("{path}.sig"))?;
                    let want = trust::ciphertext_hash(&content);
                    let ok = sig
                        .as_deref()
                        .and_then(signed_manifest)
                        .is_some_and(|m| m.ciphertext == want);
                    if !ok {
                        out.push(format!("{path}: its staged signature ({path}.sig) is not for it: stage both with `git add {}`", path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".")));
                    }
                }
            }
            continue;
        }
        if path.starts_with("conf/pillar/") && !name.ends_with(".sig") {
            if let Some(why) = looks_like_secrets(&content) {
                out.push(format!("{path}: looks like unencrypted secrets ({why}): keep them with `vault set` or `vault edit` instead"));
            }
        }
    }
    let report = check::check_working_tree(project, 7)?;
    out.extend(
        report
            .findings
            .into_iter()
            .map(|f| format!("vault check: {f}")),
    );
    Ok(out)
}

/// Why `content` (a pillar file) looks like it holds secrets in the clear, if it does.
pub fn looks_like_secrets(content: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(content);
    if text.contains("PRIVATE KEY-----") {
        return Some("a private key block".into());
    }
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('#') {
            continue;
        }
        if line == "secrets:" || line.starts_with("secrets: ") {
            return Some(format!("a `secrets:` block, line {}", i + 1));
        }
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.trim();
        // Jinja references and empty values carry nothing secret.
        if value.is_empty() || value.starts_with("{{") || value == "''" || value == "\"\"" {
            continue;
        }
        let k = key.trim().to_ascii_uppercase();
        const WORDS: &[&str] = &[
            "PASSWORD",
            "PASSWD",
            "SECRET",
            "TOKEN",
            "API_KEY",
            "APIKEY",
            "PRIVATE_KEY",
            "ACCESS_KEY",
            "CREDENTIAL",
        ];
        if let Some(w) = WORDS.iter().find(|w| k.contains(*w)) {
            return Some(format!("a {w} value, line {}", i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_the_clear_are_spotted() {
        assert!(looks_like_secrets(b"secrets:\n  A: b\n").is_some());
        assert!(looks_like_secrets(b"db_password: hunter2\n").is_some());
        assert!(looks_like_secrets(b"x:\n  AWS_SECRET_ACCESS_KEY: abc\n").is_some());
        assert!(looks_like_secrets(b"-----BEGIN OPENSSH PRIVATE KEY-----\n").is_some());
        assert!(looks_like_secrets(b"project_name: demo\nhosts:\n  - 10.0.0.1\n").is_none());
        assert!(looks_like_secrets(b"db_password: {{ pillar['x'] }}\n").is_none());
        assert!(looks_like_secrets(b"# password: old\ndomain: x\n").is_none());
        assert!(looks_like_secrets(b"secret_key_name: \"\"\n").is_none());
    }
}

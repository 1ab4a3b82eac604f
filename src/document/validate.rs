//! The rules for secret names and for values given to `set`.

use super::MAX_DOCUMENT_BYTES;
use crate::error::{Error, Result};

/// Checks a secret name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_name(env: &str, name: &str, line: Option<usize>) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        return Ok(());
    }
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    Err(Error::new(format!(
        "{env}: {at}invalid secret name '{}': use letters, digits and '_', not starting with a digit",
        name.escape_debug()
    )))
}

/// Checks a value given to `set`: no NUL, within the size limit.
pub fn check_value(env: &str, name: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::new(format!(
            "{env}: {name}: the value holds a NUL character, which no environment can carry"
        )));
    }
    if value.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::new(format!(
            "{env}: {name}: the value is over the limit of {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(())
}

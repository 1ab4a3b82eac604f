//! The age envelope: ASCII-armored encryption to recipients, decryption, and a look at
//! the header to learn whom a file is encrypted to.

use crate::error::{Error, Result};
use crate::keys::recipients::PublicKey;
use crate::secret::SecretBytes;
use age::armor::{ArmoredReader, ArmoredWriter, Format};
use std::io::{Read, Write};

/// The largest encrypted file accepted, in bytes (armor makes it larger than the document).
pub const MAX_CIPHERTEXT_BYTES: usize = 2 << 20;

/// Encrypts `plaintext` to every key, as an ASCII-armored age file.
pub fn encrypt(plaintext: &[u8], keys: &[&PublicKey]) -> Result<Vec<u8>> {
    let recipients: Vec<Box<dyn age::Recipient + Send>> = keys
        .iter()
        .map(|k| k.age_recipient())
        .collect::<Result<_>>()?;
    let encryptor = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )
    .map_err(|e| Error::new(format!("cannot encrypt: {e}")))?;
    // Armored size: header (~200 bytes per recipient) plus base64 of payload and tags.
    let mut out = Vec::with_capacity(
        256 + keys.len() * 256 + plaintext.len() * 4 / 3 + plaintext.len() / 48 + 128,
    );
    let fail = |e: std::io::Error| Error::new(format!("cannot encrypt: {e}"));
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(fail)?;
    let mut writer = encryptor.wrap_output(armor).map_err(fail)?;
    writer.write_all(plaintext).map_err(fail)?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(fail)?;
    Ok(out)
}

/// Why a file did not open.
#[derive(Debug)]
pub enum OpenError {
    /// None of the identities given matches a recipient of the file.
    NoMatchingKey,
    /// The file is not an age file, is damaged, or was cut short.
    Damaged(String),
}

/// Decrypts `ciphertext` with the first of `identities` that matches.
pub fn decrypt(
    ciphertext: &[u8],
    identities: &[&dyn age::Identity],
) -> Result<SecretBytes, OpenError> {
    let decryptor =
        age::Decryptor::new_buffered(ArmoredReader::new(ciphertext)).map_err(damaged)?;
    if decryptor.is_scrypt() {
        return Err(OpenError::Damaged(
            "it is passphrase-encrypted, not encrypted to recipients".into(),
        ));
    }
    let mut reader = decryptor
        .decrypt(identities.iter().copied())
        .map_err(damaged)?;
    // The plaintext is shorter than the ciphertext, so this never reallocates (and never
    // leaves an unwiped copy behind).
    let mut out = SecretBytes::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(out.expose_mut())
        .map_err(|e| OpenError::Damaged(format!("the payload is damaged or cut short ({e})")))?;
    Ok(out)
}

fn damaged(e: age::DecryptError) -> OpenError {
    match e {
        age::DecryptError::NoMatchingKeys => OpenError::NoMatchingKey,
        age::DecryptError::InvalidMac => {
            OpenError::Damaged("its header is damaged (MAC mismatch)".into())
        }
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            OpenError::Damaged("it is not an age file, or its header is damaged".into())
        }
        age::DecryptError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            OpenError::Damaged("it is cut short".into())
        }
        other => OpenError::Damaged(other.to_string()),
    }
}

/// The recipient stanzas of an age file's header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// X25519 stanzas: anonymous, so only their number is known.
    pub x25519: usize,
    /// The tags of SSH stanzas (ssh-ed25519 and ssh-rsa), which identify the key.
    pub ssh_tags: Vec<String>,
    /// Stanzas of any other type.
    pub other: usize,
}

/// Reads the header of `ciphertext` (armored or binary) without any key.
pub fn header(ciphertext: &[u8]) -> Result<Header, String> {
    let mut reader = ArmoredReader::new(ciphertext);
    // The header is text lines ending at the `--- MAC` line; read just enough of it.
    let mut bytes = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|_| "it is not an age file, or its armor is damaged".to_string())?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        if bytes.windows(5).any(|w| w == b"\n--- ") || bytes.len() > MAX_CIPHERTEXT_BYTES {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.split('\n');
    if lines.next() != Some("age-encryption.org/v1") {
        return Err("it is not an age file".into());
    }
    let mut header = Header::default();
    for line in lines {
        if line.starts_with("--- ") {
            return Ok(header);
        }
        let Some(stanza) = line.strip_prefix("-> ") else {
            continue;
        };
        let mut args = stanza.split(' ');
        match (args.next(), args.next()) {
            (Some("X25519"), _) => header.x25519 += 1,
            (Some("ssh-ed25519" | "ssh-rsa"), Some(tag)) => header.ssh_tags.push(tag.to_string()),
            // Random stanzas age implementations add to keep the format extensible.
            (Some(kind), _) if kind.ends_with("-grease") => {}
            _ => header.other += 1,
        }
    }
    Err("its header is cut short".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn round_trip_and_header() {
        let alice =
            PublicKey::parse(include_str!("../tests/fixtures/keys/alice_ed25519.pub")).unwrap();
        let bob = PublicKey::parse(include_str!("../tests/fixtures/keys/bob.agekey.pub")).unwrap();
        let ct = encrypt(b"secrets:\n  A: b\n", &[&alice, &bob]).unwrap();
        assert!(ct.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        let h = header(&ct).unwrap();
        assert_eq!(h.x25519, 1);
        assert_eq!(h.ssh_tags, vec![alice.stanza_tag().unwrap()]);
        let key = include_str!("../tests/fixtures/keys/bob.agekey");
        let line = key
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .unwrap();
        let id = age::x25519::Identity::from_str(line).unwrap();
        let pt = decrypt(&ct, &[&id]).unwrap();
        assert_eq!(pt.expose(), b"secrets:\n  A: b\n");
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            decrypt(&ct, &[&other]),
            Err(OpenError::NoMatchingKey)
        ));
        assert!(matches!(
            decrypt(b"hello", &[&id]),
            Err(OpenError::Damaged(_))
        ));
        assert!(matches!(
            decrypt(&ct[..ct.len() - 60], &[&id]),
            Err(OpenError::Damaged(_))
        ));
        assert!(header(b"not age").is_err());
    }
}

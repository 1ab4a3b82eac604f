//! The age envelope: ASCII-armored encryption to recipients, decryption, and a look at
//! the header to learn whom a file is encrypted to and whether that is exactly its roster.

use crate::error::{Error, Result};
use crate::keys::recipients::{KeyKind, Member, PublicKey};
use crate::manifest::RosterEntry;
use crate::secret::SecretBytes;
use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age_core::format::{FileKey, Stanza as AgeStanza};
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

/// The order of the stanzas vault writes: one per distinct key of the roster, in the
/// roster's order (see `store::write::seal`), then age's grease.
pub fn stanza_order(roster: &[RosterEntry]) -> Vec<&str> {
    let mut order: Vec<&str> = Vec::with_capacity(roster.len());
    for r in roster {
        if !order.contains(&r.fingerprint.as_str()) {
            order.push(&r.fingerprint);
        }
    }
    order
}

/// An identity that tries first the stanza the roster says is its own. An X25519 stanza
/// names no key, so age tries each in turn, one key agreement apiece: the reader whose
/// key is the tenth of ten makes one instead of ten. Whatever that stanza gives but a
/// file key (not this identity's, an error), age's own order decides, stanza by stanza.
pub struct FirstTry<'a> {
    pub identity: &'a dyn age::Identity,
    /// The index of the stanza to try first, when the roster names this identity's key.
    pub stanza: Option<usize>,
}

impl age::Identity for FirstTry<'_> {
    fn unwrap_stanza(&self, stanza: &AgeStanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.identity.unwrap_stanza(stanza)
    }

    fn unwrap_stanzas(&self, stanzas: &[AgeStanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let first = self.stanza.and_then(|i| stanzas.get(i));
        if let Some(Some(Ok(key))) = first.map(|s| self.identity.unwrap_stanza(s)) {
            // The header MAC, checked by age with this key, proves it is the file's.
            return Some(Ok(key));
        }
        self.identity.unwrap_stanzas(stanzas)
    }
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

/// One recipient stanza of an age header, as vault reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    /// `-> X25519 <share>`: it names no key, so it cannot be told whose it is.
    X25519,
    /// `-> ssh-ed25519 <tag> <share>` or `-> ssh-rsa <tag>`: `kind` is the type.
    Ssh { kind: &'static str, tag: String },
    /// `-> <1 to 8 characters>-grease ...`: the random stanza age 0.12 adds after the
    /// recipients to keep the format extensible (the Go age 1.1 writes none).
    Grease,
    /// Any other type (a plugin, scrypt), or a known type with the wrong arguments:
    /// vault never writes one. The type, made printable and cut short.
    Other(String),
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
    /// Every stanza, in the order of the header.
    pub stanzas: Vec<Stanza>,
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
        // Stanza bodies are base64 lines: only `-> ` lines open a stanza.
        if let Some(stanza) = line.strip_prefix("-> ") {
            header.push(parse_stanza(stanza));
        }
    }
    Err("its header is cut short".into())
}

/// One stanza's first line after `-> `, with the arguments age writes for its type.
fn parse_stanza(line: &str) -> Stanza {
    let args: Vec<&str> = line.split(' ').collect();
    match args.as_slice() {
        ["X25519", _share] => Stanza::X25519,
        ["ssh-ed25519", tag, _share] => Stanza::Ssh {
            kind: "ssh-ed25519",
            tag: tag.to_string(),
        },
        ["ssh-rsa", tag] => Stanza::Ssh {
            kind: "ssh-rsa",
            tag: tag.to_string(),
        },
        [kind, ..] if kind.ends_with("-grease") && kind.len() <= 8 + 7 => Stanza::Grease,
        [kind, ..] => Stanza::Other(
            kind.chars()
                .take(32)
                .map(|c| if c.is_ascii_graphic() { c } else { '?' })
                .collect(),
        ),
        [] => Stanza::Other(String::new()),
    }
}

impl Header {
    fn push(&mut self, stanza: Stanza) {
        match &stanza {
            Stanza::X25519 => self.x25519 += 1,
            Stanza::Ssh { tag, .. } => self.ssh_tags.push(tag.clone()),
            Stanza::Grease => {}
            Stanza::Other(_) => self.other += 1,
        }
        self.stanzas.push(stanza);
    }

    /// The stanzas that wrap the file key for a recipient: all but grease.
    pub fn recipients(&self) -> usize {
        self.stanzas
            .iter()
            .filter(|s| !matches!(s, Stanza::Grease))
            .count()
    }
}

/// A key a roster lists, as the header check sees it.
#[derive(Debug, Clone, Copy)]
pub struct RosterKey<'a> {
    pub member: &'a str,
    pub fingerprint: &'a str,
    /// The key, when the recipients folder holds it: only then is its type known.
    pub key: Option<&'a PublicKey>,
}

impl RosterKey<'_> {
    /// The SSH stanza tag this key would have. A key the folder no longer holds has
    /// only its fingerprint, from which an SSH key's tag follows.
    fn tag(&self) -> Option<String> {
        match self.key {
            Some(k) => k.stanza_tag(),
            None => crate::keys::recipients::stanza_tag_of_fingerprint(self.fingerprint),
        }
    }

    fn named(&self) -> String {
        format!("{}'s key ({})", self.member, self.fingerprint)
    }
}

/// The distinct keys of `roster` (one per fingerprint), each with its key from `folder`
/// when the folder holds it.
pub fn roster_keys<'a>(roster: &'a [RosterEntry], folder: &'a [Member]) -> Vec<RosterKey<'a>> {
    let mut keys: Vec<RosterKey<'a>> = Vec::new();
    for r in roster {
        if keys.iter().any(|k| k.fingerprint == r.fingerprint) {
            continue;
        }
        let key = folder
            .iter()
            .flat_map(|m| &m.keys)
            .find(|k| k.fingerprint() == r.fingerprint);
        keys.push(RosterKey {
            member: &r.member,
            fingerprint: &r.fingerprint,
            key,
        });
    }
    keys
}

/// Whether `ciphertext` is encrypted to exactly the keys of the signed `roster` (their
/// types from `folder`); the error is one line naming what differs.
pub fn check_header(
    ciphertext: &[u8],
    roster: &[RosterEntry],
    folder: &[Member],
) -> Result<(), String> {
    header(ciphertext)?.matches(roster, folder)
}

fn keys(n: usize) -> String {
    if n == 1 {
        "1 key".into()
    } else {
        format!("{n} keys")
    }
}

impl Header {
    /// Whether the header holds exactly the keys of the signed `roster` (their types
    /// from `folder`): [`compare`](Self::compare) in the words readers and reports use.
    pub fn matches(&self, roster: &[RosterEntry], folder: &[Member]) -> Result<(), String> {
        self.compare(&roster_keys(roster, folder), "its signed roster")
    }

    /// Checks the header against `roster`, which `listed_by` names in the error ("its
    /// signed roster"): one stanza per key and nothing else. An SSH stanza must match a
    /// key by tag and type, no two stanzas one key; X25519 stanzas name no key, so they
    /// can only be counted: against the X25519 keys (and those of unknown type) left.
    pub fn compare(&self, roster: &[RosterKey], listed_by: &str) -> Result<(), String> {
        self.check_types()?;
        if self.recipients() != roster.len() {
            return Err(format!(
                "the file is encrypted to {}, {listed_by} lists {}",
                keys(self.recipients()),
                roster.len()
            ));
        }
        let mut claimed = vec![false; roster.len()];
        for stanza in &self.stanzas {
            if let Stanza::Ssh { kind, tag } = stanza {
                let i = claim(roster, &claimed, kind, tag, listed_by)?;
                claimed[i] = true;
            }
        }
        // Every SSH stanza has its key, so the keys left over are as many as the X25519
        // stanzas: each must be an X25519 key, or one whose type is unknown.
        for (k, _) in roster.iter().zip(&claimed).filter(|(_, c)| !**c) {
            if k.key.is_some_and(|k| k.kind() != KeyKind::X25519) {
                return Err(format!(
                    "the file is not encrypted to {}, which {listed_by} lists",
                    k.named()
                ));
            }
        }
        Ok(())
    }

    /// No stanza of a type vault does not write; grease only as age writes it: at most
    /// one, after the recipients.
    fn check_types(&self) -> Result<(), String> {
        if let Some(Stanza::Other(kind)) =
            self.stanzas.iter().find(|s| matches!(s, Stanza::Other(_)))
        {
            return Err(format!(
                "the file is encrypted to a recipient of type '{kind}', which vault never writes"
            ));
        }
        let grease: Vec<usize> = (0..self.stanzas.len())
            .filter(|&i| self.stanzas[i] == Stanza::Grease)
            .collect();
        if grease.len() > 1 {
            return Err(format!(
                "the file's header holds {} grease stanzas, where age writes one at most",
                grease.len()
            ));
        }
        if grease.first().is_some_and(|&i| i + 1 != self.stanzas.len()) {
            return Err(
                "the file's header holds a grease stanza before a recipient, where age writes it last"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The index of the roster key an SSH stanza of type `kind` with `tag` is for: a key
/// of that type with that tag, else a key of unknown type whose fingerprint gives that
/// tag, not claimed by another stanza (`claimed`).
fn claim(
    roster: &[RosterKey],
    claimed: &[bool],
    kind: &str,
    tag: &str,
    listed_by: &str,
) -> Result<usize, String> {
    let same_tag: Vec<usize> = (0..roster.len())
        .filter(|&i| roster[i].tag().as_deref() == Some(tag))
        .collect();
    let same_kind = |i: &usize| roster[*i].key.is_none_or(|k| k.stanza_type() == kind);
    let known_first = |i: &usize| roster[*i].key.is_none();
    let mut fitting: Vec<usize> = same_tag.iter().copied().filter(same_kind).collect();
    fitting.sort_by_key(known_first);
    if let Some(&i) = fitting.iter().find(|&&i| !claimed[i]) {
        return Ok(i);
    }
    if let Some(&i) = fitting.first() {
        return Err(format!(
            "the file holds two stanzas for {}",
            roster[i].named()
        ));
    }
    if let Some(k) = same_tag.first().and_then(|&i| roster[i].key) {
        return Err(format!(
            "the file is encrypted to an {kind} key with the tag of {}'s {} key ({}), a different type",
            roster[same_tag[0]].member,
            k.stanza_type(),
            k.fingerprint()
        ));
    }
    Err(format!(
        "the file is encrypted to an {kind} key (tag {tag}) that {listed_by} does not list"
    ))
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

    fn key(text: &str) -> PublicKey {
        PublicKey::parse(text).unwrap()
    }

    /// An identity that counts the stanzas it is asked to unwrap (each X25519 one is a
    /// key agreement).
    struct Counting<'a>(&'a age::x25519::Identity, std::cell::Cell<usize>);

    impl age::Identity for Counting<'_> {
        fn unwrap_stanza(&self, s: &AgeStanza) -> Option<Result<FileKey, age::DecryptError>> {
            self.1.set(self.1.get() + 1);
            self.0.unwrap_stanza(s)
        }
    }

    #[test]
    fn a_key_told_its_stanza_makes_one_key_agreement_and_a_wrong_hint_still_opens() {
        let ids: Vec<age::x25519::Identity> =
            (0..6).map(|_| age::x25519::Identity::generate()).collect();
        let publics: Vec<PublicKey> = ids
            .iter()
            .map(|i| key(&i.to_public().to_string()))
            .collect();
        let ct = encrypt(b"secrets:\n  A: b\n", &publics.iter().collect::<Vec<_>>()).unwrap();
        let last = Counting(&ids[5], Default::default());
        let open = |id: &dyn age::Identity, stanza| {
            let tried = FirstTry {
                identity: id,
                stanza,
            };
            decrypt(&ct, &[&tried])
                .map(|p| p.expose().to_vec())
                .unwrap()
        };
        // In age's order the sixth key tries all six stanzas; told its own, one.
        assert_eq!(open(&last, None), b"secrets:\n  A: b\n");
        assert_eq!(last.1.replace(0), 6);
        assert_eq!(open(&last, Some(5)), b"secrets:\n  A: b\n");
        assert_eq!(last.1.replace(0), 1);
        // A wrong stanza, or one past the header, costs one try more, never the file.
        assert_eq!(open(&last, Some(0)), b"secrets:\n  A: b\n");
        assert_eq!(last.1.replace(0), 7);
        assert_eq!(open(&last, Some(40)), b"secrets:\n  A: b\n");
        // A key that is not a recipient is still told so.
        let stranger = age::x25519::Identity::generate();
        let tried = FirstTry {
            identity: &stranger,
            stanza: Some(2),
        };
        assert!(matches!(
            decrypt(&ct, &[&tried]),
            Err(OpenError::NoMatchingKey)
        ));
    }

    #[test]
    fn the_stanza_order_is_the_roster_s_with_each_key_once() {
        let e = |member: &str, fingerprint: &str| RosterEntry {
            member: member.into(),
            fingerprint: fingerprint.into(),
            granted_by: String::new(),
            date: String::new(),
            serial: None,
            grant: String::new(),
        };
        let roster = [
            e("alice", "SHA256:a"),
            e("bob", "SHA256:b"),
            e("bob2", "SHA256:a"),
        ];
        assert_eq!(stanza_order(&roster), ["SHA256:a", "SHA256:b"]);
    }

    struct Keys {
        alice: PublicKey,
        bob: PublicKey,
        carol: PublicKey,
        mallory: PublicKey,
    }

    fn keys() -> Keys {
        Keys {
            alice: key(include_str!("../tests/fixtures/keys/alice_ed25519.pub")),
            bob: key(include_str!("../tests/fixtures/keys/bob.agekey.pub")),
            carol: key(include_str!("../tests/fixtures/keys/carol_rsa.pub")),
            mallory: key(include_str!("../tests/fixtures/keys/mallory_ed25519.pub")),
        }
    }

    fn listed<'a>(list: &[(&'a str, &'a PublicKey)]) -> Vec<RosterKey<'a>> {
        list.iter()
            .map(|(m, k)| RosterKey {
                member: m,
                fingerprint: k.fingerprint_str(),
                key: Some(*k),
            })
            .collect()
    }

    fn ssh(k: &PublicKey) -> Stanza {
        Stanza::Ssh {
            kind: k.stanza_type(),
            tag: k.stanza_tag().unwrap(),
        }
    }

    fn of(stanzas: Vec<Stanza>) -> Header {
        let mut h = Header::default();
        for s in stanzas {
            h.push(s);
        }
        h
    }

    fn differs(h: Header, roster: &[RosterKey]) -> String {
        h.compare(roster, "its signed roster").unwrap_err()
    }

    #[test]
    fn encrypt_writes_one_stanza_per_key_then_one_grease() {
        let k = keys();
        let ct = encrypt(b"secrets: {}\n", &[&k.alice, &k.bob, &k.carol]).unwrap();
        let h = header(&ct).unwrap();
        assert_eq!(
            h.stanzas,
            [ssh(&k.alice), Stanza::X25519, ssh(&k.carol), Stanza::Grease]
        );
        let roster = listed(&[("alice", &k.alice), ("bob", &k.bob), ("carol", &k.carol)]);
        assert_eq!(h.compare(&roster, "its signed roster"), Ok(()));
    }

    #[test]
    fn a_header_must_hold_exactly_the_roster() {
        let k = keys();
        let roster = listed(&[("alice", &k.alice), ("bob", &k.bob)]);
        let honest = || vec![ssh(&k.alice), Stanza::X25519, Stanza::Grease];
        assert_eq!(of(honest()).compare(&roster, "its signed roster"), Ok(()));
        // Go's age writes no grease.
        assert_eq!(
            of(vec![Stanza::X25519, ssh(&k.alice)]).compare(&roster, "x"),
            Ok(())
        );
        for (stanzas, want) in [
            (
                vec![ssh(&k.alice), Stanza::X25519, ssh(&k.mallory)],
                "the file is encrypted to 3 keys, its signed roster lists 2".to_string(),
            ),
            (
                vec![ssh(&k.alice), Stanza::X25519, Stanza::X25519],
                "the file is encrypted to 3 keys, its signed roster lists 2".into(),
            ),
            (
                vec![ssh(&k.alice)],
                "the file is encrypted to 1 key, its signed roster lists 2".into(),
            ),
            (
                vec![ssh(&k.mallory), Stanza::X25519],
                format!(
                    "the file is encrypted to an ssh-ed25519 key (tag {}) that its signed roster does not list",
                    k.mallory.stanza_tag().unwrap()
                ),
            ),
            (
                vec![ssh(&k.alice), ssh(&k.alice)],
                format!("the file holds two stanzas for alice's key ({})", k.alice.fingerprint()),
            ),
            (
                vec![Stanza::X25519, Stanza::X25519],
                format!(
                    "the file is not encrypted to alice's key ({}), which its signed roster lists",
                    k.alice.fingerprint()
                ),
            ),
            (
                vec![
                    Stanza::Ssh { kind: "ssh-rsa", tag: k.alice.stanza_tag().unwrap() },
                    Stanza::X25519,
                ],
                format!(
                    "the file is encrypted to an ssh-rsa key with the tag of alice's ssh-ed25519 key ({}), a different type",
                    k.alice.fingerprint()
                ),
            ),
            (
                vec![ssh(&k.alice), Stanza::Other("scrypt".into())],
                "the file is encrypted to a recipient of type 'scrypt', which vault never writes".into(),
            ),
            (
                vec![ssh(&k.alice), Stanza::Grease, Stanza::X25519],
                "the file's header holds a grease stanza before a recipient, where age writes it last".into(),
            ),
            (
                vec![ssh(&k.alice), Stanza::X25519, Stanza::Grease, Stanza::Grease],
                "the file's header holds 2 grease stanzas, where age writes one at most".into(),
            ),
        ] {
            assert_eq!(differs(of(stanzas), &roster), want);
        }
    }

    #[test]
    fn a_roster_key_the_folder_lost_matches_by_its_fingerprint() {
        let k = keys();
        // carol's and bob's keys left the folder: only their fingerprints are known.
        let mut roster = listed(&[("alice", &k.alice), ("bob", &k.bob), ("carol", &k.carol)]);
        roster[1].key = None;
        roster[2].key = None;
        let h = of(vec![
            ssh(&k.alice),
            Stanza::X25519,
            ssh(&k.carol),
            Stanza::Grease,
        ]);
        assert_eq!(h.compare(&roster, "its signed roster"), Ok(()));
        // An SSH key with neither one's tag is still refused.
        let h = of(vec![ssh(&k.alice), Stanza::X25519, ssh(&k.mallory)]);
        assert!(differs(h, &roster).contains("that its signed roster does not list"));
    }

    #[test]
    fn stanzas_are_read_as_age_writes_them() {
        assert_eq!(parse_stanza("X25519 abc"), Stanza::X25519);
        assert_eq!(
            parse_stanza("ssh-rsa AbCdEf"),
            Stanza::Ssh {
                kind: "ssh-rsa",
                tag: "AbCdEf".into()
            }
        );
        assert_eq!(parse_stanza("a#-grease x y"), Stanza::Grease);
        // A known type with the wrong arguments is no stanza vault wrote.
        assert_eq!(parse_stanza("X25519"), Stanza::Other("X25519".into()));
        assert_eq!(
            parse_stanza("ssh-rsa AbCdEf extra"),
            Stanza::Other("ssh-rsa".into())
        );
        assert_eq!(
            parse_stanza("ssh-ed25519 AbCdEf"),
            Stanza::Other("ssh-ed25519".into())
        );
        assert_eq!(
            parse_stanza("scrypt salt 18"),
            Stanza::Other("scrypt".into())
        );
        assert_eq!(
            parse_stanza("much-too-long-grease"),
            Stanza::Other("much-too-long-grease".into())
        );
        assert_eq!(parse_stanza("a\u{1b}b"), Stanza::Other("a?b".into()));
    }
}

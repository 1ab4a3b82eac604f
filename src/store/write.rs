//! The one write path, as its steps: under the lock, verify and decrypt the current pair,
//! apply the change, settle the next roster and who signs, date the secrets and carry
//! their exposures, seal (encrypt and sign), and replace both files as one.

use super::{journal, RosterChange, Store, WriteReport, Written};
use crate::document::Document;
use crate::envelope;
use crate::error::{Error, Result};
use crate::keys::recipients::{self, Member, PublicKey};
use crate::keys::signing::{self, Signer};
use crate::manifest::{self, Exposure, Manifest, RosterEntry};
use crate::notice::Level;
use crate::project::{EnvName, SECRETS_FILE, SIDECAR_FILE};
use crate::trust::{self, Verified};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

/// The environment as a write found it.
struct Current {
    doc: Option<Document>,
    verified: Option<Verified>,
    /// Chosen before anything was decrypted (None for a new environment).
    signer: Option<Signer>,
}

impl Store {
    /// The one write path: verify and decrypt the current file, apply `change` and
    /// `roster`, encrypt to the roster, and sign the new manifest with the writer's key.
    pub fn write(
        &mut self,
        env: &EnvName,
        roster_change: RosterChange<'_>,
        change: impl FnOnce(Option<Document>) -> Result<Option<Document>>,
    ) -> Result<WriteReport> {
        let folder = recipients::required(&self.project, env)?;
        let project = self.project.required_identity()?;
        let _lock = self.lock(env)?;
        let Current {
            doc,
            verified: old,
            signer,
        } = self.load_current(env, &folder)?;
        let old_values = ValueHashes::of(doc.as_ref());
        let forced = !matches!(roster_change, RosterChange::Keep);
        let new_doc = match change(doc)? {
            Some(doc) => doc,
            None if !forced => return Ok(WriteReport::unchanged()),
            None => return Err(Error::new(format!("{env} has no secrets to re-encrypt"))),
        };

        let today = manifest::today();
        let mut plan = RosterPlan::new(env, &folder, old.as_ref(), &roster_change)?;
        let (mut signer, signer_fp) = self.settle_signer(env, signer, &plan.allowed)?;
        match old.as_ref().map(|v| v.manifest.project.is_none()) {
            None => {
                let confirmed = self.verified_keys();
                plan.found(&signer_fp, &confirmed);
            }
            Some(true) => {
                let n = plan.upgrade();
                self.notice(
                    Level::Note,
                    &format!("{env}: upgraded from vault's old format: your key now vouches for its {n} grant(s), bound to this project"),
                );
            }
            Some(false) => plan.revouch(&signer_fp),
        }
        let old_manifest = old.as_ref().map(|v| &v.manifest);
        let serial = self.next_serial(env, old_manifest);
        let place = manifest::GrantPlace {
            project: &project,
            serial,
        };
        plan.sign_grants(&mut signer, env, &signer_fp, &today, &place)?;
        let allow = next_allow(env, old_manifest, &roster_change, &new_doc)?;
        let next = Manifest {
            project: Some(project.clone()),
            allow,
            parents: old_manifest.map(|m| vec![m.id()]).unwrap_or_default(),
            environment: env.to_string(),
            serial,
            ciphertext: String::new(),
            secrets: secret_dates(&new_doc, old_manifest, &old_values, &today),
            exposed: exposures(&new_doc, old_manifest, &old_values, &plan.dropped, &today),
            roster: std::mem::take(&mut plan.roster),
        };
        let (ciphertext, sidecar, manifest) = seal(env, &new_doc, &folder, next, &mut signer)?;
        self.replace_pair(env, &ciphertext, sidecar.as_bytes())?;

        let members: BTreeSet<String> = manifest.roster.iter().map(|r| r.member.clone()).collect();
        let pending = plan.pending(&manifest.roster);
        let verified = plan.written(manifest, signer_fp);
        self.remember(env, &verified, sidecar.as_bytes());
        self.remember_key(&verified.signer);
        Ok(WriteReport {
            written: Written::Changed,
            pending: pending.into_iter().collect(),
            dropped: std::mem::take(&mut plan.dropped).into_iter().collect(),
            members: members.into_iter().collect(),
        })
    }

    /// Verifies and decrypts `env`'s current pair, settling who signs before anything is
    /// decrypted, so a key never granted is told so at once.
    fn load_current(&mut self, env: &EnvName, folder: &[Member]) -> Result<Current> {
        let Some(pair) = self.read_env(env)? else {
            self.refuse_anew(env)?;
            return Ok(Current {
                doc: None,
                verified: None,
                signer: None,
            });
        };
        let verified = self.verify(env, &pair, folder)?;
        let granted: BTreeSet<String> = match &verified {
            Some(v) => v
                .manifest
                .roster
                .iter()
                .map(|r| r.fingerprint.clone())
                .collect(),
            None => folder
                .iter()
                .flat_map(|m| &m.keys)
                .map(PublicKey::fingerprint)
                .collect(),
        };
        let signer = self.identities.signer(&granted, env.as_str())?;
        let allowed = match &verified {
            Some(v) => v.manifest.allow.clone(),
            None => pair.manifest().map(|m| m.allow).unwrap_or_default(),
        };
        let order = verified
            .as_ref()
            .map(|v| envelope::stanza_order(&v.manifest.roster))
            .unwrap_or_default();
        let doc = self.decrypt(env, &pair.ciphertext, &allowed, &order)?;
        crate::fs::checkpoint("decrypted");
        Ok(Current {
            doc: Some(doc),
            verified,
            signer: Some(signer),
        })
    }

    /// Starting an environment anew is how a forger would replace it: not over one this
    /// machine has already seen.
    fn refuse_anew(&mut self, env: &EnvName) -> Result<()> {
        let Some(seen) = self.seen().get(env).filter(|_| !self.skip_verify) else {
            return Ok(());
        };
        Err(Error::new(format!(
            "{env}: its secrets file is missing, but this machine has seen it (serial {}); refusing to start it anew",
            seen.serial
        ))
        .with_hint(format!(
            "restore it: git checkout -- conf/pillar/{env}/; --insecure-skip-verify starts anew"
        )))
    }

    /// The writer's signer (the one chosen while reading, or one `allowed` grants for a
    /// new environment) and its fingerprint, which must be a member after the change.
    fn settle_signer(
        &mut self,
        env: &EnvName,
        chosen: Option<Signer>,
        allowed: &BTreeSet<String>,
    ) -> Result<(Signer, String)> {
        let signer = match chosen {
            Some(s) => s,
            None => self.identities.signer(allowed, env.as_str())?,
        };
        let signer_fp = signer.public()?.fingerprint();
        if !allowed.contains(&signer_fp) {
            return Err(Error::new(format!(
                "{env}: your key ({signer_fp}) would not be a member after this change, so it cannot sign it; another member must"
            ))
            .with_hint("a member cannot revoke themselves, nor write once their key has left the recipients folder"));
        }
        Ok((signer, signer_fp))
    }

    /// Above anything this machine has seen, so a write on an older branch still moves
    /// the environment forward.
    fn next_serial(&mut self, env: &EnvName, old: Option<&Manifest>) -> u64 {
        old.map(|m| m.serial)
            .into_iter()
            .chain(self.seen().get(env).map(|s| s.serial))
            .max()
            .unwrap_or(0)
            + 1
    }

    /// Puts the new pair in place of the old, both or neither.
    fn replace_pair(&self, env: &EnvName, ciphertext: &[u8], sidecar: &[u8]) -> Result<()> {
        journal::replace_all(
            &self.project.env_pillar_dir(env),
            &[(SECRETS_FILE, ciphertext), (SIDECAR_FILE, sidecar)],
        )?;
        crate::fs::checkpoint("written");
        Ok(())
    }
}

impl WriteReport {
    fn unchanged() -> WriteReport {
        WriteReport {
            written: Written::Unchanged,
            pending: vec![],
            dropped: vec![],
            members: vec![],
        }
    }
}

/// Digests of the values before the change, to tell which the change left alone (their
/// dates and exposures carry over) without keeping the old values around.
struct ValueHashes(HashMap<String, [u8; 32]>);

impl ValueHashes {
    fn of(doc: Option<&Document>) -> ValueHashes {
        ValueHashes(
            doc.iter()
                .flat_map(|d| d.entries())
                .map(|e| (e.name().to_string(), digest(e.value().expose())))
                .collect(),
        )
    }

    /// `name` held `value` before the change.
    fn unchanged(&self, name: &str, value: &str) -> bool {
        self.0.get(name).is_some_and(|h| *h == digest(value))
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The controlling names the next manifest allows: the old ones with `change` applied.
/// A name no longer allowed while a secret holds it is refused, as is allowing a name
/// that needs no allowing.
fn next_allow(
    env: &EnvName,
    old: Option<&Manifest>,
    change: &RosterChange<'_>,
    doc: &Document,
) -> Result<Vec<String>> {
    let mut allow: BTreeSet<String> = old
        .map(|m| m.allow.iter().cloned().collect())
        .unwrap_or_default();
    if let RosterChange::Allow { name, allow: on } = change {
        if crate::document::controlling(name).is_none() {
            return Err(Error::usage(format!(
                "{env}: {name} is an ordinary name: it needs no allowing"
            )));
        }
        if *on {
            allow.insert(name.to_string());
        } else {
            if doc.get(name).is_some() {
                return Err(Error::new(format!(
                    "{env}: {name} is a secret of {env}: it stays allowed while it is there"
                ))
                .with_hint(format!("`vault unset {env} {name}` first")));
            }
            allow.remove(*name);
        }
    }
    Ok(allow.into_iter().collect())
}

/// Each secret with the date its value last changed: kept when the value is unchanged.
fn secret_dates(
    doc: &Document,
    old: Option<&Manifest>,
    old_values: &ValueHashes,
    today: &str,
) -> Vec<(String, String)> {
    doc.entries()
        .iter()
        .map(|e| {
            let date = match old.and_then(|m| m.secret_date(e.name())) {
                Some(d) if old_values.unchanged(e.name(), e.value().expose()) => d.to_string(),
                _ => today.to_string(),
            };
            (e.name().to_string(), date)
        })
        .collect()
}

/// The exposures that still stand (the value is the one exposed), and a new one for
/// every unchanged secret each dropped member could read.
fn exposures(
    doc: &Document,
    old: Option<&Manifest>,
    old_values: &ValueHashes,
    dropped: &BTreeSet<String>,
    today: &str,
) -> Vec<Exposure> {
    let mut exposed: Vec<Exposure> = old
        .map(|m| m.exposed.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|x| {
            doc.get(&x.name)
                .is_some_and(|v| old_values.unchanged(&x.name, v.expose()))
        })
        .collect();
    for member in dropped {
        for e in doc.entries() {
            if old_values.unchanged(e.name(), e.value().expose())
                && !exposed
                    .iter()
                    .any(|x| x.name == e.name() && x.member == *member)
            {
                exposed.push(Exposure {
                    name: e.name().to_string(),
                    since: today.to_string(),
                    member: member.clone(),
                });
            }
        }
    }
    exposed
}

/// Who may read the environment after the write.
struct RosterPlan<'f> {
    /// The folder's keys, by member; a member being revoked no longer counts as in the
    /// folder (their file goes next).
    folder_keys: Vec<(&'f str, &'f PublicKey)>,
    /// The old roster still in the folder (empty for a new environment).
    roster: Vec<RosterEntry>,
    /// Grants to sign: (member, fingerprint).
    new_grants: Vec<(String, String)>,
    /// Members whose keys left the folder.
    dropped: BTreeSet<String>,
    /// The fingerprints that may sign the write.
    allowed: BTreeSet<String>,
}

impl<'f> RosterPlan<'f> {
    /// The roster kept from `old` (or, for a new environment, everyone in the folder:
    /// its founders), with `change` applied.
    fn new(
        env: &EnvName,
        folder: &'f [Member],
        old: Option<&Verified>,
        change: &RosterChange<'_>,
    ) -> Result<RosterPlan<'f>> {
        let revoked = match change {
            RosterChange::Revoke { member } => Some(*member),
            _ => None,
        };
        let folder_keys: Vec<(&str, &PublicKey)> = folder
            .iter()
            .filter(|m| Some(m.name.as_str()) != revoked)
            .flat_map(|m| m.keys.iter().map(move |k| (m.name.as_str(), k)))
            .collect();
        let in_folder = |fp: &str| folder_keys.iter().any(|(_, k)| k.fingerprint() == fp);
        let old_roster = old
            .map(|v| v.manifest.roster.as_slice())
            .unwrap_or_default();
        // A roster line no trusted member vouched for is carried over by nobody: it
        // leaves with a key that left the folder (and what it could read is exposed).
        let kept = |r: &RosterEntry| {
            in_folder(&r.fingerprint) && old.is_some_and(|v| v.trusted.contains(&r.fingerprint))
        };
        let (roster, new_grants) = match old {
            Some(_) => (
                old_roster.iter().filter(|r| kept(r)).cloned().collect(),
                vec![],
            ),
            None => (
                vec![],
                folder_keys
                    .iter()
                    .map(|(m, k)| (m.to_string(), k.fingerprint()))
                    .collect(),
            ),
        };
        let dropped = old_roster
            .iter()
            .filter(|r| !kept(r))
            .map(|r| r.member.clone())
            .collect();
        let mut plan = RosterPlan {
            folder_keys,
            roster,
            new_grants,
            dropped,
            allowed: BTreeSet::new(),
        };
        plan.apply(env, change)?;
        plan.allowed = match old {
            Some(_) => plan.roster.iter().map(|r| r.fingerprint.clone()).collect(),
            None => plan.new_grants.iter().map(|(_, fp)| fp.clone()).collect(),
        };
        Ok(plan)
    }

    /// Adds a grant's keys, or checks a revoked member did leave the roster.
    fn apply(&mut self, env: &EnvName, change: &RosterChange<'_>) -> Result<()> {
        match change {
            RosterChange::Keep => {}
            RosterChange::Grant { member, keys } => {
                for k in *keys {
                    let fp = k.fingerprint();
                    if self.roster.iter().any(|r| r.fingerprint == fp) {
                        return Err(Error::new(format!(
                            "{env}: {member}'s key {fp} is already granted"
                        )));
                    }
                    // A new environment's founders already include the key.
                    if !self.new_grants.iter().any(|(_, f)| *f == fp) {
                        self.new_grants.push((member.to_string(), fp));
                    }
                }
            }
            RosterChange::Allow { .. } => {}
            RosterChange::Revoke { member } => {
                // Their entries left the roster with their keys, in `new`.
                if !self.dropped.contains(*member) {
                    return Err(Error::new(format!(
                        "{env}: {member} is not a granted member; nothing to revoke"
                    )));
                }
            }
        }
        Ok(())
    }

    /// A founding admits the founder's own key and the keys this user verified before,
    /// never the whole folder: a key slipped into a member's file must be granted
    /// by fingerprint like any other.
    fn found(&mut self, founder: &str, confirmed: &BTreeSet<String>) {
        self.new_grants
            .retain(|(_, fp)| fp == founder || confirmed.contains(fp));
    }

    /// Grants the writer vouches for anew: every line whose granter left the roster, and
    /// the writer's own when the founder left (the writer roots the roster then), so the
    /// roster traces within itself to one founder for a machine that sees it first.
    fn revouch(&mut self, writer: &str) {
        let fps: BTreeSet<String> = self.roster.iter().map(|r| r.fingerprint.clone()).collect();
        let rooted = self.roster.iter().any(|r| r.granted_by == r.fingerprint);
        let (again, stay): (Vec<RosterEntry>, Vec<RosterEntry>) =
            std::mem::take(&mut self.roster).into_iter().partition(|r| {
                let orphan = r.granted_by != r.fingerprint && !fps.contains(&r.granted_by);
                orphan || (!rooted && r.fingerprint == writer)
            });
        self.roster = stay;
        self.new_grants
            .extend(again.into_iter().map(|r| (r.member, r.fingerprint)));
    }

    /// Takes the grants of an old-format roster (bound to no project or serial) to sign
    /// anew by the writer, who verified them; returns how many.
    fn upgrade(&mut self) -> usize {
        let old: Vec<RosterEntry> = std::mem::take(&mut self.roster);
        let n = old.len();
        self.new_grants
            .extend(old.into_iter().map(|r| (r.member, r.fingerprint)));
        n
    }

    /// Signs each new grant with the writer's key into the roster, then sorts it.
    fn sign_grants(
        &mut self,
        signer: &mut Signer,
        env: &EnvName,
        signer_fp: &str,
        today: &str,
        place: &manifest::GrantPlace<'_>,
    ) -> Result<()> {
        for (member, fp) in std::mem::take(&mut self.new_grants) {
            let msg = manifest::grant_message(env.as_str(), &member, &fp, today, Some(place));
            let grant = signing::to_line(&signer.sign(signing::GRANT_NAMESPACE, msg.as_bytes())?)?;
            self.roster.push(RosterEntry {
                member,
                fingerprint: fp,
                granted_by: signer_fp.to_string(),
                date: today.to_string(),
                serial: Some(place.serial),
                grant,
            });
        }
        self.roster
            .sort_by(|a, b| (&a.member, &a.fingerprint).cmp(&(&b.member, &b.fingerprint)));
        Ok(())
    }

    /// Members with a key in the folder that `roster` does not grant.
    fn pending(&self, roster: &[RosterEntry]) -> BTreeSet<String> {
        self.folder_keys
            .iter()
            .filter(|(_, k)| !roster.iter().any(|r| r.fingerprint == k.fingerprint()))
            .map(|(m, _)| m.to_string())
            .collect()
    }

    /// What the write leaves verified, as this machine will remember it.
    fn written(&self, manifest: Manifest, signer_fp: String) -> Verified {
        let trusted = manifest
            .roster
            .iter()
            .map(|r| r.fingerprint.clone())
            .collect();
        let signer_member = self
            .folder_keys
            .iter()
            .find(|(_, k)| k.fingerprint() == signer_fp)
            .map(|(m, _)| m.to_string());
        Verified {
            manifest,
            signer: signer_fp,
            signer_member: signer_member.unwrap_or_default(),
            trusted,
        }
    }
}

/// Encrypts `doc` to the keys of `folder` that `manifest`'s roster grants, and signs
/// the manifest (its ciphertext line filled in): the two files of an environment.
pub fn seal(
    env: &EnvName,
    doc: &Document,
    folder: &[Member],
    mut manifest: Manifest,
    signer: &mut Signer,
) -> Result<(Vec<u8>, String, Manifest)> {
    // Exactly one stanza per roster key, in the roster's order (a reader tries its own
    // first): a roster key the folder lacks would give a file every reader refuses.
    let roster_keys = envelope::roster_keys(&manifest.roster, folder);
    if let Some(r) = roster_keys.iter().find(|k| k.key.is_none()) {
        return Err(Error::new(format!(
            "{env}: not written: the roster lists {}'s key ({}), which recipients/{env}/ no longer holds",
            r.member, r.fingerprint
        ))
        .with_hint(format!("`vault rekey {env}` drops it from the roster first")));
    }
    let keys: Vec<&PublicKey> = roster_keys.iter().filter_map(|k| k.key).collect();
    if keys.is_empty() {
        return Err(Error::new(format!("{env}: no granted key to encrypt to")));
    }
    let ciphertext = envelope::encrypt(doc.text(), &keys)?;
    // The check every reader makes, made before the pair exists.
    envelope::check_header(&ciphertext, &manifest.roster, folder)
        .map_err(|why| Error::new(format!("{env}: not written: {why}")))?;
    manifest.ciphertext = trust::ciphertext_hash(&ciphertext);
    let text = manifest.render();
    let sig = signer.sign(signing::NAMESPACE, text.as_bytes())?;
    let pem = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| Error::new(format!("cannot encode the signature: {e}")))?;
    Ok((ciphertext, format!("{text}{pem}"), manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Stanza;

    fn key(text: &str) -> PublicKey {
        PublicKey::parse(text).unwrap()
    }

    fn member(name: &str, k: &PublicKey) -> Member {
        Member {
            name: name.into(),
            keys: vec![k.clone()],
        }
    }

    fn entry(name: &str, k: &PublicKey) -> RosterEntry {
        RosterEntry {
            member: name.into(),
            fingerprint: k.fingerprint(),
            granted_by: k.fingerprint(),
            date: "2026-01-01".into(),
            serial: None,
            grant: "unchecked-here".into(),
        }
    }

    /// Whom `seal` encrypts to: the roster's keys, each once, nothing else (a folder key
    /// never granted is left out), in the roster's order, then age's one grease stanza.
    #[test]
    fn seal_writes_one_stanza_per_roster_key_and_nothing_else() {
        let alice = key(include_str!("../../tests/fixtures/keys/alice_ed25519.pub"));
        let bob = key(include_str!("../../tests/fixtures/keys/bob.agekey.pub"));
        let carol = key(include_str!("../../tests/fixtures/keys/carol_rsa.pub"));
        let mallory = key(include_str!(
            "../../tests/fixtures/keys/mallory_ed25519.pub"
        ));
        let private = include_str!("../../tests/fixtures/keys/alice_ed25519");
        let mut signer = Signer::Key(Box::new(
            ssh_key::PrivateKey::from_openssh(private).unwrap(),
        ));
        let env = EnvName::parse("staging").unwrap();
        let doc = crate::document::empty("staging");
        // carol is in the folder under two names; mallory is pending (never granted).
        let folder = vec![
            member("alice", &alice),
            member("bob", &bob),
            member("carol", &carol),
            member("carol2", &carol),
            member("mallory", &mallory),
        ];
        let roster = vec![
            entry("alice", &alice),
            entry("bob", &bob),
            entry("carol", &carol),
            entry("carol2", &carol),
        ];
        let manifest = Manifest {
            environment: "staging".into(),
            roster: roster.clone(),
            ..Manifest::default()
        };
        let (ct, _, m) = seal(&env, &doc, &folder, manifest, &mut signer).unwrap();
        let h = envelope::header(&ct).unwrap();
        let tag = |k: &PublicKey| k.stanza_tag().unwrap();
        assert_eq!(
            h.stanzas[..3],
            [
                Stanza::Ssh {
                    kind: "ssh-ed25519",
                    tag: tag(&alice)
                },
                Stanza::X25519,
                Stanza::Ssh {
                    kind: "ssh-rsa",
                    tag: tag(&carol)
                },
            ]
        );
        assert_eq!(h.stanzas[3..], [Stanza::Grease]);
        assert_eq!(m.ciphertext, trust::ciphertext_hash(&ct));
        assert_eq!(h.matches(&roster, &folder), Ok(()));

        // A roster key the folder lacks is refused, not left out of the header.
        let manifest = Manifest {
            roster: vec![entry("alice", &alice), entry("mallory", &mallory)],
            ..Manifest::default()
        };
        let err = seal(&env, &doc, &folder[..3], manifest, &mut signer).unwrap_err();
        assert!(
            err.to_string().contains("the roster lists mallory's key"),
            "{err}"
        );

        // The stanzas follow the roster's order, not the folder's, so a reader finds its
        // own where the roster puts its key.
        let reversed = vec![
            entry("carol", &carol),
            entry("bob", &bob),
            entry("alice", &alice),
        ];
        let manifest = Manifest {
            environment: "staging".into(),
            roster: reversed,
            ..Manifest::default()
        };
        let (ct, _, m) = seal(&env, &doc, &folder[..3], manifest, &mut signer).unwrap();
        let h = envelope::header(&ct).unwrap();
        assert_eq!(
            h.stanzas[..3],
            [
                Stanza::Ssh {
                    kind: "ssh-rsa",
                    tag: tag(&carol)
                },
                Stanza::X25519,
                Stanza::Ssh {
                    kind: "ssh-ed25519",
                    tag: tag(&alice)
                },
            ]
        );
        let order = envelope::stanza_order(&m.roster);
        assert_eq!(
            order.iter().position(|f| *f == bob.fingerprint_str()),
            Some(1)
        );
    }
}

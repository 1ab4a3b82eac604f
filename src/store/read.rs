//! Reading an environment's pair (ciphertext and signed sidecar) and deciding whether to
//! trust it: the one reader every command goes through, with or without a [`Store`].

use super::{journal, Store};
use crate::document::Document;
use crate::envelope::{self, MAX_CIPHERTEXT_BYTES};
use crate::error::{Error, Result};
use crate::fs::read_limited;
use crate::keys::recipients::{self, Member};
use crate::manifest::{self, Manifest, MAX_SIDECAR_BYTES};
use crate::notice::Level;
use crate::project::{EnvName, Project};
use crate::project_id::PROJECT_FILE;
use crate::trust::{self, SeenEnv, SeenStore, Verified};
use std::collections::{BTreeMap, BTreeSet};

/// An environment's two files: its ciphertext, and the sidecar signing it (None when
/// the sidecar is missing: unsigned).
pub struct Pair {
    pub ciphertext: Vec<u8>,
    pub sidecar: Option<Vec<u8>>,
}

impl Pair {
    /// `env`'s files as they are on disk, size-limited; None when it has no secrets file
    /// yet. Confined to the project (no link leading out of it is followed) and never
    /// blocking (a FIFO or a device is refused), for every command alike; not waited
    /// for: [`Store::read_env`] also waits for a writer to finish.
    pub fn read(project: &Project, env: &EnvName) -> Result<Option<Pair>> {
        let (secrets, sidecar) = (project.secrets_path(env), project.sidecar_path(env));
        project.confined(&secrets)?;
        project.confined(&sidecar)?;
        let Some(ciphertext) = read_limited(&secrets, MAX_CIPHERTEXT_BYTES)? else {
            return Ok(None);
        };
        let sidecar = read_limited(&sidecar, MAX_SIDECAR_BYTES)?;
        Ok(Some(Pair {
            ciphertext,
            sidecar,
        }))
    }

    /// The manifest the sidecar carries, not verified: for showing, never for trusting.
    pub fn manifest(&self) -> Option<Manifest> {
        self.sidecar.as_deref().and_then(signed_manifest)
    }

    /// Whether the pair may be decrypted, held to `anchors` (what is trusted already) and
    /// to `project`'s identity (where it has one): for a blob the diff driver shows.
    pub fn verify_for(
        &self,
        project: &Project,
        env: &EnvName,
        folder: &[Member],
        anchors: Option<&SeenEnv>,
    ) -> std::result::Result<Verified, String> {
        let id = project.identity().map_err(|e| e.to_string())?;
        let ctx = trust::Context {
            seen: anchors,
            project: id.as_ref(),
            verified_keys: None,
        };
        self.verify_in(env, folder, &ctx)
    }

    /// Whether the pair may be decrypted under `ctx`: the sidecar checked against the
    /// ciphertext and `folder` (see [`trust::verify_in`]), then the ciphertext's header
    /// against the signed roster.
    pub fn verify_in(
        &self,
        env: &EnvName,
        folder: &[Member],
        ctx: &trust::Context<'_>,
    ) -> std::result::Result<Verified, String> {
        let v = self.verify_signature_in(env, folder, ctx)?;
        // The signed hash binds the header already: this catches a writer that encrypted
        // to other keys than the roster it signed (a bug, a stale rekey), not a forger.
        envelope::check_header(&self.ciphertext, &v.manifest.roster, folder)?;
        Ok(v)
    }

    /// The sidecar alone, without the header: for reports that show the header apart.
    fn verify_signature_in(
        &self,
        env: &EnvName,
        folder: &[Member],
        ctx: &trust::Context<'_>,
    ) -> std::result::Result<Verified, String> {
        trust::verify_in(env, &self.ciphertext, self.sidecar.as_deref(), folder, ctx)
    }
}

/// The manifest a sidecar's bytes carry (its signature neither checked nor needed), or
/// None when they are not a well-formed sidecar.
pub fn signed_manifest(sidecar: &[u8]) -> Option<Manifest> {
    let text = std::str::from_utf8(sidecar).ok()?;
    let (signed, _) = manifest::split(text).ok()?;
    Manifest::parse(signed).ok()
}

/// The roster this machine trusts for `env`, as anchors for reading another version
/// (a git revision, a merge's side): its grants need no checking again, and an older
/// serial is expected there, so none is held against it.
pub fn known_roster(project: &Project, env: &EnvName) -> Option<SeenEnv> {
    SeenStore::load(project).get(env).map(|s| SeenEnv {
        serial: 0,
        id: None,
        ..s
    })
}

impl Store {
    /// `env`'s pair, or None when it has no secrets file yet; confined to the project.
    pub fn read_env(&self, env: &EnvName) -> Result<Option<Pair>> {
        self.confined(env)?;
        // A write is finishing, or was killed after its new files were complete: wait
        // for it, or finish it, before reading a pair that may not match.
        let _lock = if journal::pending(&self.project.env_pillar_dir(env)) {
            Some(self.lock(env)?)
        } else {
            None
        };
        Pair::read(&self.project, env)
    }

    /// Like [`verify`](Self::verify), but files byte-identical to those this machine last
    /// verified, signed by a key still in its member's file, are not verified again.
    /// The header is checked against the signed roster either way.
    /// Returns the verified manifest (None: refused, and read anyway under
    /// `skip_verify`) and the controlling names it allows.
    pub(super) fn verify_for_read(
        &mut self,
        env: &EnvName,
        pair: &Pair,
    ) -> Result<(Option<Manifest>, Vec<String>)> {
        if let Some(sidecar) = &pair.sidecar {
            let project = self.project.clone();
            if self
                .seen()
                .unchanged_since_verified(&project, env, sidecar, &pair.ciphertext)
            {
                self.detail(&format!("{env}: unchanged since this machine verified it"));
                let manifest = pair.manifest().unwrap_or_default();
                // A pair an older vault verified did not have its header checked: now.
                if !self.seen().header_checked(env) {
                    let folder = recipients::members(&self.project, env)?;
                    match envelope::check_header(&pair.ciphertext, &manifest.roster, &folder) {
                        // Best effort: checked again next time if it cannot be recorded.
                        Ok(()) => drop(self.seen().mark_header_checked(env)),
                        Err(why) => self.refuse(env, why)?,
                    }
                }
                let allow = manifest.allow.clone();
                return Ok((Some(manifest), allow));
            }
        }
        let folder = recipients::members(&self.project, env)?;
        let v = self.verify(env, pair, &folder)?;
        let allow = v
            .as_ref()
            .map(|v| v.manifest.allow.clone())
            .or_else(|| pair.manifest().map(|m| m.allow))
            .unwrap_or_default();
        Ok((v.map(|v| v.manifest), allow))
    }

    /// Checks `pair` against `folder` (the environment's members) before anything is
    /// decrypted; with `skip_verify`, a failure is a loud warning instead. Returns the
    /// verified manifest.
    pub fn verify(
        &mut self,
        env: &EnvName,
        pair: &Pair,
        folder: &[Member],
    ) -> Result<Option<Verified>> {
        self.learn_removals(env, pair);
        match self.verify_report(env, pair, folder) {
            Ok(v) => {
                self.detail(&format!(
                    "{env}: signature verified: by {} ({}), serial {}",
                    v.signer_member, v.signer, v.manifest.serial
                ));
                self.remember(env, &v, pair.sidecar.as_deref().unwrap_or_default());
                Ok(Some(v))
            }
            Err(why) => self.refuse(env, why).map(|()| None),
        }
    }

    /// Refuses `env` for `why`, before anything is decrypted; with `skip_verify`, a loud
    /// warning instead.
    fn refuse(&mut self, env: &EnvName, why: String) -> Result<()> {
        if self.skip_verify {
            self.notice(
                Level::Warning,
                &format!("WARNING: --insecure-skip-verify: {env}: {why}; using it anyway"),
            );
            return Ok(());
        }
        Err(Error::new(format!(
            "{env} ({}): refused before decrypting: {why}",
            self.project.display_path(&self.project.secrets_path(env))
        ))
        .with_hint(match why.contains(crate::trust::UNVERIFIED_FOUNDER) {
            // A newcomer meeting the project, not tampering: the step is `vault trust`.
            true => format!(
                "this machine has not met {env}'s founder: ask them (or a member you trust) for that fingerprint, which `vault whoami` prints, compare it by voice, then run the `vault trust` line above"
            ),
            false => format!(
                "see who changed it: git log -p -- conf/pillar/{env} recipients/{env}; --insecure-skip-verify overrides, for recovery only"
            ),
        }))
    }

    /// The verdict on `pair` against what this machine has seen, without refusing or
    /// warning, for reports.
    pub fn verify_report(
        &mut self,
        env: &EnvName,
        pair: &Pair,
        folder: &[Member],
    ) -> std::result::Result<Verified, String> {
        let known = self.known(env)?;
        pair.verify_in(env, folder, &known.context())
    }

    /// What this machine holds a pair of `env` against: the project's identity, what it
    /// has seen of `env`, and (on first use) the keys its user verified.
    fn known(&mut self, env: &EnvName) -> std::result::Result<Known, String> {
        let project = self.project.identity().map_err(|e| e.to_string())?;
        if let Some(before) = self.seen().identity_changed_from() {
            return Err(format!(
                "this checkout's project identity ({PROJECT_FILE}) is no longer {before}, the one this machine knew it by: a swapped or removed identity would start trust anew, so nothing is trusted until it is restored (git checkout -- {PROJECT_FILE})"
            ));
        }
        let seen = self.seen().get(env);
        let verified_keys = match seen {
            None => Some(self.verified_keys()),
            Some(_) => None,
        };
        Ok(Known {
            project,
            seen,
            verified_keys,
        })
    }

    /// Learns, before `pair` is verified, which keys left `env`'s roster in the committed
    /// versions between the remembered one and `pair`'s parent (best effort).
    fn learn_removals(&mut self, env: &EnvName, pair: &Pair) {
        let Some(m) = pair.manifest() else { return };
        let learnt = self.removals_since(env, &m);
        if let Err(e) = self.seen().learn_removals(env, &learnt) {
            self.notice(
                Level::Warning,
                &format!("warning: cannot remember who left {env} ({e})"),
            );
        }
    }

    /// Keys that left the roster between the version this machine remembers and `m`, when
    /// `m` does not follow it directly (several writes pulled at once): read from the
    /// versions in git that `m`'s parents name, back to the remembered one. Each is tied
    /// to `m`, which verified, by the hashes its children name, so what they say left did.
    fn removals_since(&mut self, env: &EnvName, m: &Manifest) -> BTreeMap<String, u64> {
        let mut learnt = BTreeMap::new();
        let Some(seen) = self.seen().get(env) else {
            return learnt;
        };
        let Some(known) = seen.id.clone() else {
            return learnt;
        };
        if m.project.is_none() || m.parents.contains(&known) || m.id() == known {
            return learnt;
        }
        let versions = self.versions_in_git(env);
        // `m` itself is not verified yet: only the committed versions it names, each tied
        // to the next by its id, say who left; so the walk starts at its parent.
        let Some(mut child) = m.parents.first().and_then(|id| versions.get(id)).cloned() else {
            return learnt;
        };
        if child.id() == known {
            return learnt;
        }
        // Along the first parents, newest first, until the remembered version.
        while let Some(parent) = child.parents.first().and_then(|id| versions.get(id)) {
            let kept: BTreeSet<&str> = child
                .roster
                .iter()
                .map(|r| r.fingerprint.as_str())
                .collect();
            for r in &parent.roster {
                if !kept.contains(r.fingerprint.as_str()) {
                    learnt.insert(r.fingerprint.clone(), child.serial);
                }
            }
            if parent.id() == known {
                return learnt;
            }
            child = parent.clone();
        }
        // The remembered version is not an ancestor found here: what it had that `m`
        // lacks is not known to have left (another branch), so nothing is learnt.
        BTreeMap::new()
    }

    /// Every committed version of `env`'s manifest on any branch, by id (empty outside
    /// git); not verified, but each is the text its id hashes, so a verified manifest's
    /// parents lead to the very versions it follows.
    pub fn versions_in_git(&self, env: &EnvName) -> std::collections::HashMap<String, Manifest> {
        let git = crate::git::Git::new(self.project.root());
        let path = Project::git_sidecar_path(env);
        let Ok(commits) = git.commits_touching(&path) else {
            return Default::default();
        };
        let Ok(mut batch) = git.batch() else {
            return Default::default();
        };
        commits
            .iter()
            .filter_map(|c| batch.object(c, &path, MAX_SIDECAR_BYTES as u64).ok()?)
            .filter_map(|o| signed_manifest(&o.blob?))
            .map(|m| (m.id(), m))
            .collect()
    }

    /// Another revision's pair, or a merge's side: held to this project's identity, to
    /// `anchors` (what this machine trusts), and, where it trusts nothing of `env` yet,
    /// to the keys its user verified, as a first read is.
    pub fn verify_other(
        &mut self,
        env: &EnvName,
        pair: &Pair,
        folder: &[Member],
        anchors: Option<&SeenEnv>,
    ) -> std::result::Result<Verified, String> {
        let id = self.project.identity().map_err(|e| e.to_string())?;
        let keys = match anchors {
            None => Some(self.verified_keys()),
            Some(_) => None,
        };
        let ctx = trust::Context {
            seen: anchors,
            project: id.as_ref(),
            verified_keys: keys.as_ref(),
        };
        pair.verify_in(env, folder, &ctx)
    }

    /// The keys this user verified: those remembered for the project, and their own.
    pub(super) fn verified_keys(&mut self) -> BTreeSet<String> {
        let mut keys = self.seen().verified_keys();
        if let Ok(Some((_, own))) = self.identities.current() {
            keys.extend(own.iter().map(|k| k.fingerprint()));
        }
        keys
    }

    /// Like [`verify_report`](Self::verify_report), the sidecar alone: for a report
    /// that shows the header apart (and decrypts only when that matches too).
    pub fn signature_report(
        &mut self,
        env: &EnvName,
        pair: &Pair,
        folder: &[Member],
    ) -> std::result::Result<Verified, String> {
        let known = self.known(env)?;
        pair.verify_signature_in(env, folder, &known.context())
    }

    /// A file no identity opens, explained for a newcomer whose key is in the folder but
    /// not granted yet: a rekey cannot help, a grant by fingerprint does.
    fn explain_unreadable(&mut self, env: &EnvName, e: Error) -> Error {
        let Ok(Some((_, own))) = self.identities.current() else {
            return e;
        };
        let Ok(folder) = recipients::members(&self.project, env) else {
            return e;
        };
        let pending = folder.iter().find_map(|m| {
            m.keys
                .iter()
                .find(|k| own.iter().any(|o| o.fingerprint() == k.fingerprint()))
                .map(|k| (m.name.clone(), k.fingerprint()))
        });
        match pending {
            Some((name, fp)) => e.with_hint(format!(
                "your key is in recipients/{env}/{name}.pub but not granted yet: read your fingerprint {fp} (`vault whoami`) to a member of {env} over another channel; they run `vault grant {env} {name} --fingerprint {fp}`"
            )),
            None => e,
        }
    }

    /// Decrypts `ciphertext`, read from `env`'s secrets file, into its document.
    /// The controlling names `env`'s manifest on disk allows, unverified: for refusing a
    /// name early, before a value is asked for (the write checks again, verified).
    pub fn allowed_names(&self, env: &EnvName) -> BTreeSet<String> {
        Pair::read(&self.project, env)
            .ok()
            .flatten()
            .and_then(|p| p.manifest())
            .map(|m| m.allow.into_iter().collect())
            .unwrap_or_default()
    }

    /// Decrypts `ciphertext` of `env` into its document, which may hold the controlling
    /// names in `allowed` (from the verified manifest that signs it). `order` is its
    /// stanzas' fingerprints when known (`envelope::stanza_order` of that manifest's
    /// roster), so a reader's key finds its own stanza first.
    pub fn decrypt(
        &mut self,
        env: &EnvName,
        ciphertext: &[u8],
        allowed: &[String],
        order: &[&str],
    ) -> Result<Document> {
        let what = format!(
            "{env} ({})",
            self.project.display_path(&self.project.secrets_path(env))
        );
        let plain = match self.identities.decrypt(&what, ciphertext, order) {
            Ok(plain) => plain,
            Err(e) => return Err(self.explain_unreadable(env, e)),
        };
        if let Some(label) = self.identities.last_used() {
            self.detail(&format!("{env}: decrypted with {label}"));
        }
        Document::parse_allowing(env.as_str(), plain, allowed.iter().cloned().collect())
    }

    /// Records what was verified; a failure (a read-only home) is a warning, not a
    /// reason to refuse secrets that verified.
    pub(super) fn remember(&mut self, env: &EnvName, v: &Verified, sidecar: &[u8]) {
        if let Err(e) = self.seen().record(env, v, sidecar) {
            self.notice(
                Level::Warning,
                &format!("warning: cannot remember {env}'s serial ({e}): rollback protection on this machine is limited to what it remembered before"),
            );
        }
    }

    /// Remembers a key this user verified (their own, when they sign; one they grant).
    pub fn remember_key(&mut self, fingerprint: &str) {
        if let Err(e) = self.seen().add_verified_key(fingerprint) {
            self.notice(
                Level::Warning,
                &format!("warning: cannot remember the key {fingerprint} as verified ({e})"),
            );
        }
    }
}

/// What a store holds an environment's pair against (see [`Store::verify_report`]).
struct Known {
    project: Option<crate::project_id::ProjectId>,
    seen: Option<SeenEnv>,
    verified_keys: Option<BTreeSet<String>>,
}

impl Known {
    fn context(&self) -> trust::Context<'_> {
        trust::Context {
            seen: self.seen.as_ref(),
            project: self.project.as_ref(),
            verified_keys: self.verified_keys.as_ref(),
        }
    }
}

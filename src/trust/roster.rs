//! The grant chain inside one manifest: which roster entries trace back to keys trusted
//! already, each grant's signature checked as the chain reaches it.

use super::SeenEnv;
use crate::keys::signing;
use crate::manifest::{self, Manifest};
use std::collections::BTreeSet;

/// The roster entries whose grants trace back to `anchors` (or, on first use, to the
/// founding writer, whose grant is its own). Grants are checked only as the chain
/// reaches them, so a roster this machine already trusts costs no verification.
pub fn trusted_roster(
    m: &Manifest,
    anchors: Option<&SeenEnv>,
) -> std::result::Result<BTreeSet<String>, String> {
    let grant_ok = |r: &manifest::RosterEntry| -> std::result::Result<(), String> {
        let place = match (&m.project, r.serial) {
            (Some(project), Some(serial)) => Some(manifest::GrantPlace { project, serial }),
            (None, None) => None,
            _ => return Err(format!("the grant of {} is malformed", r.member)),
        };
        let msg = manifest::grant_message(
            &m.environment,
            &r.member,
            &r.fingerprint,
            &r.date,
            place.as_ref(),
        );
        let sig = signing::from_line(&r.grant)
            .map_err(|_| format!("the grant of {} is malformed", r.member))?;
        let by = signing::verify(signing::GRANT_NAMESPACE, msg.as_bytes(), &sig)
            .map_err(|_| format!("the grant of {} is not validly signed", r.member))?;
        if by != r.granted_by {
            return Err(format!(
                "the grant of {} is signed by another key than it names",
                r.member
            ));
        }
        Ok(())
    };
    let mut trusted: BTreeSet<String> = BTreeSet::new();
    match anchors {
        Some(seen) => trusted.extend(
            m.roster
                .iter()
                .filter(|r| seen.roster.contains(&r.fingerprint))
                .map(|r| r.fingerprint.clone()),
        ),
        None => {
            let founders: Vec<&manifest::RosterEntry> = m
                .roster
                .iter()
                .filter(|r| r.granted_by == r.fingerprint)
                .collect();
            // One founder, whose grant is their own: a second self-granted line is
            // anyone's key, vouched for by nobody.
            if founders.len() > 1 {
                let names: Vec<String> = founders
                    .iter()
                    .map(|r| format!("{} ({})", r.member, r.fingerprint))
                    .collect();
                return Err(format!(
                    "the roster names {} founders, {}: an environment has one, and every other key is granted by a member",
                    founders.len(),
                    names.join(", ")
                ));
            }
            for r in founders {
                grant_ok(r)?;
                trusted.insert(r.fingerprint.clone());
            }
        }
    }
    loop {
        let mut grew = false;
        for r in &m.roster {
            if !trusted.contains(&r.fingerprint) && trusted.contains(&r.granted_by) {
                grant_ok(r)?;
                trusted.insert(r.fingerprint.clone());
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    Ok(trusted)
}

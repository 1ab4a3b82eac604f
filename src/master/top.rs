//! The top files vault writes into an environment's shipped roots on the master
//! (Salt's `state_top`, [`TOP_FILE`]): the project's own `top.sls` (states, and pillar)
//! evaluated for the ID a masterless server of the environment has
//! (`<project>-<env>`), and what it gives that server given, in the environment's Salt
//! environment, to exactly the environment's minions, listed by ID. A minion's grains
//! never pick what it gets; a top file that targets by anything but a glob of the ID is
//! refused.

use super::TOP_FILE;
use crate::error::{Error, Result};
use crate::project::{EnvName, Project};
use crate::provision::pillar::{top_file, TopEntry};

/// Writes both top files for `minions` of `env`; what each lists, for the run to say.
pub fn write(
    project: &Project,
    project_name: &str,
    env: &EnvName,
    minions: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    let id = format!("{project_name}-{env}");
    let salt = project.root().join("conf/salt");
    let states = listed(project, &salt.join("top.sls"), &id)?;
    if states.is_empty() {
        return Err(Error::new(format!(
            "conf/salt/top.sls gives a server of {env} ({id}) no states"
        ))
        .with_hint(
            "list the project's states for '*' in conf/salt/top.sls (vault init writes one)",
        ));
    }
    let pillar_dir = project.pillar_dir();
    let secrets = format!("{env}.secrets");
    let mut pillar = listed(project, &pillar_dir.join("top.sls"), &id)?;
    // The secrets come from vault's ext_pillar, never from a file.
    pillar.retain(|s| *s != secrets);
    for (dir, sls) in [(&salt, &states), (&pillar_dir, &pillar)] {
        let text = render(env, minions, sls);
        crate::fs::write_atomic(
            &dir.join(TOP_FILE),
            text.as_bytes(),
            crate::fs::Mode::KeepOr0644,
        )?;
    }
    Ok((states, pillar))
}

/// The SLS files `path` gives minion `id`, in order, each once.
fn listed(project: &Project, path: &std::path::Path, id: &str) -> Result<Vec<String>> {
    let shown = project.display_path(path);
    let mut sls: Vec<String> = Vec::new();
    for e in top_file(project, path)?.unwrap_or_default() {
        if !matches(&shown, &e, id)? {
            continue;
        }
        for s in e.sls {
            if !sls.contains(&s) {
                sls.push(s);
            }
        }
    }
    Ok(sls)
}

fn matches(shown: &str, e: &TopEntry, id: &str) -> Result<bool> {
    let by_id = matches!(e.matcher.as_deref(), None | Some("glob"));
    if !by_id {
        return Err(Error::new(format!(
            "{shown}: `{}` targets with match: {}: with a master, vault targets each environment's minions by ID only",
            e.target,
            e.matcher.as_deref().unwrap_or_default()
        ))
        .with_hint("target by a glob of the minion ID ('*', '*-staging'), as vault init writes"));
    }
    let pattern = glob::Pattern::new(&e.target)
        .map_err(|_| Error::new(format!("{shown}: `{}` is not a glob Salt reads", e.target)))?;
    Ok(pattern.matches(id))
}

fn render(env: &EnvName, minions: &[String], sls: &[String]) -> String {
    let mut text = format!(
        "# Written by vault on the master: {env}'s minions, by ID. Rewritten by each provision.\n{env}:\n"
    );
    if !sls.is_empty() {
        text.push_str(&format!("  '{}':\n    - match: list\n", minions.join(",")));
        for s in sls {
            text.push_str(&format!("    - {}\n", serde_json::json!(s)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(salt_top: &str, pillar_top: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in [
            ("conf/salt/top.sls", salt_top),
            ("conf/pillar/top.sls", pillar_top),
        ] {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let project = Project::at(dir.path());
        (dir, project)
    }

    #[test]
    fn each_environment_s_minions_get_what_its_server_would_by_id() {
        let (_d, p) = project(
            "base:\n  '*':\n    - project\n    - project.devs\n",
            "base:\n  '*':\n    - project\n    - devs\n  '*-staging':\n    - staging.env\n    - staging.secrets\n  '*-production':\n    - production.env\n",
        );
        let env = EnvName::parse("staging").unwrap();
        let minions = vec!["web1".to_string(), "web2".to_string()];
        let (states, pillar) = write(&p, "example", &env, &minions).unwrap();
        assert_eq!(states, ["project", "project.devs"]);
        assert_eq!(pillar, ["project", "devs", "staging.env"]);
        let top = std::fs::read_to_string(p.pillar_dir().join(TOP_FILE)).unwrap();
        assert!(
            top.ends_with("staging:\n  'web1,web2':\n    - match: list\n    - \"project\"\n    - \"devs\"\n    - \"staging.env\"\n"),
            "{top}"
        );
    }

    #[test]
    fn a_top_that_targets_by_grain_is_refused() {
        let (_d, p) = project(
            "base:\n  'environment:staging':\n    - match: grain\n    - project\n",
            "base: {}\n",
        );
        let env = EnvName::parse("staging").unwrap();
        let err = write(&p, "example", &env, &["web1".into()]).unwrap_err();
        assert!(err.message().contains("match: grain"), "{}", err.message());
        assert!(!p.root().join("conf/salt").join(TOP_FILE).exists());
    }
}

//! The plain settings vault reads from a project's pillar: `project_name:` and an
//! environment's `hosts:`, read as YAML events without building the document.

use crate::error::{Error, Result};
use crate::project::{EnvName, Project};
use std::path::Path;

/// `hosts:` of `conf/pillar/<env>/env.sls`, and `project_name:` of `project.sls`: the
/// plain top-level values vault needs from the pillar.
pub fn pillar_settings(project: &Project, env: &EnvName) -> Result<(String, Vec<String>)> {
    let read = |path: &Path| -> Result<String> {
        std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
    };
    let project_file = project.pillar_dir().join("project.sls");
    let name = top_level(&read(&project_file)?, "project_name")
        .and_then(|v| v.into_iter().next())
        .ok_or_else(|| {
            Error::new(format!(
                "{}: no project_name",
                project.display_path(&project_file)
            ))
        })?;
    let env_file = project.env_pillar_dir(env).join("env.sls");
    let hosts = if env_file.exists() {
        top_level(&read(&env_file)?, "hosts").unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((name, hosts))
}

/// The scalar, or the scalars of the list, under top-level `key` of a YAML document.
fn top_level(text: &str, key: &str) -> Option<Vec<String>> {
    use saphyr_parser::{Event, Parser};
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut found = false;
    let mut out = Vec::new();
    let mut in_list = false;
    for ev in Parser::new_from_str(text) {
        let (ev, _) = ev.ok()?;
        match ev {
            Event::MappingStart(..) | Event::SequenceStart(..)
                if found && depth == 1 && !in_list =>
            {
                if matches!(ev, Event::SequenceStart(..)) {
                    in_list = true;
                    depth += 1;
                } else {
                    return None;
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                expect_key = depth == 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if in_list && depth == 2 {
                    return Some(out);
                }
                depth = depth.saturating_sub(1);
                expect_key = depth == 1;
            }
            Event::Scalar(v, ..) if in_list && depth == 2 => out.push(v.into_owned()),
            Event::Scalar(v, ..) if depth == 1 && found => return Some(vec![v.into_owned()]),
            Event::Scalar(v, ..) if depth == 1 && expect_key => {
                found = v == key;
                expect_key = false;
            }
            Event::Scalar(..) if depth == 1 => expect_key = true,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::top_level;

    #[test]
    fn reads_top_level_values() {
        let doc = "environment: staging\nhosts:\n  - root@10.0.0.1\n  - web2:2222\ndomain: x\n";
        assert_eq!(
            top_level(doc, "hosts").unwrap(),
            ["root@10.0.0.1", "web2:2222"]
        );
        assert_eq!(top_level(doc, "domain").unwrap(), ["x"]);
        assert_eq!(
            top_level("hosts: []\n", "hosts").unwrap(),
            Vec::<String>::new()
        );
        assert!(top_level("a: 1\n", "hosts").is_none());
        assert_eq!(
            top_level("project_name: example\n", "project_name").unwrap(),
            ["example"]
        );
    }
}

//! Which servers a run goes to: `[user@]host[:port]` parsed, and the run's list of them,
//! each server named once.

use crate::error::{Error, Result};
use std::fmt;

/// One server: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        let bad = || Error::usage(format!("invalid host '{s}': use [user@]host[:port]"));
        let (user, rest) = match s.split_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad()),
            None => (None, s),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            _ => (rest, None),
        };
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Target {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// How the host is named to the user: `[user@]host[:port]`, as given.
    pub(crate) fn label(&self) -> String {
        self.to_string()
    }

    /// The port ssh reaches: the one given, else 22.
    pub(crate) fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(22)
    }

    /// Logs in as root (no user named means root): no `sudo` needed on the host.
    pub(crate) fn is_root(&self) -> bool {
        self.user.as_deref().unwrap_or("root") == "root"
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// The servers of a run: `given` parsed, each without a user taking `default_user`. A
/// server named twice (`web1` and `web1:22` alike) is refused: two runs at once on one
/// server would race over its roots, its pillar and Salt's lock.
pub fn targets(given: &[String], default_user: Option<&str>) -> Result<Vec<Target>> {
    let mut out: Vec<Target> = Vec::with_capacity(given.len());
    for h in given {
        let mut t = Target::parse(h)?;
        if t.user.is_none() {
            t.user = default_user.map(String::from);
        }
        let same_server =
            |o: &Target| o.host == t.host && o.port_or_default() == t.port_or_default();
        if let Some(o) = out.iter().find(|o| same_server(o)) {
            return Err(Error::usage(format!(
                "{} and {} are the same server",
                o.label(),
                t.label()
            ))
            .with_hint("name each server once"));
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(
            Target::parse("web1").unwrap(),
            Target {
                user: None,
                host: "web1".into(),
                port: None
            }
        );
        assert_eq!(
            Target::parse("root@10.0.0.1:2222").unwrap(),
            Target {
                user: Some("root".into()),
                host: "10.0.0.1".into(),
                port: Some(2222)
            }
        );
        for bad in ["", "@h", "u@", "h:x", "-oProxyCommand=x", "a b"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_take_the_default_user_and_name_each_server_once() {
        let given = |hs: &[&str]| hs.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        let t = targets(&given(&["web1", "root@web2:2222"]), Some("deploy")).unwrap();
        assert_eq!(t[0].user.as_deref(), Some("deploy"));
        assert_eq!(t[1].user.as_deref(), Some("root"));
        for twice in [
            &["web1", "web1"][..],
            &["web1", "root@web1:22"],
            &["a:2", "b@a:2"],
        ] {
            let err = targets(&given(twice), None).unwrap_err().to_string();
            assert!(err.contains("are the same server"), "{twice:?}: {err}");
        }
        assert_eq!(
            targets(&given(&["web1", "web1:2222"]), None).unwrap().len(),
            2
        );
    }
}

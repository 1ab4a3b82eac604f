//! A real PostgreSQL for the tests: the cluster scripts/setup-test-deps creates and starts
//! (`vault_tests`, on 127.0.0.1 only, password auth over TCP), found with pg_lsclusters;
//! and a role with a database of its own per test, dropped when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The setup's cluster (scripts/setup-test-deps names it so).
pub const CLUSTER: &str = "vault_tests";

/// The tests' cluster, online.
pub struct Postgres {
    pub port: u16,
}

impl Postgres {
    /// The setup's cluster if it is online, or None with a message (a failure in CI).
    pub fn find() -> Option<Postgres> {
        let listed = Command::new("pg_lsclusters")
            .arg("--no-header")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        // Ver Cluster Port Status Owner Data-directory Log-file
        let port = listed.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 3 && f[1] == CLUSTER && f[3].starts_with("online"))
                .then(|| f[2].parse().ok())
                .flatten()
        });
        match port {
            Some(port) => Some(Postgres { port }),
            None => {
                super::require_in_ci(&format!("PostgreSQL's {CLUSTER} cluster (online)"));
                None
            }
        }
    }

    /// Runs `sql` (on psql's standard input, never in argv) as the postgres user over the
    /// cluster's socket; returns what psql printed (unaligned, tuples only). Panics on an
    /// SQL error, without echoing the SQL (it may hold a password).
    pub fn psql(&self, sql: &str) -> String {
        let out = super::run_with_input(
            {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t"])
                    .args(["-v", "ON_ERROR_STOP=1", "-d", "postgres"])
                    .arg("-p")
                    .arg(self.port.to_string())
                    .env("PGCLIENTENCODING", "UTF8")
                    .current_dir("/");
                c
            },
            format!("SET standard_conforming_strings = on;\n{sql}\n").as_bytes(),
        );
        assert!(out.0.status.success(), "psql failed: {}", out.stderr());
        out.stdout()
    }

    /// A new role that logs in with `password`, owning a new database of the same name;
    /// both are dropped when the returned guard is.
    pub fn database(&self, password: &str) -> Database<'_> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vault_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let db = Database { pg: self, name };
        self.psql(&format!(
            "CREATE ROLE {n} LOGIN PASSWORD {pw};\nCREATE DATABASE {n} OWNER {n};",
            n = db.name,
            pw = literal(password)
        ));
        db
    }
}

/// `s` as an SQL string literal (standard_conforming_strings: only `'` is doubled).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A role and its database, dropped (with any session still open) on drop.
pub struct Database<'a> {
    pg: &'a Postgres,
    pub name: String,
}

impl Drop for Database<'_> {
    fn drop(&mut self) {
        let sql = format!(
            "DROP DATABASE IF EXISTS {n} WITH (FORCE);\nDROP ROLE IF EXISTS {n};",
            n = self.name
        );
        // Never a second panic while a failed test unwinds.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pg.psql(&sql)));
    }
}

impl Database<'_> {
    /// The role's password, changed as an admin would (ALTER ROLE).
    pub fn set_password(&self, password: &str) {
        self.pg.psql(&format!(
            "ALTER ROLE {} PASSWORD {};",
            self.name,
            literal(password)
        ));
    }

    /// Logs in as the role over 127.0.0.1 with `password` (given to psycopg2, in the
    /// venv of `python`, on its standard input): `current_user`, or libpq's refusal.
    pub fn login(&self, python: &Path, password: &str) -> Result<String, String> {
        let request = serde_json::json!({
            "port": self.pg.port, "name": self.name, "password": password,
        });
        let out = super::run_with_input(
            {
                let mut c = Command::new(python);
                c.args(["-c", LOGIN]).stderr(Stdio::piped());
                c
            },
            request.to_string().as_bytes(),
        );
        match out.code() {
            0 => Ok(out.stdout().trim().to_string()),
            3 => Err(out.stdout().trim().to_string()),
            _ => panic!("the login check failed: {}", out.stderr()),
        }
    }

    /// Who owns `table` in this database.
    pub fn table_owner(&self, table: &str) -> String {
        self.pg
            .psql(&format!(
                "\\connect {}\nSELECT tableowner FROM pg_tables WHERE tablename = {};",
                self.name,
                literal(table)
            ))
            .trim()
            .to_string()
    }
}

/// Connects as given on standard input; exit 3 with libpq's message when refused.
const LOGIN: &str = r#"
import json, sys
import psycopg2
a = json.load(sys.stdin)
try:
    c = psycopg2.connect(host="127.0.0.1", port=a["port"], dbname=a["name"], user=a["name"], password=a["password"])
except psycopg2.OperationalError as e:
    print(str(e).strip())
    sys.exit(3)
cur = c.cursor()
cur.execute("SELECT current_user")
print(cur.fetchone()[0])
"#;

/// The app venv's python, when it has psycopg2 and Django (scripts/setup-test-deps).
pub fn django_python(app_venv: &Path) -> Option<PathBuf> {
    let python = app_venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import django, psycopg2"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        super::require_in_ci("Django and psycopg2 in the app venv");
        None
    }
}

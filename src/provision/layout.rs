//! Where a run puts things on the server: the host's root (`--remote-root` filled in),
//! the Salt roots and config under it, or a dry run's scratch root beside them, and the
//! minion config that points Salt at them.

use crate::provision::target::Target;
use crate::provision::Settings;

/// The folders of one host's run.
pub(super) struct Layout {
    /// The host's root: `--remote-root` with `{host}` and `{port}` filled in.
    root: String,
    /// A dry run's scratch root, which goes however the run ends.
    pub scratch: Option<String>,
    /// Where conf/salt and conf/pillar are shipped to.
    pub srv: String,
    pub salt_root: String,
    pub pillar_root: String,
    /// Salt's config folder, holding the minion config.
    pub config_dir: String,
    /// The environment's pillar folder, where the secrets go.
    pub env_dir: String,
    /// The server's record of the secrets version it last applied (a dry run's too:
    /// it reads the real one, and never writes it).
    pub record: String,
}

impl Layout {
    pub fn new(settings: &Settings, target: &Target) -> Layout {
        let root = settings
            .remote_root
            .replace("{host}", &target.host)
            .replace("{port}", &target.port_or_default().to_string());
        let under_root = |rel: &str| format!("{}/{rel}", root.trim_end_matches('/'));
        // A dry run ships into a scratch root of its own beside the real one, so that the
        // server's Salt roots and minion config stay as they were; Salt still compares
        // against the live system (the same root_dir).
        let scratch = settings
            .dry_run
            .then(|| under_root(&format!("srv/.vault-dry-run-{}", run_id())));
        let srv = scratch.clone().unwrap_or_else(|| under_root("srv"));
        // A dry run's config folder has a leading dot: the extra state trees ship into
        // the scratch root as folders of their names, none of which has one, so a tree
        // named `etc` cannot become Salt's config (its `minion.d`).
        let config_dir = match &scratch {
            Some(s) => format!("{s}/.etc"),
            None => under_root("etc/salt"),
        };
        let (salt_root, pillar_root) = (format!("{srv}/salt"), format!("{srv}/pillar"));
        // One file per project and environment, in the project's folder (the project
        // name, checked as an environment name is, holds no `/`): two projects never
        // share one, whatever their names.
        let record = format!(
            "var/lib/vault/{}/applied-{}",
            settings.project_name, settings.env
        );
        Layout {
            env_dir: format!("{pillar_root}/{}", settings.env),
            record: under_root(&record),
            root,
            scratch,
            srv,
            salt_root,
            pillar_root,
            config_dir,
        }
    }

    /// The minion config: this project's id for the environment, a masterless file
    /// client, the host's root and the run's Salt roots.
    pub fn minion_config(&self, settings: &Settings) -> String {
        format!(
            "id: {}-{}\nfile_client: local\nroot_dir: {}\nfile_roots:\n  base:\n    - {}\n{}pillar_roots:\n  base:\n    - {}\n\
             # No reverse DNS for fqdn grains, grains cached between runs, and no sync of custom\n\
             # modules (the project ships none) before each run: a faster salt-call.\n\
             enable_fqdns_grains: False\ngrains_cache: True\nautoload_dynamic_modules: False\n",
            settings.project_name,
            settings.env,
            if self.root.is_empty() { "/" } else { &self.root },
            self.salt_root,
            settings
                .state_trees
                .iter()
                .filter_map(|t| super::pillar::tree_name(t))
                .map(|name| format!("    - {}/{name}\n", self.srv))
                .collect::<String>(),
            self.pillar_root,
        )
    }
}

/// A name for this run's scratch files, unlike any other run's on the same server.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

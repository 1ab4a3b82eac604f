//! What a run reports while it goes, for its caller to show: below the binary nothing
//! draws on the terminal. Nothing here carries a secret value: Salt's lines arrive
//! redacted.

use crate::provision::report::Applied;

/// Where a run's progress goes. Hosts are named by their place in the list given to
/// [`hosts`](Progress::hosts); the calls for different hosts interleave.
pub trait Progress {
    /// Before any host starts: the run's hosts, by label (`[user@]host[:port]`), in order.
    fn hosts(&self, labels: &[String]);
    /// Host `host` starts `step`: connect, rsync, secrets or salt-call.
    fn step(&self, host: usize, step: &'static str);
    /// A line of Salt's output on the host, every secret value in it redacted.
    fn salt_output(&self, host: usize, line: &str);
    /// Something vault says about the host (the host key a first contact accepted).
    fn note(&self, host: usize, msg: &str);
    /// The host is over: what Salt did, or why it could not.
    fn finished(&self, host: usize, result: &Result<Applied, String>);
}

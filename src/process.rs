//! The process itself, hardened before it holds any plaintext: no core dump (the soft
//! and hard `RLIMIT_CORE` at 0, inherited by the editor and any child) and not dumpable
//! (no core even where a handler ignores the limit, no ptrace attach by the same user,
//! `/proc/PID/mem` and `environ` closed to it). And the way out after a caught signal:
//! the plaintext wiped first, then the process ends as that signal would have ended it.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal a command caught and cleaned up after, to end with once it has returned.
static ENDED_BY: AtomicI32 = AtomicI32::new(0);

/// Turns off core dumps and makes the process undumpable. Call first thing in `main`:
/// every command may decrypt. Failing is reported, never ignored.
pub fn harden() -> std::io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// Records that the running command was interrupted by `signal` and has cleaned up:
/// [`exit`] then ends the process by that signal rather than with a status.
pub fn end_by_signal(signal: i32) {
    ENDED_BY.store(signal, Ordering::SeqCst);
}

/// Ends the process: by the signal recorded with [`end_by_signal`] (its default action,
/// restored and raised, so the parent sees what it sent), else with `code`. A signal
/// whose default cannot be emulated here (a real-time one, SIGSTKFLT, SIGPWR) ends it
/// with the shells' 128 + signal instead.
pub fn exit(code: i32) -> ! {
    let sig = ENDED_BY.load(Ordering::SeqCst);
    if sig != 0 {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        std::process::exit(128 + sig);
    }
    std::process::exit(code)
}

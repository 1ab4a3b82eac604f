//! The live display of `vault provision` on standard error: a spinner per host naming its
//! step, with Salt's lines printed above the spinners; when standard error is not a
//! terminal, no spinners, and each line plain.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;
use vault::provision::{Applied, Progress};

pub struct Terminal {
    multi: MultiProgress,
    /// Each host's label and spinner, in the run's order.
    hosts: RefCell<Vec<(String, ProgressBar)>>,
}

impl Terminal {
    pub fn new() -> Terminal {
        let multi = MultiProgress::new();
        if !std::io::stderr().is_terminal() {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        Terminal {
            multi,
            hosts: RefCell::default(),
        }
    }

    fn spinner(&self, label: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                .expect("static template"),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn say(&self, host: usize, line: &str) {
        let hosts = self.hosts.borrow();
        let Some((label, _)) = hosts.get(host) else {
            return;
        };
        // Through the progress display, so lines and spinners do not tangle.
        let msg = format!("[{label}] {line}");
        if self.multi.is_hidden() {
            crate::output::line(&msg);
        } else {
            let _ = self.multi.println(msg);
        }
    }
}

impl Progress for Terminal {
    fn hosts(&self, labels: &[String]) {
        let hosts = labels
            .iter()
            .map(|l| (l.clone(), self.spinner(l)))
            .collect();
        *self.hosts.borrow_mut() = hosts;
    }

    fn step(&self, host: usize, step: &'static str) {
        if let Some((_, bar)) = self.hosts.borrow().get(host) {
            bar.set_message(step);
        }
    }

    fn salt_output(&self, host: usize, line: &str) {
        self.say(host, line);
    }

    fn note(&self, host: usize, msg: &str) {
        self.say(host, msg);
    }

    fn finished(&self, host: usize, result: &Result<Applied, String>) {
        let hosts = self.hosts.borrow();
        let Some((_, bar)) = hosts.get(host) else {
            return;
        };
        bar.finish_with_message(match result {
            Ok(a) if a.failed.is_empty() => format!("done ({} changed)", a.changed),
            Ok(a) => format!("{} state(s) failed", a.failed.len()),
            Err(e) => format!("failed: {e}"),
        });
    }
}

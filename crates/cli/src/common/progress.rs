//! Progress of a long operator command (`dlq replay`, `reprocess`): a bar on a terminal,
//! plain lines at most once a second otherwise (logs and CI keep readable output).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A bar on a terminal, plain lines (at most one a second) otherwise.
pub struct Reporter {
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl Reporter {
    pub fn new(total: u64) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (ETA {eta})",
                )
                .expect("a valid template"),
            );
            bar
        });
        Reporter {
            bar,
            last_line: Instant::now(),
        }
    }

    pub fn update(&mut self, done: u64, total: u64, message: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total.max(done));
                bar.set_position(done);
                bar.set_message(message);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(1) => {
                eprintln!("intake: {done}/{total} {message}");
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    /// Whether a bar is drawn (plain lines are not).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

//! Progress on stderr: an indicatif bar with an ETA on a terminal, one plain line per epoch
//! otherwise, nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Reports a run's progress as a fraction in [0, 1] and a message.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
}

impl Progress {
    /// A reporter for `label`.
    pub fn new(label: &str, quiet: bool) -> Progress {
        if quiet {
            return Progress {
                bar: None,
                plain: false,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(1000);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{label} [{{elapsed_precise}}] {{wide_bar}} {{percent}}% ETA {{eta}} {{msg}}"
                ))
                .expect("a valid template"),
            );
            Progress {
                bar: Some(bar),
                plain: false,
            }
        } else {
            Progress {
                bar: None,
                plain: true,
            }
        }
    }

    /// `done` ∈ [0, 1] of the run is finished.
    pub fn report(&self, done: f64, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position((done.clamp(0.0, 1.0) * 1000.0) as u64);
            bar.set_message(msg.to_string());
        } else if self.plain {
            eprintln!("{:5.1}% {msg}", 100.0 * done.clamp(0.0, 1.0));
        }
    }

    /// Ends the bar (the plain lines need no ending).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Runs `fit` with an epoch observer: a `label` reporter (see [`Progress::new`]) is told,
/// after every epoch, the share of the run done (epoch of `epochs`, or seconds of an
/// optional `budget`) and `line(epoch, value, seconds)`; it is finished when `fit` returns.
pub fn fit_observed<T>(
    label: &str,
    quiet: bool,
    epochs: usize,
    budget: Option<f64>,
    line: impl Fn(usize, f64, f64) -> String,
    fit: impl FnOnce(&mut dyn FnMut(usize, f64, f64)) -> T,
) -> T {
    let progress = Progress::new(label, quiet);
    let out = fit(&mut |epoch, value, secs| {
        progress.report(
            crate::output::fraction(epoch, epochs, secs, budget),
            &line(epoch, value, secs),
        )
    });
    progress.finish();
    out
}

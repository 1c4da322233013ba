//! accord's one progress bar, a build's and verify's: one phase at a time
//! (checking or writing hosts, putting a rebuild in place, removing what it
//! replaced; starting hosts, checking pairs), each with its count and an
//! ETA from the rate observed in that phase, or a wait with the time it has
//! taken. It appears only on request and once the work has taken a second,
//! so quick builds print nothing.

use std::fmt::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A build's progress on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    /// A phase with a count: `MSG 3/10 [bar] ETA 12s`.
    counted: ProgressStyle,
    /// A wait: `MSG (4s)`.
    waiting: ProgressStyle,
}

/// How long a build runs before its progress shows.
const SHOW_AFTER: Duration = Duration::from_secs(1);

impl Progress {
    /// Progress that shows only when `enabled`.
    pub fn new(enabled: bool) -> Progress {
        let counted = ProgressStyle::with_template("{msg} {pos}/{len} {wide_bar} {eta_label}")
            .map(|style| style.with_key("eta_label", eta_label))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let waiting = ProgressStyle::with_template("{msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            bar.set_style(counted.clone());
            bar
        });
        Progress {
            bar,
            start: Instant::now(),
            counted,
            waiting,
        }
    }

    /// Starts a phase of `total` steps.
    pub fn phase(&self, what: &str, total: u64) {
        let Some(bar) = &self.bar else { return };
        bar.set_style(self.counted.clone());
        bar.set_position(0);
        bar.set_length(total);
        bar.set_message(what.to_string());
        bar.reset_elapsed();
        self.show_when_due(bar);
    }

    /// `done` of the `total` steps of phase `what` are done (the phase
    /// starts when `what` or `total` is new): for events that carry their
    /// count and may arrive out of order from several threads.
    pub fn at(&self, what: &str, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if bar.message() != what || bar.length() != Some(total) {
            self.phase(what, total);
        }
        if done > bar.position() {
            bar.set_position(done);
        }
        self.show_when_due(bar);
    }

    /// Starts a phase that is one wait, without a count (verify's
    /// "installing the builds"): its message and the time it has taken.
    pub fn wait(&self, what: &str) {
        let Some(bar) = &self.bar else { return };
        bar.set_style(self.waiting.clone());
        bar.set_length(0);
        bar.set_position(0);
        bar.set_message(what.to_string());
        bar.reset_elapsed();
        self.show_when_due(bar);
    }

    /// One step done.
    pub fn tick(&self) {
        let Some(bar) = &self.bar else { return };
        bar.inc(1);
        self.show_when_due(bar);
    }

    fn show_when_due(&self, bar: &ProgressBar) {
        if bar.is_hidden() && self.start.elapsed() > SHOW_AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `ETA 12s`: the time the phase's remaining steps take at the rate of its
/// steps so far; `ETA -` until 2% of them or two seconds' worth are done
/// (the first steps, started together on every thread, say little).
fn eta_label(state: &ProgressState, out: &mut dyn Write) {
    let _ = out.write_str(&eta_text(
        state.pos(),
        state.len().unwrap_or(0),
        state.elapsed(),
    ));
}

fn eta_text(done: u64, total: u64, elapsed: Duration) -> String {
    if done == 0 || total < done || (done * 50 < total && elapsed < Duration::from_secs(2)) {
        return "ETA -".to_string();
    }
    let left = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
    let seconds = left.ceil() as u64;
    if seconds >= 60 {
        format!("ETA {}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("ETA {seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_observed_rate() {
        let s = Duration::from_secs;
        assert_eq!(eta_text(0, 100, s(3)), "ETA -");
        assert_eq!(eta_text(1, 100, Duration::from_millis(300)), "ETA -");
        // 10 of 100 steps in 2 s: 90 more take 18 s.
        assert_eq!(eta_text(10, 100, s(2)), "ETA 18s");
        assert_eq!(eta_text(1, 100, s(2)), "ETA 3m18s");
        assert_eq!(eta_text(100, 100, s(2)), "ETA 0s");
    }
}

//! The time budget of a training run or phase, shared by every training loop: whether it is
//! spent, and the planned progress that drives the learning-rate schedules.

use std::time::Instant;

/// A wall-clock budget of `seconds` counted from `offset` seconds after `start` (a later
/// phase of a run starts its share of the budget where the earlier phases ended).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeBudget {
    start: Instant,
    offset: f64,
    seconds: Option<f64>,
}

impl TimeBudget {
    /// `seconds` (if any) from `offset` seconds after `start`.
    pub(crate) fn new(start: Instant, offset: f64, seconds: Option<f64>) -> TimeBudget {
        TimeBudget {
            start,
            offset,
            seconds,
        }
    }

    /// Seconds since `start`.
    pub(crate) fn total(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Seconds of the budget's own span, given `total` seconds since `start`.
    pub(crate) fn within(&self, total: f64) -> f64 {
        total - self.offset
    }

    /// Seconds of the budget's own span so far.
    pub(crate) fn elapsed(&self) -> f64 {
        self.within(self.total())
    }

    /// Whether `elapsed` seconds of the span use up the budget.
    pub(crate) fn spent(&self, elapsed: f64) -> bool {
        self.seconds.is_some_and(|b| elapsed >= b)
    }

    /// The run's progress in [0, 1] for the schedules: the share of the planned epochs done
    /// (`by_epochs`), or the share of the budget spent if that is larger.
    pub(crate) fn progress(&self, by_epochs: f64, elapsed: f64) -> f64 {
        self.seconds
            .map_or(by_epochs, |b| by_epochs.max(elapsed / b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_follows_the_epochs_or_the_budget_whichever_is_further() {
        let now = Instant::now();
        let none = TimeBudget::new(now, 0.0, None);
        assert!(!none.spent(1e9));
        assert_eq!(none.progress(0.25, 1e9), 0.25);
        let b = TimeBudget::new(now, 10.0, Some(4.0));
        assert_eq!(b.within(12.0), 2.0);
        assert!(!b.spent(3.9) && b.spent(4.0));
        assert_eq!(b.progress(0.25, 2.0), 0.5);
        assert_eq!(b.progress(0.75, 2.0), 0.75);
    }
}

//! The training-loop skeleton shared by the single-phase trainers (LISTA, group-sparse
//! auto-encoders, lateral inhibition): epochs of shuffled minibatches drawn from a generator
//! named by (seed, epoch), the time budget checked before every minibatch, the planned
//! progress that drives the learning-rate schedules, checkpoint cadence and exact resumption
//! through [`LoopCheckpointer`], and collapse detection. A family plugs in what differs
//! through [`LoopFamily`]: one minibatch's update, its running sums, and what an epoch's end
//! reports.
//!
//! DrSAE's two-phase loop (validation, parameter averaging, early stopping, and a checkpoint
//! format of its own) has its own epoch driver in `drsae_phase.rs`; it shares with this one
//! the time budget ([`TimeBudget`]), the checkpoint cadence
//! ([`Checkpointing::cadence`](super::checkpoint::Checkpointing::cadence)), the epoch order
//! ([`epoch_rng`]) and the collapse error.

use super::budget::TimeBudget;
use super::loop_checkpoint::{LoopCheckpointer, LoopPosition, OwnedTensor};
use super::optimizer::OptimizerState;
use crate::data::{epoch_rng, Minibatches};
use crate::{Error, Result};
use std::time::Instant;

/// One family's part of a training run.
pub(crate) trait LoopFamily {
    /// An epoch starts (or resumes at `pos.batch_index`): take the running sums from
    /// `pos.sums`.
    fn begin_epoch(&mut self, epoch: usize, pos: &LoopPosition);
    /// One minibatch (row indices `rows`) at `progress` ∈ [0, 1] of the planned run: update
    /// the model, advance `pos.step`, write the running sums into `pos.sums`.
    fn step(&mut self, rows: &[usize], progress: f64, pos: &mut LoopPosition) -> Result<()>;
    /// Whether every code unit was silent on the examples of the last minibatch and no
    /// parameter received a gradient from it (`false` for families without that notion).
    fn silent(&self) -> bool {
        false
    }
    /// The epoch ended: report it, reset `pos.sums` for the next one, and return the figure
    /// kept in the history.
    fn end_epoch(&mut self, epoch: usize, pos: &mut LoopPosition, seconds: f64) -> f64;
    /// The time budget ran out inside `epoch` (before any of its minibatches, possibly).
    fn out_of_time(&mut self, _epoch: usize, _seconds: f64) {}
    /// The tensors a checkpoint holds.
    fn tensors(&self) -> Vec<OwnedTensor>;
    /// The optimiser whose state a checkpoint holds, if the family has one.
    fn optimizer(&self) -> Option<&OptimizerState>;
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoopEnd {
    /// Every planned epoch ran.
    Finished,
    /// The time budget ended it.
    OutOfTime,
}

/// The planned run: `epochs` passes over `rows` examples in minibatches of `batch`, shuffled
/// by `seed`, within `budget` seconds from `start`.
pub(crate) struct EpochLoop<'a> {
    pub(crate) rows: usize,
    pub(crate) batch: usize,
    pub(crate) epochs: usize,
    pub(crate) seed: u64,
    pub(crate) budget: Option<f64>,
    pub(crate) start: Instant,
    /// Error with [`Error::Collapsed`] after an epoch whose every minibatch was
    /// [`LoopFamily::silent`].
    pub(crate) detect_collapse: bool,
    pub(crate) checkpoints: &'a LoopCheckpointer<'a>,
}

impl EpochLoop<'_> {
    /// Runs from `pos` (the start, or a resumed position) to the end of the plan.
    ///
    /// # Errors
    /// The family's errors, [`Error::Collapsed`], checkpoint errors and
    /// [`Error::Interrupted`].
    pub(crate) fn run<F: LoopFamily>(
        &self,
        pos: &mut LoopPosition,
        family: &mut F,
    ) -> Result<LoopEnd> {
        let per_epoch = self.rows.div_ceil(self.batch) as f64;
        let budget = TimeBudget::new(self.start, 0.0, self.budget);
        while pos.epoch < self.epochs {
            let epoch = pos.epoch;
            let mut rng = epoch_rng(self.seed, 0, epoch as u64);
            let order = Minibatches::shuffled(self.rows, self.batch, &mut rng);
            family.begin_epoch(epoch, pos);
            let (mut steps, mut all_silent) = (0usize, true);
            for (k, idx) in order.iter().enumerate().skip(pos.batch_index) {
                let elapsed = budget.elapsed();
                if budget.spent(elapsed) {
                    family.out_of_time(epoch, elapsed);
                    return Ok(LoopEnd::OutOfTime);
                }
                let by_epochs = (epoch as f64 + k as f64 / per_epoch) / self.epochs as f64;
                let progress = budget.progress(by_epochs, elapsed);
                family.step(idx, progress, pos)?;
                steps += 1;
                all_silent &= family.silent();
                pos.batch_index = k + 1;
                self.checkpoints
                    .after_step(pos, || family.tensors(), family.optimizer())?;
            }
            if self.detect_collapse && steps > 0 && all_silent {
                return Err(Error::Collapsed {
                    step: pos.step,
                    phase: 1,
                    epoch: epoch + 1,
                });
            }
            let figure = family.end_epoch(epoch, pos, self.start.elapsed().as_secs_f64());
            pos.history.push(figure);
            pos.epoch += 1;
            pos.batch_index = 0;
            self.checkpoints
                .at_epoch_end(pos, || family.tensors(), family.optimizer())?;
        }
        Ok(LoopEnd::Finished)
    }
}

/// Every value of every slice is exactly zero.
pub(crate) fn all_zero<'a>(parts: impl IntoIterator<Item = &'a [f32]>) -> bool {
    parts.into_iter().all(|p| p.iter().all(|&v| v == 0.0))
}

//! One phase of DrSAE training, in named parts: the phase's start (its share of the time
//! budget, its optimiser), the epoch loop over shuffled minibatches, the parameter average,
//! the epoch's end (validation of the judged model, the best model and early stopping) and
//! the checkpoint cadence. `drsae_trainer.rs` starts or resumes a run and runs its two
//! phases through [`Run::phase`].

use super::budget::TimeBudget;
use super::checkpoint::{Checkpointing, EpochReport, TrainState};
use super::drsae_config::DrsaeConfig;
use super::drsae_step::DrsaeStep;
use crate::data::{epoch_rng, gather_rows, Minibatches};
use crate::linalg::Mat;
use crate::models::{DrsaeNetwork, LossWeights};
use crate::{Error, Result};
use std::time::Instant;

/// Training and validation data, rows already preprocessed (unit L2 norm for DrSAE).
#[derive(Clone, Copy, Debug)]
pub struct Split<'a> {
    /// Training inputs, one per row.
    pub train_x: &'a Mat,
    /// Training labels.
    pub train_y: &'a [u8],
    /// Validation inputs.
    pub val_x: &'a Mat,
    /// Validation labels.
    pub val_y: &'a [u8],
}

/// Rows evaluated at a time when validating.
pub(crate) const VALIDATION_BATCH: usize = 500;

/// What the phases of one run share.
pub(crate) struct Run<'a> {
    pub(crate) cfg: &'a DrsaeConfig,
    pub(crate) data: Split<'a>,
    pub(crate) ckpt: &'a Checkpointing,
    /// The run's start, the time a resumed run had already spent counted in.
    pub(crate) start: Instant,
}

impl Run<'_> {
    /// Minibatches per epoch.
    fn steps_per_epoch(&self) -> usize {
        self.data.train_x.nrows().div_ceil(self.cfg.batch)
    }

    /// Writes `st` (with the time spent so far) to the checkpoint directory, if there is one.
    fn save(&self, st: &mut TrainState) -> Result<()> {
        if let Some(dir) = &self.ckpt.dir {
            st.elapsed = self.start.elapsed().as_secs_f64();
            st.save(dir)?;
        }
        Ok(())
    }

    /// Runs `phase` (1: unsupervised, 2: full loss) from where `st` stands: from its start,
    /// from the middle of a resumed epoch, or not at all if `st` is past it.
    ///
    /// # Errors
    /// [`Error::Diverged`], [`Error::Collapsed`], checkpoint errors and
    /// [`Error::Interrupted`].
    pub(crate) fn phase(
        &self,
        st: &mut TrainState,
        phase: u8,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Result<()> {
        let cfg = self.cfg;
        let epochs = if phase == 1 {
            cfg.epochs_unsup
        } else {
            cfg.epochs_sup
        };
        let stopped_early =
            phase == 2 && phase == st.phase && cfg.patience.is_some_and(|p| st.since_best >= p);
        if phase < st.phase || epochs == 0 || phase == st.phase && st.epoch > epochs {
            // Done before (or resumed after its end); the next phase starts fresh.
            return Ok(());
        }
        if stopped_early {
            // Resumed from the checkpoint written as early stopping ended the phase.
            return Ok(());
        }
        if phase > st.phase {
            enter_phase(st, phase);
        }
        let mut p = Phase::start(self, st, phase, epochs);
        while st.epoch <= epochs {
            if !p.epoch(st, on_epoch)? {
                break;
            }
        }
        // The next phase starts fresh.
        st.epoch = epochs + 1;
        Ok(())
    }
}

/// A fresh start of `phase` in `st`: first epoch, no optimiser state, no average.
fn enter_phase(st: &mut TrainState, phase: u8) {
    st.phase = phase;
    st.epoch = 1;
    st.batch_index = 0;
    st.opt_first.clear();
    st.opt_second.clear();
    st.opt_step = 0;
    st.since_best = 0;
    st.average = None;
}

/// One phase under way.
struct Phase<'r, 'a> {
    run: &'r Run<'a>,
    phase: u8,
    epochs: usize,
    /// The phase's share of the time budget: phase 1 gets at most 20 %, phase 2 the rest.
    budget: TimeBudget,
    weights: LossWeights,
    cfg: DrsaeConfig,
    stepper: DrsaeStep,
    xb: Mat,
    yb: Vec<u8>,
}

/// What an epoch's minibatches left for its end.
struct EpochRan {
    started: Instant,
    out_of_time: bool,
    /// Minibatches this call ran in the epoch, and whether any code unit was active.
    batches: usize,
    any_active: bool,
}

impl<'r, 'a> Phase<'r, 'a> {
    /// The phase's budget, loss weights, rule and optimiser (restored from `st` if resumed).
    fn start(run: &'r Run<'a>, st: &mut TrainState, phase: u8, epochs: usize) -> Self {
        let cfg = run.cfg;
        // A phase resumed part-way started where the previous phase's last epoch ended.
        let resumed_mid_phase = st.epoch > 1 || st.batch_index > 0;
        let phase_start = if resumed_mid_phase {
            phase_start_of(&st.history, phase)
        } else {
            run.start.elapsed().as_secs_f64()
        };
        let seconds = cfg
            .time_budget
            .map(|b| if phase == 1 { 0.2 * b } else { b - phase_start });
        let weights = if phase == 1 {
            cfg.weights.unsupervised()
        } else {
            cfg.weights
        };
        let phase_cfg = cfg.for_phase(phase);
        let mut stepper = DrsaeStep::new(&st.model, &phase_cfg);
        if st.opt_step > 0 {
            stepper.opt.restore(
                std::mem::take(&mut st.opt_first),
                std::mem::take(&mut st.opt_second),
                st.opt_step,
            );
        }
        Phase {
            run,
            phase,
            epochs,
            budget: TimeBudget::new(run.start, phase_start, seconds),
            weights,
            cfg: phase_cfg,
            stepper,
            xb: Mat::zeros(0, run.data.train_x.ncols()),
            yb: Vec::with_capacity(cfg.batch),
        }
    }

    /// Epoch `st.epoch` from minibatch `st.batch_index`, then its end; whether the phase
    /// goes on.
    fn epoch(
        &mut self,
        st: &mut TrainState,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Result<bool> {
        let ran = self.minibatches(st)?;
        self.end_epoch(st, ran, on_epoch)
    }

    /// The epoch's minibatches, in the order named by (seed, phase, epoch), until the epoch
    /// or the budget ends.
    fn minibatches(&mut self, st: &mut TrainState) -> Result<EpochRan> {
        let data = self.run.data;
        let epoch = st.epoch;
        let steps_per_epoch = self.run.steps_per_epoch();
        // The shuffle of (phase, epoch) depends only on the seed: resumable, reproducible.
        let mut rng = epoch_rng(self.run.cfg.seed, self.phase as u64, epoch as u64);
        let order = Minibatches::shuffled(data.train_x.nrows(), self.run.cfg.batch, &mut rng);
        let mut ran = EpochRan {
            started: Instant::now(),
            out_of_time: false,
            batches: 0,
            any_active: false,
        };
        for (k, idx) in order.iter().enumerate().skip(st.batch_index) {
            let elapsed = self.budget.elapsed();
            if self.budget.spent(elapsed) {
                ran.out_of_time = true;
                break;
            }
            let by_epochs =
                ((epoch - 1) as f64 + k as f64 / steps_per_epoch as f64) / self.epochs as f64;
            let progress = self.budget.progress(by_epochs, elapsed);
            let active = self.step(st, idx, progress)?;
            ran.batches += 1;
            ran.any_active |= active;
            st.global_step += 1;
            st.batch_index = k + 1;
            self.after_step(st, &ran.started)?;
        }
        Ok(ran)
    }

    /// One minibatch (rows `idx`) at `progress`: the update, the parameter average, the
    /// running sums. Whether any code unit was active.
    fn step(&mut self, st: &mut TrainState, idx: &[usize], progress: f64) -> Result<bool> {
        let data = self.run.data;
        gather_rows(data.train_x, idx, &mut self.xb);
        self.yb.clear();
        self.yb.extend(idx.iter().map(|&i| data.train_y[i]));
        let lr = self
            .cfg
            .schedule
            .at(self.cfg.lr, self.stepper.updates(), progress);
        let bl = self
            .stepper
            .run(
                &mut st.model,
                &self.cfg,
                &self.xb,
                &self.yb,
                &self.weights,
                lr,
            )
            .map_err(|e| match e {
                Error::Diverged { what, .. } => Error::Diverged {
                    step: st.global_step,
                    what,
                },
                e => e,
            })?;
        if let (Some(beta), 2) = (self.run.cfg.average, self.phase) {
            match &mut st.average {
                Some(avg) => blend(avg, &st.model, beta),
                None => st.average = Some(st.model.clone()),
            }
        }
        st.sums.0 += bl.mean(&self.weights) * idx.len() as f64;
        st.sums.1 += bl.reconstruction;
        st.sums.2 += bl.correct;
        st.sums.3 += idx.len();
        Ok(bl.l1 > 0.0)
    }

    /// The checkpoint cadence after a step: save when due, save and stop at
    /// `stop_after_steps`.
    fn after_step(&self, st: &mut TrainState, epoch_started: &Instant) -> Result<()> {
        let cadence = self.run.ckpt.cadence(st.global_step);
        if cadence.save {
            // The checkpoint counts the epoch's training time so far.
            st.train_seconds += epoch_started.elapsed().as_secs_f64();
            capture_optimizer(st, &self.stepper);
            self.run.save(st)?;
            st.train_seconds -= epoch_started.elapsed().as_secs_f64();
        }
        if cadence.stop {
            return Err(Error::Interrupted {
                step: st.global_step,
            });
        }
        Ok(())
    }

    /// The epoch's end: divergence and collapse checks, validation of the judged model, the
    /// report, the best model and early stopping, the checkpoint. Whether the phase goes on.
    fn end_epoch(
        &mut self,
        st: &mut TrainState,
        ran: EpochRan,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Result<bool> {
        let (cfg, data, epoch) = (self.run.cfg, self.run.data, st.epoch);
        let secs = ran.started.elapsed().as_secs_f64();
        st.train_seconds += secs;
        let (loss_sum, rec_sum, correct, seen) = std::mem::take(&mut st.sums);
        st.samples_seen += seen;
        if let Some(name) = first_non_finite(&st.model) {
            return Err(Error::Diverged {
                step: st.global_step,
                what: format!("parameter {name}"),
            });
        }
        if seen == 0 {
            return Ok(false);
        }
        // A whole epoch without one active unit: the ReLU network gets no gradient and the
        // optimiser's memory has decayed, so it stays silent for good.
        if ran.batches == self.run.steps_per_epoch() && !ran.any_active {
            return Err(Error::Collapsed {
                step: st.global_step,
                phase: self.phase,
                epoch,
            });
        }
        let judged = judged_average(st, cfg.e_bound());
        let judged = judged.as_ref().unwrap_or(&st.model);
        let (_, val_error) = judged.evaluate(data.val_x, data.val_y, VALIDATION_BATCH);
        let total = self.budget.total();
        let by_epochs = epoch as f64 / self.epochs as f64;
        let report = EpochReport {
            phase: self.phase,
            epoch,
            loss: loss_sum / seen as f64,
            reconstruction: rec_sum / seen as f64,
            train_error: if self.phase == 2 {
                100.0 * (1.0 - correct as f64 / seen as f64)
            } else {
                f64::NAN
            },
            val_error,
            samples_per_s: seen as f64 / secs.max(1e-9),
            seconds: total,
            progress: self
                .budget
                .progress(by_epochs, self.budget.within(total))
                .min(1.0),
        };
        on_epoch(&report);
        st.history.push(report);
        st.epoch += 1;
        st.batch_index = 0;
        let mut stop_phase = ran.out_of_time;
        if self.phase == 2 {
            let best = keep_best(&mut st.best, &mut st.since_best, judged, val_error, epoch);
            stop_phase |= !best && cfg.patience.is_some_and(|p| st.since_best >= p);
        }
        capture_optimizer(st, &self.stepper);
        self.run.save(st)?;
        Ok(!stop_phase)
    }
}

/// Early stopping's memory: keeps `judged` as the `best` model if `val_error` beats the best
/// so far (returning true), else counts one more epoch since the best.
fn keep_best(
    best: &mut Option<(DrsaeNetwork, f64, usize)>,
    since_best: &mut usize,
    judged: &DrsaeNetwork,
    val_error: f64,
    epoch: usize,
) -> bool {
    if best.as_ref().map_or(true, |(_, e, _)| val_error < *e) {
        *best = Some((judged.clone(), val_error, epoch));
        *since_best = 0;
        true
    } else {
        *since_best += 1;
        false
    }
}

/// The parameter average as validation judges it: averaging rows of norm 5 shrinks them,
/// so the average is projected onto the constraints before it is judged (and returned); the
/// running average itself stays unprojected. `None` without an average.
fn judged_average(st: &TrainState, e_max: f32) -> Option<DrsaeNetwork> {
    st.average.as_ref().map(|avg| {
        let mut avg = avg.clone();
        avg.project(e_max);
        avg
    })
}

/// `avg ← β·avg + (1 − β)·model` for every parameter.
fn blend(avg: &mut DrsaeNetwork, model: &DrsaeNetwork, beta: f32) {
    let w = 1.0 - beta;
    for (a, p) in [
        (avg.e.as_mut_slice(), model.e.as_slice()),
        (avg.s.as_mut_slice(), model.s.as_slice()),
        (&mut avg.b[..], &model.b[..]),
        (avg.d.as_mut_slice(), model.d.as_slice()),
        (avg.c.as_mut_slice(), model.c.as_slice()),
    ] {
        a.iter_mut().zip(p).for_each(|(a, p)| *a += w * (p - *a));
    }
}

/// Seconds at which `phase` started, from the history: the end of the previous phase's
/// last epoch (0 for the first phase).
fn phase_start_of(history: &[EpochReport], phase: u8) -> f64 {
    history
        .iter()
        .filter(|r| r.phase < phase)
        .map(|r| r.seconds)
        .fold(0.0, f64::max)
}

/// The optimiser's state into the checkpoint state.
fn capture_optimizer(st: &mut TrainState, stepper: &DrsaeStep) {
    let (first, second) = stepper.opt.moments();
    st.opt_first = first.to_vec();
    st.opt_second = second.to_vec();
    st.opt_step = stepper.opt.step;
}

/// The first tensor of `m` holding a non-finite value.
fn first_non_finite(m: &DrsaeNetwork) -> Option<&'static str> {
    [
        ("E", m.e.as_slice()),
        ("S", m.s.as_slice()),
        ("b", &m.b[..]),
        ("D", m.d.as_slice()),
        ("C", m.c.as_slice()),
    ]
    .into_iter()
    .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
    .map(|(n, _)| n)
}

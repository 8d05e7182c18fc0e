//! Training a DrSAE: phase 1 on the unsupervised loss, phase 2 on the full loss with early
//! stopping on a validation set (the best-validation model is returned).

use super::checkpoint::{Checkpointing, EpochReport, ResumeExpectations, TrainState};
use super::drsae_config::DrsaeConfig;
use super::optimizer::{Optimizer, OptimizerState};
use crate::data::{gather_rows, Minibatches};
use crate::linalg::Mat;
use crate::models::{DrsaeGrads, DrsaeNetwork, DrsaeWorkspace, LossWeights};
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

/// The result of [`train_drsae`].
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The model at the best validation epoch of phase 2.
    pub model: DrsaeNetwork,
    /// Phase-2 epoch (from 1) of the best validation error.
    pub best_epoch: usize,
    /// Best validation error (percent).
    pub best_val_error: f64,
    /// Every epoch's report, in order.
    pub history: Vec<EpochReport>,
    /// Mean training throughput over both phases.
    pub samples_per_s: f64,
}

/// The learning-rate multipliers of E, S, b, D, C: each matrix's rate divided by the number
/// of times it appears in the unrolled network (the paper), the classifier's scaled.
fn multipliers(steps: usize, cfg: &DrsaeConfig) -> [f32; 5] {
    if !cfg.unrolled_lr_scaling {
        return [1.0, 1.0, 1.0, 1.0, cfg.classifier_lr];
    }
    let t = steps as f32;
    [
        1.0 / t,
        1.0 / (t - 1.0).max(1.0),
        1.0 / t,
        1.0,
        cfg.classifier_lr,
    ]
}

/// Flat views of a model's tensors with their gradients and multipliers, in the fixed
/// order E, S, b, D, C.
fn tensors<'a>(
    model: &'a mut DrsaeNetwork,
    grads: &'a DrsaeGrads,
    cfg: &DrsaeConfig,
) -> [(&'a mut [f32], &'a [f32], f32); 5] {
    let m = multipliers(model.steps, cfg);
    [
        (model.e.as_mut_slice(), grads.e.as_slice(), m[0]),
        (model.s.as_mut_slice(), grads.s.as_slice(), m[1]),
        (&mut model.b[..], &grads.b[..], m[2]),
        (model.d.as_mut_slice(), grads.d.as_slice(), m[3]),
        (model.c.as_mut_slice(), grads.c.as_slice(), m[4]),
    ]
}

/// One optimisation step of DrSAE training, with every buffer allocated once: forward,
/// hand-derived backward, optimiser update with the per-matrix rates, projection. This is
/// the step [`train_drsae`] runs and the `bench` example measures.
pub struct DrsaeStep {
    ws: DrsaeWorkspace,
    grads: DrsaeGrads,
    opt: OptimizerState,
    e_max: f32,
}

impl DrsaeStep {
    /// Buffers and optimiser state for `model` under `cfg`.
    pub fn new(model: &DrsaeNetwork, cfg: &DrsaeConfig) -> Self {
        let lengths = [
            model.e.as_slice().len(),
            model.s.as_slice().len(),
            model.b.len(),
            model.d.as_slice().len(),
            model.c.as_slice().len(),
        ];
        DrsaeStep {
            ws: DrsaeWorkspace::default(),
            grads: model.zero_grads(),
            opt: OptimizerState::new(cfg.optimizer, &lengths),
            e_max: cfg.e_bound(),
        }
    }

    /// Updates taken so far.
    pub fn updates(&self) -> u64 {
        self.opt.step
    }

    /// One step on the batch `(x, labels)` with learning rate `lr`; returns the batch loss
    /// (before the update).
    ///
    /// # Errors
    /// [`Error::Diverged`] if the loss is not finite (the model is left unchanged).
    pub fn run(
        &mut self,
        model: &mut DrsaeNetwork,
        cfg: &DrsaeConfig,
        x: &Mat,
        labels: &[u8],
        weights: &LossWeights,
        lr: f32,
    ) -> Result<crate::models::BatchLoss> {
        let bl = model.forward(x, Some(labels), &mut self.ws);
        if !bl.mean(weights).is_finite() {
            return Err(Error::Diverged {
                step: self.opt.step,
                what: "loss".into(),
            });
        }
        if cfg.optimizer == Optimizer::Sgd {
            // Plain SGD needs no optimiser state: fuse the update and the projection into the
            // backward pass.
            let rates = multipliers(model.steps, cfg).map(|m| lr * m);
            model.sgd_step(x, Some(labels), weights, &mut self.ws, rates, self.e_max);
            self.opt.step += 1;
        } else {
            model.backward(x, Some(labels), weights, &mut self.ws, &mut self.grads);
            self.opt.update(lr, &mut tensors(model, &self.grads, cfg));
            model.project(self.e_max);
        }
        Ok(bl)
    }
}

/// Trains a DrSAE (see [`DrsaeConfig`]); `on_epoch` sees every epoch's report as it ends.
///
/// # Errors
/// An invalid configuration, mismatched or non-finite data, a diverged loss
/// ([`Error::Diverged`] naming the step), or a network whose every code unit fell silent for
/// a whole epoch ([`Error::Collapsed`]).
pub fn train_drsae(
    cfg: &DrsaeConfig,
    data: Split<'_>,
    on_epoch: impl FnMut(&EpochReport),
) -> Result<TrainOutcome> {
    train_drsae_with(cfg, data, &Checkpointing::default(), on_epoch)
}

/// [`train_drsae`] with checkpoints and resumption.
///
/// # Errors
/// As [`train_drsae`]; also a checkpoint that cannot be written or read, a checkpoint made
/// with a different configuration, and [`Error::Interrupted`] when `stop_after_steps` is
/// reached. On [`Error::Diverged`] the last checkpoint (the last good state) is kept.
pub fn train_drsae_with(
    cfg: &DrsaeConfig,
    data: Split<'_>,
    ckpt: &Checkpointing,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<TrainOutcome> {
    cfg.check()?;
    if data.train_x.nrows() == 0
        || data.train_x.nrows() != data.train_y.len()
        || data.val_x.nrows() != data.val_y.len()
        || data.val_x.nrows() == 0
    {
        return Err(Error::param(
            "data",
            format!(
                "need non-empty training and validation sets with one label per row (train {} rows / {} labels, val {} rows / {} labels)",
                data.train_x.nrows(),
                data.train_y.len(),
                data.val_x.nrows(),
                data.val_y.len()
            ),
        ));
    }
    crate::check_finite("training inputs", data.train_x.as_slice())?;
    crate::check_finite("validation inputs", data.val_x.as_slice())?;
    let classes = data
        .train_y
        .iter()
        .chain(data.val_y)
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(1)
        .max(2);
    let mut fingerprint: String = cfg
        .fields()
        .iter()
        .map(|(k, v)| format!("{k}={v};"))
        .collect();
    fingerprint.push_str(&format!(
        "train={}x{};val={}",
        data.train_x.nrows(),
        data.train_x.ncols(),
        data.val_x.nrows()
    ));
    let resumed = match (&ckpt.dir, ckpt.resume) {
        (Some(dir), true) => load_state(dir)?,
        _ => None,
    };
    if let Some(st) = &resumed {
        if st.fingerprint != fingerprint {
            return Err(Error::param(
                "resume",
                "the checkpoint was made with a different configuration or data set",
            ));
        }
        st.check_resumable(&ResumeExpectations {
            hidden: cfg.hidden,
            inputs: data.train_x.ncols(),
            classes,
            steps: cfg.steps,
            epochs: [cfg.epochs_unsup, cfg.epochs_sup],
            steps_per_epoch: data.train_x.nrows().div_ceil(cfg.batch),
            optimizer: cfg.for_phase(st.phase).optimizer,
            rows: data.train_x.nrows(),
            batch: cfg.batch,
            time_budget: cfg.time_budget.is_some(),
            average: cfg.average.is_some(),
            patience: cfg.patience,
        })?;
    }
    let mut st = match resumed {
        Some(st) => st,
        None => {
            let mut init_rng = crate::rng::seeded(cfg.seed);
            let mut model =
                DrsaeNetwork::init(data.train_x, cfg.hidden, classes, cfg.steps, &mut init_rng);
            model.project(cfg.e_bound());
            new_state(model, fingerprint)
        }
    };
    let mut xb = Mat::zeros(0, data.train_x.ncols());
    let mut yb: Vec<u8> = Vec::with_capacity(cfg.batch);
    // The time already spent (checked to lie in [0, 1e9] s when the checkpoint was read).
    let start = std::time::Duration::try_from_secs_f64(st.elapsed)
        .ok()
        .and_then(|spent| Instant::now().checked_sub(spent))
        .ok_or_else(|| {
            Error::param(
                "resume",
                format!(
                    "the checkpoint's {} s spent cannot be carried over",
                    crate::Compact(st.elapsed)
                ),
            )
        })?;
    let budget = cfg.time_budget;
    let steps_per_epoch = data.train_x.nrows().div_ceil(cfg.batch);
    let save = |st: &mut TrainState, start: &Instant| -> Result<()> {
        if let Some(dir) = &ckpt.dir {
            st.elapsed = start.elapsed().as_secs_f64();
            save_state(st, dir)?;
        }
        Ok(())
    };

    for phase in [1u8, 2] {
        let epochs = if phase == 1 {
            cfg.epochs_unsup
        } else {
            cfg.epochs_sup
        };
        let stopped_early =
            phase == 2 && phase == st.phase && cfg.patience.is_some_and(|p| st.since_best >= p);
        if phase < st.phase || epochs == 0 || phase == st.phase && st.epoch > epochs {
            // Done before (or resumed after its end); the next phase starts fresh.
            continue;
        }
        if stopped_early {
            // Resumed from the checkpoint written as early stopping ended the phase.
            continue;
        }
        if phase > st.phase {
            st.phase = phase;
            st.epoch = 1;
            st.batch_index = 0;
            st.opt_first.clear();
            st.opt_second.clear();
            st.opt_step = 0;
            st.since_best = 0;
            st.average = None;
        }
        // Phase boundaries in time: phase 1 gets at most 20% of the budget. A phase resumed
        // part-way started where the previous phase's last epoch ended.
        let resumed_mid_phase = st.epoch > 1 || st.batch_index > 0;
        let phase_start = if resumed_mid_phase {
            phase_start_of(&st.history, phase)
        } else {
            start.elapsed().as_secs_f64()
        };
        let phase_budget = budget.map(|b| if phase == 1 { 0.2 * b } else { b - phase_start });
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
        while st.epoch <= epochs {
            let epoch = st.epoch;
            // The shuffle of (phase, epoch) depends only on the seed: resumable, reproducible.
            let mut rng = crate::data::epoch_rng(cfg.seed, phase as u64, epoch as u64);
            let order = Minibatches::shuffled(data.train_x.nrows(), cfg.batch, &mut rng);
            let t_epoch = Instant::now();
            let mut out_of_time = false;
            // Batches this call ran in this epoch, and whether any code unit was active.
            let (mut batches_run, mut any_active) = (0usize, false);
            for (k, idx) in order.iter().enumerate().skip(st.batch_index) {
                let elapsed = start.elapsed().as_secs_f64() - phase_start;
                if let Some(pb) = phase_budget {
                    if elapsed >= pb {
                        out_of_time = true;
                        break;
                    }
                }
                let progress =
                    ((epoch - 1) as f64 + k as f64 / steps_per_epoch as f64) / epochs as f64;
                let progress = phase_budget.map_or(progress, |pb| progress.max(elapsed / pb));
                gather_rows(data.train_x, idx, &mut xb);
                yb.clear();
                yb.extend(idx.iter().map(|&i| data.train_y[i]));
                let lr = phase_cfg
                    .schedule
                    .at(phase_cfg.lr, stepper.updates(), progress);
                let bl = stepper
                    .run(&mut st.model, &phase_cfg, &xb, &yb, &weights, lr)
                    .map_err(|e| match e {
                        Error::Diverged { what, .. } => Error::Diverged {
                            step: st.global_step,
                            what,
                        },
                        e => e,
                    })?;
                if let (Some(beta), 2) = (cfg.average, phase) {
                    match &mut st.average {
                        Some(avg) => blend(avg, &st.model, beta),
                        None => st.average = Some(st.model.clone()),
                    }
                }
                batches_run += 1;
                any_active |= bl.l1 > 0.0;
                st.global_step += 1;
                st.batch_index = k + 1;
                st.sums.0 += bl.mean(&weights) * idx.len() as f64;
                st.sums.1 += bl.reconstruction;
                st.sums.2 += bl.correct;
                st.sums.3 += idx.len();
                let due = ckpt.every_steps > 0 && st.global_step % ckpt.every_steps == 0;
                let stop = ckpt.stop_after_steps.is_some_and(|s| st.global_step >= s);
                if due || stop {
                    st.train_seconds += t_epoch.elapsed().as_secs_f64();
                    capture_optimizer(&mut st, &stepper);
                    save(&mut st, &start)?;
                    st.train_seconds -= t_epoch.elapsed().as_secs_f64();
                }
                if stop {
                    return Err(Error::Interrupted {
                        step: st.global_step,
                    });
                }
            }
            let secs = t_epoch.elapsed().as_secs_f64();
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
                break;
            }
            // A whole epoch without one active unit: the ReLU network gets no gradient and the
            // optimiser's memory has decayed, so it stays silent for good.
            if batches_run == steps_per_epoch && !any_active {
                return Err(Error::Collapsed {
                    step: st.global_step,
                    phase,
                    epoch,
                });
            }
            // The model validation judges: the average if there is one, else the iterate.
            // Averaging rows of norm 5 shrinks them, so the average is projected onto the
            // constraints before it is judged (and returned); the running average itself
            // stays unprojected.
            let projected_average = st.average.as_ref().map(|avg| {
                let mut avg = avg.clone();
                avg.project(cfg.e_bound());
                avg
            });
            let judged = projected_average.as_ref().unwrap_or(&st.model);
            let (_, val_error) = judged.evaluate(data.val_x, data.val_y, 500);
            let elapsed = start.elapsed().as_secs_f64();
            let by_epochs = epoch as f64 / epochs as f64;
            let report = EpochReport {
                phase,
                epoch,
                loss: loss_sum / seen as f64,
                reconstruction: rec_sum / seen as f64,
                train_error: if phase == 2 {
                    100.0 * (1.0 - correct as f64 / seen as f64)
                } else {
                    f64::NAN
                },
                val_error,
                samples_per_s: seen as f64 / secs.max(1e-9),
                seconds: elapsed,
                progress: phase_budget
                    .map_or(by_epochs, |pb| by_epochs.max((elapsed - phase_start) / pb))
                    .min(1.0),
            };
            on_epoch(&report);
            st.history.push(report);
            st.epoch += 1;
            st.batch_index = 0;
            let mut stop_phase = out_of_time;
            if phase == 2 {
                if st.best.as_ref().map_or(true, |(_, e, _)| val_error < *e) {
                    st.best = Some((judged.clone(), val_error, epoch));
                    st.since_best = 0;
                } else {
                    st.since_best += 1;
                    stop_phase |= cfg.patience.is_some_and(|p| st.since_best >= p);
                }
            }
            capture_optimizer(&mut st, &stepper);
            save(&mut st, &start)?;
            if stop_phase {
                break;
            }
        }
        // The next phase starts fresh.
        st.epoch = epochs + 1;
    }
    let TrainState {
        model,
        best,
        samples_seen,
        train_seconds,
        history,
        ..
    } = st;
    let (model, best_val_error, best_epoch) = match best {
        Some(b) => b,
        None => {
            let (_, e) = model.evaluate(data.val_x, data.val_y, 500);
            (model, e, 0)
        }
    };
    Ok(TrainOutcome {
        model,
        best_epoch,
        best_val_error,
        history,
        samples_per_s: samples_seen as f64 / train_seconds.max(1e-9),
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

fn capture_optimizer(st: &mut TrainState, stepper: &DrsaeStep) {
    let (first, second) = stepper.opt.moments();
    st.opt_first = first.to_vec();
    st.opt_second = second.to_vec();
    st.opt_step = stepper.opt.step;
}

fn new_state(model: DrsaeNetwork, fingerprint: String) -> TrainState {
    TrainState {
        phase: 1,
        epoch: 1,
        batch_index: 0,
        global_step: 0,
        model,
        opt_first: Vec::new(),
        opt_second: Vec::new(),
        opt_step: 0,
        best: None,
        since_best: 0,
        average: None,
        sums: (0.0, 0.0, 0, 0),
        history: Vec::new(),
        samples_seen: 0,
        train_seconds: 0.0,
        elapsed: 0.0,
        fingerprint,
    }
}

fn save_state(st: &TrainState, dir: &std::path::Path) -> Result<()> {
    st.save(dir)
}

fn load_state(dir: &std::path::Path) -> Result<Option<TrainState>> {
    TrainState::load(dir)
}

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

#[cfg(all(test, feature = "safetensors"))]
mod tests {
    use super::*;

    fn model(hidden: usize, seed: u64) -> DrsaeNetwork {
        let mut rng = crate::rng::seeded(seed);
        let data = Mat::random(5, 6, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
        DrsaeNetwork::init(&data, hidden, 3, 2, &mut rng)
    }

    #[test]
    fn checkpoint_round_trips_the_average_and_refuses_mismatched_shapes() {
        let dir = std::env::temp_dir().join(format!("drsae-avg-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut st = new_state(model(4, 1), "fp".into());
        st.phase = 2;
        st.average = Some(model(4, 2));
        save_state(&st, &dir).unwrap();
        let back = load_state(&dir).unwrap().unwrap();
        assert!(back == st, "state with an average did not round-trip");
        st.average = Some(model(5, 3));
        save_state(&st, &dir).unwrap();
        match load_state(&dir) {
            Err(Error::Format { .. }) => {}
            other => panic!(
                "mismatched average accepted: {:?}",
                other.map(|s| s.is_some())
            ),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

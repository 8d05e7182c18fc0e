//! Training a DrSAE: phase 1 on the unsupervised loss, phase 2 on the full loss with early
//! stopping on a validation set (the best-validation model is returned).

use super::checkpoint::{Checkpointing, EpochReport, ResumeExpectations, TrainState};
use super::optimizer::{Optimizer, OptimizerState, Schedule};
use crate::data::{gather_rows, Minibatches};
use crate::linalg::Mat;
use crate::models::{DrsaeGrads, DrsaeNetwork, DrsaeWorkspace, LossWeights};
use crate::{Error, Result};
use rand::SeedableRng;
use std::time::Instant;

/// Hyper-parameters of DrSAE training. Build with [`DrsaeConfig::default`] and the setters,
/// then [`DrsaeConfig::check`] (called by [`train_drsae`]).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `hidden` | 400 | code units n | ≥ 1 |
/// | `steps` | 11 | encoder steps T | ≥ 1 |
/// | `batch` | 100 | minibatch size | ≥ 1 |
/// | `epochs_unsup` | 10 | phase-1 epochs (maximum under a time budget) | ≥ 0 |
/// | `epochs_sup` | 100 | phase-2 epochs (maximum under a time budget) | ≥ 1 |
/// | `optimizer` | Adam | update rule | |
/// | `lr` | 1e-3 | base learning rate η | > 0, finite |
/// | `unsup_optimizer` | none | phase 1's update rule and rate, if not `optimizer` and `lr` | as above |
/// | `schedule` | cosine to 0 | η over each phase | |
/// | `weights` | 5, 0.09, 1 | reconstruction, L1, classification weights | ≥ 0, finite |
/// | `e_max` | 1.25/T | bound on the norm of E's rows | > 0 |
/// | `classifier_lr` | 0.2 | multiplier of η for C (the paper) | > 0 |
/// | `unrolled_lr_scaling` | true | E, b rates ÷ T, S rate ÷ (T − 1) (the paper) | |
/// | `patience` | none | stop phase 2 after this many epochs without a better validation error | ≥ 1 |
/// | `time_budget` | none | wall-clock seconds for both phases (phase 1 gets ≤ 20%) | > 0 |
/// | `seed` | 0 | initialisation and shuffling | |
/// | `average` | none | decay β of the phase-2 parameter average that is validated and returned | (0, 1) |
///
/// Each matrix's rate is divided by the number of times it appears in the unrolled network
/// (E and b: T, S: T − 1), as in the paper.
#[derive(Clone, Debug, PartialEq)]
pub struct DrsaeConfig {
    /// Code units n.
    pub hidden: usize,
    /// Encoder steps T.
    pub steps: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Phase-1 epochs.
    pub epochs_unsup: usize,
    /// Phase-2 epochs.
    pub epochs_sup: usize,
    /// Update rule. Full MNIST: Adam for T = 11 (heavy-ball momentum there kills units in
    /// phase 1 at rates ≥ 5e-3 and trains slowly below); heavy-ball momentum (μ = 0.9,
    /// η = 2e-2, minibatch 50, β = 0.999) for T = 2, where it gave 1.37–1.64 % over six
    /// seeds (mean 1.52 %; the paper: 1.49 %) against Adam's 1.89–2.07 %. Adam in phase 1
    /// and momentum (η = 1e-2) in phase 2 keeps the paper's part-units at T = 11 (400 units:
    /// ~125 part-units, ~130 categorical) at 1.27–1.35 % test error. See BENCHMARKS.md.
    pub optimizer: Optimizer,
    /// Base learning rate.
    pub lr: f32,
    /// Phase 1's update rule and base rate when they differ from `optimizer` and `lr`
    /// (`None`: both phases use `optimizer` at `lr`).
    pub unsup_optimizer: Option<(Optimizer, f32)>,
    /// Learning-rate schedule (restarted at each phase).
    pub schedule: Schedule,
    /// Loss weights (phase 1 uses them with classification 0).
    pub weights: LossWeights,
    /// Bound on ‖E_i‖ (default 1.25/T).
    pub e_max: Option<f32>,
    /// Learning-rate multiplier of the classifier.
    pub classifier_lr: f32,
    /// Divide E's and b's rate by T and S's by T − 1 (the paper's rule).
    pub unrolled_lr_scaling: bool,
    /// Early-stopping patience in epochs.
    pub patience: Option<usize>,
    /// Wall-clock budget in seconds.
    pub time_budget: Option<f64>,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Exponential moving average of the parameters in phase 2 with this decay per step
    /// (e.g. 0.999): validation, early stopping and the returned model use the average
    /// `θ̄ ← β·θ̄ + (1 − β)·θ` instead of the last iterate. `None`: the iterate itself.
    /// Full MNIST, 400 units: Adam at 2e-3, minibatch 50 and β = 0.9999 (an average over
    /// ~10 epochs) gave 1.05–1.19 % test error over eight seeds, mean 1.10 % (the paper: 1.08 %).
    pub average: Option<f32>,
}

impl Default for DrsaeConfig {
    fn default() -> Self {
        DrsaeConfig {
            hidden: 400,
            steps: 11,
            batch: 100,
            epochs_unsup: 10,
            epochs_sup: 100,
            optimizer: Optimizer::adam(),
            lr: 1e-3,
            unsup_optimizer: None,
            schedule: Schedule::Cosine { floor: 0.0 },
            weights: LossWeights::paper(),
            e_max: None,
            classifier_lr: 0.2,
            unrolled_lr_scaling: true,
            patience: None,
            time_budget: None,
            seed: 0,
            average: None,
        }
    }
}

impl DrsaeConfig {
    /// The paper's recipe: plain SGD, minibatch 10, η = 5e-3 decayed as η/(1 + 5e-6 k).
    pub fn paper() -> Self {
        DrsaeConfig {
            batch: 10,
            optimizer: Optimizer::Sgd,
            lr: 5e-3,
            schedule: Schedule::Inverse { rate: 5e-6 },
            epochs_unsup: 100,
            epochs_sup: 1000,
            ..Default::default()
        }
    }

    /// Checks every field; the error names the first invalid one.
    pub fn check(&self) -> Result<()> {
        let pos = |name: &'static str, v: usize| {
            if v == 0 {
                Err(Error::param(name, "must be ≥ 1"))
            } else {
                Ok(())
            }
        };
        pos("hidden", self.hidden)?;
        pos("steps", self.steps)?;
        pos("batch", self.batch)?;
        pos("epochs_sup", self.epochs_sup)?;
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::param(
                "lr",
                format!("{} must be finite and > 0", self.lr),
            ));
        }
        if let Some((opt, lr)) = self.unsup_optimizer {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(Error::param(
                    "unsup_optimizer",
                    format!("rate {lr} must be finite and > 0"),
                ));
            }
            opt.check()?;
        }
        let w = &self.weights;
        for (name, v) in [
            ("reconstruction weight", w.reconstruction),
            ("sparsity weight", w.sparsity),
            ("classification weight", w.classification),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::InvalidParameter {
                    name: "weights",
                    reason: format!("{name} {v} must be finite and ≥ 0"),
                });
            }
        }
        if let Some(e) = self.e_max {
            if !(e > 0.0 && e.is_finite()) {
                return Err(Error::param("e_max", format!("{e} must be finite and > 0")));
            }
        }
        if !(self.classifier_lr > 0.0 && self.classifier_lr.is_finite()) {
            return Err(Error::param(
                "classifier_lr",
                format!("{} must be finite and > 0", self.classifier_lr),
            ));
        }
        if let Some(b) = self.average {
            if !(b > 0.0 && b < 1.0) {
                return Err(Error::param(
                    "average",
                    format!("decay {b} must be in (0, 1)"),
                ));
            }
        }
        if self.patience == Some(0) {
            return Err(Error::param("patience", "must be ≥ 1"));
        }
        if let Some(t) = self.time_budget {
            if !(t > 0.0 && t.is_finite()) {
                return Err(Error::param(
                    "time_budget",
                    format!("{t} must be finite and > 0"),
                ));
            }
        }
        if let Schedule::Inverse { rate } = self.schedule {
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(Error::param(
                    "schedule",
                    format!("decay rate {rate} must be finite and ≥ 0"),
                ));
            }
        }
        self.optimizer.check()
    }

    /// Every field as `(name, value)`, in a fixed order with explicit names: the record of
    /// a run's settings in model files, logs and results, and the fingerprint that ties a
    /// checkpoint to its configuration.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let opt = |o: Optimizer| o.field();
        let opt_or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        vec![
            ("hidden", self.hidden.to_string()),
            ("steps", self.steps.to_string()),
            ("batch", self.batch.to_string()),
            ("epochs_unsup", self.epochs_unsup.to_string()),
            ("epochs_sup", self.epochs_sup.to_string()),
            ("optimizer", opt(self.optimizer)),
            ("lr", self.lr.to_string()),
            (
                "unsup_optimizer",
                opt_or_none(
                    self.unsup_optimizer
                        .map(|(o, lr)| format!("{} lr {lr}", opt(o))),
                ),
            ),
            ("schedule", self.schedule.field()),
            (
                "reconstruction_weight",
                self.weights.reconstruction.to_string(),
            ),
            ("sparsity_weight", self.weights.sparsity.to_string()),
            (
                "classification_weight",
                self.weights.classification.to_string(),
            ),
            ("e_max", self.e_bound().to_string()),
            ("classifier_lr", self.classifier_lr.to_string()),
            ("unrolled_lr_scaling", self.unrolled_lr_scaling.to_string()),
            (
                "patience",
                opt_or_none(self.patience.map(|p| p.to_string())),
            ),
            (
                "time_budget",
                opt_or_none(self.time_budget.map(|t| t.to_string())),
            ),
            ("seed", self.seed.to_string()),
            ("average", opt_or_none(self.average.map(|b| b.to_string()))),
        ]
    }

    /// The fraction of the whole run (both phases) done when `report` was made: by time
    /// under a budget, else by epochs.
    pub fn overall_progress(&self, report: &EpochReport) -> f64 {
        let total = (self.epochs_unsup + self.epochs_sup).max(1) as f64;
        match self.time_budget {
            Some(budget) => report.seconds / budget,
            None if report.phase == 1 => report.progress * self.epochs_unsup as f64 / total,
            None => (self.epochs_unsup as f64 + report.progress * self.epochs_sup as f64) / total,
        }
    }

    /// The configuration phase `phase` (1 or 2) trains with: phase 1 takes
    /// `unsup_optimizer`'s rule and rate when set.
    fn for_phase(&self, phase: u8) -> DrsaeConfig {
        let mut cfg = self.clone();
        if let (1, Some((opt, lr))) = (phase, self.unsup_optimizer) {
            cfg.optimizer = opt;
            cfg.lr = lr;
        }
        cfg
    }

    fn e_bound(&self) -> f32 {
        self.e_max.unwrap_or(1.25 / self.steps as f32)
    }
}

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

/// Flat views of a model's tensors with their learning-rate multipliers, in the fixed order
/// E, S, b, D, C.
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
        })?;
    }
    let mut st = match resumed {
        Some(st) => st,
        None => {
            let mut init_rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
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
                    st.elapsed
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
        if phase < st.phase || epochs == 0 || phase == st.phase && st.epoch > epochs {
            // Done before (or resumed after its end); the next phase starts fresh.
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
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
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

//! DrSAE training's hyper-parameters: [`DrsaeConfig`], its checks, its explicit field list
//! (the checkpoint fingerprint and the model file's `config.*` metadata) and the progress
//! arithmetic shared by the trainer, the estimator and the command line.

use super::checkpoint::EpochReport;
use super::optimizer::{Optimizer, Schedule};
use crate::models::LossWeights;
use crate::{Compact, Error, Result};

/// The largest accepted learning rate (`lr`, the rate of `unsup_optimizer`).
pub const MAX_LR: f32 = 10.0;
/// The largest accepted loss weight (reconstruction, sparsity λ, classification).
pub const MAX_WEIGHT: f32 = 1e4;
/// The largest accepted `e_max` and `classifier_lr`.
pub const MAX_E_MAX: f32 = 1e3;
/// The largest accepted `time_budget` in seconds (about 116 days).
pub const MAX_TIME_BUDGET: f64 = 1e7;
/// The largest accepted number of code units `hidden` (the S matrix alone is `hidden²`
/// floats).
pub const MAX_HIDDEN: usize = 1 << 15;
/// The largest accepted number of encoder steps `steps` (as the model-file loader: a
/// longer run would train a model no file can hold).
pub const MAX_STEPS: usize = 10_000;
/// The largest accepted minibatch `batch`.
pub const MAX_BATCH: usize = 1 << 20;

/// Hyper-parameters of DrSAE training. Build with [`DrsaeConfig::default`] and the setters,
/// then [`DrsaeConfig::check`] (called by [`train_drsae`](super::train_drsae)).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `hidden` | 400 | code units n | 1..=2¹⁵ |
/// | `steps` | 11 | encoder steps T | 1..=10000 |
/// | `batch` | 100 | minibatch size | 1..=2²⁰ |
/// | `epochs_unsup` | 10 | phase-1 epochs (maximum under a time budget) | ≥ 0 |
/// | `epochs_sup` | 100 | phase-2 epochs (maximum under a time budget) | ≥ 1 |
/// | `optimizer` | Adam | update rule | |
/// | `lr` | 1e-3 | base learning rate η | (0, 10] |
/// | `unsup_optimizer` | none | phase 1's update rule and rate, if not `optimizer` and `lr` | rate in (0, 10] |
/// | `schedule` | cosine to 0 | η over each phase | |
/// | `weights` | 5, 0.09, 1 | reconstruction, L1, classification weights | [0, 10⁴] |
/// | `e_max` | 1.25/T | bound on the norm of E's rows | (0, 1000] |
/// | `classifier_lr` | 0.2 | multiplier of η for C (the paper) | (0, 1000] |
/// | `unrolled_lr_scaling` | true | E, b rates ÷ T, S rate ÷ (T − 1) (the paper) | |
/// | `patience` | none | stop phase 2 after this many epochs without a better validation error | ≥ 1 |
/// | `time_budget` | none | wall-clock seconds for both phases (phase 1 gets ≤ 20%) | (0, 10⁷] |
/// | `seed` | 0 | initialisation and shuffling | |
/// | `average` | none | decay β of the phase-2 parameter average that is validated and returned | (0, 1) |
///
/// Each matrix's rate is divided by the number of times it appears in the unrolled network
/// (E and b: T, S: T − 1), as in the paper.
///
/// The upper bounds are far above any rate or weight that trains (the defaults are 1e-3
/// and 5, 0.09, 1; the paper's SGD rate is 5e-3): a value beyond them is a typo, and would
/// otherwise diverge or silence every unit only after the data is loaded and training has
/// started. A run that diverges all the same stops with [`Error::Diverged`].
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
    /// Update rule (BENCHMARKS.md's DrSAE section says which rule each documented recipe
    /// uses, and what each gave).
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
    /// `θ̄ ← β·θ̄ + (1 − β)·θ` instead of the last iterate; the average is projected onto
    /// the constraints before it is judged and returned. `None`: the iterate itself.
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
        for (name, value, max) in [
            ("hidden", self.hidden, MAX_HIDDEN),
            ("steps", self.steps, MAX_STEPS),
            ("batch", self.batch, MAX_BATCH),
        ] {
            if value == 0 || value > max {
                return Err(Error::param(name, format!("{value} not in 1..={max}")));
            }
        }
        if self.epochs_sup == 0 {
            return Err(Error::param("epochs_sup", "must be ≥ 1"));
        }
        if !(self.lr > 0.0 && self.lr <= MAX_LR) {
            return Err(Error::param(
                "lr",
                format!("{} must be finite, > 0 and ≤ {MAX_LR}", Compact(self.lr)),
            ));
        }
        if let Some((opt, lr)) = self.unsup_optimizer {
            if !(lr > 0.0 && lr <= MAX_LR) {
                return Err(Error::param(
                    "unsup_optimizer",
                    format!("rate {} must be finite, > 0 and ≤ {MAX_LR}", Compact(lr)),
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
            if !(0.0..=MAX_WEIGHT).contains(&v) {
                return Err(Error::InvalidParameter {
                    name: "weights",
                    reason: format!(
                        "{name} {} must be finite, ≥ 0 and ≤ {MAX_WEIGHT}",
                        Compact(v)
                    ),
                });
            }
        }
        if let Some(e) = self.e_max {
            if !(e > 0.0 && e <= MAX_E_MAX) {
                return Err(Error::param(
                    "e_max",
                    format!("{} must be finite, > 0 and ≤ {MAX_E_MAX}", Compact(e)),
                ));
            }
        }
        if !(self.classifier_lr > 0.0 && self.classifier_lr <= MAX_E_MAX) {
            return Err(Error::param(
                "classifier_lr",
                format!(
                    "{} must be finite, > 0 and ≤ {MAX_E_MAX}",
                    Compact(self.classifier_lr)
                ),
            ));
        }
        if let Some(b) = self.average {
            if !(b > 0.0 && b < 1.0) {
                return Err(Error::param(
                    "average",
                    format!("decay {} must be in (0, 1)", Compact(b)),
                ));
            }
        }
        if self.patience == Some(0) {
            return Err(Error::param("patience", "must be ≥ 1"));
        }
        if let Some(t) = self.time_budget {
            if !(t > 0.0 && t <= MAX_TIME_BUDGET) {
                return Err(Error::param(
                    "time_budget",
                    format!(
                        "{} s must be finite, > 0 and ≤ {}",
                        Compact(t),
                        Compact(MAX_TIME_BUDGET)
                    ),
                ));
            }
        }
        if let Schedule::Inverse { rate } = self.schedule {
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(Error::param(
                    "schedule",
                    format!("decay rate {} must be finite and ≥ 0", Compact(rate)),
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
    pub(super) fn for_phase(&self, phase: u8) -> DrsaeConfig {
        let mut cfg = self.clone();
        if let (1, Some((opt, lr))) = (phase, self.unsup_optimizer) {
            cfg.optimizer = opt;
            cfg.lr = lr;
        }
        cfg
    }

    pub(super) fn e_bound(&self) -> f32 {
        self.e_max.unwrap_or(1.25 / self.steps as f32)
    }
}

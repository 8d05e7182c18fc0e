//! DrSAE parameters: [`DrsaeParams`] (unchecked, consuming setters) → [`DrsaeValidParams`]
//! (checked) → `fit`.

use super::{Drsae, FitReport};
use crate::data::{LabelledImages, Preprocessor};
use crate::estimators::common::{setters, EPOCHS_UNDER_BUDGET};
use crate::estimators::ParamGuard;
use crate::linalg::MatRef;
use crate::models::LossWeights;
use crate::train::{
    train_drsae_with, Checkpointing, DrsaeConfig, EpochReport, Optimizer, Schedule, Split,
    MAX_BATCH, MAX_HIDDEN, MAX_STEPS,
};
use crate::{Error, Result};
use std::path::PathBuf;

/// How [`DrsaeParams::fit`] holds out the validation set that chooses the returned epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Validation {
    /// The last 10,000 examples when there are at least 60,000 (MNIST's standard split),
    /// else the last sixth.
    Auto,
    /// The last `n` examples.
    Last(usize),
    /// The last fraction (in (0, 1)) of the examples, rounded down (at least one).
    Fraction(f64),
}

impl Validation {
    /// The number of held-out examples out of `n`.
    fn size(self, n: usize) -> Result<usize> {
        let k = match self {
            Validation::Auto if n >= 60_000 => 10_000,
            Validation::Auto => n / 6,
            Validation::Last(k) => k,
            // In (0, 1): checked with the other parameters.
            Validation::Fraction(f) => ((n as f64 * f) as usize).max(1),
        };
        if k == 0 || k >= n {
            return Err(Error::param(
                "validation",
                format!("{k} held-out examples out of {n}: need at least one for validation and one for training"),
            ));
        }
        Ok(k)
    }
}

/// Validated DrSAE parameters (see [`DrsaeParams`] for the table); `fit` trains.
#[derive(Clone, Debug, PartialEq)]
pub struct DrsaeValidParams {
    config: DrsaeConfig,
    epochs_unsup: Option<usize>,
    epochs_sup: Option<usize>,
    validation: Validation,
    preprocessing: Preprocessor,
    checkpointing: Checkpointing,
    progress: bool,
}

/// DrSAE hyper-parameters, unchecked: consuming setters, then `fit` (which calls
/// [`ParamGuard::check`] first).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `hidden` | 400 | code units n | 1..=32768 |
/// | `steps` | 11 | encoder steps T | 1..=10000 |
/// | `batch` | 100 | minibatch size | 1..=2²⁰ |
/// | `epochs_unsup` | 10 | phase-1 (reconstruction + sparsity) epochs | ≥ 0 |
/// | `epochs_sup` | 100; without limit under a `time_budget` | phase-2 (full loss) epochs | ≥ 1 |
/// | `time_budget` | none | wall-clock seconds for both phases; phase 1 takes at most 20 % | (0, 10⁷] |
/// | `optimizer` | Adam (0.9, 0.999, 1e-8) | update rule | |
/// | `lr` | 1e-3 | base learning rate η | (0, 10] |
/// | `unsup_optimizer` | none | phase 1's own rule and rate | rate in (0, 10] |
/// | `schedule` | cosine to 0 | η over each phase (by epochs, or by time under a budget) | |
/// | `weights` | 5, 0.09, 1 | reconstruction, L1 (λ), classification weights | [0, 10⁴] |
/// | `e_max` | 1.25/T | bound on ‖E_i‖ | (0, 1000] |
/// | `classifier_lr` | 0.2 | multiplier of η for C | (0, 1000] |
/// | `unrolled_lr_scaling` | true | E, b rates ÷ T and S rate ÷ (T − 1) | |
/// | `average` | none | decay β of the parameter average that is validated and returned | (0, 1) |
/// | `patience` | none | stop phase 2 after this many epochs without a better validation error | ≥ 1 |
/// | `validation` | [`Validation::Auto`] | the held-out examples that choose the returned epoch | |
/// | `preprocessing` | [`Preprocessor::UnitL2`] | per-row transform, stored in the model | |
/// | `seed` | 0 | initialisation and shuffling | |
/// | `checkpoint_dir` | none | write `checkpoint.safetensors` there at every epoch end | |
/// | `checkpoint_every` | 0 | also every this many steps (needs `checkpoint_dir`) | |
/// | `resume` | false | continue from the checkpoint in `checkpoint_dir` | |
/// | `progress` | false | one line per epoch on stderr | |
///
/// The returned model is the one of the phase-2 epoch with the lowest validation error (the
/// parameter average if `average` is set, projected onto the constraints).
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// let params = Drsae::params().hidden(0);
/// match params.check() {
///     Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "hidden"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DrsaeParams(DrsaeValidParams);

impl Default for DrsaeParams {
    fn default() -> Self {
        DrsaeParams(DrsaeValidParams {
            config: DrsaeConfig::default(),
            epochs_unsup: None,
            epochs_sup: None,
            validation: Validation::Auto,
            preprocessing: Preprocessor::UnitL2,
            checkpointing: Checkpointing::default(),
            progress: false,
        })
    }
}

impl DrsaeParams {
    setters! {
        /// Code units n.
        hidden: usize => |p, v| p.config.hidden = v;
        /// Encoder steps T.
        steps: usize => |p, v| p.config.steps = v;
        /// Minibatch size.
        batch: usize => |p, v| p.config.batch = v;
        /// Phase-1 epochs (0: no unsupervised phase).
        epochs_unsup: usize => |p, v| p.epochs_unsup = Some(v);
        /// Phase-2 epochs (a maximum under a time budget).
        epochs_sup: usize => |p, v| p.epochs_sup = Some(v);
        /// Wall-clock budget in seconds for both phases. Without explicit epoch counts the
        /// run fills it: phase 2 runs until the budget ends, its schedule following the time.
        time_budget: f64 => |p, v| p.config.time_budget = Some(v);
        /// Update rule of both phases (phase 1's unless `unsup_optimizer` is set).
        optimizer: Optimizer => |p, v| p.config.optimizer = v;
        /// Base learning rate.
        lr: f32 => |p, v| p.config.lr = v;
        /// Phase 1's own update rule and base rate.
        unsup_optimizer: (Optimizer, f32) => |p, v| p.config.unsup_optimizer = Some(v);
        /// Learning-rate schedule, restarted at each phase.
        schedule: Schedule => |p, v| p.config.schedule = v;
        /// Loss weights (phase 1 uses them with classification 0).
        weights: LossWeights => |p, v| p.config.weights = v;
        /// The L1 weight λ alone.
        sparsity: f32 => |p, v| p.config.weights.sparsity = v;
        /// Bound on the norm of E's rows.
        e_max: f32 => |p, v| p.config.e_max = Some(v);
        /// Learning-rate multiplier of the classifier.
        classifier_lr: f32 => |p, v| p.config.classifier_lr = v;
        /// Divide E's and b's rates by T and S's by T − 1.
        unrolled_lr_scaling: bool => |p, v| p.config.unrolled_lr_scaling = v;
        /// Validate and return the exponential moving average of the phase-2 parameters
        /// with this decay per step.
        average: f32 => |p, v| p.config.average = Some(v);
        /// Early-stopping patience in epochs.
        patience: usize => |p, v| p.config.patience = Some(v);
        /// The held-out validation examples.
        validation: Validation => |p, v| p.validation = v;
        /// Per-row transform of every input, stored in the model.
        preprocessing: Preprocessor => |p, v| p.preprocessing = v;
        /// Seed of initialisation and shuffling.
        seed: u64 => |p, v| p.config.seed = v;
        /// Directory of `checkpoint.safetensors`, written atomically at every epoch end.
        checkpoint_dir: impl Into<PathBuf> => |p, v| p.checkpointing.dir = Some(v.into());
        /// Also checkpoint every this many optimisation steps.
        checkpoint_every: u64 => |p, v| p.checkpointing.every_steps = v;
        /// Continue from the checkpoint in `checkpoint_dir`, if there is one.
        resume: bool => |p, v| p.checkpointing.resume = v;
        /// Checkpoint and stop with [`Error::Interrupted`] after this many steps (for tests
        /// of resumption).
        stop_after_steps: u64 => |p, v| p.checkpointing.stop_after_steps = Some(v);
        /// Print one line per epoch on stderr.
        progress: bool => |p, v| p.progress = v;
    }

    /// Checks the parameters, then trains on `data` (see [`DrsaeValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`DrsaeValidParams::fit`].
    pub fn fit(&self, data: &LabelledImages) -> Result<Drsae> {
        self.check_ref()?.fit(data)
    }

    /// Checks the parameters, then trains with an observer of every epoch's report.
    ///
    /// # Errors
    /// As [`DrsaeParams::fit`].
    pub fn fit_with(
        &self,
        data: &LabelledImages,
        observer: impl FnMut(&EpochReport),
    ) -> Result<Drsae> {
        self.check_ref()?.fit_with(data, observer)
    }

    /// Checks the parameters, then trains on `train`, validating on `val`.
    ///
    /// # Errors
    /// As [`DrsaeParams::fit`].
    pub fn fit_split(&self, train: &LabelledImages, val: &LabelledImages) -> Result<Drsae> {
        self.check_ref()?.fit_split(train, val, |_| {})
    }
}

impl ParamGuard for DrsaeParams {
    type Checked = DrsaeValidParams;

    fn check_ref(&self) -> Result<&DrsaeValidParams> {
        let p = &self.0;
        let c = &p.config;
        for (name, value, max) in [
            ("hidden", c.hidden, MAX_HIDDEN),
            ("steps", c.steps, MAX_STEPS),
            ("batch", c.batch, MAX_BATCH),
        ] {
            if value == 0 || value > max {
                return Err(Error::param(name, format!("{value} not in 1..={max}")));
            }
        }
        if p.epochs_sup == Some(0) {
            return Err(Error::param("epochs_sup", "must be ≥ 1"));
        }
        if let Validation::Fraction(f) = p.validation {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::param(
                    "validation",
                    format!("fraction {} must be in (0, 1)", crate::Compact(f)),
                ));
            }
        }
        if let Validation::Last(0) = p.validation {
            return Err(Error::param(
                "validation",
                "must hold out at least one example",
            ));
        }
        p.preprocessing.check()?;
        let ck = &p.checkpointing;
        if (ck.every_steps > 0 || ck.resume || ck.stop_after_steps.is_some()) && ck.dir.is_none() {
            return Err(Error::param(
                "checkpoint_dir",
                "checkpoint_every, resume and stop_after_steps need a checkpoint directory",
            ));
        }
        p.config().check()?;
        Ok(p)
    }

    fn check(self) -> Result<DrsaeValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl DrsaeValidParams {
    /// The trainer configuration these parameters resolve to (epoch counts filled in).
    pub fn config(&self) -> DrsaeConfig {
        let mut cfg = self.config.clone();
        cfg.epochs_unsup = self.epochs_unsup.unwrap_or(10);
        cfg.epochs_sup = self.epochs_sup.unwrap_or(if cfg.time_budget.is_some() {
            EPOCHS_UNDER_BUDGET
        } else {
            100
        });
        cfg
    }

    /// The held-out validation examples.
    pub fn validation(&self) -> Validation {
        self.validation
    }

    /// The per-row transform the model is trained with.
    pub fn preprocessing(&self) -> Preprocessor {
        self.preprocessing
    }

    /// Trains on `data`: holds out the validation examples (see [`Validation`]), applies the
    /// preprocessing, trains both phases and returns the best-validation model.
    ///
    /// # Errors
    /// Too few examples for the validation split, labels that do not match the images,
    /// non-finite inputs, a diverged or collapsed training ([`Error::Diverged`],
    /// [`Error::Collapsed`]), and checkpoint errors.
    pub fn fit(&self, data: &LabelledImages) -> Result<Drsae> {
        self.fit_with(data, |_| {})
    }

    /// [`DrsaeValidParams::fit`] with an observer that sees every epoch's report as it ends.
    ///
    /// # Errors
    /// As [`DrsaeValidParams::fit`].
    pub fn fit_with(
        &self,
        data: &LabelledImages,
        observer: impl FnMut(&EpochReport),
    ) -> Result<Drsae> {
        check_labels(data, "training data")?;
        let n = data.len();
        let k = n - self.validation.size(n)?;
        let (train_y, val_y) = data.labels.split_at(k);
        self.fit_rows(
            data.images.row_range(0, k),
            train_y,
            data.images.row_range(k, n),
            val_y,
            observer,
        )
    }

    /// Trains on `train` and chooses the returned epoch on `val`.
    ///
    /// # Errors
    /// As [`DrsaeValidParams::fit`]; also a validation set whose rows differ in width.
    pub fn fit_split(
        &self,
        train: &LabelledImages,
        val: &LabelledImages,
        observer: impl FnMut(&EpochReport),
    ) -> Result<Drsae> {
        check_labels(train, "training data")?;
        check_labels(val, "validation data")?;
        if val.images.ncols() != train.images.ncols() {
            return Err(Error::param(
                "validation",
                format!(
                    "validation rows have {} values, training rows {}",
                    val.images.ncols(),
                    train.images.ncols()
                ),
            ));
        }
        self.fit_rows(
            train.images.view(),
            &train.labels,
            val.images.view(),
            &val.labels,
            observer,
        )
    }

    /// Trains on rows whose labels and widths have been checked: the one copy of the data
    /// is the preprocessed one.
    fn fit_rows(
        &self,
        train_x: MatRef<'_>,
        train_y: &[u8],
        val_x: MatRef<'_>,
        val_y: &[u8],
        mut observer: impl FnMut(&EpochReport),
    ) -> Result<Drsae> {
        let prepared = |rows: MatRef<'_>| {
            let mut x = rows.to_owned();
            self.preprocessing.apply(&mut x);
            x
        };
        let (train_x, val_x) = (prepared(train_x), prepared(val_x));
        let cfg = self.config();
        let split = Split {
            train_x: &train_x,
            train_y,
            val_x: &val_x,
            val_y,
        };
        let start = std::time::Instant::now();
        let progress = self.progress;
        let outcome = train_drsae_with(&cfg, split, &self.checkpointing, |r| {
            if progress {
                eprintln!("{r}, {:.0} s", r.seconds);
            }
            observer(r)
        })?;
        Ok(Drsae {
            network: outcome.model,
            preprocessing: self.preprocessing,
            weights: cfg.weights,
            config: cfg
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            report: Some(FitReport {
                best_epoch: outcome.best_epoch,
                best_val_error: outcome.best_val_error,
                history: outcome.history,
                samples_per_s: outcome.samples_per_s,
                seconds: start.elapsed().as_secs_f64(),
            }),
        })
    }
}

fn check_labels(set: &LabelledImages, what: &str) -> Result<()> {
    if set.images.nrows() != set.labels.len() {
        return Err(Error::param(
            "data",
            format!(
                "{what}: {} images but {} labels",
                set.images.nrows(),
                set.labels.len()
            ),
        ));
    }
    if set.is_empty() {
        return Err(Error::param("data", format!("{what} is empty")));
    }
    Ok(())
}

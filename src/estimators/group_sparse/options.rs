//! The training options every group-sparse estimator shares, and the loop that applies them
//! to any [`GroupSparseModel`].

use crate::data::{AsRows, Preprocessing, Preprocessor};
use crate::estimators::common::{
    check_count, check_non_negative_at_most, check_positive, check_positive_at_most, Epochs,
    MAX_LR, MAX_TIME_BUDGET, MAX_WEIGHT,
};
use crate::kernels::Groups;
use crate::linalg::Mat;
use crate::models::{EncoderForm, GroupSparseModel};
use crate::train::{train_group_ae_with, Checkpointing, GroupAeConfig, Optimizer};
use crate::Result;

/// Largest accepted minibatch.
const MAX_BATCH: usize = 1 << 20;

/// What training a group-sparse estimator measured.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupFitReport {
    /// Mean training loss `(½‖x − x̂‖²_w + λψ) / examples` of every epoch (the last may be
    /// partial under a time budget).
    pub losses: Vec<f64>,
    /// Training throughput (examples per second; of the last stage when a
    /// [`StartStage`](super::StartStage) ran first).
    pub examples_per_s: f64,
    /// Wall-clock seconds of the fit, preprocessing included.
    pub seconds: f64,
}

/// Options shared by the group-sparse estimators (their tables list the defaults).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GroupOptions {
    pub(crate) lambda: f32,
    pub(crate) batch: usize,
    pub(crate) epochs: Epochs,
    pub(crate) optimizer: Optimizer,
    pub(crate) lr: f32,
    pub(crate) time_budget: Option<f64>,
    pub(crate) seed: u64,
    pub(crate) form: EncoderForm,
    pub(crate) psd: Option<(f32, usize)>,
    pub(crate) preprocessing: Preprocessor,
    pub(crate) zca: Option<f32>,
    pub(crate) checkpointing: Checkpointing,
    pub(crate) progress: bool,
}

impl GroupOptions {
    /// The defaults of one family: λ, minibatch, epochs, learning rate, per-row step and
    /// ZCA regulariser; Adam, no budget, seed 0, ReLU, no PSD, no checkpoints.
    pub(crate) fn family(
        lambda: f32,
        batch: usize,
        epochs: usize,
        lr: f32,
        preprocessing: Preprocessor,
        zca: Option<f32>,
    ) -> GroupOptions {
        GroupOptions {
            lambda,
            batch,
            epochs: Epochs::default_of(epochs),
            optimizer: Optimizer::adam(),
            lr,
            time_budget: None,
            seed: 0,
            form: EncoderForm::Relu,
            psd: None,
            preprocessing,
            zca,
            checkpointing: Checkpointing::default(),
            progress: false,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        check_non_negative_at_most("lambda", self.lambda, MAX_WEIGHT)?;
        check_count("batch", self.batch, MAX_BATCH)?;
        self.epochs.check()?;
        check_positive_at_most("lr", self.lr, MAX_LR)?;
        self.optimizer.check()?;
        if let Some(t) = self.time_budget {
            check_positive_at_most("time_budget", t, MAX_TIME_BUDGET)?;
        }
        if let Some((alpha, steps)) = self.psd {
            check_positive_at_most("psd", alpha, MAX_WEIGHT)?;
            check_count("psd", steps, 10_000)?;
        }
        self.preprocessing.check()?;
        if let Some(eps) = self.zca {
            check_positive("zca", eps)?;
        }
        self.checkpointing.check()
    }

    /// The trainer configuration (λ, minibatch, epochs, optimiser, rate, budget, seed, PSD).
    pub(crate) fn config(&self) -> GroupAeConfig {
        GroupAeConfig {
            lambda: self.lambda,
            batch: self.batch,
            epochs: self.epochs.resolve(self.time_budget),
            optimizer: self.optimizer,
            lr: self.lr,
            time_budget: self.time_budget,
            seed: self.seed,
            psd: self.psd,
        }
    }

    /// The training rows, preprocessed, and the fitted preprocessing.
    pub(crate) fn prepare(&self, x: impl AsRows, m: usize) -> Result<(Mat, Preprocessing)> {
        let mut x = x.to_rows(m)?;
        if x.nrows() == 0 {
            return Err(crate::Error::param("data", "no training rows"));
        }
        let p = Preprocessing::fit(self.preprocessing, self.zca, &mut x);
        Ok((x, p))
    }

    /// Trains `model` on the preprocessed rows `x`.
    pub(crate) fn train<M: GroupSparseModel>(
        &self,
        model: &mut M,
        x: &Mat,
        groups: &Groups,
        start: std::time::Instant,
        on_epoch: &mut dyn FnMut(usize, f64, f64),
    ) -> Result<GroupFitReport> {
        self.train_after(model, x, groups, start, (0, 0.0), on_epoch)
    }

    /// The options of a first stage with group weight `lambda` taking `share` ∈ (0, 1) of
    /// the epochs and of the time budget, and of the stage after it (at least one epoch
    /// each).
    pub(crate) fn split(&self, lambda: f32, share: f64) -> (GroupOptions, GroupOptions) {
        let total = self.epochs.resolve(self.time_budget);
        let first_epochs =
            ((share * total as f64).round() as usize).clamp(1, total.saturating_sub(1).max(1));
        let with = |n: usize| {
            let mut e = self.epochs;
            e.set(n);
            e
        };
        let first = GroupOptions {
            lambda,
            epochs: with(first_epochs),
            time_budget: self.time_budget.map(|t| share * t),
            ..self.clone()
        };
        let rest = GroupOptions {
            epochs: with(total.saturating_sub(first_epochs).max(1)),
            time_budget: self.time_budget.map(|t| (1.0 - share) * t),
            ..self.clone()
        };
        (first, rest)
    }

    /// [`GroupOptions::train`] as a later stage: `after` = (epochs, seconds) of the stages
    /// before, added to the epochs and seconds reported.
    pub(crate) fn train_after<M: GroupSparseModel>(
        &self,
        model: &mut M,
        x: &Mat,
        groups: &Groups,
        start: std::time::Instant,
        after: (usize, f64),
        on_epoch: &mut dyn FnMut(usize, f64, f64),
    ) -> Result<GroupFitReport> {
        let mut losses = Vec::new();
        let (lambda, progress) = (self.lambda, self.progress);
        let report = train_group_ae_with(
            model,
            x,
            groups,
            &self.config(),
            &self.checkpointing,
            |epoch, loss, seconds| {
                let (epoch, seconds) = (epoch + after.0, seconds + after.1);
                losses.push(loss.mean(lambda));
                on_epoch(epoch, loss.mean(lambda), seconds);
                if progress {
                    eprintln!(
                        "epoch {epoch}: loss {:.5}, {:.2} active groups, {seconds:.0} s",
                        loss.mean(lambda),
                        loss.active_groups
                    );
                }
            },
        )?;
        Ok(GroupFitReport {
            losses,
            examples_per_s: report.examples_per_s,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// The setters of [`GroupOptions`] on a `Params(ValidParams { opts, .. })` newtype.
macro_rules! group_option_setters {
    () => {
        $crate::estimators::common::setters! {
            /// Weight λ of the group term.
            lambda: f32 => |p, v| p.opts.lambda = v;
            /// Minibatch size.
            batch: usize => |p, v| p.opts.batch = v;
            /// Passes over the data (a maximum under a time budget; without it, a budget
            /// alone sets the run's length).
            epochs: usize => |p, v| p.opts.epochs.set(v);
            /// Update rule.
            optimizer: $crate::train::Optimizer => |p, v| p.opts.optimizer = v;
            /// Base learning rate (cosine decay to 5 % over the run).
            lr: f32 => |p, v| p.opts.lr = v;
            /// Wall-clock budget in seconds; the schedule follows the time spent.
            time_budget: f64 => |p, v| p.opts.time_budget = Some(v);
            /// Seed of initialisation and shuffling.
            seed: u64 => |p, v| p.opts.seed = v;
            /// The encoder's non-linearity.
            form: $crate::models::EncoderForm => |p, v| p.opts.form = v;
            /// Train PSD-style with prediction weight α and this many inference steps
            /// (dense models only).
            psd: (f32, usize) => |p, v| p.opts.psd = Some(v);
            /// Per-row transform of every input, stored in the model.
            preprocessing: $crate::data::Preprocessor => |p, v| p.opts.preprocessing = v;
            /// ZCA whitening after the per-row step, with this regulariser (`None`: none),
            /// fitted on the training rows and stored in the model.
            zca: Option<f32> => |p, v| p.opts.zca = v;
            /// Directory of `checkpoint.safetensors`, written atomically at every epoch end.
            checkpoint_dir: impl Into<std::path::PathBuf> => |p, v| p.opts.checkpointing.dir = Some(v.into());
            /// Also checkpoint every this many optimisation steps.
            checkpoint_every: u64 => |p, v| p.opts.checkpointing.every_steps = v;
            /// Continue from the checkpoint in `checkpoint_dir`, if there is one.
            resume: bool => |p, v| p.opts.checkpointing.resume = v;
            /// Print one line per epoch on stderr.
            progress: bool => |p, v| p.opts.progress = v;
        }
    };
}
pub(crate) use group_option_setters;

/// `"relu"` or `"tanh"`.
#[cfg(feature = "safetensors")]
pub(crate) fn form_name(form: EncoderForm) -> &'static str {
    match form {
        EncoderForm::Relu => "relu",
        EncoderForm::Tanh => "tanh",
    }
}

/// Parses [`form_name`]'s output.
#[cfg(feature = "safetensors")]
pub(crate) fn parse_form(name: &str) -> Result<EncoderForm> {
    match name {
        "relu" => Ok(EncoderForm::Relu),
        "tanh" => Ok(EncoderForm::Tanh),
        other => Err(crate::Error::format(
            "model file",
            format!("metadata `form` = {other:?}: expected relu or tanh"),
        )),
    }
}

/// The four parameter tensors of a group-sparse model, owned.
#[cfg(feature = "safetensors")]
pub(crate) fn owned_params<M: GroupSparseModel>(model: &M) -> Vec<crate::estimators::file::Tensor> {
    model
        .params()
        .into_iter()
        .map(|(name, shape, v)| (name.to_string(), shape, v.to_vec()))
        .collect()
}

/// The group norms of every row of `z` (`groups.n_units()` values per row).
pub(crate) fn group_norms(z: &Mat, groups: &Groups) -> Mat {
    let mut out = Mat::zeros(z.nrows(), groups.len());
    for (zrow, orow) in z.rows().zip(out.rows_mut()) {
        groups.norms(zrow, orow);
    }
    out
}

//! Training a group-sparse auto-encoder — dense, locally-connected or convolutional, any
//! [`GroupSparseModel`] — on a fixed set of examples.

use super::checkpoint::{take_tensor, Checkpointing};
use super::loop_checkpoint::{fields_fingerprint, LoopCheckpointer, LoopPosition, OwnedTensor};
use super::optimizer::{Optimizer, OptimizerState, Schedule};
use super::skeleton::{all_zero, EpochLoop, LoopFamily};
use crate::data::gather_rows;
use crate::kernels::Groups;
use crate::linalg::Mat;
use crate::models::{grad_slices, GroupAeGrads, GroupAeLoss, GroupSparseModel};
use crate::{Error, Result};
use std::time::Instant;

/// Hyper-parameters of group-sparse auto-encoder training, the low-level trainer's. The
/// defaults below are neutral starting values; each model family's tuned defaults live in its
/// estimator's parameters ([`GroupSparseParams`](crate::estimators::GroupSparseParams),
/// [`LocallyConnectedParams`](crate::estimators::LocallyConnectedParams),
/// [`ConvolutionalParams`](crate::estimators::ConvolutionalParams)), whose `config()` gives
/// them as a `GroupAeConfig`.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `lambda` | 0.5 | weight of the group term | finite, ≥ 0 |
/// | `batch` | 100 | minibatch size | ≥ 1 |
/// | `epochs` | 50 | passes (maximum under a time budget) | ≥ 1 |
/// | `optimizer` | Adam | update rule | |
/// | `lr` | 1e-3 | base learning rate (cosine decay over the run) | > 0 |
/// | `time_budget` | none | wall-clock seconds | > 0 |
/// | `seed` | 0 | shuffling | |
/// | `psd` | none | `(α, steps)`: train PSD-style (inference from F(x), then one step) | α > 0, steps ≥ 1 |
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAeConfig {
    /// Group-term weight λ.
    pub lambda: f32,
    /// Minibatch size.
    pub batch: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Update rule.
    pub optimizer: Optimizer,
    /// Base learning rate.
    pub lr: f32,
    /// Wall-clock budget in seconds.
    pub time_budget: Option<f64>,
    /// Shuffling seed.
    pub seed: u64,
    /// PSD training: prediction weight α and inference steps per example.
    pub psd: Option<(f32, usize)>,
}

impl Default for GroupAeConfig {
    fn default() -> Self {
        GroupAeConfig {
            lambda: 0.5,
            batch: 100,
            epochs: 50,
            optimizer: Optimizer::adam(),
            lr: 1e-3,
            time_budget: None,
            seed: 0,
            psd: None,
        }
    }
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAeReport {
    /// Epochs run (the last may be partial under a time budget).
    pub epochs: usize,
    /// Loss sums of the last full or partial epoch.
    pub last: GroupAeLoss,
    /// Training throughput.
    pub examples_per_s: f64,
}

/// Trains `model` in place on the rows of `x`; `on_epoch(epoch, loss, seconds)` after each.
///
/// # Errors
/// Invalid settings or data, or a non-finite loss ([`Error::Diverged`]).
pub fn train_group_ae<M: GroupSparseModel>(
    model: &mut M,
    x: &Mat,
    groups: &Groups,
    cfg: &GroupAeConfig,
    on_epoch: impl FnMut(usize, &GroupAeLoss, f64),
) -> Result<GroupAeReport> {
    train_group_ae_with(model, x, groups, cfg, &Checkpointing::default(), on_epoch)
}

/// [`train_group_ae`] with checkpoints and resumption (see [`Checkpointing`]); exact
/// without a time budget (the cosine schedule then depends on epochs only).
///
/// # Errors
/// As [`train_group_ae`], plus checkpoint errors and [`Error::Interrupted`].
pub fn train_group_ae_with<M: GroupSparseModel>(
    model: &mut M,
    x: &Mat,
    groups: &Groups,
    cfg: &GroupAeConfig,
    ckpt: &Checkpointing,
    mut on_epoch: impl FnMut(usize, &GroupAeLoss, f64),
) -> Result<GroupAeReport> {
    if cfg.batch == 0
        || cfg.epochs == 0
        || !(cfg.lr > 0.0 && cfg.lr.is_finite())
        || !(cfg.lambda >= 0.0 && cfg.lambda.is_finite())
    {
        return Err(Error::param(
            "group ae config",
            format!(
                "batch {}, epochs {} must be ≥ 1; lr {} > 0; λ {} ≥ 0",
                cfg.batch,
                cfg.epochs,
                crate::Compact(cfg.lr),
                crate::Compact(cfg.lambda)
            ),
        ));
    }
    if cfg.time_budget.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
        return Err(Error::param("time_budget", "must be finite and > 0"));
    }
    cfg.optimizer.check()?;
    if cfg
        .psd
        .is_some_and(|(a, k)| !(a > 0.0 && a.is_finite()) || k == 0)
    {
        return Err(Error::param(
            "psd",
            "α must be finite and > 0 and steps ≥ 1",
        ));
    }
    if x.nrows() == 0 || x.ncols() != model.inputs() || groups.n_units() != model.code_units() {
        return Err(Error::param(
            "data",
            format!(
                "{:?} inputs and groups over {} units for a model of {} code units on {} inputs",
                x.shape(),
                groups.n_units(),
                model.code_units(),
                model.inputs()
            ),
        ));
    }
    if cfg.psd.is_some() && !model.has_psd() {
        return Err(Error::param("psd", "this model has no PSD form"));
    }
    crate::check_finite("training inputs", x.as_slice())?;
    let lengths = model.params().map(|(_, _, v)| v.len());
    let mut opt = OptimizerState::new(cfg.optimizer, &lengths);
    let start = Instant::now();
    let mut fingerprint = fields_fingerprint(&cfg.fields());
    fingerprint.push_str(&format!(
        " data {:?} model {} groups {}",
        x.shape(),
        model.describe(),
        groups.fingerprint()
    ));
    let ck = LoopCheckpointer::new(ckpt, "group_ae", fingerprint)?
        .bounds(cfg.epochs, x.nrows().div_ceil(cfg.batch));
    let names = model.params().map(|(name, _, _)| name);
    let mut pos = ck.resume(Some(&mut opt), |t| {
        for (name, dst) in names.iter().zip(model.params_mut()) {
            let v = take_tensor(t, name, dst.len())?;
            dst.copy_from_slice(&v);
        }
        Ok(())
    })?;
    // The PSD step's Lipschitz bound is part of the state (refreshed every 50 steps).
    let lipschitz = pos.sums.get(4).map_or(1.0, |&l| l as f32);
    let mut family = GroupAeLoop {
        grads: model.zero_grads(),
        ws: M::Workspace::default(),
        model,
        opt,
        groups,
        xb: Mat::zeros(0, x.ncols()),
        x,
        cfg,
        lipschitz,
        sum: GroupAeLoss::default(),
        last: GroupAeLoss::default(),
        epochs: 0,
        seen: 0,
        silent: false,
        on_epoch: &mut on_epoch,
    };
    let plan = EpochLoop {
        rows: x.nrows(),
        batch: cfg.batch,
        epochs: cfg.epochs,
        seed: cfg.seed,
        budget: cfg.time_budget,
        start,
        detect_collapse: true,
        checkpoints: &ck,
    };
    plan.run(&mut pos, &mut family)?;
    Ok(GroupAeReport {
        epochs: family.epochs,
        last: family.last,
        examples_per_s: family.seen as f64 / start.elapsed().as_secs_f64().max(1e-9),
    })
}

impl GroupAeConfig {
    /// Every setting as `(name, value)`: the checkpoint fingerprint (explicit, so that a
    /// renamed field or a changed `Debug` format does not orphan checkpoints).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("lambda", self.lambda.to_string()),
            ("batch", self.batch.to_string()),
            ("epochs", self.epochs.to_string()),
            ("optimizer", self.optimizer.field()),
            ("lr", self.lr.to_string()),
            (
                "time_budget",
                self.time_budget.map_or("none".into(), |t| t.to_string()),
            ),
            ("seed", self.seed.to_string()),
            (
                "psd",
                self.psd
                    .map_or("none".into(), |(a, k)| format!("alpha {a} steps {k}")),
            ),
        ]
    }
}

/// The group-sparse auto-encoders' part of the shared loop.
struct GroupAeLoop<'a, M: GroupSparseModel, F> {
    model: &'a mut M,
    opt: OptimizerState,
    ws: M::Workspace,
    grads: GroupAeGrads,
    groups: &'a Groups,
    x: &'a Mat,
    xb: Mat,
    cfg: &'a GroupAeConfig,
    lipschitz: f32,
    /// Loss sums of the epoch in progress.
    sum: GroupAeLoss,
    /// Those of the last full or partial epoch.
    last: GroupAeLoss,
    /// Epochs started.
    epochs: usize,
    /// Examples trained on.
    seen: usize,
    /// The last minibatch had no active group and gave an all-zero gradient.
    silent: bool,
    on_epoch: &'a mut F,
}

impl<M: GroupSparseModel, F: FnMut(usize, &GroupAeLoss, f64)> LoopFamily for GroupAeLoop<'_, M, F> {
    fn begin_epoch(&mut self, epoch: usize, pos: &LoopPosition) {
        self.sum = match pos.sums[..] {
            [r, g, a, c, _] => GroupAeLoss {
                reconstruction: r,
                group: g,
                active_groups: a,
                count: c as usize,
            },
            _ => GroupAeLoss::default(),
        };
        self.epochs = epoch + 1;
    }

    fn step(&mut self, idx: &[usize], progress: f64, pos: &mut LoopPosition) -> Result<()> {
        let (cfg, model) = (self.cfg, &mut *self.model);
        gather_rows(self.x, idx, &mut self.xb);
        let l = match cfg.psd {
            Some((alpha, steps)) => {
                // D changes slowly: refresh the inference step's Lipschitz bound every 50
                // updates (with a 20% margin).
                if self.opt.step % 50 == 0 {
                    self.lipschitz = 1.2 * model.decoder_lipschitz();
                }
                model
                    .psd_step(
                        &self.xb,
                        self.groups,
                        cfg.lambda,
                        alpha,
                        steps,
                        self.lipschitz,
                        &mut self.ws,
                        &mut self.grads,
                    )
                    .expect("checked: the model has a PSD form")
            }
            None => model.gradients(
                &self.xb,
                self.groups,
                cfg.lambda,
                &mut self.ws,
                &mut self.grads,
            ),
        };
        if !l.mean(cfg.lambda).is_finite() {
            return Err(Error::Diverged {
                step: self.opt.step,
                what: "loss".into(),
            });
        }
        let grads = grad_slices(&self.grads);
        // Stuck: every group silent, a reconstruction error left, and no gradient anywhere.
        self.silent = l.active_groups == 0.0 && l.reconstruction > 0.0 && all_zero(grads);
        let lr = Schedule::Cosine { floor: 0.05 }.at(cfg.lr, self.opt.step, progress);
        let [w, b, g, d] = model.params_mut();
        let [gw, gb, gg, gd] = grads;
        self.opt.update(
            lr,
            &mut [(w, gw, 1.0), (b, gb, 1.0), (g, gg, 1.0), (d, gd, 1.0)],
        );
        model.project();
        let sum = &mut self.sum;
        sum.reconstruction += l.reconstruction;
        sum.group += l.group;
        sum.active_groups += l.active_groups * l.count as f64;
        sum.count += l.count;
        self.seen += l.count;
        pos.step = self.opt.step;
        pos.sums = vec![
            sum.reconstruction,
            sum.group,
            sum.active_groups,
            sum.count as f64,
            self.lipschitz as f64,
        ];
        Ok(())
    }

    fn silent(&self) -> bool {
        self.silent
    }

    fn end_epoch(&mut self, epoch: usize, pos: &mut LoopPosition, seconds: f64) -> f64 {
        let mut sum = self.sum;
        sum.active_groups /= sum.count.max(1) as f64;
        (self.on_epoch)(epoch + 1, &sum, seconds);
        self.last = sum;
        pos.sums = vec![0.0, 0.0, 0.0, 0.0, self.lipschitz as f64];
        sum.mean(self.cfg.lambda)
    }

    fn out_of_time(&mut self, _epoch: usize, _seconds: f64) {
        let mut sum = self.sum;
        if sum.count > 0 {
            sum.active_groups /= sum.count as f64;
            self.last = sum;
        }
    }

    fn tensors(&self) -> Vec<OwnedTensor> {
        self.model
            .params()
            .into_iter()
            .map(|(name, shape, v)| (name.into(), shape, v.to_vec()))
            .collect()
    }

    fn optimizer(&self) -> Option<&OptimizerState> {
        Some(&self.opt)
    }
}

//! Training a group-sparse auto-encoder — dense, locally-connected or convolutional, any
//! [`GroupSparseModel`] — on a fixed set of examples.

use super::checkpoint::Checkpointing;
use super::checkpoint::{take_tensor, LoopCheckpointer, OwnedTensor};
use super::optimizer::{Optimizer, OptimizerState, Schedule};
use crate::data::{gather_rows, Minibatches};
use crate::kernels::Groups;
use crate::linalg::Mat;
use crate::models::{grad_slices, GroupAeLoss, GroupSparseModel};
use crate::{Error, Result};
use std::time::Instant;

/// Hyper-parameters of group-sparse auto-encoder training.
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
                cfg.batch, cfg.epochs, cfg.lr, cfg.lambda
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
    let schedule = Schedule::Cosine { floor: 0.05 };
    let mut ws = M::Workspace::default();
    let mut grads = model.zero_grads();
    let mut xb = Mat::zeros(0, x.ncols());
    let start = Instant::now();
    let steps_per_epoch = x.nrows().div_ceil(cfg.batch) as f64;
    let (mut seen, mut last, mut epochs) = (0usize, GroupAeLoss::default(), 0);
    let ck = LoopCheckpointer::new(
        ckpt,
        "group_ae",
        format!(
            "{cfg:?} {:?} {} groups {}",
            x.shape(),
            model.describe(),
            groups.fingerprint()
        ),
    )
    .bounds(cfg.epochs, x.nrows().div_ceil(cfg.batch));
    let names = model.params().map(|(name, _, _)| name);
    let mut pos = ck.resume(Some(&mut opt), |t| {
        for (name, dst) in names.iter().zip(model.params_mut()) {
            let v = take_tensor(t, name, dst.len())?;
            dst.copy_from_slice(&v);
        }
        Ok(())
    })?;
    let tensors = |model: &M| -> Vec<OwnedTensor> {
        model
            .params()
            .into_iter()
            .map(|(name, shape, v)| (name.into(), shape, v.to_vec()))
            .collect()
    };
    // The PSD step's Lipschitz bound is part of the state (refreshed every 50 steps).
    let mut lipschitz = pos.sums.get(4).map_or(1.0, |&l| l as f32);
    'outer: while pos.epoch < cfg.epochs {
        let epoch = pos.epoch;
        let mut rng = crate::data::epoch_rng(cfg.seed, 0, epoch as u64);
        let order = Minibatches::shuffled(x.nrows(), cfg.batch, &mut rng);
        let mut sum = match pos.sums[..] {
            [r, g, a, c, _] => GroupAeLoss {
                reconstruction: r,
                group: g,
                active_groups: a,
                count: c as usize,
            },
            _ => GroupAeLoss::default(),
        };
        epochs = epoch + 1;
        for (k, idx) in order.iter().enumerate().skip(pos.batch_index) {
            let elapsed = start.elapsed().as_secs_f64();
            if cfg.time_budget.is_some_and(|b| elapsed >= b) {
                if sum.count > 0 {
                    sum.active_groups /= sum.count as f64;
                    last = sum;
                }
                break 'outer;
            }
            let by_epochs = (epoch as f64 + k as f64 / steps_per_epoch) / cfg.epochs as f64;
            let progress = cfg
                .time_budget
                .map_or(by_epochs, |b| by_epochs.max(elapsed / b));
            gather_rows(x, idx, &mut xb);
            let l = match cfg.psd {
                Some((alpha, steps)) => {
                    // D changes slowly: refresh the inference step's Lipschitz bound every
                    // 50 updates (with a 20% margin).
                    if opt.step % 50 == 0 {
                        lipschitz = 1.2 * model.decoder_lipschitz();
                    }
                    model
                        .psd_step(
                            &xb, groups, cfg.lambda, alpha, steps, lipschitz, &mut ws, &mut grads,
                        )
                        .expect("checked: the model has a PSD form")
                }
                None => model.gradients(&xb, groups, cfg.lambda, &mut ws, &mut grads),
            };
            if !l.mean(cfg.lambda).is_finite() {
                return Err(Error::Diverged {
                    step: opt.step,
                    what: "loss".into(),
                });
            }
            let lr = schedule.at(cfg.lr, opt.step, progress);
            let [w, b, g, d] = model.params_mut();
            let [gw, gb, gg, gd] = grad_slices(&grads);
            opt.update(
                lr,
                &mut [(w, gw, 1.0), (b, gb, 1.0), (g, gg, 1.0), (d, gd, 1.0)],
            );
            model.project();
            sum.reconstruction += l.reconstruction;
            sum.group += l.group;
            sum.active_groups += l.active_groups * l.count as f64;
            sum.count += l.count;
            seen += l.count;
            pos.step = opt.step;
            pos.batch_index = k + 1;
            pos.sums = vec![
                sum.reconstruction,
                sum.group,
                sum.active_groups,
                sum.count as f64,
                lipschitz as f64,
            ];
            ck.after_step(&pos, || tensors(model), Some(&opt))?;
        }
        sum.active_groups /= sum.count.max(1) as f64;
        on_epoch(epoch + 1, &sum, start.elapsed().as_secs_f64());
        last = sum;
        pos.history.push(sum.mean(cfg.lambda));
        pos.epoch += 1;
        pos.batch_index = 0;
        pos.sums = vec![0.0, 0.0, 0.0, 0.0, lipschitz as f64];
        ck.at_epoch_end(&pos, || tensors(model), Some(&opt))?;
    }
    Ok(GroupAeReport {
        epochs,
        last,
        examples_per_s: seen as f64 / start.elapsed().as_secs_f64().max(1e-9),
    })
}

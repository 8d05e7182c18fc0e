//! Training LISTA to predict exact sparse codes.

use super::checkpoint::Checkpointing;
use super::checkpoint::{take_tensor, LoopCheckpointer, OwnedTensor};
use super::optimizer::{Optimizer, OptimizerState, Schedule};
use crate::data::{gather_rows, Minibatches};
use crate::linalg::Mat;
use crate::models::{Lista, ListaWorkspace};
use crate::{Error, Result};

/// Hyper-parameters of LISTA training.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `epochs` | 20 | passes over the data | ≥ 1 |
/// | `batch` | 100 | minibatch size | ≥ 1 |
/// | `optimizer` | Adam | update rule | |
/// | `lr` | 1e-3 | base learning rate | > 0 |
/// | `schedule` | cosine to 0 | over the epochs | |
/// | `seed` | 0 | shuffling | |
#[derive(Clone, Debug, PartialEq)]
pub struct ListaConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Update rule.
    pub optimizer: Optimizer,
    /// Base learning rate.
    pub lr: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for ListaConfig {
    fn default() -> Self {
        ListaConfig {
            epochs: 20,
            batch: 100,
            optimizer: Optimizer::adam(),
            lr: 1e-3,
            schedule: Schedule::Cosine { floor: 0.0 },
            seed: 0,
        }
    }
}

/// Trains `model` in place to map rows of `x` to rows of `targets`; returns the mean loss
/// `½‖z − z*‖²` of every epoch. θ is kept ≥ 0.
///
/// # Errors
/// Invalid settings, mismatched data, or a non-finite loss.
pub fn train_lista(
    model: &mut Lista,
    x: &Mat,
    targets: &Mat,
    cfg: &ListaConfig,
) -> Result<Vec<f64>> {
    train_lista_with(model, x, targets, cfg, &Checkpointing::default())
}

/// [`train_lista`] with checkpoints and exact resumption (see [`Checkpointing`]).
///
/// # Errors
/// As [`train_lista`], plus checkpoint I/O errors, a checkpoint of another configuration,
/// and [`Error::Interrupted`] at `stop_after_steps`.
pub fn train_lista_with(
    model: &mut Lista,
    x: &Mat,
    targets: &Mat,
    cfg: &ListaConfig,
    ckpt: &Checkpointing,
) -> Result<Vec<f64>> {
    if cfg.epochs == 0 || cfg.batch == 0 || !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(Error::param(
            "lista config",
            format!(
                "epochs {} and batch {} must be ≥ 1, lr {} > 0",
                cfg.epochs, cfg.batch, cfg.lr
            ),
        ));
    }
    cfg.optimizer.check()?;
    if x.nrows() != targets.nrows()
        || targets.ncols() != model.hidden()
        || x.ncols() != model.we.ncols()
    {
        return Err(Error::param(
            "data",
            format!(
                "inputs {:?} and targets {:?} do not fit a {}-unit LISTA on {} inputs",
                x.shape(),
                targets.shape(),
                model.hidden(),
                model.we.ncols()
            ),
        ));
    }
    crate::check_finite("training inputs", x.as_slice())?;
    crate::check_finite("target codes", targets.as_slice())?;
    let mut opt = OptimizerState::new(
        cfg.optimizer,
        &[
            model.we.as_slice().len(),
            model.s.as_slice().len(),
            model.theta.len(),
        ],
    );
    let mut ws = ListaWorkspace::default();
    let mut grads = model.zero_grads();
    let (mut xb, mut tb) = (Mat::zeros(0, x.ncols()), Mat::zeros(0, targets.ncols()));
    let steps_per_epoch = x.nrows().div_ceil(cfg.batch) as f64;
    let (n, m) = (model.hidden(), model.we.ncols());
    let ck = LoopCheckpointer::new(
        ckpt,
        "lista",
        format!(
            "{cfg:?} {:?} {:?} iters {}",
            x.shape(),
            targets.shape(),
            model.iters
        ),
    )
    .bounds(cfg.epochs, x.nrows().div_ceil(cfg.batch));
    let mut pos = ck.resume(Some(&mut opt), |t| {
        model.we = Mat::from_vec(n, m, take_tensor(t, "We", n * m)?);
        model.s = Mat::from_vec(n, n, take_tensor(t, "S", n * n)?);
        model.theta = take_tensor(t, "theta", n)?;
        Ok(())
    })?;
    let tensors = |model: &Lista| -> Vec<OwnedTensor> {
        vec![
            ("We".into(), vec![n, m], model.we.as_slice().to_vec()),
            ("S".into(), vec![n, n], model.s.as_slice().to_vec()),
            ("theta".into(), vec![n], model.theta.clone()),
        ]
    };
    while pos.epoch < cfg.epochs {
        let epoch = pos.epoch;
        let mut rng = crate::data::epoch_rng(cfg.seed, 0, epoch as u64);
        let order = Minibatches::shuffled(x.nrows(), cfg.batch, &mut rng);
        if pos.sums.is_empty() {
            pos.sums = vec![0.0];
        }
        for (k, idx) in order.iter().enumerate().skip(pos.batch_index) {
            gather_rows(x, idx, &mut xb);
            gather_rows(targets, idx, &mut tb);
            model.forward(&xb, &mut ws);
            let loss = model.backward(&xb, &tb, &mut ws, &mut grads);
            if !loss.is_finite() {
                return Err(Error::Diverged {
                    step: opt.step,
                    what: "loss".into(),
                });
            }
            pos.sums[0] += loss * idx.len() as f64;
            let progress = (epoch as f64 + k as f64 / steps_per_epoch) / cfg.epochs as f64;
            let lr = cfg.schedule.at(cfg.lr, opt.step, progress);
            opt.update(
                lr,
                &mut [
                    (model.we.as_mut_slice(), grads.we.as_slice(), 1.0),
                    (model.s.as_mut_slice(), grads.s.as_slice(), 1.0),
                    (&mut model.theta[..], &grads.theta[..], 1.0),
                ],
            );
            model.theta.iter_mut().for_each(|t| *t = t.max(0.0));
            pos.step = opt.step;
            pos.batch_index = k + 1;
            ck.after_step(&pos, || tensors(model), Some(&opt))?;
        }
        pos.history.push(pos.sums[0] / x.nrows() as f64);
        pos.sums.clear();
        pos.epoch += 1;
        pos.batch_index = 0;
        ck.at_epoch_end(&pos, || tensors(model), Some(&opt))?;
    }
    Ok(pos.history)
}

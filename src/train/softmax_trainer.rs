//! Training a linear softmax classifier on fixed features (Adam, cosine decay, L2 decay).

use super::optimizer::{Optimizer, OptimizerState, Schedule};
use crate::data::{gather_rows, Minibatches};
use crate::linalg::Mat;
use crate::models::Softmax;
use crate::{Error, Result};
use std::time::Instant;

/// Hyper-parameters of [`train_softmax`].
///
/// | Name | Default | Meaning |
/// |---|---|---|
/// | `epochs` | 30 | passes over the data |
/// | `batch` | 100 | minibatch size |
/// | `lr` | 1e-3 | Adam's base rate, cosine-decayed to 5% |
/// | `weight_decay` | 1e-4 | L2 penalty ½·wd·‖W‖² |
/// | `seed` | 0 | shuffling |
/// | `time_budget` | none | wall-clock seconds |
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Base learning rate.
    pub lr: f32,
    /// L2 weight decay.
    pub weight_decay: f32,
    /// Shuffling seed.
    pub seed: u64,
    /// Wall-clock budget in seconds.
    pub time_budget: Option<f64>,
}

impl Default for SoftmaxConfig {
    fn default() -> Self {
        SoftmaxConfig {
            epochs: 30,
            batch: 100,
            lr: 1e-3,
            weight_decay: 1e-4,
            seed: 0,
            time_budget: None,
        }
    }
}

/// Trains `model` on the rows of `x` with `labels`; `on_epoch(epoch, mean loss, training
/// error %)` after each pass. Returns the epochs run.
///
/// # Errors
/// Bad settings, mismatched or non-finite data, labels out of range, or a non-finite loss.
pub fn train_softmax(
    model: &mut Softmax,
    x: &Mat,
    labels: &[u8],
    cfg: &SoftmaxConfig,
    mut on_epoch: impl FnMut(usize, f64, f64),
) -> Result<usize> {
    if cfg.epochs == 0
        || cfg.batch == 0
        || !(cfg.lr > 0.0 && cfg.lr.is_finite())
        || !(cfg.weight_decay >= 0.0 && cfg.weight_decay.is_finite())
        || cfg.time_budget.is_some_and(|t| !(t > 0.0 && t.is_finite()))
    {
        return Err(Error::param(
            "softmax config",
            format!("{cfg:?}: epochs and batch ≥ 1, lr > 0, weight decay ≥ 0, budget > 0"),
        ));
    }
    if x.nrows() == 0 || x.nrows() != labels.len() || x.ncols() != model.w.ncols() {
        return Err(Error::param(
            "data",
            format!(
                "{:?} features with {} labels for a classifier on {} features",
                x.shape(),
                labels.len(),
                model.w.ncols()
            ),
        ));
    }
    if let Some(&y) = labels.iter().find(|&&y| y as usize >= model.b.len()) {
        return Err(Error::param(
            "labels",
            format!("label {y} for {} classes", model.b.len()),
        ));
    }
    crate::check_finite("features", x.as_slice())?;
    let mut opt = OptimizerState::new(
        Optimizer::adam(),
        &[model.w.as_slice().len(), model.b.len()],
    );
    let schedule = Schedule::Cosine { floor: 0.05 };
    let mut grads = model.zero_grads();
    let (mut xb, mut p, mut yb) = (Mat::zeros(0, x.ncols()), Mat::zeros(0, 0), Vec::new());
    let start = Instant::now();
    let steps_per_epoch = x.nrows().div_ceil(cfg.batch) as f64;
    for epoch in 0..cfg.epochs {
        let mut rng = crate::data::epoch_rng(cfg.seed, 7, epoch as u64);
        let order = Minibatches::shuffled(x.nrows(), cfg.batch, &mut rng);
        let (mut loss, mut correct, mut count) = (0.0, 0, 0);
        for (k, idx) in order.iter().enumerate() {
            let elapsed = start.elapsed().as_secs_f64();
            if cfg.time_budget.is_some_and(|b| elapsed >= b) {
                return Ok(epoch);
            }
            let by_epochs = (epoch as f64 + k as f64 / steps_per_epoch) / cfg.epochs as f64;
            let progress = cfg
                .time_budget
                .map_or(by_epochs, |b| by_epochs.max(elapsed / b));
            gather_rows(x, idx, &mut xb);
            yb.clear();
            yb.extend(idx.iter().map(|&i| labels[i]));
            let (l, c) = model.forward(&xb, Some(&yb), &mut p);
            if !l.is_finite() {
                return Err(Error::Diverged {
                    step: opt.step,
                    what: "classifier loss".into(),
                });
            }
            model.backward(&xb, &yb, &mut p, cfg.weight_decay, &mut grads);
            let lr = schedule.at(cfg.lr, opt.step, progress);
            opt.update(
                lr,
                &mut [
                    (model.w.as_mut_slice(), grads.w.as_slice(), 1.0),
                    (&mut model.b, &grads.b, 1.0),
                ],
            );
            loss += l;
            correct += c;
            count += idx.len();
        }
        on_epoch(
            epoch + 1,
            loss / count as f64,
            100.0 * (count - correct) as f64 / count as f64,
        );
    }
    Ok(cfg.epochs)
}

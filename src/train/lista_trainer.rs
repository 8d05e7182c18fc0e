//! Training LISTA to predict exact sparse codes.

use super::checkpoint::{take_tensor, Checkpointing};
use super::loop_checkpoint::{fields_fingerprint, LoopCheckpointer, LoopPosition, OwnedTensor};
use super::optimizer::{Optimizer, OptimizerState, Schedule};
use super::skeleton::{all_zero, EpochLoop, LoopFamily};
use crate::data::gather_rows;
use crate::linalg::Mat;
use crate::models::{Lista, ListaGrads, ListaWorkspace};
use crate::{Error, Result};

/// Hyper-parameters of LISTA training.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `epochs` | 20 | passes over the data | ≥ 1 |
/// | `batch` | 100 | minibatch size | ≥ 1 |
/// | `optimizer` | Adam | update rule | |
/// | `lr` | 1e-3 | base learning rate | > 0 |
/// | `schedule` | cosine to 0 | over the epochs (or the budget, if it ends first) | |
/// | `time_budget` | none | wall-clock seconds | > 0 |
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
    /// Wall-clock budget in seconds: the run stops when it is spent.
    pub time_budget: Option<f64>,
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
            time_budget: None,
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
                cfg.epochs,
                cfg.batch,
                crate::Compact(cfg.lr)
            ),
        ));
    }
    cfg.optimizer.check()?;
    if cfg.time_budget.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
        return Err(Error::param("time_budget", "must be finite and > 0"));
    }
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
    let opt = OptimizerState::new(
        cfg.optimizer,
        &[
            model.we.as_slice().len(),
            model.s.as_slice().len(),
            model.theta.len(),
        ],
    );
    let (n, m) = (model.hidden(), model.we.ncols());
    let mut fingerprint = fields_fingerprint(&cfg.fields());
    fingerprint.push_str(&format!(
        " data {:?} targets {:?} iters {}",
        x.shape(),
        targets.shape(),
        model.iters
    ));
    let ck = LoopCheckpointer::new(ckpt, "lista", fingerprint)?
        .bounds(cfg.epochs, x.nrows().div_ceil(cfg.batch));
    let mut family = ListaLoop {
        grads: model.zero_grads(),
        model,
        opt,
        ws: ListaWorkspace::default(),
        xb: Mat::zeros(0, x.ncols()),
        tb: Mat::zeros(0, targets.ncols()),
        x,
        targets,
        cfg,
        sum: 0.0,
        silent: false,
    };
    let mut pos = {
        let ListaLoop { model, opt, .. } = &mut family;
        ck.resume(Some(opt), |t| {
            model.we = Mat::from_vec(n, m, take_tensor(t, "We", n * m)?);
            model.s = Mat::from_vec(n, n, take_tensor(t, "S", n * n)?);
            model.theta = take_tensor(t, "theta", n)?;
            Ok(())
        })?
    };
    let plan = EpochLoop {
        rows: x.nrows(),
        batch: cfg.batch,
        epochs: cfg.epochs,
        seed: cfg.seed,
        budget: cfg.time_budget,
        start: std::time::Instant::now(),
        detect_collapse: true,
        checkpoints: &ck,
    };
    plan.run(&mut pos, &mut family)?;
    Ok(pos.history)
}

impl ListaConfig {
    /// Every setting as `(name, value)`: the checkpoint fingerprint (explicit, so that a
    /// renamed field or a changed `Debug` format does not orphan checkpoints).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("epochs", self.epochs.to_string()),
            ("batch", self.batch.to_string()),
            ("optimizer", self.optimizer.field()),
            ("lr", self.lr.to_string()),
            ("schedule", self.schedule.field()),
            ("seed", self.seed.to_string()),
        ];
        // Listed only when set, so checkpoints written before the field existed resume.
        if let Some(t) = self.time_budget {
            f.push(("time_budget", format!("{t:?}")));
        }
        f
    }
}

/// LISTA's part of the shared loop.
struct ListaLoop<'a> {
    model: &'a mut Lista,
    opt: OptimizerState,
    ws: ListaWorkspace,
    grads: ListaGrads,
    x: &'a Mat,
    targets: &'a Mat,
    xb: Mat,
    tb: Mat,
    cfg: &'a ListaConfig,
    /// Σ loss × rows of the epoch in progress.
    sum: f64,
    /// The last minibatch gave all-zero codes and gradients.
    silent: bool,
}

impl LoopFamily for ListaLoop<'_> {
    fn begin_epoch(&mut self, _epoch: usize, pos: &LoopPosition) {
        self.sum = pos.sums.first().copied().unwrap_or(0.0);
    }

    fn step(&mut self, idx: &[usize], progress: f64, pos: &mut LoopPosition) -> Result<()> {
        let model = &mut *self.model;
        gather_rows(self.x, idx, &mut self.xb);
        gather_rows(self.targets, idx, &mut self.tb);
        model.forward(&self.xb, &mut self.ws);
        let loss = model.backward(&self.xb, &self.tb, &mut self.ws, &mut self.grads);
        if !loss.is_finite() {
            return Err(Error::Diverged {
                step: self.opt.step,
                what: "loss".into(),
            });
        }
        // Stuck: a loss (so some target is non-zero) that no parameter can reduce, codes all
        // zero. Gradients are checked first: they are almost never all zero, and the check
        // stops at the first non-zero value.
        self.silent = loss > 0.0
            && all_zero([
                self.grads.we.as_slice(),
                self.grads.s.as_slice(),
                &self.grads.theta[..],
            ])
            && all_zero([self.ws.codes(idx.len(), model.iters).to_owned().as_slice()]);
        self.sum += loss * idx.len() as f64;
        let lr = self.cfg.schedule.at(self.cfg.lr, self.opt.step, progress);
        self.opt.update(
            lr,
            &mut [
                (model.we.as_mut_slice(), self.grads.we.as_slice(), 1.0),
                (model.s.as_mut_slice(), self.grads.s.as_slice(), 1.0),
                (&mut model.theta[..], &self.grads.theta[..], 1.0),
            ],
        );
        model.theta.iter_mut().for_each(|t| *t = t.max(0.0));
        pos.step = self.opt.step;
        pos.sums = vec![self.sum];
        Ok(())
    }

    fn silent(&self) -> bool {
        self.silent
    }

    fn end_epoch(&mut self, _epoch: usize, pos: &mut LoopPosition, _seconds: f64) -> f64 {
        pos.sums.clear();
        self.sum / self.x.nrows() as f64
    }

    fn tensors(&self) -> Vec<OwnedTensor> {
        let (n, m) = (self.model.hidden(), self.model.we.ncols());
        vec![
            ("We".into(), vec![n, m], self.model.we.as_slice().to_vec()),
            ("S".into(), vec![n, n], self.model.s.as_slice().to_vec()),
            ("theta".into(), vec![n], self.model.theta.clone()),
        ]
    }

    fn optimizer(&self) -> Option<&OptimizerState> {
        Some(&self.opt)
    }
}

//! Learning a dictionary (and optionally the inhibition matrix) for structured sparse
//! coding by lateral inhibition: per minibatch infer codes, one gradient-descent step on W
//! (columns renormalised), one projected gradient-ascent step on S.

use super::checkpoint::{take_tensor, Checkpointing};
use super::loop_checkpoint::{fields_fingerprint, LoopCheckpointer, LoopPosition, OwnedTensor};
use super::optimizer::OptimizerState;
use super::skeleton::{EpochLoop, LoopFamily};
use crate::data::gather_rows;
use crate::linalg::{set_norm, Mat};
use crate::models::{inhibition_gradients, project_inhibition};
use crate::solvers::{inhibited_codes, inhibited_codes_ista, InhibitionStats};
use crate::{Error, Result};
use std::time::Instant;

/// A dictionary W (m × n, unit columns), an inhibition matrix S and an optional
/// structural mask (S is kept at 0 where the mask is 0): built by [`InhibitionModel::new`],
/// read through accessors, changed by training.
#[derive(Clone, Debug, PartialEq)]
pub struct InhibitionModel {
    /// Dictionary, m × n.
    pub(crate) w: Mat,
    /// Inhibition matrix, n × n.
    pub(crate) s: Mat,
    /// Where S may be non-zero (1) or not (0); `None`: everywhere off the diagonal.
    pub(crate) mask: Option<Mat>,
}

impl InhibitionModel {
    /// A model from a dictionary `w` (m × n, one atom per column), an inhibition matrix `s`
    /// (n × n) and an optional mask (n × n, entries 0 or 1).
    ///
    /// # Errors
    /// [`Error::Format`] on empty or inconsistent shapes, non-finite values, or a mask
    /// entry other than 0 and 1.
    pub fn new(w: Mat, s: Mat, mask: Option<Mat>) -> Result<InhibitionModel> {
        let bad = |what: String| Error::format("inhibition model", what);
        let (m, n) = w.shape();
        if m == 0 || n == 0 || s.shape() != (n, n) {
            return Err(bad(format!(
                "W is {m} × {n}, S {:?} (expected n × n)",
                s.shape()
            )));
        }
        crate::check_finite("W", w.as_slice())?;
        crate::check_finite("S", s.as_slice())?;
        if let Some(k) = &mask {
            if k.shape() != (n, n) || k.as_slice().iter().any(|&v| v != 0.0 && v != 1.0) {
                return Err(bad(format!(
                    "the mask must be {n} × {n} of 0s and 1s (it is {:?})",
                    k.shape()
                )));
            }
        }
        Ok(InhibitionModel { w, s, mask })
    }

    /// Dictionary W, m × n (one atom per column).
    pub fn w(&self) -> &Mat {
        &self.w
    }
    /// Inhibition matrix S, n × n.
    pub fn s(&self) -> &Mat {
        &self.s
    }
    /// The structural mask of S, if any.
    pub fn mask(&self) -> Option<&Mat> {
        self.mask.as_ref()
    }
}

/// Code inference used while training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InhibitionInference {
    /// Cyclic coordinate descent ([`inhibited_codes`]): exact per-coordinate minimisation.
    /// From zero codes with strong inhibition, the units swept first switch on first and
    /// silence the units they inhibit, so early indices are favoured.
    CoordinateDescent,
    /// ISTA-style steps on every unit at once ([`inhibited_codes_ista`]): no ordering
    /// bias, more iterations.
    Ista,
}

/// Hyper-parameters.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `lambda` | 0.1 | L1 weight | ≥ 0 |
/// | `batch` | 100 | minibatch | ≥ 1 |
/// | `lr_w` | 0.05 | SGD rate of W | > 0 |
/// | `lr_s` | 0.05 | ascent rate of S (0 keeps S fixed) | ≥ 0 |
/// | `beta` | 1.0 | bound on each S_ij when learning | > 0 |
/// | `sweeps` | 50 | inference sweeps (or ISTA iterations) per example | ≥ 1 |
/// | `inference` | coordinate descent | code inference during training | |
/// | `epochs` | 20 | passes (maximum under a time budget) | ≥ 1 |
/// | `time_budget` | none | seconds | > 0 |
/// | `seed` | 0 | shuffling | |
#[derive(Clone, Debug, PartialEq)]
pub struct InhibitionConfig {
    /// L1 weight λ.
    pub lambda: f32,
    /// Minibatch size.
    pub batch: usize,
    /// Learning rate of W.
    pub lr_w: f32,
    /// Ascent rate of S.
    pub lr_s: f32,
    /// Bound on S entries.
    pub beta: f32,
    /// Inference sweeps.
    pub sweeps: usize,
    /// Inference method.
    pub inference: InhibitionInference,
    /// Passes over the data.
    pub epochs: usize,
    /// Wall-clock budget.
    pub time_budget: Option<f64>,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for InhibitionConfig {
    fn default() -> Self {
        InhibitionConfig {
            lambda: 0.1,
            batch: 100,
            lr_w: 0.05,
            lr_s: 0.05,
            beta: 1.0,
            sweeps: 50,
            inference: InhibitionInference::CoordinateDescent,
            epochs: 20,
            time_budget: None,
            seed: 0,
        }
    }
}

/// Trains `model` on the rows of `x`; `on_epoch(epoch, stats of the epoch, seconds)`.
/// Returns the statistics of the last epoch (sums over its examples, mean nnz).
///
/// # Errors
/// Invalid settings or data, or a non-finite energy.
pub fn train_inhibition(
    model: &mut InhibitionModel,
    x: &Mat,
    cfg: &InhibitionConfig,
    on_epoch: impl FnMut(usize, &InhibitionStats, f64),
) -> Result<InhibitionStats> {
    train_inhibition_with(model, x, cfg, &Checkpointing::default(), on_epoch)
}

/// [`train_inhibition`] with checkpoints and resumption (see [`Checkpointing`]); exact
/// without a time budget.
///
/// # Errors
/// As [`train_inhibition`], plus checkpoint errors and [`Error::Interrupted`].
pub fn train_inhibition_with(
    model: &mut InhibitionModel,
    x: &Mat,
    cfg: &InhibitionConfig,
    ckpt: &Checkpointing,
    mut on_epoch: impl FnMut(usize, &InhibitionStats, f64),
) -> Result<InhibitionStats> {
    if cfg.batch == 0
        || cfg.epochs == 0
        || cfg.sweeps == 0
        || !(cfg.lr_w > 0.0)
        || !(cfg.lr_s >= 0.0)
        || !(cfg.beta > 0.0)
        || !(cfg.lambda >= 0.0)
    {
        return Err(Error::param(
            "inhibition config",
            format!(
                "{}: sizes ≥ 1, lr_w > 0, lr_s ≥ 0, β > 0, λ ≥ 0",
                fields_fingerprint(&cfg.fields())
            ),
        ));
    }
    if x.ncols() != model.w.nrows() || x.nrows() == 0 {
        return Err(Error::param(
            "data",
            format!(
                "{:?} inputs for a dictionary of {:?}",
                x.shape(),
                model.w.shape()
            ),
        ));
    }
    let n = model.w.ncols();
    let total: f32 = model.s.as_slice().iter().sum();
    let start = Instant::now();
    let m = model.w.nrows();
    let mut fingerprint = fields_fingerprint(&cfg.fields());
    fingerprint.push_str(&format!(
        " data {:?} units {n} mask {}",
        x.shape(),
        model.mask.is_some()
    ));
    let ck = LoopCheckpointer::new(ckpt, "inhibition", fingerprint)?
        .bounds(cfg.epochs, x.nrows().div_ceil(cfg.batch));
    let mut pos = ck.resume(None, |t| {
        model.w = Mat::from_vec(m, n, take_tensor(t, "W", m * n)?);
        model.s = Mat::from_vec(n, n, take_tensor(t, "S", n * n)?);
        Ok(())
    })?;
    // S's total is fixed at the start of the run (and kept in the checkpoint).
    let total = pos.sums.get(5).map_or(total, |&t| t as f32);
    let mut family = InhibitionLoop {
        dw: Mat::zeros(m, n),
        ds: Mat::zeros(n, n),
        xb: Mat::zeros(0, x.ncols()),
        zb: Mat::zeros(0, n),
        model,
        x,
        cfg,
        total,
        sum: InhibitionStats::default(),
        seen: 0,
        last: InhibitionStats::default(),
        on_epoch: &mut on_epoch,
    };
    let plan = EpochLoop {
        rows: x.nrows(),
        batch: cfg.batch,
        epochs: cfg.epochs,
        seed: cfg.seed,
        budget: cfg.time_budget,
        start,
        // Codes come from an inference, not an encoder: no unit is dead for good.
        detect_collapse: false,
        checkpoints: &ck,
    };
    plan.run(&mut pos, &mut family)?;
    Ok(family.last)
}

impl InhibitionConfig {
    /// Every setting as `(name, value)`: the checkpoint fingerprint (explicit, so that a
    /// renamed field or a changed `Debug` format does not orphan checkpoints).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("lambda", self.lambda.to_string()),
            ("batch", self.batch.to_string()),
            ("lr_w", self.lr_w.to_string()),
            ("lr_s", self.lr_s.to_string()),
            ("beta", self.beta.to_string()),
            ("sweeps", self.sweeps.to_string()),
            (
                "inference",
                match self.inference {
                    InhibitionInference::CoordinateDescent => "cd".into(),
                    InhibitionInference::Ista => "ista".into(),
                },
            ),
            ("epochs", self.epochs.to_string()),
            (
                "time_budget",
                self.time_budget.map_or("none".into(), |t| t.to_string()),
            ),
            ("seed", self.seed.to_string()),
        ]
    }
}

/// Lateral inhibition's part of the shared loop.
struct InhibitionLoop<'a, F> {
    model: &'a mut InhibitionModel,
    x: &'a Mat,
    cfg: &'a InhibitionConfig,
    dw: Mat,
    ds: Mat,
    xb: Mat,
    zb: Mat,
    /// S's fixed total.
    total: f32,
    /// Statistics sums of the epoch in progress, over `seen` examples.
    sum: InhibitionStats,
    seen: usize,
    /// Those of the last reported epoch.
    last: InhibitionStats,
    on_epoch: &'a mut F,
}

impl<F> InhibitionLoop<'_, F>
where
    F: FnMut(usize, &InhibitionStats, f64),
{
    /// Reports the epoch's statistics (means per example) if it saw any example.
    fn report(&mut self, epoch: usize, seconds: f64) {
        if self.seen > 0 {
            let mut sum = self.sum.clone();
            sum.mean_nnz /= self.seen as f64;
            sum.sweeps /= self.seen as f64;
            (self.on_epoch)(epoch + 1, &sum, seconds);
            self.last = sum;
        }
    }
}

impl<F: FnMut(usize, &InhibitionStats, f64)> LoopFamily for InhibitionLoop<'_, F> {
    fn begin_epoch(&mut self, _epoch: usize, pos: &LoopPosition) {
        (self.sum, self.seen) = match pos.sums[..] {
            [e, r, z, w, c, _] => (
                InhibitionStats {
                    energy: e,
                    reconstruction: r,
                    mean_nnz: z,
                    sweeps: w,
                },
                c as usize,
            ),
            _ => (InhibitionStats::default(), 0),
        };
    }

    fn step(&mut self, idx: &[usize], _progress: f64, pos: &mut LoopPosition) -> Result<()> {
        let (cfg, model) = (self.cfg, &mut *self.model);
        gather_rows(self.x, idx, &mut self.xb);
        self.zb.resize_rows(idx.len());
        self.zb.fill(0.0);
        let infer = match cfg.inference {
            InhibitionInference::CoordinateDescent => inhibited_codes,
            InhibitionInference::Ista => inhibited_codes_ista,
        };
        let st = infer(
            &model.w,
            &model.s,
            &self.xb,
            &mut self.zb,
            cfg.lambda,
            cfg.sweeps,
            1e-3,
        )?;
        if !st.energy.is_finite() {
            return Err(Error::Diverged {
                step: pos.step,
                what: "energy".into(),
            });
        }
        inhibition_gradients(&model.w, &self.xb, &self.zb, &mut self.dw, &mut self.ds);
        crate::linalg::axpy(-cfg.lr_w, self.dw.as_slice(), model.w.as_mut_slice());
        let mut wt = model.w.transposed();
        for col in wt.rows_mut() {
            set_norm(col, 1.0);
        }
        model.w = wt.transposed();
        if cfg.lr_s > 0.0 {
            crate::linalg::axpy(cfg.lr_s, self.ds.as_slice(), model.s.as_mut_slice());
            project_inhibition(&mut model.s, model.mask.as_ref(), cfg.beta, self.total);
        }
        let sum = &mut self.sum;
        sum.energy += st.energy;
        sum.reconstruction += st.reconstruction;
        sum.mean_nnz += st.mean_nnz * idx.len() as f64;
        sum.sweeps += st.sweeps * idx.len() as f64;
        self.seen += idx.len();
        pos.step += 1;
        pos.sums = vec![
            sum.energy,
            sum.reconstruction,
            sum.mean_nnz,
            sum.sweeps,
            self.seen as f64,
            self.total as f64,
        ];
        Ok(())
    }

    fn end_epoch(&mut self, epoch: usize, pos: &mut LoopPosition, seconds: f64) -> f64 {
        self.report(epoch, seconds);
        pos.sums = vec![0.0, 0.0, 0.0, 0.0, 0.0, self.total as f64];
        self.sum.energy / self.seen.max(1) as f64
    }

    fn out_of_time(&mut self, epoch: usize, seconds: f64) {
        self.report(epoch, seconds);
    }

    fn tensors(&self) -> Vec<OwnedTensor> {
        let (m, n) = self.model.w.shape();
        vec![
            ("W".into(), vec![m, n], self.model.w.as_slice().to_vec()),
            ("S".into(), vec![n, n], self.model.s.as_slice().to_vec()),
        ]
    }

    fn optimizer(&self) -> Option<&OptimizerState> {
        None
    }
}

//! The Discriminative Recurrent Sparse Auto-Encoder (Rolfe & LeCun, ICLR 2013).
//!
//! Parameters: encoder `E` (n × m), explaining-away matrix `S` (n × n), threshold `b` (n),
//! decoder `D` (m × n), classifier `C` (k × n). Encoder, on a batch X (B × m):
//!
//! `A = X Eᵀ − 1bᵀ`, `Z¹ = max(0, A)`, `Zᵗ = max(0, A + Zᵗ⁻¹ Sᵀ)`, t = 2..T
//!
//! (this is `z⁰ = 0, z^{t+1} = max(0, Ex + Sz^t − b)` with T steps). Losses, averaged over the
//! batch: `L_U = w_r·½‖x − D zᵀ‖² + λ‖zᵀ‖₁`, `L_S = w_s·(−log softmax(C ẑ)_y)` with
//! `ẑ = zᵀ/‖zᵀ‖`. With `E = αDᵀ`, `S = I − αDᵀD`, `b = αλ` the encoder is non-negative ISTA.
//!
//! The backward pass is derived by hand (see `../shared/docs/GRADIENTS.md`) and checked
//! against central finite differences of an independent f64 forward pass in the tests.
//!
//! One file on purpose (the house layout of a model file): parameters, forward,
//! hand-derived backward and constraints, top to bottom; its finite-difference tests are in
//! `tests/drsae_gradients.rs`.

use super::recurrence::{
    block, grad_input, grad_recurrent, unroll_backward, unroll_forward, RecurrenceScratch,
};
use crate::kernels::{Shrink, Theta};
use crate::linalg::{
    clip_columns, clip_rows, dot, gemm, norm, rank_update_cols, rank_update_rows, Mat, MatRef,
};
use rand::Rng;

/// Floor on `‖zᵀ‖` in the normalisation `ẑ = zᵀ / max(‖zᵀ‖, ε)`.
pub const NORM_EPS: f32 = 1e-6;

/// Bound on the norm of every decoder column, `‖D_{:,i}‖ ≤ 1`.
pub const D_MAX_NORM: f32 = 1.0;

/// Norm of every classifier row, `‖C_{i,:}‖ = 5`.
pub const C_NORM: f32 = 5.0;

/// A DrSAE's parameters.
///
/// The tensors are read through accessors ([`e`](Self::e), [`s`](Self::s), …) and changed
/// only by training steps and [`project`](Self::project), so a trained network keeps its
/// constraints (`‖D_{:,i}‖ ≤ 1`, `‖E_{i,:}‖ ≤ e_max`, `‖C_{i,:}‖ = 5`). To build one from raw
/// tensors, or to edit them, go through [`DrsaeParts`] ([`into_parts`](Self::into_parts) /
/// [`from_parts`](Self::from_parts)), which checks the shapes and values.
#[derive(Clone, Debug, PartialEq)]
pub struct DrsaeNetwork {
    /// Encoder E, n × m.
    pub(crate) e: Mat,
    /// Explaining-away matrix S, n × n.
    pub(crate) s: Mat,
    /// Threshold b, length n.
    pub(crate) b: Vec<f32>,
    /// Decoder D, m × n (one dictionary atom per column).
    pub(crate) d: Mat,
    /// Classifier C, k × n.
    pub(crate) c: Mat,
    /// Number of encoder steps T (≥ 1).
    pub(crate) steps: usize,
}

/// A DrSAE's tensors by value: what [`DrsaeNetwork::into_parts`] gives and
/// [`DrsaeNetwork::from_parts`] checks. No constraint is imposed on the values; call
/// [`DrsaeNetwork::project`] for that.
#[derive(Clone, Debug, PartialEq)]
pub struct DrsaeParts {
    /// Encoder E, n × m.
    pub e: Mat,
    /// Explaining-away matrix S, n × n.
    pub s: Mat,
    /// Threshold b, length n.
    pub b: Vec<f32>,
    /// Decoder D, m × n.
    pub d: Mat,
    /// Classifier C, k × n.
    pub c: Mat,
    /// Encoder steps T, in 1..=[`MAX_STEPS`](crate::train::MAX_STEPS).
    pub steps: usize,
}

/// Weights of the loss terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossWeights {
    /// `w_r`, the weight of `½‖x − Dz‖²`.
    pub reconstruction: f32,
    /// `λ`, the weight of `‖z‖₁`.
    pub sparsity: f32,
    /// `w_s`, the weight of the classification loss (0 in the unsupervised phase).
    pub classification: f32,
}

impl LossWeights {
    /// The authors' code: reconstruction 5, L1 0.09, classification 1 (phase 2).
    pub fn paper() -> Self {
        LossWeights {
            reconstruction: 5.0,
            sparsity: 0.09,
            classification: 1.0,
        }
    }
    /// The same without the classification term (phase 1).
    pub fn unsupervised(self) -> Self {
        LossWeights {
            classification: 0.0,
            ..self
        }
    }
}

/// Gradients of the loss with respect to each parameter (same shapes).
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct DrsaeGrads {
    pub e: Mat,
    pub s: Mat,
    pub b: Vec<f32>,
    pub d: Mat,
    pub c: Mat,
}

/// Batch-level results of a forward pass (sums over the batch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// Σ ½‖x − Dz‖² (unweighted).
    pub reconstruction: f64,
    /// Σ ‖z‖₁ (unweighted).
    pub l1: f64,
    /// Σ −log p_y (unweighted).
    pub cross_entropy: f64,
    /// Number of examples whose arg-max class equals the label.
    pub correct: usize,
    /// Examples in the batch.
    pub count: usize,
}

impl BatchLoss {
    /// The weighted loss averaged over the batch.
    pub fn mean(&self, w: &LossWeights) -> f64 {
        (w.reconstruction as f64 * self.reconstruction
            + w.sparsity as f64 * self.l1
            + w.classification as f64 * self.cross_entropy)
            / self.count.max(1) as f64
    }
}

/// Buffers for one batch size, allocated once and reused across steps.
#[derive(Clone, Debug, Default)]
pub struct DrsaeWorkspace {
    a: Mat,
    zs: Mat,
    r: Mat,
    zhat: Mat,
    norms: Vec<f32>,
    p: Mat,
    g: Mat,
    ghat: Mat,
    du: Mat,
    da: Mat,
    recurrence: RecurrenceScratch,
}

impl DrsaeWorkspace {
    fn shape(&mut self, model: &DrsaeNetwork, batch: usize) {
        let (n, m, k) = (model.hidden(), model.input_dim(), model.classes());
        let fit = |mat: &mut Mat, rows: usize, cols: usize| {
            if mat.ncols() != cols {
                *mat = Mat::zeros(rows, cols);
            } else {
                mat.resize_rows(rows);
            }
        };
        fit(&mut self.a, batch, n);
        fit(&mut self.zs, model.steps * batch, n);
        fit(&mut self.r, batch, m);
        fit(&mut self.zhat, batch, n);
        fit(&mut self.p, batch, k);
        fit(&mut self.g, batch, n);
        fit(&mut self.ghat, batch, n);
        fit(&mut self.du, model.steps * batch, n);
        fit(&mut self.da, batch, n);
        self.norms.resize(batch, 0.0);
    }

    /// The final codes `zᵀ` of the last forward pass (B × n).
    pub fn codes(&self, batch: usize, steps: usize) -> crate::linalg::MatRef<'_> {
        block(&self.zs, steps - 1, batch)
    }
    /// The codes after step `t` (0-based, `t < steps`) of the last forward pass (B × n):
    /// `t = steps − 1` gives [`DrsaeWorkspace::codes`].
    pub fn step_codes(&self, batch: usize, t: usize) -> crate::linalg::MatRef<'_> {
        block(&self.zs, t, batch)
    }
    /// The class probabilities of the last forward pass (B × k).
    pub fn probabilities(&self) -> &Mat {
        &self.p
    }
}

impl DrsaeNetwork {
    /// Initialises as in the authors' code: each decoder column is small uniform noise plus
    /// 0.25 × a random row of `data` (m columns), normalised to unit length; `E = α₀Dᵀ`,
    /// `S = I − α₀DᵀD` with `α₀ = 1.25/max(T, 11)` (the authors' 1.25/11 for their T = 11;
    /// never larger, see the code); `b = 1e-5`; `C` random with rows of norm 5.
    ///
    /// # Panics
    /// If `data` is empty or `steps`, `hidden` or `classes` is 0.
    pub fn init<R: Rng + ?Sized>(
        data: &Mat,
        hidden: usize,
        classes: usize,
        steps: usize,
        rng: &mut R,
    ) -> DrsaeNetwork {
        assert!(
            data.nrows() > 0 && hidden > 0 && classes > 0 && steps > 0,
            "empty data or zero size"
        );
        let m = data.ncols();
        let mut d = Mat::zeros(m, hidden);
        for j in 0..hidden {
            let row = data.row(rng.gen_range(0..data.nrows()));
            let mut col: Vec<f32> = row
                .iter()
                .map(|&v| 0.25 * v + rng.gen_range(-0.01..0.01))
                .collect();
            let nc = norm(&col).max(1e-12);
            col.iter_mut().for_each(|v| *v /= nc);
            for i in 0..m {
                d[(i, j)] = col[i];
            }
        }
        // The authors' α₀ = 1.25/11 was chosen for T = 11. For fewer steps 1.25/T is so far
        // above 1/L that the second step's inhibition silences every unit (all codes zero, no
        // gradient: observed at T = 2), so α₀ never exceeds 1.25/11.
        let alpha = 1.25 / steps.max(11) as f32;
        let mut e = d.transposed();
        e.as_mut_slice().iter_mut().for_each(|v| *v *= alpha);
        let mut s = Mat::identity(hidden);
        gemm(-alpha, d.t(), d.view(), 1.0, s.view_mut());
        let mut c = Mat::random(classes, hidden, rand_distr::StandardNormal, rng);
        set_row_norms(&mut c, C_NORM);
        DrsaeNetwork {
            e,
            s,
            b: vec![1e-5; hidden],
            d,
            c,
            steps,
        }
    }

    /// A network from its tensors.
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) if a size is 0, the shapes disagree (E n × m,
    /// S n × n, b n, D m × n, C k × n), `steps` is outside 1..=`MAX_STEPS`, or a value is
    /// not finite.
    ///
    /// # Examples
    /// ```
    /// use drsae::models::{DrsaeNetwork, DrsaeParts};
    /// use drsae::linalg::Mat;
    /// let data = Mat::from_fn(4, 3, |i, j| (i + j) as f32);
    /// let net = DrsaeNetwork::init(&data, 5, 2, 3, &mut drsae::rng::seeded(0));
    /// let mut parts = net.clone().into_parts();
    /// assert!(DrsaeNetwork::from_parts(parts.clone()).unwrap() == net);
    /// parts.b.pop(); // b no longer has one entry per unit
    /// assert!(DrsaeNetwork::from_parts(parts).is_err());
    /// ```
    pub fn from_parts(p: DrsaeParts) -> crate::Result<DrsaeNetwork> {
        let bad = |what: String| crate::Error::format("DrSAE network", what);
        let (n, m) = p.e.shape();
        let k = p.c.nrows();
        if n == 0 || m == 0 || k == 0 {
            return Err(bad(format!("empty tensor: E {n} × {m}, C has {k} rows")));
        }
        if p.s.shape() != (n, n) || p.b.len() != n || p.d.shape() != (m, n) || p.c.shape() != (k, n)
        {
            return Err(bad(format!(
                "inconsistent shapes: E {:?}, S {:?}, b [{}], D {:?}, C {:?} (expected E n × m, \
                 S n × n, b n, D m × n, C k × n)",
                p.e.shape(),
                p.s.shape(),
                p.b.len(),
                p.d.shape(),
                p.c.shape()
            )));
        }
        if !(1..=crate::train::MAX_STEPS).contains(&p.steps) {
            return Err(bad(format!(
                "steps = {} not in 1..={}",
                p.steps,
                crate::train::MAX_STEPS
            )));
        }
        for (name, v) in [
            ("E", p.e.as_slice()),
            ("S", p.s.as_slice()),
            ("b", &p.b[..]),
            ("D", p.d.as_slice()),
            ("C", p.c.as_slice()),
        ] {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(bad(format!("{name}[{i}] = {} is not finite", v[i])));
            }
        }
        Ok(DrsaeNetwork {
            e: p.e,
            s: p.s,
            b: p.b,
            d: p.d,
            c: p.c,
            steps: p.steps,
        })
    }

    /// The network's tensors by value (the inverse of [`from_parts`](Self::from_parts)).
    pub fn into_parts(self) -> DrsaeParts {
        DrsaeParts {
            e: self.e,
            s: self.s,
            b: self.b,
            d: self.d,
            c: self.c,
            steps: self.steps,
        }
    }

    /// Encoder E, n × m.
    pub fn e(&self) -> &Mat {
        &self.e
    }
    /// Explaining-away matrix S, n × n.
    pub fn s(&self) -> &Mat {
        &self.s
    }
    /// Thresholds b, one per unit.
    pub fn b(&self) -> &[f32] {
        &self.b
    }
    /// Decoder D, m × n (one dictionary atom per column).
    pub fn d(&self) -> &Mat {
        &self.d
    }
    /// Classifier C, k × n.
    pub fn c(&self) -> &Mat {
        &self.c
    }
    /// Encoder steps T.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Number of hidden units n.
    pub fn hidden(&self) -> usize {
        self.e.nrows()
    }
    /// Input dimension m.
    pub fn input_dim(&self) -> usize {
        self.e.ncols()
    }
    /// Number of classes k.
    pub fn classes(&self) -> usize {
        self.c.nrows()
    }

    /// Zero gradients of this model's shapes.
    pub fn zero_grads(&self) -> DrsaeGrads {
        DrsaeGrads {
            e: Mat::zeros(self.e.nrows(), self.e.ncols()),
            s: Mat::zeros(self.s.nrows(), self.s.ncols()),
            b: vec![0.0; self.b.len()],
            d: Mat::zeros(self.d.nrows(), self.d.ncols()),
            c: Mat::zeros(self.c.nrows(), self.c.ncols()),
        }
    }

    /// Runs the encoder, the decoder and the classifier on the batch `x` (B × m) and returns
    /// the batch's losses; `labels` (if given) are used for the cross-entropy and accuracy.
    #[track_caller]
    pub fn forward(&self, x: &Mat, labels: Option<&[u8]>, ws: &mut DrsaeWorkspace) -> BatchLoss {
        let batch = x.nrows();
        assert_eq!(
            x.ncols(),
            self.input_dim(),
            "x has {} columns, the model {} inputs",
            x.ncols(),
            self.input_dim()
        );
        if let Some(l) = labels {
            assert_eq!(l.len(), batch, "{} labels for {batch} examples", l.len());
        }
        ws.shape(self, batch);
        let n = self.hidden();
        // A = X Eᵀ − 1bᵀ
        gemm(1.0, x.view(), self.e.t(), 0.0, ws.a.view_mut());
        for row in ws.a.rows_mut() {
            row.iter_mut().zip(&self.b).for_each(|(a, b)| *a -= b);
        }
        unroll_forward(
            &ws.a,
            &self.s,
            Shrink::NonNegative,
            Theta::Uniform(0.0),
            self.steps,
            &mut ws.zs,
            &mut ws.recurrence,
        );
        let zt = block(&ws.zs, self.steps - 1, batch);
        // R = X − Zᵀ Dᵀ
        ws.r.copy_from(x);
        gemm(-1.0, zt, self.d.t(), 1.0, ws.r.view_mut());
        let mut loss = BatchLoss {
            count: batch,
            ..Default::default()
        };
        loss.reconstruction = ws.r.rows().map(|r| 0.5 * dot(r, r) as f64).sum();
        loss.l1 = ws.zs.as_slice()[(self.steps - 1) * batch * n..]
            .iter()
            .map(|&v| v as f64)
            .sum();
        // ẑ = z / max(‖z‖, ε); P = softmax(ẑ Cᵀ)
        for i in 0..batch {
            let zi = &ws.zs.as_slice()[((self.steps - 1) * batch + i) * n..][..n];
            let r = norm(zi);
            ws.norms[i] = r;
            let inv = 1.0 / r.max(NORM_EPS);
            ws.zhat
                .row_mut(i)
                .iter_mut()
                .zip(zi)
                .for_each(|(h, z)| *h = z * inv);
        }
        gemm(1.0, ws.zhat.view(), self.c.t(), 0.0, ws.p.view_mut());
        let (xent, correct) = super::softmax::softmax_rows(&mut ws.p, labels);
        if labels.is_some() {
            loss.cross_entropy = xent;
            loss.correct = correct;
        }
        loss
    }

    /// Back-propagates the batch loss of the last [`DrsaeNetwork::forward`] (same `x`, `labels`,
    /// `ws`), writing the gradient of the **batch mean** of the weighted loss into `grads`.
    pub fn backward(
        &self,
        x: &Mat,
        labels: Option<&[u8]>,
        w: &LossWeights,
        ws: &mut DrsaeWorkspace,
        grads: &mut DrsaeGrads,
    ) {
        backward_into(&mut Store { model: self, grads }, x, labels, w, ws);
    }

    /// One plain SGD step with the constraints, i.e. [`DrsaeNetwork::backward`], `p ← p − rate·∂p`
    /// for every parameter and [`DrsaeNetwork::project`], fused: each gradient product accumulates
    /// `−rate·gradient` straight into its parameter, so no gradient is stored and read back,
    /// and for minibatches of up to 12 the decoder's backward product, its update and its
    /// column bound are one pass over D, the encoder's update and row bound one pass over E
    /// ([`rank_update_cols`], [`rank_update_rows`]). `rates` are the learning rates of E, S,
    /// b, D and C (multipliers included). Each parameter is updated only after its last use
    /// in the backward pass, so the result is that of the unfused sequence up to
    /// floating-point rounding (tested).
    #[allow(clippy::too_many_arguments)]
    pub fn sgd_step(
        &mut self,
        x: &Mat,
        labels: Option<&[u8]>,
        w: &LossWeights,
        ws: &mut DrsaeWorkspace,
        rates: [f32; 5],
        e_max: f32,
    ) {
        backward_into(
            &mut FusedSgd {
                model: self,
                rates,
                e_max,
            },
            x,
            labels,
            w,
            ws,
        );
    }

    /// Runs the forward pass over `x` in batches of `batch` rows (one reused buffer), handing
    /// each batch's first row index and workspace to `f`.
    fn forward_batches(
        &self,
        x: &Mat,
        batch: usize,
        mut f: impl FnMut(usize, usize, &DrsaeWorkspace),
    ) {
        let batch = batch.max(1);
        let mut ws = DrsaeWorkspace::default();
        let mut xb = Mat::zeros(0, x.ncols());
        for start in (0..x.nrows()).step_by(batch) {
            let end = (start + batch).min(x.nrows());
            xb.resize_rows(end - start);
            xb.as_mut_slice()
                .copy_from_slice(&x.as_slice()[start * x.ncols()..end * x.ncols()]);
            self.forward(&xb, None, &mut ws);
            f(start, end - start, &ws);
        }
    }

    /// The codes `zᵀ` of every row of `x`, in batches of `batch` rows.
    pub fn encode(&self, x: &Mat, batch: usize) -> Mat {
        let mut out = Mat::zeros(x.nrows(), self.hidden());
        let n = self.hidden();
        self.forward_batches(x, batch, |start, rows, ws| {
            let codes = ws.codes(rows, self.steps);
            for k in 0..rows {
                for j in 0..n {
                    out[(start + k, j)] = codes.get(k, j);
                }
            }
        });
        out
    }

    /// The class probabilities `softmax(C ẑ)` of every row of `x` (rows × k), in batches of
    /// `batch` rows.
    pub fn probabilities(&self, x: &Mat, batch: usize) -> Mat {
        let mut out = Mat::zeros(x.nrows(), self.classes());
        self.forward_batches(x, batch, |start, rows, ws| {
            for k in 0..rows {
                out.row_mut(start + k).copy_from_slice(ws.p.row(k));
            }
        });
        out
    }

    /// The reconstructions `D z` of codes `z` (one code per row): rows × m.
    pub fn decode(&self, z: &Mat) -> Mat {
        assert_eq!(
            z.ncols(),
            self.hidden(),
            "codes of {} units for a model of {}",
            z.ncols(),
            self.hidden()
        );
        let mut out = Mat::zeros(z.nrows(), self.input_dim());
        gemm(1.0, z.view(), self.d.t(), 0.0, out.view_mut());
        out
    }

    /// Predicted class of every row of `x` and the error rate against `labels` (percent).
    pub fn evaluate(&self, x: &Mat, labels: &[u8], batch: usize) -> (Vec<u8>, f64) {
        let mut pred = Vec::with_capacity(x.nrows());
        self.forward_batches(x, batch, |_, _, ws| {
            for row in ws.p.rows() {
                pred.push(
                    row.iter()
                        .enumerate()
                        .fold(0, |a, (j, &v)| if v > row[a] { j } else { a })
                        as u8,
                );
            }
        });
        let wrong = pred.iter().zip(labels).filter(|(p, l)| p != l).count();
        (pred, 100.0 * wrong as f64 / labels.len().max(1) as f64)
    }

    /// Applies the constraints: `‖D_{:,i}‖ ≤ 1`, `‖E_{i,:}‖ ≤ e_max`, `‖C_{i,:}‖ = 5`.
    pub fn project(&mut self, e_max: f32) {
        clip_columns(self.d.view_mut(), D_MAX_NORM);
        clip_rows(self.e.view_mut(), e_max);
        set_row_norms(&mut self.c, C_NORM);
    }

    /// For every unit, the angle (radians) between encoder row `E_i` and decoder column `D_i`.
    pub fn encoder_decoder_angles(&self) -> Vec<f32> {
        (0..self.hidden())
            .map(|i| {
                let e = self.e.row(i);
                let dcol: Vec<f32> = (0..self.input_dim()).map(|r| self.d[(r, i)]).collect();
                let c = dot(e, &dcol) / (norm(e) * norm(&dcol)).max(1e-20);
                c.clamp(-1.0, 1.0).acos()
            })
            .collect()
    }
}

/// Which parameter a gradient belongs to.
/// Where the backward pass sends each parameter's gradient.
trait GradSink {
    fn model(&self) -> &DrsaeNetwork;
    /// The gradient of C is `G_logitsᵀ Ẑ`.
    fn classifier(&mut self, g_logits: &Mat, zhat: &Mat);
    /// C has no gradient (unsupervised loss).
    fn no_classifier(&mut self);
    /// `G ← G + β·R·D` with D before any change, and the gradient of D is `β·Rᵀ Zᵀ`.
    fn decoder(&mut self, beta: f32, r: &Mat, zt: MatRef<'_>, g: &mut Mat);
    /// The gradient of S is `Σ_{t≥2} δUᵗᵀ Zᵗ⁻¹`.
    fn recurrent(&mut self, du: &Mat, zs: &Mat, batch: usize);
    /// The gradient of E is `∂Aᵀ X`, that of b is `−Σ_rows ∂A`.
    fn encoder(&mut self, da: &Mat, x: &Mat);
}

struct Store<'a> {
    model: &'a DrsaeNetwork,
    grads: &'a mut DrsaeGrads,
}

impl GradSink for Store<'_> {
    fn model(&self) -> &DrsaeNetwork {
        self.model
    }
    fn classifier(&mut self, g_logits: &Mat, zhat: &Mat) {
        gemm(1.0, g_logits.t(), zhat.view(), 0.0, self.grads.c.view_mut());
    }
    fn no_classifier(&mut self) {
        self.grads.c.fill(0.0);
    }
    fn decoder(&mut self, beta: f32, r: &Mat, zt: MatRef<'_>, g: &mut Mat) {
        gemm(beta, r.view(), self.model.d.view(), 1.0, g.view_mut());
        gemm(beta, r.t(), zt, 0.0, self.grads.d.view_mut());
    }
    fn recurrent(&mut self, du: &Mat, zs: &Mat, batch: usize) {
        grad_recurrent(du, zs, self.model.steps, batch, 1.0, 0.0, &mut self.grads.s);
    }
    fn encoder(&mut self, da: &Mat, x: &Mat) {
        gemm(1.0, da.t(), x.view(), 0.0, self.grads.e.view_mut());
        self.grads.b.iter_mut().for_each(|v| *v = 0.0);
        for row in da.rows() {
            self.grads.b.iter_mut().zip(row).for_each(|(g, d)| *g -= d);
        }
    }
}

/// The SGD step with the constraints, fused into the backward pass: each gradient product
/// accumulates `−rate·gradient` straight into its parameter, and D's and E's norm bounds
/// are applied by the same pass over the matrix ([`rank_update_cols`],
/// [`rank_update_rows`]).
struct FusedSgd<'a> {
    model: &'a mut DrsaeNetwork,
    rates: [f32; 5],
    e_max: f32,
}

impl GradSink for FusedSgd<'_> {
    fn model(&self) -> &DrsaeNetwork {
        self.model
    }
    fn classifier(&mut self, g_logits: &Mat, zhat: &Mat) {
        let rate = self.rates[4];
        gemm(
            -rate,
            g_logits.t(),
            zhat.view(),
            1.0,
            self.model.c.view_mut(),
        );
        set_row_norms(&mut self.model.c, C_NORM);
    }
    fn no_classifier(&mut self) {
        set_row_norms(&mut self.model.c, C_NORM);
    }
    fn decoder(&mut self, beta: f32, r: &Mat, zt: MatRef<'_>, g: &mut Mat) {
        let rate = self.rates[3];
        rank_update_cols(
            -rate * beta,
            r.view(),
            zt,
            self.model.d.view_mut(),
            Some((beta, g.view_mut())),
            Some(D_MAX_NORM),
        );
    }
    fn recurrent(&mut self, du: &Mat, zs: &Mat, batch: usize) {
        let steps = self.model.steps;
        grad_recurrent(du, zs, steps, batch, -self.rates[1], 1.0, &mut self.model.s);
    }
    fn encoder(&mut self, da: &Mat, x: &Mat) {
        let rate = self.rates[0];
        rank_update_rows(
            -rate,
            da.view(),
            x.view(),
            self.model.e.view_mut(),
            Some(self.e_max),
        );
        let rate = self.rates[2];
        for row in da.rows() {
            self.model
                .b
                .iter_mut()
                .zip(row)
                .for_each(|(b, d)| *b += rate * d);
        }
    }
}

/// Scales every row of `c` to norm `target` (the classifier constraint).
fn set_row_norms(c: &mut Mat, target: f32) {
    for row in c.rows_mut() {
        crate::linalg::set_norm(row, target);
    }
}

/// The hand-derived backward pass (see the module docs and `GRADIENTS.md`), sending each
/// gradient to `sink` right after the parameter's last use.
fn backward_into(
    sink: &mut impl GradSink,
    x: &Mat,
    labels: Option<&[u8]>,
    w: &LossWeights,
    ws: &mut DrsaeWorkspace,
) {
    let batch = x.nrows();
    let (n, steps) = (sink.model().hidden(), sink.model().steps);
    let inv_b = 1.0 / batch as f32;
    let zt_off = (steps - 1) * batch * n;
    // Classifier and normalisation.
    match labels {
        Some(l) if w.classification != 0.0 => {
            for (i, row) in ws.p.rows_mut().enumerate() {
                row[l[i] as usize] -= 1.0;
                row.iter_mut().for_each(|v| *v *= w.classification * inv_b);
            }
            // G_hat = G_logits C (before C changes), then ∂C = G_logitsᵀ Ẑ.
            gemm(
                1.0,
                ws.p.view(),
                sink.model().c.view(),
                0.0,
                ws.ghat.view_mut(),
            );
            sink.classifier(&ws.p, &ws.zhat);
            for i in 0..batch {
                let zh = ws.zhat.row(i);
                let gh = ws.ghat.row(i);
                let proj = dot(zh, gh);
                let inv = 1.0 / ws.norms[i].max(NORM_EPS);
                let g = ws.g.row_mut(i);
                if ws.norms[i] >= NORM_EPS {
                    for j in 0..n {
                        g[j] = (gh[j] - zh[j] * proj) * inv;
                    }
                } else {
                    for j in 0..n {
                        g[j] = gh[j] * inv;
                    }
                }
            }
        }
        _ => {
            sink.no_classifier();
            ws.g.fill(0.0);
        }
    }
    // Reconstruction: Ḡ −= w_r R D (before D changes); ∂D = −w_r Rᵀ Zᵀ (both averaged).
    let zt = MatRef::from_slice(&ws.zs.as_slice()[zt_off..], batch, n);
    sink.decoder(-w.reconstruction * inv_b, &ws.r, zt, &mut ws.g);
    // L1 on the non-negative codes: +λ/B (masked by the ReLU in the backward pass).
    let l1 = w.sparsity * inv_b;
    ws.g.as_mut_slice().iter_mut().for_each(|v| *v += l1);
    // Back-propagation through time (uses S), then ∂S.
    unroll_backward(
        &mut ws.g,
        &sink.model().s,
        &ws.zs,
        steps,
        &mut ws.du,
        &mut ws.recurrence,
    );
    sink.recurrent(&ws.du, &ws.zs, batch);
    grad_input(&ws.du, steps, &mut ws.da);
    // ∂E = ∂Aᵀ X, ∂b = −Σ_rows ∂A.
    sink.encoder(&ws.da, x);
}

//! Group-sparse auto-encoder (Kavukcuoglu, Ranzato, Fergus & LeCun, CVPR 2009; the
//! lecture's ReLU + scaling-layer variant).
//!
//! Encoder `F(x) = g ⊙ σ(W x + d)` with σ = ReLU or tanh and a learned per-unit gain g
//! (the "scaling layer"); linear decoder D (m × n) with unit-norm columns. Loss per
//! example, averaged over the batch:
//!
//! `L = ½‖x − D F(x)‖² + λ Σ_k ‖F(x)_{P_k}‖_w`
//!
//! with fixed groups P_k (disjoint blocks, a wrap-around grid of overlapping pools, or a
//! tree). The backward pass is derived by hand and checked against finite differences.
//!
//! The ReLU is `u < 0 ? 0 : u` on every path (the 8-wide pass taken when the unit count is
//! a multiple of 8, the scalar pass otherwise, and the convolutional model's fused
//! encoder): a NaN pre-activation gives a NaN code, never a silent 0.

use crate::kernels::Groups;
use crate::linalg::{gemm, load8, set_norm, store8, Mat};
use rand::Rng;
use wide::{f32x8, CmpGt, CmpLt};

/// The encoder's non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderForm {
    /// `g ⊙ relu(Wx + d)`.
    Relu,
    /// `g ⊙ tanh(Wx + d)` (PSD's form).
    Tanh,
}

/// Parameters of a group-sparse auto-encoder, read through accessors and changed by
/// training and [`project`](GroupAe::project); [`GroupAeParts`] builds one from raw tensors
/// ([`GroupAe::from_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAe {
    pub(crate) w: Mat,
    pub(crate) bias: Vec<f32>,
    pub(crate) gain: Vec<f32>,
    pub(crate) dec: Mat,
    pub(crate) form: EncoderForm,
    pub(crate) support: Option<Mat>,
    pub(crate) recon_weights: Option<Vec<f32>>,
}

/// A [`GroupAe`]'s tensors by value ([`GroupAe::into_parts`] / [`GroupAe::from_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAeParts {
    /// Encoder filters W, n × m.
    pub w: Mat,
    /// Encoder bias d, length n.
    pub bias: Vec<f32>,
    /// Per-unit gain g ≥ 0, length n.
    pub gain: Vec<f32>,
    /// Decoder D, m × n (training keeps its columns at unit norm).
    pub dec: Mat,
    /// Non-linearity.
    pub form: EncoderForm,
    /// Optional support mask (n × m, entries 0 or 1): W and Dᵀ are zero outside it, which
    /// makes the model locally connected (see [`LocalSheet`](crate::models::LocalSheet)).
    pub support: Option<Mat>,
    /// Optional per-input reconstruction weights w (length m, ≥ 0): the reconstruction
    /// term becomes `½ Σ_i w_i (x − DF(x))_i²`.
    pub recon_weights: Option<Vec<f32>>,
}

/// Gradients of [`GroupAe`]'s parameters.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct GroupAeGrads {
    pub w: Mat,
    pub bias: Vec<f32>,
    pub gain: Vec<f32>,
    pub dec: Mat,
}

/// Reused buffers.
#[derive(Clone, Debug, Default)]
pub struct GroupAeWorkspace {
    u: Mat,
    h: Mat,
    z: Mat,
    r: Mat,
    gz: Mat,
    zc: Mat,
    norms: Vec<f32>,
}

/// Batch sums of the loss terms.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupAeLoss {
    /// Σ ½‖x − Dz‖².
    pub reconstruction: f64,
    /// Σ_rows Σ_k ‖z_{P_k}‖_w (unweighted by λ).
    pub group: f64,
    /// Mean number of groups with a non-zero norm per example.
    pub active_groups: f64,
    /// Examples.
    pub count: usize,
}

impl GroupAeLoss {
    /// `(Σ ½‖r‖² + λ Σ ψ) / count`.
    pub fn mean(&self, lambda: f32) -> f64 {
        (self.reconstruction + lambda as f64 * self.group) / self.count.max(1) as f64
    }
}

impl GroupAe {
    /// Random initialisation: W and D with N(0, 1/m) entries, D's columns normalised, W = Dᵀ
    /// scaled by 0.5, bias 0, gain 1.
    pub fn init<R: Rng + ?Sized>(
        inputs: usize,
        hidden: usize,
        form: EncoderForm,
        rng: &mut R,
    ) -> GroupAe {
        let sd = 1.0 / (inputs as f32).sqrt();
        let mut dec = Mat::random(
            inputs,
            hidden,
            rand_distr::Normal::new(0.0, sd).unwrap(),
            rng,
        );
        normalize_columns(&mut dec);
        let mut w = dec.transposed();
        w.as_mut_slice().iter_mut().for_each(|v| *v *= 0.5);
        GroupAe {
            w,
            bias: vec![0.0; hidden],
            gain: vec![1.0; hidden],
            dec,
            form,
            support: None,
            recon_weights: None,
        }
    }

    /// Restricts W and Dᵀ to `support` (n × m, 0/1 entries) from now on: masks the current
    /// parameters, renormalises D's columns, and masks every later gradient.
    ///
    /// # Errors
    /// If the mask's shape is not n × m, an entry is not 0 or 1, or a unit has no input.
    pub fn with_support(mut self, support: Mat) -> crate::Result<GroupAe> {
        if support.shape() != self.w.shape()
            || support.as_slice().iter().any(|&v| v != 0.0 && v != 1.0)
            || support.rows().any(|r| r.iter().all(|&v| v == 0.0))
        {
            return Err(crate::Error::param(
                "support",
                format!(
                    "mask {:?} must be {:?} with 0/1 entries and at least one input per unit",
                    support.shape(),
                    self.w.shape()
                ),
            ));
        }
        self.support = Some(support);
        self.project();
        Ok(self)
    }

    /// Weights the reconstruction error of input i by `weights[i]`.
    ///
    /// # Errors
    /// If the length is not m or a weight is negative or not finite.
    pub fn with_recon_weights(mut self, weights: Vec<f32>) -> crate::Result<GroupAe> {
        if weights.len() != self.w.ncols() || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
        {
            return Err(crate::Error::param(
                "reconstruction weights",
                format!(
                    "{} weights for {} inputs; each must be finite and ≥ 0",
                    weights.len(),
                    self.w.ncols()
                ),
            ));
        }
        self.recon_weights = Some(weights);
        Ok(self)
    }

    /// A model from its tensors, taken as they are (no projection).
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) on empty or inconsistent shapes, a negative
    /// gain, a mask entry other than 0 and 1, or a negative reconstruction weight;
    /// [`Error::NonFiniteInput`](crate::Error::NonFiniteInput) on a non-finite value.
    pub fn from_parts(p: GroupAeParts) -> crate::Result<GroupAe> {
        let bad = |what: String| crate::Error::format("group auto-encoder", what);
        let (n, m) = p.w.shape();
        if n == 0
            || m == 0
            || p.bias.len() != n
            || p.gain.len() != n
            || p.dec.shape() != (m, n)
            || p.support.as_ref().is_some_and(|s| s.shape() != (n, m))
            || p.recon_weights.as_ref().is_some_and(|r| r.len() != m)
        {
            return Err(bad(format!(
                "inconsistent shapes: W {:?}, bias {}, gain {}, D {:?} (expected W n × m, \
                 bias and gain n, D m × n, support n × m, weights m)",
                p.w.shape(),
                p.bias.len(),
                p.gain.len(),
                p.dec.shape()
            )));
        }
        crate::check_finite("W", p.w.as_slice())?;
        crate::check_finite("bias", &p.bias)?;
        crate::check_finite("gain", &p.gain)?;
        crate::check_finite("D", p.dec.as_slice())?;
        if p.gain.iter().any(|&g| g < 0.0) {
            return Err(bad("a gain is negative".into()));
        }
        if let Some(s) = &p.support {
            if s.as_slice().iter().any(|&v| v != 0.0 && v != 1.0) {
                return Err(bad("a support entry is neither 0 nor 1".into()));
            }
        }
        if let Some(r) = &p.recon_weights {
            if r.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
                return Err(bad(
                    "a reconstruction weight is negative or not finite".into()
                ));
            }
        }
        Ok(GroupAe {
            w: p.w,
            bias: p.bias,
            gain: p.gain,
            dec: p.dec,
            form: p.form,
            support: p.support,
            recon_weights: p.recon_weights,
        })
    }

    /// The model's tensors by value (the inverse of [`from_parts`](Self::from_parts)).
    pub fn into_parts(self) -> GroupAeParts {
        GroupAeParts {
            w: self.w,
            bias: self.bias,
            gain: self.gain,
            dec: self.dec,
            form: self.form,
            support: self.support,
            recon_weights: self.recon_weights,
        }
    }

    /// Encoder filters W, n × m.
    pub fn w(&self) -> &Mat {
        &self.w
    }
    /// Encoder bias d, one per unit.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    /// Per-unit gains g ≥ 0.
    pub fn gain(&self) -> &[f32] {
        &self.gain
    }
    /// Decoder D, m × n.
    pub fn dec(&self) -> &Mat {
        &self.dec
    }
    /// The non-linearity.
    pub fn form(&self) -> EncoderForm {
        self.form
    }
    /// The support mask (n × m), if the model is locally connected.
    pub fn support(&self) -> Option<&Mat> {
        self.support.as_ref()
    }
    /// The per-input reconstruction weights, if any.
    pub fn recon_weights(&self) -> Option<&[f32]> {
        self.recon_weights.as_deref()
    }

    /// Code units n.
    pub fn hidden(&self) -> usize {
        self.w.nrows()
    }

    /// Zero gradients of this model's shapes.
    pub fn zero_grads(&self) -> GroupAeGrads {
        GroupAeGrads {
            w: Mat::zeros(self.w.nrows(), self.w.ncols()),
            bias: vec![0.0; self.bias.len()],
            gain: vec![0.0; self.gain.len()],
            dec: Mat::zeros(self.dec.nrows(), self.dec.ncols()),
        }
    }

    /// Encodes the batch and reconstructs it; returns the batch loss.
    #[track_caller]
    pub fn forward(&self, x: &Mat, groups: &Groups, ws: &mut GroupAeWorkspace) -> GroupAeLoss {
        let (batch, n, m) = (x.nrows(), self.hidden(), x.ncols());
        assert_eq!(
            m,
            self.w.ncols(),
            "x has {m} columns, the model {} inputs",
            self.w.ncols()
        );
        assert_eq!(
            groups.n_units(),
            n,
            "groups over {} units for {n} codes",
            groups.n_units()
        );
        for (mat, cols) in [
            (&mut ws.u, n),
            (&mut ws.h, n),
            (&mut ws.z, n),
            (&mut ws.gz, n),
            (&mut ws.r, m),
        ] {
            if mat.ncols() != cols {
                *mat = Mat::zeros(batch, cols);
            }
            mat.resize_rows(batch);
        }
        gemm(1.0, x.view(), self.w.t(), 0.0, ws.u.view_mut());
        encoder_activation(
            self.form, &self.bias, &self.gain, &mut ws.u, &mut ws.h, &mut ws.z,
        );
        let rec = self.residual(x, &ws.z, &mut ws.r);
        loss_terms(rec, ws.z.as_slice(), groups, &mut ws.norms)
    }

    /// The codes of the last forward pass (B × n).
    pub fn codes<'a>(&self, ws: &'a GroupAeWorkspace) -> &'a Mat {
        &ws.z
    }

    /// Gradient of the batch-mean loss of the last [`GroupAe::forward`].
    pub fn backward(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut GroupAeWorkspace,
        grads: &mut GroupAeGrads,
    ) {
        let batch = x.nrows();
        let inv_b = 1.0 / batch as f32;
        // ∂L/∂Z = (−R D + λ ∂ψ/∂z) / B
        gemm(-inv_b, ws.r.view(), self.dec.view(), 0.0, ws.gz.view_mut());
        add_group_gradients(
            ws.z.as_slice(),
            groups,
            &ws.norms,
            lambda * inv_b,
            ws.gz.as_mut_slice(),
        );
        // ∂D = −Rᵀ Z / B
        gemm(-inv_b, ws.r.t(), ws.z.view(), 0.0, grads.dec.view_mut());
        self.encoder_backward(x, ws, grads);
        apply_support(self.support.as_ref(), &mut grads.w, &mut grads.dec);
    }

    /// Back-propagates `ws.gz = ∂L/∂F(x)` through the encoder into W, bias and gain.
    fn encoder_backward(&self, x: &Mat, ws: &mut GroupAeWorkspace, grads: &mut GroupAeGrads) {
        encoder_activation_backward(self.form, &self.gain, &ws.h, &mut ws.gz, grads);
        gemm(1.0, ws.gz.t(), x.view(), 0.0, grads.w.view_mut());
    }

    /// PSD inference and gradients (Kavukcuoglu et al.): starting from the encoder's
    /// prediction `F(x)`, take `steps` gradient steps on
    /// `E(z) = ½‖x − Dz‖² + λψ(z) + ½α‖z − F(x)‖²` (step `1/(L + α)`, L = λ_max(DᵀD);
    /// ψ's gradient is 0 at a zero group), then write the gradients of the batch mean of
    /// `½‖x − Dz*‖²` (for D) and `½α‖z* − F(x)‖²` (for the encoder) at the fixed codes z*.
    /// Returns the batch's loss terms at z* (reconstruction and group term).
    #[allow(clippy::too_many_arguments)]
    pub fn psd_step(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        alpha: f32,
        steps: usize,
        lipschitz: f32,
        ws: &mut GroupAeWorkspace,
        grads: &mut GroupAeGrads,
    ) -> GroupAeLoss {
        let batch = x.nrows();
        let inv_b = 1.0 / batch as f32;
        self.forward(x, groups, ws); // ws.z = F(x)
        ws.zc.clone_from(&ws.z);
        let glen = groups.len();
        ws.norms.resize(ws.norms.len().max(glen), 0.0);
        let eta = 1.0 / (lipschitz + alpha);
        for _ in 0..steps {
            // R = X − Z Dᵀ; ∂E/∂Z = −R D + λ∇ψ + α(Z − F)
            self.residual(x, &ws.zc, &mut ws.r);
            gemm(-1.0, ws.r.view(), self.dec.view(), 0.0, ws.gz.view_mut());
            for ((zrow, frow), grow) in ws.zc.rows().zip(ws.z.rows()).zip(ws.gz.rows_mut()) {
                let norms = &mut ws.norms[..glen];
                groups.norms(zrow, norms);
                groups.add_gradient(zrow, norms, lambda, grow);
                for ((g, zv), fv) in grow.iter_mut().zip(zrow).zip(frow) {
                    *g += alpha * (zv - fv);
                }
            }
            crate::linalg::axpy(-eta, ws.gz.as_slice(), ws.zc.as_mut_slice());
        }
        let rec = self.residual(x, &ws.zc, &mut ws.r);
        let loss = loss_terms(rec, ws.zc.as_slice(), groups, &mut ws.norms);
        gemm(-inv_b, ws.r.t(), ws.zc.view(), 0.0, grads.dec.view_mut());
        for ((g, f), z) in ws
            .gz
            .as_mut_slice()
            .iter_mut()
            .zip(ws.z.as_slice())
            .zip(ws.zc.as_slice())
        {
            *g = alpha * inv_b * (f - z);
        }
        self.encoder_backward(x, ws, grads);
        apply_support(self.support.as_ref(), &mut grads.w, &mut grads.dec);
        loss
    }

    /// The codes found by the last [`GroupAe::psd_step`] (B × n).
    pub fn psd_codes<'a>(&self, ws: &'a GroupAeWorkspace) -> &'a Mat {
        &ws.zc
    }

    /// Constraints after an update: unit-norm decoder columns, non-negative gains.
    pub fn project(&mut self) {
        apply_support(self.support.as_ref(), &mut self.w, &mut self.dec);
        normalize_columns(&mut self.dec);
        self.gain.iter_mut().for_each(|g| *g = g.max(0.0));
    }

    /// Decoder column j as a vector (the unit's filter).
    pub fn filter(&self, j: usize) -> Vec<f32> {
        (0..self.dec.nrows()).map(|i| self.dec[(i, j)]).collect()
    }
}

/// The encoder's element-wise part, shared with the convolutional model: given the
/// pre-activations `U = XWᵀ` (one unit per column), `U += d`, `H = σ(U)`, `Z = g ⊙ H`.
pub(crate) fn encoder_activation(
    form: EncoderForm,
    bias: &[f32],
    gain: &[f32],
    u: &mut Mat,
    h: &mut Mat,
    z: &mut Mat,
) {
    let n = bias.len();
    if form == EncoderForm::Relu && n % 8 == 0 && n > 0 {
        // One flat pass, 8 units at a time, the parameters cycling with period n.
        let (b8, g8): (Vec<f32x8>, Vec<f32x8>) = bias
            .chunks_exact(8)
            .zip(gain.chunks_exact(8))
            .map(|(b, g)| (load8(b), load8(g)))
            .unzip();
        let blocks = b8.iter().zip(&g8).cycle();
        let elems = u.as_mut_slice().chunks_exact_mut(8);
        let outs = h
            .as_mut_slice()
            .chunks_exact_mut(8)
            .zip(z.as_mut_slice().chunks_exact_mut(8));
        for ((uc, (hc, zc)), (b, g)) in elems.zip(outs).zip(blocks) {
            let uv = load8(uc) + *b;
            // `u < 0 ? 0 : u`, written out: a NaN pre-activation gives a NaN code (so a
            // diverging model is noticed). `wide`'s `max` documents `u < 0 ? 0 : u` but
            // returns 0 for NaN (x86 `maxps`), so it is not used.
            let hv = uv.cmp_lt(f32x8::ZERO).blend(f32x8::ZERO, uv);
            store8(uc, uv);
            store8(hc, hv);
            store8(zc, *g * hv);
        }
        return;
    }
    // The form is matched outside the loops and the rows zipped with the parameters, so
    // the element loops have no branches or bounds checks.
    let rows = u.rows_mut().zip(h.rows_mut()).zip(z.rows_mut());
    for ((urow, hrow), zrow) in rows {
        let elems = urow.iter_mut().zip(hrow.iter_mut()).zip(zrow.iter_mut());
        let params = bias.iter().zip(gain);
        match form {
            EncoderForm::Relu => {
                for (((u, h), z), (b, g)) in elems.zip(params) {
                    *u += b;
                    // The 8-wide pass's rule: NaN stays NaN whatever the unit count
                    // (`f32::max` would give 0).
                    *h = if *u < 0.0 { 0.0 } else { *u };
                    *z = g * *h;
                }
            }
            EncoderForm::Tanh => {
                for (((u, h), z), (b, g)) in elems.zip(params) {
                    *u += b;
                    *h = u.tanh();
                    *z = g * *h;
                }
            }
        }
    }
}

/// Backward of [`encoder_activation`]: writes ∂g and ∂d into `grads` and turns
/// `gz = ∂L/∂Z` into `∂L/∂U = ∂Z ⊙ g ⊙ σ'(U)` in place (the caller finishes with
/// `∂W = ∂Uᵀ X`).
pub(crate) fn encoder_activation_backward(
    form: EncoderForm,
    gain: &[f32],
    h: &Mat,
    gz: &mut Mat,
    grads: &mut GroupAeGrads,
) {
    grads.gain.iter_mut().for_each(|v| *v = 0.0);
    grads.bias.iter_mut().for_each(|v| *v = 0.0);
    let n = gain.len();
    if form == EncoderForm::Relu && n % 8 == 0 && n > 0 {
        // One flat pass as in the forward; per-unit sums in registers-sized blocks,
        // accumulated over the rows in row order (the same order as the scalar loop).
        let g8: Vec<f32x8> = gain.chunks_exact(8).map(load8).collect();
        let mut dg = vec![f32x8::ZERO; n / 8];
        let mut db = vec![f32x8::ZERO; n / 8];
        let elems = gz
            .as_mut_slice()
            .chunks_exact_mut(8)
            .zip(h.as_slice().chunks_exact(8));
        let blocks = (0..n / 8).cycle();
        for ((gc, hc), k) in elems.zip(blocks) {
            let (gv, hv) = (load8(gc), load8(hc));
            dg[k] += gv * hv;
            // h = max(u, 0) > 0 exactly where u > 0
            let gv = hv.cmp_gt(f32x8::ZERO).blend(gv * g8[k], f32x8::ZERO);
            store8(gc, gv);
            db[k] += gv;
        }
        for (k, (a, b)) in dg.iter().zip(&db).enumerate() {
            store8(&mut grads.gain[8 * k..], *a);
            store8(&mut grads.bias[8 * k..], *b);
        }
        return;
    }
    for (grow, hrow) in gz.rows_mut().zip(h.rows()) {
        let elems = grow.iter_mut().zip(hrow);
        let params = gain
            .iter()
            .zip(grads.gain.iter_mut().zip(grads.bias.iter_mut()));
        match form {
            EncoderForm::Relu => {
                for ((g, h), (gn, (dg, db))) in elems.zip(params) {
                    *dg += *g * h;
                    let deriv = if *h > 0.0 { 1.0 } else { 0.0 };
                    *g *= gn * deriv;
                    *db += *g;
                }
            }
            EncoderForm::Tanh => {
                for ((g, h), (gn, (dg, db))) in elems.zip(params) {
                    *dg += *g * h;
                    *g *= gn * (1.0 - h * h);
                    *db += *g;
                }
            }
        }
    }
}

impl GroupAe {
    /// `r ← w ⊙ (x − z Dᵀ)` (w = 1 without reconstruction weights, so that r = −∂/∂x̂ of
    /// the reconstruction term); returns `Σ ½ w (x − zDᵀ)²`.
    fn residual(&self, x: &Mat, z: &Mat, r: &mut Mat) -> f64 {
        r.copy_from(x);
        gemm(-1.0, z.view(), self.dec.t(), 1.0, r.view_mut());
        weighted_residual(r, self.recon_weights.as_deref())
    }
}

/// Zeroes the entries of a (W-shaped, D-shaped) pair outside the support, if any.
fn apply_support(support: Option<&Mat>, w: &mut Mat, dec: &mut Mat) {
    if let Some(s) = support {
        for (wv, sv) in w.as_mut_slice().iter_mut().zip(s.as_slice()) {
            *wv *= sv;
        }
        let n = s.nrows();
        for (i, drow) in dec.rows_mut().enumerate() {
            for (j, d) in drow.iter_mut().enumerate().take(n) {
                *d *= s[(j, i)];
            }
        }
    }
}

/// Applies per-column reconstruction weights to residual rows in place and returns
/// `Σ ½ w r²` of the unweighted residuals (shared by the dense and convolutional models).
pub(crate) fn weighted_residual(r: &mut Mat, weights: Option<&[f32]>) -> f64 {
    match weights {
        None => r
            .as_slice()
            .iter()
            .map(|v| 0.5 * (*v as f64) * (*v as f64))
            .sum(),
        Some(w) => {
            let mut sum = 0.0f64;
            for row in r.rows_mut() {
                for (v, &wi) in row.iter_mut().zip(w) {
                    sum += 0.5 * (wi as f64) * (*v as f64) * (*v as f64);
                    *v *= wi;
                }
            }
            sum
        }
    }
}

/// The batch's loss terms from its reconstruction sum and its codes, `groups.n_units()`
/// contiguous values per example.
pub(crate) fn loss_terms(
    reconstruction: f64,
    codes: &[f32],
    groups: &Groups,
    norms: &mut Vec<f32>,
) -> GroupAeLoss {
    let (per, glen) = (groups.n_units().max(1), groups.len());
    let mut loss = GroupAeLoss {
        count: codes.len() / per,
        reconstruction,
        ..Default::default()
    };
    // Every image's group norms are kept: the backward pass reuses them.
    norms.resize(loss.count * glen, 0.0);
    for (zrow, nrow) in codes
        .chunks_exact(per)
        .zip(norms.chunks_exact_mut(glen.max(1)))
    {
        loss.group += groups.value(zrow, nrow) as f64;
        loss.active_groups += nrow.iter().map(|v| (*v > 0.0) as u32).sum::<u32>() as f64;
    }
    loss.active_groups /= loss.count.max(1) as f64;
    loss
}

/// `grad ← grad + scale·∂ψ/∂z` for every image, with the group norms left by
/// [`loss_terms`] for these codes.
pub(crate) fn add_group_gradients(
    codes: &[f32],
    groups: &Groups,
    norms: &[f32],
    scale: f32,
    grads: &mut [f32],
) {
    let (per, glen) = (groups.n_units().max(1), groups.len().max(1));
    for ((zrow, nrow), grow) in codes
        .chunks_exact(per)
        .zip(norms.chunks_exact(glen))
        .zip(grads.chunks_exact_mut(per))
    {
        groups.add_gradient(zrow, nrow, scale, grow);
    }
}

/// Scales every column of `d` to unit L2 norm (zero columns stay zero).
pub(crate) fn normalize_columns(d: &mut Mat) {
    let mut t = d.transposed();
    for row in t.rows_mut() {
        set_norm(row, 1.0);
    }
    *d = t.transposed();
}

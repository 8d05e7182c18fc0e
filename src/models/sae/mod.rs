//! Modern sparse auto-encoders, as interpretability work uses them: the standard ReLU SAE,
//! TopK (Gao et al. 2024), BatchTopK (Bussmann et al. 2024), JumpReLU (Rajamanoharan et al.
//! 2024), each optionally trained with Matryoshka's nested prefixes (Bussmann et al. 2025)
//! and TopK's AuxK dead-latent loss.
//!
//! All share one shape (SAELens's names; rows of `W_enc` and `W_dec` are latents):
//! ```text
//! pre = (x − b_dec·[apply_b_dec_to_input]) W_encᵀ + b_enc      d_in → d_sae
//! z   = σ(pre)                                                  the architecture's activation
//! x̂   = z W_dec + b_dec                                         d_sae → d_in
//! ```
//! with σ, at inference:
//! - [`SaeKind::Relu`]: `max(pre, 0)`;
//! - [`SaeKind::TopK`]: the `k` largest positive entries of each row, the rest 0;
//! - [`SaeKind::JumpRelu`] and [`SaeKind::BatchTopK`]: `pre · [pre > θ_j]` with a learned
//!   per-latent θ (JumpReLU) or the threshold estimated during training (BatchTopK, whose
//!   batch-wide selection is training-only; it is a JumpReLU at inference).
//!
//! [`SaeNetwork::loss_and_gradient`] (in `step.rs`) gives the training objective of each
//! architecture and its hand-derived gradient; the equations are written there.

mod par;
mod select;
mod step;

pub use step::{AuxK, SaeGrads, SaeLoss, SaeObjective, SaeWorkspace};

use crate::linalg::{gemm, gemm_threads, Mat, MatRef};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The activation of a sparse auto-encoder (its architecture).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SaeKind {
    /// `z = max(pre, 0)`, trained with an L1 penalty weighted by decoder row norms.
    Relu,
    /// The `k` largest positive pre-activations of each row.
    TopK {
        /// Active latents per row.
        k: usize,
    },
    /// Training: the `k·batch` largest positive pre-activations of the whole batch; inference:
    /// a JumpReLU at the threshold estimated during training.
    BatchTopK {
        /// Mean active latents per row.
        k: usize,
    },
    /// `z = pre · [pre > θ]` with a learned per-latent θ > 0, trained with an L0 penalty and
    /// straight-through threshold gradients.
    JumpRelu,
}

impl SaeKind {
    /// The name SAELens gives the architecture: `standard`, `topk`, `batchtopk`, `jumprelu`.
    pub fn name(self) -> &'static str {
        match self {
            SaeKind::Relu => "standard",
            SaeKind::TopK { .. } => "topk",
            SaeKind::BatchTopK { .. } => "batchtopk",
            SaeKind::JumpRelu => "jumprelu",
        }
    }

    /// `k` for TopK and BatchTopK.
    pub fn k(self) -> Option<usize> {
        match self {
            SaeKind::TopK { k } | SaeKind::BatchTopK { k } => Some(k),
            _ => None,
        }
    }
}

/// A sparse auto-encoder's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SaeNetwork {
    kind: SaeKind,
    /// Encoder, `d_sae × d_in` (row j: latent j's encoder direction).
    pub(crate) w_enc: Mat,
    /// Encoder bias, `d_sae`.
    pub(crate) b_enc: Vec<f32>,
    /// Decoder, `d_sae × d_in` (row j: latent j's dictionary direction).
    pub(crate) w_dec: Mat,
    /// Decoder bias, `d_in`.
    pub(crate) b_dec: Vec<f32>,
    /// JumpReLU's θ (BatchTopK's inference threshold, repeated), `d_sae`; unused otherwise.
    pub(crate) threshold: Vec<f32>,
    /// Whether `b_dec` is subtracted from the input before encoding.
    pub(crate) apply_b_dec_to_input: bool,
}

/// Sparse codes, one row per input (compressed rows): row `i` holds `(latent, value)` pairs
/// `idx[start[i]..start[i + 1]]`, `val[..]`, latents ascending.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseCodes {
    /// Row starts (length rows + 1).
    pub start: Vec<usize>,
    /// Latent indices.
    pub idx: Vec<u32>,
    /// Values.
    pub val: Vec<f32>,
    /// Number of latents (columns).
    pub d_sae: usize,
}

impl SparseCodes {
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// Row `i` as `(latents, values)`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let r = self.start[i]..self.start[i + 1];
        (&self.idx[r.clone()], &self.val[r])
    }

    /// The dense `rows × d_sae` matrix.
    pub fn to_dense(&self) -> Mat {
        let mut m = Mat::zeros(self.nrows(), self.d_sae);
        for i in 0..self.nrows() {
            let (idx, val) = self.row(i);
            let row = m.row_mut(i);
            for (&j, &v) in idx.iter().zip(val) {
                row[j as usize] = v;
            }
        }
        m
    }
}

/// Makes `m` a `rows × cols` matrix, keeping its allocation when the width matches (a
/// fresh multi-megabyte buffer per step costs page faults on first touch).
pub(crate) fn reuse(m: &mut Mat, rows: usize, cols: usize) {
    if m.ncols() != cols {
        *m = Mat::zeros(0, cols);
    }
    m.resize_rows(rows);
}

/// Rows encoded at a time at inference (bounds the pre-activation buffer).
const ENCODE_BLOCK: usize = 256;

impl SaeNetwork {
    /// A fresh network: decoder rows in random directions with norm `decoder_norm`, the
    /// encoder its transpose (`W_enc = W_dec`, the tied initialisation of Gao et al. and
    /// SAELens), zero biases, θ = `threshold` (JumpReLU; 0.001 in SAELens).
    ///
    /// # Panics
    /// If `d_in` or `d_sae` is 0 (the estimator checks its parameters first).
    pub fn init<R: Rng + ?Sized>(
        kind: SaeKind,
        d_in: usize,
        d_sae: usize,
        decoder_norm: f32,
        threshold: f32,
        rng: &mut R,
    ) -> SaeNetwork {
        assert!(d_in > 0 && d_sae > 0, "empty SAE");
        let mut w_dec = Mat::zeros(d_sae, d_in);
        for row in w_dec.rows_mut() {
            for v in row.iter_mut() {
                *v = StandardNormal.sample(rng);
            }
            crate::linalg::set_norm(row, decoder_norm);
        }
        SaeNetwork {
            kind,
            w_enc: w_dec.clone(),
            b_enc: vec![0.0; d_sae],
            w_dec,
            b_dec: vec![0.0; d_in],
            threshold: vec![threshold; d_sae],
            apply_b_dec_to_input: true,
        }
    }

    /// A network from its tensors (shapes as the fields' docs say).
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) on inconsistent shapes or non-finite values.
    pub fn from_parts(
        kind: SaeKind,
        w_enc: Mat,
        b_enc: Vec<f32>,
        w_dec: Mat,
        b_dec: Vec<f32>,
        threshold: Vec<f32>,
        apply_b_dec_to_input: bool,
    ) -> crate::Result<SaeNetwork> {
        let (m, d) = w_dec.shape();
        let bad = |what: String| crate::Error::Format {
            format: "SAE",
            what,
        };
        if m == 0 || d == 0 {
            return Err(bad("empty W_dec".into()));
        }
        if w_enc.shape() != (m, d) {
            return Err(bad(format!(
                "W_enc is {:?} (as d_sae × d_in), W_dec is {m} × {d}",
                w_enc.shape()
            )));
        }
        if b_enc.len() != m || threshold.len() != m || b_dec.len() != d {
            return Err(bad(format!(
                "b_enc has {}, threshold {} (want d_sae = {m}); b_dec has {} (want d_in = {d})",
                b_enc.len(),
                threshold.len(),
                b_dec.len()
            )));
        }
        if let Some(k) = kind.k() {
            if k == 0 || k > m {
                return Err(bad(format!("k = {k} not in 1..={m}")));
            }
        }
        for (name, t) in [
            ("W_enc", w_enc.as_slice()),
            ("W_dec", w_dec.as_slice()),
            ("b_enc", &b_enc[..]),
            ("b_dec", &b_dec[..]),
            ("threshold", &threshold[..]),
        ] {
            if let Some(i) = t.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("{name}[{i}] is not finite")));
            }
        }
        Ok(SaeNetwork {
            kind,
            w_enc,
            b_enc,
            w_dec,
            b_dec,
            threshold,
            apply_b_dec_to_input,
        })
    }

    /// The architecture.
    pub fn kind(&self) -> SaeKind {
        self.kind
    }
    /// Input dimension `d_in`.
    pub fn d_in(&self) -> usize {
        self.w_dec.ncols()
    }
    /// Number of latents `d_sae`.
    pub fn d_sae(&self) -> usize {
        self.w_dec.nrows()
    }
    /// The encoder, `d_sae × d_in`.
    pub fn w_enc(&self) -> &Mat {
        &self.w_enc
    }
    /// The encoder bias.
    pub fn b_enc(&self) -> &[f32] {
        &self.b_enc
    }
    /// The decoder, `d_sae × d_in`.
    pub fn w_dec(&self) -> &Mat {
        &self.w_dec
    }
    /// The decoder bias.
    pub fn b_dec(&self) -> &[f32] {
        &self.b_dec
    }
    /// The per-latent threshold θ (JumpReLU, BatchTopK at inference).
    pub fn threshold(&self) -> &[f32] {
        &self.threshold
    }
    /// Whether `b_dec` is subtracted from the input before encoding.
    pub fn apply_b_dec_to_input(&self) -> bool {
        self.apply_b_dec_to_input
    }
    /// Sets the decoder bias (for example to the data's geometric median before training).
    ///
    /// # Panics
    /// If `b_dec.len() != d_in`.
    pub fn set_b_dec(&mut self, b_dec: &[f32]) {
        self.b_dec.copy_from_slice(b_dec);
    }
    /// Turns a trained BatchTopK network into the JumpReLU it is at inference (SAELens's
    /// export of BatchTopK models).
    pub fn as_jump_relu(&self) -> SaeNetwork {
        SaeNetwork {
            kind: SaeKind::JumpRelu,
            ..self.clone()
        }
    }

    /// The encoder input of the rows of `x` (`x − b_dec` or `x`), into `out` (its
    /// allocation reused when the width matches).
    pub(crate) fn encoder_input_into(&self, x: MatRef<'_>, out: &mut Mat) {
        reuse(out, x.nrows(), x.ncols());
        for (i, row) in out.rows_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = x.get(i, j);
            }
            if self.apply_b_dec_to_input {
                for (v, b) in row.iter_mut().zip(&self.b_dec) {
                    *v -= b;
                }
            }
        }
    }

    /// The pre-activations `pre = xin W_encᵀ` (without `b_enc`, which the selection adds).
    pub(crate) fn pre_activations(&self, xin: &Mat, pre: &mut Mat) {
        reuse(pre, xin.nrows(), self.d_sae());
        gemm(1.0, xin.view(), self.w_enc.t(), 0.0, pre.view_mut());
    }

    /// Sparse codes of the rows of `x` (inference: BatchTopK acts as its JumpReLU).
    ///
    /// # Panics
    /// If `x.ncols() != d_in`.
    pub fn encode(&self, x: MatRef<'_>) -> SparseCodes {
        assert_eq!(x.ncols(), self.d_in(), "input width");
        let mut codes = SparseCodes {
            start: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
            d_sae: self.d_sae(),
        };
        let mut pre = Mat::zeros(0, self.d_sae());
        let mut xin = Mat::zeros(0, self.d_in());
        let mut sel = Vec::new();
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + ENCODE_BLOCK).min(x.nrows());
            self.encoder_input_into(x.row_range(start, end), &mut xin);
            self.pre_activations(&xin, &mut pre);
            for i in 0..end - start {
                select::inference(self, pre.row_mut(i), &mut sel);
                for &(j, v) in &sel {
                    codes.idx.push(j);
                    codes.val.push(v);
                }
                codes.start.push(codes.idx.len());
            }
            start = end;
        }
        codes
    }

    /// `x̂ = z W_dec + b_dec` for sparse codes.
    ///
    /// # Panics
    /// If `codes.d_sae != d_sae`.
    pub fn decode(&self, codes: &SparseCodes) -> Mat {
        assert_eq!(codes.d_sae, self.d_sae(), "codes width");
        let mut out = Mat::zeros(codes.nrows(), self.d_in());
        let bounds = par::blocks(codes.nrows(), gemm_threads());
        let d = self.d_in();
        let parts = par::split_rows(out.as_mut_slice(), d, &bounds);
        par::run_each(
            bounds.iter().copied().zip(parts).collect(),
            |((s, e), part)| {
                for i in s..e {
                    let row = &mut part[(i - s) * d..(i - s + 1) * d];
                    row.copy_from_slice(&self.b_dec);
                    let (idx, val) = codes.row(i);
                    for (&j, &v) in idx.iter().zip(val) {
                        crate::linalg::axpy(v, self.w_dec.row(j as usize), row);
                    }
                }
            },
        );
        out
    }

    /// `decode(encode(x))`.
    pub fn reconstruct(&self, x: MatRef<'_>) -> Mat {
        self.decode(&self.encode(x))
    }

    /// Scales every decoder row to unit norm (rows of norm 0 are left alone), compensating
    /// in the encoder so that the codes times the decoder are unchanged: `z_j ‖W_dec,j‖`
    /// becomes the new `z_j` (encoder row, bias and threshold of j scaled by the norm).
    /// For ReLU and JumpReLU the reconstruction is unchanged; TopK's selection may change
    /// where norms differ.
    pub fn normalize_decoder_rows(&mut self) {
        for j in 0..self.d_sae() {
            let n = crate::linalg::norm(self.w_dec.row(j));
            if n > 0.0 && n.is_finite() {
                crate::linalg::scale(1.0 / n, self.w_dec.row_mut(j));
                crate::linalg::scale(n, self.w_enc.row_mut(j));
                self.b_enc[j] *= n;
                self.threshold[j] *= n;
            }
        }
    }

    /// Mutable `W_enc`, `b_enc`, `W_dec`, `b_dec`, `threshold` (for optimisers).
    pub fn tensors_mut(&mut self) -> [&mut [f32]; 5] {
        [
            self.w_enc.as_mut_slice(),
            &mut self.b_enc,
            self.w_dec.as_mut_slice(),
            &mut self.b_dec,
            &mut self.threshold,
        ]
    }

    /// Every parameter tensor with its SAELens name, in a fixed order.
    pub fn tensors(&self) -> [(&'static str, &[f32]); 5] {
        [
            ("W_enc", self.w_enc.as_slice()),
            ("b_enc", &self.b_enc),
            ("W_dec", self.w_dec.as_slice()),
            ("b_dec", &self.b_dec),
            ("threshold", &self.threshold),
        ]
    }
}

//! The training objective of every SAE architecture and its hand-derived gradient.
//!
//! One file on purpose: the forward pass and the backward pass it is differentiated from
//! (whose equations open the file) read best side by side.
//!
//! For a batch of B rows x_b, with `xin_b = x_b − b_dec` (or `x_b`), `pre_b = xin_b W_encᵀ
//! + b_enc` and the architecture's active set A_b (with values z_bj = pre_bj):
//! ```text
//! L = (1/B) Σ_b [ (1/G) Σ_g ‖x̂ᵍ_b − x_b‖²  +  λ·S_b ]  +  L_aux
//! x̂ᵍ_b = b_dec + Σ_{j ∈ A_b, j < m_g} z_bj W_dec,j        (Matryoshka prefixes m_1 < … < m_G = d_sae;
//!                                                         G = 1 without them)
//! S_b  = Σ_{j ∈ A_b} z_bj ‖W_dec,j‖                      (ReLU: L1 weighted by decoder norms)
//!      = |A_b| = Σ_j H(pre_bj − θ_j)                      (JumpReLU: L0)
//!      = 0                                                (TopK, BatchTopK)
//! L_aux = α·s·(1/B) Σ_b ‖ê_b − e_b‖²,  e_b = x_b − x̂ᴳ_b (held constant),
//!         ê_b = Σ_{j ∈ Aux_b} pre_bj W_dec,j             (AuxK: the k_aux largest positive
//!                                                         pre-activations among dead latents;
//!                                                         s = min(#dead / k_aux, 1))
//! ```
//! Backward. With `gᵍ_b = 2(x̂ᵍ_b − x_b)/(B·G)` and its suffix sums `Sᵍ_b = Σ_{g' ≥ g} gᵍ'_b`
//! (a latent of prefix group h appears in every reconstruction g ≥ h), `h_b = 2αs(ê_b −
//! e_b)/B`, and `n_j = ‖W_dec,j‖`:
//! ```text
//! ∂L/∂z_bj     = ⟨S^{h(j)}_b, W_dec,j⟩ + [ReLU] λ n_j / B            (+ ⟨h_b, W_dec,j⟩ for Aux_b)
//! ∂L/∂pre_bj   = ∂L/∂z_bj on the active set (and Aux_b), 0 elsewhere (straight-through TopK)
//! ∂L/∂W_dec,j  = Σ_b z_bj S^{h(j)}_b + Σ_{b: j ∈ Aux_b} pre_bj h_b + [ReLU] (λ/B)(Σ_b z_bj) W_dec,j / n_j
//! ∂L/∂b_dec    = Σ_b S¹_b − [apply_b_dec_to_input] Σ_j (∂L/∂b_enc,j) W_enc,j
//! ∂L/∂W_enc,j  = Σ_b ∂L/∂pre_bj · xin_b,      ∂L/∂b_enc,j = Σ_b ∂L/∂pre_bj
//! ```
//! JumpReLU's threshold takes the straight-through pseudo-derivatives of Rajamanoharan et
//! al. (2024) with the rectangle kernel `K(u) = [|u| < ½]` of bandwidth ε:
//! `∂z_bj/∂θ_j := −(θ_j/ε) K((pre_bj − θ_j)/ε)` and `∂H(pre_bj − θ_j)/∂θ_j := −(1/ε) K(..)`,
//! so `∂L/∂θ_j = Σ_b K(..)·(−(θ_j/ε) ∂L/∂z_bj − λ/(Bε))` (θ itself is the trained
//! parameter, as in SAELens v6). The Heaviside step passes no gradient to `pre`.
//!
//! Work: one dense GEMM (`pre`), then everything is proportional to the active entries:
//! per row (in parallel) the reconstruction, its residuals and the `∂L/∂z` dot products;
//! then per latent (in parallel, after a counting sort of the entries by latent) the rows of
//! `∂L/∂W_dec` and `∂L/∂W_enc`. Every sum runs in a fixed order (rows ascending), so the
//! result does not depend on the thread count.

use super::{par, reuse, select, SaeKind, SaeNetwork};
use crate::kernels::{
    gather_axpy, gather_dot, nth_largest, top_k_positive, top_k_positive_among, Selected,
};
use crate::linalg::{axpy, dot, gemm_threads, norm, Mat, MatRef};

/// TopK's auxiliary dead-latent loss (Gao et al. 2024).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AuxK {
    /// Dead latents used per row (SAELens: `d_in / 2`; Gao et al.: 512).
    pub k_aux: usize,
    /// α (Gao et al.: 1/32).
    pub coefficient: f32,
}

/// What a training step minimises, beyond the reconstruction error.
#[derive(Clone, Debug, PartialEq)]
pub struct SaeObjective {
    /// λ: the sparsity coefficient (ReLU: weighted L1; JumpReLU: L0; unused by TopK and
    /// BatchTopK).
    pub sparsity: f32,
    /// ε: JumpReLU's kernel bandwidth.
    pub bandwidth: f32,
    /// The AuxK loss, used when some latents are dead.
    pub aux: Option<AuxK>,
    /// Matryoshka's nested prefix sizes, ascending, the last equal to `d_sae`; empty for
    /// one reconstruction from every latent.
    pub prefixes: Vec<usize>,
}

impl Default for SaeObjective {
    fn default() -> Self {
        SaeObjective {
            sparsity: 0.0,
            bandwidth: 0.001,
            aux: None,
            prefixes: Vec::new(),
        }
    }
}

/// The parts of one batch's loss (means over the batch's rows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SaeLoss {
    /// `‖x̂ − x‖²` (mean over the prefixes for Matryoshka).
    pub mse: f64,
    /// The sparsity penalty before λ (ReLU: `Σ z_j ‖W_dec,j‖`; JumpReLU: L0; else 0).
    pub sparsity: f64,
    /// The AuxK term as added to the loss (α and the dead-fraction scale included).
    pub aux: f64,
    /// Active latents per row.
    pub l0: f64,
    /// The minimised objective: `mse + λ·sparsity + aux`.
    pub total: f64,
    /// BatchTopK: the smallest activation the batch-wide selection kept (what its inference
    /// threshold is estimated from); otherwise 0.
    pub batch_threshold: f32,
}

/// Gradients of every [`SaeNetwork`] tensor.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub struct SaeGrads {
    pub w_enc: Mat,
    pub b_enc: Vec<f32>,
    pub w_dec: Mat,
    pub b_dec: Vec<f32>,
    pub threshold: Vec<f32>,
}

impl SaeGrads {
    /// Zero gradients shaped like `net`.
    pub fn zeros(net: &SaeNetwork) -> SaeGrads {
        let (m, d) = (net.d_sae(), net.d_in());
        SaeGrads {
            w_enc: Mat::zeros(m, d),
            b_enc: vec![0.0; m],
            w_dec: Mat::zeros(m, d),
            b_dec: vec![0.0; d],
            threshold: vec![0.0; m],
        }
    }
}

/// One active (or JumpReLU window, or AuxK) entry of a row.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    j: u32,
    /// Which gradient vector of the row its decoder gradient uses: a prefix group, or
    /// `groups` for AuxK.
    slot: u32,
    /// The activation (0 for a JumpReLU entry inside the kernel window but not active).
    z: f32,
    pre: f32,
    dpre: f32,
    /// ∂L/∂θ_j contribution.
    dthr: f32,
}

/// Buffers reused across steps.
#[derive(Clone, Debug, Default)]
pub struct SaeWorkspace {
    x: Mat,
    xin: Mat,
    pre: Mat,
    xhat: Mat,
    slots: Mat,
    main: Vec<Vec<Entry>>,
    aux: Vec<Vec<Entry>>,
    row_loss: Vec<[f64; 4]>,
    lat_start: Vec<usize>,
    lat_items: Vec<LatItem>,
    fired: Vec<u32>,
    dec_norm: Vec<f32>,
}

impl SaeWorkspace {
    /// After a step: in how many rows of the batch each latent was active.
    pub fn fired(&self) -> &[u32] {
        &self.fired
    }

    /// After a step: the batch's reconstructions (full dictionary).
    pub fn reconstructions(&self) -> &Mat {
        &self.xhat
    }
}

/// Candidates kept per row for BatchTopK's batch-wide selection, as a multiple of k (rows
/// with more above the batch threshold are rescanned).
const BATCH_CANDIDATES: usize = 4;

impl SaeNetwork {
    /// The loss of a batch (rows of `x`) and its gradient, written into `grads` (every
    /// element overwritten). `dead` lists (ascending) the latents the AuxK loss may use.
    ///
    /// # Panics
    /// On shape mismatches, or Matryoshka prefixes that are not ascending and ending at
    /// `d_sae` (the estimator checks them first).
    pub fn loss_and_gradient(
        &self,
        x: MatRef<'_>,
        objective: &SaeObjective,
        dead: &[u32],
        ws: &mut SaeWorkspace,
        grads: &mut SaeGrads,
    ) -> SaeLoss {
        let (m, d, rows) = (self.d_sae(), self.d_in(), x.nrows());
        assert_eq!(x.ncols(), d, "input width");
        assert_eq!(grads.w_dec.shape(), (m, d), "gradient shapes");
        let prefixes: Vec<usize> = if objective.prefixes.is_empty() {
            vec![m]
        } else {
            objective.prefixes.clone()
        };
        assert!(
            prefixes.windows(2).all(|w| w[0] < w[1]) && prefixes.last() == Some(&m),
            "Matryoshka prefixes {prefixes:?} must ascend to d_sae = {m}"
        );
        let groups = prefixes.len();
        let aux = objective
            .aux
            .filter(|a| !dead.is_empty() && a.k_aux > 0 && a.coefficient > 0.0);
        let nslots = groups + aux.is_some() as usize;
        let width = nslots * d;
        let threads = gemm_threads();
        let inv_b = 1.0 / rows.max(1) as f32;
        let lambda = objective.sparsity;

        // Forward: the one dense product.
        // Buffers are reused across steps (see `reuse`).
        self.encoder_input_into(x, &mut ws.xin);
        reuse(&mut ws.x, rows, d);
        for i in 0..rows {
            for (j, v) in ws.x.row_mut(i).iter_mut().enumerate() {
                *v = x.get(i, j);
            }
        }
        self.pre_activations(&ws.xin, &mut ws.pre);
        ws.main.resize_with(rows, Vec::new);
        ws.aux.resize_with(rows, Vec::new);
        if matches!(self.kind, SaeKind::Relu) {
            ws.dec_norm = (0..m).map(|j| norm(self.w_dec.row(j))).collect();
        }
        let bounds = par::blocks(rows, threads);

        // Phase A (rows): pre-activations, selections.
        let (k_aux, aux_scale) = match aux {
            Some(a) => (
                a.k_aux.min(dead.len()),
                (dead.len() as f32 / a.k_aux as f32).min(1.0),
            ),
            None => (0, 0.0),
        };
        let all_dead = k_aux > 0 && dead.len() == m;
        let cand = match self.kind {
            SaeKind::BatchTopK { k } => (BATCH_CANDIDATES * k).min(m),
            _ => 0,
        };
        {
            let pre = par::split_rows(ws.pre.as_mut_slice(), m, &bounds);
            let main = par::split_rows(&mut ws.main[..], 1, &bounds);
            let auxl = par::split_rows(&mut ws.aux[..], 1, &bounds);
            let items: Vec<_> = pre.into_iter().zip(main).zip(auxl).collect();
            par::run_each(items, |((pre, main), auxl)| {
                let mut sel: Vec<Selected> = Vec::new();
                for ((row, ents), aents) in pre.chunks_exact_mut(m).zip(main).zip(auxl) {
                    select::add_bias(row, &self.b_enc);
                    ents.clear();
                    match self.kind {
                        SaeKind::Relu => select::positive(row, &mut sel),
                        SaeKind::TopK { k } => top_k_positive(row, k, &mut sel),
                        SaeKind::BatchTopK { .. } => top_k_positive(row, cand, &mut sel),
                        SaeKind::JumpRelu => {
                            sel.clear();
                            let half = 0.5 * objective.bandwidth;
                            for (j, (&v, &t)) in row.iter().zip(&self.threshold).enumerate() {
                                let active = v > t && v > 0.0;
                                if active || (v - t).abs() < half {
                                    ents.push(Entry {
                                        j: j as u32,
                                        z: if active { v } else { 0.0 },
                                        pre: v,
                                        ..Entry::default()
                                    });
                                }
                            }
                        }
                    }
                    ents.extend(sel.iter().map(|&(j, v)| Entry {
                        j,
                        z: v,
                        pre: v,
                        ..Entry::default()
                    }));
                    aents.clear();
                    if k_aux > 0 {
                        if all_dead {
                            top_k_positive(row, k_aux, &mut sel);
                        } else {
                            top_k_positive_among(row, dead, k_aux, &mut sel);
                        }
                        aents.extend(sel.iter().map(|&(j, v)| Entry {
                            j,
                            slot: groups as u32,
                            z: v,
                            pre: v,
                            ..Entry::default()
                        }));
                    }
                }
            });
        }

        // BatchTopK: the batch-wide threshold, then each row's entries at or above it.
        let mut batch_threshold = 0.0;
        if let SaeKind::BatchTopK { k } = self.kind {
            let t = batch_threshold_of(&mut ws.main, &ws.pre, m, k * rows, cand);
            let mut lowest = f32::INFINITY;
            for ents in ws.main.iter_mut() {
                ents.retain(|e| e.z >= t);
                for e in ents.iter() {
                    lowest = lowest.min(e.z);
                }
            }
            batch_threshold = if lowest.is_finite() { lowest } else { 0.0 };
        }

        // Phase B (rows): reconstructions, residual slots, ∂L/∂z, ∂L/∂pre, ∂L/∂θ.
        reuse(&mut ws.xhat, rows, d); // every row is overwritten below
        if ws.slots.shape() != (rows, width) {
            ws.slots = Mat::zeros(rows, width);
        }
        ws.row_loss.resize(rows, [0.0; 4]);
        {
            let xhat = par::split_rows(ws.xhat.as_mut_slice(), d, &bounds);
            let slots = par::split_rows(ws.slots.as_mut_slice(), width, &bounds);
            let main = par::split_rows(&mut ws.main[..], 1, &bounds);
            let auxl = par::split_rows(&mut ws.aux[..], 1, &bounds);
            let losses = par::split_rows(&mut ws.row_loss[..], 1, &bounds);
            let items: Vec<_> = bounds
                .iter()
                .copied()
                .zip(xhat)
                .zip(slots)
                .zip(main)
                .zip(auxl)
                .zip(losses)
                .collect();
            let ctx = RowCtx {
                net: self,
                prefixes: &prefixes,
                objective,
                dec_norm: &ws.dec_norm,
                inv_b,
                lambda,
                aux: aux.map(|a| (a.coefficient, aux_scale)),
            };
            let (ctx, xs) = (&ctx, &ws.x);
            par::run_each(items, |(((((bnd, xhat), slots), main), auxl), losses)| {
                for (r, b) in (bnd.0..bnd.1).enumerate() {
                    losses[r] = ctx.backward_row(
                        xs.row(b),
                        &mut xhat[r * d..(r + 1) * d],
                        &mut slots[r * width..(r + 1) * width],
                        &mut main[r],
                    );
                }
                if let Some((alpha, scale)) = ctx.aux {
                    let c = AuxRows {
                        net: ctx.net,
                        offset: groups * d,
                        width,
                        alpha,
                        scale,
                        inv_b,
                    };
                    c.run(slots, auxl, losses);
                }
            });
        }

        // Phase C: the entries by latent (counting sort; rows stay ascending), each thread
        // counting and placing the entries of its own range of latents.
        let lat_bounds = par::blocks(m, threads);
        ws.lat_start.clear();
        ws.lat_start.resize(m + 1, 0);
        {
            let counts = par::split_rows(&mut ws.lat_start[1..], 1, &lat_bounds);
            let (main, aux) = (&ws.main[..rows], &ws.aux[..rows]);
            let items: Vec<_> = lat_bounds.iter().copied().zip(counts).collect();
            par::run_each(items, |((lo, hi), counts)| {
                for e in main.iter().zip(aux).flat_map(|(a, b)| a.iter().chain(b)) {
                    let j = e.j as usize;
                    if (lo..hi).contains(&j) {
                        counts[j - lo] += 1;
                    }
                }
            });
        }
        for j in 0..m {
            ws.lat_start[j + 1] += ws.lat_start[j];
        }
        ws.fired.clear();
        ws.fired.resize(m, 0);
        for e in ws.main[..rows].iter().flatten() {
            ws.fired[e.j as usize] += (e.z > 0.0) as u32;
        }
        let total = ws.lat_start[m];
        ws.lat_items.clear();
        ws.lat_items.resize(total, LatItem::default());
        {
            let mut parts = Vec::with_capacity(lat_bounds.len());
            let mut rest = &mut ws.lat_items[..];
            for &(lo, hi) in &lat_bounds {
                let (head, tail) = rest.split_at_mut(ws.lat_start[hi] - ws.lat_start[lo]);
                parts.push(((lo, hi), head));
                rest = tail;
            }
            let (main, aux, start) = (&ws.main[..rows], &ws.aux[..rows], &ws.lat_start);
            par::run_each(parts, |((lo, hi), out)| {
                let base = start[lo];
                let mut next: Vec<usize> = start[lo..hi].iter().map(|&s| s - base).collect();
                for (b, (mr, ar)) in main.iter().zip(aux).enumerate() {
                    let nm = mr.len();
                    for (e, ent) in mr.iter().chain(ar).enumerate() {
                        let j = ent.j as usize;
                        if !(lo..hi).contains(&j) {
                            continue;
                        }
                        let at = &mut next[j - lo];
                        out[*at] = LatItem {
                            b: b as u32,
                            slot: ent.slot,
                            main: e < nm,
                            z: ent.z,
                            dpre: ent.dpre,
                            dthr: ent.dthr,
                        };
                        *at += 1;
                    }
                }
            });
        }

        // Phase D (latents): ∂L/∂W_dec, ∂L/∂W_enc, ∂L/∂b_enc, ∂L/∂log θ.
        {
            let gd = par::split_rows(grads.w_dec.as_mut_slice(), d, &lat_bounds);
            let ge = par::split_rows(grads.w_enc.as_mut_slice(), d, &lat_bounds);
            let gb = par::split_rows(&mut grads.b_enc[..], 1, &lat_bounds);
            let gt = par::split_rows(&mut grads.threshold[..], 1, &lat_bounds);
            let items: Vec<_> = lat_bounds
                .iter()
                .copied()
                .zip(gd)
                .zip(ge)
                .zip(gb)
                .zip(gt)
                .collect();
            let ws = &*ws;
            let latents = LatentGrads {
                d,
                rows,
                block: (LATENT_BLOCK_BYTES / ((d + width) * std::mem::size_of::<f32>())).max(8),
                xin: &ws.xin,
                slots: &ws.slots,
                w_dec: &self.w_dec,
                start: &ws.lat_start,
                items: &ws.lat_items,
            };
            par::run_each(items, |((((bnd, gd), ge), gb), gt)| {
                let mut zsum = vec![0.0f32; bnd.1 - bnd.0];
                let mut out = LatentOut {
                    gd,
                    ge,
                    gb,
                    gt,
                    zsum: &mut zsum,
                };
                latents.run(bnd, &mut out);
                let (gd, zsum) = (out.gd, out.zsum);
                if matches!(self.kind, SaeKind::Relu) && lambda != 0.0 {
                    for (r, j) in (bnd.0..bnd.1).enumerate() {
                        let n = ws.dec_norm[j];
                        if n > 0.0 {
                            let gd = &mut gd[r * d..(r + 1) * d];
                            axpy(lambda * inv_b * zsum[r] / n, self.w_dec.row(j), gd);
                        }
                    }
                }
            });
        }

        // Phase E: ∂L/∂b_dec.
        grads.b_dec.fill(0.0);
        for b in 0..rows {
            axpy(1.0, &ws.slots.row(b)[..d], &mut grads.b_dec);
        }
        if self.apply_b_dec_to_input {
            for j in 0..m {
                let g = grads.b_enc[j];
                if g != 0.0 {
                    axpy(-g, self.w_enc.row(j), &mut grads.b_dec);
                }
            }
        }

        let mut sum = [0.0f64; 4];
        for l in &ws.row_loss[..rows] {
            for (s, v) in sum.iter_mut().zip(l) {
                *s += v;
            }
        }
        let n = rows.max(1) as f64;
        let (mse, aux_l, sparsity, l0) = (sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n);
        SaeLoss {
            mse,
            sparsity,
            aux: aux_l,
            l0,
            total: mse + lambda as f64 * sparsity + aux_l,
            batch_threshold,
        }
    }
}

/// BatchTopK's threshold: the `n`-th largest positive pre-activation of the batch. Each
/// row's entries hold its `cand` largest positive values; a row whose smallest candidate is
/// at or above the threshold of the candidates may have more, and is rescanned for every
/// value at or above it, which makes every row hold all of its values at or above the
/// final threshold (which can only rise).
fn batch_threshold_of(main: &mut [Vec<Entry>], pre: &Mat, m: usize, n: usize, cand: usize) -> f32 {
    let mut values: Vec<f32> = main.iter().flatten().map(|e| e.z).collect();
    let t = nth_largest(&mut values, n);
    let mut rescanned = false;
    let mut sel = Vec::new();
    for (b, ents) in main.iter_mut().enumerate() {
        let full = ents.len() == cand && cand < m;
        let lowest = ents.iter().map(|e| e.z).fold(f32::INFINITY, f32::min);
        if full && lowest >= t {
            select::at_least(pre.row(b), t, &mut sel);
            ents.clear();
            ents.extend(sel.iter().map(|&(j, v)| Entry {
                j,
                z: v,
                pre: v,
                ..Entry::default()
            }));
            rescanned = true;
        }
    }
    if !rescanned {
        return t;
    }
    let mut values: Vec<f32> = main.iter().flatten().map(|e| e.z).collect();
    nth_largest(&mut values, n)
}

/// What one row's backward pass needs.
struct RowCtx<'a> {
    net: &'a SaeNetwork,
    prefixes: &'a [usize],
    objective: &'a SaeObjective,
    dec_norm: &'a [f32],
    inv_b: f32,
    lambda: f32,
    /// (α, s) when AuxK is on.
    aux: Option<(f32, f32)>,
}

impl RowCtx<'_> {
    /// Fills `xhat` and the row's gradient slots (the AuxK slot with `x̂ − x` only: see
    /// [`aux_rows`]), and each main entry's `slot`, `dpre` and `dthr`; returns the row's
    /// (mse, 0, sparsity, l0).
    fn backward_row(
        &self,
        x: &[f32],
        xhat: &mut [f32],
        slots: &mut [f32],
        main: &mut [Entry],
    ) -> [f64; 4] {
        let net = self.net;
        let d = x.len();
        let groups = self.prefixes.len();
        let coef = 2.0 * self.inv_b / groups as f32;
        xhat.copy_from_slice(&net.b_dec);
        let mut mse = 0.0f64;
        let mut at = 0;
        for (g, &end) in self.prefixes.iter().enumerate() {
            while at < main.len() && (main[at].j as usize) < end {
                let e = &mut main[at];
                e.slot = g as u32;
                if e.z != 0.0 {
                    axpy(e.z, net.w_dec.row(e.j as usize), xhat);
                }
                at += 1;
            }
            let s = &mut slots[g * d..(g + 1) * d];
            let mut sq = 0.0f64;
            for ((o, &h), &xv) in s.iter_mut().zip(xhat.iter()).zip(x) {
                let r = h - xv;
                sq += (r as f64) * (r as f64);
                *o = coef * r;
            }
            mse += sq;
        }
        mse /= groups as f64;
        for g in (0..groups - 1).rev() {
            let (lo, hi) = slots.split_at_mut((g + 1) * d);
            axpy(1.0, &hi[..d], &mut lo[g * d..]);
        }

        let (mut sparsity, mut l0) = (0.0f64, 0.0f64);
        let eps = self.objective.bandwidth;
        for e in main.iter_mut() {
            let j = e.j as usize;
            let s = e.slot as usize * d;
            let mut dz = dot(&slots[s..s + d], net.w_dec.row(j));
            if e.z > 0.0 {
                l0 += 1.0;
            }
            match net.kind {
                SaeKind::Relu => {
                    dz += self.lambda * self.inv_b * self.dec_norm[j];
                    sparsity += (e.z * self.dec_norm[j]) as f64;
                    e.dpre = dz;
                }
                SaeKind::TopK { .. } | SaeKind::BatchTopK { .. } => e.dpre = dz,
                SaeKind::JumpRelu => {
                    let theta = net.threshold[j];
                    if e.z > 0.0 {
                        e.dpre = dz;
                        sparsity += 1.0;
                    }
                    if (e.pre - theta).abs() < 0.5 * eps {
                        e.dthr = -(theta / eps) * dz - self.lambda * self.inv_b / eps;
                    }
                }
            }
        }

        if self.aux.is_some() {
            // ê − e = Σ z W_dec,j + (x̂ − x): its second part here, the sum in `aux_rows`.
            let s = &mut slots[groups * d..(groups + 1) * d];
            for ((o, &h), &xv) in s.iter_mut().zip(xhat.iter()).zip(x) {
                *o = h - xv;
            }
        }
        [mse, 0.0, sparsity, l0]
    }
}

/// One entry of Phase D's by-latent order, with what its latent's gradients need.
#[derive(Clone, Copy, Debug, Default)]
struct LatItem {
    b: u32,
    slot: u32,
    /// From the row's main selection; `false` for an AuxK entry, whose `dpre` Phase D
    /// computes as `⟨h_b, W_dec,j⟩` (its slot holds `h_b`).
    main: bool,
    z: f32,
    dpre: f32,
    dthr: f32,
}

/// Phase D for a run of latents: over each latent's entries (rows ascending),
/// `∂L/∂W_dec,j = Σ z_bj g_b` (the entry's gradient slot), `∂L/∂W_enc,j = Σ dpre_bj xin_b`
/// (an AuxK entry's `dpre_bj = ⟨h_b, W_dec,j⟩` computed here, while `h_b` is in cache for
/// the decoder gradient: a separate pass over the AuxK entries would read every `h_b` and
/// decoder row once more),
/// `∂L/∂b_enc,j = Σ dpre_bj`, `∂L/∂log θ_j = Σ dthr_bj`, and `Σ z_bj` over main entries.
///
/// A latent with few entries sums them in one go: its rows are scattered and each is read
/// once anyway. Latents with many (AuxK's dead latents take hundreds each) go block by block
/// of rows, all of them per block, so a block's input rows and slots are read from the L2
/// cache instead of memory. Either way each gradient row receives its terms in ascending
/// row order, one fused multiply-add each: the result does not depend on the blocking.
struct LatentGrads<'a> {
    d: usize,
    rows: usize,
    /// Rows per block.
    block: usize,
    xin: &'a Mat,
    slots: &'a Mat,
    w_dec: &'a Mat,
    /// `items[start[j]..start[j + 1]]` are latent `j`'s entries.
    start: &'a [usize],
    items: &'a [LatItem],
}

/// Phase D's buffers, reused from latent to latent.
#[derive(Default)]
struct Scratch<'a> {
    /// The decoder gradient's terms `(z_bj, g_b)`.
    dec: Vec<(f32, &'a [f32])>,
    /// The encoder gradient's terms `(dpre_bj, xin_b)`.
    enc: Vec<(f32, &'a [f32])>,
    /// The AuxK entries' `h_b`, and their `dpre_bj = ⟨h_b, W_dec,j⟩`.
    aux_rows: Vec<&'a [f32]>,
    aux_dpre: Vec<f32>,
}

/// The gradient rows of a run of latents, and the Σ z of their main entries.
struct LatentOut<'o> {
    gd: &'o mut [f32],
    ge: &'o mut [f32],
    gb: &'o mut [f32],
    gt: &'o mut [f32],
    zsum: &'o mut [f32],
}

impl<'a> LatentGrads<'a> {
    fn run(&self, (lo, hi): (usize, usize), out: &mut LatentOut<'_>) {
        out.gd.fill(0.0);
        out.ge.fill(0.0);
        out.gb.fill(0.0);
        out.gt.fill(0.0);
        out.zsum.fill(0.0);
        let nblocks = self.rows.div_ceil(self.block.max(1));
        let heavy_min = 2 * nblocks;
        let mut terms = Scratch::default();
        let mut heavy: Vec<usize> = Vec::new();
        for (r, j) in (lo..hi).enumerate() {
            let run = &self.items[self.start[j]..self.start[j + 1]];
            if nblocks > 1 && run.len() >= heavy_min {
                heavy.push(r);
            } else {
                self.add(run, j, r, out, &mut terms);
            }
        }
        if heavy.is_empty() {
            return;
        }
        let mut cursor: Vec<usize> = heavy.iter().map(|&r| self.start[lo + r]).collect();
        for blk in 1..=nblocks {
            let end_row = (blk * self.block).min(self.rows) as u32;
            for (c, &r) in cursor.iter_mut().zip(&heavy) {
                let end = self.start[lo + r + 1];
                let from = *c;
                while *c < end && self.items[*c].b < end_row {
                    *c += 1;
                }
                if *c > from {
                    self.add(&self.items[from..*c], lo + r, r, out, &mut terms);
                }
            }
        }
    }

    /// Adds the entries `run` of latent `j`, at offset `r` of the run.
    fn add(
        &self,
        run: &[LatItem],
        j: usize,
        r: usize,
        out: &mut LatentOut<'_>,
        t: &mut Scratch<'a>,
    ) {
        let d = self.d;
        let slot = |it: &LatItem| {
            let s = it.slot as usize * d;
            &self.slots.row(it.b as usize)[s..s + d]
        };
        // The AuxK entries' dpre first, four rows at a time.
        t.aux_rows.clear();
        t.aux_rows
            .extend(run.iter().filter(|it| !it.main).map(slot));
        t.aux_dpre.clear();
        t.aux_dpre.resize(t.aux_rows.len(), 0.0);
        gather_dot(self.w_dec.row(j), &t.aux_rows, &mut t.aux_dpre);
        let (dec, enc) = (&mut t.dec, &mut t.enc);
        dec.clear();
        enc.clear();
        let (mut db, mut dthr, mut zs) = (out.gb[r], out.gt[r], out.zsum[r]);
        let mut aux_dpre = t.aux_dpre.iter();
        for it in run {
            let b = it.b as usize;
            if it.z != 0.0 {
                dec.push((it.z, slot(it)));
                if it.main {
                    zs += it.z;
                }
            }
            let dpre = if it.main {
                it.dpre
            } else {
                *aux_dpre.next().expect("one dot per AuxK entry")
            };
            if dpre != 0.0 {
                enc.push((dpre, self.xin.row(b)));
                db += dpre;
            }
            dthr += it.dthr;
        }
        gather_axpy(&mut out.gd[r * d..(r + 1) * d], dec);
        gather_axpy(&mut out.ge[r * d..(r + 1) * d], enc);
        out.gb[r] = db;
        out.gt[r] = dthr;
        out.zsum[r] = zs;
    }
}

/// Bytes of input rows and gradient slots per block of Phase D's heavy latents: about the
/// L2 cache (measured: blocks of 256–1024 rows of 9 KiB beat 64 or 128 rows, and the
/// unblocked order, by a quarter to a third).
const LATENT_BLOCK_BYTES: usize = 3 << 20;

/// Bytes of per-row data a block of the blocked sparse products keeps in the L2 cache.
const BLOCK_BYTES: usize = 768 << 10;

/// Latents per tile of the AuxK reconstruction (their decoder rows, about half of them
/// dead, share the L2 cache with a block's slots).
const AUX_TILE_LATENTS: usize = 512;

/// Rows per block when each row holds `bytes` of data the block reuses.
fn block_rows(bytes: usize) -> usize {
    (BLOCK_BYTES / bytes.max(1)).clamp(8, 4096)
}

/// The AuxK part of Phase B for a run of rows: `ê_b = Σ_{j ∈ Aux_b} pre_bj W_dec,j` added
/// to each row's AuxK slot (which holds `x̂_b − x_b`), the row's AuxK loss, and the slot
/// scaled into `h_b` (each AuxK entry's `dpre = ⟨h_b, W_dec,j⟩` is Phase D's: see
/// [`LatentGrads`]).
///
/// The rows go in blocks whose slots stay in the L2 cache, and each block in tiles of
/// [`AUX_TILE_LATENTS`] latents whose decoder rows stay there too: a decoder row is loaded
/// from memory once per block instead of once per entry, and a slot once per tile instead
/// of once per entry. Each slot still receives its terms in ascending latent order, one
/// fused multiply-add each: the result is the row-by-row computation's, bit for bit.
struct AuxRows<'a> {
    net: &'a SaeNetwork,
    /// Where the AuxK slot starts in a row of `slots`.
    offset: usize,
    /// Length of a row of `slots`.
    width: usize,
    alpha: f32,
    scale: f32,
    inv_b: f32,
}

impl AuxRows<'_> {
    fn run(&self, slots: &mut [f32], aux: &[Vec<Entry>], losses: &mut [[f64; 4]]) {
        let (m, d) = (self.net.d_sae(), self.net.d_in());
        let rows = aux.len();
        let step = block_rows(d * std::mem::size_of::<f32>());
        let mut cursor = vec![0usize; step.min(rows)];
        let mut terms: Vec<(f32, &[f32])> = Vec::new();
        let slot = |r: usize| r * self.width + self.offset;
        let c = 2.0 * self.alpha * self.scale * self.inv_b;
        for lo in (0..rows).step_by(step) {
            let hi = (lo + step).min(rows);
            cursor.fill(0);
            // Tile by tile of latents (ascending), each row's entries of the tile in one
            // gathered update (a row's entries ascend by latent).
            for t1 in (AUX_TILE_LATENTS..m + AUX_TILE_LATENTS).step_by(AUX_TILE_LATENTS) {
                for (r, at) in (lo..hi).zip(cursor.iter_mut()) {
                    let ents = &aux[r];
                    terms.clear();
                    while *at < ents.len() && (ents[*at].j as usize) < t1 {
                        let e = &ents[*at];
                        terms.push((e.z, self.net.w_dec.row(e.j as usize)));
                        *at += 1;
                    }
                    if !terms.is_empty() {
                        gather_axpy(&mut slots[slot(r)..slot(r) + d], &terms);
                    }
                }
            }
            for r in lo..hi {
                let s = &mut slots[slot(r)..slot(r) + d];
                let sq: f64 = s.iter().map(|&v| (v as f64) * (v as f64)).sum();
                losses[r][1] = (self.alpha * self.scale) as f64 * sq;
                s.iter_mut().for_each(|v| *v *= c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// The AuxK reconstruction by blocks of rows and tiles of latents gives the row-by-row
    /// axpys bit for bit, over several tiles and blocks.
    #[test]
    fn tiled_aux_reconstruction_equals_row_by_row_axpys() {
        let mut rng = crate::rng::seeded(11);
        let (m, d, rows) = (3 * AUX_TILE_LATENTS + 37, 20, 2 * block_rows(20 * 4) + 5);
        let net = SaeNetwork::init(SaeKind::TopK { k: 4 }, d, m, 1.0, 0.0, &mut rng);
        let (offset, width) = (d, 2 * d);
        let slots0: Vec<f32> = (0..rows * width)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let aux: Vec<Vec<Entry>> = (0..rows)
            .map(|_| {
                let mut ents = Vec::new();
                for j in 0..m as u32 {
                    if rng.gen_bool(0.02) {
                        let z = rng.gen_range(0.0..2.0);
                        ents.push(Entry {
                            j,
                            z,
                            ..Entry::default()
                        });
                    }
                }
                ents
            })
            .collect();
        let c = AuxRows {
            net: &net,
            offset,
            width,
            alpha: 0.25,
            scale: 0.5,
            inv_b: 1.0 / rows as f32,
        };
        let mut got = slots0.clone();
        let mut losses = vec![[0.0f64; 4]; rows];
        c.run(&mut got, &aux, &mut losses);
        let mut want = slots0;
        let k = 2.0 * 0.25 * 0.5 / rows as f32;
        for (r, ents) in aux.iter().enumerate() {
            let s = &mut want[r * width + offset..r * width + offset + d];
            for e in ents {
                axpy(e.z, net.w_dec().row(e.j as usize), s);
            }
            let sq: f64 = s.iter().map(|&v| (v as f64) * (v as f64)).sum();
            assert_eq!(losses[r][1], 0.125 * sq, "row {r}");
            s.iter_mut().for_each(|v| *v *= k);
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    /// Phase D by blocks of rows gives the unblocked sums bit for bit, heavy and light
    /// latents mixed, main and AuxK entries, zero coefficients included.
    #[test]
    fn blocked_latent_gradients_equal_the_unblocked_ones() {
        let mut rng = crate::rng::seeded(7);
        let (rows, d, m, nslots) = (300, 19, 13, 2);
        let width = nslots * d;
        let mut rand_mat = |r: usize, c: usize| {
            Mat::from_vec(r, c, (0..r * c).map(|_| rng.gen_range(-1.0..1.0)).collect())
        };
        let (xin, slots, w_dec) = (rand_mat(rows, d), rand_mat(rows, width), rand_mat(m, d));
        // Latent j takes each row with probability (j + 1) / m: from light to heavy.
        let mut start = vec![0usize];
        let mut items = Vec::new();
        for j in 0..m {
            for b in 0..rows {
                if rng.gen_bool((j + 1) as f64 / m as f64) {
                    let z = if rng.gen_bool(0.2) {
                        0.0
                    } else {
                        rng.gen_range(-2.0..2.0)
                    };
                    items.push(LatItem {
                        b: b as u32,
                        slot: rng.gen_range(0..nslots) as u32,
                        main: rng.gen_bool(0.5),
                        z,
                        dpre: if rng.gen_bool(0.2) {
                            0.0
                        } else {
                            rng.gen_range(-2.0..2.0)
                        },
                        dthr: rng.gen_range(-1.0..1.0),
                    });
                }
            }
            start.push(items.len());
        }
        let grads = |block: usize, (lo, hi): (usize, usize)| {
            let n = hi - lo;
            let (mut gd, mut ge) = (vec![9.0f32; n * d], vec![9.0f32; n * d]);
            let (mut gb, mut gt, mut zs) = (vec![9.0f32; n], vec![9.0f32; n], vec![9.0f32; n]);
            let lg = LatentGrads {
                d,
                rows,
                block,
                xin: &xin,
                slots: &slots,
                w_dec: &w_dec,
                start: &start,
                items: &items,
            };
            lg.run(
                (lo, hi),
                &mut LatentOut {
                    gd: &mut gd,
                    ge: &mut ge,
                    gb: &mut gb,
                    gt: &mut gt,
                    zsum: &mut zs,
                },
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            [bits(&gd), bits(&ge), bits(&gb), bits(&gt), bits(&zs)]
        };
        let whole = grads(rows, (0, m));
        // The unblocked sums by hand for one heavy latent.
        let j = m - 1;
        let mut want = vec![0.0f32; d];
        for it in &items[start[j]..start[j + 1]] {
            if it.z != 0.0 {
                let s = it.slot as usize * d;
                axpy(it.z, &slots.row(it.b as usize)[s..s + d], &mut want);
            }
        }
        let got: Vec<u32> = whole[0][j * d..(j + 1) * d].to_vec();
        assert_eq!(got, want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        for block in [1, 7, 32, 64, 299] {
            assert_eq!(grads(block, (0, m)), whole, "block {block}");
            let part = grads(block, (3, 11));
            for (p, w) in part.iter().zip(&whole) {
                let per = p.len() / 8;
                assert_eq!(p[..], w[3 * per..11 * per], "block {block}, latents 3..11");
            }
        }
    }
}

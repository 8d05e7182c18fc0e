//! The unrolled shrinkage recurrence shared by DrSAE and LISTA:
//!
//! `Z¹ = shrink_θ(A)`, `Zᵗ = shrink_θ(A + Zᵗ⁻¹ Sᵀ)` for t = 2..T,
//!
//! on a batch (rows are examples). DrSAE uses the ReLU form with θ = 0 (its bias is folded
//! into A); LISTA uses the signed form with a per-unit θ (LISTA with T iterations is this
//! recurrence with T + 1 steps). All T code matrices are kept, stacked as a `(T·B) × n`
//! matrix, for back-propagation through time; the derivative of either shrink is 1 exactly
//! where its output is non-zero, so the codes are all the backward pass needs.
//!
//! The codes are sparse (a DrSAE trained on MNIST has 10–25 % of its units on after the
//! first step), and so are the back-propagated `δUᵗ`, which are masked by them: the products
//! with S skip their zeros ([`sparse_gemm`], [`sparse_t_gemm`]).

use crate::kernels::{shrink, shrink_backward, shrink_in_place, Shrink, Theta};
use crate::linalg::sparse_gemm::{sparse_gemm_packed, PackedRhs};
use crate::linalg::{axpy, sparse_t_gemm, transpose_into, Mat, MatMut, MatRef};

/// Scratch of the recurrence's passes: Sᵀ, and S or Sᵀ packed for the sparse products
/// (packed once per pass, used by every step).
#[derive(Clone, Debug, Default)]
pub(crate) struct RecurrenceScratch {
    s_t: Mat,
    packed: PackedRhs,
}

/// Forward pass: fills `zs` (resized to `(T·B) × n`) with `Z¹ … Zᵀ` (`scratch` receives
/// Sᵀ, whose rows the sparse products read).
#[track_caller]
pub(crate) fn unroll_forward(
    a: &Mat,
    s: &Mat,
    kind: Shrink,
    theta: Theta<'_>,
    steps: usize,
    zs: &mut Mat,
    scratch: &mut RecurrenceScratch,
) {
    let (batch, n) = a.shape();
    assert_eq!(
        s.shape(),
        (n, n),
        "S is {:?}, codes have {n} units",
        s.shape()
    );
    assert!(steps >= 1, "the recurrence needs at least one step");
    zs.resize_rows(steps * batch);
    {
        let z1 = &mut zs.as_mut_slice()[..batch * n];
        shrink(kind, theta, a.as_slice(), z1);
    }
    let RecurrenceScratch { s_t, packed } = scratch;
    if steps > 1 {
        if s_t.shape() != (n, n) {
            *s_t = Mat::zeros(n, n);
        }
        transpose_into(s.as_slice(), n, n, s_t.as_mut_slice(), n);
        packed.pack(s_t.view());
    }
    for t in 1..steps {
        let (prev, cur) =
            zs.as_mut_slice()[(t - 1) * batch * n..(t + 1) * batch * n].split_at_mut(batch * n);
        cur.copy_from_slice(a.as_slice());
        let prev = MatRef::from_slice(prev, batch, n);
        // Zᵗ⁻¹ Sᵀ: row b is Σ_j z_j · (row j of Sᵀ) over the active units j.
        sparse_gemm_packed(
            1.0,
            prev,
            s_t.view(),
            packed,
            1.0,
            MatMut::from_slice(cur, batch, n),
        );
        shrink_in_place(kind, theta, cur);
    }
}

/// Block `t` (0-based) of a stacked `(T·B) × n` matrix.
pub(crate) fn block(m: &Mat, t: usize, batch: usize) -> MatRef<'_> {
    m.row_range(t * batch, (t + 1) * batch)
}

/// Backward pass: given `g_top = ∂L/∂Zᵀ` (B × n, overwritten as scratch), fills `du`
/// (resized to `(T·B) × n`) with `δUᵗ = ∂L/∂Uᵗ` for t = 1..T, where `Uᵗ` is the input of
/// step t's shrink:
/// `δUᵗ = Ḡᵗ ⊙ [Zᵗ ≠ 0]`, `Ḡᵗ⁻¹ = δUᵗ S` (`scratch` receives S packed).
pub(crate) fn unroll_backward(
    g_top: &mut Mat,
    s: &Mat,
    zs: &Mat,
    steps: usize,
    du: &mut Mat,
    scratch: &mut RecurrenceScratch,
) {
    let batch = g_top.nrows();
    let n = g_top.ncols();
    du.resize_rows(steps * batch);
    if steps > 1 {
        scratch.packed.pack(s.view());
    }
    for t in (0..steps).rev() {
        {
            let zt = &zs.as_slice()[t * batch * n..(t + 1) * batch * n];
            let dut = &mut du.as_mut_slice()[t * batch * n..(t + 1) * batch * n];
            shrink_backward(zt, g_top.as_slice(), dut);
        }
        if t > 0 {
            // δUᵗ S: row b is Σ_i δu_i · (row i of S) over the units i active at step t.
            let du_t = block(du, t, batch);
            sparse_gemm_packed(1.0, du_t, s.view(), &scratch.packed, 0.0, g_top.view_mut());
        }
    }
}

/// `∂S ← α Σ_{t≥2} δUᵗᵀ Zᵗ⁻¹ + β ∂S` as one GEMM with inner dimension `(T−1)·B`.
pub(crate) fn grad_recurrent(
    du: &Mat,
    zs: &Mat,
    steps: usize,
    batch: usize,
    alpha: f32,
    beta: f32,
    ds: &mut Mat,
) {
    if steps < 2 {
        ds.as_mut_slice().iter_mut().for_each(|v| *v *= beta);
        return;
    }
    let later = du.row_range(batch, steps * batch);
    let earlier = zs.row_range(0, (steps - 1) * batch);
    sparse_t_gemm(alpha, later, earlier, beta, ds.view_mut());
}

/// `∂A ← Σ_t δUᵗ` (B × n).
pub(crate) fn grad_input(du: &Mat, steps: usize, da: &mut Mat) {
    let len = da.nrows() * da.ncols();
    da.as_mut_slice().copy_from_slice(&du.as_slice()[..len]);
    for t in 1..steps {
        axpy(
            1.0,
            &du.as_slice()[t * len..(t + 1) * len],
            da.as_mut_slice(),
        );
    }
}

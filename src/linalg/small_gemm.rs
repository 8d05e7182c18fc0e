//! A packing-free GEMM for few rows (m ≤ 12, the minibatch-10 shapes of DrSAE and LISTA)
//! times a transposed row-major matrix: `C = A·Wᵀ`, A's and W's rows contiguous along k
//! (the encoder `X·Eᵀ`, the recurrence `Z·Sᵀ`, the decoder `Z·Dᵀ`).
//!
//! matrixmultiply packs B into panels on every call; with 10 rows the packing of a
//! 400 × 400 W costs about as much as the multiply itself, and its 8-row micro-tiles leave
//! a 10-row A two-thirds used. Here `C[i, j] = Σ_k A[i, k..k+8]·W[j, k..k+8]` with one
//! accumulator register per row of A, each row of W streamed once, reduced at the end.
//! Measured at 10 × 400 × 400 on one core (`bench kernels`): 67 GFLOP/s against
//! matrixmultiply's 27.
//!
//! The other layout (B's columns contiguous, `C[i, j..j+8] += A[i, k]·B[k, j..j+8]`) was
//! tried and measured no faster than matrixmultiply end to end even when swept over bands
//! of B rows, so it stays with matrixmultiply.
//!
//! Each element of C is computed by one fixed sequence of operations whatever the column
//! block it is in, so splitting C's columns over threads does not change the result.

use super::load8_ptr;
use wide::f32x8;

/// Largest row count served here.
pub(crate) const SMALL_M: usize = 12;

/// True when the packing-free kernel serves a GEMM with `m` rows and these strides: A's
/// rows and B's columns contiguous along k, C row-major (otherwise matrixmultiply runs).
pub(crate) fn few_rows_applies(m: usize, acs: isize, brs: isize, bcs: isize, ccs: isize) -> bool {
    m > 0 && m <= SMALL_M && ccs == 1 && brs == 1 && acs == 1 && bcs != 1
}

/// `C ← α·A·Wᵀ + β·C`, B = Wᵀ given by its column stride `bcs` (W's row stride); β = 0
/// ignores C's old values, NaN included, as matrixmultiply does.
///
/// # Safety
/// The pointers with their strides must address valid `m × k`, `k × n` and `m × n`
/// matrices (C writable and not overlapping A or B), with unit column stride for A and C
/// and unit row stride for B ([`few_rows_applies`]), and `1 ≤ m ≤ SMALL_M`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn few_rows_gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    ars: isize,
    b: *const f32,
    bcs: isize,
    beta: f32,
    c: *mut f32,
    crs: isize,
) {
    macro_rules! dispatch {
        ($($m:literal)*) => {
            match m {
                $($m => dots::<$m>(k, n, alpha, a, ars, b, bcs, beta, c, crs),)*
                _ => unreachable!("few_rows_gemm with {m} rows"),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12)
}

#[inline(always)]
unsafe fn store(c: *mut f32, alpha: f32, beta: f32, v: f32) {
    *c = if beta == 0.0 {
        alpha * v
    } else {
        alpha * v + beta * *c
    };
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn dots<const M: usize>(
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    ars: isize,
    b: *const f32,
    bcs: isize,
    beta: f32,
    c: *mut f32,
    crs: isize,
) {
    let k8 = k / 8 * 8;
    for j in 0..n {
        let bp = b.offset(j as isize * bcs);
        let mut acc = [f32x8::ZERO; M];
        let mut kk = 0;
        while kk < k8 {
            let bv = load8_ptr(bp.add(kk));
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = load8_ptr(a.offset(i as isize * ars).add(kk));
                *acc = av.mul_add(bv, *acc);
            }
            kk += 8;
        }
        for (i, acc) in acc.iter().enumerate() {
            let ap = a.offset(i as isize * ars);
            let mut s = acc.reduce_add();
            for t in k8..k {
                s += *ap.add(t) * *bp.add(t);
            }
            store(c.offset(i as isize * crs + j as isize), alpha, beta, s);
        }
    }
}

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
    debug_assert!((1..=SMALL_M).contains(&m));
    // Tiles of 2 rows of A × 4 rows of W: per 8-wide k chunk, 6 loads feed 8 FMAs (one row
    // at a time, 11 loads fed 10 and the loads bounded the kernel). The 4 rows of W
    // (4·k floats) and all of A stay in L1 while the row pairs pass over them.
    let mut j = 0;
    while j + 4 <= n {
        tile::<4>(m, k, j, alpha, a, ars, b, bcs, beta, c, crs);
        j += 4;
    }
    while j < n {
        tile::<1>(m, k, j, alpha, a, ars, b, bcs, beta, c, crs);
        j += 1;
    }
}

#[inline(always)]
unsafe fn store(c: *mut f32, alpha: f32, beta: f32, v: f32) {
    *c = if beta == 0.0 {
        alpha * v
    } else {
        alpha * v + beta * *c
    };
}

/// Columns `j..j + NJ` of C (rows `j..j + NJ` of W) for all m rows of A.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<const NJ: usize>(
    m: usize,
    k: usize,
    j: usize,
    alpha: f32,
    a: *const f32,
    ars: isize,
    b: *const f32,
    bcs: isize,
    beta: f32,
    c: *mut f32,
    crs: isize,
) {
    let bp: [*const f32; NJ] = std::array::from_fn(|t| b.offset((j + t) as isize * bcs));
    let rows = |i: usize, mr: usize| {
        let c = c.offset(i as isize * crs).add(j);
        if mr == 2 {
            let ap = [a.offset(i as isize * ars), a.offset((i + 1) as isize * ars)];
            finish::<2, NJ>(k, ap, bp, accumulate(k, ap, bp), alpha, beta, c, crs);
        } else {
            let ap = [a.offset(i as isize * ars)];
            finish::<1, NJ>(k, ap, bp, accumulate(k, ap, bp), alpha, beta, c, crs);
        }
    };
    let mut i = 0;
    while i < m {
        let mr = (m - i).min(2);
        rows(i, mr);
        i += mr;
    }
}

/// `acc[r][t] = Σ_chunks A[r, chunk] ⊙ W[t, chunk]` over the whole 8-wide chunks of k.
#[inline(always)]
unsafe fn accumulate<const MR: usize, const NJ: usize>(
    k: usize,
    ap: [*const f32; MR],
    bp: [*const f32; NJ],
) -> [[f32x8; NJ]; MR] {
    let k8 = k / 8 * 8;
    let mut acc = [[f32x8::ZERO; NJ]; MR];
    let mut kk = 0;
    while kk < k8 {
        let av: [f32x8; MR] = std::array::from_fn(|r| load8_ptr(ap[r].add(kk)));
        for t in 0..NJ {
            let bv = load8_ptr(bp[t].add(kk));
            for r in 0..MR {
                acc[r][t] = av[r].mul_add(bv, acc[r][t]);
            }
        }
        kk += 8;
    }
    acc
}

/// Reduces each accumulator, adds the k tail and stores `α·dot + β·C`. Every element of C
/// gets the same sequence (chunk sums in order, horizontal sum, tail) whatever its tile.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn finish<const MR: usize, const NJ: usize>(
    k: usize,
    ap: [*const f32; MR],
    bp: [*const f32; NJ],
    acc: [[f32x8; NJ]; MR],
    alpha: f32,
    beta: f32,
    c: *mut f32,
    crs: isize,
) {
    let k8 = k / 8 * 8;
    for r in 0..MR {
        for t in 0..NJ {
            let mut s = acc[r][t].reduce_add();
            for u in k8..k {
                s += *ap[r].add(u) * *bp[t].add(u);
            }
            store(c.offset(r as isize * crs).add(t), alpha, beta, s);
        }
    }
}

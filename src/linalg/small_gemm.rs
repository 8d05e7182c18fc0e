//! A packing-free GEMM for few rows (m ≤ 12, the minibatch-10 shapes of DrSAE and LISTA)
//! times a transposed row-major matrix: `C = A·Wᵀ`, A's and W's rows contiguous along k
//! (the encoder `X·Eᵀ`, the recurrence `Z·Sᵀ`, the decoder `Z·Dᵀ`).
//!
//! matrixmultiply packs B into panels on every call; with 10 rows the packing of a
//! 400 × 400 W costs about as much as the multiply itself, and its 8-row micro-tiles leave
//! a 10-row A two-thirds used. Here `C[i, j] = Σ_k A[i, k..k+8]·W[j, k..k+8]` with one
//! accumulator register per row of A, each row of W streamed once, reduced at the end.
//! Measured at 10 × 400 × 400 on one core: 69 GFLOP/s against matrixmultiply's 25.
//!
//! The other layout (B's columns contiguous, `C[i, j..j+8] += A[i, k]·B[k, j..j+8]`) was
//! tried and measured no faster than matrixmultiply even when swept over bands of B rows
//! (35 against 28 GFLOP/s on one core, slower end to end), so it stays with matrixmultiply.
//!
//! Each element of C is computed by one fixed sequence of operations whatever the column
//! block it is in, so splitting C's columns over threads does not change the result.

use wide::f32x8;

/// Largest row count served here.
pub(crate) const SMALL_M: usize = 12;

/// The packing-free layout (the only one: dot products of contiguous rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmallLayout {
    Dots,
}

/// The layout for `m` rows and the given strides, or `None` (then matrixmultiply runs):
/// A's rows and B's columns contiguous along k, C row-major.
pub(crate) fn small_layout(
    m: usize,
    acs: isize,
    brs: isize,
    bcs: isize,
    ccs: isize,
) -> Option<SmallLayout> {
    (m > 0 && m <= SMALL_M && ccs == 1 && brs == 1 && acs == 1 && bcs != 1)
        .then_some(SmallLayout::Dots)
}

/// `C ← α·A·B + β·C` for an `m × k` A and `k × n` B in the given layout (β = 0 ignores C's
/// old values, NaN included, as matrixmultiply does).
///
/// # Safety
/// The pointers with their strides must address valid `m × k`, `k × n` and `m × n`
/// matrices (C writable and not overlapping A or B), and the layout must be the one
/// [`small_layout`] returned for these strides.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn small_gemm(
    layout: SmallLayout,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    ars: isize,
    acs: isize,
    b: *const f32,
    brs: isize,
    bcs: isize,
    beta: f32,
    c: *mut f32,
    crs: isize,
) {
    macro_rules! dispatch {
        ($f:ident) => {
            match m {
                1 => $f::<1>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                2 => $f::<2>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                3 => $f::<3>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                4 => $f::<4>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                5 => $f::<5>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                6 => $f::<6>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                7 => $f::<7>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                8 => $f::<8>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                9 => $f::<9>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                10 => $f::<10>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                11 => $f::<11>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                12 => $f::<12>(k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs),
                _ => unreachable!("small_gemm with {m} rows"),
            }
        };
    }
    match layout {
        SmallLayout::Dots => dispatch!(dots),
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

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn dots<const M: usize>(
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    ars: isize,
    _acs: isize,
    b: *const f32,
    _brs: isize,
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
            let bv = f32x8::from(std::ptr::read_unaligned(bp.add(kk) as *const [f32; 8]));
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = f32x8::from(std::ptr::read_unaligned(
                    a.offset(i as isize * ars).add(kk) as *const [f32; 8]
                ));
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

//! A packing-free GEMM for few rows (m ≤ 12, the minibatch-10 shapes of DrSAE and LISTA)
//! times a transposed row-major matrix: `C = A·Wᵀ`, A's and W's rows contiguous along k
//! (the encoder `X·Eᵀ`, the recurrence `Z·Sᵀ`, the decoder `Z·Dᵀ`).
//!
//! matrixmultiply packs B into panels on every call; with 10 rows the packing of a
//! 400 × 400 W costs about as much as the multiply itself, and its 8-row micro-tiles leave
//! a 10-row A two-thirds used. Here `C[i, j] = Σ_k A[i, k..k+8]·W[j, k..k+8]` with one
//! accumulator register per row of A, each row of W streamed once, reduced at the end.
//! `bench kernels` measures it against matrixmultiply at these shapes (BENCHMARKS.md).
//!
//! The other layout (B's columns contiguous, `C[i, j..j+8] += A[i, k]·B[k, j..j+8]`) was
//! tried and measured no faster than matrixmultiply end to end even when swept over bands
//! of B rows, so it stays with matrixmultiply.
//!
//! Each element of C is computed by one fixed sequence of operations whatever the column
//! block it is in, so splitting C's columns over threads does not change the result.

use crate::simd::{dispatch, Isa, Kernel, Simd};

/// Largest row count served here.
pub(crate) const SMALL_M: usize = 12;

/// True when the packing-free kernel serves a GEMM with `m` rows and these strides: A's
/// rows and B's columns contiguous along k, C row-major (otherwise matrixmultiply runs).
pub(crate) fn few_rows_applies(m: usize, acs: isize, brs: isize, bcs: isize, ccs: isize) -> bool {
    m > 0 && m <= SMALL_M && ccs == 1 && brs == 1 && acs == 1 && bcs != 1
}

/// `C ← α·A·Wᵀ + β·C`, B = Wᵀ given by its column stride `bcs` (W's row stride); β = 0
/// ignores C's old values, NaN included, as matrixmultiply does. Runs at the level
/// [`simd::level`](crate::simd::level): the k direction in vectors of its width (16 on
/// AVX-512, 8 otherwise) with fused multiply-adds on the x86 levels.
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
    few_rows_gemm_at(Isa::current(), m, k, n, alpha, a, ars, b, bcs, beta, c, crs)
}

/// [`few_rows_gemm`] at the level `isa`.
///
/// # Safety
/// As for [`few_rows_gemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn few_rows_gemm_at(
    isa: Isa,
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
    let g = FewRows {
        m,
        k,
        n,
        alpha,
        a,
        ars,
        b,
        bcs,
        beta,
        c,
        crs,
    };
    dispatch(isa, g)
}

/// The operands of one [`few_rows_gemm`]; built only there, under its safety contract.
struct FewRows {
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
}

impl Kernel for FewRows {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let g = &self;
        // Tiles of 2 rows of A × 4 rows of W: per vector of k, 6 loads feed 8 FMAs (one row
        // at a time, 11 loads fed 10 and the loads bounded the kernel). The 4 rows of W
        // (4·k floats) and all of A stay in L1 while the row pairs pass over them.
        let mut j = 0;
        // SAFETY: `FewRows` is built only by `few_rows_gemm_at`, whose caller guarantees
        // valid m × k, k × n and m × n operands; the tiles read rows j..j + NJ < n of W and
        // write columns j..j + NJ of C.
        unsafe {
            while j + 4 <= g.n {
                tile::<S, 4>(s, g, j);
                j += 4;
            }
            while j < g.n {
                tile::<S, 1>(s, g, j);
                j += 1;
            }
        }
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
#[inline(always)]
unsafe fn tile<S: Simd, const NJ: usize>(s: S, g: &FewRows, j: usize) {
    let FewRows {
        m,
        k,
        alpha,
        a,
        ars,
        b,
        bcs,
        beta,
        c,
        crs,
        ..
    } = *g;
    let bp: [*const f32; NJ] = std::array::from_fn(|t| b.offset((j + t) as isize * bcs));
    let mut i = 0;
    while i < m {
        let c = c.offset(i as isize * crs).add(j);
        if m - i >= 2 {
            let ap = [a.offset(i as isize * ars), a.offset((i + 1) as isize * ars)];
            let acc = accumulate::<S, 2, NJ>(s, k, ap, bp);
            finish::<S, 2, NJ>(s, k, ap, bp, acc, alpha, beta, c, crs);
            i += 2;
        } else {
            let ap = [a.offset(i as isize * ars)];
            let acc = accumulate::<S, 1, NJ>(s, k, ap, bp);
            finish::<S, 1, NJ>(s, k, ap, bp, acc, alpha, beta, c, crs);
            i += 1;
        }
    }
}

/// `acc[r][t] = Σ_chunks A[r, chunk] ⊙ W[t, chunk]` over the whole vectors of k.
#[inline(always)]
unsafe fn accumulate<S: Simd, const MR: usize, const NJ: usize>(
    s: S,
    k: usize,
    ap: [*const f32; MR],
    bp: [*const f32; NJ],
) -> [[S::V; NJ]; MR] {
    let l = S::LANES;
    let kv = k / l * l;
    let mut acc = [[s.zero(); NJ]; MR];
    let mut kk = 0;
    while kk < kv {
        let av: [S::V; MR] = std::array::from_fn(|r| s.load(ap[r].add(kk)));
        for t in 0..NJ {
            let bv = s.load(bp[t].add(kk));
            for r in 0..MR {
                acc[r][t] = s.mul_add(av[r], bv, acc[r][t]);
            }
        }
        kk += l;
    }
    acc
}

/// Reduces each accumulator, adds the k tail and stores `α·dot + β·C`. Every element of C
/// gets the same sequence (chunk sums in order, horizontal sum, tail) whatever its tile.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn finish<S: Simd, const MR: usize, const NJ: usize>(
    s: S,
    k: usize,
    ap: [*const f32; MR],
    bp: [*const f32; NJ],
    acc: [[S::V; NJ]; MR],
    alpha: f32,
    beta: f32,
    c: *mut f32,
    crs: isize,
) {
    let kv = k / S::LANES * S::LANES;
    for r in 0..MR {
        for t in 0..NJ {
            let mut sum = s.reduce_add(acc[r][t]);
            for u in kv..k {
                sum += *ap[r].add(u) * *bp[t].add(u);
            }
            store(c.offset(r as isize * crs).add(t), alpha, beta, sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `C = α·A·Wᵀ + β·C` by the few-row kernel at `isa`, A `m × k`, W `n × k`.
    fn run(isa: Isa, a: &[f32], w: &[f32], m: usize, k: usize, n: usize, beta: f32, c: &mut [f32]) {
        assert!(a.len() == m * k && w.len() == n * k && c.len() == m * n);
        // SAFETY: A is m × k row-major, Wᵀ is W's storage read with row stride 1 and column
        // stride k, C is m × n row-major; C is a separate buffer.
        unsafe {
            let ks = k.max(1) as isize;
            few_rows_gemm_at(
                isa,
                m,
                k,
                n,
                0.5,
                a.as_ptr(),
                ks,
                w.as_ptr(),
                ks,
                beta,
                c.as_mut_ptr(),
                n as isize,
            )
        }
    }

    /// Against an f64 reference on every level: each element within `2·k·ε·Σ|a·w|` (plus
    /// the β term's rounding): the levels differ from each other by the order of the sum and
    /// by fused (one-rounding) multiply-adds on the x86 levels, each partial sum within
    /// about one rounding.
    #[test]
    fn matches_f64_reference_on_every_level() {
        for isa in Isa::all() {
            for k in (0..=40).chain([257, 1031]) {
                for (m, n) in [(1, 1), (2, 5), (3, 9), (10, 13), (12, 4)] {
                    let a: Vec<f32> = (0..m * k)
                        .map(|i| ((i * 7 % 19) as f32 - 9.0) * 0.11)
                        .collect();
                    let w: Vec<f32> = (0..n * k)
                        .map(|i| ((i * 5 % 23) as f32 - 11.0) * 0.07)
                        .collect();
                    let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.25 - 1.0).collect();
                    for beta in [0.0f32, 1.0, -0.5] {
                        let mut c = c0.clone();
                        run(isa, &a, &w, m, k, n, beta, &mut c);
                        for i in 0..m {
                            for j in 0..n {
                                let (mut d, mut abs) = (0.0f64, 0.0f64);
                                for u in 0..k {
                                    let p = a[i * k + u] as f64 * w[j * k + u] as f64;
                                    d += p;
                                    abs += p.abs();
                                }
                                let want = 0.5 * d + beta as f64 * c0[i * n + j] as f64;
                                let tol = (2.0 * k as f64 * abs + 4.0 * want.abs() + 4.0)
                                    * f32::EPSILON as f64;
                                let got = c[i * n + j] as f64;
                                assert!(
                                    (got - want).abs() <= tol,
                                    "{isa:?} {m}×{k}×{n} β={beta} ({i}, {j}): {got} {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn special_values_propagate_on_every_level() {
        let (m, k, n) = (3, 37, 6);
        for isa in Isa::all() {
            let mut a = vec![1.0f32; m * k];
            let w = vec![0.5f32; n * k];
            a[5] = f32::NAN; // row 0, in a whole vector
            a[k + 36] = f32::INFINITY; // row 1, in the tail
            a[2 * k + 3] = f32::MIN_POSITIVE / 8.0; // row 2, a denormal
            a[2 * k + 4] = -0.0;
            let mut c = vec![f32::NAN; m * n];
            run(isa, &a, &w, m, k, n, 0.0, &mut c);
            for j in 0..n {
                assert!(c[j].is_nan(), "{isa:?}");
                assert_eq!(c[n + j], f32::INFINITY, "{isa:?}");
                // 35 ones (the denormal and -0 add nothing visible), ·0.5 twice: 8.75.
                assert_eq!(c[2 * n + j], 8.75, "{isa:?}: β = 0 ignores NaN in C");
            }
        }
    }
}

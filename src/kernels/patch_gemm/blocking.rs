//! How the two products are cut up for the micro-kernels: column blocks of at most four
//! vectors (two for the tn products), blocks of B's rows and chunks of G's rows sized for
//! L1, register tile shapes, and the loop nests that walk them — [`rows`] for
//! [`gathered_gemm`](super::gathered_gemm) and
//! [`gathered_gemm_relu`](super::gathered_gemm_relu), [`tn`] for
//! [`gathered_gemm_tn`](super::gathered_gemm_tn) and
//! [`gathered_gemm_scatter`](super::gathered_gemm_scatter).

use super::index::Gathered;
use super::micro::{reduce_tiles, rows_tile};
use super::pack::{pack_b, Operand};
use super::sink::{BlockSink, Dense, RowsSink};
use super::L;
use crate::simd::Simd;

/// Rows of B per block of [`gathered_gemm`](super::gathered_gemm) (B blocks of at most
/// 128 × 32 values, 16 KB).
const KC: usize = 128;

/// Rows of G per chunk of [`gathered_gemm_tn`](super::gathered_gemm_tn) (at most
/// 128 × 16 values, 8 KB).
const MC: usize = 128;

/// Vectors of G's columns per tile of [`gathered_gemm_tn`](super::gathered_gemm_tn):
/// 2 × 8 columns with 5 columns of A (a 5 × 5 kernel's 25 taps in 5 even passes); 4 × 8
/// with 3 measured the same within noise.
const TN_VECTORS: usize = 2;

/// Register tile rows for V vectors of columns: at most 12 accumulators plus the V vectors
/// of the other operand and a broadcast stay in the 16 AVX registers.
const fn tile_rows(v: usize) -> usize {
    match v {
        1 => 7,
        2 => 5,
        _ => 3,
    }
}

/// Runs `$body` with the const `$v` set to the number of 8-column vectors in `$width`
/// (1 to `$max` ≤ 4): the one place where a column block's width becomes a tile shape.
macro_rules! with_vectors {
    ($width:expr, $max:expr, $v:ident => $body:expr) => {
        match ($width / L).min($max) {
            1 => {
                const $v: usize = 1;
                $body
            }
            2 => {
                const $v: usize = 2;
                $body
            }
            3 => {
                const $v: usize = 3;
                $body
            }
            _ => {
                const $v: usize = 4;
                $body
            }
        }
    };
}

/// The body of [`gathered_gemm`](super::gathered_gemm) and
/// [`gathered_gemm_relu`](super::gathered_gemm_relu) for any sink of rows `0..m`,
/// columns `0..n`.
#[inline(always)]
pub(super) fn rows<N: Simd, S: RowsSink>(
    s: N,
    alpha: f32,
    a: Gathered<'_>,
    b: crate::linalg::MatRef<'_>,
    accumulate: bool,
    sink: &S,
    scratch: &mut Vec<f32>,
) {
    let (m, k, n) = (a.rows(), a.cols(), b.ncols());
    assert_eq!(b.nrows(), k, "A is {m}×{k}, B {}×{n}", b.nrows());
    let npad = pack_b(b, scratch);
    let partial = sink.partial();
    // SAFETY: every A element is in bounds (checked by `Gathered::new`), B is `k × npad` in
    // scratch, and the tiles below go to rows < m and columns < n of the sink.
    unsafe {
        let mut j0 = 0;
        while j0 < npad {
            let width = (npad - j0).min(4 * L);
            let count = (n - j0).min(width);
            // Blocks of KC rows of B stay in L1 while every row tile of A passes.
            for kb in (0..k.max(1)).step_by(KC) {
                let ab = Gathered {
                    offset: &a.offset[kb..(kb + KC).min(k)],
                    ..a
                };
                let bp = scratch.as_ptr().add(kb * npad + j0);
                let acc = accumulate || kb > 0;
                let last = kb + KC >= k;
                macro_rules! run {
                    ($sink:expr) => {
                        with_vectors!(width, 4, V => {
                            const R: usize = tile_rows(V);
                            let mut r = 0;
                            while r + R <= m {
                                rows_tile::<N, R, V, _>(s, ab, r, bp, npad, $sink, j0, count, alpha, acc);
                                r += R;
                            }
                            while r < m {
                                rows_tile::<N, 1, V, _>(s, ab, r, bp, npad, $sink, j0, count, alpha, acc);
                                r += 1;
                            }
                        })
                    };
                }
                if last {
                    run!(sink)
                } else {
                    run!(&partial)
                }
            }
            j0 += width;
        }
    }
}

/// The body of [`gathered_gemm_tn`](super::gathered_gemm_tn) and
/// [`gathered_gemm_scatter`](super::gathered_gemm_scatter) for any sink of rows `0..k`,
/// columns `0..n`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn tn<N: Simd, S: BlockSink>(
    s: N,
    alpha: f32,
    a: Gathered<'_>,
    g: Operand<'_>,
    n: usize,
    accumulate: bool,
    sink: &S,
    scratch: &mut Vec<f32>,
) {
    let (m, k) = (a.rows(), a.cols());
    let npad = n.div_ceil(L) * L;
    // G is read in place when stored with n a multiple of 8; otherwise (a transposed G,
    // or rows to pad) each block is staged, padded with zeros, into L1.
    let in_place = match g {
        Operand::Rows(g, ldg) => {
            assert!(ldg >= n, "row stride {ldg} < {n} columns");
            assert!(g.len() >= (m - 1) * ldg + n, "G too short for {m}×{n}");
            (n % L == 0).then_some((g.as_ptr(), ldg))
        }
        Operand::Transposed(gt, ld) => {
            assert!(
                ld >= m && gt.len() >= (n - 1) * ld + m,
                "Gᵀ too short for {n}×{m}"
            );
            None
        }
    };
    // scratch: the chunk sums (k × width_max) and the staged block of G (MC × width_max)
    let width_max = TN_VECTORS * L;
    scratch.clear();
    let staged = if in_place.is_none() {
        MC * width_max
    } else {
        0
    };
    scratch.resize(k * width_max + staged, 0.0);
    let (part, stage) = scratch.split_at_mut(k * width_max);
    // SAFETY: A's elements are in bounds (`Gathered::new`); G rows are read up to column
    // npad, inside g when read in place (n a multiple of 8: the last row ends at
    // (m−1)·ldg + n ≤ len), inside the staged block otherwise; tiles go to rows < k,
    // columns < n of the sink.
    unsafe {
        let mut j0 = 0;
        while j0 < npad {
            let width = (npad - j0).min(width_max);
            let count = (n - j0).min(width);
            // Chunks of MC rows of G stay in L1 while every column tile of A passes; the
            // chunk sums are added in chunk order into `part` (raw), scaled at the end.
            let chunked = m > MC;
            let part = &mut part[..k * width];
            if chunked {
                part.fill(0.0);
            }
            let in_part = Dense {
                ptr: part.as_mut_ptr(),
                ld: width,
            };
            for r0 in (0..m).step_by(MC) {
                let r1 = (r0 + MC).min(m);
                let ac = a.row_range(r0, r1);
                let (gb, ldg) = match in_place {
                    Some((gp, ldg)) => (gp.add(r0 * ldg + j0), ldg),
                    None => {
                        g.stage(n, (r0, r1), (j0, width), stage);
                        (stage.as_ptr(), width)
                    }
                };
                with_vectors!(width, TN_VECTORS, V => {
                    // Even tiles: k = passes · R (+ a shorter last one).
                    let passes = k.div_ceil(tile_rows(V));
                    let r = k.div_ceil(passes);
                    let mut c0 = 0;
                    while c0 < k {
                        let rr = r.min(k - c0);
                        if chunked {
                            reduce_tiles::<N, V, _>(s, rr, ac, c0, gb, ldg, &in_part, 0, count, 1.0, true);
                        } else {
                            reduce_tiles::<N, V, _>(
                                s, rr, ac, c0, gb, ldg, sink, j0, count, alpha, accumulate,
                            );
                        }
                        c0 += rr;
                    }
                })
            }
            if chunked {
                sink.block(part, width, j0, count, alpha, accumulate);
            }
            j0 += width;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::patch_gemm::tests::values;
    use crate::kernels::patch_gemm::{gathered_gemm, gathered_gemm_tn, GatherIndex};
    use crate::linalg::Mat;

    #[test]
    fn k_blocks_and_row_chunks_match_the_reference() {
        for isa in crate::simd::Isa::all() {
            isa.with(k_blocks_and_row_chunks_match_the_reference_here);
        }
    }

    fn k_blocks_and_row_chunks_match_the_reference_here() {
        // k > KC (B in several blocks), m > MC (G in several chunks), n with and without
        // a partial vector and beyond one column block.
        for &(m, k, n) in &[(300, 150, 19), (260, 300, 40), (129, 129, 8)] {
            let data = values(m * k, 8);
            let idx = GatherIndex::row_major(m, k, k);
            let a = idx.over(&data);
            let b = Mat::from_vec(k, n, values(k * n, 9));
            let mut c = vec![0.25; m * n];
            let mut scratch = Vec::new();
            gathered_gemm(0.5, a, b.view(), true, &mut c, n, &mut scratch);
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|t| data[r * k + t] as f64 * b[(t, j)] as f64)
                        .sum();
                    let want = 0.25 + 0.5 * want;
                    assert!((c[r * n + j] as f64 - want).abs() < 1e-3 * (1.0 + want.abs()));
                }
            }
            let g = values(m * n, 10);
            let mut out = vec![1.0; k * n];
            gathered_gemm_tn(-1.0, a, &g, n, n, true, &mut out, n, &mut scratch);
            for t in 0..k {
                for j in 0..n {
                    let want: f64 = (0..m)
                        .map(|r| data[r * k + t] as f64 * g[r * n + j] as f64)
                        .sum();
                    let want = 1.0 - want;
                    assert!((out[t * n + j] as f64 - want).abs() < 1e-3 * (1.0 + want.abs()));
                }
            }
        }
    }
}

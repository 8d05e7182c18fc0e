//! The register-tile micro-kernels, generic over the tile shape (R rows or columns of A
//! × V vectors of 8 columns): each holds its R × V accumulators in registers over its
//! block of the shared dimension (a block of B's rows, a chunk of G's rows), one fused
//! multiply-add per accumulator per step, and hands the tile to a [`TileSink`]. The shapes
//! and blocks are chosen in [`super::blocking`]. They are written over an 8-lane [`Simd`]
//! set (the level's narrow set: `wide` on the portable level, ymm registers on the x86
//! ones) and compiled into the dispatched level's target features (`#[inline(always)]`).

use super::index::Gathered;
use super::sink::TileSink;
use super::L;
use crate::simd::Simd;

/// Rows `r0..r0+R` of C, `count` columns from `j0` (B's block pointer already at j0).
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
pub(super) unsafe fn rows_tile<N: Simd, const R: usize, const V: usize, S: TileSink>(
    s: N,
    a: Gathered<'_>,
    r0: usize,
    bp: *const f32,
    ldb: usize,
    sink: &S,
    j0: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    let data = a.data.as_ptr();
    let rows: [*const f32; R] = std::array::from_fn(|i| data.add(*a.base.get_unchecked(r0 + i)));
    debug_assert_eq!(N::LANES, L);
    let mut acc = [[s.zero(); V]; R];
    for (kk, &off) in a.offset.iter().enumerate() {
        let brow = bp.add(kk * ldb);
        let av: [N::V; R] = std::array::from_fn(|i| s.splat(*rows[i].add(off)));
        for v in 0..V {
            let bv = s.load(brow.add(v * L));
            for i in 0..R {
                acc[i][v] = s.mul_add(av[i], bv, acc[i][v]);
            }
        }
    }
    sink.tile(s, acc, r0, j0, count, alpha, accumulate);
}

/// [`reduce_tile`] with `R = rr` (1..=8) rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn reduce_tiles<N: Simd, const V: usize, S: TileSink>(
    s: N,
    rr: usize,
    a: Gathered<'_>,
    c0: usize,
    gp: *const f32,
    ldg: usize,
    sink: &S,
    j0: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    macro_rules! tile {
        ($($r:literal)*) => {
            match rr {
                $($r => reduce_tile::<N, $r, V, S>(s, a, c0, gp, ldg, sink, j0, count, alpha, accumulate),)*
                _ => unreachable!("reduce tile of {rr} rows"),
            }
        };
    }
    tile!(1 2 3 4 5 6 7 8)
}

/// Rows `c0..c0+R` of C (columns `c0..` of A), `count` columns from `j0`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn reduce_tile<N: Simd, const R: usize, const V: usize, S: TileSink>(
    s: N,
    a: Gathered<'_>,
    c0: usize,
    gp: *const f32,
    ldg: usize,
    sink: &S,
    j0: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    let data = a.data.as_ptr();
    let offs: [usize; R] = std::array::from_fn(|i| *a.offset.get_unchecked(c0 + i));
    let mut acc = [[s.zero(); V]; R];
    for (r, &base) in a.base.iter().enumerate() {
        let grow = gp.add(r * ldg);
        let row = data.add(base);
        let av: [N::V; R] = std::array::from_fn(|i| s.splat(*row.add(offs[i])));
        for v in 0..V {
            let gv = s.load(grow.add(v * L));
            for i in 0..R {
                acc[i][v] = s.mul_add(av[i], gv, acc[i][v]);
            }
        }
    }
    sink.tile(s, acc, c0, j0, count, alpha, accumulate);
}

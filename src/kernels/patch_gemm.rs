//! GEMMs whose left operand is *gathered*: element `(r, c)` of A is `data[base[r] +
//! offset[c]]`. With the bases and offsets of [`ConvShape::placement_bases`] and
//! [`ConvShape::patch_offsets`] A is the im2col patch matrix of a batch of images, read in
//! place — never materialised; with `base[r] = r·ld`, `offset[c] = c` it is an ordinary
//! row-major matrix.
//!
//! Both products serve the thin shapes of convolutional layers, where one dimension is a
//! patch (`k·k·C`, 25 for a 5 × 5 single-channel kernel) and another the number of maps
//! (16–64): matrixmultiply packs both operands on every call and its 8 × 8 micro-tiles
//! run at about half its large-shape rate there, and im2col itself writes 25 values per
//! pixel.
//!
//! - [`gathered_gemm`]: `C = α·A·B`, A gathered `m × k` (m large), B a small `k × n` matrix
//!   packed once into zero-padded rows (blocks of 128 rows, L1-sized); register tiles of
//!   R rows × V vectors of 8 columns, R broadcasts and V loads per step of k. Each element
//!   of C is one fixed sequence of fused multiply-adds whatever tile it lands in, so the
//!   result does not depend on how a caller splits the rows of A (tested).
//! - [`gathered_gemm_tn`]: `C = α·Aᵀ·G`, A gathered `m × k`, G row-major `m × n`; the
//!   reduction over the long dimension m, tiles of R columns of A × V vectors of G's
//!   columns held in registers over chunks of 128 rows, the chunk sums added in order.
//!
//! Measured on the layer-1 shapes (8 images of 28 × 28, 5 × 5 kernels, 16 maps), one core,
//! against matrixmultiply on the materialised patch matrix (`bench conv kernels`): `P·Wᵀ`
//! 67–71 vs 39–42 GFLOP/s, `Pᵀ·Z` 63–74 vs 41–44.

use super::ConvShape;
use crate::linalg::load8_ptr;
use wide::f32x8;

/// A read-only `rows × cols` matrix with element `(r, c)` at `data[base[r] + offset[c]]`.
#[derive(Clone, Copy, Debug)]
pub struct Gathered<'a> {
    data: &'a [f32],
    base: &'a [usize],
    offset: &'a [usize],
}

impl<'a> Gathered<'a> {
    /// Checks that every element lies inside `data`.
    ///
    /// # Panics
    /// If some `base[r] + offset[c]` is out of bounds.
    #[track_caller]
    pub fn new(data: &'a [f32], base: &'a [usize], offset: &'a [usize]) -> Self {
        let end = reach(base, offset);
        assert!(
            end.is_some_and(|e| e <= data.len()),
            "gathered matrix reaches past index {end:?} of a {}-value buffer",
            data.len()
        );
        Gathered { data, base, offset }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.base.len()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.offset.len()
    }

    /// Element `(r, c)` (bounds-checked).
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[self.base[r] + self.offset[c]]
    }

    /// The rows `lo..hi` as a gathered matrix.
    pub fn row_range(&self, lo: usize, hi: usize) -> Gathered<'a> {
        Gathered {
            base: &self.base[lo..hi],
            ..*self
        }
    }
}

/// One past the largest index `max(base) + max(offset)` a gathered matrix reads (0 when it
/// is empty), or `None` on overflow.
fn reach(base: &[usize], offset: &[usize]) -> Option<usize> {
    match (base.iter().max(), offset.iter().max()) {
        (Some(b), Some(o)) => b.checked_add(*o)?.checked_add(1),
        _ => Some(0),
    }
}

/// Row bases and column offsets of a patch matrix or a plain row-major matrix, with the
/// extent they reach (checked once per use by [`GatherIndex::over`], not rescanned).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatherIndex {
    base: Vec<usize>,
    offset: Vec<usize>,
    /// `max(base) + max(offset) + 1` (0 when empty).
    reach: usize,
}

impl GatherIndex {
    /// An index from explicit bases and offsets.
    ///
    /// # Panics
    /// If `max(base) + max(offset)` overflows.
    pub fn new(base: Vec<usize>, offset: Vec<usize>) -> Self {
        let reach = reach(&base, &offset).expect("gather index overflows");
        GatherIndex {
            base,
            offset,
            reach,
        }
    }

    /// The im2col patch matrix of `batch` images of `shape` ([`super::im2col`]'s layout).
    pub fn patches(shape: &ConvShape, batch: usize) -> Self {
        Self::new(shape.placement_bases(batch), shape.patch_offsets())
    }

    /// A row-major `rows × cols` matrix with row stride `ld`.
    pub fn row_major(rows: usize, cols: usize, ld: usize) -> Self {
        Self::new((0..rows).map(|r| r * ld).collect(), (0..cols).collect())
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.base.len()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.offset.len()
    }

    /// The matrix over `data`.
    ///
    /// # Panics
    /// If an element falls outside `data`.
    #[track_caller]
    pub fn over<'a>(&'a self, data: &'a [f32]) -> Gathered<'a> {
        assert!(
            self.reach <= data.len(),
            "gathered matrix reaches index {} of a {}-value buffer",
            self.reach.saturating_sub(1),
            data.len()
        );
        Gathered {
            data,
            base: &self.base,
            offset: &self.offset,
        }
    }
}

/// Columns per vector.
const L: usize = 8;

/// Rows of B per block of [`gathered_gemm`] (B blocks of at most 128 × 32 values, 16 KB).
const KC: usize = 128;

/// Rows of G per chunk of [`gathered_gemm_tn`] (at most 128 × 32 values, 16 KB).
const MC: usize = 128;

/// Vectors of G's columns per tile of [`gathered_gemm_tn`]: 2 × 8 columns with 5 columns
/// of A (a 5 × 5 kernel's 25 taps in 5 even passes); 4 × 8 with 3 measured the same
/// within noise.
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

/// Writes `α·acc` (plus the old values when `accumulate`) to the first `count ≤ 8` floats
/// at `dst`.
#[inline(always)]
unsafe fn store(dst: *mut f32, acc: f32x8, alpha: f32, accumulate: bool, count: usize) {
    let v = (acc * f32x8::splat(alpha)).to_array();
    if count == L && !accumulate {
        std::ptr::write_unaligned(dst as *mut [f32; L], v);
        return;
    }
    for (i, x) in v.iter().enumerate().take(count) {
        let d = dst.add(i);
        *d = if accumulate { *d + x } else { *x };
    }
}

/// Writes an R × V tile of accumulators (`α·acc`, added to the old values when
/// `accumulate`) to the R rows of stride `ldc` from `dst`, first `count` columns.
#[inline(always)]
unsafe fn store_tile<const R: usize, const V: usize>(
    acc: &[[f32x8; V]; R],
    dst: *mut f32,
    ldc: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    for (i, acc) in acc.iter().enumerate() {
        let row = dst.add(i * ldc);
        for (v, acc) in acc.iter().enumerate() {
            let cnt = count.saturating_sub(v * L).min(L);
            if cnt > 0 {
                store(row.add(v * L), *acc, alpha, accumulate, cnt);
            }
        }
    }
}

/// `C ← α·A·B` (or `C ← C + α·A·B` when `accumulate`): A gathered `m × k`, B any `k × n`
/// view, C row-major `m × n` with row stride `ldc`. `scratch` holds B packed into rows
/// padded to a multiple of 8 (reused across calls).
///
/// # Panics
/// If the shapes disagree or C is too short.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gathered_gemm(
    alpha: f32,
    a: Gathered<'_>,
    b: crate::linalg::MatRef<'_>,
    accumulate: bool,
    c: &mut [f32],
    ldc: usize,
    scratch: &mut Vec<f32>,
) {
    let (m, k, n) = (a.rows(), a.cols(), b.ncols());
    assert_eq!(b.nrows(), k, "A is {m}×{k}, B {}×{n}", b.nrows());
    assert!(ldc >= n, "row stride {ldc} < {n} columns");
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "C too short for {m}×{n}");
    let npad = pack_b(b, scratch);
    // SAFETY: every A element is in bounds (checked by `Gathered::new`), B is `k × npad` in
    // scratch, and the tiles below write rows < m and columns < n of C, which fits (asserted).
    unsafe {
        let mut j0 = 0;
        while j0 < npad {
            let width = (npad - j0).min(4 * L);
            let count = (n - j0).min(width);
            let cp = c.as_mut_ptr().add(j0);
            // Blocks of KC rows of B stay in L1 while every row tile of A passes.
            for kb in (0..k).step_by(KC) {
                let ab = Gathered {
                    offset: &a.offset[kb..(kb + KC).min(k)],
                    ..a
                };
                let bp = scratch.as_ptr().add(kb * npad + j0);
                let acc = accumulate || kb > 0;
                macro_rules! run {
                    ($v:literal) => {{
                        const R: usize = tile_rows($v);
                        let mut r = 0;
                        while r + R <= m {
                            rows_tile::<R, $v>(ab, r, bp, npad, cp, ldc, count, alpha, acc);
                            r += R;
                        }
                        while r < m {
                            rows_tile::<1, $v>(ab, r, bp, npad, cp, ldc, count, alpha, acc);
                            r += 1;
                        }
                    }};
                }
                match width / L {
                    1 => run!(1),
                    2 => run!(2),
                    3 => run!(3),
                    _ => run!(4),
                }
            }
            j0 += width;
        }
    }
}

/// Packs B (`k × n`, any strides) into `scratch` as `k` rows of `npad` (n rounded up to
/// a multiple of 8, zero-filled) and returns npad.
fn pack_b(b: crate::linalg::MatRef<'_>, scratch: &mut Vec<f32>) -> usize {
    let (k, n) = b.shape();
    let npad = n.div_ceil(L) * L;
    scratch.clear();
    scratch.resize(k * npad, 0.0);
    for kk in 0..k {
        for j in 0..n {
            scratch[kk * npad + j] = b.get(kk, j);
        }
    }
    npad
}

/// Rows `r0..r0+R` of C, columns `0..count` of this column block.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn rows_tile<const R: usize, const V: usize>(
    a: Gathered<'_>,
    r0: usize,
    bp: *const f32,
    ldb: usize,
    cp: *mut f32,
    ldc: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    let data = a.data.as_ptr();
    let rows: [*const f32; R] = std::array::from_fn(|i| data.add(*a.base.get_unchecked(r0 + i)));
    let mut acc = [[f32x8::ZERO; V]; R];
    for (kk, &off) in a.offset.iter().enumerate() {
        let brow = bp.add(kk * ldb);
        let av: [f32x8; R] = std::array::from_fn(|i| f32x8::splat(*rows[i].add(off)));
        for v in 0..V {
            let bv = load8_ptr(brow.add(v * L));
            for i in 0..R {
                acc[i][v] = av[i].mul_add(bv, acc[i][v]);
            }
        }
    }
    store_tile(&acc, cp.add(r0 * ldc), ldc, count, alpha, accumulate);
}

/// `C ← α·Aᵀ·G` (or `C ← C + α·Aᵀ·G` when `accumulate`): A gathered `m × k`, G row-major
/// `m × n` with row stride `ldg`, C row-major `k × n` with row stride `ldc`. The sum over m
/// runs in chunks of 128 rows, each in row order, the chunk sums added in order (`scratch`
/// holds them). When n is not a multiple of 8, G is first copied with padded rows. Long
/// rows whose stride is a multiple of 2 KB fall in the same few L1 sets: give G and C a
/// [`crate::linalg::padded_stride`].
///
/// # Panics
/// If the shapes disagree.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gathered_gemm_tn(
    alpha: f32,
    a: Gathered<'_>,
    g: &[f32],
    n: usize,
    ldg: usize,
    accumulate: bool,
    c: &mut [f32],
    ldc: usize,
    scratch: &mut Vec<f32>,
) {
    let (m, k) = (a.rows(), a.cols());
    assert!(
        ldg >= n && ldc >= n,
        "row strides {ldg}, {ldc} < {n} columns"
    );
    if k == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (k - 1) * ldc + n, "C too short for {k}×{n}");
    if m == 0 {
        if !accumulate {
            c.chunks_mut(ldc).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    assert!(g.len() >= (m - 1) * ldg + n, "G too short for {m}×{n}");
    let npad = n.div_ceil(L) * L;
    // G with rows padded to a multiple of 8 (a copy only when n is not one already).
    let padded: Vec<f32>;
    let (gp, ldg) = if n % L == 0 {
        (g.as_ptr(), ldg)
    } else {
        let mut p = vec![0.0; m * npad];
        for r in 0..m {
            p[r * npad..r * npad + n].copy_from_slice(&g[r * ldg..r * ldg + n]);
        }
        padded = p;
        (padded.as_ptr(), npad)
    };
    let part = scratch;
    // SAFETY: A's elements are in bounds (`Gathered::new`); G rows are read up to column
    // npad, inside g when n is a multiple of 8 (the last row ends at (m−1)·ldg + n ≤ len)
    // and inside the padded copy otherwise; tiles write rows < k, columns < n of C.
    unsafe {
        let mut j0 = 0;
        while j0 < npad {
            let width = (npad - j0).min(TN_VECTORS * L);
            let count = (n - j0).min(width);
            let cp = c.as_mut_ptr().add(j0);
            // Chunks of MC rows of G stay in L1 while every column tile of A passes; the
            // chunk sums are added in chunk order into `part` (raw), scaled at the end.
            let chunked = m > MC;
            if chunked {
                part.clear();
                part.resize(k * width, 0.0);
            }
            for r0 in (0..m).step_by(MC) {
                let r1 = (r0 + MC).min(m);
                let ac = a.row_range(r0, r1);
                let gb = gp.add(r0 * ldg + j0);
                let (tp, ldt, al, accu) = if chunked {
                    (part.as_mut_ptr(), width, 1.0, true)
                } else {
                    (cp, ldc, alpha, accumulate)
                };
                macro_rules! run {
                    ($v:literal) => {{
                        const RMAX: usize = tile_rows($v);
                        // Even tiles: k = passes · R (+ a shorter last one).
                        let passes = k.div_ceil(RMAX);
                        let r = k.div_ceil(passes);
                        let mut c0 = 0;
                        while c0 < k {
                            let rr = r.min(k - c0);
                            reduce_tiles::<$v>(rr, ac, c0, gb, ldg, tp, ldt, count, al, accu);
                            c0 += rr;
                        }
                    }};
                }
                match width / L {
                    1 => run!(1),
                    2 => run!(2),
                    3 => run!(3),
                    _ => run!(4),
                }
            }
            if chunked {
                for (crow, prow) in c.chunks_mut(ldc).zip(part.chunks_exact(width)) {
                    for (d, v) in crow[j0..j0 + count].iter_mut().zip(prow) {
                        *d = if accumulate {
                            *d + alpha * v
                        } else {
                            alpha * v
                        };
                    }
                }
            }
            j0 += width;
        }
    }
}

/// [`reduce_tile`] with `R = rr` (1..=8) rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn reduce_tiles<const V: usize>(
    rr: usize,
    a: Gathered<'_>,
    c0: usize,
    gp: *const f32,
    ldg: usize,
    cp: *mut f32,
    ldc: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    macro_rules! tile {
        ($($r:literal)*) => {
            match rr {
                $($r => reduce_tile::<$r, V>(a, c0, gp, ldg, cp, ldc, count, alpha, accumulate),)*
                _ => unreachable!("reduce tile of {rr} rows"),
            }
        };
    }
    tile!(1 2 3 4 5 6 7 8)
}

/// Rows `c0..c0+R` of C (columns `c0..` of A), `count` columns of this block.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn reduce_tile<const R: usize, const V: usize>(
    a: Gathered<'_>,
    c0: usize,
    gp: *const f32,
    ldg: usize,
    cp: *mut f32,
    ldc: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    let data = a.data.as_ptr();
    let offs: [usize; R] = std::array::from_fn(|i| *a.offset.get_unchecked(c0 + i));
    let mut acc = [[f32x8::ZERO; V]; R];
    for (r, &base) in a.base.iter().enumerate() {
        let grow = gp.add(r * ldg);
        let row = data.add(base);
        let av: [f32x8; R] = std::array::from_fn(|i| f32x8::splat(*row.add(offs[i])));
        for v in 0..V {
            let gv = load8_ptr(grow.add(v * L));
            for i in 0..R {
                acc[i][v] = av[i].mul_add(gv, acc[i][v]);
            }
        }
    }
    store_tile(&acc, cp.add(c0 * ldc), ldc, count, alpha, accumulate);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::im2col;
    use crate::linalg::Mat;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 23) as f32 - 11.0) * 0.125)
            .collect()
    }

    #[test]
    fn gathered_products_equal_the_materialised_ones() {
        // Shapes covering full and partial vectors, column blocks beyond 32, tile tails.
        for &(h, w, ch, k, n) in &[
            (7, 9, 1, 3, 16),
            (6, 6, 2, 2, 5),
            (9, 8, 3, 3, 40),
            (5, 5, 1, 5, 8),
            (8, 7, 4, 2, 24),
        ] {
            let shape = ConvShape::new(h, w, ch, k).unwrap();
            let batch = 3;
            let x = values(batch * shape.image_len(), 1);
            let idx = GatherIndex::patches(&shape, batch);
            let a = idx.over(&x);
            let (m, kk) = (a.rows(), a.cols());
            let mut cols = vec![0.0; m * kk];
            im2col(&shape, &x, &mut cols);
            for r in 0..m {
                for c in 0..kk {
                    assert_eq!(a.get(r, c), cols[r * kk + c]);
                }
            }
            // A·B with B given transposed (a filter bank), α and accumulate.
            let bt = Mat::from_vec(n, kk, values(n * kk, 2));
            let mut want = vec![0.0f64; m * n];
            for r in 0..m {
                for j in 0..n {
                    want[r * n + j] = (0..kk)
                        .map(|c| cols[r * kk + c] as f64 * bt[(j, c)] as f64)
                        .sum();
                }
            }
            let mut c = vec![1.0; m * n];
            let mut scratch = Vec::new();
            gathered_gemm(-0.5, a, bt.t(), true, &mut c, n, &mut scratch);
            for (got, want) in c.iter().zip(&want) {
                assert!(
                    (*got as f64 - (1.0 - 0.5 * want)).abs() < 1e-4,
                    "{got} {want}"
                );
            }
            // Aᵀ·G
            let g = values(m * n, 3);
            let mut want = vec![0.0f64; kk * n];
            for c in 0..kk {
                for j in 0..n {
                    want[c * n + j] = (0..m)
                        .map(|r| cols[r * kk + c] as f64 * g[r * n + j] as f64)
                        .sum();
                }
            }
            let mut out = vec![f32::NAN; kk * n];
            gathered_gemm_tn(2.0, a, &g, n, n, false, &mut out, n, &mut scratch);
            for (got, want) in out.iter().zip(&want) {
                assert!(
                    (*got as f64 - 2.0 * want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{got} {want}"
                );
            }
        }
    }

    #[test]
    fn k_blocks_and_row_chunks_match_the_reference() {
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

    #[test]
    fn rows_do_not_depend_on_the_split() {
        let (m, k, n) = (37, 11, 19);
        let data = values(m * k, 4);
        let idx = GatherIndex::row_major(m, k, k);
        let b = Mat::from_vec(k, n, values(k * n, 5));
        let mut whole = vec![0.0; m * n];
        let mut scratch = Vec::new();
        gathered_gemm(
            1.0,
            idx.over(&data),
            b.view(),
            false,
            &mut whole,
            n,
            &mut scratch,
        );
        let mut parts = vec![0.0; m * n];
        for (lo, hi) in [(0, 5), (5, 6), (6, 37)] {
            let a = idx.over(&data).row_range(lo, hi);
            gathered_gemm(
                1.0,
                a,
                b.view(),
                false,
                &mut parts[lo * n..],
                n,
                &mut scratch,
            );
        }
        assert_eq!(whole, parts);
    }

    #[test]
    #[should_panic(expected = "gathered matrix reaches")]
    fn out_of_bounds_index_is_refused() {
        let data = vec![0.0; 10];
        Gathered::new(&data, &[0, 5], &[0, 5]);
    }
}

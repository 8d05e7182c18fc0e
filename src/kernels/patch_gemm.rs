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
//! Both kernels hand their register tiles to a sink instead of storing them, which serves
//! two fused epilogues: [`gathered_gemm_relu`] (bias, ReLU and gain applied per tile: an
//! encoder layer that never writes its pre-activation) and [`gathered_gemm_scatter`]
//! (the product added into a gathered matrix: col2im without the patch matrix, eight
//! neighbouring placements per vector add).
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

/// A writable gathered matrix: the target of [`gathered_gemm_scatter`], which adds into
/// `data[base[r] + offset[c]]` (with a patch index: col2im, the adjoint of reading patches).
/// Elements may overlap (neighbouring patches share pixels); additions into a shared
/// element accumulate.
#[derive(Debug)]
pub struct GatheredMut<'a> {
    data: &'a mut [f32],
    base: &'a [usize],
    offset: &'a [usize],
}

impl GatheredMut<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.base.len()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.offset.len()
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

    /// The patch matrix of [`GatherIndex::patches`] with its columns restricted to and
    /// ordered as `taps` (indices into [`ConvShape::patch_offsets`]).
    pub fn patch_taps(shape: &ConvShape, batch: usize, taps: &[usize]) -> Self {
        let offsets = shape.patch_offsets();
        Self::new(
            shape.placement_bases(batch),
            taps.iter().map(|&t| offsets[t]).collect(),
        )
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

    /// The matrix over `data`, for adding into.
    ///
    /// # Panics
    /// If an element falls outside `data`.
    #[track_caller]
    pub fn over_mut<'a>(&'a self, data: &'a mut [f32]) -> GatheredMut<'a> {
        assert!(
            self.reach <= data.len(),
            "gathered matrix reaches index {} of a {}-value buffer",
            self.reach.saturating_sub(1),
            data.len()
        );
        GatheredMut {
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

/// Where the tiles of a product go: a row-major C, a gathered matrix added into, or an
/// activation applied on the way.
trait TileSink {
    /// Writes the R × V tile of accumulators for rows `i0..i0+R` of C and its first
    /// `count ≤ 8·V` columns from `j0` (`α·acc`, added to the old values when `accumulate`).
    unsafe fn tile<const R: usize, const V: usize>(
        &self,
        acc: [[f32x8; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    );
}

/// A sink of the tn kernel, which also hands over whole blocks (its chunk sums).
trait BlockSink: TileSink {
    /// Writes rows `0..k` of a block held in `part` (row stride `width`), columns
    /// `j0..j0+count` of C, as [`TileSink::tile`] does.
    unsafe fn block(
        &self,
        part: &[f32],
        width: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    );
}

/// A row-major C with row stride `ld`.
struct Dense {
    ptr: *mut f32,
    ld: usize,
}

impl TileSink for Dense {
    #[inline(always)]
    unsafe fn tile<const R: usize, const V: usize>(
        &self,
        acc: [[f32x8; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        let dst = self.ptr.add(i0 * self.ld + j0);
        store_tile(&acc, dst, self.ld, count, alpha, accumulate);
    }
}

impl BlockSink for Dense {
    unsafe fn block(
        &self,
        part: &[f32],
        width: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        for (i, prow) in part.chunks_exact(width).enumerate() {
            let crow = self.ptr.add(i * self.ld + j0);
            for (j, v) in prow[..count].iter().enumerate() {
                let d = crow.add(j);
                *d = if accumulate {
                    *d + alpha * v
                } else {
                    alpha * v
                };
            }
        }
    }
}

/// Cᵀ added into a gathered matrix: element (i, j) of C goes to
/// `data[base[j] + offset[i]]` (always accumulating). Eight columns of C whose bases are
/// consecutive (eight neighbouring placements along an image row) are one vector add.
struct Scatter<'a> {
    data: *mut f32,
    base: &'a [usize],
    offset: &'a [usize],
}

impl Scatter<'_> {
    /// True when the bases of columns `j..j+8` are consecutive.
    #[inline(always)]
    unsafe fn run_of_8(&self, j: usize) -> bool {
        let b0 = *self.base.get_unchecked(j);
        (1..L).all(|t| *self.base.get_unchecked(j + t) == b0 + t)
    }
}

impl TileSink for Scatter<'_> {
    #[inline(always)]
    unsafe fn tile<const R: usize, const V: usize>(
        &self,
        acc: [[f32x8; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        _accumulate: bool,
    ) {
        let a = f32x8::splat(alpha);
        for v in 0..V {
            let j = j0 + v * L;
            let cnt = count.saturating_sub(v * L).min(L);
            if cnt == L && self.run_of_8(j) {
                let b = self.data.add(*self.base.get_unchecked(j));
                for (i, acc) in acc.iter().enumerate() {
                    let d = b.add(*self.offset.get_unchecked(i0 + i));
                    let old = load8_ptr(d);
                    std::ptr::write_unaligned(d as *mut [f32; L], (old + a * acc[v]).to_array());
                }
            } else {
                for (i, acc) in acc.iter().enumerate() {
                    let off = *self.offset.get_unchecked(i0 + i);
                    for (t, x) in acc[v].to_array().iter().enumerate().take(cnt) {
                        *self.data.add(*self.base.get_unchecked(j + t) + off) += alpha * x;
                    }
                }
            }
        }
    }
}

impl BlockSink for Scatter<'_> {
    unsafe fn block(
        &self,
        part: &[f32],
        width: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        _accumulate: bool,
    ) {
        for (i, prow) in part.chunks_exact(width).enumerate() {
            let off = *self.offset.get_unchecked(i);
            for (j, v) in prow[..count].iter().enumerate() {
                *self.data.add(*self.base.get_unchecked(j0 + j) + off) += alpha * v;
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
    let (m, n) = (a.rows(), b.ncols());
    assert!(ldc >= n, "row stride {ldc} < {n} columns");
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "C too short for {m}×{n}");
    // SAFETY: C holds m rows of stride ldc with n columns (asserted); `rows` writes no more.
    let sink = Dense {
        ptr: c.as_mut_ptr(),
        ld: ldc,
    };
    rows(alpha, a, b, accumulate, &sink, scratch);
}

/// The encoder layer of a ReLU auto-encoder in one pass: `H = max(A·B + d, 0)` and
/// `Z = H·diag(g)` (d, g per column), A gathered `m × k`, B `k × n`, H and Z row-major
/// `m × n`. The bias, ReLU and gain are applied to each register tile of A·B before it is
/// stored, so the pre-activation is never written.
///
/// # Panics
/// If the shapes disagree.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gathered_gemm_relu(
    a: Gathered<'_>,
    b: crate::linalg::MatRef<'_>,
    bias: &[f32],
    gain: &[f32],
    h: &mut [f32],
    z: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (m, n) = (a.rows(), b.ncols());
    assert!(
        bias.len() == n && gain.len() == n && h.len() == m * n && z.len() == m * n,
        "{m}×{n} product with {} biases, {} gains, {} + {} outputs",
        bias.len(),
        gain.len(),
        h.len(),
        z.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: H and Z hold m rows of n values (asserted); bias and gain n values.
    let sink = Relu {
        h: h.as_mut_ptr(),
        z: z.as_mut_ptr(),
        ld: n,
        bias: bias.as_ptr(),
        gain: gain.as_ptr(),
    };
    rows(1.0, a, b, false, &sink, scratch);
}

/// A sink that can also take raw partial sums (the K blocks before the last).
trait RowsSink: TileSink {
    /// Where the partial sums of the earlier K blocks go; the last block's tiles are then
    /// given to [`TileSink::tile`] with `accumulate`, and read them back.
    fn partial(&self) -> Dense;
}

impl RowsSink for Dense {
    fn partial(&self) -> Dense {
        Dense {
            ptr: self.ptr,
            ld: self.ld,
        }
    }
}

/// `H = max(C + d, 0)`, `Z = g ⊙ H` per tile (partial sums of C kept in H).
struct Relu {
    h: *mut f32,
    z: *mut f32,
    ld: usize,
    bias: *const f32,
    gain: *const f32,
}

impl RowsSink for Relu {
    fn partial(&self) -> Dense {
        Dense {
            ptr: self.h,
            ld: self.ld,
        }
    }
}

impl TileSink for Relu {
    #[inline(always)]
    unsafe fn tile<const R: usize, const V: usize>(
        &self,
        acc: [[f32x8; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        let a = f32x8::splat(alpha);
        for v in 0..V {
            let j = j0 + v * L;
            let cnt = count.saturating_sub(v * L).min(L);
            if cnt == L {
                let (b, g) = (load8_ptr(self.bias.add(j)), load8_ptr(self.gain.add(j)));
                for (i, acc) in acc.iter().enumerate() {
                    let at = (i0 + i) * self.ld + j;
                    let hp = self.h.add(at);
                    let mut u = a * acc[v] + b;
                    if accumulate {
                        u += load8_ptr(hp);
                    }
                    let hv = u.max(f32x8::ZERO);
                    std::ptr::write_unaligned(hp as *mut [f32; L], hv.to_array());
                    let zv = (g * hv).to_array();
                    std::ptr::write_unaligned(self.z.add(at) as *mut [f32; L], zv);
                }
            } else {
                for (i, acc) in acc.iter().enumerate() {
                    let row = (i0 + i) * self.ld;
                    for (t, x) in acc[v].to_array().iter().enumerate().take(cnt) {
                        let hp = self.h.add(row + j + t);
                        let mut u = alpha * x + *self.bias.add(j + t);
                        if accumulate {
                            u += *hp;
                        }
                        *hp = u.max(0.0);
                        *self.z.add(row + j + t) = *self.gain.add(j + t) * *hp;
                    }
                }
            }
        }
    }
}

/// The body of [`gathered_gemm`] for any sink of rows `0..m`, columns `0..n`.
fn rows<S: RowsSink>(
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
                                rows_tile::<R, V, _>(ab, r, bp, npad, $sink, j0, count, alpha, acc);
                                r += R;
                            }
                            while r < m {
                                rows_tile::<1, V, _>(ab, r, bp, npad, $sink, j0, count, alpha, acc);
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

/// Rows `r0..r0+R` of C, `count` columns from `j0` (B's block pointer already at j0).
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn rows_tile<const R: usize, const V: usize, S: TileSink>(
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
    sink.tile(acc, r0, j0, count, alpha, accumulate);
}

/// `C ← α·Aᵀ·G` (or `C ← C + α·Aᵀ·G` when `accumulate`): A gathered `m × k`, G row-major
/// `m × n` with row stride `ldg`, C row-major `k × n` with row stride `ldc`. The sum over m
/// runs in chunks of 128 rows, each in row order, the chunk sums added in order (`scratch`
/// holds them, and, when n is not a multiple of 8, each block of G padded). Long
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
    let k = a.cols();
    assert!(ldc >= n, "row stride {ldc} < {n} columns");
    if k == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (k - 1) * ldc + n, "C too short for {k}×{n}");
    if a.rows() == 0 {
        if !accumulate {
            c.chunks_mut(ldc).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: C holds k rows of stride ldc with n columns (asserted); `tn` writes no more.
    let sink = Dense {
        ptr: c.as_mut_ptr(),
        ld: ldc,
    };
    tn(
        alpha,
        a,
        Operand::Rows(g, ldg),
        n,
        accumulate,
        &sink,
        scratch,
    );
}

/// `out ← out + α·H·A`: H row-major `n × m` (row stride `ldh`), A gathered `m × k`, out a
/// gathered `n × k` matrix added into. With out the patch index of a batch of images (rows
/// the placements, columns the kernel taps) this is col2im of the patch matrix `α·H·A`
/// without materialising it: the decoder of a single-channel convolutional layer,
/// `images += col2im(α·Z·Dᵀ)` with A = Dᵀ read in place. It runs as [`gathered_gemm_tn`]
/// on G = Hᵀ, each block of 16 rows of H transposed into L1 just before use, each
/// register tile of (H·A)ᵀ added into out — eight neighbouring placements of one tap are
/// one vector add. Additions into shared elements happen in a fixed order (blocks of 16
/// rows of H, then columns of A).
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn gathered_gemm_scatter(
    alpha: f32,
    h: &[f32],
    ldh: usize,
    a: Gathered<'_>,
    out: GatheredMut<'_>,
    scratch: &mut Vec<f32>,
) {
    let (m, k, n) = (a.rows(), a.cols(), out.rows());
    assert_eq!(
        out.cols(),
        k,
        "A has {k} columns, the target {}",
        out.cols()
    );
    assert!(
        ldh >= m && (n == 0 || h.len() >= (n - 1) * ldh + m),
        "H of {} values (row stride {ldh}) for {n}×{m}",
        h.len()
    );
    if k == 0 || n == 0 || m == 0 {
        return;
    }
    // SAFETY: every target element is in bounds (`GatherIndex::over_mut`) and `out.data`
    // is borrowed mutably, so it aliases neither A's data nor H.
    let sink = Scatter {
        data: out.data.as_mut_ptr(),
        base: out.base,
        offset: out.offset,
    };
    tn(
        alpha,
        a,
        Operand::Transposed(h, ldh),
        n,
        true,
        &sink,
        scratch,
    );
}

/// The dense operand G (`m × n`) of the tn products: as stored (row stride), or given by
/// its transpose (`n × m`, row stride), staged into L1 block by block.
#[derive(Clone, Copy)]
enum Operand<'a> {
    Rows(&'a [f32], usize),
    Transposed(&'a [f32], usize),
}

impl Operand<'_> {
    /// Writes rows `r0..r1` and columns `j0..j0+width` of G into `stage` (row stride
    /// `width`), columns ≥ n as zeros (lengths checked by the caller). A transposed G goes
    /// through 8 × 8 register transposes where the block is whole.
    fn stage(
        &self,
        n: usize,
        (r0, r1): (usize, usize),
        (j0, width): (usize, usize),
        stage: &mut [f32],
    ) {
        let (rows, cols) = (r1 - r0, (n - j0).min(width));
        match *self {
            Operand::Rows(g, ld) => {
                for (r, dst) in stage.chunks_exact_mut(width).take(rows).enumerate() {
                    let src = &g[(r0 + r) * ld + j0..][..cols];
                    dst[..cols].copy_from_slice(src);
                    dst[cols..].fill(0.0);
                }
            }
            Operand::Transposed(gt, ld) => {
                let (r8, c8) = (rows / L * L, cols / L * L);
                for jb in (0..c8).step_by(L) {
                    for rb in (0..r8).step_by(L) {
                        let block: [f32x8; L] = std::array::from_fn(|t| {
                            crate::linalg::load8(&gt[(j0 + jb + t) * ld + r0 + rb..])
                        });
                        for (i, v) in f32x8::transpose(block).iter().enumerate() {
                            crate::linalg::store8(&mut stage[(rb + i) * width + jb..], *v);
                        }
                    }
                    for r in r8..rows {
                        for t in jb..jb + L {
                            stage[r * width + t] = gt[(j0 + t) * ld + r0 + r];
                        }
                    }
                }
                for r in 0..rows {
                    for j in c8..width {
                        stage[r * width + j] = if j < cols {
                            gt[(j0 + j) * ld + r0 + r]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// The body of [`gathered_gemm_tn`] and [`gathered_gemm_scatter`] for any sink of rows
/// `0..k`, columns `0..n`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn tn<S: BlockSink>(
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
    // scratch: the chunk sums (k × 32) and the staged block of G (MC × 32)
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
                            reduce_tiles::<V, _>(rr, ac, c0, gb, ldg, &in_part, 0, count, 1.0, true);
                        } else {
                            reduce_tiles::<V, _>(
                                rr, ac, c0, gb, ldg, sink, j0, count, alpha, accumulate,
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

/// [`reduce_tile`] with `R = rr` (1..=8) rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn reduce_tiles<const V: usize, S: TileSink>(
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
                $($r => reduce_tile::<$r, V, S>(a, c0, gp, ldg, sink, j0, count, alpha, accumulate),)*
                _ => unreachable!("reduce tile of {rr} rows"),
            }
        };
    }
    tile!(1 2 3 4 5 6 7 8)
}

/// Rows `c0..c0+R` of C (columns `c0..` of A), `count` columns from `j0`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(never)]
unsafe fn reduce_tile<const R: usize, const V: usize, S: TileSink>(
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
    sink.tile(acc, c0, j0, count, alpha, accumulate);
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
    fn scatter_product_equals_col2im_of_the_product() {
        // out += col2im(α·H·A): A a small gathered m × k (a decoder read transposed),
        // H n × m (codes), the target the patch index of a batch (n placements × k taps).
        // Output widths with whole runs of 8 placements (16, 24), with runs cut by row
        // ends (7, 10) and several channels (no runs); m not a multiple of 8 and beyond
        // one row chunk (MC).
        for &(h, w, ch, kern, m) in &[
            (20, 20, 1, 5, 16),
            (28, 28, 1, 5, 8),
            (11, 14, 1, 5, 3),
            (9, 9, 1, 3, 130),
            (8, 7, 3, 2, 5),
        ] {
            let shape = ConvShape::new(h, w, ch, kern).unwrap();
            let batch = 2;
            let (n, k) = (batch * shape.positions(), shape.patch_len());
            let dec = values(k * m, 11); // row-major k × m, read as Aᵀ
            let didx = GatherIndex::new((0..m).collect(), (0..k).map(|t| t * m).collect());
            let a = didx.over(&dec);
            let ldh = m + 3;
            let hm = values(n * ldh, 12);
            // reference: Y = H·A (n × k) in f64, then col2im
            let mut y = vec![0.0f32; n * k];
            for j in 0..n {
                for t in 0..k {
                    let v: f64 = (0..m)
                        .map(|r| hm[j * ldh + r] as f64 * dec[t * m + r] as f64)
                        .sum();
                    y[j * k + t] = (-0.5 * v) as f32;
                }
            }
            let start = values(batch * shape.image_len(), 13);
            let mut want = start.clone();
            crate::kernels::col2im_add(&shape, &y, &mut want);
            let mut got = start.clone();
            let idx = GatherIndex::patches(&shape, batch);
            let mut scratch = Vec::new();
            gathered_gemm_scatter(-0.5, &hm, ldh, a, idx.over_mut(&mut got), &mut scratch);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "{g} {w} ({shape:?})"
                );
            }
        }
    }

    #[test]
    fn relu_epilogue_equals_product_then_activation() {
        // k beyond one block of B (partial sums through H), n with a partial vector.
        for &(m, k, n) in &[(23, 9, 16), (40, 140, 19), (7, 0, 8)] {
            let data = values(m * k, 14);
            let idx = GatherIndex::row_major(m, k, k);
            let a = idx.over(&data);
            let b = Mat::from_vec(k, n, values(k * n, 15));
            let bias = values(n, 16);
            let gain: Vec<f32> = values(n, 17).iter().map(|g| g.abs()).collect();
            let (mut h, mut z) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            let mut scratch = Vec::new();
            gathered_gemm_relu(a, b.view(), &bias, &gain, &mut h, &mut z, &mut scratch);
            for r in 0..m {
                for j in 0..n {
                    let u: f64 = (0..k)
                        .map(|t| data[r * k + t] as f64 * b[(t, j)] as f64)
                        .sum::<f64>()
                        + bias[j] as f64;
                    let want = u.max(0.0);
                    let got = h[r * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{got} {want}"
                    );
                    assert_eq!(z[r * n + j], gain[j] * h[r * n + j]);
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

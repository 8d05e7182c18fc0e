//! Products whose left factor has many exact zeros: the codes of the unrolled recurrence
//! (a ReLU or shrink output, typically 10–30 % non-zero) and the back-propagated signals
//! masked by them.
//!
//! `C ← α·A·B + β·C` ([`sparse_gemm`]) and `C ← α·Aᵀ·B + β·C` ([`sparse_t_gemm`]) skip the
//! zeros of A: row i of C is `α·Σ_j a_j·B[j, :] + β·C[i, :]` over the non-zeros `a_j` of row
//! (or column) i of A, so the work is proportional to A's non-zeros instead of its size.
//!
//! How, in order:
//! - B is copied into 64-column panels with contiguous rows ([`PackedRhs`]; the unrolled
//!   recurrence packs S once per pass), unless A uses each row of B fewer than 4 times;
//! - the threads take blocks of C's rows (or, below 64 rows, blocks of its columns, so that
//!   each thread reads only its part of B);
//! - each thread lists the non-zeros of its rows of A (or of its columns, through a
//!   transposed copy), a vector at a time (`Simd::compress_nonzero`);
//! - each row of C is kept in registers 64 columns at a time while the rows of B it needs
//!   stream from cache; with at least 32 rows and a tall B, B's rows go in blocks of 128 (a
//!   block of a panel stays in L1 while every row uses it), the partial sums carried
//!   between blocks.
//!
//! When more than a third of A is non-zero the dense [`gemm`] is faster and is called
//! instead (a choice made from the data, not from the thread count).
//!
//! Skipping an exact zero changes nothing (`fma(0, b, acc) = acc` for finite b), so the
//! result is A·B summed in ascending index order; every element of C is computed by the same
//! sequence of operations whatever the split over threads, so the result does not depend on
//! the thread count.
//!
//! One file on purpose: the two sparse products, their packing, lists and per-level kernels
//! read together (about 700 lines of code; the rest are tests).

use super::ops::transpose_strided;
use super::pool::{in_task, run, run_split, SendPtr};
use super::{gemm, gemm_threads, MatMut, MatRef};
use crate::simd::{dispatch, Isa, Kernel, Simd};
use std::cell::RefCell;
use std::ops::Range;

/// Above this percentage of non-zeros in A the product goes to the dense [`gemm`], which
/// reuses every element of B it loads across several rows and is faster there (measured
/// on 400 × 400 B: the sparse form wins 1.5× at 20 % non-zeros, loses 0.6× at 56 %).
const DENSE_ABOVE: usize = 35;

/// A product packs B ([`PackedRhs`]) when A has at least this many non-zeros per row of B
/// (the uses of each packed row).
const PACK_MIN_USES: usize = 4;

/// The right factor of a sparse product: packed, or read where it is (contiguous rows).
#[derive(Clone, Copy)]
enum Rhs<'a> {
    Packed(&'a PackedRhs),
    InPlace(MatRef<'a>),
}

/// Below this many multiply-adds a product stays on the calling thread.
const PARALLEL_MIN_MACS: usize = 200_000;

/// Products with fewer rows of C than this (and not transposed) split C's columns over the
/// threads rather than its rows.
const COLUMN_SPLIT_BELOW_ROWS: usize = 64;

/// The non-zeros of (a block of) A grouped by the row of C they feed:
/// `idx[start[i]..start[i + 1]]` (ascending) are the rows of B that row i of the block
/// combines, with weights `val[..]`.
#[derive(Default)]
struct Lists {
    start: Vec<usize>,
    idx: Vec<u32>,
    val: Vec<f32>,
    /// Scratch: the block of A's columns transposed, for [`Lists::columns_of`].
    transposed: Vec<f32>,
    /// Where each row's entries of each block of [`KB`] rows of B start
    /// ([`Lists::split_blocks`]): `blocks + 1` per row.
    splits: Vec<usize>,
    /// The rows' partial sums between blocks of B's rows, [`PANEL`] per row.
    partial: Vec<f32>,
}

/// Rows of B per block when B is taller: a panel's block (`KB · PANEL` floats, 32 KiB) stays
/// in L1 while every row of C's block combines from it, the partial sums carried in
/// `Lists::partial` between blocks. The blocks depend on B's height only, and each sum
/// still runs over its row's entries in ascending order: the same bits as one pass.
const KB: usize = 128;

/// Fewer rows of C than this go through B in one pass (too few reuses of a block).
const BLOCKED_MIN_ROWS: usize = 32;

thread_local! {
    /// Each thread's lists (the pool's threads are persistent: no allocation in a steady
    /// state).
    static LISTS: RefCell<Lists> = RefCell::new(Lists::default());
    /// The calling thread's packed B for the products not given one.
    static PACKED: RefCell<PackedRhs> = RefCell::new(PackedRhs::default());
}

/// Width of the column panels the kernels sweep (a multiple of every level's vector).
const PANEL: usize = 64;

/// The right factor B of the sparse products laid out for their kernels: its columns cut
/// into [`PANEL`]-wide panels (the last one narrower when `PANEL` does not divide them),
/// each panel's rows contiguous, 64-byte aligned. A panel then spans `k·256` contiguous
/// bytes instead of k rows of B: fewer pages, and lines the prefetchers follow. Packed
/// once, it serves every product with the same B (the unrolled recurrence multiplies by S
/// once per step).
#[derive(Debug, Default)]
pub(crate) struct PackedRhs {
    buf: Vec<f32>,
    k: usize,
    n: usize,
}

impl Clone for PackedRhs {
    /// A packing is scratch, valid until the next [`PackedRhs::pack`]: the clone is empty
    /// (a copied buffer could start at another alignment).
    fn clone(&self) -> Self {
        PackedRhs::default()
    }
}

impl PackedRhs {
    /// Packs `b` (contiguous rows), replacing the previous packing.
    ///
    /// # Panics
    /// If B's rows are not contiguous.
    pub(crate) fn pack(&mut self, b: MatRef<'_>) {
        assert_eq!(
            b.col_stride(),
            1,
            "sparse products need B with contiguous rows"
        );
        let (k, n) = b.shape();
        let len = k * n;
        if self.buf.len() < len + 16 {
            self.buf.resize(len + 16, 0.0);
        }
        (self.k, self.n) = (k, n);
        let off = self.buf.as_ptr().align_offset(64);
        let dst = &mut self.buf[off..off + len];
        let mut at = 0;
        let mut j = 0;
        while j < n {
            let w = PANEL.min(n - j);
            for r in 0..k {
                // SAFETY: row r, columns j..j + w of B lie inside the view.
                let src = unsafe {
                    std::slice::from_raw_parts(
                        b.as_ptr().offset(r as isize * b.row_stride()).add(j),
                        w,
                    )
                };
                dst[at..at + w].copy_from_slice(src);
                at += w;
            }
            j += w;
        }
    }

    /// The start of the packing (64-byte aligned): the panel of columns `j..` (j a multiple
    /// of [`PANEL`]) starts `j·k` floats further, its rows `min(PANEL, n − j)` floats apart.
    fn as_ptr(&self) -> *const f32 {
        let p = self.buf.as_ptr();
        p.wrapping_add(p.align_offset(64))
    }
}

impl Lists {
    /// Lists the non-zeros of rows `rows` of `a` within columns `cols` (indices relative to
    /// `cols.start`), row by row, at level `isa`.
    fn rows_of(&mut self, isa: Isa, a: MatRef<'_>, rows: Range<usize>, cols: Range<usize>) {
        dispatch(
            isa,
            ListRows {
                lists: self,
                a,
                rows,
                cols,
            },
        );
    }

    /// Lists the non-zeros of columns `cols` of `a`, column by column, in ascending row
    /// order (indices are rows of `a`): the rows of that block of A transposed.
    fn columns_of(&mut self, isa: Isa, a: MatRef<'_>, cols: Range<usize>) {
        let (k, w) = (a.nrows(), cols.len());
        let mut t = std::mem::take(&mut self.transposed);
        t.resize(w * k, 0.0);
        if k > 0 && w > 0 {
            // SAFETY: rows 0..k, columns `cols` of `a` lie inside the view (contiguous rows
            // `row_stride` apart, checked by `product`).
            let src = unsafe {
                std::slice::from_raw_parts(
                    a.as_ptr().add(cols.start),
                    (k - 1) * a.row_stride() as usize + w,
                )
            };
            transpose_strided(src, a.row_stride() as usize, k, w, &mut t, k);
        }
        self.rows_of(isa, MatRef::from_slice(&t, w, k), 0..w, 0..k);
        self.transposed = t;
    }
}

impl Lists {
    /// Fills [`Lists::splits`] for B with `k` rows, cut into `k.div_ceil(KB)` blocks.
    fn split_blocks(&mut self, k: usize) {
        let blocks = k.div_ceil(KB);
        self.splits.clear();
        for i in 0..self.start.len() - 1 {
            let (st, e) = (self.start[i], self.start[i + 1]);
            let list = &self.idx[st..e];
            for b in 0..blocks {
                self.splits
                    .push(st + list.partition_point(|&r| (r as usize) < b * KB));
            }
            self.splits.push(e);
        }
    }
}

/// [`Lists::rows_of`] at one SIMD level: a vector of A at a time, its non-zeros compressed
/// to the lists' ends ([`Simd::compress_nonzero`]).
struct ListRows<'a, 'b> {
    lists: &'a mut Lists,
    a: MatRef<'b>,
    rows: Range<usize>,
    cols: Range<usize>,
}

impl Kernel for ListRows<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let ListRows {
            lists,
            a,
            rows,
            cols,
        } = self;
        let l = S::LANES;
        let width = cols.len();
        // Every entry may be written before it is dropped, a vector at a time.
        let cap = rows.len() * width + l;
        lists.start.clear();
        lists.idx.clear();
        lists.val.clear();
        lists.idx.reserve(cap);
        lists.val.reserve(cap);
        lists.start.push(0);
        let (ip, vp) = (lists.idx.as_mut_ptr(), lists.val.as_mut_ptr());
        let mut len = 0;
        for i in rows {
            // SAFETY: columns `cols` of row i lie inside the view (callers pass sub-ranges
            // of its shape; rows are contiguous). Writes start at `len` ≤ the entries seen
            // so far and span at most `l` entries, inside the reserved `cap`.
            unsafe {
                let row = a
                    .as_ptr()
                    .offset(i as isize * a.row_stride())
                    .add(cols.start);
                let mut j = 0;
                while j + l <= width {
                    let v = s.load(row.add(j));
                    len += s.compress_nonzero(v, j as u32, vp.add(len), ip.add(len));
                    j += l;
                }
                while j < width {
                    let v = *row.add(j);
                    *ip.add(len) = j as u32;
                    *vp.add(len) = v;
                    len += (v != 0.0) as usize;
                    j += 1;
                }
            }
            lists.start.push(len);
        }
        // SAFETY: the first `len` entries were written above.
        unsafe {
            lists.idx.set_len(len);
            lists.val.set_len(len);
        }
    }
}

/// `C ← α·A·B + β·C`, skipping the zeros of A (A is `r × k`, B `k × n`, C `r × n`). When
/// `beta == 0`, C is not read.
///
/// # Examples
/// ```
/// use drsae::linalg::{sparse_gemm, Mat};
/// let a = Mat::from_vec(1, 3, vec![0.0, 2.0, 0.0]);
/// let b = Mat::from_vec(3, 2, vec![9.0, 9.0, 1.0, 2.0, 9.0, 9.0]);
/// let mut c = Mat::filled(1, 2, 1.0);
/// sparse_gemm(1.0, a.view(), b.view(), 1.0, c.view_mut());
/// assert_eq!(c.as_slice(), &[3.0, 5.0]);
/// ```
///
/// # Panics
/// On mismatched shapes, or if A's, B's or C's rows are not contiguous.
#[track_caller]
pub fn sparse_gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    product("sparse_gemm", false, alpha, a, b, None, beta, c);
}

/// [`sparse_gemm`] with B already packed (`packed` must hold the packing of `b`; `b` itself
/// serves the dense fallback).
///
/// # Panics
/// As [`sparse_gemm`], and if `packed` has another shape than `b`.
#[track_caller]
pub(crate) fn sparse_gemm_packed(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    packed: &PackedRhs,
    beta: f32,
    c: MatMut<'_>,
) {
    assert_eq!(
        (packed.k, packed.n),
        b.shape(),
        "sparse_gemm: B is not the packed one"
    );
    product("sparse_gemm", false, alpha, a, b, Some(packed), beta, c);
}

/// `C ← α·Aᵀ·B + β·C`, skipping the zeros of A (A is `r × k`, B `r × n`, C `k × n`). When
/// `beta == 0`, C is not read.
///
/// # Examples
/// ```
/// use drsae::linalg::{sparse_t_gemm, Mat};
/// let a = Mat::from_vec(2, 1, vec![0.0, 2.0]);
/// let b = Mat::from_vec(2, 2, vec![9.0, 9.0, 1.0, 2.0]);
/// let mut c = Mat::zeros(1, 2);
/// sparse_t_gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
/// assert_eq!(c.as_slice(), &[2.0, 4.0]);
/// ```
///
/// # Panics
/// On mismatched shapes, or if A's, B's or C's rows are not contiguous.
#[track_caller]
pub fn sparse_t_gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    product("sparse_t_gemm", true, alpha, a, b, None, beta, c);
}

/// `C ← α·op(A)·B + β·C` with op(A) = A or Aᵀ (`transposed`): checks the shapes and layouts
/// (naming `name`), then skips A's zeros (B from `packed` if given, else packed here), or
/// calls the dense GEMM above [`DENSE_ABOVE`] %.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn product(
    name: &str,
    transposed: bool,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    packed: Option<&PackedRhs>,
    beta: f32,
    c: MatMut<'_>,
) {
    let op = if transposed { a.t() } else { a };
    let (rows, inner) = op.shape();
    assert!(
        b.nrows() == inner && c.shape() == (rows, b.ncols()),
        "{name} shape mismatch: the product is {rows}×{inner} by {:?} into C {:?}",
        b.shape(),
        c.shape()
    );
    assert!(
        a.col_stride() == 1 && b.col_stride() == 1 && c.col_stride() == 1,
        "{name}: A, B and C need contiguous rows"
    );
    let nnz = count_nonzeros(a);
    if nnz > DENSE_ABOVE * rows * inner / 100 {
        gemm(alpha, op, b, beta, c);
    } else {
        let isa = Isa::current();
        let threads = gemm_threads();
        let sparse =
            |b: Rhs<'_>, c| sparse_product(isa, threads, transposed, nnz, alpha, a, b, beta, c);
        match packed {
            Some(p) => sparse(Rhs::Packed(p), c),
            // Too few uses of each row of B to pay for copying it.
            None if nnz < PACK_MIN_USES * inner => sparse(Rhs::InPlace(b), c),
            None => PACKED.with(|p| {
                let mut p = p.borrow_mut();
                p.pack(b);
                sparse(Rhs::Packed(&p), c)
            }),
        }
    }
}

/// The number of non-zeros of `a` (contiguous rows).
fn count_nonzeros(a: MatRef<'_>) -> usize {
    (0..a.nrows())
        .map(|i| {
            // SAFETY: row i lies inside the view.
            let row = unsafe {
                std::slice::from_raw_parts(
                    a.as_ptr().offset(i as isize * a.row_stride()),
                    a.ncols(),
                )
            };
            row.iter().map(|&v| (v != 0.0) as usize).sum::<usize>()
        })
        .sum()
}

/// Row i of C ← `α·Σ_j a_ij·B[j, :] + β·C[i, :]` over the non-zeros of row i of A
/// (`transposed`: of column i), on up to `threads` threads, each listing the non-zeros of
/// its own block of C's rows. One level `isa` for the whole product (whatever
/// `simd::force` does meanwhile), so the result does not depend on the split.
#[allow(clippy::too_many_arguments)]
fn sparse_product(
    isa: Isa,
    threads: usize,
    transposed: bool,
    nnz: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: Rhs<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) {
    let (rows, n) = c.shape();
    let (cp, crs) = (SendPtr(c.as_mut_ptr()), c.row_stride());
    let (bp, k, brs) = match b {
        Rhs::Packed(p) => (p.as_ptr() as usize, p.k, None),
        Rhs::InPlace(m) => (m.as_ptr() as usize, m.nrows(), Some(m.row_stride())),
    };
    // Rows r0..r1, columns j0..j1 (j0 a panel boundary) of C.
    let block = |(r0, r1): (usize, usize), (j0, j1): (usize, usize)| {
        // Capture the whole SendPtr (a closure using only `cp.0` would capture the raw
        // pointer, which is not Sync).
        let (cp, _) = (cp, ());
        LISTS.with(|l| {
            let mut lists = l.borrow_mut();
            if transposed {
                lists.columns_of(isa, a, r0..r1);
            } else {
                lists.rows_of(isa, a, r0..r1, 0..a.ncols());
            }
            // Blocks pay off once enough rows reuse each block of B.
            let blocked = k > KB && j1 - j0 >= PANEL && r1 - r0 >= BLOCKED_MIN_ROWS;
            let mut partial = std::mem::take(&mut lists.partial);
            if blocked {
                lists.split_blocks(k);
                partial.resize((r1 - r0) * PANEL, 0.0);
            }
            let panels = Panels {
                lists: &lists,
                blocked,
                partial: partial.as_mut_ptr(),
                rows: r1 - r0,
                cols: (j0, j1),
                n,
                b: (bp as *const f32, k, brs),
                // Rows r0..r1 of C: inside the view, written by this block only.
                c: (cp.0.wrapping_offset(r0 as isize * crs), crs),
                alpha,
                beta,
            };
            dispatch(isa, panels);
            lists.partial = partial;
        });
    };
    let work = nnz * n;
    if transposed || rows >= COLUMN_SPLIT_BELOW_ROWS || n < 2 * PANEL {
        run_split(threads, rows, work, PARALLEL_MIN_MACS, &|r0, r1| {
            block((r0, r1), (0, n))
        });
        return;
    }
    // Few rows: the threads share C's columns instead, at panel boundaries, so that each
    // reads only its part of B (and every row's lists are made by every thread).
    let threads = if work >= PARALLEL_MIN_MACS && !in_task() {
        threads.min(n / PANEL)
    } else {
        1
    };
    let at = |t: usize| ((t * n / threads + PANEL / 2) / PANEL * PANEL).min(n);
    run(threads, threads, &|t| {
        let j1 = if t + 1 == threads { n } else { at(t + 1) };
        if at(t) < j1 {
            block((0, rows), (at(t), j1));
        }
    });
}

/// Rows `0..rows` of a block of C (at `c`) from its lists, all columns: the panels of
/// [`sparse_product`] at one SIMD level.
struct Panels<'a> {
    lists: &'a Lists,
    /// Whether the full panels go through B's rows in blocks of [`KB`] (`lists.splits`
    /// filled, `partial` holding `PANEL` floats per row).
    blocked: bool,
    partial: *mut f32,
    rows: usize,
    /// The columns of C to compute: from a panel boundary to another one or to `n`.
    cols: (usize, usize),
    n: usize,
    /// B packed ([`PackedRhs::as_ptr`]) or in place (with its row stride), and its number
    /// of rows.
    b: (*const f32, usize, Option<isize>),
    c: (*mut f32, isize),
    alpha: f32,
    beta: f32,
}

impl Kernel for Panels<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Panels {
            lists,
            blocked,
            partial,
            rows,
            cols: (j0, j1),
            n,
            b: (bp, k, brs),
            c: (cp, crs),
            alpha,
            beta,
        } = self;
        // Column panels outermost: B's panel (all its rows, ≤ 64 columns) stays in cache
        // while every row of the block is combined from it.
        let mut j = j0;
        while j < j1 {
            let width = if j + PANEL <= n {
                PANEL
            } else if j + 8 <= n {
                8
            } else {
                n - j
            };
            // The packed panel holding column j, and where column j lies in it.
            let p0 = j / PANEL * PANEL;
            let src = match brs {
                None => (bp.wrapping_add(p0 * k), PANEL.min(n - p0) as isize, j - p0),
                Some(rs) => (bp, rs, j),
            };
            // Full panels of a blocked product go through B's rows in blocks (the partial
            // sums carried in `partial`), everything else in one pass.
            let blocks = if blocked && width == PANEL {
                k.div_ceil(KB)
            } else {
                1
            };
            for kb in 0..blocks {
                for i in 0..rows {
                    let (st, e) = if blocks == 1 {
                        (lists.start[i], lists.start[i + 1])
                    } else {
                        let sp = &lists.splits[i * (blocks + 1)..(i + 1) * (blocks + 1)];
                        (sp[kb], sp[kb + 1])
                    };
                    let carry = (partial.wrapping_add(i * PANEL), (kb > 0, kb + 1 < blocks));
                    // SAFETY: the lists index rows of B (< B's rows, checked shapes); row i
                    // of the block of C (n columns) is inside the view and written by this
                    // block only (`sparse_product`); when blocked, `partial` holds PANEL
                    // floats for each of the block's rows.
                    unsafe {
                        combine_panel(
                            s,
                            &lists.idx[st..e],
                            &lists.val[st..e],
                            (src.0, src.1),
                            cp.offset(i as isize * crs),
                            (src.2, j, width),
                            alpha,
                            beta,
                            carry,
                        );
                    }
                }
            }
            j += width;
        }
    }
}

/// `c[j] ← α·Σ_e val[e]·B[idx[e], bj + j − j0] + β·c[j]` for j in `j0..j0 + width`, width
/// [`PANEL`], 8 or less than 8 (the widths depend on the column only, never on the split over
/// threads); `bj` is where B's columns start (0 for a packed panel, `j0` for B itself).
/// `carry` as for [`vectors`]; only full panels carry partial sums.
///
/// # Safety
/// Every `idx[e]` is a row of B (rows `brs` apart, at least `bj + width` columns);
/// `c[j0..j0 + width]` is writable; a carry's `part` holds [`PANEL`] floats.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn combine_panel<S: Simd>(
    s: S,
    idx: &[u32],
    val: &[f32],
    (b, brs): (*const f32, isize),
    c: *mut f32,
    (bj, j0, width): (usize, usize, usize),
    alpha: f32,
    beta: f32,
    carry: (*mut f32, (bool, bool)),
) {
    let (b, c) = (b.add(bj), c.add(j0));
    debug_assert!(width == PANEL || carry.1 == (false, false));
    match width {
        PANEL if S::LANES == 16 => vectors::<S, 4>(s, idx, val, b, brs, c, alpha, beta, carry),
        PANEL => vectors::<S, 8>(s, idx, val, b, brs, c, alpha, beta, carry),
        8 => vectors::<S::Narrow, 1>(s.narrow(), idx, val, b, brs, c, alpha, beta, carry),
        _ => {
            for j in 0..width {
                let mut acc = 0.0f32;
                for (&r, &v) in idx.iter().zip(val) {
                    acc = v.mul_add(*b.offset(r as isize * brs).add(j), acc);
                }
                let old = if beta == 0.0 { 0.0 } else { beta * *c.add(j) };
                *c.add(j) = alpha.mul_add(acc, old);
            }
        }
    }
}

/// How many list entries ahead the rows of a panel are prefetched on the 8-lane levels: the
/// rows are random, so the hardware prefetcher cannot guess them. The 16-lane level does not
/// prefetch: there, on the packed panels, the explicit prefetches cost more load slots than
/// they save (measured on Zen 5 on DrSAE training steps).
const PREFETCH_AHEAD: usize = 6;

/// Asks for the 256 bytes at `p` (one 64-column panel row) to be brought into L1.
#[inline(always)]
fn prefetch_panel(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in 0..4 {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(16 * line) as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`combine_panel`] for `V·LANES` columns (B's from `b`, C's from `c`), the V accumulators
/// in registers. `carry = (part, (from, to))`: the accumulators start from `part` if `from`
/// (else zero), and end in `part` if `to` (else α·acc + β·c goes to C).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn vectors<S: Simd, const V: usize>(
    s: S,
    idx: &[u32],
    val: &[f32],
    b: *const f32,
    brs: isize,
    c: *mut f32,
    alpha: f32,
    beta: f32,
    (part, (from, to)): (*mut f32, (bool, bool)),
) {
    let l = S::LANES;
    let mut acc = [s.zero(); V];
    if from {
        for (q, a) in acc.iter_mut().enumerate() {
            *a = s.load(part.add(l * q));
        }
    }
    for (e, (&r, &v)) in idx.iter().zip(val).enumerate() {
        let row = b.offset(r as isize * brs);
        if V * l == PANEL && l == 8 {
            if let Some(&ahead) = idx.get(e + PREFETCH_AHEAD) {
                prefetch_panel(b.offset(ahead as isize * brs));
            }
        }
        let v = s.splat(v);
        for (q, a) in acc.iter_mut().enumerate() {
            *a = s.mul_add(v, s.load(row.add(l * q)), *a);
        }
    }
    if to {
        for (q, a) in acc.iter().enumerate() {
            s.store(part.add(l * q), *a);
        }
        return;
    }
    let (al, be) = (s.splat(alpha), s.splat(beta));
    for (q, a) in acc.iter().enumerate() {
        let at = c.add(l * q);
        let old = if beta == 0.0 {
            s.zero()
        } else {
            s.mul(be, s.load(at))
        };
        s.store(at, s.mul_add(al, *a, old));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{gemm_reference, Mat};
    use rand::Rng;

    /// A random matrix with about `density` of its entries non-zero.
    fn sparse(r: usize, c: usize, density: f64, rng: &mut crate::rng::SeedRng) -> Mat {
        Mat::from_fn(r, c, |_, _| {
            if rng.gen_bool(density) {
                rng.gen_range(-1.0..1.0)
            } else {
                0.0
            }
        })
    }

    fn dense(r: usize, c: usize, rng: &mut crate::rng::SeedRng) -> Mat {
        Mat::from_fn(r, c, |_, _| rng.gen_range(-1.0..1.0))
    }

    #[test]
    fn match_dense_products_for_many_shapes_and_densities() {
        let mut rng = crate::rng::seeded(3);
        for &(r, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (10, 400, 400),
            (7, 33, 71),
            (20, 64, 130),
            (2, 9, 64),
        ] {
            for &density in &[0.0, 0.05, 0.3, 1.0] {
                for &(alpha, beta) in &[(1.0f32, 0.0f32), (1.0, 1.0), (-0.5, 0.75)] {
                    let a = sparse(r, k, density, &mut rng);
                    let b = dense(k, n, &mut rng);
                    let c0 = dense(r, n, &mut rng);
                    let mut want = c0.clone();
                    gemm_reference(alpha, a.view(), b.view(), beta, want.view_mut());
                    let mut got = c0.clone();
                    sparse_gemm(alpha, a.view(), b.view(), beta, got.view_mut());
                    let tol = 1e-5 * (k as f32).sqrt();
                    assert!(
                        got.max_abs_diff(&want) <= tol,
                        "A·B {r}×{k}×{n} density {density} α {alpha} β {beta}: {}",
                        got.max_abs_diff(&want)
                    );
                    // Aᵀ·B with A = r × k: C is k × n, B is r × n.
                    let bt = dense(r, n, &mut rng);
                    let c1 = dense(k, n, &mut rng);
                    let mut want = c1.clone();
                    gemm_reference(alpha, a.t(), bt.view(), beta, want.view_mut());
                    let mut got = c1.clone();
                    sparse_t_gemm(alpha, a.view(), bt.view(), beta, got.view_mut());
                    assert!(
                        got.max_abs_diff(&want) <= 1e-5 * (r as f32).sqrt(),
                        "Aᵀ·B {r}×{k}×{n} density {density}: {}",
                        got.max_abs_diff(&want)
                    );
                }
            }
        }
    }

    /// Every level against the f64 product: each element within `2·k·ε·Σ|a·b|` (the
    /// levels differ in fused versus separate multiply-adds, each step within about one
    /// rounding), over widths that take the 64-column panels, the 8-column ones and the
    /// scalar tail, and inner lengths 0..=40, 257, 1031.
    #[test]
    fn every_level_matches_the_f64_product() {
        let mut rng = crate::rng::seeded(9);
        for isa in Isa::all() {
            for k in (0..=40).chain([257, 1031]) {
                for n in [1, 7, 8, 13, 64, 77, 200] {
                    if k > 40 && n != 77 {
                        continue;
                    }
                    let (r, beta) = (3, 0.5f32);
                    let a = sparse(r, k, 0.3, &mut rng);
                    let b = dense(k, n, &mut rng);
                    let c0 = dense(r, n, &mut rng);
                    let nnz = count_nonzeros(a.view());
                    let mut c = c0.clone();
                    sparse_product(
                        isa,
                        1,
                        false,
                        nnz,
                        0.7,
                        a.view(),
                        Rhs::Packed(&packed(b.view())),
                        beta,
                        c.view_mut(),
                    );
                    for i in 0..r {
                        for j in 0..n {
                            let (mut d, mut abs) = (0.0f64, 0.0f64);
                            for u in 0..k {
                                let p = a[(i, u)] as f64 * b[(u, j)] as f64;
                                d += p;
                                abs += p.abs();
                            }
                            let want = 0.7 * d + beta as f64 * c0[(i, j)] as f64;
                            let tol = (2.0 * k as f64 * abs + 4.0 * want.abs() + 2.0)
                                * f32::EPSILON as f64;
                            let got = c[(i, j)] as f64;
                            assert!(
                                (got - want).abs() <= tol,
                                "{isa:?} k={k} n={n} ({i}, {j}): {got} {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn special_values_on_every_level() {
        // A NaN or an infinity in B reaches exactly the rows of C whose A row uses it; the
        // zeros of A skip them (skipping is the point: 0·inf is never formed).
        for isa in Isa::all() {
            let a = Mat::from_vec(
                3,
                2,
                vec![1.0, 0.0, 0.0, 1.0, -0.0, f32::MIN_POSITIVE / 4.0],
            );
            let mut b = Mat::filled(2, 77, 1.0);
            b[(0, 70)] = f32::NAN;
            b[(0, 3)] = f32::INFINITY;
            b[(1, 5)] = f32::NEG_INFINITY;
            let mut c = Mat::filled(3, 77, f32::NAN);
            let b = packed(b.view());
            sparse_product(
                isa,
                1,
                false,
                3,
                1.0,
                a.view(),
                Rhs::Packed(&b),
                0.0,
                c.view_mut(),
            );
            assert!(c[(0, 70)].is_nan() && c[(0, 3)] == f32::INFINITY && c[(0, 5)] == 1.0);
            assert!(c[(1, 70)] == 1.0 && c[(1, 3)] == 1.0 && c[(1, 5)] == f32::NEG_INFINITY);
            // Row 2: −0 is skipped, the denormal scales B: -inf at column 5, tiny elsewhere.
            assert!(c[(2, 5)] == f32::NEG_INFINITY && c[(2, 70)] == f32::MIN_POSITIVE / 4.0);
            assert!(c[(2, 3)] == f32::MIN_POSITIVE / 4.0, "{isa:?}");
        }
    }

    fn packed(b: MatRef<'_>) -> PackedRhs {
        let mut p = PackedRhs::default();
        p.pack(b);
        p
    }

    #[test]
    fn one_packing_serves_many_products_and_strided_views() {
        // B as a sub-view (row stride 210 > 200 columns): three full panels and a tail of 8.
        let mut rng = crate::rng::seeded(8);
        let big = dense(50, 210, &mut rng);
        let b = MatRef::from_strided(big.as_slice(), 50, 200, 210, 1);
        let mut p = PackedRhs::default();
        // A stale, larger packing first: packing again must replace it.
        p.pack(dense(90, 300, &mut rng).view());
        p.pack(b);
        for seed in 0..3 {
            let a = sparse(9, 50, 0.2, &mut crate::rng::seeded(seed));
            let mut want = Mat::filled(9, 200, 0.25);
            sparse_gemm(1.5, a.view(), b, 0.5, want.view_mut());
            let mut got = Mat::filled(9, 200, 0.25);
            sparse_gemm_packed(1.5, a.view(), b, &p, 0.5, got.view_mut());
            assert!(got == want, "seed {seed}");
        }
        assert_eq!(p.clone().n, 0, "a clone of scratch is empty");
    }

    #[test]
    #[should_panic(expected = "B is not the packed one")]
    fn a_packing_of_another_shape_is_refused() {
        let p = packed(Mat::zeros(4, 64).view());
        let (a, b) = (Mat::zeros(2, 4), Mat::zeros(4, 65));
        sparse_gemm_packed(
            1.0,
            a.view(),
            b.view(),
            &p,
            0.0,
            Mat::zeros(2, 65).view_mut(),
        );
    }

    #[test]
    fn beta_zero_ignores_nan_in_c() {
        let a = Mat::from_vec(1, 2, vec![1.0, 0.0]);
        let b = Mat::from_vec(2, 9, (0..18).map(|v| v as f32).collect());
        let mut c = Mat::filled(1, 9, f32::NAN);
        sparse_gemm(2.0, a.view(), b.view(), 0.0, c.view_mut());
        assert_eq!(c.row(0), &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]);
    }

    #[test]
    fn blocks_of_b_give_the_bits_of_one_pass_on_every_level() {
        // 40 rows go through B's 300 rows in blocks of KB; one row at a time goes in one
        // pass (fewer than BLOCKED_MIN_ROWS rows): the same sums, bit for bit.
        let mut rng = crate::rng::seeded(6);
        let (r, k, n) = (40, 3 * KB - 84, 2 * PANEL + 11);
        assert!(r >= BLOCKED_MIN_ROWS);
        let a = sparse(r, k, 0.25, &mut rng);
        let bm = dense(k, n, &mut rng);
        let b = packed(bm.view());
        let c0 = dense(r, n, &mut rng);
        for isa in Isa::all() {
            let mut all = c0.clone();
            let nnz = count_nonzeros(a.view());
            let b = Rhs::Packed(&b);
            sparse_product(isa, 1, false, nnz, 0.7, a.view(), b, 0.5, all.view_mut());
            // B read in place: the same bits.
            let mut in_place = c0.clone();
            let bi = Rhs::InPlace(bm.view());
            sparse_product(
                isa,
                1,
                false,
                nnz,
                0.7,
                a.view(),
                bi,
                0.5,
                in_place.view_mut(),
            );
            assert!(in_place == all, "{isa:?} in place");
            for i in 0..r {
                let mut one = c0.row_range(i, i + 1).to_owned();
                let ai = a.row_range(i, i + 1);
                let nnz = count_nonzeros(ai);
                sparse_product(isa, 1, false, nnz, 0.7, ai, b, 0.5, one.view_mut());
                assert!(one.row(0) == all.row(i), "{isa:?} row {i}");
            }
        }
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let mut rng = crate::rng::seeded(5);
        let a = sparse(60, 400, 0.2, &mut rng);
        let b = dense(400, 403, &mut rng);
        let bt = dense(60, 403, &mut rng);
        let nnz = count_nonzeros(a.view());
        let run = |threads: usize| {
            let mut c = Mat::filled(60, 403, 0.5);
            sparse_product(
                Isa::current(),
                threads,
                false,
                nnz,
                0.7,
                a.view(),
                Rhs::Packed(&packed(b.view())),
                1.0,
                c.view_mut(),
            );
            let mut d = Mat::filled(400, 403, 0.5);
            sparse_product(
                Isa::current(),
                threads,
                true,
                nnz,
                0.7,
                a.view(),
                Rhs::Packed(&packed(bt.view())),
                1.0,
                d.view_mut(),
            );
            (c, d)
        };
        let one = run(1);
        for threads in 2..=5 {
            assert!(run(threads) == one, "{threads} threads differ from one");
        }
    }

    #[test]
    #[should_panic(expected = "sparse_gemm shape mismatch")]
    fn mismatch_names_shapes() {
        let a = Mat::zeros(2, 3);
        let b = Mat::zeros(4, 5);
        let mut c = Mat::zeros(2, 5);
        sparse_gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
    }
}

//! Rank-k updates `W ← W + α·Pᵀ·Q` for small k (the minibatch-10 SGD steps of DrSAE), fused
//! with the norm constraint that follows the step and, for the decoder, with the product
//! `G ← G + β·P·W` that reads W just before it changes.
//!
//! With 10 rows in P and Q the update is bound by the traffic of W (read and write every
//! element for 10 multiply-adds); the constraint pass and the backward product each read W
//! once more. Here W is streamed once: [`rank_update_rows`] walks W's rows (a row's norm is
//! complete when the row is, and a row over the bound is rescaled while it is in L1);
//! [`rank_update_cols`] walks W in strips of one vector of columns (16 on AVX-512, 8
//! otherwise), keeping the strip's column norms and the `k × 16` (or `k × 8`) block of
//! `P·W` in registers. Larger k (minibatch 100) goes to [`gemm`]
//! followed by a separate constraint pass.
//!
//! Each element is computed by one fixed sequence of operations whatever the split over
//! threads (rows, or strips of columns), so the result does not depend on the thread count.
//! The SIMD level ([`crate::simd`]) is read once per update and shared by its threads; the
//! levels differ in the last bits (fused multiply-adds on the x86 levels, the vector width
//! deciding which columns take the scalar tail).
//!
//! One file on purpose: the two fused update orders, their scalar references and per-level
//! kernels read together (about 630 lines of code; the rest are the tests comparing every
//! level with the reference).

use super::pool::{run_split, SendPtr};
use super::{gemm, gemm_threads, MatMut, MatRef};
use crate::simd::{dispatch, Isa, Kernel, Simd};

/// Largest k served by the streaming kernels.
pub(crate) const RANK_MAX: usize = 12;

/// Below this many multiply-adds the update stays on the calling thread.
const PARALLEL_MIN_MACS: usize = 500_000;

/// `W ← W + α·Pᵀ·Q` (P is `k × m`, Q is `k × n`, W is `m × n`), then every row of W whose
/// Euclidean norm exceeds `max_row_norm` is scaled down to it.
///
/// # Examples
/// ```
/// use drsae::linalg::{rank_update_rows, Mat};
/// let p = Mat::from_vec(1, 2, vec![1.0, 0.0]); // k = 1, m = 2
/// let q = Mat::from_vec(1, 2, vec![3.0, 4.0]); // n = 2
/// let mut w = Mat::zeros(2, 2);
/// rank_update_rows(1.0, p.view(), q.view(), w.view_mut(), Some(1.0));
/// assert_eq!(w.as_slice(), &[0.6, 0.8, 0.0, 0.0]); // row 0 = (3, 4), clipped to norm 1
/// ```
///
/// # Panics
/// On mismatched shapes, or if W's or Q's rows are not contiguous.
#[track_caller]
pub fn rank_update_rows(
    alpha: f32,
    p: MatRef<'_>,
    q: MatRef<'_>,
    w: MatMut<'_>,
    max_row_norm: Option<f32>,
) {
    update_rows(Isa::current(), gemm_threads(), alpha, p, q, w, max_row_norm)
}

#[track_caller]
fn update_rows(
    isa: Isa,
    threads: usize,
    alpha: f32,
    p: MatRef<'_>,
    q: MatRef<'_>,
    mut w: MatMut<'_>,
    max_row_norm: Option<f32>,
) {
    let (k, m, n) = check(p, q, w.as_ref());
    if k > RANK_MAX || k == 0 {
        gemm(alpha, p.t(), q, 1.0, w.rb_mut());
        if let Some(bound) = max_row_norm {
            clip_rows(w, bound);
        }
        return;
    }
    let bound2 = max_row_norm.map(|b| b * b);
    let (wp, wrs) = (SendPtr(w.as_mut_ptr()), w.row_stride());
    let rows = move |start: usize, end: usize| {
        let wp = wp;
        let rows = Rows {
            k,
            n,
            alpha,
            p,
            q,
            rows: start..end,
            w: wp.0,
            wrs,
            bound2,
        };
        dispatch(isa, rows);
    };
    run_split(threads, m, m * n * k, PARALLEL_MIN_MACS, &rows);
}

/// Rows `rows` of a [`rank_update_rows`] at one SIMD level.
struct Rows<'a> {
    k: usize,
    n: usize,
    alpha: f32,
    p: MatRef<'a>,
    q: MatRef<'a>,
    rows: std::ops::Range<usize>,
    /// W's element (0, 0); rows `wrs` apart.
    w: *mut f32,
    wrs: isize,
    bound2: Option<f32>,
}

impl Kernel for Rows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Rows {
            k,
            n,
            alpha,
            p,
            q,
            w,
            wrs,
            bound2,
            ..
        } = self;
        for i in self.rows {
            // SAFETY: row i of W (n values from w + i·wrs) is in bounds and written by
            // this call only (the blocks of `update_rows` partition the rows); P and Q are
            // read within their checked shapes.
            unsafe { update_row(s, k, n, alpha, p, i, q, w.offset(i as isize * wrs), bound2) };
        }
    }
}

/// `G ← G + β·P·W` with the old W (when `read` is `Some((β, G))`, G is `k × n`), then
/// `W ← W + α·Pᵀ·Q` (P is `k × m`, Q is `k × n`, W is `m × n`), then every column of W whose
/// Euclidean norm exceeds `max_col_norm` is scaled down to it.
///
/// # Examples
/// ```
/// use drsae::linalg::{rank_update_cols, Mat};
/// let p = Mat::from_vec(1, 2, vec![1.0, 2.0]); // k = 1, m = 2
/// let q = Mat::from_vec(1, 1, vec![1.0]); // n = 1
/// let mut w = Mat::from_vec(2, 1, vec![1.0, 0.0]);
/// let mut g = Mat::zeros(1, 1);
/// rank_update_cols(1.0, p.view(), q.view(), w.view_mut(), Some((1.0, g.view_mut())), None);
/// assert_eq!(g.as_slice(), &[1.0]); // P·W with the old W
/// assert_eq!(w.as_slice(), &[2.0, 2.0]); // W + Pᵀ·Q
/// ```
///
/// # Panics
/// On mismatched shapes, or if W's, Q's or G's rows are not contiguous.
#[track_caller]
pub fn rank_update_cols(
    alpha: f32,
    p: MatRef<'_>,
    q: MatRef<'_>,
    w: MatMut<'_>,
    read: Option<(f32, MatMut<'_>)>,
    max_col_norm: Option<f32>,
) {
    update_cols(
        Isa::current(),
        gemm_threads(),
        alpha,
        p,
        q,
        w,
        read,
        max_col_norm,
    )
}

#[track_caller]
fn update_cols(
    isa: Isa,
    threads: usize,
    alpha: f32,
    p: MatRef<'_>,
    q: MatRef<'_>,
    mut w: MatMut<'_>,
    read: Option<(f32, MatMut<'_>)>,
    max_col_norm: Option<f32>,
) {
    let (k, m, n) = check(p, q, w.as_ref());
    if let Some((_, g)) = &read {
        assert!(
            g.shape() == (k, n) && g.col_stride() == 1,
            "rank update: G is {:?} (col stride {}), expected {k}×{n} with contiguous rows",
            g.shape(),
            g.col_stride()
        );
    }
    if k > RANK_MAX || k == 0 {
        if let Some((beta, g)) = read {
            gemm(beta, p, w.as_ref(), 1.0, g);
        }
        gemm(alpha, p.t(), q, 1.0, w.rb_mut());
        if let Some(bound) = max_col_norm {
            clip_columns(w, bound);
        }
        return;
    }
    let bound2 = max_col_norm.map(|b| b * b);
    let (wp, wrs) = (SendPtr(w.as_mut_ptr()), w.row_stride());
    let (beta, gp, grs) = match read {
        Some((beta, mut g)) => (beta, SendPtr(g.as_mut_ptr()), g.row_stride()),
        None => (0.0, SendPtr(std::ptr::null_mut()), 0),
    };
    // Strips of one vector of columns of the level (one level for the whole update).
    let lanes = isa.lanes();
    let strips = n.div_ceil(lanes);
    let cols = move |start: usize, end: usize| {
        let (wp, gp) = (wp, gp);
        let strips = Strips {
            n,
            strips: start..end,
            strip: ColStrip {
                k,
                m,
                alpha,
                p,
                q,
                j0: 0,
                w: wp.0,
                wrs,
                g: (!gp.0.is_null()).then_some((beta, gp.0, grs)),
                bound2,
            },
        };
        dispatch(isa, strips);
    };
    run_split(threads, strips, m * n * k, PARALLEL_MIN_MACS, &cols);
}

/// Strips `strips` (of `LANES` columns each) of a [`rank_update_cols`] at one SIMD level;
/// `strip` describes the whole of W (j0 = 0).
struct Strips<'a> {
    n: usize,
    strips: std::ops::Range<usize>,
    strip: ColStrip<'a>,
}

impl Kernel for Strips<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let whole = &self.strip;
        for t in self.strips {
            let j = t * S::LANES;
            let width = (self.n - j).min(S::LANES);
            let strip = ColStrip {
                j0: j,
                w: whole.w.wrapping_add(j),
                g: whole
                    .g
                    .map(|(beta, gp, grs)| (beta, gp.wrapping_add(j), grs)),
                ..*whole
            };
            // SAFETY: columns j..j + width of W (and of G) are in bounds and written by
            // this call only (strips partition the columns); P, Q are read within their
            // checked shapes.
            unsafe { update_strip(s, &strip, width) };
        }
    }
}

/// Checks the shapes and layouts, returning `(k, m, n)`.
#[track_caller]
fn check(p: MatRef<'_>, q: MatRef<'_>, w: MatRef<'_>) -> (usize, usize, usize) {
    let (k, m) = p.shape();
    let n = q.ncols();
    assert!(
        q.nrows() == k && w.shape() == (m, n),
        "rank update shape mismatch: P is {:?}, Q is {:?}, W is {:?}",
        p.shape(),
        q.shape(),
        w.shape()
    );
    assert!(
        w.col_stride() == 1 && q.col_stride() == 1,
        "rank update: W and Q need contiguous rows"
    );
    (k, m, n)
}

/// Scales every row of `w` whose Euclidean norm exceeds `bound` down to norm `bound`.
///
/// # Panics
/// If W's rows are not contiguous.
pub fn clip_rows(mut w: MatMut<'_>, bound: f32) {
    assert!(w.col_stride() == 1, "clip_rows: W needs contiguous rows");
    let n = w.ncols();
    let (wp, wrs) = (w.as_mut_ptr(), w.row_stride());
    for i in 0..w.nrows() {
        // SAFETY: row i of W is n contiguous values inside the view, borrowed mutably.
        let row = unsafe { std::slice::from_raw_parts_mut(wp.offset(i as isize * wrs), n) };
        super::clip_norm(row, bound);
    }
}

/// Scales every column of `w` whose Euclidean norm exceeds `bound` down to norm `bound`,
/// in strips of one vector of columns (no allocation).
///
/// # Panics
/// If W's rows are not contiguous.
pub fn clip_columns(w: MatMut<'_>, bound: f32) {
    clip_columns_at(Isa::current(), w, bound)
}

/// [`clip_columns`] at the level `isa`.
fn clip_columns_at(isa: Isa, mut w: MatMut<'_>, bound: f32) {
    assert!(w.col_stride() == 1, "clip_columns: W needs contiguous rows");
    let (m, n) = w.shape();
    let (wp, wrs) = (w.as_mut_ptr(), w.row_stride());
    let b2 = bound * bound;
    let strips = ClipColumns {
        m,
        n,
        w: wp,
        wrs,
        b2,
    };
    let j = dispatch(isa, strips);
    for c in j..n {
        let norm2: f32 = (0..m).map(|i| w.get(i, c) * w.get(i, c)).sum();
        if norm2 > b2 {
            let f = bound / norm2.sqrt();
            for i in 0..m {
                let v = w.get(i, c);
                w.set(i, c, v * f);
            }
        }
    }
}

/// The whole strips of [`clip_columns`]; returns the first column left to the scalar loop.
struct ClipColumns {
    m: usize,
    n: usize,
    /// W's element (0, 0) (a view borrowed mutably by `clip_columns`); rows `wrs` apart.
    w: *mut f32,
    wrs: isize,
    b2: f32,
}

impl Kernel for ClipColumns {
    type Output = usize;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> usize {
        let ClipColumns { m, n, w, wrs, b2 } = self;
        let mut j = 0;
        while j + S::LANES <= n {
            // SAFETY: columns j..j + LANES of all m rows are inside the view, borrowed
            // mutably by `clip_columns`.
            unsafe {
                let mut nrm = s.zero();
                for i in 0..m {
                    let v = s.load(w.offset(i as isize * wrs).add(j));
                    nrm = s.mul_add(v, v, nrm);
                }
                clip_strip(s, m, w.add(j), wrs, nrm, b2);
            }
            j += S::LANES;
        }
        j
    }
}

/// Scales the lanes of a strip of `LANES` columns (m rows at `w`, row stride `wrs`) whose
/// squared norm in `nrm` exceeds `b2` to norm √b2.
///
/// # Safety
/// The strip must be writable.
#[inline(always)]
unsafe fn clip_strip<S: Simd>(s: S, m: usize, w: *mut f32, wrs: isize, nrm: S::V, b2: f32) {
    let n2 = s.to_array(nrm);
    let mut f = [1.0f32; 16];
    let mut any = false;
    for (f, &n2) in f.iter_mut().zip(&n2).take(S::LANES) {
        if n2 > b2 {
            *f = b2.sqrt() / n2.sqrt();
            any = true;
        }
    }
    if any {
        let fv = s.load(f.as_ptr());
        for i in 0..m {
            let wi = w.offset(i as isize * wrs);
            s.store(wi, s.mul(s.load(wi), fv));
        }
    }
}

/// Row i of W (at `w`, n values): `w ← w + Σ_r (α·P[r, i])·Q[r, :]`, then the norm clip.
///
/// # Safety
/// `w..w + n` must be writable and not alias P or Q; `i < m`, k ≤ RANK_MAX.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn update_row<S: Simd>(
    s: S,
    k: usize,
    n: usize,
    alpha: f32,
    p: MatRef<'_>,
    i: usize,
    q: MatRef<'_>,
    w: *mut f32,
    bound2: Option<f32>,
) {
    macro_rules! dispatch {
        ($($k:literal)*) => {
            match k {
                $($k => row_k::<S, $k>(s, n, alpha, p, i, q, w, bound2),)*
                _ => unreachable!("rank update with k = {k}"),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12)
}

#[inline(always)]
unsafe fn row_k<S: Simd, const K: usize>(
    s: S,
    n: usize,
    alpha: f32,
    p: MatRef<'_>,
    i: usize,
    q: MatRef<'_>,
    w: *mut f32,
    bound2: Option<f32>,
) {
    let coef: [f32; K] = std::array::from_fn(|r| alpha * p.get(r, i));
    let cv: [S::V; K] = coef.map(|c| s.splat(c));
    let qp: [*const f32; K] =
        std::array::from_fn(|r| q.as_ptr().offset(r as isize * q.row_stride()));
    let l = S::LANES;
    let nv = n / l * l;
    let mut nrm = s.zero();
    let mut j = 0;
    while j < nv {
        let (mut even, mut odd) = (s.load(w.add(j)), s.zero());
        for r in 0..K {
            if r % 2 == 0 {
                even = s.mul_add(cv[r], s.load(qp[r].add(j)), even);
            } else {
                odd = s.mul_add(cv[r], s.load(qp[r].add(j)), odd);
            }
        }
        let v = s.add(even, odd);
        nrm = s.mul_add(v, v, nrm);
        s.store(w.add(j), v);
        j += l;
    }
    let mut norm2 = s.reduce_add(nrm);
    for j in nv..n {
        let (mut even, mut odd) = (*w.add(j), 0.0f32);
        for r in 0..K {
            if r % 2 == 0 {
                even = coef[r].mul_add(*qp[r].add(j), even);
            } else {
                odd = coef[r].mul_add(*qp[r].add(j), odd);
            }
        }
        let v = even + odd;
        norm2 += v * v;
        *w.add(j) = v;
    }
    if let Some(b2) = bound2 {
        if norm2 > b2 {
            let f = b2.sqrt() / norm2.sqrt();
            for j in 0..n {
                *w.add(j) *= f;
            }
        }
    }
}

/// One strip of columns `j0..j0 + LANES` of a [`rank_update_cols`] (fewer for the last):
/// everything its kernels need.
#[derive(Clone, Copy)]
struct ColStrip<'a> {
    /// Rank (rows of P and Q), ≤ RANK_MAX.
    k: usize,
    /// Rows of W.
    m: usize,
    alpha: f32,
    p: MatRef<'a>,
    q: MatRef<'a>,
    /// First column of the strip.
    j0: usize,
    /// W's element (0, j0); rows `wrs` apart.
    w: *mut f32,
    wrs: isize,
    /// `(β, G's element (0, j0), G's row stride)` when `G += β·P·W_old` is wanted.
    g: Option<(f32, *mut f32, isize)>,
    /// Squared bound on the column norms.
    bound2: Option<f32>,
}

/// Columns `j0..j0 + width` (width ≤ LANES) of W, all m rows:
/// `G[:, strip] += β·P·W_old[:, strip]`, `W ← W + α·Pᵀ·Q[:, strip]`, then the column clip.
///
/// # Safety
/// The strip of W (and of G, `k` rows) must be writable and not alias P or Q.
#[inline(always)]
unsafe fn update_strip<S: Simd>(simd: S, s: &ColStrip<'_>, width: usize) {
    if width < S::LANES {
        strip_scalar(s, width);
        return;
    }
    macro_rules! dispatch {
        ($($k:literal)*) => {
            match (s.k, s.g.is_some()) {
                $(($k, true) => strip_k::<S, $k, true>(simd, s),
                  ($k, false) => strip_k::<S, $k, false>(simd, s),)*
                (k, _) => unreachable!("rank update with k = {k}"),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12)
}

#[inline(always)]
unsafe fn strip_k<S: Simd, const K: usize, const READ: bool>(simd: S, s: &ColStrip<'_>) {
    let ColStrip {
        m,
        alpha,
        p,
        q,
        j0,
        w,
        wrs,
        g,
        bound2,
        ..
    } = *s;
    let (prs, pcs) = (p.row_stride(), p.col_stride());
    let pp = p.as_ptr();
    // α·Q[:, strip], read from L1 inside the loop (the registers hold the K sums of P·W).
    let s = simd;
    let qa: [S::V; K] = std::array::from_fn(|r| {
        let qr = q.as_ptr().offset(r as isize * q.row_stride()).add(j0);
        s.mul(s.splat(alpha), s.load(qr))
    });
    let qa = std::hint::black_box(&qa);
    let mut gacc = [s.zero(); K];
    let mut nrm = s.zero();
    for i in 0..m {
        let wi = w.offset(i as isize * wrs);
        let old = s.load(wi);
        // Two partial sums halve the dependency chain of the update.
        let (mut even, mut odd) = (old, s.zero());
        let pi = pp.offset(i as isize * pcs);
        for r in 0..K {
            let pr = s.splat(*pi.offset(r as isize * prs));
            if READ {
                gacc[r] = s.mul_add(pr, old, gacc[r]);
            }
            if r % 2 == 0 {
                even = s.mul_add(pr, qa[r], even);
            } else {
                odd = s.mul_add(pr, qa[r], odd);
            }
        }
        let new = s.add(even, odd);
        nrm = s.mul_add(new, new, nrm);
        s.store(wi, new);
    }
    if let Some((beta, gp, grs)) = g {
        let bv = s.splat(beta);
        for (r, acc) in gacc.iter().enumerate() {
            let gr = gp.offset(r as isize * grs);
            s.store(gr, s.mul_add(bv, *acc, s.load(gr)));
        }
    }
    if let Some(b2) = bound2 {
        clip_strip(s, m, w, wrs, nrm, b2);
    }
}

/// [`strip_k`] for a last strip narrower than a vector, one column at a time with the same
/// operation order per element.
unsafe fn strip_scalar(s: &ColStrip<'_>, width: usize) {
    let ColStrip {
        k,
        m,
        alpha,
        p,
        q,
        j0,
        w,
        wrs,
        g,
        bound2,
    } = *s;
    for c in 0..width {
        let mut gacc = [0.0f32; RANK_MAX];
        let mut nrm = 0.0f32;
        let mut qc = [0.0f32; RANK_MAX];
        for (r, v) in qc.iter_mut().take(k).enumerate() {
            *v = alpha * q.get(r, j0 + c);
        }
        for i in 0..m {
            let wi = w.offset(i as isize * wrs).add(c);
            let old = *wi;
            let (mut even, mut odd) = (old, 0.0f32);
            for r in 0..k {
                let pr = p.get(r, i);
                gacc[r] = pr.mul_add(old, gacc[r]);
                if r % 2 == 0 {
                    even = pr.mul_add(qc[r], even);
                } else {
                    odd = pr.mul_add(qc[r], odd);
                }
            }
            let new = even + odd;
            nrm = new.mul_add(new, nrm);
            *wi = new;
        }
        if let Some((beta, gp, grs)) = g {
            for (r, acc) in gacc.iter().take(k).enumerate() {
                let gr = gp.offset(r as isize * grs).add(c);
                *gr = beta.mul_add(*acc, *gr);
            }
        }
        if let Some(b2) = bound2 {
            if nrm > b2 {
                let f = b2.sqrt() / nrm.sqrt();
                for i in 0..m {
                    *w.offset(i as isize * wrs).add(c) *= f;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{gemm_reference, Mat};

    fn rand_mat(r: usize, c: usize, rng: &mut crate::rng::SeedRng) -> Mat {
        Mat::random(r, c, rand_distr::Uniform::new(-1.0, 1.0), rng)
    }

    fn norms(w: &Mat, rows: bool) -> Vec<f32> {
        let (m, n) = w.shape();
        let (outer, inner) = if rows { (m, n) } else { (n, m) };
        (0..outer)
            .map(|a| {
                (0..inner)
                    .map(|b| {
                        let v = if rows { w[(a, b)] } else { w[(b, a)] };
                        v * v
                    })
                    .sum::<f32>()
                    .sqrt()
            })
            .collect()
    }

    /// Reference: f32 products by the scalar GEMM, then the clip by the scalar norm.
    fn expected(alpha: f32, p: &Mat, q: &Mat, w: &Mat, bound: f32, rows: bool) -> Mat {
        let mut e = w.clone();
        gemm_reference(alpha, p.t(), q.view(), 1.0, e.view_mut());
        let nr = norms(&e, rows);
        let (m, n) = e.shape();
        for i in 0..m {
            for j in 0..n {
                let nn = nr[if rows { i } else { j }];
                if nn > bound {
                    e[(i, j)] *= bound / nn;
                }
            }
        }
        e
    }

    #[test]
    fn match_the_reference_for_every_k_with_tails_and_clipping() {
        let mut rng = crate::rng::seeded(7);
        for k in [1, 2, 5, 10, 12, 13, 40] {
            for (m, n) in [(37, 29), (16, 8), (5, 3), (64, 41)] {
                let (p, q, w) = (
                    rand_mat(k, m, &mut rng),
                    rand_mat(k, n, &mut rng),
                    rand_mat(m, n, &mut rng),
                );
                let alpha = -0.3;
                // Bounds near the median norm: some rows / columns clipped, some not.
                let row_bound = 0.9 * (n as f32 / 3.0).sqrt();
                let col_bound = 0.9 * (m as f32 / 3.0).sqrt();

                let mut got = w.clone();
                rank_update_rows(alpha, p.view(), q.view(), got.view_mut(), Some(row_bound));
                let want = expected(alpha, &p, &q, &w, row_bound, true);
                assert!(got.max_abs_diff(&want) < 1e-4, "rows k={k} {m}×{n}");
                assert!(got != w);

                let mut got = w.clone();
                let g0 = rand_mat(k, n, &mut rng);
                let mut g = g0.clone();
                rank_update_cols(
                    alpha,
                    p.view(),
                    q.view(),
                    got.view_mut(),
                    Some((0.7, g.view_mut())),
                    Some(col_bound),
                );
                let want = expected(alpha, &p, &q, &w, col_bound, false);
                assert!(got.max_abs_diff(&want) < 1e-4, "cols k={k} {m}×{n}");
                let mut want_g = g0.clone();
                gemm_reference(0.7, p.view(), w.view(), 1.0, want_g.view_mut());
                assert!(g.max_abs_diff(&want_g) < 1e-4, "G k={k} {m}×{n}");

                // Without the read and without a bound.
                let mut got = w.clone();
                rank_update_cols(alpha, p.view(), q.view(), got.view_mut(), None, None);
                let want = expected(alpha, &p, &q, &w, f32::INFINITY, false);
                assert!(
                    got.max_abs_diff(&want) < 1e-4,
                    "cols, no clip, k={k} {m}×{n}"
                );
            }
        }
    }

    /// Every level against the scalar reference: W's widths n in 0..=40, 257, 1031 (whole
    /// vectors of every level and the scalar tails), k = 1, 10 and 12. The levels differ
    /// from the reference by fused multiply-adds (one rounding instead of two per step) and
    /// by the order of the norm sums: within 1e-5 here (entries and norms of order 1).
    #[test]
    fn every_level_matches_the_reference_over_widths() {
        let mut rng = crate::rng::seeded(12);
        for isa in Isa::all() {
            for n in (0..=40).chain([257, 1031]) {
                for k in [1, 10, 12] {
                    let m = 9;
                    let (p, q, w) = (
                        rand_mat(k, m, &mut rng),
                        rand_mat(k, n, &mut rng),
                        rand_mat(m, n, &mut rng),
                    );
                    let alpha = 0.05;
                    let row_bound = 0.9 * (n as f32 / 3.0).sqrt();
                    let mut got = w.clone();
                    update_rows(
                        isa,
                        1,
                        alpha,
                        p.view(),
                        q.view(),
                        got.view_mut(),
                        Some(row_bound),
                    );
                    let want = expected(alpha, &p, &q, &w, row_bound, true);
                    assert!(got.max_abs_diff(&want) < 1e-5, "rows {isa:?} k={k} n={n}");

                    let col_bound = 0.9 * (m as f32 / 3.0).sqrt();
                    let mut got = w.clone();
                    let mut g = Mat::zeros(k, n);
                    let read = Some((0.7, g.view_mut()));
                    update_cols(
                        isa,
                        1,
                        alpha,
                        p.view(),
                        q.view(),
                        got.view_mut(),
                        read,
                        Some(col_bound),
                    );
                    let want = expected(alpha, &p, &q, &w, col_bound, false);
                    assert!(got.max_abs_diff(&want) < 1e-5, "cols {isa:?} k={k} n={n}");
                    let mut want_g = Mat::zeros(k, n);
                    gemm_reference(0.7, p.view(), w.view(), 1.0, want_g.view_mut());
                    assert!(g.max_abs_diff(&want_g) < 1e-5, "G {isa:?} k={k} n={n}");

                    let mut got = w.clone();
                    clip_columns_at(isa, got.view_mut(), col_bound);
                    let want = expected(0.0, &p, &q, &w, col_bound, false);
                    assert!(got.max_abs_diff(&want) < 1e-5, "clip {isa:?} n={n}");
                }
            }
        }
    }

    #[test]
    fn special_values_on_every_level() {
        // NaN in P's column 0 poisons W's row 0 (rows form: its norm is NaN, not clipped);
        // an infinity in Q's column 3 makes column 3 infinite where P is non-zero.
        for isa in Isa::all() {
            let (k, m, n) = (2, 3, 37);
            let mut p = Mat::filled(k, m, 0.5);
            p[(0, 0)] = f32::NAN;
            p[(1, 2)] = -0.0;
            let mut q = Mat::filled(k, n, 1.0);
            q[(1, 3)] = f32::INFINITY;
            let mut w = Mat::filled(m, n, 0.25);
            update_rows(isa, 1, 1.0, p.view(), q.view(), w.view_mut(), None);
            assert!(w.row(0).iter().all(|v| v.is_nan()), "{isa:?}");
            assert!(w[(1, 3)] == f32::INFINITY && w[(1, 4)] == 1.25, "{isa:?}");
            // Row 2: P = (0.5, -0): 0.25 + 0.5 = 0.75, and -0·inf = NaN at column 3.
            assert!(w[(2, 0)] == 0.75 && w[(2, 3)].is_nan(), "{isa:?}");
        }
    }

    #[test]
    fn clipping_actually_clips() {
        let mut w = Mat::from_vec(2, 2, vec![3.0, 0.1, 4.0, 0.1]);
        clip_columns(w.view_mut(), 1.0);
        assert_eq!(norms(&w, false)[0], 1.0);
        assert!((w[(0, 1)] - 0.1).abs() < 1e-7);
        let mut w = Mat::from_vec(2, 2, vec![3.0, 4.0, 0.1, 0.1]);
        clip_rows(w.view_mut(), 1.0);
        assert!((norms(&w, true)[0] - 1.0).abs() < 1e-6);
        assert!((w[(1, 0)] - 0.1).abs() < 1e-7);
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let mut rng = crate::rng::seeded(8);
        let (k, m, n) = (10, 300, 203);
        let (p, q, w) = (
            rand_mat(k, m, &mut rng),
            rand_mat(k, n, &mut rng),
            rand_mat(m, n, &mut rng),
        );
        let run = |threads: usize| {
            let (mut a, mut b, mut g) = (w.clone(), w.clone(), Mat::zeros(k, n));
            update_rows(
                Isa::current(),
                threads,
                0.1,
                p.view(),
                q.view(),
                a.view_mut(),
                Some(5.0),
            );
            update_cols(
                Isa::current(),
                threads,
                0.1,
                p.view(),
                q.view(),
                b.view_mut(),
                Some((1.0, g.view_mut())),
                Some(5.0),
            );
            (a, b, g)
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "{threads} threads");
        }
    }

    #[test]
    #[should_panic(expected = "shape mismatch")]
    fn mismatch_names_shapes() {
        let mut w = Mat::zeros(3, 4);
        rank_update_rows(
            1.0,
            Mat::zeros(2, 3).view(),
            Mat::zeros(2, 5).view(),
            w.view_mut(),
            None,
        );
    }
}

//! Shrinkage kernels: the signed soft-threshold `sign(v)·max(|v|−θ, 0)` (the L1 prox) and the
//! non-negative ReLU-shrink `max(v−θ, 0)` (the prox of L1 plus z ≥ 0), with a uniform θ or
//! one θ per unit, in place or out of place, and the masks of their derivatives.
//!
//! # Conventions
//! - **NaN**: a NaN input gives a NaN output (so a diverging model is noticed, never silently
//!   zeroed); the derivative mask of a NaN input is 0; [`shrink_backward`] passes the
//!   gradient where the output is NaN. This is written out with the explicit `max`/`min`
//!   rule of [`crate::simd`] (`max(a, b) = a > b ? a : b`, the second operand on NaN) and
//!   ordered comparisons, never with a `max` whose NaN result is unspecified.
//! - **Signed zeros**: the sign of a zero output is not part of the contract
//!   (`-0.0 == 0.0`), but it is the same on every SIMD level.
//! - **Levels**: every level ([`crate::simd::Level`]) and the scalar tails run the same
//!   operations (no multiply-add is involved), so the results are bit-identical whatever
//!   the CPU; the tests check it on every level the machine has.
//! - θ must be finite and ≥ 0 (checked in debug builds only: it is a programmer error).
//! - A per-unit θ of length p applies to every consecutive chunk of p values, so a row-major
//!   batch `B × p` is shrunk in one call.
//!
//! One file on purpose: every shrinkage form's scalar reference, per-level kernels and
//! dispatching wrapper read together (about 490 lines of code; the rest are the tests
//! comparing every level with the reference).

use crate::simd::{dispatch, max_s, min_s, Isa, Kernel, Simd};

/// Which shrinkage function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shrink {
    /// `sign(v)·max(|v|−θ, 0)`: the soft-threshold, prox of `θ‖·‖₁`.
    Signed,
    /// `max(v−θ, 0)`: the ReLU-shrink, prox of `θ‖·‖₁` restricted to `z ≥ 0`.
    NonNegative,
}

/// The threshold: one value for every unit, or one per unit (broadcast over rows).
#[derive(Clone, Copy, Debug)]
pub enum Theta<'a> {
    /// The same θ everywhere.
    Uniform(f32),
    /// θ_j for unit j; the data length must be a multiple of this length.
    PerUnit(&'a [f32]),
}

impl Theta<'_> {
    #[track_caller]
    fn check(&self, len: usize) {
        match self {
            Theta::Uniform(t) => debug_assert!(t.is_finite() && *t >= 0.0, "theta {t}"),
            Theta::PerUnit(t) => {
                assert!(
                    !t.is_empty() && len % t.len() == 0 || len == 0,
                    "per-unit theta of length {} does not divide data of length {len}",
                    t.len()
                );
                debug_assert!(t.iter().all(|t| t.is_finite() && *t >= 0.0));
            }
        }
    }
}

/// One element-wise map of the shrink family, written once for every SIMD level (`vector`)
/// and for the scalar tails (`scalar`), with the same operations so every level gives the
/// same bits.
trait Map: Copy {
    fn vector<S: Simd>(self, s: S, v: S::V, t: S::V) -> S::V;
    fn scalar(self, v: f32, t: f32) -> f32;
}

/// `v − clamp(v, −θ, θ)`, which equals `sign(v)·max(|v|−θ, 0)`. The clamp of a NaN is −θ
/// (`max` returns its second operand on NaN), and `v −` then makes the result NaN.
#[derive(Clone, Copy)]
struct Signed;
impl Map for Signed {
    #[inline(always)]
    fn vector<S: Simd>(self, s: S, v: S::V, t: S::V) -> S::V {
        let neg = s.sub(s.zero(), t);
        s.sub(v, s.min(s.max(v, neg), t))
    }
    #[inline(always)]
    fn scalar(self, v: f32, t: f32) -> f32 {
        v - min_s(max_s(v, 0.0 - t), t)
    }
}

/// `max(0, v − θ)` with the zero first: `max` returns its second operand, `v − θ`, when it
/// is NaN.
#[derive(Clone, Copy)]
struct Relu;
impl Map for Relu {
    #[inline(always)]
    fn vector<S: Simd>(self, s: S, v: S::V, t: S::V) -> S::V {
        s.max(s.zero(), s.sub(v, t))
    }
    #[inline(always)]
    fn scalar(self, v: f32, t: f32) -> f32 {
        max_s(0.0, v - t)
    }
}

/// `|u| > θ ? 1 : 0` (0 for NaN: the comparison is ordered).
#[derive(Clone, Copy)]
struct SignedMask;
impl Map for SignedMask {
    #[inline(always)]
    fn vector<S: Simd>(self, s: S, u: S::V, t: S::V) -> S::V {
        s.select_gt(s.abs(u), t, s.splat(1.0), s.zero())
    }
    #[inline(always)]
    fn scalar(self, u: f32, t: f32) -> f32 {
        if u.abs() > t {
            1.0
        } else {
            0.0
        }
    }
}

/// `u > θ ? 1 : 0` (0 for NaN).
#[derive(Clone, Copy)]
struct ReluMask;
impl Map for ReluMask {
    #[inline(always)]
    fn vector<S: Simd>(self, s: S, u: S::V, t: S::V) -> S::V {
        s.select_gt(u, t, s.splat(1.0), s.zero())
    }
    #[inline(always)]
    fn scalar(self, u: f32, t: f32) -> f32 {
        if u > t {
            1.0
        } else {
            0.0
        }
    }
}

/// `dst ← map(src, θ)`.
struct MapOut<'a, M> {
    map: M,
    theta: Theta<'a>,
    src: &'a [f32],
    dst: &'a mut [f32],
}

impl<M: Map> Kernel for MapOut<'_, M> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let MapOut {
            map,
            theta,
            src,
            dst,
        } = self;
        match theta {
            Theta::Uniform(t) if src.len() >= STREAMING_MIN_LEN => {
                map_out_streaming(s, map, src, t, dst)
            }
            Theta::Uniform(t) => map_out_uniform(s, map, src, t, dst),
            Theta::PerUnit(th) => {
                let l = S::LANES;
                for (srow, drow) in src
                    .chunks_exact(th.len())
                    .zip(dst.chunks_exact_mut(th.len()))
                {
                    let mut sc = srow.chunks_exact(l);
                    let mut dc = drow.chunks_exact_mut(l);
                    let mut tc = th.chunks_exact(l);
                    for ((a, b), c) in (&mut sc).zip(&mut dc).zip(&mut tc) {
                        s.store_s(b, map.vector(s, s.load_s(a), s.load_s(c)));
                    }
                    for ((a, b), c) in sc
                        .remainder()
                        .iter()
                        .zip(dc.into_remainder())
                        .zip(tc.remainder())
                    {
                        *b = map.scalar(*a, *c);
                    }
                }
            }
        }
    }
}

/// Out-of-place maps at least this long (16 MiB of f32, more than the last-level cache
/// share of one core) write with non-temporal stores: the output would be evicted before
/// reuse anyway, and streaming stores skip the read-for-ownership of every destination line.
const STREAMING_MIN_LEN: usize = 4 << 20;

#[inline(always)]
fn map_out_streaming<S: Simd, M: Map>(s: S, map: M, src: &[f32], t: f32, dst: &mut [f32]) {
    let l = S::LANES;
    let tv = s.splat(t);
    // Scalar head up to a cache-line boundary, a multiple of every vector width (streaming
    // stores need a whole-vector alignment).
    let head = to_line(dst.as_ptr(), dst.len());
    for (a, b) in src[..head].iter().zip(&mut dst[..head]) {
        *b = map.scalar(*a, t);
    }
    let (src, dst) = (&src[head..], &mut dst[head..]);
    let mut sc = src.chunks_exact(l);
    let mut dc = dst.chunks_exact_mut(l);
    for (a, b) in (&mut sc).zip(&mut dc) {
        let r = map.vector(s, s.load_s(a), tv);
        // SAFETY: `b` holds LANES f32 starting 4·LANES-byte aligned (dst was aligned to 64
        // bytes above, a multiple of 4·LANES, and chunks advance by 4·LANES bytes).
        unsafe { s.store_stream(b.as_mut_ptr(), r) };
    }
    for (a, b) in sc.remainder().iter().zip(dc.into_remainder()) {
        *b = map.scalar(*a, t);
    }
    s.fence_streams();
}

/// Elements before the first 64-byte (cache-line) boundary of `p`, at most `len`: the
/// uniform maps run these through the scalar form first, so that no vector store of the
/// main loop splits a cache line (a split store costs about twice an aligned one; a `Vec`
/// from the allocator is only 16-byte aligned). The scalar form gives the same bits.
#[inline(always)]
fn to_line(p: *const f32, len: usize) -> usize {
    p.align_offset(64).min(len)
}

#[inline(always)]
fn map_out_uniform<S: Simd, M: Map>(s: S, map: M, src: &[f32], t: f32, dst: &mut [f32]) {
    let l = S::LANES;
    let tv = s.splat(t);
    let head = to_line(dst.as_ptr(), dst.len());
    for (a, b) in src[..head].iter().zip(&mut dst[..head]) {
        *b = map.scalar(*a, t);
    }
    let (src, dst) = (&src[head..], &mut dst[head..]);
    let mut sc = src.chunks_exact(l);
    let mut dc = dst.chunks_exact_mut(l);
    for (a, b) in (&mut sc).zip(&mut dc) {
        s.store_s(b, map.vector(s, s.load_s(a), tv));
    }
    for (a, b) in sc.remainder().iter().zip(dc.into_remainder()) {
        *b = map.scalar(*a, t);
    }
}

/// `v ← map(v, θ)`.
struct MapIn<'a, M> {
    map: M,
    theta: Theta<'a>,
    v: &'a mut [f32],
}

impl<M: Map> Kernel for MapIn<'_, M> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let MapIn { map, theta, v } = self;
        let l = S::LANES;
        match theta {
            Theta::Uniform(t) => {
                let tv = s.splat(t);
                let head = to_line(v.as_ptr(), v.len());
                let (h, v) = v.split_at_mut(head);
                for a in h {
                    *a = map.scalar(*a, t);
                }
                let mut c = v.chunks_exact_mut(l);
                for a in &mut c {
                    let r = map.vector(s, s.load_s(a), tv);
                    s.store_s(a, r);
                }
                for a in c.into_remainder() {
                    *a = map.scalar(*a, t);
                }
            }
            Theta::PerUnit(th) => {
                for row in v.chunks_exact_mut(th.len()) {
                    let mut c = row.chunks_exact_mut(l);
                    let mut tc = th.chunks_exact(l);
                    for (a, tt) in (&mut c).zip(&mut tc) {
                        let r = map.vector(s, s.load_s(a), s.load_s(tt));
                        s.store_s(a, r);
                    }
                    for (a, tt) in c.into_remainder().iter_mut().zip(tc.remainder()) {
                        *a = map.scalar(*a, *tt);
                    }
                }
            }
        }
    }
}

/// `out ← z == 0 ? 0 : g`.
struct Backward<'a> {
    z: &'a [f32],
    g: &'a [f32],
    out: &'a mut [f32],
}

impl Kernel for Backward<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let l = S::LANES;
        let head = to_line(self.out.as_ptr(), self.out.len());
        let (oh, out) = self.out.split_at_mut(head);
        let (zh, z) = self.z.split_at(head);
        let (gh, g) = self.g.split_at(head);
        for ((a, b), o) in zh.iter().zip(gh).zip(oh) {
            *o = if *a == 0.0 { 0.0 } else { *b };
        }
        let mut zc = z.chunks_exact(l);
        let mut gc = g.chunks_exact(l);
        let mut oc = out.chunks_exact_mut(l);
        for ((a, b), o) in (&mut zc).zip(&mut gc).zip(&mut oc) {
            // `z == 0` is false for NaN, so a NaN output passes its gradient (as in the
            // scalar reference); an ordered `z != 0` would silently mask it.
            let zero = s.zero();
            s.store_s(o, s.select_eq(s.load_s(a), zero, zero, s.load_s(b)));
        }
        for ((a, b), o) in zc
            .remainder()
            .iter()
            .zip(gc.remainder())
            .zip(oc.into_remainder())
        {
            *o = if *a == 0.0 { 0.0 } else { *b };
        }
    }
}

/// [`shrink`] at the level `isa`.
#[track_caller]
pub(crate) fn shrink_at(isa: Isa, kind: Shrink, theta: Theta<'_>, src: &[f32], dst: &mut [f32]) {
    assert_eq!(
        src.len(),
        dst.len(),
        "shrink: src {} and dst {} lengths differ",
        src.len(),
        dst.len()
    );
    theta.check(src.len());
    match kind {
        Shrink::Signed => dispatch(
            isa,
            MapOut {
                map: Signed,
                theta,
                src,
                dst,
            },
        ),
        Shrink::NonNegative => dispatch(
            isa,
            MapOut {
                map: Relu,
                theta,
                src,
                dst,
            },
        ),
    }
}

/// [`shrink_in_place`] at the level `isa`.
#[track_caller]
pub(crate) fn shrink_in_place_at(isa: Isa, kind: Shrink, theta: Theta<'_>, v: &mut [f32]) {
    theta.check(v.len());
    match kind {
        Shrink::Signed => dispatch(
            isa,
            MapIn {
                map: Signed,
                theta,
                v,
            },
        ),
        Shrink::NonNegative => dispatch(
            isa,
            MapIn {
                map: Relu,
                theta,
                v,
            },
        ),
    }
}

/// [`shrink_mask`] at the level `isa`.
#[track_caller]
pub(crate) fn shrink_mask_at(
    isa: Isa,
    kind: Shrink,
    theta: Theta<'_>,
    u: &[f32],
    mask: &mut [f32],
) {
    assert_eq!(
        u.len(),
        mask.len(),
        "shrink_mask: lengths {} and {} differ",
        u.len(),
        mask.len()
    );
    theta.check(u.len());
    let (src, dst) = (u, mask);
    match kind {
        Shrink::Signed => dispatch(
            isa,
            MapOut {
                map: SignedMask,
                theta,
                src,
                dst,
            },
        ),
        Shrink::NonNegative => dispatch(
            isa,
            MapOut {
                map: ReluMask,
                theta,
                src,
                dst,
            },
        ),
    }
}

/// [`shrink_backward`] at the level `isa`.
#[track_caller]
pub(crate) fn shrink_backward_at(isa: Isa, z: &[f32], g: &[f32], out: &mut [f32]) {
    assert!(
        z.len() == g.len() && g.len() == out.len(),
        "shrink_backward: lengths {}, {}, {}",
        z.len(),
        g.len(),
        out.len()
    );
    dispatch(isa, Backward { z, g, out })
}

/// `dst ← shrink_θ(src)` (SIMD, at the level [`simd::level`](crate::simd::level)).
///
/// # Panics
/// If the lengths differ or a per-unit θ does not divide them.
///
/// # Examples
/// ```
/// use drsae::kernels::{shrink, Shrink, Theta};
/// let mut out = [0.0; 3];
/// shrink(Shrink::Signed, Theta::Uniform(1.0), &[-3.0, 0.5, 2.0], &mut out);
/// assert_eq!(out, [-2.0, 0.0, 1.0]);
/// ```
#[track_caller]
pub fn shrink(kind: Shrink, theta: Theta<'_>, src: &[f32], dst: &mut [f32]) {
    shrink_at(Isa::current(), kind, theta, src, dst)
}

/// `v ← shrink_θ(v)` (SIMD).
#[track_caller]
pub fn shrink_in_place(kind: Shrink, theta: Theta<'_>, v: &mut [f32]) {
    shrink_in_place_at(Isa::current(), kind, theta, v)
}

/// `mask ← ∂shrink_θ(u)/∂u`: 1 where the input passes (`|u| > θ`, or `u > θ` for the
/// non-negative form), else 0 (SIMD).
#[track_caller]
pub fn shrink_mask(kind: Shrink, theta: Theta<'_>, u: &[f32], mask: &mut [f32]) {
    shrink_mask_at(Isa::current(), kind, theta, u, mask)
}

/// Back-propagation through either shrink given its output `z`: `out ← g ⊙ [z ≠ 0]`
/// (SIMD). The derivative is 1 exactly where the output is non-zero, for both forms.
/// NaN in `z` passes `g` (a NaN output is never silently masked).
#[track_caller]
pub fn shrink_backward(z: &[f32], g: &[f32], out: &mut [f32]) {
    shrink_backward_at(Isa::current(), z, g, out)
}

/// Scalar reference of [`shrink_backward`].
pub fn shrink_backward_reference(z: &[f32], g: &[f32], out: &mut [f32]) {
    for ((a, b), o) in z.iter().zip(g).zip(out.iter_mut()) {
        *o = if *a != 0.0 { *b } else { 0.0 };
    }
}

/// Scalar reference of [`shrink`], written from the definition.
#[track_caller]
pub fn shrink_reference(kind: Shrink, theta: Theta<'_>, src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    theta.check(src.len());
    for (i, (s, d)) in src.iter().zip(dst.iter_mut()).enumerate() {
        let t = match theta {
            Theta::Uniform(t) => t,
            Theta::PerUnit(th) => th[i % th.len()],
        };
        *d = if s.is_nan() {
            *s
        } else {
            match kind {
                Shrink::Signed => s.signum() * (s.abs() - t).max(0.0),
                Shrink::NonNegative => (s - t).max(0.0),
            }
        };
    }
}

/// Scalar reference of [`shrink_mask`].
pub fn shrink_mask_reference(kind: Shrink, theta: Theta<'_>, u: &[f32], mask: &mut [f32]) {
    assert_eq!(u.len(), mask.len());
    for (i, (s, d)) in u.iter().zip(mask.iter_mut()).enumerate() {
        let t = match theta {
            Theta::Uniform(t) => t,
            Theta::PerUnit(th) => th[i % th.len()],
        };
        let pass = match kind {
            Shrink::Signed => s.abs() > t,
            Shrink::NonNegative => *s > t,
        };
        *d = if pass { 1.0 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: f32, b: f32) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    fn inputs(n: usize) -> Vec<f32> {
        let special = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE / 4.0,
            -f32::MIN_POSITIVE / 4.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.3,
            -0.3,
            0.29999998,
        ];
        (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    special[i / 3 % special.len()]
                } else {
                    (i as f32 * 0.37).sin() * 2.0
                }
            })
            .collect()
    }

    #[test]
    fn simd_matches_scalar_reference_on_every_level() {
        for isa in Isa::all() {
            for n in (0..=40).chain([77, 100, 257, 1031]) {
                let x = inputs(n);
                for kind in [Shrink::Signed, Shrink::NonNegative] {
                    let per_unit: Vec<f32> = (0..n.max(1)).map(|i| (i % 4) as f32 * 0.1).collect();
                    // Per-unit θ over rows: the whole length, and rows of 20 when they divide.
                    let rows20 = &per_unit[..20.min(per_unit.len())];
                    for theta in [
                        Theta::Uniform(0.0),
                        Theta::Uniform(0.3),
                        Theta::PerUnit(&per_unit),
                        Theta::PerUnit(rows20),
                    ] {
                        if let Theta::PerUnit(th) = theta {
                            if n == 0 || n % th.len() != 0 {
                                continue;
                            }
                        }
                        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                        shrink_at(isa, kind, theta, &x, &mut a);
                        shrink_reference(kind, theta, &x, &mut b);
                        let mut c = x.clone();
                        shrink_in_place_at(isa, kind, theta, &mut c);
                        for i in 0..n {
                            assert!(
                                same(a[i], b[i]) && same(c[i], b[i]),
                                "{isa:?} {kind:?} n={n} i={i} x={} {} {} {}",
                                x[i],
                                a[i],
                                b[i],
                                c[i]
                            );
                        }
                        shrink_mask_at(isa, kind, theta, &x, &mut a);
                        shrink_mask_reference(kind, theta, &x, &mut b);
                        assert_eq!(a, b, "mask {isa:?} {kind:?} n={n}");
                    }
                }
            }
        }
    }

    /// Every level gives the portable level's bits, signed zeros and NaN included.
    #[test]
    fn levels_agree_bit_for_bit() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let x = inputs(1031);
        let g: Vec<f32> = (0..1031).map(|i| i as f32 - 3.5).collect();
        let run = |isa: Isa| {
            let mut out = Vec::new();
            for kind in [Shrink::Signed, Shrink::NonNegative] {
                for theta in [Theta::Uniform(0.0), Theta::Uniform(0.3)] {
                    let mut a = vec![0.0; x.len()];
                    shrink_at(isa, kind, theta, &x, &mut a);
                    out.extend(bits(&a));
                    shrink_mask_at(isa, kind, theta, &x, &mut a);
                    out.extend(bits(&a));
                }
            }
            let mut a = vec![0.0; x.len()];
            shrink_backward_at(isa, &x, &g, &mut a);
            out.extend(bits(&a));
            out
        };
        let portable = run(Isa::new(crate::simd::Level::Portable).unwrap());
        for isa in Isa::all() {
            assert!(run(isa) == portable, "{isa:?}");
        }
    }

    /// The uniform maps and the backward pass start with a scalar head up to the output's
    /// first cache-line boundary: every start offset within a line, for input and output
    /// apart, and lengths shorter and longer than the head, give the reference's bits.
    #[test]
    fn every_start_offset_matches_reference_on_every_level() {
        let x = inputs(200);
        let g: Vec<f32> = (0..200).map(|i| i as f32 - 3.5).collect();
        let mut buf = vec![0.0f32; 240];
        let mut want = vec![0.0f32; 200];
        for isa in Isa::all() {
            for (xo, oo) in (0..16).map(|o| (o, o)).chain((0..16).map(|o| (3, o))) {
                for n in [0, 5, 15, 16, 33, 150] {
                    let (src, out) = (&x[xo..xo + n], &mut buf[oo..oo + n]);
                    for kind in [Shrink::Signed, Shrink::NonNegative] {
                        let theta = Theta::Uniform(0.3);
                        shrink_at(isa, kind, theta, src, out);
                        shrink_reference(kind, theta, src, &mut want[..n]);
                        assert!(
                            out.iter().zip(&want).all(|(a, b)| same(*a, *b)),
                            "{isa:?} {kind:?} offsets {xo}/{oo} n={n}"
                        );
                        out.copy_from_slice(src);
                        shrink_in_place_at(isa, kind, theta, out);
                        assert!(
                            out.iter().zip(&want).all(|(a, b)| same(*a, *b)),
                            "in place {isa:?} {kind:?} offset {oo} n={n}"
                        );
                        shrink_mask_at(isa, kind, theta, src, out);
                        shrink_mask_reference(kind, theta, src, &mut want[..n]);
                        assert_eq!(*out, want[..n], "mask {isa:?} {kind:?} {xo}/{oo} n={n}");
                    }
                    shrink_backward_at(isa, src, &g[..n], out);
                    shrink_backward_reference(src, &g[..n], &mut want[..n]);
                    assert_eq!(*out, want[..n], "backward {isa:?} {xo}/{oo} n={n}");
                }
            }
        }
    }

    #[test]
    fn streaming_path_matches_reference_on_every_level() {
        let n = STREAMING_MIN_LEN + 13;
        let x: Vec<f32> = (0..n).map(|i| ((i % 101) as f32 - 50.0) * 0.01).collect();
        let (mut a, mut b) = (vec![0.0; n + 1], vec![0.0; n]);
        for isa in Isa::all() {
            for kind in [Shrink::Signed, Shrink::NonNegative] {
                // Offset by one element so the aligned head is exercised.
                shrink_at(isa, kind, Theta::Uniform(0.2), &x, &mut a[1..]);
                shrink_reference(kind, Theta::Uniform(0.2), &x, &mut b);
                assert!(a[1..] == b[..], "{isa:?} {kind:?}");
            }
        }
    }

    #[test]
    fn shrink_backward_matches_reference_on_every_level() {
        for isa in Isa::all() {
            for n in (0..=40).chain([77, 100, 257, 1031]) {
                let z = inputs(n);
                let g: Vec<f32> = (0..n).map(|i| i as f32 - 3.5).collect();
                let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                shrink_backward_at(isa, &z, &g, &mut a);
                shrink_backward_reference(&z, &g, &mut b);
                assert_eq!(a, b, "{isa:?} n={n}");
            }
        }
    }

    #[test]
    fn nan_convention() {
        // 37 NaNs: whole vectors of every level and a scalar tail.
        let x = [f32::NAN; 37];
        let mut y = [0.0; 37];
        for isa in Isa::all() {
            for kind in [Shrink::Signed, Shrink::NonNegative] {
                shrink_at(isa, kind, Theta::Uniform(0.5), &x, &mut y);
                assert!(y.iter().all(|v| v.is_nan()), "{isa:?}");
                let mut z = x;
                shrink_in_place_at(isa, kind, Theta::Uniform(0.5), &mut z);
                assert!(z.iter().all(|v| v.is_nan()), "{isa:?}");
                shrink_mask_at(isa, kind, Theta::Uniform(0.5), &x, &mut y);
                assert!(y.iter().all(|v| *v == 0.0), "{isa:?}");
                shrink_backward_at(isa, &x, &[2.0; 37], &mut y);
                assert!(y.iter().all(|v| *v == 2.0), "{isa:?}");
            }
        }
    }

    #[test]
    fn per_unit_broadcasts_over_rows() {
        let x = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let mut y = [0.0; 6];
        shrink(
            Shrink::NonNegative,
            Theta::PerUnit(&[0.0, 0.5, 2.0]),
            &x,
            &mut y,
        );
        assert_eq!(y, [1.0, 0.5, 0.0, 1.0, 0.5, 0.0]);
    }
}

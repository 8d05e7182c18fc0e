//! Shrinkage kernels: the signed soft-threshold `sign(v)·max(|v|−θ, 0)` (the L1 prox) and the
//! non-negative ReLU-shrink `max(v−θ, 0)` (the prox of L1 plus z ≥ 0), with a uniform θ or
//! one θ per unit, in place or out of place, and the masks of their derivatives.
//!
//! # Conventions
//! - **NaN**: a NaN input gives a NaN output (so a diverging model is noticed, never silently
//!   zeroed); the derivative mask of a NaN input is 0.
//! - **Signed zeros**: the sign of a zero output is unspecified (`-0.0 == 0.0`).
//! - θ must be finite and ≥ 0 (checked in debug builds only: it is a programmer error).
//! - A per-unit θ of length p applies to every consecutive chunk of p values, so a row-major
//!   batch `B × p` is shrunk in one call.

use crate::linalg::{load8, store8};
use wide::{f32x8, CmpEq, CmpGt};

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

#[inline(always)]
fn signed_v(v: f32x8, t: f32x8) -> f32x8 {
    // v − clamp(v, −θ, θ) equals sign(v)·max(|v|−θ, 0) and propagates NaN through `v −`.
    v - v.fast_max(-t).fast_min(t)
}
#[inline(always)]
fn relu_v(v: f32x8, t: f32x8) -> f32x8 {
    // fast_max returns its right operand when either is NaN, so NaN propagates.
    f32x8::ZERO.fast_max(v - t)
}
#[inline(always)]
fn signed_s(v: f32, t: f32) -> f32 {
    v - v.max(-t).min(t)
}
#[inline(always)]
fn relu_s(v: f32, t: f32) -> f32 {
    let d = v - t;
    if d > 0.0 || d.is_nan() {
        d
    } else {
        0.0
    }
}
#[inline(always)]
fn signed_mask_v(u: f32x8, t: f32x8) -> f32x8 {
    u.abs().cmp_gt(t) & f32x8::ONE
}
#[inline(always)]
fn relu_mask_v(u: f32x8, t: f32x8) -> f32x8 {
    u.cmp_gt(t) & f32x8::ONE
}

#[inline(always)]
fn map_out<V, S>(src: &[f32], theta: Theta<'_>, dst: &mut [f32], vf: V, sf: S)
where
    V: Fn(f32x8, f32x8) -> f32x8,
    S: Fn(f32, f32) -> f32,
{
    match theta {
        Theta::Uniform(t) if src.len() >= STREAMING_MIN_LEN => {
            map_out_streaming(src, t, dst, vf, sf)
        }
        Theta::Uniform(t) => map_out_uniform(src, t, dst, vf, sf),
        Theta::PerUnit(th) => {
            for (srow, drow) in src
                .chunks_exact(th.len())
                .zip(dst.chunks_exact_mut(th.len()))
            {
                let mut s = srow.chunks_exact(8);
                let mut d = drow.chunks_exact_mut(8);
                let mut t = th.chunks_exact(8);
                for ((a, b), c) in (&mut s).zip(&mut d).zip(&mut t) {
                    store8(b, vf(load8(a), load8(c)));
                }
                for ((a, b), c) in s
                    .remainder()
                    .iter()
                    .zip(d.into_remainder())
                    .zip(t.remainder())
                {
                    *b = sf(*a, *c);
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
fn map_out_streaming<V, S>(src: &[f32], t: f32, dst: &mut [f32], vf: V, sf: S)
where
    V: Fn(f32x8, f32x8) -> f32x8,
    S: Fn(f32, f32) -> f32,
{
    #[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
    {
        use std::arch::x86_64::{__m256, _mm256_stream_ps, _mm_sfence};
        let tv = f32x8::splat(t);
        // Scalar head until dst is 32-byte aligned (streaming stores need alignment).
        let head = dst.as_ptr().align_offset(32).min(dst.len());
        for i in 0..head {
            dst[i] = sf(src[i], t);
        }
        let (src, dst) = (&src[head..], &mut dst[head..]);
        let mut s = src.chunks_exact(8);
        let mut d = dst.chunks_exact_mut(8);
        for (a, b) in (&mut s).zip(&mut d) {
            let r = vf(load8(a), tv);
            // SAFETY: `b` holds 8 f32 starting 32-byte aligned (dst was aligned above and
            // chunks advance by 32 bytes); f32x8 and __m256 are both 32 plain bytes.
            unsafe { _mm256_stream_ps(b.as_mut_ptr(), std::mem::transmute::<f32x8, __m256>(r)) };
        }
        for (a, b) in s.remainder().iter().zip(d.into_remainder()) {
            *b = sf(*a, t);
        }
        // SAFETY: sfence only orders the preceding streaming stores before later stores.
        unsafe { _mm_sfence() };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx")))]
    map_out_uniform(src, t, dst, vf, sf);
}

#[inline(always)]
fn map_out_uniform<V, S>(src: &[f32], t: f32, dst: &mut [f32], vf: V, sf: S)
where
    V: Fn(f32x8, f32x8) -> f32x8,
    S: Fn(f32, f32) -> f32,
{
    let tv = f32x8::splat(t);
    let mut s = src.chunks_exact(8);
    let mut d = dst.chunks_exact_mut(8);
    for (a, b) in (&mut s).zip(&mut d) {
        store8(b, vf(load8(a), tv));
    }
    for (a, b) in s.remainder().iter().zip(d.into_remainder()) {
        *b = sf(*a, t);
    }
}

#[inline(always)]
fn map_in<V, S>(v: &mut [f32], theta: Theta<'_>, vf: V, sf: S)
where
    V: Fn(f32x8, f32x8) -> f32x8,
    S: Fn(f32, f32) -> f32,
{
    match theta {
        Theta::Uniform(t) => {
            let tv = f32x8::splat(t);
            let mut c = v.chunks_exact_mut(8);
            for a in &mut c {
                let r = vf(load8(a), tv);
                store8(a, r);
            }
            for a in c.into_remainder() {
                *a = sf(*a, t);
            }
        }
        Theta::PerUnit(th) => {
            for row in v.chunks_exact_mut(th.len()) {
                let mut c = row.chunks_exact_mut(8);
                let mut t = th.chunks_exact(8);
                for (a, tt) in (&mut c).zip(&mut t) {
                    let r = vf(load8(a), load8(tt));
                    store8(a, r);
                }
                for (a, tt) in c.into_remainder().iter_mut().zip(t.remainder()) {
                    *a = sf(*a, *tt);
                }
            }
        }
    }
}

/// `dst ← shrink_θ(src)` (SIMD).
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
    assert_eq!(
        src.len(),
        dst.len(),
        "shrink: src {} and dst {} lengths differ",
        src.len(),
        dst.len()
    );
    theta.check(src.len());
    match kind {
        Shrink::Signed => map_out(src, theta, dst, signed_v, signed_s),
        Shrink::NonNegative => map_out(src, theta, dst, relu_v, relu_s),
    }
}

/// `v ← shrink_θ(v)` (SIMD).
#[track_caller]
pub fn shrink_in_place(kind: Shrink, theta: Theta<'_>, v: &mut [f32]) {
    theta.check(v.len());
    match kind {
        Shrink::Signed => map_in(v, theta, signed_v, signed_s),
        Shrink::NonNegative => map_in(v, theta, relu_v, relu_s),
    }
}

/// `mask ← ∂shrink_θ(u)/∂u`: 1 where the input passes (`|u| > θ`, or `u > θ` for the
/// non-negative form), else 0 (SIMD).
#[track_caller]
pub fn shrink_mask(kind: Shrink, theta: Theta<'_>, u: &[f32], mask: &mut [f32]) {
    assert_eq!(
        u.len(),
        mask.len(),
        "shrink_mask: lengths {} and {} differ",
        u.len(),
        mask.len()
    );
    theta.check(u.len());
    let mask_s = |u: f32, t: f32| match kind {
        Shrink::Signed => (u.abs() > t) as u8 as f32,
        Shrink::NonNegative => (u > t) as u8 as f32,
    };
    match kind {
        Shrink::Signed => map_out(u, theta, mask, signed_mask_v, mask_s),
        Shrink::NonNegative => map_out(u, theta, mask, relu_mask_v, mask_s),
    }
}

/// Back-propagation through either shrink given its output `z`: `out ← g ⊙ [z ≠ 0]`
/// (SIMD). The derivative is 1 exactly where the output is non-zero, for both forms.
/// NaN in `z` passes `g` (a NaN output is never silently masked).
#[track_caller]
pub fn shrink_backward(z: &[f32], g: &[f32], out: &mut [f32]) {
    assert!(
        z.len() == g.len() && g.len() == out.len(),
        "relu_backward: lengths {}, {}, {}",
        z.len(),
        g.len(),
        out.len()
    );
    let mut zc = z.chunks_exact(8);
    let mut gc = g.chunks_exact(8);
    let mut oc = out.chunks_exact_mut(8);
    for ((a, b), o) in (&mut zc).zip(&mut gc).zip(&mut oc) {
        // `z == 0` is false for NaN, so a NaN output passes its gradient (as in the scalar
        // reference); an ordered `z != 0` would silently mask it.
        let zero = load8(a).cmp_eq(f32x8::ZERO);
        store8(o, zero.blend(f32x8::ZERO, load8(b)));
    }
    for ((a, b), o) in zc
        .remainder()
        .iter()
        .zip(gc.remainder())
        .zip(oc.into_remainder())
    {
        *o = if *a != 0.0 { *b } else { 0.0 };
    }
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
    fn simd_matches_scalar_reference() {
        for n in (0..=40).chain([257, 1031]) {
            let x = inputs(n);
            for kind in [Shrink::Signed, Shrink::NonNegative] {
                let per_unit: Vec<f32> = (0..n.max(1)).map(|i| (i % 4) as f32 * 0.1).collect();
                let per_unit = &per_unit[..n.max(1)];
                for theta in [
                    Theta::Uniform(0.0),
                    Theta::Uniform(0.3),
                    Theta::PerUnit(per_unit),
                ] {
                    if n == 0 && matches!(theta, Theta::PerUnit(_)) {
                        continue;
                    }
                    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                    shrink(kind, theta, &x, &mut a);
                    shrink_reference(kind, theta, &x, &mut b);
                    let mut c = x.clone();
                    shrink_in_place(kind, theta, &mut c);
                    for i in 0..n {
                        assert!(
                            same(a[i], b[i]) && same(c[i], b[i]),
                            "{kind:?} n={n} i={i} x={} {} {} {}",
                            x[i],
                            a[i],
                            b[i],
                            c[i]
                        );
                    }
                    shrink_mask(kind, theta, &x, &mut a);
                    shrink_mask_reference(kind, theta, &x, &mut b);
                    assert_eq!(a, b, "mask {kind:?} n={n}");
                }
            }
        }
    }

    #[test]
    fn streaming_path_matches_reference() {
        let n = STREAMING_MIN_LEN + 13;
        let x: Vec<f32> = (0..n).map(|i| ((i % 101) as f32 - 50.0) * 0.01).collect();
        for kind in [Shrink::Signed, Shrink::NonNegative] {
            // Offset by one element so the aligned head is exercised.
            let (mut a, mut b) = (vec![0.0; n + 1], vec![0.0; n]);
            shrink(kind, Theta::Uniform(0.2), &x, &mut a[1..]);
            shrink_reference(kind, Theta::Uniform(0.2), &x, &mut b);
            assert!(a[1..] == b[..], "{kind:?}");
        }
    }

    #[test]
    fn shrink_backward_matches_reference() {
        for n in (0..=40).chain([257, 1031]) {
            let z = inputs(n);
            let g: Vec<f32> = (0..n).map(|i| i as f32 - 3.5).collect();
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            shrink_backward(&z, &g, &mut a);
            shrink_backward_reference(&z, &g, &mut b);
            assert_eq!(a, b, "n={n}");
        }
    }

    #[test]
    fn nan_convention() {
        let x = [f32::NAN; 9];
        let mut y = [0.0; 9];
        for kind in [Shrink::Signed, Shrink::NonNegative] {
            shrink(kind, Theta::Uniform(0.5), &x, &mut y);
            assert!(y.iter().all(|v| v.is_nan()));
            shrink_mask(kind, Theta::Uniform(0.5), &x, &mut y);
            assert!(y.iter().all(|v| *v == 0.0));
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

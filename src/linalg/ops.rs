//! Vector helpers the models share: dot, axpy, norms, scaling (SIMD through `wide`).

use crate::simd::{dispatch, Isa, Kernel, Simd, Simd8};
use wide::f32x8;

/// Loads `s[..8]` (unaligned).
#[inline(always)]
pub(crate) fn load8(s: &[f32]) -> f32x8 {
    assert!(s.len() >= 8);
    // SAFETY: 8 f32 are in bounds (asserted; the check folds away in chunked loops) and
    // f32x8 is plain data; `read_unaligned` has no alignment requirement.
    unsafe { (s.as_ptr() as *const f32x8).read_unaligned() }
}

/// Stores `v` into `d[..8]` (unaligned).
#[inline(always)]
pub(crate) fn store8(d: &mut [f32], v: f32x8) {
    assert!(d.len() >= 8);
    // SAFETY: as in `load8`, for a write.
    unsafe { (d.as_mut_ptr() as *mut f32x8).write_unaligned(v) }
}

/// `Σ a_i b_i` with the vectors of `s`: two accumulators over whole vectors, reduced,
/// then the scalar tail (fused multiply-adds where the level fuses).
#[inline(always)]
pub(crate) fn dot_with<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let l = S::LANES;
    let nv = a.len().min(b.len()) / l * l;
    let (mut acc0, mut acc1) = (s.zero(), s.zero());
    let mut i = 0;
    while i + 2 * l <= nv {
        acc0 = s.mul_add(s.load_s(&a[i..]), s.load_s(&b[i..]), acc0);
        acc1 = s.mul_add(s.load_s(&a[i + l..]), s.load_s(&b[i + l..]), acc1);
        i += 2 * l;
    }
    if i < nv {
        acc0 = s.mul_add(s.load_s(&a[i..]), s.load_s(&b[i..]), acc0);
    }
    let mut sum = s.reduce_add(s.add(acc0, acc1));
    for j in nv..a.len() {
        sum += a[j] * b[j];
    }
    sum
}

struct Dot<'a>(&'a [f32], &'a [f32]);
impl Kernel for Dot<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f32 {
        dot_with(s, self.0, self.1)
    }
}

/// [`dot`] at the level `isa`.
#[track_caller]
pub(crate) fn dot_at(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot: lengths {} and {} differ",
        a.len(),
        b.len()
    );
    dispatch(isa, Dot(a, b))
}

/// `Σ a_i b_i` (SIMD at the level [`simd::level`](crate::simd::level); the rounding of the
/// sum depends on the level, see [`crate::simd`]).
#[track_caller]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_at(Isa::current(), a, b)
}

/// `‖a‖₂²`.
pub fn norm_sq(a: &[f32]) -> f32 {
    dot(a, a)
}

/// `‖a‖₂`.
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

struct Axpy<'a>(f32, &'a [f32], &'a mut [f32]);
impl Kernel for Axpy<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Axpy(alpha, x, y) = self;
        let l = S::LANES;
        let av = s.splat(alpha);
        let mut xc = x.chunks_exact(l);
        let mut yc = y.chunks_exact_mut(l);
        for (a, b) in (&mut xc).zip(&mut yc) {
            let r = s.mul_add(s.load_s(a), av, s.load_s(b));
            s.store_s(b, r);
        }
        for (a, b) in xc.remainder().iter().zip(yc.into_remainder()) {
            *b += alpha * *a;
        }
    }
}

/// [`axpy`] at the level `isa`.
#[track_caller]
pub(crate) fn axpy_at(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "axpy: lengths {} and {} differ",
        x.len(),
        y.len()
    );
    dispatch(isa, Axpy(alpha, x, y))
}

/// `y ← α x + y` (SIMD; fused on the x86 levels).
#[track_caller]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    axpy_at(Isa::current(), alpha, x, y)
}

/// `x ← α x`.
pub fn scale(alpha: f32, x: &mut [f32]) {
    for v in x {
        *v *= alpha;
    }
}

/// Scales `x` to norm at most `max_norm` (no change when already within). Returns the
/// factor applied.
pub fn clip_norm(x: &mut [f32], max_norm: f32) -> f32 {
    let n = norm(x);
    if n > max_norm {
        let f = max_norm / n;
        scale(f, x);
        f
    } else {
        1.0
    }
}

/// Scales `x` to exactly norm `target` (a zero vector stays zero).
pub fn set_norm(x: &mut [f32], target: f32) {
    let n = norm(x);
    if n > 0.0 {
        scale(target / n, x);
    }
}

struct Sum<'a>(&'a [f32]);
impl Kernel for Sum<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f32 {
        let x = self.0;
        let l = S::LANES;
        let mut c = x.chunks_exact(l);
        let mut acc = s.zero();
        for a in &mut c {
            acc = s.add(acc, s.load_s(a));
        }
        s.reduce_add(acc) + c.remainder().iter().sum::<f32>()
    }
}

/// [`sum`] at the level `isa`.
pub(crate) fn sum_at(isa: Isa, x: &[f32]) -> f32 {
    dispatch(isa, Sum(x))
}

/// `Σ x_i` (SIMD; the order of the sum depends on the level).
pub fn sum(x: &[f32]) -> f32 {
    sum_at(Isa::current(), x)
}

/// `dst ← srcᵀ`: `src` row-major `rows × cols`, `dst` row-major `cols × rows` with row
/// stride `ld ≥ rows` (the padding is left untouched). Blocks of 8 × 8 are transposed in
/// registers, with the instructions of the level in use.
///
/// # Panics
/// If `src` does not hold `rows·cols` values or `dst` is too short.
#[track_caller]
pub fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], ld: usize) {
    assert!(
        src.len() == rows * cols,
        "transpose of {rows}×{cols}: a buffer of {} values",
        src.len()
    );
    transpose_strided(src, cols, rows, cols, dst, ld)
}

/// `dst[c·ld + r] = src[r·sld + c]` for `r < rows`, `c < cols`: [`transpose_into`] of a
/// matrix whose rows are `sld ≥ cols` apart.
///
/// # Panics
/// If either buffer is too short for its shape and stride.
#[track_caller]
pub(crate) fn transpose_strided(
    src: &[f32],
    sld: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    ld: usize,
) {
    assert!(
        sld >= cols
            && ld >= rows
            && (rows == 0 || src.len() >= (rows - 1) * sld + cols)
            && (cols == 0 || dst.len() >= (cols - 1) * ld + rows),
        "transpose of {rows}×{cols}: buffers of {} and {} values, row strides {sld} and {ld}",
        src.len(),
        dst.len()
    );
    dispatch(
        Isa::current(),
        Transpose {
            src,
            sld,
            rows,
            cols,
            dst,
            ld,
        },
    )
}

/// The kernel of [`transpose_into`] (bounds checked by the caller).
struct Transpose<'a> {
    src: &'a [f32],
    sld: usize,
    rows: usize,
    cols: usize,
    dst: &'a mut [f32],
    ld: usize,
}

impl Kernel for Transpose<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let n = s.narrow();
        let Transpose {
            src,
            sld,
            rows,
            cols,
            dst,
            ld,
        } = self;
        let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
        for r0 in (0..r8).step_by(8) {
            for c0 in (0..c8).step_by(8) {
                let block = std::array::from_fn(|i| n.load_s(&src[(r0 + i) * sld + c0..]));
                for (j, v) in n.transpose8(block).into_iter().enumerate() {
                    n.store_s(&mut dst[(c0 + j) * ld + r0..], v);
                }
            }
            for r in r0..r0 + 8 {
                for c in c8..cols {
                    dst[c * ld + r] = src[r * sld + c];
                }
            }
        }
        for r in r8..rows {
            for c in 0..cols {
                dst[c * ld + r] = src[r * sld + c];
            }
        }
    }
}

/// A row stride of at least `len` floats for matrices with few long rows: a multiple of
/// 16 floats (64 bytes) whose line count is odd, so consecutive rows fall in different
/// L1 sets (a stride that is a multiple of 2 KB puts every row in the same one or two).
pub fn padded_stride(len: usize) -> usize {
    let ld = len.div_ceil(16) * 16;
    if (ld / 16) % 2 == 0 {
        ld + 16
    } else {
        ld
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_into_with_padding_and_tails_on_every_level() {
        for isa in Isa::all() {
            isa.with(transpose_into_with_padding_and_tails);
        }
    }

    fn transpose_into_with_padding_and_tails() {
        for (rows, cols) in [
            (16, 16),
            (13, 9),
            (8, 3),
            (4608 / 64, 16),
            (1, 1),
            (10, 400),
            (400, 24),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let ld = padded_stride(rows);
            assert!(ld >= rows && ld % 16 == 0 && (ld / 16) % 2 == 1);
            let mut dst = vec![-1.0; cols * ld];
            transpose_into(&src, rows, cols, &mut dst, ld);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * ld + r], src[r * cols + c]);
                }
            }
            assert!(
                dst[rows..ld].iter().all(|v| *v == -1.0),
                "padding untouched"
            );
        }
    }

    #[test]
    fn dot_axpy_sum_against_scalar_on_every_level() {
        for isa in Isa::all() {
            dot_axpy_sum_against_scalar(isa);
        }
    }

    fn dot_axpy_sum_against_scalar(isa: Isa) {
        for n in (0..=40).chain([257, 1031]) {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.2).collect();
            let d: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(
                (dot_at(isa, &a, &b) as f64 - d).abs() <= 1e-4 * (1.0 + d.abs()),
                "{isa:?} n={n}"
            );
            let mut y = b.clone();
            axpy_at(isa, 0.5, &a, &mut y);
            for i in 0..n {
                // One rounding (fused) or two: within one unit in the last place of the sum.
                assert!((y[i] - (b[i] + 0.5 * a[i])).abs() <= 1e-6, "{isa:?}");
            }
            let s: f32 = a.iter().sum();
            assert!((sum_at(isa, &a) - s).abs() < 1e-4, "{isa:?}");
        }
    }

    #[test]
    fn norm_helpers() {
        let mut v = vec![3.0, 4.0];
        assert_eq!(norm(&v), 5.0);
        clip_norm(&mut v, 1.0);
        assert!((norm(&v) - 1.0).abs() < 1e-6);
        set_norm(&mut v, 5.0);
        assert!((norm(&v) - 5.0).abs() < 1e-5);
        let mut z = vec![0.0; 3];
        set_norm(&mut z, 5.0);
        assert_eq!(z, vec![0.0; 3]);
    }
}

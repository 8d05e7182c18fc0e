//! Vector helpers the models share: dot, axpy, norms, scaling (SIMD through `wide`).

use wide::f32x8;

/// Loads `s[..8]` (unaligned).
#[inline(always)]
pub(crate) fn load8(s: &[f32]) -> f32x8 {
    assert!(s.len() >= 8);
    // SAFETY: 8 f32 are in bounds (asserted; the check folds away in chunked loops) and
    // f32x8 is plain data; `read_unaligned` has no alignment requirement.
    unsafe { (s.as_ptr() as *const f32x8).read_unaligned() }
}

/// Loads 8 floats from `p` (unaligned), for kernels that address memory by pointer.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline(always)]
pub(crate) unsafe fn load8_ptr(p: *const f32) -> f32x8 {
    f32x8::from(std::ptr::read_unaligned(p as *const [f32; 8]))
}

/// Stores `v` at `p..p + 8` (unaligned), for kernels that address memory by pointer.
///
/// # Safety
/// `p..p + 8` must be writable.
#[inline(always)]
pub(crate) unsafe fn store8_ptr(p: *mut f32, v: f32x8) {
    std::ptr::write_unaligned(p as *mut [f32; 8], v.into());
}

/// Stores `v` into `d[..8]` (unaligned).
#[inline(always)]
pub(crate) fn store8(d: &mut [f32], v: f32x8) {
    assert!(d.len() >= 8);
    // SAFETY: as in `load8`, for a write.
    unsafe { (d.as_mut_ptr() as *mut f32x8).write_unaligned(v) }
}

/// `Σ a_i b_i`.
#[track_caller]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot: lengths {} and {} differ",
        a.len(),
        b.len()
    );
    let n8 = a.len() / 8 * 8;
    let (mut acc0, mut acc1) = (f32x8::ZERO, f32x8::ZERO);
    let mut i = 0;
    while i + 16 <= n8 {
        acc0 = load8(&a[i..]).mul_add(load8(&b[i..]), acc0);
        acc1 = load8(&a[i + 8..]).mul_add(load8(&b[i + 8..]), acc1);
        i += 16;
    }
    if i < n8 {
        acc0 = load8(&a[i..]).mul_add(load8(&b[i..]), acc0);
    }
    let mut s = (acc0 + acc1).reduce_add();
    for j in n8..a.len() {
        s += a[j] * b[j];
    }
    s
}

/// `‖a‖₂²`.
pub fn norm_sq(a: &[f32]) -> f32 {
    dot(a, a)
}

/// `‖a‖₂`.
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// `y ← α x + y`.
#[track_caller]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "axpy: lengths {} and {} differ",
        x.len(),
        y.len()
    );
    let n8 = x.len() / 8 * 8;
    let av = f32x8::splat(alpha);
    let mut i = 0;
    while i < n8 {
        let r = load8(&x[i..]).mul_add(av, load8(&y[i..]));
        store8(&mut y[i..], r);
        i += 8;
    }
    for j in n8..x.len() {
        y[j] += alpha * x[j];
    }
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

/// `Σ x_i`.
pub fn sum(x: &[f32]) -> f32 {
    let n8 = x.len() / 8 * 8;
    let mut acc = f32x8::ZERO;
    let mut i = 0;
    while i < n8 {
        acc += load8(&x[i..]);
        i += 8;
    }
    acc.reduce_add() + x[n8..].iter().sum::<f32>()
}

/// `dst ← srcᵀ`: `src` row-major `rows × cols`, `dst` row-major `cols × rows` with row
/// stride `ld ≥ rows` (the padding is left untouched). Blocks of 8 × 8 are transposed in
/// registers.
///
/// # Panics
/// If `src` does not hold `rows·cols` values or `dst` is too short.
#[track_caller]
pub fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], ld: usize) {
    assert!(
        src.len() == rows * cols
            && ld >= rows
            && (cols == 0 || dst.len() >= (cols - 1) * ld + rows),
        "transpose of {rows}×{cols}: buffers of {} and {} values, row stride {ld}",
        src.len(),
        dst.len()
    );
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    for r0 in (0..r8).step_by(8) {
        for c0 in (0..c8).step_by(8) {
            let block: [f32x8; 8] = std::array::from_fn(|i| load8(&src[(r0 + i) * cols + c0..]));
            for (j, v) in f32x8::transpose(block).into_iter().enumerate() {
                store8(&mut dst[(c0 + j) * ld + r0..], v);
            }
        }
        for r in r0..r0 + 8 {
            for c in c8..cols {
                dst[c * ld + r] = src[r * cols + c];
            }
        }
    }
    for r in r8..rows {
        for c in 0..cols {
            dst[c * ld + r] = src[r * cols + c];
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
    fn transpose_into_with_padding_and_tails() {
        for (rows, cols) in [(16, 16), (13, 9), (8, 3), (4608 / 64, 16), (1, 1)] {
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
    fn dot_axpy_against_scalar() {
        for n in (0..=40).chain([257, 1031]) {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.2).collect();
            let d: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(
                (dot(&a, &b) as f64 - d).abs() <= 1e-4 * (1.0 + d.abs()),
                "n={n}"
            );
            let mut y = b.clone();
            axpy(0.5, &a, &mut y);
            for i in 0..n {
                assert!((y[i] - (b[i] + 0.5 * a[i])).abs() <= 1e-6);
            }
            let s: f32 = a.iter().sum();
            assert!((sum(&a) - s).abs() < 1e-4);
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

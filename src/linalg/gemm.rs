//! `C ← α A B + β C` through `matrixmultiply::sgemm`, behind one safe, shape-checked function.

use super::matrix::{MatMut, MatRef};
use std::sync::OnceLock;

static GEMM_THREADS: OnceLock<usize> = OnceLock::new();

/// Sets how many threads GEMM uses (1–4; matrixmultiply's limit) and returns the count in
/// effect. Only the first call (or the first GEMM) decides: matrixmultiply reads its thread
/// count once per process from `MATMUL_NUM_THREADS`. Without a call, GEMM uses
/// `MATMUL_NUM_THREADS` if set, else all logical cores (at most 4).
///
/// Results do not depend on the thread count: matrixmultiply splits the output into
/// disjoint blocks and every element is accumulated in the same order.
pub fn set_gemm_threads(threads: usize) -> usize {
    *GEMM_THREADS.get_or_init(|| {
        let n = threads.clamp(1, 4);
        // SAFETY-free but racy in principle: called before any other thread reads the
        // environment (the examples call it first thing in `main`).
        std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
        n
    })
}

/// The number of threads GEMM uses.
pub fn gemm_threads() -> usize {
    *GEMM_THREADS.get_or_init(|| {
        let n = std::env::var("MATMUL_NUM_THREADS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 4);
        std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
        n
    })
}

/// `C ← α A B + β C`.
///
/// Any operand may be a transposed or otherwise strided view. When `beta == 0`, `C` is
/// not read (NaN in `C` does not propagate).
///
/// # Panics
/// If `A` is `m×k`, `B` is not `k×n` or `C` is not `m×n`; the message names all shapes.
///
/// # Examples
/// ```
/// use drsae::linalg::{gemm, Mat};
/// let a = Mat::from_vec(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
/// let mut c = Mat::zeros(2, 2);
/// gemm(1.0, a.view(), a.t(), 0.0, c.view_mut()); // C = A Aᵀ
/// assert_eq!(c.as_slice(), &[5.0, 11.0, 11.0, 25.0]);
/// ```
#[track_caller]
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, mut c: MatMut<'_>) {
    let (m, k) = a.shape();
    let n = b.ncols();
    assert!(
        b.nrows() == k && c.nrows() == m && c.ncols() == n,
        "gemm shape mismatch: A is {}×{}, B is {}×{}, C is {}×{}",
        a.nrows(),
        a.ncols(),
        b.nrows(),
        b.ncols(),
        c.nrows(),
        c.ncols()
    );
    if m == 0 || n == 0 {
        return;
    }
    gemm_threads();
    // SAFETY: the views were checked on construction to lie inside their slices for the
    // given shapes and (non-negative) strides, and `c` is a non-aliasing mutable view that
    // cannot overlap `a` or `b` (it is borrowed mutably while they are borrowed shared).
    // matrixmultiply reads A (m×k), B (k×n) and reads/writes C (m×n) at exactly those
    // offsets. With k == 0 it scales C by beta, which is also in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            a.row_stride(),
            a.col_stride(),
            b.as_ptr(),
            b.row_stride(),
            b.col_stride(),
            beta,
            c.as_mut_ptr(),
            c.row_stride(),
            c.col_stride(),
        );
    }
}

/// The naive triple loop: the scalar reference `gemm` is tested against.
pub fn gemm_reference(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, mut c: MatMut<'_>) {
    let (m, k) = a.shape();
    let n = b.ncols();
    assert!(
        b.nrows() == k && c.shape() == (m, n),
        "gemm_reference shape mismatch"
    );
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a.get(i, p) as f64 * b.get(p, j) as f64;
            }
            let old = if beta == 0.0 { 0.0 } else { beta * c.get(i, j) };
            c.set(i, j, alpha * acc as f32 + old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Mat;
    use rand::SeedableRng;

    fn rand_mat(r: usize, c: usize, rng: &mut rand::rngs::StdRng) -> Mat {
        Mat::random(r, c, rand_distr::Uniform::new(-1.0, 1.0), rng)
    }

    #[test]
    fn all_transpose_combinations_and_odd_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 1, 9),
            (33, 65, 31),
            (64, 129, 8),
            (0, 3, 2),
            (2, 0, 3),
        ] {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a = if ta {
                        rand_mat(k, m, &mut rng)
                    } else {
                        rand_mat(m, k, &mut rng)
                    };
                    let b = if tb {
                        rand_mat(n, k, &mut rng)
                    } else {
                        rand_mat(k, n, &mut rng)
                    };
                    let av = if ta { a.t() } else { a.view() };
                    let bv = if tb { b.t() } else { b.view() };
                    for &(alpha, beta) in &[(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                        let c0 = rand_mat(m, n, &mut rng);
                        let (mut c1, mut c2) = (c0.clone(), c0.clone());
                        gemm(alpha, av, bv, beta, c1.view_mut());
                        gemm_reference(alpha, av, bv, beta, c2.view_mut());
                        let tol = 1e-5 * (k as f32 + 1.0) * 4.0;
                        assert!(c1.max_abs_diff(&c2) <= tol, "m{m} k{k} n{n} ta{ta} tb{tb}");
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_output() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let a = rand_mat(5, 4, &mut rng);
        let b = rand_mat(4, 6, &mut rng);
        let mut ct = Mat::zeros(6, 5);
        gemm(1.0, a.view(), b.view(), 0.0, ct.view_mut().t());
        let mut c = Mat::zeros(5, 6);
        gemm_reference(1.0, a.view(), b.view(), 0.0, c.view_mut());
        assert!(ct.transposed().max_abs_diff(&c) < 1e-5);
    }

    #[test]
    fn beta_zero_ignores_nan_in_c() {
        let a = Mat::identity(3);
        let mut c = Mat::filled(3, 3, f32::NAN);
        gemm(1.0, a.view(), a.view(), 0.0, c.view_mut());
        assert_eq!(c, Mat::identity(3));
    }

    #[test]
    #[should_panic(expected = "A is 2×3, B is 2×2, C is 2×2")]
    fn mismatch_names_shapes() {
        let a = Mat::zeros(2, 3);
        let b = Mat::zeros(2, 2);
        let mut c = Mat::zeros(2, 2);
        gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
    }
}

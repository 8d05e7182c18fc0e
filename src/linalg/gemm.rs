//! `C ← α A B + β C` behind one safe, shape-checked function: the few-row kernel
//! ([`super::small_gemm`]), the AVX-512 packed kernel (`super::packed_gemm`, on CPUs with
//! AVX-512F) or `matrixmultiply::sgemm`, chosen once per call and split over the GEMM
//! threads.

use super::matrix::{MatMut, MatRef};
use super::pool::SendPtr;
use std::sync::atomic::{AtomicUsize, Ordering};

static GEMM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Below this many flops (2mnk) a GEMM runs on the calling thread: waking a worker costs
/// more than it saves.
const PARALLEL_MIN_FLOPS: usize = 1_000_000;

/// Alignment of the blocks of C handed to threads (a multiple of every matrixmultiply
/// micro-tile size).
const SPLIT_ALIGN: usize = 16;

/// Sets how many threads GEMM uses (≥ 1) and returns it. Without a call, GEMM uses all
/// logical cores.
///
/// GEMM results do not depend on the thread count: the threads compute disjoint blocks of
/// rows (or columns) of C with the same single-threaded kernel, and every element of C is
/// accumulated over k in the same order whatever the split (tested). They do depend on the
/// SIMD level ([`crate::simd`]): the AVX-512 level's packed kernel sums in another order
/// than matrixmultiply's kernels (differences of a few units in the last place).
pub fn set_gemm_threads(threads: usize) -> usize {
    let n = threads.max(1);
    GEMM_THREADS.store(n, Ordering::Relaxed);
    n
}

/// The number of threads GEMM uses.
pub fn gemm_threads() -> usize {
    match GEMM_THREADS.load(Ordering::Relaxed) {
        0 => set_gemm_threads(std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

/// `C ← α A B + β C`.
///
/// Any operand may be a transposed or otherwise strided view. When `beta == 0`, `C` is
/// not read (NaN in `C` does not propagate). On CPUs with AVX-512F the product runs on
/// drsae's packed AVX-512 kernel when C has a unit stride (row- or column-major), on
/// matrixmultiply otherwise; see [`set_gemm_threads`] for the threads.
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
    let threads = gemm_threads().min(
        if 2 * m * n * k >= PARALLEL_MIN_FLOPS && !super::pool::in_task() {
            usize::MAX
        } else {
            1
        },
    );
    // The kernel is chosen from the whole GEMM's shape and strides, never per block, so the
    // result does not depend on the split.
    let path = Path::choose(&a, &b, &c);
    if threads <= 1 {
        sgemm_serial_with(path, alpha, a, b, beta, c);
        return;
    }
    // Split one of C's dimensions into `threads` contiguous blocks of rows or columns; each
    // thread runs the serial kernel on its block. matrixmultiply and the few-row kernel:
    // the longer dimension; the packed kernel: C's rows when C is row-major (its columns
    // when column-major) unless there are too few, so that every thread packs only its
    // share of A and the blocks stay whole micro-tiles.
    let split_rows = match path {
        Path::Packed => {
            let along_rows = c.col_stride() == 1;
            let major = if along_rows { m } else { n };
            along_rows == (major >= threads * 16)
        }
        _ => m >= n,
    };
    let len = if split_rows { m } else { n };
    let threads = threads.min(len.div_ceil(8));
    // For matrixmultiply, block starts are multiples of 16: it rounds full micro-tiles
    // (8 × 8 with AVX/FMA) differently from edge tiles (`α·AB + βC` fused in one FMA, or
    // α·AB rounded first), so a block boundary inside a tile would make the result depend
    // on the thread count. The few-row and packed kernels compute every element the same
    // way wherever it is; the packed kernel's blocks stay multiples of 16 for whole tiles.
    let align = if path == Path::FewRows {
        1
    } else {
        SPLIT_ALIGN
    };
    let chunk = len.div_ceil(threads).next_multiple_of(align);
    let (ars, acs, brs, bcs, crs, ccs) = (
        a.row_stride(),
        a.col_stride(),
        b.row_stride(),
        b.col_stride(),
        c.row_stride(),
        c.col_stride(),
    );
    let (pa, pb, pc) = (
        SendPtr(a.as_ptr() as *mut f32),
        SendPtr(b.as_ptr() as *mut f32),
        SendPtr(c.as_mut_ptr()),
    );
    let block = move |start: usize, end: usize| {
        let (pa, pb, pc) = (pa, pb, pc);
        let (mm, nn, a0, b0, c0) = if split_rows {
            (
                end - start,
                n,
                start as isize * ars,
                0,
                start as isize * crs,
            )
        } else {
            (
                m,
                end - start,
                0,
                start as isize * bcs,
                start as isize * ccs,
            )
        };
        // SAFETY: the blocks [start, end) partition C's rows (or columns), so no two
        // threads write the same element of C; every offset stays inside the checked views
        // (start < m or n), and A, B are only read. `run_blocks` returns or unwinds only
        // after every block has finished, before the borrows of a, b, c end. `path` was
        // chosen for these strides.
        unsafe {
            kernel(
                path,
                mm,
                k,
                nn,
                alpha,
                (pa.0.offset(a0), ars, acs),
                (pb.0.offset(b0), brs, bcs),
                beta,
                (pc.0.offset(c0), crs, ccs),
            );
        }
    };
    super::pool::run_blocks(threads, len, chunk, &block);
}

/// The whole GEMM on the calling thread (the tests' single-thread baseline).
#[cfg(test)]
fn sgemm_serial(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    let path = Path::choose(&a, &b, &c);
    sgemm_serial_with(path, alpha, a, b, beta, c)
}

fn sgemm_serial_with(
    path: Path,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) {
    let (m, k) = a.shape();
    let n = b.ncols();
    debug_assert!(b.nrows() == k && c.shape() == (m, n));
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the views were checked on construction to lie inside their slices for the
    // given shapes and (non-negative) strides, and `c` is a non-aliasing mutable view that
    // cannot overlap `a` or `b` (it is borrowed mutably while they are borrowed shared).
    // `path` was chosen for these strides.
    unsafe {
        kernel(
            path,
            m,
            k,
            n,
            alpha,
            (a.as_ptr(), a.row_stride(), a.col_stride()),
            (b.as_ptr(), b.row_stride(), b.col_stride()),
            beta,
            (c.as_mut_ptr(), c.row_stride(), c.col_stride()),
        );
    }
}

/// The kernel a GEMM runs on, chosen once from its shape, strides and the SIMD level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// [`few_rows_gemm`](super::small_gemm::few_rows_gemm): m ≤ 12, A·Wᵀ layouts.
    FewRows,
    /// The AVX-512 packed kernel ([`super::packed_gemm`]).
    #[cfg_attr(not(all(target_arch = "x86_64", drsae_avx512)), allow(dead_code))]
    Packed,
    /// `matrixmultiply::sgemm`.
    Matrixmultiply,
}

impl Path {
    fn choose(a: &MatRef<'_>, b: &MatRef<'_>, c: &MatMut<'_>) -> Path {
        if super::small_gemm::few_rows_applies(
            a.nrows(),
            a.col_stride(),
            b.row_stride(),
            b.col_stride(),
            c.col_stride(),
        ) {
            return Path::FewRows;
        }
        #[cfg(all(target_arch = "x86_64", drsae_avx512))]
        if crate::simd::level() == crate::simd::Level::Avx512
            && super::packed_gemm::applies(a.ncols(), c.row_stride(), c.col_stride())
        {
            return Path::Packed;
        }
        Path::Matrixmultiply
    }
}

/// `C ← αAB + βC` on raw (pointer, row stride, column stride) operands with the kernel of
/// `path`. The one place the kernels are called.
///
/// # Safety
/// The operands must address valid `m × k`, `k × n` and `m × n` matrices, C writable and not
/// overlapping A or B; `path` must be what [`Path::choose`] gives for these strides
/// (each kernel reads A, B and reads/writes C at exactly those offsets; with k == 0
/// matrixmultiply scales C by β, also in bounds).
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    path: Path,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    (a, ars, acs): (*const f32, isize, isize),
    (b, brs, bcs): (*const f32, isize, isize),
    beta: f32,
    (c, crs, ccs): (*mut f32, isize, isize),
) {
    match path {
        Path::FewRows => {
            super::small_gemm::few_rows_gemm(m, k, n, alpha, a, ars, b, bcs, beta, c, crs)
        }
        #[cfg(all(target_arch = "x86_64", drsae_avx512))]
        Path::Packed => super::packed_gemm::packed_gemm(
            m,
            k,
            n,
            alpha,
            (a, ars, acs),
            (b, brs, bcs),
            beta,
            (c, crs, ccs),
        ),
        _ => matrixmultiply::sgemm(m, k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, crs, ccs),
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

    fn rand_mat(r: usize, c: usize, rng: &mut crate::rng::SeedRng) -> Mat {
        Mat::random(r, c, rand_distr::Uniform::new(-1.0, 1.0), rng)
    }

    #[test]
    fn all_transpose_combinations_and_odd_shapes() {
        let mut rng = crate::rng::seeded(1);
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 1, 9),
            (33, 65, 31),
            (64, 129, 8),
            (0, 3, 2),
            (2, 0, 3),
            // the packing-free few-row kernel: every row count, partial 8-column strips,
            // k below, at and above multiples of 8
            (10, 400, 37),
            (12, 7, 9),
            (5, 16, 8),
            (7, 33, 1),
            (11, 8, 17),
            (13, 20, 20),
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
    fn thread_count_does_not_change_bits() {
        // α ≠ 1 and β ≠ 0 (the SGD update's form): matrixmultiply rounds full and edge
        // micro-tiles differently there, so block boundaries must not move with the count.
        let mut rng = crate::rng::seeded(3);
        let a = rand_mat(300, 200, &mut rng);
        let b = rand_mat(200, 90, &mut rng);
        let c0 = rand_mat(300, 90, &mut rng);
        let (alpha, beta) = (-0.37, 1.0);
        let mut one = c0.clone();
        sgemm_serial(alpha, a.view(), b.view(), beta, one.view_mut());
        let c0t = c0.transposed();
        let mut one_t = c0t.clone();
        sgemm_serial(alpha, b.t(), a.t(), beta, one_t.view_mut());
        for threads in [2, 3, 4, 5] {
            set_gemm_threads(threads);
            let mut many = c0.clone();
            gemm(alpha, a.view(), b.view(), beta, many.view_mut());
            assert!(many == one, "{threads} threads");
            let mut many_t = c0t.clone();
            gemm(alpha, b.t(), a.t(), beta, many_t.view_mut());
            assert!(many_t == one_t, "{threads} threads, column split");
        }
    }

    #[test]
    fn few_rows_split_over_threads_do_not_change_bits() {
        let mut rng = crate::rng::seeded(4);
        for m in 1..=12 {
            let a = rand_mat(m, 300, &mut rng);
            let b = rand_mat(300, 203, &mut rng);
            let bt = rand_mat(203, 300, &mut rng);
            for bv in [b.view(), bt.t()] {
                let mut one = Mat::zeros(m, 203);
                sgemm_serial(1.0, a.view(), bv, 0.0, one.view_mut());
                let mut reference = Mat::zeros(m, 203);
                gemm_reference(1.0, a.view(), bv, 0.0, reference.view_mut());
                assert!(one.max_abs_diff(&reference) < 1e-3, "m {m}");
                for threads in [2, 3] {
                    set_gemm_threads(threads);
                    let mut many = Mat::zeros(m, 203);
                    gemm(1.0, a.view(), bv, 0.0, many.view_mut());
                    assert!(many == one, "m {m}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn transposed_output() {
        let mut rng = crate::rng::seeded(2);
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

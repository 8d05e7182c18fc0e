//! `bench gemm [MxKxN [LEVEL]]`: the large GEMMs at every SIMD level (the AVX-512 level runs the
//! packed kernel, the others matrixmultiply), on the configured threads and on one, with
//! B row-major and transposed.

use super::{emit, time_best};
use drsae::linalg::{gemm, gemm_threads, set_gemm_threads, Mat};
use drsae::simd;
use rand::SeedableRng;

/// The benchmarked shapes (m, k, n): the DrSAE products and the TopK SAE encoder.
pub(crate) const SHAPES: [(usize, usize, usize); 4] = [
    (256, 784, 400),
    (256, 400, 400),
    (256, 400, 784),
    (4096, 768, 16384),
];

/// GFLOP/s of `C = A·B` (B row-major, or `transposed`: Bᵀ's storage read as B) at `shape`.
pub(crate) fn rate(shape: (usize, usize, usize), transposed: bool, target: f64) -> f64 {
    let (m, k, n) = shape;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let u = rand_distr::Uniform::new(-1.0f32, 1.0);
    let a = Mat::random(m, k, u, &mut rng);
    let b = if transposed {
        Mat::random(n, k, u, &mut rng)
    } else {
        Mat::random(k, n, u, &mut rng)
    };
    let bv = if transposed { b.t() } else { b.view() };
    let mut c = Mat::zeros(m, n);
    let flops = 2.0 * (m * n * k) as f64;
    // Many short repetitions: on a shared machine the best one is the least disturbed.
    let reps = if flops > 1e10 { 5 } else { 40 };
    let t = time_best(|| gemm(1.0, a.view(), bv, 0.0, c.view_mut()), target, reps);
    flops / t / 1e9
}

/// Seconds of CPU time this thread has used (Linux; elsewhere the wall clock): for
/// one-thread rates that the other processes of a shared machine do not disturb.
fn thread_cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux).
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.sec as f64 + ts.nsec as f64 * 1e-9;
        }
    }
    std::time::UNIX_EPOCH
        .elapsed()
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One-thread GFLOP/s of `C = A·B` at `shape` in this thread's CPU time (best of 40 runs, 3 for the largest).
pub(crate) fn cpu_rate(shape: (usize, usize, usize), transposed: bool) -> f64 {
    let (m, k, n) = shape;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let u = rand_distr::Uniform::new(-1.0f32, 1.0);
    let a = Mat::random(m, k, u, &mut rng);
    let b = if transposed {
        Mat::random(n, k, u, &mut rng)
    } else {
        Mat::random(k, n, u, &mut rng)
    };
    let bv = if transposed { b.t() } else { b.view() };
    let mut c = Mat::zeros(m, n);
    let threads = gemm_threads();
    set_gemm_threads(1);
    gemm(1.0, a.view(), bv, 0.0, c.view_mut());
    let mut best = f64::MAX;
    let reps = if m * n * k > 1 << 30 { 3 } else { 40 };
    for _ in 0..reps {
        let t = thread_cpu_seconds();
        gemm(1.0, a.view(), bv, 0.0, c.view_mut());
        best = best.min(thread_cpu_seconds() - t);
    }
    set_gemm_threads(threads);
    2.0 * (m * n * k) as f64 / best / 1e9
}

pub(crate) fn gemm_levels(only: Option<&str>, only_level: Option<&str>) {
    let threads = gemm_threads();
    let dispatched = simd::level();
    for shape in SHAPES {
        let (m, k, n) = shape;
        let name = format!("{m}x{k}x{n}");
        if only.is_some_and(|o| o != name) {
            continue;
        }
        for level in simd::available() {
            if only_level.is_some_and(|l| l != level.name()) {
                continue;
            }
            simd::force(level).unwrap();
            for transposed in [false, true] {
                let bt = if transposed { "_bt" } else { "" };
                let v = cpu_rate(shape, transposed);
                emit(
                    &format!("sgemm_{name}{bt}_{level}_1thread_cputime"),
                    v,
                    "GFLOP/s",
                );
            }
            for t in if threads > 1 {
                vec![threads, 1]
            } else {
                vec![1]
            } {
                set_gemm_threads(t);
                for transposed in [false, true] {
                    let target = if m * n * k > 1 << 30 { 1.0 } else { 0.02 };
                    let v = rate(shape, transposed, target);
                    let bt = if transposed { "_bt" } else { "" };
                    emit(&format!("sgemm_{name}{bt}_{level}_{t}thread"), v, "GFLOP/s");
                }
            }
        }
    }
    set_gemm_threads(threads);
    simd::force(dispatched).unwrap();
}

/// `bench gemm-ab`: the packed AVX-512 kernel (level avx512) against matrixmultiply
/// (level avx2) on one thread, calls alternating one by one, each timed in this thread's
/// CPU time; the best and the median call of each, and the ratio of the bests. On a shared
/// machine alternating single calls exposes both kernels to the same disturbances.
pub(crate) fn gemm_ab() {
    use simd::Level;
    if !Level::Avx512.is_supported() {
        emit("gemm_ab_skipped_no_avx512", 0.0, "");
        return;
    }
    let threads = gemm_threads();
    let dispatched = simd::level();
    set_gemm_threads(1);
    for shape in SHAPES {
        let (m, k, n) = shape;
        for transposed in [false, true] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(11);
            let u = rand_distr::Uniform::new(-1.0f32, 1.0);
            let a = Mat::random(m, k, u, &mut rng);
            let b = if transposed {
                Mat::random(n, k, u, &mut rng)
            } else {
                Mat::random(k, n, u, &mut rng)
            };
            let bv = if transposed { b.t() } else { b.view() };
            let mut c = Mat::zeros(m, n);
            let calls = if m * n * k > 1 << 30 { 4 } else { 200 };
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..calls {
                for (slot, level) in [Level::Avx512, Level::Avx2Fma].into_iter().enumerate() {
                    simd::force(level).unwrap();
                    let t = thread_cpu_seconds();
                    gemm(1.0, a.view(), bv, 0.0, c.view_mut());
                    times[slot].push(thread_cpu_seconds() - t);
                }
            }
            let flops = 2.0 * (m * n * k) as f64;
            let bt = if transposed { "_bt" } else { "" };
            let mut best = [0.0; 2];
            for (slot, name) in ["packed_avx512", "matrixmultiply"].into_iter().enumerate() {
                let ts = &mut times[slot];
                ts.sort_by(f64::total_cmp);
                best[slot] = flops / ts[0] / 1e9;
                let median = flops / ts[ts.len() / 2] / 1e9;
                emit(
                    &format!("ab_{m}x{k}x{n}{bt}_{name}_best"),
                    best[slot],
                    "GFLOP/s",
                );
                emit(
                    &format!("ab_{m}x{k}x{n}{bt}_{name}_median"),
                    median,
                    "GFLOP/s",
                );
            }
            emit(
                &format!("ab_{m}x{k}x{n}{bt}_ratio"),
                best[0] / best[1],
                "packed / matrixmultiply",
            );
        }
    }
    set_gemm_threads(threads);
    simd::force(dispatched).unwrap();
}

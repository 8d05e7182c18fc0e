//! `gemm` against `gemm_reference` on every SIMD level this CPU supports (the AVX-512 level
//! runs the packed kernel, the others matrixmultiply), on odd shapes, transposed and strided
//! views, several α / β, and β = 0 over a NaN-filled C. In its own test binary because
//! `simd::force` changes the level of the whole process.

use drsae::linalg::{gemm, gemm_reference, set_gemm_threads, Mat, MatMut, MatRef};
use drsae::simd;
use rand::SeedableRng;
use std::sync::Mutex;

/// The tests of this binary force levels and thread counts: one at a time.
static LEVELS: Mutex<()> = Mutex::new(());

fn rand_vec(len: usize, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    Mat::random(1, len.max(1), rand_distr::Uniform::new(-1.0, 1.0), rng).into_vec()
}

/// Strides of an `r × c` operand: row-major, column-major or padded in both directions.
fn strides(r: usize, c: usize, layout: usize) -> (isize, isize, usize) {
    let (rs, cs) = match layout {
        0 => (c.max(1), 1),
        1 => (1, r.max(1)),
        _ => (2 * c + 1, 2),
    };
    let len = if r == 0 || c == 0 {
        0
    } else {
        (r - 1) * rs + (c - 1) * cs + 1
    };
    (rs as isize, cs as isize, len)
}

#[test]
fn gemm_matches_the_reference_on_every_level() {
    let _one_at_a_time = LEVELS.lock().unwrap_or_else(|e| e.into_inner());
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (13, 40, 1),
        (17, 1, 9),
        (33, 65, 31),
        (40, 300, 49),
        (64, 129, 8),
        (97, 257, 130),
        (0, 3, 2),
        (2, 0, 3),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for level in simd::available() {
        simd::force(level).unwrap();
        for threads in [1, 2] {
            set_gemm_threads(threads);
            for &(m, k, n) in &shapes {
                for layout in 0..27 {
                    let (la, lb, lc) = (layout % 3, layout / 3 % 3, layout / 9);
                    let (ars, acs, alen) = strides(m, k, la);
                    let (brs, bcs, blen) = strides(k, n, lb);
                    let (crs, ccs, clen) = strides(m, n, lc);
                    let a = rand_vec(alen, &mut rng);
                    let b = rand_vec(blen, &mut rng);
                    let av = MatRef::from_strided(&a, m, k, ars, acs);
                    let bv = MatRef::from_strided(&b, k, n, brs, bcs);
                    for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.5, 1.0), (-2.0, 0.25)] {
                        for nan_c in [false, true] {
                            if nan_c && beta != 0.0 {
                                continue;
                            }
                            let mut c = rand_vec(clen, &mut rng);
                            if nan_c {
                                c.iter_mut().for_each(|x| *x = f32::NAN);
                            }
                            let mut want = c.clone();
                            gemm(
                                alpha,
                                av,
                                bv,
                                beta,
                                MatMut::from_strided(&mut c, m, n, crs, ccs),
                            );
                            gemm_reference(
                                alpha,
                                av,
                                bv,
                                beta,
                                MatMut::from_strided(&mut want, m, n, crs, ccs),
                            );
                            let (g, w) = (
                                MatRef::from_strided(&c, m, n, crs, ccs),
                                MatRef::from_strided(&want, m, n, crs, ccs),
                            );
                            let tol = 1e-5 * (k as f32 + 1.0) * 4.0;
                            for i in 0..m {
                                for j in 0..n {
                                    assert!(
                                        (g.get(i, j) - w.get(i, j)).abs() <= tol,
                                        "{level} {threads} threads {m}×{k}×{n} layout {la}{lb}{lc} \
                                         α {alpha} β {beta}: {} vs {}",
                                        g.get(i, j),
                                        w.get(i, j)
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_bits_on_any_level() {
    let _one_at_a_time = LEVELS.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (m, k, n) = (300, 700, 190);
    let a = Mat::random(m, k, rand_distr::Uniform::new(-1.0, 1.0), &mut rng);
    let b = Mat::random(k, n, rand_distr::Uniform::new(-1.0, 1.0), &mut rng);
    let c0 = Mat::random(m, n, rand_distr::Uniform::new(-1.0, 1.0), &mut rng);
    for level in simd::available() {
        simd::force(level).unwrap();
        for (av, bv) in [(a.view(), b.view()), (a.view(), b.t().t())] {
            set_gemm_threads(1);
            let mut one = c0.clone();
            gemm(-0.37, av, bv, 1.0, one.view_mut());
            for threads in [2, 3, 5] {
                set_gemm_threads(threads);
                let mut many = c0.clone();
                gemm(-0.37, av, bv, 1.0, many.view_mut());
                assert!(many == one, "{level}, {threads} threads");
            }
        }
    }
}

//! The packed kernel against the naive reference, called directly (these tests do not
//! depend on the process's SIMD level; `tests/gemm_levels.rs` runs `gemm` on every level).

use super::*;
use crate::linalg::{gemm_reference, Mat, MatMut, MatRef};
use crate::simd::{Isa, Level};

fn have_avx512() -> bool {
    Isa::new(Level::Avx512).is_some()
}

/// A random `r × c` operand laid out by `layout`: 0 row-major, 1 column-major, 2 both
/// strides padded (no unit stride), 3 row-major with padded rows.
fn operand(
    r: usize,
    c: usize,
    layout: u8,
    rng: &mut crate::rng::SeedRng,
) -> (Vec<f32>, isize, isize) {
    let (rs, cs) = match layout {
        0 => (c.max(1) as isize, 1),
        1 => (1, r.max(1) as isize),
        2 => ((2 * c + 3) as isize, 2),
        _ => ((c + 5) as isize, 1),
    };
    let len = if r == 0 || c == 0 {
        0
    } else {
        (r as isize - 1) as usize * rs as usize + (c - 1) * cs as usize + 1
    };
    let m = Mat::random(1, len.max(1), rand_distr::Uniform::new(-1.0, 1.0), rng);
    (m.into_vec(), rs, cs)
}

/// Runs the packed kernel on `C ← α·A·B + β·C` and the reference, and compares.
#[allow(clippy::too_many_arguments)]
fn check(
    m: usize,
    k: usize,
    n: usize,
    la: u8,
    lb: u8,
    lc: u8,
    alpha: f32,
    beta: f32,
    nan_c: bool,
    seed: u64,
) {
    let mut rng = crate::rng::seeded(seed);
    let (a, ars, acs) = operand(m, k, la, &mut rng);
    let (b, brs, bcs) = operand(k, n, lb, &mut rng);
    let (mut c, crs, ccs) = operand(m, n, lc, &mut rng);
    if nan_c {
        c.iter_mut().for_each(|x| *x = f32::NAN);
    }
    let mut expected = c.clone();
    let av = MatRef::from_strided(&a, m, k, ars, acs);
    let bv = MatRef::from_strided(&b, k, n, brs, bcs);
    gemm_reference(
        alpha,
        av,
        bv,
        beta,
        MatMut::from_strided(&mut expected, m, n, crs, ccs),
    );
    assert!(applies(k, crs, ccs));
    // SAFETY: the views above checked the extents; the CPU has AVX-512F (callers check).
    unsafe {
        packed_gemm(
            m,
            k,
            n,
            alpha,
            (a.as_ptr(), ars, acs),
            (b.as_ptr(), brs, bcs),
            beta,
            (c.as_mut_ptr(), crs, ccs),
        );
    }
    let got = MatRef::from_strided(&c, m, n, crs, ccs);
    let want = MatRef::from_strided(&expected, m, n, crs, ccs);
    let tol = 2e-6 * (k as f32 + 4.0) * (alpha.abs() + beta.abs());
    for i in 0..m {
        for j in 0..n {
            let (g, w) = (got.get(i, j), want.get(i, j));
            assert!(
                (g - w).abs() <= tol,
                "{m}×{k}×{n} layouts {la}{lb}{lc} α {alpha} β {beta}: C[{i},{j}] = {g}, want {w}"
            );
        }
    }
    // Elements between C's (padded) elements are never written.
    if lc == 3 && !nan_c {
        let mut rng2 = crate::rng::seeded(seed);
        let _ = operand(m, k, la, &mut rng2);
        let _ = operand(k, n, lb, &mut rng2);
        let (c0, _, _) = operand(m, n, lc, &mut rng2);
        for (idx, (x, y)) in c.iter().zip(&c0).enumerate() {
            let (i, r) = (idx / crs as usize, idx % crs as usize);
            let inside = r < n && i < m;
            assert!(inside || x == y, "wrote outside C at {idx}");
        }
    }
}

#[test]
fn odd_shapes_every_layout_alpha_beta() {
    if !have_avx512() {
        return;
    }
    let shapes = [
        (1, 1, 1),
        (1, 9, 50),
        (7, 3, 5),
        (8, 8, 48),
        (9, 17, 49),
        (16, 31, 96),
        (17, 64, 97),
        (23, 1, 130),
        (33, 257, 47),
        (40, 300, 15),
        (64, 129, 8),
    ];
    let mut seed = 0;
    for &(m, k, n) in &shapes {
        for la in 0..3 {
            for lb in 0..3 {
                for lc in [0, 1, 3] {
                    for &(alpha, beta) in &[(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                        seed += 1;
                        check(m, k, n, la, lb, lc, alpha, beta, false, seed);
                    }
                }
            }
        }
    }
}

#[test]
fn beta_zero_ignores_nan_in_c() {
    if !have_avx512() {
        return;
    }
    for &(m, k, n) in &[(5, 7, 9), (19, 300, 101), (8, 600, 48)] {
        for lc in [0, 1, 3] {
            check(m, k, n, 0, 0, lc, 1.5, 0.0, true, 7);
            check(m, k, n, 1, 1, lc, 1.0, 0.0, true, 8);
        }
    }
}

#[test]
fn several_blocks_of_k_rows_and_columns() {
    if !have_avx512() {
        return;
    }
    // k over two and three KC blocks, n over two NC blocks, m over two row blocks of A.
    check(30, 2 * KC + 5, NC + 37, 0, 0, 0, 1.0, 0.5, false, 11);
    check(
        A_PACK_MAX / 600 + 21,
        600,
        50,
        0,
        1,
        0,
        -1.0,
        1.0,
        false,
        12,
    );
    check(13, 3 * KC, 20, 1, 0, 1, 2.0, 0.0, false, 13);
}

#[test]
fn transpose8x8_transposes() {
    if !have_avx512() {
        return;
    }
    let src: Vec<f32> = (0..8 * 11).map(|i| i as f32).collect();
    let mut dst = vec![-1.0f32; 8 * 10];
    // SAFETY: 8 rows of 8 readable at stride 11, writable at stride 10; AVX-512F present.
    unsafe { pack::transpose8x8(src.as_ptr(), 11, dst.as_mut_ptr(), 10) };
    for r in 0..8 {
        for c in 0..8 {
            assert_eq!(dst[c * 10 + r], src[r * 11 + c]);
        }
        assert_eq!(dst[r * 10 + 8], -1.0);
    }
}

#[test]
fn k_blocks_are_equal_and_bounded() {
    assert_eq!(k_block(1), 1);
    assert_eq!(k_block(KC), KC);
    assert_eq!(k_block(KC + 1), KC.div_ceil(2) + 1);
    assert_eq!(k_block(784), 196);
}

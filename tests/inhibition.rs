#![allow(clippy::needless_range_loop)]
//! Lateral-inhibition sparse coding: inference never raises the energy, S = 0 is the lasso,
//! and the learning gradients match finite differences.

use drsae::linalg::Mat;
use drsae::models::{inhibition_gradients, tree_inhibition};
use drsae::solvers::{exact, inhibited_codes, Dictionary, LassoOptions};
use rand::SeedableRng;

fn setup(seed: u64) -> (Mat, Mat) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let atoms = Mat::random(13, 10, rand_distr::StandardNormal, &mut rng);
    let w = Dictionary::from_unit_rows(&atoms).unwrap().atoms().clone();
    let x = Mat::random(8, 10, rand_distr::StandardNormal, &mut rng);
    (w, x)
}

/// The exact lasso objective (summed over rows) and codes for dictionary `w`.
fn lasso_optimum(w: &Mat, x: &Mat, lambda: f32) -> (f64, Mat) {
    let mut z = Mat::zeros(x.nrows(), w.ncols());
    let st = exact(
        &Dictionary::new(w.clone()).unwrap(),
        x,
        &mut z,
        &LassoOptions::new(lambda),
    )
    .unwrap();
    (st.objective, z)
}

#[test]
fn energy_never_increases_over_sweeps() {
    let (w, x) = setup(1);
    let s = tree_inhibition(3, 3, 0.4).unwrap();
    let mut last = f64::MAX;
    for sweeps in 1..15 {
        let mut z = Mat::zeros(8, 13);
        let st = inhibited_codes(&w, &s, &x, &mut z, 0.2, sweeps, 0.0).unwrap();
        assert!(
            st.energy <= last + 1e-6 * last.abs().max(1.0),
            "sweep {sweeps}: {} > {last}",
            st.energy
        );
        last = st.energy;
    }
    // The energy at zero is ½‖x‖²: inference must not end above it.
    let start: f64 = x.as_slice().iter().map(|v| 0.5 * (*v as f64).powi(2)).sum();
    assert!(last < start);
}

#[test]
fn zero_inhibition_is_the_lasso() {
    let (w, x) = setup(2);
    let mut z = Mat::zeros(8, 13);
    let st = inhibited_codes(&w, &Mat::zeros(13, 13), &x, &mut z, 0.3, 2000, 1e-7).unwrap();
    let (lasso, zl) = lasso_optimum(&w, &x, 0.3);
    assert!(
        (st.energy - lasso).abs() < 1e-4 * lasso,
        "{} vs {lasso}",
        st.energy
    );
    assert!(z.max_abs_diff(&zl) < 1e-3, "{}", z.max_abs_diff(&zl));
}

/// Strong tree inhibition leaves only units on one root-to-leaf path active together. Not
/// vacuous: every row keeps an active unit, some rows keep several (so pairs are checked),
/// and the same inference without inhibition does activate unrelated units together.
#[test]
fn tree_inhibition_keeps_active_sets_on_paths() {
    let (w, x) = setup(3);
    let unrelated_pairs = |z: &Mat| -> usize {
        z.rows()
            .map(|row| {
                let active: Vec<usize> = (0..13).filter(|&j| row[j] != 0.0).collect();
                let mut count = 0;
                for &a in &active {
                    for &b in &active {
                        count += usize::from(!drsae::models::tree_related(3, a, b));
                    }
                }
                count
            })
            .sum()
    };
    let s = tree_inhibition(3, 3, 50.0).unwrap();
    let mut z = Mat::zeros(8, 13);
    inhibited_codes(&w, &s, &x, &mut z, 0.05, 500, 1e-6).unwrap();
    let sizes: Vec<usize> = z
        .rows()
        .map(|row| row.iter().filter(|v| **v != 0.0).count())
        .collect();
    assert!(
        sizes.iter().all(|&k| k >= 1),
        "a row with no active unit: active counts {sizes:?}"
    );
    assert!(
        sizes.iter().filter(|&&k| k >= 2).count() >= 2,
        "fewer than two rows with two or more active units: {sizes:?}"
    );
    for row in z.rows() {
        let active: Vec<usize> = (0..13).filter(|&j| row[j] != 0.0).collect();
        for &a in &active {
            for &b in &active {
                assert!(
                    drsae::models::tree_related(3, a, b),
                    "units {a} and {b} active together: {active:?}"
                );
            }
        }
    }
    assert_eq!(unrelated_pairs(&z), 0);
    // Without inhibition the same codes do mix branches: the property above is the
    // inhibition's doing.
    let mut free = Mat::zeros(8, 13);
    inhibited_codes(&w, &Mat::zeros(13, 13), &x, &mut free, 0.05, 500, 1e-6).unwrap();
    assert!(
        unrelated_pairs(&free) > 0,
        "without inhibition no unrelated units were active together"
    );
}

#[test]
fn learning_gradients_match_finite_differences() {
    let (w, x) = setup(4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let z = Mat::random(8, 13, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let s = tree_inhibition(3, 3, 0.3).unwrap();
    let lambda = 0.2;
    let energy = |w: &[f64], s: &[f64]| -> f64 {
        let (m, n) = (10, 13);
        let mut total = 0.0;
        for i in 0..8 {
            for r in 0..m {
                let v =
                    x[(i, r)] as f64 - (0..n).map(|j| w[r * n + j] * z[(i, j)] as f64).sum::<f64>();
                total += 0.5 * v * v;
            }
            for p in 0..n {
                total += lambda * (z[(i, p)] as f64).abs();
                for q in 0..n {
                    total += s[p * n + q] * (z[(i, p)] as f64).abs() * (z[(i, q)] as f64).abs();
                }
            }
        }
        total / 8.0
    };
    let (mut dw, mut ds) = (Mat::zeros(10, 13), Mat::zeros(13, 13));
    inhibition_gradients(&w, &x, &z, &mut dw, &mut ds);
    let w64: Vec<f64> = w.as_slice().iter().map(|&v| v as f64).collect();
    let s64: Vec<f64> = s.as_slice().iter().map(|&v| v as f64).collect();
    let h = 1e-6;
    for k in 0..w64.len() {
        let (mut p, mut m) = (w64.clone(), w64.clone());
        p[k] += h;
        m[k] -= h;
        let fd = (energy(&p, &s64) - energy(&m, &s64)) / (2.0 * h);
        assert!(
            (fd - dw.as_slice()[k] as f64).abs() < 1e-3 * fd.abs().max(1e-2),
            "dW[{k}]: {fd} vs {}",
            dw.as_slice()[k]
        );
    }
    // S is symmetric: perturb S_ij and S_ji together; the gradient of the pair is 2·dS_ij.
    for i in 0..13 {
        for j in 0..i {
            let (mut p, mut m) = (s64.clone(), s64.clone());
            p[i * 13 + j] += h;
            p[j * 13 + i] += h;
            m[i * 13 + j] -= h;
            m[j * 13 + i] -= h;
            let fd = (energy(&w64, &p) - energy(&w64, &m)) / (2.0 * h);
            let ours = 2.0 * ds[(i, j)] as f64;
            assert!(
                (fd - ours).abs() < 1e-3 * fd.abs().max(1e-2),
                "dS[{i},{j}]: {fd} vs {ours}"
            );
        }
    }
}

#[test]
fn ista_style_inference_is_monotone_and_zero_s_is_the_lasso() {
    use drsae::solvers::inhibited_codes_ista;
    let (w, x) = setup(6);
    let s = tree_inhibition(3, 3, 0.4).unwrap();
    let mut last = f64::MAX;
    for iters in 1..20 {
        let mut z = Mat::zeros(8, 13);
        let st = inhibited_codes_ista(&w, &s, &x, &mut z, 0.2, iters, 0.0).unwrap();
        assert!(
            st.energy <= last + 1e-6 * last.abs().max(1.0),
            "iteration {iters}: {} > {last}",
            st.energy
        );
        last = st.energy;
    }
    let mut z = Mat::zeros(8, 13);
    let st = inhibited_codes_ista(&w, &Mat::zeros(13, 13), &x, &mut z, 0.3, 5000, 1e-7).unwrap();
    let (lasso, _) = lasso_optimum(&w, &x, 0.3);
    assert!(
        (st.energy - lasso).abs() < 1e-4 * lasso,
        "{} vs {lasso}",
        st.energy
    );
}

#![allow(clippy::needless_range_loop)]
//! Behaviour of the lasso solvers through the public API.

use drsae::kernels::Groups;
use drsae::linalg::Mat;
use drsae::solvers::{cod, exact, fista, fista_group, ista, Dictionary, LassoOptions, Solver};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn problem(m: usize, n: usize, batch: usize, seed: u64) -> (Dictionary, Mat) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let atoms = Mat::random(n, m, Normal::new(0.0, 1.0).unwrap(), &mut rng);
    let dict = Dictionary::from_unit_rows(&atoms).unwrap();
    // Inputs that are sparse combinations of atoms plus noise, so the optimum is sparse.
    let mut x = Mat::zeros(batch, m);
    let noise = Normal::new(0.0, 0.05).unwrap();
    for i in 0..batch {
        for k in 0..3 {
            let j = (i * 7 + k * 13) % n;
            let w = 1.0 + k as f32;
            for r in 0..m {
                x[(i, r)] += w * dict.atoms()[(r, j)];
            }
        }
        for r in 0..m {
            x[(i, r)] += noise.sample(&mut rng);
        }
    }
    (dict, x)
}

/// f64 objective of every row.
fn objective(dict: &Dictionary, x: &Mat, z: &Mat, lambda: f64) -> f64 {
    let d = dict.atoms();
    let mut total = 0.0;
    for i in 0..x.nrows() {
        for r in 0..x.ncols() {
            let mut v = x[(i, r)] as f64;
            for j in 0..z.ncols() {
                v -= d[(r, j)] as f64 * z[(i, j)] as f64;
            }
            total += 0.5 * v * v;
        }
        total += lambda * z.row(i).iter().map(|v| v.abs() as f64).sum::<f64>();
    }
    total
}

/// Max violation of the lasso KKT conditions, relative to λ.
fn kkt_violation(dict: &Dictionary, x: &Mat, z: &Mat, lambda: f64, non_negative: bool) -> f64 {
    let d = dict.atoms();
    let mut worst = 0.0f64;
    for i in 0..x.nrows() {
        let r: Vec<f64> = (0..x.ncols())
            .map(|row| {
                x[(i, row)] as f64
                    - (0..z.ncols())
                        .map(|j| d[(row, j)] as f64 * z[(i, j)] as f64)
                        .sum::<f64>()
            })
            .collect();
        for j in 0..z.ncols() {
            let c: f64 = (0..x.ncols()).map(|row| d[(row, j)] as f64 * r[row]).sum();
            let zj = z[(i, j)] as f64;
            let v = if zj > 0.0 {
                (c - lambda).abs()
            } else if zj < 0.0 {
                (c + lambda).abs()
            } else if non_negative {
                (c - lambda).max(0.0)
            } else {
                (c.abs() - lambda).max(0.0)
            };
            worst = worst.max(v / lambda);
        }
    }
    worst
}

#[test]
fn ista_objective_never_increases() {
    let (dict, x) = problem(20, 40, 6, 1);
    let mut last = f64::MAX;
    for k in 1..40 {
        let mut z = Mat::zeros(6, 40);
        let st = ista(
            &dict,
            &x,
            &mut z,
            &LassoOptions::new(0.1).max_iters(k).tol(0.0),
        )
        .unwrap();
        let f = objective(&dict, &x, &z, 0.1);
        assert!(
            (st.objective - f).abs() <= 1e-4 * f,
            "reported {} vs {f}",
            st.objective
        );
        assert!(f <= last * (1.0 + 1e-6), "iteration {k}: {f} > {last}");
        last = f;
    }
}

#[test]
fn solvers_agree_and_satisfy_kkt() {
    let (dict, x) = problem(30, 50, 20, 2);
    let lambda = 0.2;
    for non_negative in [false, true] {
        let opts = LassoOptions::new(lambda)
            .non_negative(non_negative)
            .max_iters(5000)
            .tol(1e-9);
        let mut reference = Mat::zeros(20, 50);
        exact(&dict, &x, &mut reference, &opts).unwrap();
        let f_exact = objective(&dict, &x, &reference, lambda as f64);
        assert!(
            kkt_violation(&dict, &x, &reference, lambda as f64, non_negative) < 1e-3,
            "exact KKT"
        );
        for solver in [Solver::Fista, Solver::Cod, Solver::Ista] {
            let mut z = Mat::zeros(20, 50);
            let st = solver.solve(&dict, &x, &mut z, &opts).unwrap();
            let f = objective(&dict, &x, &z, lambda as f64);
            assert!(
                (f - f_exact).abs() <= 1e-5 * f_exact,
                "{solver:?} nn={non_negative}: {f} vs {f_exact}"
            );
            assert!(
                kkt_violation(&dict, &x, &z, lambda as f64, non_negative) < 2e-2,
                "{solver:?} KKT"
            );
            assert!(
                st.duality_gap >= 0.0 && st.duality_gap <= 1e-4 * st.objective,
                "{solver:?} gap {}",
                st.duality_gap
            );
            if non_negative {
                assert!(
                    z.as_slice().iter().all(|&v| v >= 0.0),
                    "{solver:?} returned a negative code"
                );
            }
        }
    }
}

#[test]
fn tiny_problem_matches_f64_reference() {
    // Reference: f64 cyclic coordinate descent run to convergence.
    let (dict, x) = problem(5, 4, 3, 3);
    let lambda = 0.3;
    let d = dict.atoms();
    for i in 0..3 {
        let mut z = [0.0f64; 4];
        for _ in 0..20000 {
            for j in 0..4 {
                let mut c = 0.0;
                let mut dd = 0.0;
                for r in 0..5 {
                    let mut res = x[(i, r)] as f64;
                    for k in 0..4 {
                        if k != j {
                            res -= d[(r, k)] as f64 * z[k];
                        }
                    }
                    c += d[(r, j)] as f64 * res;
                    dd += (d[(r, j)] as f64).powi(2);
                }
                z[j] = c.signum() * (c.abs() - lambda).max(0.0) / dd;
            }
        }
        let xi = x.row_range(i, i + 1).to_owned();
        let mut ours = Mat::zeros(1, 4);
        exact(&dict, &xi, &mut ours, &LassoOptions::new(lambda as f32)).unwrap();
        for j in 0..4 {
            assert!(
                (ours[(0, j)] as f64 - z[j]).abs() < 1e-5,
                "row {i} unit {j}: {} vs {}",
                ours[(0, j)],
                z[j]
            );
        }
    }
}

#[test]
fn zero_input_gives_zero_code_and_warm_start_is_kept() {
    let (dict, x) = problem(10, 15, 4, 4);
    for solver in [Solver::Ista, Solver::Fista, Solver::Cod, Solver::Exact] {
        let mut z = Mat::zeros(2, 15);
        let st = solver
            .solve(&dict, &Mat::zeros(2, 10), &mut z, &LassoOptions::new(0.1))
            .unwrap();
        assert!(z.as_slice().iter().all(|&v| v == 0.0), "{solver:?}");
        assert_eq!(st.objective, 0.0);
    }
    let opts = LassoOptions::new(0.1);
    let mut z = Mat::zeros(4, 15);
    exact(&dict, &x, &mut z, &opts).unwrap();
    let mut warm = z.clone();
    let st = exact(&dict, &x, &mut warm, &opts).unwrap();
    assert!(warm.max_abs_diff(&z) < 1e-6);
    assert!(
        st.iterations <= 1.0,
        "warm start from the optimum took {} activations",
        st.iterations
    );
}

#[test]
fn per_unit_lambda_huge_on_one_atom_keeps_it_zero() {
    let (dict, x) = problem(10, 15, 4, 5);
    let mut lam = vec![0.05; 15];
    lam[7] = 1e6;
    let opts = LassoOptions::new(0.0).per_unit_lambda(lam);
    for solver in [Solver::Fista, Solver::Exact, Solver::Cod] {
        let mut z = Mat::zeros(4, 15);
        solver.solve(&dict, &x, &mut z, &opts).unwrap();
        assert!((0..4).all(|i| z[(i, 7)] == 0.0), "{solver:?}");
        assert!(z.as_slice().iter().any(|&v| v != 0.0));
    }
}

#[test]
fn bad_dictionaries_and_options_are_errors() {
    let mut d = Mat::identity(3);
    d[(1, 1)] = 0.0;
    let e = Dictionary::new(d).unwrap_err().to_string();
    assert!(e.contains("column 1 is zero"), "{e}");
    let mut d = Mat::identity(3);
    d[(2, 0)] = f32::NAN;
    assert!(Dictionary::new(d)
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
    let dict = Dictionary::new(Mat::identity(3)).unwrap();
    let mut z = Mat::zeros(1, 3);
    assert!(fista(&dict, &Mat::zeros(1, 3), &mut z, &LassoOptions::new(-1.0)).is_err());
    assert!(cod(
        &dict,
        &Mat::zeros(1, 3),
        &mut z,
        &LassoOptions::new(0.1).per_unit_lambda(vec![0.1])
    )
    .is_err());
    let mut x = Mat::zeros(1, 3);
    x[(0, 1)] = f32::INFINITY;
    assert!(exact(&dict, &x, &mut z, &LassoOptions::new(0.1)).is_err());
}

#[test]
fn group_fista_with_singletons_is_the_lasso_and_zeroes_whole_groups() {
    let (dict, x) = problem(20, 24, 5, 6);
    let opts = LassoOptions::new(0.2).max_iters(3000).tol(1e-10);
    let mut z1 = Mat::zeros(5, 24);
    fista_group(
        &dict,
        &x,
        &mut z1,
        &Groups::disjoint(24, 1).unwrap(),
        0.2,
        &opts,
    )
    .unwrap();
    let mut z2 = Mat::zeros(5, 24);
    exact(&dict, &x, &mut z2, &opts).unwrap();
    assert!(z1.max_abs_diff(&z2) < 1e-3, "{}", z1.max_abs_diff(&z2));
    let groups = Groups::disjoint(24, 4).unwrap();
    let mut zg = Mat::zeros(5, 24);
    let st = fista_group(&dict, &x, &mut zg, &groups, 0.5, &opts).unwrap();
    assert!(st.duality_gap <= 1e-4 * st.objective);
    for row in zg.rows() {
        for block in row.chunks(4) {
            let nz = block.iter().filter(|v| **v != 0.0).count();
            assert!(nz == 0 || nz == 4, "a group is partly active: {block:?}");
        }
    }
}

#[test]
fn duplicated_atoms_give_a_finite_optimum() {
    // The kernels fuzzer's find: identical columns made the active-set Cholesky singular.
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut atoms = Mat::random(6, 10, Normal::new(0.0, 1.0).unwrap(), &mut rng);
    let dup = atoms.row(2).to_vec();
    atoms.row_mut(4).copy_from_slice(&dup);
    atoms.row_mut(5).copy_from_slice(&dup);
    let dict = Dictionary::from_unit_rows(&atoms).unwrap();
    let x = Mat::random(5, 10, Normal::new(0.0, 1.0).unwrap(), &mut rng);
    for non_negative in [false, true] {
        let opts = LassoOptions::new(0.1)
            .non_negative(non_negative)
            .max_iters(3000)
            .tol(1e-10);
        let mut z = Mat::zeros(5, 6);
        let st = exact(&dict, &x, &mut z, &opts).unwrap();
        assert!(z.as_slice().iter().all(|v| v.is_finite()));
        let mut zf = Mat::zeros(5, 6);
        let sf = fista(&dict, &x, &mut zf, &opts).unwrap();
        assert!(
            (st.objective - sf.objective).abs() <= 1e-5 * sf.objective,
            "{} vs {}",
            st.objective,
            sf.objective
        );
    }
}

//! Inference for structured sparse coding by lateral inhibition (Gregor, Szlam & LeCun,
//! NIPS 2011):
//!
//! `E(x, z) = ½‖x − W z‖² + λ‖z‖₁ + |z|ᵀ S |z|`, S symmetric, non-negative, zero diagonal.
//!
//! Since `|z|ᵀS|z| = Σ_{i≠j} S_ij |z_i||z_j|`, the terms holding `z_i` are
//! `½G_ii z_i² − z_i(c_i + G_ii z_i) + (λ + 2(S|z|)_i)|z_i|` (with `c = Wᵀ(x − Wz)`), whose
//! exact minimiser is `z_i = shrink_{(λ + 2(S|z|)_i)/G_ii}(z_i + c_i/G_ii)`: unit i's
//! threshold grows with the activity of the units that inhibit it. Coordinate descent
//! with this update (in any sweep order) never raises the energy. The energy is not convex for S ≠ 0;
//! the solver returns the local minimum reached from the warm start (zero by default).

use super::coordinate::for_each_row_pair;
use crate::linalg::{axpy, gemm, Mat};
use crate::{Compact, Error, Result};

/// What an inference call did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InhibitionStats {
    /// Σ over the batch of the energy at the returned codes.
    pub energy: f64,
    /// Σ over the batch of ½‖x − Wz‖².
    pub reconstruction: f64,
    /// Mean non-zeros per example.
    pub mean_nnz: f64,
    /// Mean coordinate-descent sweeps per example.
    pub sweeps: f64,
}

/// Checks that `s` is a valid inhibition matrix for `n` units.
///
/// # Errors
/// If `s` is not n × n, not symmetric, has a negative or non-finite entry, or a non-zero
/// diagonal.
pub fn check_inhibition(s: &Mat, n: usize) -> Result<()> {
    if s.shape() != (n, n) {
        return Err(Error::param(
            "S",
            format!("is {:?}, expected {n}×{n}", s.shape()),
        ));
    }
    for i in 0..n {
        if s[(i, i)] != 0.0 {
            return Err(Error::param(
                "S",
                format!("diagonal entry {i} is {}", Compact(s[(i, i)])),
            ));
        }
        for j in 0..i {
            let v = s[(i, j)];
            if !(v >= 0.0 && v.is_finite()) || v != s[(j, i)] {
                return Err(Error::param(
                    "S",
                    format!(
                        "entry ({i}, {j}) = {} must be finite, ≥ 0 and equal ({j}, {i}) = {}",
                        Compact(v),
                        Compact(s[(j, i)])
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Coordinate-descent inference of `min_z E(x, z)` for every row of `x` (B × m) with
/// dictionary `w` (m × n, non-zero columns). `z` (B × n) is the warm start and receives
/// the codes. Stops after `max_sweeps` sweeps or when no coordinate moves by more than
/// `tol` (relative to the largest code).
///
/// # Errors
/// Invalid S, λ < 0, a zero dictionary column, or non-finite input.
pub fn inhibited_codes(
    w: &Mat,
    s: &Mat,
    x: &Mat,
    z: &mut Mat,
    lambda: f32,
    max_sweeps: usize,
    tol: f32,
) -> Result<InhibitionStats> {
    inhibited_codes_with(
        Method::CoordinateDescent,
        w,
        s,
        x,
        z,
        lambda,
        max_sweeps,
        tol,
    )
}

/// ISTA-style inference: every unit at once, `z ← shrink_{(λ + 2S|z|)/L}(z + Wᵀ(x − Wz)/L)`
/// with `L = λ_max(WᵀW)` and the thresholds taken from the current codes. The inhibition
/// term is not majorised by this step, so a step that would raise the energy is replaced by
/// one coordinate-descent sweep: the energy never increases. `sweeps` in the result counts
/// iterations. Same arguments and errors as [`inhibited_codes`].
pub fn inhibited_codes_ista(
    w: &Mat,
    s: &Mat,
    x: &Mat,
    z: &mut Mat,
    lambda: f32,
    max_iters: usize,
    tol: f32,
) -> Result<InhibitionStats> {
    inhibited_codes_with(Method::Ista, w, s, x, z, lambda, max_iters, tol)
}

#[derive(Clone, Copy)]
enum Method {
    CoordinateDescent,
    Ista,
}

#[allow(clippy::too_many_arguments)]
fn inhibited_codes_with(
    method: Method,
    w: &Mat,
    s: &Mat,
    x: &Mat,
    z: &mut Mat,
    lambda: f32,
    max_sweeps: usize,
    tol: f32,
) -> Result<InhibitionStats> {
    let (m, n) = w.shape();
    assert_eq!(
        x.ncols(),
        m,
        "x has {} columns, the dictionary {m} rows",
        x.ncols()
    );
    assert_eq!(
        z.shape(),
        (x.nrows(), n),
        "codes {:?} for {} inputs and {n} atoms",
        z.shape(),
        x.nrows()
    );
    check_inhibition(s, n)?;
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(Error::param(
            "lambda",
            format!("{} must be finite and ≥ 0", Compact(lambda)),
        ));
    }
    crate::check_finite("input x", x.as_slice())?;
    crate::check_finite("dictionary", w.as_slice())?;
    let mut g = Mat::zeros(n, n);
    gemm(1.0, w.t(), w.view(), 0.0, g.view_mut());
    super::dictionary::check_gram(&g)?;
    let mut b = Mat::zeros(x.nrows(), n);
    gemm(1.0, x.view(), w.view(), 0.0, b.view_mut());
    let mut c = Mat::zeros(x.nrows(), n);
    let xx: Vec<f64> = x
        .rows()
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum())
        .collect();
    let lipschitz = match method {
        Method::Ista => super::dictionary::largest_eigenvalue(&g),
        Method::CoordinateDescent => 0.0,
    };
    let sweeps = for_each_row_pair(z, &mut c, |i, zr, cr| match method {
        Method::CoordinateDescent => {
            coordinate_descent(&g, s, b.row(i), lambda, max_sweeps, tol, zr, cr) as f64
        }
        Method::Ista => ista(
            &g,
            s,
            b.row(i),
            xx[i],
            lambda,
            lipschitz,
            max_sweeps,
            tol,
            zr,
            cr,
        ) as f64,
    });
    let mut st = InhibitionStats {
        sweeps: sweeps / x.nrows().max(1) as f64,
        ..Default::default()
    };
    let mut t = vec![0.0f32; n];
    for i in 0..x.nrows() {
        let (zr, br, cr) = (z.row(i), b.row(i), c.row_mut(i));
        refresh(&g, s, br, zr, cr, &mut t);
        let (rec, total) = energy(xx[i], lambda, zr, br, cr, &t);
        st.reconstruction += rec;
        st.energy += total;
        st.mean_nnz += zr.iter().filter(|v| **v != 0.0).count() as f64;
    }
    st.mean_nnz /= x.nrows().max(1) as f64;
    Ok(st)
}

/// Coordinate descent for one example, sweeping the units in a fixed order per example
/// (decreasing initial match); returns the sweeps run.
#[allow(clippy::too_many_arguments)]
fn coordinate_descent(
    g: &Mat,
    s: &Mat,
    b: &[f32],
    lambda: f32,
    max_sweeps: usize,
    tol: f32,
    z: &mut [f32],
    c: &mut [f32],
) -> usize {
    let n = z.len();
    // c = b − G z, t = S|z|
    c.copy_from_slice(b);
    let mut t = vec![0.0f32; n];
    for j in 0..n {
        if z[j] != 0.0 {
            axpy(-z[j], g.row(j), c);
            axpy(z[j].abs(), s.row(j), &mut t);
        }
    }
    // Sweep order: decreasing input match |c_i|/√G_ii at the start, so the best-matching
    // unit takes effect first and inhibits its rivals (the index order, from zero codes,
    // lets the lowest indices switch on first and silence the rest).
    let mut order: Vec<usize> = (0..n).collect();
    let key = |i: usize| c[i].abs() / g[(i, i)].sqrt();
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    for sweep in 1..=max_sweeps {
        let mut max_change = 0.0f32;
        let mut max_code = 0.0f32;
        for &i in &order {
            let gii = g[(i, i)];
            let v = z[i] + c[i] / gii;
            let th = (lambda + 2.0 * t[i]) / gii;
            let new = v - v.max(-th).min(th);
            let d = new - z[i];
            if d != 0.0 {
                axpy(-d, g.row(i), c);
                axpy(new.abs() - z[i].abs(), s.row(i), &mut t);
                z[i] = new;
                max_change = max_change.max(d.abs());
            }
            max_code = max_code.max(z[i].abs());
        }
        if max_change <= tol * max_code.max(f32::MIN_POSITIVE) {
            return sweep;
        }
    }
    max_sweeps
}

/// `(½‖x − Wz‖², E(x, z))` of one example from Gram-form quantities: `c = b − Gz`,
/// `t = S|z|`, `xx = ‖x‖²`.
fn energy(xx: f64, lambda: f32, z: &[f32], b: &[f32], c: &[f32], t: &[f32]) -> (f64, f64) {
    let (mut zb, mut zc, mut l1, mut inhib) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for j in 0..z.len() {
        zb += z[j] as f64 * b[j] as f64;
        zc += z[j] as f64 * c[j] as f64;
        l1 += z[j].abs() as f64;
        inhib += z[j].abs() as f64 * t[j] as f64;
    }
    let rec = 0.5 * (xx - zb - zc).max(0.0);
    (rec, rec + lambda as f64 * l1 + inhib)
}

/// `c ← b − G z`, `t ← S|z|` over the non-zeros of z.
fn refresh(g: &Mat, s: &Mat, b: &[f32], z: &[f32], c: &mut [f32], t: &mut [f32]) {
    c.copy_from_slice(b);
    t.fill(0.0);
    for (j, &zj) in z.iter().enumerate() {
        if zj != 0.0 {
            axpy(-zj, g.row(j), c);
            axpy(zj.abs(), s.row(j), t);
        }
    }
}

/// ISTA-style iterations for one example with a coordinate-descent fallback; returns the
/// iterations run.
#[allow(clippy::too_many_arguments)]
fn ista(
    g: &Mat,
    s: &Mat,
    b: &[f32],
    xx: f64,
    lambda: f32,
    lipschitz: f32,
    max_iters: usize,
    tol: f32,
    z: &mut [f32],
    c: &mut [f32],
) -> usize {
    let n = z.len();
    let (mut t, mut trial, mut trial_c, mut trial_t) = (
        vec![0.0f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    refresh(g, s, b, z, c, &mut t);
    let mut e = energy(xx, lambda, z, b, c, &t).1;
    let inv_l = 1.0 / lipschitz.max(f32::MIN_POSITIVE);
    for it in 1..=max_iters {
        let mut max_change = 0.0f32;
        let mut max_code = 0.0f32;
        for j in 0..n {
            let v = z[j] + c[j] * inv_l;
            let th = (lambda + 2.0 * t[j]) * inv_l;
            trial[j] = v - v.max(-th).min(th);
            max_change = max_change.max((trial[j] - z[j]).abs());
            max_code = max_code.max(trial[j].abs());
        }
        refresh(g, s, b, &trial, &mut trial_c, &mut trial_t);
        let e_trial = energy(xx, lambda, &trial, b, &trial_c, &trial_t).1;
        if e_trial <= e {
            z.copy_from_slice(&trial);
            c.copy_from_slice(&trial_c);
            t.copy_from_slice(&trial_t);
            e = e_trial;
            if max_change <= tol * max_code.max(f32::MIN_POSITIVE) {
                return it;
            }
        } else {
            // The step raised the energy: take one (monotone) coordinate-descent sweep.
            coordinate_descent(g, s, b, lambda, 1, 0.0, z, c);
            refresh(g, s, b, z, c, &mut t);
            let e_cd = energy(xx, lambda, z, b, c, &t).1;
            let done = e - e_cd <= 1e-12 * e.abs().max(1.0);
            e = e_cd;
            if done {
                return it;
            }
        }
    }
    max_iters
}

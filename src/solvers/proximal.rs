//! Proximal gradient in Gram form, for a whole batch at once: ISTA and FISTA (with adaptive
//! restart), for the L1 penalty and for the group lasso.
//!
//! With `B = X D` computed once and `G = DᵀD` cached in the [`Dictionary`], every iteration
//! is one `B×n×n` GEMM (`C = B − Z G`, the negative gradient) plus one SIMD shrink.

use super::options::Penalty;
use super::{Dictionary, LassoOptions, LassoStats};
use crate::kernels::Groups;
use crate::linalg::{axpy, gemm, Mat};
use crate::Result;

/// Batch ISTA: `Z ← prox_{λ/L}(Z + (B − Z G)/L)`. `z` (B × n) is the warm start and
/// receives the codes; `x` is B × m.
///
/// # Errors
/// Invalid options or non-finite input.
pub fn ista(dict: &Dictionary, x: &Mat, z: &mut Mat, opts: &LassoOptions) -> Result<LassoStats> {
    let lambda = opts.lambdas(dict.n_atoms())?;
    let pen = Penalty::L1 {
        lambda: &lambda,
        non_negative: opts.non_negative,
    };
    run(dict, x, z, opts, &pen, false)
}

/// Batch FISTA (Beck & Teboulle 2009) with per-example gradient-based adaptive restart
/// (O'Donoghue & Candès 2015): when the momentum points uphill the example's `t` resets to 1.
pub fn fista(dict: &Dictionary, x: &Mat, z: &mut Mat, opts: &LassoOptions) -> Result<LassoStats> {
    let lambda = opts.lambdas(dict.n_atoms())?;
    let pen = Penalty::L1 {
        lambda: &lambda,
        non_negative: opts.non_negative,
    };
    run(dict, x, z, opts, &pen, true)
}

/// Batch FISTA for the group lasso `½‖x − Dz‖² + λ Σ_k ‖z_{P_k}‖` over disjoint unweighted
/// groups (prox: block soft-threshold).
///
/// # Errors
/// If the groups overlap, are weighted, or do not cover `n` units.
pub fn fista_group(
    dict: &Dictionary,
    x: &Mat,
    z: &mut Mat,
    groups: &Groups,
    lambda: f32,
    opts: &LassoOptions,
) -> Result<LassoStats> {
    opts.lambdas(dict.n_atoms())?;
    if groups.n_units() != dict.n_atoms() || !groups.is_disjoint_unweighted() {
        return Err(crate::Error::param(
            "groups",
            "the group-lasso prox needs disjoint unweighted groups over all atoms",
        ));
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(crate::Error::param(
            "lambda",
            format!("{} must be finite and ≥ 0", crate::Compact(lambda)),
        ));
    }
    run(dict, x, z, opts, &Penalty::Group { groups, lambda }, true)
}

/// Shared setup: checks shapes and data, computes `B = X D` and `‖x‖²` per row.
pub(crate) fn prepare(dict: &Dictionary, x: &Mat, z: &Mat) -> Result<(Mat, Vec<f64>)> {
    assert_eq!(
        x.ncols(),
        dict.input_dim(),
        "x has {} columns, dictionary input dim {}",
        x.ncols(),
        dict.input_dim()
    );
    assert_eq!(
        z.shape(),
        (x.nrows(), dict.n_atoms()),
        "codes {:?} for {} inputs and {} atoms",
        z.shape(),
        x.nrows(),
        dict.n_atoms()
    );
    crate::check_finite("input x", x.as_slice())?;
    crate::check_finite("warm-start codes", z.as_slice())?;
    let mut b = Mat::zeros(x.nrows(), dict.n_atoms());
    gemm(1.0, x.view(), dict.atoms().view(), 0.0, b.view_mut());
    let xx = x
        .rows()
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum())
        .collect();
    Ok((b, xx))
}

pub(crate) fn finish_stats(
    pen: &Penalty<'_>,
    xx: &[f64],
    z: &Mat,
    b: &Mat,
    c: &Mat,
    iterations: f64,
) -> LassoStats {
    let mut st = LassoStats {
        iterations,
        ..Default::default()
    };
    for i in 0..z.nrows() {
        let (p, g) = pen.objective_and_gap(xx[i], z.row(i), b.row(i), c.row(i));
        st.objective += p;
        st.duality_gap += g;
        st.mean_nnz += z.row(i).iter().filter(|v| **v != 0.0).count() as f64;
    }
    st.mean_nnz /= z.nrows().max(1) as f64;
    st
}

/// `C ← B − Z G`.
fn neg_gradient(b: &Mat, z: &Mat, g: &Mat, c: &mut Mat) {
    c.copy_from(b);
    gemm(-1.0, z.view(), g.view(), 1.0, c.view_mut());
}

fn run(
    dict: &Dictionary,
    x: &Mat,
    z: &mut Mat,
    opts: &LassoOptions,
    pen: &Penalty<'_>,
    accelerate: bool,
) -> Result<LassoStats> {
    let (b, xx) = prepare(dict, x, z)?;
    let (rows, n) = z.shape();
    let step = 1.0 / dict.lipschitz();
    let scaled: Vec<f32> = match pen {
        Penalty::L1 { lambda, .. } => lambda.iter().map(|l| l * step).collect(),
        Penalty::Group { .. } => Vec::new(),
    };
    let g = dict.gram();
    let mut c = Mat::zeros(rows, n);
    let mut y = z.clone();
    let mut z_prev = z.clone();
    let mut t = vec![1.0f64; rows];
    let check_every = if accelerate { 10 } else { 1 };
    let mut iters = 0;
    while iters < opts.max_iters {
        // C = B − Y G: the negative gradient at the extrapolated point (Y = Z for ISTA).
        neg_gradient(&b, if accelerate { &y } else { z }, g, &mut c);
        if !accelerate && opts.tol > 0.0 && converged(pen, &xx, z, &b, &c, opts.tol) {
            break;
        }
        iters += 1;
        if accelerate {
            std::mem::swap(&mut z_prev, z);
        }
        if accelerate {
            z.copy_from(&y);
        }
        for i in 0..rows {
            let out = z.row_mut(i);
            axpy(step, c.row(i), out);
            pen.prox_row(out, step, &scaled);
        }
        if accelerate {
            for i in 0..rows {
                let (zr, zp, yr) = (z.row(i), z_prev.row(i), y.row_mut(i));
                // Restart when the step and the momentum disagree: (y − z⁺)·(z⁺ − z) > 0.
                let uphill: f32 = yr
                    .iter()
                    .zip(zr)
                    .zip(zp)
                    .map(|((yv, zv), pv)| (yv - zv) * (zv - pv))
                    .sum();
                if uphill > 0.0 {
                    t[i] = 1.0;
                }
                let t_next = (1.0 + (1.0 + 4.0 * t[i] * t[i]).sqrt()) / 2.0;
                let beta = ((t[i] - 1.0) / t_next) as f32;
                t[i] = t_next;
                for ((yv, zv), pv) in yr.iter_mut().zip(zr).zip(zp) {
                    *yv = zv + beta * (zv - pv);
                }
            }
            if opts.tol > 0.0 && iters % check_every == 0 {
                neg_gradient(&b, z, g, &mut c);
                if converged(pen, &xx, z, &b, &c, opts.tol) {
                    break;
                }
            }
        }
    }
    neg_gradient(&b, z, g, &mut c);
    Ok(finish_stats(pen, &xx, z, &b, &c, iters as f64))
}

fn converged(pen: &Penalty<'_>, xx: &[f64], z: &Mat, b: &Mat, c: &Mat, tol: f64) -> bool {
    let (mut p, mut gap) = (0.0, 0.0);
    for i in 0..z.nrows() {
        let (pi, gi) = pen.objective_and_gap(xx[i], z.row(i), b.row(i), c.row(i));
        p += pi;
        gap += gi;
    }
    gap <= tol * p
}

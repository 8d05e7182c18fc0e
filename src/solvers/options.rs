//! Options and statistics shared by the lasso solvers.

use crate::{Compact, Error, Result};

/// Options of a lasso solve `min_z ½‖x − Dz‖² + Σ_j λ_j |z_j|` (optionally `z ≥ 0`).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `lambda` | 0.1 | uniform λ | finite, ≥ 0 |
/// | `per_unit_lambda` | none | λ_j per atom (overrides `lambda`) | finite, ≥ 0, length n |
/// | `non_negative` | false | constrain z ≥ 0 | |
/// | `max_iters` | 1000 | iterations (ISTA/FISTA), sweeps (exact) or coordinate steps / n (CoD) | ≥ 1 |
/// | `tol` | 1e-6 | stop when the duality gap ≤ tol × primal objective (0: run all iterations) | ≥ 0 |
#[derive(Clone, Debug)]
pub struct LassoOptions {
    /// Uniform λ.
    pub lambda: f32,
    /// Per-atom λ_j; overrides `lambda` when set.
    pub per_unit_lambda: Option<Vec<f32>>,
    /// Constrain codes to be non-negative.
    pub non_negative: bool,
    /// Iteration budget.
    pub max_iters: usize,
    /// Relative duality-gap tolerance.
    pub tol: f64,
}

impl Default for LassoOptions {
    fn default() -> Self {
        LassoOptions {
            lambda: 0.1,
            per_unit_lambda: None,
            non_negative: false,
            max_iters: 1000,
            tol: 1e-6,
        }
    }
}

impl LassoOptions {
    /// Options with uniform λ.
    pub fn new(lambda: f32) -> Self {
        LassoOptions {
            lambda,
            ..Default::default()
        }
    }
    /// Sets per-atom λ.
    pub fn per_unit_lambda(mut self, lambda: Vec<f32>) -> Self {
        self.per_unit_lambda = Some(lambda);
        self
    }
    /// Sets the non-negativity constraint.
    pub fn non_negative(mut self, yes: bool) -> Self {
        self.non_negative = yes;
        self
    }
    /// Sets the iteration budget.
    pub fn max_iters(mut self, iters: usize) -> Self {
        self.max_iters = iters;
        self
    }
    /// Sets the relative duality-gap tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Validates the options for `n` atoms and returns λ per atom.
    pub(crate) fn lambdas(&self, n: usize) -> Result<Vec<f32>> {
        let lam = match &self.per_unit_lambda {
            Some(l) if l.len() != n => {
                return Err(Error::param(
                    "per_unit_lambda",
                    format!("{} values for {n} atoms", l.len()),
                ))
            }
            Some(l) => l.clone(),
            None => vec![self.lambda; n],
        };
        if let Some(v) = lam.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::param(
                "lambda",
                format!("{} must be finite and ≥ 0", Compact(*v)),
            ));
        }
        if self.max_iters == 0 {
            return Err(Error::param("max_iters", "must be ≥ 1"));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(Error::param(
                "tol",
                format!("{} must be finite and ≥ 0", Compact(self.tol)),
            ));
        }
        Ok(lam)
    }
}

/// What a solve did, for the whole batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LassoStats {
    /// Iterations run (ISTA/FISTA: batch iterations; CoD: mean coordinate steps per
    /// example divided by n; exact: mean sweeps per example).
    pub iterations: f64,
    /// Σ over the batch of the primal objective F(z).
    pub objective: f64,
    /// Σ over the batch of the duality gap (≥ 0; 0 at the optimum).
    pub duality_gap: f64,
    /// Mean number of non-zero codes per example.
    pub mean_nnz: f64,
}

/// A separable penalty with a closed-form prox: `Σ λ_j|z_j|` (optionally with z ≥ 0) or the
/// group lasso `λ Σ_k ‖z_{P_k}‖` over disjoint unweighted groups.
pub(crate) enum Penalty<'a> {
    L1 {
        lambda: &'a [f32],
        non_negative: bool,
    },
    Group {
        groups: &'a crate::kernels::Groups,
        lambda: f32,
    },
}

impl Penalty<'_> {
    /// `v ← prox_{step·penalty}(v)` on one row.
    pub(crate) fn prox_row(&self, v: &mut [f32], step: f32, scaled: &[f32]) {
        use crate::kernels::{shrink_in_place, Shrink, Theta};
        match self {
            Penalty::L1 { non_negative, .. } => {
                let kind = if *non_negative {
                    Shrink::NonNegative
                } else {
                    Shrink::Signed
                };
                shrink_in_place(kind, Theta::PerUnit(scaled), v)
            }
            Penalty::Group { groups, lambda } => groups.prox_in_place(step * lambda, v),
        }
    }

    /// The penalty's value at z.
    pub(crate) fn value(&self, z: &[f32]) -> f64 {
        match self {
            Penalty::L1 { lambda, .. } => z
                .iter()
                .zip(lambda.iter())
                .map(|(z, l)| (*l as f64) * (z.abs() as f64))
                .sum(),
            Penalty::Group { groups, lambda } => {
                (0..groups.len())
                    .map(|k| {
                        groups
                            .group(k)
                            .0
                            .iter()
                            .map(|&j| (z[j as usize] as f64).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .sum::<f64>()
                    * *lambda as f64
            }
        }
    }

    /// The largest `s ≤ 1` such that `s·c` is dual feasible (`|c_j| ≤ λ_j`, or `c_j ≤ λ_j`
    /// when z ≥ 0; `‖c_P‖ ≤ λ` for groups).
    pub(crate) fn dual_scale(&self, c: &[f32]) -> f64 {
        let mut s = 1.0f64;
        match self {
            Penalty::L1 {
                lambda,
                non_negative,
            } => {
                for (cj, lj) in c.iter().zip(lambda.iter()) {
                    let cabs = if *non_negative {
                        *cj as f64
                    } else {
                        cj.abs() as f64
                    };
                    if cabs > *lj as f64 {
                        s = s.min(*lj as f64 / cabs);
                    }
                }
            }
            Penalty::Group { groups, lambda } => {
                for k in 0..groups.len() {
                    let nk = groups
                        .group(k)
                        .0
                        .iter()
                        .map(|&j| (c[j as usize] as f64).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    if nk > *lambda as f64 {
                        s = s.min(*lambda as f64 / nk);
                    }
                }
            }
        }
        s
    }

    /// Per-example primal objective and duality gap from Gram-form quantities, in f64:
    /// `b = Dᵀx`, `c = Dᵀ(x − Dz) = b − Gz`, `xx = ‖x‖²`.
    ///
    /// `‖x − Dz‖² = xx − z·b − z·c`; the dual point `ν = s·r` with `s` from
    /// [`Penalty::dual_scale`] is feasible, and `gap = F(z) − (ν·x − ½‖ν‖²)`.
    pub(crate) fn objective_and_gap(&self, xx: f64, z: &[f32], b: &[f32], c: &[f32]) -> (f64, f64) {
        let (mut zb, mut zc) = (0.0f64, 0.0f64);
        for j in 0..z.len() {
            zb += z[j] as f64 * b[j] as f64;
            zc += z[j] as f64 * c[j] as f64;
        }
        let rr = (xx - zb - zc).max(0.0);
        let primal = 0.5 * rr + self.value(z);
        let s = self.dual_scale(c);
        let dual = s * (xx - zb) - 0.5 * s * s * rr;
        (primal, (primal - dual).max(0.0))
    }
}

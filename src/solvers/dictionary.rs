//! A dictionary `D` (m × n, one atom per column) with what every solver reuses: the Gram
//! matrix `G = DᵀD` and the Lipschitz constant `L = λ_max(G)` of the smooth part's gradient.

use crate::linalg::{dot, gemm, norm, Mat};
use crate::{Error, Result};

/// A validated dictionary with its cached Gram matrix and Lipschitz constant.
#[derive(Clone, Debug)]
pub struct Dictionary {
    d: Mat,
    gram: Mat,
    lipschitz: f32,
}

impl Dictionary {
    /// Wraps `d` (m × n, atoms in columns), computing `G = DᵀD` and `L` by power iteration.
    ///
    /// # Errors
    /// If `d` is empty, holds a NaN or infinity, or has an all-zero column.
    pub fn new(d: Mat) -> Result<Dictionary> {
        if d.nrows() == 0 || d.ncols() == 0 {
            return Err(Error::param(
                "dictionary",
                format!("empty ({}×{})", d.nrows(), d.ncols()),
            ));
        }
        crate::check_finite("dictionary", d.as_slice())?;
        let mut gram = Mat::zeros(d.ncols(), d.ncols());
        gemm(1.0, d.t(), d.view(), 0.0, gram.view_mut());
        check_gram(&gram)?;
        let lipschitz = largest_eigenvalue(&gram);
        Ok(Dictionary { d, gram, lipschitz })
    }

    /// A dictionary from `n` rows of `atoms` (each row one atom of length m), each scaled to
    /// unit L2 norm: the convention of the `lasso` example (first K training images).
    pub fn from_unit_rows(atoms: &Mat) -> Result<Dictionary> {
        let mut d = atoms.transposed();
        for j in 0..d.ncols() {
            let col: Vec<f32> = (0..d.nrows()).map(|i| d[(i, j)]).collect();
            let nrm = norm(&col);
            if nrm > 0.0 {
                for i in 0..d.nrows() {
                    d[(i, j)] /= nrm;
                }
            }
        }
        Dictionary::new(d)
    }

    /// The atoms, m × n.
    pub fn atoms(&self) -> &Mat {
        &self.d
    }
    /// `G = DᵀD`, n × n.
    pub fn gram(&self) -> &Mat {
        &self.gram
    }
    /// `L = λ_max(DᵀD)` (power iteration, rounded up by 1e-4 relative).
    pub fn lipschitz(&self) -> f32 {
        self.lipschitz
    }
    /// Input dimension m.
    pub fn input_dim(&self) -> usize {
        self.d.nrows()
    }
    /// Number of atoms n.
    pub fn n_atoms(&self) -> usize {
        self.d.ncols()
    }
}

/// Rejects a Gram matrix with a non-finite entry (the atoms overflow f32 products) or a
/// column whose squared norm is zero or subnormal (thresholds `λ/‖d_j‖²` would overflow).
pub(crate) fn check_gram(gram: &Mat) -> Result<()> {
    if let Some(i) = gram.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(Error::param(
            "dictionary",
            format!(
                "atoms {} and {} have a non-finite inner product (values too large)",
                i / gram.ncols(),
                i % gram.ncols()
            ),
        ));
    }
    match (0..gram.ncols()).find(|&j| !(gram[(j, j)] >= f32::MIN_POSITIVE)) {
        Some(j) => Err(Error::param(
            "dictionary",
            format!(
                "column {j} is zero or too small (squared norm {:e})",
                gram[(j, j)]
            ),
        )),
        None => Ok(()),
    }
}

/// Largest eigenvalue of a symmetric positive semi-definite matrix, rounded up slightly so
/// that `1/L` is a safe ISTA step.
///
/// Up to 128 rows it is computed exactly (Jacobi, f64). Beyond, by power iteration from two
/// deterministic sign-mixed starting vectors (the larger estimate wins, so a start that is
/// nearly orthogonal to the top eigenvector cannot make it converge to a smaller one),
/// capped by the Gershgorin bound `max_i Σ_j |G_ij|`, which is never below λ_max.
pub fn largest_eigenvalue(g: &Mat) -> f32 {
    let n = g.nrows();
    if n == 0 {
        return 0.0;
    }
    if n <= 128 {
        let a: Vec<f64> = g.as_slice().iter().map(|&v| v as f64).collect();
        let (values, _) = crate::linalg::symmetric_eigen(&a, n);
        let top = values.into_iter().fold(0.0f64, f64::max);
        return (top * (1.0 + 1e-5)) as f32;
    }
    let gershgorin = g
        .rows()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f32>())
        .fold(0.0f32, f32::max);
    let estimate = (0..2u64)
        .map(|seed| power_iteration(g, seed))
        .fold(0.0f32, f32::max);
    (estimate * (1.0 + 1e-4)).min(gershgorin)
}

fn power_iteration(g: &Mat, seed: u64) -> f32 {
    let n = g.nrows();
    // A deterministic start with mixed signs and weight on every direction.
    let mut v: Vec<f32> = (0..n)
        .map(|i| {
            let h = (i as u64 + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let u = (h >> 40) as f32 / (1u64 << 24) as f32; // in [0, 1)
            if (h >> 20) & 1 == 0 {
                0.5 + u
            } else {
                -0.5 - u
            }
        })
        .collect();
    let nv = norm(&v);
    v.iter_mut().for_each(|x| *x /= nv);
    let mut w = vec![0.0; n];
    let mut lambda = 0.0f32;
    for _ in 0..2000 {
        for (i, wi) in w.iter_mut().enumerate() {
            *wi = dot(g.row(i), &v);
        }
        let rq = dot(&v, &w);
        let nw = norm(&w);
        if nw == 0.0 {
            return 0.0;
        }
        v.iter_mut().zip(&w).for_each(|(a, b)| *a = b / nw);
        let done = (rq - lambda).abs() <= 1e-7 * rq.abs();
        lambda = rq;
        if done {
            break;
        }
    }
    lambda
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_eigenvalue_when_the_top_vector_alternates_in_sign() {
        // Its top eigenvector [1, −1] is orthogonal to a uniform start (the fuzzer's find).
        let g = Mat::from_vec(2, 2, vec![1.0, -1.0, -1.0, 1.0]);
        assert!((largest_eigenvalue(&g) - 2.0).abs() < 1e-3);
        // The power-iteration path: I + 5 u uᵀ with u alternating ±1/√n has λ_max = 6.
        let n = 200;
        let u: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } / (n as f32).sqrt())
            .collect();
        let g = Mat::from_fn(n, n, |i, j| (i == j) as u8 as f32 + 5.0 * u[i] * u[j]);
        let l = largest_eigenvalue(&g);
        assert!((6.0..6.01).contains(&l), "{l}");
    }
}

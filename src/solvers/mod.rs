//! Sparse inference for the lasso `F(z) = ½‖x − Dz‖² + Σ_j λ_j|z_j|` (optionally z ≥ 0),
//! many inputs at once, in Gram form (`G = DᵀD` cached in the [`Dictionary`]).
//!
//! | solver | what | cost per iteration (batch of B) |
//! |---|---|---|
//! | [`ista`] | proximal gradient, step 1/L | one B×n×n GEMM + shrink |
//! | [`fista`] | accelerated, adaptive restart | same |
//! | [`cod`] | greedy coordinate descent (Gregor & LeCun) | O(n) per coordinate step |
//! | [`exact`] | cyclic CD + active-set Newton step: exact optimum | O(n) per changed coordinate |
//! | [`fista_group`] | FISTA for the group lasso (block soft-threshold) | as FISTA |
//! | [`inhibited_codes`] | CD for the lateral-inhibition energy `+ |z|ᵀS|z|` | O(n) per changed coordinate |
//! | [`inhibited_codes_ista`] | ISTA-style for the same energy, CD fallback | O(n·nnz) per iteration |
//!
//! Every solver takes the codes as a warm start, stops on `max_iters` or on a relative
//! duality-gap tolerance, and returns [`LassoStats`].
//!
//! # Examples
//! ```
//! use drsae::linalg::Mat;
//! use drsae::solvers::{exact, Dictionary, LassoOptions};
//! let d = Dictionary::new(Mat::identity(3)).unwrap();
//! let x = Mat::from_vec(1, 3, vec![2.0, -0.5, 0.1]);
//! let mut z = Mat::zeros(1, 3);
//! let stats = exact(&d, &x, &mut z, &LassoOptions::new(1.0)).unwrap();
//! assert_eq!(z.as_slice(), &[1.0, 0.0, 0.0]); // soft-threshold for an orthonormal D
//! assert!(stats.duality_gap < 1e-9);
//! ```

mod coordinate;
mod dictionary;
mod inhibition;
mod options;
mod proximal;

pub use coordinate::{cod, exact};
pub use dictionary::{largest_eigenvalue, Dictionary};
pub use inhibition::{check_inhibition, inhibited_codes, inhibited_codes_ista, InhibitionStats};
pub use options::{LassoOptions, LassoStats};
pub use proximal::{fista, fista_group, ista};

use crate::linalg::Mat;
use crate::Result;

/// A lasso solver, chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// [`ista`]
    Ista,
    /// [`fista`]
    Fista,
    /// [`cod`]
    Cod,
    /// [`exact`]
    Exact,
}

impl std::str::FromStr for Solver {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ista" => Ok(Solver::Ista),
            "fista" => Ok(Solver::Fista),
            "cod" => Ok(Solver::Cod),
            "exact" => Ok(Solver::Exact),
            _ => Err(crate::Error::param(
                "solver",
                format!("`{s}` is not one of ista, fista, cod, exact"),
            )),
        }
    }
}

impl Solver {
    /// Runs this solver.
    pub fn solve(
        self,
        dict: &Dictionary,
        x: &Mat,
        z: &mut Mat,
        opts: &LassoOptions,
    ) -> Result<LassoStats> {
        match self {
            Solver::Ista => ista(dict, x, z, opts),
            Solver::Fista => fista(dict, x, z, opts),
            Solver::Cod => cod(dict, x, z, opts),
            Solver::Exact => exact(dict, x, z, opts),
        }
    }
}

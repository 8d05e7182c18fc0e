//! The lasso estimator: [`Lasso::params`] → [`LassoParams`] → `fit(dictionary)` → [`Lasso`],
//! which solves `min_z ½‖x − Dz‖² + λ‖z‖₁` for any number of inputs.

use super::ParamGuard;
use crate::data::{AsRows, Preprocessor};
use crate::linalg::{gemm, Mat};
use crate::solvers::{Dictionary, LassoOptions, LassoStats, Solver};
use crate::Result;

/// Validated lasso parameters (see [`LassoParams`]).
#[derive(Clone, Debug)]
pub struct LassoValidParams {
    options: LassoOptions,
    solver: Solver,
    unit_atoms: bool,
    preprocessing: Preprocessor,
}

/// Lasso parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `lambda` | 0.1 | L1 weight λ | ≥ 0, finite |
/// | `solver` | [`Solver::Exact`] | ISTA, FISTA, greedy coordinate descent, or the exact active-set solver | |
/// | `non_negative` | false | constrain z ≥ 0 | |
/// | `max_iters` | 1000 | iterations (ISTA/FISTA), sweeps (exact), coordinate steps / n (CoD) | ≥ 1 |
/// | `tol` | 1e-6 | stop when the duality gap ≤ tol × objective (0: run every iteration) | ≥ 0 |
/// | `unit_atoms` | false | scale every atom to unit L2 norm when fitting | |
/// | `preprocessing` | [`Preprocessor::Identity`] | per-row transform of every input | |
///
/// `fit` takes the dictionary as an `atoms × m` matrix, one atom per row.
#[derive(Clone, Debug)]
pub struct LassoParams(LassoValidParams);

impl Default for LassoParams {
    fn default() -> Self {
        LassoParams(LassoValidParams {
            options: LassoOptions::default().max_iters(1000),
            solver: Solver::Exact,
            unit_atoms: false,
            preprocessing: Preprocessor::Identity,
        })
    }
}

impl LassoParams {
    /// L1 weight λ.
    pub fn lambda(mut self, lambda: f32) -> Self {
        self.0.options.lambda = lambda;
        self
    }
    /// The solver.
    pub fn solver(mut self, solver: Solver) -> Self {
        self.0.solver = solver;
        self
    }
    /// Constrain the codes to be non-negative.
    pub fn non_negative(mut self, yes: bool) -> Self {
        self.0.options.non_negative = yes;
        self
    }
    /// Iteration budget.
    pub fn max_iters(mut self, iters: usize) -> Self {
        self.0.options.max_iters = iters;
        self
    }
    /// Relative duality-gap tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.0.options.tol = tol;
        self
    }
    /// Scale every atom to unit L2 norm when fitting.
    pub fn unit_atoms(mut self, yes: bool) -> Self {
        self.0.unit_atoms = yes;
        self
    }
    /// Per-row transform of every input.
    pub fn preprocessing(mut self, p: Preprocessor) -> Self {
        self.0.preprocessing = p;
        self
    }
    /// Checks the parameters, then caches the dictionary (see [`LassoValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`LassoValidParams::fit`].
    pub fn fit(&self, atoms: &Mat) -> Result<Lasso> {
        self.check_ref()?.fit(atoms)
    }
}

impl ParamGuard for LassoParams {
    type Checked = LassoValidParams;
    fn check_ref(&self) -> Result<&LassoValidParams> {
        // λ, max_iters and tol are checked for any number of atoms.
        self.0.options.lambdas(1)?;
        self.0.preprocessing.check()?;
        Ok(&self.0)
    }
    fn check(self) -> Result<LassoValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl LassoValidParams {
    /// The solver's options (λ, iterations, tolerance, sign constraint).
    pub fn options(&self) -> &LassoOptions {
        &self.options
    }

    /// The solver.
    pub fn solver(&self) -> Solver {
        self.solver
    }

    /// Caches the dictionary given as one atom per row (`atoms × m`): its Gram matrix and
    /// Lipschitz constant.
    ///
    /// # Errors
    /// An empty dictionary, non-finite values, or an all-zero atom.
    pub fn fit(&self, atoms: &Mat) -> Result<Lasso> {
        let dictionary = if self.unit_atoms {
            Dictionary::from_unit_rows(atoms)?
        } else {
            Dictionary::new(atoms.transposed())?
        };
        Ok(Lasso {
            dictionary,
            params: self.clone(),
        })
    }
}

/// A cached dictionary and solver settings: [`Lasso::encode`] solves the lasso for every
/// input row.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// # fn main() -> drsae::Result<()> {
/// let atoms = Mat::identity(3); // three atoms of length 3, one per row
/// let lasso = Lasso::params().lambda(1.0).fit(&atoms)?;
/// let codes = lasso.encode(&[2.0f32, -0.5, 0.1])?; // one input
/// assert_eq!(codes.as_slice(), &[1.0, 0.0, 0.0]); // soft-threshold for an orthonormal D
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Lasso {
    dictionary: Dictionary,
    params: LassoValidParams,
}

impl Lasso {
    /// Default parameters (see [`LassoParams`]).
    pub fn params() -> LassoParams {
        LassoParams::default()
    }

    /// The cached dictionary (atoms in columns, Gram matrix, Lipschitz constant).
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// Input length m.
    pub fn input_dim(&self) -> usize {
        self.dictionary.input_dim()
    }

    /// Number of atoms n.
    pub fn n_atoms(&self) -> usize {
        self.dictionary.n_atoms()
    }

    /// The L1 weight λ.
    pub fn lambda(&self) -> f32 {
        self.params.options.lambda
    }

    /// The per-row transform applied to every input.
    pub fn preprocessing(&self) -> Preprocessor {
        self.params.preprocessing
    }

    /// The codes of every input row (rows × n) and what the solve did.
    ///
    /// # Errors
    /// Rows of the wrong length, non-finite values.
    pub fn solve(&self, x: impl AsRows) -> Result<(Mat, LassoStats)> {
        let mut x = x.to_rows(self.input_dim())?;
        self.params.preprocessing.apply(&mut x);
        self.solve_prepared(&x)
    }

    /// [`Lasso::solve`] on rows already preprocessed.
    pub(crate) fn solve_prepared(&self, x: &Mat) -> Result<(Mat, LassoStats)> {
        let mut z = Mat::zeros(x.nrows(), self.n_atoms());
        if x.nrows() == 0 {
            return Ok((z, LassoStats::default()));
        }
        let stats = self
            .params
            .solver
            .solve(&self.dictionary, x, &mut z, &self.params.options)?;
        Ok((z, stats))
    }

    /// [`Lasso::solve_prepared`]'s codes with another solver, iteration budget and
    /// tolerance (the same dictionary, λ and sign constraint).
    pub(crate) fn solve_prepared_with(
        &self,
        x: &Mat,
        solver: Solver,
        max_iters: usize,
        tol: f64,
    ) -> Result<Mat> {
        let mut z = Mat::zeros(x.nrows(), self.n_atoms());
        if x.nrows() > 0 {
            let options = self.params.options.clone().max_iters(max_iters).tol(tol);
            solver.solve(&self.dictionary, x, &mut z, &options)?;
        }
        Ok(z)
    }

    /// The codes of every input row (rows × n).
    ///
    /// # Errors
    /// As [`Lasso::solve`].
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        Ok(self.solve(x)?.0)
    }

    /// The reconstructions `D z` of every input row (rows × m), in the preprocessed space.
    ///
    /// # Errors
    /// As [`Lasso::solve`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let z = self.encode(x)?;
        let mut out = Mat::zeros(z.nrows(), self.input_dim());
        gemm(
            1.0,
            z.view(),
            self.dictionary.atoms().t(),
            0.0,
            out.view_mut(),
        );
        Ok(out)
    }
}

//! Sparse inference solvers for the lasso.

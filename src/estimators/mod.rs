//! The front door: one estimator per model family, in linfa's pattern.
//!
//! `Family::params()` gives unchecked parameters with consuming setters; `check()` (or any
//! `fit`, which calls it) validates them into `ValidParams`, naming the first invalid
//! field in [`Error::InvalidParameter`](crate::Error::InvalidParameter); `fit` returns the
//! fitted model, which owns the preprocessing it was trained with and applies it to every
//! input of `encode`, `predict`, ... — one row or many, from any [`AsRows`](crate::data::AsRows).
//!
//! | family | parameters | fitted model | fitted on |
//! |---|---|---|---|
//! | lasso (ISTA, FISTA, CoD, exact) | [`LassoParams`] | [`Lasso`] | a dictionary |
//! | DrSAE | [`DrsaeParams`] | [`Drsae`] | labelled images |

mod common;
mod drsae;
#[cfg(feature = "safetensors")]
pub(crate) mod file;
mod group_sparse;
mod lasso;
mod lista;

pub use drsae::{
    Drsae, DrsaeParams, DrsaeValidParams, FitReport, Validation, CATEGORICAL_UNIT_MIN_ANGLE,
    PART_UNIT_MAX_ANGLE,
};
pub use group_sparse::{
    Convolutional, ConvolutionalParams, ConvolutionalValidParams, GroupFitReport, GroupLayout,
    GroupSparse, GroupSparseParams, GroupSparseValidParams, LocallyConnected,
    LocallyConnectedParams, LocallyConnectedValidParams,
};
pub use lasso::{Lasso, LassoParams, LassoValidParams};
pub use lista::{ListaEncoder, ListaParams, ListaValidParams};

use crate::Result;

/// Unchecked parameters that [`check`](ParamGuard::check) turns into validated ones
/// (linfa's `ParamGuard`).
pub trait ParamGuard {
    /// The validated parameters.
    type Checked;
    /// Validates a reference to the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) naming the first invalid
    /// field.
    fn check_ref(&self) -> Result<&Self::Checked>;
    /// Validates the parameters, consuming them.
    ///
    /// # Errors
    /// As [`ParamGuard::check_ref`].
    fn check(self) -> Result<Self::Checked>;
}

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
//! | LISTA | [`ListaParams`] | [`ListaEncoder`] | a fitted [`Lasso`] and inputs |
//! | DrSAE | [`DrsaeParams`] | [`Drsae`] | labelled images |
//! | group-sparse / topographic (dense) | [`GroupSparseParams`] | [`GroupSparse`] | inputs |
//! | locally connected | [`LocallyConnectedParams`] | [`LocallyConnected`] | square images |
//! | convolutional | [`ConvolutionalParams`] | [`Convolutional`] | channels-last images |
//! | lateral inhibition | [`InhibitionParams`] | [`Inhibition`] | inputs |
//! | sparse auto-encoders (ReLU, TopK, BatchTopK, JumpReLU, Matryoshka) | [`SaeParams`] | [`Sae`] | activation vectors (a matrix or an [`ActivationSource`](crate::data::ActivationSource)) |
//!
//! Every fitted model offers `encode` and `reconstruct` (DrSAE also `predict`,
//! `predict_proba` and `score`), and with the `safetensors` feature `save` / `load` /
//! `to_bytes` / `from_bytes`. DrSAE files keep their own layout ([`crate::io`]); the others
//! share one: metadata `format` (the family: `lista`, `group_sparse`, `locally_connected`,
//! `convolutional`, `inhibition`), `format_version`, `crate_version`, `preprocessing` and
//! the family's settings; the family's tensors, plus `zca.mean` / `zca.W` when the inputs
//! are whitened (see [`Preprocessing`](crate::data::Preprocessing)). Sparse auto-encoders
//! are written in SAELens's (and for TopK sparsify's) directory format instead, which the
//! interpretability tools read ([`crate::io::save_saelens`]).

pub(crate) mod common;
mod drsae;
#[cfg(feature = "safetensors")]
pub(crate) mod file;
mod group_sparse;
mod inhibition;
mod lasso;
mod lista;
mod sae;

pub use drsae::{
    Drsae, DrsaeParams, DrsaeValidParams, FitReport, Validation, CATEGORICAL_UNIT_MIN_ANGLE,
    PART_UNIT_MAX_ANGLE,
};
pub use group_sparse::{
    Convolutional, ConvolutionalParams, ConvolutionalValidParams, GroupFitReport, GroupLayout,
    GroupSparse, GroupSparseParams, GroupSparseValidParams, LocallyConnected,
    LocallyConnectedParams, LocallyConnectedValidParams, StartStage,
};
pub use inhibition::{
    Inhibition, InhibitionParams, InhibitionStructure, InhibitionValidParams, RadiusSchedule,
};
pub use lasso::{Lasso, LassoParams, LassoValidParams};
pub use lista::{code_error, ListaComparison, ListaEncoder, ListaParams, ListaValidParams};
pub use sae::{Sae, SaeParams, SaeValidParams};

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

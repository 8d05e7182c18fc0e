//! What a user of the estimators imports: `use drsae::prelude::*;`.
//!
//! The estimators ([`Lasso`], [`ListaEncoder`], [`Drsae`], [`GroupSparse`],
//! [`LocallyConnected`], [`Convolutional`], [`Inhibition`]) with their parameters, the [`ParamGuard`] trait
//! that checks them, the data they read ([`Mnist`], [`LabelledImages`], [`AsRows`],
//! [`Preprocessor`]), the matrix types, the training options, and the crate's [`Error`] (its `Result` alias stays `drsae::Result`, so that a glob import does not shadow `std`'s).

pub use crate::data::{AsRows, LabelledImages, Mnist, Preprocessing, Preprocessor};
pub use crate::estimators::{
    Convolutional, ConvolutionalParams, Drsae, DrsaeParams, FitReport, GroupFitReport, GroupLayout,
    GroupSparse, GroupSparseParams, Inhibition, InhibitionParams, InhibitionStructure, Lasso,
    LassoParams, ListaEncoder, ListaParams, LocallyConnected, LocallyConnectedParams, ParamGuard,
    RadiusSchedule, Sae, SaeParams, Validation,
};
pub use crate::linalg::{Mat, MatRef};
pub use crate::models::{EncoderForm, LossWeights, SaeKind};
pub use crate::solvers::Solver;
pub use crate::train::{EpochReport, InhibitionInference, Optimizer, Schedule};
pub use crate::Error;

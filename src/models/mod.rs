//! Models: the Discriminative Recurrent Sparse Auto-Encoder and LISTA, sharing one unrolled
//! shrinkage recurrence; group-sparse auto-encoders (dense, locally-connected and
//! convolutional, sharing one encoder and one training loop); lateral inhibition; modern
//! sparse auto-encoders (ReLU, TopK, BatchTopK, JumpReLU, Matryoshka).

mod drsae;
mod recurrence;

pub use drsae::{
    BatchLoss, DrsaeGrads, DrsaeNetwork, DrsaeParts, DrsaeWorkspace, LossWeights, NORM_EPS,
};

mod lista;
pub use lista::{Lista, ListaGrads, ListaParts, ListaWorkspace};

mod autoencoder;
mod conv_ae;
mod group_ae;
mod local;
mod softmax;
pub(crate) use autoencoder::grad_slices;
pub use autoencoder::GroupSparseModel;
pub use conv_ae::{ConvAe, ConvAeParts, ConvAeWorkspace, CONV_CHUNK};
pub use group_ae::{
    EncoderForm, GroupAe, GroupAeGrads, GroupAeLoss, GroupAeParts, GroupAeWorkspace,
};
pub use local::{support_coverage, LocalSheet};
pub use softmax::{Softmax, SoftmaxGrads};

mod inhibition;
pub use inhibition::{
    grid_inhibition, inhibition_gradients, project_inhibition, tree_inhibition, tree_related,
};

mod sae;
pub use sae::{
    AuxK, SaeGrads, SaeKind, SaeLoss, SaeNetwork, SaeObjective, SaeWorkspace, SparseCodes,
};

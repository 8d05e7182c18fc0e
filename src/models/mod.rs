//! Models: the Discriminative Recurrent Sparse Auto-Encoder and LISTA, sharing one unrolled
//! shrinkage recurrence.

mod drsae;
mod recurrence;

pub use drsae::{BatchLoss, Drsae, DrsaeGrads, DrsaeWorkspace, LossWeights, NORM_EPS};

mod lista;
pub use lista::{Lista, ListaGrads, ListaWorkspace};

mod group_ae;
pub use group_ae::{EncoderForm, GroupAe, GroupAeGrads, GroupAeLoss, GroupAeWorkspace};

mod inhibition;
pub use inhibition::{
    grid_inhibition, inhibition_gradients, project_inhibition, tree_inhibition, tree_related,
};

//! Training: optimisers, learning-rate schedules, hyper-parameters and training loops.

mod budget;
pub(crate) mod checkpoint;
mod drsae_config;
mod drsae_phase;
mod drsae_step;
mod drsae_trainer;
mod group_ae_trainer;
mod inhibition_trainer;
mod lista_trainer;
mod loop_checkpoint;
mod optimizer;
mod sae_trainer;
mod skeleton;
mod softmax_trainer;

pub use checkpoint::{Checkpointing, EpochReport, CHECKPOINT_FILE};
pub use drsae_config::{
    DrsaeConfig, MAX_BATCH, MAX_E_MAX, MAX_HIDDEN, MAX_LR, MAX_STEPS, MAX_TIME_BUDGET, MAX_WEIGHT,
};
pub use drsae_phase::Split;
pub use drsae_step::DrsaeStep;
pub use drsae_trainer::{train_drsae, train_drsae_with, TrainOutcome};
pub use group_ae_trainer::{train_group_ae, train_group_ae_with, GroupAeConfig, GroupAeReport};
pub use inhibition_trainer::{
    train_inhibition, train_inhibition_with, InhibitionConfig, InhibitionInference, InhibitionModel,
};
pub use lista_trainer::{train_lista, train_lista_with, ListaConfig};
pub use optimizer::{Optimizer, OptimizerState, Schedule};
pub use sae_trainer::{
    geometric_median, train_sae, train_sae_with, BDecInit, DecoderNorm, SaeConfig, SaeReport,
    TrainedSae, MAX_SAE_LR, MAX_SAE_PASSES, MAX_SAE_WEIGHT,
};
pub use softmax_trainer::{train_softmax, SoftmaxConfig};

//! Training: optimisers, learning-rate schedules, hyper-parameters and training loops.

mod drsae_trainer;
mod lista_trainer;
mod optimizer;

pub use drsae_trainer::{train_drsae, DrsaeConfig, DrsaeStep, EpochReport, Split, TrainOutcome};
pub use lista_trainer::{train_lista, ListaConfig};
pub use optimizer::{Optimizer, OptimizerState, Schedule};

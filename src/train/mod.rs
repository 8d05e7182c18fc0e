//! Training: optimisers, learning-rate schedules, hyper-parameters and training loops.

mod drsae_trainer;
mod optimizer;

pub use drsae_trainer::{train_drsae, DrsaeConfig, EpochReport, Split, TrainOutcome};
pub use optimizer::{Optimizer, OptimizerState, Schedule};

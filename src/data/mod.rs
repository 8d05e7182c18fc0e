//! Data: IDX (MNIST) and PGM readers, patches, preprocessing, image transforms, minibatches.

mod activations;
mod batches;
pub mod idx;
mod mnist;
mod patches;
pub mod pgm;
mod preprocess;
mod preprocessor;
mod rows;
mod synthetic;
mod transform;

pub(crate) use activations::sample as sample_source;
pub use activations::{ActivationSource, InMemory, Shards};
pub use batches::{epoch_rng, gather_rows, Minibatches};
pub use idx::{parse_idx, read_idx, read_idx_images, read_idx_labels, Idx, IdxImages};
pub use mnist::{LabelledImages, Mnist};
pub use patches::sample_patches;
pub use pgm::{parse_pgm, read_pgm, read_pgm_dir, GrayImage};
pub use preprocess::{
    contrast_normalize_rows, local_contrast_normalize, normalize_rows_l2, remove_row_means,
    Standardizer, Zca,
};
pub use preprocessor::{Preprocessing, Preprocessor};
pub use rows::AsRows;
pub use synthetic::{recovery, Recovery, Synthetic, SyntheticSpec};
pub use transform::{rotate_image, shift_image};

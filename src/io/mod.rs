//! Files: atomic writes, model files (safetensors, feature `safetensors`), activation
//! shards (`.npy`, `.safetensors`), and the strict JSON their headers and configurations
//! are written in.

mod atomic;
#[cfg(feature = "safetensors")]
pub(crate) mod json;
#[cfg(feature = "safetensors")]
mod model_file;
mod named;
mod read;
#[cfg(feature = "safetensors")]
mod saelens;
mod shards;

pub use atomic::write_atomic;
#[cfg(feature = "safetensors")]
pub use model_file::{
    drsae_from_bytes, drsae_to_bytes, load_drsae, save_drsae, tensors_from_bytes, tensors_to_bytes,
    NamedTensors, FORMAT_VERSION, HEADER_ALLOWANCE, MAX_HEADER_BYTES, MAX_TENSORS,
};
pub use named::NamedTensor;
pub(crate) use named::{model_from_tensors, model_tensors, parse_steps, reject_unknown};
pub use read::{open_regular_file, read_regular_file, MAX_MODEL_FILE_BYTES};
#[cfg(feature = "safetensors")]
pub use saelens::{load_saelens, load_sparsify, save_saelens, save_sparsify, SAELENS_VERSION};
pub use shards::{npy_bytes, read_matrix, write_npy, ShardReader};

//! Files: atomic writes and model files (safetensors, feature `safetensors`).

mod atomic;
#[cfg(feature = "safetensors")]
mod model_file;
mod named;
mod read;

pub use atomic::write_atomic;
#[cfg(feature = "safetensors")]
pub use model_file::{
    drsae_from_bytes, drsae_to_bytes, load_drsae, save_drsae, tensors_from_bytes, tensors_to_bytes,
    NamedTensors, FORMAT_VERSION, HEADER_ALLOWANCE, MAX_HEADER_BYTES, MAX_TENSORS,
};
pub use named::NamedTensor;
pub(crate) use named::{model_from_tensors, model_tensors, parse_steps, reject_unknown};
pub use read::{open_regular_file, read_regular_file, MAX_MODEL_FILE_BYTES};

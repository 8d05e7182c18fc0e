//! Helpers shared by the integration tests.

use drsae::io::{tensors_from_bytes, tensors_to_bytes, NamedTensors};
use drsae::train::CHECKPOINT_FILE;
use std::collections::HashMap;
use std::path::Path;

/// Rewrites the checkpoint in `dir` from the checkpoint file's `bytes` through `edit` of its
/// tensors and metadata.
pub fn write_edited(
    dir: &Path,
    bytes: &[u8],
    edit: impl FnOnce(&mut NamedTensors, &mut HashMap<String, String>),
) {
    let (mut t, mut meta) = tensors_from_bytes(bytes).unwrap();
    edit(&mut t, &mut meta);
    let named: Vec<_> = t
        .iter()
        .map(|(k, (s, v))| (k.clone(), s.clone(), &v[..]))
        .collect();
    std::fs::write(
        dir.join(CHECKPOINT_FILE),
        tensors_to_bytes(&named, meta).unwrap(),
    )
    .unwrap();
}

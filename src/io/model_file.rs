//! DrSAE model files in the safetensors format (readable from PyTorch with
//! `safetensors.torch.load_file`).
//!
//! | tensor | dtype | shape | meaning |
//! |---|---|---|---|
//! | `E` | F32 | [n, m] | encoder |
//! | `S` | F32 | [n, n] | explaining-away matrix |
//! | `b` | F32 | [n] | threshold |
//! | `D` | F32 | [m, n] | decoder, one atom per column |
//! | `C` | F32 | [k, n] | classifier |
//!
//! Metadata (strings): `format` = `drsae`, `format_version` = `1`, `steps` = T, `lambda` = the
//! L1 weight, `reconstruction_weight`, plus any caller-supplied entries.
//!
//! Loading validates every shape against the others and the metadata, so a truncated file,
//! a forged header or inconsistent shapes give [`Error::Format`], never a panic. The file
//! is read whole (its own size bounds every allocation).

use super::atomic::write_atomic;
use super::named::{model_from_tensors, model_tensors, parse_steps, NamedTensor};
use crate::models::{DrsaeNetwork, LossWeights};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// The format version written by this crate.
pub const FORMAT_VERSION: &str = "1";

fn err(what: impl Into<String>) -> Error {
    Error::format("safetensors", what)
}

/// Serialises named f32 tensors and string metadata to safetensors bytes.
///
/// The header is written here rather than by the `safetensors` crate so that the bytes are
/// deterministic (metadata keys sorted, tensors in the given order): the same model always
/// gives the same file. Reading goes through the `safetensors` crate.
///
/// # Panics
/// If a tensor's shape does not match its length (a programmer error).
pub fn tensors_to_bytes(
    tensors: &[NamedTensor<'_>],
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut header = String::from("{\"__metadata__\":{");
    let sorted: std::collections::BTreeMap<_, _> = meta.into_iter().collect();
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!("{}:{}", json_string(k), json_string(v)));
    }
    header.push('}');
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor `{name}`: shape {shape:?} for {} values",
            data.len()
        );
        let bytes = 4 * data.len();
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            json_string(name),
            dims.join(","),
            offset,
            offset + bytes
        ));
        offset += bytes;
    }
    header.push('}');
    // Pad the header with spaces to a multiple of 8 bytes (as the safetensors crate does).
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, _, data) in tensors {
        out.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    }
    Ok(out)
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Tensors by name, each as (shape, row-major values).
pub type NamedTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Every tensor of a safetensors buffer (F32 only, finite values) and its metadata.
pub fn tensors_from_bytes(bytes: &[u8]) -> Result<(NamedTensors, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| err(format!("{e:?}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| err(format!("{e:?}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let mut out = HashMap::new();
    for (name, t) in st.tensors() {
        if t.dtype() != Dtype::F32 {
            return Err(err(format!(
                "tensor `{name}` is {:?}, expected F32",
                t.dtype()
            )));
        }
        let data: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        crate::check_finite(&format!("tensor `{name}`"), &data).map_err(|e| err(e.to_string()))?;
        out.insert(name, (t.shape().to_vec(), data));
    }
    Ok((out, meta))
}

/// Serialises `model` (and the loss weights it was trained with) to safetensors bytes.
pub fn drsae_to_bytes(
    model: &DrsaeNetwork,
    weights: &LossWeights,
    extra: &[(&str, String)],
) -> Result<Vec<u8>> {
    let mut meta: HashMap<String, String> = HashMap::new();
    meta.insert("format".into(), "drsae".into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert("steps".into(), model.steps.to_string());
    meta.insert("lambda".into(), weights.sparsity.to_string());
    meta.insert(
        "reconstruction_weight".into(),
        weights.reconstruction.to_string(),
    );
    for (k, v) in extra {
        meta.insert(k.to_string(), v.clone());
    }
    tensors_to_bytes(&model_tensors(model, ""), meta)
}

/// Writes `model` to `path` atomically.
pub fn save_drsae(
    model: &DrsaeNetwork,
    weights: &LossWeights,
    extra: &[(&str, String)],
    path: impl AsRef<Path>,
) -> Result<()> {
    write_atomic(path, &drsae_to_bytes(model, weights, extra)?)
}

/// Reads a model file written by [`save_drsae`] (or by PyTorch with the same names).
pub fn load_drsae(path: impl AsRef<Path>) -> Result<(DrsaeNetwork, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    drsae_from_bytes(&bytes).map_err(|e| e.in_file(path))
}

/// Parses safetensors bytes into a model and its metadata.
pub fn drsae_from_bytes(bytes: &[u8]) -> Result<(DrsaeNetwork, HashMap<String, String>)> {
    let (mut tensors, meta) = tensors_from_bytes(bytes)?;
    if meta.get("format").map(String::as_str) != Some("drsae") {
        return Err(err("metadata `format` is not `drsae`"));
    }
    if meta.get("format_version").map(String::as_str) != Some(FORMAT_VERSION) {
        return Err(err(format!(
            "unsupported format_version {:?}",
            meta.get("format_version")
        )));
    }
    let steps = parse_steps(&meta)?;
    Ok((model_from_tensors(&mut tensors, "", steps)?, meta))
}

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
//! is read whole (a regular file of at most [`MAX_MODEL_FILE_BYTES`]: its own size bounds
//! every allocation).
//!
//! Before the `safetensors` crate parses the JSON header, [`tensors_from_bytes`] checks:
//!
//! - its length: at most [`MAX_HEADER_BYTES`], and at most the larger of
//!   [`HEADER_ALLOWANCE`] and the tensor data it describes (a header that is mostly
//!   padding is refused before it is parsed);
//! - that no tensor name and no metadata key appears twice (serde's maps, and so the
//!   `safetensors` crate, would keep the last silently);
//! - that it names at most [`MAX_TENSORS`] tensors.
//!
//! A model file must hold exactly the tensors of the table: any other is an error.
//!
//! [`MAX_MODEL_FILE_BYTES`]: crate::io::MAX_MODEL_FILE_BYTES

use super::atomic::write_atomic;
use super::named::{model_from_tensors, model_tensors, parse_steps, reject_unknown, NamedTensor};
use crate::models::{DrsaeNetwork, LossWeights};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// The format version written by this crate.
pub const FORMAT_VERSION: &str = "1";

/// The longest JSON header accepted (16 MiB; a DrSAE checkpoint's is a few KiB plus ~150
/// bytes per epoch of history).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// A header may be longer than the tensor data it describes up to this length (1 MiB).
pub const HEADER_ALLOWANCE: u64 = 1 << 20;

/// The most tensors a file may name (a DrSAE checkpoint has at most 25).
pub const MAX_TENSORS: usize = 4096;

fn err(what: impl Into<String>) -> Error {
    Error::format("safetensors", what)
}

/// Serialises named f32 tensors and string metadata to safetensors bytes.
///
/// The header is written here rather than by the `safetensors` crate so that the bytes are
/// deterministic (metadata keys sorted, tensors in the given order): the same model always
/// gives the same file. Reading goes through the `safetensors` crate.
///
/// # Errors
/// [`Error::InvalidParameter`] when two tensors share a name, one is named `__metadata__`
/// (the file could not be read back), or a tensor's shape does not match its length.
pub fn tensors_to_bytes(
    tensors: &[NamedTensor<'_>],
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut names = std::collections::HashSet::new();
    for (name, shape, data) in tensors {
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(data.len()) {
            return Err(Error::param(
                "tensors",
                format!(
                    "tensor `{}` has shape {shape:?} for {} values",
                    name.escape_debug(),
                    data.len()
                ),
            ));
        }
        if name == "__metadata__" || !names.insert(name.as_str()) {
            return Err(Error::param(
                "tensors",
                format!(
                    "tensor name `{}` is reserved or used twice",
                    name.escape_debug()
                ),
            ));
        }
    }
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

/// Checks the header's length against the limits and the file (see the module docs):
/// returns it.
fn check_header_length(bytes: &[u8]) -> Result<usize> {
    let len = bytes.len() as u64;
    let Some(prefix) = bytes.get(..8) else {
        return Err(err(format!(
            "{len} bytes cannot hold the 8-byte header length"
        )));
    };
    let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    if n > MAX_HEADER_BYTES {
        return Err(err(format!(
            "header of {n} bytes, more than the {MAX_HEADER_BYTES} accepted"
        )));
    }
    if n > len - 8 {
        return Err(err(format!("header of {n} bytes in a file of {len} bytes")));
    }
    let data = len - 8 - n;
    if n > data.max(HEADER_ALLOWANCE) {
        return Err(err(format!(
            "header of {n} bytes for {data} bytes of tensor data (at most the larger of \
             {HEADER_ALLOWANCE} bytes and the data accepted)"
        )));
    }
    Ok(n as usize)
}

/// What the header scan found, once no name has been found twice.
struct HeaderScan;

/// The top-level object: tensor names (values skipped) and `__metadata__`.
struct TopLevel;

/// The `__metadata__` object (or null): its keys.
struct MetadataKeys;

impl<'de> serde::Deserialize<'de> for HeaderScan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(TopLevel)
    }
}

impl<'de> serde::de::Visitor<'de> for TopLevel {
    type Value = HeaderScan;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of tensors")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<HeaderScan, A::Error> {
        use serde::de::Error as _;
        let (mut seen, mut tensors) = (std::collections::HashSet::new(), 0usize);
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                map.next_value_seed(MetadataKeys)?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
                tensors += 1;
            }
            if seen.contains(&key) {
                return Err(A::Error::custom(format!(
                    "`{}` appears twice",
                    key.escape_debug()
                )));
            }
            seen.insert(key);
            if tensors > MAX_TENSORS {
                return Err(A::Error::custom(format!("more than {MAX_TENSORS} tensors")));
            }
        }
        Ok(HeaderScan)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for MetadataKeys {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MetadataKeys {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of strings or null")
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        use serde::de::Error as _;
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<serde::de::IgnoredAny>()?;
            if seen.contains(&key) {
                return Err(A::Error::custom(format!(
                    "metadata key `{}` appears twice",
                    key.escape_debug()
                )));
            }
            seen.insert(key);
        }
        Ok(())
    }
}

/// Every tensor of a safetensors buffer (F32 only, finite values) and its metadata.
///
/// # Errors
/// [`Error::Format`] for a header too long for the limits or the file, a tensor name or
/// metadata key that appears twice, more than [`MAX_TENSORS`] tensors, anything the
/// `safetensors` crate refuses, a tensor that is not F32, or a non-finite value.
pub fn tensors_from_bytes(bytes: &[u8]) -> Result<(NamedTensors, HashMap<String, String>)> {
    let n = check_header_length(bytes)?;
    serde_json::from_slice::<HeaderScan>(&bytes[8..8 + n])
        .map_err(|e| err(format!("header: {e}")))?;
    let (n, header) = SafeTensors::read_metadata(bytes).map_err(|e| err(format!("{e:?}")))?;
    let data = &bytes[8 + n..];
    let meta = header.metadata().clone().unwrap_or_default();
    let mut out = HashMap::new();
    for (name, info) in header.tensors() {
        if info.dtype != Dtype::F32 {
            return Err(err(format!(
                "tensor `{name}` is {:?}, expected F32",
                info.dtype
            )));
        }
        // In bounds: `read_metadata` checked that the offsets tile the data exactly.
        let (start, end) = info.data_offsets;
        let values: Vec<f32> = data[start..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        crate::check_finite(&format!("tensor `{name}`"), &values)
            .map_err(|e| err(e.to_string()))?;
        out.insert(name, (info.shape.clone(), values));
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

/// Reads a model file written by [`save_drsae`] (or by PyTorch with the same names): a
/// regular file of at most [`MAX_MODEL_FILE_BYTES`](crate::io::MAX_MODEL_FILE_BYTES).
///
/// # Errors
/// [`Error::Io`] when it cannot be read or is not a regular file; [`drsae_from_bytes`]'s
/// errors, naming the file.
pub fn load_drsae(path: impl AsRef<Path>) -> Result<(DrsaeNetwork, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = super::read_regular_file(path, super::MAX_MODEL_FILE_BYTES)?;
    drsae_from_bytes(&bytes).map_err(|e| e.in_file(path))
}

/// Parses safetensors bytes into a model and its metadata.
///
/// # Errors
/// [`Error::Format`] for anything [`tensors_from_bytes`] refuses; metadata that is not this
/// format's (`format`, `format_version`, `steps` in 1..=10000); a missing tensor, a tensor
/// not in the table, shapes that disagree with each other; loss weights (`lambda`,
/// `reconstruction_weight`, `classification_weight`) that are not finite numbers ≥ 0;
/// `config.hidden` or `config.steps` entries (written by the estimator) that disagree with
/// the tensors.
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
    let model = model_from_tensors(&mut tensors, "", steps)?;
    reject_unknown(&tensors, "safetensors")?;
    for key in ["lambda", "reconstruction_weight", "classification_weight"] {
        if let Some(v) = meta.get(key) {
            if !v.parse::<f32>().is_ok_and(|w| w.is_finite() && w >= 0.0) {
                return Err(err(format!(
                    "metadata `{key}` = {v:?} is not a finite weight ≥ 0"
                )));
            }
        }
    }
    for (key, actual) in [("config.hidden", model.e.nrows()), ("config.steps", steps)] {
        if let Some(v) = meta.get(key) {
            if v.parse::<usize>().ok() != Some(actual) {
                return Err(err(format!(
                    "metadata `{key}` = {v:?}, but the tensors describe {actual}"
                )));
            }
        }
    }
    Ok((model, meta))
}

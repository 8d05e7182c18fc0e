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
//! Reading ([`tensors_from_bytes`]) checks, in order:
//!
//! - the header's length: at most [`MAX_HEADER_BYTES`], and at most the larger of
//!   [`HEADER_ALLOWANCE`] and the tensor data it describes (a header that is mostly
//!   padding is refused before it is parsed);
//! - that the header is strict JSON (`super::json`): in particular no tensor name and no
//!   metadata key appears twice, which a map-based reader would silently resolve;
//! - that it names at most [`MAX_TENSORS`] tensors;
//! - what the `safetensors` Python and Rust libraries require: an object of tensors, each
//!   `{"dtype", "shape", "data_offsets"}`, and an optional `__metadata__` of strings (or
//!   null); sorted by offset, the tensors tile the data exactly, each spanning the bytes its
//!   dtype and shape need (products checked for overflow);
//! - that every tensor is F32 and every value finite.
//!
//! A model file must hold exactly the tensors of the table: any other is an error.
//!
//! [`MAX_MODEL_FILE_BYTES`]: crate::io::MAX_MODEL_FILE_BYTES

use super::atomic::write_atomic;
use super::json::{self, Value};
use super::named::{model_from_tensors, model_tensors, parse_steps, reject_unknown, NamedTensor};
use crate::models::{DrsaeNetwork, LossWeights};
use crate::{Error, Result};
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
/// The bytes are deterministic (metadata keys sorted, tensors in the given order, the
/// header padded with spaces to a multiple of 8 bytes): the same model always gives the
/// same file.
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

/// The dtypes of the safetensors format and the bytes of one element of each.
const DTYPES: [(&str, usize); 15] = [
    ("BOOL", 1),
    ("U8", 1),
    ("I8", 1),
    ("F8_E5M2", 1),
    ("F8_E4M3", 1),
    ("I16", 2),
    ("U16", 2),
    ("F16", 2),
    ("BF16", 2),
    ("I32", 4),
    ("U32", 4),
    ("F32", 4),
    ("F64", 8),
    ("I64", 8),
    ("U64", 8),
];

/// One tensor of a header, its offsets relative to the data.
struct Entry {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A JSON error of the header, naming a repeated tensor name or metadata key as such.
fn header_error(e: json::ParseError) -> Error {
    match &e.kind {
        json::ErrorKind::DuplicateKey { key, depth: 1, .. } => err(format!(
            "header: `{}` appears twice (at byte {})",
            key.escape_debug(),
            e.offset
        )),
        json::ErrorKind::DuplicateKey {
            key,
            depth: 2,
            parent: Some(p),
        } if p == "__metadata__" => err(format!(
            "header: metadata key `{}` appears twice (at byte {})",
            key.escape_debug(),
            e.offset
        )),
        _ => err(format!("header: {e}")),
    }
}

/// `[n, …]` of non-negative integers that fit a `usize`.
fn usizes(v: Option<&Value>) -> Option<Vec<usize>> {
    v?.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|u| usize::try_from(u).ok()))
        .collect()
}

/// A tensor's entry: an object with `dtype` (a safetensors dtype), `shape` and
/// `data_offsets` (two offsets); other members are ignored (as the `safetensors` crate does).
fn entry(name: String, v: &Value) -> Result<Entry> {
    let bad = |what: String| err(format!("header: tensor `{}` {what}", name.escape_debug()));
    if v.as_object().is_none() {
        return Err(bad(format!(
            "is {v}, not an object of dtype, shape and data_offsets"
        )));
    }
    let dtype = match v.get("dtype") {
        None => return Err(bad("has no dtype".into())),
        Some(d) => match DTYPES.iter().find(|(t, _)| Some(*t) == d.as_str()) {
            Some((t, _)) => *t,
            None => return Err(bad(format!("has dtype {d}, not a safetensors dtype"))),
        },
    };
    let shape = usizes(v.get("shape"))
        .ok_or_else(|| bad("has no shape of non-negative integers".into()))?;
    let (start, end) = match usizes(v.get("data_offsets")).as_deref() {
        Some(&[start, end]) => (start, end),
        _ => {
            return Err(bad(
                "has no data_offsets of two non-negative integers".into()
            ))
        }
    };
    Ok(Entry {
        name,
        dtype,
        shape,
        start,
        end,
    })
}

/// The tensors and metadata of a header (the JSON after the length prefix), checked
/// against `data_len` bytes of data as the `safetensors` crate checks them: sorted by
/// offsets, each tensor starts where the previous one ended (the first at 0), spans the
/// bytes its dtype and shape need, and the last ends at the end of the data.
fn parse_header(header: &[u8], data_len: usize) -> Result<(Vec<Entry>, HashMap<String, String>)> {
    let Value::Object(members) = json::parse(header).map_err(header_error)? else {
        return Err(err("header: not a JSON object"));
    };
    let count = members.iter().filter(|(k, _)| k != "__metadata__").count();
    if count > MAX_TENSORS {
        return Err(err(format!("header: more than {MAX_TENSORS} tensors")));
    }
    let mut meta = HashMap::new();
    let mut tensors = Vec::with_capacity(count);
    for (name, value) in members {
        if name != "__metadata__" {
            tensors.push(entry(name, &value)?);
            continue;
        }
        match value {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    let Value::String(v) = v else {
                        return Err(err(format!(
                            "header: metadata `{}` is {v}, not a string",
                            k.escape_debug()
                        )));
                    };
                    meta.insert(k, v);
                }
            }
            other => {
                return Err(err(format!(
                    "header: `__metadata__` is {other}, not an object of strings"
                )))
            }
        }
    }
    tensors.sort_by_key(|t| (t.start, t.end));
    let mut at = 0;
    for t in &tensors {
        let name = t.name.escape_debug();
        if t.start != at || t.end < t.start {
            return Err(err(format!(
                "tensor `{name}` has data_offsets [{}, {}]; the tensors sorted by offset must \
                 tile the data, and this one should start at {at}",
                t.start, t.end
            )));
        }
        let size = DTYPES
            .iter()
            .find(|(d, _)| *d == t.dtype)
            .map_or(1, |d| d.1);
        let bytes = t
            .shape
            .iter()
            .try_fold(size, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                err(format!(
                    "tensor `{name}`: shape {:?} overflows the address space",
                    t.shape
                ))
            })?;
        if t.end - t.start != bytes {
            return Err(err(format!(
                "tensor `{name}` of dtype {} and shape {:?} needs {bytes} bytes, but its \
                 data_offsets [{}, {}] span {}",
                t.dtype,
                t.shape,
                t.start,
                t.end,
                t.end - t.start
            )));
        }
        at = t.end;
    }
    if at != data_len {
        return Err(err(format!(
            "the tensors span {at} bytes, but the file holds {data_len} bytes of data"
        )));
    }
    Ok((tensors, meta))
}

/// Every tensor of a safetensors buffer (F32 only, finite values) and its metadata.
///
/// # Errors
/// [`Error::Format`] for a header too long for the limits or the file; a header that is
/// not strict JSON (duplicate tensor names and metadata keys included) or not the format's
/// (an object of tensors with `dtype`, `shape` and `data_offsets`, and string metadata);
/// more than [`MAX_TENSORS`] tensors; offsets that do not tile the data exactly (in order,
/// from 0, each spanning the bytes its dtype and shape need, the last ending with the
/// data); a tensor that is not F32; a non-finite value.
pub fn tensors_from_bytes(bytes: &[u8]) -> Result<(NamedTensors, HashMap<String, String>)> {
    let n = check_header_length(bytes)?;
    let data = &bytes[8 + n..];
    let (entries, meta) = parse_header(&bytes[8..8 + n], data.len())?;
    if let Some(t) = entries.iter().find(|t| t.dtype != "F32") {
        return Err(err(format!(
            "tensor `{}` is {}, expected F32",
            t.name, t.dtype
        )));
    }
    let mut out = HashMap::with_capacity(entries.len());
    for Entry {
        name,
        shape,
        start,
        end,
        ..
    } in entries
    {
        // In bounds: `parse_header` checked that the offsets tile the data exactly.
        let values: Vec<f32> = data[start..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        crate::check_finite(&format!("tensor `{name}`"), &values)
            .map_err(|e| err(e.to_string()))?;
        out.insert(name, (shape, values));
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

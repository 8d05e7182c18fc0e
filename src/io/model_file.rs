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
use crate::linalg::Mat;
use crate::models::{Drsae, LossWeights};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The format version written by this crate.
pub const FORMAT_VERSION: &str = "1";

fn err(what: impl Into<String>) -> Error {
    Error::format("safetensors", what)
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialises `model` (and the loss weights it was trained with) to safetensors bytes.
pub fn drsae_to_bytes(
    model: &Drsae,
    weights: &LossWeights,
    extra: &[(&str, String)],
) -> Result<Vec<u8>> {
    let buffers = [
        (
            "E",
            le_bytes(model.e.as_slice()),
            vec![model.e.nrows(), model.e.ncols()],
        ),
        (
            "S",
            le_bytes(model.s.as_slice()),
            vec![model.s.nrows(), model.s.ncols()],
        ),
        ("b", le_bytes(&model.b), vec![model.b.len()]),
        (
            "D",
            le_bytes(model.d.as_slice()),
            vec![model.d.nrows(), model.d.ncols()],
        ),
        (
            "C",
            le_bytes(model.c.as_slice()),
            vec![model.c.nrows(), model.c.ncols()],
        ),
    ];
    let views: Vec<(&str, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, bytes, shape)| {
            (
                *name,
                TensorView::new(Dtype::F32, shape.clone(), bytes).expect("shape matches buffer"),
            )
        })
        .collect();
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
    safetensors::serialize(views, &Some(meta)).map_err(|e| err(e.to_string()))
}

/// Writes `model` to `path` atomically.
pub fn save_drsae(
    model: &Drsae,
    weights: &LossWeights,
    extra: &[(&str, String)],
    path: impl AsRef<Path>,
) -> Result<()> {
    write_atomic(path, &drsae_to_bytes(model, weights, extra)?)
}

/// Reads a model file written by [`save_drsae`] (or by PyTorch with the same names).
pub fn load_drsae(path: impl AsRef<Path>) -> Result<(Drsae, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    drsae_from_bytes(&bytes).map_err(|e| match e {
        Error::Format { format, what } => Error::Format {
            format,
            what: format!("{}: {what}", path.display()),
        },
        e => e,
    })
}

/// Parses safetensors bytes into a model and its metadata.
pub fn drsae_from_bytes(bytes: &[u8]) -> Result<(Drsae, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| err(format!("{e:?}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| err(format!("{e:?}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some("drsae") {
        return Err(err("metadata `format` is not `drsae`"));
    }
    if meta.get("format_version").map(String::as_str) != Some(FORMAT_VERSION) {
        return Err(err(format!(
            "unsupported format_version {:?}",
            meta.get("format_version")
        )));
    }
    let steps: usize = meta
        .get("steps")
        .and_then(|s| s.parse().ok())
        .filter(|&t| t >= 1 && t <= 10_000)
        .ok_or_else(|| err("metadata `steps` missing or not in 1..=10000"))?;
    let get = |name: &str, rank: usize| -> Result<(Vec<usize>, Vec<f32>)> {
        let t = st
            .tensor(name)
            .map_err(|_| err(format!("tensor `{name}` missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(err(format!(
                "tensor `{name}` is {:?}, expected F32",
                t.dtype()
            )));
        }
        if t.shape().len() != rank {
            return Err(err(format!(
                "tensor `{name}` has shape {:?}, expected rank {rank}",
                t.shape()
            )));
        }
        let data: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        crate::check_finite(&format!("tensor `{name}`"), &data).map_err(|e| err(e.to_string()))?;
        Ok((t.shape().to_vec(), data))
    };
    let (se, e) = get("E", 2)?;
    let (ss, s) = get("S", 2)?;
    let (sb, b) = get("b", 1)?;
    let (sd, d) = get("D", 2)?;
    let (sc, c) = get("C", 2)?;
    let (n, m, k) = (se[0], se[1], sc[0]);
    if n == 0 || m == 0 || k == 0 || ss != [n, n] || sb != [n] || sd != [m, n] || sc != [k, n] {
        return Err(err(format!("inconsistent shapes: E {se:?}, S {ss:?}, b {sb:?}, D {sd:?}, C {sc:?} (expected E [n, m], S [n, n], b [n], D [m, n], C [k, n])")));
    }
    let model = Drsae {
        e: Mat::from_vec(n, m, e),
        s: Mat::from_vec(n, n, s),
        b,
        d: Mat::from_vec(m, n, d),
        c: Mat::from_vec(k, n, c),
        steps,
    };
    Ok((model, meta))
}

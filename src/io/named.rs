//! Named f32 tensors and the DrSAE tensor layout, shared by model files and checkpoints
//! (no file format here: see `model_file`).

use crate::linalg::Mat;
use crate::models::DrsaeNetwork;
use crate::{Error, Result};
use std::collections::HashMap;

fn err(what: impl Into<String>) -> Error {
    Error::format("safetensors", what)
}

/// A named f32 tensor for `tensors_to_bytes`.
pub type NamedTensor<'a> = (String, Vec<usize>, &'a [f32]);

/// The tensors of `model` under `prefix` (`E`, `S`, `b`, `D`, `C`).
pub(crate) fn model_tensors<'a>(model: &'a DrsaeNetwork, prefix: &str) -> Vec<NamedTensor<'a>> {
    vec![
        (
            format!("{prefix}E"),
            vec![model.e.nrows(), model.e.ncols()],
            model.e.as_slice(),
        ),
        (
            format!("{prefix}S"),
            vec![model.s.nrows(), model.s.ncols()],
            model.s.as_slice(),
        ),
        (format!("{prefix}b"), vec![model.b.len()], &model.b[..]),
        (
            format!("{prefix}D"),
            vec![model.d.nrows(), model.d.ncols()],
            model.d.as_slice(),
        ),
        (
            format!("{prefix}C"),
            vec![model.c.nrows(), model.c.ncols()],
            model.c.as_slice(),
        ),
    ]
}

/// Rebuilds a model from tensors under `prefix`, checking every shape.
pub(crate) fn model_from_tensors(
    t: &mut HashMap<String, (Vec<usize>, Vec<f32>)>,
    prefix: &str,
    steps: usize,
) -> Result<DrsaeNetwork> {
    let mut get = |name: &str, rank: usize| -> Result<(Vec<usize>, Vec<f32>)> {
        let key = format!("{prefix}{name}");
        let (shape, data) = t
            .remove(&key)
            .ok_or_else(|| err(format!("tensor `{key}` missing")))?;
        if shape.len() != rank {
            return Err(err(format!(
                "tensor `{key}` has shape {shape:?}, expected rank {rank}"
            )));
        }
        Ok((shape, data))
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
    Ok(DrsaeNetwork {
        e: Mat::from_vec(n, m, e),
        s: Mat::from_vec(n, n, s),
        b,
        d: Mat::from_vec(m, n, d),
        c: Mat::from_vec(k, n, c),
        steps,
    })
}

/// The `steps` metadata entry, checked to lie in 1..=10000.
pub(crate) fn parse_steps(meta: &HashMap<String, String>) -> Result<usize> {
    meta.get("steps")
        .and_then(|s| s.parse().ok())
        .filter(|&t| (1..=crate::train::MAX_STEPS).contains(&t))
        .ok_or_else(|| err("metadata `steps` missing or not in 1..=10000"))
}

/// An error naming the tensors left in `t` once every expected one has been taken (the
/// first few, sorted), if any are.
pub(crate) fn reject_unknown(
    t: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    format: &'static str,
) -> Result<()> {
    if t.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = t.keys().map(String::as_str).collect();
    names.sort_unstable();
    let shown: Vec<String> = names
        .iter()
        .take(5)
        .map(|n| format!("`{}`", n.escape_debug()))
        .collect();
    Err(Error::format(
        format,
        format!(
            "{} unknown tensor{} ({}{})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if names.len() > 5 { ", …" } else { "" }
        ),
    ))
}

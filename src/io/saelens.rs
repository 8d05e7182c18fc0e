//! Sparse auto-encoders in the files of SAELens (v6: `cfg.json` + `sae_weights.safetensors`,
//! optionally `sparsity.safetensors`) and of EleutherAI's sparsify (`cfg.json` +
//! `sae.safetensors`), both ways.
//!
//! Writing folds the input scale `s` a drsae model was trained at into the weights, as
//! SAELens does at the end of training (`W_enc ← s·W_enc`, `W_dec ← W_dec/s`,
//! `b_dec ← b_dec/s`; the pre-activations, hence `b_enc` and `threshold`, are unchanged),
//! and writes `"normalize_activations": "none"`: the files then map raw inputs to raw
//! reconstructions, as the peers' loaders expect. A BatchTopK model is written as the
//! JumpReLU it is at inference (SAELens has no inference BatchTopK class). sparsify holds
//! TopK models only.
//!
//! Reading accepts SAELens's `standard`, `topk` (with `rescale_acts_by_decoder_norm`
//! folded into the weights) and `jumprelu`, normalisation `none` or
//! `expected_average_only_in` (both identity at inference), float32 tensors; and sparsify's
//! TopK coders without skip connection or transcoding. Anything else is a clear error.

use super::json::{self, Value};
use super::model_file::{tensors_from_bytes, tensors_to_bytes, NamedTensors};
use super::{read_regular_file, write_atomic, NamedTensor};
use crate::linalg::Mat;
use crate::models::{SaeKind, SaeNetwork};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// SAELens version written into `metadata.sae_lens_version` (the loader switches to its
/// pre-6.0 conversion without one).
pub const SAELENS_VERSION: &str = "6.54.12";

/// Largest `cfg.json` read (1 MiB).
const MAX_CFG_BYTES: u64 = 1 << 20;
/// Largest weights file read (16 GiB).
const MAX_WEIGHTS_BYTES: u64 = 16 << 30;

fn bad(what: impl Into<String>) -> Error {
    Error::format("SAE directory", what)
}

/// The network with `scale` folded in (see the module docs).
fn folded(net: &SaeNetwork, scale: f32) -> (Mat, Mat, Vec<f32>) {
    let mut w_enc = net.w_enc().clone();
    let mut w_dec = net.w_dec().clone();
    let mut b_dec = net.b_dec().to_vec();
    if scale != 1.0 {
        w_enc.as_mut_slice().iter_mut().for_each(|v| *v *= scale);
        w_dec.as_mut_slice().iter_mut().for_each(|v| *v /= scale);
        b_dec.iter_mut().for_each(|v| *v /= scale);
    }
    (w_enc, w_dec, b_dec)
}

/// Writes `v` indented, with keys in the order given, and a final newline.
fn write_json(path: &Path, v: &Value) -> Result<()> {
    let mut s = v.to_pretty();
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Writes `net` (trained at input scale `scale`) as a SAELens v6 directory; `density`, each
/// latent's firing frequency, goes to `sparsity.safetensors` as SAELens stores it
/// (`log10(density + 1e-10)`).
///
/// # Errors
/// [`Error::Io`] if the directory cannot be created or written.
pub fn save_saelens(
    dir: impl AsRef<Path>,
    net: &SaeNetwork,
    scale: f32,
    density: Option<&[f32]>,
) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (w_enc, w_dec, b_dec) = folded(net, scale);
    let (m, d) = (net.d_sae(), net.d_in());
    let w_enc_t = w_enc.transposed(); // SAELens: [d_in, d_sae]
    let architecture = match net.kind() {
        SaeKind::Relu => "standard",
        SaeKind::TopK { .. } => "topk",
        SaeKind::BatchTopK { .. } | SaeKind::JumpRelu => "jumprelu",
    };
    let mut tensors: Vec<NamedTensor<'_>> = vec![
        ("W_enc".into(), vec![d, m], w_enc_t.as_slice()),
        ("b_enc".into(), vec![m], net.b_enc()),
        ("W_dec".into(), vec![m, d], w_dec.as_slice()),
        ("b_dec".into(), vec![d], &b_dec),
    ];
    if architecture == "jumprelu" {
        tensors.push(("threshold".into(), vec![m], net.threshold()));
    }
    let bytes = tensors_to_bytes(&tensors, HashMap::new())?;
    write_atomic(dir.join("sae_weights.safetensors"), &bytes)?;
    let mut cfg = vec![
        ("architecture".into(), architecture.into()),
        ("d_in".into(), d.into()),
        ("d_sae".into(), m.into()),
        ("dtype".into(), "float32".into()),
        (
            "apply_b_dec_to_input".into(),
            net.apply_b_dec_to_input().into(),
        ),
        ("normalize_activations".into(), "none".into()),
        ("reshape_activations".into(), "none".into()),
        (
            "metadata".into(),
            Value::sorted_object(vec![
                ("sae_lens_version".into(), SAELENS_VERSION.into()),
                (
                    "trained_with".into(),
                    format!("drsae {}", env!("CARGO_PKG_VERSION")).into(),
                ),
                ("training_architecture".into(), net.kind().name().into()),
            ]),
        ),
    ];
    if let SaeKind::TopK { k } = net.kind() {
        cfg.push(("k".into(), k.into()));
        cfg.push(("rescale_acts_by_decoder_norm".into(), false.into()));
    }
    // Keys sorted, as the files have always been written.
    let cfg = Value::sorted_object(cfg);
    write_json(&dir.join("cfg.json"), &cfg)?;
    if let Some(p) = density {
        assert_eq!(p.len(), m, "one density per latent");
        let logs: Vec<f32> = p
            .iter()
            .map(|&v| (v as f64 + 1e-10).log10() as f32)
            .collect();
        let bytes = tensors_to_bytes(&[("sparsity".into(), vec![m], &logs)], HashMap::new())?;
        write_atomic(dir.join("sparsity.safetensors"), &bytes)?;
    }
    Ok(())
}

/// Writes a TopK `net` (trained at input scale `scale`) as a sparsify directory.
///
/// # Errors
/// [`Error::InvalidParameter`] for another architecture than TopK, or a model that does
/// not subtract `b_dec` from its input (sparsify always does); [`Error::Io`] on writing.
pub fn save_sparsify(dir: impl AsRef<Path>, net: &SaeNetwork, scale: f32) -> Result<()> {
    let SaeKind::TopK { k } = net.kind() else {
        return Err(Error::param(
            "format",
            format!(
                "sparsify holds TopK coders; this model is {}",
                net.kind().name()
            ),
        ));
    };
    if !net.apply_b_dec_to_input() {
        return Err(Error::param(
            "format",
            "sparsify always subtracts b_dec from the input; this model does not",
        ));
    }
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (w_enc, w_dec, b_dec) = folded(net, scale);
    let (m, d) = (net.d_sae(), net.d_in());
    let tensors: Vec<NamedTensor<'_>> = vec![
        ("encoder.weight".into(), vec![m, d], w_enc.as_slice()),
        ("encoder.bias".into(), vec![m], net.b_enc()),
        ("W_dec".into(), vec![m, d], w_dec.as_slice()),
        ("b_dec".into(), vec![d], &b_dec),
    ];
    write_atomic(
        dir.join("sae.safetensors"),
        &tensors_to_bytes(&tensors, HashMap::new())?,
    )?;
    let cfg = Value::sorted_object(vec![
        ("activation".into(), "topk".into()),
        ("expansion_factor".into(), (m / d).max(1).into()),
        ("normalize_decoder".into(), true.into()),
        ("num_latents".into(), m.into()),
        ("k".into(), k.into()),
        ("multi_topk".into(), false.into()),
        ("skip_connection".into(), false.into()),
        ("transcode".into(), false.into()),
        ("d_in".into(), d.into()),
    ]);
    write_json(&dir.join("cfg.json"), &cfg)
}

/// `cfg.json`: a JSON object (strict: a key given twice is an error, not a silent choice).
fn read_cfg(dir: &Path) -> Result<Value> {
    let bytes = read_regular_file(dir.join("cfg.json"), MAX_CFG_BYTES)?;
    match json::parse(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(bad("cfg.json is not a JSON object")),
        Err(e) => Err(bad(format!("cfg.json: {e}"))),
    }
}

fn usize_key(cfg: &Value, key: &str) -> Result<Option<usize>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                bad(format!(
                    "cfg.json: `{key}` is {v}, not a non-negative integer"
                ))
            }),
    }
}

fn take(t: &mut NamedTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let (s, v) = t
        .remove(name)
        .ok_or_else(|| bad(format!("tensor `{name}` is missing")))?;
    if s != shape {
        return Err(bad(format!(
            "tensor `{name}` has shape {s:?}, expected {shape:?}"
        )));
    }
    Ok(v)
}

fn no_more(t: &NamedTensors) -> Result<()> {
    match t.keys().next() {
        None => Ok(()),
        Some(k) => Err(bad(format!("unexpected tensor `{k}`"))),
    }
}

/// The tensors of a weights file, its bytes freed before the caller copies any tensor (so a
/// load peaks at about twice the file, not three times).
fn read_tensors(path: &Path) -> Result<NamedTensors> {
    let bytes = read_regular_file(path, MAX_WEIGHTS_BYTES)?;
    let (t, _) = tensors_from_bytes(&bytes).map_err(|e| e.in_file(path))?;
    Ok(t)
}

/// Reads a SAELens v6 directory.
///
/// # Errors
/// [`Error::Io`] / [`Error::Format`] for missing or malformed files, an architecture or
/// normalisation drsae does not run (see the module docs), non-F32 tensors, or shapes that
/// disagree with `cfg.json`.
pub fn load_saelens(dir: impl AsRef<Path>) -> Result<SaeNetwork> {
    let dir = dir.as_ref();
    let cfg = read_cfg(dir)?;
    let arch = cfg
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or("standard");
    let d = usize_key(&cfg, "d_in")?.ok_or_else(|| bad("cfg.json: no `d_in`"))?;
    let m = usize_key(&cfg, "d_sae")?.ok_or_else(|| bad("cfg.json: no `d_sae`"))?;
    if d == 0 || m == 0 || (d as u64) * (m as u64) > 1 << 32 {
        return Err(bad(format!("cfg.json: d_in = {d}, d_sae = {m}")));
    }
    match cfg.get("normalize_activations").and_then(Value::as_str) {
        None | Some("none") | Some("expected_average_only_in") => {}
        Some(other) => {
            return Err(bad(format!(
                "normalize_activations `{other}` is not supported (only none / expected_average_only_in)"
            )))
        }
    }
    if let Some(r) = cfg.get("reshape_activations").and_then(Value::as_str) {
        if r != "none" {
            return Err(bad(format!("reshape_activations `{r}` is not supported")));
        }
    }
    let apply = cfg
        .get("apply_b_dec_to_input")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut t = read_tensors(&dir.join("sae_weights.safetensors"))?;
    let w_enc_t = Mat::from_vec(d, m, take(&mut t, "W_enc", &[d, m])?);
    let b_enc = take(&mut t, "b_enc", &[m])?;
    let w_dec = Mat::from_vec(m, d, take(&mut t, "W_dec", &[m, d])?);
    let b_dec = take(&mut t, "b_dec", &[d])?;
    let (kind, threshold) = match arch {
        "standard" => (SaeKind::Relu, vec![0.0; m]),
        "topk" => {
            let k = usize_key(&cfg, "k")?.unwrap_or(100);
            if k == 0 || k > m {
                return Err(bad(format!("k = {k} not in 1..={m}")));
            }
            (SaeKind::TopK { k }, vec![0.0; m])
        }
        "jumprelu" => (SaeKind::JumpRelu, take(&mut t, "threshold", &[m])?),
        other => {
            return Err(bad(format!(
                "architecture `{other}` is not supported (standard, topk, jumprelu)"
            )))
        }
    };
    no_more(&t)?;
    let mut net = SaeNetwork::from_parts(
        kind,
        w_enc_t.transposed(),
        b_enc,
        w_dec,
        b_dec,
        threshold,
        apply,
    )?;
    if arch == "topk"
        && cfg
            .get("rescale_acts_by_decoder_norm")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        net.normalize_decoder_rows();
    }
    Ok(net)
}

/// Reads a sparsify directory (one coder: `cfg.json` + `sae.safetensors`).
///
/// # Errors
/// As [`load_saelens`]; also for `activation` other than `topk`, `skip_connection` or
/// `transcode`.
pub fn load_sparsify(dir: impl AsRef<Path>) -> Result<SaeNetwork> {
    let dir = dir.as_ref();
    let cfg = read_cfg(dir)?;
    let d = usize_key(&cfg, "d_in")?.ok_or_else(|| bad("cfg.json: no `d_in`"))?;
    let mut m = usize_key(&cfg, "num_latents")?.unwrap_or(0);
    if m == 0 {
        m = d.saturating_mul(usize_key(&cfg, "expansion_factor")?.unwrap_or(32));
    }
    let k = usize_key(&cfg, "k")?.unwrap_or(32);
    if d == 0 || m == 0 || (d as u64) * (m as u64) > 1 << 32 || k == 0 || k > m {
        return Err(bad(format!(
            "cfg.json: d_in = {d}, num_latents = {m}, k = {k}"
        )));
    }
    if let Some(a) = cfg.get("activation").and_then(Value::as_str) {
        if a != "topk" {
            return Err(bad(format!("activation `{a}` is not supported (topk)")));
        }
    }
    for key in ["skip_connection", "transcode", "multi_topk"] {
        if cfg.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(bad(format!("`{key}: true` is not supported")));
        }
    }
    let mut t = read_tensors(&dir.join("sae.safetensors"))?;
    let w_enc = Mat::from_vec(m, d, take(&mut t, "encoder.weight", &[m, d])?);
    let b_enc = take(&mut t, "encoder.bias", &[m])?;
    let w_dec = Mat::from_vec(m, d, take(&mut t, "W_dec", &[m, d])?);
    let b_dec = take(&mut t, "b_dec", &[d])?;
    no_more(&t)?;
    SaeNetwork::from_parts(
        SaeKind::TopK { k },
        w_enc,
        b_enc,
        w_dec,
        b_dec,
        vec![0.0; m],
        true,
    )
}

//! The activations' selections on one row of pre-activations: which latents are active
//! and with what value.

use super::{SaeKind, SaeNetwork};
use crate::kernels::{top_k_positive, Selected};

/// Adds the encoder bias to a row of `x W_encᵀ`, giving the pre-activations.
#[inline]
pub(crate) fn add_bias(row: &mut [f32], b_enc: &[f32]) {
    for (v, b) in row.iter_mut().zip(b_enc) {
        *v += b;
    }
}

/// Latents with `pre > 0` (ReLU).
pub(crate) fn positive(row: &[f32], out: &mut Vec<Selected>) {
    out.clear();
    for (j, &v) in row.iter().enumerate() {
        if v > 0.0 {
            out.push((j as u32, v));
        }
    }
}

/// Latents with `pre > θ_j` and `pre > 0` (JumpReLU of a ReLU).
pub(crate) fn above(row: &[f32], theta: &[f32], out: &mut Vec<Selected>) {
    out.clear();
    for (j, (&v, &t)) in row.iter().zip(theta).enumerate() {
        if v > t && v > 0.0 {
            out.push((j as u32, v));
        }
    }
}

/// Latents with `pre ≥ t` and `pre > 0` (BatchTopK's training selection at the batch
/// threshold `t`).
pub(crate) fn at_least(row: &[f32], t: f32, out: &mut Vec<Selected>) {
    out.clear();
    for (j, &v) in row.iter().enumerate() {
        if v >= t && v > 0.0 {
            out.push((j as u32, v));
        }
    }
}

/// Inference: adds `b_enc` to `row` (in place) and selects the active latents.
pub(crate) fn inference(net: &SaeNetwork, row: &mut [f32], out: &mut Vec<Selected>) {
    add_bias(row, &net.b_enc);
    match net.kind {
        SaeKind::Relu => positive(row, out),
        SaeKind::TopK { k } => top_k_positive(row, k, out),
        SaeKind::BatchTopK { .. } | SaeKind::JumpRelu => above(row, &net.threshold, out),
    }
}

//! One optimisation step of DrSAE training ([`DrsaeStep`]): forward, hand-derived
//! backward, the optimiser's update with the per-matrix rates of the unrolled network, and
//! the projection onto the constraints.

use super::drsae_config::DrsaeConfig;
use super::optimizer::{Optimizer, OptimizerState};
use crate::linalg::Mat;
use crate::models::{DrsaeGrads, DrsaeNetwork, DrsaeWorkspace, LossWeights};
use crate::{Error, Result};

/// The learning-rate multipliers of E, S, b, D, C: each matrix's rate divided by the number
/// of times it appears in the unrolled network (the paper), the classifier's scaled.
fn multipliers(steps: usize, cfg: &DrsaeConfig) -> [f32; 5] {
    if !cfg.unrolled_lr_scaling {
        return [1.0, 1.0, 1.0, 1.0, cfg.classifier_lr];
    }
    let t = steps as f32;
    [
        1.0 / t,
        1.0 / (t - 1.0).max(1.0),
        1.0 / t,
        1.0,
        cfg.classifier_lr,
    ]
}

/// Flat views of a model's tensors with their gradients and multipliers, in the fixed
/// order E, S, b, D, C.
fn tensors<'a>(
    model: &'a mut DrsaeNetwork,
    grads: &'a DrsaeGrads,
    cfg: &DrsaeConfig,
) -> [(&'a mut [f32], &'a [f32], f32); 5] {
    let m = multipliers(model.steps, cfg);
    [
        (model.e.as_mut_slice(), grads.e.as_slice(), m[0]),
        (model.s.as_mut_slice(), grads.s.as_slice(), m[1]),
        (&mut model.b[..], &grads.b[..], m[2]),
        (model.d.as_mut_slice(), grads.d.as_slice(), m[3]),
        (model.c.as_mut_slice(), grads.c.as_slice(), m[4]),
    ]
}

/// One optimisation step of DrSAE training, with every buffer allocated once: forward,
/// hand-derived backward, optimiser update with the per-matrix rates, projection. This is
/// the step [`train_drsae`](super::train_drsae) runs and the `bench` example measures.
pub struct DrsaeStep {
    ws: DrsaeWorkspace,
    grads: DrsaeGrads,
    pub(crate) opt: OptimizerState,
    e_max: f32,
}

impl DrsaeStep {
    /// Buffers and optimiser state for `model` under `cfg`.
    pub fn new(model: &DrsaeNetwork, cfg: &DrsaeConfig) -> Self {
        let lengths = [
            model.e.as_slice().len(),
            model.s.as_slice().len(),
            model.b.len(),
            model.d.as_slice().len(),
            model.c.as_slice().len(),
        ];
        DrsaeStep {
            ws: DrsaeWorkspace::default(),
            grads: model.zero_grads(),
            opt: OptimizerState::new(cfg.optimizer, &lengths),
            e_max: cfg.e_bound(),
        }
    }

    /// Updates taken so far.
    pub fn updates(&self) -> u64 {
        self.opt.step
    }

    /// One step on the batch `(x, labels)` with learning rate `lr`; returns the batch loss
    /// (before the update).
    ///
    /// # Errors
    /// [`Error::Diverged`] if the loss is not finite (the model is left unchanged).
    pub fn run(
        &mut self,
        model: &mut DrsaeNetwork,
        cfg: &DrsaeConfig,
        x: &Mat,
        labels: &[u8],
        weights: &LossWeights,
        lr: f32,
    ) -> Result<crate::models::BatchLoss> {
        let bl = model.forward(x, Some(labels), &mut self.ws);
        if !bl.mean(weights).is_finite() {
            return Err(Error::Diverged {
                step: self.opt.step,
                what: "loss".into(),
            });
        }
        if cfg.optimizer == Optimizer::Sgd {
            // Plain SGD needs no optimiser state: fuse the update and the projection into the
            // backward pass.
            let rates = multipliers(model.steps, cfg).map(|m| lr * m);
            model.sgd_step(x, Some(labels), weights, &mut self.ws, rates, self.e_max);
            self.opt.step += 1;
        } else {
            model.backward(x, Some(labels), weights, &mut self.ws, &mut self.grads);
            self.opt.update(lr, &mut tensors(model, &self.grads, cfg));
            model.project(self.e_max);
        }
        Ok(bl)
    }
}

//! What the group-sparse training loop needs of a model, so that one loop
//! ([`train_group_ae`](crate::train::train_group_ae)) trains the dense, locally-connected
//! and convolutional group-sparse auto-encoders alike.

use super::{ConvAe, ConvAeWorkspace, GroupAe, GroupAeGrads, GroupAeLoss, GroupAeWorkspace};
use crate::kernels::Groups;
use crate::linalg::Mat;

/// A group-sparse auto-encoder with an encoder `g ⊙ σ(W·x + d)` and a linear decoder D:
/// four parameter tensors, named `W`, `bias`, `gain`, `D`, whose gradients live in a
/// [`GroupAeGrads`].
pub trait GroupSparseModel {
    /// Reused buffers of one batch size.
    type Workspace: Default;
    /// Values in one input example.
    fn inputs(&self) -> usize;
    /// Code units of one example (what the groups range over).
    fn code_units(&self) -> usize;
    /// A description of the architecture, for checkpoint fingerprints.
    fn describe(&self) -> String;
    /// The parameters in the order `W`, `bias`, `gain`, `D`, with their shapes.
    fn params(&self) -> [(&'static str, Vec<usize>, &[f32]); 4];
    /// Mutable parameters, same order.
    fn params_mut(&mut self) -> [&mut [f32]; 4];
    /// Zero gradients of this model's shapes.
    fn zero_grads(&self) -> GroupAeGrads;
    /// Encodes and reconstructs the batch (one example per row); returns its loss terms.
    fn forward(&self, x: &Mat, groups: &Groups, ws: &mut Self::Workspace) -> GroupAeLoss;
    /// Gradient of the batch-mean loss `½‖x − x̂‖²_w + λψ` of the last forward pass.
    fn backward(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut Self::Workspace,
        grads: &mut GroupAeGrads,
    );
    /// True when [`GroupSparseModel::psd_step`] is implemented.
    fn has_psd(&self) -> bool {
        false
    }
    /// Forward then backward on one batch, returning the forward's loss terms. Models may
    /// override it with a fused or data-parallel version (the trainer calls this).
    fn gradients(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut Self::Workspace,
        grads: &mut GroupAeGrads,
    ) -> GroupAeLoss {
        let loss = self.forward(x, groups, ws);
        self.backward(x, groups, lambda, ws, grads);
        loss
    }
    /// One PSD step (see [`GroupAe::psd_step`]), or `None` when the model has no PSD form.
    #[allow(clippy::too_many_arguments)]
    fn psd_step(
        &self,
        _x: &Mat,
        _groups: &Groups,
        _lambda: f32,
        _alpha: f32,
        _steps: usize,
        _lipschitz: f32,
        _ws: &mut Self::Workspace,
        _grads: &mut GroupAeGrads,
    ) -> Option<GroupAeLoss> {
        None
    }
    /// The Lipschitz constant of the reconstruction gradient in the codes (for PSD).
    fn decoder_lipschitz(&self) -> f32 {
        1.0
    }
    /// Re-imposes the constraints after an update.
    fn project(&mut self);
}

/// Gradient slices in the order of [`GroupSparseModel::params`].
pub(crate) fn grad_slices(g: &GroupAeGrads) -> [&[f32]; 4] {
    [g.w.as_slice(), &g.bias, &g.gain, g.dec.as_slice()]
}

impl GroupSparseModel for GroupAe {
    type Workspace = GroupAeWorkspace;
    fn inputs(&self) -> usize {
        self.w.ncols()
    }
    fn code_units(&self) -> usize {
        self.hidden()
    }
    fn describe(&self) -> String {
        // The support mask and reconstruction weights are fixed architecture: a checkpoint
        // taken with another layout must not resume into this one.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |v: u32| {
            h ^= v as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        if let Some(s) = &self.support {
            s.as_slice().iter().for_each(|v| mix(v.to_bits()));
        }
        if let Some(w) = &self.recon_weights {
            w.iter().for_each(|v| mix(v.to_bits()));
        }
        format!(
            "dense {:?} {:?} support {} weights {} layout {h:016x}",
            self.w.shape(),
            self.form,
            self.support.is_some(),
            self.recon_weights.is_some()
        )
    }
    fn params(&self) -> [(&'static str, Vec<usize>, &[f32]); 4] {
        let (n, m) = self.w.shape();
        [
            ("W", vec![n, m], self.w.as_slice()),
            ("bias", vec![n], &self.bias),
            ("gain", vec![n], &self.gain),
            ("D", vec![m, n], self.dec.as_slice()),
        ]
    }
    fn params_mut(&mut self) -> [&mut [f32]; 4] {
        [
            self.w.as_mut_slice(),
            &mut self.bias,
            &mut self.gain,
            self.dec.as_mut_slice(),
        ]
    }
    fn zero_grads(&self) -> GroupAeGrads {
        GroupAe::zero_grads(self)
    }
    fn forward(&self, x: &Mat, groups: &Groups, ws: &mut GroupAeWorkspace) -> GroupAeLoss {
        GroupAe::forward(self, x, groups, ws)
    }
    fn backward(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut GroupAeWorkspace,
        grads: &mut GroupAeGrads,
    ) {
        GroupAe::backward(self, x, groups, lambda, ws, grads)
    }
    fn has_psd(&self) -> bool {
        true
    }
    fn psd_step(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        alpha: f32,
        steps: usize,
        lipschitz: f32,
        ws: &mut GroupAeWorkspace,
        grads: &mut GroupAeGrads,
    ) -> Option<GroupAeLoss> {
        Some(GroupAe::psd_step(
            self, x, groups, lambda, alpha, steps, lipschitz, ws, grads,
        ))
    }
    fn decoder_lipschitz(&self) -> f32 {
        let n = self.hidden();
        let mut gram = Mat::zeros(n, n);
        crate::linalg::gemm(1.0, self.dec.t(), self.dec.view(), 0.0, gram.view_mut());
        crate::solvers::largest_eigenvalue(&gram)
    }
    fn project(&mut self) {
        GroupAe::project(self)
    }
}

impl GroupSparseModel for ConvAe {
    type Workspace = ConvAeWorkspace;
    fn inputs(&self) -> usize {
        self.shape.image_len()
    }
    fn code_units(&self) -> usize {
        self.shape.positions() * self.maps()
    }
    fn describe(&self) -> String {
        format!(
            "conv {:?} maps {} {:?} weighted {}",
            self.shape,
            self.maps(),
            self.form,
            self.weighted
        )
    }
    fn params(&self) -> [(&'static str, Vec<usize>, &[f32]); 4] {
        let (n, m) = self.filters.shape();
        [
            ("W", vec![n, m], self.filters.as_slice()),
            ("bias", vec![n], &self.bias),
            ("gain", vec![n], &self.gain),
            ("D", vec![m, n], self.dec.as_slice()),
        ]
    }
    fn params_mut(&mut self) -> [&mut [f32]; 4] {
        [
            self.filters.as_mut_slice(),
            &mut self.bias,
            &mut self.gain,
            self.dec.as_mut_slice(),
        ]
    }
    fn zero_grads(&self) -> GroupAeGrads {
        ConvAe::zero_grads(self)
    }
    fn forward(&self, x: &Mat, groups: &Groups, ws: &mut ConvAeWorkspace) -> GroupAeLoss {
        ConvAe::forward(self, x, groups, ws)
    }
    fn backward(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut ConvAeWorkspace,
        grads: &mut GroupAeGrads,
    ) {
        ConvAe::backward(self, x, groups, lambda, ws, grads)
    }
    fn gradients(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut ConvAeWorkspace,
        grads: &mut GroupAeGrads,
    ) -> GroupAeLoss {
        ConvAe::gradients(self, x, groups, lambda, ws, grads)
    }
    fn project(&mut self) {
        ConvAe::project(self)
    }
}

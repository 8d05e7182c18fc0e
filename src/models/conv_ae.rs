//! Convolutional group-sparse auto-encoder (Kavukcuoglu et al., NIPS 2010, with the
//! lecture's ReLU + scaling layer).
//!
//! Images are channels-last (`H × W × C`, see [`ConvShape`]). With `M` maps of `k × k × C`
//! filters:
//!
//! - encoder: `U = valid_conv(x, W) + d`, `Z = g ⊙ σ(U)` — codes `out_h × out_w × M`;
//! - decoder: `x̂ = Σ_m D_m ∗ Z_m`, the "full" convolution (transposed valid convolution);
//! - loss per image: `½ Σ_p w_p (x − x̂)_p² + λ ψ(Z)` with `w` the border coverage weights
//!   ([`ConvShape::coverage_weights`]) and ψ the group term (L2 pooling over positions and
//!   maps, [`Groups::spatial_pools`]).
//!
//! Both convolutions are one GEMM over the patch matrix of the whole batch
//! ([`im2col`]'s layout): `U = P Wᵀ`, decoder patches `Y = Z Dᵀ` scattered back by
//! col2im. The backward pass, derived by hand, is three more GEMMs: with
//! `Q = im2col(w ⊙ r)`, `∂Z = −Q D / B + λ∇ψ / B`, `∂D = −Qᵀ Z / B`, `∂W = ∂Uᵀ P`.
//! P and Q are never materialised: the products that read them are gathered GEMMs
//! ([`gathered_gemm`], [`gathered_gemm_tn`]) that index the images in place. With the ReLU
//! form the bias, ReLU and gain are applied inside the encoder product
//! ([`gathered_gemm_relu`]); single-channel layers add the decoder product straight into
//! the residual images ([`gathered_gemm_scatter`]), so neither U nor Y is written.
//!
//! # Example: train one layer, then use its pooled outputs as the next layer's input
//! ```
//! use drsae::kernels::{ConvShape, Groups};
//! use drsae::linalg::Mat;
//! use drsae::models::{ConvAe, ConvAeWorkspace, EncoderForm};
//! use drsae::train::{train_group_ae, GroupAeConfig};
//! use rand::SeedableRng;
//!
//! let mut rng = drsae::rng::seeded(0);
//! let shape = ConvShape::new(12, 12, 1, 5)?; // 12 × 12 images, 5 × 5 kernels → 8 × 8 maps
//! let images = Mat::random(64, shape.image_len(), rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
//! // L2 pooling over 2 × 2 positions of each of 4 maps, stride 2: a 4 × 4 × 4 pooled image.
//! let groups = Groups::spatial_pools(shape.out_h(), shape.out_w(), 4, 2, 2, 1)?;
//! let mut layer = ConvAe::init(shape, 4, EncoderForm::Relu, &mut rng);
//! let cfg = GroupAeConfig { lambda: 0.05, batch: 16, epochs: 2, ..Default::default() };
//! train_group_ae(&mut layer, &images, &groups, &cfg, |_, _, _| {})?;
//! let pooled = layer.pooled(&images, &groups, &mut ConvAeWorkspace::default());
//! assert_eq!(pooled.shape(), (64, 4 * 4 * 4));
//! let next = ConvShape::new(4, 4, 4, 3)?; // the next layer reads 4 × 4 × 4 images
//! assert_eq!(next.image_len(), pooled.ncols());
//! # Ok::<(), drsae::Error>(())
//! ```

use super::group_ae::add_group_gradients;
use super::group_ae::{
    encoder_activation, encoder_activation_backward, loss_terms, normalize_columns,
    weighted_residual,
};
use super::{EncoderForm, GroupAe, GroupAeGrads, GroupAeLoss};
#[cfg(doc)]
use crate::kernels::im2col;
use crate::kernels::{
    col2im_add, gathered_gemm, gathered_gemm_relu, gathered_gemm_scatter, gathered_gemm_tn,
    ConvShape, GatherIndex, Groups,
};
use crate::linalg::{transpose_into, Mat};
use rand::Rng;

/// Parameters of a convolutional group-sparse auto-encoder, read through accessors and
/// changed by training; [`ConvAeParts`] builds one from raw tensors
/// ([`ConvAe::from_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAe {
    pub(crate) shape: ConvShape,
    pub(crate) filters: Mat,
    pub(crate) bias: Vec<f32>,
    pub(crate) gain: Vec<f32>,
    pub(crate) dec: Mat,
    pub(crate) form: EncoderForm,
    pub(crate) weighted: bool,
}

/// A [`ConvAe`]'s tensors and settings by value ([`ConvAe::into_parts`] /
/// [`ConvAe::from_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAeParts {
    /// Input geometry and kernel size.
    pub shape: ConvShape,
    /// Encoder filters W, `maps × patch_len` (patch layout of [`im2col`]).
    pub filters: Mat,
    /// Per-map encoder bias d.
    pub bias: Vec<f32>,
    /// Per-map gain g ≥ 0 (the scaling layer).
    pub gain: Vec<f32>,
    /// Decoder kernels D, `patch_len × maps` (training keeps unit-norm columns).
    pub dec: Mat,
    /// Non-linearity.
    pub form: EncoderForm,
    /// Weight the reconstruction error by the border coverage.
    pub weighted: bool,
}

/// Reused buffers of [`ConvAe`].
#[derive(Clone, Debug, Default)]
pub struct ConvAeWorkspace {
    /// Patch-matrix index of the last batch size.
    index: GatherIndex,
    /// The codes' rows as a gathered matrix.
    zindex: GatherIndex,
    /// The decoder's transpose Dᵀ read in place, taps in column-major order.
    dindex: GatherIndex,
    /// The patch matrix with its taps in column-major order (the decoder's scatter target).
    sindex: GatherIndex,
    /// Packed right operand / padded copy of the gathered GEMMs.
    scratch: Vec<f32>,
    /// `∂Wᵀ`, `patch_len × maps`.
    gwt: Vec<f32>,
    u: Mat,
    h: Mat,
    z: Mat,
    gz: Mat,
    /// Decoder patches Y (multi-channel images).
    ycols: Vec<f32>,
    r: Mat,
    norms: Vec<f32>,
    weights: Vec<f32>,
    /// Per-chunk state of [`ConvAe::gradients`].
    chunks: Chunks,
}

/// Chunk states; cloning a workspace gives fresh (empty) chunks — they are scratch.
#[derive(Debug, Default)]
struct Chunks(Vec<std::sync::Mutex<Chunk>>);

impl Clone for Chunks {
    fn clone(&self) -> Self {
        Chunks(Vec::new())
    }
}

/// One chunk of a data-parallel gradient: its images, buffers, gradient and loss.
#[derive(Debug, Default)]
struct Chunk {
    x: Mat,
    ws: ConvAeWorkspace,
    grads: Option<GroupAeGrads>,
    loss: GroupAeLoss,
}

/// Images per chunk of [`ConvAe::gradients`]: fixed, so the split (and the result) does not
/// depend on the thread count.
pub const CONV_CHUNK: usize = 4;

impl ConvAe {
    /// Random initialisation as [`GroupAe::init`] with `patch_len` inputs and `maps` units:
    /// unit-norm decoder kernels, encoder filters half their transposes, bias 0, gain 1.
    pub fn init<R: Rng + ?Sized>(
        shape: ConvShape,
        maps: usize,
        form: EncoderForm,
        rng: &mut R,
    ) -> ConvAe {
        let dense = GroupAe::init(shape.patch_len(), maps, form, rng);
        ConvAe {
            shape,
            filters: dense.w,
            bias: dense.bias,
            gain: dense.gain,
            dec: dense.dec,
            form,
            weighted: true,
        }
    }

    /// A layer from its tensors, taken as they are (no projection).
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) on empty or inconsistent shapes (filters
    /// `maps × patch_len`, bias and gain `maps`, D `patch_len × maps`) or a negative gain;
    /// [`Error::NonFiniteInput`](crate::Error::NonFiniteInput) on a non-finite value.
    pub fn from_parts(p: ConvAeParts) -> crate::Result<ConvAe> {
        let (maps, len) = p.filters.shape();
        if maps == 0
            || len != p.shape.patch_len()
            || p.bias.len() != maps
            || p.gain.len() != maps
            || p.dec.shape() != (len, maps)
        {
            return Err(crate::Error::format(
                "convolutional auto-encoder",
                format!(
                    "inconsistent shapes: filters {:?}, bias {}, gain {}, D {:?} for patches of {}",
                    p.filters.shape(),
                    p.bias.len(),
                    p.gain.len(),
                    p.dec.shape(),
                    p.shape.patch_len()
                ),
            ));
        }
        crate::check_finite("filters", p.filters.as_slice())?;
        crate::check_finite("bias", &p.bias)?;
        crate::check_finite("gain", &p.gain)?;
        crate::check_finite("D", p.dec.as_slice())?;
        if p.gain.iter().any(|&g| g < 0.0) {
            return Err(crate::Error::format(
                "convolutional auto-encoder",
                "a gain is negative",
            ));
        }
        Ok(ConvAe {
            shape: p.shape,
            filters: p.filters,
            bias: p.bias,
            gain: p.gain,
            dec: p.dec,
            form: p.form,
            weighted: p.weighted,
        })
    }

    /// The layer's tensors and settings by value (the inverse of
    /// [`from_parts`](Self::from_parts)).
    pub fn into_parts(self) -> ConvAeParts {
        ConvAeParts {
            shape: self.shape,
            filters: self.filters,
            bias: self.bias,
            gain: self.gain,
            dec: self.dec,
            form: self.form,
            weighted: self.weighted,
        }
    }

    /// Input geometry and kernel size.
    pub fn shape(&self) -> ConvShape {
        self.shape
    }
    /// Encoder filters W, `maps × patch_len`.
    pub fn filters(&self) -> &Mat {
        &self.filters
    }
    /// Per-map encoder bias d.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    /// Per-map gains g ≥ 0.
    pub fn gain(&self) -> &[f32] {
        &self.gain
    }
    /// Decoder kernels D, `patch_len × maps`.
    pub fn dec(&self) -> &Mat {
        &self.dec
    }
    /// The non-linearity.
    pub fn form(&self) -> EncoderForm {
        self.form
    }
    /// Whether the reconstruction error is weighted by the border coverage.
    pub fn weighted(&self) -> bool {
        self.weighted
    }

    /// Number of feature maps.
    pub fn maps(&self) -> usize {
        self.filters.nrows()
    }

    /// Zero gradients of this model's shapes.
    pub fn zero_grads(&self) -> GroupAeGrads {
        GroupAeGrads {
            w: Mat::zeros(self.filters.nrows(), self.filters.ncols()),
            bias: vec![0.0; self.maps()],
            gain: vec![0.0; self.maps()],
            dec: Mat::zeros(self.dec.nrows(), self.dec.ncols()),
        }
    }

    #[track_caller]
    fn check_input(&self, x: &Mat) {
        assert_eq!(
            x.ncols(),
            self.shape.image_len(),
            "x has {} columns, the model's images {}",
            x.ncols(),
            self.shape.image_len()
        );
    }

    /// Code units per image; panics unless the groups range over exactly those.
    #[track_caller]
    fn check_groups(&self, groups: &Groups) -> usize {
        let per = self.shape.positions() * self.maps();
        assert_eq!(
            groups.n_units(),
            per,
            "groups over {} units for {per} codes per image",
            groups.n_units()
        );
        per
    }

    /// Encoder only: the codes of a batch, one image per row of the result
    /// (`out_h·out_w·maps` values, channels-last), left in the workspace.
    #[track_caller]
    pub fn encode<'a>(&self, x: &Mat, ws: &'a mut ConvAeWorkspace) -> &'a Mat {
        self.check_input(x);
        let (batch, maps) = (x.nrows(), self.maps());
        let rows = batch * self.shape.positions();
        let relu = self.form == EncoderForm::Relu;
        // The fused ReLU encoder never writes the pre-activation U.
        let u = if relu { None } else { Some(&mut ws.u) };
        for mat in [&mut ws.h, &mut ws.z].into_iter().chain(u) {
            if mat.ncols() != maps {
                *mat = Mat::zeros(rows, maps);
            }
            mat.resize_rows(rows);
        }
        if ws.index.rows() != rows || ws.index.cols() != self.shape.patch_len() {
            ws.index = GatherIndex::patches(&self.shape, batch);
        }
        // U = P Wᵀ, P read in place
        let p = ws.index.over(x.as_slice());
        if relu {
            let (h, z) = (ws.h.as_mut_slice(), ws.z.as_mut_slice());
            gathered_gemm_relu(
                p,
                self.filters.t(),
                &self.bias,
                &self.gain,
                h,
                z,
                &mut ws.scratch,
            );
        } else {
            let u = ws.u.as_mut_slice();
            gathered_gemm(1.0, p, self.filters.t(), false, u, maps, &mut ws.scratch);
            encoder_activation(
                self.form, &self.bias, &self.gain, &mut ws.u, &mut ws.h, &mut ws.z,
            );
        }
        &ws.z
    }

    /// The L2-pooled features of a batch: row b holds the group norms of image b's codes
    /// (with [`Groups::spatial_pools`], a pooled channels-last image).
    ///
    /// # Panics
    /// If the groups do not range over this model's code units.
    #[track_caller]
    pub fn pooled(&self, x: &Mat, groups: &Groups, ws: &mut ConvAeWorkspace) -> Mat {
        let per = self.check_groups(groups);
        let z = self.encode(x, ws);
        let mut out = Mat::zeros(x.nrows(), groups.len());
        for (zrow, orow) in z.as_slice().chunks_exact(per).zip(out.rows_mut()) {
            groups.norms(zrow, orow);
        }
        out
    }

    /// Encodes and reconstructs the batch; returns its loss terms (reconstruction weighted
    /// by the border coverage when [`ConvAe::weighted`]).
    ///
    /// # Panics
    /// If the shapes of `x` or `groups` do not match the model.
    #[track_caller]
    pub fn forward(&self, x: &Mat, groups: &Groups, ws: &mut ConvAeWorkspace) -> GroupAeLoss {
        self.check_groups(groups);
        self.encode(x, ws);
        let (rows, plen, maps) = (ws.z.nrows(), self.shape.patch_len(), self.maps());
        // r = x − col2im(Z Dᵀ). Single-channel images add Z·Dᵀ straight into the residual
        // (Dᵀ read in place; eight neighbouring placements of one kernel tap are eight
        // neighbouring pixels: one vector add); multi-channel ones write Y = Z Dᵀ (k·C
        // contiguous values per kernel row) and col2im it.
        ws.r.clone_from(x);
        if self.shape.channels == 1 {
            if ws.dindex.rows() != maps || ws.dindex.cols() != plen || ws.sindex.rows() != rows {
                // Taps in column-major order (`ConvShape::column_major_taps`): a register
                // tile's taps land on different image rows, so its vector adds never
                // overlap (measured: in row-major order the scatter took twice the
                // product's time, stalled on store forwarding).
                let taps = self.shape.column_major_taps();
                // Dᵀ of the row-major `plen × maps` decoder: (m, t) at t·maps + m
                let dt_offsets = taps.iter().map(|t| t * maps).collect();
                ws.dindex = GatherIndex::new((0..maps).collect(), dt_offsets);
                ws.sindex = GatherIndex::patch_taps(&self.shape, x.nrows(), &taps);
            }
            let dt = ws.dindex.over(self.dec.as_slice());
            let out = ws.sindex.over_mut(ws.r.as_mut_slice());
            gathered_gemm_scatter(-1.0, ws.z.as_slice(), maps, dt, out, &mut ws.scratch);
        } else {
            if ws.zindex.rows() != rows || ws.zindex.cols() != maps {
                ws.zindex = GatherIndex::row_major(rows, maps, maps);
            }
            let z = ws.zindex.over(ws.z.as_slice());
            ws.ycols.resize(rows * plen, 0.0);
            gathered_gemm(
                -1.0,
                z,
                self.dec.t(),
                false,
                &mut ws.ycols,
                plen,
                &mut ws.scratch,
            );
            col2im_add(&self.shape, &ws.ycols, ws.r.as_mut_slice());
        }
        if self.weighted && ws.weights.len() != self.shape.image_len() {
            ws.weights = self.shape.coverage_weights();
        }
        let weights = self.weighted.then_some(&ws.weights[..]);
        let rec = weighted_residual(&mut ws.r, weights);
        loss_terms(rec, ws.z.as_slice(), groups, &mut ws.norms)
    }

    /// The codes of the last forward pass (`B·positions × maps`, image-major).
    pub fn codes<'a>(&self, ws: &'a ConvAeWorkspace) -> &'a Mat {
        &ws.z
    }

    /// The reconstructions `x̂ = Σ_m D_m ∗ Z_m` of a batch (one image per row).
    ///
    /// # Panics
    /// If the shapes of `x` or `groups` do not match the model.
    #[track_caller]
    pub fn reconstruct(&self, x: &Mat, groups: &Groups, ws: &mut ConvAeWorkspace) -> Mat {
        if self.weighted {
            // The forward pass weights the residual in place: reconstruct unweighted.
            let plain = ConvAe {
                weighted: false,
                ..self.clone()
            };
            return plain.reconstruct(x, groups, ws);
        }
        self.forward(x, groups, ws);
        let mut out = x.clone();
        for (o, r) in out.as_mut_slice().iter_mut().zip(ws.r.as_slice()) {
            *o -= r;
        }
        out
    }

    /// Gradient of the batch-mean loss of the last [`ConvAe::forward`].
    pub fn backward(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut ConvAeWorkspace,
        grads: &mut GroupAeGrads,
    ) {
        self.backward_scaled(x, groups, lambda, 1.0 / x.nrows() as f32, ws, grads)
    }

    /// Forward and backward together, data-parallel: the batch is cut into chunks of
    /// [`CONV_CHUNK`] images, each chunk's forward and backward (single-threaded GEMMs,
    /// layout kernels and group terms included) runs on one of the GEMM threads, and the
    /// chunk gradients are summed in chunk order — the result does not depend on the thread
    /// count. Equal to [`ConvAe::forward`] + [`ConvAe::backward`] up to rounding. Returns the
    /// batch's loss terms.
    pub fn gradients(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        ws: &mut ConvAeWorkspace,
        grads: &mut GroupAeGrads,
    ) -> GroupAeLoss {
        self.check_input(x);
        let batch = x.nrows();
        let inv_b = 1.0 / batch.max(1) as f32;
        let parts = batch.div_ceil(CONV_CHUNK);
        if ws.chunks.0.len() < parts {
            ws.chunks.0.resize_with(parts, Default::default);
        }
        crate::linalg::parallel_parts(parts, &|p| {
            let mut guard = ws.chunks.0[p].lock().unwrap_or_else(|e| e.into_inner());
            let chunk = &mut *guard;
            let (lo, hi) = (p * CONV_CHUNK, ((p + 1) * CONV_CHUNK).min(batch));
            if chunk.x.shape() != (hi - lo, x.ncols()) {
                chunk.x = Mat::zeros(hi - lo, x.ncols());
            }
            chunk
                .x
                .as_mut_slice()
                .copy_from_slice(&x.as_slice()[lo * x.ncols()..hi * x.ncols()]);
            let g = chunk.grads.get_or_insert_with(|| self.zero_grads());
            chunk.loss = self.forward(&chunk.x, groups, &mut chunk.ws);
            self.backward_scaled(&chunk.x, groups, lambda, inv_b, &mut chunk.ws, g);
        });
        let mut loss = GroupAeLoss::default();
        for (p, c) in ws.chunks.0[..parts].iter_mut().enumerate() {
            let c = c.get_mut().unwrap_or_else(|e| e.into_inner());
            let g = c.grads.as_ref().expect("every chunk ran");
            let pairs = [
                (grads.w.as_mut_slice(), g.w.as_slice()),
                (&mut grads.bias[..], &g.bias[..]),
                (&mut grads.gain[..], &g.gain[..]),
                (grads.dec.as_mut_slice(), g.dec.as_slice()),
            ];
            for (dst, src) in pairs {
                if p == 0 {
                    dst.copy_from_slice(src);
                } else {
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                }
            }
            loss.reconstruction += c.loss.reconstruction;
            loss.group += c.loss.group;
            loss.active_groups += c.loss.active_groups * c.loss.count as f64;
            loss.count += c.loss.count;
        }
        loss.active_groups /= loss.count.max(1) as f64;
        loss
    }

    fn backward_scaled(
        &self,
        x: &Mat,
        groups: &Groups,
        lambda: f32,
        inv_b: f32,
        ws: &mut ConvAeWorkspace,
        grads: &mut GroupAeGrads,
    ) {
        let maps = self.maps();
        if ws.gz.shape() != ws.z.shape() {
            ws.gz = Mat::zeros(ws.z.nrows(), ws.z.ncols());
        }
        // Q = im2col(w ⊙ r), read in place (ws.r already holds w ⊙ r)
        let q = ws.index.over(ws.r.as_slice());
        // ∂Z = −Q D / B + λ∇ψ / B
        gathered_gemm(
            -inv_b,
            q,
            self.dec.view(),
            false,
            ws.gz.as_mut_slice(),
            maps,
            &mut ws.scratch,
        );
        add_group_gradients(
            ws.z.as_slice(),
            groups,
            &ws.norms,
            lambda * inv_b,
            ws.gz.as_mut_slice(),
        );
        // ∂D = −Qᵀ Z / B
        gathered_gemm_tn(
            -inv_b,
            q,
            ws.z.as_slice(),
            maps,
            maps,
            false,
            grads.dec.as_mut_slice(),
            maps,
            &mut ws.scratch,
        );
        // encoder: ∂U, ∂g, ∂d, then ∂W = ∂Uᵀ P = (Pᵀ ∂U)ᵀ
        encoder_activation_backward(self.form, &self.gain, &ws.h, &mut ws.gz, grads);
        ws.gwt.resize(self.shape.patch_len() * maps, 0.0);
        gathered_gemm_tn(
            1.0,
            ws.index.over(x.as_slice()),
            ws.gz.as_slice(),
            maps,
            maps,
            false,
            &mut ws.gwt,
            maps,
            &mut ws.scratch,
        );
        let plen = self.shape.patch_len();
        transpose_into(&ws.gwt, plen, maps, grads.w.as_mut_slice(), plen);
    }

    /// Constraints after an update: unit-norm decoder kernels, non-negative gains.
    pub fn project(&mut self) {
        normalize_columns(&mut self.dec);
        self.gain.iter_mut().for_each(|g| *g = g.max(0.0));
    }

    /// Decoder kernel of map `m` (patch layout, `k·k·C` values).
    pub fn decoder_kernel(&self, m: usize) -> Vec<f32> {
        (0..self.dec.nrows()).map(|i| self.dec[(i, m)]).collect()
    }

    /// Encoder filter of map `m` (patch layout).
    pub fn encoder_filter(&self, m: usize) -> Vec<f32> {
        self.filters.row(m).to_vec()
    }

    /// Flops of one forward + backward pass over `batch` images (five GEMMs of
    /// `2·B·positions·patch_len·maps` each; the layout kernels are not counted).
    pub fn step_flops(&self, batch: usize) -> f64 {
        5.0 * 2.0 * (batch * self.shape.positions() * self.shape.patch_len() * self.maps()) as f64
    }
}

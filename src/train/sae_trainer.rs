//! Training a sparse auto-encoder on a stream of activation vectors: Adam with learning-rate
//! warm-up and a final linear decay, sparsity-coefficient warm-up, dead-latent tracking
//! feeding the AuxK loss, decoder rows kept at unit norm (with the gradient's radial part
//! removed) or free, the decoder bias started at the data's geometric median, inputs scaled
//! so that their mean norm is √d_in (SAELens's `expected_average_only_in`), and BatchTopK's
//! inference threshold estimated as a running mean.
//!
//! One file on purpose: the configuration, the loop, its per-stretch metrics and its
//! checkpoint state are one training run's parts, each used only here.

use crate::data::{sample_source, ActivationSource};
use crate::linalg::{dot, norm, scale, Mat};
use crate::models::{AuxK, SaeGrads, SaeKind, SaeNetwork, SaeObjective, SaeWorkspace};
use crate::train::checkpoint::{take_tensor, Checkpointing, Tensors, MAX_COUNT};
use crate::train::loop_checkpoint::{LoopCheckpointer, LoopPosition, OwnedTensor};
use crate::train::{Optimizer, OptimizerState};
use crate::{Compact, Error, Result};
use std::time::Instant;

/// How the decoder's rows are constrained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderNorm {
    /// Unconstrained (the ReLU SAE's L1 is weighted by the norms instead).
    Free,
    /// Unit norm after every step, and the gradient's component along each row removed
    /// before it (Gao et al.'s TopK recipe).
    Unit,
}

/// The decoder bias before training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BDecInit {
    /// Zero.
    Zero,
    /// The mean of a sample of the data.
    Mean,
    /// The geometric median of a sample (Weiszfeld's iterations from the mean).
    GeometricMedian,
}

/// Every setting of [`train_sae`] (the estimator's parameter table documents the defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct SaeConfig {
    /// Architecture.
    pub kind: SaeKind,
    /// Latents.
    pub d_sae: usize,
    /// λ at the end of its warm-up (ReLU's L1, JumpReLU's L0).
    pub sparsity: f32,
    /// Steps over which λ rises linearly from 0.
    pub sparsity_warmup: u64,
    /// JumpReLU's kernel bandwidth ε.
    pub bandwidth: f32,
    /// JumpReLU's initial θ.
    pub init_threshold: f32,
    /// AuxK (`k_aux` 0 means `d_in / 2`).
    pub aux: Option<AuxK>,
    /// Matryoshka prefix sizes (ascending, the last `d_sae`); empty for none.
    pub prefixes: Vec<usize>,
    /// A latent is dead after this many training samples without firing.
    pub dead_after: u64,
    /// Adam's learning rate.
    pub lr: f32,
    /// Adam's β₁, β₂, ε.
    pub adam: (f32, f32, f32),
    /// Steps of linear learning-rate warm-up from 0.
    pub lr_warmup: u64,
    /// Final steps over which the rate decays linearly to 0.
    pub lr_decay: u64,
    /// Rows per step.
    pub batch: usize,
    /// Training samples in all (rounded up to whole batches).
    pub samples: u64,
    /// Decoder row constraint.
    pub decoder: DecoderNorm,
    /// Norm of the initial decoder rows (with [`DecoderNorm::Unit`] they start at 1).
    pub decoder_init_norm: f32,
    /// Decoder bias initialisation.
    pub b_dec_init: BDecInit,
    /// Scale inputs to mean norm √d_in (the factor is estimated on a sample and returned).
    pub normalize_activations: bool,
    /// Subtract `b_dec` from the input before encoding.
    pub apply_b_dec_to_input: bool,
    /// BatchTopK: decay of the running mean that estimates the inference threshold.
    pub threshold_decay: f32,
    /// Initialisation (the data's order belongs to the source).
    pub seed: u64,
    /// Report every this many steps (0: only at the end).
    pub log_every: u64,
}

impl Default for SaeConfig {
    fn default() -> Self {
        SaeConfig {
            kind: SaeKind::TopK { k: 32 },
            d_sae: 4096,
            sparsity: 1.0,
            sparsity_warmup: 0,
            bandwidth: 0.001,
            init_threshold: 0.001,
            aux: Some(AuxK {
                k_aux: 0,
                coefficient: 1.0 / 32.0,
            }),
            prefixes: Vec::new(),
            dead_after: 1_000_000,
            lr: 3e-4,
            adam: (0.9, 0.999, 1e-8),
            lr_warmup: 0,
            lr_decay: 0,
            batch: 4096,
            samples: 10_000_000,
            decoder: DecoderNorm::Unit,
            decoder_init_norm: 0.1,
            b_dec_init: BDecInit::GeometricMedian,
            normalize_activations: true,
            apply_b_dec_to_input: true,
            threshold_decay: 0.99,
            seed: 0,
            log_every: 100,
        }
    }
}

/// Figures of a stretch of training (means over its steps) or of an evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SaeReport {
    /// Optimisation steps taken so far.
    pub step: u64,
    /// Training samples seen so far.
    pub samples: u64,
    /// Seconds since training started.
    pub seconds: f64,
    /// Mean squared reconstruction error per vector (`‖x̂ − x‖²`, in normalised units).
    pub mse: f64,
    /// Fraction of variance unexplained: `Σ‖x − x̂‖² / Σ‖x − x̄‖²` (batch means x̄).
    pub fvu: f64,
    /// Active latents per vector.
    pub l0: f64,
    /// The AuxK term.
    pub aux: f64,
    /// The minimised loss.
    pub loss: f64,
    /// Mean `‖x̂‖ / ‖x‖` (shrinkage shows as < 1).
    pub l2_ratio: f64,
    /// Fraction of latents dead (no firing in the last `dead_after` samples).
    pub dead_fraction: f64,
    /// Fraction of latents firing on more than 10 % of this stretch's vectors.
    pub dense_fraction: f64,
    /// Each latent's firing frequency over this stretch.
    pub density: Vec<f32>,
}

impl SaeReport {
    /// Header of [`SaeReport::csv_row`].
    pub const CSV_HEADER: &'static str =
        "step,samples,seconds,mse,fvu,l0,aux,loss,l2_ratio,dead_fraction,dense_fraction";
    /// The report as one CSV row (without `density`).
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{:.3},{:.6},{:.6},{:.3},{:.6},{:.6},{:.5},{:.5},{:.5}",
            self.step,
            self.samples,
            self.seconds,
            self.mse,
            self.fvu,
            self.l0,
            self.aux,
            self.loss,
            self.l2_ratio,
            self.dead_fraction,
            self.dense_fraction
        )
    }
}

impl std::fmt::Display for SaeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {:>7}  samples {:>10}  {:>7.1}s  mse {:.5}  fvu {:.4}  L0 {:.1}  aux {:.4}  dead {:.2}%  dense {:.2}%  l2 ratio {:.3}",
            self.step,
            self.samples,
            self.seconds,
            self.mse,
            self.fvu,
            self.l0,
            self.aux,
            100.0 * self.dead_fraction,
            100.0 * self.dense_fraction,
            self.l2_ratio
        )
    }
}

/// A trained SAE with the input scale it was trained at.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedSae {
    /// The network (in normalised input units).
    pub network: SaeNetwork,
    /// Inputs are multiplied by this before encoding (1 without normalisation).
    pub input_scale: f32,
    /// The last stretch's figures.
    pub report: SaeReport,
}

/// Rows of the sample that estimates the input scale and the decoder bias.
const ESTIMATE_ROWS: usize = 8192;

/// The geometric median of the rows of `x`: Weiszfeld's iterations from the mean.
pub fn geometric_median(x: &Mat, iters: usize) -> Vec<f32> {
    let (n, d) = x.shape();
    let mut med: Vec<f64> = vec![0.0; d];
    for r in x.rows() {
        for (m, &v) in med.iter_mut().zip(r) {
            *m += v as f64 / n.max(1) as f64;
        }
    }
    for _ in 0..iters {
        let mut num = vec![0.0f64; d];
        let mut den = 0.0f64;
        for r in x.rows() {
            let dist = r
                .iter()
                .zip(&med)
                .map(|(&v, &m)| (v as f64 - m).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            for (a, &v) in num.iter_mut().zip(r) {
                *a += v as f64 / dist;
            }
            den += 1.0 / dist;
        }
        let next: Vec<f64> = num.iter().map(|a| a / den).collect();
        let moved = next
            .iter()
            .zip(&med)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        med = next;
        if moved < 1e-7 {
            break;
        }
    }
    med.into_iter().map(|v| v as f32).collect()
}

/// The largest accepted SAE learning rate (Adam's; the default is 3e-4).
pub const MAX_SAE_LR: f32 = 10.0;
/// The largest accepted sparsity weight λ and AuxK coefficient α.
pub const MAX_SAE_WEIGHT: f32 = 1e4;
/// The most passes over a source of known length that `samples` may ask for.
pub const MAX_SAE_PASSES: u64 = 1000;

impl SaeConfig {
    /// Checks the settings against the data width.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first invalid setting.
    pub fn check(&self, d_in: usize) -> Result<()> {
        fn p(name: &'static str, reason: impl Into<String>) -> Error {
            Error::param(name, reason)
        }
        if d_in == 0 {
            return Err(p("d_in", "activation vectors of width 0"));
        }
        if self.d_sae == 0 || self.d_sae > 1 << 24 {
            return Err(p("d_sae", format!("{} not in 1..=2²⁴", self.d_sae)));
        }
        if (self.d_sae as u64).saturating_mul(d_in as u64) > 1 << 32 {
            return Err(p(
                "d_sae",
                format!("{} × {d_in} weights exceed 2³² per matrix", self.d_sae),
            ));
        }
        if let Some(k) = self.kind.k() {
            if k == 0 || k > self.d_sae {
                return Err(p("k", format!("{k} not in 1..={}", self.d_sae)));
            }
        }
        if self.batch == 0 || self.batch > 1 << 20 {
            return Err(p("batch", format!("{} not in 1..=2²⁰", self.batch)));
        }
        if (self.batch as u64).saturating_mul(self.d_sae as u64) > 1 << 33 {
            return Err(p(
                "batch",
                format!(
                    "{} × {} pre-activations exceed 2³³ (32 GiB)",
                    self.batch, self.d_sae
                ),
            ));
        }
        if self.samples == 0 {
            return Err(p("samples", "0 training samples"));
        }
        let steps = self.samples.div_ceil(self.batch as u64);
        for (name, v) in [
            ("lr_warmup", self.lr_warmup),
            ("lr_decay", self.lr_decay),
            ("sparsity_warmup", self.sparsity_warmup),
        ] {
            if v > steps {
                return Err(p(
                    name,
                    format!(
                        "{v} steps, longer than the run's {steps} ({} samples / batch {})",
                        self.samples, self.batch
                    ),
                ));
            }
        }
        let finite_pos = |v: f32| v.is_finite() && v > 0.0;
        if !(finite_pos(self.lr) && self.lr <= MAX_SAE_LR) {
            return Err(p(
                "lr",
                format!("{} is not a number in (0, {MAX_SAE_LR}]", Compact(self.lr)),
            ));
        }
        if !(0.0..=MAX_SAE_WEIGHT).contains(&self.sparsity) {
            return Err(p(
                "sparsity",
                format!("{} is not in [0, {MAX_SAE_WEIGHT}]", Compact(self.sparsity)),
            ));
        }
        if !finite_pos(self.bandwidth) {
            return Err(p(
                "bandwidth",
                format!("{} is not > 0", Compact(self.bandwidth)),
            ));
        }
        if !finite_pos(self.init_threshold) {
            return Err(p(
                "init_threshold",
                format!("{} is not > 0", Compact(self.init_threshold)),
            ));
        }
        if !finite_pos(self.decoder_init_norm) {
            return Err(p("decoder_init_norm", "must be > 0"));
        }
        if !(0.0..1.0).contains(&self.threshold_decay) {
            return Err(p("threshold_decay", "must be in [0, 1)"));
        }
        let (b1, b2, eps) = self.adam;
        Optimizer::Adam {
            beta1: b1,
            beta2: b2,
            eps,
        }
        .check()?;
        if let Some(a) = self.aux {
            if !(0.0..=MAX_SAE_WEIGHT).contains(&a.coefficient) {
                return Err(p(
                    "aux_coefficient",
                    format!("{} is not in [0, {MAX_SAE_WEIGHT}]", Compact(a.coefficient)),
                ));
            }
            if a.k_aux > self.d_sae {
                return Err(p("k_aux", format!("{} > d_sae = {}", a.k_aux, self.d_sae)));
            }
        }
        let nested = self.prefixes.windows(2).all(|w| w[0] < w[1])
            && self.prefixes.first().is_some_and(|&p| p > 0)
            && self.prefixes.last() == Some(&self.d_sae);
        if !self.prefixes.is_empty() && !nested {
            return Err(p(
                "prefixes",
                format!(
                    "{:?} must be ascending, positive and end at d_sae = {}",
                    self.prefixes, self.d_sae
                ),
            ));
        }
        if self.prefixes.len() > 64 {
            return Err(p("prefixes", "more than 64 nested prefixes"));
        }
        Ok(())
    }

    fn lr_at(&self, step: u64, steps: u64) -> f32 {
        let mut f = 1.0f64;
        if self.lr_warmup > 0 && step < self.lr_warmup {
            f = (step + 1) as f64 / self.lr_warmup as f64;
        }
        let left = steps.saturating_sub(step);
        if self.lr_decay > 0 && left <= self.lr_decay {
            f = f.min(left as f64 / self.lr_decay as f64);
        }
        (self.lr as f64 * f) as f32
    }
}

/// Trains an SAE on `source`, calling `observer` with a report every `log_every` steps and
/// at the end.
///
/// # Errors
/// [`Error::InvalidParameter`] for invalid settings, errors of the source,
/// [`Error::Diverged`] when the loss or a parameter becomes non-finite, and
/// [`Error::Collapsed`] when every latent of a plain-ReLU SAE stays silent on every sample
/// of a whole pass over the data (of `dead_after` samples when the source's length is
/// unknown): no gradient reaches its encoder again.
pub fn train_sae(
    config: &SaeConfig,
    source: &mut dyn ActivationSource,
    observer: &mut dyn FnMut(&SaeReport),
) -> Result<TrainedSae> {
    train_sae_with(config, source, &Checkpointing::default(), observer)
}

/// [`train_sae`] with checkpoints and exact resumption (see [`Checkpointing`]).
///
/// A checkpoint holds the network, Adam's moments, each latent's samples since it last
/// fired, the running BatchTopK threshold and the report stretch in progress. It is written
/// every `ckpt.every_steps` steps, or at every report (`log_every`) when that is 0, and
/// never after the last step. To resume, pass a source built as for the first run (same
/// data, same seed): the rows the run had consumed are skipped
/// ([`ActivationSource::skip`]), and the resumed run gives the same model bytes as an
/// uninterrupted one with the same thread count.
///
/// # Errors
/// As [`train_sae`], plus checkpoint I/O errors, a checkpoint of another configuration or
/// data width (`resume`), and malformed checkpoint fields.
pub fn train_sae_with(
    config: &SaeConfig,
    source: &mut dyn ActivationSource,
    ckpt: &Checkpointing,
    observer: &mut dyn FnMut(&SaeReport),
) -> Result<TrainedSae> {
    let d_in = source.d_in();
    config.check(d_in)?;
    ckpt.check()?;
    if let Some(rows) = source.len() {
        if config.samples > rows.saturating_mul(MAX_SAE_PASSES) {
            return Err(Error::param(
                "samples",
                format!(
                    "{} samples are more than {MAX_SAE_PASSES} passes over the {rows} rows of the data (at most {})",
                    config.samples,
                    rows.saturating_mul(MAX_SAE_PASSES)
                ),
            ));
        }
    }
    let (m, batch) = (config.d_sae, config.batch);
    let mut rng = crate::rng::seeded(config.seed);
    let init_norm = match config.decoder {
        DecoderNorm::Unit => 1.0,
        DecoderNorm::Free => config.decoder_init_norm,
    };
    let mut net = SaeNetwork::init(
        config.kind,
        d_in,
        m,
        init_norm,
        config.init_threshold,
        &mut rng,
    );
    net.apply_b_dec_to_input = config.apply_b_dec_to_input;

    // Input scale and decoder bias from a sample.
    let mut sample = sample_source(source, ESTIMATE_ROWS)?;
    let input_scale = if config.normalize_activations {
        let mean_norm = sample.rows().map(|r| norm(r) as f64).sum::<f64>() / sample.nrows() as f64;
        if !(mean_norm > 0.0 && mean_norm.is_finite()) {
            return Err(Error::param(
                "data",
                "the sample's mean norm is 0 or not finite: cannot normalise",
            ));
        }
        ((d_in as f64).sqrt() / mean_norm) as f32
    } else {
        1.0
    };
    scale(input_scale, sample.as_mut_slice());
    match config.b_dec_init {
        BDecInit::Zero => {}
        BDecInit::Mean => net.b_dec = geometric_median(&sample, 0),
        BDecInit::GeometricMedian => net.b_dec = geometric_median(&sample, 100),
    }
    drop(sample);

    let mut objective = SaeObjective {
        sparsity: config.sparsity,
        bandwidth: config.bandwidth,
        aux: config.aux.map(|a| AuxK {
            k_aux: if a.k_aux == 0 {
                (d_in / 2).max(1)
            } else {
                a.k_aux
            },
            coefficient: a.coefficient,
        }),
        prefixes: config.prefixes.clone(),
    };
    let steps = config.samples.div_ceil(batch as u64);
    let (b1, b2, eps) = config.adam;
    let jump = matches!(config.kind, SaeKind::JumpRelu);
    let lengths: Vec<usize> = net.tensors().iter().map(|(_, t)| t.len()).collect();
    let mut opt = OptimizerState::new(
        Optimizer::Adam {
            beta1: b1,
            beta2: b2,
            eps,
        },
        &lengths[..4 + jump as usize],
    );
    let mut ws = SaeWorkspace::default();
    let mut grads = SaeGrads::zeros(&net);
    let mut x = Mat::zeros(batch, d_in);
    let mut since_fired = vec![0u64; m];
    let mut dead: Vec<u32> = Vec::new();
    let mut batch_theta: Option<f64> = None;
    let mut acc = Stretch::new(m);
    let mut last = SaeReport::default();
    // Collapse: a plain ReLU encoder whose every latent is silent gets no gradient (JumpReLU's
    // threshold and AuxK can revive latents, TopK always selects k of them). Every latent has
    // been silent for the last `min(since_fired)` samples.
    let collapse_window = matches!(config.kind, SaeKind::Relu)
        .then(|| source.len().unwrap_or(config.dead_after).max(1));

    // Without a directory there is nothing to write (and the caller's settings were
    // checked above); with one, a checkpoint at every report unless told otherwise.
    let every = match (ckpt.every_steps, &ckpt.dir) {
        (_, None) => 0,
        (0, Some(_)) => config.log_every,
        (n, Some(_)) => n,
    };
    let ckpt = Checkpointing {
        every_steps: every,
        ..ckpt.clone()
    };
    let fingerprint = format!(
        "{:?} d_in {d_in} rows {:?}",
        SaeConfig {
            log_every: 0,
            ..config.clone()
        },
        source.len()
    );
    let ck = LoopCheckpointer::new(&ckpt, "sae", fingerprint)?.bounds(1, steps as usize);
    let mut seconds_before = 0.0;
    let pos = ck.resume(Some(&mut opt), |t| {
        let names = net.tensors().map(|(name, _)| name);
        for (dst, name) in net.tensors_mut().into_iter().zip(names) {
            dst.copy_from_slice(&take_tensor(t, name, dst.len())?);
        }
        since_fired = take_counts(t, "since_fired", m)?;
        acc.fired = take_counts(t, "stretch_fired", m)?;
        Ok(())
    })?;
    if pos.step > 0 {
        let bad = |what: String| Error::param("resume", format!("checkpoint: {what}"));
        if pos.epoch != 0 || pos.batch_index as u64 != pos.step || pos.step >= steps {
            return Err(bad(format!(
                "position epoch {} minibatch {} step {} does not fit a run of {steps} steps",
                pos.epoch, pos.batch_index, pos.step
            )));
        }
        let [st, rows, mse, aux, loss, l0, resid, total_var, l2_ratio, theta, secs] =
            <[f64; 11]>::try_from(&pos.sums[..])
                .map_err(|_| bad(format!("{} running sums, expected 11", pos.sums.len())))?;
        let count = |v: f64, max: u64| v >= 0.0 && v.fract() == 0.0 && v <= max as f64;
        if !count(st, pos.step) || !count(rows, pos.step * batch as u64) {
            return Err(bad(format!("stretch of {st} steps and {rows} rows")));
        }
        if !(0.0..=super::checkpoint::MAX_SECONDS).contains(&secs) {
            return Err(bad(format!("elapsed time {}", Compact(secs))));
        }
        if !(theta == -1.0 || theta >= 0.0) {
            return Err(bad(format!("batch threshold {}", Compact(theta))));
        }
        acc.steps = st as u64;
        acc.rows = rows as u64;
        (acc.mse, acc.aux, acc.loss, acc.l0) = (mse, aux, loss, l0);
        (acc.resid, acc.total_var, acc.l2_ratio) = (resid, total_var, l2_ratio);
        batch_theta = (theta >= 0.0).then_some(theta);
        seconds_before = secs;
        source.skip(pos.step * batch as u64)?;
    }
    let started = Instant::now();

    for step in pos.step..steps {
        source.fill(&mut x)?;
        if input_scale != 1.0 {
            scale(input_scale, x.as_mut_slice());
        }
        objective.sparsity = if config.sparsity_warmup > 0 {
            config.sparsity * ((step + 1) as f32 / config.sparsity_warmup as f32).min(1.0)
        } else {
            config.sparsity
        };
        dead.clear();
        if objective.aux.is_some() {
            dead.extend((0..m as u32).filter(|&j| since_fired[j as usize] >= config.dead_after));
        }
        let loss = net.loss_and_gradient(x.view(), &objective, &dead, &mut ws, &mut grads);
        if !loss.total.is_finite() {
            return Err(Error::Diverged {
                step,
                what: format!("the loss ({})", loss.total),
            });
        }
        if config.decoder == DecoderNorm::Unit {
            for j in 0..m {
                let w = net.w_dec.row(j);
                let g = grads.w_dec.row_mut(j);
                let along = dot(g, w);
                crate::linalg::axpy(-along, w, g);
            }
        }
        let lr = config.lr_at(step, steps);
        {
            let [w_enc, b_enc, w_dec, b_dec, threshold] = net.tensors_mut();
            let mut tensors: Vec<(&mut [f32], &[f32], f32)> = vec![
                (w_enc, grads.w_enc.as_slice(), 1.0),
                (b_enc, &grads.b_enc[..], 1.0),
                (w_dec, grads.w_dec.as_slice(), 1.0),
                (b_dec, &grads.b_dec[..], 1.0),
            ];
            if jump {
                tensors.push((threshold, &grads.threshold[..], 1.0));
            }
            opt.update(lr, &mut tensors);
        }
        if jump {
            // θ ≥ 0, as SAELens clamps it.
            for t in net.threshold.iter_mut() {
                *t = t.max(0.0);
            }
        }
        if config.decoder == DecoderNorm::Unit {
            for row in net.w_dec.rows_mut() {
                let n = norm(row);
                if n > 0.0 {
                    scale(1.0 / n, row);
                }
            }
        }
        if let SaeKind::BatchTopK { .. } = config.kind {
            if loss.batch_threshold > 0.0 {
                let t = loss.batch_threshold as f64;
                batch_theta = Some(match batch_theta {
                    None => t,
                    Some(old) => {
                        config.threshold_decay as f64 * old
                            + (1.0 - config.threshold_decay as f64) * t
                    }
                });
            }
        }
        for (s, &f) in since_fired.iter_mut().zip(ws.fired()) {
            *s = if f > 0 {
                0
            } else {
                s.saturating_add(batch as u64)
            };
        }
        if let Some(window) = collapse_window {
            if since_fired.iter().all(|&s| s >= window) {
                let seen = (step + 1).saturating_mul(batch as u64);
                return Err(Error::Collapsed {
                    step: step + 1,
                    phase: 1,
                    epoch: usize::try_from(seen.div_ceil(window)).unwrap_or(usize::MAX),
                });
            }
        }
        acc.add(&x, ws.reconstructions(), ws.fired(), &loss);
        let end = step + 1 == steps;
        if end || (config.log_every > 0 && (step + 1) % config.log_every == 0) {
            last = acc.report(
                step + 1,
                (step + 1) * batch as u64,
                seconds_before + started.elapsed().as_secs_f64(),
                &since_fired,
                config.dead_after,
            );
            observer(&last);
            acc = Stretch::new(m);
        }
        if !end {
            let done = step + 1;
            let pos = LoopPosition {
                epoch: 0,
                batch_index: done as usize,
                step: done,
                sums: vec![
                    acc.steps as f64,
                    acc.rows as f64,
                    acc.mse,
                    acc.aux,
                    acc.loss,
                    acc.l0,
                    acc.resid,
                    acc.total_var,
                    acc.l2_ratio,
                    batch_theta.unwrap_or(-1.0),
                    seconds_before + started.elapsed().as_secs_f64(),
                ],
                history: Vec::new(),
            };
            ck.after_step(
                &pos,
                || {
                    let mut owned: Vec<OwnedTensor> = net
                        .tensors()
                        .iter()
                        .map(|(n, v)| (n.to_string(), vec![v.len()], v.to_vec()))
                        .collect();
                    owned.extend(counts_to_tensors("since_fired", &since_fired));
                    owned.extend(counts_to_tensors("stretch_fired", &acc.fired));
                    owned
                },
                Some(&opt),
            )?;
        }
    }
    if let (SaeKind::BatchTopK { .. }, Some(t)) = (config.kind, batch_theta) {
        net.threshold.fill(t as f32);
    }
    for (name, t) in net.tensors() {
        if let Some(i) = t.iter().position(|v| !v.is_finite()) {
            return Err(Error::Diverged {
                step: steps,
                what: format!("{name}[{i}]"),
            });
        }
    }
    Ok(TrainedSae {
        network: net,
        input_scale,
        report: last,
    })
}

/// Counts below 2⁴⁸ as two exact f32 tensors (`{name}/hi`, `{name}/lo`: 24 bits each);
/// larger counts saturate.
fn counts_to_tensors(name: &str, v: &[u64]) -> [OwnedTensor; 2] {
    let v = || v.iter().map(|&c| c.min(MAX_COUNT - 1));
    [
        (
            format!("{name}/hi"),
            vec![v().len()],
            v().map(|c| (c >> 24) as f32).collect(),
        ),
        (
            format!("{name}/lo"),
            vec![v().len()],
            v().map(|c| (c & 0xFF_FFFF) as f32).collect(),
        ),
    ]
}

/// The counts written by [`counts_to_tensors`], each part checked to be a 24-bit integer.
fn take_counts(t: &mut Tensors, name: &str, len: usize) -> Result<Vec<u64>> {
    let hi = take_tensor(t, &format!("{name}/hi"), len)?;
    let lo = take_tensor(t, &format!("{name}/lo"), len)?;
    let part = |x: f32| (0.0..16_777_216.0).contains(&x) && x.fract() == 0.0;
    hi.iter()
        .zip(&lo)
        .map(|(&h, &l)| {
            if part(h) && part(l) {
                Ok(((h as u64) << 24) | l as u64)
            } else {
                Err(crate::train::checkpoint::err(format!(
                    "`{name}` holds {h}, {l}: not 24-bit counts"
                )))
            }
        })
        .collect()
}

/// Sums over a stretch of steps.
struct Stretch {
    steps: u64,
    rows: u64,
    mse: f64,
    aux: f64,
    loss: f64,
    l0: f64,
    resid: f64,
    total_var: f64,
    l2_ratio: f64,
    fired: Vec<u64>,
}

impl Stretch {
    fn new(m: usize) -> Stretch {
        Stretch {
            steps: 0,
            rows: 0,
            mse: 0.0,
            aux: 0.0,
            loss: 0.0,
            l0: 0.0,
            resid: 0.0,
            total_var: 0.0,
            l2_ratio: 0.0,
            fired: vec![0; m],
        }
    }

    fn add(&mut self, x: &Mat, xhat: &Mat, fired: &[u32], loss: &crate::models::SaeLoss) {
        let (n, d) = x.shape();
        self.steps += 1;
        self.rows += n as u64;
        self.mse += loss.mse;
        self.aux += loss.aux;
        self.loss += loss.total;
        self.l0 += loss.l0;
        let mut mean = vec![0.0f64; d];
        for r in x.rows() {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64 / n as f64;
            }
        }
        for (r, h) in x.rows().zip(xhat.rows()) {
            let mut e = 0.0f64;
            let mut t = 0.0f64;
            for ((&v, &hv), &mv) in r.iter().zip(h).zip(&mean) {
                e += ((v - hv) as f64).powi(2);
                t += (v as f64 - mv).powi(2);
            }
            self.resid += e;
            self.total_var += t;
            let nx = norm(r) as f64;
            if nx > 0.0 {
                self.l2_ratio += norm(h) as f64 / nx;
            }
        }
        for (a, &f) in self.fired.iter_mut().zip(fired) {
            *a += f as u64;
        }
    }

    fn report(
        &self,
        step: u64,
        samples: u64,
        seconds: f64,
        since_fired: &[u64],
        dead_after: u64,
    ) -> SaeReport {
        let s = self.steps.max(1) as f64;
        let rows = self.rows.max(1) as f64;
        let density: Vec<f32> = self
            .fired
            .iter()
            .map(|&f| (f as f64 / rows) as f32)
            .collect();
        let m = density.len().max(1) as f64;
        SaeReport {
            step,
            samples,
            seconds,
            mse: self.mse / s,
            fvu: if self.total_var > 0.0 {
                self.resid / self.total_var
            } else {
                0.0
            },
            l0: self.l0 / s,
            aux: self.aux / s,
            loss: self.loss / s,
            l2_ratio: self.l2_ratio / rows,
            dead_fraction: since_fired.iter().filter(|&&t| t >= dead_after).count() as f64 / m,
            dense_fraction: density.iter().filter(|&&p| p > 0.1).count() as f64 / m,
            density,
        }
    }
}

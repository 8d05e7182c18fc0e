//! Modern sparse auto-encoders (ReLU, TopK, BatchTopK, JumpReLU, Matryoshka) as an
//! estimator: [`SaeParams`] → `fit` → [`Sae`], saved in SAELens's or sparsify's format.

use crate::data::{ActivationSource, AsRows, InMemory};
use crate::estimators::ParamGuard;
use crate::linalg::{Mat, MatRef};
use crate::models::{AuxK, SaeKind, SaeNetwork, SparseCodes};
use crate::train::{train_sae_with, BDecInit, Checkpointing, DecoderNorm, SaeConfig, SaeReport};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Sparse auto-encoder hyper-parameters, unchecked: consuming setters, then `fit` (which
/// calls [`ParamGuard::check`] first). Defaults follow SAELens v6 and Gao et al. (2024).
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `kind` | TopK, k = 32 | architecture ([`SaeKind`]) | k in 1..=d_sae |
/// | `d_sae` | 4096 | latents | 1..=2²⁴ |
/// | `batch` | 4096 | rows per step | 1..=2²⁰ |
/// | `samples` | 10,000,000 | training rows in all (whole batches); passes over the data as needed | 1..=1000 × the data's rows |
/// | `lr` | 3e-4 | Adam's rate (β = 0.9, 0.999) | (0, 10] |
/// | `lr_warmup` / `lr_decay` | 0 / 0 | steps of linear warm-up / final linear decay to 0 | ≤ the run's steps (samples / batch) |
/// | `sparsity` | 1.0 | λ: ReLU's decoder-norm-weighted L1, JumpReLU's L0 | [0, 10⁴] |
/// | `sparsity_warmup` | 0 | steps over which λ rises from 0 | ≤ the run's steps |
/// | `aux` | on, α = 1/32, k_aux = d_in/2 | AuxK dead-latent loss (TopK, BatchTopK) | α in [0, 10⁴] |
/// | `dead_after` | 1,000,000 | samples without firing after which a latent is dead | ≥ 1 |
/// | `prefixes` | none | Matryoshka nested sizes, ascending to d_sae | |
/// | `decoder` | unit rows for TopK / BatchTopK, free otherwise | decoder constraint | |
/// | `b_dec_init` | geometric median | decoder bias start | |
/// | `normalize_activations` | true | scale inputs to mean norm √d_in (stored with the model) | |
/// | `bandwidth` / `init_threshold` | 0.05 / 0.01 | JumpReLU's ε and initial θ (SAELens) | > 0 |
/// | `seed` | 0 | initialisation and data order | |
/// | `progress` | false | a line on stderr every `log_every` (100) steps | |
/// | `checkpoint_dir` | none | write `checkpoint.safetensors` there every `checkpoint_every` steps | |
/// | `checkpoint_every` | 0 | steps between checkpoints; 0: at every report (`log_every`) | with `log_every` 0, ≥ 1 |
/// | `resume` | false | continue from the checkpoint in `checkpoint_dir` (same data, same seed) | |
///
/// The upper bounds on `lr`, `sparsity` and α are far above any value that trains: beyond
/// them a value is a typo that would otherwise run to the end of a diverged or silent run.
/// A run that diverges all the same (a non-finite loss) stops with [`Error::Diverged`].
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// use drsae::data::{Synthetic, SyntheticSpec};
/// # fn main() -> drsae::Result<()> {
/// let spec = SyntheticSpec { d: 32, features: 128, mean_l0: 3.0, correlated_pairs: 8, ..Default::default() };
/// let mut truth = Synthetic::new(spec)?; // 128 known features in 32 dimensions
/// let x = truth.sample(4000);
/// let sae = Sae::params()
///     .kind(SaeKind::TopK { k: 3 })
///     .d_sae(128)
///     .batch(256)
///     .samples(40_000)
///     .lr(2e-3)
///     .fit(&x)?;
/// let codes = sae.encode(x.row(0))?; // one row: at most 3 active latents
/// assert!(codes.idx.len() <= 3);
/// let figures = sae.evaluate(&x)?;
/// assert!(figures.fvu < 0.5, "{}", figures.fvu);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SaeParams(SaeValidParams);

/// Validated sparse auto-encoder parameters; `fit` trains.
#[derive(Clone, Debug, PartialEq)]
pub struct SaeValidParams {
    config: SaeConfig,
    decoder_set: bool,
    progress: bool,
    checkpointing: Checkpointing,
}

impl Default for SaeParams {
    fn default() -> Self {
        SaeParams(SaeValidParams {
            config: SaeConfig {
                bandwidth: 0.05,
                init_threshold: 0.01,
                ..SaeConfig::default()
            },
            decoder_set: false,
            progress: false,
            checkpointing: Checkpointing::default(),
        })
    }
}

macro_rules! config_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, v: $ty) -> Self {
                self.0.config.$name = v;
                self
            }
        )*
    };
}

impl SaeParams {
    config_setters! {
        /// Architecture.
        kind: SaeKind;
        /// Latents.
        d_sae: usize;
        /// Rows per step.
        batch: usize;
        /// Training rows in all.
        samples: u64;
        /// Adam's learning rate.
        lr: f32;
        /// Steps of learning-rate warm-up.
        lr_warmup: u64;
        /// Final steps of linear learning-rate decay.
        lr_decay: u64;
        /// λ.
        sparsity: f32;
        /// Steps of λ warm-up.
        sparsity_warmup: u64;
        /// Samples without firing after which a latent is dead.
        dead_after: u64;
        /// Matryoshka prefix sizes.
        prefixes: Vec<usize>;
        /// Decoder bias initialisation.
        b_dec_init: BDecInit;
        /// Scale inputs to mean norm √d_in.
        normalize_activations: bool;
        /// JumpReLU's kernel bandwidth.
        bandwidth: f32;
        /// JumpReLU's initial threshold.
        init_threshold: f32;
        /// Seed.
        seed: u64;
        /// Report every this many steps (with `progress`).
        log_every: u64;
    }

    /// AuxK with coefficient α and `k_aux` latents per row (0: d_in/2), or `None` for off.
    pub fn aux(mut self, aux: Option<(f32, usize)>) -> Self {
        self.0.config.aux = aux.map(|(coefficient, k_aux)| AuxK { k_aux, coefficient });
        self
    }

    /// Decoder constraint.
    pub fn decoder(mut self, decoder: DecoderNorm) -> Self {
        self.0.config.decoder = decoder;
        self.0.decoder_set = true;
        self
    }

    /// Directory of `checkpoint.safetensors`, written atomically every `checkpoint_every`
    /// steps (or at every report).
    pub fn checkpoint_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.0.checkpointing.dir = Some(dir.into());
        self
    }

    /// Steps between checkpoints (0: at every report, every `log_every` steps).
    pub fn checkpoint_every(mut self, steps: u64) -> Self {
        self.0.checkpointing.every_steps = steps;
        self
    }

    /// Continue from the checkpoint in `checkpoint_dir`, if there is one. The data must be
    /// given as for the interrupted run (same rows or shards, same seed).
    pub fn resume(mut self, on: bool) -> Self {
        self.0.checkpointing.resume = on;
        self
    }

    /// Checkpoint and stop with [`Error::Interrupted`] after this many steps.
    pub fn stop_after_steps(mut self, steps: u64) -> Self {
        self.0.checkpointing.stop_after_steps = Some(steps);
        self
    }

    /// One line per `log_every` steps on stderr.
    pub fn progress(mut self, on: bool) -> Self {
        self.0.progress = on;
        self
    }

    /// Checks, then trains on the rows of `x` (shuffled each pass).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming an invalid setting, [`Error::NonFiniteInput`],
    /// [`Error::Diverged`].
    pub fn fit(&self, x: &Mat) -> Result<Sae> {
        self.check_ref()?.fit(x)
    }

    /// Checks, then trains on `source` (for example activation shards on disk).
    ///
    /// # Errors
    /// As [`SaeParams::fit`], and the source's read errors.
    pub fn fit_source(&self, source: &mut dyn ActivationSource) -> Result<Sae> {
        self.check_ref()?.fit_source(source)
    }
}

impl ParamGuard for SaeParams {
    type Checked = SaeValidParams;
    fn check_ref(&self) -> Result<&SaeValidParams> {
        // The data width is checked again at fit time.
        self.0.config.check(1)?;
        let ck = &self.0.checkpointing;
        ck.check()?;
        if ck.dir.is_some() && ck.every_steps == 0 && self.0.config.log_every == 0 {
            return Err(Error::param(
                "checkpoint_every",
                "0 with log_every 0 would never write a checkpoint",
            ));
        }
        Ok(&self.0)
    }
    fn check(self) -> Result<SaeValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl SaeValidParams {
    fn resolved(&self) -> SaeConfig {
        let mut c = self.config.clone();
        if !self.decoder_set {
            c.decoder = match c.kind {
                SaeKind::TopK { .. } | SaeKind::BatchTopK { .. } => DecoderNorm::Unit,
                SaeKind::Relu | SaeKind::JumpRelu => DecoderNorm::Free,
            };
        }
        if matches!(c.kind, SaeKind::Relu | SaeKind::JumpRelu) {
            c.aux = None;
        }
        c
    }

    /// Trains on the rows of `x`.
    ///
    /// # Errors
    /// As [`SaeParams::fit`].
    pub fn fit(&self, x: &Mat) -> Result<Sae> {
        crate::check_finite("training data", x.as_slice())?;
        let mut source = InMemory::new(x.view(), self.config.seed)?;
        self.fit_source(&mut source)
    }

    /// Trains on `source`.
    ///
    /// # Errors
    /// As [`SaeParams::fit_source`].
    pub fn fit_source(&self, source: &mut dyn ActivationSource) -> Result<Sae> {
        let progress = self.progress;
        self.fit_source_with(source, |r| {
            if progress {
                eprintln!("{r}");
            }
        })
    }

    /// Trains on `source`, calling `observer` every `log_every` steps and at the end.
    ///
    /// # Errors
    /// As [`SaeParams::fit_source`].
    pub fn fit_source_with(
        &self,
        source: &mut dyn ActivationSource,
        mut observer: impl FnMut(&SaeReport),
    ) -> Result<Sae> {
        let config = self.resolved();
        let trained = train_sae_with(&config, source, &self.checkpointing, &mut observer)?;
        Ok(Sae {
            network: trained.network,
            input_scale: trained.input_scale,
            report: trained.report,
            config,
        })
    }
}

/// A trained sparse auto-encoder with the input scale it was trained at: every method
/// takes raw inputs and returns raw-unit reconstructions.
#[derive(Clone, Debug, PartialEq)]
pub struct Sae {
    network: SaeNetwork,
    input_scale: f32,
    report: SaeReport,
    config: SaeConfig,
}

impl Sae {
    /// The unchecked default parameters.
    pub fn params() -> SaeParams {
        SaeParams::default()
    }

    /// A model from a network in raw input units (for example one loaded from SAELens).
    pub fn from_network(network: SaeNetwork) -> Sae {
        Sae {
            network,
            input_scale: 1.0,
            report: SaeReport::default(),
            config: SaeConfig::default(),
        }
    }

    /// The network (in scaled input units; see [`Sae::input_scale`]).
    pub fn network(&self) -> &SaeNetwork {
        &self.network
    }
    /// Inputs are multiplied by this before encoding.
    pub fn input_scale(&self) -> f32 {
        self.input_scale
    }
    /// The last training stretch's figures.
    pub fn report(&self) -> &SaeReport {
        &self.report
    }
    /// The settings it was trained with.
    pub fn config(&self) -> &SaeConfig {
        &self.config
    }

    fn scaled(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.network.d_in())?;
        if self.input_scale != 1.0 {
            crate::linalg::scale(self.input_scale, x.as_mut_slice());
        }
        Ok(x)
    }

    /// Sparse codes of one row or many.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for rows of the wrong width, [`Error::NonFiniteInput`].
    pub fn encode(&self, x: impl AsRows) -> Result<SparseCodes> {
        Ok(self.network.encode(self.scaled(x)?.view()))
    }

    /// Reconstructions in raw input units.
    ///
    /// # Errors
    /// As [`Sae::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let mut r = self.network.reconstruct(self.scaled(x)?.view());
        if self.input_scale != 1.0 {
            crate::linalg::scale(1.0 / self.input_scale, r.as_mut_slice());
        }
        Ok(r)
    }

    /// Reconstruction and sparsity figures on `x` at inference (BatchTopK as its JumpReLU):
    /// MSE (raw units), FVU, L0, l2 ratio, and each latent's firing frequency (dead = never
    /// fired on `x`, dense = above 10 %).
    ///
    /// # Errors
    /// As [`Sae::encode`].
    pub fn evaluate(&self, x: impl AsRows) -> Result<SaeReport> {
        let x = x.to_rows(self.network.d_in())?;
        evaluate(self, x.view())
    }

    /// Writes the model as a SAELens v6 directory (`cfg.json`, `sae_weights.safetensors`,
    /// and `sparsity.safetensors` when the model was trained here), the input scale folded
    /// into the weights.
    ///
    /// # Errors
    /// [`Error::Io`] if writing fails.
    #[cfg(feature = "safetensors")]
    pub fn save_saelens(&self, dir: impl AsRef<Path>) -> Result<()> {
        let density =
            (self.report.density.len() == self.network.d_sae()).then_some(&self.report.density[..]);
        crate::io::save_saelens(dir, &self.network, self.input_scale, density)
    }

    /// Writes the model as a sparsify directory (TopK only).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another architecture, [`Error::Io`] on writing.
    #[cfg(feature = "safetensors")]
    pub fn save_sparsify(&self, dir: impl AsRef<Path>) -> Result<()> {
        crate::io::save_sparsify(dir, &self.network, self.input_scale)
    }

    /// Reads a SAELens v6 directory.
    ///
    /// # Errors
    /// See [`crate::io::load_saelens`].
    #[cfg(feature = "safetensors")]
    pub fn load_saelens(dir: impl AsRef<Path>) -> Result<Sae> {
        Ok(Sae::from_network(crate::io::load_saelens(dir)?))
    }

    /// Reads a sparsify directory.
    ///
    /// # Errors
    /// See [`crate::io::load_sparsify`].
    #[cfg(feature = "safetensors")]
    pub fn load_sparsify(dir: impl AsRef<Path>) -> Result<Sae> {
        Ok(Sae::from_network(crate::io::load_sparsify(dir)?))
    }
}

fn evaluate(sae: &Sae, x: MatRef<'_>) -> Result<SaeReport> {
    let (n, d) = (x.nrows(), x.ncols());
    if n == 0 {
        return Err(Error::param("input", "no rows to evaluate on"));
    }
    let codes = sae.encode(x)?;
    let mut recon = sae.network.decode(&codes);
    if sae.input_scale != 1.0 {
        crate::linalg::scale(1.0 / sae.input_scale, recon.as_mut_slice());
    }
    let mut mean = vec![0.0f64; d];
    for i in 0..n {
        for (j, m) in mean.iter_mut().enumerate() {
            *m += x.get(i, j) as f64 / n as f64;
        }
    }
    let (mut resid, mut var, mut ratio) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        let (mut nx, mut nh) = (0.0f64, 0.0f64);
        for j in 0..d {
            let (v, h) = (x.get(i, j) as f64, recon.row(i)[j] as f64);
            resid += (v - h).powi(2);
            var += (v - mean[j]).powi(2);
            nx += v * v;
            nh += h * h;
        }
        if nx > 0.0 {
            ratio += (nh / nx).sqrt();
        }
    }
    let m = sae.network.d_sae();
    let mut fired = vec![0u64; m];
    for &j in &codes.idx {
        fired[j as usize] += 1;
    }
    let density: Vec<f32> = fired
        .iter()
        .map(|&f| (f as f64 / n as f64) as f32)
        .collect();
    Ok(SaeReport {
        samples: n as u64,
        mse: resid / n as f64,
        fvu: if var > 0.0 { resid / var } else { 0.0 },
        l0: codes.idx.len() as f64 / n as f64,
        l2_ratio: ratio / n as f64,
        dead_fraction: fired.iter().filter(|&&f| f == 0).count() as f64 / m as f64,
        dense_fraction: density.iter().filter(|&&p| p > 0.1).count() as f64 / m as f64,
        density,
        ..SaeReport::default()
    })
}

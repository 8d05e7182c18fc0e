//! The DrSAE estimator: [`Drsae::params`] → [`DrsaeParams`] → `fit` → [`Drsae`], a fitted
//! classifier that keeps its preprocessing.

#[cfg(feature = "safetensors")]
mod file;
mod params;

pub use params::{DrsaeParams, DrsaeValidParams, Validation};

use crate::data::{AsRows, Preprocessor};
use crate::linalg::Mat;
use crate::models::{DrsaeNetwork, LossWeights};
use crate::train::EpochReport;
use crate::{Error, Result};

/// Rows per forward pass when encoding or classifying many inputs (memory, not results:
/// every row is computed independently).
const EVAL_BATCH: usize = 500;

/// Encoder–decoder angle (radians) below which a unit is one of the paper's part-units.
pub const PART_UNIT_MAX_ANGLE: f32 = 0.5;
/// Encoder–decoder angle (radians) above which a unit is one of the paper's categorical
/// units.
pub const CATEGORICAL_UNIT_MIN_ANGLE: f32 = 0.7;

/// What training measured: the chosen epoch, its validation error and every epoch's report.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// Phase-2 epoch (from 1) whose model was returned.
    pub best_epoch: usize,
    /// Its validation error in percent.
    pub best_val_error: f64,
    /// Every epoch's report, in order.
    pub history: Vec<EpochReport>,
    /// Mean training throughput (examples per second, both phases).
    pub samples_per_s: f64,
    /// Wall-clock seconds of the fit, preprocessing included.
    pub seconds: f64,
}

/// A fitted DrSAE classifier: the network, the preprocessing it was trained with, and how it
/// was trained. Every method takes raw inputs (one row or many, any [`AsRows`]) and applies
/// the preprocessing itself.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// # fn main() -> drsae::Result<()> {
/// let mnist = Mnist::load("data/mnist-sample")?;
/// let data = mnist.train.take(1000);
/// let model = Drsae::params().hidden(32).steps(2).epochs_unsup(1).epochs_sup(10).fit(&data)?;
/// let class = model.predict(data.images.row(0))?[0];         // one image
/// let codes = model.encode(&mnist.test.images.row_range(0, 5))?; // five images
/// assert!(class < 10 && codes.shape() == (5, 32));
/// let accuracy = model.score(&mnist.test.images, &mnist.test.labels)?;
/// assert!(accuracy > 0.5, "{accuracy}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Drsae {
    network: DrsaeNetwork,
    preprocessing: Preprocessor,
    weights: LossWeights,
    config: Vec<(String, String)>,
    report: Option<FitReport>,
}

impl Drsae {
    /// Default parameters (see [`DrsaeParams`]).
    pub fn params() -> DrsaeParams {
        DrsaeParams::default()
    }

    /// The trained network (encoder E, explaining-away S, threshold b, decoder D,
    /// classifier C), read-only so that its constraints hold.
    pub fn network(&self) -> &DrsaeNetwork {
        &self.network
    }

    /// The per-row transform applied to every input.
    pub fn preprocessing(&self) -> Preprocessor {
        self.preprocessing
    }

    /// The loss weights the model was trained with.
    pub fn weights(&self) -> LossWeights {
        self.weights
    }

    /// The training configuration, every field as `(name, value)` (empty for a model file
    /// that does not record it).
    pub fn config(&self) -> &[(String, String)] {
        &self.config
    }

    /// What training measured (`None` for a model loaded from a file).
    pub fn report(&self) -> Option<&FitReport> {
        self.report.as_ref()
    }

    /// Input length m.
    pub fn input_dim(&self) -> usize {
        self.network.input_dim()
    }

    /// Code units n.
    pub fn hidden(&self) -> usize {
        self.network.hidden()
    }

    /// Classes k.
    pub fn classes(&self) -> usize {
        self.network.classes()
    }

    fn prepare(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.input_dim())?;
        self.preprocessing.apply(&mut x);
        Ok(x)
    }

    /// The codes `zᵀ` of every input row (rows × n).
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values.
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        Ok(self.network.encode(&self.prepare(x)?, EVAL_BATCH))
    }

    /// The reconstructions `D zᵀ` of every input row (rows × m), in the preprocessed space
    /// (for DrSAE's default, unit-L2 rows).
    ///
    /// # Errors
    /// As [`Drsae::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        Ok(self.network.decode(&self.encode(x)?))
    }

    /// The class probabilities of every input row (rows × k).
    ///
    /// # Errors
    /// As [`Drsae::encode`].
    pub fn predict_proba(&self, x: impl AsRows) -> Result<Mat> {
        Ok(self.network.probabilities(&self.prepare(x)?, EVAL_BATCH))
    }

    /// The most probable class of every input row.
    ///
    /// # Errors
    /// As [`Drsae::encode`].
    pub fn predict(&self, x: impl AsRows) -> Result<Vec<u8>> {
        let x = self.prepare(x)?;
        Ok(self.network.evaluate(&x, &[], EVAL_BATCH).0)
    }

    /// The fraction of rows whose predicted class is their label (accuracy, in [0, 1]).
    ///
    /// # Errors
    /// As [`Drsae::encode`]; also labels that are not one per row, or no rows.
    pub fn score(&self, x: impl AsRows, labels: &[u8]) -> Result<f64> {
        let predicted = self.predict(x)?;
        if predicted.len() != labels.len() || predicted.is_empty() {
            return Err(Error::param(
                "labels",
                format!(
                    "{} labels for {} rows (need one per row, at least one)",
                    labels.len(),
                    predicted.len()
                ),
            ));
        }
        let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(right as f64 / labels.len() as f64)
    }

    /// The angle (radians) between every unit's encoder row `E_i` and decoder column `D_i`:
    /// below 0.5 the paper's part-units, above 0.7 its categorical units.
    pub fn encoder_decoder_angles(&self) -> Vec<f32> {
        self.network.encoder_decoder_angles()
    }

    /// The number of part-units (angle < [`PART_UNIT_MAX_ANGLE`]) and of categorical units
    /// (angle > [`CATEGORICAL_UNIT_MIN_ANGLE`]) among `angles`, as returned by
    /// [`Drsae::encoder_decoder_angles`].
    pub fn unit_kinds(angles: &[f32]) -> (usize, usize) {
        let part = angles.iter().filter(|&&a| a < PART_UNIT_MAX_ANGLE).count();
        let categorical = angles
            .iter()
            .filter(|&&a| a > CATEGORICAL_UNIT_MIN_ANGLE)
            .count();
        (part, categorical)
    }
}

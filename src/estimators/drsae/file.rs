//! DrSAE model files: the network's tensors with the preprocessing and the training
//! settings in the safetensors metadata.

use super::Drsae;
use crate::data::Preprocessor;
use crate::models::LossWeights;
use crate::{Error, Result};
use std::path::Path;

impl Drsae {
    /// The model as safetensors bytes: tensors `E`, `S`, `b`, `D`, `C`; metadata
    /// `format` = `drsae`, `format_version`, `steps`, the loss weights,
    /// `preprocessing` (see [`Preprocessor::name`]), `crate_version`, and every training
    /// setting as `config.NAME`.
    ///
    /// # Errors
    /// None in practice (the model's tensors are consistent by construction).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut extra: Vec<(String, String)> = vec![
            ("preprocessing".into(), self.preprocessing.name()),
            ("crate_version".into(), env!("CARGO_PKG_VERSION").into()),
            (
                "classification_weight".into(),
                self.weights.classification.to_string(),
            ),
        ];
        extra.extend(
            self.config
                .iter()
                .map(|(k, v)| (format!("config.{k}"), v.clone())),
        );
        let extra: Vec<(&str, String)> =
            extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        crate::io::drsae_to_bytes(&self.network, &self.weights, &extra)
    }

    /// Parses bytes written by [`Drsae::to_bytes`] (or by [`crate::io::save_drsae`]: a
    /// file without `preprocessing` is taken as unit-L2, DrSAE's convention).
    ///
    /// # Errors
    /// [`Error::Format`] for anything malformed: shapes, metadata, non-finite values.
    pub fn from_bytes(bytes: &[u8]) -> Result<Drsae> {
        let (network, meta) = crate::io::drsae_from_bytes(bytes)?;
        let preprocessing = match meta.get("preprocessing") {
            Some(name) => Preprocessor::parse(name)?,
            None => Preprocessor::UnitL2,
        };
        let weight = |key: &str, default: f32| -> Result<f32> {
            match meta.get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f32>()
                    .ok()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| {
                        Error::format(
                            "model metadata",
                            format!("`{key}` = {:?} is not a finite weight ≥ 0", v),
                        )
                    }),
            }
        };
        let paper = LossWeights::paper();
        let weights = LossWeights {
            reconstruction: weight("reconstruction_weight", paper.reconstruction)?,
            sparsity: weight("lambda", paper.sparsity)?,
            classification: weight("classification_weight", paper.classification)?,
        };
        let mut config: Vec<(String, String)> = meta
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("config.")
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        config.sort();
        Ok(Drsae {
            network,
            preprocessing,
            weights,
            config,
            report: None,
        })
    }

    /// Writes the model to `path` atomically (see [`Drsae::to_bytes`] for the layout).
    ///
    /// # Errors
    /// An I/O error.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a model file written by [`Drsae::save`].
    ///
    /// # Errors
    /// An I/O error, or [`Error::Format`] naming the file and the problem.
    pub fn load(path: impl AsRef<Path>) -> Result<Drsae> {
        let path = path.as_ref();
        let bytes = crate::io::read_regular_file(path, crate::io::MAX_MODEL_FILE_BYTES)?;
        Drsae::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }
}

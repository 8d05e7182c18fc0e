//! Any model file the command line writes, loaded by its metadata `format`: DrSAE, LISTA,
//! group-sparse (topographic), locally connected (pinwheel), convolutional, inhibition, and
//! SAELens directories of sparse auto-encoders.

use crate::output::msg;
use drsae::prelude::*;
use std::path::{Path, PathBuf};

/// A fitted model of any family.
pub enum AnyModel {
    /// A DrSAE.
    Drsae(Box<Drsae>),
    /// A LISTA encoder.
    Lista(Box<ListaEncoder>),
    /// A group-sparse (topographic) auto-encoder.
    GroupSparse(Box<GroupSparse>),
    /// A locally-connected (pinwheel) auto-encoder.
    Local(Box<LocallyConnected>),
    /// A convolutional auto-encoder.
    Conv(Box<Convolutional>),
    /// Lateral inhibition.
    Inhibition(Box<Inhibition>),
    /// A sparse auto-encoder (a SAELens directory).
    Sae(Box<Sae>),
}

/// The safetensors file of a model path: the path itself, or a SAELens directory's
/// `sae_weights.safetensors`, or a training output directory's `model.safetensors`.
pub fn model_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        for f in ["model.safetensors", "sae_weights.safetensors"] {
            if path.join(f).is_file() {
                return path.join(f);
            }
        }
    }
    path.to_path_buf()
}

impl AnyModel {
    /// Loads and validates the model at `path` (a model file, or a directory holding one).
    pub fn load(path: &Path) -> Result<AnyModel, String> {
        let in_file = |e: drsae::Error| format!("{}: {e}", path.display());
        if path.is_dir() && path.join("cfg.json").is_file() {
            return Ok(AnyModel::Sae(Box::new(
                Sae::load_saelens(path).map_err(in_file)?,
            )));
        }
        let file = model_file(path);
        let bytes =
            drsae::io::read_regular_file(&file, drsae::io::MAX_MODEL_FILE_BYTES).map_err(msg)?;
        let (_, meta) = drsae::io::tensors_from_bytes(&bytes).map_err(in_file)?;
        let kind = meta.get("format").cloned().unwrap_or_default();
        Ok(match kind.as_str() {
            "drsae" => AnyModel::Drsae(Box::new(Drsae::from_bytes(&bytes).map_err(in_file)?)),
            "lista" => {
                AnyModel::Lista(Box::new(ListaEncoder::from_bytes(&bytes).map_err(in_file)?))
            }
            "group_sparse" => {
                AnyModel::GroupSparse(Box::new(GroupSparse::from_bytes(&bytes).map_err(in_file)?))
            }
            "locally_connected" => AnyModel::Local(Box::new(
                LocallyConnected::from_bytes(&bytes).map_err(in_file)?,
            )),
            "convolutional" => AnyModel::Conv(Box::new(
                Convolutional::from_bytes(&bytes).map_err(in_file)?,
            )),
            "inhibition" => {
                AnyModel::Inhibition(Box::new(Inhibition::from_bytes(&bytes).map_err(in_file)?))
            }
            other => {
                return Err(format!(
                    "{}: metadata `format` is {other:?}, not a drsae model file",
                    file.display()
                ))
            }
        })
    }

    /// The family's name (the model file's `format`).
    pub fn kind(&self) -> &'static str {
        match self {
            AnyModel::Drsae(_) => "drsae",
            AnyModel::Lista(_) => "lista",
            AnyModel::GroupSparse(_) => "group_sparse",
            AnyModel::Local(_) => "locally_connected",
            AnyModel::Conv(_) => "convolutional",
            AnyModel::Inhibition(_) => "inhibition",
            AnyModel::Sae(_) => "sae",
        }
    }

    /// Values per input row.
    pub fn input_dim(&self) -> usize {
        match self {
            AnyModel::Drsae(m) => m.input_dim(),
            AnyModel::Lista(m) => m.input_dim(),
            AnyModel::GroupSparse(m) => m.input_dim(),
            AnyModel::Local(m) => m.input_dim(),
            AnyModel::Conv(m) => m.input_dim(),
            AnyModel::Inhibition(m) => m.input_dim(),
            AnyModel::Sae(m) => m.network().d_in(),
        }
    }

    /// Code units per row.
    pub fn units(&self) -> usize {
        match self {
            AnyModel::Drsae(m) => m.hidden(),
            AnyModel::Lista(m) => m.hidden(),
            AnyModel::GroupSparse(m) => m.hidden(),
            AnyModel::Local(m) => m.hidden(),
            AnyModel::Conv(m) => m.hidden(),
            AnyModel::Inhibition(m) => m.hidden(),
            AnyModel::Sae(m) => m.network().d_sae(),
        }
    }

    /// The model's preprocessing of inputs, by name.
    pub fn preprocessing(&self) -> String {
        let p = |p: &drsae::data::Preprocessing| {
            let rows = p.rows().name();
            if p.zca().is_some() {
                format!("{rows}+zca")
            } else {
                rows
            }
        };
        match self {
            AnyModel::Drsae(_) => "unit_l2".into(),
            AnyModel::Lista(m) => p(m.preprocessing()),
            AnyModel::GroupSparse(m) => p(m.preprocessing()),
            AnyModel::Local(m) => p(m.preprocessing()),
            AnyModel::Conv(m) => p(m.preprocessing()),
            AnyModel::Inhibition(m) => p(m.preprocessing()),
            AnyModel::Sae(m) => format!("scale:{}", m.input_scale()),
        }
    }

    /// Dense codes of the rows of `x` (the model's preprocessing applied).
    pub fn encode(&self, x: &Mat) -> Result<Mat, String> {
        match self {
            AnyModel::Drsae(m) => m.encode(x),
            AnyModel::Lista(m) => m.encode(x),
            AnyModel::GroupSparse(m) => m.encode(x),
            AnyModel::Local(m) => m.encode(x),
            AnyModel::Conv(m) => m.encode(x),
            AnyModel::Inhibition(m) => m.encode(x),
            AnyModel::Sae(m) => m.encode(x).map(|c| c.to_dense()),
        }
        .map_err(msg)
    }
}

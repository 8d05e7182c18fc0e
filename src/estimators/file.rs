//! The one model-file layout of the estimators other than DrSAE (whose layout predates it
//! and is kept for compatibility, see [`crate::io`]): safetensors with
//!
//! - metadata `format` = the family (`lista`, `group_sparse`, `locally_connected`,
//!   `convolutional`, `inhibition`), `format_version` = [`FORMAT_VERSION`](crate::io::FORMAT_VERSION),
//!   `crate_version`, `preprocessing` ([`Preprocessor::name`]) and the family's settings;
//! - the family's tensors, plus `zca.mean` and `zca.W` when the inputs are whitened.
//!
//! Reading checks the format, every tensor's shape, and refuses unknown tensors.

use crate::data::{Preprocessing, Preprocessor, Zca};
use crate::io::{tensors_from_bytes, tensors_to_bytes, NamedTensors, FORMAT_VERSION};
use crate::linalg::Mat;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// An owned `(name, shape, values)` tensor.
pub(crate) type Tensor = (String, Vec<usize>, Vec<f32>);

fn err(what: impl Into<String>) -> Error {
    Error::format("model file", what)
}

/// Serialises a family's tensors, settings and preprocessing.
pub(crate) fn to_bytes(
    format: &str,
    mut tensors: Vec<Tensor>,
    settings: Vec<(&str, String)>,
    preprocessing: &Preprocessing,
) -> Result<Vec<u8>> {
    let mut meta: HashMap<String, String> = settings
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    meta.insert("format".into(), format.into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert("crate_version".into(), env!("CARGO_PKG_VERSION").into());
    meta.insert("preprocessing".into(), preprocessing.rows().name());
    if let Some(zca) = preprocessing.zca() {
        let (mean, w) = zca.parts();
        let m = mean.len();
        tensors.push(("zca.mean".into(), vec![m], mean.to_vec()));
        tensors.push(("zca.W".into(), vec![m, m], w.as_slice().to_vec()));
    }
    let named: Vec<crate::io::NamedTensor<'_>> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), &v[..]))
        .collect();
    tensors_to_bytes(&named, meta)
}

/// A parsed model file whose tensors are taken one by one.
pub(crate) struct ModelFile {
    tensors: NamedTensors,
    meta: HashMap<String, String>,
}

impl ModelFile {
    /// Parses bytes and checks that they hold a `format` model of this version.
    pub(crate) fn parse(bytes: &[u8], format: &str) -> Result<ModelFile> {
        let (tensors, meta) = tensors_from_bytes(bytes)?;
        if meta.get("format").map(String::as_str) != Some(format) {
            return Err(err(format!(
                "metadata `format` is {:?}, expected `{format}`",
                meta.get("format")
            )));
        }
        if meta.get("format_version").map(String::as_str) != Some(FORMAT_VERSION) {
            return Err(err(format!(
                "unsupported format_version {:?}",
                meta.get("format_version")
            )));
        }
        Ok(ModelFile { tensors, meta })
    }

    /// Removes tensor `name`, which must have `shape`.
    pub(crate) fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (s, v) = self
            .tensors
            .remove(name)
            .ok_or_else(|| err(format!("missing tensor `{name}`")))?;
        if s != shape {
            return Err(err(format!(
                "tensor `{name}` has shape {s:?}, expected {shape:?}"
            )));
        }
        Ok(v)
    }

    /// Removes tensor `name` as a `rows × cols` matrix.
    pub(crate) fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Mat> {
        Ok(Mat::from_vec(rows, cols, self.tensor(name, &[rows, cols])?))
    }

    /// The shape of tensor `name` (to size the others), without removing it.
    pub(crate) fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.tensors
            .get(name)
            .map(|(s, _)| s.clone())
            .ok_or_else(|| err(format!("missing tensor `{name}`")))
    }

    /// The metadata entry `key` parsed as a `T`.
    pub(crate) fn get<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let v = self
            .meta
            .get(key)
            .ok_or_else(|| err(format!("missing metadata `{key}`")))?;
        v.parse()
            .map_err(|_| err(format!("metadata `{key}` = {v:?} is not valid")))
    }

    /// The metadata entry `key` parsed as a count in `1..=max`.
    pub(crate) fn count(&self, key: &str, max: usize) -> Result<usize> {
        let v: usize = self.get(key)?;
        if v == 0 || v > max {
            return Err(err(format!("metadata `{key}` = {v} not in 1..={max}")));
        }
        Ok(v)
    }

    /// The metadata entry `key` as a finite number ≥ 0.
    pub(crate) fn weight(&self, key: &str) -> Result<f32> {
        let v: f32 = self.get(key)?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(err(format!(
                "metadata `{key}` = {} is not finite and ≥ 0",
                crate::Compact(v)
            )));
        }
        Ok(v)
    }

    /// The preprocessing for inputs of length `m` (removes the ZCA tensors).
    pub(crate) fn preprocessing(&mut self, m: usize) -> Result<Preprocessing> {
        let rows = Preprocessor::parse(&self.get::<String>("preprocessing")?)?;
        let zca = if self.tensors.contains_key("zca.mean") || self.tensors.contains_key("zca.W") {
            let mean = self.tensor("zca.mean", &[m])?;
            let w = self.matrix("zca.W", m, m)?;
            Some(Zca::from_parts(mean, w)?)
        } else {
            None
        };
        Ok(Preprocessing::with_zca(rows, zca))
    }

    /// Checks that every tensor was taken.
    pub(crate) fn finish(self) -> Result<()> {
        let mut left: Vec<&String> = self.tensors.keys().collect();
        left.sort();
        match left.first() {
            None => Ok(()),
            Some(name) => Err(err(format!("unknown tensor `{}`", name.escape_debug()))),
        }
    }
}

/// Reads a model file (a regular file of bounded size) and parses it with `parse`, naming
/// the file in errors.
pub(crate) fn load<T>(path: &Path, parse: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
    let bytes = crate::io::read_regular_file(path, crate::io::MAX_MODEL_FILE_BYTES)?;
    parse(&bytes).map_err(|e| e.in_file(path))
}

/// `to_bytes`, `from_bytes`, `save` and `load` for an estimator with private
/// `fn encode_file(&self) -> Result<Vec<u8>>` and `fn decode_file(&[u8]) -> Result<Self>`.
macro_rules! model_file_methods {
    ($ty:ident, $format:literal) => {
        #[cfg(feature = "safetensors")]
        impl $ty {
            #[doc = concat!("The model as safetensors bytes (metadata `format` = `", $format, "`; see [`crate::estimators`] for the layout).")]
            ///
            /// # Errors
            /// None in practice (the tensors are consistent by construction).
            pub fn to_bytes(&self) -> $crate::Result<Vec<u8>> {
                self.encode_file()
            }

            #[doc = concat!("Parses bytes written by [`", stringify!($ty), "::to_bytes`].")]
            ///
            /// # Errors
            /// [`Error::Format`](crate::Error::Format) for anything malformed: another
            /// format, missing or unknown tensors, shapes or settings that disagree,
            /// non-finite values.
            pub fn from_bytes(bytes: &[u8]) -> $crate::Result<$ty> {
                Self::decode_file(bytes)
            }

            /// Writes the model to `path` atomically.
            ///
            /// # Errors
            /// An I/O error.
            pub fn save(&self, path: impl AsRef<std::path::Path>) -> $crate::Result<()> {
                $crate::io::write_atomic(path, &self.to_bytes()?)
            }

            #[doc = concat!("Reads a model file written by [`", stringify!($ty), "::save`].")]
            ///
            /// # Errors
            /// An I/O error, or [`Error::Format`](crate::Error::Format) naming the file.
            pub fn load(path: impl AsRef<std::path::Path>) -> $crate::Result<$ty> {
                $crate::estimators::file::load(path.as_ref(), Self::from_bytes)
            }
        }
    };
}
pub(crate) use model_file_methods;

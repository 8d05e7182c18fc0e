//! The crate's error type: everything that comes from user input (files, hyper-parameters,
//! training that diverged). Shape mismatches between the crate's own arguments are
//! programmer errors and panic instead.

use std::fmt;

/// Errors returned by drsae.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error while reading or writing `path`.
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's contents are malformed: `what` names the problem.
    Format {
        /// The kind of file ("IDX", "PGM", "safetensors", ...).
        format: &'static str,
        /// What is wrong, in words.
        what: String,
    },
    /// A hyper-parameter or argument has an invalid value.
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why the value is invalid.
        reason: String,
    },
    /// Input data holds a NaN or infinity.
    NonFiniteInput {
        /// Which input.
        what: String,
        /// Flat index of the first bad value.
        index: usize,
    },
    /// Training stopped on request (`stop_after_steps`) after writing a checkpoint; resume
    /// from it to continue.
    Interrupted {
        /// Optimisation steps taken.
        step: u64,
    },
    /// Training produced a non-finite loss, gradient or parameter.
    Diverged {
        /// The optimisation step (0-based) at which it happened.
        step: u64,
        /// What became non-finite.
        what: String,
    },
    /// Every code unit was zero on every training example of a whole epoch: no gradient
    /// reaches a silent ReLU network, so training could never revive it (typically a
    /// learning rate too high for the model).
    Collapsed {
        /// The optimisation step at the end of the silent epoch.
        step: u64,
        /// The training phase (1 unsupervised, 2 supervised).
        phase: u8,
        /// The epoch within the phase.
        epoch: usize,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::Format { format, what } => write!(f, "malformed {format} data: {what}"),
            Error::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter `{name}`: {reason}")
            }
            Error::NonFiniteInput { what, index } => {
                write!(f, "{what} holds a non-finite value at index {index}")
            }
            Error::Interrupted { step } => write!(
                f,
                "training interrupted after step {step} (checkpoint written)"
            ),
            Error::Diverged { step, what } => {
                write!(f, "training diverged at step {step}: {what} is not finite")
            }
            Error::Collapsed { step, phase, epoch } => write!(
                f,
                "training collapsed at step {step}: every code unit was silent on every \
                 training example of phase {phase} epoch {epoch}, and no gradient can revive \
                 them (lower the learning rate)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    pub(crate) fn format(format: &'static str, what: impl Into<String>) -> Self {
        Error::Format {
            format,
            what: what.into(),
        }
    }
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
    /// Prefixes a format error's description with the file it came from.
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            Error::Format { format, what } => Error::Format {
                format,
                what: format!("{}: {what}", path.display()),
            },
            e => e,
        }
    }
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// A float as the crate's error messages print it: in scientific notation (`1e30`, `2.5e-7`)
/// when its magnitude is ≥ 10⁶ or below 10⁻⁴ (and not 0), else as `{}` prints it (`0.003`,
/// `12.5`); NaN and the infinities as they are (`NaN`, `inf`, `-inf`). Every parameter check
/// formats the values it rejects through this, so that `lr = 1e30` reads `1e30`, not a
/// 31-digit integer.
///
/// ```
/// use drsae::Compact;
/// assert_eq!(Compact(1e30_f64).to_string(), "1e30");
/// assert_eq!(Compact(0.003_f32).to_string(), "0.003");
/// assert_eq!(Compact(-2.5e-7_f64).to_string(), "-2.5e-7");
/// assert_eq!(Compact(f32::NAN).to_string(), "NaN");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compact<T>(pub T);

macro_rules! compact_display {
    ($($t:ty),*) => {$(
        impl fmt::Display for Compact<$t> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let a = self.0.abs();
                if a.is_finite() && (a >= 1e6 || (a > 0.0 && a < 1e-4)) {
                    write!(f, "{:e}", self.0)
                } else {
                    write!(f, "{}", self.0)
                }
            }
        }
    )*};
}
compact_display!(f32, f64);

/// Returns `Err(NonFiniteInput)` naming the first non-finite value of `values`.
pub fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFiniteInput {
            what: what.to_string(),
            index,
        }),
    }
}

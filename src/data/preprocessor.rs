//! [`Preprocessor`]: the per-example transform a model was trained with, stored in the
//! fitted model and its file so that new inputs get exactly the same treatment.

use super::preprocess::{contrast_normalize_rows, normalize_rows_l2, remove_row_means, Zca};
use crate::linalg::Mat;
use crate::{Error, Result};

/// A per-row transform applied to every input before a model sees it.
///
/// | variant | transform | name in model files |
/// |---|---|---|
/// | `Identity` | none | `identity` |
/// | `UnitL2` | `x ↦ x / ‖x‖` (zero rows stay zero): DrSAE's | `unit_l2` |
/// | `Contrast { floor }` | remove the row mean, divide by `max(std, floor)` | `contrast:FLOOR` |
///
/// # Examples
/// ```
/// use drsae::data::Preprocessor;
/// use drsae::linalg::Mat;
/// let mut x = Mat::from_vec(1, 2, vec![3.0, 4.0]);
/// Preprocessor::UnitL2.apply(&mut x);
/// assert_eq!(x.as_slice(), &[0.6, 0.8]);
/// assert_eq!(Preprocessor::parse("unit_l2").unwrap(), Preprocessor::UnitL2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Preprocessor {
    /// Inputs are used as given.
    #[default]
    Identity,
    /// Every row scaled to unit L2 norm.
    UnitL2,
    /// Row mean removed, then divided by `max(std, floor)`.
    Contrast {
        /// Smallest divisor (keeps flat rows from being blown up into noise); > 0.
        floor: f32,
    },
}

impl Preprocessor {
    /// Applies the transform to every row of `x` in place.
    pub fn apply(&self, x: &mut Mat) {
        match *self {
            Preprocessor::Identity => {}
            Preprocessor::UnitL2 => normalize_rows_l2(x),
            Preprocessor::Contrast { floor } => {
                remove_row_means(x);
                contrast_normalize_rows(x, floor);
            }
        }
    }

    /// The name stored in model files (see the table above); [`Preprocessor::parse`]
    /// reads it back.
    pub fn name(&self) -> String {
        match self {
            Preprocessor::Identity => "identity".into(),
            Preprocessor::UnitL2 => "unit_l2".into(),
            Preprocessor::Contrast { floor } => format!("contrast:{floor}"),
        }
    }

    /// Parses a name written by [`Preprocessor::name`].
    ///
    /// # Errors
    /// [`Error::Format`] for an unknown name or a floor that is not a finite positive number.
    pub fn parse(name: &str) -> Result<Preprocessor> {
        let bad = || {
            Error::format(
                "model metadata",
                format!("unknown preprocessing `{}`", name.escape_debug()),
            )
        };
        match name {
            "identity" => Ok(Preprocessor::Identity),
            "unit_l2" => Ok(Preprocessor::UnitL2),
            _ => {
                let floor: f32 = name
                    .strip_prefix("contrast:")
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?;
                if floor > 0.0 && floor.is_finite() {
                    Ok(Preprocessor::Contrast { floor })
                } else {
                    Err(bad())
                }
            }
        }
    }

    /// Checks the variant's own parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`preprocessing`) for a contrast floor that is not finite
    /// and positive.
    pub fn check(&self) -> Result<()> {
        match *self {
            Preprocessor::Contrast { floor } if !(floor > 0.0 && floor.is_finite()) => {
                Err(Error::param(
                    "preprocessing",
                    format!(
                        "contrast floor {} must be finite and > 0",
                        crate::Compact(floor)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The whole preprocessing of a fitted model: a per-row [`Preprocessor`], then optionally
/// ZCA whitening ([`Zca`]) fitted on the training rows after the per-row step.
///
/// Model files store the per-row step's [`Preprocessor::name`] as metadata `preprocessing`
/// and the whitening as tensors `zca.mean` (m) and `zca.W` (m × m).
///
/// # Examples
/// ```
/// use drsae::data::{Preprocessing, Preprocessor};
/// use drsae::linalg::Mat;
/// let mut x = Mat::from_fn(50, 3, |i, j| ((i * 7 + j * 3) % 11) as f32);
/// let p = Preprocessing::fit(Preprocessor::Contrast { floor: 0.05 }, Some(0.1), &mut x);
/// assert!(p.zca().is_some());
/// let mut row = Mat::from_vec(1, 3, vec![1.0, 2.0, 4.0]);
/// p.apply(&mut row); // the same transform on new inputs
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Preprocessing {
    per_row: Preprocessor,
    zca: Option<Zca>,
}

impl Preprocessing {
    /// A per-row step alone (no whitening).
    pub fn per_row(per_row: Preprocessor) -> Preprocessing {
        Preprocessing { per_row, zca: None }
    }

    /// A per-row step, then the given whitening.
    pub fn with_zca(per_row: Preprocessor, zca: Option<Zca>) -> Preprocessing {
        Preprocessing { per_row, zca }
    }

    /// Applies `per_row` to the training rows `x` in place, then, with `zca_epsilon`, fits
    /// ZCA whitening on the result and whitens `x` too; returns the transform for new
    /// inputs.
    pub fn fit(per_row: Preprocessor, zca_epsilon: Option<f32>, x: &mut Mat) -> Preprocessing {
        per_row.apply(x);
        let zca = zca_epsilon.map(|eps| {
            let zca = Zca::fit(x, eps);
            zca.apply(x);
            zca
        });
        Preprocessing { per_row, zca }
    }

    /// Transforms every row of `x` in place.
    pub fn apply(&self, x: &mut Mat) {
        self.per_row.apply(x);
        if let Some(zca) = &self.zca {
            zca.apply(x);
        }
    }

    /// The per-row step.
    pub fn rows(&self) -> Preprocessor {
        self.per_row
    }

    /// The whitening, if any.
    pub fn zca(&self) -> Option<&Zca> {
        self.zca.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        for p in [
            Preprocessor::Identity,
            Preprocessor::UnitL2,
            Preprocessor::Contrast { floor: 0.25 },
        ] {
            assert_eq!(Preprocessor::parse(&p.name()).unwrap(), p);
        }
        for bad in [
            "",
            "zca",
            "contrast:",
            "contrast:-1",
            "contrast:nan",
            "contrast:inf",
        ] {
            assert!(
                matches!(Preprocessor::parse(bad), Err(Error::Format { .. })),
                "{bad}"
            );
        }
        assert!(Preprocessor::Contrast { floor: 0.0 }.check().is_err());
    }

    #[test]
    fn contrast_centres_and_scales_rows() {
        let mut x = Mat::from_vec(1, 4, vec![1.0, 2.0, 3.0, 6.0]);
        Preprocessor::Contrast { floor: 1e-3 }.apply(&mut x);
        let mean: f32 = x.as_slice().iter().sum::<f32>() / 4.0;
        let var: f32 = x.as_slice().iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    }
}

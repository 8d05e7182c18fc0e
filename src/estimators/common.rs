//! Helpers shared by the estimators: parameter checks, chunked evaluation.

use crate::linalg::Mat;
use crate::{Compact, Error, Result};

/// Rows per forward pass when encoding many inputs (memory, not results: every row is
/// computed independently).
pub(crate) const EVAL_BATCH: usize = 500;

/// `value` in `1..=max`, else an error naming `name`.
pub(crate) fn check_count(name: &'static str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        return Err(Error::param(name, format!("{value} not in 1..={max}")));
    }
    Ok(())
}

/// `value` finite and > 0, else an error naming `name`.
///
/// These checks take a value of either float width, compare it as `f64` and print it as
/// itself through [`Compact`] (an `f32` learning rate of 0.1 reads `0.1`, not
/// `0.10000000149011612`).
pub(crate) fn check_positive<T: Copy + Into<f64>>(name: &'static str, value: T) -> Result<()>
where
    Compact<T>: std::fmt::Display,
{
    let v: f64 = value.into();
    if !(v > 0.0 && v.is_finite()) {
        return Err(Error::param(
            name,
            format!("{} must be finite and > 0", Compact(value)),
        ));
    }
    Ok(())
}

/// The largest accepted learning rate of the estimators (far above any that trains).
pub(crate) const MAX_LR: f64 = 10.0;
/// The largest accepted penalty weight (λ, PSD's α).
pub(crate) const MAX_WEIGHT: f64 = 1e4;
/// The largest accepted time budget in seconds (about 116 days).
pub(crate) const MAX_TIME_BUDGET: f64 = 1e7;

/// Epochs an estimator plans when a time budget is given without an epoch count: the budget
/// ends the run, and the learning-rate schedule follows the time spent.
pub(crate) const EPOCHS_UNDER_BUDGET: usize = 1_000_000;

/// Largest epoch count a caller may set.
pub(crate) const MAX_EPOCHS: usize = 1 << 24;

/// Passes over the data an estimator trains for: its family's default unless the caller set
/// a count, and, under a time budget with no count set, as many as the budget allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Epochs {
    set: Option<usize>,
    default: usize,
}

impl Epochs {
    /// A family's default count.
    pub(crate) const fn default_of(default: usize) -> Epochs {
        Epochs { set: None, default }
    }
    /// The caller's count.
    pub(crate) fn set(&mut self, n: usize) {
        self.set = Some(n);
    }
    /// The count a run with this budget plans.
    pub(crate) fn resolve(&self, budget: Option<f64>) -> usize {
        match (self.set, budget) {
            (Some(n), _) => n,
            (None, Some(_)) => EPOCHS_UNDER_BUDGET,
            (None, None) => self.default,
        }
    }
    /// The caller's count lies in 1..=[`MAX_EPOCHS`].
    pub(crate) fn check(&self) -> Result<()> {
        self.set
            .map_or(Ok(()), |n| check_count("epochs", n, MAX_EPOCHS))
    }
}

/// `value` in (0, `max`], else an error naming `name`.
pub(crate) fn check_positive_at_most<T: Copy + Into<f64>>(
    name: &'static str,
    value: T,
    max: f64,
) -> Result<()>
where
    Compact<T>: std::fmt::Display,
{
    let v: f64 = value.into();
    if !(v > 0.0 && v <= max) {
        return Err(Error::param(
            name,
            format!(
                "{} must be finite, > 0 and ≤ {}",
                Compact(value),
                Compact(max)
            ),
        ));
    }
    Ok(())
}

/// `value` in [0, `max`], else an error naming `name`.
pub(crate) fn check_non_negative_at_most<T: Copy + Into<f64>>(
    name: &'static str,
    value: T,
    max: f64,
) -> Result<()>
where
    Compact<T>: std::fmt::Display,
{
    let v: f64 = value.into();
    if !(0.0..=max).contains(&v) {
        return Err(Error::param(
            name,
            format!(
                "{} must be finite, ≥ 0 and ≤ {}",
                Compact(value),
                Compact(max)
            ),
        ));
    }
    Ok(())
}

/// `f` over chunks of at most [`EVAL_BATCH`] rows of `x`, each giving `cols` values per
/// row, stacked.
pub(crate) fn by_chunks(x: &Mat, cols: usize, mut f: impl FnMut(&Mat) -> Mat) -> Mat {
    let mut out = Mat::zeros(x.nrows(), cols);
    let mut start = 0;
    while start < x.nrows() {
        let end = (start + EVAL_BATCH).min(x.nrows());
        let part = f(&x.row_range(start, end).to_owned());
        debug_assert_eq!(part.shape(), (end - start, cols));
        for (r, row) in part.rows().enumerate() {
            out.row_mut(start + r).copy_from_slice(row);
        }
        start = end;
    }
    out
}

/// Consuming setters on a `Params(ValidParams)` newtype: each `name: type => |p, v| body;`
/// becomes `pub fn name(mut self, v: type) -> Self`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => |$p:ident, $v:ident| $body:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $v: $ty) -> Self {
                let $p = &mut self.0;
                $body;
                self
            }
        )*
    };
}
pub(crate) use setters;

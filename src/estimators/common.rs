//! Helpers shared by the estimators: parameter checks, chunked evaluation.

use crate::linalg::Mat;
use crate::train::Checkpointing;
use crate::{Error, Result};

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
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if !(value > 0.0 && value.is_finite()) {
        return Err(Error::param(
            name,
            format!("{value} must be finite and > 0"),
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

/// `value` in (0, `max`], else an error naming `name`.
pub(crate) fn check_positive_at_most(name: &'static str, value: f64, max: f64) -> Result<()> {
    if !(value > 0.0 && value <= max) {
        return Err(Error::param(
            name,
            format!("{value} must be finite, > 0 and ≤ {max}"),
        ));
    }
    Ok(())
}

/// `value` in [0, `max`], else an error naming `name`.
pub(crate) fn check_non_negative_at_most(name: &'static str, value: f64, max: f64) -> Result<()> {
    if !(0.0..=max).contains(&value) {
        return Err(Error::param(
            name,
            format!("{value} must be finite, ≥ 0 and ≤ {max}"),
        ));
    }
    Ok(())
}

/// Checkpoint options that need a directory have one.
pub(crate) fn check_checkpointing(ck: &Checkpointing) -> Result<()> {
    if (ck.every_steps > 0 || ck.resume || ck.stop_after_steps.is_some()) && ck.dir.is_none() {
        return Err(Error::param(
            "checkpoint_dir",
            "checkpoint_every, resume and stop_after_steps need a checkpoint directory",
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

//! [`AsRows`]: the inputs a fitted model accepts — one row or many, from the containers a
//! caller already holds.

use crate::linalg::{Mat, MatRef};
use crate::{Error, Result};

/// Rows of `f32` inputs for a fitted model's `encode`, `predict`, ...: a [`Mat`] or
/// [`MatRef`] (one example per row), a flat slice of whole rows (so one row is just
/// `&[f32]` of the model's input length), a slice of rows (`&[Vec<f32>]`, `&[&[f32]]`), and
/// with the `ndarray` feature an `ArrayView2<f32>` / `&Array2<f32>`.
///
/// # Examples
/// ```
/// use drsae::data::AsRows;
/// use drsae::linalg::Mat;
/// let one_row = [0.0f32, 1.0, 2.0];
/// assert_eq!(one_row[..].to_rows(3).unwrap().shape(), (1, 3));
/// let two_rows = vec![vec![0.0f32; 3], vec![1.0; 3]];
/// assert_eq!(two_rows.to_rows(3).unwrap().shape(), (2, 3));
/// assert!(one_row[..].to_rows(2).is_err()); // 3 values are not whole rows of 2
/// ```
pub trait AsRows {
    /// Copies the rows into a new matrix of `ncols` columns.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`input`) when the rows are not `ncols` long, and
    /// [`Error::NonFiniteInput`] when a value is NaN or infinite.
    fn to_rows(&self, ncols: usize) -> Result<Mat>;

    /// The row length the container itself shows, for estimators whose input width is not
    /// fixed by their parameters (a matrix's columns, the first of a list of rows, a flat
    /// slice's length as one row); `None` when it shows none (an empty list of rows).
    fn width(&self) -> Option<usize> {
        None
    }

    /// The rows at the container's own [`width`](Self::width).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`input`) when there is no width (no rows) or the rows
    /// disagree, and [`Error::NonFiniteInput`] as [`to_rows`](Self::to_rows).
    fn to_own_rows(&self) -> Result<Mat> {
        let w = self
            .width()
            .ok_or_else(|| width_error("no rows, so no row length".into()))?;
        self.to_rows(w)
    }
}

fn width_error(what: String) -> Error {
    Error::param("input", what)
}

fn finished(m: Mat) -> Result<Mat> {
    crate::check_finite("input", m.as_slice())?;
    Ok(m)
}

impl AsRows for Mat {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        self.view().to_rows(ncols)
    }
    fn width(&self) -> Option<usize> {
        Some(self.ncols())
    }
}

impl AsRows for MatRef<'_> {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        if self.ncols() != ncols {
            return Err(width_error(format!(
                "rows of {} values, the model takes {ncols}",
                self.ncols()
            )));
        }
        finished(self.to_owned())
    }
    fn width(&self) -> Option<usize> {
        Some(self.ncols())
    }
}

impl AsRows for [f32] {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        if ncols == 0 || self.len() % ncols != 0 {
            return Err(width_error(format!(
                "{} values are not whole rows of {ncols}",
                self.len()
            )));
        }
        finished(Mat::from_vec(self.len() / ncols, ncols, self.to_vec()))
    }
    fn width(&self) -> Option<usize> {
        (!self.is_empty()).then_some(self.len())
    }
}

impl AsRows for Vec<f32> {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        self[..].to_rows(ncols)
    }
    fn width(&self) -> Option<usize> {
        self[..].width()
    }
}

impl<const N: usize> AsRows for [f32; N] {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        self[..].to_rows(ncols)
    }
    fn width(&self) -> Option<usize> {
        self[..].width()
    }
}

fn from_row_slices<'a>(
    rows: impl ExactSizeIterator<Item = &'a [f32]>,
    ncols: usize,
) -> Result<Mat> {
    let mut data = Vec::with_capacity(rows.len().saturating_mul(ncols));
    for (i, r) in rows.enumerate() {
        if r.len() != ncols {
            return Err(width_error(format!(
                "row {i} has {} values, the model takes {ncols}",
                r.len()
            )));
        }
        data.extend_from_slice(r);
    }
    finished(Mat::from_vec(data.len() / ncols.max(1), ncols, data))
}

impl AsRows for [Vec<f32>] {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        from_row_slices(self.iter().map(Vec::as_slice), ncols)
    }
    fn width(&self) -> Option<usize> {
        self.first().map(Vec::len)
    }
}

impl AsRows for Vec<Vec<f32>> {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        self[..].to_rows(ncols)
    }
    fn width(&self) -> Option<usize> {
        self[..].width()
    }
}

impl AsRows for [&[f32]] {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        from_row_slices(self.iter().copied(), ncols)
    }
    fn width(&self) -> Option<usize> {
        self.first().map(|r| r.len())
    }
}

impl<T: AsRows + ?Sized> AsRows for &T {
    fn to_rows(&self, ncols: usize) -> Result<Mat> {
        (**self).to_rows(ncols)
    }
    fn width(&self) -> Option<usize> {
        (**self).width()
    }
}

#[cfg(feature = "ndarray")]
mod ndarray_rows {
    use super::*;
    use ndarray::{Array2, ArrayView2};

    impl AsRows for ArrayView2<'_, f32> {
        fn to_rows(&self, ncols: usize) -> Result<Mat> {
            if self.ncols() != ncols {
                return Err(width_error(format!(
                    "rows of {} values, the model takes {ncols}",
                    self.ncols()
                )));
            }
            finished(Mat::from_vec(
                self.nrows(),
                ncols,
                self.iter().copied().collect(),
            ))
        }
        fn width(&self) -> Option<usize> {
            Some(self.ncols())
        }
    }

    impl AsRows for Array2<f32> {
        fn to_rows(&self, ncols: usize) -> Result<Mat> {
            self.view().to_rows(ncols)
        }
        fn width(&self) -> Option<usize> {
            Some(self.ncols())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_gives_the_same_rows() {
        let flat = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let want = Mat::from_vec(2, 3, flat.to_vec());
        let nested = vec![vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
        let slices: Vec<&[f32]> = vec![&flat[..3], &flat[3..]];
        assert_eq!(flat.to_rows(3).unwrap(), want);
        assert_eq!(nested.to_rows(3).unwrap(), want);
        assert_eq!(slices[..].to_rows(3).unwrap(), want);
        assert_eq!(want.to_rows(3).unwrap(), want);
        assert_eq!(want.view().to_rows(3).unwrap(), want);
        assert_eq!(want.t().to_rows(2).unwrap(), want.transposed());
    }

    #[test]
    fn wrong_widths_and_non_finite_values_are_errors() {
        assert!(matches!(
            [1.0f32; 5].to_rows(3),
            Err(Error::InvalidParameter { name: "input", .. })
        ));
        assert!([1.0f32; 3].to_rows(0).is_err());
        assert!(vec![vec![1.0f32; 3], vec![1.0; 2]].to_rows(3).is_err());
        assert!(matches!(
            [1.0f32, f32::NAN].to_rows(2),
            Err(Error::NonFiniteInput { index: 1, .. })
        ));
        assert_eq!(Vec::<Vec<f32>>::new().to_rows(3).unwrap().shape(), (0, 3));
    }

    #[test]
    fn containers_report_their_own_width() {
        let nested = vec![vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
        let want = Mat::from_vec(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(nested.width(), Some(3));
        assert_eq!(nested.to_own_rows().unwrap(), want);
        assert_eq!(want.width(), Some(3));
        assert_eq!(want.view().width(), Some(3));
        assert_eq!([1.0f32, 2.0].width(), Some(2));
        assert_eq!((&&want).width(), Some(3));
        assert_eq!(Vec::<Vec<f32>>::new().width(), None);
        assert!(matches!(
            Vec::<Vec<f32>>::new().to_own_rows(),
            Err(Error::InvalidParameter { .. })
        ));
        // A ragged list is an error at its first row's width.
        assert!(vec![vec![1.0f32; 3], vec![1.0; 2]].to_own_rows().is_err());
    }
}

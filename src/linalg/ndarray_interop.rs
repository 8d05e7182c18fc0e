//! Conversions between [`Mat`] / [`MatRef`] and `ndarray`'s `Array2` / `ArrayView2`
//! (feature `ndarray`). Views convert without copying; owned matrices hand over their
//! buffer when it is in row-major order.

use super::{Mat, MatRef};
use crate::{Error, Result};
use ndarray::{Array2, ArrayView2, ShapeBuilder};

impl<'a> TryFrom<ArrayView2<'a, f32>> for MatRef<'a> {
    type Error = Error;

    /// A view of the same memory, for an array contiguous in memory (row- or
    /// column-major, e.g. a transposed array).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`array`) for a non-contiguous view (make it contiguous
    /// first, e.g. with `as_standard_layout()`).
    fn try_from(a: ArrayView2<'a, f32>) -> Result<MatRef<'a>> {
        let (r, c) = a.dim();
        let strides = a.strides();
        let (rs, cs) = (strides[0], strides[1]);
        match a.to_slice_memory_order() {
            Some(data) if rs >= 0 && cs >= 0 => Ok(MatRef::from_strided(data, r, c, rs, cs)),
            _ => Err(Error::param(
                "array",
                format!("a {r}×{c} view with strides ({rs}, {cs}) is not contiguous in memory"),
            )),
        }
    }
}

impl<'a> From<MatRef<'a>> for ArrayView2<'a, f32> {
    /// A view of the same memory with the same strides.
    fn from(m: MatRef<'a>) -> ArrayView2<'a, f32> {
        let (r, c) = m.shape();
        let (rs, cs) = (m.row_stride() as usize, m.col_stride() as usize);
        ArrayView2::from_shape((r, c).strides((rs, cs)), m.data_slice())
            .expect("a MatRef's extent lies inside its slice")
    }
}

impl From<Mat> for Array2<f32> {
    /// Moves the row-major buffer into the array (no copy).
    fn from(m: Mat) -> Array2<f32> {
        let (r, c) = m.shape();
        Array2::from_shape_vec((r, c), m.into_vec()).expect("a Mat holds rows × cols values")
    }
}

impl From<Array2<f32>> for Mat {
    /// Moves a row-major array's buffer into the matrix; other layouts are copied.
    fn from(a: Array2<f32>) -> Mat {
        let (r, c) = a.dim();
        if a.is_standard_layout() {
            let (data, offset) = a.into_raw_vec_and_offset();
            if offset.unwrap_or(0) == 0 && data.len() == r * c {
                return Mat::from_vec(r, c, data);
            }
            return Mat::from_vec(r, c, data[offset.unwrap_or(0)..][..r * c].to_vec());
        }
        Mat::from_vec(r, c, a.iter().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_share_memory_and_owned_values_round_trip() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as f32);
        let m = MatRef::try_from(a.view()).unwrap();
        assert_eq!(m.get(2, 3), 23.0);
        let t = MatRef::try_from(a.t()).unwrap();
        assert_eq!((t.shape(), t.get(3, 2)), ((4, 3), 23.0));
        let back: ArrayView2<f32> = m.into();
        assert_eq!(back, a.view());
        assert!(std::ptr::eq(back.as_ptr(), a.as_ptr()));
        let owned: Mat = a.clone().into();
        assert_eq!(Array2::from(owned), a);
        let transposed: Mat = a.t().to_owned().into();
        assert_eq!(transposed.shape(), (4, 3));
        assert!(MatRef::try_from(a.slice(ndarray::s![.., ..;2])).is_err());
    }
}

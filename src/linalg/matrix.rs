//! Dense f32 matrices: the owned row-major [`Mat`] and the strided views [`MatRef`] and
//! [`MatMut`]. A transpose is a view with swapped strides, never a copy.

use rand::Rng;
use rand_distr::Distribution;

/// An owned, contiguous, row-major `nrows × ncols` matrix of f32.
#[derive(Clone, PartialEq, Default)]
pub struct Mat {
    data: Vec<f32>,
    nrows: usize,
    ncols: usize,
}

impl std::fmt::Debug for Mat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mat({}×{})", self.nrows, self.ncols)
    }
}

/// An immutable strided view of a matrix: element `(i, j)` is at
/// `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    nrows: usize,
    ncols: usize,
    rs: usize,
    cs: usize,
}

/// A mutable strided view of a matrix whose elements do not alias each other.
pub struct MatMut<'a> {
    data: &'a mut [f32],
    nrows: usize,
    ncols: usize,
    rs: usize,
    cs: usize,
}

/// Panics unless `(nrows, ncols, rs, cs)` addresses only elements inside `len`.
#[track_caller]
fn check_extent(len: usize, nrows: usize, ncols: usize, rs: usize, cs: usize) {
    if nrows == 0 || ncols == 0 {
        return;
    }
    let last = (nrows - 1)
        .checked_mul(rs)
        .and_then(|a| (ncols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)));
    match last {
        Some(last) if last < len => {}
        _ => panic!(
            "a {nrows}×{ncols} view with strides ({rs}, {cs}) does not fit in {len} elements"
        ),
    }
}

/// True when distinct `(i, j)` map to distinct offsets (row- or column-major like layouts).
fn non_aliasing(nrows: usize, ncols: usize, rs: usize, cs: usize) -> bool {
    nrows <= 1 && (ncols <= 1 || cs >= 1)
        || ncols <= 1 && rs >= 1
        || cs >= 1 && rs >= ncols * cs
        || rs >= 1 && cs >= nrows * rs
}

impl Mat {
    /// A `nrows × ncols` matrix of zeros.
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        let len = nrows
            .checked_mul(ncols)
            .expect("matrix size overflows usize");
        Mat {
            data: vec![0.0; len],
            nrows,
            ncols,
        }
    }

    /// A matrix filled with `value`.
    pub fn filled(nrows: usize, ncols: usize, value: f32) -> Self {
        let mut m = Mat::zeros(nrows, ncols);
        m.data.fill(value);
        m
    }

    /// The identity matrix of size `n`.
    pub fn identity(n: usize) -> Self {
        let mut m = Mat::zeros(n, n);
        for i in 0..n {
            m[(i, i)] = 1.0;
        }
        m
    }

    /// Wraps a row-major buffer.
    ///
    /// # Panics
    /// If `data.len() != nrows * ncols`.
    #[track_caller]
    pub fn from_vec(nrows: usize, ncols: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            Some(data.len()),
            nrows.checked_mul(ncols),
            "a {nrows}×{ncols} matrix needs {} elements, got {}",
            nrows.saturating_mul(ncols),
            data.len()
        );
        Mat { data, nrows, ncols }
    }

    /// A matrix whose element `(i, j)` is `f(i, j)`.
    pub fn from_fn(nrows: usize, ncols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut m = Mat::zeros(nrows, ncols);
        for i in 0..nrows {
            for j in 0..ncols {
                m.data[i * ncols + j] = f(i, j);
            }
        }
        m
    }

    /// A matrix of independent draws from `dist`.
    pub fn random<R: Rng + ?Sized, D: Distribution<f32>>(
        nrows: usize,
        ncols: usize,
        dist: D,
        rng: &mut R,
    ) -> Self {
        let mut m = Mat::zeros(nrows, ncols);
        for v in &mut m.data {
            *v = dist.sample(rng);
        }
        m
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }
    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }
    /// The row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    /// The row-major buffer, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// Consumes the matrix, returning its row-major buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    /// Row `i` as a slice.
    #[track_caller]
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(
            i < self.nrows,
            "row {i} out of range for {} rows",
            self.nrows
        );
        &self.data[i * self.ncols..(i + 1) * self.ncols]
    }
    /// Row `i` as a mutable slice.
    #[track_caller]
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        assert!(
            i < self.nrows,
            "row {i} out of range for {} rows",
            self.nrows
        );
        &mut self.data[i * self.ncols..(i + 1) * self.ncols]
    }
    /// Iterator over the rows.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.ncols.max(1))
    }
    /// Iterator over the rows, mutably.
    pub fn rows_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.data.chunks_exact_mut(self.ncols.max(1))
    }
    /// Rows `start..end` as a contiguous immutable view.
    #[track_caller]
    pub fn row_range(&self, start: usize, end: usize) -> MatRef<'_> {
        assert!(
            start <= end && end <= self.nrows,
            "rows {start}..{end} of {}",
            self.nrows
        );
        MatRef::from_slice(
            &self.data[start * self.ncols..end * self.ncols],
            end - start,
            self.ncols,
        )
    }
    /// Rows `start..end` as a contiguous mutable view.
    #[track_caller]
    pub fn row_range_mut(&mut self, start: usize, end: usize) -> MatMut<'_> {
        assert!(
            start <= end && end <= self.nrows,
            "rows {start}..{end} of {}",
            self.nrows
        );
        let n = self.ncols;
        MatMut::from_slice(&mut self.data[start * n..end * n], end - start, n)
    }
    /// Immutable view of the whole matrix.
    pub fn view(&self) -> MatRef<'_> {
        MatRef {
            data: &self.data,
            nrows: self.nrows,
            ncols: self.ncols,
            rs: self.ncols,
            cs: 1,
        }
    }
    /// Mutable view of the whole matrix.
    pub fn view_mut(&mut self) -> MatMut<'_> {
        let (nrows, ncols) = (self.nrows, self.ncols);
        MatMut {
            data: &mut self.data,
            nrows,
            ncols,
            rs: ncols,
            cs: 1,
        }
    }
    /// Transposed view (no copy).
    pub fn t(&self) -> MatRef<'_> {
        self.view().t()
    }
    /// An owned copy of the transpose.
    pub fn transposed(&self) -> Mat {
        self.t().to_owned()
    }
    /// Changes the number of rows, keeping the column count; new rows are zero.
    /// Does not shrink the allocation, so a workspace can be resized without reallocating.
    pub fn resize_rows(&mut self, nrows: usize) {
        self.data.resize(nrows * self.ncols, 0.0);
        self.nrows = nrows;
    }
    /// Sets every element to `value`.
    pub fn fill(&mut self, value: f32) {
        self.data.fill(value);
    }
    /// Copies `other` (same shape) into `self`.
    #[track_caller]
    pub fn copy_from(&mut self, other: &Mat) {
        assert_eq!(self.shape(), other.shape(), "copy_from: shapes differ");
        self.data.copy_from_slice(&other.data);
    }
    /// Largest absolute difference to `other` (same shape).
    #[track_caller]
    pub fn max_abs_diff(&self, other: &Mat) -> f32 {
        assert_eq!(self.shape(), other.shape(), "max_abs_diff: shapes differ");
        self.data
            .iter()
            .zip(&other.data)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
    }
}

impl std::ops::Index<(usize, usize)> for Mat {
    type Output = f32;
    #[track_caller]
    fn index(&self, (i, j): (usize, usize)) -> &f32 {
        assert!(
            i < self.nrows && j < self.ncols,
            "({i}, {j}) out of {}×{}",
            self.nrows,
            self.ncols
        );
        &self.data[i * self.ncols + j]
    }
}

impl std::ops::IndexMut<(usize, usize)> for Mat {
    #[track_caller]
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut f32 {
        assert!(
            i < self.nrows && j < self.ncols,
            "({i}, {j}) out of {}×{}",
            self.nrows,
            self.ncols
        );
        &mut self.data[i * self.ncols + j]
    }
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major view of `data`.
    #[track_caller]
    pub fn from_slice(data: &'a [f32], nrows: usize, ncols: usize) -> Self {
        Self::from_strided(data, nrows, ncols, ncols as isize, 1)
    }
    /// A strided view: element `(i, j)` at `data[i·row_stride + j·col_stride]`.
    ///
    /// # Panics
    /// If a stride is negative or the view reaches past `data`.
    #[track_caller]
    pub fn from_strided(
        data: &'a [f32],
        nrows: usize,
        ncols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Self {
        assert!(
            row_stride >= 0 && col_stride >= 0,
            "negative strides are not supported"
        );
        let (rs, cs) = (row_stride as usize, col_stride as usize);
        check_extent(data.len(), nrows, ncols, rs, cs);
        MatRef {
            data,
            nrows,
            ncols,
            rs,
            cs,
        }
    }
    /// Rows `start..end` as a view with the same strides.
    #[track_caller]
    pub fn row_range(&self, start: usize, end: usize) -> MatRef<'a> {
        assert!(
            start <= end && end <= self.nrows,
            "rows {start}..{end} of {}",
            self.nrows
        );
        if start == end {
            return MatRef::from_slice(&[], 0, self.ncols);
        }
        MatRef::from_strided(
            &self.data[start * self.rs..],
            end - start,
            self.ncols,
            self.rs as isize,
            self.cs as isize,
        )
    }
    /// The slice the view reads from (its extent lies inside).
    #[allow(dead_code)]
    pub(crate) fn data_slice(&self) -> &'a [f32] {
        self.data
    }
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }
    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }
    /// Distance between consecutive rows, in elements.
    pub fn row_stride(&self) -> isize {
        self.rs as isize
    }
    /// Distance between consecutive columns, in elements.
    pub fn col_stride(&self) -> isize {
        self.cs as isize
    }
    /// The transposed view.
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            data: self.data,
            nrows: self.ncols,
            ncols: self.nrows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// Element `(i, j)`.
    #[track_caller]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.nrows && j < self.ncols,
            "({i}, {j}) out of {}×{}",
            self.nrows,
            self.ncols
        );
        self.data[i * self.rs + j * self.cs]
    }
    /// An owned row-major copy.
    pub fn to_owned(&self) -> Mat {
        Mat::from_fn(self.nrows, self.ncols, |i, j| {
            self.data[i * self.rs + j * self.cs]
        })
    }
    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.data.as_ptr()
    }
}

impl<'a> MatMut<'a> {
    /// A contiguous row-major mutable view of `data`.
    #[track_caller]
    pub fn from_slice(data: &'a mut [f32], nrows: usize, ncols: usize) -> Self {
        Self::from_strided(data, nrows, ncols, ncols as isize, 1)
    }
    /// A strided mutable view.
    ///
    /// # Panics
    /// If a stride is negative, the view reaches past `data`, or two elements share memory.
    #[track_caller]
    pub fn from_strided(
        data: &'a mut [f32],
        nrows: usize,
        ncols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Self {
        assert!(
            row_stride >= 0 && col_stride >= 0,
            "negative strides are not supported"
        );
        let (rs, cs) = (row_stride as usize, col_stride as usize);
        check_extent(data.len(), nrows, ncols, rs, cs);
        assert!(
            non_aliasing(nrows, ncols, rs, cs),
            "a mutable {nrows}×{ncols} view with strides ({rs}, {cs}) aliases itself"
        );
        MatMut {
            data,
            nrows,
            ncols,
            rs,
            cs,
        }
    }
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }
    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }
    /// Distance between consecutive rows, in elements.
    pub fn row_stride(&self) -> isize {
        self.rs as isize
    }
    /// Distance between consecutive columns, in elements.
    pub fn col_stride(&self) -> isize {
        self.cs as isize
    }
    /// The transposed mutable view.
    pub fn t(self) -> MatMut<'a> {
        MatMut {
            data: self.data,
            nrows: self.ncols,
            ncols: self.nrows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// Reborrows as a shorter-lived mutable view.
    pub fn rb_mut(&mut self) -> MatMut<'_> {
        MatMut {
            data: self.data,
            nrows: self.nrows,
            ncols: self.ncols,
            rs: self.rs,
            cs: self.cs,
        }
    }
    /// Reborrows as an immutable view.
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef {
            data: self.data,
            nrows: self.nrows,
            ncols: self.ncols,
            rs: self.rs,
            cs: self.cs,
        }
    }
    /// Element `(i, j)`.
    #[track_caller]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.as_ref().get(i, j)
    }
    /// Sets element `(i, j)`.
    #[track_caller]
    pub fn set(&mut self, i: usize, j: usize, value: f32) {
        assert!(
            i < self.nrows && j < self.ncols,
            "({i}, {j}) out of {}×{}",
            self.nrows,
            self.ncols
        );
        self.data[i * self.rs + j * self.cs] = value;
    }
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.data.as_mut_ptr()
    }
}

impl<'a> From<&'a Mat> for MatRef<'a> {
    fn from(m: &'a Mat) -> Self {
        m.view()
    }
}

impl<'a> From<&'a mut Mat> for MatMut<'a> {
    fn from(m: &'a mut Mat) -> Self {
        m.view_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_is_a_view() {
        let m = Mat::from_fn(2, 3, |i, j| (i * 3 + j) as f32);
        let t = m.t();
        assert_eq!(t.shape(), (3, 2));
        assert_eq!(t.get(2, 1), m[(1, 2)]);
        assert_eq!(t.row_stride(), 1);
        assert_eq!(t.col_stride(), 3);
        assert_eq!(t.as_ptr(), m.as_slice().as_ptr());
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn view_past_end_panics() {
        let v = vec![0.0; 5];
        let _ = MatRef::from_slice(&v, 2, 3);
    }

    #[test]
    #[should_panic(expected = "aliases itself")]
    fn aliasing_mut_view_panics() {
        let mut v = vec![0.0; 10];
        let _ = MatMut::from_strided(&mut v, 3, 3, 1, 1);
    }
}

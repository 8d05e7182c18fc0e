//! The gathered matrices and their layouts: [`Gathered`] (read) and [`GatheredMut`]
//! (added into), with element `(r, c)` at `data[base[r] + offset[c]]`, and
//! [`GatherIndex`], which owns the bases and offsets of an im2col patch matrix or a plain
//! row-major matrix and checks once that they fit a buffer.

use crate::kernels::ConvShape;

/// A read-only `rows × cols` matrix with element `(r, c)` at `data[base[r] + offset[c]]`.
#[derive(Clone, Copy, Debug)]
pub struct Gathered<'a> {
    pub(super) data: &'a [f32],
    pub(super) base: &'a [usize],
    pub(super) offset: &'a [usize],
}

impl<'a> Gathered<'a> {
    /// Checks that every element lies inside `data`.
    ///
    /// # Panics
    /// If some `base[r] + offset[c]` is out of bounds.
    #[track_caller]
    pub fn new(data: &'a [f32], base: &'a [usize], offset: &'a [usize]) -> Self {
        let end = reach(base, offset);
        assert!(
            end.is_some_and(|e| e <= data.len()),
            "gathered matrix reaches past index {end:?} of a {}-value buffer",
            data.len()
        );
        Gathered { data, base, offset }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.base.len()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.offset.len()
    }

    /// Element `(r, c)` (bounds-checked).
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[self.base[r] + self.offset[c]]
    }

    /// The rows `lo..hi` as a gathered matrix.
    pub fn row_range(&self, lo: usize, hi: usize) -> Gathered<'a> {
        Gathered {
            base: &self.base[lo..hi],
            ..*self
        }
    }
}

/// A writable gathered matrix: the target of
/// [`gathered_gemm_scatter`](crate::kernels::gathered_gemm_scatter), which adds into
/// `data[base[r] + offset[c]]` (with a patch index: col2im, the adjoint of reading patches).
/// Elements may overlap (neighbouring patches share pixels); additions into a shared
/// element accumulate.
#[derive(Debug)]
pub struct GatheredMut<'a> {
    pub(super) data: &'a mut [f32],
    pub(super) base: &'a [usize],
    pub(super) offset: &'a [usize],
}

impl GatheredMut<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.base.len()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.offset.len()
    }
}

/// One past the largest index `max(base) + max(offset)` a gathered matrix reads (0 when it
/// is empty), or `None` on overflow.
fn reach(base: &[usize], offset: &[usize]) -> Option<usize> {
    match (base.iter().max(), offset.iter().max()) {
        (Some(b), Some(o)) => b.checked_add(*o)?.checked_add(1),
        _ => Some(0),
    }
}

/// Row bases and column offsets of a patch matrix or a plain row-major matrix, with the
/// extent they reach (checked once per use by [`GatherIndex::over`], not rescanned).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatherIndex {
    base: Vec<usize>,
    offset: Vec<usize>,
    /// `max(base) + max(offset) + 1` (0 when empty).
    reach: usize,
}

impl GatherIndex {
    /// An index from explicit bases and offsets.
    ///
    /// # Panics
    /// If `max(base) + max(offset)` overflows.
    pub fn new(base: Vec<usize>, offset: Vec<usize>) -> Self {
        let reach = reach(&base, &offset).expect("gather index overflows");
        GatherIndex {
            base,
            offset,
            reach,
        }
    }

    /// The im2col patch matrix of `batch` images of `shape`
    /// ([`im2col`](crate::kernels::im2col())'s layout).
    pub fn patches(shape: &ConvShape, batch: usize) -> Self {
        Self::new(shape.placement_bases(batch), shape.patch_offsets())
    }

    /// The patch matrix of [`GatherIndex::patches`] with its columns restricted to and
    /// ordered as `taps` (indices into [`ConvShape::patch_offsets`]).
    pub fn patch_taps(shape: &ConvShape, batch: usize, taps: &[usize]) -> Self {
        let offsets = shape.patch_offsets();
        Self::new(
            shape.placement_bases(batch),
            taps.iter().map(|&t| offsets[t]).collect(),
        )
    }

    /// A row-major `rows × cols` matrix with row stride `ld`.
    pub fn row_major(rows: usize, cols: usize, ld: usize) -> Self {
        Self::new((0..rows).map(|r| r * ld).collect(), (0..cols).collect())
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.base.len()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.offset.len()
    }

    /// The matrix over `data`.
    ///
    /// # Panics
    /// If an element falls outside `data`.
    #[track_caller]
    pub fn over<'a>(&'a self, data: &'a [f32]) -> Gathered<'a> {
        assert!(
            self.reach <= data.len(),
            "gathered matrix reaches index {} of a {}-value buffer",
            self.reach.saturating_sub(1),
            data.len()
        );
        Gathered {
            data,
            base: &self.base,
            offset: &self.offset,
        }
    }

    /// The matrix over `data`, for adding into.
    ///
    /// # Panics
    /// If an element falls outside `data`.
    #[track_caller]
    pub fn over_mut<'a>(&'a self, data: &'a mut [f32]) -> GatheredMut<'a> {
        assert!(
            self.reach <= data.len(),
            "gathered matrix reaches index {} of a {}-value buffer",
            self.reach.saturating_sub(1),
            data.len()
        );
        GatheredMut {
            data,
            base: &self.base,
            offset: &self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "gathered matrix reaches")]
    fn out_of_bounds_index_is_refused() {
        let data = vec![0.0; 10];
        Gathered::new(&data, &[0, 5], &[0, 5]);
    }
}

//! Seeded minibatches: a shuffled order per epoch and a row gather into a reused buffer.

use crate::linalg::Mat;
use rand::seq::SliceRandom;
use rand::Rng;

/// A shuffled order of `n` examples split into minibatches of `batch` (the last one may be
/// shorter).
#[derive(Clone, Debug)]
pub struct Minibatches {
    order: Vec<usize>,
    batch: usize,
}

impl Minibatches {
    /// A fresh permutation of `0..n` drawn from `rng`.
    ///
    /// # Panics
    /// If `batch == 0`.
    pub fn shuffled<R: Rng + ?Sized>(n: usize, batch: usize, rng: &mut R) -> Self {
        assert!(batch > 0, "minibatch size must be ≥ 1");
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        Minibatches { order, batch }
    }
    /// The batches in order, as index slices.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch)
    }
    /// Number of batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch)
    }
    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The generator of epoch `epoch` of training stream `stream` (a phase, a model…) under
/// `seed`. Every epoch's shuffle depends only on these three numbers, so a run is
/// reproducible and can resume at any epoch without saving generator state.
pub fn epoch_rng(seed: u64, stream: u64, epoch: u64) -> crate::rng::SeedRng {
    crate::rng::seeded(seed ^ (stream << 56) ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Copies rows `idx` of `src` into `dst` (resized to `idx.len()` rows, no reallocation once
/// large enough).
#[track_caller]
pub fn gather_rows(src: &Mat, idx: &[usize], dst: &mut Mat) {
    assert_eq!(
        src.ncols(),
        dst.ncols(),
        "gather_rows: {} and {} columns",
        src.ncols(),
        dst.ncols()
    );
    dst.resize_rows(idx.len());
    for (k, &i) in idx.iter().enumerate() {
        dst.row_mut(k).copy_from_slice(src.row(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_example_once() {
        let mut rng = crate::rng::seeded(1);
        let mb = Minibatches::shuffled(23, 5, &mut rng);
        assert_eq!(mb.len(), 5);
        let mut all: Vec<usize> = mb.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..23).collect::<Vec<_>>());
        let src = Mat::from_fn(4, 2, |i, j| (i * 2 + j) as f32);
        let mut dst = Mat::zeros(0, 2);
        gather_rows(&src, &[3, 0], &mut dst);
        assert_eq!(dst.as_slice(), &[6.0, 7.0, 0.0, 1.0]);
    }
}

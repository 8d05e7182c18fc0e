//! Locally-connected layers (Gregor & LeCun, arXiv 1006.0448): every unit has its own
//! filter over a small window of the image, with no weight sharing. They are
//! [`GroupAe`](super::GroupAe)s whose encoder and decoder are restricted to a support mask
//! ([`GroupAe::with_support`](super::GroupAe::with_support)); this file describes where
//! each unit looks.
//!
//! # Example: a 4 × 4 sheet of units with 2 × 2 units per receptive-field position
//! ```
//! use drsae::kernels::Groups;
//! use drsae::models::{support_coverage, EncoderForm, GroupAe, LocalSheet};
//! use rand::SeedableRng;
//!
//! let sheet = LocalSheet::new(2, 2, 3, 5)?; // 2 × 2 positions 3 px apart, 5 × 5 windows
//! assert_eq!((sheet.image(), sheet.units()), (8, 16)); // 8 × 8 inputs, 16 units
//! let support = sheet.support();
//! let model = GroupAe::init(64, 16, EncoderForm::Relu, &mut drsae::rng::seeded(0))
//!     .with_support(support.clone())?
//!     .with_recon_weights(support_coverage(&support))?;
//! assert!(model.w().row(0)[7] == 0.0); // unit 0 does not see pixel (0, 7)
//! let groups = Groups::sheet_pools(sheet.side(), sheet.side(), 3)?; // pools on the sheet
//! assert_eq!(groups.n_units(), 16);
//! # Ok::<(), drsae::Error>(())
//! ```

use crate::linalg::Mat;
use crate::{Error, Result};

/// The layout of a locally-connected layer on an `image × image` input (one channel).
///
/// Receptive fields sit on a `grid × grid` lattice of positions `stride` pixels apart,
/// each a `kernel × kernel` window; at every position a `block × block` patch of units
/// shares that window (a "hypercolumn": with `block = 1`, one unit per position). The
/// units form a `side × side` sheet, `side = grid·block`; unit `(Y, X)` (index
/// `Y·side + X`) looks at the window of position `(Y / block, X / block)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSheet {
    /// Receptive-field positions per side.
    pub grid: usize,
    /// Units per side of each position's block.
    pub block: usize,
    /// Pixels between neighbouring positions.
    pub stride: usize,
    /// Window side in pixels.
    pub kernel: usize,
}

impl LocalSheet {
    /// A checked layout.
    ///
    /// # Errors
    /// If a size is 0.
    pub fn new(grid: usize, block: usize, stride: usize, kernel: usize) -> Result<LocalSheet> {
        if [grid, block, stride, kernel].contains(&0) {
            return Err(Error::param(
                "local sheet",
                format!("grid {grid}, block {block}, stride {stride}, kernel {kernel}: sizes must be ≥ 1"),
            ));
        }
        Ok(LocalSheet {
            grid,
            block,
            stride,
            kernel,
        })
    }

    /// Units per side of the sheet, `grid·block`.
    pub fn side(&self) -> usize {
        self.grid * self.block
    }
    /// Number of units, `side²`.
    pub fn units(&self) -> usize {
        self.side() * self.side()
    }
    /// The smallest input side that holds every window, `(grid − 1)·stride + kernel`.
    pub fn image(&self) -> usize {
        (self.grid - 1) * self.stride + self.kernel
    }
    /// Top-left pixel `(y, x)` of unit `unit`'s window.
    pub fn origin(&self, unit: usize) -> (usize, usize) {
        let (y, x) = (unit / self.side(), unit % self.side());
        (
            (y / self.block) * self.stride,
            (x / self.block) * self.stride,
        )
    }

    /// The `units × image²` 0/1 support mask.
    pub fn support(&self) -> Mat {
        let side = self.image();
        let mut mask = Mat::zeros(self.units(), side * side);
        for unit in 0..self.units() {
            let (oy, ox) = self.origin(unit);
            let row = mask.row_mut(unit);
            for a in 0..self.kernel {
                let start = (oy + a) * side + ox;
                row[start..start + self.kernel].fill(1.0);
            }
        }
        mask
    }

    /// The `kernel × kernel` window of a unit's full-image filter (a row of W or a column
    /// of D), for pictures and orientation estimates.
    ///
    /// # Panics
    /// If `filter` is not `image²` long.
    #[track_caller]
    pub fn window(&self, filter: &[f32], unit: usize) -> Vec<f32> {
        let side = self.image();
        assert_eq!(filter.len(), side * side, "filter length");
        let (oy, ox) = self.origin(unit);
        let mut out = Vec::with_capacity(self.kernel * self.kernel);
        for a in 0..self.kernel {
            let start = (oy + a) * side + ox;
            out.extend_from_slice(&filter[start..start + self.kernel]);
        }
        out
    }
}

/// Per-input reconstruction weights of a support: how many units see each input, divided
/// by the largest count (inputs no unit sees get 0) — the locally-connected analogue of
/// [`ConvShape::coverage_weights`](crate::kernels::ConvShape::coverage_weights).
pub fn support_coverage(support: &Mat) -> Vec<f32> {
    let mut cover = vec![0.0f32; support.ncols()];
    for row in support.rows() {
        for (c, v) in cover.iter_mut().zip(row) {
            *c += v;
        }
    }
    let max = cover.iter().cloned().fold(0.0, f32::max).max(1.0);
    cover.iter_mut().for_each(|c| *c /= max);
    cover
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_covers_each_units_window() {
        let sheet = LocalSheet::new(2, 1, 2, 3).unwrap();
        assert_eq!(sheet.image(), 5);
        let s = sheet.support();
        assert_eq!(s.shape(), (4, 25));
        assert!(s.rows().all(|r| r.iter().sum::<f32>() == 9.0));
        // unit (1, 1): window at (2, 2)
        let r = s.row(3);
        assert_eq!(r[2 * 5 + 2], 1.0);
        assert_eq!(r[4 * 5 + 4], 1.0);
        assert_eq!(r[2 * 5 + 1], 0.0);
        let w: Vec<f32> = (0..25).map(|i| i as f32).collect();
        assert_eq!(sheet.window(&w, 3)[0], 12.0);
        let c = support_coverage(&s);
        assert_eq!(c[0], 0.25); // one unit of the four that see pixel (2, 2)
        assert_eq!(c[2 * 5 + 2], 1.0);
        // Blocks: 2 × 2 units share each window.
        let b = LocalSheet::new(2, 2, 2, 3).unwrap();
        assert_eq!((b.side(), b.units()), (4, 16));
        assert_eq!(b.origin(0), (0, 0));
        assert_eq!(b.origin(1), (0, 0));
        assert_eq!(b.origin(2), (0, 2));
        assert_eq!(b.origin(4 * 2 + 3), (2, 2));
        let bs = b.support();
        assert_eq!(bs.row(0), bs.row(5));
        assert!(LocalSheet::new(0, 1, 1, 3).is_err());
    }
}

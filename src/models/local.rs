//! Locally-connected layers (Gregor & LeCun, arXiv 1006.0448): every unit has its own
//! filter over a small window of the image, with no weight sharing. They are
//! [`GroupAe`](super::GroupAe)s whose encoder and decoder are restricted to a support mask
//! ([`GroupAe::with_support`](super::GroupAe::with_support)); this file builds the masks.

use crate::linalg::Mat;
use crate::{Error, Result};

/// Support of a locally-connected layer on a `height × width` image (one channel): units
/// on a `grid_h × grid_w` grid, unit `(gy, gx)` (index `gy·grid_w + gx`) sees the
/// `kernel × kernel` window whose top-left pixel is `(gy·stride, gx·stride)`. Returns the
/// `(grid_h·grid_w) × (height·width)` 0/1 mask.
///
/// # Errors
/// If a size is 0 or the last window does not fit in the image.
pub fn local_support(
    height: usize,
    width: usize,
    grid_h: usize,
    grid_w: usize,
    stride: usize,
    kernel: usize,
) -> Result<Mat> {
    let fits = |grid: usize, side: usize| (grid - 1) * stride + kernel <= side;
    if [height, width, grid_h, grid_w, stride, kernel].contains(&0)
        || !fits(grid_h, height)
        || !fits(grid_w, width)
    {
        return Err(Error::param(
            "local support",
            format!("{grid_h}×{grid_w} units with {kernel}×{kernel} windows every {stride} pixels do not fit a {height}×{width} image (sizes must be ≥ 1)"),
        ));
    }
    let mut mask = Mat::zeros(grid_h * grid_w, height * width);
    for gy in 0..grid_h {
        for gx in 0..grid_w {
            let row = mask.row_mut(gy * grid_w + gx);
            for a in 0..kernel {
                let start = (gy * stride + a) * width + gx * stride;
                row[start..start + kernel].fill(1.0);
            }
        }
    }
    Ok(mask)
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

/// The `kernel × kernel` window of a unit's full-image filter (row `unit` of a W-shaped
/// matrix, or a decoder column), for pictures and orientation estimates.
pub fn local_window(
    filter: &[f32],
    width: usize,
    grid_w: usize,
    stride: usize,
    kernel: usize,
    unit: usize,
) -> Vec<f32> {
    let (gy, gx) = (unit / grid_w, unit % grid_w);
    let mut out = Vec::with_capacity(kernel * kernel);
    for a in 0..kernel {
        let start = (gy * stride + a) * width + gx * stride;
        out.extend_from_slice(&filter[start..start + kernel]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_covers_each_units_window() {
        let s = local_support(6, 7, 2, 3, 2, 3).unwrap();
        assert_eq!(s.shape(), (6, 42));
        assert!(s.rows().all(|r| r.iter().sum::<f32>() == 9.0));
        // unit (1, 2): window at (2, 4)
        let r = s.row(5);
        assert_eq!(r[2 * 7 + 4], 1.0);
        assert_eq!(r[4 * 7 + 6], 1.0);
        assert_eq!(r[2 * 7 + 3], 0.0);
        let w: Vec<f32> = (0..42).map(|i| i as f32).collect();
        assert_eq!(local_window(&w, 7, 3, 2, 3, 5)[0], 18.0);
        assert!(local_support(6, 7, 3, 3, 2, 3).is_err());
        let c = support_coverage(&s);
        assert_eq!(c[0], 0.25); // one unit of the four that see pixel (2, 2)
        assert_eq!(c[2 * 7 + 2], 1.0);
    }
}

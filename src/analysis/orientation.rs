//! Orientation maps: each unit's preferred orientation from the 2-D power spectrum of its
//! filter, the smoothness of the map (neighbour / random-pair orientation difference) and
//! pinwheels (grid points around which orientation winds by ±π).

use std::f64::consts::PI;

/// Preferred orientation of a `size × size` filter, in [0, π), and its selectivity in [0, 1].
///
/// The orientation is half the argument of `Σ P(k) e^{2iφ(k)}` over the non-DC frequencies
/// k of the power spectrum P, φ(k) the direction of k: the direction of the dominant
/// spatial frequency (perpendicular to the edges), averaged as an axis. The selectivity is
/// that sum's modulus over `Σ P` (0 for an isotropic filter, 1 for a pure grating).
#[track_caller]
pub fn preferred_orientation(filter: &[f32], size: usize) -> (f64, f64) {
    assert_eq!(
        filter.len(),
        size * size,
        "a {size}×{size} filter needs {} values",
        size * size
    );
    let half = size as i64 / 2;
    let (mut re2, mut im2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for ky in -half..size as i64 - half {
        for kx in -half..size as i64 - half {
            if kx == 0 && ky == 0 {
                continue;
            }
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for y in 0..size {
                for x in 0..size {
                    let phase =
                        -2.0 * PI * (kx as f64 * x as f64 + ky as f64 * y as f64) / size as f64;
                    let v = filter[y * size + x] as f64;
                    re += v * phase.cos();
                    im += v * phase.sin();
                }
            }
            let p = re * re + im * im;
            let phi = (ky as f64).atan2(kx as f64);
            re2 += p * (2.0 * phi).cos();
            im2 += p * (2.0 * phi).sin();
            total += p;
        }
    }
    let theta = (0.5 * im2.atan2(re2)).rem_euclid(PI);
    (
        theta,
        if total > 0.0 {
            (re2 * re2 + im2 * im2).sqrt() / total
        } else {
            0.0
        },
    )
}

/// Difference between two orientations (axes), in [0, π/2].
pub fn orientation_difference(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(PI);
    d.min(PI - d)
}

/// How a map's edges connect: a torus (the wrap-around grids of topographic maps) or an
/// open sheet (locally-connected layers, whose units sit at image positions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// The last column neighbours the first, the last row the first.
    Wrap,
    /// No neighbours across the edges.
    Open,
}

impl Boundary {
    /// The neighbour at `i + 1` on a line of `n`, if any.
    fn next(self, i: usize, n: usize) -> Option<usize> {
        match self {
            Boundary::Wrap => Some((i + 1) % n),
            Boundary::Open => (i + 1 < n).then_some(i + 1),
        }
    }
}

/// Mean orientation difference between grid neighbours (right and down) divided by the
/// mean difference over all pairs of units: near 0 for a smooth map, near 1 for a random
/// layout.
#[track_caller]
pub fn neighbor_orientation_ratio(
    theta: &[f64],
    width: usize,
    height: usize,
    boundary: Boundary,
) -> f64 {
    assert_eq!(
        theta.len(),
        width * height,
        "{} orientations for a {width}×{height} grid",
        theta.len()
    );
    let n = theta.len();
    let (mut near, mut pairs) = (0.0, 0usize);
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if let Some(x1) = boundary.next(x, width) {
                near += orientation_difference(theta[i], theta[y * width + x1]);
                pairs += 1;
            }
            if let Some(y1) = boundary.next(y, height) {
                near += orientation_difference(theta[i], theta[y1 * width + x]);
                pairs += 1;
            }
        }
    }
    near /= pairs.max(1) as f64;
    let mut all = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            all += orientation_difference(theta[i], theta[j]);
        }
    }
    all /= (n * (n - 1) / 2).max(1) as f64;
    if all > 0.0 {
        near / all
    } else {
        0.0
    }
}

/// Number of grid plaquettes (2 × 2 neighbouring units) around which the orientation winds
/// by ±π: the pinwheels of the map.
pub fn count_pinwheels(theta: &[f64], width: usize, height: usize, boundary: Boundary) -> usize {
    assert_eq!(theta.len(), width * height);
    let wrap = |d: f64| (d + PI).rem_euclid(2.0 * PI) - PI;
    let mut count = 0;
    for y in 0..height {
        for x in 0..width {
            let (Some(x1), Some(y1)) = (boundary.next(x, width), boundary.next(y, height)) else {
                continue;
            };
            let loop_ = [
                y * width + x,
                y * width + x1,
                y1 * width + x1,
                y1 * width + x,
            ];
            let winding: f64 = (0..4)
                .map(|k| wrap(2.0 * theta[loop_[(k + 1) % 4]] - 2.0 * theta[loop_[k]]))
                .sum::<f64>()
                / (2.0 * PI);
            if winding.round().abs() == 1.0 {
                count += 1;
            }
        }
    }
    count
}

/// A map's orientation statistics in one call: each filter's preferred orientation and
/// selectivity ([`preferred_orientation`]), the neighbour/random ratio and the pinwheel
/// count of the `width × height` layout.
#[derive(Clone, Debug, PartialEq)]
pub struct OrientationMap {
    /// `(orientation, selectivity)` of every filter, in layout order.
    pub orientations: Vec<(f64, f64)>,
    /// [`neighbor_orientation_ratio`] of the map.
    pub neighbor_ratio: f64,
    /// [`count_pinwheels`] of the map.
    pub pinwheels: usize,
}

impl OrientationMap {
    /// Measures `size × size` filters laid out row by row on a `width × height` grid.
    ///
    /// # Panics
    /// If there are not `width·height` filters of `size²` values.
    #[track_caller]
    pub fn measure<F: AsRef<[f32]>>(
        filters: &[F],
        size: usize,
        width: usize,
        height: usize,
        boundary: Boundary,
    ) -> OrientationMap {
        let orientations: Vec<(f64, f64)> = filters
            .iter()
            .map(|f| preferred_orientation(f.as_ref(), size))
            .collect();
        let theta: Vec<f64> = orientations.iter().map(|o| o.0).collect();
        OrientationMap {
            neighbor_ratio: neighbor_orientation_ratio(&theta, width, height, boundary),
            pinwheels: count_pinwheels(&theta, width, height, boundary),
            orientations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;

    #[test]
    fn gratings_have_their_orientation() {
        let size = 12;
        for &deg in &[0.0f64, 30.0, 90.0, 135.0] {
            let t = deg.to_radians();
            let f: Vec<f32> = (0..size * size)
                .map(|i| {
                    let (x, y) = ((i % size) as f64, (i / size) as f64);
                    (2.0 * PI * 2.0 * (x * t.cos() + y * t.sin()) / size as f64).cos() as f32
                })
                .collect();
            let (theta, sel) = preferred_orientation(&f, size);
            assert!(
                orientation_difference(theta, t) < 0.05,
                "{deg}: got {}",
                theta.to_degrees()
            );
            assert!(sel > 0.5, "{deg}: selectivity {sel}");
        }
    }

    #[test]
    fn smooth_map_near_zero_and_shuffled_near_one() {
        let (w, h) = (16, 16);
        // Smooth: orientation changes slowly along x (one full turn across the grid).
        let smooth: Vec<f64> = (0..w * h).map(|i| PI * (i % w) as f64 / w as f64).collect();
        let r = neighbor_orientation_ratio(&smooth, w, h, Boundary::Wrap);
        assert!(r < 0.15, "smooth map ratio {r}");
        let mut shuffled = smooth.clone();
        shuffled.shuffle(&mut crate::rng::seeded(1));
        let r = neighbor_orientation_ratio(&shuffled, w, h, Boundary::Wrap);
        assert!((r - 1.0).abs() < 0.1, "shuffled map ratio {r}");
    }

    #[test]
    fn a_synthetic_pinwheel_is_counted() {
        // Orientation = half the polar angle around the centre of a 8×8 grid: one pinwheel.
        let (w, h) = (8, 8);
        let theta: Vec<f64> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64 - 3.5, (i / w) as f64 - 3.5);
                (0.5 * y.atan2(x)).rem_euclid(PI)
            })
            .collect();
        let n = count_pinwheels(&theta, w, h, Boundary::Wrap);
        assert!(n >= 1, "found {n}");
        let flat = vec![0.3; w * h];
        assert_eq!(count_pinwheels(&flat, w, h, Boundary::Wrap), 0);
        // On an open sheet the single pinwheel at the centre is the only one.
        assert_eq!(count_pinwheels(&theta, w, h, Boundary::Open), 1);
    }

    #[test]
    fn orientation_map_measures_what_its_parts_measure() {
        let size = 6;
        let filters: Vec<Vec<f32>> = (0..16)
            .map(|u| {
                let t = PI * u as f64 / 16.0;
                (0..size * size)
                    .map(|i| {
                        let (x, y) = ((i % size) as f64, (i / size) as f64);
                        (2.0 * PI * (x * t.cos() + y * t.sin()) / size as f64).cos() as f32
                    })
                    .collect()
            })
            .collect();
        let map = OrientationMap::measure(&filters, size, 4, 4, Boundary::Open);
        let theta: Vec<f64> = filters
            .iter()
            .map(|f| preferred_orientation(f, size).0)
            .collect();
        assert_eq!(map.orientations.len(), 16);
        assert_eq!(
            map.neighbor_ratio,
            neighbor_orientation_ratio(&theta, 4, 4, Boundary::Open)
        );
        assert_eq!(map.pinwheels, count_pinwheels(&theta, 4, 4, Boundary::Open));
    }

    #[test]
    fn open_boundaries_ignore_the_seam_of_a_non_periodic_map() {
        // A ramp over a quarter turn: smooth on the sheet, a jump across the wrap-around seam.
        let (w, h) = (16, 16);
        let ramp: Vec<f64> = (0..w * h)
            .map(|i| 0.5 * PI * (i % w) as f64 / w as f64)
            .collect();
        let open = neighbor_orientation_ratio(&ramp, w, h, Boundary::Open);
        let wrap = neighbor_orientation_ratio(&ramp, w, h, Boundary::Wrap);
        assert!(open < wrap, "open {open} vs wrap {wrap}");
        assert!(open < 0.15, "open {open}");
    }
}

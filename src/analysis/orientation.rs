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

/// Mean orientation difference between grid neighbours (right and down, wrapping) divided
/// by the mean difference over all pairs of units: near 0 for a smooth map, near 1 for a
/// random layout.
#[track_caller]
pub fn neighbor_orientation_ratio(theta: &[f64], width: usize, height: usize) -> f64 {
    assert_eq!(
        theta.len(),
        width * height,
        "{} orientations for a {width}×{height} grid",
        theta.len()
    );
    let n = theta.len();
    let mut near = 0.0;
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            near += orientation_difference(theta[i], theta[y * width + (x + 1) % width]);
            near += orientation_difference(theta[i], theta[((y + 1) % height) * width + x]);
        }
    }
    near /= (2 * n) as f64;
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

/// Number of grid plaquettes (2 × 2 neighbouring units, wrapping) around which the
/// orientation winds by ±π: the pinwheels of the map.
pub fn count_pinwheels(theta: &[f64], width: usize, height: usize) -> usize {
    assert_eq!(theta.len(), width * height);
    let wrap = |d: f64| (d + PI).rem_euclid(2.0 * PI) - PI;
    let mut count = 0;
    for y in 0..height {
        for x in 0..width {
            let (x1, y1) = ((x + 1) % width, (y + 1) % height);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

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
        let r = neighbor_orientation_ratio(&smooth, w, h);
        assert!(r < 0.15, "smooth map ratio {r}");
        let mut shuffled = smooth.clone();
        shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
        let r = neighbor_orientation_ratio(&shuffled, w, h);
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
        let n = count_pinwheels(&theta, w, h);
        assert!(n >= 1, "found {n}");
        let flat = vec![0.3; w * h];
        assert_eq!(count_pinwheels(&flat, w, h), 0);
    }
}

//! Per-example preprocessing: unit-L2 scaling (DrSAE), mean removal, contrast
//! normalisation, and ZCA whitening.

use crate::linalg::{gemm, norm, Mat};

/// Scales every row to unit L2 norm (rows of norm 0 stay 0): the DrSAE preprocessing.
pub fn normalize_rows_l2(x: &mut Mat) {
    for row in x.rows_mut() {
        let n = norm(row);
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
}

/// Subtracts each row's mean from it.
pub fn remove_row_means(x: &mut Mat) {
    for row in x.rows_mut() {
        let m = row.iter().sum::<f32>() / row.len().max(1) as f32;
        row.iter_mut().for_each(|v| *v -= m);
    }
}

/// Divides each row by `max(std, floor)` (after [`remove_row_means`] this is contrast
/// normalisation; the floor keeps flat patches from being blown up into noise).
pub fn contrast_normalize_rows(x: &mut Mat, floor: f32) {
    for row in x.rows_mut() {
        let sd = (row.iter().map(|v| v * v).sum::<f32>() / row.len().max(1) as f32).sqrt();
        let d = sd.max(floor);
        row.iter_mut().for_each(|v| *v /= d);
    }
}

/// ZCA whitening `x ↦ W (x − μ)` with `W = U diag(1/√(λ + ε)) Uᵀ` from the covariance of the
/// training rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Zca {
    mean: Vec<f32>,
    /// Symmetric whitening matrix.
    w: Mat,
}

impl Zca {
    /// Fits the whitening transform to the rows of `x`; `epsilon` regularises small
    /// eigenvalues (e.g. 0.1 × the mean eigenvalue).
    pub fn fit(x: &Mat, epsilon: f32) -> Zca {
        let (n, p) = x.shape();
        let mut mean = vec![0.0f32; p];
        for row in x.rows() {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f32);
        let mut centred = x.clone();
        for row in centred.rows_mut() {
            row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
        }
        let mut cov = Mat::zeros(p, p);
        gemm(
            1.0 / n.max(1) as f32,
            centred.t(),
            centred.view(),
            0.0,
            cov.view_mut(),
        );
        let c64: Vec<f64> = cov.as_slice().iter().map(|&v| v as f64).collect();
        let (vals, vecs) = crate::linalg::symmetric_eigen(&c64, p);
        let mut w = Mat::zeros(p, p);
        for i in 0..p {
            for j in 0..p {
                let s: f64 = (0..p)
                    .map(|k| {
                        vecs[i * p + k] * vecs[j * p + k]
                            / (vals[k].max(0.0) + epsilon as f64).sqrt()
                    })
                    .sum();
                w[(i, j)] = s as f32;
            }
        }
        Zca { mean, w }
    }

    /// The training mean μ and the symmetric whitening matrix W.
    pub fn parts(&self) -> (&[f32], &Mat) {
        (&self.mean, &self.w)
    }

    /// A transform from its mean μ (length p) and whitening matrix W (p × p), as returned by
    /// [`Zca::parts`].
    ///
    /// # Errors
    /// [`crate::Error::Format`] when the shapes disagree or a value is not finite.
    pub fn from_parts(mean: Vec<f32>, w: Mat) -> crate::Result<Zca> {
        let p = mean.len();
        if w.shape() != (p, p) {
            return Err(crate::Error::format(
                "zca",
                format!("whitening matrix {:?} for a mean of {p} values", w.shape()),
            ));
        }
        crate::check_finite("zca mean", &mean)
            .map_err(|e| crate::Error::format("zca", e.to_string()))?;
        crate::check_finite("zca matrix", w.as_slice())
            .map_err(|e| crate::Error::format("zca", e.to_string()))?;
        Ok(Zca { mean, w })
    }

    /// Whitens the rows of `x` in place.
    pub fn apply(&self, x: &mut Mat) {
        for row in x.rows_mut() {
            row.iter_mut().zip(&self.mean).for_each(|(v, m)| *v -= m);
        }
        let mut out = Mat::zeros(x.nrows(), x.ncols());
        gemm(1.0, x.view(), self.w.view(), 0.0, out.view_mut());
        *x = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rows_and_contrast() {
        let mut x = Mat::from_vec(2, 2, vec![3.0, 4.0, 0.0, 0.0]);
        normalize_rows_l2(&mut x);
        assert_eq!(x.as_slice(), &[0.6, 0.8, 0.0, 0.0]);
        let mut y = Mat::from_vec(1, 4, vec![1.0, 2.0, 3.0, 6.0]);
        remove_row_means(&mut y);
        contrast_normalize_rows(&mut y, 1e-3);
        let var: f32 = y.as_slice().iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!((var - 1.0).abs() < 1e-5 && y.as_slice().iter().sum::<f32>().abs() < 1e-5);
    }

    #[test]
    fn zca_whitens() {
        let mut rng = crate::rng::seeded(3);
        let z = Mat::random(4000, 3, rand_distr::StandardNormal, &mut rng);
        // Correlate the columns.
        let mix = Mat::from_vec(3, 3, vec![1.0, 0.5, 0.0, 0.0, 1.0, 0.8, 0.0, 0.0, 0.3]);
        let mut x = Mat::zeros(4000, 3);
        gemm(1.0, z.view(), mix.view(), 0.0, x.view_mut());
        let zca = Zca::fit(&x, 1e-6);
        zca.apply(&mut x);
        let mut cov = Mat::zeros(3, 3);
        gemm(1.0 / 4000.0, x.t(), x.view(), 0.0, cov.view_mut());
        assert!(
            cov.max_abs_diff(&Mat::identity(3)) < 0.02,
            "{:?}",
            cov.as_slice()
        );
    }
}

/// Per-column standardisation `(x − mean) / (std + ε)`, fitted on training features and
/// applied unchanged to test features.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Column means.
    pub mean: Vec<f32>,
    /// `1 / (std + ε)` per column.
    pub inv_scale: Vec<f32>,
}

impl Standardizer {
    /// Fits the column statistics of `x` (in f64), with `epsilon` added to each std.
    pub fn fit(x: &Mat, epsilon: f32) -> Standardizer {
        let (n, m) = (x.nrows().max(1) as f64, x.ncols());
        let mut sum = vec![0.0f64; m];
        let mut sq = vec![0.0f64; m];
        for row in x.rows() {
            for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(row) {
                *s += v as f64;
                *q += (v as f64) * (v as f64);
            }
        }
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let inv_scale = sum
            .iter()
            .zip(&sq)
            .map(|(s, q)| {
                let var = (q / n - (s / n).powi(2)).max(0.0);
                (1.0 / (var.sqrt() + epsilon as f64)) as f32
            })
            .collect();
        Standardizer { mean, inv_scale }
    }

    /// Standardises the rows of `x` in place.
    ///
    /// # Panics
    /// If `x` does not have as many columns as the fitted data.
    #[track_caller]
    pub fn apply(&self, x: &mut Mat) {
        assert_eq!(x.ncols(), self.mean.len(), "columns");
        for row in x.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_scale) {
                *v = (*v - m) * s;
            }
        }
    }
}

/// Local contrast normalisation of a whole image (Jarrett et al. 2009; the normalisation
/// LeCun's group applies before image-level training): subtract a Gaussian-weighted local
/// mean (std `sigma` pixels), then divide by the Gaussian-weighted local standard
/// deviation, floored at its image-wide mean so that flat regions are not amplified.
/// Borders are handled by renormalising the truncated Gaussian.
///
/// # Errors
/// If `sigma` is not finite and > 0.
pub fn local_contrast_normalize(
    img: &super::GrayImage,
    sigma: f32,
) -> crate::Result<super::GrayImage> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(crate::Error::param(
            "sigma",
            format!("{} must be finite and > 0", crate::Compact(sigma)),
        ));
    }
    let (w, h) = (img.width, img.height);
    // Taps at a distance ≥ the image's larger side never land in the image and are skipped
    // below: the radius is capped there, so a huge `sigma` costs no more than a box blur
    // (the result is the same, tap for tap).
    let radius = ((3.0 * sigma).ceil() as isize).min(w.max(h) as isize);
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    // Separable blur with renormalisation at the borders.
    let blur = |src: &[f32]| -> Vec<f32> {
        let mut tmp = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut ws) = (0.0, 0.0);
                for (k, &g) in kernel.iter().enumerate() {
                    let xx = x as isize + k as isize - radius;
                    if xx >= 0 && (xx as usize) < w {
                        s += g * src[y * w + xx as usize];
                        ws += g;
                    }
                }
                tmp[y * w + x] = s / ws;
            }
        }
        let mut out = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut ws) = (0.0, 0.0);
                for (k, &g) in kernel.iter().enumerate() {
                    let yy = y as isize + k as isize - radius;
                    if yy >= 0 && (yy as usize) < h {
                        s += g * tmp[yy as usize * w + x];
                        ws += g;
                    }
                }
                out[y * w + x] = s / ws;
            }
        }
        out
    };
    let mean = blur(&img.pixels);
    let centred: Vec<f32> = img.pixels.iter().zip(&mean).map(|(a, b)| a - b).collect();
    let sq: Vec<f32> = centred.iter().map(|v| v * v).collect();
    let sd: Vec<f32> = blur(&sq).iter().map(|v| v.max(0.0).sqrt()).collect();
    let floor = (sd.iter().map(|&v| v as f64).sum::<f64>() / sd.len().max(1) as f64) as f32;
    let floor = floor.max(1e-3);
    Ok(super::GrayImage {
        width: w,
        height: h,
        pixels: centred
            .iter()
            .zip(&sd)
            .map(|(c, s)| c / s.max(floor))
            .collect(),
    })
}

#[cfg(test)]
mod lcn_tests {
    use super::*;
    use crate::data::GrayImage;

    #[test]
    fn local_contrast_normalisation_flattens_constants_and_equalises_contrast() {
        let flat = GrayImage {
            width: 9,
            height: 7,
            pixels: vec![0.4; 63],
        };
        let out = local_contrast_normalize(&flat, 1.5).unwrap();
        assert!(out.pixels.iter().all(|v| v.abs() < 1e-4));
        // A faint and a strong copy of the same texture normalise to the same values.
        let tex: Vec<f32> = (0..63).map(|i| ((i * 7 % 5) as f32) * 0.1).collect();
        let faint = GrayImage {
            pixels: tex.iter().map(|v| 0.1 * v).collect(),
            ..flat.clone()
        };
        let strong = GrayImage {
            pixels: tex.clone(),
            ..flat.clone()
        };
        let (a, b) = (
            local_contrast_normalize(&faint, 1.5).unwrap(),
            local_contrast_normalize(&strong, 1.5).unwrap(),
        );
        for (x, y) in a.pixels.iter().zip(&b.pixels) {
            assert!((x - y).abs() < 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
        assert!(local_contrast_normalize(&flat, 0.0).is_err());
    }

    /// The uncapped blur of `local_contrast_normalize` (every tap of radius ⌈3σ⌉).
    fn reference(img: &GrayImage, sigma: f32) -> Vec<f32> {
        let (w, h) = (img.width, img.height);
        let radius = (3.0 * sigma).ceil() as isize;
        let kernel: Vec<f32> = (-radius..=radius)
            .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
            .collect();
        let blur = |src: &[f32], horizontal: bool| -> Vec<f32> {
            let mut out = vec![0.0f32; w * h];
            for y in 0..h {
                for x in 0..w {
                    let (mut s, mut ws) = (0.0, 0.0);
                    for (k, &g) in kernel.iter().enumerate() {
                        let off = k as isize - radius;
                        let (xx, yy) = if horizontal {
                            (x as isize + off, y as isize)
                        } else {
                            (x as isize, y as isize + off)
                        };
                        if xx >= 0 && (xx as usize) < w && yy >= 0 && (yy as usize) < h {
                            s += g * src[yy as usize * w + xx as usize];
                            ws += g;
                        }
                    }
                    out[y * w + x] = s / ws;
                }
            }
            out
        };
        let blur2 = |src: &[f32]| blur(&blur(src, true), false);
        let mean = blur2(&img.pixels);
        let centred: Vec<f32> = img.pixels.iter().zip(&mean).map(|(a, b)| a - b).collect();
        let sq: Vec<f32> = centred.iter().map(|v| v * v).collect();
        let sd: Vec<f32> = blur2(&sq).iter().map(|v| v.max(0.0).sqrt()).collect();
        let floor = (sd.iter().map(|&v| v as f64).sum::<f64>() / sd.len().max(1) as f64) as f32;
        let floor = floor.max(1e-3);
        centred
            .iter()
            .zip(&sd)
            .map(|(c, s)| c / s.max(floor))
            .collect()
    }

    /// A radius beyond the image is capped at its larger side: the same values tap for
    /// tap, and a huge `sigma` (`--lcn 1e6`, 1e30) costs a box blur, not minutes.
    #[test]
    fn a_huge_sigma_is_a_capped_radius() {
        let img = GrayImage {
            width: 9,
            height: 7,
            pixels: (0..63).map(|i| ((i * 7 % 5) as f32) * 0.1).collect(),
        };
        for sigma in [1.5f32, 4.0, 40.0] {
            assert_eq!(
                local_contrast_normalize(&img, sigma).unwrap().pixels,
                reference(&img, sigma),
                "sigma {sigma}"
            );
        }
        let big = GrayImage {
            width: 128,
            height: 128,
            pixels: (0..16384).map(|i| ((i * 7 % 5) as f32) * 0.1).collect(),
        };
        let t = std::time::Instant::now();
        for sigma in [1e6f32, 1e30, f32::MAX] {
            let out = local_contrast_normalize(&big, sigma).unwrap();
            assert!(out.pixels.iter().all(|v| v.is_finite()), "sigma {sigma}");
        }
        let secs = t.elapsed().as_secs_f64();
        assert!(secs < 30.0, "three huge-sigma normalisations took {secs} s");
    }
}

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
#[derive(Clone, Debug)]
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
    use rand::SeedableRng;

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
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
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

//! Synthetic activations from a known sparse dictionary, for scoring how well a sparse
//! auto-encoder recovers ground-truth features.
//!
//! The generative model ([`SyntheticSpec`]):
//! - `features` unit vectors `f_i ∈ R^d`, i.i.d. uniform on the sphere (Gaussian,
//!   normalised);
//! - feature `i` fires independently with probability `p_i = c·(i + 1)^(−α)`, with `c`
//!   chosen so that `Σ p_i = mean_l0` (each `p_i` capped at 1; the cap's excess is not
//!   redistributed, so the realised L0 can fall slightly short when `c` is large);
//! - correlated features: the first `correlated_pairs` odd features `2q + 1` also fire with
//!   probability `correlation` whenever feature `2q` fires;
//! - a firing feature has magnitude `a ~ U[0.5, 1.5]`; `x = Σ_i a_i f_i` (no bias, no noise).
//!
//! Rows are generated one at a time by per-block geometric skipping with thinning (features
//! in blocks of 64 sharing the block's largest probability), so a row costs about its number
//! of firing features, not the number of features.

use crate::linalg::{gemm, norm, Mat};
use crate::rng::SeedRng;
use crate::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The settings of the generative model (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Width of the activations.
    pub d: usize,
    /// Number of true features.
    pub features: usize,
    /// Expected active features per vector.
    pub mean_l0: f64,
    /// Power-law exponent α of the firing probabilities.
    pub alpha: f64,
    /// Feature pairs `(2q, 2q + 1)`, `q < correlated_pairs`, whose second member co-fires.
    pub correlated_pairs: usize,
    /// Probability that `2q + 1` fires when `2q` does (on top of its own probability).
    pub correlation: f64,
    /// Seed of the features and of the samples.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            d: 256,
            features: 4096,
            mean_l0: 16.0,
            alpha: 0.5,
            correlated_pairs: 256,
            correlation: 0.5,
            seed: 0,
        }
    }
}

/// Features per thinning block.
const BLOCK: usize = 64;

/// A synthetic data set's ground truth and sampler.
#[derive(Clone, Debug)]
pub struct Synthetic {
    spec: SyntheticSpec,
    features: Mat,
    prob: Vec<f64>,
    rng: SeedRng,
}

impl Synthetic {
    /// The ground truth of `spec`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for zero sizes, a non-positive `mean_l0` or one above the
    /// number of features, or probabilities outside [0, 1].
    pub fn new(spec: SyntheticSpec) -> Result<Synthetic> {
        if spec.d == 0 || spec.features == 0 || spec.features > 1 << 24 || spec.d > 1 << 16 {
            return Err(Error::param(
                "synthetic",
                "d in 1..=65536 and features in 1..=2²⁴",
            ));
        }
        if !(spec.mean_l0 > 0.0 && spec.mean_l0 <= spec.features as f64) {
            return Err(Error::param(
                "mean_l0",
                format!("{} not in (0, features]", crate::Compact(spec.mean_l0)),
            ));
        }
        if !(spec.alpha.is_finite() && spec.alpha >= 0.0) {
            return Err(Error::param("alpha", "must be ≥ 0"));
        }
        if !(0.0..=1.0).contains(&spec.correlation) || 2 * spec.correlated_pairs > spec.features {
            return Err(Error::param(
                "correlation",
                "correlation in [0, 1] and 2·correlated_pairs ≤ features",
            ));
        }
        let mut rng = crate::rng::seeded(spec.seed);
        let mut features = Mat::zeros(spec.features, spec.d);
        for row in features.rows_mut() {
            for v in row.iter_mut() {
                *v = StandardNormal.sample(&mut rng);
            }
            let n = norm(row);
            row.iter_mut().for_each(|v| *v /= n);
        }
        let raw: Vec<f64> = (0..spec.features)
            .map(|i| ((i + 1) as f64).powf(-spec.alpha))
            .collect();
        let c = spec.mean_l0 / raw.iter().sum::<f64>();
        let prob = raw.iter().map(|p| (p * c).min(1.0)).collect();
        Ok(Synthetic {
            spec,
            features,
            prob,
            rng,
        })
    }

    /// The true features, one unit vector per row.
    pub fn features(&self) -> &Mat {
        &self.features
    }

    /// The firing probabilities `p_i`.
    pub fn probabilities(&self) -> &[f64] {
        &self.prob
    }

    /// The settings.
    pub fn spec(&self) -> &SyntheticSpec {
        &self.spec
    }

    /// The next `rows` vectors.
    pub fn sample(&mut self, rows: usize) -> Mat {
        let mut out = Mat::zeros(rows, self.spec.d);
        self.fill_rows(&mut out);
        out
    }

    fn fill_rows(&mut self, out: &mut Mat) {
        let n = self.spec.features;
        let mut fired: Vec<usize> = Vec::new();
        for r in 0..out.nrows() {
            fired.clear();
            let mut block = 0;
            while block < n {
                let end = (block + BLOCK).min(n);
                let pmax = self.prob[block];
                if pmax >= 1.0 {
                    for i in block..end {
                        if self.prob[i] >= 1.0 || self.rng.gen::<f64>() < self.prob[i] {
                            fired.push(i);
                        }
                    }
                } else if pmax > 0.0 {
                    // Geometric skips at rate pmax, each candidate kept with p_i / pmax.
                    let ln_q = (1.0 - pmax).ln();
                    let mut i = block;
                    loop {
                        let u: f64 = self.rng.gen::<f64>().max(f64::MIN_POSITIVE);
                        i += (u.ln() / ln_q).floor() as usize;
                        if i >= end {
                            break;
                        }
                        if self.rng.gen::<f64>() * pmax < self.prob[i] {
                            fired.push(i);
                        }
                        i += 1;
                    }
                }
                block = end;
            }
            let pairs = self.spec.correlated_pairs;
            let extra: Vec<usize> = fired
                .iter()
                .filter(|&&i| i % 2 == 0 && i / 2 < pairs)
                .map(|&i| i + 1)
                .collect();
            for j in extra {
                if !fired.contains(&j) && self.rng.gen::<f64>() < self.spec.correlation {
                    fired.push(j);
                }
            }
            let row = out.row_mut(r);
            for &i in &fired {
                let a: f32 = self.rng.gen_range(0.5..1.5);
                crate::linalg::axpy(a, self.features.row(i), row);
            }
        }
    }
}

impl crate::data::ActivationSource for Synthetic {
    fn d_in(&self) -> usize {
        self.spec.d
    }
    fn len(&self) -> Option<u64> {
        None
    }
    fn fill(&mut self, out: &mut Mat) -> Result<()> {
        self.fill_rows(out);
        Ok(())
    }
}

/// How well `learned` (rows: learned dictionary directions, any norms) recovers `truth`
/// (rows: unit true features).
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// Mean over true features of the best cosine with any learned row.
    pub mean_max_cosine: f64,
    /// Fraction of true features whose best cosine is at least 0.9.
    pub recovered_09: f64,
    /// Mean over learned rows of their best cosine with any true feature.
    pub mean_max_cosine_learned: f64,
}

/// Scores a learned dictionary against the true features.
///
/// # Panics
/// If the widths differ.
pub fn recovery(truth: &Mat, learned: &Mat) -> Recovery {
    assert_eq!(truth.ncols(), learned.ncols(), "dictionary widths");
    let mut unit = learned.clone();
    for row in unit.rows_mut() {
        let n = norm(row);
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
    let mut cos = Mat::zeros(truth.nrows(), unit.nrows());
    gemm(1.0, truth.view(), unit.t(), 0.0, cos.view_mut());
    let best_truth: Vec<f32> = cos
        .rows()
        .map(|r| r.iter().cloned().fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let mut best_learned = vec![f32::NEG_INFINITY; unit.nrows()];
    for r in cos.rows() {
        for (b, &v) in best_learned.iter_mut().zip(r) {
            *b = b.max(v);
        }
    }
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    Recovery {
        mean_max_cosine: mean(&best_truth),
        recovered_09: best_truth.iter().filter(|&&c| c >= 0.9).count() as f64
            / best_truth.len().max(1) as f64,
        mean_max_cosine_learned: mean(&best_learned),
    }
}

//! Multinomial logistic regression (a linear softmax classifier): DrSAE's classifier
//! layer, and the classifier on top of stacked convolutional features.
//!
//! Loss per example `−log softmax(W x + b)_y`; batch-mean gradients
//! `∂logits = (P − onehot(y)) / B`, `∂W = ∂logitsᵀ X`, `∂b = Σ_rows ∂logits`.

use crate::linalg::{gemm, Mat};

/// Replaces every row of `logits` by its softmax (max-shifted); with labels, returns the
/// summed cross-entropy and the number of rows whose arg-max is the label.
pub(crate) fn softmax_rows(logits: &mut Mat, labels: Option<&[u8]>) -> (f64, usize) {
    let (mut xent, mut correct) = (0.0f64, 0usize);
    for (i, row) in logits.rows_mut().enumerate() {
        let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0;
        row.iter_mut().for_each(|v| {
            *v = (*v - mx).exp();
            sum += *v;
        });
        row.iter_mut().for_each(|v| *v /= sum);
        if let Some(l) = labels {
            let y = l[i] as usize;
            xent -= (row[y].max(f32::MIN_POSITIVE) as f64).ln();
            let arg = row
                .iter()
                .enumerate()
                .fold(0, |a, (j, &v)| if v > row[a] { j } else { a });
            correct += (arg == y) as usize;
        }
    }
    (xent, correct)
}

/// A linear softmax classifier over `features` inputs and `classes` outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Softmax {
    /// Weights, `classes × features`.
    pub(crate) w: Mat,
    /// Biases, one per class.
    pub(crate) b: Vec<f32>,
}

/// Gradients of a [`Softmax`].
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct SoftmaxGrads {
    pub w: Mat,
    pub b: Vec<f32>,
}

impl Softmax {
    /// All-zero weights (the loss is convex: no symmetry to break).
    pub fn new(features: usize, classes: usize) -> Softmax {
        Softmax {
            w: Mat::zeros(classes, features),
            b: vec![0.0; classes],
        }
    }

    /// A classifier with weights `w` (`classes × features`) and biases `b` (one per class).
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) on empty or inconsistent shapes;
    /// [`Error::NonFiniteInput`](crate::Error::NonFiniteInput) on a non-finite value.
    pub fn from_parts(w: Mat, b: Vec<f32>) -> crate::Result<Softmax> {
        if w.nrows() == 0 || w.ncols() == 0 || b.len() != w.nrows() {
            return Err(crate::Error::format(
                "softmax",
                format!("W is {:?} and b has {} entries", w.shape(), b.len()),
            ));
        }
        crate::check_finite("W", w.as_slice())?;
        crate::check_finite("b", &b)?;
        Ok(Softmax { w, b })
    }

    /// Weights, `classes × features`.
    pub fn w(&self) -> &Mat {
        &self.w
    }
    /// Biases, one per class.
    pub fn b(&self) -> &[f32] {
        &self.b
    }

    /// Zero gradients of this shape.
    pub fn zero_grads(&self) -> SoftmaxGrads {
        SoftmaxGrads {
            w: Mat::zeros(self.w.nrows(), self.w.ncols()),
            b: vec![0.0; self.b.len()],
        }
    }

    /// Class probabilities of the batch into `p` (B × classes); with labels, returns the
    /// summed cross-entropy and the number correct.
    ///
    /// # Panics
    /// If `x` does not have `features` columns or a label is out of range.
    #[track_caller]
    pub fn forward(&self, x: &Mat, labels: Option<&[u8]>, p: &mut Mat) -> (f64, usize) {
        assert_eq!(x.ncols(), self.w.ncols(), "features");
        if let Some(l) = labels {
            assert_eq!(l.len(), x.nrows(), "one label per row");
            assert!(
                l.iter().all(|&y| (y as usize) < self.b.len()),
                "label range"
            );
        }
        if p.shape() != (x.nrows(), self.b.len()) {
            *p = Mat::zeros(x.nrows(), self.b.len());
        }
        for row in p.rows_mut() {
            row.copy_from_slice(&self.b);
        }
        gemm(1.0, x.view(), self.w.t(), 1.0, p.view_mut());
        softmax_rows(p, labels)
    }

    /// Gradient of the batch-mean cross-entropy of the last [`Softmax::forward`] (its
    /// probabilities `p`, overwritten), plus `weight_decay·W`.
    pub fn backward(
        &self,
        x: &Mat,
        labels: &[u8],
        p: &mut Mat,
        weight_decay: f32,
        grads: &mut SoftmaxGrads,
    ) {
        let inv_b = 1.0 / x.nrows() as f32;
        grads.b.iter_mut().for_each(|v| *v = 0.0);
        for (row, &y) in p.rows_mut().zip(labels) {
            row[y as usize] -= 1.0;
            for (g, v) in grads.b.iter_mut().zip(row.iter_mut()) {
                *v *= inv_b;
                *g += *v;
            }
        }
        grads.w.copy_from(&self.w);
        gemm(1.0, p.t(), x.view(), weight_decay, grads.w.view_mut());
    }

    /// Most probable class of every row.
    pub fn predict(&self, x: &Mat) -> Vec<u8> {
        let mut p = Mat::zeros(0, 0);
        self.forward(x, None, &mut p);
        p.rows()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold(0, |a, (j, &v)| if v > r[a] { j } else { a }) as u8
            })
            .collect()
    }

    /// Percentage of rows classified wrongly.
    pub fn error_percent(&self, x: &Mat, labels: &[u8]) -> f64 {
        let wrong = self
            .predict(x)
            .iter()
            .zip(labels)
            .filter(|(a, b)| a != b)
            .count();
        100.0 * wrong as f64 / labels.len().max(1) as f64
    }
}

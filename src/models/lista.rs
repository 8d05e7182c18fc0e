//! LISTA (Gregor & LeCun, ICML 2010): a learned, truncated ISTA.
//!
//! `B = X W_eᵀ`, `Z⁰ = shrink_θ(B)`, `Zᵏ = shrink_θ(B + Zᵏ⁻¹ Sᵀ)` for k = 1..T, with the
//! signed soft-threshold and a per-unit θ; trained to minimise `½‖Zᵀ − Z*‖²` (batch mean)
//! where Z* are exact sparse codes. LISTA with T iterations is the shared unrolled
//! recurrence with T + 1 steps.

use super::recurrence::{
    block, grad_input, grad_recurrent, unroll_backward, unroll_forward, RecurrenceScratch,
};
use crate::kernels::{Shrink, Theta};
use crate::linalg::{gemm, Mat};
use crate::solvers::Dictionary;

/// LISTA parameters, read through accessors and changed only by training (which keeps
/// θ ≥ 0); [`ListaParts`] builds one from raw tensors ([`Lista::from_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Lista {
    /// Filter matrix W_e, n × m.
    pub(crate) we: Mat,
    /// Mutual-inhibition matrix S, n × n.
    pub(crate) s: Mat,
    /// Per-unit threshold θ ≥ 0, length n.
    pub(crate) theta: Vec<f32>,
    /// Iterations T (the encoder applies T + 1 shrinks).
    pub(crate) iters: usize,
}

/// LISTA's tensors by value ([`Lista::into_parts`] / [`Lista::from_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ListaParts {
    /// Filter matrix W_e, n × m.
    pub we: Mat,
    /// Mutual-inhibition matrix S, n × n.
    pub s: Mat,
    /// Per-unit threshold θ ≥ 0, length n.
    pub theta: Vec<f32>,
    /// Iterations T, at least 1.
    pub iters: usize,
}

/// Gradients of [`Lista`]'s parameters.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct ListaGrads {
    pub we: Mat,
    pub s: Mat,
    pub theta: Vec<f32>,
}

/// Reused buffers.
#[derive(Clone, Debug, Default)]
pub struct ListaWorkspace {
    b: Mat,
    zs: Mat,
    g: Mat,
    du: Mat,
    da: Mat,
    recurrence: RecurrenceScratch,
}

impl Lista {
    /// The ISTA correspondence for the lasso with dictionary `D` and penalty λ:
    /// `W_e = Dᵀ/L`, `S = I − DᵀD/L`, `θ = λ/L`. With these, LISTA is exactly T + 1 ISTA
    /// steps from zero.
    pub fn from_ista(dict: &Dictionary, lambda: f32, iters: usize) -> Lista {
        let l = dict.lipschitz();
        let mut we = dict.atoms().transposed();
        we.as_mut_slice().iter_mut().for_each(|v| *v /= l);
        let mut s = Mat::identity(dict.n_atoms());
        gemm(
            -1.0 / l,
            dict.gram().view(),
            Mat::identity(dict.n_atoms()).view(),
            1.0,
            s.view_mut(),
        );
        Lista {
            we,
            s,
            theta: vec![lambda / l; dict.n_atoms()],
            iters,
        }
    }

    /// A network from its tensors.
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) if a size is 0, the shapes disagree (W_e
    /// n × m, S n × n, θ n), `iters` is 0, a value is not finite or a θ is negative.
    pub fn from_parts(p: ListaParts) -> crate::Result<Lista> {
        let bad = |what: String| crate::Error::format("LISTA network", what);
        let (n, m) = p.we.shape();
        if n == 0 || m == 0 || p.iters == 0 {
            return Err(bad(format!("W_e is {n} × {m}, iters {}", p.iters)));
        }
        if p.s.shape() != (n, n) || p.theta.len() != n {
            return Err(bad(format!(
                "inconsistent shapes: W_e {:?}, S {:?}, θ [{}]",
                p.we.shape(),
                p.s.shape(),
                p.theta.len()
            )));
        }
        crate::check_finite("W_e", p.we.as_slice())?;
        crate::check_finite("S", p.s.as_slice())?;
        crate::check_finite("θ", &p.theta)?;
        if let Some(i) = p.theta.iter().position(|&t| t < 0.0) {
            return Err(bad(format!("θ[{i}] = {} is negative", p.theta[i])));
        }
        Ok(Lista {
            we: p.we,
            s: p.s,
            theta: p.theta,
            iters: p.iters,
        })
    }

    /// The network's tensors by value (the inverse of [`from_parts`](Self::from_parts)).
    pub fn into_parts(self) -> ListaParts {
        ListaParts {
            we: self.we,
            s: self.s,
            theta: self.theta,
            iters: self.iters,
        }
    }

    /// Filter matrix W_e, n × m.
    pub fn we(&self) -> &Mat {
        &self.we
    }
    /// Mutual-inhibition matrix S, n × n.
    pub fn s(&self) -> &Mat {
        &self.s
    }
    /// Per-unit thresholds θ ≥ 0.
    pub fn theta(&self) -> &[f32] {
        &self.theta
    }
    /// Iterations T.
    pub fn iters(&self) -> usize {
        self.iters
    }

    /// Code units n.
    pub fn hidden(&self) -> usize {
        self.we.nrows()
    }

    /// Zero gradients of this model's shapes.
    pub fn zero_grads(&self) -> ListaGrads {
        ListaGrads {
            we: Mat::zeros(self.we.nrows(), self.we.ncols()),
            s: Mat::zeros(self.s.nrows(), self.s.ncols()),
            theta: vec![0.0; self.theta.len()],
        }
    }

    /// Encodes the batch `x` (B × m); the codes are [`ListaWorkspace::codes`].
    pub fn forward(&self, x: &Mat, ws: &mut ListaWorkspace) {
        let (batch, n) = (x.nrows(), self.hidden());
        if ws.b.ncols() != n {
            *ws = ListaWorkspace {
                b: Mat::zeros(0, n),
                zs: Mat::zeros(0, n),
                g: Mat::zeros(0, n),
                du: Mat::zeros(0, n),
                da: Mat::zeros(0, n),
                recurrence: RecurrenceScratch::default(),
            };
        }
        ws.b.resize_rows(batch);
        gemm(1.0, x.view(), self.we.t(), 0.0, ws.b.view_mut());
        unroll_forward(
            &ws.b,
            &self.s,
            Shrink::Signed,
            Theta::PerUnit(&self.theta),
            self.iters + 1,
            &mut ws.zs,
            &mut ws.recurrence,
        );
    }

    /// Encodes every row of `x`.
    pub fn encode(&self, x: &Mat) -> Mat {
        let mut ws = ListaWorkspace::default();
        self.forward(x, &mut ws);
        ws.codes(x.nrows(), self.iters).to_owned()
    }

    /// Back-propagates `½‖Zᵀ − Z*‖²` averaged over the batch (after [`Lista::forward`] on
    /// the same `x`); returns that loss.
    pub fn backward(
        &self,
        x: &Mat,
        target: &Mat,
        ws: &mut ListaWorkspace,
        grads: &mut ListaGrads,
    ) -> f64 {
        let (batch, n) = (x.nrows(), self.hidden());
        let steps = self.iters + 1;
        assert_eq!(
            target.shape(),
            (batch, n),
            "target codes {:?} for a {batch}×{n} batch",
            target.shape()
        );
        ws.g.resize_rows(batch);
        ws.da.resize_rows(batch);
        let zt = block(&ws.zs, steps - 1, batch);
        let mut loss = 0.0f64;
        let inv_b = 1.0 / batch as f32;
        for i in 0..batch {
            for j in 0..n {
                let d = zt.get(i, j) - target[(i, j)];
                loss += 0.5 * (d as f64) * (d as f64);
                ws.g[(i, j)] = d * inv_b;
            }
        }
        unroll_backward(
            &mut ws.g,
            &self.s,
            &ws.zs,
            steps,
            &mut ws.du,
            &mut ws.recurrence,
        );
        grad_recurrent(&ws.du, &ws.zs, steps, batch, 1.0, 0.0, &mut grads.s);
        grad_input(&ws.du, steps, &mut ws.da);
        gemm(1.0, ws.da.t(), x.view(), 0.0, grads.we.view_mut());
        // ∂z/∂θ = −sign(z) where z ≠ 0; δU is already masked.
        grads.theta.iter_mut().for_each(|v| *v = 0.0);
        for (du_row, z_row) in ws.du.rows().zip(ws.zs.rows()) {
            for ((g, &d), &z) in grads.theta.iter_mut().zip(du_row).zip(z_row) {
                if z > 0.0 {
                    *g -= d;
                } else if z < 0.0 {
                    *g += d;
                }
            }
        }
        loss / batch as f64
    }
}

impl ListaWorkspace {
    /// The codes `Zᵀ` of the last forward pass.
    pub fn codes(&self, batch: usize, iters: usize) -> crate::linalg::MatRef<'_> {
        block(&self.zs, iters, batch)
    }
}

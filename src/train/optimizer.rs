//! First-order optimisers over a list of flat parameter tensors, with per-tensor
//! learning-rate multipliers and a learning-rate schedule.

use crate::{Error, Result};

/// Tensors at least this long take their Adam update on several threads.
const PARALLEL_ADAM_MIN: usize = 1 << 18;

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `θ ← θ − η g` (the paper's choice).
    Sgd,
    /// Heavy-ball momentum: `v ← μ v + g`, `θ ← θ − η v`.
    Momentum {
        /// μ in [0, 1).
        momentum: f32,
    },
    /// Adam (Kingma & Ba) with bias correction.
    Adam {
        /// β₁ in [0, 1).
        beta1: f32,
        /// β₂ in [0, 1).
        beta2: f32,
        /// ε > 0.
        eps: f32,
    },
}

impl Optimizer {
    /// The rule as a configuration field (`sgd`, `momentum(M)`, `adam(B1,B2,EPS)`), for
    /// checkpoint fingerprints and model metadata.
    pub(crate) fn field(&self) -> String {
        match self {
            Optimizer::Sgd => "sgd".to_string(),
            Optimizer::Momentum { momentum } => format!("momentum({momentum})"),
            Optimizer::Adam { beta1, beta2, eps } => format!("adam({beta1},{beta2},{eps})"),
        }
    }

    /// Adam with the usual constants (0.9, 0.999, 1e-8).
    pub fn adam() -> Self {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |v: f32| !(0.0..1.0).contains(&v);
        match *self {
            Optimizer::Sgd => Ok(()),
            Optimizer::Momentum { momentum } if bad(momentum) => Err(Error::param(
                "momentum",
                format!("{} not in [0, 1)", crate::Compact(momentum)),
            )),
            Optimizer::Adam { beta1, beta2, eps } if bad(beta1) || bad(beta2) || !(eps > 0.0) => {
                Err(Error::param(
                    "adam",
                    format!(
                        "β₁ = {}, β₂ = {} must be in [0, 1) and ε = {} > 0",
                        crate::Compact(beta1),
                        crate::Compact(beta2),
                        crate::Compact(eps)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "inverse" => Ok(Schedule::Inverse { rate: 5e-6 }),
            "cosine" => Ok(Schedule::Cosine { floor: 0.0 }),
            _ => Err(Error::param(
                "schedule",
                format!("`{s}` is not one of constant, inverse, cosine"),
            )),
        }
    }
}

impl std::str::FromStr for Optimizer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(Optimizer::Sgd),
            "momentum" => Ok(Optimizer::Momentum { momentum: 0.9 }),
            "adam" => Ok(Optimizer::adam()),
            _ => Err(Error::param(
                "optimizer",
                format!("`{s}` is not one of sgd, momentum, adam"),
            )),
        }
    }
}

/// Learning rate as a function of the optimisation step k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `η`.
    Constant,
    /// `η / (1 + k·rate)` (the authors' code: rate 5e-6).
    Inverse {
        /// Decay per step.
        rate: f64,
    },
    /// `η·(floor + (1 − floor)·½(1 + cos(π p)))` where `p` ∈ [0, 1] is the progress through
    /// the phase (by steps, or by time under a time budget, whichever is further).
    Cosine {
        /// Final fraction of η.
        floor: f64,
    },
}

impl Schedule {
    /// The schedule as a configuration field (`constant`, `inverse(RATE)`,
    /// `cosine(FLOOR)`), for checkpoint fingerprints and model metadata.
    pub(crate) fn field(&self) -> String {
        match self {
            Schedule::Constant => "constant".into(),
            Schedule::Inverse { rate } => format!("inverse({rate})"),
            Schedule::Cosine { floor } => format!("cosine({floor})"),
        }
    }

    /// The learning rate at step `k` and phase progress `progress` ∈ [0, 1] for base rate `lr`.
    pub fn at(&self, lr: f32, k: u64, progress: f64) -> f32 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Inverse { rate } => (lr as f64 / (1.0 + k as f64 * rate)) as f32,
            Schedule::Cosine { floor } => {
                let f = progress.clamp(0.0, 1.0);
                (lr as f64
                    * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * f).cos())))
                    as f32
            }
        }
    }
}

/// Optimiser state for a fixed list of tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    kind: Optimizer,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
    /// Updates taken so far.
    pub step: u64,
}

impl OptimizerState {
    /// Fresh state for tensors of the given lengths.
    pub fn new(kind: Optimizer, lengths: &[usize]) -> Self {
        let zeros = |on: bool| {
            if on {
                lengths.iter().map(|&l| vec![0.0; l]).collect()
            } else {
                Vec::new()
            }
        };
        let (m, v) = match kind {
            Optimizer::Sgd => (false, false),
            Optimizer::Momentum { .. } => (true, false),
            Optimizer::Adam { .. } => (true, true),
        };
        OptimizerState {
            kind,
            first: zeros(m),
            second: zeros(v),
            step: 0,
        }
    }

    /// The moment buffers, for checkpoints: (first moments, second moments).
    pub fn moments(&self) -> (&[Vec<f32>], &[Vec<f32>]) {
        (&self.first, &self.second)
    }

    /// Restores moment buffers and the step (from a checkpoint).
    pub fn restore(&mut self, first: Vec<Vec<f32>>, second: Vec<Vec<f32>>, step: u64) {
        self.first = first;
        self.second = second;
        self.step = step;
    }

    /// One update with learning rate `lr` of every `(parameter, gradient, multiplier)`.
    #[track_caller]
    pub fn update(&mut self, lr: f32, tensors: &mut [(&mut [f32], &[f32], f32)]) {
        self.step += 1;
        match self.kind {
            Optimizer::Sgd => {
                for (p, g, mult) in tensors.iter_mut() {
                    crate::linalg::axpy(-lr * *mult, g, p);
                }
            }
            Optimizer::Momentum { momentum } => {
                for (k, (p, g, mult)) in tensors.iter_mut().enumerate() {
                    let v = &mut self.first[k];
                    for ((pv, gv), vv) in p.iter_mut().zip(g.iter()).zip(v.iter_mut()) {
                        *vv = momentum * *vv + gv;
                        *pv -= lr * *mult * *vv;
                    }
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                // β^t is 0 in f32 long before t leaves i32 (β ≤ 1 − 2⁻²⁴): clamp, not wrap.
                let t = self.step.min(i32::MAX as u64) as i32;
                let c1 = 1.0 - beta1.powi(t);
                let c2 = 1.0 - beta2.powi(t);
                let adam = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: f32| {
                    for (((pv, gv), mv), vv) in p
                        .iter_mut()
                        .zip(g.iter())
                        .zip(m.iter_mut())
                        .zip(v.iter_mut())
                    {
                        *mv = beta1 * *mv + (1.0 - beta1) * gv;
                        *vv = beta2 * *vv + (1.0 - beta2) * gv * gv;
                        *pv -= step * *mv / ((*vv / c2).sqrt() + eps);
                    }
                };
                for (k, (p, g, mult)) in tensors.iter_mut().enumerate() {
                    let step = lr * *mult / c1;
                    let (m, v) = (&mut self.first[k][..], &mut self.second[k][..]);
                    assert!(
                        g.len() == p.len() && m.len() == p.len(),
                        "Adam: tensor lengths"
                    );
                    // Large tensors are split over the GEMM threads: the same operations on
                    // every element, so the result does not depend on the split.
                    let threads = if p.len() >= PARALLEL_ADAM_MIN {
                        crate::linalg::gemm_threads()
                    } else {
                        1
                    };
                    if threads <= 1 {
                        adam(p, g, m, v, step);
                        continue;
                    }
                    let chunk = p.len().div_ceil(threads);
                    std::thread::scope(|sc| {
                        let adam = &adam;
                        for (((p, g), m), v) in p
                            .chunks_mut(chunk)
                            .zip(g.chunks(chunk))
                            .zip(m.chunks_mut(chunk))
                            .zip(v.chunks_mut(chunk))
                        {
                            sc.spawn(move || adam(p, g, m, v, step));
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimisers_minimise_a_quadratic() {
        for kind in [
            Optimizer::Sgd,
            Optimizer::Momentum { momentum: 0.9 },
            Optimizer::adam(),
        ] {
            let mut x = vec![3.0f32, -2.0];
            let mut st = OptimizerState::new(kind, &[2]);
            let lr = if matches!(kind, Optimizer::Adam { .. }) {
                0.05
            } else {
                0.02
            };
            for _ in 0..2000 {
                let g: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
                st.update(lr, &mut [(&mut x, &g, 1.0)]);
            }
            assert!(x.iter().all(|v| v.abs() < 1e-2), "{kind:?}: {x:?}");
        }
    }

    #[test]
    fn schedules() {
        assert_eq!(Schedule::Constant.at(0.1, 1000, 0.5), 0.1);
        assert!((Schedule::Inverse { rate: 5e-6 }.at(5e-3, 200_000, 0.0) - 2.5e-3).abs() < 1e-9);
        let c = Schedule::Cosine { floor: 0.0 };
        assert!((c.at(1.0, 0, 0.5) - 0.5).abs() < 1e-6 && c.at(1.0, 0, 1.0) < 1e-6);
        assert!(Optimizer::Momentum { momentum: 1.5 }.check().is_err());
    }
}

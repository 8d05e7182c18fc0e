//! The group-sparse estimators: dense ([`GroupSparse`]: topographic maps on a grid,
//! disjoint groups, trees), locally connected ([`LocallyConnected`]) and convolutional
//! ([`Convolutional`]). All three train through the one group-sparse loop
//! ([`train_group_ae`](crate::train::train_group_ae)) and share their training options.
//!
//! This file holds the dense estimator (its layouts, parameters and fitted model); the
//! other two and the shared options have their own files.

mod conv;
mod local;
mod options;

pub use conv::{Convolutional, ConvolutionalParams, ConvolutionalValidParams};
pub use local::{LocallyConnected, LocallyConnectedParams, LocallyConnectedValidParams};
pub use options::GroupFitReport;

use super::common::{by_chunks, check_count, check_non_negative_at_most, MAX_WEIGHT};
use super::ParamGuard;
use crate::analysis::{Boundary, OrientationMap};
use crate::data::{AsRows, Preprocessing, Preprocessor};
use crate::kernels::Groups;
use crate::linalg::{gemm, Mat};
use crate::models::{GroupAe, GroupAeWorkspace};
use crate::{Error, Result};
use options::{group_norms, group_option_setters, GroupOptions};

/// Largest accepted number of code units.
const MAX_UNITS: usize = 1 << 16;

/// The groups of a dense group-sparse auto-encoder, which also fix its number of units.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum GroupLayout {
    /// A topographic map: `side × side` units on a wrap-around grid, one group per unit, the
    /// `pool × pool` square of units starting there ([`Groups::grid`]); with `sigma`, members
    /// weighted by a Gaussian of their distance to the pool's centre.
    Grid {
        /// Units per side.
        side: usize,
        /// Pool side.
        pool: usize,
        /// Gaussian weighting of pool members (`None`: all 1).
        sigma: Option<f32>,
    },
    /// `units` units in disjoint blocks of `size` ([`Groups::disjoint`]).
    Disjoint {
        /// Code units.
        units: usize,
        /// Units per group (divides `units`).
        size: usize,
    },
    /// The nodes of a complete tree, every subtree a group ([`Groups::tree`]).
    Tree {
        /// Children per node.
        branching: usize,
        /// Levels.
        depth: usize,
    },
}

impl GroupLayout {
    /// The groups.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`layout`) for sizes the constructors refuse.
    pub fn groups(&self) -> Result<Groups> {
        let groups = match *self {
            GroupLayout::Grid { side, pool, sigma } => Groups::grid(side, side, pool, 1, sigma),
            GroupLayout::Disjoint { units, size } => Groups::disjoint(units, size),
            GroupLayout::Tree { branching, depth } => Groups::tree(branching, depth),
        };
        let groups = groups.map_err(|e| Error::param("layout", e.to_string()))?;
        check_count("layout", groups.n_units(), MAX_UNITS)?;
        Ok(groups)
    }

    #[cfg(feature = "safetensors")]
    fn settings(&self) -> Vec<(&'static str, String)> {
        match *self {
            GroupLayout::Grid { side, pool, sigma } => {
                let mut s = vec![
                    ("layout", "grid".into()),
                    ("layout.side", side.to_string()),
                    ("layout.pool", pool.to_string()),
                ];
                if let Some(sigma) = sigma {
                    s.push(("layout.sigma", sigma.to_string()));
                }
                s
            }
            GroupLayout::Disjoint { units, size } => vec![
                ("layout", "disjoint".into()),
                ("layout.units", units.to_string()),
                ("layout.size", size.to_string()),
            ],
            GroupLayout::Tree { branching, depth } => vec![
                ("layout", "tree".into()),
                ("layout.branching", branching.to_string()),
                ("layout.depth", depth.to_string()),
            ],
        }
    }

    #[cfg(feature = "safetensors")]
    fn from_file(f: &crate::estimators::file::ModelFile) -> Result<GroupLayout> {
        Ok(match f.get::<String>("layout")?.as_str() {
            "grid" => GroupLayout::Grid {
                side: f.count("layout.side", MAX_UNITS)?,
                pool: f.count("layout.pool", MAX_UNITS)?,
                sigma: f.get::<f32>("layout.sigma").ok(),
            },
            "disjoint" => GroupLayout::Disjoint {
                units: f.count("layout.units", MAX_UNITS)?,
                size: f.count("layout.size", MAX_UNITS)?,
            },
            "tree" => GroupLayout::Tree {
                branching: f.count("layout.branching", MAX_UNITS)?,
                depth: f.count("layout.depth", 64)?,
            },
            other => {
                return Err(Error::format(
                    "model file",
                    format!("metadata `layout` = {other:?}: expected grid, disjoint or tree"),
                ))
            }
        })
    }
}

/// A first training stage of a [`GroupLayout::Grid`] map, a shrinking neighbourhood as in
/// Kohonen maps: wider pools and a weaker group term order the map quickly, then the
/// layout's own pools and λ sharpen the filters into localised edges (BENCHMARKS.md "Group
/// sparsity: topographic maps": wide pools alone give an ordered map of gratings, the final
/// pools alone localised edges but a weak map). The second stage starts from the first's
/// weights with a fresh optimiser and learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StartStage {
    /// Pool side of the first stage (1..=the grid's side).
    pub pool: usize,
    /// Weight λ of the group term in the first stage, in [0, 10⁴].
    pub lambda: f32,
    /// Share of the epochs and of the time budget the first stage takes, in (0, 1).
    pub share: f64,
}

impl StartStage {
    /// The first stage of `drsae train topographic` before a grid of `side` units with
    /// pools of side `pool` and weight `lambda`: pools two units wider (at most `side`),
    /// 0.4 λ, 70 % of the run.
    pub fn widening(side: usize, pool: usize, lambda: f32) -> StartStage {
        StartStage {
            pool: (pool + 2).min(side),
            lambda: 0.4 * lambda,
            share: 0.7,
        }
    }

    fn check(&self, layout: &GroupLayout, opts: &GroupOptions) -> Result<()> {
        let GroupLayout::Grid { side, .. } = *layout else {
            return Err(Error::param("start_stage", "needs a grid layout"));
        };
        if self.pool == 0 || self.pool > side {
            return Err(Error::param(
                "start_stage",
                format!("pool {} must be in 1..={side} (the grid's side)", self.pool),
            ));
        }
        check_non_negative_at_most("start_stage", self.lambda as f64, MAX_WEIGHT)?;
        if !(self.share > 0.0 && self.share < 1.0) {
            return Err(Error::param(
                "start_stage",
                format!("share {} must be in (0, 1)", self.share),
            ));
        }
        if opts.checkpointing.dir.is_some() {
            return Err(Error::param(
                "start_stage",
                "a two-stage fit cannot be checkpointed (no checkpoint_dir)",
            ));
        }
        Ok(())
    }
}

/// Validated [`GroupSparseParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSparseValidParams {
    layout: GroupLayout,
    opts: GroupOptions,
    start_stage: Option<StartStage>,
}

/// Dense group-sparse (topographic) auto-encoder hyper-parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `layout` | `Grid { side: 12, pool: 3, sigma: None }` | the groups and the number of units | see [`GroupLayout`] |
/// | `lambda` | 0.3 | weight λ of the group term | [0, 10⁴] |
/// | `batch` | 100 | minibatch size | 1..=2²⁰ |
/// | `epochs` | 50; under a `time_budget` without a count, as many as it allows | passes over the data (a maximum under a budget) | 1..=2²⁴ |
/// | `optimizer` | Adam (0.9, 0.999, 1e-8) | update rule | |
/// | `lr` | 2e-3 | base learning rate, cosine decay to 5 % | (0, 10] |
/// | `time_budget` | none | wall-clock seconds; the schedule follows the time spent | (0, 10⁷] |
/// | `seed` | 0 | initialisation and shuffling | |
/// | `form` | ReLU | encoder non-linearity | |
/// | `psd` | none | `(α, steps)`: PSD training | α in (0, 10⁴], steps in 1..=10000 |
/// | `preprocessing` | `Contrast { floor: 0.05 }` | per-row transform, stored in the model | |
/// | `zca` | 0.1 | ZCA regulariser after the per-row step (`None`: no whitening) | > 0 |
/// | `start_stage` | none | a first stage with other pools and λ ([`StartStage`]) | grid layouts, no checkpoints |
/// | `checkpoint_dir`, `checkpoint_every`, `resume` | none, 0, false | checkpoints | |
/// | `progress` | false | one line per epoch on stderr | |
///
/// The defaults are those of the topographic map of `drsae train topographic` on 12 × 12
/// natural-image patches (mean removed, contrast-normalised, whitened); that example also
/// trains a first stage, [`StartStage::widening`], by default.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSparseParams(GroupSparseValidParams);

impl Default for GroupSparseParams {
    fn default() -> Self {
        GroupSparseParams(GroupSparseValidParams {
            layout: GroupLayout::Grid {
                side: 12,
                pool: 3,
                sigma: None,
            },
            opts: GroupOptions::family(
                0.3,
                100,
                50,
                2e-3,
                Preprocessor::Contrast { floor: 0.05 },
                Some(0.1),
            ),
            start_stage: None,
        })
    }
}

impl GroupSparseParams {
    super::common::setters! {
        /// The groups (and so the number of units).
        layout: GroupLayout => |p, v| p.layout = v;
        /// A first training stage (grid layouts; `None`: one stage).
        start_stage: Option<StartStage> => |p, v| p.start_stage = v;
    }
    group_option_setters!();

    /// Checks the parameters, then trains on the rows of `x` (see
    /// [`GroupSparseValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`GroupSparseValidParams::fit`].
    pub fn fit(&self, x: impl AsRows) -> Result<GroupSparse> {
        self.check_ref()?.fit(x)
    }
}

impl ParamGuard for GroupSparseParams {
    type Checked = GroupSparseValidParams;
    fn check_ref(&self) -> Result<&GroupSparseValidParams> {
        self.0.layout.groups()?;
        self.0.opts.check()?;
        if let Some(stage) = &self.0.start_stage {
            stage.check(&self.0.layout, &self.0.opts)?;
        }
        Ok(&self.0)
    }
    fn check(self) -> Result<GroupSparseValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl GroupSparseValidParams {
    /// The group layout.
    pub fn layout(&self) -> GroupLayout {
        self.layout
    }

    /// The trainer configuration these parameters resolve to (λ, minibatch, epochs,
    /// optimiser, rate, budget, seed, PSD): the family's defaults, for programs that drive
    /// [`train_group_ae`](crate::train::train_group_ae) themselves.
    pub fn config(&self) -> crate::train::GroupAeConfig {
        self.opts.config()
    }

    /// The per-row transform.
    pub fn preprocessing(&self) -> crate::data::Preprocessor {
        self.opts.preprocessing
    }

    /// The ZCA regulariser, if the inputs are whitened.
    pub fn zca(&self) -> Option<f32> {
        self.opts.zca
    }

    /// The first training stage, if any.
    pub fn start_stage(&self) -> Option<StartStage> {
        self.start_stage
    }
    /// Preprocesses the rows of `x` (fitting ZCA on them if set), initialises the model
    /// ([`GroupAe::init`]) and trains it: with a [`StartStage`], first with its pools and λ
    /// for its share of the epochs and the budget, then with the layout's for the rest (the
    /// epochs and seconds reported count on across the stages; the losses are both
    /// stages').
    ///
    /// # Errors
    /// No rows, non-finite values, a diverged or collapsed training, checkpoint errors.
    pub fn fit(&self, x: impl AsRows) -> Result<GroupSparse> {
        self.fit_with(x, |_, _, _| {})
    }

    /// [`GroupSparseValidParams::fit`], calling `on_epoch(epoch, mean loss, seconds)` after each
    /// epoch (for progress reports).
    ///
    /// # Errors
    /// As [`GroupSparseValidParams::fit`].
    pub fn fit_with(
        &self,
        x: impl AsRows,
        mut on_epoch: impl FnMut(usize, f64, f64),
    ) -> Result<GroupSparse> {
        let start = std::time::Instant::now();
        let groups = self.layout.groups()?;
        // The input's own row width (any width: the layout fixes only the units).
        let width = x
            .width()
            .ok_or_else(|| crate::Error::param("data", "no training rows"))?;
        let (x, preprocessing) = self.opts.prepare(x, width)?;
        let mut rng = crate::rng::seeded(self.opts.seed);
        let mut model = GroupAe::init(x.ncols(), groups.n_units(), self.opts.form, &mut rng);
        let report = match (self.start_stage, self.layout) {
            (Some(stage), GroupLayout::Grid { side, sigma, .. }) => {
                let first_groups = GroupLayout::Grid {
                    side,
                    pool: stage.pool,
                    sigma,
                }
                .groups()?;
                let (first, rest) = self.opts.split(stage.lambda, stage.share);
                let began = std::time::Instant::now();
                let r1 = first.train(&mut model, &x, &first_groups, start, &mut on_epoch)?;
                let after = (r1.losses.len(), began.elapsed().as_secs_f64());
                let r2 = rest.train_after(&mut model, &x, &groups, start, after, &mut on_epoch)?;
                GroupFitReport {
                    losses: [r1.losses, r2.losses].concat(),
                    examples_per_s: r2.examples_per_s,
                    seconds: r2.seconds,
                }
            }
            _ => self
                .opts
                .train(&mut model, &x, &groups, start, &mut on_epoch)?,
        };
        Ok(GroupSparse {
            model,
            layout: self.layout,
            groups,
            lambda: self.opts.lambda,
            preprocessing,
            report: Some(report),
        })
    }
}

/// A fitted dense group-sparse auto-encoder: encoder `g ⊙ σ(Wx + d)`, unit-norm decoder D,
/// its groups and the preprocessing of its inputs.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// # fn main() -> drsae::Result<()> {
/// let x = Mat::from_fn(400, 16, |i, j| ((i * 31 + j * 17) % 23) as f32); // 400 4×4 "patches"
/// let model = GroupSparse::params()
///     .layout(GroupLayout::Disjoint { units: 8, size: 2 })
///     .zca(None)
///     .epochs(3)
///     .fit(&x)?;
/// let codes = model.encode(x.row(0))?; // one row
/// assert_eq!(codes.shape(), (1, 8));
/// assert_eq!(model.group_norms(&x)?.shape(), (400, 4));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSparse {
    model: GroupAe,
    layout: GroupLayout,
    groups: Groups,
    lambda: f32,
    preprocessing: Preprocessing,
    report: Option<GroupFitReport>,
}

impl GroupSparse {
    /// Default parameters (see [`GroupSparseParams`]).
    pub fn params() -> GroupSparseParams {
        GroupSparseParams::default()
    }

    /// The trained auto-encoder.
    pub fn model(&self) -> &GroupAe {
        &self.model
    }

    /// The group layout.
    pub fn layout(&self) -> GroupLayout {
        self.layout
    }

    /// The groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The group-term weight λ it was trained with.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// The transform applied to every input.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// What training measured (`None` for a loaded model).
    pub fn report(&self) -> Option<&GroupFitReport> {
        self.report.as_ref()
    }

    /// Input length m.
    pub fn input_dim(&self) -> usize {
        self.model.w.ncols()
    }

    /// Code units n.
    pub fn hidden(&self) -> usize {
        self.model.hidden()
    }

    fn prepare(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.input_dim())?;
        self.preprocessing.apply(&mut x);
        Ok(x)
    }

    fn codes(&self, x: &Mat) -> Mat {
        let mut ws = GroupAeWorkspace::default();
        by_chunks(x, self.hidden(), |c| {
            self.model.forward(c, &self.groups, &mut ws);
            self.model.codes(&ws).clone()
        })
    }

    /// The codes `F(x)` of every input row (rows × n).
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values.
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        Ok(self.codes(&self.prepare(x)?))
    }

    /// The reconstructions `D F(x)` of every input row (rows × m), in the preprocessed
    /// space.
    ///
    /// # Errors
    /// As [`GroupSparse::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let z = self.encode(x)?;
        let mut out = Mat::zeros(z.nrows(), self.input_dim());
        gemm(1.0, z.view(), self.model.dec.t(), 0.0, out.view_mut());
        Ok(out)
    }

    /// The group norms `‖F(x)_{P_k}‖` of every input row (rows × groups): the pooled,
    /// invariant features.
    ///
    /// # Errors
    /// As [`GroupSparse::encode`].
    pub fn group_norms(&self, x: impl AsRows) -> Result<Mat> {
        Ok(group_norms(&self.encode(x)?, &self.groups))
    }

    /// The orientation map of a [`GroupLayout::Grid`] model on square inputs: every
    /// decoder filter's preferred orientation and selectivity in grid order, the
    /// neighbour/random orientation-difference ratio (below 1: an ordered map) and the
    /// pinwheel count. `None` for other layouts or non-square inputs.
    pub fn orientation_map(&self) -> Option<OrientationMap> {
        let GroupLayout::Grid { side, .. } = self.layout else {
            return None;
        };
        let m = self.input_dim();
        let size = (m as f64).sqrt().round() as usize;
        if size * size != m {
            return None;
        }
        let filters: Vec<Vec<f32>> = (0..self.hidden()).map(|j| self.model.filter(j)).collect();
        Some(OrientationMap::measure(
            &filters,
            size,
            side,
            side,
            Boundary::Wrap,
        ))
    }
}

#[cfg(feature = "safetensors")]
impl GroupSparse {
    /// Tensors `W` (n × m), `bias`, `gain` (n), `D` (m × n); metadata `form`, `lambda` and
    /// the layout (`layout` = grid/disjoint/tree and its sizes as `layout.NAME`).
    fn encode_file(&self) -> Result<Vec<u8>> {
        let mut settings = self.layout.settings();
        settings.push(("form", options::form_name(self.model.form).into()));
        settings.push(("lambda", self.lambda.to_string()));
        crate::estimators::file::to_bytes(
            "group_sparse",
            options::owned_params(&self.model),
            settings,
            &self.preprocessing,
        )
    }

    fn decode_file(bytes: &[u8]) -> Result<GroupSparse> {
        let mut f = crate::estimators::file::ModelFile::parse(bytes, "group_sparse")?;
        let layout = GroupLayout::from_file(&f)?;
        let groups = layout
            .groups()
            .map_err(|e| Error::format("model file", e.to_string()))?;
        let n = groups.n_units();
        let shape = f.shape("W")?;
        let m = match shape[..] {
            [rows, m] if rows == n => m,
            _ => {
                return Err(Error::format(
                    "model file",
                    format!("tensor `W` has shape {shape:?}, the layout {n} units"),
                ))
            }
        };
        let model = GroupAe {
            w: f.matrix("W", n, m)?,
            bias: f.tensor("bias", &[n])?,
            gain: f.tensor("gain", &[n])?,
            dec: f.matrix("D", m, n)?,
            form: options::parse_form(&f.get::<String>("form")?)?,
            support: None,
            recon_weights: None,
        };
        let lambda = f.weight("lambda")?;
        let preprocessing = f.preprocessing(m)?;
        f.finish()?;
        Ok(GroupSparse {
            model,
            layout,
            groups,
            lambda,
            preprocessing,
            report: None,
        })
    }
}

#[cfg(feature = "safetensors")]
crate::estimators::file::model_file_methods!(GroupSparse, "group_sparse");

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(pool: usize) -> GroupSparseParams {
        let layout = GroupLayout::Grid {
            side: 4,
            pool,
            sigma: None,
        };
        GroupSparse::params().layout(layout).zca(None).epochs(4)
    }

    #[test]
    fn a_start_stage_runs_first_and_the_epochs_count_on() {
        let x = Mat::from_fn(300, 16, |i, j| ((i * 31 + j * 17) % 23) as f32);
        let stage = StartStage::widening(4, 1, 0.3);
        assert_eq!((stage.pool, stage.share), (3, 0.7));
        assert!((stage.lambda - 0.12).abs() < 1e-6);
        let params = grid(1).start_stage(Some(stage)).check().unwrap();
        let mut epochs = Vec::new();
        let model = params.fit_with(&x, |e, _, _| epochs.push(e)).unwrap();
        // round(0.7 × 4) = 3 epochs with 3 × 3 pools, then 1 with the layout's.
        assert_eq!(epochs, [1, 2, 3, 4]);
        assert_eq!(model.report().unwrap().losses.len(), 4);
        assert_eq!(model.layout(), params.layout());
        assert_eq!(model.lambda(), params.config().lambda);
        // One stage gives another model from the same seed.
        let single = grid(1).fit(&x).unwrap();
        assert_ne!(single.model(), model.model());
    }

    #[test]
    fn bad_start_stages_are_refused() {
        let ok = StartStage::widening(4, 1, 0.3);
        for bad in [
            StartStage { pool: 0, ..ok },
            StartStage { pool: 5, ..ok },
            StartStage { share: 0.0, ..ok },
            StartStage { share: 1.0, ..ok },
            StartStage {
                share: f64::NAN,
                ..ok
            },
            StartStage { lambda: -1.0, ..ok },
        ] {
            assert!(grid(1).start_stage(Some(bad)).check().is_err(), "{bad:?}");
        }
        let disjoint = GroupSparse::params().layout(GroupLayout::Disjoint { units: 8, size: 2 });
        assert!(disjoint.start_stage(Some(ok)).check().is_err());
        let checkpointed = grid(1).checkpoint_dir("x").start_stage(Some(ok));
        assert!(checkpointed.check().is_err());
        assert!(grid(1).start_stage(Some(ok)).check().is_ok());
    }
}

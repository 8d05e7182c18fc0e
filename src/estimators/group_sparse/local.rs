//! The locally-connected group-sparse estimator: units on a sheet, each with its own filter
//! over a small window of the input ([`LocalSheet`]), grouped by pools on the sheet.

use super::options::{group_norms, group_option_setters, GroupFitReport, GroupOptions};
use crate::data::{AsRows, Preprocessing, Preprocessor};
use crate::estimators::common::{by_chunks, check_count};
use crate::estimators::ParamGuard;
use crate::kernels::Groups;
use crate::linalg::{gemm, Mat};
use crate::models::{support_coverage, GroupAe, GroupAeWorkspace, LocalSheet};
use crate::{Error, Result};

/// Largest accepted sheet or window size (units per side, pixels per side).
const MAX_SIDE: usize = 1 << 10;

/// Validated [`LocallyConnectedParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct LocallyConnectedValidParams {
    sheet: LocalSheet,
    pool: usize,
    coverage_weights: bool,
    opts: GroupOptions,
}

/// Locally-connected auto-encoder hyper-parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `sheet` | `grid 3, block 8, stride 4, kernel 12` | where each unit looks (see [`LocalSheet`]); inputs are `image × image` | sizes ≥ 1 |
/// | `pool` | 3 | side of the pools on the sheet ([`Groups::sheet_pools`]) | 1..=sheet side |
/// | `coverage_weights` | true | weight each input's reconstruction by how many units see it | |
/// | `lambda` | 0.1 | weight λ of the group term | [0, 10⁴] |
/// | `batch` | 50 | minibatch size | 1..=2²⁰ |
/// | `epochs` | 50; under a `time_budget` without a count, as many as it allows | passes over the data (a maximum under a budget) | 1..=2²⁴ |
/// | `optimizer` | Adam (0.9, 0.999, 1e-8) | update rule | |
/// | `lr` | 2e-3 | base learning rate, cosine decay to 5 % | (0, 10] |
/// | `time_budget` | none | wall-clock seconds; the schedule follows the time spent | (0, 10⁷] |
/// | `seed` | 0 | initialisation and shuffling | |
/// | `form` | ReLU | encoder non-linearity | |
/// | `psd` | none | `(α, steps)`: PSD training | α in (0, 10⁴], steps in 1..=10000 |
/// | `preprocessing` | `Contrast { floor: 0.05 }` | per-row transform, stored in the model | |
/// | `zca` | none | ZCA regulariser after the per-row step | > 0 |
/// | `checkpoint_dir`, `checkpoint_every`, `resume` | none, 0, false | checkpoints | |
/// | `progress` | false | one line per epoch on stderr | |
///
/// The sheet, pool, λ, minibatch and rate are those of `drsae train pinwheel`.
#[derive(Clone, Debug, PartialEq)]
pub struct LocallyConnectedParams(LocallyConnectedValidParams);

impl Default for LocallyConnectedParams {
    fn default() -> Self {
        LocallyConnectedParams(LocallyConnectedValidParams {
            sheet: LocalSheet {
                grid: 3,
                block: 8,
                stride: 4,
                kernel: 12,
            },
            pool: 3,
            coverage_weights: true,
            opts: GroupOptions::family(
                0.1,
                50,
                50,
                2e-3,
                Preprocessor::Contrast { floor: 0.05 },
                None,
            ),
        })
    }
}

impl LocallyConnectedParams {
    crate::estimators::common::setters! {
        /// The layout of the units' windows.
        sheet: LocalSheet => |p, v| p.sheet = v;
        /// Side of the pools on the sheet.
        pool: usize => |p, v| p.pool = v;
        /// Weight each input's reconstruction error by its coverage.
        coverage_weights: bool => |p, v| p.coverage_weights = v;
    }
    group_option_setters!();

    /// Checks the parameters, then trains on the rows of `x`, each an `image × image`
    /// input (see [`LocallyConnectedValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`LocallyConnectedValidParams::fit`].
    pub fn fit(&self, x: impl AsRows) -> Result<LocallyConnected> {
        self.check_ref()?.fit(x)
    }
}

impl ParamGuard for LocallyConnectedParams {
    type Checked = LocallyConnectedValidParams;
    fn check_ref(&self) -> Result<&LocallyConnectedValidParams> {
        let p = &self.0;
        let s = p.sheet;
        for (name, v) in [
            ("sheet.grid", s.grid),
            ("sheet.block", s.block),
            ("sheet.stride", s.stride),
            ("sheet.kernel", s.kernel),
        ] {
            check_count(name, v, MAX_SIDE)?;
        }
        check_count("sheet", s.side(), MAX_SIDE)?;
        check_count("pool", p.pool, s.side())?;
        p.opts.check()?;
        Ok(p)
    }
    fn check(self) -> Result<LocallyConnectedValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl LocallyConnectedValidParams {
    /// The layout of the units' windows.
    pub fn sheet(&self) -> LocalSheet {
        self.sheet
    }

    /// Side of the pools on the sheet.
    pub fn pool(&self) -> usize {
        self.pool
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
    /// Preprocesses the rows of `x` (`image²` values each), initialises a [`GroupAe`]
    /// restricted to the sheet's windows and trains it.
    ///
    /// # Errors
    /// Rows that are not `image²` long, no rows, non-finite values, a diverged or
    /// collapsed training, checkpoint errors.
    pub fn fit(&self, x: impl AsRows) -> Result<LocallyConnected> {
        self.fit_with(x, |_, _, _| {})
    }

    /// [`LocallyConnectedValidParams::fit`], calling `on_epoch(epoch, mean loss, seconds)` after each
    /// epoch (for progress reports).
    ///
    /// # Errors
    /// As [`LocallyConnectedValidParams::fit`].
    pub fn fit_with(
        &self,
        x: impl AsRows,
        mut on_epoch: impl FnMut(usize, f64, f64),
    ) -> Result<LocallyConnected> {
        let start = std::time::Instant::now();
        let side = self.sheet.image();
        let (x, preprocessing) = self.opts.prepare(x, side * side)?;
        let groups = sheet_groups(self.sheet, self.pool)?;
        let mut rng = crate::rng::seeded(self.opts.seed);
        let support = self.sheet.support();
        let weights = self.coverage_weights.then(|| support_coverage(&support));
        let mut model = GroupAe::init(side * side, self.sheet.units(), self.opts.form, &mut rng)
            .with_support(support)?;
        if let Some(w) = weights {
            model = model.with_recon_weights(w)?;
        }
        let report = self
            .opts
            .train(&mut model, &x, &groups, start, &mut on_epoch)?;
        Ok(LocallyConnected {
            model,
            sheet: self.sheet,
            pool: self.pool,
            groups,
            lambda: self.opts.lambda,
            preprocessing,
            report: Some(report),
        })
    }
}

fn sheet_groups(sheet: LocalSheet, pool: usize) -> Result<Groups> {
    Groups::sheet_pools(sheet.side(), sheet.side(), pool)
        .map_err(|e| Error::param("pool", e.to_string()))
}

/// A fitted locally-connected auto-encoder: a [`GroupAe`] whose filters are zero outside
/// each unit's window, its sheet, groups and preprocessing.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// use drsae::models::LocalSheet;
/// # fn main() -> drsae::Result<()> {
/// let sheet = LocalSheet::new(2, 2, 2, 4)?; // 4 × 4 units, 4 × 4 windows on 6 × 6 inputs
/// let x = Mat::from_fn(300, 36, |i, j| ((i * 13 + j * 7) % 19) as f32);
/// let model = LocallyConnected::params().sheet(sheet).pool(2).epochs(2).fit(&x)?;
/// assert_eq!(model.encode(x.row(0))?.shape(), (1, 16));
/// assert_eq!(model.model().w().row(0)[5], 0.0); // unit 0 does not see pixel (0, 5)
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LocallyConnected {
    model: GroupAe,
    sheet: LocalSheet,
    pool: usize,
    groups: Groups,
    lambda: f32,
    preprocessing: Preprocessing,
    report: Option<GroupFitReport>,
}

impl LocallyConnected {
    /// Default parameters (see [`LocallyConnectedParams`]).
    pub fn params() -> LocallyConnectedParams {
        LocallyConnectedParams::default()
    }

    /// The trained auto-encoder.
    pub fn model(&self) -> &GroupAe {
        &self.model
    }

    /// The layout of the units' windows.
    pub fn sheet(&self) -> LocalSheet {
        self.sheet
    }

    /// The groups (pools on the sheet).
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The transform applied to every input.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// What training measured (`None` for a loaded model).
    pub fn report(&self) -> Option<&GroupFitReport> {
        self.report.as_ref()
    }

    /// Input length `image²`.
    pub fn input_dim(&self) -> usize {
        self.model.w.ncols()
    }

    /// Code units.
    pub fn hidden(&self) -> usize {
        self.model.hidden()
    }

    /// The codes of every input row (rows × units).
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values.
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.input_dim())?;
        self.preprocessing.apply(&mut x);
        let mut ws = GroupAeWorkspace::default();
        Ok(by_chunks(&x, self.hidden(), |c| {
            self.model.forward(c, &self.groups, &mut ws);
            self.model.codes(&ws).clone()
        }))
    }

    /// The reconstructions of every input row (rows × m), in the preprocessed space.
    ///
    /// # Errors
    /// As [`LocallyConnected::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let z = self.encode(x)?;
        let mut out = Mat::zeros(z.nrows(), self.input_dim());
        gemm(1.0, z.view(), self.model.dec.t(), 0.0, out.view_mut());
        Ok(out)
    }

    /// The group norms of every input row (rows × groups).
    ///
    /// # Errors
    /// As [`LocallyConnected::encode`].
    pub fn group_norms(&self, x: impl AsRows) -> Result<Mat> {
        Ok(group_norms(&self.encode(x)?, &self.groups))
    }
}

#[cfg(feature = "safetensors")]
impl LocallyConnected {
    /// Tensors `W`, `bias`, `gain`, `D`; metadata `form`, `lambda`, `sheet.grid`,
    /// `sheet.block`, `sheet.stride`, `sheet.kernel`, `pool`, `coverage_weights`.
    fn encode_file(&self) -> Result<Vec<u8>> {
        let s = self.sheet;
        crate::estimators::file::to_bytes(
            "locally_connected",
            super::options::owned_params(&self.model),
            vec![
                ("form", super::options::form_name(self.model.form).into()),
                ("lambda", self.lambda.to_string()),
                ("sheet.grid", s.grid.to_string()),
                ("sheet.block", s.block.to_string()),
                ("sheet.stride", s.stride.to_string()),
                ("sheet.kernel", s.kernel.to_string()),
                ("pool", self.pool.to_string()),
                (
                    "coverage_weights",
                    self.model.recon_weights.is_some().to_string(),
                ),
            ],
            &self.preprocessing,
        )
    }

    fn decode_file(bytes: &[u8]) -> Result<LocallyConnected> {
        let mut f = crate::estimators::file::ModelFile::parse(bytes, "locally_connected")?;
        let sheet = LocalSheet::new(
            f.count("sheet.grid", MAX_SIDE)?,
            f.count("sheet.block", MAX_SIDE)?,
            f.count("sheet.stride", MAX_SIDE)?,
            f.count("sheet.kernel", MAX_SIDE)?,
        )?;
        if sheet.side() > MAX_SIDE || sheet.image() > MAX_SIDE {
            return Err(Error::format(
                "model file",
                format!("sheet {sheet:?} too large"),
            ));
        }
        let pool = f.count("pool", sheet.side())?;
        let groups =
            sheet_groups(sheet, pool).map_err(|e| Error::format("model file", e.to_string()))?;
        let (n, m) = (sheet.units(), sheet.image() * sheet.image());
        let support = sheet.support();
        let weighted: bool = f.get("coverage_weights")?;
        let model = GroupAe {
            w: f.matrix("W", n, m)?,
            bias: f.tensor("bias", &[n])?,
            gain: f.tensor("gain", &[n])?,
            dec: f.matrix("D", m, n)?,
            form: super::options::parse_form(&f.get::<String>("form")?)?,
            recon_weights: weighted.then(|| support_coverage(&support)),
            support: Some(support),
        };
        let lambda = f.weight("lambda")?;
        let preprocessing = f.preprocessing(m)?;
        f.finish()?;
        Ok(LocallyConnected {
            model,
            sheet,
            pool,
            groups,
            lambda,
            preprocessing,
            report: None,
        })
    }
}

#[cfg(feature = "safetensors")]
crate::estimators::file::model_file_methods!(LocallyConnected, "locally_connected");

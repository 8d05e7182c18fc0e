//! The lateral-inhibition estimator: [`Inhibition::params`] → [`InhibitionParams`] →
//! `fit(&x)` → [`Inhibition`], structured sparse coding
//! `min_z ½‖x − Wz‖² + λ‖z‖₁ + |z|ᵀS|z|` with a learned dictionary W and a fixed or learned
//! inhibition matrix S (Gregor, Szlam & LeCun 2011).

use super::common::{
    by_chunks, check_count, check_non_negative_at_most, check_positive, check_positive_at_most,
    setters, Epochs, MAX_LR, MAX_TIME_BUDGET, MAX_WEIGHT,
};
use super::ParamGuard;
use crate::data::{gather_rows, AsRows, Preprocessing, Preprocessor};
use crate::linalg::{gemm, norm, Mat};
use crate::models::{grid_inhibition, tree_inhibition};
use crate::solvers::{inhibited_codes, inhibited_codes_ista, Dictionary};
use crate::train::{
    train_inhibition_with, Checkpointing, InhibitionConfig, InhibitionInference, InhibitionModel,
};
use crate::{Error, Result};
use std::path::PathBuf;

/// Largest accepted number of units.
const MAX_UNITS: usize = 1 << 14;
/// Largest accepted inference sweep count.
const MAX_SWEEPS: usize = 1 << 20;
/// Relative tolerance of inference (as in training).
const TOLERANCE: f32 = 1e-3;

/// Which units inhibit which, and so the number of units.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum InhibitionStructure {
    /// The nodes of a complete tree; S_ij = `value` unless one of i, j is an ancestor of
    /// the other ([`tree_inhibition`]): active units lie on one root-to-leaf path. S fixed.
    Tree {
        /// Children per node.
        branching: usize,
        /// Levels.
        depth: usize,
    },
    /// `side × side` units on a wrap-around grid; S_ij = `value` beyond `radius`
    /// ([`grid_inhibition`]): a topographic map. S fixed.
    Grid {
        /// Units per side.
        side: usize,
        /// Radius of the uninhibited neighbourhood.
        radius: usize,
    },
    /// `units` units, S learned by projected gradient ascent from `value / 4` everywhere
    /// off the diagonal, each entry in `[0, value]`, its total fixed.
    Learned {
        /// Code units.
        units: usize,
    },
}

impl InhibitionStructure {
    fn initial(&self, value: f32) -> Result<Mat> {
        let s = match *self {
            InhibitionStructure::Tree { branching, depth } => {
                tree_inhibition(branching, depth, value)
            }
            InhibitionStructure::Grid { side, radius } => {
                grid_inhibition(side, side, radius, value)
            }
            InhibitionStructure::Learned { units } => {
                check_count("structure", units, MAX_UNITS)?;
                Ok(Mat::from_fn(units, units, |i, j| {
                    if i == j {
                        0.0
                    } else {
                        0.25 * value
                    }
                }))
            }
        };
        let s = s.map_err(|e| Error::param("structure", e.to_string()))?;
        check_count("structure", s.nrows(), MAX_UNITS)?;
        Ok(s)
    }

    #[cfg(feature = "safetensors")]
    fn settings(&self) -> Vec<(&'static str, String)> {
        match *self {
            InhibitionStructure::Tree { branching, depth } => vec![
                ("structure", "tree".into()),
                ("structure.branching", branching.to_string()),
                ("structure.depth", depth.to_string()),
            ],
            InhibitionStructure::Grid { side, radius } => vec![
                ("structure", "grid".into()),
                ("structure.side", side.to_string()),
                ("structure.radius", radius.to_string()),
            ],
            InhibitionStructure::Learned { units } => vec![
                ("structure", "learned".into()),
                ("structure.units", units.to_string()),
            ],
        }
    }

    #[cfg(feature = "safetensors")]
    fn from_file(f: &super::file::ModelFile) -> Result<InhibitionStructure> {
        Ok(match f.get::<String>("structure")?.as_str() {
            "tree" => InhibitionStructure::Tree {
                branching: f.count("structure.branching", MAX_UNITS)?,
                depth: f.count("structure.depth", 64)?,
            },
            "grid" => InhibitionStructure::Grid {
                side: f.count("structure.side", MAX_UNITS)?,
                radius: f.get("structure.radius")?,
            },
            "learned" => InhibitionStructure::Learned {
                units: f.count("structure.units", MAX_UNITS)?,
            },
            other => {
                return Err(Error::format(
                    "model file",
                    format!("metadata `structure` = {other:?}: expected tree, grid or learned"),
                ))
            }
        })
    }
}

/// A shrinking-neighbourhood schedule for a [`InhibitionStructure::Grid`] (as in Kohonen
/// maps): the first stage trains with S at radius `start`, each later one with the radius
/// one less, down to the structure's own, continuing the dictionary. Each stage runs the
/// configured epochs and an equal share of the time budget; its learning rate moves
/// geometrically from `lr` (first stage) to `lr_end` (last), and its shuffling seed counts
/// on from `seed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RadiusSchedule {
    /// The first stage's radius (at least the structure's).
    pub start: usize,
    /// The last stage's learning rate.
    pub lr_end: f32,
}

/// Validated [`InhibitionParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct InhibitionValidParams {
    structure: InhibitionStructure,
    value: f32,
    radius_schedule: Option<RadiusSchedule>,
    /// `config.epochs` is `epochs` resolved against `config.time_budget`.
    epochs: Epochs,
    config: InhibitionConfig,
    preprocessing: Preprocessor,
    zca: Option<f32>,
    checkpointing: Checkpointing,
}

/// Lateral-inhibition hyper-parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `structure` | `Tree { branching: 3, depth: 4 }` (40 units) | who inhibits whom | see [`InhibitionStructure`] |
/// | `inhibition` | 1.0 | the inhibition value (bound of learned entries) | (0, 10⁴] |
/// | `lambda` | 0.1 | L1 weight λ | [0, 10⁴] |
/// | `batch` | 100 | minibatch size | ≥ 1 |
/// | `lr` | 0.05 | SGD rate of the dictionary | (0, 10] |
/// | `lr_s` | 0.05 | ascent rate of S (structure `Learned` only) | [0, 10] |
/// | `sweeps` | 50 | inference sweeps (or ISTA iterations) per example, in training and encoding | ≥ 1 |
/// | `inference` | coordinate descent | code inference | |
/// | `epochs` | 20; under a `time_budget` without a count, as many as it allows | passes over the data (a maximum under a budget) | 1..=2²⁴ |
/// | `time_budget` | none | wall-clock seconds; the schedule follows the time spent | (0, 10⁷] |
/// | `seed` | 0 | initial atoms (random training rows) and shuffling | |
/// | `preprocessing` | `Contrast { floor: 0.05 }` | per-row transform, stored in the model | |
/// | `zca` | none | ZCA regulariser after the per-row step | > 0 |
/// | `radius_schedule` | none | grid only: stages of shrinking radius ([`RadiusSchedule`]) | start ≥ the radius; `lr_end` in (0, 10] |
/// | `checkpoint_dir`, `checkpoint_every`, `resume` | none, 0, false | checkpoints (single-stage runs) | |
///
/// The defaults are those of `drsae train inhibition --structure tree`.
#[derive(Clone, Debug, PartialEq)]
pub struct InhibitionParams(InhibitionValidParams);

impl Default for InhibitionParams {
    fn default() -> Self {
        InhibitionParams(InhibitionValidParams {
            structure: InhibitionStructure::Tree {
                branching: 3,
                depth: 4,
            },
            value: 1.0,
            radius_schedule: None,
            epochs: Epochs::default_of(InhibitionConfig::default().epochs),
            config: InhibitionConfig::default(),
            preprocessing: Preprocessor::Contrast { floor: 0.05 },
            zca: None,
            checkpointing: Checkpointing::default(),
        })
    }
}

impl InhibitionParams {
    setters! {
        /// Who inhibits whom.
        structure: InhibitionStructure => |p, v| p.structure = v;
        /// The inhibition value.
        inhibition: f32 => |p, v| p.value = v;
        /// L1 weight λ.
        lambda: f32 => |p, v| p.config.lambda = v;
        /// Minibatch size.
        batch: usize => |p, v| p.config.batch = v;
        /// SGD rate of the dictionary.
        lr: f32 => |p, v| p.config.lr_w = v;
        /// Ascent rate of a learned S.
        lr_s: f32 => |p, v| p.config.lr_s = v;
        /// Inference sweeps per example.
        sweeps: usize => |p, v| p.config.sweeps = v;
        /// Inference method.
        inference: InhibitionInference => |p, v| p.config.inference = v;
        /// Passes over the data (a maximum under a time budget; without it, a budget alone
        /// sets the run's length).
        epochs: usize => |p, v| {
            p.epochs.set(v);
            p.config.epochs = p.epochs.resolve(p.config.time_budget)
        };
        /// Wall-clock budget in seconds; the schedule follows the time spent.
        time_budget: f64 => |p, v| {
            p.config.time_budget = Some(v);
            p.config.epochs = p.epochs.resolve(p.config.time_budget)
        };
        /// Train a grid in stages of shrinking radius.
        radius_schedule: RadiusSchedule => |p, v| p.radius_schedule = Some(v);
        /// Seed of the initial atoms and of shuffling.
        seed: u64 => |p, v| p.config.seed = v;
        /// Per-row transform of every input, stored in the model.
        preprocessing: Preprocessor => |p, v| p.preprocessing = v;
        /// ZCA whitening after the per-row step, with this regulariser (`None`: none).
        zca: Option<f32> => |p, v| p.zca = v;
        /// Directory of `checkpoint.safetensors`, written atomically at every epoch end.
        checkpoint_dir: impl Into<PathBuf> => |p, v| p.checkpointing.dir = Some(v.into());
        /// Also checkpoint every this many steps.
        checkpoint_every: u64 => |p, v| p.checkpointing.every_steps = v;
        /// Continue from the checkpoint in `checkpoint_dir`, if there is one.
        resume: bool => |p, v| p.checkpointing.resume = v;
    }

    /// Checks the parameters, then trains on the rows of `x` (see
    /// [`InhibitionValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`InhibitionValidParams::fit`].
    pub fn fit(&self, x: impl AsRows) -> Result<Inhibition> {
        self.check_ref()?.fit(x)
    }
}

impl ParamGuard for InhibitionParams {
    type Checked = InhibitionValidParams;
    fn check_ref(&self) -> Result<&InhibitionValidParams> {
        let p = &self.0;
        let c = &p.config;
        check_positive_at_most("inhibition", p.value, MAX_WEIGHT)?;
        p.structure.initial(p.value)?;
        check_non_negative_at_most("lambda", c.lambda, MAX_WEIGHT)?;
        check_count("batch", c.batch, 1 << 20)?;
        check_positive_at_most("lr", c.lr_w, MAX_LR)?;
        check_non_negative_at_most("lr_s", c.lr_s, MAX_LR)?;
        check_count("sweeps", c.sweeps, MAX_SWEEPS)?;
        check_count("epochs", c.epochs, 1 << 24)?;
        if let Some(t) = c.time_budget {
            check_positive_at_most("time_budget", t, MAX_TIME_BUDGET)?;
        }
        p.preprocessing.check()?;
        if let Some(eps) = p.zca {
            check_positive("zca", eps)?;
        }
        p.checkpointing.check()?;
        if let Some(r) = p.radius_schedule {
            let InhibitionStructure::Grid { side, radius } = p.structure else {
                return Err(Error::param("radius_schedule", "needs a grid structure"));
            };
            if r.start < radius {
                return Err(Error::param(
                    "radius_schedule",
                    format!("start {} is below the grid's radius {radius}", r.start),
                ));
            }
            grid_inhibition(side, side, r.start, p.value)
                .map_err(|e| Error::param("radius_schedule", e.to_string()))?;
            check_positive_at_most("radius_schedule", r.lr_end, MAX_LR)?;
            if p.checkpointing.dir.is_some() {
                return Err(Error::param(
                    "radius_schedule",
                    "checkpoints cover single-stage runs; drop checkpoint_dir",
                ));
            }
        }
        Ok(p)
    }
    fn check(self) -> Result<InhibitionValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl InhibitionValidParams {
    /// The structure of the inhibition matrix S.
    pub fn structure(&self) -> InhibitionStructure {
        self.structure
    }

    /// The inhibition strength (S's non-zero value, or its bound when learned).
    pub fn inhibition(&self) -> f32 {
        self.value
    }

    /// The shrinking-radius schedule, if any.
    pub fn radius_schedule(&self) -> Option<RadiusSchedule> {
        self.radius_schedule
    }

    /// The training configuration.
    pub fn config(&self) -> &InhibitionConfig {
        &self.config
    }

    /// The per-row preprocessing.
    pub fn preprocessing(&self) -> Preprocessor {
        self.preprocessing
    }

    /// The ZCA regulariser, if the inputs are whitened.
    pub fn zca(&self) -> Option<f32> {
        self.zca
    }

    /// Preprocesses the rows of `x`, starts from unit-norm copies of random (non-flat)
    /// training rows as atoms and the structure's S, and trains.
    ///
    /// # Errors
    /// Fewer rows than units, too few non-flat rows, non-finite values, a diverged
    /// training, checkpoint errors.
    pub fn fit(&self, x: impl AsRows) -> Result<Inhibition> {
        self.fit_with(x, |_, _, _| {})
    }

    /// [`InhibitionValidParams::fit`], calling `on_epoch(epoch, energy, seconds)` after
    /// each epoch (for progress reports).
    ///
    /// # Errors
    /// As [`InhibitionValidParams::fit`].
    pub fn fit_with(
        &self,
        x: impl AsRows,
        mut on_epoch: impl FnMut(usize, f64, f64),
    ) -> Result<Inhibition> {
        // Rows at the input's own width (the atoms take it), checked finite.
        let mut x = x.to_own_rows()?;
        let preprocessing = Preprocessing::fit(self.preprocessing, self.zca, &mut x);
        // The radii of the stages: the structure's alone, or a schedule's down to it.
        let radii: Vec<usize> = match (self.radius_schedule, self.structure) {
            (Some(r), InhibitionStructure::Grid { radius, .. }) => {
                (radius..=r.start).rev().collect()
            }
            _ => Vec::new(),
        };
        let s = match (radii.first(), self.structure) {
            (Some(&r), InhibitionStructure::Grid { side, .. }) => {
                grid_inhibition(side, side, r, self.value)?
            }
            _ => self.structure.initial(self.value)?,
        };
        let n = s.nrows();
        let w = initial_atoms(&x, n, self.config.seed)?;
        let learned = matches!(self.structure, InhibitionStructure::Learned { .. });
        let stages = radii.len().max(1);
        let config = InhibitionConfig {
            lr_s: if learned { self.config.lr_s } else { 0.0 },
            beta: if learned { self.value } else { f32::MAX },
            time_budget: self.config.time_budget.map(|t| t / stages as f64),
            ..self.config.clone()
        };
        let mut model = InhibitionModel { w, s, mask: None };
        let mut energies = Vec::new();
        let start = std::time::Instant::now();
        train_inhibition_with(
            &mut model,
            &x,
            &config,
            &self.checkpointing,
            |epoch, st, secs| {
                energies.push(st.energy);
                on_epoch(epoch, st.energy, secs);
            },
        )?;
        // Later stages: the next radius's S, the rate moving geometrically to `lr_end`,
        // the shuffling seed counting on; epochs and seconds reported count on too.
        if let (Some(r), InhibitionStructure::Grid { side, .. }) =
            (self.radius_schedule, self.structure)
        {
            for (stage, &radius) in radii.iter().enumerate().skip(1) {
                model.s = grid_inhibition(side, side, radius, self.value)?;
                let f = stage as f32 / (stages - 1) as f32;
                let stage_config = InhibitionConfig {
                    lr_w: config.lr_w * (r.lr_end / config.lr_w).powf(f),
                    seed: config.seed.wrapping_add(stage as u64),
                    ..config.clone()
                };
                let (before, secs_before) = (energies.len(), start.elapsed().as_secs_f64());
                train_inhibition_with(
                    &mut model,
                    &x,
                    &stage_config,
                    &Checkpointing::default(),
                    |epoch, st, secs| {
                        energies.push(st.energy);
                        on_epoch(before + epoch, st.energy, secs_before + secs);
                    },
                )?;
            }
        }
        Ok(Inhibition {
            dictionary: model.w,
            s: model.s,
            structure: self.structure,
            lambda: config.lambda,
            sweeps: config.sweeps,
            inference: config.inference,
            preprocessing,
            energies,
        })
    }
}

/// `n` unit-norm atoms (m × n) copied from distinct-draw random rows of `x` whose norm is
/// above 1e-3 (flat inputs are zero after contrast normalisation).
fn initial_atoms(x: &Mat, n: usize, seed: u64) -> Result<Mat> {
    use rand::Rng;
    let usable = x.rows().filter(|r| norm(r) > 1e-3).count();
    if x.nrows() < n || usable == 0 {
        return Err(Error::param(
            "data",
            format!(
                "{} rows ({usable} not flat) for {n} units: need at least one row per unit",
                x.nrows()
            ),
        ));
    }
    let mut rng = crate::rng::seeded(seed);
    let mut rows = Vec::with_capacity(n);
    while rows.len() < n {
        let r = rng.gen_range(0..x.nrows());
        if norm(x.row(r)) > 1e-3 {
            rows.push(r);
        }
    }
    let mut atoms = Mat::zeros(n, x.ncols());
    gather_rows(x, &rows, &mut atoms);
    Ok(Dictionary::from_unit_rows(&atoms)?.atoms().clone())
}

/// A fitted lateral-inhibition coder: the dictionary W (m × n, unit columns), the
/// inhibition matrix S and the preprocessing of its inputs; codes are inferred by the
/// training's method and sweep count.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// # fn main() -> drsae::Result<()> {
/// let x = Mat::from_fn(300, 16, |i, j| (((i * 7 + j * 5) % 13) as f32).sin());
/// let model = Inhibition::params()
///     .structure(InhibitionStructure::Tree { branching: 2, depth: 3 }) // 7 units
///     .epochs(2)
///     .fit(&x)?;
/// let codes = model.encode(x.row(0))?;
/// assert_eq!(codes.shape(), (1, 7));
/// assert_eq!(model.reconstruct(&x)?.shape(), (300, 16));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Inhibition {
    dictionary: Mat,
    s: Mat,
    structure: InhibitionStructure,
    lambda: f32,
    sweeps: usize,
    inference: InhibitionInference,
    preprocessing: Preprocessing,
    energies: Vec<f64>,
}

impl Inhibition {
    /// Default parameters (see [`InhibitionParams`]).
    pub fn params() -> InhibitionParams {
        InhibitionParams::default()
    }

    /// The dictionary W, m × n, unit-norm columns.
    pub fn dictionary(&self) -> &Mat {
        &self.dictionary
    }

    /// The inhibition matrix S, n × n.
    pub fn inhibition(&self) -> &Mat {
        &self.s
    }

    /// Who inhibits whom.
    pub fn structure(&self) -> InhibitionStructure {
        self.structure
    }

    /// The L1 weight λ.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// The transform applied to every input.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Training energy sums of every epoch (empty for a loaded model).
    pub fn energies(&self) -> &[f64] {
        &self.energies
    }

    /// Input length m.
    pub fn input_dim(&self) -> usize {
        self.dictionary.nrows()
    }

    /// Code units n.
    pub fn hidden(&self) -> usize {
        self.dictionary.ncols()
    }

    /// The codes of every input row (rows × n): a local minimum of the energy from zero.
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values.
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.input_dim())?;
        self.preprocessing.apply(&mut x);
        let infer = match self.inference {
            InhibitionInference::CoordinateDescent => inhibited_codes,
            InhibitionInference::Ista => inhibited_codes_ista,
        };
        let mut failure = None;
        let z = by_chunks(&x, self.hidden(), |c| {
            let mut z = Mat::zeros(c.nrows(), self.hidden());
            if let Err(e) = infer(
                &self.dictionary,
                &self.s,
                c,
                &mut z,
                self.lambda,
                self.sweeps,
                TOLERANCE,
            ) {
                failure.get_or_insert(e);
            }
            z
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(z),
        }
    }

    /// The reconstructions `W z` of every input row (rows × m), in the preprocessed space.
    ///
    /// # Errors
    /// As [`Inhibition::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let z = self.encode(x)?;
        let mut out = Mat::zeros(z.nrows(), self.input_dim());
        gemm(1.0, z.view(), self.dictionary.t(), 0.0, out.view_mut());
        Ok(out)
    }
}

#[cfg(feature = "safetensors")]
impl Inhibition {
    /// Tensors `W` (m × n), `S` (n × n); metadata `lambda`, `sweeps`, `inference`
    /// (`cd` or `ista`) and the structure (`structure` = tree/grid/learned and its sizes).
    fn encode_file(&self) -> Result<Vec<u8>> {
        let (m, n) = self.dictionary.shape();
        let mut settings = self.structure.settings();
        settings.push(("lambda", self.lambda.to_string()));
        settings.push(("sweeps", self.sweeps.to_string()));
        let inference = match self.inference {
            InhibitionInference::CoordinateDescent => "cd",
            InhibitionInference::Ista => "ista",
        };
        settings.push(("inference", inference.into()));
        super::file::to_bytes(
            "inhibition",
            vec![
                ("W".into(), vec![m, n], self.dictionary.as_slice().to_vec()),
                ("S".into(), vec![n, n], self.s.as_slice().to_vec()),
            ],
            settings,
            &self.preprocessing,
        )
    }

    fn decode_file(bytes: &[u8]) -> Result<Inhibition> {
        let mut f = super::file::ModelFile::parse(bytes, "inhibition")?;
        let structure = InhibitionStructure::from_file(&f)?;
        let s_shape = f.shape("S")?;
        let n = match s_shape[..] {
            [a, b] if a == b && (1..=MAX_UNITS).contains(&a) => a,
            _ => return Err(Error::format("model file", "tensor `S` is not n × n")),
        };
        let m = match f.shape("W")?[..] {
            [m, cols] if cols == n && m > 0 => m,
            _ => return Err(Error::format("model file", "tensor `W` is not m × n")),
        };
        let dictionary = f.matrix("W", m, n)?;
        let s = f.matrix("S", n, n)?;
        crate::solvers::check_inhibition(&s, n)
            .map_err(|e| Error::format("model file", e.to_string()))?;
        let inference = match f.get::<String>("inference")?.as_str() {
            "cd" => InhibitionInference::CoordinateDescent,
            "ista" => InhibitionInference::Ista,
            other => {
                return Err(Error::format(
                    "model file",
                    format!("metadata `inference` = {other:?}: expected cd or ista"),
                ))
            }
        };
        let lambda = f.weight("lambda")?;
        let sweeps = f.count("sweeps", MAX_SWEEPS)?;
        let preprocessing = f.preprocessing(m)?;
        f.finish()?;
        Ok(Inhibition {
            dictionary,
            s,
            structure,
            lambda,
            sweeps,
            inference,
            preprocessing,
            energies: Vec::new(),
        })
    }
}

#[cfg(feature = "safetensors")]
super::file::model_file_methods!(Inhibition, "inhibition");

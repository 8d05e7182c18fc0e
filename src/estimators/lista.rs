//! The LISTA estimator: [`ListaEncoder::params`] → [`ListaParams`] → `fit(&lasso, &x)` →
//! [`ListaEncoder`], a learned, truncated ISTA that predicts a fitted [`Lasso`]'s codes.

use super::common::{
    by_chunks, check_count, check_positive_at_most, setters, Epochs, MAX_EPOCHS, MAX_LR,
    MAX_TIME_BUDGET,
};
use super::{Lasso, ParamGuard};
use crate::data::{AsRows, Preprocessing};
use crate::linalg::{gemm, Mat};
use crate::models::Lista;
use crate::solvers::Solver;
use crate::train::{train_lista_with, Checkpointing, ListaConfig, Optimizer, Schedule};
use crate::Result;
use std::path::PathBuf;

/// Largest accepted iteration count T.
const MAX_ITERS: usize = 1000;
/// Largest accepted minibatch.
const MAX_BATCH: usize = 1 << 20;

/// Validated LISTA parameters (see [`ListaParams`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ListaValidParams {
    iters: usize,
    /// `config.epochs` is `epochs` resolved against `config.time_budget`.
    epochs: Epochs,
    config: ListaConfig,
    checkpointing: Checkpointing,
}

/// LISTA hyper-parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `iters` | 3 | iterations T (the encoder applies T + 1 shrinks) | 1..=1000 |
/// | `epochs` | 30; under a `time_budget` without a count, as many as it allows | passes over the training inputs (a maximum under a budget) | 1..=2²⁴ |
/// | `batch` | 50 | minibatch size | 1..=2²⁰ |
/// | `optimizer` | Adam (0.9, 0.999, 1e-8) | update rule | |
/// | `lr` | 1e-3 | base learning rate | (0, 10] |
/// | `schedule` | cosine to 0 | over the epochs (over the time, under a budget alone) | |
/// | `time_budget` | none | wall-clock seconds | (0, 10⁷] |
/// | `seed` | 0 | shuffling | |
/// | `checkpoint_dir` | none | write `checkpoint.safetensors` there at every epoch end | |
/// | `checkpoint_every` | 0 | also every this many steps | |
/// | `resume` | false | continue from the checkpoint in `checkpoint_dir` | |
///
/// `fit(&lasso, &x)` starts from the ISTA correspondence of the lasso's dictionary and λ
/// ([`Lista::from_ista`]) and trains the network to predict the lasso's exact codes of the
/// rows of `x` (computed by `lasso`, after its preprocessing, which the model keeps).
#[derive(Clone, Debug, PartialEq)]
pub struct ListaParams(ListaValidParams);

impl Default for ListaParams {
    fn default() -> Self {
        ListaParams(ListaValidParams {
            iters: 3,
            epochs: Epochs::default_of(30),
            config: ListaConfig {
                epochs: 30,
                batch: 50,
                ..ListaConfig::default()
            },
            checkpointing: Checkpointing::default(),
        })
    }
}

impl ListaParams {
    setters! {
        /// Iterations T.
        iters: usize => |p, v| p.iters = v;
        /// Passes over the training inputs (a maximum under a time budget; without it, a
        /// budget alone sets the run's length).
        epochs: usize => |p, v| {
            p.epochs.set(v);
            p.config.epochs = p.epochs.resolve(p.config.time_budget)
        };
        /// Wall-clock budget in seconds; the schedule follows the time spent.
        time_budget: f64 => |p, v| {
            p.config.time_budget = Some(v);
            p.config.epochs = p.epochs.resolve(p.config.time_budget)
        };
        /// Minibatch size.
        batch: usize => |p, v| p.config.batch = v;
        /// Update rule.
        optimizer: Optimizer => |p, v| p.config.optimizer = v;
        /// Base learning rate.
        lr: f32 => |p, v| p.config.lr = v;
        /// Learning-rate schedule.
        schedule: Schedule => |p, v| p.config.schedule = v;
        /// Shuffling seed.
        seed: u64 => |p, v| p.config.seed = v;
        /// Directory of `checkpoint.safetensors`, written atomically at every epoch end.
        checkpoint_dir: impl Into<PathBuf> => |p, v| p.checkpointing.dir = Some(v.into());
        /// Also checkpoint every this many optimisation steps.
        checkpoint_every: u64 => |p, v| p.checkpointing.every_steps = v;
        /// Continue from the checkpoint in `checkpoint_dir`, if there is one.
        resume: bool => |p, v| p.checkpointing.resume = v;
    }

    /// Checks the parameters, then trains (see [`ListaValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`ListaValidParams::fit`].
    pub fn fit(&self, lasso: &Lasso, x: impl AsRows) -> Result<ListaEncoder> {
        self.check_ref()?.fit(lasso, x)
    }
}

impl ParamGuard for ListaParams {
    type Checked = ListaValidParams;
    fn check_ref(&self) -> Result<&ListaValidParams> {
        let p = &self.0;
        check_count("iters", p.iters, MAX_ITERS)?;
        check_count("epochs", p.config.epochs, MAX_EPOCHS)?;
        check_count("batch", p.config.batch, MAX_BATCH)?;
        check_positive_at_most("lr", p.config.lr, MAX_LR)?;
        if let Some(t) = p.config.time_budget {
            check_positive_at_most("time_budget", t, MAX_TIME_BUDGET)?;
        }
        p.config.optimizer.check()?;
        p.checkpointing.check()?;
        Ok(p)
    }
    fn check(self) -> Result<ListaValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl ListaValidParams {
    /// The trainer configuration (epochs, minibatch, optimiser, rate, schedule, seed).
    pub fn config(&self) -> &ListaConfig {
        &self.config
    }

    /// Iterations T.
    pub fn iters(&self) -> usize {
        self.iters
    }

    /// Computes `lasso`'s codes of the rows of `x` as targets and trains a LISTA of
    /// [`ListaParams::iters`] iterations, initialised from ISTA, to predict them.
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values, no rows, a non-finite loss
    /// ([`Error::Diverged`](crate::Error::Diverged)), checkpoint errors.
    pub fn fit(&self, lasso: &Lasso, x: impl AsRows) -> Result<ListaEncoder> {
        let (x, preprocessing) = prepare_training(lasso, x)?;
        let (targets, _) = lasso.solve_prepared(&x)?;
        self.fit_targets(lasso, &x, &targets, preprocessing)
    }

    /// Trains on rows `x` already preprocessed (by `preprocessing`) towards `targets`.
    fn fit_targets(
        &self,
        lasso: &Lasso,
        x: &Mat,
        targets: &Mat,
        preprocessing: Preprocessing,
    ) -> Result<ListaEncoder> {
        let mut network = Lista::from_ista(lasso.dictionary(), lasso.lambda(), self.iters);
        let history =
            train_lista_with(&mut network, x, targets, &self.config, &self.checkpointing)?;
        Ok(ListaEncoder {
            network,
            atoms: lasso.dictionary().atoms().clone(),
            lambda: lasso.lambda(),
            preprocessing,
            history,
        })
    }

    /// LISTA against FISTA and CoD as a function of the iteration count (the experiment of
    /// Gregor & LeCun's figure; BENCHMARKS.md "LISTA against FISTA and CoD").
    ///
    /// The targets are `lasso`'s codes z* of the rows of `train` and of `test` (fit `lasso`
    /// with the exact solver for exact codes). For every T in `1..=max_iters` a LISTA of T
    /// iterations is trained on `train` (these parameters with `iters` = T and seed
    /// `seed ^ T`, initialised from ISTA) and, on the held-out rows `test`, the relative code
    /// error [`code_error`] `Σ‖z − z*‖² / Σ‖z*‖²` is measured for that LISTA and for FISTA and
    /// CoD on the same dictionary and λ (tolerance 0, so every iteration runs) with T + 1 and
    /// 10·(T + 1) iterations — T + 1 is LISTA's own computation: T + 1 shrinks and T
    /// products by S. Also found: the fewest FISTA iterations, on the grid 1..=20,
    /// 25..=100 by 5, 120..=400 by 20, whose error is at most LISTA's.
    ///
    /// `on_row(row, lista)` is called after each T with its row and its trained LISTA.
    /// Returns the rows, T = 1 first.
    ///
    /// # Errors
    /// `max_iters` of 0 or above 1000, checkpoint settings (several networks are trained:
    /// none is checkpointed), rows of the wrong length or non-finite values, no training or
    /// held-out rows, a diverged training.
    pub fn compare_solvers(
        &self,
        lasso: &Lasso,
        train: impl AsRows,
        test: impl AsRows,
        max_iters: usize,
        mut on_row: impl FnMut(&ListaComparison, ListaEncoder),
    ) -> Result<Vec<ListaComparison>> {
        check_count("max_iters", max_iters, MAX_ITERS)?;
        if self.checkpointing != Checkpointing::default() {
            return Err(crate::Error::param(
                "checkpoint_dir",
                "compare_solvers trains one network per T and checkpoints none",
            ));
        }
        let (train, preprocessing) = prepare_training(lasso, train)?;
        let (train_targets, _) = lasso.solve_prepared(&train)?;
        let mut test = test.to_rows(lasso.input_dim())?;
        if test.nrows() == 0 {
            return Err(crate::Error::param("data", "no held-out rows"));
        }
        preprocessing.apply(&mut test);
        let (target, _) = lasso.solve_prepared(&test)?;
        let baseline = |solver: Solver, iters: usize| -> Result<f64> {
            Ok(code_error(
                &lasso.solve_prepared_with(&test, solver, iters, 0.0)?,
                &target,
            ))
        };
        let fista_curve: Vec<(usize, f64)> = (1..=20)
            .chain((25..=100).step_by(5))
            .chain((120..=400).step_by(20))
            .map(|k| Ok((k, baseline(Solver::Fista, k)?)))
            .collect::<Result<_>>()?;
        let mut rows = Vec::with_capacity(max_iters);
        for t in 1..=max_iters {
            let mut params = self.clone();
            params.iters = t;
            params.config.seed = self.config.seed ^ t as u64;
            let model = params.fit_targets(lasso, &train, &train_targets, preprocessing.clone())?;
            let network = &model.network;
            let lista = code_error(
                &by_chunks(&test, model.hidden(), |c| network.encode(c)),
                &target,
            );
            let row = ListaComparison {
                iters: t,
                lista,
                fista: baseline(Solver::Fista, t + 1)?,
                fista_10x: baseline(Solver::Fista, 10 * (t + 1))?,
                cod: baseline(Solver::Cod, t + 1)?,
                cod_10x: baseline(Solver::Cod, 10 * (t + 1))?,
                fista_iters_to_match: fista_curve
                    .iter()
                    .find(|(_, e)| *e <= lista)
                    .map(|(k, _)| *k),
            };
            on_row(&row, model);
            rows.push(row);
        }
        Ok(rows)
    }
}

/// The rows of `x`, checked and preprocessed as `lasso` does, and that preprocessing.
fn prepare_training(lasso: &Lasso, x: impl AsRows) -> Result<(Mat, Preprocessing)> {
    let mut x = x.to_rows(lasso.input_dim())?;
    if x.nrows() == 0 {
        return Err(crate::Error::param("data", "no training rows"));
    }
    let preprocessing = Preprocessing::per_row(lasso.preprocessing());
    preprocessing.apply(&mut x);
    Ok((x, preprocessing))
}

/// The relative code error `Σ‖z − z*‖² / Σ‖z*‖²` of codes `z` against `target` (the sums
/// over every entry, in f64; the denominator at least 1e-30).
pub fn code_error(z: &Mat, target: &Mat) -> f64 {
    let num: f64 = z
        .as_slice()
        .iter()
        .zip(target.as_slice())
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let den: f64 = target.as_slice().iter().map(|b| (*b as f64).powi(2)).sum();
    num / den.max(1e-30)
}

/// One iteration count T of [`ListaValidParams::compare_solvers`]: every method's
/// [`code_error`] on the held-out rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ListaComparison {
    /// LISTA's iterations T.
    pub iters: usize,
    /// The LISTA of T iterations.
    pub lista: f64,
    /// FISTA, T + 1 iterations.
    pub fista: f64,
    /// FISTA, 10·(T + 1) iterations.
    pub fista_10x: f64,
    /// CoD, T + 1 iterations (each n coordinate steps).
    pub cod: f64,
    /// CoD, 10·(T + 1) iterations.
    pub cod_10x: f64,
    /// The fewest FISTA iterations (on the grid of
    /// [`ListaValidParams::compare_solvers`]) reaching LISTA's error; `None`: not within
    /// 400.
    pub fista_iters_to_match: Option<usize>,
}

/// A fitted LISTA: the network, the dictionary whose lasso codes it predicts (for
/// [`ListaEncoder::reconstruct`]) and the preprocessing of its inputs.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// # fn main() -> drsae::Result<()> {
/// let mnist = Mnist::load("data/mnist-sample")?;
/// let atoms = mnist.train.images.row_range(0, 50).to_owned();
/// let lasso = Lasso::params().lambda(0.3).unit_atoms(true).preprocessing(Preprocessor::UnitL2).fit(&atoms)?;
/// let train = mnist.train.images.row_range(50, 1050);
/// let lista = ListaEncoder::params().iters(2).epochs(5).fit(&lasso, &train)?;
/// let codes = lista.encode(mnist.test.images.row(0))?; // one image, raw pixels
/// assert_eq!(codes.shape(), (1, 50));
/// assert!(lista.losses().last() < lista.losses().first()); // it learned
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ListaEncoder {
    network: Lista,
    atoms: Mat,
    lambda: f32,
    preprocessing: Preprocessing,
    history: Vec<f64>,
}

impl ListaEncoder {
    /// Default parameters (see [`ListaParams`]).
    pub fn params() -> ListaParams {
        ListaParams::default()
    }

    /// The trained network (W_e, S, θ).
    pub fn network(&self) -> &Lista {
        &self.network
    }

    /// The dictionary, m × n, one atom per column.
    pub fn atoms(&self) -> &Mat {
        &self.atoms
    }

    /// The L1 weight λ of the lasso it was trained to imitate.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// The transform applied to every input.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Mean training loss `½‖z − z*‖²` of every epoch (empty for a loaded model).
    pub fn losses(&self) -> &[f64] {
        &self.history
    }

    /// Input length m.
    pub fn input_dim(&self) -> usize {
        self.atoms.nrows()
    }

    /// Code units n.
    pub fn hidden(&self) -> usize {
        self.network.hidden()
    }

    fn prepare(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.input_dim())?;
        self.preprocessing.apply(&mut x);
        Ok(x)
    }

    /// The codes of every input row (rows × n).
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values.
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        let x = self.prepare(x)?;
        Ok(by_chunks(&x, self.hidden(), |c| self.network.encode(c)))
    }

    /// The reconstructions `D z` of every input row (rows × m), in the preprocessed space.
    ///
    /// # Errors
    /// As [`ListaEncoder::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let z = self.encode(x)?;
        let mut out = Mat::zeros(z.nrows(), self.input_dim());
        gemm(1.0, z.view(), self.atoms.t(), 0.0, out.view_mut());
        Ok(out)
    }
}

#[cfg(feature = "safetensors")]
impl ListaEncoder {
    /// Tensors `We` (n × m), `S` (n × n), `theta` (n), `D` (m × n); metadata `iters`,
    /// `lambda`.
    fn encode_file(&self) -> Result<Vec<u8>> {
        let (n, m) = (self.hidden(), self.input_dim());
        let l = &self.network;
        super::file::to_bytes(
            "lista",
            vec![
                ("We".into(), vec![n, m], l.we.as_slice().to_vec()),
                ("S".into(), vec![n, n], l.s.as_slice().to_vec()),
                ("theta".into(), vec![n], l.theta.clone()),
                ("D".into(), vec![m, n], self.atoms.as_slice().to_vec()),
            ],
            vec![
                ("iters", l.iters.to_string()),
                ("lambda", self.lambda.to_string()),
            ],
            &self.preprocessing,
        )
    }

    fn decode_file(bytes: &[u8]) -> Result<ListaEncoder> {
        let mut f = super::file::ModelFile::parse(bytes, "lista")?;
        let shape = f.shape("We")?;
        let [n, m] = shape[..] else {
            return Err(crate::Error::format(
                "model file",
                "tensor `We` is not a matrix",
            ));
        };
        let network = Lista {
            we: f.matrix("We", n, m)?,
            s: f.matrix("S", n, n)?,
            theta: f.tensor("theta", &[n])?,
            iters: f.count("iters", MAX_ITERS)?,
        };
        let atoms = f.matrix("D", m, n)?;
        let lambda = f.weight("lambda")?;
        let preprocessing = f.preprocessing(m)?;
        f.finish()?;
        Ok(ListaEncoder {
            network,
            atoms,
            lambda,
            preprocessing,
            history: Vec::new(),
        })
    }
}

#[cfg(feature = "safetensors")]
super::file::model_file_methods!(ListaEncoder, "lista");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_error_is_relative_to_the_target() {
        let target = Mat::from_fn(2, 3, |i, j| (i + j) as f32);
        assert_eq!(code_error(&target, &target), 0.0);
        assert_eq!(code_error(&Mat::zeros(2, 3), &target), 1.0);
    }

    #[test]
    fn compare_solvers_gives_one_row_per_iteration_count() {
        let x = Mat::from_fn(260, 8, |i, j| (((i * 7 + j * 3) % 11) as f32 - 5.0) / 5.0);
        let lasso = Lasso::params()
            .lambda(0.1)
            .unit_atoms(true)
            .fit(&x.row_range(0, 10).to_owned())
            .unwrap();
        let train = x.row_range(10, 210).to_owned();
        let test = x.row_range(210, 260).to_owned();
        let params = ListaEncoder::params().epochs(2).check().unwrap();
        let mut models = Vec::new();
        let rows = params
            .compare_solvers(&lasso, &train, &test, 2, |row, lista| {
                models.push((row.iters, lista.network().iters));
            })
            .unwrap();
        assert_eq!(models, [(1, 1), (2, 2)]);
        assert_eq!(rows.iter().map(|r| r.iters).collect::<Vec<_>>(), [1, 2]);
        for r in &rows {
            for e in [r.lista, r.fista, r.fista_10x, r.cod, r.cod_10x] {
                assert!(e.is_finite() && e >= 0.0, "{r:?}");
            }
            // The exact codes are reached by FISTA long before 400 iterations here.
            assert!(r.fista_iters_to_match.is_some_and(|k| k <= 400), "{r:?}");
        }
        assert!(params
            .compare_solvers(&lasso, &train, &test, 0, |_, _| {})
            .is_err());
        let checkpointed = ListaEncoder::params().checkpoint_dir("x").check().unwrap();
        assert!(checkpointed
            .compare_solvers(&lasso, &train, &test, 1, |_, _| {})
            .is_err());
    }
}

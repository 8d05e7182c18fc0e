//! The LISTA estimator: [`ListaEncoder::params`] → [`ListaParams`] → `fit(&lasso, &x)` →
//! [`ListaEncoder`], a learned, truncated ISTA that predicts a fitted [`Lasso`]'s codes.

use super::common::{
    by_chunks, check_checkpointing, check_count, check_positive_at_most, setters, MAX_LR,
};
use super::{Lasso, ParamGuard};
use crate::data::{AsRows, Preprocessing};
use crate::linalg::{gemm, Mat};
use crate::models::Lista;
use crate::train::{train_lista_with, Checkpointing, ListaConfig, Optimizer, Schedule};
use crate::Result;
use std::path::PathBuf;

/// Largest accepted iteration count T.
const MAX_ITERS: usize = 1000;
/// Largest accepted minibatch.
const MAX_BATCH: usize = 1 << 20;
/// Largest accepted epoch count.
const MAX_EPOCHS: usize = 1 << 24;

/// Validated LISTA parameters (see [`ListaParams`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ListaValidParams {
    iters: usize,
    config: ListaConfig,
    checkpointing: Checkpointing,
}

/// LISTA hyper-parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `iters` | 3 | iterations T (the encoder applies T + 1 shrinks) | 1..=1000 |
/// | `epochs` | 30 | passes over the training inputs | ≥ 1 |
/// | `batch` | 50 | minibatch size | 1..=2²⁰ |
/// | `optimizer` | Adam (0.9, 0.999, 1e-8) | update rule | |
/// | `lr` | 1e-3 | base learning rate | (0, 10] |
/// | `schedule` | cosine to 0 | over the epochs | |
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
        /// Passes over the training inputs.
        epochs: usize => |p, v| p.config.epochs = v;
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
        p.config.optimizer.check()?;
        check_checkpointing(&p.checkpointing)?;
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
        let mut x = x.to_rows(lasso.input_dim())?;
        if x.nrows() == 0 {
            return Err(crate::Error::param("data", "no training rows"));
        }
        let preprocessing = Preprocessing::per_row(lasso.preprocessing());
        preprocessing.apply(&mut x);
        let (targets, _) = lasso.solve_prepared(&x)?;
        let mut network = Lista::from_ista(lasso.dictionary(), lasso.lambda(), self.iters);
        let history = train_lista_with(
            &mut network,
            &x,
            &targets,
            &self.config,
            &self.checkpointing,
        )?;
        Ok(ListaEncoder {
            network,
            atoms: lasso.dictionary().atoms().clone(),
            lambda: lasso.lambda(),
            preprocessing,
            history,
        })
    }
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

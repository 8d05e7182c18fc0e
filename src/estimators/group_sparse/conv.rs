//! The convolutional group-sparse estimator: feature maps of shared filters, grouped by L2
//! pooling over windows of positions ([`Groups::spatial_pools`]).

use super::options::{group_option_setters, GroupFitReport, GroupOptions};
use crate::data::{AsRows, Preprocessing, Preprocessor};
use crate::estimators::common::{by_chunks, check_count};
use crate::estimators::ParamGuard;
use crate::kernels::{ConvShape, Groups};
use crate::linalg::Mat;
use crate::models::{ConvAe, ConvAeWorkspace};
use crate::{Error, Result};

/// Largest accepted image side, channel count, kernel side or number of maps.
const MAX_SIZE: usize = 1 << 12;

/// Validated [`ConvolutionalParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvolutionalValidParams {
    image: (usize, usize, usize),
    kernel: usize,
    maps: usize,
    pool: usize,
    weighted: bool,
    opts: GroupOptions,
}

/// Convolutional group-sparse auto-encoder hyper-parameters, unchecked.
///
/// | Name | Default | Meaning | Range |
/// |---|---|---|---|
/// | `image` | (28, 28, 1) | input height, width, channels (rows are channels-last images) | ≥ 1 |
/// | `kernel` | 5 | filter side k | 1..=min(height, width) |
/// | `maps` | 16 | feature maps | ≥ 1 |
/// | `pool` | 2 | L2-pooling window side and stride over positions | 1..=map side |
/// | `weighted` | true | weight the reconstruction by the border coverage | |
/// | `lambda` | 0.05 | weight λ of the group term | [0, 10⁴] |
/// | `batch` | 32 | minibatch size | 1..=2²⁰ |
/// | `epochs` | 30; under a `time_budget` without a count, as many as it allows | passes over the data (a maximum under a budget) | 1..=2²⁴ |
/// | `optimizer` | Adam (0.9, 0.999, 1e-8) | update rule | |
/// | `lr` | 2e-3 | base learning rate, cosine decay to 5 % | (0, 10] |
/// | `time_budget` | none | wall-clock seconds; the schedule follows the time spent | (0, 10⁷] |
/// | `seed` | 0 | initialisation and shuffling | |
/// | `form` | ReLU | encoder non-linearity | |
/// | `preprocessing` | [`Preprocessor::Identity`] | per-row transform, stored in the model | |
/// | `zca` | none | ZCA regulariser after the per-row step | > 0 |
/// | `checkpoint_dir`, `checkpoint_every`, `resume` | none, 0, false | checkpoints | |
/// | `progress` | false | one line per epoch on stderr | |
///
/// The defaults are layer 1 of `drsae train conv` on MNIST. PSD training (`psd`) is for
/// dense models only: setting it here is an invalid parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvolutionalParams(ConvolutionalValidParams);

impl Default for ConvolutionalParams {
    fn default() -> Self {
        ConvolutionalParams(ConvolutionalValidParams {
            image: (28, 28, 1),
            kernel: 5,
            maps: 16,
            pool: 2,
            weighted: true,
            opts: GroupOptions::family(0.05, 32, 30, 2e-3, Preprocessor::Identity, None),
        })
    }
}

impl ConvolutionalParams {
    crate::estimators::common::setters! {
        /// Input height, width and channels.
        image: (usize, usize, usize) => |p, v| p.image = v;
        /// Filter side.
        kernel: usize => |p, v| p.kernel = v;
        /// Number of feature maps.
        maps: usize => |p, v| p.maps = v;
        /// Pooling window side (and stride).
        pool: usize => |p, v| p.pool = v;
        /// Weight the reconstruction by the border coverage.
        weighted: bool => |p, v| p.weighted = v;
    }
    group_option_setters!();

    /// Checks the parameters, then trains on the rows of `x`, each a channels-last image
    /// (see [`ConvolutionalValidParams::fit`]).
    ///
    /// # Errors
    /// An invalid parameter, or any error of [`ConvolutionalValidParams::fit`].
    pub fn fit(&self, x: impl AsRows) -> Result<Convolutional> {
        self.check_ref()?.fit(x)
    }
}

impl ConvolutionalValidParams {
    fn shape(&self) -> Result<ConvShape> {
        let (h, w, c) = self.image;
        ConvShape::new(h, w, c, self.kernel).map_err(|e| Error::param("kernel", e.to_string()))
    }
}

fn pool_groups(shape: &ConvShape, maps: usize, pool: usize) -> Result<Groups> {
    Groups::spatial_pools(shape.out_h(), shape.out_w(), maps, pool, pool, 1)
        .map_err(|e| Error::param("pool", e.to_string()))
}

impl ParamGuard for ConvolutionalParams {
    type Checked = ConvolutionalValidParams;
    fn check_ref(&self) -> Result<&ConvolutionalValidParams> {
        let p = &self.0;
        let (h, w, c) = p.image;
        for (name, v) in [
            ("image", h),
            ("image", w),
            ("image", c),
            ("kernel", p.kernel),
            ("maps", p.maps),
        ] {
            check_count(name, v, MAX_SIZE)?;
        }
        if p.kernel > h.min(w) {
            return Err(Error::param(
                "kernel",
                format!("{} larger than the {h}×{w} image", p.kernel),
            ));
        }
        let shape = p.shape()?;
        check_count("pool", p.pool, shape.out_h().min(shape.out_w()))?;
        pool_groups(&shape, p.maps, p.pool)?;
        if p.opts.psd.is_some() {
            return Err(Error::param(
                "psd",
                "the convolutional model has no PSD form",
            ));
        }
        p.opts.check()?;
        Ok(p)
    }
    fn check(self) -> Result<ConvolutionalValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl ConvolutionalValidParams {
    /// Filter side.
    pub fn kernel(&self) -> usize {
        self.kernel
    }

    /// Number of feature maps.
    pub fn maps(&self) -> usize {
        self.maps
    }

    /// Pooling window side (and stride).
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

    /// Preprocesses the rows of `x` (images of `height·width·channels` values,
    /// channels-last), initialises a [`ConvAe`] and trains it.
    ///
    /// # Errors
    /// Rows of the wrong length, no rows, non-finite values, a diverged or collapsed
    /// training, checkpoint errors.
    pub fn fit(&self, x: impl AsRows) -> Result<Convolutional> {
        self.fit_with(x, |_, _, _| {})
    }

    /// [`ConvolutionalValidParams::fit`], calling `on_epoch(epoch, mean loss, seconds)` after each
    /// epoch (for progress reports).
    ///
    /// # Errors
    /// As [`ConvolutionalValidParams::fit`].
    pub fn fit_with(
        &self,
        x: impl AsRows,
        mut on_epoch: impl FnMut(usize, f64, f64),
    ) -> Result<Convolutional> {
        let start = std::time::Instant::now();
        let shape = self.shape()?;
        let (x, preprocessing) = self.opts.prepare(x, shape.image_len())?;
        let groups = pool_groups(&shape, self.maps, self.pool)?;
        let mut rng = crate::rng::seeded(self.opts.seed);
        let mut model = ConvAe::init(shape, self.maps, self.opts.form, &mut rng);
        model.weighted = self.weighted;
        let report = self
            .opts
            .train(&mut model, &x, &groups, start, &mut on_epoch)?;
        Ok(Convolutional {
            model,
            pool: self.pool,
            groups,
            lambda: self.opts.lambda,
            preprocessing,
            report: Some(report),
        })
    }
}

/// A fitted convolutional group-sparse auto-encoder: the [`ConvAe`], its pooling groups and
/// the preprocessing of its inputs. [`Convolutional::pooled`] gives the features a stacked
/// layer or a classifier reads.
///
/// # Examples
/// ```
/// use drsae::prelude::*;
/// # fn main() -> drsae::Result<()> {
/// let mnist = Mnist::load("data/mnist-sample")?;
/// let images = mnist.train.images.row_range(0, 200);
/// let layer = Convolutional::params().maps(4).epochs(1).fit(&images)?;
/// let pooled = layer.pooled(mnist.test.images.row(0))?; // 12 × 12 × 4 pooled maps
/// assert_eq!(pooled.shape(), (1, 12 * 12 * 4));
/// assert_eq!(layer.reconstruct(&mnist.test.images.row_range(0, 3))?.shape(), (3, 784));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Convolutional {
    model: ConvAe,
    pool: usize,
    groups: Groups,
    lambda: f32,
    preprocessing: Preprocessing,
    report: Option<GroupFitReport>,
}

impl Convolutional {
    /// Default parameters (see [`ConvolutionalParams`]).
    pub fn params() -> ConvolutionalParams {
        ConvolutionalParams::default()
    }

    /// The trained auto-encoder.
    pub fn model(&self) -> &ConvAe {
        &self.model
    }

    /// The pooling groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The pooled map size `(height, width)`; [`Convolutional::pooled`] has
    /// `height·width·maps` values per image.
    pub fn pooled_size(&self) -> (usize, usize) {
        let s = &self.model.shape;
        Groups::pooled_size(s.out_h(), s.out_w(), self.pool, self.pool)
    }

    /// The transform applied to every input.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// What training measured (`None` for a loaded model).
    pub fn report(&self) -> Option<&GroupFitReport> {
        self.report.as_ref()
    }

    /// Input length `height·width·channels`.
    pub fn input_dim(&self) -> usize {
        self.model.shape.image_len()
    }

    /// Code units per image, `out_h·out_w·maps`.
    pub fn hidden(&self) -> usize {
        self.model.shape.positions() * self.model.maps()
    }

    fn prepare(&self, x: impl AsRows) -> Result<Mat> {
        let mut x = x.to_rows(self.input_dim())?;
        self.preprocessing.apply(&mut x);
        Ok(x)
    }

    /// The feature maps of every input image (rows × `out_h·out_w·maps`, channels-last).
    ///
    /// # Errors
    /// Rows of the wrong length or non-finite values.
    pub fn encode(&self, x: impl AsRows) -> Result<Mat> {
        let x = self.prepare(x)?;
        let mut ws = ConvAeWorkspace::default();
        let n = self.hidden();
        Ok(by_chunks(&x, n, |c| {
            let z = self.model.encode(c, &mut ws);
            Mat::from_vec(c.nrows(), n, z.as_slice().to_vec())
        }))
    }

    /// The L2-pooled feature maps of every input image (rows × `ph·pw·maps`,
    /// channels-last): the input of a stacked layer.
    ///
    /// # Errors
    /// As [`Convolutional::encode`].
    pub fn pooled(&self, x: impl AsRows) -> Result<Mat> {
        let x = self.prepare(x)?;
        let mut ws = ConvAeWorkspace::default();
        Ok(by_chunks(&x, self.groups.len(), |c| {
            self.model.pooled(c, &self.groups, &mut ws)
        }))
    }

    /// The reconstructions of every input image (rows × input length), in the
    /// preprocessed space.
    ///
    /// # Errors
    /// As [`Convolutional::encode`].
    pub fn reconstruct(&self, x: impl AsRows) -> Result<Mat> {
        let x = self.prepare(x)?;
        let mut ws = ConvAeWorkspace::default();
        Ok(by_chunks(&x, self.input_dim(), |c| {
            self.model.reconstruct(c, &self.groups, &mut ws)
        }))
    }
}

#[cfg(feature = "safetensors")]
impl Convolutional {
    /// Tensors `W` (maps × k·k·C), `bias`, `gain` (maps), `D` (k·k·C × maps); metadata
    /// `form`, `lambda`, `height`, `width`, `channels`, `kernel`, `pool`, `weighted`.
    fn encode_file(&self) -> Result<Vec<u8>> {
        let s = &self.model.shape;
        crate::estimators::file::to_bytes(
            "convolutional",
            super::options::owned_params(&self.model),
            vec![
                ("form", super::options::form_name(self.model.form).into()),
                ("lambda", self.lambda.to_string()),
                ("height", s.height.to_string()),
                ("width", s.width.to_string()),
                ("channels", s.channels.to_string()),
                ("kernel", s.kernel.to_string()),
                ("pool", self.pool.to_string()),
                ("weighted", self.model.weighted.to_string()),
            ],
            &self.preprocessing,
        )
    }

    fn decode_file(bytes: &[u8]) -> Result<Convolutional> {
        let mut f = crate::estimators::file::ModelFile::parse(bytes, "convolutional")?;
        let bad = |e: Error| Error::format("model file", e.to_string());
        let (h, w, c) = (
            f.count("height", MAX_SIZE)?,
            f.count("width", MAX_SIZE)?,
            f.count("channels", MAX_SIZE)?,
        );
        let kernel = f.count("kernel", h.min(w))?;
        let shape = ConvShape::new(h, w, c, kernel).map_err(bad)?;
        let maps = match f.shape("W")?[..] {
            [maps, plen] if plen == shape.patch_len() && (1..=MAX_SIZE).contains(&maps) => maps,
            _ => {
                return Err(Error::format(
                    "model file",
                    "tensor `W` is not maps × (kernel²·channels)",
                ))
            }
        };
        let pool = f.count("pool", shape.out_h().min(shape.out_w()))?;
        let groups = pool_groups(&shape, maps, pool).map_err(bad)?;
        let plen = shape.patch_len();
        let model = ConvAe {
            shape,
            filters: f.matrix("W", maps, plen)?,
            bias: f.tensor("bias", &[maps])?,
            gain: f.tensor("gain", &[maps])?,
            dec: f.matrix("D", plen, maps)?,
            form: super::options::parse_form(&f.get::<String>("form")?)?,
            weighted: f.get("weighted")?,
        };
        let lambda = f.weight("lambda")?;
        let preprocessing = f.preprocessing(shape.image_len())?;
        f.finish()?;
        Ok(Convolutional {
            model,
            pool,
            groups,
            lambda,
            preprocessing,
            report: None,
        })
    }
}

#[cfg(feature = "safetensors")]
crate::estimators::file::model_file_methods!(Convolutional, "convolutional");

//! # drsae
//!
//! Sparse auto-encoders of Yann LeCun's group as fast, dependency-light Rust: sparse
//! inference for the lasso `min_z ½‖x − Dz‖² + λ‖z‖₁` (ISTA, FISTA, coordinate descent and an
//! exact active-set solver), the Discriminative Recurrent Sparse Auto-Encoder (DrSAE,
//! Rolfe & LeCun 2013) and LISTA (Gregor & LeCun 2010), group-sparse and topographic
//! auto-encoders — dense, locally-connected and convolutional, stackable (Kavukcuoglu et al.
//! 2009, 2010; Gregor & LeCun 2010) — and structured sparse coding by lateral inhibition
//! (Gregor, Szlam & LeCun 2011), with every gradient derived by hand.
//!
//! ## The jobs, from the front door
//!
//! `use drsae::prelude::*;` brings in the estimators: `Family::params()` with consuming
//! setters, `fit(...)`, then a fitted model that keeps its preprocessing and takes raw
//! inputs, one row or many ([`estimators`] has the list and the pattern).
//!
//! **Solve a batch of lasso problems** over a dictionary of 100 digits:
//! ```
//! use drsae::prelude::*;
//! # fn main() -> drsae::Result<()> {
//! let mnist = Mnist::load("data/mnist-sample")?;
//! let atoms = mnist.train.images.row_range(0, 100).to_owned(); // one atom per row
//! let lasso = Lasso::params()
//!     .lambda(0.1)
//!     .solver(Solver::Exact)
//!     .unit_atoms(true)
//!     .preprocessing(Preprocessor::UnitL2)
//!     .fit(&atoms)?;
//! let (codes, stats) = lasso.solve(mnist.test.images.row_range(0, 50))?;
//! assert_eq!(codes.shape(), (50, 100));
//! assert!(stats.duality_gap <= 1e-5 * stats.objective && stats.mean_nnz < 30.0);
//! # Ok(()) }
//! ```
//!
//! **Train a DrSAE, encode and classify** (here a small one on 2,000 images, a few
//! seconds; [`DrsaeParams`](estimators::DrsaeParams) lists every setting and its default):
//! ```
//! use drsae::prelude::*;
//! # fn main() -> drsae::Result<()> {
//! let mnist = Mnist::load("data/mnist-sample")?;
//! let model = Drsae::params()
//!     .hidden(64)
//!     .steps(5)
//!     .epochs_unsup(1)
//!     .epochs_sup(5)
//!     .fit(&mnist.train.take(2000))?; // holds out the last sixth for validation
//! let digit = model.predict(mnist.test.images.row(0))?[0]; // one image, raw pixels
//! let codes = model.encode(&mnist.test.images)?; // 10,000 × 64 sparse codes
//! let accuracy = model.score(&mnist.test.images, &mnist.test.labels)?;
//! assert!(digit < 10 && codes.nrows() == 10_000 && accuracy > 0.8, "{accuracy}");
//! # Ok(()) }
//! ```
//!
//! **Learn a topographic map**: a group-sparse auto-encoder whose groups are overlapping
//! 3 × 3 pools of units on an 8 × 8 torus, on 8 × 8 patches (contrast-normalised and
//! ZCA-whitened inside `fit`, as [`GroupSparseParams`](estimators::GroupSparseParams)
//! lists):
//! ```
//! use drsae::prelude::*;
//! # fn main() -> drsae::Result<()> {
//! let mnist = Mnist::load("data/mnist-sample")?;
//! let patches = mnist.train.take(2000).patches(8, 10_000, 0)?;
//! let map = GroupSparse::params()
//!     .layout(GroupLayout::Grid { side: 8, pool: 3, sigma: None })
//!     .epochs(10)
//!     .fit(&patches)?;
//! let orientations = map.orientation_map().expect("a grid of square filters");
//! // Neighbouring units prefer closer orientations than random pairs do.
//! assert!(orientations.neighbor_ratio < 1.0, "{}", orientations.neighbor_ratio);
//! let codes = map.encode(patches.row(0))?; // 64 codes of one patch
//! assert_eq!(codes.shape(), (1, 64));
//! # Ok(()) }
//! ```
//!
//! The other families — LISTA, locally-connected and convolutional auto-encoders, lateral
//! inhibition — follow the same pattern ([`estimators`] has the table).
//!
//! The layers, bottom up:
//! - [`simd`]: the run-time choice of instruction set (AVX-512, AVX2 + FMA, portable);
//! - [`linalg`]: dense f32 matrices, strided views, `C ← αAB + βC` through `matrixmultiply`;
//! - [`kernels`]: SIMD shrinkage and group-norm kernels, each with a scalar reference, and
//!   the im2col / col2im layout kernels of the convolutional models;
//! - [`solvers`]: batch lasso solvers over a cached Gram matrix;
//! - [`models`]: DrSAE and LISTA (parameters, forward, backward), group-sparse
//!   auto-encoders behind one [`models::GroupSparseModel`] trait, a softmax classifier,
//!   lateral-inhibition matrices;
//! - [`train`]: optimisers, hyper-parameters and training loops;
//! - [`data`]: IDX / PGM readers, patches, preprocessing, minibatches;
//! - [`io`]: model files (safetensors), atomic writes;
//! - [`analysis`]: orientation maps, pinwheels.
//! - [`rng`]: the generator behind every seed, named (ChaCha12) so that a seed gives the same
//!   model across dependency updates.
//!
//! ## Features
//! - `safetensors` (default): model files readable from PyTorch (`safetensors.torch.load_file`),
//!   SAELens / sparsify directories, `.safetensors` shards; the crate's own reader and writer,
//!   no dependency.
//! - `ndarray`: conversions between [`linalg::Mat`] / [`linalg::MatRef`] and `ndarray`'s
//!   `Array2` / `ArrayView2` (views without copying), and `ArrayView2` inputs for every
//!   fitted model.
//! - `fuzzing`: the invariant checks the cargo-fuzz targets in `fuzz/` call; not an API.
//!
//! ## Portability and performance
//! The instruction set is chosen at run time ([`simd`]): the CPU is examined once and every
//! hand-written kernel runs at the best level it supports, whatever `-C target-cpu` the
//! crate was built with — a dependent crate with the default x86-64 baseline runs the same
//! kernels as a native build.
//!
//! | CPU | kernels | large GEMMs |
//! | --- | --- | --- |
//! | x86-64 with AVX-512F (built with Rust ≥ 1.89) | AVX-512F, 16 lanes with FMA (the patch GEMMs and im2col in 8-lane vectors) | drsae's packed AVX-512 kernel (8 × 48 tiles) when C has a unit stride; matrixmultiply otherwise |
//! | x86-64 with AVX2 + FMA | AVX2, 8 lanes with FMA | matrixmultiply (its AVX2/FMA kernels) |
//! | other x86-64, aarch64, … | `wide::f32x8` as the build's target features allow (two SSE halves on the x86-64 baseline, NEON on aarch64) | matrixmultiply (its run-time choice) |
//!
//! `DRSAE_SIMD=portable|avx2|avx512` or [`simd::force`] select a lower level. Results differ
//! between levels only where fused multiply-adds or the summation order change the rounding
//! (a few units in the last place; see [`simd`]); within one level they do not depend on the
//! thread count. Still compiled for the build's own target features: the coordinate-descent
//! scan of the `CoD` solver, the group auto-encoder's bias/ReLU epilogues and the scalar
//! glue between kernels (auto-vectorised by LLVM), which is why this repository's
//! `.cargo/config.toml` still builds its own tests, examples and benches with
//! `-C target-cpu=native`.
//!
//! ## MSRV
//! Rust 1.75.

#![warn(missing_docs)]
// `!(x > 0.0)` is the NaN-rejecting form of a range check, used on purpose throughout.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Index loops over several equally-shaped buffers read better than zipped iterators here.
#![allow(clippy::needless_range_loop)]

pub mod analysis;
pub mod data;
mod error;
pub mod estimators;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod io;
pub mod kernels;
pub mod linalg;
pub mod models;
pub mod prelude;
pub mod rng;
pub mod simd;
pub mod solvers;
pub mod train;

pub use error::{check_finite, Compact, Error, Result};

/// The git commit this build of drsae comes from: `<12 hex digits>`, with `+dirty` when
/// tracked files had uncommitted changes, or `unknown` when the crate was not built from a
/// git checkout of its own (for example from a registry download). Results files record it
/// as their provenance.
pub const BUILD_COMMIT: &str = env!("DRSAE_GIT_COMMIT");
pub use estimators::{
    Convolutional, Drsae, GroupSparse, Inhibition, Lasso, ListaEncoder, LocallyConnected,
    ParamGuard, Sae,
};

/// The name of the SIMD level the kernels run at ([`simd::level`]): `"portable"`, `"avx2"`
/// or `"avx512"`.
pub fn simd_width() -> &'static str {
    simd::level().name()
}

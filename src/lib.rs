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
//!
//! ## Features
//! - `safetensors` (default): model files readable from PyTorch (`safetensors.torch.load_file`).
//!
//! ## Portability and performance
//! The SIMD kernels use `wide::f32x8`, whose width is fixed at compile time. This
//! repository's `.cargo/config.toml` builds with `-C target-cpu=native`, so on an AVX2 + FMA
//! machine `f32x8` is one AVX register and `mul_add` one FMA. A crate that depends on drsae
//! without enabling those target features gets the same results through two SSE halves per
//! `f32x8` (about half the kernel throughput); matrixmultiply selects AVX2/FMA GEMM kernels
//! at run time either way. To get full speed in a dependent crate, build it with
//! `RUSTFLAGS="-C target-cpu=native"` or `-C target-feature=+avx2,+fma`.
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
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
pub mod kernels;
pub mod linalg;
pub mod models;
pub mod simd;
pub mod solvers;
pub mod train;

pub use error::{check_finite, Error, Result};

/// The name of the SIMD level the kernels run at ([`simd::level`]): `"portable"`, `"avx2"`
/// or `"avx512"`.
pub fn simd_width() -> &'static str {
    simd::level().name()
}

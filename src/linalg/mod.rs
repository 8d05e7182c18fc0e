//! Dense linear algebra: matrices, views, GEMM and vector helpers.

mod gemm;
mod matrix;
mod ops;
mod pool;

pub use gemm::{gemm, gemm_reference, gemm_threads, set_gemm_threads};
pub use matrix::{Mat, MatMut, MatRef};
pub use ops::{axpy, clip_norm, dot, norm, norm_sq, scale, set_norm, sum};
pub(crate) use ops::{load8, store8};

mod eigen;
pub use eigen::symmetric_eigen;

//! Dense linear algebra: matrices, views, GEMM and vector helpers.

mod gemm;
mod matrix;
#[cfg(feature = "ndarray")]
mod ndarray_interop;
mod ops;
#[cfg(test)]
pub(crate) use ops::{axpy_at, dot_at};
#[cfg(all(target_arch = "x86_64", drsae_avx512))]
mod packed_gemm;
mod pool;
mod rank_update;
mod small_gemm;
pub(crate) mod sparse_gemm;

pub use gemm::{gemm, gemm_reference, gemm_threads, set_gemm_threads};
pub use matrix::{Mat, MatMut, MatRef};
pub use ops::{
    axpy, clip_norm, dot, norm, norm_sq, padded_stride, scale, set_norm, sum, transpose_into,
};
pub(crate) use ops::{dot_with, load8, store8, transpose_strided};
pub use rank_update::{clip_columns, clip_rows, rank_update_cols, rank_update_rows};
pub use sparse_gemm::{sparse_gemm, sparse_t_gemm};

mod eigen;
pub use eigen::symmetric_eigen;

/// Runs `f(part)` for every part in `0..parts` on the GEMM threads (the caller and the
/// pool's workers, each claiming the next free part) and returns when all are done. GEMMs called
/// inside a part run on one thread. For data-parallel work whose result must not depend on
/// the thread count: give each part its own output and combine them in part order.
pub(crate) fn parallel_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    pool::run(gemm_threads(), parts, f)
}

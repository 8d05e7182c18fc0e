//! SIMD kernels shared by every model: shrinkage (soft-threshold, ReLU-shrink), group
//! norms, and the im2col / col2im layout kernels and gathered (im2col-free) GEMMs of the
//! convolutional models, and the top-k selection of TopK sparse auto-encoders. Each has a
//! scalar reference it is tested against.
//!
//! This is the crate's low-level layer, public on purpose: for benchmarks (`benches/`
//! measures each kernel against its reference at every SIMD level) and for building models
//! the crate does not have. A program that trains or applies the crate's models never
//! needs it: the estimators of [`crate::prelude`] call it.

mod gather;
mod group_norm;
mod im2col;
mod patch_gemm;
mod shrink;
mod top_k;

pub use gather::{gather_axpy, gather_dot};
pub(crate) use group_norm::tree_size;
pub use group_norm::{prune_tree, Groups};
pub use im2col::{col2im_add, im2col, ConvShape};
pub use patch_gemm::{
    gathered_gemm, gathered_gemm_relu, gathered_gemm_scatter, gathered_gemm_tn, GatherIndex,
    Gathered, GatheredMut,
};
pub use shrink::{
    shrink, shrink_backward, shrink_backward_reference, shrink_in_place, shrink_mask,
    shrink_mask_reference, shrink_reference, Shrink, Theta,
};
pub use top_k::{
    nth_largest, top_k_positive, top_k_positive_among, top_k_positive_reference, Selected,
};

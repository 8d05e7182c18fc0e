//! SIMD kernels shared by every model: shrinkage (soft-threshold, ReLU-shrink), group
//! norms, and the im2col / col2im layout kernels of the convolutional models. Each has a scalar reference it is tested against.

mod group_norm;
mod im2col;
mod shrink;

pub(crate) use group_norm::tree_size;
pub use group_norm::Groups;
pub use im2col::{col2im_add, im2col, ConvShape};
pub use shrink::{
    shrink, shrink_backward, shrink_backward_reference, shrink_in_place, shrink_mask,
    shrink_mask_reference, shrink_reference, Shrink, Theta,
};

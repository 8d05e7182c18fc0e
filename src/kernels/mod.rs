//! SIMD kernels shared by every model: shrinkage (soft-threshold, ReLU-shrink) and group
//! norms. Each has a scalar reference it is tested against.

mod group_norm;
mod shrink;

pub(crate) use group_norm::tree_size;
pub use group_norm::Groups;
pub use shrink::{
    shrink, shrink_backward, shrink_backward_reference, shrink_in_place, shrink_mask,
    shrink_mask_reference, shrink_reference, Shrink, Theta,
};

//! Analysis of trained models: orientation maps (preferred orientation, map smoothness,
//! pinwheels).

mod orientation;

pub use orientation::{
    count_pinwheels, neighbor_orientation_ratio, orientation_difference, preferred_orientation,
    Boundary, OrientationMap,
};

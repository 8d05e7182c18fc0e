//! Structured sparse coding by lateral inhibition (Gregor, Szlam & LeCun, NIPS 2011):
//! dictionary W (m × n) and inhibition matrix S (n × n, symmetric, ≥ 0, zero diagonal) of
//! the energy `E(x, z) = ½‖x − Wz‖² + λ‖z‖₁ + |z|ᵀS|z|` (inference:
//! [`crate::solvers::inhibited_codes`]).
//!
//! S is set by hand (tree or grid form) or learned: per minibatch, codes z* minimise the
//! energy; W takes a gradient-descent step on `E` (columns renormalised) and S a projected
//! gradient-**ascent** step (`∂E/∂S_ij = |z_i||z_j|`: units that fire together inhibit each
//! other more).
//!
//! **Projection of S** (after each ascent step): symmetrise, zero the diagonal and the
//! entries outside the structural mask (if any), clip to [0, β], then rescale the free
//! entries so that their sum stays at its initial value (clip and rescale alternate a few
//! times). Why: ascent alone grows S without bound (the energy is linear in S); a fixed
//! total turns the update into a redistribution of a fixed inhibition budget toward the
//! pairs that co-activate, and the bound β keeps any single pair from taking it all.

use crate::linalg::{gemm, Mat};
use crate::{Error, Result};

/// S for a complete tree of units (`branching` children, `depth` levels, breadth-first
/// numbering as [`crate::kernels::Groups::tree`]): `S_ij = 0` when i is an ancestor or descendant of j (or
/// i = j), `value` otherwise. Active sets of low energy then lie on one root-to-leaf path.
pub fn tree_inhibition(branching: usize, depth: usize, value: f32) -> Result<Mat> {
    let n = crate::kernels::tree_size(branching, depth)
        .filter(|&n| n <= 4096)
        .ok_or_else(|| Error::param("tree", "need branching, depth ≥ 1 and at most 4096 nodes"))?;
    let mut s = Mat::filled(n, n, value);
    for i in 0..n {
        // Walk up from i: every ancestor a gets S_ia = S_ai = 0.
        s[(i, i)] = 0.0;
        let mut a = i;
        while a > 0 {
            a = (a - 1) / branching;
            s[(i, a)] = 0.0;
            s[(a, i)] = 0.0;
        }
    }
    Ok(s)
}

/// True when tree node `i` is an ancestor of `j`, `j` of `i`, or `i == j`.
pub fn tree_related(branching: usize, i: usize, j: usize) -> bool {
    let (lo, mut hi) = (i.min(j), i.max(j));
    while hi > lo {
        hi = (hi - 1) / branching;
    }
    hi == lo
}

/// S for units on a `width × height` grid (wrapping): `S_ij = 0` when the units are within
/// `radius` of each other in both directions, `value` otherwise.
pub fn grid_inhibition(width: usize, height: usize, radius: usize, value: f32) -> Result<Mat> {
    if width == 0 || height == 0 || width * height > 4096 {
        return Err(Error::param("grid", "need 1 to 4096 units"));
    }
    let n = width * height;
    let dist = |a: usize, b: usize, len: usize| {
        let d = a.abs_diff(b);
        d.min(len - d)
    };
    Ok(Mat::from_fn(n, n, |i, j| {
        let (xi, yi, xj, yj) = (i % width, i / width, j % width, j / width);
        if dist(xi, xj, width) <= radius && dist(yi, yj, height) <= radius {
            0.0
        } else {
            value
        }
    }))
}

/// Projects `s` onto {symmetric, zero diagonal, zero outside `mask` (where mask is 0),
/// 0 ≤ S_ij ≤ beta, Σ S = total} (approximately for the sum: clip and rescale alternate
/// five times; the result always satisfies the first four exactly).
pub fn project_inhibition(s: &mut Mat, mask: Option<&Mat>, beta: f32, total: f32) {
    let n = s.nrows();
    for i in 0..n {
        s[(i, i)] = 0.0;
        for j in 0..i {
            let allowed = mask.map_or(true, |m| m[(i, j)] != 0.0);
            let v = if allowed {
                0.5 * (s[(i, j)] + s[(j, i)])
            } else {
                0.0
            };
            s[(i, j)] = v;
            s[(j, i)] = v;
        }
    }
    for _ in 0..5 {
        s.as_mut_slice()
            .iter_mut()
            .for_each(|v| *v = v.clamp(0.0, beta));
        let sum: f32 = s.as_slice().iter().sum();
        if sum > 0.0 && total > 0.0 {
            let f = total / sum;
            s.as_mut_slice().iter_mut().for_each(|v| *v *= f);
        }
    }
    s.as_mut_slice()
        .iter_mut()
        .for_each(|v| *v = v.clamp(0.0, beta));
}

/// Gradients of the batch-mean energy at fixed codes z (B × n) for inputs x (B × m):
/// `∂E/∂W = −(X − Z Wᵀ)ᵀ Z / B` and `∂E/∂S_ij = mean |z_i||z_j|` (zero on the diagonal).
pub fn inhibition_gradients(w: &Mat, x: &Mat, z: &Mat, dw: &mut Mat, ds: &mut Mat) {
    let batch = x.nrows().max(1) as f32;
    let mut r = x.clone();
    gemm(-1.0, z.view(), w.t(), 1.0, r.view_mut());
    gemm(-1.0 / batch, r.t(), z.view(), 0.0, dw.view_mut());
    let abs: Mat = Mat::from_vec(
        z.nrows(),
        z.ncols(),
        z.as_slice().iter().map(|v| v.abs()).collect(),
    );
    gemm(1.0 / batch, abs.t(), abs.view(), 0.0, ds.view_mut());
    for i in 0..ds.nrows() {
        ds[(i, i)] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_mask_is_zero_exactly_on_ancestor_pairs() {
        let (b, d) = (3, 3);
        let s = tree_inhibition(b, d, 0.7).unwrap();
        let n = s.nrows();
        assert_eq!(n, 13);
        for i in 0..n {
            for j in 0..n {
                assert_eq!(s[(i, j)] == 0.0, tree_related(b, i, j), "({i}, {j})");
            }
        }
        assert!(
            tree_related(3, 0, 12)
                && tree_related(3, 1, 4)
                && !tree_related(3, 1, 7)
                && !tree_related(3, 4, 5)
        );
    }

    #[test]
    fn projection_keeps_s_feasible() {
        let mut s = Mat::from_fn(6, 6, |i, j| (i as f32 - j as f32 * 0.5).sin() * 3.0);
        let mask = grid_inhibition(3, 2, 0, 1.0).unwrap();
        project_inhibition(&mut s, Some(&mask), 0.5, 4.0);
        for i in 0..6 {
            assert_eq!(s[(i, i)], 0.0);
            for j in 0..6 {
                assert_eq!(s[(i, j)], s[(j, i)]);
                assert!((0.0..=0.5).contains(&s[(i, j)]));
            }
        }
        let sum: f32 = s.as_slice().iter().sum();
        assert!((sum - 4.0).abs() < 0.2, "sum {sum}");
    }
}

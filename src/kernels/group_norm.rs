//! Group L2 norms `‖z_P‖_w = sqrt(Σ_{j∈P} w_j z_j²)` over a fixed family of groups, their
//! sum `ψ(z) = Σ_k ‖z_{P_k}‖_w` (the group-sparsity regulariser), its gradient and, for
//! disjoint unweighted groups, its proximal operator (block soft-threshold).
//!
//! One representation serves every group shape: a compressed list of (unit, weight) per
//! group. Disjoint contiguous unweighted blocks are detected and take a SIMD path.
//!
//! **Zero groups**: where `‖z_P‖ = 0` the subgradient set contains 0 and the gradient
//! contribution of that group is 0. **NaN** in z gives NaN norms.
//!
//! One file on purpose: the group representation, its scalar references, the per-level
//! kernels and the dispatching wrappers read together (about 620 lines of code; the rest
//! are the tests comparing every level with the reference).

use crate::linalg::dot_with;
use crate::simd::{dispatch, Isa, Kernel, Simd};

/// Groups per run of the SIMD path (see [`Groups`]'s `lanes`).
const LANES: usize = 8;
use crate::{Error, Result};

/// A fixed family of (possibly overlapping, weighted) groups over `n_units` units.
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    n_units: usize,
    offsets: Vec<usize>,
    members: Vec<u32>,
    weights: Vec<f32>,
    /// `Some(size)` when the groups are the contiguous blocks `[k·size, (k+1)·size)`,
    /// unweighted.
    block: Option<usize>,
    /// True when the groups come in runs of 8 consecutive groups whose member lists are
    /// the first one's shifted by 0..8 units (same weights): each run's 8 norms are then
    /// one SIMD computation over 8 adjacent units. Pools over channels-last maps (one map
    /// per group, a multiple of 8 maps) are such runs.
    lanes: bool,
}

impl Groups {
    /// Disjoint contiguous blocks of `size` units each.
    ///
    /// # Errors
    /// If `size` is 0 or does not divide `n_units`.
    pub fn disjoint(n_units: usize, size: usize) -> Result<Self> {
        if size == 0 || n_units % size != 0 {
            return Err(Error::param(
                "group size",
                format!("{size} must be ≥ 1 and divide {n_units} units"),
            ));
        }
        let lists = (0..n_units / size)
            .map(|k| (k * size..(k + 1) * size).map(|j| (j, 1.0)).collect())
            .collect();
        Self::from_lists(n_units, lists)
    }

    /// Overlapping square neighbourhoods on a `width × height` grid of units (unit
    /// `(x, y)` is index `y·width + x`), wrapping around at the borders: one group of
    /// `pool × pool` units for every `stride`-th grid position. With `sigma`, a member at
    /// offset (dx, dy) from the pool's centre has weight `exp(−(dx² + dy²)/(2σ²))`, else 1.
    ///
    /// # Errors
    /// If a size is 0, `pool` exceeds the grid, or `sigma` is not finite and > 0.
    pub fn grid(
        width: usize,
        height: usize,
        pool: usize,
        stride: usize,
        sigma: Option<f32>,
    ) -> Result<Self> {
        if width == 0 || height == 0 || pool == 0 || stride == 0 || pool > width.min(height) {
            return Err(Error::param("grid groups", format!("grid {width}×{height}, pool {pool}, stride {stride}: sizes must be ≥ 1 and the pool fit the grid")));
        }
        if let Some(s) = sigma {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::param(
                    "sigma",
                    format!("{} must be finite and > 0", crate::Compact(s)),
                ));
            }
        }
        let half = (pool as f32 - 1.0) / 2.0;
        let mut lists = Vec::new();
        for y0 in (0..height).step_by(stride) {
            for x0 in (0..width).step_by(stride) {
                let mut g = Vec::with_capacity(pool * pool);
                for dy in 0..pool {
                    for dx in 0..pool {
                        let (x, y) = ((x0 + dx) % width, (y0 + dy) % height);
                        let w = sigma.map_or(1.0, |s| {
                            let (ox, oy) = (dx as f32 - half, dy as f32 - half);
                            (-(ox * ox + oy * oy) / (2.0 * s * s)).exp()
                        });
                        g.push((y * width + x, w));
                    }
                }
                lists.push(g);
            }
        }
        Self::from_lists(width * height, lists)
    }

    /// L2-pooling groups over convolutional feature maps stored channels-last
    /// (`out_h × out_w × maps`, unit `(y·out_w + x)·maps + m`): one group for every
    /// `pool × pool` window of positions (stride `stride`, windows inside the map, no
    /// wrap-around) and every block of `maps_per_group` consecutive maps. Groups are
    /// numbered channels-last too, `(py·pw + px)·(maps / maps_per_group) + g`, so the group
    /// norms of one example are a pooled `ph × pw × (maps / maps_per_group)` image —
    /// the input of a stacked layer.
    ///
    /// # Errors
    /// If a size is 0, the pool exceeds the map, or `maps_per_group` does not divide `maps`.
    pub fn spatial_pools(
        out_h: usize,
        out_w: usize,
        maps: usize,
        pool: usize,
        stride: usize,
        maps_per_group: usize,
    ) -> Result<Self> {
        if out_h == 0
            || out_w == 0
            || maps == 0
            || pool == 0
            || stride == 0
            || maps_per_group == 0
            || pool > out_h.min(out_w)
            || maps % maps_per_group != 0
        {
            return Err(Error::param(
                "pooling groups",
                format!("{out_h}×{out_w}×{maps} maps, pool {pool}, stride {stride}, {maps_per_group} maps per group: sizes must be ≥ 1, the pool fit the map and the map blocks divide the maps"),
            ));
        }
        let (ph, pw) = Self::pooled_size(out_h, out_w, pool, stride);
        let mut lists = Vec::with_capacity(ph * pw * (maps / maps_per_group));
        for py in 0..ph {
            for px in 0..pw {
                for g in 0..maps / maps_per_group {
                    let mut list = Vec::with_capacity(pool * pool * maps_per_group);
                    for dy in 0..pool {
                        for dx in 0..pool {
                            let pos = (py * stride + dy) * out_w + px * stride + dx;
                            for m in g * maps_per_group..(g + 1) * maps_per_group {
                                list.push((pos * maps + m, 1.0));
                            }
                        }
                    }
                    lists.push(list);
                }
            }
        }
        Self::from_lists(out_h * out_w * maps, lists)
    }

    /// Overlapping square pools on an open `width × height` sheet of units (unit `(x, y)`
    /// is index `y·width + x`), without wrap-around: one group for every `pool × pool`
    /// window that overlaps the sheet, clipped to it. Every unit belongs to exactly `pool²`
    /// groups, as on a torus, so units at the edges are not cheaper to use than interior
    /// ones (with only the windows inside the sheet, edge units are in fewer groups and
    /// take over the code). Groups of clipped windows are smaller.
    ///
    /// # Errors
    /// If a size is 0 or the pool exceeds the sheet.
    pub fn sheet_pools(width: usize, height: usize, pool: usize) -> Result<Self> {
        if width == 0 || height == 0 || pool == 0 || pool > width.min(height) {
            return Err(Error::param(
                "sheet pools",
                format!("sheet {width}×{height}, pool {pool}: sizes must be ≥ 1 and the pool fit the sheet"),
            ));
        }
        let p = pool as isize;
        let mut lists = Vec::new();
        for y0 in 1 - p..height as isize {
            for x0 in 1 - p..width as isize {
                let mut g = Vec::with_capacity(pool * pool);
                for y in y0.max(0)..(y0 + p).min(height as isize) {
                    for x in x0.max(0)..(x0 + p).min(width as isize) {
                        g.push((y as usize * width + x as usize, 1.0));
                    }
                }
                lists.push(g);
            }
        }
        Self::from_lists(width * height, lists)
    }

    /// The pooled map size `(ph, pw)` of [`Groups::spatial_pools`].
    pub fn pooled_size(out_h: usize, out_w: usize, pool: usize, stride: usize) -> (usize, usize) {
        ((out_h - pool) / stride + 1, (out_w - pool) / stride + 1)
    }

    /// Tree groups: units are the nodes of a complete tree with `branching` children per
    /// node and `depth` levels (root = unit 0, breadth-first numbering), and every subtree
    /// (a node with all its descendants) is a group.
    ///
    /// # Errors
    /// If `branching` or `depth` is 0 or the tree has more than 2^20 nodes.
    pub fn tree(branching: usize, depth: usize) -> Result<Self> {
        let nodes = tree_size(branching, depth)
            .filter(|&n| n <= 1 << 20)
            .ok_or_else(|| {
                Error::param(
                    "tree",
                    format!(
                        "branching {branching}, depth {depth}: need ≥ 1 and at most 2^20 nodes"
                    ),
                )
            })?;
        let lists = (0..nodes)
            .map(|root| {
                let mut members = vec![(root, 1.0)];
                let mut k = 0;
                while k < members.len() {
                    let node = members[k].0;
                    for c in 1..=branching {
                        let child = node * branching + c;
                        if child < nodes {
                            members.push((child, 1.0));
                        }
                    }
                    k += 1;
                }
                members
            })
            .collect();
        Self::from_lists(nodes, lists)
    }

    /// Arbitrary groups, each a list of `(unit, weight)`.
    ///
    /// # Errors
    /// If a unit is out of range, repeated within a group, or a weight is not finite and > 0.
    pub fn from_lists(n_units: usize, groups: Vec<Vec<(usize, f32)>>) -> Result<Self> {
        let mut offsets = vec![0];
        let mut members = Vec::new();
        let mut weights = Vec::new();
        for (k, g) in groups.iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            for &(j, w) in g {
                if j >= n_units || !seen.insert(j) {
                    return Err(Error::param(
                        "groups",
                        format!("group {k}: unit {j} out of range or repeated"),
                    ));
                }
                if !(w.is_finite() && w > 0.0) {
                    return Err(Error::param(
                        "groups",
                        format!(
                            "group {k}: weight {} must be finite and > 0",
                            crate::Compact(w)
                        ),
                    ));
                }
                members.push(j as u32);
                weights.push(w);
            }
            offsets.push(members.len());
        }
        let mut out = Groups {
            n_units,
            offsets,
            members,
            weights,
            block: None,
            lanes: false,
        };
        out.block = out.detect_block();
        out.lanes = out.detect_lanes();
        Ok(out)
    }

    fn detect_lanes(&self) -> bool {
        let k = self.len();
        k > 0
            && k % LANES == 0
            && (0..k).step_by(LANES).all(|k0| {
                let (m0, w0) = self.group(k0);
                (1..LANES).all(|l| {
                    let (m, w) = self.group(k0 + l);
                    m.len() == m0.len()
                        && w == w0
                        && m.iter()
                            .zip(m0)
                            .all(|(&a, &b)| a as usize == b as usize + l)
                })
            })
    }

    fn detect_block(&self) -> Option<usize> {
        let k = self.len();
        if k == 0 || self.members.len() != self.n_units || self.n_units % k != 0 {
            return None;
        }
        let size = self.n_units / k;
        let contiguous = self
            .members
            .iter()
            .enumerate()
            .all(|(i, &j)| i == j as usize)
            && self.offsets.iter().enumerate().all(|(k, &o)| o == k * size)
            && self.weights.iter().all(|&w| w == 1.0);
        contiguous.then_some(size)
    }

    /// A short string identifying the family (sizes and an FNV-1a hash of the members and
    /// weights), for checkpoint fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |v: u64| {
            h ^= v;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        self.offsets.iter().for_each(|&o| mix(o as u64));
        self.members.iter().for_each(|&j| mix(j as u64));
        self.weights.iter().for_each(|w| mix(w.to_bits() as u64));
        format!("{}x{}:{h:016x}", self.len(), self.n_units)
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    /// True when there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of units the groups range over.
    pub fn n_units(&self) -> usize {
        self.n_units
    }
    /// The units of group `k` and their weights.
    pub fn group(&self, k: usize) -> (&[u32], &[f32]) {
        let r = self.offsets[k]..self.offsets[k + 1];
        (&self.members[r.clone()], &self.weights[r])
    }
    /// True when the groups are disjoint contiguous unweighted blocks.
    pub fn block_size(&self) -> Option<usize> {
        self.block
    }
    /// True when no unit belongs to two groups and all weights are 1.
    pub fn is_disjoint_unweighted(&self) -> bool {
        let mut seen = vec![false; self.n_units];
        self.weights.iter().all(|&w| w == 1.0)
            && self
                .members
                .iter()
                .all(|&j| !std::mem::replace(&mut seen[j as usize], true))
    }

    /// `out[k] ← ‖z_{P_k}‖_w` for one code vector `z` (SIMD for contiguous blocks and
    /// runs of 8 shifted groups).
    #[track_caller]
    pub fn norms(&self, z: &[f32], out: &mut [f32]) {
        self.norms_at(Isa::current(), z, out)
    }

    /// [`Groups::norms`] at the level `isa`.
    #[track_caller]
    pub(crate) fn norms_at(&self, isa: Isa, z: &[f32], out: &mut [f32]) {
        self.check(z, out);
        if self.block.is_some() || self.lanes {
            dispatch(
                isa,
                Norms {
                    groups: self,
                    z,
                    out,
                },
            )
        } else {
            self.norms_reference(z, out)
        }
    }

    /// Scalar reference of [`Groups::norms`].
    #[track_caller]
    pub fn norms_reference(&self, z: &[f32], out: &mut [f32]) {
        self.check(z, out);
        for (k, o) in out.iter_mut().enumerate() {
            let (m, w) = self.group(k);
            let s: f32 = m
                .iter()
                .zip(w)
                .map(|(&j, &w)| w * z[j as usize] * z[j as usize])
                .sum();
            *o = s.sqrt();
        }
    }

    /// `ψ(z) = Σ_k ‖z_{P_k}‖_w`; `norms` is a workspace of length `len()`.
    pub fn value(&self, z: &[f32], norms: &mut [f32]) -> f32 {
        self.norms(z, norms);
        crate::linalg::sum(norms)
    }

    /// `grad ← grad + scale·∂ψ/∂z` given the `norms` of `z` from [`Groups::norms`].
    /// Zero groups contribute 0.
    #[track_caller]
    pub fn add_gradient(&self, z: &[f32], norms: &[f32], scale: f32, grad: &mut [f32]) {
        self.add_gradient_at(Isa::current(), z, norms, scale, grad)
    }

    /// [`Groups::add_gradient`] at the level `isa`.
    #[track_caller]
    pub(crate) fn add_gradient_at(
        &self,
        isa: Isa,
        z: &[f32],
        norms: &[f32],
        scale: f32,
        grad: &mut [f32],
    ) {
        self.check(z, norms);
        assert_eq!(
            grad.len(),
            self.n_units,
            "gradient length {} for {} units",
            grad.len(),
            self.n_units
        );
        if self.lanes {
            let k = LaneGradient {
                groups: self,
                z,
                norms,
                scale,
                grad,
            };
            return dispatch(isa, k);
        }
        for (k, &nk) in norms.iter().enumerate() {
            if nk > 0.0 {
                let (m, w) = self.group(k);
                let f = scale / nk;
                for (&j, &w) in m.iter().zip(w) {
                    grad[j as usize] += f * w * z[j as usize];
                }
            }
        }
    }

    /// Block soft-threshold, the prox of `λψ` for disjoint unweighted groups:
    /// `z_P ← max(0, 1 − λ/‖v_P‖)·v_P` in place. Units in no group are left unchanged.
    ///
    /// # Panics
    /// If the groups overlap or are weighted (their prox has no closed form).
    #[track_caller]
    pub fn prox_in_place(&self, lambda: f32, v: &mut [f32]) {
        self.prox_in_place_at(Isa::current(), lambda, v)
    }

    /// [`Groups::prox_in_place`] at the level `isa`.
    #[track_caller]
    pub(crate) fn prox_in_place_at(&self, isa: Isa, lambda: f32, v: &mut [f32]) {
        assert_eq!(
            v.len(),
            self.n_units,
            "prox: {} values for {} units",
            v.len(),
            self.n_units
        );
        if let Some(size) = self.block {
            return dispatch(isa, BlockProx { size, lambda, v });
        }
        assert!(
            self.is_disjoint_unweighted(),
            "the block soft-threshold needs disjoint unweighted groups"
        );
        for k in 0..self.len() {
            let (m, _) = self.group(k);
            let n = m
                .iter()
                .map(|&j| v[j as usize] * v[j as usize])
                .sum::<f32>()
                .sqrt();
            let f = if n > lambda { 1.0 - lambda / n } else { 0.0 };
            m.iter().for_each(|&j| v[j as usize] *= f);
        }
    }

    #[track_caller]
    fn check(&self, z: &[f32], out: &[f32]) {
        assert!(
            z.len() == self.n_units && out.len() == self.len(),
            "group norms: z has {} values for {} units, out has {} for {} groups",
            z.len(),
            self.n_units,
            out.len(),
            self.len()
        );
    }
}

/// The SIMD norms: contiguous blocks (a dot product per block) or runs of 8 shifted groups
/// (8 norms per vector of the 8-lane set; AVX-512 runs these with its AVX2 half).
struct Norms<'a> {
    groups: &'a Groups,
    z: &'a [f32],
    out: &'a mut [f32],
}

impl Kernel for Norms<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Norms { groups, z, out } = self;
        if let Some(size) = groups.block {
            for (o, zb) in out.iter_mut().zip(z.chunks_exact(size)) {
                *o = dot_with(s, zb, zb).sqrt();
            }
            return;
        }
        // Same operations, in the same order, as `norms_reference`: (w·z)·z added to a
        // running sum from 0, no fused multiply-add, so every level gives its bits.
        let s8 = s.narrow();
        assert_eq!(<S::Narrow as Simd>::LANES, LANES);
        for (k0, o) in (0..groups.len())
            .step_by(LANES)
            .zip(out.chunks_exact_mut(LANES))
        {
            let (m, w) = groups.group(k0);
            let mut acc = s8.zero();
            for (&j, &w) in m.iter().zip(w) {
                let v = s8.load_s(&z[j as usize..]);
                acc = s8.add(acc, s8.mul(s8.mul(s8.splat(w), v), v));
            }
            s8.store_s(o, s8.sqrt(acc));
        }
    }
}

/// [`Groups::add_gradient`] for runs of 8 shifted groups.
struct LaneGradient<'a> {
    groups: &'a Groups,
    z: &'a [f32],
    norms: &'a [f32],
    scale: f32,
    grad: &'a mut [f32],
}

impl Kernel for LaneGradient<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let LaneGradient {
            groups,
            z,
            norms,
            scale,
            grad,
        } = self;
        let s8 = s.narrow();
        assert_eq!(<S::Narrow as Simd>::LANES, LANES);
        for (k0, nk) in (0..groups.len())
            .step_by(LANES)
            .zip(norms.chunks_exact(LANES))
        {
            let nk = s8.load_s(nk);
            // scale / ‖z_P‖ where ‖z_P‖ > 0, else 0 (zero groups, NaN)
            let zero = s8.zero();
            let f = s8.select_gt(nk, zero, s8.div(s8.splat(scale), nk), zero);
            let (m, w) = groups.group(k0);
            for (&j, &w) in m.iter().zip(w) {
                let j = j as usize;
                let step = s8.mul(s8.mul(f, s8.splat(w)), s8.load_s(&z[j..]));
                let g = s8.add(s8.load_s(&grad[j..]), step);
                s8.store_s(&mut grad[j..], g);
            }
        }
    }
}

/// The block soft-threshold over contiguous blocks of `size`.
struct BlockProx<'a> {
    size: usize,
    lambda: f32,
    v: &'a mut [f32],
}

impl Kernel for BlockProx<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let BlockProx { size, lambda, v } = self;
        for vb in v.chunks_exact_mut(size) {
            let n = dot_with(s, vb, vb).sqrt();
            let f = if n > lambda { 1.0 - lambda / n } else { 0.0 };
            let fv = s.splat(f);
            let mut c = vb.chunks_exact_mut(S::LANES);
            for x in &mut c {
                let r = s.mul(s.load_s(x), fv);
                s.store_s(x, r);
            }
            c.into_remainder().iter_mut().for_each(|x| *x *= f);
        }
    }
}

/// Number of nodes of a complete tree with `branching` children and `depth` levels.
pub(crate) fn tree_size(branching: usize, depth: usize) -> Option<usize> {
    if branching == 0 || depth == 0 {
        return None;
    }
    let (mut total, mut level) = (0usize, 1usize);
    for _ in 0..depth {
        total = total.checked_add(level)?;
        level = level.checked_mul(branching)?;
    }
    Some(total)
}

/// Tree pruning (the lecture's suggestion for tree groups): given, for every node of a
/// tree with `branching` children per node in breadth-first numbering ([`Groups::tree`]),
/// the fraction of examples on which its subtree is active (non-zero group norm), returns
/// which nodes to keep: a node goes with its pruned parent, or when its own subtree is
/// active on fewer than `threshold` of the examples. The root is always kept.
///
/// # Panics
/// If `branching` is 0.
pub fn prune_tree(branching: usize, subtree_activity: &[f64], threshold: f64) -> Vec<bool> {
    assert!(branching > 0, "a tree needs branching ≥ 1");
    let mut keep = vec![true; subtree_activity.len()];
    // Parents come before their children in breadth-first order.
    for k in 1..keep.len() {
        keep[k] = keep[(k - 1) / branching] && subtree_activity[k] >= threshold;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with the special cases (±0, denormals, ±inf, NaN) every third element.
    fn inputs(n: usize) -> Vec<f32> {
        let special = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE / 4.0,
            -f32::MIN_POSITIVE / 4.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.3,
            -1e30,
            3e-20,
        ];
        (0..n)
            .map(|i| {
                if i % 3 == 0 && i % 9 != 0 {
                    special[i / 3 % special.len()]
                } else {
                    (i as f32 * 0.37).sin() * 2.0
                }
            })
            .collect()
    }

    /// `got` equals `want` (NaN, inf included) or is within `rel` of it relatively. The SIMD
    /// block norms sum with fused multiply-adds in another order than the reference: each
    /// of the `size` partial sums can differ by about one rounding, so `‖z‖²` by
    /// `size·ε` relatively and `‖z‖` by half that.
    fn close(got: f32, want: f32, rel: f32) -> bool {
        got == want || (got.is_nan() && want.is_nan()) || (got - want).abs() <= rel * want.abs()
    }

    #[test]
    fn block_norms_and_prox_match_the_reference_on_every_level() {
        for isa in Isa::all() {
            for n in (1..=40).chain([257, 1031]) {
                for size in [1, 2, 3, 4, 5, 7, 8, 16, 17, n] {
                    if n % size != 0 {
                        continue;
                    }
                    let g = Groups::disjoint(n, size).unwrap();
                    let z = inputs(n);
                    let (mut a, mut b) = (vec![0.0; n / size], vec![0.0; n / size]);
                    g.norms_at(isa, &z, &mut a);
                    g.norms_reference(&z, &mut b);
                    let rel = size as f32 * f32::EPSILON;
                    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
                        assert!(
                            close(*x, *y, rel),
                            "{isa:?} n={n} size={size} k={k}: {x} {y}"
                        );
                    }
                    let lambda = 0.5;
                    let mut v = z.clone();
                    g.prox_in_place_at(isa, lambda, &mut v);
                    for (j, (&got, &zj)) in v.iter().zip(&z).enumerate() {
                        let nk = b[j / size];
                        let f = if nk > lambda { 1.0 - lambda / nk } else { 0.0 };
                        // f is computed from a norm within `rel`: f·z within ~2·rel/(1 − f)
                        // relatively, but f ≈ 0 can then differ absolutely by rel·|z|.
                        let want = zj * f;
                        let ok = close(got, want, 4.0 * rel / (1.0 - f).max(1e-3))
                            || (got - want).abs() <= 4.0 * rel * zj.abs();
                        assert!(ok, "prox {isa:?} n={n} size={size} j={j}: {got} {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_match_reference_and_singletons_give_l1() {
        for n in [1usize, 8, 24, 40, 256] {
            for size in [1usize, 2, 4, 8] {
                if n % size != 0 {
                    continue;
                }
                let g = Groups::disjoint(n, size).unwrap();
                assert_eq!(g.block_size(), Some(size));
                let z: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
                let (mut a, mut b) = (vec![0.0; n / size], vec![0.0; n / size]);
                g.norms(&z, &mut a);
                g.norms_reference(&z, &mut b);
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + y));
                }
                if size == 1 {
                    let l1: f32 = z.iter().map(|v| v.abs()).sum();
                    assert!((g.value(&z, &mut a) - l1).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences_with_overlap_and_weights() {
        let g = Groups::from_lists(
            5,
            vec![
                vec![(0, 1.0), (1, 0.5), (2, 2.0)],
                vec![(2, 1.0), (3, 1.0)],
                vec![(4, 1.0)],
            ],
        )
        .unwrap();
        assert_eq!(g.block_size(), None);
        let z = vec![0.3f32, -0.7, 0.2, 1.1, 0.0];
        let mut norms = vec![0.0; 3];
        g.norms(&z, &mut norms);
        let mut grad = vec![0.0; 5];
        g.add_gradient(&z, &norms, 1.0, &mut grad);
        let psi = |z: &[f64]| -> f64 {
            (0..g.len())
                .map(|k| {
                    let (m, w) = g.group(k);
                    m.iter()
                        .zip(w)
                        .map(|(&j, &w)| w as f64 * z[j as usize] * z[j as usize])
                        .sum::<f64>()
                        .sqrt()
                })
                .sum()
        };
        let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        for j in 0..4 {
            let (mut p, mut m) = (z64.clone(), z64.clone());
            p[j] += 1e-6;
            m[j] -= 1e-6;
            let fd = (psi(&p) - psi(&m)) / 2e-6;
            assert!(
                (fd - grad[j] as f64).abs() < 1e-4 * (1.0 + fd.abs()),
                "unit {j}: {fd} vs {}",
                grad[j]
            );
        }
        // Unit 4's group is zero: gradient 0 (the subgradient choice).
        assert_eq!(grad[4], 0.0);
    }

    #[test]
    fn lane_runs_match_the_scalar_path() {
        // 16 channels-last maps, 2 × 2 pools: runs of 8 shifted groups (SIMD path); the
        // same lists with one weight changed are not runs (scalar path).
        let g = Groups::spatial_pools(5, 5, 16, 2, 2, 1).unwrap();
        assert!(g.lanes);
        let n = g.n_units();
        let z: Vec<f32> = (0..n)
            .map(|i| {
                if i % 7 == 0 {
                    0.0
                } else {
                    ((i * 37 % 19) as f32 - 9.0) * 0.1
                }
            })
            .collect();
        let mut z0 = z.clone();
        z0[..16 * 10].iter_mut().for_each(|v| *v = 0.0); // zero groups in the first pool row
        for ((z, zeros), isa) in [(z, false), (z0, true)]
            .into_iter()
            .flat_map(|c| Isa::all().into_iter().map(move |i| (c.clone(), i)))
        {
            let (mut fast, mut slow) = (vec![0.0; g.len()], vec![0.0; g.len()]);
            g.norms_at(isa, &z, &mut fast);
            g.norms_reference(&z, &mut slow);
            // The lane path repeats the reference's operations: equal bits on every level.
            assert_eq!(fast, slow, "{isa:?}");
            assert_eq!(fast.contains(&0.0), zeros);
            let mut grad = vec![0.5; n];
            g.add_gradient_at(isa, &z, &fast, 0.3, &mut grad);
            let mut want = vec![0.5f32; n];
            for (k, &nk) in slow.iter().enumerate() {
                if nk > 0.0 {
                    let (m, w) = g.group(k);
                    for (&j, &w) in m.iter().zip(w) {
                        want[j as usize] += 0.3 / nk * w * z[j as usize];
                    }
                }
            }
            for (a, b) in grad.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} {b}");
            }
        }
        let lists: Vec<Vec<(usize, f32)>> = (0..g.len())
            .map(|k| {
                let (m, w) = g.group(k);
                let w0 = if k == 3 { 2.0 } else { 1.0 };
                m.iter()
                    .zip(w)
                    .map(|(&j, &w)| (j as usize, w * w0))
                    .collect()
            })
            .collect();
        assert!(!Groups::from_lists(n, lists).unwrap().lanes);
    }

    #[test]
    fn prox_against_brute_force() {
        // Prox of λ‖v‖ on one 2-D group: minimise ½‖z − v‖² + λ‖z‖ over a fine grid.
        let g = Groups::disjoint(2, 2).unwrap();
        for v in [[0.3f32, -0.4], [1.0, 2.0], [0.05, 0.0]] {
            let lambda = 0.3;
            let mut z = v.to_vec();
            g.prox_in_place(lambda, &mut z);
            let obj = |a: f64, b: f64| {
                0.5 * ((a - v[0] as f64).powi(2) + (b - v[1] as f64).powi(2))
                    + lambda as f64 * (a * a + b * b).sqrt()
            };
            let mut best = (f64::MAX, 0.0, 0.0);
            for i in -300..=300 {
                for j in -300..=300 {
                    let (a, b) = (i as f64 * 0.01, j as f64 * 0.01);
                    let o = obj(a, b);
                    if o < best.0 {
                        best = (o, a, b);
                    }
                }
            }
            assert!(obj(z[0] as f64, z[1] as f64) <= best.0 + 1e-6, "{v:?}");
        }
    }

    #[test]
    fn grid_and_tree_shapes() {
        let g = Groups::grid(4, 4, 3, 1, None).unwrap();
        assert_eq!(g.len(), 16);
        let (m, _) = g.group(15); // pool at (3, 3) wraps to (0..2)
        let mut units: Vec<u32> = m.to_vec();
        units.sort();
        assert_eq!(units, vec![0, 1, 3, 4, 5, 7, 12, 13, 15]);
        let gw = Groups::grid(4, 4, 3, 2, Some(1.0)).unwrap();
        assert_eq!(gw.len(), 4);
        assert!((gw.group(0).1[4] - 1.0).abs() < 1e-6 && gw.group(0).1[0] < 0.5);
        let t = Groups::tree(2, 3).unwrap();
        assert_eq!((t.n_units(), t.len()), (7, 7));
        let mut root: Vec<u32> = t.group(0).0.to_vec();
        root.sort();
        assert_eq!(root, (0..7).collect::<Vec<u32>>());
        assert_eq!(t.group(1).0, &[1, 3, 4]);
        assert_eq!(t.group(6).0, &[6]);
        assert!(Groups::grid(4, 4, 5, 1, None).is_err() && Groups::tree(0, 3).is_err());
        // Open sheet: every unit in exactly pool² groups, corner groups clipped to one unit.
        let s = Groups::sheet_pools(5, 4, 3).unwrap();
        assert_eq!(s.len(), 7 * 6);
        let mut count = vec![0; 20];
        for k in 0..s.len() {
            s.group(k).0.iter().for_each(|&j| count[j as usize] += 1);
        }
        assert!(count.iter().all(|&c| c == 9), "{count:?}");
        assert_eq!(s.group(0).0, &[0]);
        assert!(Groups::sheet_pools(2, 4, 3).is_err());
    }

    #[test]
    fn bad_groups_are_errors() {
        assert!(Groups::disjoint(10, 3).is_err());
        assert!(Groups::from_lists(3, vec![vec![(3, 1.0)]]).is_err());
        assert!(Groups::from_lists(3, vec![vec![(1, 1.0), (1, 1.0)]]).is_err());
        assert!(Groups::from_lists(3, vec![vec![(1, f32::NAN)]]).is_err());
    }

    #[test]
    fn pruning_removes_rare_branches_with_their_descendants() {
        // Binary tree of depth 3: 0; 1 2; 3 4 5 6. Node 2's subtree is rare, so 5 and 6 go
        // with it although they are frequent (impossible in practice, but the rule is
        // structural); leaf 4 is rare on its own.
        let rates = [1.0, 0.5, 0.01, 0.3, 0.001, 0.2, 0.2];
        assert_eq!(
            prune_tree(2, &rates, 0.02),
            vec![true, true, false, true, false, false, false]
        );
        assert!(prune_tree(2, &rates, 0.0).iter().all(|k| *k));
        // Threshold 1: only the root survives.
        assert_eq!(prune_tree(2, &rates, 1.0).iter().filter(|k| **k).count(), 1);
    }
}

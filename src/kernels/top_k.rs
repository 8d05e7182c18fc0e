//! Selection of the largest entries of a row: the activation of TopK sparse auto-encoders
//! (the `k` largest positive pre-activations of each row), of their AuxK loss (the largest
//! among the dead latents) and the candidate lists of BatchTopK's batch-wide selection.
//!
//! Ties are broken towards the lower index, so the selection is a function of the row alone:
//! of two equal values the one met first wins, and a value equal to the current k-th is not
//! taken. NaN is never selected (it compares false).

use crate::simd::{dispatch, max_s, Isa, Kernel, Simd};

/// A selected entry: the column and its value.
pub type Selected = (u32, f32);

/// The (at most) `k` largest **positive** entries of `row`, as `(column, value)` in
/// ascending column order, into `out` (cleared first). Fewer than `k` when the row has
/// fewer positive entries.
///
/// # Examples
/// ```
/// use drsae::kernels::top_k_positive;
/// let mut out = Vec::new();
/// top_k_positive(&[0.5, -1.0, 3.0, 0.5, 2.0], 3, &mut out);
/// assert_eq!(out, vec![(0, 0.5), (2, 3.0), (4, 2.0)]);
/// ```
pub fn top_k_positive(row: &[f32], k: usize, out: &mut Vec<Selected>) {
    out.clear();
    if k == 0 {
        return;
    }
    assert!(
        row.len() <= u32::MAX as usize,
        "row too long for u32 indices"
    );
    select(row, k, out);
}

/// The (at most) `k` largest positive entries of `row` among the columns `among`
/// (ascending), as `(column, value)` in ascending column order, into `out`.
///
/// # Panics
/// If a column of `among` is out of range.
pub fn top_k_positive_among(row: &[f32], among: &[u32], k: usize, out: &mut Vec<Selected>) {
    out.clear();
    if k == 0 {
        return;
    }
    // Gathered into a compact row: `among` ascends, so the compact order is the column
    // order and the selection (ties to the lower index) is the same.
    COMPACT.with(|c| {
        let mut compact = c.borrow_mut();
        compact.clear();
        compact.extend(among.iter().map(|&j| row[j as usize]));
        select(&compact, k, out);
    });
    for e in out.iter_mut() {
        e.0 = among[e.0 as usize];
    }
}

/// Chunks per selected entry the filter aims for: the more, the tighter its threshold and
/// the fewer candidates, but the longer the selection among the chunk maxima.
const CHUNKS_PER_K: usize = 16;
/// Values per chunk at most.
const MAX_CHUNK: usize = 64;
/// Lanes of the chunk-maxima kernel (its blocks are `LANES` chunks of `g` values each).
const LANES: usize = 8;

/// The selection. The row is cut into chunks of `g` values and each chunk's largest
/// positive value taken (0 for a chunk without one); `T`, the `k`-th largest of those
/// maxima, is at most the `k`-th largest entry (`k` chunks each hold an entry ≥ `T`), so
/// every selected entry is ≥ `T` and the candidates are the positive entries ≥ `T`, found
/// by scanning only the chunks whose maximum reaches it (at most `k` blocks). An exact
/// selection by (value descending, index ascending) among the candidates keeps `k`: the
/// threshold `t` (the `k`-th largest candidate value), every candidate above `t`, and the
/// first in index order of those equal to it. NaN is never a candidate (it compares false).
///
/// A chunk is the values at one lane of `g` consecutive vectors of [`LANES`] values (a
/// block), so the maxima need no horizontal reductions; the tail after the last whole block
/// is one more chunk.
fn select(row: &[f32], k: usize, out: &mut Vec<Selected>) {
    SCRATCH.with(|s| select_with(row, k, out, &mut s.borrow_mut()));
}

thread_local! {
    /// `top_k_positive_among`'s compact row, reused across calls.
    static COMPACT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// [`select`]'s buffers (chunk maxima, their bits, candidate values), reused across calls.
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Scratch { maxima: Vec::new(), bits: Vec::new(), values: Vec::new() }) };
}

/// Buffers of [`select`].
struct Scratch {
    maxima: Vec<f32>,
    bits: Vec<u32>,
    values: Vec<f32>,
}

fn select_with(row: &[f32], k: usize, out: &mut Vec<Selected>, sc: &mut Scratch) {
    let Scratch {
        maxima,
        bits,
        values,
    } = sc;
    let len = row.len();
    let g = (len / (CHUNKS_PER_K * k).max(1)).clamp(1, MAX_CHUNK);
    let block = LANES * g;
    let blocks = len / block;
    let body = blocks * block;
    maxima.clear();
    dispatch(
        Isa::current(),
        Maxima {
            row: &row[..body],
            g,
            out: maxima,
        },
    );
    let tail_max = row[body..].iter().fold(0.0f32, |m, &v| max_s(v, m));
    maxima.push(tail_max);
    // The candidates' bound: T, or the least positive value when fewer than k chunks hold
    // a positive one (then every positive entry is a candidate; `v ≥ least_positive` is
    // `v > 0` for every non-NaN v).
    let least_positive = f32::from_bits(1);
    let bound = {
        // The maxima are ≥ 0 and never NaN, so their bit patterns order like them.
        bits.clear();
        bits.extend(maxima.iter().map(|v| v.to_bits()));
        let t = if k > bits.len() {
            0.0
        } else {
            let (_, t, _) = bits.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
            f32::from_bits(*t)
        };
        if t > 0.0 {
            t
        } else {
            least_positive
        }
    };
    let mut lanes = Vec::with_capacity(LANES);
    for bi in 0..blocks {
        let m = &maxima[bi * LANES..(bi + 1) * LANES];
        if m.iter().any(|&v| v >= bound) {
            // Only the chunks (lanes) that reach the bound, in index order.
            lanes.clear();
            lanes.extend((0..LANES).filter(|&l| m[l] >= bound));
            let base = bi * block;
            for (v, vals) in row[base..base + block].chunks_exact(LANES).enumerate() {
                for &l in &lanes {
                    if vals[l] >= bound {
                        out.push(((base + v * LANES + l) as u32, vals[l]));
                    }
                }
            }
        }
    }
    if tail_max >= bound {
        collect(&row[body..], body, bound, out);
    }
    if out.len() > k {
        values.clear();
        values.extend(out.iter().map(|e| e.1));
        let t = nth_largest(values, k);
        let mut ties = k - out.iter().filter(|e| e.1 > t).count();
        out.retain(|e| {
            if e.1 > t {
                true
            } else if e.1 == t && ties > 0 {
                ties -= 1;
                true
            } else {
                false
            }
        });
    }
}

/// Appends the entries of `part` (starting at column `base`) that are ≥ `bound`.
#[inline]
fn collect(part: &[f32], base: usize, bound: f32, out: &mut Vec<Selected>) {
    for (i, &v) in part.iter().enumerate() {
        if v >= bound {
            out.push(((base + i) as u32, v));
        }
    }
}

/// The chunk maxima of whole blocks (see [`select`]): for each block of `g` vectors of
/// [`LANES`] values, the lane-wise maximum with 0, [`LANES`] values per block.
struct Maxima<'a> {
    row: &'a [f32],
    g: usize,
    out: &'a mut Vec<f32>,
}

impl Kernel for Maxima<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let n = s.narrow();
        let Maxima { row, g, out } = self;
        for block in row.chunks_exact(LANES * g) {
            let mut m = n.zero();
            for v in block.chunks_exact(LANES) {
                m = n.max(n.load_s(v), m);
            }
            out.extend_from_slice(&n.to_array(m)[..LANES]);
        }
    }
}

/// The `n`-th largest value of `values` (1-based; reorders `values`), or `+∞` when `n == 0`
/// and `−∞` when `n > values.len()`.
///
/// # Examples
/// ```
/// use drsae::kernels::nth_largest;
/// assert_eq!(nth_largest(&mut [1.0, 5.0, 3.0, 4.0], 2), 4.0);
/// ```
pub fn nth_largest(values: &mut [f32], n: usize) -> f32 {
    if n == 0 {
        return f32::INFINITY;
    }
    if n > values.len() {
        return f32::NEG_INFINITY;
    }
    let (_, v, _) = values.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
    *v
}

/// Scalar reference of [`top_k_positive`]: sort everything, keep the first `k` positive.
pub fn top_k_positive_reference(row: &[f32], k: usize) -> Vec<Selected> {
    let mut all: Vec<Selected> = row
        .iter()
        .enumerate()
        .filter(|(_, &v)| v > 0.0)
        .map(|(i, &v)| (i as u32, v))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all.sort_unstable_by_key(|e| e.0);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn matches_the_reference_with_ties_nans_and_short_rows() {
        let mut rng = crate::rng::seeded(3);
        let mut out = Vec::new();
        for trial in 0..400 {
            let n = rng.gen_range(0..300);
            let row: Vec<f32> = (0..n)
                .map(|_| match rng.gen_range(0..10) {
                    0 => f32::NAN,
                    1 => 0.0,
                    2..=4 => (rng.gen_range(-3..4) as f32) * 0.5, // many ties
                    _ => rng.gen_range(-1.0..1.0),
                })
                .collect();
            let k = rng.gen_range(0..40);
            top_k_positive(&row, k, &mut out);
            assert_eq!(out, top_k_positive_reference(&row, k), "trial {trial}");
            let among: Vec<u32> = (0..n as u32).filter(|_| rng.gen_bool(0.4)).collect();
            top_k_positive_among(&row, &among, k, &mut out);
            let sub: Vec<f32> = among.iter().map(|&j| row[j as usize]).collect();
            let want: Vec<Selected> = top_k_positive_reference(&sub, k)
                .into_iter()
                .map(|(i, v)| (among[i as usize], v))
                .collect();
            assert_eq!(out, want, "trial {trial} (among)");
        }
    }

    #[test]
    fn long_rows_match_the_reference_on_every_level() {
        // Rows long enough for chunks of 1 to 64 values and several blocks, with ties (also
        // between chunk maxima), NaN of both signs, ±inf, subnormals and ±0, and k near the
        // number of positive entries.
        let mut rng = crate::rng::seeded(11);
        let mut out = Vec::new();
        for trial in 0..200 {
            let k = rng.gen_range(1..400);
            let n = rng.gen_range(0..20_000);
            let positive_share = rng.gen_range(0.0..1.0);
            let row: Vec<f32> = (0..n)
                .map(|_| {
                    if !rng.gen_bool(positive_share) {
                        return match rng.gen_range(0..6) {
                            0 => f32::NEG_INFINITY,
                            1 => -0.0,
                            2 => f32::NAN,
                            3 => f32::from_bits(0x7F80_0001), // a NaN in +inf's bucket
                            4 => f32::from_bits(0xFFC0_0000), // a negative NaN
                            _ => -rng.gen_range(0.0..2.0),
                        };
                    }
                    match rng.gen_range(0..12) {
                        0 => f32::INFINITY,
                        1 => f32::from_bits(rng.gen_range(1..0x0080_0000)), // subnormal
                        2 => 0.0,
                        3..=5 => (rng.gen_range(1..6) as f32) * 0.25, // ties
                        6 => 1.0 + (rng.gen_range(0..4) as f32) * f32::EPSILON, // one bucket
                        _ => rng.gen_range(0.0..1.0),
                    }
                })
                .collect();
            let want = top_k_positive_reference(&row, k);
            for isa in Isa::all() {
                isa.with(|| top_k_positive(&row, k, &mut out));
                assert_eq!(out, want, "trial {trial} ({isa:?})");
            }
            let among: Vec<u32> = (0..n as u32).filter(|_| rng.gen_bool(0.6)).collect();
            top_k_positive_among(&row, &among, k, &mut out);
            let sub: Vec<f32> = among.iter().map(|&j| row[j as usize]).collect();
            let want: Vec<Selected> = top_k_positive_reference(&sub, k)
                .into_iter()
                .map(|(i, v)| (among[i as usize], v))
                .collect();
            assert_eq!(out, want, "trial {trial} (among)");
        }
    }

    #[test]
    fn nth_largest_edges() {
        assert_eq!(nth_largest(&mut [], 0), f32::INFINITY);
        assert_eq!(nth_largest(&mut [1.0], 2), f32::NEG_INFINITY);
        assert_eq!(nth_largest(&mut [2.0, 2.0, 1.0], 2), 2.0);
    }
}

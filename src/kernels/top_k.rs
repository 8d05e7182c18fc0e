//! Selection of the largest entries of a row: the activation of TopK sparse auto-encoders
//! (the `k` largest positive pre-activations of each row), of their AuxK loss (the largest
//! among the dead latents) and the candidate lists of BatchTopK's batch-wide selection.
//!
//! Ties are broken towards the lower index, so the selection is a function of the row alone:
//! of two equal values the one met first wins, and a value equal to the current k-th is not
//! taken. NaN is never selected (it compares false).

/// A selected entry: the column and its value.
pub type Selected = (u32, f32);

/// Chunk width of the fast rejection scan: a chunk whose maximum does not beat the current
/// k-th value is skipped without touching the heap.
const CHUNK: usize = 32;

/// A min-heap of the best `k` entries seen so far; the root is the worst kept entry.
struct Best<'a> {
    heap: &'a mut Vec<Selected>,
    k: usize,
}

impl Best<'_> {
    /// `a` is worse than `b`: smaller, or equal and later.
    #[inline]
    fn worse(a: Selected, b: Selected) -> bool {
        a.1 < b.1 || (a.1 == b.1 && a.0 > b.0)
    }

    /// The value an entry must exceed to enter: the worst kept one once full, else 0.
    #[inline]
    fn bar(&self) -> f32 {
        if self.heap.len() < self.k {
            0.0
        } else {
            self.heap[0].1
        }
    }

    #[inline]
    fn offer(&mut self, e: Selected) {
        // Entries arrive in ascending index order, so an entry equal to the root is worse
        // than it: strictly greater values only.
        if !(e.1 > self.bar()) {
            return;
        }
        let h = &mut *self.heap;
        if h.len() < self.k {
            h.push(e);
            let mut i = h.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if Self::worse(h[i], h[p]) {
                    h.swap(i, p);
                    i = p;
                } else {
                    break;
                }
            }
        } else {
            h[0] = e;
            let n = h.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut w = i;
                if l < n && Self::worse(h[l], h[w]) {
                    w = l;
                }
                if r < n && Self::worse(h[r], h[w]) {
                    w = r;
                }
                if w == i {
                    break;
                }
                h.swap(i, w);
                i = w;
            }
        }
    }
}

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
    if uses_radix(row.len(), k) {
        top_k_radix(row, k, out);
        return;
    }
    top_k_heap(row, k, out);
}

/// From this `k` on (and rows at least [`RADIX_MIN_RATIO`]` · k` long) the selection is a
/// radix select, whose cost does not grow with `k`; below it the heap's rejection scan
/// skips nearly every chunk and is faster.
const RADIX_MIN_K: usize = 64;
/// See [`RADIX_MIN_K`].
const RADIX_MIN_RATIO: usize = 8;

/// Whether `k` of `len` values are selected by the radix select.
fn uses_radix(len: usize, k: usize) -> bool {
    k >= RADIX_MIN_K && len >= RADIX_MIN_RATIO * k
}

/// Buckets of the radix select over positive values: the bits of a positive f32 above the
/// 20th (exponent and 3 mantissa bits) order like the value, so buckets 0..=[`INF_BUCKET`]
/// hold the positive values in ascending order (bucket 0: the smallest subnormals) and
/// [`DUMP`] everything that is not a candidate (zeros, negatives, NaN of either sign).
const INF_BUCKET: usize = (0x7F80_0000u32 >> 20) as usize;
/// See [`INF_BUCKET`].
const DUMP: usize = INF_BUCKET + 1;
/// Interleaved histograms: consecutive values that fall in one bucket (common: most of a
/// row is negative) update different counters, so the increments do not wait on each other.
const LANES: usize = 4;

/// The radix bucket of `v` (see [`INF_BUCKET`]).
#[inline(always)]
fn bucket(v: f32) -> usize {
    if v > 0.0 {
        (v.to_bits() >> 20) as usize
    } else {
        DUMP
    }
}

/// The heap selection with its chunked rejection scan.
fn top_k_heap(row: &[f32], k: usize, out: &mut Vec<Selected>) {
    let mut best = Best { heap: out, k };
    let mut base = 0usize;
    for chunk in row.chunks(CHUNK) {
        if any_above(chunk, best.bar()) {
            for (i, &v) in chunk.iter().enumerate() {
                best.offer(((base + i) as u32, v));
            }
        }
        base += chunk.len();
    }
    out.sort_unstable_by_key(|e| e.0);
}

/// The radix selection: one branch-free histogram pass finds the bucket holding the k-th
/// largest positive value, a second pass collects every positive entry from that bucket up
/// (at least `k`, in index order), and an exact selection by (value descending, index
/// ascending) among those few keeps `k` — the same entries as the heap, ties included.
fn top_k_radix(row: &[f32], k: usize, out: &mut Vec<Selected>) {
    let mut hist = [[0u32; DUMP + 1]; LANES];
    let mut quads = row.chunks_exact(LANES);
    for q in &mut quads {
        for (h, &v) in hist.iter_mut().zip(q) {
            h[bucket(v)] += 1;
        }
    }
    for &v in quads.remainder() {
        hist[0][bucket(v)] += 1;
    }
    // The highest bucket b such that buckets b..=INF_BUCKET hold at least k values (or 0
    // when the row has fewer than k positive values).
    let mut cum = 0usize;
    let mut from = 0usize;
    for b in (0..=INF_BUCKET).rev() {
        cum += hist.iter().map(|h| h[b] as usize).sum::<usize>();
        if cum >= k {
            from = b;
            break;
        }
    }
    // Candidates: the positive values of buckets `from` and up (NaN compares false).
    let lo = f32::from_bits((from as u32) << 20);
    let mut base = 0usize;
    for chunk in row.chunks(CHUNK) {
        if chunk.iter().fold(false, |a, &v| a | (v >= lo)) {
            for (i, &v) in chunk.iter().enumerate() {
                if v >= lo && v > 0.0 {
                    out.push(((base + i) as u32, v));
                }
            }
        }
        base += chunk.len();
    }
    if out.len() > k {
        // The k-th largest candidate value t, then (in index order) every candidate above t
        // and the first of those equal to it.
        let mut values: Vec<f32> = out.iter().map(|e| e.1).collect();
        let t = nth_largest(&mut values, k);
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

/// Whether some value of `chunk` exceeds `bar` (NaN never does); vectorises.
#[inline(always)]
fn any_above(chunk: &[f32], bar: f32) -> bool {
    chunk.iter().fold(false, |a, &v| a | (v > bar))
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
    if uses_radix(among.len(), k) {
        // Gathered into a compact row: `among` ascends, so the compact order is the column
        // order and the selection (ties to the lower index) is the same.
        let compact: Vec<f32> = among.iter().map(|&j| row[j as usize]).collect();
        top_k_radix(&compact, k, out);
        for e in out.iter_mut() {
            e.0 = among[e.0 as usize];
        }
        return;
    }
    let mut best = Best { heap: out, k };
    for &j in among {
        best.offer((j, row[j as usize]));
    }
    out.sort_unstable_by_key(|e| e.0);
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
    use rand::{Rng, SeedableRng};

    #[test]
    fn matches_the_reference_with_ties_nans_and_short_rows() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
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
    fn radix_path_matches_the_reference_on_long_rows() {
        // Rows long enough for the radix select (k ≥ RADIX_MIN_K, len ≥ RADIX_MIN_RATIO·k),
        // with ties across and inside buckets, NaN, ±inf, masked −inf, subnormals and ±0,
        // and k near the number of positive entries.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut out = Vec::new();
        for trial in 0..200 {
            let k = rng.gen_range(RADIX_MIN_K..400);
            let n = rng.gen_range(RADIX_MIN_RATIO * k..RADIX_MIN_RATIO * k + 3000);
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
            top_k_positive(&row, k, &mut out);
            assert_eq!(out, top_k_positive_reference(&row, k), "trial {trial}");
            let mut heap = Vec::new();
            top_k_heap(&row, k, &mut heap);
            assert_eq!(out, heap, "trial {trial} (heap)");
            // The gathered radix path of `among` (long enough half the time).
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

//! Splitting the rows (or latents) of one SAE step over threads: contiguous blocks, one
//! scoped thread each, every block written by exactly one thread. A step of a sparse
//! auto-encoder is milliseconds to seconds long, so the scoped threads' start-up (tens of
//! microseconds) does not matter, and the borrow checker proves the blocks disjoint.

/// The blocks `[start, end)` of `0..len` for `threads` threads (fewer when `len` is small).
pub(crate) fn blocks(len: usize, threads: usize) -> Vec<(usize, usize)> {
    let threads = threads.clamp(1, len.max(1));
    let size = len.div_ceil(threads).max(1);
    (0..threads)
        .map(|t| (t * size, ((t + 1) * size).min(len)))
        .filter(|(s, e)| s < e)
        .collect()
}

/// Splits `buf` (rows of `width` elements) into the row blocks `bounds`.
pub(crate) fn split_rows<'a, T>(
    mut buf: &'a mut [T],
    width: usize,
    bounds: &[(usize, usize)],
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(bounds.len());
    let mut at = 0;
    for &(s, e) in bounds {
        debug_assert_eq!(s, at);
        let (head, tail) = buf.split_at_mut((e - s) * width);
        out.push(head);
        buf = tail;
        at = e;
    }
    out
}

/// Runs `f(item)` for every item, the first on the calling thread and the others on scoped
/// threads (a panic in any reaches the caller after all have ended).
pub(crate) fn run_each<T: Send, F: Fn(T) + Sync>(items: Vec<T>, f: F) {
    let mut items = items.into_iter();
    let Some(first) = items.next() else { return };
    let rest: Vec<T> = items.collect();
    if rest.is_empty() {
        f(first);
        return;
    }
    std::thread::scope(|scope| {
        let f = &f;
        for item in rest {
            scope.spawn(move || f(item));
        }
        f(first);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_range_once() {
        for len in 0..20 {
            for t in 1..6 {
                let b = blocks(len, t);
                let covered: usize = b.iter().map(|(s, e)| e - s).sum();
                assert_eq!(covered, len);
                assert!(b.windows(2).all(|w| w[0].1 == w[1].0));
            }
        }
    }
}

//! Products with gathered rows `x_i` (the sparse products of the sparse auto-encoders: a
//! decoder row per active latent, or an input row per entry of a latent):
//! `y ← y + Σ_i a_i x_i` ([`gather_axpy`]) and `out_i = ⟨y, x_i⟩` ([`gather_dot`]).
//!
//! Both take the rows four at a time. [`gather_axpy`] loads and stores `y` once per four
//! rows instead of once per row; each element still sees the same sequence of fused
//! multiply-adds as four consecutive [`axpy`](crate::linalg::axpy) calls. [`gather_dot`]
//! runs four rows' dot products side by side (eight independent accumulator chains instead
//! of two, one load of `y` for four rows), each with [`dot`](crate::linalg::dot)'s own
//! accumulators and reduction. So both are bit-identical to the one-row calls at every level.

use crate::linalg::dot_with;
use crate::simd::{dispatch, Isa, Kernel, Simd};

struct Gather<'a, 'b> {
    y: &'a mut [f32],
    terms: &'a [(f32, &'b [f32])],
}

impl Kernel for Gather<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Gather { y, terms } = self;
        let l = S::LANES;
        let n = y.len();
        let body = n - n % l;
        for group in terms.chunks(4) {
            let mut c = 0;
            while c < body {
                // SAFETY: c + l ≤ body ≤ n = every row's length (checked by the caller).
                unsafe {
                    let mut acc = s.load(y.as_ptr().add(c));
                    for &(a, x) in group {
                        acc = s.mul_add(s.load(x.as_ptr().add(c)), s.splat(a), acc);
                    }
                    s.store(y.as_mut_ptr().add(c), acc);
                }
                c += l;
            }
            for &(a, x) in group {
                for (yv, &xv) in y[body..].iter_mut().zip(&x[body..]) {
                    *yv += a * xv;
                }
            }
        }
    }
}

/// `y ← y + Σ_i a_i x_i` for the terms `(a_i, x_i)`, in order (see the module docs).
///
/// # Examples
/// ```
/// use drsae::kernels::gather_axpy;
/// let (x1, x2) = ([1.0f32, 2.0], [10.0f32, 20.0]);
/// let mut y = [0.5f32, 0.5];
/// gather_axpy(&mut y, &[(1.0, &x1), (0.5, &x2)]);
/// assert_eq!(y, [6.5, 12.5]);
/// ```
///
/// # Panics
/// If a row's length differs from `y`'s.
#[track_caller]
pub fn gather_axpy(y: &mut [f32], terms: &[(f32, &[f32])]) {
    for (_, x) in terms {
        assert_eq!(x.len(), y.len(), "gather_axpy: row length");
    }
    dispatch(Isa::current(), Gather { y, terms })
}

struct GatherDot<'a, 'b> {
    y: &'a [f32],
    rows: &'a [&'b [f32]],
    out: &'a mut [f32],
}

impl Kernel for GatherDot<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let GatherDot { y, rows, out } = self;
        let l = S::LANES;
        let n = y.len();
        let nv = n / l * l;
        let mut groups = rows.chunks_exact(4);
        let mut outs = out.chunks_exact_mut(4);
        for (g, o) in (&mut groups).zip(&mut outs) {
            let (mut a0, mut a1) = ([s.zero(); 4], [s.zero(); 4]);
            let mut i = 0;
            // SAFETY (every load below): i + l ≤ nv ≤ n = every row's length (checked by the
            // caller).
            while i + 2 * l <= nv {
                unsafe {
                    let (u, v) = (s.load(y.as_ptr().add(i)), s.load(y.as_ptr().add(i + l)));
                    for r in 0..4 {
                        a0[r] = s.mul_add(s.load(g[r].as_ptr().add(i)), u, a0[r]);
                        a1[r] = s.mul_add(s.load(g[r].as_ptr().add(i + l)), v, a1[r]);
                    }
                }
                i += 2 * l;
            }
            if i < nv {
                unsafe {
                    let u = s.load(y.as_ptr().add(i));
                    for r in 0..4 {
                        a0[r] = s.mul_add(s.load(g[r].as_ptr().add(i)), u, a0[r]);
                    }
                }
            }
            for r in 0..4 {
                let mut sum = s.reduce_add(s.add(a0[r], a1[r]));
                for j in nv..n {
                    sum += g[r][j] * y[j];
                }
                o[r] = sum;
            }
        }
        for (x, o) in groups.remainder().iter().zip(outs.into_remainder()) {
            *o = dot_with(s, x, y);
        }
    }
}

/// `out_i = ⟨y, x_i⟩` for the gathered rows `x_i` (see the module docs): bit-identical to
/// [`dot`](crate::linalg::dot) row by row.
///
/// # Examples
/// ```
/// use drsae::kernels::gather_dot;
/// let (x1, x2) = ([1.0f32, 2.0], [10.0f32, 20.0]);
/// let mut out = [0.0f32; 2];
/// gather_dot(&[0.5, 0.5], &[&x1, &x2], &mut out);
/// assert_eq!(out, [1.5, 15.0]);
/// ```
///
/// # Panics
/// If a row's length differs from `y`'s, or `out`'s from the number of rows.
#[track_caller]
pub fn gather_dot(y: &[f32], rows: &[&[f32]], out: &mut [f32]) {
    assert_eq!(rows.len(), out.len(), "gather_dot: rows and outputs");
    for x in rows {
        assert_eq!(x.len(), y.len(), "gather_dot: row length");
    }
    dispatch(Isa::current(), GatherDot { y, rows, out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn bit_identical_to_consecutive_axpys_on_every_level() {
        let mut rng = crate::rng::seeded(5);
        for isa in Isa::all() {
            for n in [0usize, 1, 7, 8, 15, 16, 17, 33, 100] {
                for t in [0usize, 1, 3, 4, 5, 9] {
                    let rows: Vec<Vec<f32>> = (0..t)
                        .map(|_| (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect())
                        .collect();
                    let terms: Vec<(f32, &[f32])> = rows
                        .iter()
                        .map(|r| (rng.gen_range(-2.0..2.0), &r[..]))
                        .collect();
                    let y0: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let mut want = y0.clone();
                    for &(a, x) in &terms {
                        crate::linalg::axpy_at(isa, a, x, &mut want);
                    }
                    let mut got = y0.clone();
                    dispatch(
                        isa,
                        Gather {
                            y: &mut got,
                            terms: &terms,
                        },
                    );
                    assert_eq!(
                        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{isa:?} n = {n}, {t} terms"
                    );
                }
            }
        }
    }

    #[test]
    fn dots_bit_identical_to_one_row_dots_on_every_level() {
        let mut rng = crate::rng::seeded(6);
        for isa in Isa::all() {
            for n in [0usize, 1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 100, 768] {
                for t in [0usize, 1, 3, 4, 5, 8, 9] {
                    let rows: Vec<Vec<f32>> = (0..t)
                        .map(|_| (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect())
                        .collect();
                    let refs: Vec<&[f32]> = rows.iter().map(|r| &r[..]).collect();
                    let y: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let want: Vec<u32> = refs
                        .iter()
                        .map(|x| crate::linalg::dot_at(isa, x, &y).to_bits())
                        .collect();
                    let mut got = vec![f32::NAN; t];
                    dispatch(
                        isa,
                        GatherDot {
                            y: &y,
                            rows: &refs,
                            out: &mut got,
                        },
                    );
                    let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, want, "{isa:?} n = {n}, {t} rows");
                }
            }
        }
    }
}

//! `y ← y + Σ_i a_i x_i` over gathered rows `x_i` (the sparse products of the sparse
//! auto-encoders: a decoder row per active latent, or an input row per entry of a latent).
//!
//! The terms are applied four at a time, so `y` is loaded and stored once per four rows
//! instead of once per row; each element still sees the same sequence of fused
//! multiply-adds as four consecutive [`axpy`](crate::linalg::axpy) calls, so the result is
//! bit-identical to them at every level.

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
}

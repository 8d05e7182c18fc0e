//! GEMMs whose left operand is *gathered*: element `(r, c)` of A is `data[base[r] +
//! offset[c]]`. With the bases and offsets of
//! [`ConvShape::placement_bases`](crate::kernels::ConvShape::placement_bases) and
//! [`ConvShape::patch_offsets`](crate::kernels::ConvShape::patch_offsets) A is the im2col
//! patch matrix of a batch of images, read in place — never materialised; with
//! `base[r] = r·ld`, `offset[c] = c` it is an ordinary row-major matrix.
//!
//! Both products serve the thin shapes of convolutional layers, where one dimension is a
//! patch (`k·k·C`, 25 for a 5 × 5 single-channel kernel) and another the number of maps
//! (16–64): matrixmultiply packs both operands on every call and its 8 × 8 micro-tiles
//! run well below its large-shape rate there, and im2col itself writes 25 values per
//! pixel.
//!
//! - [`gathered_gemm`]: `C = α·A·B`, A gathered `m × k` (m large), B a small `k × n` matrix
//!   packed once into zero-padded rows (blocks of 128 rows, L1-sized); register tiles of
//!   R rows × V vectors of 8 columns, R broadcasts and V loads per step of k. Each element
//!   of C is one fixed sequence of fused multiply-adds whatever tile it lands in, so the
//!   result does not depend on how a caller splits the rows of A (tested).
//! - [`gathered_gemm_tn`]: `C = α·Aᵀ·G`, A gathered `m × k`, G row-major `m × n`; the
//!   reduction over the long dimension m, tiles of R columns of A × V vectors of G's
//!   columns held in registers over chunks of 128 rows, the chunk sums added in order.
//!
//! Both kernels hand their register tiles to a sink instead of storing them, which serves
//! two fused epilogues: [`gathered_gemm_relu`] (bias, ReLU and gain applied per tile: an
//! encoder layer that never writes its pre-activation) and [`gathered_gemm_scatter`]
//! (the product added into a gathered matrix: col2im without the patch matrix, eight
//! neighbouring placements per vector add).
//!
//! This file holds the entry points; the rest is split by concern:
//!
//! - [`index`]: the gathered matrices ([`Gathered`], [`GatheredMut`]) and the patch or
//!   row-major layouts that build them ([`GatherIndex`]);
//! - [`blocking`]: block sizes, register tile shapes and the loop nests of the two
//!   products;
//! - [`pack`]: B packed into padded rows, G staged block by block into L1;
//! - [`micro`]: the register-tile micro-kernels;
//! - [`sink`]: where the tiles go — plain stores into C and the fused epilogues.

mod blocking;
mod index;
mod micro;
mod pack;
mod sink;

pub use index::{GatherIndex, Gathered, GatheredMut};

use crate::simd::{dispatch, Isa, Kernel, Simd};
use pack::Operand;
use sink::{BlockSink, Dense, Relu, RowsSink, Scatter};

/// [`blocking::rows`] at the dispatched level (its 8-lane set).
#[allow(clippy::too_many_arguments)]
fn rows<S: RowsSink>(
    isa: Isa,
    alpha: f32,
    a: Gathered<'_>,
    b: crate::linalg::MatRef<'_>,
    accumulate: bool,
    sink: &S,
    scratch: &mut Vec<f32>,
) {
    struct Job<'a, 'b, S> {
        alpha: f32,
        a: Gathered<'a>,
        b: crate::linalg::MatRef<'a>,
        accumulate: bool,
        sink: &'b S,
        scratch: &'b mut Vec<f32>,
    }
    impl<S: RowsSink> Kernel for Job<'_, '_, S> {
        type Output = ();
        #[inline(always)]
        fn run<T: Simd>(self, s: T) {
            let n = s.narrow();
            blocking::rows(
                n,
                self.alpha,
                self.a,
                self.b,
                self.accumulate,
                self.sink,
                self.scratch,
            )
        }
    }
    let job = Job {
        alpha,
        a,
        b,
        accumulate,
        sink,
        scratch,
    };
    dispatch(isa, job)
}

/// [`blocking::tn`] at the dispatched level (its 8-lane set).
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn tn<S: BlockSink>(
    isa: Isa,
    alpha: f32,
    a: Gathered<'_>,
    g: Operand<'_>,
    n: usize,
    accumulate: bool,
    sink: &S,
    scratch: &mut Vec<f32>,
) {
    struct Job<'a, 'b, S> {
        alpha: f32,
        a: Gathered<'a>,
        g: Operand<'a>,
        n: usize,
        accumulate: bool,
        sink: &'b S,
        scratch: &'b mut Vec<f32>,
    }
    impl<S: BlockSink> Kernel for Job<'_, '_, S> {
        type Output = ();
        #[inline(always)]
        fn run<T: Simd>(self, s: T) {
            let v = s.narrow();
            let Job {
                alpha,
                a,
                g,
                n,
                accumulate,
                sink,
                scratch,
            } = self;
            blocking::tn(v, alpha, a, g, n, accumulate, sink, scratch)
        }
    }
    let job = Job {
        alpha,
        a,
        g,
        n,
        accumulate,
        sink,
        scratch,
    };
    dispatch(isa, job)
}

/// Columns per vector (the lanes of an `f32x8`).
const L: usize = 8;

/// `C ← α·A·B` (or `C ← C + α·A·B` when `accumulate`): A gathered `m × k`, B any `k × n`
/// view, C row-major `m × n` with row stride `ldc`. `scratch` holds B packed into rows
/// padded to a multiple of 8 (reused across calls).
///
/// # Panics
/// If the shapes disagree or C is too short.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gathered_gemm(
    alpha: f32,
    a: Gathered<'_>,
    b: crate::linalg::MatRef<'_>,
    accumulate: bool,
    c: &mut [f32],
    ldc: usize,
    scratch: &mut Vec<f32>,
) {
    let (m, n) = (a.rows(), b.ncols());
    assert!(ldc >= n, "row stride {ldc} < {n} columns");
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "C too short for {m}×{n}");
    // SAFETY: C holds m rows of stride ldc with n columns (asserted); `rows` writes no more.
    let sink = Dense {
        ptr: c.as_mut_ptr(),
        ld: ldc,
    };
    rows(Isa::current(), alpha, a, b, accumulate, &sink, scratch);
}

/// The encoder layer of a ReLU auto-encoder in one pass: `H = max(A·B + d, 0)` and
/// `Z = H·diag(g)` (d, g per column), A gathered `m × k`, B `k × n`, H and Z row-major
/// `m × n`. The bias, ReLU and gain are applied to each register tile of A·B before it is
/// stored, so the pre-activation is never written.
///
/// # Panics
/// If the shapes disagree.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gathered_gemm_relu(
    a: Gathered<'_>,
    b: crate::linalg::MatRef<'_>,
    bias: &[f32],
    gain: &[f32],
    h: &mut [f32],
    z: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (m, n) = (a.rows(), b.ncols());
    assert!(
        bias.len() == n && gain.len() == n && h.len() == m * n && z.len() == m * n,
        "{m}×{n} product with {} biases, {} gains, {} + {} outputs",
        bias.len(),
        gain.len(),
        h.len(),
        z.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: H and Z hold m rows of n values (asserted); bias and gain n values.
    let sink = Relu {
        h: h.as_mut_ptr(),
        z: z.as_mut_ptr(),
        ld: n,
        bias: bias.as_ptr(),
        gain: gain.as_ptr(),
    };
    rows(Isa::current(), 1.0, a, b, false, &sink, scratch);
}

/// `C ← α·Aᵀ·G` (or `C ← C + α·Aᵀ·G` when `accumulate`): A gathered `m × k`, G row-major
/// `m × n` with row stride `ldg`, C row-major `k × n` with row stride `ldc`. The sum over m
/// runs in chunks of 128 rows, each in row order, the chunk sums added in order (`scratch`
/// holds them, and, when n is not a multiple of 8, each block of G padded). Long
/// rows whose stride is a multiple of 2 KB fall in the same few L1 sets: give G and C a
/// [`crate::linalg::padded_stride`].
///
/// # Panics
/// If the shapes disagree.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gathered_gemm_tn(
    alpha: f32,
    a: Gathered<'_>,
    g: &[f32],
    n: usize,
    ldg: usize,
    accumulate: bool,
    c: &mut [f32],
    ldc: usize,
    scratch: &mut Vec<f32>,
) {
    let k = a.cols();
    assert!(ldc >= n, "row stride {ldc} < {n} columns");
    if k == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (k - 1) * ldc + n, "C too short for {k}×{n}");
    if a.rows() == 0 {
        if !accumulate {
            c.chunks_mut(ldc).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: C holds k rows of stride ldc with n columns (asserted); `tn` writes no more.
    let sink = Dense {
        ptr: c.as_mut_ptr(),
        ld: ldc,
    };
    tn(
        Isa::current(),
        alpha,
        a,
        Operand::Rows(g, ldg),
        n,
        accumulate,
        &sink,
        scratch,
    );
}

/// `out ← out + α·H·A`: H row-major `n × m` (row stride `ldh`), A gathered `m × k`, out a
/// gathered `n × k` matrix added into. With out the patch index of a batch of images (rows
/// the placements, columns the kernel taps) this is col2im of the patch matrix `α·H·A`
/// without materialising it: the decoder of a single-channel convolutional layer,
/// `images += col2im(α·Z·Dᵀ)` with A = Dᵀ read in place. It runs as [`gathered_gemm_tn`]
/// on G = Hᵀ, each block of 16 rows of H transposed into L1 just before use, each
/// register tile of (H·A)ᵀ added into out — eight neighbouring placements of one tap are
/// one vector add. Additions into shared elements happen in a fixed order (blocks of 16
/// rows of H, then columns of A).
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn gathered_gemm_scatter(
    alpha: f32,
    h: &[f32],
    ldh: usize,
    a: Gathered<'_>,
    out: GatheredMut<'_>,
    scratch: &mut Vec<f32>,
) {
    let (m, k, n) = (a.rows(), a.cols(), out.rows());
    assert_eq!(
        out.cols(),
        k,
        "A has {k} columns, the target {}",
        out.cols()
    );
    assert!(
        ldh >= m && (n == 0 || h.len() >= (n - 1) * ldh + m),
        "H of {} values (row stride {ldh}) for {n}×{m}",
        h.len()
    );
    if k == 0 || n == 0 || m == 0 {
        return;
    }
    // SAFETY: every target element is in bounds (`GatherIndex::over_mut`) and `out.data`
    // is borrowed mutably, so it aliases neither A's data nor H.
    let sink = Scatter {
        data: out.data.as_mut_ptr(),
        base: out.base,
        offset: out.offset,
    };
    tn(
        Isa::current(),
        alpha,
        a,
        Operand::Transposed(h, ldh),
        n,
        true,
        &sink,
        scratch,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{im2col, ConvShape};
    use crate::linalg::Mat;

    /// Deterministic test values in `[-1.375, 1.375]`, steps of 1/8.
    pub(super) fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 23) as f32 - 11.0) * 0.125)
            .collect()
    }

    #[test]
    fn gathered_products_equal_the_materialised_ones() {
        for isa in crate::simd::Isa::all() {
            isa.with(gathered_products_equal_the_materialised_ones_here);
        }
    }

    fn gathered_products_equal_the_materialised_ones_here() {
        // Shapes covering full and partial vectors, column blocks beyond 32, tile tails.
        for &(h, w, ch, k, n) in &[
            (7, 9, 1, 3, 16),
            (6, 6, 2, 2, 5),
            (9, 8, 3, 3, 40),
            (5, 5, 1, 5, 8),
            (8, 7, 4, 2, 24),
        ] {
            let shape = ConvShape::new(h, w, ch, k).unwrap();
            let batch = 3;
            let x = values(batch * shape.image_len(), 1);
            let idx = GatherIndex::patches(&shape, batch);
            let a = idx.over(&x);
            let (m, kk) = (a.rows(), a.cols());
            let mut cols = vec![0.0; m * kk];
            im2col(&shape, &x, &mut cols);
            for r in 0..m {
                for c in 0..kk {
                    assert_eq!(a.get(r, c), cols[r * kk + c]);
                }
            }
            // A·B with B given transposed (a filter bank), α and accumulate.
            let bt = Mat::from_vec(n, kk, values(n * kk, 2));
            let mut want = vec![0.0f64; m * n];
            for r in 0..m {
                for j in 0..n {
                    want[r * n + j] = (0..kk)
                        .map(|c| cols[r * kk + c] as f64 * bt[(j, c)] as f64)
                        .sum();
                }
            }
            let mut c = vec![1.0; m * n];
            let mut scratch = Vec::new();
            gathered_gemm(-0.5, a, bt.t(), true, &mut c, n, &mut scratch);
            for (got, want) in c.iter().zip(&want) {
                assert!(
                    (*got as f64 - (1.0 - 0.5 * want)).abs() < 1e-4,
                    "{got} {want}"
                );
            }
            // Aᵀ·G
            let g = values(m * n, 3);
            let mut want = vec![0.0f64; kk * n];
            for c in 0..kk {
                for j in 0..n {
                    want[c * n + j] = (0..m)
                        .map(|r| cols[r * kk + c] as f64 * g[r * n + j] as f64)
                        .sum();
                }
            }
            let mut out = vec![f32::NAN; kk * n];
            gathered_gemm_tn(2.0, a, &g, n, n, false, &mut out, n, &mut scratch);
            for (got, want) in out.iter().zip(&want) {
                assert!(
                    (*got as f64 - 2.0 * want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{got} {want}"
                );
            }
        }
    }

    #[test]
    fn rows_do_not_depend_on_the_split() {
        for isa in crate::simd::Isa::all() {
            isa.with(rows_do_not_depend_on_the_split_here);
        }
    }

    fn rows_do_not_depend_on_the_split_here() {
        let (m, k, n) = (37, 11, 19);
        let data = values(m * k, 4);
        let idx = GatherIndex::row_major(m, k, k);
        let b = Mat::from_vec(k, n, values(k * n, 5));
        let mut whole = vec![0.0; m * n];
        let mut scratch = Vec::new();
        gathered_gemm(
            1.0,
            idx.over(&data),
            b.view(),
            false,
            &mut whole,
            n,
            &mut scratch,
        );
        let mut parts = vec![0.0; m * n];
        for (lo, hi) in [(0, 5), (5, 6), (6, 37)] {
            let a = idx.over(&data).row_range(lo, hi);
            gathered_gemm(
                1.0,
                a,
                b.view(),
                false,
                &mut parts[lo * n..],
                n,
                &mut scratch,
            );
        }
        assert_eq!(whole, parts);
    }
}

//! The AVX-512F micro-kernel: an `R × 16·V` tile of C (R ≤ [`MR`] rows, V ≤ 3 vectors of 16
//! columns) accumulated over one block of k in `R·V` zmm registers.
//!
//! Per step of k: V vector loads of B, R broadcasts of A, R·V fused multiply-adds. The full
//! tile (8 × 48: 24 accumulators, 3 B vectors, one broadcast) leaves the 32 zmm registers
//! a few spare. Edge tiles are the same code with smaller `R` / `V` (monomorphised), the last
//! vector of columns loaded and stored under a mask, so every element of C is computed by
//! the same sequence of operations wherever its tile is.

// The AVX-512 intrinsics are stable since Rust 1.89; this module is compiled only there
// (`cfg(drsae_avx512)`, set by build.rs).
#![allow(clippy::incompatible_msrv)]

use std::arch::x86_64::*;

/// Rows of a full tile (the rows of a packed A panel).
pub(super) const MR: usize = 8;
/// Columns of a full tile (the columns of a packed B panel).
pub(super) const NR: usize = 48;

/// One tile's operands.
pub(super) struct Tile {
    /// Valid rows, `1..=MR`.
    pub rows: usize,
    /// Valid columns, `1..=NR`.
    pub cols: usize,
    /// Steps of k.
    pub kc: usize,
    /// A panel: element (k, i) at `a + k·MR + i`.
    pub a: *const f32,
    /// B panel: element (k, j) at `b + k·bs + j`.
    pub b: *const f32,
    pub bs: isize,
    /// C tile: element (i, j) at `c + i·crs + j`.
    pub c: *mut f32,
    pub crs: isize,
    pub alpha: f32,
    /// β for this block of k: C's old value is not read when 0.
    pub beta: f32,
}

/// `C ← α·A·B + β·C` on one tile.
///
/// # Safety
/// The CPU must have AVX-512F. `a` must address `kc·MR` readable floats; for every k < kc,
/// `b + k·bs + j` must be readable for j < `cols`, and the C tile's `rows × cols` elements
/// readable (if β ≠ 0) and writable.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn tile(t: &Tile) {
    let v = t.cols.div_ceil(16);
    macro_rules! go {
        ($($r:literal),*) => {
            match (t.rows, v) {
                $(
                    ($r, 1) => tile_rv::<$r, 1>(t),
                    ($r, 2) => tile_rv::<$r, 2>(t),
                    ($r, 3) => tile_rv::<$r, 3>(t),
                )*
                _ => unreachable!("tile {}×{}", t.rows, t.cols),
            }
        };
    }
    go!(1, 2, 3, 4, 5, 6, 7, 8)
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn tile_rv<const R: usize, const V: usize>(t: &Tile) {
    // Lanes of the last vector of columns that lie inside the tile.
    let last = t.cols - (V - 1) * 16;
    let last_mask: __mmask16 = if last >= 16 {
        0xffff
    } else {
        (1u16 << last) - 1
    };
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let mut a = t.a;
    let mut b = t.b;
    for _ in 0..t.kc {
        let mut bv = [_mm512_setzero_ps(); V];
        for v in 0..V - 1 {
            bv[v] = _mm512_loadu_ps(b.add(16 * v));
        }
        bv[V - 1] = _mm512_maskz_loadu_ps(last_mask, b.add(16 * (V - 1)));
        for i in 0..R {
            let ai = _mm512_set1_ps(*a.add(i));
            for v in 0..V {
                acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
            }
        }
        a = a.add(MR);
        b = b.offset(t.bs);
    }
    let alpha = _mm512_set1_ps(t.alpha);
    let beta = _mm512_set1_ps(t.beta);
    for i in 0..R {
        let c = t.c.offset(i as isize * t.crs);
        for v in 0..V {
            let mask = if v == V - 1 { last_mask } else { 0xffff };
            let p = c.add(16 * v);
            let out = if t.beta == 0.0 {
                _mm512_mul_ps(alpha, acc[i][v])
            } else {
                let old = _mm512_maskz_loadu_ps(mask, p);
                _mm512_fmadd_ps(alpha, acc[i][v], _mm512_mul_ps(beta, old))
            };
            _mm512_mask_storeu_ps(p, mask, out);
        }
    }
}

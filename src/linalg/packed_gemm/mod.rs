//! An AVX-512F packed sgemm for the large products, following matrixmultiply's structure
//! (which has AVX2 kernels only): A packed into [`MR`]-row panels, B into [`NR`]-column
//! panels, k cut into blocks of at most [`KC`] so that a B block stays in L2 and an A panel
//! in L1, and an `8 × 48` zmm micro-kernel ([`micro`]).
//!
//! Loop order, for each block of rows of C a thread owns:
//! 1. pack all of A's rows of the block (every k) once;
//! 2. for each block of [`NC`] columns and each block of k: pack that block of B, then for
//!    each A panel sweep the B panels, one micro-tile each.
//!
//! Every element of C is computed by the same operations wherever it lies (edge tiles are
//! the full kernel with fewer rows or a masked last vector, the blocks of k depend on k
//! only), so splitting C's rows or columns over threads does not change the result.
//! `β = 0` never reads C.

mod micro;
mod pack;
#[cfg(test)]
mod tests;

use micro::{Tile, MR, NR};
use pack::{pack_a, pack_b, Strided};
use std::cell::RefCell;

/// Largest block of k.
const KC: usize = 256;
/// Columns of C per packed B block (a multiple of [`NR`]).
const NC: usize = 21 * NR;
/// At most this many floats of packed A per thread (larger row blocks are cut).
const A_PACK_MAX: usize = 2 << 20;

/// True when the packed kernel can serve a GEMM with these dimensions and C strides: k ≥ 1
/// and C with a unit stride along one of its dimensions.
pub(super) fn applies(k: usize, crs: isize, ccs: isize) -> bool {
    k > 0 && (ccs == 1 || crs == 1)
}

/// The block of k used for a product of depth `k`: `k` cut into equal blocks ≤ [`KC`].
fn k_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC))
}

/// True when the micro-kernel reads B where it is instead of a packed copy: B row-major
/// (its rows are the panels' rows already) with a row stride that spreads consecutive rows
/// over the cache's sets (not a multiple of 64 floats).
fn reads_b_in_place(b: Strided) -> bool {
    b.cs == 1 && b.rs % 64 != 0
}

thread_local! {
    /// Each thread's packing buffers, kept between calls (fresh large allocations would
    /// fault their pages in on every call).
    static BUFFERS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A 64-byte aligned scratch of at least `len` floats from `v`.
fn aligned(v: &mut Vec<f32>, len: usize) -> *mut f32 {
    if v.len() < len + 16 {
        v.resize(len + 16, 0.0);
    }
    let p = v.as_mut_ptr();
    p.wrapping_add(p.align_offset(64))
}

/// `C ← α·A·B + β·C` for an `m × k` A, `k × n` B and `m × n` C (`c + i·crs + j·ccs`) on the
/// calling thread.
///
/// # Safety
/// The CPU must have AVX-512F. The operands must address valid matrices of those shapes,
/// C writable and not overlapping A or B, and [`applies`] must hold.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn packed_gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (*const f32, isize, isize),
    b: (*const f32, isize, isize),
    beta: f32,
    c: (*mut f32, isize, isize),
) {
    let (a, b, c, m, n) = if c.2 == 1 {
        (a, b, c, m, n)
    } else {
        // Cᵀ = Bᵀ·Aᵀ, with Cᵀ row-major.
        ((b.0, b.2, b.1), (a.0, a.2, a.1), (c.0, c.2, c.1), n, m)
    };
    debug_assert!(c.2 == 1 && k > 0);
    let a = Strided {
        ptr: a.0,
        rs: a.1,
        cs: a.2,
    };
    let b = Strided {
        ptr: b.0,
        rs: b.1,
        cs: b.2,
    };
    BUFFERS.with(|buf| {
        let mut buf = buf.borrow_mut();
        serial(m, k, n, alpha, a, b, beta, c.0, c.1, &mut buf);
    });
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn serial(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Strided,
    b: Strided,
    beta: f32,
    c: *mut f32,
    crs: isize,
    buf: &mut Vec<f32>,
) {
    let kc = k_block(k);
    let mc = (A_PACK_MAX / k / MR).max(1) * MR;
    let mc = mc.min(m.next_multiple_of(MR));
    let nc = NC.min(n.next_multiple_of(NR));
    let a_len = mc * k;
    let base = aligned(buf, a_len + kc * nc + 16);
    let a_pack = base;
    let b_pack = base.add(a_len.next_multiple_of(16));
    for i0 in (0..m).step_by(mc) {
        let rows = mc.min(m - i0);
        let a_blk = Strided {
            ptr: a.ptr.offset(i0 as isize * a.rs),
            ..a
        };
        pack_a(a_blk, rows, k, a_pack);
        for j0 in (0..n).step_by(nc) {
            let cols = nc.min(n - j0);
            for p0 in (0..k).step_by(kc) {
                let depth = kc.min(k - p0);
                let b_blk = Strided {
                    ptr: b.ptr.offset(p0 as isize * b.rs + j0 as isize * b.cs),
                    ..b
                };
                let direct = reads_b_in_place(b);
                let (b_base, bs, panel_step) = if direct {
                    (b_blk.ptr, b.rs, NR)
                } else {
                    pack_b(b_blk, depth, cols, b_pack);
                    (b_pack as *const f32, NR as isize, NR * depth)
                };
                let beta_blk = if p0 == 0 { beta } else { 1.0 };
                for p in 0..rows.div_ceil(MR) {
                    let a_panel = a_pack.add(p * MR * k + p0 * MR);
                    let c_row = c.offset((i0 + p * MR) as isize * crs).add(j0);
                    for q in 0..cols.div_ceil(NR) {
                        micro::tile(&Tile {
                            rows: MR.min(rows - p * MR),
                            cols: NR.min(cols - q * NR),
                            kc: depth,
                            a: a_panel,
                            b: b_base.add(q * panel_step),
                            bs,
                            c: c_row.add(q * NR),
                            crs,
                            alpha,
                            beta: beta_blk,
                        });
                    }
                }
            }
        }
    }
}

//! The dense operands laid out for the micro-kernels: B of
//! [`gathered_gemm`](super::gathered_gemm) packed once into zero-padded rows, and G of the
//! tn products staged block by block into L1 (padded, or transposed when given as Gᵀ).

use super::L;
use wide::f32x8;

/// Packs B (`k × n`, any strides) into `scratch` as `k` rows of `npad` (n rounded up to
/// a multiple of 8, zero-filled) and returns npad.
pub(super) fn pack_b(b: crate::linalg::MatRef<'_>, scratch: &mut Vec<f32>) -> usize {
    let (k, n) = b.shape();
    let npad = n.div_ceil(L) * L;
    scratch.clear();
    scratch.resize(k * npad, 0.0);
    for kk in 0..k {
        for j in 0..n {
            scratch[kk * npad + j] = b.get(kk, j);
        }
    }
    npad
}

/// The dense operand G (`m × n`) of the tn products: as stored (row stride), or given by
/// its transpose (`n × m`, row stride), staged into L1 block by block.
#[derive(Clone, Copy)]
pub(super) enum Operand<'a> {
    Rows(&'a [f32], usize),
    Transposed(&'a [f32], usize),
}

impl Operand<'_> {
    /// Writes rows `r0..r1` and columns `j0..j0+width` of G into `stage` (row stride
    /// `width`), columns ≥ n as zeros (lengths checked by the caller). A transposed G goes
    /// through 8 × 8 register transposes where the block is whole.
    pub(super) fn stage(
        &self,
        n: usize,
        (r0, r1): (usize, usize),
        (j0, width): (usize, usize),
        stage: &mut [f32],
    ) {
        let (rows, cols) = (r1 - r0, (n - j0).min(width));
        match *self {
            Operand::Rows(g, ld) => {
                for (r, dst) in stage.chunks_exact_mut(width).take(rows).enumerate() {
                    let src = &g[(r0 + r) * ld + j0..][..cols];
                    dst[..cols].copy_from_slice(src);
                    dst[cols..].fill(0.0);
                }
            }
            Operand::Transposed(gt, ld) => {
                let (r8, c8) = (rows / L * L, cols / L * L);
                for jb in (0..c8).step_by(L) {
                    for rb in (0..r8).step_by(L) {
                        let block: [f32x8; L] = std::array::from_fn(|t| {
                            crate::linalg::load8(&gt[(j0 + jb + t) * ld + r0 + rb..])
                        });
                        for (i, v) in f32x8::transpose(block).iter().enumerate() {
                            crate::linalg::store8(&mut stage[(rb + i) * width + jb..], *v);
                        }
                    }
                    for r in r8..rows {
                        for t in jb..jb + L {
                            stage[r * width + t] = gt[(j0 + t) * ld + r0 + r];
                        }
                    }
                }
                for r in 0..rows {
                    for j in c8..width {
                        stage[r * width + j] = if j < cols {
                            gt[(j0 + j) * ld + r0 + r]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

//! The dense operands laid out for the micro-kernels: B of
//! [`gathered_gemm`](super::gathered_gemm) packed once into zero-padded rows, and G of the
//! tn products staged block by block into L1 (padded, or transposed when given as Gᵀ).

use super::L;

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
    /// through [`crate::linalg::transpose_strided`].
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
                if rows > 0 && cols > 0 {
                    let src = &gt[j0 * ld + r0..];
                    crate::linalg::transpose_strided(src, ld, cols, rows, stage, width);
                }
                for dst in stage.chunks_exact_mut(width).take(rows) {
                    dst[cols..].fill(0.0);
                }
            }
        }
    }
}

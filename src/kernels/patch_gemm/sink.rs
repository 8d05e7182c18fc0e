//! Where the register tiles of the micro-kernels go: [`Dense`] stores them into a
//! row-major C (plain or accumulating), [`Relu`] applies bias, ReLU and gain on the way
//! (the fused encoder epilogue), and [`Scatter`] adds the transposed tile into a gathered
//! matrix (col2im without the patch matrix).

use super::L;
use crate::simd::Simd;

/// Writes `α·acc` (plus the old values when `accumulate`) to the first `count ≤ 8` floats
/// at `dst`.
#[inline(always)]
unsafe fn store<N: Simd>(
    s: N,
    dst: *mut f32,
    acc: N::V,
    alpha: f32,
    accumulate: bool,
    count: usize,
) {
    let scaled = s.mul(acc, s.splat(alpha));
    if count == L && !accumulate {
        s.store(dst, scaled);
        return;
    }
    let v = s.to_array(scaled);
    for (i, x) in v.iter().enumerate().take(count) {
        let d = dst.add(i);
        *d = if accumulate { *d + x } else { *x };
    }
}

/// Writes an R × V tile of accumulators (`α·acc`, added to the old values when
/// `accumulate`) to the R rows of stride `ldc` from `dst`, first `count` columns.
#[inline(always)]
unsafe fn store_tile<N: Simd, const R: usize, const V: usize>(
    s: N,
    acc: &[[N::V; V]; R],
    dst: *mut f32,
    ldc: usize,
    count: usize,
    alpha: f32,
    accumulate: bool,
) {
    for (i, acc) in acc.iter().enumerate() {
        let row = dst.add(i * ldc);
        for (v, acc) in acc.iter().enumerate() {
            let cnt = count.saturating_sub(v * L).min(L);
            if cnt > 0 {
                store(s, row.add(v * L), *acc, alpha, accumulate, cnt);
            }
        }
    }
}

/// Where the tiles of a product go: a row-major C, a gathered matrix added into, or an
/// activation applied on the way.
pub(super) trait TileSink {
    /// Writes the R × V tile of accumulators for rows `i0..i0+R` of C and its first
    /// `count ≤ 8·V` columns from `j0` (`α·acc`, added to the old values when `accumulate`).
    unsafe fn tile<N: Simd, const R: usize, const V: usize>(
        &self,
        s: N,
        acc: [[N::V; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    );
}

/// A sink of the tn kernel, which also hands over whole blocks (its chunk sums).
pub(super) trait BlockSink: TileSink {
    /// Writes rows `0..k` of a block held in `part` (row stride `width`), columns
    /// `j0..j0+count` of C, as [`TileSink::tile`] does.
    unsafe fn block(
        &self,
        part: &[f32],
        width: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    );
}

/// A sink that can also take raw partial sums (the K blocks before the last).
pub(super) trait RowsSink: TileSink {
    /// Where the partial sums of the earlier K blocks go; the last block's tiles are then
    /// given to [`TileSink::tile`] with `accumulate`, and read them back.
    fn partial(&self) -> Dense;
}

/// A row-major C with row stride `ld`.
pub(super) struct Dense {
    pub(super) ptr: *mut f32,
    pub(super) ld: usize,
}

impl TileSink for Dense {
    #[inline(always)]
    unsafe fn tile<N: Simd, const R: usize, const V: usize>(
        &self,
        s: N,
        acc: [[N::V; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        let dst = self.ptr.add(i0 * self.ld + j0);
        store_tile(s, &acc, dst, self.ld, count, alpha, accumulate);
    }
}

impl BlockSink for Dense {
    unsafe fn block(
        &self,
        part: &[f32],
        width: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        for (i, prow) in part.chunks_exact(width).enumerate() {
            let crow = self.ptr.add(i * self.ld + j0);
            for (j, v) in prow[..count].iter().enumerate() {
                let d = crow.add(j);
                *d = if accumulate {
                    *d + alpha * v
                } else {
                    alpha * v
                };
            }
        }
    }
}

impl RowsSink for Dense {
    fn partial(&self) -> Dense {
        Dense {
            ptr: self.ptr,
            ld: self.ld,
        }
    }
}

/// `H = max(C + d, 0)`, `Z = g ⊙ H` per tile (partial sums of C kept in H).
pub(super) struct Relu {
    pub(super) h: *mut f32,
    pub(super) z: *mut f32,
    pub(super) ld: usize,
    pub(super) bias: *const f32,
    pub(super) gain: *const f32,
}

impl RowsSink for Relu {
    fn partial(&self) -> Dense {
        Dense {
            ptr: self.h,
            ld: self.ld,
        }
    }
}

impl TileSink for Relu {
    #[inline(always)]
    unsafe fn tile<N: Simd, const R: usize, const V: usize>(
        &self,
        s: N,
        acc: [[N::V; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        let a = s.splat(alpha);
        for v in 0..V {
            let j = j0 + v * L;
            let cnt = count.saturating_sub(v * L).min(L);
            if cnt == L {
                let (b, g) = (s.load(self.bias.add(j)), s.load(self.gain.add(j)));
                for (i, acc) in acc.iter().enumerate() {
                    let at = (i0 + i) * self.ld + j;
                    let hp = self.h.add(at);
                    let mut u = s.add(s.mul(a, acc[v]), b);
                    if accumulate {
                        u = s.add(u, s.load(hp));
                    }
                    // `u < 0 ? 0 : u` (`max(0, u)` returns its second operand for NaN): a NaN
                    // pre-activation stays NaN, as on the edge path below.
                    let hv = s.max(s.zero(), u);
                    s.store(hp, hv);
                    s.store(self.z.add(at), s.mul(g, hv));
                }
            } else {
                for (i, acc) in acc.iter().enumerate() {
                    let row = (i0 + i) * self.ld;
                    for (t, x) in s.to_array(acc[v]).iter().enumerate().take(cnt) {
                        let hp = self.h.add(row + j + t);
                        let mut u = alpha * x + *self.bias.add(j + t);
                        if accumulate {
                            u += *hp;
                        }
                        // The full vectors' rule (`u < 0 ? 0 : u`): NaN stays NaN on
                        // every path (`f32::max` would give 0).
                        *hp = if u < 0.0 { 0.0 } else { u };
                        *self.z.add(row + j + t) = *self.gain.add(j + t) * *hp;
                    }
                }
            }
        }
    }
}

/// Cᵀ added into a gathered matrix: element (i, j) of C goes to
/// `data[base[j] + offset[i]]` (always accumulating). Eight columns of C whose bases are
/// consecutive (eight neighbouring placements along an image row) are one vector add.
pub(super) struct Scatter<'a> {
    pub(super) data: *mut f32,
    pub(super) base: &'a [usize],
    pub(super) offset: &'a [usize],
}

impl Scatter<'_> {
    /// True when the bases of columns `j..j+8` are consecutive.
    #[inline(always)]
    unsafe fn run_of_8(&self, j: usize) -> bool {
        let b0 = *self.base.get_unchecked(j);
        (1..L).all(|t| *self.base.get_unchecked(j + t) == b0 + t)
    }
}

impl TileSink for Scatter<'_> {
    #[inline(always)]
    unsafe fn tile<N: Simd, const R: usize, const V: usize>(
        &self,
        s: N,
        acc: [[N::V; V]; R],
        i0: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        _accumulate: bool,
    ) {
        let a = s.splat(alpha);
        for v in 0..V {
            let j = j0 + v * L;
            let cnt = count.saturating_sub(v * L).min(L);
            if cnt == L && self.run_of_8(j) {
                let b = self.data.add(*self.base.get_unchecked(j));
                for (i, acc) in acc.iter().enumerate() {
                    let d = b.add(*self.offset.get_unchecked(i0 + i));
                    s.store(d, s.add(s.load(d), s.mul(a, acc[v])));
                }
            } else {
                for (i, acc) in acc.iter().enumerate() {
                    let off = *self.offset.get_unchecked(i0 + i);
                    for (t, x) in s.to_array(acc[v]).iter().enumerate().take(cnt) {
                        *self.data.add(*self.base.get_unchecked(j + t) + off) += alpha * x;
                    }
                }
            }
        }
    }
}

impl BlockSink for Scatter<'_> {
    unsafe fn block(
        &self,
        part: &[f32],
        width: usize,
        j0: usize,
        count: usize,
        alpha: f32,
        _accumulate: bool,
    ) {
        for (i, prow) in part.chunks_exact(width).enumerate() {
            let off = *self.offset.get_unchecked(i);
            for (j, v) in prow[..count].iter().enumerate() {
                *self.data.add(*self.base.get_unchecked(j0 + j) + off) += alpha * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::patch_gemm::tests::values;
    use crate::kernels::patch_gemm::{gathered_gemm_relu, gathered_gemm_scatter, GatherIndex};
    use crate::kernels::ConvShape;
    use crate::linalg::Mat;

    #[test]
    fn scatter_product_equals_col2im_of_the_product() {
        for isa in crate::simd::Isa::all() {
            isa.with(scatter_product_equals_col2im_of_the_product_here);
        }
    }

    fn scatter_product_equals_col2im_of_the_product_here() {
        // out += col2im(α·H·A): A a small gathered m × k (a decoder read transposed),
        // H n × m (codes), the target the patch index of a batch (n placements × k taps).
        // Output widths with whole runs of 8 placements (16, 24), with runs cut by row
        // ends (7, 10) and several channels (no runs); m not a multiple of 8 and beyond
        // one row chunk (MC).
        for &(h, w, ch, kern, m) in &[
            (20, 20, 1, 5, 16),
            (28, 28, 1, 5, 8),
            (11, 14, 1, 5, 3),
            (9, 9, 1, 3, 130),
            (8, 7, 3, 2, 5),
        ] {
            let shape = ConvShape::new(h, w, ch, kern).unwrap();
            let batch = 2;
            let (n, k) = (batch * shape.positions(), shape.patch_len());
            let dec = values(k * m, 11); // row-major k × m, read as Aᵀ
            let didx = GatherIndex::new((0..m).collect(), (0..k).map(|t| t * m).collect());
            let a = didx.over(&dec);
            let ldh = m + 3;
            let hm = values(n * ldh, 12);
            // reference: Y = H·A (n × k) in f64, then col2im
            let mut y = vec![0.0f32; n * k];
            for j in 0..n {
                for t in 0..k {
                    let v: f64 = (0..m)
                        .map(|r| hm[j * ldh + r] as f64 * dec[t * m + r] as f64)
                        .sum();
                    y[j * k + t] = (-0.5 * v) as f32;
                }
            }
            let start = values(batch * shape.image_len(), 13);
            let mut want = start.clone();
            crate::kernels::col2im_add(&shape, &y, &mut want);
            let mut got = start.clone();
            let idx = GatherIndex::patches(&shape, batch);
            let mut scratch = Vec::new();
            gathered_gemm_scatter(-0.5, &hm, ldh, a, idx.over_mut(&mut got), &mut scratch);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "{g} {w} ({shape:?})"
                );
            }
        }
    }

    #[test]
    fn relu_epilogue_equals_product_then_activation() {
        for isa in crate::simd::Isa::all() {
            isa.with(relu_epilogue_equals_product_then_activation_here);
        }
    }

    fn relu_epilogue_equals_product_then_activation_here() {
        // k beyond one block of B (partial sums through H), n with a partial vector.
        for &(m, k, n) in &[(23, 9, 16), (40, 140, 19), (7, 0, 8)] {
            let data = values(m * k, 14);
            let idx = GatherIndex::row_major(m, k, k);
            let a = idx.over(&data);
            let b = Mat::from_vec(k, n, values(k * n, 15));
            let bias = values(n, 16);
            let gain: Vec<f32> = values(n, 17).iter().map(|g| g.abs()).collect();
            let (mut h, mut z) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            let mut scratch = Vec::new();
            gathered_gemm_relu(a, b.view(), &bias, &gain, &mut h, &mut z, &mut scratch);
            for r in 0..m {
                for j in 0..n {
                    let u: f64 = (0..k)
                        .map(|t| data[r * k + t] as f64 * b[(t, j)] as f64)
                        .sum::<f64>()
                        + bias[j] as f64;
                    let want = u.max(0.0);
                    let got = h[r * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{got} {want}"
                    );
                    assert_eq!(z[r * n + j], gain[j] * h[r * n + j]);
                }
            }
        }
    }
}

//! Packing A into [`MR`]-row panels and B into [`NR`]-column panels, from any strides.
//!
//! A panel holds, for each step of k, the panel's rows side by side (`panel[k·MR + i]`);
//! a B panel holds, for each step of k, its columns side by side (`panel[k·NR + j]`), so
//! the micro-kernel reads both with unit stride. Row-major A and column-major B (a
//! transposed view) need a transposition: 8 × 8 blocks through the AVX2 level's shuffles, the edges
//! one element at a time.

use super::micro::{MR, NR};
use crate::simd::{Avx2, Simd, Simd8};

/// A strided operand: element (r, c) at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
pub(super) struct Strided {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Strided {
    #[inline(always)]
    unsafe fn at(self, r: usize, c: usize) -> *const f32 {
        self.ptr.offset(r as isize * self.rs + c as isize * self.cs)
    }
}

/// Packs rows `0..rows` and all `k` columns of `a` into panels of [`MR`] rows: panel p at
/// `dst + p·MR·k`, element (kk, i) at `k·MR·p + kk·MR + i`. Rows past `rows` in the last
/// panel are left as they are (the kernel does not read them).
///
/// # Safety
/// The CPU must have AVX-512F. `a` must address a readable `rows × k` matrix, `dst` must
/// have room for `rows.div_ceil(MR)·MR·k` floats.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn pack_a(a: Strided, rows: usize, k: usize, dst: *mut f32) {
    for p in 0..rows.div_ceil(MR) {
        let i0 = p * MR;
        let r = MR.min(rows - i0);
        let panel = dst.add(p * MR * k);
        let mut kk = 0;
        if a.cs == 1 && r == MR {
            while kk + 8 <= k {
                transpose8x8(a.at(i0, kk), a.rs, panel.add(kk * MR), MR as isize);
                kk += 8;
            }
        } else if a.rs == 1 {
            while kk < k {
                std::ptr::copy_nonoverlapping(a.at(i0, kk), panel.add(kk * MR), r);
                kk += 1;
            }
        }
        for kk in kk..k {
            for i in 0..r {
                *panel.add(kk * MR + i) = *a.at(i0 + i, kk);
            }
        }
    }
}

/// Packs the `kc × cols` block of `b` into panels of [`NR`] columns: panel q at
/// `dst + q·NR·kc`, element (kk, j) at `kk·NR + j`. Columns past `cols` in the last panel
/// are left as they are (the kernel masks them).
///
/// # Safety
/// The CPU must have AVX-512F. `b` must address a readable `kc × cols` matrix, `dst` must
/// have room for `cols.div_ceil(NR)·NR·kc` floats.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn pack_b(b: Strided, kc: usize, cols: usize, dst: *mut f32) {
    for q in 0..cols.div_ceil(NR) {
        let j0 = q * NR;
        let w = NR.min(cols - j0);
        let panel = dst.add(q * NR * kc);
        if b.cs == 1 {
            for kk in 0..kc {
                std::ptr::copy_nonoverlapping(b.at(kk, j0), panel.add(kk * NR), w);
            }
            continue;
        }
        let mut j = 0;
        if b.rs == 1 {
            while j + 8 <= w {
                let mut kk = 0;
                while kk + 8 <= kc {
                    transpose8x8(b.at(kk, j0 + j), b.cs, panel.add(kk * NR + j), NR as isize);
                    kk += 8;
                }
                for kk in kk..kc {
                    for jj in j..j + 8 {
                        *panel.add(kk * NR + jj) = *b.at(kk, j0 + jj);
                    }
                }
                j += 8;
            }
        }
        for kk in 0..kc {
            for jj in j..w {
                *panel.add(kk * NR + jj) = *b.at(kk, j0 + jj);
            }
        }
    }
}

/// `dst[c·ds + r] = src[r·ss + c]` for r, c < 8 ([`Simd8::transpose8`] of the AVX2 level).
///
/// # Safety
/// The CPU must have AVX2 and FMA; 8 rows of 8 floats readable at `src + r·ss`, writable
/// at `dst + c·ds`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn transpose8x8(src: *const f32, ss: isize, dst: *mut f32, ds: isize) {
    let s = Avx2::new_unchecked();
    let rows = std::array::from_fn(|i| s.load(src.offset(i as isize * ss)));
    for (j, v) in s.transpose8(rows).into_iter().enumerate() {
        s.store(dst.offset(j as isize * ds), v);
    }
}

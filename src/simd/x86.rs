//! The x86-64 levels: AVX2 + FMA (`__m256`) and AVX-512F (`__m512`) through `core::arch`.
//!
//! The tokens [`Avx2`] and [`Avx512`] are built only inside [`run_avx2`] and
//! [`run_avx512`], whose callers guarantee the CPU has the features; every method is
//! `#[inline(always)]`, so it is compiled into the caller's target-feature context.

use super::{Kernel, Simd, Simd8};
use std::arch::x86_64::*;

/// Token of the AVX2 + FMA level: exists only when the CPU has AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

/// Runs `k` with AVX2 and FMA enabled.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn run_avx2<K: Kernel>(k: K) -> K::Output {
    k.run(Avx2(()))
}

impl Avx2 {
    /// The token, for code already compiled with AVX2 and FMA enabled (the packed GEMM's
    /// AVX-512 routines).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx2 {
        Avx2(())
    }
}

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;
    type Narrow = Avx2;

    #[inline(always)]
    fn narrow(self) -> Avx2 {
        self
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY (this and every method below): an `Avx2` token exists only when the CPU
        // has AVX2 and FMA (see `run_avx2`).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32, v: __m256) {
        _mm256_stream_ps(p, v)
    }
    #[inline(always)]
    fn fence_streams(self) {
        // SAFETY: sfence only orders the preceding streaming stores before later stores.
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // vmaxps returns its second operand when either is NaN or both are zeros.
        // SAFETY: see `splat`.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
    }
    #[inline(always)]
    fn sqrt(self, a: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_sqrt_ps(a) }
    }
    #[inline(always)]
    fn select_gt(self, a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)) }
    }
    #[inline(always)]
    fn select_eq(self, a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        // SAFETY: see `splat`.
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)) }
    }
    #[inline(always)]
    fn reduce_add(self, a: __m256) -> f32 {
        // SAFETY: see `splat`.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
        }
    }
    #[inline(always)]
    fn to_array(self, a: __m256) -> [f32; 16] {
        let mut out = [0.0; 16];
        // SAFETY: see `splat`; out has room for 8 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), a) };
        out
    }
    #[inline(always)]
    unsafe fn compress_nonzero(self, v: __m256, base: u32, vals: *mut f32, idx: *mut u32) -> usize {
        // The lanes to keep as a bit mask, then the permutation that packs them (AVX2 has
        // no compress instruction): the mask's set bits, from a table.
        let keep = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps()));
        let order = &COMPRESS8[keep as usize];
        let perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64(order.as_ptr() as *const __m128i));
        _mm256_storeu_ps(vals, _mm256_permutevar8x32_ps(v, perm));
        let lanes = _mm256_add_epi32(perm, _mm256_set1_epi32(base as i32));
        _mm256_storeu_si256(idx as *mut __m256i, lanes);
        keep.count_ones() as usize
    }
}

/// For each 8-bit mask, its set bits' positions in ascending order (then zeros): the
/// permutation that packs the kept lanes of an 8-lane vector to its front.
static COMPRESS8: [[u8; 8]; 256] = compress_table();

const fn compress_table() -> [[u8; 8]; 256] {
    let mut t = [[0u8; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut n, mut bit) = (0, 0);
        while bit < 8 {
            if (m >> bit) & 1 == 1 {
                t[m][n] = bit as u8;
                n += 1;
            }
            bit += 1;
        }
        m += 1;
    }
    t
}

#[cfg(drsae_avx512)]
pub(crate) use avx512::run_avx512;

// Built only with Rust >= 1.89 (`drsae_avx512`, set by build.rs), where these intrinsics are
// stable; clippy checks them against the MSRV without knowing that.
#[cfg(drsae_avx512)]
impl Simd8 for Avx2 {
    #[inline(always)]
    fn transpose8(self, m: [__m256; 8]) -> [__m256; 8] {
        // SAFETY: see `splat`. Unpacks interleave rows in pairs within each 128-bit half,
        // the shuffles gather four rows' column pairs, the cross-half permutes join the
        // low halves (columns 0–3) and the high halves (columns 4–7).
        unsafe {
            let t0 = _mm256_unpacklo_ps(m[0], m[1]);
            let t1 = _mm256_unpackhi_ps(m[0], m[1]);
            let t2 = _mm256_unpacklo_ps(m[2], m[3]);
            let t3 = _mm256_unpackhi_ps(m[2], m[3]);
            let t4 = _mm256_unpacklo_ps(m[4], m[5]);
            let t5 = _mm256_unpackhi_ps(m[4], m[5]);
            let t6 = _mm256_unpacklo_ps(m[6], m[7]);
            let t7 = _mm256_unpackhi_ps(m[6], m[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ]
        }
    }
}

#[allow(clippy::incompatible_msrv)]
mod avx512 {
    use super::{Avx2, Kernel, Simd};
    use std::arch::x86_64::*;

    /// Token of the AVX-512 level: exists only when the CPU has AVX-512F, AVX2 and FMA.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx512(());

    /// Runs `k` with AVX-512F (and AVX2, FMA) enabled.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(crate) unsafe fn run_avx512<K: Kernel>(k: K) -> K::Output {
        k.run(Avx512(()))
    }

    impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;
        type Narrow = Avx2;

        #[inline(always)]
        fn narrow(self) -> Avx2 {
            // An Avx512 token implies AVX2 and FMA (checked together at detection).
            Avx2(())
        }
        #[inline(always)]
        fn splat(self, x: f32) -> __m512 {
            // SAFETY (this and every method below): an `Avx512` token exists only when the
            // CPU has AVX-512F (see `run_avx512`).
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn store_stream(self, p: *mut f32, v: __m512) {
            _mm512_stream_ps(p, v)
        }
        #[inline(always)]
        fn fence_streams(self) {
            // SAFETY: sfence only orders the preceding streaming stores before later stores.
            unsafe { _mm_sfence() }
        }
        #[inline(always)]
        fn add(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn sub(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_sub_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        fn div(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_div_ps(a, b) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn max(self, a: __m512, b: __m512) -> __m512 {
            // vmaxps returns its second operand when either is NaN or both are zeros.
            // SAFETY: see `splat`.
            unsafe { _mm512_max_ps(a, b) }
        }
        #[inline(always)]
        fn min(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_min_ps(a, b) }
        }
        #[inline(always)]
        fn abs(self, a: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_abs_ps(a) }
        }
        #[inline(always)]
        fn sqrt(self, a: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_sqrt_ps(a) }
        }
        #[inline(always)]
        fn select_gt(self, a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b), y, x) }
        }
        #[inline(always)]
        fn select_eq(self, a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
            // SAFETY: see `splat`.
            unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b), y, x) }
        }
        #[inline(always)]
        fn reduce_add(self, a: __m512) -> f32 {
            // A fixed tree: halves, then the 8-lane sum of the AVX2 level.
            // SAFETY: see `splat`; the token implies AVX2 too.
            unsafe {
                let lo = _mm512_castps512_ps256(a);
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)));
                self.narrow().reduce_add(_mm256_add_ps(lo, hi))
            }
        }
        #[inline(always)]
        fn to_array(self, a: __m512) -> [f32; 16] {
            let mut out = [0.0; 16];
            // SAFETY: see `splat`; out has room for 16 values.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), a) };
            out
        }
        #[inline(always)]
        unsafe fn compress_nonzero(
            self,
            v: __m512,
            base: u32,
            vals: *mut f32,
            idx: *mut u32,
        ) -> usize {
            // Compress in registers, then plain full-width stores (the compressing store to
            // memory is slow on AMD's cores).
            let keep = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps());
            _mm512_storeu_ps(vals, _mm512_maskz_compress_ps(keep, v));
            let lanes = _mm512_add_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(base as i32),
            );
            _mm512_storeu_epi32(idx as *mut i32, _mm512_maskz_compress_epi32(keep, lanes));
            keep.count_ones() as usize
        }
    }
}

//! The portable level: `wide::f32x8`, compiled with the build's own target features.

use super::{Simd, Simd8};
use wide::{f32x8, CmpEq, CmpGt, CmpLt};

/// Token of the portable level (always supported).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable(());

impl Portable {
    pub(crate) fn new() -> Portable {
        Portable(())
    }
}

impl Simd for Portable {
    const LANES: usize = 8;
    type V = f32x8;
    type Narrow = Portable;

    #[inline(always)]
    fn narrow(self) -> Portable {
        self
    }
    #[inline(always)]
    fn splat(self, x: f32) -> f32x8 {
        f32x8::splat(x)
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32x8 {
        f32x8::from(std::ptr::read_unaligned(p as *const [f32; 8]))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32x8) {
        std::ptr::write_unaligned(p as *mut [f32; 8], v.into());
    }
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32, v: f32x8) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
            let a: [f32; 8] = v.into();
            // SAFETY: SSE is part of x86-64; the caller guarantees p..p + 8 writable and
            // 32-byte aligned, so both halves are 16-byte aligned as movntps needs.
            _mm_stream_ps(p, _mm_loadu_ps(a.as_ptr()));
            _mm_stream_ps(p.add(4), _mm_loadu_ps(a.as_ptr().add(4)));
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.store(p, v);
    }
    #[inline(always)]
    fn fence_streams(self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE is part of x86-64; sfence only orders the preceding streaming stores
        // before later stores.
        unsafe {
            std::arch::x86_64::_mm_sfence()
        };
    }
    #[inline(always)]
    fn add(self, a: f32x8, b: f32x8) -> f32x8 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32x8, b: f32x8) -> f32x8 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32x8, b: f32x8) -> f32x8 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32x8, b: f32x8) -> f32x8 {
        a / b
    }
    #[inline(always)]
    fn mul_add(self, a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn max(self, a: f32x8, b: f32x8) -> f32x8 {
        // Written out (not `fast_max`, whose NaN result `wide` leaves unspecified).
        a.cmp_gt(b).blend(a, b)
    }
    #[inline(always)]
    fn min(self, a: f32x8, b: f32x8) -> f32x8 {
        a.cmp_lt(b).blend(a, b)
    }
    #[inline(always)]
    fn abs(self, a: f32x8) -> f32x8 {
        a.abs()
    }
    #[inline(always)]
    fn sqrt(self, a: f32x8) -> f32x8 {
        a.sqrt()
    }
    #[inline(always)]
    fn select_gt(self, a: f32x8, b: f32x8, x: f32x8, y: f32x8) -> f32x8 {
        a.cmp_gt(b).blend(x, y)
    }
    #[inline(always)]
    fn select_eq(self, a: f32x8, b: f32x8, x: f32x8, y: f32x8) -> f32x8 {
        a.cmp_eq(b).blend(x, y)
    }
    #[inline(always)]
    fn reduce_add(self, a: f32x8) -> f32 {
        a.reduce_add()
    }
    #[inline(always)]
    fn to_array(self, a: f32x8) -> [f32; 16] {
        let mut out = [0.0; 16];
        out[..8].copy_from_slice(&a.to_array());
        out
    }
}

impl Simd8 for Portable {
    #[inline(always)]
    fn transpose8(self, m: [f32x8; 8]) -> [f32x8; 8] {
        f32x8::transpose(m)
    }
}

//! Run-time selection of the SIMD instruction set the kernels use.
//!
//! The CPU is examined once, on the first kernel call (or the first call of [`level`]), and
//! the best of three levels is chosen:
//!
//! | [`Level`] | needs | vectors |
//! | --- | --- | --- |
//! | [`Level::Avx512`] | x86-64 with AVX-512F (and AVX2, FMA) | 16 f32, fused multiply-add |
//! | [`Level::Avx2Fma`] | x86-64 with AVX2 and FMA | 8 f32, fused multiply-add |
//! | [`Level::Portable`] | anything (`wide::f32x8`) | 8 f32 as the build's target features allow |
//!
//! What runs at the level: shrinkage and its backward pass, group norms, dot / axpy / sum,
//! the few-row, sparse and patch GEMMs (the patch GEMMs in vectors of 8 lanes on every
//! level), the fused rank updates and im2col / col2im. The large GEMMs run on drsae's
//! packed AVX-512 kernel at [`Level::Avx512`] and on matrixmultiply (which picks its own
//! kernels at run time) at the other levels.
//!
//! The x86 levels are compiled into every x86-64 build, whatever its `-C target-cpu`, so a
//! crate that depends on drsae with the default x86-64 baseline gets them too. The portable
//! level is what other architectures (aarch64: NEON) run; on x86-64 it runs as the build's
//! target features allow (two SSE halves per vector in a baseline build).
//!
//! # Choosing a level by hand
//! - The environment variable `DRSAE_SIMD=portable|avx2|avx512`, read once at detection:
//!   a level above what the CPU has falls back to the best one it has (never to an
//!   instruction the CPU lacks); an unrecognised value is ignored.
//! - [`force`], for tests and benchmarks: takes effect for the kernel calls that start after
//!   it, in every thread. Forcing while other threads run kernels is allowed (every level is
//!   correct) but then those products may mix levels, and the results of different levels
//!   differ in the last bits where fused multiply-adds are used (see below).
//!
//! # What may differ between levels
//! Element-wise kernels (shrinkage, masks, their backward pass) give identical bits on every
//! level, NaN and signed zeros included. Reductions and products (dot products, group norms,
//! the few-row and sparse GEMMs, rank updates) sum in a level-dependent order and, on the
//! x86 levels, with fused multiply-adds (one rounding instead of two); the portable level
//! fuses only when the build enables FMA (or on aarch64). The large GEMMs sum in the packed
//! kernel's order at the AVX-512 level and in matrixmultiply's at the others. The difference
//! is a few units in the last place of each partial sum, bounded in the tests by
//! `k·ε·Σ|a_i b_i|`-type bounds.
//! Within one level, results do not depend on the thread count.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

mod portable;
pub(crate) use portable::Portable;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(all(target_arch = "x86_64", drsae_avx512))]
pub(crate) use x86::Avx2;

/// A SIMD instruction set the kernels can run on, from the least to the most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// `wide::f32x8`: whatever the build's target features give (any architecture).
    Portable,
    /// x86-64 AVX2 with FMA: 8 lanes, fused multiply-add.
    Avx2Fma,
    /// x86-64 AVX-512F: 16 lanes, fused multiply-add.
    Avx512,
}

impl Level {
    /// Every level, least capable first.
    pub const ALL: [Level; 3] = [Level::Portable, Level::Avx2Fma, Level::Avx512];

    /// The level's name, as `DRSAE_SIMD` spells it: `"portable"`, `"avx2"` or `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2Fma => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The level named `name` (as [`Level::name`] gives it), if any.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name.trim())
    }

    /// True when this CPU can run the level (and this build has it: the AVX-512 level
    /// needs Rust ≥ 1.89 at build time).
    pub fn is_supported(self) -> bool {
        self <= best_available()
    }

    fn code(self) -> u8 {
        match self {
            Level::Portable => 1,
            Level::Avx2Fma => 2,
            Level::Avx512 => 3,
        }
    }

    fn from_code(c: u8) -> Level {
        match c {
            3 => Level::Avx512,
            2 => Level::Avx2Fma,
            _ => Level::Portable,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// 0 until detection; then the `code` of the level in use (always a supported one).
static LEVEL: AtomicU8 = AtomicU8::new(0);
/// 0 until detected; then the `code` of the best level this CPU supports.
static BEST: AtomicU8 = AtomicU8::new(0);

/// The best level this CPU (and build) supports, detected once.
fn best_available() -> Level {
    match BEST.load(Ordering::Relaxed) {
        0 => {
            let best = detect();
            BEST.store(best.code(), Ordering::Relaxed);
            best
        }
        c => Level::from_code(c),
    }
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(drsae_avx512)]
        if avx2 && std::arch::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if avx2 {
            return Level::Avx2Fma;
        }
    }
    Level::Portable
}

/// The level the kernels run at: the best this CPU supports, or the one asked for by
/// `DRSAE_SIMD` (capped at the best supported) or by [`force`].
///
/// # Examples
/// ```
/// let level = drsae::simd::level();
/// assert!(drsae::simd::available().contains(&level));
/// ```
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let best = best_available();
            let wanted = std::env::var("DRSAE_SIMD")
                .ok()
                .and_then(|v| Level::from_name(&v))
                .map_or(best, |w| w.min(best));
            // A concurrent `force` wins over the detection.
            match LEVEL.compare_exchange(0, wanted.code(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => wanted,
                Err(c) => Level::from_code(c),
            }
        }
        c => Level::from_code(c),
    }
}

/// The levels this CPU supports, least capable first (always starts with
/// [`Level::Portable`]).
pub fn available() -> Vec<Level> {
    Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// The CPU's model name as the OS reports it (Linux's `/proc/cpuinfo`), or the
/// architecture's name where it does not: the provenance results files record.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Makes the kernels run at `level` from now on (in every thread), for tests and
/// benchmarks.
///
/// # Errors
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) if the CPU does not support
/// `level`; the level in use is then unchanged.
///
/// # Examples
/// ```
/// use drsae::simd::{self, Level};
/// simd::force(Level::Portable).unwrap();
/// assert_eq!(simd::level(), Level::Portable);
/// ```
pub fn force(level: Level) -> crate::Result<()> {
    if !level.is_supported() {
        let names: Vec<&str> = available().into_iter().map(Level::name).collect();
        return Err(crate::Error::param(
            "simd level",
            format!(
                "{level} is not supported here (available: {})",
                names.join(", ")
            ),
        ));
    }
    LEVEL.store(level.code(), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// The level [`Isa::with`] set for this thread's kernels.
    static TEST_ISA: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// Proof that a level is supported: only built from checked levels, so [`dispatch`] may run
/// its instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Isa(Level);

impl Isa {
    /// The level in use ([`level`]; in unit tests, the one [`Isa::with`] set for this
    /// thread, if any).
    #[inline]
    pub(crate) fn current() -> Isa {
        #[cfg(test)]
        if let Some(isa) = TEST_ISA.with(|t| t.get()) {
            return isa;
        }
        Isa(level())
    }

    /// Runs `f` with the kernels this thread calls at the level `self` (unit tests only:
    /// other threads and the process's level are unaffected).
    #[cfg(test)]
    pub(crate) fn with<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Isa>);
        impl Drop for Restore {
            fn drop(&mut self) {
                TEST_ISA.with(|t| t.set(self.0));
            }
        }
        let _restore = Restore(TEST_ISA.with(|t| t.replace(Some(self))));
        f()
    }

    /// `level` if the CPU supports it.
    #[cfg(test)]
    pub(crate) fn new(level: Level) -> Option<Isa> {
        level.is_supported().then_some(Isa(level))
    }

    /// Every supported level, for the tests that compare them.
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Isa> {
        available().into_iter().map(Isa).collect()
    }

    /// f32 lanes of the level's vectors ([`Simd::LANES`]).
    pub(crate) fn lanes(self) -> usize {
        match self.0 {
            Level::Avx512 => 16,
            _ => 8,
        }
    }
}

/// A computation written once for every instruction set: [`dispatch`] calls `run` with
/// the token of the level, compiled inside a function that enables the level's target
/// features, so everything `run` inlines (`#[inline(always)]` throughout) becomes that
/// level's instructions.
pub(crate) trait Kernel {
    type Output;
    fn run<S: Simd>(self, s: S) -> Self::Output;
}

/// Runs `k` at the level `isa`.
#[inline]
pub(crate) fn dispatch<K: Kernel>(isa: Isa, k: K) -> K::Output {
    match isa.0 {
        #[cfg(all(target_arch = "x86_64", drsae_avx512))]
        // SAFETY: an `Isa` holds only supported levels (`Isa::new`, and `level()` returns
        // only levels capped at `best_available`): this CPU has AVX-512F, AVX2 and FMA.
        Level::Avx512 => unsafe { x86::run_avx512(k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, this CPU has AVX2 and FMA.
        Level::Avx2Fma => unsafe { x86::run_avx2(k) },
        _ => k.run(Portable::new()),
    }
}

/// The vector operations the kernels are written with, for one instruction set. The
/// implementing types are zero-sized tokens that exist only where the instructions are
/// supported (see [`dispatch`]); every method is `#[inline(always)]`.
///
/// # Semantics, identical on every level
/// - `max(a, b)` is `if a > b { a } else { b }` lane by lane: the **second operand** when
///   either is NaN or both are zeros (the x86 `maxps` rule, written out with a compare and
///   a select on the portable level); `min(a, b)` is `if a < b { a } else { b }`.
/// - `select_gt(a, b, x, y)` is `if a > b { x } else { y }`, `select_eq` likewise with
///   `a == b`: ordered comparisons, false when either is NaN.
/// - `mul_add(a, b, c)` is `a·b + c`, fused (one rounding) on the x86 levels; on the
///   portable level fused only when the build has FMA (`wide`'s rule) — the one operation
///   whose rounding differs between levels.
/// - `add`, `sub`, `mul`, `div`, `sqrt` are the IEEE operations, `abs` clears the sign bit.
pub(crate) trait Simd: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// A vector of `LANES` f32.
    type V: Copy;
    /// The 8-lane set of the same machine (itself for 8-lane sets), for kernels whose data
    /// come in runs of 8.
    type Narrow: Simd8;

    fn narrow(self) -> Self::Narrow;
    fn splat(self, x: f32) -> Self::V;
    /// # Safety
    /// `p..p + LANES` must be readable (no alignment needed).
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// # Safety
    /// `p..p + LANES` must be writable (no alignment needed).
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// A non-temporal store where the level has one (a plain store otherwise); call
    /// [`Simd::fence_streams`] after the last one.
    ///
    /// # Safety
    /// `p..p + LANES` must be writable and `p` aligned to `4·LANES` bytes.
    unsafe fn store_stream(self, p: *mut f32, v: Self::V);
    /// Orders the preceding [`Simd::store_stream`]s before later stores.
    fn fence_streams(self);
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    fn abs(self, a: Self::V) -> Self::V;
    fn sqrt(self, a: Self::V) -> Self::V;
    fn select_gt(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    fn select_eq(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// The sum of the lanes, in a fixed order of the level.
    fn reduce_add(self, a: Self::V) -> f32;
    fn to_array(self, a: Self::V) -> [f32; 16];

    /// Writes the non-zero lanes of `v` (`!= 0.0`: NaN is kept, ±0 is not) to `vals` and
    /// their lane numbers plus `base` to `idx`, in lane order, at the front; returns their
    /// count. The entries past the count may be overwritten with anything.
    ///
    /// # Safety
    /// `vals..vals + LANES` and `idx..idx + LANES` must be writable.
    #[inline(always)]
    unsafe fn compress_nonzero(
        self,
        v: Self::V,
        base: u32,
        vals: *mut f32,
        idx: *mut u32,
    ) -> usize {
        let lanes = self.to_array(v);
        let mut n = 0;
        for (lane, &x) in lanes[..Self::LANES].iter().enumerate() {
            // Branch-free: write every lane, keep the non-zeros.
            *vals.add(n) = x;
            *idx.add(n) = base + lane as u32;
            n += (x != 0.0) as usize;
        }
        n
    }

    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }
    /// Loads `s[..LANES]`.
    #[inline(always)]
    fn load_s(self, s: &[f32]) -> Self::V {
        assert!(s.len() >= Self::LANES);
        // SAFETY: LANES values are in bounds (asserted; the check folds away in chunked
        // loops).
        unsafe { self.load(s.as_ptr()) }
    }
    /// Stores into `d[..LANES]`.
    #[inline(always)]
    fn store_s(self, d: &mut [f32], v: Self::V) {
        assert!(d.len() >= Self::LANES);
        // SAFETY: as in `load_s`, for a write.
        unsafe { self.store(d.as_mut_ptr(), v) }
    }
}

/// The 8-lane sets (every level's [`Simd::Narrow`]): operations on 8 × 8 blocks.
pub(crate) trait Simd8: Simd {
    /// The transpose of the 8 × 8 matrix whose rows are `m`'s vectors: lane `i` of the
    /// result's vector `j` is lane `j` of `m[i]` (exact: data movement only).
    fn transpose8(self, m: [Self::V; 8]) -> [Self::V; 8];
}

/// The scalar `max` of [`Simd`]: `if a > b { a } else { b }`.
#[inline(always)]
pub(crate) fn max_s(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// The scalar `min` of [`Simd`]: `if a < b { a } else { b }`.
#[inline(always)]
pub(crate) fn min_s(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn names_round_trip_and_order() {
        for l in Level::ALL {
            assert_eq!(Level::from_name(l.name()), Some(l));
            assert_eq!(l.to_string(), l.name());
        }
        assert_eq!(Level::from_name("sse"), None);
        assert!(Level::Portable < Level::Avx2Fma && Level::Avx2Fma < Level::Avx512);
    }

    #[test]
    fn available_is_a_prefix_and_contains_the_level() {
        let a = available();
        assert_eq!(a[0], Level::Portable);
        assert_eq!(a, Level::ALL[..a.len()].to_vec());
        assert!(a.contains(&level()));
        assert!(Isa::new(*a.last().unwrap()).is_some());
        if a.len() < Level::ALL.len() {
            assert!(Isa::new(Level::Avx512).is_none());
        }
    }

    struct Ops;
    impl Kernel for Ops {
        type Output = Vec<f32>;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> Vec<f32> {
            let nan = f32::NAN;
            let a = s.splat(nan);
            let b = s.splat(1.0);
            let z = s.splat(0.0);
            let nz = s.splat(-0.0);
            let r = [
                s.max(a, b),
                s.max(b, a),
                s.min(a, b),
                s.min(b, a),
                s.max(z, nz),
                s.max(nz, z),
                s.select_gt(a, b, b, z),
                s.select_eq(a, a, b, z),
                s.abs(s.splat(-2.0)),
                s.mul_add(s.splat(2.0), s.splat(3.0), b),
                s.sqrt(s.splat(4.0)),
                s.div(b, s.splat(4.0)),
            ];
            let mut out: Vec<f32> = r.iter().map(|v| s.to_array(*v)[0]).collect();
            out.push(s.reduce_add(s.splat(1.5)));
            out
        }
    }

    #[test]
    fn operations_have_the_documented_semantics_on_every_level() {
        for isa in Isa::all() {
            let r = dispatch(isa, Ops);
            let lanes = isa.lanes() as f32;
            assert!(r[0] == 1.0 && r[1].is_nan(), "{isa:?} max {r:?}");
            assert!(r[2] == 1.0 && r[3].is_nan(), "{isa:?} min {r:?}");
            assert!(
                r[4].is_sign_negative() && r[5].is_sign_positive(),
                "{isa:?}"
            );
            assert_eq!(&r[6..], &[0.0, 0.0, 2.0, 7.0, 2.0, 0.25, 1.5 * lanes]);
        }
    }

    /// Compresses `v` (its first LANES values) at `base`, padded with 7s: (values, indices, count).
    struct Compress {
        v: [f32; 16],
        base: u32,
    }
    impl Kernel for Compress {
        type Output = (Vec<f32>, Vec<u32>, usize);
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> Self::Output {
            let (mut vals, mut idx) = (vec![7.0f32; 16], vec![7u32; 16]);
            // SAFETY: 16 ≥ LANES entries are writable, and v holds 16 values.
            let n = unsafe {
                let v = s.load(self.v.as_ptr());
                s.compress_nonzero(v, self.base, vals.as_mut_ptr(), idx.as_mut_ptr())
            };
            (vals, idx, n)
        }
    }

    #[test]
    fn compress_keeps_the_non_zeros_in_order_on_every_level() {
        let special = [
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE / 8.0,
            -1.5,
            2.0,
        ];
        let mut rng = crate::rng::seeded(4);
        for isa in Isa::all() {
            let lanes = isa.lanes();
            for case in 0..300 {
                let v: [f32; 16] = std::array::from_fn(|lane| {
                    let k = if case < 8 {
                        (lane + case) % 8
                    } else {
                        rng.gen_range(0..8)
                    };
                    // Mostly zeros in half the cases, as the codes are.
                    if case % 2 == 1 && rng.gen_bool(0.7) {
                        0.0
                    } else {
                        special[k]
                    }
                });
                let base = 1000 + case as u32;
                let (vals, idx, n) = dispatch(isa, Compress { v, base });
                let want: Vec<usize> = (0..lanes).filter(|&l| v[l] != 0.0).collect();
                assert_eq!(n, want.len(), "{isa:?} {v:?}");
                for (e, &l) in want.iter().enumerate() {
                    assert_eq!(idx[e], base + l as u32, "{isa:?} {v:?}");
                    assert_eq!(vals[e].to_bits(), v[l].to_bits(), "{isa:?} {v:?}");
                }
            }
        }
    }
}

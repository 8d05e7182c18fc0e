//! The level override: `DRSAE_SIMD` read once at detection, then `simd::force`. In its own
//! test binary (one process) because both change the level of the whole process.

use drsae::simd::{self, Level};

#[test]
fn environment_then_force() {
    // Read at the first detection, which has not happened yet in this process.
    std::env::set_var("DRSAE_SIMD", "portable");
    assert_eq!(simd::level(), Level::Portable);
    assert_eq!(drsae::simd_width(), "portable");
    // Read once: a later change is ignored.
    std::env::set_var("DRSAE_SIMD", "avx2");
    assert_eq!(simd::level(), Level::Portable);

    let available = simd::available();
    for &l in &available {
        simd::force(l).unwrap();
        assert_eq!(simd::level(), l);
        // The kernels run at the forced level and still agree with the references.
        let x: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.1).collect();
        let (mut a, mut b) = (vec![0.0; 37], vec![0.0; 37]);
        let theta = drsae::kernels::Theta::Uniform(0.5);
        drsae::kernels::shrink(drsae::kernels::Shrink::Signed, theta, &x, &mut a);
        drsae::kernels::shrink_reference(drsae::kernels::Shrink::Signed, theta, &x, &mut b);
        assert_eq!(a, b, "{l}");
    }
    for l in Level::ALL {
        if !available.contains(&l) {
            let e = simd::force(l).unwrap_err().to_string();
            assert!(e.contains(l.name()) && e.contains("not supported"), "{e}");
            assert_eq!(simd::level(), *available.last().unwrap());
        }
    }
}

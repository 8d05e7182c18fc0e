//! criterion benches of the SIMD kernels (elements/s).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use drsae::kernels::{shrink, shrink_reference, Groups, Shrink, Theta};
use rand::{Rng, SeedableRng};

fn bench(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut g = c.benchmark_group("shrink");
    for &n in &[4096usize, 1 << 20] {
        let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut y = vec![0.0; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("relu_simd", n), &n, |b, _| {
            b.iter(|| shrink(Shrink::NonNegative, Theta::Uniform(0.1), &x, &mut y))
        });
        g.bench_with_input(BenchmarkId::new("relu_scalar", n), &n, |b, _| {
            b.iter(|| shrink_reference(Shrink::NonNegative, Theta::Uniform(0.1), &x, &mut y))
        });
        g.bench_with_input(BenchmarkId::new("signed_simd", n), &n, |b, _| {
            b.iter(|| shrink(Shrink::Signed, Theta::Uniform(0.1), &x, &mut y))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("group_norms");
    let z: Vec<f32> = (0..4096).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let groups = Groups::disjoint(4096, 16).unwrap();
    let mut out = vec![0.0; 256];
    g.throughput(Throughput::Elements(4096));
    g.bench_function("blocks16_simd", |b| b.iter(|| groups.norms(&z, &mut out)));
    g.bench_function("blocks16_scalar", |b| {
        b.iter(|| groups.norms_reference(&z, &mut out))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

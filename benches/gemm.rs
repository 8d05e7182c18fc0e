//! criterion benches of GEMM at the DrSAE shapes (throughput in FLOP = 2mnk).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use drsae::linalg::{gemm, Mat};
use rand::SeedableRng;

fn bench(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut g = c.benchmark_group("sgemm");
    for &(m, k, n) in &[
        (256usize, 784usize, 400usize),
        (256, 400, 400),
        (256, 400, 784),
    ] {
        let a = Mat::random(m, k, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
        let b = Mat::random(k, n, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
        let mut out = Mat::zeros(m, n);
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{m}x{k}x{n}")),
            &(),
            |bch, _| bch.iter(|| gemm(1.0, a.view(), b.view(), 0.0, out.view_mut())),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

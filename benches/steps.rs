//! criterion benches of whole training steps (throughput in samples): DrSAE (n = 400,
//! T = 11, MNIST shapes, plain SGD) at minibatch 10 and 100, the convolutional
//! group-sparse auto-encoder (both layers of the `conv` example), the dense group-sparse
//! auto-encoder. `cargo run --release --example bench -- train|conv|models` prints the same
//! figures as JSON lines.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use drsae::kernels::{ConvShape, Groups};
use drsae::linalg::Mat;
use drsae::models::{
    ConvAe, ConvAeWorkspace, DrsaeNetwork, EncoderForm, GroupAe, GroupAeWorkspace,
};
use drsae::train::{DrsaeConfig, DrsaeStep, Optimizer, Schedule};
use rand::SeedableRng;

fn bench(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mnist = drsae::data::Mnist::load("data/mnist-sample").expect("bundled sample");
    let mut x = mnist.train.images.row_range(0, 1000).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    let labels = &mnist.train.labels[..1000];
    let mut g = c.benchmark_group("train_step");
    g.sample_size(20);
    for batch in [10usize, 100] {
        let cfg = DrsaeConfig {
            hidden: 400,
            steps: 11,
            batch,
            optimizer: Optimizer::Sgd,
            lr: 1e-3,
            schedule: Schedule::Constant,
            ..Default::default()
        };
        let mut model = DrsaeNetwork::init(&x, 400, 10, 11, &mut rng);
        let mut step = DrsaeStep::new(&model, &cfg);
        let weights = cfg.weights.unsupervised();
        let xb = x.row_range(0, batch).to_owned();
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("drsae_unsup", batch), &(), |b, _| {
            b.iter(|| {
                step.run(&mut model, &cfg, &xb, &labels[..batch], &weights, 1e-3)
                    .unwrap()
            })
        });
    }
    for (name, h, ch, maps) in [
        ("conv_l1_16maps", 28, 1, 16),
        ("conv_l2_32maps", 12, 16, 32),
    ] {
        let shape = ConvShape::new(h, h, ch, 5).unwrap();
        let model = ConvAe::init(shape, maps, EncoderForm::Relu, &mut rng);
        let xb = Mat::random(
            32,
            shape.image_len(),
            rand_distr::Uniform::new(0.0f32, 1.0),
            &mut rng,
        );
        let groups = Groups::spatial_pools(shape.out_h(), shape.out_w(), maps, 2, 2, 1).unwrap();
        let (mut ws, mut gr) = (ConvAeWorkspace::default(), model.zero_grads());
        g.throughput(Throughput::Elements(32));
        g.bench_with_input(BenchmarkId::new(name, 32), &(), |b, _| {
            b.iter(|| model.gradients(&xb, &groups, 0.05, &mut ws, &mut gr))
        });
    }
    let patches = Mat::random(100, 144, rand_distr::StandardNormal, &mut rng);
    let groups = Groups::grid(16, 16, 3, 1, None).unwrap();
    let ae = GroupAe::init(144, 256, EncoderForm::Relu, &mut rng);
    let (mut ws, mut gr) = (GroupAeWorkspace::default(), ae.zero_grads());
    g.throughput(Throughput::Elements(100));
    g.bench_with_input(BenchmarkId::new("group_ae", 100), &(), |b, _| {
        b.iter(|| {
            ae.forward(&patches, &groups, &mut ws);
            ae.backward(&patches, &groups, 0.3, &mut ws, &mut gr)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

use drsae::linalg::{set_gemm_threads, Mat};
use drsae::models::DrsaeNetwork;
use drsae::train::{DrsaeConfig, DrsaeStep, Optimizer, Schedule};
use rand::SeedableRng;
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let batch: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(100);
    let supervised = args.get(3).map(|s| s == "sup").unwrap_or(false);
    let secs: f64 = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(5.0);
    set_gemm_threads(threads);
    let (n, t) = (400, 11);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mnist = drsae::data::Mnist::load("/work/main/data/mnist-sample").unwrap();
    let mut x = mnist.train.images.row_range(0, 2000).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    let labels = &mnist.train.labels[..2000];
    let cfg = DrsaeConfig { hidden: n, steps: t, batch, optimizer: Optimizer::Sgd, lr: 1e-3, schedule: Schedule::Constant, ..Default::default() };
    let mut model = match std::env::var("MODEL").ok().filter(|p| !p.is_empty()) { Some(p) => drsae::io::load_drsae(p).unwrap().0, None => DrsaeNetwork::init(&x, n, 10, t, &mut rng) };
    let mut step = DrsaeStep::new(&model, &cfg);
    let weights = if supervised { cfg.weights } else { cfg.weights.unsupervised() };
    let nb = x.nrows() / batch;
    let batches: Vec<Mat> = (0..nb).map(|k| x.row_range(k * batch, (k + 1) * batch).to_owned()).collect();
    let start = Instant::now();
    let mut k = 0usize;
    let mut best = f64::MAX;
    while start.elapsed().as_secs_f64() < secs {
        let i = k % nb;
        let t0 = Instant::now();
        step.run(&mut model, &cfg, &batches[i], &labels[i * batch..(i + 1) * batch], &weights, 1e-3).unwrap();
        let dt = t0.elapsed().as_secs_f64();
        if k > nb { best = best.min(dt); }
        k += 1;
    }
    {
        let mut ws = drsae::models::DrsaeWorkspace::default();
        model.forward(&batches[0], None, &mut ws);
        let d: Vec<String> = (0..t).map(|st| { let z = ws.step_codes(batch, st).to_owned(); format!("{:.2}", z.as_slice().iter().filter(|&&v| v != 0.0).count() as f64 / (batch * n) as f64) }).collect();
        println!("density per step: {}", d.join(" "));
    }
    println!("steps {k}, mean {:.0} samples/s, best-step {:.0} samples/s", (k * batch) as f64 / start.elapsed().as_secs_f64(), batch as f64 / best);
}
#[allow(dead_code)]
fn densities() {}

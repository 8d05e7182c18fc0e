//! A topographic map: a group-sparse auto-encoder whose groups are overlapping pools on a
//! wrap-around grid of units, so that neighbouring units learn filters of similar
//! orientation (the estimator behind `drsae train topographic`). On patches of MNIST
//! strokes the map orders only weakly; natural-image patches give BENCHMARKS.md's maps.
//! `cargo run --release --example topographic`
use drsae::data::{sample_patches, GrayImage};
use drsae::prelude::*;
use rand::SeedableRng;

fn main() -> drsae::Result<()> {
    let mnist = Mnist::load("data/mnist-sample")?;
    let digits: Vec<GrayImage> = (mnist.train.images.rows())
        .map(|r| GrayImage {
            width: 28,
            height: 28,
            pixels: r.to_vec(),
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let patches = sample_patches(&digits, 12, 20_000, &mut rng)?;
    // The defaults: 12 × 12 units, 3 × 3 pools, a first stage with 5 × 5 pools, ZCA.
    let params = GroupSparse::params()
        .preprocessing(Preprocessor::Contrast { floor: 0.05 })
        .epochs(20)
        .check()?;
    let model = params.fit(&patches)?;
    let pools = model.group_norms(patches.row_range(0, 1000))?; // the invariant features
    let active = pools.as_slice().iter().filter(|v| **v > 0.0).count();
    println!(
        "{} units, {} pools: {:.1} active pools per patch",
        model.hidden(),
        pools.ncols(),
        active as f64 / pools.nrows() as f64
    );
    if let Some(map) = model.orientation_map() {
        println!(
            "orientation map: neighbour/random difference {:.3} (1 = no order), {} pinwheels",
            map.neighbor_ratio, map.pinwheels
        );
    }
    Ok(())
}

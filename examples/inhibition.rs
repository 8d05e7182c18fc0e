//! Structured sparse coding by lateral inhibition: units on a tree inhibit every unit that
//! is neither their ancestor nor their descendant, so the active units of a code lie on one
//! root-to-leaf path (the estimator behind `drsae train inhibition`).
//! `cargo run --release --example inhibition`
use drsae::models::tree_related;
use drsae::prelude::*;

fn main() -> drsae::Result<()> {
    let mnist = Mnist::load("data/mnist-sample")?;
    let model = Inhibition::params()
        .structure(InhibitionStructure::Tree {
            branching: 3,
            depth: 3,
        }) // 13 units
        .epochs(3)
        .check()?
        .fit(mnist.train.images.row_range(0, 3000))?;
    let codes = model.encode(mnist.test.images.row_range(0, 500))?;
    let on_one_path = codes
        .rows()
        .filter(|z| {
            let active: Vec<usize> = (0..z.len()).filter(|&j| z[j] != 0.0).collect();
            active
                .iter()
                .all(|&i| active.iter().all(|&j| tree_related(3, i, j)))
        })
        .count();
    let nnz = codes.as_slice().iter().filter(|v| **v != 0.0).count();
    println!(
        "{} units: {:.2} active per digit, {on_one_path} of {} codes on one root-to-leaf path",
        model.hidden(),
        nnz as f64 / codes.nrows() as f64,
        codes.nrows()
    );
    Ok(())
}

//! Sparse coding of MNIST digits over a dictionary of digits: the exact batch lasso, then a
//! LISTA encoder trained to predict its codes in three steps (the estimators behind
//! `drsae lasso` and `drsae train lista`). `cargo run --release --example lasso`
use drsae::estimators::code_error;
use drsae::prelude::*;

fn main() -> drsae::Result<()> {
    let mnist = Mnist::load("data/mnist-sample")?;
    let images = &mnist.train.images;
    // Atoms: the first 100 training images, each scaled to unit norm.
    let lasso = Lasso::params()
        .lambda(0.5)
        .solver(Solver::Exact)
        .unit_atoms(true)
        .check()?
        .fit(&images.row_range(0, 100).to_owned())?;
    let test = mnist.test.images.row_range(0, 500).to_owned();
    let (exact, stats) = lasso.solve(&test)?;
    println!(
        "exact lasso: objective {:.2}, duality gap {:.1e}, {:.1} non-zeros per code",
        stats.objective, stats.duality_gap, stats.mean_nnz
    );
    // LISTA learns to map an input to its lasso code, from 2,000 other training images.
    let lista = ListaEncoder::params()
        .iters(3)
        .epochs(10)
        .check()?
        .fit(&lasso, images.row_range(100, 2100))?;
    let error = code_error(&lista.encode(&test)?, &exact);
    println!("LISTA, 3 steps: relative code error {error:.3} on held-out digits");
    Ok(())
}

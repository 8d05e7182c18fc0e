//! A convolutional group-sparse auto-encoder on MNIST (shared 5 × 5 filters, L2 pooling
//! over 2 × 2 windows of each map), then a softmax classifier on its pooled features (the
//! estimator behind `drsae train conv`). `cargo run --release --example conv`
use drsae::models::Softmax;
use drsae::prelude::*;
use drsae::train::{train_softmax, SoftmaxConfig};

fn main() -> drsae::Result<()> {
    let mnist = Mnist::load("data/mnist-sample")?;
    let layer = Convolutional::params()
        .maps(8)
        .epochs(2)
        .check()?
        .fit(mnist.train.images.row_range(0, 3000))?;
    // 12 × 12 pooled positions × 8 maps per image.
    let features = layer.pooled(&mnist.train.images)?;
    let test = layer.pooled(&mnist.test.images)?;
    let mut classifier = Softmax::new(features.ncols(), 10);
    let config = SoftmaxConfig {
        epochs: 5,
        ..SoftmaxConfig::default()
    };
    train_softmax(
        &mut classifier,
        &features,
        &mnist.train.labels,
        &config,
        |_, _, _| {},
    )?;
    println!(
        "{} pooled features per image: test error {:.2} %",
        features.ncols(),
        classifier.error_percent(&test, &mnist.test.labels)
    );
    Ok(())
}

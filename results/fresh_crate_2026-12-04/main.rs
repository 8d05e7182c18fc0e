use drsae::prelude::*;

fn main() -> drsae::Result<()> {
    // MNIST's four IDX files: drsae's bundled sample (data/mnist-sample) or the full set.
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/mnist-sample".into());
    let mnist = Mnist::load(dir)?;
    let model = Drsae::params() // 400 units, 11 steps; every default in DrsaeParams' docs
        .epochs_unsup(3)
        .epochs_sup(25)
        .progress(true) // one line per epoch on stderr
        .fit(&mnist.train)?; // holds out the last sixth for validation
    let accuracy = model.score(&mnist.test.images, &mnist.test.labels)?;
    println!("test error {:.2} %", 100.0 * (1.0 - accuracy));
    let digit = model.predict(mnist.test.images.row(0))?[0]; // one raw image
    println!(
        "the first test image is a {digit} (label {})",
        mnist.test.labels[0]
    );
    model.save("model.safetensors")?; // weights, preprocessing and settings
    Ok(())
}

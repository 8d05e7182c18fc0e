//! The front door, used as a dependent crate uses it: parameters checked by name, fitted
//! models that keep their preprocessing, take one row or many, and survive a save/load.

use drsae::prelude::*;
use drsae::train::Optimizer as Opt;

fn sample(n: usize) -> LabelledImages {
    Mnist::load("data/mnist-sample").unwrap().train.take(n)
}

fn small() -> DrsaeParams {
    Drsae::params()
        .hidden(24)
        .steps(3)
        .batch(50)
        .epochs_unsup(1)
        .epochs_sup(3)
}

fn invalid_field(r: drsae::Result<impl std::fmt::Debug>) -> &'static str {
    match r {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected an invalid parameter, got {other:?}"),
    }
}

#[test]
fn invalid_parameters_are_named() {
    let data = sample(60);
    assert_eq!(invalid_field(Drsae::params().hidden(0).check()), "hidden");
    assert_eq!(
        invalid_field(Drsae::params().hidden(1 << 40).check()),
        "hidden"
    );
    assert_eq!(
        invalid_field(Drsae::params().steps(1_000_000_000).check()),
        "steps"
    );
    assert_eq!(
        invalid_field(Drsae::params().batch(usize::MAX).check()),
        "batch"
    );
    assert_eq!(invalid_field(Drsae::params().lr(f32::NAN).check()), "lr");
    assert_eq!(
        invalid_field(Drsae::params().average(1.0).check()),
        "average"
    );
    assert_eq!(
        invalid_field(Drsae::params().time_budget(-1.0).check()),
        "time_budget"
    );
    // Upper bounds: far above anything that trains, finite values that would only diverge
    // or silence every unit after the data is loaded.
    assert_eq!(
        invalid_field(Drsae::params().time_budget(1e30).check()),
        "time_budget"
    );
    assert_eq!(invalid_field(Drsae::params().lr(1e30).check()), "lr");
    assert_eq!(invalid_field(Drsae::params().lr(10.5).check()), "lr");
    assert_eq!(
        invalid_field(Drsae::params().sparsity(1e30).check()),
        "weights"
    );
    assert_eq!(invalid_field(Drsae::params().e_max(1e30).check()), "e_max");
    assert_eq!(
        invalid_field(Drsae::params().classifier_lr(1e30).check()),
        "classifier_lr"
    );
    assert!(Drsae::params()
        .lr(10.0)
        .sparsity(1e4)
        .e_max(1e3)
        .time_budget(1e7)
        .check()
        .is_ok());
    assert_eq!(
        invalid_field(
            Drsae::params()
                .validation(Validation::Fraction(1.5))
                .check()
        ),
        "validation"
    );
    assert_eq!(
        invalid_field(Drsae::params().checkpoint_every(10).check()),
        "checkpoint_dir"
    );
    assert_eq!(
        invalid_field(
            Drsae::params()
                .preprocessing(Preprocessor::Contrast { floor: 0.0 })
                .check()
        ),
        "preprocessing"
    );
    // Checked by `fit` too, before any work.
    assert_eq!(
        invalid_field(small().epochs_sup(0).fit(&data)),
        "epochs_sup"
    );
    assert_eq!(
        invalid_field(small().validation(Validation::Last(60)).fit(&data)),
        "validation"
    );
    assert!(Drsae::params().check().is_ok());
}

#[test]
fn bad_data_is_an_error_not_a_panic() {
    let data = sample(60);
    let mut wrong_labels = data.clone();
    wrong_labels.labels.pop();
    assert_eq!(invalid_field(small().fit(&wrong_labels)), "data");
    let empty = data.clone().take(0);
    assert_eq!(invalid_field(small().fit(&empty)), "data");
    let (train, _) = data.clone().split_last(10);
    let mut narrow = train.clone();
    narrow.images = narrow.images.row_range(0, 10).to_owned();
    narrow.images = Mat::zeros(10, 5);
    narrow.labels.truncate(10);
    assert_eq!(
        invalid_field(small().fit_split(&train, &narrow)),
        "validation"
    );
}

#[test]
fn a_time_budget_without_epochs_fills_the_budget_and_explicit_epochs_stay() {
    let filled = Drsae::params().time_budget(60.0).check().unwrap().config();
    assert!(filled.epochs_sup >= 1_000_000, "{}", filled.epochs_sup);
    let capped = Drsae::params()
        .time_budget(60.0)
        .epochs_sup(7)
        .check()
        .unwrap()
        .config();
    assert_eq!(capped.epochs_sup, 7);
    assert_eq!(Drsae::params().check().unwrap().config().epochs_sup, 100);
}

#[test]
fn a_budgeted_run_uses_its_budget() {
    // 1.5 s with no epoch count: the run stops on time, not on epochs (the sample would
    // need only ~0.1 s per epoch here).
    let data = sample(600);
    let start = std::time::Instant::now();
    let model = Drsae::params()
        .hidden(16)
        .steps(2)
        .epochs_unsup(1)
        .time_budget(1.5)
        .fit(&data)
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let report = model.report().unwrap();
    let sup_epochs = report.history.iter().filter(|r| r.phase == 2).count();
    assert!(secs >= 1.3, "ended after {secs:.2} s of a 1.5 s budget");
    assert!(sup_epochs >= 3, "{sup_epochs} phase-2 epochs");
}

#[test]
fn the_fitted_model_keeps_its_preprocessing_and_takes_any_rows() {
    let data = sample(400);
    let mut observed = 0;
    let model = small().fit_with(&data, |_| observed += 1).unwrap();
    assert_eq!(observed, 4, "one report per epoch (1 + 3)");
    assert_eq!(model.preprocessing(), Preprocessor::UnitL2);
    let test = Mnist::load("data/mnist-sample").unwrap().test.take(50);
    let batch = model.predict(&test.images).unwrap();
    let proba = model.predict_proba(&test.images).unwrap();
    for i in [0, 17, 49] {
        let row = test.images.row(i);
        assert_eq!(model.predict(row).unwrap(), vec![batch[i]]);
        // Raw pixels and pixels scaled by 3 are the same input after unit-L2 preprocessing.
        let scaled: Vec<f32> = row.iter().map(|v| 3.0 * v).collect();
        let p = model.predict_proba(&scaled).unwrap();
        let diff = p
            .row(0)
            .iter()
            .zip(proba.row(i))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "row {i}: {diff}");
        let sum: f32 = proba.row(i).iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
    let codes = model.encode(&test.images).unwrap();
    assert_eq!(codes.shape(), (50, 24));
    assert!(codes.as_slice().iter().all(|&z| z >= 0.0));
    let rec = model.reconstruct(test.images.row_range(0, 3)).unwrap();
    assert_eq!(rec.shape(), (3, 784));
    let score = model.score(&test.images, &test.labels).unwrap();
    let by_hand = batch
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| p == l)
        .count() as f64
        / 50.0;
    assert_eq!(score, by_hand);
    assert_eq!(invalid_field(model.predict(&[0.0f32; 783][..])), "input");
    assert!(matches!(
        model.predict([f32::NAN; 784]),
        Err(Error::NonFiniteInput { .. })
    ));
    assert_eq!(
        invalid_field(model.score(&test.images, &test.labels[..3])),
        "labels"
    );
}

#[test]
fn the_returned_average_satisfies_every_constraint() {
    let data = sample(400);
    let model = small().average(0.99).lr(3e-2).fit(&data).unwrap();
    let net = model.network();
    let e_max = 1.25 / 3.0;
    for i in 0..net.c().nrows() {
        let n = drsae::linalg::norm(net.c().row(i));
        assert!((n - 5.0).abs() < 2e-5, "‖C_{i}‖ = {n}");
    }
    for i in 0..net.e().nrows() {
        let n = drsae::linalg::norm(net.e().row(i));
        assert!(n <= e_max * (1.0 + 1e-5), "‖E_{i}‖ = {n} > {e_max}");
    }
    let dt = net.d().transposed();
    for i in 0..dt.nrows() {
        let n = drsae::linalg::norm(dt.row(i));
        assert!(n <= 1.0 + 1e-5, "‖D_{i}‖ = {n}");
    }
}

#[test]
fn same_seed_same_model_other_seed_other_model() {
    let data = sample(300);
    let a = small().seed(3).fit(&data).unwrap();
    let b = small().seed(3).fit(&data).unwrap();
    let c = small().seed(4).fit(&data).unwrap();
    assert_eq!(a.network(), b.network());
    assert_ne!(a.network(), c.network());
    // Other optimizers go through the same front door.
    let m = small()
        .optimizer(Opt::Momentum { momentum: 0.9 })
        .lr(1e-2)
        .fit(&data)
        .unwrap();
    assert_eq!(m.hidden(), 24);
}

#[cfg(feature = "safetensors")]
#[test]
fn save_and_load_keep_the_model_its_preprocessing_and_its_configuration() {
    let data = sample(300);
    let model = small()
        .preprocessing(Preprocessor::Contrast { floor: 0.1 })
        .seed(9)
        .fit(&data)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("drsae-estimator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    let back = Drsae::load(&path).unwrap();
    assert_eq!(back.network(), model.network());
    assert_eq!(back.preprocessing(), Preprocessor::Contrast { floor: 0.1 });
    assert_eq!(back.weights(), model.weights());
    let seed = back
        .config()
        .iter()
        .find(|(k, _)| k == "seed")
        .map(|(_, v)| v.as_str());
    assert_eq!(seed, Some("9"));
    assert_eq!(back.config().len(), model.config().len());
    let x = data.images.row_range(0, 20);
    assert_eq!(back.predict(x).unwrap(), model.predict(x).unwrap());
    // Same model, same bytes.
    assert_eq!(back.to_bytes().unwrap(), model.to_bytes().unwrap());
    // A forged preprocessing name is a format error, not a silent default.
    let bytes = model.to_bytes().unwrap();
    let forged = String::from_utf8_lossy(&bytes).replace("contrast:0.1", "contrast:-01");
    assert!(matches!(
        Drsae::from_bytes(forged.as_bytes()),
        Err(Error::Format { .. })
    ));
    assert!(matches!(Drsae::load(&dir), Err(Error::Io { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lasso_takes_one_row_or_many_and_matches_the_solver() {
    let data = sample(150);
    let atoms = data.images.row_range(0, 100).to_owned();
    let lasso = Lasso::params()
        .lambda(0.05)
        .unit_atoms(true)
        .preprocessing(Preprocessor::UnitL2)
        .fit(&atoms)
        .unwrap();
    let x = data.images.row_range(100, 150);
    let (codes, stats) = lasso.solve(x).unwrap();
    assert_eq!(codes.shape(), (50, 100));
    assert!(stats.duality_gap <= 1e-5 * stats.objective.max(1e-12));
    let one = lasso.encode(data.images.row(120)).unwrap();
    let diff = one
        .row(0)
        .iter()
        .zip(codes.row(20))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "{diff}");
    let rec = lasso.reconstruct(x).unwrap();
    assert_eq!(rec.shape(), (50, 784));
    assert_eq!(
        invalid_field(Lasso::params().lambda(-1.0).fit(&atoms)),
        "lambda"
    );
    assert_eq!(
        invalid_field(Lasso::params().max_iters(0).check()),
        "max_iters"
    );
    assert!(
        Lasso::params().fit(&Mat::zeros(3, 4)).is_err(),
        "all-zero atoms"
    );
}

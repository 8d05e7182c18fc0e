//! The front door of the families other than DrSAE and the lasso: parameters checked by
//! name, fitted models that keep their preprocessing (ZCA included), take one row or many,
//! learn something, and survive a save/load bit for bit.

use drsae::models::LocalSheet;
use drsae::prelude::*;

fn mnist() -> Mnist {
    Mnist::load("data/mnist-sample").unwrap()
}

fn invalid_field(r: drsae::Result<impl std::fmt::Debug>) -> &'static str {
    match r {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected an invalid parameter, got {other:?}"),
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("drsae-families-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn mean_sq(x: &Mat) -> f64 {
    x.as_slice()
        .iter()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        / x.nrows().max(1) as f64
}

/// Mean ‖x − x̂‖² per row, in the preprocessed space.
fn mean_residual(prepared: &Mat, reconstruction: &Mat) -> f64 {
    let mut r = prepared.clone();
    for (a, b) in r.as_mut_slice().iter_mut().zip(reconstruction.as_slice()) {
        *a -= b;
    }
    mean_sq(&r)
}

fn prepared(p: &Preprocessing, x: &Mat) -> Mat {
    let mut x = x.clone();
    p.apply(&mut x);
    x
}

#[test]
fn invalid_parameters_are_named() {
    assert_eq!(
        invalid_field(ListaEncoder::params().iters(0).check()),
        "iters"
    );
    assert_eq!(
        invalid_field(ListaEncoder::params().batch(0).check()),
        "batch"
    );
    assert_eq!(invalid_field(ListaEncoder::params().lr(-1.0).check()), "lr");
    assert_eq!(
        invalid_field(ListaEncoder::params().resume(true).check()),
        "checkpoint_dir"
    );
    let grid = |side, pool| GroupLayout::Grid {
        side,
        pool,
        sigma: None,
    };
    assert_eq!(
        invalid_field(GroupSparse::params().layout(grid(4, 5)).check()),
        "layout"
    );
    assert_eq!(
        invalid_field(
            GroupSparse::params()
                .layout(GroupLayout::Disjoint { units: 10, size: 3 })
                .check()
        ),
        "layout"
    );
    assert_eq!(
        invalid_field(GroupSparse::params().lambda(f32::NAN).check()),
        "lambda"
    );
    assert_eq!(
        invalid_field(GroupSparse::params().zca(Some(0.0)).check()),
        "zca"
    );
    assert_eq!(
        invalid_field(GroupSparse::params().time_budget(0.0).check()),
        "time_budget"
    );
    assert_eq!(
        invalid_field(GroupSparse::params().psd((0.0, 5)).check()),
        "psd"
    );
    // Upper bounds, far above anything that trains: beyond them the run would only diverge
    // or silence every unit after the data is loaded.
    assert_eq!(invalid_field(GroupSparse::params().lr(1e30).check()), "lr");
    assert_eq!(
        invalid_field(GroupSparse::params().lambda(1e30).check()),
        "lambda"
    );
    assert_eq!(
        invalid_field(GroupSparse::params().time_budget(1e30).check()),
        "time_budget"
    );
    assert_eq!(
        invalid_field(GroupSparse::params().psd((1e30, 5)).check()),
        "psd"
    );
    assert_eq!(
        invalid_field(LocallyConnected::params().lr(1e30).check()),
        "lr"
    );
    assert_eq!(
        invalid_field(Convolutional::params().lambda(1e30).check()),
        "lambda"
    );
    assert_eq!(invalid_field(ListaEncoder::params().lr(1e30).check()), "lr");
    assert!(GroupSparse::params()
        .lr(10.0)
        .lambda(1e4)
        .time_budget(1e7)
        .check()
        .is_ok());
    assert_eq!(
        invalid_field(LocallyConnected::params().pool(100).check()),
        "pool"
    );
    assert_eq!(
        invalid_field(
            LocallyConnected::params()
                .sheet(LocalSheet {
                    grid: 0,
                    block: 1,
                    stride: 1,
                    kernel: 1
                })
                .check()
        ),
        "sheet.grid"
    );
    assert_eq!(
        invalid_field(Convolutional::params().kernel(29).check()),
        "kernel"
    );
    assert_eq!(
        invalid_field(Convolutional::params().maps(0).check()),
        "maps"
    );
    assert_eq!(
        invalid_field(Convolutional::params().pool(25).check()),
        "pool"
    );
    assert_eq!(
        invalid_field(Convolutional::params().psd((1.0, 5)).check()),
        "psd"
    );
    assert_eq!(
        invalid_field(Inhibition::params().inhibition(0.0).check()),
        "inhibition"
    );
    for (p, name) in [
        (Inhibition::params().inhibition(1e30), "inhibition"),
        (Inhibition::params().lambda(1e30), "lambda"),
        (Inhibition::params().lr(1e30), "lr"),
        (Inhibition::params().lr_s(1e30), "lr_s"),
        (Inhibition::params().time_budget(1e30), "time_budget"),
    ] {
        assert_eq!(invalid_field(p.check()), name);
    }
    assert_eq!(
        invalid_field(Inhibition::params().sweeps(0).check()),
        "sweeps"
    );
    assert_eq!(
        invalid_field(
            Inhibition::params()
                .structure(InhibitionStructure::Grid { side: 0, radius: 1 })
                .check()
        ),
        "structure"
    );
    // `fit` checks first, before any work.
    let x = Mat::zeros(10, 16);
    assert_eq!(
        invalid_field(GroupSparse::params().batch(0).fit(&x)),
        "batch"
    );
    assert_eq!(invalid_field(Inhibition::params().lr(0.0).fit(&x)), "lr");
}

#[test]
fn lista_learns_the_lasso_codes_and_round_trips() {
    let m = mnist();
    let atoms = m.train.images.row_range(0, 40).to_owned();
    let lasso = Lasso::params()
        .lambda(0.3)
        .unit_atoms(true)
        .preprocessing(Preprocessor::UnitL2)
        .fit(&atoms)
        .unwrap();
    let train = m.train.images.row_range(40, 840);
    let lista = ListaEncoder::params()
        .iters(2)
        .epochs(4)
        .fit(&lasso, train)
        .unwrap();
    let losses = lista.losses();
    assert_eq!(losses.len(), 4);
    assert!(losses[3] < losses[0], "{losses:?}");
    // Raw pixels in: the model applies the lasso's unit-L2 step itself.
    let test = m.test.images.row_range(0, 50).to_owned();
    let target = lasso.encode(&test).unwrap();
    let ista = ListaEncoder::params().iters(2).epochs(1).lr(1e-9);
    let untrained = ista.fit(&lasso, train).unwrap();
    let err = |z: &Mat| mean_residual(&target, z);
    let (trained_err, ista_err) = (
        err(&lista.encode(&test).unwrap()),
        err(&untrained.encode(&test).unwrap()),
    );
    assert!(trained_err < ista_err, "{trained_err} vs ISTA {ista_err}");
    // One row gives the batch's first row (up to the rounding of another GEMM kernel).
    let one = lista.encode(test.row(0)).unwrap();
    let all = lista.encode(&test).unwrap();
    for (a, b) in one.as_slice().iter().zip(all.row(0)) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    assert_eq!(lista.reconstruct(&test).unwrap().shape(), (50, 784));
    let path = temp("lista.safetensors");
    lista.save(&path).unwrap();
    let back = ListaEncoder::load(&path).unwrap();
    assert_eq!(back.encode(&test).unwrap(), lista.encode(&test).unwrap());
    assert_eq!(back.to_bytes().unwrap(), lista.to_bytes().unwrap());
    assert!(matches!(
        GroupSparse::from_bytes(&lista.to_bytes().unwrap()),
        Err(Error::Format { .. })
    ));
}

#[test]
fn a_topographic_map_keeps_its_whitening_and_round_trips() {
    let patches = mnist().train.take(1000).patches(6, 3000, 1).unwrap();
    let model = GroupSparse::params()
        .layout(GroupLayout::Grid {
            side: 6,
            pool: 3,
            sigma: Some(1.0),
        })
        .epochs(4)
        .fit(&patches)
        .unwrap();
    let report = model.report().unwrap();
    assert!(report.losses[3] < report.losses[0], "{:?}", report.losses);
    assert!(model.preprocessing().zca().is_some());
    let x = patches.row_range(0, 200).to_owned();
    let p = prepared(model.preprocessing(), &x);
    let rel = mean_residual(&p, &model.reconstruct(&x).unwrap()) / mean_sq(&p);
    assert!(rel < 0.9, "relative reconstruction error {rel}");
    assert_eq!(model.group_norms(&x).unwrap().shape(), (200, 36));
    assert!(model.orientation_map().is_some());
    let path = temp("topographic.safetensors");
    model.save(&path).unwrap();
    let back = GroupSparse::load(&path).unwrap();
    assert_eq!(back.encode(&x).unwrap(), model.encode(&x).unwrap());
    assert_eq!(back.preprocessing(), model.preprocessing());
    assert_eq!(back.to_bytes().unwrap(), model.to_bytes().unwrap());
    // One row, as a slice, gives the first row of the batch (up to GEMM rounding).
    let (one, all) = (model.encode(x.row(0)).unwrap(), model.encode(&x).unwrap());
    for (a, b) in one.as_slice().iter().zip(all.row(0)) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn tree_and_disjoint_layouts_train() {
    let patches = mnist().train.take(500).patches(5, 1000, 2).unwrap();
    for layout in [
        GroupLayout::Tree {
            branching: 2,
            depth: 3,
        },
        GroupLayout::Disjoint { units: 12, size: 3 },
    ] {
        let model = GroupSparse::params()
            .layout(layout)
            .zca(None)
            .form(EncoderForm::Tanh)
            .epochs(2)
            .fit(&patches)
            .unwrap();
        assert!(model.orientation_map().is_none());
        let back = GroupSparse::from_bytes(&model.to_bytes().unwrap()).unwrap();
        assert_eq!(back.layout(), layout);
        assert_eq!(back.model(), model.model());
    }
    // Any container of rows trains the same model as the matrix: a list of rows here.
    let rows: Vec<Vec<f32>> = patches.rows().map(<[f32]>::to_vec).collect();
    let params = GroupSparse::params()
        .layout(GroupLayout::Disjoint { units: 12, size: 3 })
        .epochs(1);
    let (a, b) = (params.fit(&patches).unwrap(), params.fit(&rows).unwrap());
    assert_eq!(a.model(), b.model());
    assert!(params.fit(Vec::<Vec<f32>>::new()).is_err());
}

#[test]
fn locally_connected_units_see_only_their_window() {
    let sheet = LocalSheet::new(2, 2, 3, 5).unwrap(); // 8 × 8 inputs, 16 units
    let windows = mnist().train.take(500).patches(8, 2000, 3).unwrap();
    let model = LocallyConnected::params()
        .sheet(sheet)
        .pool(2)
        .epochs(3)
        .fit(&windows)
        .unwrap();
    let support = sheet.support();
    for (w, s) in model.model().w().as_slice().iter().zip(support.as_slice()) {
        assert!(*s == 1.0 || *w == 0.0);
    }
    let r = model.report().unwrap();
    assert!(r.losses[2] < r.losses[0], "{:?}", r.losses);
    let back = LocallyConnected::from_bytes(&model.to_bytes().unwrap()).unwrap();
    let x = windows.row_range(0, 20).to_owned();
    assert_eq!(back.encode(&x).unwrap(), model.encode(&x).unwrap());
    assert_eq!(model.group_norms(&x).unwrap().ncols(), model.groups().len());
}

#[test]
fn a_convolutional_layer_pools_and_round_trips() {
    let m = mnist();
    let images = m.train.images.row_range(0, 300).to_owned();
    let layer = Convolutional::params()
        .image((28, 28, 1))
        .kernel(7)
        .maps(4)
        .pool(2)
        .epochs(2)
        .fit(&images)
        .unwrap();
    let r = layer.report().unwrap();
    assert!(r.losses[1] < r.losses[0], "{:?}", r.losses);
    let (ph, pw) = layer.pooled_size();
    assert_eq!((ph, pw), (11, 11));
    let x = m.test.images.row_range(0, 10).to_owned();
    assert_eq!(layer.pooled(&x).unwrap().shape(), (10, ph * pw * 4));
    assert_eq!(layer.encode(&x).unwrap().shape(), (10, 22 * 22 * 4));
    let rec = layer.reconstruct(&x).unwrap();
    assert!(mean_residual(&x, &rec) < mean_sq(&x), "no better than zero");
    let back = Convolutional::from_bytes(&layer.to_bytes().unwrap()).unwrap();
    assert_eq!(back.pooled(&x).unwrap(), layer.pooled(&x).unwrap());
    // A stacked layer reads the pooled maps.
    let pooled = layer.pooled(images.row_range(0, 64)).unwrap();
    let second = Convolutional::params()
        .image((ph, pw, 4))
        .kernel(3)
        .maps(6)
        .epochs(1)
        .fit(&pooled)
        .unwrap();
    assert_eq!(second.pooled(pooled.row(0)).unwrap().ncols(), 4 * 4 * 6);
}

#[test]
fn lateral_inhibition_codes_respect_the_tree() {
    let patches = mnist().train.take(1000).patches(6, 2000, 4).unwrap();
    let model = Inhibition::params()
        .structure(InhibitionStructure::Tree {
            branching: 3,
            depth: 3,
        }) // 13 units
        .inhibition(2.0)
        .epochs(3)
        .fit(&patches)
        .unwrap();
    assert_eq!(model.energies().len(), 3);
    assert!(
        model.energies()[2] < model.energies()[0],
        "{:?}",
        model.energies()
    );
    let x = patches.row_range(0, 100).to_owned();
    let z = model.encode(&x).unwrap();
    assert_eq!(z.shape(), (100, 13));
    // Strong inhibition: active units are (mostly) on one root-to-leaf path.
    let on_path = z
        .rows()
        .filter(|row| {
            let active: Vec<usize> = (0..13).filter(|&i| row[i] != 0.0).collect();
            active
                .iter()
                .all(|&i| active.iter().all(|&j| drsae::models::tree_related(3, i, j)))
        })
        .count();
    assert!(on_path >= 80, "{on_path} of 100 codes on one path");
    let back = Inhibition::from_bytes(&model.to_bytes().unwrap()).unwrap();
    assert_eq!(back.encode(&x).unwrap(), z);
    // A learned S stays valid.
    let learned = Inhibition::params()
        .structure(InhibitionStructure::Learned { units: 10 })
        .epochs(2)
        .fit(&patches)
        .unwrap();
    drsae::solvers::check_inhibition(learned.inhibition(), 10).unwrap();
    assert_ne!(learned.inhibition()[(0, 1)], 0.25);
}

#[test]
fn model_files_are_checked() {
    let patches = mnist().train.take(200).patches(4, 400, 5).unwrap();
    let model = GroupSparse::params()
        .layout(GroupLayout::Disjoint { units: 4, size: 2 })
        .epochs(1)
        .fit(&patches)
        .unwrap();
    let bytes = model.to_bytes().unwrap();
    assert!(GroupSparse::from_bytes(&bytes[..bytes.len() - 4]).is_err());
    assert!(Inhibition::from_bytes(&bytes).is_err());
    assert!(matches!(
        GroupSparse::load(temp("missing.safetensors")),
        Err(Error::Io { .. })
    ));
}

/// Out-of-range floats are printed compactly in the error (`1e30`, not a 31-digit
/// integer), by every family's check.
#[test]
fn out_of_range_floats_print_compactly() {
    fn message(r: drsae::Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(e @ Error::InvalidParameter { .. }) => e.to_string(),
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }
    for (what, msg) in [
        ("Drsae lr", message(Drsae::params().lr(1e30).check())),
        (
            "Drsae sparsity",
            message(Drsae::params().sparsity(1e30).check()),
        ),
        (
            "Drsae time_budget",
            message(Drsae::params().time_budget(1e30).check()),
        ),
        (
            "GroupSparse lr",
            message(GroupSparse::params().lr(1e30).check()),
        ),
        (
            "GroupSparse lambda",
            message(GroupSparse::params().lambda(1e30).check()),
        ),
        (
            "ListaEncoder lr",
            message(ListaEncoder::params().lr(1e30).check()),
        ),
        ("Sae lr", message(Sae::params().lr(1e30).check())),
    ] {
        assert!(
            msg.contains("1e30") && !msg.contains("0000000"),
            "{what}: {msg}"
        );
    }
    assert_eq!(
        message(Drsae::params().lr(1e30).check()),
        "invalid parameter `lr`: 1e30 must be finite, > 0 and ≤ 10"
    );
    // Small values too; ordinary ones and NaN as `{}` prints them.
    assert!(message(Drsae::params().lr(-2.5e-7).check()).contains("-2.5e-7"));
    assert!(message(Drsae::params().lr(-0.5).check()).contains("-0.5 must"));
    assert!(message(Drsae::params().lr(f32::NAN).check()).contains("NaN must"));
    assert_eq!(drsae::Compact(1e30_f64).to_string(), "1e30");
    assert_eq!(drsae::Compact(999_999.0_f32).to_string(), "999999");
    assert_eq!(drsae::Compact(1e6_f32).to_string(), "1e6");
    assert_eq!(drsae::Compact(1e-4_f64).to_string(), "0.0001");
    assert_eq!(drsae::Compact(0.0_f64).to_string(), "0");
    assert_eq!(drsae::Compact(f64::NEG_INFINITY).to_string(), "-inf");
}

/// A time budget without an epoch count sets the run's length: each family trains until
/// the budget is spent (here far more epochs than its default on tiny data), while an
/// explicit count under the same budget is kept.
#[test]
fn a_time_budget_alone_sets_the_length_of_the_run() {
    let budget = 0.25;
    let m = mnist();
    let atoms = m.train.images.row_range(0, 20).to_owned();
    let train = m.train.images.row_range(20, 40).to_owned();
    let patches = m.train.take(200).patches(5, 60, 3).unwrap();
    let timed = |f: &mut dyn FnMut() -> usize| {
        let t = std::time::Instant::now();
        let epochs = f();
        (epochs, t.elapsed().as_secs_f64())
    };
    // Group-sparse (default 50 epochs).
    let group = GroupSparse::params()
        .layout(GroupLayout::Disjoint { units: 6, size: 2 })
        .zca(None)
        .batch(60);
    let (epochs, secs) = timed(&mut || {
        let fit = group.clone().time_budget(budget).fit(&patches).unwrap();
        fit.report().unwrap().losses.len()
    });
    assert!(epochs > 50 && secs >= budget, "{epochs} epochs in {secs} s");
    let fit = group.time_budget(budget).epochs(3).fit(&patches).unwrap();
    assert_eq!(fit.report().unwrap().losses.len(), 3);
    // LISTA (default 30 epochs).
    let lasso = Lasso::params()
        .lambda(0.3)
        .unit_atoms(true)
        .fit(&atoms)
        .unwrap();
    let lista = ListaEncoder::params().iters(1).batch(20);
    let (epochs, secs) = timed(&mut || {
        let fit = lista
            .clone()
            .time_budget(budget)
            .fit(&lasso, &train)
            .unwrap();
        fit.losses().len()
    });
    assert!(epochs > 30 && secs >= budget, "{epochs} epochs in {secs} s");
    let fit = lista
        .epochs(2)
        .time_budget(budget)
        .fit(&lasso, &train)
        .unwrap();
    assert_eq!(fit.losses().len(), 2);
    // Lateral inhibition (default 20 epochs).
    let inhibition = Inhibition::params()
        .structure(InhibitionStructure::Tree {
            branching: 2,
            depth: 2,
        })
        .batch(60);
    let (epochs, secs) = timed(&mut || {
        let fit = inhibition
            .clone()
            .time_budget(budget)
            .fit(&patches)
            .unwrap();
        fit.energies().len()
    });
    assert!(epochs > 20 && secs >= budget, "{epochs} epochs in {secs} s");
    let fit = inhibition
        .time_budget(budget)
        .epochs(2)
        .fit(&patches)
        .unwrap();
    assert_eq!(fit.energies().len(), 2);
}

/// A grid trained in stages of shrinking radius runs every stage (epochs counting on),
/// ends at the structure's radius, and the schedule is refused where it cannot apply.
#[test]
fn a_radius_schedule_trains_every_stage_and_is_checked() {
    use drsae::prelude::RadiusSchedule;
    let patches = mnist().train.take(300).patches(6, 600, 5).unwrap();
    let grid = InhibitionStructure::Grid { side: 4, radius: 1 };
    let schedule = RadiusSchedule {
        start: 3,
        lr_end: 0.01,
    };
    let params = Inhibition::params()
        .structure(grid)
        .inhibition(2.0)
        .epochs(2)
        .radius_schedule(schedule);
    let staged = params.clone().fit(&patches).unwrap();
    assert_eq!(staged.energies().len(), 2 * 3, "three stages of two epochs");
    assert_eq!(staged.structure(), grid);
    let one_stage = Inhibition::params()
        .structure(grid)
        .inhibition(2.0)
        .epochs(2)
        .fit(&patches)
        .unwrap();
    assert!(staged.dictionary() != one_stage.dictionary());
    assert_eq!(
        invalid_field(
            Inhibition::params()
                .radius_schedule(schedule) // the default tree
                .check()
        ),
        "radius_schedule"
    );
    let low = RadiusSchedule {
        start: 0,
        ..schedule
    };
    assert_eq!(
        invalid_field(params.clone().radius_schedule(low).check()),
        "radius_schedule"
    );
    assert_eq!(
        invalid_field(params.checkpoint_dir(temp("staged")).check()),
        "radius_schedule"
    );
}

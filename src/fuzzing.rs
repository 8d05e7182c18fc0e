//! Invariants exercised by the cargo-fuzz targets in `fuzz/` and replayed on their seed
//! corpora by `cargo test` (tests/fuzz_corpus.rs). Not part of the stable API.
//!
//! Each function must never panic on any input; it panics only when an invariant breaks.
//!
//! One file on purpose: one entry point per fuzz target, each a few dozen lines, read as a
//! list of the invariants the targets check.

use crate::kernels::{
    shrink, shrink_backward, shrink_backward_reference, shrink_mask, shrink_mask_reference,
    shrink_reference, Groups, Shrink, Theta,
};
use crate::linalg::Mat;
use crate::solvers::{Dictionary, LassoOptions, Solver};

/// IDX parser: any bytes give `Ok` or a format error; an `Ok` is self-consistent.
pub fn idx(data: &[u8]) {
    if let Ok(idx) = crate::data::parse_idx(data) {
        let product = idx.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(
            product,
            Some(idx.data.len()),
            "dims {:?} vs {} bytes",
            idx.dims,
            idx.data.len()
        );
        let _ = crate::data::idx::idx_images(idx.clone());
        let _ = crate::data::idx::idx_labels(idx);
    }
}

/// PGM parser: any bytes give `Ok` or a format error; pixels lie in [0, 1].
pub fn pgm(data: &[u8]) {
    if let Ok(img) = crate::data::parse_pgm(data) {
        assert_eq!(img.pixels.len(), img.width * img.height);
        assert!(img.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }
}

/// The JSON parser: any bytes give `Ok` or an error; a parsed value's compact and indented
/// texts parse back to the same value, and the compact text is its own fixed point.
#[cfg(feature = "safetensors")]
pub fn json(data: &[u8]) {
    use crate::io::json;
    if let Ok(v) = json::parse(data) {
        let compact = v.to_compact();
        let again = json::parse(compact.as_bytes()).expect("compact text parses");
        assert!(again == v, "compact text changed the value: {compact}");
        assert_eq!(again.to_compact(), compact);
        let pretty = v.to_pretty();
        let again = json::parse(pretty.as_bytes()).expect("indented text parses");
        assert!(again == v, "indented text changed the value: {pretty}");
    }
}

/// Model files: any bytes give `Ok` or an error; an `Ok` model has consistent shapes and
/// encodes a zero input without panicking.
#[cfg(feature = "safetensors")]
pub fn model_file(data: &[u8]) {
    if let Ok((model, _)) = crate::io::drsae_from_bytes(data) {
        let (n, m) = (model.hidden(), model.input_dim());
        assert_eq!(model.s.shape(), (n, n));
        assert_eq!(model.d.shape(), (m, n));
        if n * m <= 1 << 16 && model.steps <= 64 {
            let z = model.encode(&Mat::zeros(1, m), 1);
            assert_eq!(z.shape(), (1, n));
        }
    }
}

/// DrSAE checkpoints: any bytes give `Ok` or an error; an `Ok` state's models (current, best,
/// averaged) share their shapes.
#[cfg(feature = "safetensors")]
pub fn checkpoint(data: &[u8]) {
    checkpoint_parses(data);
}

/// [`checkpoint`], telling whether the bytes parsed (and had an averaged model).
#[cfg(feature = "safetensors")]
pub fn checkpoint_parses(data: &[u8]) -> bool {
    match crate::train::checkpoint::TrainState::from_bytes(data) {
        Ok(st) => {
            let shape = (st.model.e.shape(), st.model.d.shape(), st.model.c.shape());
            for other in st.best.iter().map(|b| &b.0).chain(st.average.iter()) {
                assert_eq!((other.e.shape(), other.d.shape(), other.c.shape()), shape);
            }
            st.average.is_some()
        }
        Err(_) => false,
    }
}

/// Reads `dir/checkpoint.safetensors` as a checkpoint of `kind` (`"drsae"` through the
/// DrSAE trainer's full parse, any other kind through the shared reader every trainer's
/// resume starts with) and returns the bytes of its tensors: the peak-memory probe of
/// `examples/load_rss.rs`.
///
/// # Errors
/// Whatever the reader returns for a missing, malformed or mismatched file.
#[cfg(feature = "safetensors")]
pub fn load_checkpoint(dir: &std::path::Path, kind: &str) -> crate::Result<usize> {
    let missing = || crate::train::checkpoint::err(format!("no checkpoint in {}", dir.display()));
    if kind == "drsae" {
        let st = crate::train::checkpoint::TrainState::load(dir)?.ok_or_else(missing)?;
        let net = |m: &crate::models::DrsaeNetwork| {
            [&m.e, &m.s, &m.d, &m.c]
                .iter()
                .map(|x| x.as_slice().len())
                .sum::<usize>()
                + m.b.len()
        };
        let nets = net(&st.model)
            + st.best.iter().map(|b| net(&b.0)).sum::<usize>()
            + st.average.iter().map(net).sum::<usize>();
        let moments = st
            .opt_first
            .iter()
            .chain(&st.opt_second)
            .map(Vec::len)
            .sum::<usize>();
        return Ok(4 * (nets + moments));
    }
    let (t, _) = crate::train::checkpoint::read_checkpoint(dir, kind)?.ok_or_else(missing)?;
    Ok(4 * t.values().map(|(_, v)| v.len()).sum::<usize>())
}

fn floats(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Kernels and solvers: SIMD equals scalar; solver output is finite and its objective is
/// not above the starting point's (z = 0).
pub fn kernels(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    let values = floats(rest);
    let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
    let theta = (head[0] as f32) / 64.0;
    let per_unit: Vec<f32> = (0..(head[1] as usize % 9 + 1))
        .map(|i| ((head[2] as usize + i) % 17) as f32 / 16.0)
        .collect();
    for kind in [Shrink::Signed, Shrink::NonNegative] {
        let thetas = [Theta::Uniform(theta), Theta::PerUnit(&per_unit)];
        for th in thetas {
            let len = match th {
                Theta::PerUnit(p) => values.len() / p.len() * p.len(),
                Theta::Uniform(_) => values.len(),
            };
            let v = &values[..len];
            let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
            shrink(kind, th, v, &mut a);
            shrink_reference(kind, th, v, &mut b);
            assert!(
                a.iter().zip(&b).all(|(x, y)| same(*x, *y)),
                "shrink {kind:?}"
            );
            shrink_mask(kind, th, v, &mut a);
            shrink_mask_reference(kind, th, v, &mut b);
            assert_eq!(a, b, "mask {kind:?}");
        }
    }
    let g: Vec<f32> = values.iter().rev().copied().collect();
    let (mut a, mut b) = (vec![0.0; values.len()], vec![0.0; values.len()]);
    shrink_backward(&values, &g, &mut a);
    shrink_backward_reference(&values, &g, &mut b);
    assert!(
        a.iter().zip(&b).all(|(x, y)| same(*x, *y)),
        "shrink_backward"
    );
    let gsize = head[3] as usize % 4 + 1;
    let n = values.len() / gsize * gsize;
    if n > 0 {
        let groups = Groups::disjoint(n, gsize).expect("divides");
        let finite: Vec<f32> = values[..n]
            .iter()
            .map(|v| {
                if v.is_finite() {
                    v.clamp(-1e15, 1e15)
                } else {
                    0.0
                }
            })
            .collect();
        let (mut x, mut y) = (vec![0.0; n / gsize], vec![0.0; n / gsize]);
        groups.norms(&finite, &mut x);
        groups.norms_reference(&finite, &mut y);
        for (p, q) in x.iter().zip(&y) {
            assert!(
                (p - q).abs() <= 1e-4 * q.max(1e-30),
                "group norm {p} vs {q}"
            );
        }
    }
    // A small lasso from the same bytes: dictionary m × k and one input.
    let m = head[1] as usize % 6 + 2;
    let k = head[2] as usize % 6 + 1;
    let clean: Vec<f32> = values
        .iter()
        .map(|v| {
            if v.is_finite() {
                v.clamp(-100.0, 100.0)
            } else {
                0.0
            }
        })
        .collect();
    if clean.len() < m * k + m {
        return;
    }
    let Ok(dict) = Dictionary::new(Mat::from_vec(m, k, clean[..m * k].to_vec())) else {
        return;
    };
    if !(dict.lipschitz().is_finite() && dict.lipschitz() > 1e-6) {
        return;
    }
    let x = Mat::from_vec(1, m, clean[m * k..m * k + m].to_vec());
    let f0 = 0.5
        * x.as_slice()
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>();
    let lambda = theta.max(1e-3);
    for solver in [Solver::Ista, Solver::Fista, Solver::Cod, Solver::Exact] {
        let mut z = Mat::zeros(1, k);
        let opts = LassoOptions::new(lambda)
            .max_iters(50)
            .non_negative(head[0] & 1 == 1);
        let st = solver
            .solve(&dict, &x, &mut z, &opts)
            .expect("valid problem");
        assert!(
            z.as_slice().iter().all(|v| v.is_finite()),
            "{solver:?} gave non-finite codes"
        );
        assert!(
            st.objective <= f0 * (1.0 + 1e-3) + 1e-3,
            "{solver:?}: objective {} above the start {f0}",
            st.objective
        );
    }
    // Lateral inhibition: both inferences finite and not above the start (z = 0).
    let s = Mat::from_fn(
        k,
        k,
        |i, j| if i == j { 0.0 } else { (head[3] as f32) / 32.0 },
    );
    for ista in [false, true] {
        let mut z = Mat::zeros(1, k);
        let st = if ista {
            crate::solvers::inhibited_codes_ista(dict.atoms(), &s, &x, &mut z, lambda, 30, 1e-4)
        } else {
            crate::solvers::inhibited_codes(dict.atoms(), &s, &x, &mut z, lambda, 30, 1e-4)
        }
        .expect("valid problem");
        assert!(
            z.as_slice().iter().all(|v| v.is_finite()),
            "inhibition (ista {ista}) gave non-finite codes"
        );
        assert!(
            st.energy <= f0 * (1.0 + 1e-3) + 1e-3,
            "inhibition (ista {ista}): energy {} above the start {f0}",
            st.energy
        );
    }
}

/// GEMM and convolution layouts: `gemm` (the packing-free few-row kernel included, any
/// transposes, α, β, one or two threads) agrees with the scalar reference; im2col and
/// col2im are exact adjoints (integer-valued data, so the sums are exact).
pub fn layouts(data: &[u8]) {
    use crate::kernels::{col2im_add, im2col, ConvShape};
    use crate::linalg::{gemm, gemm_reference};
    if data.len() < 8 {
        return;
    }
    let (h, rest) = data.split_at(8);
    let vals: Vec<f32> = rest.iter().map(|&b| (b as f32 - 128.0) / 32.0).collect();
    let val = |i: usize| {
        if vals.is_empty() {
            0.5
        } else {
            vals[i % vals.len()]
        }
    };
    // GEMM
    let (m, k, n) = (
        h[0] as usize % 16 + 1,
        h[1] as usize % 40,
        h[2] as usize % 40 + 1,
    );
    let (ta, tb) = (h[3] & 1 == 1, h[3] & 2 == 2);
    let (alpha, beta) = (
        [1.0, -0.5, 2.0][h[4] as usize % 3],
        [0.0, 1.0, -0.25][h[5] as usize % 3],
    );
    let a = Mat::from_fn(if ta { k } else { m }, if ta { m } else { k }, |i, j| {
        val(i * 31 + j)
    });
    let b = Mat::from_fn(if tb { n } else { k }, if tb { k } else { n }, |i, j| {
        val(i * 17 + j + 7)
    });
    let c0 = Mat::from_fn(m, n, |i, j| val(i * 13 + j + 3));
    let (av, bv) = (
        if ta { a.t() } else { a.view() },
        if tb { b.t() } else { b.view() },
    );
    let mut want = c0.clone();
    gemm_reference(alpha, av, bv, beta, want.view_mut());
    let bound: f32 = 16.0 * (k as f32 + 1.0) * 4.0 * 4.0 * f32::EPSILON * 8.0;
    let threads = crate::linalg::gemm_threads();
    for t in [1, 2] {
        crate::linalg::set_gemm_threads(t);
        let mut got = c0.clone();
        gemm(alpha, av, bv, beta, got.view_mut());
        let diff = got.max_abs_diff(&want);
        assert!(
            diff <= bound.max(1e-4),
            "gemm {m}×{k}×{n} ta {ta} tb {tb} α {alpha} β {beta}, {t} threads: off by {diff}"
        );
    }
    crate::linalg::set_gemm_threads(threads);
    // im2col / col2im adjointness
    let (hh, ww, ch) = (
        h[6] as usize % 12 + 1,
        h[7] as usize % 12 + 1,
        h[6] as usize / 64 + 1,
    );
    let kernel = (h[7] as usize / 32) % hh.min(ww) + 1;
    if let Ok(shape) = ConvShape::new(hh, ww, ch, kernel) {
        let batch = 2;
        let x: Vec<f32> = (0..batch * shape.image_len())
            .map(|i| val(i).round())
            .collect();
        let y: Vec<f32> = (0..batch * shape.positions() * shape.patch_len())
            .map(|i| val(i + 5).round())
            .collect();
        let mut cols = vec![0.0; y.len()];
        im2col(&shape, &x, &mut cols);
        let mut back = vec![0.0; x.len()];
        col2im_add(&shape, &y, &mut back);
        let lhs: f64 = cols
            .iter()
            .zip(&y)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        let rhs: f64 = x
            .iter()
            .zip(&back)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        assert_eq!(lhs, rhs, "im2col/col2im not adjoint for {shape:?}");
        let w = shape.coverage_weights();
        assert!(w.iter().all(|v| *v > 0.0 && *v <= 1.0));
        let rows = batch * shape.positions();
        let plen = shape.patch_len();
        // col2im added straight from a product: Y·I scattered (integer values: exact)
        let eye = Mat::from_fn(plen, plen, |i, j| if i == j { 1.0 } else { 0.0 });
        let eye_index = crate::kernels::GatherIndex::row_major(plen, plen, plen);
        let pidx = crate::kernels::GatherIndex::patches(&shape, batch);
        let mut back_t = vec![0.0; x.len()];
        crate::kernels::gathered_gemm_scatter(
            1.0,
            &y,
            plen,
            eye_index.over(eye.as_slice()),
            pidx.over_mut(&mut back_t),
            &mut Vec::new(),
        );
        assert_eq!(
            back_t, back,
            "col2im from the scattered product differs for {shape:?}"
        );
        // gathered products = the same products of the materialised patch matrix
        use crate::kernels::{gathered_gemm, gathered_gemm_tn, GatherIndex};
        let maps = h[5] as usize % 20 + 1;
        let filt = Mat::from_fn(maps, plen, |i, j| val(i * 7 + j + 11));
        let idx = GatherIndex::patches(&shape, batch);
        let p = idx.over(&x);
        let colm = Mat::from_vec(rows, plen, cols.clone());
        let mut scratch = Vec::new();
        let mut got = vec![0.0; rows * maps];
        gathered_gemm(alpha, p, filt.t(), false, &mut got, maps, &mut scratch);
        let mut want = Mat::zeros(rows, maps);
        gemm_reference(alpha, colm.view(), filt.t(), 0.0, want.view_mut());
        let bound = 1e-4 * (1.0 + plen as f32) * 64.0;
        for (g, w) in got.iter().zip(want.as_slice()) {
            assert!(
                (g - w).abs() <= bound,
                "gathered_gemm {shape:?} {maps} maps: {g} vs {w}"
            );
        }
        let gm = Mat::from_fn(rows, maps, |i, j| val(i * 5 + j + 1));
        let mut got = vec![0.0; plen * maps];
        gathered_gemm_tn(
            alpha,
            p,
            gm.as_slice(),
            maps,
            maps,
            false,
            &mut got,
            maps,
            &mut scratch,
        );
        let mut want = Mat::zeros(plen, maps);
        gemm_reference(alpha, colm.t(), gm.view(), 0.0, want.view_mut());
        let bound = 1e-4 * (1.0 + rows as f32) * 64.0;
        for (g, w) in got.iter().zip(want.as_slice()) {
            assert!(
                (g - w).abs() <= bound,
                "gathered_gemm_tn {shape:?} {maps} maps: {g} vs {w}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The file layer: directories, resumed runs, model files loaded into an estimator.

/// A fresh directory under the system's temporary directory, removed when dropped (one
/// per call: the replay tests call the targets from several threads at once).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "drsae-fuzz-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temporary directory");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The four MNIST file names, in the order [`mnist_dir`] takes their bytes.
pub const MNIST_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Lays out the bytes of four files in [`mnist_dir`]'s input format: a flag byte (bit i:
/// file i is named `NAME.gz`), the lengths of the first three files as little-endian
/// `u32`s, then the four files' bytes (the last takes the rest).
pub fn mnist_dir_input(files: [&[u8]; 4], gz: [bool; 4]) -> Vec<u8> {
    let flags = gz
        .iter()
        .enumerate()
        .fold(0u8, |f, (i, &g)| f | (u8::from(g) << i));
    let mut out = vec![flags];
    for f in &files[..3] {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
    }
    for f in files {
        out.extend_from_slice(f);
    }
    out
}

/// MNIST directories: the bytes are split into the four IDX files of a temporary directory
/// (see [`mnist_dir_input`]; lengths past the end are cut) and loaded with
/// [`crate::data::Mnist::load`]. Any bytes give `Ok` or an error; an `Ok` data set is
/// self-consistent (counts, shapes, pixels in [0, 1], digit labels, train and test images
/// of one shape).
pub fn mnist_dir(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut lens = [0usize; 3];
    for l in &mut lens {
        let n = rest.len().min(4);
        let mut b = [0u8; 4];
        b[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        *l = u32::from_le_bytes(b) as usize;
    }
    let dir = Scratch::new("mnist");
    for (i, name) in MNIST_NAMES.iter().enumerate() {
        let n = if i < 3 {
            lens[i].min(rest.len())
        } else {
            rest.len()
        };
        let (file, tail) = rest.split_at(n);
        rest = tail;
        let name = if flags & (1 << i) != 0 {
            format!("{name}.gz")
        } else {
            name.to_string()
        };
        std::fs::write(dir.0.join(name), file).expect("write a temporary file");
    }
    if let Ok(m) = crate::data::Mnist::load(&dir.0) {
        for set in [&m.train, &m.test] {
            assert!(!set.is_empty());
            assert_eq!(set.images.nrows(), set.labels.len());
            assert_eq!(set.images.ncols(), set.rows * set.cols);
            assert!(set.labels.iter().all(|&l| l <= 9));
            assert!(set
                .images
                .as_slice()
                .iter()
                .all(|p| (0.0..=1.0).contains(p)));
        }
        assert_eq!((m.train.rows, m.train.cols), (m.test.rows, m.test.cols));
    }
}

/// The small run [`resume`] resumes: its configuration and data (40 training rows and 10
/// validation rows of 6 inputs, 3 classes).
#[cfg(feature = "safetensors")]
pub struct ResumeRun {
    /// The configuration (4 units, T = 2, minibatch 10, 1 + 2 epochs, an averaged model).
    pub cfg: crate::train::DrsaeConfig,
    train_x: Mat,
    train_y: Vec<u8>,
    val_x: Mat,
    val_y: Vec<u8>,
}

#[cfg(feature = "safetensors")]
impl Default for ResumeRun {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "safetensors")]
impl ResumeRun {
    /// The run (its data drawn from a fixed seed).
    pub fn new() -> ResumeRun {
        let mut rng = crate::rng::seeded(11);
        let u = rand_distr::Uniform::new(0.0f32, 1.0);
        let mut train_x = Mat::random(40, 6, u, &mut rng);
        let mut val_x = Mat::random(10, 6, u, &mut rng);
        crate::data::normalize_rows_l2(&mut train_x);
        crate::data::normalize_rows_l2(&mut val_x);
        ResumeRun {
            cfg: crate::train::DrsaeConfig {
                hidden: 4,
                steps: 2,
                batch: 10,
                epochs_unsup: 1,
                epochs_sup: 2,
                average: Some(0.9),
                ..Default::default()
            },
            train_x,
            train_y: (0..40).map(|i| (i % 3) as u8).collect(),
            val_x,
            val_y: (0..10).map(|i| (i % 3) as u8).collect(),
        }
    }

    /// Trains with checkpoints in `dir`, resuming from it when `resume`, stopping after
    /// `stop` steps if given.
    pub fn train(
        &self,
        dir: &std::path::Path,
        stop: Option<u64>,
        resume: bool,
    ) -> crate::Result<crate::train::TrainOutcome> {
        let ck = crate::train::Checkpointing {
            dir: Some(dir.to_path_buf()),
            resume,
            stop_after_steps: stop,
            ..Default::default()
        };
        let split = crate::train::Split {
            train_x: &self.train_x,
            train_y: &self.train_y,
            val_x: &self.val_x,
            val_y: &self.val_y,
        };
        crate::train::train_drsae_with(&self.cfg, split, &ck, |_| {})
    }

    /// A real checkpoint of this run, interrupted after `stop` steps (of 12).
    pub fn checkpoint(&self, stop: u64) -> Vec<u8> {
        let dir = Scratch::new("resume-seed");
        let r = self.train(&dir.0, Some(stop), false);
        assert!(
            matches!(r, Err(crate::Error::Interrupted { .. })),
            "the run was not interrupted: {r:?}"
        );
        std::fs::read(dir.0.join(crate::train::CHECKPOINT_FILE)).expect("checkpoint written")
    }
}

/// Resumed runs: the bytes are written as the checkpoint of [`ResumeRun`]'s directory and
/// the run resumes from them. Any bytes give an error or a finished run whose model has
/// the configuration's shapes and finite parameters, whose history holds every epoch of
/// both phases once and in order, and whose best model is phase 2's first epoch (from 1) of
/// least validation error, with that error.
#[cfg(feature = "safetensors")]
pub fn resume(data: &[u8]) {
    resume_finishes(data);
}

/// [`resume`], telling whether the run resumed and finished.
#[cfg(feature = "safetensors")]
pub fn resume_finishes(data: &[u8]) -> bool {
    thread_local! {
        static RUN: ResumeRun = ResumeRun::new();
    }
    let dir = Scratch::new("resume");
    std::fs::write(dir.0.join(crate::train::CHECKPOINT_FILE), data)
        .expect("write a temporary file");
    RUN.with(|run| match run.train(&dir.0, None, true) {
        Ok(out) => {
            let m = &out.model;
            assert_eq!((m.hidden(), m.input_dim()), (4, 6));
            assert_eq!(m.steps, run.cfg.steps);
            for t in [&m.e, &m.s, &m.d, &m.c] {
                assert!(t.as_slice().iter().all(|v| v.is_finite()));
            }
            assert!(m.b.iter().all(|v| v.is_finite()));
            // Every epoch of both phases is in the history, once and in order (the run has
            // no time budget and no patience, so none is cut short).
            let epochs: Vec<(u8, usize)> = out.history.iter().map(|r| (r.phase, r.epoch)).collect();
            let want: Vec<(u8, usize)> = (1..=run.cfg.epochs_unsup)
                .map(|e| (1, e))
                .chain((1..=run.cfg.epochs_sup).map(|e| (2, e)))
                .collect();
            assert_eq!(epochs, want);
            // The best model is phase 2's first epoch of least validation error (so its epoch
            // is one of phase 2's, counted from 1), with that epoch's error.
            let phase2: Vec<f64> = out
                .history
                .iter()
                .filter(|r| r.phase == 2)
                .map(|r| r.val_error)
                .collect();
            assert!((1..=run.cfg.epochs_sup).contains(&out.best_epoch));
            let least = phase2.iter().copied().fold(f64::INFINITY, f64::min);
            let first = phase2.iter().position(|&v| v == least).map(|i| i + 1);
            assert_eq!(first, Some(out.best_epoch));
            assert_eq!(out.best_val_error.to_bits(), least.to_bits());
            for r in &out.history {
                assert!((0.0..=100.0).contains(&r.val_error));
                assert!(r.loss.is_finite() && r.loss >= 0.0);
            }
            true
        }
        Err(_) => false,
    })
}

/// Model files loaded into the estimator: the bytes are written to a file and read with
/// [`crate::Drsae::load`] (and [`crate::io::load_drsae`]). Any bytes give `Ok` or an error;
/// both loaders agree; an `Ok` model re-encodes to bytes that load as the same model, and
/// (when small) encodes and classifies a row.
#[cfg(feature = "safetensors")]
pub fn model_load(data: &[u8]) {
    model_loads(data);
}

/// [`model_load`], telling whether the file loaded.
#[cfg(feature = "safetensors")]
pub fn model_loads(data: &[u8]) -> bool {
    let dir = Scratch::new("model");
    let path = dir.0.join("model.safetensors");
    std::fs::write(&path, data).expect("write a temporary file");
    let loaded = crate::Drsae::load(&path);
    let raw = crate::io::load_drsae(&path);
    let Ok(model) = loaded else {
        return false;
    };
    let (network, _) = raw.expect("Drsae::load accepted what io::load_drsae refused");
    assert!(network == *model.network());
    let again = crate::Drsae::from_bytes(&model.to_bytes().expect("re-encode"))
        .expect("a re-encoded model loads");
    assert!(again.network() == model.network());
    assert_eq!(again.config(), model.config());
    assert_eq!(again.preprocessing(), model.preprocessing());
    let (n, m) = (model.hidden(), model.input_dim());
    if n * m <= 1 << 16 && model.network().steps <= 64 {
        let x = Mat::from_fn(1, m, |_, j| ((j % 7) as f32) / 7.0);
        let z = model.encode(&x).expect("encode a row of the model's width");
        assert_eq!(z.shape(), (1, n));
        let y = model
            .predict(&x)
            .expect("classify a row of the model's width");
        assert_eq!(y.len(), 1);
        assert!((y[0] as usize) < model.classes().max(1));
    }
    true
}

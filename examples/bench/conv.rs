//! `bench conv`: the convolutional auto-encoder's training step and its gathered kernels.

use super::{emit, reference_gemm_rate, reference_gemm_rate_for, time_best};
use crate::common::die;
use drsae::linalg::Mat;
use rand::SeedableRng;

/// Convolutional group-sparse auto-encoder forward + backward (the `conv` example's two
/// layers and a wider first layer), in GFLOP/s of its five GEMMs, against sgemm.
pub(crate) fn conv(only: Option<&str>) {
    use drsae::kernels::{ConvShape, Groups};
    if only.map_or(true, |o| o == "kernels") {
        conv_kernels();
    }
    use drsae::models::{ConvAe, ConvAeWorkspace, EncoderForm};
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let gemm_rate = reference_gemm_rate();
    emit("sgemm_256x784x400_same_run", gemm_rate, "GFLOP/s");
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap_or_else(|e| die(e));
    let batch = 32;
    for (name, h, c, maps) in [
        ("conv_l1_16maps", 28, 1, 16),
        ("conv_l1_32maps", 28, 1, 32),
        ("conv_l2_32maps", 12, 16, 32),
        ("conv_l2_64maps", 12, 32, 64),
    ] {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let shape = ConvShape::new(h, h, c, 5).unwrap();
        let model = ConvAe::init(shape, maps, EncoderForm::Relu, &mut rng);
        let x = if c == 1 {
            mnist.train.images.row_range(0, batch).to_owned()
        } else {
            Mat::random(
                batch,
                shape.image_len(),
                rand_distr::Uniform::new(0.0f32, 1.0),
                &mut rng,
            )
        };
        let groups = Groups::spatial_pools(shape.out_h(), shape.out_w(), maps, 2, 2, 1).unwrap();
        let mut ws = ConvAeWorkspace::default();
        let mut g = model.zero_grads();
        // Five alternating rounds of sgemm and this step; each ratio is taken within one
        // round (the machine's speed drifts by tens of percent over seconds), and the
        // median round is reported.
        let mut rounds: Vec<(f64, f64)> = (0..5)
            .map(|_| {
                let gemm_rate = reference_gemm_rate_for(0.2, 2);
                let secs = time_best(
                    || {
                        model.gradients(&x, &groups, 0.1, &mut ws, &mut g);
                    },
                    0.2,
                    2,
                );
                (model.step_flops(batch) / secs / 1e9, gemm_rate)
            })
            .collect();
        rounds.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let (gflops, gemm_rate) = rounds[rounds.len() / 2];
        emit(&format!("{name}_fwd_bwd"), gflops, "GFLOP/s");
        emit(
            &format!("{name}_images"),
            batch as f64 * gflops * 1e9 / model.step_flops(batch),
            "images/s",
        );
        emit(
            &format!("{name}_gemm_fraction"),
            gflops / gemm_rate,
            "ratio (median of 5 alternating rounds)",
        );
        emit(
            &format!("{name}_gemm_fraction_range"),
            rounds[0].0 / rounds[0].1,
            &format!("lowest round; highest {:.3}", rounds[4].0 / rounds[4].1),
        );
    }
}

/// The layer-1 products (8 images of 28 × 28, 5 × 5 kernels, 16 maps: 4,608 patch rows)
/// on one thread: the gathered kernels reading the images in place against matrixmultiply
/// on the materialised patch matrix (im2col not timed), GFLOP/s.
fn conv_kernels() {
    use drsae::kernels::{
        gathered_gemm, gathered_gemm_relu, gathered_gemm_scatter, gathered_gemm_tn, im2col,
        ConvShape, GatherIndex,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let shape = ConvShape::new(28, 28, 1, 5).unwrap();
    let (batch, maps) = (8, 16);
    let u = rand_distr::Uniform::new(-1.0f32, 1.0);
    let x = Mat::random(batch, shape.image_len(), u, &mut rng);
    let w = Mat::random(maps, shape.patch_len(), u, &mut rng);
    let idx = GatherIndex::patches(&shape, batch);
    let rows = idx.rows();
    let mut cols = Mat::zeros(rows, shape.patch_len());
    im2col(&shape, x.as_slice(), cols.as_mut_slice());
    let z = Mat::random(rows, maps, u, &mut rng);
    let zidx = GatherIndex::row_major(rows, maps, maps);
    let mut out = Mat::zeros(rows, maps);
    let mut yout = Mat::zeros(rows, shape.patch_len());
    let mut small = Mat::zeros(shape.patch_len(), maps);
    // The single-channel decoder: the `maps × patch_len` matrix `w` read as Dᵀ and the
    // patch index, both with the taps in column-major order (as `ConvAe` does), to add
    // Z·Dᵀ straight into images.
    let taps = shape.column_major_taps();
    let dtidx = GatherIndex::new(
        (0..maps).map(|m| m * shape.patch_len()).collect(),
        taps.clone(),
    );
    let sidx = GatherIndex::patch_taps(&shape, batch, &taps);
    let mut images = x.clone();
    let (bias, gain) = (vec![0.1; maps], vec![1.5; maps]);
    let mut h = Mat::zeros(rows, maps);
    let mut scratch = Vec::new();
    let flops = 2.0 * (rows * shape.patch_len() * maps) as f64;
    let threads = drsae::linalg::gemm_threads();
    drsae::linalg::set_gemm_threads(1);
    let rate = |f: &mut dyn FnMut()| flops / time_best(f, 0.3, 5) / 1e9;
    let lines = [
        (
            "gathered_encoder_4608x25x16_1thread",
            rate(&mut || {
                let p = idx.over(x.as_slice());
                gathered_gemm(1.0, p, w.t(), false, out.as_mut_slice(), maps, &mut scratch)
            }),
        ),
        (
            // with the bias, ReLU and gain applied to each tile (writes H and Z)
            "gathered_encoder_relu_4608x25x16_1thread",
            rate(&mut || {
                let p = idx.over(x.as_slice());
                let (hs, zs) = (h.as_mut_slice(), out.as_mut_slice());
                gathered_gemm_relu(p, w.t(), &bias, &gain, hs, zs, &mut scratch)
            }),
        ),
        (
            "matrixmultiply_encoder_4608x25x16_1thread",
            rate(&mut || drsae::linalg::gemm(1.0, cols.view(), w.t(), 0.0, out.view_mut())),
        ),
        (
            "gathered_decoder_4608x16x25_1thread",
            rate(&mut || {
                let zz = zidx.over(z.as_slice());
                let plen = shape.patch_len();
                gathered_gemm(
                    1.0,
                    zz,
                    w.view(),
                    false,
                    yout.as_mut_slice(),
                    plen,
                    &mut scratch,
                )
            }),
        ),
        (
            // The single-channel layers' decoder: Z·Dᵀ added into the images (col2im
            // included, unlike the other decoder lines).
            "gathered_decoder_scatter_4608x16x25_1thread",
            rate(&mut || {
                let dt = dtidx.over(w.as_slice());
                let target = sidx.over_mut(images.as_mut_slice());
                gathered_gemm_scatter(1.0, z.as_slice(), maps, dt, target, &mut scratch);
            }),
        ),
        (
            "matrixmultiply_decoder_4608x16x25_1thread",
            rate(&mut || drsae::linalg::gemm(1.0, z.view(), w.view(), 0.0, yout.view_mut())),
        ),
        (
            "gathered_patch_t_codes_25x4608x16_1thread",
            rate(&mut || {
                let p = idx.over(x.as_slice());
                let (zs, sm) = (z.as_slice(), small.as_mut_slice());
                gathered_gemm_tn(1.0, p, zs, maps, maps, false, sm, maps, &mut scratch)
            }),
        ),
        (
            "matrixmultiply_patch_t_codes_25x4608x16_1thread",
            rate(&mut || drsae::linalg::gemm(1.0, cols.t(), z.view(), 0.0, small.view_mut())),
        ),
    ];
    drsae::linalg::set_gemm_threads(threads);
    for (name, v) in lines {
        emit(name, v, "GFLOP/s");
    }
}

//! `bench models`: one training step of LISTA, the group-sparse auto-encoder and lateral
//! inhibition.

use super::{emit, time_best};
use crate::common::die;
use drsae::linalg::Mat;
use rand::SeedableRng;

/// One training step (forward + backward, no update) of the other models, samples/s at
/// minibatch 100: LISTA (784 → 400, T = 3 on MNIST), the group-sparse auto-encoder (12 × 12
/// patches, 16 × 16 units, 3 × 3 wrap-around pools) and lateral-inhibition sparse coding
/// (8 × 8 patches, 64 units, grid S: inference by coordinate descent from zero, then the
/// W and S gradients).
pub(crate) fn models() {
    use drsae::kernels::Groups;
    use drsae::models::{
        grid_inhibition, inhibition_gradients, EncoderForm, GroupAe, GroupAeWorkspace, Lista,
        ListaWorkspace,
    };
    use drsae::solvers::{inhibited_codes, Dictionary};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap_or_else(|e| die(e));
    let batch = 100;
    let mut x = mnist.train.images.row_range(0, batch).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    // LISTA
    let mut d = Mat::random(784, 400, rand_distr::StandardNormal, &mut rng);
    for j in 0..400 {
        let nrm: f32 = (0..784).map(|i| d[(i, j)] * d[(i, j)]).sum::<f32>().sqrt();
        (0..784).for_each(|i| d[(i, j)] /= nrm);
    }
    let dict = Dictionary::new(d.clone()).unwrap_or_else(|e| die(e));
    let lista = Lista::from_ista(&dict, 0.1, 3);
    let target = lista.encode(&x);
    let (mut ws, mut g) = (ListaWorkspace::default(), lista.zero_grads());
    let secs = time_best(
        || {
            lista.forward(&x, &mut ws);
            lista.backward(&x, &target, &mut ws, &mut g);
        },
        0.5,
        3,
    );
    emit("lista_b100_t3", batch as f64 / secs, "samples/s");
    // Group-sparse auto-encoder on patches
    let patches = Mat::random(batch, 144, rand_distr::StandardNormal, &mut rng);
    let groups = Groups::grid(16, 16, 3, 1, None).unwrap();
    let ae = GroupAe::init(144, 256, EncoderForm::Relu, &mut rng);
    let (mut ws, mut g) = (GroupAeWorkspace::default(), ae.zero_grads());
    let secs = time_best(
        || {
            ae.forward(&patches, &groups, &mut ws);
            ae.backward(&patches, &groups, 0.3, &mut ws, &mut g);
        },
        0.5,
        3,
    );
    emit("group_ae_b100", batch as f64 / secs, "samples/s");
    // Lateral inhibition
    let small = Mat::random(batch, 64, rand_distr::StandardNormal, &mut rng);
    let mut w = Mat::random(64, 64, rand_distr::StandardNormal, &mut rng);
    for j in 0..64 {
        let nrm: f32 = (0..64).map(|i| w[(i, j)] * w[(i, j)]).sum::<f32>().sqrt();
        (0..64).for_each(|i| w[(i, j)] /= nrm);
    }
    let s = grid_inhibition(8, 8, 1, 1.0).unwrap();
    let (mut z, mut dw, mut ds) = (
        Mat::zeros(batch, 64),
        Mat::zeros(64, 64),
        Mat::zeros(64, 64),
    );
    let secs = time_best(
        || {
            z.fill(0.0);
            inhibited_codes(&w, &s, &small, &mut z, 0.1, 50, 1e-4).unwrap();
            inhibition_gradients(&w, &small, &z, &mut dw, &mut ds);
        },
        0.5,
        3,
    );
    emit("inhibition_b100", batch as f64 / secs, "samples/s");
}

//! Training a DrSAE: phase 1 on the unsupervised loss, phase 2 on the full loss with early
//! stopping on a validation set (the best-validation model is returned).

use super::checkpoint::{Checkpointing, EpochReport, ResumeExpectations, TrainState};
use super::drsae_config::DrsaeConfig;
use super::drsae_phase::{Run, Split, VALIDATION_BATCH};
use crate::models::DrsaeNetwork;
use crate::{Error, Result};
use std::time::Instant;

/// The result of [`train_drsae`].
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The model at the best validation epoch of phase 2.
    pub model: DrsaeNetwork,
    /// Phase-2 epoch (from 1) of the best validation error.
    pub best_epoch: usize,
    /// Best validation error (percent).
    pub best_val_error: f64,
    /// Every epoch's report, in order.
    pub history: Vec<EpochReport>,
    /// Mean training throughput over both phases.
    pub samples_per_s: f64,
}

/// Trains a DrSAE (see [`DrsaeConfig`]); `on_epoch` sees every epoch's report as it ends.
///
/// # Errors
/// An invalid configuration, mismatched or non-finite data, a diverged loss
/// ([`Error::Diverged`] naming the step), or a network whose every code unit fell silent for
/// a whole epoch ([`Error::Collapsed`]).
pub fn train_drsae(
    cfg: &DrsaeConfig,
    data: Split<'_>,
    on_epoch: impl FnMut(&EpochReport),
) -> Result<TrainOutcome> {
    train_drsae_with(cfg, data, &Checkpointing::default(), on_epoch)
}

/// [`train_drsae`] with checkpoints and resumption.
///
/// # Errors
/// As [`train_drsae`]; also a checkpoint that cannot be written or read, a checkpoint made
/// with a different configuration, and [`Error::Interrupted`] when `stop_after_steps` is
/// reached. On [`Error::Diverged`] the last checkpoint (the last good state) is kept.
pub fn train_drsae_with(
    cfg: &DrsaeConfig,
    data: Split<'_>,
    ckpt: &Checkpointing,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<TrainOutcome> {
    cfg.check()?;
    ckpt.check()?;
    let classes = check_split(&data)?;
    let mut st = start_or_resume(cfg, &data, ckpt, classes)?;
    // The time already spent (checked to lie in [0, 1e9] s when the checkpoint was read).
    let start = std::time::Duration::try_from_secs_f64(st.elapsed)
        .ok()
        .and_then(|spent| Instant::now().checked_sub(spent))
        .ok_or_else(|| {
            Error::param(
                "resume",
                format!(
                    "the checkpoint's {} s spent cannot be carried over",
                    crate::Compact(st.elapsed)
                ),
            )
        })?;
    let run = Run {
        cfg,
        data,
        ckpt,
        start,
    };
    for phase in [1u8, 2] {
        run.phase(&mut st, phase, &mut on_epoch)?;
    }
    Ok(outcome(st, &data))
}

/// Checks that the split has training and validation rows with one label each, all finite;
/// returns the number of classes (the largest label + 1, at least 2).
fn check_split(data: &Split<'_>) -> Result<usize> {
    if data.train_x.nrows() == 0
        || data.train_x.nrows() != data.train_y.len()
        || data.val_x.nrows() != data.val_y.len()
        || data.val_x.nrows() == 0
    {
        return Err(Error::param(
            "data",
            format!(
                "need non-empty training and validation sets with one label per row (train {} rows / {} labels, val {} rows / {} labels)",
                data.train_x.nrows(),
                data.train_y.len(),
                data.val_x.nrows(),
                data.val_y.len()
            ),
        ));
    }
    crate::check_finite("training inputs", data.train_x.as_slice())?;
    crate::check_finite("validation inputs", data.val_x.as_slice())?;
    Ok(data
        .train_y
        .iter()
        .chain(data.val_y)
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(1)
        .max(2))
}

/// The state to train from: the checkpoint's, checked against this run, when resuming;
/// else a fresh network initialised from the seed and projected onto the constraints.
fn start_or_resume(
    cfg: &DrsaeConfig,
    data: &Split<'_>,
    ckpt: &Checkpointing,
    classes: usize,
) -> Result<TrainState> {
    let mut fingerprint: String = cfg
        .fields()
        .iter()
        .map(|(k, v)| format!("{k}={v};"))
        .collect();
    fingerprint.push_str(&format!(
        "train={}x{};val={}",
        data.train_x.nrows(),
        data.train_x.ncols(),
        data.val_x.nrows()
    ));
    let resumed = match (&ckpt.dir, ckpt.resume) {
        (Some(dir), true) => TrainState::load(dir)?,
        _ => None,
    };
    let Some(st) = resumed else {
        let mut init_rng = crate::rng::seeded(cfg.seed);
        let mut model =
            DrsaeNetwork::init(data.train_x, cfg.hidden, classes, cfg.steps, &mut init_rng);
        model.project(cfg.e_bound());
        return Ok(new_state(model, fingerprint));
    };
    if st.fingerprint != fingerprint {
        return Err(Error::param(
            "resume",
            "the checkpoint was made with a different configuration or data set",
        ));
    }
    st.check_resumable(&ResumeExpectations {
        hidden: cfg.hidden,
        inputs: data.train_x.ncols(),
        classes,
        steps: cfg.steps,
        epochs: [cfg.epochs_unsup, cfg.epochs_sup],
        steps_per_epoch: data.train_x.nrows().div_ceil(cfg.batch),
        optimizer: cfg.for_phase(st.phase).optimizer,
        rows: data.train_x.nrows(),
        batch: cfg.batch,
        time_budget: cfg.time_budget.is_some(),
        average: cfg.average.is_some(),
        patience: cfg.patience,
    })?;
    Ok(st)
}

/// The run's result: the best phase-2 model (or, without phase 2, the last one, validated).
fn outcome(st: TrainState, data: &Split<'_>) -> TrainOutcome {
    let TrainState {
        model,
        best,
        samples_seen,
        train_seconds,
        history,
        ..
    } = st;
    let (model, best_val_error, best_epoch) = match best {
        Some(b) => b,
        None => {
            let (_, e) = model.evaluate(data.val_x, data.val_y, VALIDATION_BATCH);
            (model, e, 0)
        }
    };
    TrainOutcome {
        model,
        best_epoch,
        best_val_error,
        history,
        samples_per_s: samples_seen as f64 / train_seconds.max(1e-9),
    }
}

fn new_state(model: DrsaeNetwork, fingerprint: String) -> TrainState {
    TrainState {
        phase: 1,
        epoch: 1,
        batch_index: 0,
        global_step: 0,
        model,
        opt_first: Vec::new(),
        opt_second: Vec::new(),
        opt_step: 0,
        best: None,
        since_best: 0,
        average: None,
        sums: (0.0, 0.0, 0, 0),
        history: Vec::new(),
        samples_seen: 0,
        train_seconds: 0.0,
        elapsed: 0.0,
        fingerprint,
    }
}

#[cfg(all(test, feature = "safetensors"))]
mod tests {
    use super::*;
    use crate::linalg::Mat;

    fn model(hidden: usize, seed: u64) -> DrsaeNetwork {
        let mut rng = crate::rng::seeded(seed);
        let data = Mat::random(5, 6, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
        DrsaeNetwork::init(&data, hidden, 3, 2, &mut rng)
    }

    #[test]
    fn checkpoint_round_trips_the_average_and_refuses_mismatched_shapes() {
        let dir = std::env::temp_dir().join(format!("drsae-avg-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut st = new_state(model(4, 1), "fp".into());
        st.phase = 2;
        st.average = Some(model(4, 2));
        st.save(&dir).unwrap();
        let back = TrainState::load(&dir).unwrap().unwrap();
        assert!(back == st, "state with an average did not round-trip");
        st.average = Some(model(5, 3));
        st.save(&dir).unwrap();
        match TrainState::load(&dir) {
            Err(Error::Format { .. }) => {}
            other => panic!(
                "mismatched average accepted: {:?}",
                other.map(|s| s.is_some())
            ),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Checkpoints of the single-phase training loops (LISTA, group-sparse auto-encoders,
//! lateral inhibition, through [`EpochLoop`](super::skeleton::EpochLoop)): the loop's
//! position, running sums and history as metadata beside the model's tensors and the
//! optimiser's moments, in the checkpoint file format of `checkpoint.rs`.

use super::checkpoint::{
    check_count, err, meta_get, optimizer_from_checkpoint, optimizer_to_checkpoint,
    read_checkpoint, write_checkpoint, Checkpointing, Tensors, MAX_COUNT,
};
use crate::io::{reject_unknown, NamedTensor};
use crate::{Error, Result};
use std::collections::HashMap;

/// Where a simple epoch/minibatch training loop is: enough, with the model and optimiser,
/// to continue it exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LoopPosition {
    /// Epoch in progress (0-based).
    pub epoch: usize,
    /// Minibatches of that epoch already taken.
    pub batch_index: usize,
    /// Optimisation steps taken.
    pub step: u64,
    /// Running sums of the epoch in progress.
    pub sums: Vec<f64>,
    /// One figure per finished epoch.
    pub history: Vec<f64>,
}

fn floats_to_string(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn floats_from_string(s: &str) -> Result<Vec<f64>> {
    s.split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| {
            // Some loops keep counts among these (as f64): bounded, adding to them after a
            // conversion to usize cannot overflow.
            t.parse()
                .ok()
                .filter(|v: &f64| v.abs() <= (1u64 << 53) as f64)
                .ok_or_else(|| {
                    err(format!(
                        "malformed or non-finite number `{t}` (or beyond ±2^53)"
                    ))
                })
        })
        .collect()
}

/// Checkpointing of a simple training loop (LISTA, group AE, inhibition), through the same
/// file format as DrSAE's.
pub(crate) struct LoopCheckpointer<'a> {
    ckpt: &'a Checkpointing,
    kind: &'static str,
    fingerprint: String,
    /// Epochs and minibatches per epoch of the run, to check a resumed position against.
    bounds: Option<(usize, usize)>,
}

impl<'a> LoopCheckpointer<'a> {
    /// The checkpoints of a loop of `kind` under `ckpt` (checked: see
    /// [`Checkpointing::check`]).
    ///
    /// # Errors
    /// Checkpoint settings that need a directory and have none.
    pub(crate) fn new(
        ckpt: &'a Checkpointing,
        kind: &'static str,
        fingerprint: String,
    ) -> Result<Self> {
        ckpt.check()?;
        Ok(LoopCheckpointer {
            ckpt,
            kind,
            fingerprint,
            bounds: None,
        })
    }

    /// The run's number of epochs and minibatches per epoch: a resumed position beyond
    /// them is an error.
    pub(crate) fn bounds(mut self, epochs: usize, steps_per_epoch: usize) -> Self {
        self.bounds = Some((epochs, steps_per_epoch));
        self
    }

    /// The position to start from: the checkpoint's (after `restore` has taken the model's
    /// tensors and the optimiser its state) when resuming, else the start.
    pub(crate) fn resume(
        &self,
        opt: Option<&mut super::optimizer::OptimizerState>,
        restore: impl FnOnce(&mut Tensors) -> Result<()>,
    ) -> Result<LoopPosition> {
        let (Some(dir), true) = (&self.ckpt.dir, self.ckpt.resume) else {
            return Ok(LoopPosition::default());
        };
        let Some((mut t, meta)) = read_checkpoint(dir, self.kind)? else {
            return Ok(LoopPosition::default());
        };
        if meta.get("fingerprint") != Some(&self.fingerprint) {
            return Err(Error::param(
                "resume",
                "the checkpoint was made with a different configuration or data set",
            ));
        }
        restore(&mut t)?;
        let mut opt_step = 0;
        if let Some(opt) = opt {
            optimizer_from_checkpoint(opt, &mut t, &meta)?;
            opt_step = opt.step;
        }
        reject_unknown(&t, "checkpoint")?;
        let pos = LoopPosition {
            epoch: meta_get(&meta, "epoch")?,
            batch_index: meta_get(&meta, "batch_index")?,
            step: meta_get(&meta, "step")?,
            sums: floats_from_string(meta.get("sums").map_or("", String::as_str))?,
            history: floats_from_string(meta.get("history").map_or("", String::as_str))?,
        };
        check_count("step", pos.step, MAX_COUNT)?;
        check_count("opt_step", opt_step, pos.step)?;
        check_count("batch_index", pos.batch_index as u64, pos.step)?;
        if let Some((epochs, spe)) = self.bounds {
            if pos.epoch > epochs
                || (pos.epoch == epochs && pos.batch_index > 0)
                || pos.batch_index > spe
                || pos.step > epochs as u64 * spe as u64
            {
                return Err(Error::param(
                    "resume",
                    format!(
                        "the checkpoint is at epoch {} minibatch {} after {} steps; the run has \
                         {epochs} epochs of {spe} minibatches",
                        pos.epoch, pos.batch_index, pos.step
                    ),
                ));
            }
        }
        Ok(pos)
    }

    fn save(
        &self,
        pos: &LoopPosition,
        owned: Vec<OwnedTensor>,
        opt: Option<&super::optimizer::OptimizerState>,
    ) -> Result<()> {
        let Some(dir) = &self.ckpt.dir else {
            return Ok(());
        };
        let mut tensors = as_named(&owned);
        let mut meta = HashMap::new();
        if let Some(opt) = opt {
            optimizer_to_checkpoint(opt, &mut tensors, &mut meta);
        }
        meta.insert("epoch".into(), pos.epoch.to_string());
        meta.insert("batch_index".into(), pos.batch_index.to_string());
        meta.insert("step".into(), pos.step.to_string());
        meta.insert("sums".into(), floats_to_string(&pos.sums));
        meta.insert("history".into(), floats_to_string(&pos.history));
        meta.insert("fingerprint".into(), self.fingerprint.clone());
        write_checkpoint(dir, self.kind, &tensors, meta)
    }

    /// After a step: checkpoint if one is due, and stop with [`Error::Interrupted`] if asked.
    pub(crate) fn after_step(
        &self,
        pos: &LoopPosition,
        tensors: impl FnOnce() -> Vec<OwnedTensor>,
        opt: Option<&super::optimizer::OptimizerState>,
    ) -> Result<()> {
        let cadence = self.ckpt.cadence(pos.step);
        if cadence.save {
            self.save(pos, tensors(), opt)?;
        }
        if cadence.stop {
            return Err(Error::Interrupted { step: pos.step });
        }
        Ok(())
    }

    /// At the end of an epoch (the position already points at the next one): checkpoint.
    pub(crate) fn at_epoch_end(
        &self,
        pos: &LoopPosition,
        tensors: impl FnOnce() -> Vec<OwnedTensor>,
        opt: Option<&super::optimizer::OptimizerState>,
    ) -> Result<()> {
        if self.ckpt.dir.is_some() {
            self.save(pos, tensors(), opt)?;
        }
        Ok(())
    }
}

/// A checkpoint fingerprint from a configuration's explicit `(name, value)` fields:
/// `name=value` pairs separated by `;`.
pub(crate) fn fields_fingerprint(fields: &[(&'static str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// An owned `(name, shape, values)` tensor, built only when a checkpoint is written.
pub(crate) type OwnedTensor = (String, Vec<usize>, Vec<f32>);

/// Borrowed [`NamedTensor`]s of owned tensors.
pub(crate) fn as_named(owned: &[OwnedTensor]) -> Vec<NamedTensor<'_>> {
    owned
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), &v[..]))
        .collect()
}

//! Crash-safe training checkpoints: everything needed to continue a run so that an
//! interrupted-and-resumed run ends with the same model bytes as an uninterrupted one.
//!
//! A checkpoint holds the model, the best model so far, the optimiser's moments and step,
//! the position in the schedule (phase, epoch, batch within the epoch, global step), the
//! running sums of the current epoch and the history. The shuffling RNG needs no state: the
//! order of each (phase, epoch) is drawn from a generator seeded by the seed, the phase and
//! the epoch. Files are written atomically (temporary file, fsync, rename), so a crash leaves
//! the previous checkpoint intact.

use super::drsae_trainer::EpochReport;
#[cfg(feature = "safetensors")]
use crate::io::{
    model_from_tensors, model_tensors, tensors_from_bytes, tensors_to_bytes, write_atomic,
    NamedTensor,
};
use crate::models::Drsae;
#[cfg(feature = "safetensors")]
use crate::{Error, Result};
#[cfg(feature = "safetensors")]
use std::collections::HashMap;
#[cfg(feature = "safetensors")]
use std::path::Path;

/// The file name of the checkpoint inside the checkpoint directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// The resumable state of a DrSAE training run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrainState {
    pub phase: u8,
    pub epoch: usize,
    pub batch_index: usize,
    pub global_step: u64,
    pub model: Drsae,
    pub opt_first: Vec<Vec<f32>>,
    pub opt_second: Vec<Vec<f32>>,
    pub opt_step: u64,
    pub best: Option<(Drsae, f64, usize)>,
    pub since_best: usize,
    pub sums: (f64, f64, usize, usize),
    pub history: Vec<EpochReport>,
    pub samples_seen: usize,
    pub train_seconds: f64,
    pub elapsed: f64,
    pub fingerprint: String,
}

#[cfg(feature = "safetensors")]
fn err(what: impl Into<String>) -> Error {
    Error::format("checkpoint", what)
}

#[cfg(feature = "safetensors")]
fn history_to_string(h: &[EpochReport]) -> String {
    h.iter()
        .map(|r| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                r.phase,
                r.epoch,
                r.loss,
                r.reconstruction,
                r.train_error,
                r.val_error,
                r.samples_per_s,
                r.seconds,
                r.progress
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(feature = "safetensors")]
fn history_from_string(s: &str) -> Result<Vec<EpochReport>> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() != 9 {
                return Err(err("malformed history line"));
            }
            let num = |i: usize| {
                f[i].parse::<f64>()
                    .map_err(|_| err("malformed history number"))
            };
            Ok(EpochReport {
                phase: f[0].parse().map_err(|_| err("malformed history phase"))?,
                epoch: f[1].parse().map_err(|_| err("malformed history epoch"))?,
                loss: num(2)?,
                reconstruction: num(3)?,
                train_error: num(4)?,
                val_error: num(5)?,
                samples_per_s: num(6)?,
                seconds: num(7)?,
                progress: num(8)?,
            })
        })
        .collect()
}

#[cfg(feature = "safetensors")]
impl TrainState {
    /// Writes the state to `dir/checkpoint.safetensors` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tensors: Vec<NamedTensor<'_>> = model_tensors(&self.model, "");
        if let Some((best, _, _)) = &self.best {
            tensors.extend(model_tensors(best, "best/"));
        }
        for (k, v) in self.opt_first.iter().enumerate() {
            tensors.push((format!("opt/first/{k}"), vec![v.len()], v));
        }
        for (k, v) in self.opt_second.iter().enumerate() {
            tensors.push((format!("opt/second/{k}"), vec![v.len()], v));
        }
        let mut meta = HashMap::new();
        let mut put = |k: &str, v: String| {
            meta.insert(k.to_string(), v);
        };
        put("format", "drsae-checkpoint".into());
        put("format_version", "1".into());
        put("steps", self.model.steps.to_string());
        put("phase", self.phase.to_string());
        put("epoch", self.epoch.to_string());
        put("batch_index", self.batch_index.to_string());
        put("global_step", self.global_step.to_string());
        put("opt_step", self.opt_step.to_string());
        put("opt_first", self.opt_first.len().to_string());
        put("opt_second", self.opt_second.len().to_string());
        put("since_best", self.since_best.to_string());
        if let Some((_, e, ep)) = &self.best {
            put("best_val_error", format!("{e:?}"));
            put("best_epoch", ep.to_string());
        }
        put(
            "sums",
            format!(
                "{:?} {:?} {} {}",
                self.sums.0, self.sums.1, self.sums.2, self.sums.3
            ),
        );
        put("history", history_to_string(&self.history));
        put("samples_seen", self.samples_seen.to_string());
        put("train_seconds", format!("{:?}", self.train_seconds));
        put("elapsed", format!("{:?}", self.elapsed));
        put("fingerprint", self.fingerprint.clone());
        write_atomic(
            dir.join(CHECKPOINT_FILE),
            &tensors_to_bytes(&tensors, meta)?,
        )
    }

    /// Reads `dir/checkpoint.safetensors`, or `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<TrainState>> {
        let path = dir.join(CHECKPOINT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let (mut t, meta) = tensors_from_bytes(&bytes)?;
        if meta.get("format").map(String::as_str) != Some("drsae-checkpoint")
            || meta.get("format_version").map(String::as_str) != Some("1")
        {
            return Err(err(format!(
                "{} is not a drsae checkpoint (version 1)",
                path.display()
            )));
        }
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| err(format!("metadata `{k}` missing")))
        };
        fn parse<T: std::str::FromStr>(k: &str, v: &str) -> Result<T> {
            v.parse()
                .map_err(|_| err(format!("metadata `{k}` = `{v}` is malformed")))
        }
        let steps = crate::io::parse_steps(&meta)?;
        let model = model_from_tensors(&mut t, "", steps)?;
        let best = match meta.get("best_val_error") {
            Some(e) => Some((
                model_from_tensors(&mut t, "best/", steps)?,
                parse::<f64>("best_val_error", e)?,
                parse::<usize>("best_epoch", get("best_epoch")?)?,
            )),
            None => None,
        };
        let mut moments = |kind: &str| -> Result<Vec<Vec<f32>>> {
            let count: usize = parse(kind, get(&format!("opt_{kind}"))?)?;
            if count > 16 {
                return Err(err("too many optimiser buffers"));
            }
            (0..count)
                .map(|k| {
                    t.remove(&format!("opt/{kind}/{k}"))
                        .map(|(_, v)| v)
                        .ok_or_else(|| err(format!("optimiser buffer {kind}/{k} missing")))
                })
                .collect()
        };
        let opt_first = moments("first")?;
        let opt_second = moments("second")?;
        let sums: Vec<&str> = get("sums")?.split(' ').collect();
        if sums.len() != 4 {
            return Err(err("metadata `sums` is malformed"));
        }
        Ok(Some(TrainState {
            phase: parse("phase", get("phase")?)?,
            epoch: parse("epoch", get("epoch")?)?,
            batch_index: parse("batch_index", get("batch_index")?)?,
            global_step: parse("global_step", get("global_step")?)?,
            model,
            opt_first,
            opt_second,
            opt_step: parse("opt_step", get("opt_step")?)?,
            best,
            since_best: parse("since_best", get("since_best")?)?,
            sums: (
                parse("sums", sums[0])?,
                parse("sums", sums[1])?,
                parse("sums", sums[2])?,
                parse("sums", sums[3])?,
            ),
            history: history_from_string(get("history")?)?,
            samples_seen: parse("samples_seen", get("samples_seen")?)?,
            train_seconds: parse("train_seconds", get("train_seconds")?)?,
            elapsed: parse("elapsed", get("elapsed")?)?,
            fingerprint: get("fingerprint")?.clone(),
        }))
    }
}

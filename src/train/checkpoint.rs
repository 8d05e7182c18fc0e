//! Crash-safe training checkpoints: everything needed to continue a run so that an
//! interrupted-and-resumed run ends with the same model bytes as an uninterrupted one.
//!
//! A checkpoint holds the model, the best model so far, the optimiser's moments and step,
//! the position in the schedule (phase, epoch, batch within the epoch, global step), the
//! running sums of the current epoch and the history. The shuffling RNG needs no state: the
//! order of each (phase, epoch) is drawn from a generator seeded by the seed, the phase and
//! the epoch. Files are written atomically (temporary file, fsync, rename), so a crash leaves
//! the previous checkpoint intact.
//!
//! One file on purpose: the DrSAE checkpoint state and the field-by-field validation of
//! everything read back belong together (the single-phase loops' checkpointer is
//! `loop_checkpoint.rs`).

use crate::io::{model_from_tensors, model_tensors, reject_unknown, NamedTensor};
use crate::models::DrsaeNetwork;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1 (unsupervised) or 2 (supervised).
    pub phase: u8,
    /// Epoch number within the phase, from 1.
    pub epoch: usize,
    /// Mean weighted training loss over the epoch.
    pub loss: f64,
    /// Mean ½‖x − Dz‖² over the epoch.
    pub reconstruction: f64,
    /// Training error (percent) over the epoch, phase 2 only (NaN in phase 1).
    pub train_error: f64,
    /// Validation error in percent.
    pub val_error: f64,
    /// Training throughput over the epoch.
    pub samples_per_s: f64,
    /// Seconds since training started.
    pub seconds: f64,
    /// Fraction of the planned work done (by epochs or time, whichever is further).
    pub progress: f64,
}

impl EpochReport {
    /// The header of [`EpochReport::csv_row`]'s columns.
    pub const CSV_HEADER: &'static str =
        "phase,epoch,loss,reconstruction,train_error,val_error,samples_per_s,seconds";

    /// The report as one CSV row (no newline), columns as [`EpochReport::CSV_HEADER`].
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}",
            self.phase,
            self.epoch,
            self.loss,
            self.reconstruction,
            self.train_error,
            self.val_error,
            self.samples_per_s,
            self.seconds
        )
    }

    /// Every report as CSV text: the header, then one row per report.
    pub fn csv(history: &[EpochReport]) -> String {
        let mut out = format!("{}\n", Self::CSV_HEADER);
        for r in history {
            out.push_str(&r.csv_row());
            out.push('\n');
        }
        out
    }
}

impl std::fmt::Display for EpochReport {
    /// `phase P epoch E: loss … rec …[ train err …% val err …%] N samples/s` (phase 1 trains
    /// no classifier, so its errors are left out).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "phase {} epoch {:3}: loss {:.4} rec {:.4}",
            self.phase, self.epoch, self.loss, self.reconstruction
        )?;
        if self.phase == 2 {
            write!(
                f,
                " train err {:.2}% val err {:.2}%",
                self.train_error, self.val_error
            )?;
        }
        write!(f, " {:.0} samples/s", self.samples_per_s)
    }
}

/// Checkpointing and resumption of a training run ([`train_drsae_with`](super::train_drsae_with) and the other trainers' `_with` forms).
///
/// | Name | Default | Meaning |
/// |---|---|---|
/// | `dir` | none | directory of `checkpoint.safetensors` (written atomically) |
/// | `every_steps` | 0 | also checkpoint every this many optimisation steps (0: only at epoch ends) |
/// | `resume` | false | continue from the checkpoint in `dir` if there is one |
/// | `stop_after_steps` | none | checkpoint and stop with [`Error::Interrupted`](crate::Error::Interrupted) after this many steps |
///
/// Resuming with the same configuration, data and thread count gives the same model bytes
/// as an uninterrupted run (tested). Under a time budget, the time already spent is carried
/// over in the checkpoint, but where the budget cuts the run depends on the machine's speed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpointing {
    /// Checkpoint directory; `None` disables checkpoints.
    pub dir: Option<std::path::PathBuf>,
    /// Checkpoint every this many steps (0: at epoch ends only).
    pub every_steps: u64,
    /// Resume from `dir` if it holds a checkpoint.
    pub resume: bool,
    /// Stop (after checkpointing) when this many steps have been taken.
    pub stop_after_steps: Option<u64>,
}

/// What a training loop does after optimisation step `step` (see [`Checkpointing::cadence`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cadence {
    /// Write a checkpoint now.
    pub(crate) save: bool,
    /// Stop with [`Error::Interrupted`] (after writing it).
    pub(crate) stop: bool,
}

impl Checkpointing {
    /// Checks the settings: `every_steps`, `resume` and `stop_after_steps` need a `dir`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`checkpoint_dir`) when they are set without one.
    pub fn check(&self) -> Result<()> {
        if (self.every_steps > 0 || self.resume || self.stop_after_steps.is_some())
            && self.dir.is_none()
        {
            return Err(Error::param(
                "checkpoint_dir",
                "checkpoint_every, resume and stop_after_steps need a checkpoint directory",
            ));
        }
        Ok(())
    }

    /// The checkpoint cadence every training loop follows after step `step` (counted from
    /// 1): save every `every_steps` steps, and save then stop at `stop_after_steps`.
    pub(crate) fn cadence(&self, step: u64) -> Cadence {
        let stop = self.stop_after_steps.is_some_and(|s| step >= s);
        Cadence {
            save: stop || self.every_steps > 0 && step % self.every_steps == 0,
            stop,
        }
    }
}

/// The file name of the checkpoint inside the checkpoint directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// The resumable state of a DrSAE training run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrainState {
    pub phase: u8,
    pub epoch: usize,
    pub batch_index: usize,
    pub global_step: u64,
    pub model: DrsaeNetwork,
    pub opt_first: Vec<Vec<f32>>,
    pub opt_second: Vec<Vec<f32>>,
    pub opt_step: u64,
    pub best: Option<(DrsaeNetwork, f64, usize)>,
    pub since_best: usize,
    pub average: Option<DrsaeNetwork>,
    pub sums: (f64, f64, usize, usize),
    pub history: Vec<EpochReport>,
    pub samples_seen: usize,
    pub train_seconds: f64,
    pub elapsed: f64,
    pub fingerprint: String,
}

pub(crate) fn err(what: impl Into<String>) -> Error {
    Error::format("checkpoint", what)
}

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
            let report = EpochReport {
                phase: f[0].parse().map_err(|_| err("malformed history phase"))?,
                epoch: f[1].parse().map_err(|_| err("malformed history epoch"))?,
                loss: num(2)?,
                reconstruction: num(3)?,
                train_error: num(4)?,
                val_error: num(5)?,
                samples_per_s: num(6)?,
                seconds: num(7)?,
                progress: num(8)?,
            };
            if !(1..=2).contains(&report.phase) || report.epoch == 0 {
                return Err(err(format!(
                    "history line for phase {} epoch {}",
                    report.phase, report.epoch
                )));
            }
            check_seconds("history seconds", report.seconds)?;
            check_report(&report)?;
            Ok(report)
        })
        .collect()
}

/// Checks the figures of one history line against what an epoch can report: finite
/// non-negative loss, reconstruction and throughput, errors in percent (the training
/// error NaN in phase 1, which trains no classifier) and a progress in [0, 1].
fn check_report(r: &EpochReport) -> Result<()> {
    let at = format!("history line for phase {} epoch {}", r.phase, r.epoch);
    let non_negative = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(err(format!("{at}: {name} {v:?} is not a finite value ≥ 0")))
        }
    };
    non_negative("loss", r.loss)?;
    non_negative("reconstruction", r.reconstruction)?;
    non_negative("samples_per_s", r.samples_per_s)?;
    let percent = |v: f64| (0.0..=100.0).contains(&v);
    if !percent(r.val_error) {
        return Err(err(format!(
            "{at}: val_error {:?} is not a percentage",
            r.val_error
        )));
    }
    let train_ok = if r.phase == 1 {
        r.train_error.is_nan()
    } else {
        percent(r.train_error)
    };
    if !train_ok {
        return Err(err(format!(
            "{at}: train_error {:?} (NaN in phase 1, a percentage in phase 2)",
            r.train_error
        )));
    }
    if !(0.0..=1.0).contains(&r.progress) {
        return Err(err(format!(
            "{at}: progress {:?} is not in [0, 1]",
            r.progress
        )));
    }
    Ok(())
}

/// The longest run a checkpoint may record (10⁹ s, some 31 years): more is a forgery, and
/// would overflow the clock arithmetic that carries the time over.
pub(crate) const MAX_SECONDS: f64 = 1e9;

/// The largest epoch number, step count or batch index a checkpoint may hold (2⁴⁸: exact
/// as f64, far beyond any run).
pub(crate) const MAX_COUNT: u64 = 1 << 48;

/// The largest optimiser step count accepted: Adam raises β to it as an `i32`.
pub(crate) const MAX_OPT_STEP: u64 = i32::MAX as u64;

fn check_seconds(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(())
    } else {
        Err(err(format!(
            "metadata `{name}` = {v:?} is not a time in [0, {MAX_SECONDS:e}] s"
        )))
    }
}

pub(crate) fn check_count(name: &str, v: u64, max: u64) -> Result<()> {
    if v <= max {
        Ok(())
    } else {
        Err(err(format!("metadata `{name}` = {v} exceeds {max}")))
    }
}

/// What a resumed DrSAE run expects of its checkpoint (from its configuration and data).
pub(crate) struct ResumeExpectations {
    /// Code units n.
    pub hidden: usize,
    /// Input dimension m.
    pub inputs: usize,
    /// Classes k.
    pub classes: usize,
    /// Encoder steps T.
    pub steps: usize,
    /// Epochs of phase 1 and phase 2.
    pub epochs: [usize; 2],
    /// Minibatches per epoch.
    pub steps_per_epoch: usize,
    /// The update rule of the checkpoint's phase.
    pub optimizer: super::optimizer::Optimizer,
    /// Training rows.
    pub rows: usize,
    /// Rows per minibatch.
    pub batch: usize,
    /// Whether the run has a time budget (which may end a phase part-way through an epoch).
    pub time_budget: bool,
    /// Whether phase 2 keeps a parameter average.
    pub average: bool,
    /// Early-stopping patience (phase 2).
    pub patience: Option<usize>,
}

/// Slack for comparing times a run measured at different moments (seconds): the clock is
/// carried over a resume at nanosecond resolution.
const TIME_SLACK: f64 = 1e-6;

/// The lengths of the tensors the optimiser keeps moments for, in order E, S, b, D, C.
fn moment_lengths(model: &DrsaeNetwork) -> [usize; 5] {
    [
        model.e.as_slice().len(),
        model.s.as_slice().len(),
        model.b.len(),
        model.d.as_slice().len(),
        model.c.as_slice().len(),
    ]
}

/// The number of first- and second-moment buffers of an update rule.
fn moment_counts(kind: super::optimizer::Optimizer) -> (usize, usize) {
    match kind {
        super::optimizer::Optimizer::Sgd => (0, 0),
        super::optimizer::Optimizer::Momentum { .. } => (5, 0),
        super::optimizer::Optimizer::Adam { .. } => (5, 5),
    }
}

impl TrainState {
    /// Writes the state to `dir/checkpoint.safetensors` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors: Vec<NamedTensor<'_>> = model_tensors(&self.model, "");
        if let Some((best, _, _)) = &self.best {
            tensors.extend(model_tensors(best, "best/"));
        }
        if let Some(avg) = &self.average {
            tensors.extend(model_tensors(avg, "average/"));
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
        put("steps", self.model.steps.to_string());
        put("phase", self.phase.to_string());
        put("epoch", self.epoch.to_string());
        put("batch_index", self.batch_index.to_string());
        put("global_step", self.global_step.to_string());
        put("opt_step", self.opt_step.to_string());
        put("opt_first", self.opt_first.len().to_string());
        put("opt_second", self.opt_second.len().to_string());
        put("since_best", self.since_best.to_string());
        put("average", self.average.is_some().to_string());
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
        write_checkpoint(dir, "drsae", &tensors, meta)
    }

    /// Reads `dir/checkpoint.safetensors`, or `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<TrainState>> {
        let Some((t, meta)) = read_checkpoint(dir, "drsae")? else {
            return Ok(None);
        };
        Self::from_parts(t, meta)
            .map(Some)
            .map_err(|e| e.in_file(&dir.join(CHECKPOINT_FILE)))
    }

    /// Parses the bytes of a DrSAE checkpoint file (the fuzzing entry point).
    #[cfg(all(feature = "safetensors", feature = "fuzzing"))]
    pub fn from_bytes(bytes: &[u8]) -> Result<TrainState> {
        let (t, meta) = crate::io::tensors_from_bytes(bytes)?;
        check_header(&meta, "drsae").map_err(err)?;
        Self::from_parts(t, meta)
    }

    fn from_parts(mut t: Tensors, meta: HashMap<String, String>) -> Result<TrainState> {
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
        let average = match meta.get("average").map(String::as_str) {
            Some("true") => Some(model_from_tensors(&mut t, "average/", steps)?),
            Some("false") | None => None,
            Some(v) => return Err(err(format!("metadata `average` = `{v}` is malformed"))),
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
        let same_shapes = |other: &DrsaeNetwork| {
            other.e.shape() == model.e.shape()
                && other.d.shape() == model.d.shape()
                && other.c.shape() == model.c.shape()
        };
        if best.as_ref().is_some_and(|(b, _, _)| !same_shapes(b))
            || average.as_ref().is_some_and(|a| !same_shapes(a))
        {
            return Err(err(
                "the best or averaged model has other shapes than the model",
            ));
        }
        let opt_first = moments("first")?;
        let opt_second = moments("second")?;
        reject_unknown(&t, "checkpoint")?;
        let sums: Vec<&str> = get("sums")?.split(' ').collect();
        if sums.len() != 4 {
            return Err(err("metadata `sums` is malformed"));
        }
        let st = TrainState {
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
            average,
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
        };
        st.check_fields()?;
        Ok(st)
    }

    /// Checks every field on its own and against the others (not against a configuration:
    /// see [`TrainState::check_resumable`]).
    fn check_fields(&self) -> Result<()> {
        if !(1..=2).contains(&self.phase) {
            return Err(err(format!(
                "metadata `phase` = {} is neither 1 nor 2",
                self.phase
            )));
        }
        if self.epoch == 0 {
            return Err(err("metadata `epoch` = 0 (epochs count from 1)"));
        }
        check_count("epoch", self.epoch as u64, MAX_COUNT)?;
        check_count("global_step", self.global_step, MAX_COUNT)?;
        check_count("batch_index", self.batch_index as u64, self.global_step)?;
        check_count(
            "opt_step",
            self.opt_step,
            self.global_step.min(MAX_OPT_STEP),
        )?;
        check_count("since_best", self.since_best as u64, self.epoch as u64)?;
        check_seconds("elapsed", self.elapsed)?;
        check_seconds("train_seconds", self.train_seconds)?;
        let (loss, rec, correct, seen) = self.sums;
        check_count("samples_seen", self.samples_seen as u64, MAX_COUNT)?;
        if !(loss.is_finite() && loss >= 0.0 && rec.is_finite() && rec >= 0.0)
            || correct > seen
            || seen as u64 > MAX_COUNT
        {
            return Err(err(format!(
                "metadata `sums` = {loss:?} {rec:?} {correct} {seen} is not a loss sum ≥ 0, \
                 a reconstruction sum ≥ 0 and a correct count ≤ the seen count"
            )));
        }
        if let Some((_, e, ep)) = &self.best {
            if !(0.0..=100.0).contains(e) || *ep == 0 || *ep >= self.epoch {
                return Err(err(format!(
                    "best model of epoch {ep} at {e:?} % error, in epoch {}",
                    self.epoch
                )));
            }
        }
        if self.phase == 1 && (self.best.is_some() || self.average.is_some()) {
            return Err(err(
                "a phase-1 checkpoint with a best or averaged model (made in phase 2 only)",
            ));
        }
        let lengths = moment_lengths(&self.model);
        for (kind, buffers) in [("first", &self.opt_first), ("second", &self.opt_second)] {
            let got: Vec<usize> = buffers.iter().map(Vec::len).collect();
            if !(got.is_empty() || got == lengths) {
                return Err(err(format!(
                    "optimiser {kind} moments of lengths {got:?}, expected none or {lengths:?} \
                     (the model's E, S, b, D, C)"
                )));
            }
        }
        if self.opt_first.is_empty() && !self.opt_second.is_empty() {
            return Err(err("second optimiser moments without first ones"));
        }
        Ok(())
    }

    /// Checks the state against the run that resumes it: the model's shapes, the position
    /// within the configured epochs and minibatches, and the optimiser's buffers for the
    /// update rule of the checkpoint's phase.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`resume`) naming the first disagreement.
    pub(crate) fn check_resumable(&self, want: &ResumeExpectations) -> Result<()> {
        let bad = |what: String| Err(Error::param("resume", what));
        let m = &self.model;
        let shapes = (m.e.shape(), m.c.nrows(), m.steps);
        let expected = ((want.hidden, want.inputs), want.classes, want.steps);
        if shapes != expected {
            return bad(format!(
                "the checkpoint's model has {} code units on {} inputs, {} classes and {} \
                 steps; the run has {}, {}, {} and {}",
                m.e.nrows(),
                m.e.ncols(),
                m.c.nrows(),
                m.steps,
                want.hidden,
                want.inputs,
                want.classes,
                want.steps
            ));
        }
        let epochs = want.epochs[self.phase as usize - 1];
        let spe = want.steps_per_epoch;
        if self.epoch > epochs + 1 || (self.epoch == epochs + 1 && self.batch_index > 0) {
            return bad(format!(
                "the checkpoint is at phase {} epoch {}, the run has {epochs} epochs in that phase",
                self.phase, self.epoch
            ));
        }
        if self.batch_index > spe {
            return bad(format!(
                "the checkpoint is at minibatch {} of an epoch of {spe}",
                self.batch_index
            ));
        }
        let planned = (want.epochs[0] as u64 + want.epochs[1] as u64) * spe as u64;
        if self.global_step > planned || self.opt_step > epochs as u64 * spe as u64 {
            return bad(format!(
                "the checkpoint has taken {} steps ({} in its phase), the run plans at most {planned}",
                self.global_step, self.opt_step
            ));
        }
        if let Some((_, _, ep)) = &self.best {
            if *ep > want.epochs[1] {
                return bad(format!(
                    "the checkpoint's best model is from epoch {ep} of {}",
                    want.epochs[1]
                ));
            }
        }
        let (first, second) = moment_counts(want.optimizer);
        let got = (self.opt_first.len(), self.opt_second.len());
        if got != (first, second) && (self.opt_step > 0 || got != (0, 0)) {
            return bad(format!(
                "the checkpoint holds {} first and {} second optimiser moments after {} steps; \
                 {:?} keeps {first} and {second}",
                got.0, got.1, self.opt_step, want.optimizer
            ));
        }
        self.check_position(want)
    }

    /// The position, counters, running sums, history and best model against each other
    /// and the run, as the training loop leaves them when it writes a checkpoint: after a
    /// step (epoch `e`, `b` ≥ 1 minibatches of it done) or at the end of epoch `e` − 1
    /// (`b` = 0); never at the start of a phase, so a phase's first checkpoint has taken at
    /// least one step. Every epoch of a phase before the current one ran all its
    /// minibatches, except under a time budget, which may cut one short (and then ends the
    /// phase).
    fn check_position(&self, want: &ResumeExpectations) -> Result<()> {
        let bad = |what: String| Err(Error::param("resume", what));
        let (phase, e, b) = (self.phase, self.epoch, self.batch_index);
        let epochs = want.epochs[phase as usize - 1];
        let spe = want.steps_per_epoch as u64;
        let budget = want.time_budget;
        if epochs == 0 {
            return bad(format!(
                "metadata `phase` = {phase}, a phase in which the run has no epochs (none is \
                 checkpointed)"
            ));
        }
        if e == 1 && b == 0 {
            return bad(
                "metadata `batch_index` = 0 at epoch 1: a checkpoint is written after a step or \
                 at the end of an epoch, never at the start of a phase"
                    .into(),
            );
        }
        // The history: phase 1's epochs 1, 2, … then phase 2's, in time order, up to the
        // epoch before the current one.
        let mut done = [0usize; 2];
        let mut last_seconds = 0.0f64;
        for r in &self.history {
            let k = r.phase as usize - 1;
            if (k == 0 && done[1] > 0) || r.epoch != done[k] + 1 {
                return bad(format!(
                    "metadata `history`: phase {} epoch {} follows {} phase-1 and {} phase-2 \
                     epochs",
                    r.phase, r.epoch, done[0], done[1]
                ));
            }
            if r.seconds + TIME_SLACK < last_seconds || r.seconds > self.elapsed + TIME_SLACK {
                return bad(format!(
                    "metadata `history`: phase {} epoch {} ends at {:?} s, after {last_seconds:?} \
                     s and before the checkpoint's {:?} s elapsed",
                    r.phase, r.epoch, r.seconds, self.elapsed
                ));
            }
            last_seconds = r.seconds;
            done[k] += 1;
        }
        let [k1, k2] = done;
        let want_done = if phase == 1 {
            [e - 1, 0]
        } else {
            [
                if budget {
                    k1.min(want.epochs[0])
                } else {
                    want.epochs[0]
                },
                e - 1,
            ]
        };
        if done != want_done {
            return bad(format!(
                "metadata `history` has {k1} phase-1 and {k2} phase-2 epochs; a checkpoint at \
                 phase {phase} epoch {e} follows {} and {}",
                want_done[0], want_done[1]
            ));
        }
        // Steps in the current phase: all minibatches of each epoch before the current one
        // (under a time budget, at least one of each), then b of the current epoch.
        let full = (e as u64 - 1) * spe + b as u64;
        let least = if budget {
            e as u64 - 1 + b as u64
        } else {
            full
        };
        if !(least..=full).contains(&self.opt_step) {
            return bad(format!(
                "metadata `opt_step` = {}: phase {phase} epoch {e} after {b} of {spe} minibatches \
                 has taken {}",
                self.opt_step,
                if budget {
                    format!("{least} to {full} steps")
                } else {
                    format!("{full} steps")
                }
            ));
        }
        // Steps before the current phase: phase 1's, if this is phase 2.
        let before = self.global_step - self.opt_step;
        let (lo, hi) = if phase == 1 {
            (0, 0)
        } else {
            let k1 = k1 as u64;
            (if budget { k1 } else { k1 * spe }, k1 * spe)
        };
        if !(lo..=hi).contains(&before) {
            return bad(format!(
                "metadata `global_step` = {} with `opt_step` = {}: the {before} steps before \
                 phase {phase} are not {}",
                self.global_step,
                self.opt_step,
                if lo == hi {
                    format!("{lo}")
                } else {
                    format!("{lo} to {hi}")
                }
            ));
        }
        // The running sums of the current epoch: its first b minibatches (only the last
        // minibatch of an epoch is short).
        let (loss, rec, correct, seen) = self.sums;
        let seen_want = (b as u64 * want.batch as u64).min(want.rows as u64);
        if seen as u64 != seen_want || (b == 0 && (loss, rec, correct) != (0.0, 0.0, 0)) {
            return bad(format!(
                "metadata `sums` = {loss:?} {rec:?} {correct} {seen} after {b} minibatches of \
                 {} rows ({seen_want} rows seen)",
                want.batch
            ));
        }
        // Samples of the finished epochs: every row of each (under a time budget, at least one).
        let epochs_done = (k1 + k2) as u64;
        let all = epochs_done * want.rows as u64;
        let least = if budget { epochs_done } else { all };
        if !(least..=all).contains(&(self.samples_seen as u64)) {
            return bad(format!(
                "metadata `samples_seen` = {} after {epochs_done} epochs of {} rows",
                self.samples_seen, want.rows
            ));
        }
        if self.train_seconds > self.elapsed + TIME_SLACK {
            return bad(format!(
                "metadata `train_seconds` = {:?} exceeds `elapsed` = {:?}",
                self.train_seconds, self.elapsed
            ));
        }
        // The best model: phase 2's first epoch of least validation error so far, and the
        // epochs since it; early stopping ends the phase as soon as they reach the patience.
        let mut best: Option<(usize, f64)> = None;
        let mut since = 0usize;
        for (j, r) in self.history.iter().filter(|r| r.phase == 2).enumerate() {
            if let Some(p) = want.patience {
                if since >= p {
                    return bad(format!(
                        "metadata `history` goes on to phase 2 epoch {} after {since} epochs \
                         without improvement, with a patience of {p}",
                        j + 1
                    ));
                }
            }
            if best.map_or(true, |(_, v)| r.val_error < v) {
                best = Some((r.epoch, r.val_error));
                since = 0;
            } else {
                since += 1;
            }
        }
        let claimed = self.best.as_ref().map(|(_, v, ep)| (*ep, *v));
        if claimed.map(|(ep, v)| (ep, v.to_bits())) != best.map(|(ep, v)| (ep, v.to_bits())) {
            let show = |b: Option<(usize, f64)>| match b {
                Some((ep, v)) => format!("epoch {ep} at {v:?} %"),
                None => "none".into(),
            };
            return bad(format!(
                "metadata `best_epoch`/`best_val_error`: the checkpoint's best model is {}, its \
                 history's {}",
                show(claimed),
                show(best)
            ));
        }
        if self.since_best != since {
            return bad(format!(
                "metadata `since_best` = {}, its history has {since} epochs since the best",
                self.since_best
            ));
        }
        if want.patience.is_some_and(|p| since >= p) && b > 0 {
            return bad(format!(
                "metadata `batch_index` = {b}: early stopping ended phase 2 after epoch {}",
                e - 1
            ));
        }
        // The average exists in phase 2 from its first step on, if the run keeps one.
        let average_want = want.average && phase == 2;
        if self.average.is_some() != average_want {
            return bad(format!(
                "the checkpoint {} an averaged model; a phase-{phase} checkpoint of this run {}",
                if self.average.is_some() {
                    "holds"
                } else {
                    "lacks"
                },
                if average_want { "has one" } else { "has none" }
            ));
        }
        Ok(())
    }
}

/// Tensors of a checkpoint by name.
pub(crate) type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Writes `dir/checkpoint.safetensors` atomically for a training loop of `kind`.
#[cfg(feature = "safetensors")]
pub(crate) fn write_checkpoint(
    dir: &Path,
    kind: &str,
    tensors: &[NamedTensor<'_>],
    mut meta: HashMap<String, String>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    meta.insert("format".into(), "drsae-checkpoint".into());
    meta.insert("format_version".into(), "1".into());
    meta.insert("kind".into(), kind.into());
    crate::io::write_atomic(
        dir.join(CHECKPOINT_FILE),
        &crate::io::tensors_to_bytes(tensors, meta)?,
    )
}

/// Without the `safetensors` feature there are no checkpoints.
#[cfg(not(feature = "safetensors"))]
pub(crate) fn write_checkpoint(
    _: &Path,
    _: &str,
    _: &[NamedTensor<'_>],
    _: HashMap<String, String>,
) -> Result<()> {
    Err(Error::param(
        "checkpoint",
        "checkpoints need the `safetensors` feature",
    ))
}

/// Without the `safetensors` feature there are no checkpoints.
#[cfg(not(feature = "safetensors"))]
pub(crate) fn read_checkpoint(
    _: &Path,
    _: &str,
) -> Result<Option<(Tensors, HashMap<String, String>)>> {
    Err(Error::param(
        "resume",
        "checkpoints need the `safetensors` feature",
    ))
}

/// Reads `dir/checkpoint.safetensors` written for `kind`; `None` if there is none.
#[cfg(feature = "safetensors")]
pub(crate) fn read_checkpoint(
    dir: &Path,
    kind: &str,
) -> Result<Option<(Tensors, HashMap<String, String>)>> {
    let path = dir.join(CHECKPOINT_FILE);
    // Only a regular file is read (a FIFO or a symlink to a device under the name is an
    // error), of at most the model-file limit.
    let bytes = match crate::io::read_regular_file(&path, crate::io::MAX_MODEL_FILE_BYTES) {
        Ok(b) => b,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let (t, meta) = crate::io::tensors_from_bytes(&bytes).map_err(|e| e.in_file(&path))?;
    check_header(&meta, kind).map_err(|what| err(format!("{} {what}", path.display())))?;
    Ok(Some((t, meta)))
}

/// Checks the format, version and kind entries of a checkpoint's metadata.
#[cfg(feature = "safetensors")]
fn check_header(meta: &HashMap<String, String>, kind: &str) -> std::result::Result<(), String> {
    if meta.get("format").map(String::as_str) != Some("drsae-checkpoint")
        || meta.get("format_version").map(String::as_str) != Some("1")
        || meta.get("kind").map(String::as_str) != Some(kind)
    {
        return Err(format!("is not a version-1 `{kind}` checkpoint"));
    }
    Ok(())
}

/// A metadata entry parsed as `T`.
pub(crate) fn meta_get<T: std::str::FromStr>(
    meta: &HashMap<String, String>,
    key: &str,
) -> Result<T> {
    let v = meta
        .get(key)
        .ok_or_else(|| err(format!("metadata `{key}` missing")))?;
    v.parse()
        .map_err(|_| err(format!("metadata `{key}` = `{v}` is malformed")))
}

/// A tensor of the checkpoint with the given length.
pub(crate) fn take_tensor(t: &mut Tensors, name: &str, len: usize) -> Result<Vec<f32>> {
    match t.remove(name) {
        Some((_, v)) if v.len() == len => Ok(v),
        Some((_, v)) => Err(err(format!(
            "tensor `{name}` has {} values, expected {len}",
            v.len()
        ))),
        None => Err(err(format!("tensor `{name}` missing"))),
    }
}

/// The optimiser's moments as named tensors plus metadata entries.
pub(crate) fn optimizer_to_checkpoint<'a>(
    opt: &'a super::optimizer::OptimizerState,
    tensors: &mut Vec<NamedTensor<'a>>,
    meta: &mut HashMap<String, String>,
) {
    let (first, second) = opt.moments();
    for (k, v) in first.iter().enumerate() {
        tensors.push((format!("opt/first/{k}"), vec![v.len()], v));
    }
    for (k, v) in second.iter().enumerate() {
        tensors.push((format!("opt/second/{k}"), vec![v.len()], v));
    }
    meta.insert("opt_first".into(), first.len().to_string());
    meta.insert("opt_second".into(), second.len().to_string());
    meta.insert("opt_step".into(), opt.step.to_string());
}

/// Restores the optimiser saved by [`optimizer_to_checkpoint`] (buffers must match).
pub(crate) fn optimizer_from_checkpoint(
    opt: &mut super::optimizer::OptimizerState,
    t: &mut Tensors,
    meta: &HashMap<String, String>,
) -> Result<()> {
    let (first_now, second_now) = opt.moments();
    let (lf, ls): (Vec<usize>, Vec<usize>) = (
        first_now.iter().map(Vec::len).collect(),
        second_now.iter().map(Vec::len).collect(),
    );
    if meta_get::<usize>(meta, "opt_first")? != lf.len()
        || meta_get::<usize>(meta, "opt_second")? != ls.len()
    {
        return Err(err("optimiser state does not match the optimiser"));
    }
    let first = lf
        .iter()
        .enumerate()
        .map(|(k, &l)| take_tensor(t, &format!("opt/first/{k}"), l))
        .collect::<Result<Vec<_>>>()?;
    let second = ls
        .iter()
        .enumerate()
        .map(|(k, &l)| take_tensor(t, &format!("opt/second/{k}"), l))
        .collect::<Result<Vec<_>>>()?;
    let step: u64 = meta_get(meta, "opt_step")?;
    check_count("opt_step", step, MAX_OPT_STEP)?;
    opt.restore(first, second, step);
    Ok(())
}

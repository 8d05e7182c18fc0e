//! `drsae reproduce PRESET`: the configurations BENCHMARKS.md documents, as the `drsae`
//! command lines they resolve to; flags after `--` replace or extend the preset's.

use clap::ValueEnum;

/// A documented configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// DrSAE on the bundled MNIST sample, 3 + 25 epochs (~30 s on 2 cores): the README's
    /// first command.
    Sample,
    /// DrSAE, 400 units, T = 11, full MNIST (paper 1.08 %; BENCHMARKS.md: 1.10 ± 0.06 % over
    /// 8 seeds).
    Drsae400,
    /// DrSAE, 200 units, T = 11, full MNIST (paper 1.21 %; 1.23 ± 0.01 % over 2 seeds).
    #[value(name = "drsae200-t11")]
    Drsae200T11,
    /// DrSAE, 200 units, T = 2, heavy-ball momentum, full MNIST (paper 1.49 %).
    #[value(name = "drsae200-t2")]
    Drsae200T2,
    /// Topographic map of 12 × 12 natural-image patches on a 12 × 12 grid, 380 epochs.
    Topographic,
    /// Tree groups on 8 × 8 natural-image patches (a 3-ary tree of depth 6), then branch
    /// pruning, 290 epochs.
    TopographicTree,
    /// Lateral inhibition on a 12 × 12 grid, radius 4 → 2, 60 epochs per radius.
    InhibitionGrid,
    /// Two stacked convolutional layers on full MNIST, a classifier, random-filter baseline.
    Conv,
    /// Locally-connected pinwheel map of natural images, 73 epochs.
    Pinwheel,
    /// LISTA against FISTA and CoD on the bundled MNIST sample, T = 1..=10.
    ListaCurve,
}

impl Preset {
    /// The preset's name on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("no preset is skipped")
            .get_name()
            .to_string()
    }

    /// The `drsae` arguments (after the program name) and a note on how the preset relates
    /// to the documented run.
    pub fn command(self) -> (Vec<&'static str>, &'static str) {
        let (_, line, note) = PRESETS
            .iter()
            .find(|(p, _, _)| *p == self)
            .expect("every preset is in the table");
        (line.split_whitespace().collect(), note)
    }
}

/// Every preset: its `drsae` command line (after the program name, split at spaces) and a
/// note on how it relates to the documented run.
const PRESETS: [(Preset, &str, &str); 10] = [
    (
        Preset::Sample,
        "train drsae --data data/mnist-sample --epochs-unsup 3 --epochs-sup 25",
        "BENCHMARKS.md 'Bundled sample': 5.85 % test error on the Xeon (5.91 % with the \
         packed AVX-512 sgemm), 5.88 % on the EPYC; 18-53 s on 2 cores",
    ),
    (
        Preset::Drsae400,
        "train drsae --data ../shared/data/mnist --epochs-unsup 5 --epochs-sup 100 \
         --lr 2e-3 --batch 50 --average 0.9999 --threads 1 --seed 0",
        "BENCHMARKS.md 'DrSAE accuracy on MNIST / 400 units, T = 11': seed 0 gave 1.07 % \
         test error in 1,143 s on one EPYC thread",
    ),
    (
        Preset::Drsae200T11,
        "train drsae --data ../shared/data/mnist --hidden 200 --steps 11 --epochs-unsup 5 \
         --epochs-sup 100 --lr 2e-3 --batch 50 --average 0.99975 --threads 1 --seed 0",
        "BENCHMARKS.md '200 units, T = 11': 1.23 ± 0.01 % over seeds 0 and 1",
    ),
    (
        Preset::Drsae200T2,
        "train drsae --data ../shared/data/mnist --hidden 200 --steps 2 --epochs-unsup 5 \
         --epochs-sup 200 --optimizer momentum --lr 2e-2 --batch 50 --average 0.999 \
         --threads 1 --seed 0",
        "BENCHMARKS.md '200 units, T = 2' (rate 2e-2; 4e-2 ties): means above the \
         paper's 1.49 %",
    ),
    (
        Preset::Topographic,
        "train topographic --data ../shared/data/natural --grid 12 --pool 3 --patch 12 \
         --patches 50000 --lambda 0.3 --zca-eps 0.1 --start-share 0.7 --pool-start 5 \
         --lambda-start 0.12 --epochs 380 --seed 0",
        "BENCHMARKS.md 'Group sparsity: topographic maps': ratio 0.442, 14 pinwheels \
         (seed 0, results/presets_2026-12-06/topographic.json)",
    ),
    (
        Preset::TopographicTree,
        "train topographic --data ../shared/data/natural --groups tree --branching 3 \
         --depth 6 --patch 8 --lambda 0.8 --prune-threshold 0.02 --epochs 290 --seed 0",
        "BENCHMARKS.md 'Group sparsity: topographic maps', tree groups: 364 → 293 units \
         (results/presets_2026-12-06/topographic-tree.json)",
    ),
    (
        Preset::InhibitionGrid,
        "train inhibition --data ../shared/data/natural --structure grid --grid 12 \
         --patch 12 --zca 0.1 --lambda 0.05 --inhibition 5 --radius-start 4 --radius 2 \
         --lr 1.2 --lr-end 0.15 --epochs 60 --threads 1 --seed 0",
        "BENCHMARKS.md 'Lateral inhibition / Topographic grid': ratio 0.388, 8 pinwheels \
         (seed 0, results/presets_2026-12-06/inhibition-grid.json)",
    ),
    (
        Preset::Conv,
        "train conv --data ../shared/data/mnist --maps2 32 --random-baseline --seed 0",
        "BENCHMARKS.md 'Stacked pre-training on MNIST': 1.35 % test error (random filters \
         1.75 %; results/presets_2026-12-06/conv.json)",
    ),
    (
        Preset::Pinwheel,
        "train pinwheel --data ../shared/data/natural --grid 3 --block 8 --stride 4 \
         --kernel 12 --pool 3 --lambda 0.1 --windows 20000 --lcn 2 --epochs 73 --seed 0",
        "BENCHMARKS.md 'Locally-connected orientation map: pinwheels': ratio 0.497, \
         48 pinwheels (seed 0, results/presets_2026-12-06/pinwheel.json)",
    ),
    (
        Preset::ListaCurve,
        "train lista --atoms 100 --lambda 0.5 --train 5000 --test 1000 --epochs 30 \
         --max-iters 10 --seed 0",
        "BENCHMARKS.md 'LISTA against FISTA and CoD', MNIST rows (the natural-image \
         rows: --data ../shared/data/natural)",
    ),
];

/// The name of a flag argument (`--lr` of `--lr` or `--lr=2e-3`), `None` for values.
fn flag_name(arg: &str) -> Option<&str> {
    arg.starts_with("--")
        .then(|| arg.split('=').next().unwrap_or(arg))
}

/// The preset's arguments with `overrides` applied: every flag given in `overrides` is
/// removed from the preset (with its value), then `overrides` are appended; `--out` defaults
/// to `reproduce/PRESET`.
pub fn resolve(preset: Preset, overrides: &[String]) -> Vec<String> {
    let (args, _) = preset.command();
    let given: Vec<&str> = overrides.iter().filter_map(|a| flag_name(a)).collect();
    let mut out: Vec<String> = Vec::new();
    let mut skip_value = false;
    for a in &args {
        if skip_value && flag_name(a).is_none() {
            skip_value = false;
            continue;
        }
        skip_value = false;
        if let Some(name) = flag_name(a) {
            if given.contains(&name) {
                skip_value = !a.contains('=');
                continue;
            }
        }
        out.push(a.to_string());
    }
    if !given.contains(&"--out") {
        out.push("--out".into());
        out.push(format!("reproduce/{}", preset.name()));
    }
    out.extend(overrides.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_preset_flags() {
        let args = resolve(
            Preset::Drsae400,
            &["--seed".into(), "3".into(), "--lr=1e-3".into()],
        );
        let line = args.join(" ");
        assert!(
            line.starts_with("train drsae --data ../shared/data/mnist"),
            "{line}"
        );
        assert!(
            line.contains("--seed 3") && !line.contains("--seed 0"),
            "{line}"
        );
        assert!(
            line.contains("--lr=1e-3") && !line.contains("2e-3"),
            "{line}"
        );
        assert!(line.contains("--out reproduce/drsae400"), "{line}");
        assert_eq!(Preset::Drsae200T2.name(), "drsae200-t2");
    }

    #[test]
    fn every_preset_has_one_row() {
        for &p in Preset::value_variants() {
            assert_eq!(
                PRESETS.iter().filter(|(q, _, _)| *q == p).count(),
                1,
                "{p:?}"
            );
            assert_eq!(p.command().0[0], "train", "{p:?}");
        }
    }
}

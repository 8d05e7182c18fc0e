#!/usr/bin/env python3
"""Synthetic activations from a known sparse dictionary (numpy only).

    python scripts/sae/make_synthetic.py OUT_DIR [--n 200000] [--seed 0] [--d 256]
        [--features 4096] [--target-l0 12] [--alpha 0.7] [--p-max 0.5]
        [--pairs 128] [--rho 0.6] [--mag-min 0.5] [--mag-std 1.0] [--noise 0.01]

Writes OUT_DIR/activations.npy (float32 [n, d]), OUT_DIR/true_features.npy
(float32 [features, d], unit rows), OUT_DIR/firing_prob.npy (float64 [features],
the exact marginal firing probability of each feature) and OUT_DIR/meta.json
(key mean_l0 = the empirical mean number of active features per row).

The generative model is specified exactly in scripts/sae/FORMATS.md,
section "Synthetic ground-truth data"; the Rust side may reimplement it (its random
streams will differ from numpy's PCG64 ones; the distributions are what is specified).
Python side-by-side tooling only; nothing here is a dependency of the crate.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np


def firing_probabilities(F, target_l0, alpha, p_max):
    """p_i = min(p_max, c (i+1)^-alpha), c chosen by bisection so that sum_i p_i = target_l0."""
    ranks = np.arange(1, F + 1, dtype=np.float64)
    base = ranks ** (-alpha)
    if target_l0 >= p_max * F:
        raise SystemExit("target_l0 too large for p_max * features")
    lo, hi = 0.0, target_l0 / base.min() + 1.0
    for _ in range(200):
        c = 0.5 * (lo + hi)
        if np.minimum(p_max, c * base).sum() < target_l0:
            lo = c
        else:
            hi = c
    return np.minimum(p_max, 0.5 * (lo + hi) * base), 0.5 * (lo + hi)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=200_000, help="number of activation rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--features", type=int, default=4096)
    ap.add_argument("--target-l0", type=float, default=12.0, help="sum of the base firing probabilities")
    ap.add_argument("--alpha", type=float, default=0.7, help="power-law exponent of the firing probabilities")
    ap.add_argument("--p-max", type=float, default=0.5, help="cap on a base firing probability")
    ap.add_argument("--pairs", type=int, default=128, help="number of disjoint correlated (leader, follower) pairs")
    ap.add_argument("--rho", type=float, default=0.6, help="P(follower forced on | leader on)")
    ap.add_argument("--mag-min", type=float, default=0.5)
    ap.add_argument("--mag-std", type=float, default=1.0)
    ap.add_argument("--noise", type=float, default=0.01, help="std of isotropic Gaussian noise per coordinate")
    ap.add_argument("--chunk", type=int, default=4096)
    a = ap.parse_args()
    t0 = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    F, d = a.features, a.d
    rng = np.random.default_rng(a.seed)

    # 1. dictionary: iid Gaussian rows, normalised to unit L2 norm
    D = rng.standard_normal((F, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    D32 = D.astype(np.float32)

    # 2. base firing probabilities by rank (feature 0 most frequent)
    p, c = firing_probabilities(F, a.target_l0, a.alpha, a.p_max)

    # 3. correlated pairs: a random permutation, first 2*pairs entries, consecutive (leader, follower)
    perm = rng.permutation(F)
    pairs = perm[: 2 * a.pairs].reshape(a.pairs, 2)
    lead, foll = pairs[:, 0], pairs[:, 1]
    marg = p.copy()
    marg[foll] = p[foll] + (1 - p[foll]) * a.rho * p[lead]

    X = np.lib.format.open_memmap(out / "activations.npy", mode="w+", dtype=np.float32, shape=(a.n, d))
    l0_sum = 0
    fired = np.zeros(F, dtype=np.int64)
    both = np.zeros(a.pairs, dtype=np.int64)
    for s in range(0, a.n, a.chunk):
        m = min(a.chunk, a.n - s)
        z = rng.random((m, F)) < p  # 4a independent Bernoulli(p_i)
        co = rng.random((m, a.pairs)) < a.rho  # 4b follower forced on with prob rho when its leader is on
        z[:, foll] |= z[:, lead] & co
        # 4c magnitudes, drawn only for the active entries, in row-major order of z
        codes = np.zeros((m, F), dtype=np.float32)
        nnz = int(z.sum())
        codes[z] = (a.mag_min + a.mag_std * np.abs(rng.standard_normal(nnz))).astype(np.float32)
        x = codes @ D32  # 4d
        if a.noise > 0:
            x += (a.noise * rng.standard_normal((m, d))).astype(np.float32)
        X[s : s + m] = x
        l0_sum += int(z.sum())
        fired += z.sum(0)
        both += (z[:, lead] & z[:, foll]).sum(0)
    X.flush()
    del X
    np.save(out / "true_features.npy", D32)
    np.save(out / "firing_prob.npy", marg)
    meta = {
        "generator": "scripts/sae/make_synthetic.py (numpy PCG64)",
        "n": a.n,
        "d": d,
        "n_features": F,
        "mean_l0": l0_sum / a.n,
        "expected_mean_l0": float(marg.sum()),
        "target_l0_base": a.target_l0,
        "alpha": a.alpha,
        "p_max": a.p_max,
        "power_law_c": c,
        "p_first": float(p[0]),
        "p_last": float(p[-1]),
        "pairs": a.pairs,
        "rho": a.rho,
        "pairs_list": pairs.tolist(),
        "magnitude": f"{a.mag_min} + {a.mag_std} * |N(0,1)|",
        "mag_min": a.mag_min,
        "mag_std": a.mag_std,
        "noise_std": a.noise,
        "seed": a.seed,
        "features_never_fired": int((fired == 0).sum()),
        # self-checks of the sampler: firing counts vs firing_prob, and P(follower | leader)
        "firing_count_max_abs_z": float(np.max(np.abs(fired - a.n * marg) / np.sqrt(a.n * marg * (1 - marg)))),
        "pair_p_follower_given_leader_mean": float((both / np.maximum(fired[lead], 1)).mean()) if a.pairs else None,
        "pair_p_follower_given_leader_expected_mean": float((a.rho + (1 - a.rho) * p[foll]).mean()) if a.pairs else None,
        "mean_row_norm": None,
        "seconds": None,
    }
    X = np.load(out / "activations.npy", mmap_mode="r")
    meta["mean_row_norm"] = float(np.linalg.norm(X[: min(a.n, 20000)], axis=1).mean())
    meta["seconds"] = round(time.time() - t0, 1)
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({k: meta[k] for k in ("n", "mean_l0", "expected_mean_l0", "p_first", "p_last", "features_never_fired", "mean_row_norm", "seconds")}))


if __name__ == "__main__":
    main()

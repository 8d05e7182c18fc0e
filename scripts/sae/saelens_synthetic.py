#!/usr/bin/env python3
"""Synthetic ground-truth benchmark, peer side: SAELens TopK and BatchTopK trained
with SAELens's own trainer (SAETrainer) on DATA_DIR/activations.npy, scored against
DATA_DIR/true_features.npy.

    python scripts/sae/saelens_synthetic.py DATA_DIR TOKENS [--out results/.../saelens_synthetic.json]
        [--archs topk,batchtopk] [--batch 4096] [--lr 3e-4] [--dead-window-steps 50]
        [--no-aux-too] [--threads 2] [--eval-rows 50000] [--no-mcc] [--save-dir DIR] [--seed 0]

DATA_DIR holds activations.npy (float32 [N, d]), true_features.npy (float32 [F, d], unit
rows) and meta.json (mean_l0). Both SAEs get d_sae = F (4096), k = round(mean_l0),
AuxK on (SAELens's aux_loss_coefficient = 1.0: k_aux = d/2 top dead latents
reconstruct the residual, scaled by min(n_dead / k_aux, 1)); --no-aux-too also trains
each with aux_loss_coefficient = 0. SAELens's dead-latent window counts *steps*:
a latent is dead when it has not fired in the last --dead-window-steps batches
(default 50 x 4096 = 204,800 tokens).

Training: SAETrainer.fit() on TOKENS activations (TOKENS // batch steps), batches drawn
without replacement from a fresh permutation of the rows each epoch, Adam (0.9, 0.999),
constant lr, grad-norm clip 1.0 (SAELens's fixed choice), normalize_activations="none".
BatchTopK is scored as the JumpReLU SAE its save_inference_model writes (what a user
gets), TopK as its inference TopKSAE.

Scores (on the first --eval-rows rows; the training stream covers all rows):
  matched_mean_cos  mean over true features f of max_j cos(f, W_dec[j])   (signed cosine)
  frac_true_matched_0.9 fraction of true features with that max > 0.9
  mcc               SAELens's mean_correlation_coefficient: Hungarian one-to-one matching of
                    |cos| between W_dec rows and true features, mean of matched |cos|
  dead_frac_eval    fraction of latents that never fire on the eval rows (inference model)
  dead_frac_trainer fraction SAETrainer flags dead at the end (window rule above)
  l0_eval, fvu_eval (sum sq err / sum sq deviation from the mean), tokens_per_s
Python side-by-side tooling only; nothing here is a dependency of the crate.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def batches(acts, batch, seed):
    rng = np.random.default_rng(seed)
    n = acts.shape[0]
    while True:
        perm = rng.permutation(n)
        for s in range(0, n - batch + 1, batch):
            idx = np.sort(perm[s : s + batch])
            yield torch.from_numpy(np.ascontiguousarray(acts[idx], dtype=np.float32))


def make_training_sae(arch, d_in, d_sae, k, aux):
    from sae_lens import (
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )

    if arch == "topk":
        cfg = TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=int(k), aux_loss_coefficient=aux)
        return TopKTrainingSAE(cfg)
    if arch == "batchtopk":
        cfg = BatchTopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=float(k), aux_loss_coefficient=aux)
        return BatchTopKTrainingSAE(cfg)
    raise SystemExit(f"unknown arch {arch}")


@torch.no_grad()
def score(sae_inf, W_dec, true_f, eval_x, do_mcc):
    Wn = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    Tn = true_f / true_f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = Tn @ Wn.T  # [F_true, d_sae]
    best = cos.max(dim=1).values
    res = {
        "matched_mean_cos": float(best.mean()),
        "frac_true_matched_0.9": float((best > 0.9).float().mean()),
        "frac_true_matched_0.8": float((best > 0.8).float().mean()),
        "median_matched_cos": float(best.median()),
    }
    if do_mcc:
        from sae_lens.synthetic.evals import feature_uniqueness, mean_correlation_coefficient

        t = time.time()
        res["mcc"] = mean_correlation_coefficient(Wn, Tn)
        res["uniqueness"] = feature_uniqueness(Wn, Tn)
        res["mcc_seconds"] = round(time.time() - t, 1)
    fired = torch.zeros(W_dec.shape[0], dtype=torch.bool)
    l0 = 0.0
    sse = 0.0
    n = eval_x.shape[0]
    mean = eval_x.mean(0)
    sst = float(((eval_x - mean) ** 2).sum())
    for s in range(0, n, 4096):
        x = eval_x[s : s + 4096]
        f = sae_inf.encode(x)
        r = sae_inf.decode(f)
        nz = f != 0
        fired |= nz.any(0)
        l0 += float(nz.sum())
        sse += float(((r - x) ** 2).sum())
    res["dead_frac_eval"] = float((~fired).float().mean())
    res["l0_eval"] = l0 / n
    res["fvu_eval"] = sse / sst
    return res


def train_one(arch, aux, acts, true_f, eval_x, k, args, save_root):
    from sae_lens import SAE
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(args.seed)
    d_in = acts.shape[1]
    d_sae = true_f.shape[0] if args.d_sae is None else args.d_sae
    sae = make_training_sae(arch, d_in, d_sae, k, aux)
    tcfg = SAETrainerConfig(
        total_training_samples=args.tokens,
        train_batch_size_samples=args.batch,
        lr=args.lr,
        lr_end=args.lr,
        lr_scheduler_name="constant",
        dead_feature_window=args.dead_window_steps,
        feature_sampling_window=10**9,
        device="cpu",
        logger=LoggingConfig(log_to_wandb=False),
        n_batches_for_norm_estimate=10,
    )
    trainer = SAETrainer(cfg=tcfg, sae=sae, data_provider=batches(acts, args.batch, args.seed + 1))
    t = time.time()
    trainer.fit()
    secs = time.time() - t
    dead_trainer = float(trainer.dead_neurons.float().mean())
    name = f"{arch}_{'aux' if aux > 0 else 'noaux'}"
    out_dir = save_root / name
    sae.save_inference_model(str(out_dir))
    inf = SAE.load_from_disk(out_dir)
    inf.eval()
    res = {
        "arch": arch,
        "aux_loss_coefficient": aux,
        "k": k,
        "d_sae": d_sae,
        "tokens": trainer.n_training_samples,
        "steps": trainer.n_training_steps,
        "train_seconds": round(secs, 1),
        "tokens_per_s": round(trainer.n_training_samples / secs, 1),
        "dead_frac_trainer": dead_trainer,
        "inference_class": type(inf).__name__,
        "saved_to": str(out_dir),
    }
    if arch == "batchtopk":
        res["topk_threshold"] = float(sae.topk_threshold)
    res.update(score(inf, inf.W_dec.detach().float(), true_f, eval_x, not args.no_mcc))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("tokens", type=int)
    ap.add_argument("--out", default="results/sae_peers_2026-12-02/saelens_synthetic.json")
    ap.add_argument("--archs", default="topk,batchtopk")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--dead-window-steps", type=int, default=50)
    ap.add_argument("--no-aux-too", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-rows", type=int, default=50_000)
    ap.add_argument("--no-mcc", action="store_true")
    ap.add_argument("--d-sae", type=int, default=None, help="default: number of true features")
    ap.add_argument("--k", type=float, default=None, help="default: round(meta.json mean_l0)")
    ap.add_argument("--save-dir", default=None, help="where the trained SAEs are saved (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import sae_lens

    dd = Path(args.data_dir)
    meta = json.loads((dd / "meta.json").read_text())
    acts = np.load(dd / "activations.npy", mmap_mode="r")
    true_f = torch.from_numpy(np.load(dd / "true_features.npy").astype(np.float32))
    eval_x = torch.from_numpy(np.ascontiguousarray(acts[: min(args.eval_rows, acts.shape[0])], dtype=np.float32))
    k = args.k if args.k is not None else int(round(meta["mean_l0"]))
    save_root = Path(args.save_dir) if args.save_dir else Path(tempfile.mkdtemp(prefix="saelens_synth_"))
    runs = []
    auxes = [1.0] + ([0.0] if args.no_aux_too else [])
    for arch in args.archs.split(","):
        for aux in auxes:
            print(f"training {arch} aux={aux} on {args.tokens} tokens ...", file=sys.stderr)
            r = train_one(arch, aux, acts, true_f, eval_x, k, args, save_root)
            print(json.dumps({kk: r[kk] for kk in ("arch", "aux_loss_coefficient", "matched_mean_cos", "dead_frac_eval", "l0_eval", "fvu_eval", "tokens_per_s")}), file=sys.stderr)
            runs.append(r)
    res = {
        "what": "SAELens TopK / BatchTopK on synthetic ground-truth data (SAETrainer, CPU)",
        "data_dir": str(dd),
        "data_meta": {kk: meta.get(kk) for kk in ("n", "d", "n_features", "mean_l0", "alpha", "pairs", "rho", "magnitude", "noise_std", "seed", "generator")},
        "versions": {"sae_lens": sae_lens.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "threads": torch.get_num_threads(),
        "settings": {"tokens": args.tokens, "batch": args.batch, "lr": args.lr, "dead_window_steps": args.dead_window_steps,
                      "dead_window_tokens": args.dead_window_steps * args.batch, "eval_rows": int(eval_x.shape[0]), "k": k,
                      "normalize_activations": "none", "seed": args.seed},
        "load_avg": os.getloadavg(),
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps([{kk: r.get(kk) for kk in ("arch", "aux_loss_coefficient", "matched_mean_cos", "mcc", "dead_frac_eval", "dead_frac_trainer", "l0_eval", "fvu_eval", "tokens_per_s")} for r in runs], indent=1))


if __name__ == "__main__":
    main()

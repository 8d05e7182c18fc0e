#!/usr/bin/env python3
"""Training throughput of SAELens's own TopK trainer on this CPU, and the
one-GEMM bound (the 4096x768x16384 encoder product) with torch and numpy.

    python scripts/sae/saelens_topk_throughput.py [--out results/sae_peers_2026-12-02/saelens_topk_throughput.json]
        [--steps 3] [--warmup 1] [--threads 2] [--skip-trainer] [--skip-sparse]

d_in=768, d_sae=16384, k=32, batch 4096, float32, random Gaussian activations.

Modes timed (each: warm-up steps, then timed steps; tokens/s = batch / median step time):
  direct   TopKTrainingSAE.training_forward_pass (AuxK on: a fixed dead-latent mask with
           half the latents dead, so k_aux = d_in/2 = 384 and scale = 1) + loss.backward()
           + clip_grad_norm_(1.0) + torch.optim.Adam step + zero_grad: exactly what
           SAETrainer._train_step does, minus its bookkeeping.
  trainer  SAETrainer.step(batch) itself (bookkeeping, dead-latent tracking, lr scheduler);
           dead_feature_window=0 so every latent that did not fire in the previous batch
           counts as dead and AuxK stays on from the second step.
  sparse   as direct with use_sparse_activations=True (the COO-tensor option).
GEMM bound: torch.mm and numpy (OpenBLAS, run in a subprocess as
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2).
Python side-by-side tooling only; nothing here is a dependency of the crate.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

D_IN, D_SAE, K, BATCH = 768, 16384, 32, 4096

NUMPY_GEMM = r"""
import json, time, numpy as np
try:
    import threadpoolctl
    info = threadpoolctl.threadpool_info()
except Exception as e:
    info = repr(e)
rng = np.random.default_rng(0)
a = rng.standard_normal((4096, 768), dtype=np.float32)
b = rng.standard_normal((768, 16384), dtype=np.float32)
c = a @ b
ts = []
for _ in range(7):
    t = time.perf_counter(); np.matmul(a, b, out=c); ts.append(time.perf_counter() - t)
print(json.dumps({"times_s": ts, "best_s": min(ts), "median_s": sorted(ts)[len(ts)//2], "threadpool_info": info, "numpy": np.__version__}))
"""


def lscpu():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            d[k.strip()] = v.strip()
    flags = d.get("Flags", "").split()
    return {
        "model_name": d.get("Model name"),
        "cpus": d.get("CPU(s)"),
        "l2": d.get("L2 cache"),
        "l3": d.get("L3 cache"),
        "avx512_flags": [f for f in flags if f.startswith("avx512")],
        "flags": d.get("Flags"),
    }


def time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    ts, cpu = [], []
    for _ in range(steps):
        t = time.perf_counter()
        c = time.process_time()
        step()
        ts.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return ts, cpu


def summary(tc):
    ts, cpu = tc
    med = statistics.median(ts)
    threads = torch.get_num_threads()
    return {
        "cpu_times_s": [round(t, 4) for t in cpu],
        # contention-robust estimate: the CPU seconds this process used, spread over its threads
        "tokens_per_s_from_cpu_time": round(BATCH / (statistics.median(cpu) / threads), 1),
        "load_avg_1min": os.getloadavg()[0],
        "step_times_s": [round(t, 4) for t in ts],
        "median_step_s": round(med, 4),
        "tokens_per_s": round(BATCH / med, 1),
        "best_tokens_per_s": round(BATCH / min(ts), 1),
    }


def make_sae(sparse=False):
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

    cfg = TopKTrainingSAEConfig(
        d_in=D_IN, d_sae=D_SAE, k=K, aux_loss_coefficient=1.0, use_sparse_activations=sparse
    )
    return TopKTrainingSAE(cfg), cfg


def run_direct(args, sparse=False, profile=False):
    from sae_lens.saes.sae import TrainStepInput

    torch.manual_seed(0)
    sae, cfg = make_sae(sparse)
    sae.train()
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(1)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[torch.randperm(D_SAE, generator=gen)[: D_SAE // 2]] = True
    batches = [torch.randn(BATCH, D_IN, generator=gen) for _ in range(2)]
    state = {"i": 0, "losses": []}

    def step():
        x = batches[state["i"] % 2]
        state["i"] += 1
        out = sae.training_forward_pass(
            TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=dead, n_training_steps=state["i"], is_logging_step=False)
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        state["losses"].append({k: float(v) for k, v in out.losses.items()})

    if profile:
        from torch.profiler import ProfilerActivity, profile as tprofile

        step()  # warm-up
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        rows = []
        total = sum(e.self_cpu_time_total for e in prof.key_averages())
        for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:20]:
            rows.append({"op": e.key, "calls": e.count, "self_cpu_s": round(e.self_cpu_time_total / 1e6, 3),
                         "share": round(e.self_cpu_time_total / total, 4)})
        return {"top_ops_by_self_cpu": rows, "total_self_cpu_s": round(total / 1e6, 3),
                "note": "self CPU time summed over ops (both threads' work attributed to the calling op)"}
    ts = time_steps(step, args.warmup, args.steps)
    res = summary(ts)
    res["dead_latents_in_mask"] = int(dead.sum())
    res["last_losses"] = state["losses"][-1]
    res["aux_loss_nonzero"] = state["losses"][-1].get("auxiliary_reconstruction_loss", 0.0) != 0.0
    res["cfg"] = {"rescale_acts_by_decoder_norm": cfg.rescale_acts_by_decoder_norm, "use_sparse_activations": sparse, "aux_loss_coefficient": cfg.aux_loss_coefficient, "dtype": cfg.dtype}
    return res


def run_trainer(args):
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    sae, cfg = make_sae(False)
    gen = torch.Generator().manual_seed(2)
    batches = [torch.randn(BATCH, D_IN, generator=gen) for _ in range(2)]
    tcfg = SAETrainerConfig(
        total_training_samples=BATCH * 1000,
        train_batch_size_samples=BATCH,
        lr=3e-4,
        lr_end=3e-5,  # SAETrainer asserts it is set (the runner configs set it in __post_init__)
        dead_feature_window=0,
        device="cpu",
        logger=LoggingConfig(log_to_wandb=False),
    )
    trainer = SAETrainer(cfg=tcfg, sae=sae, data_provider=iter(()))
    state = {"i": 0, "dead": [], "aux": []}

    def step():
        state["dead"].append(int(trainer.dead_neurons.sum()))
        out = trainer.step(batches[state["i"] % 2])
        trainer.n_training_steps += 1
        state["i"] += 1
        state["aux"].append(float(out.losses["auxiliary_reconstruction_loss"]))

    ts = time_steps(step, max(args.warmup, 1), args.steps)  # >=1 warm-up so the dead mask exists
    res = summary(ts)
    res["dead_latents_per_step"] = state["dead"]
    res["aux_loss_per_step"] = state["aux"]
    return res


def gemm_torch():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(BATCH, D_IN, generator=gen)
    b = torch.randn(D_IN, D_SAE, generator=gen)
    c = a @ b
    ts, cpu = [], []
    for _ in range(7):
        t = time.perf_counter()
        p = time.process_time()
        torch.mm(a, b, out=c)
        ts.append(time.perf_counter() - t)
        cpu.append(time.process_time() - p)
    return {"times_s": [round(t, 4) for t in ts], "best_s": round(min(ts), 4), "median_s": round(statistics.median(ts), 4),
            "cpu_times_s": [round(t, 4) for t in cpu], "load_avg_1min": os.getloadavg()[0]}


def gemm_numpy(threads):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    p = subprocess.run([sys.executable, "-c", NUMPY_GEMM], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr[-2000:]}
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["env"] = f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS={threads}"
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/sae_peers_2026-12-02/saelens_topk_throughput.json")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-trainer", action="store_true")
    ap.add_argument("--skip-sparse", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also profile one direct step (torch.profiler, top ops by self CPU time)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import importlib.metadata as md

    import sae_lens

    res = {
        "what": "SAELens TopK training throughput on CPU and the one-GEMM bound",
        "shape": {"d_in": D_IN, "d_sae": D_SAE, "k": K, "batch": BATCH, "dtype": "float32", "data": "random Gaussian N(0,1)"},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "sae_lens": sae_lens.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "eai_sparsify": md.version("eai-sparsify"),
            "python": platform.python_version(),
        },
        "torch_threads": torch.get_num_threads(),
        "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env_OPENBLAS": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")},
        "lscpu": lscpu(),
        "load_during_run": os.getloadavg(),
        "steps": args.steps,
        "warmup": args.warmup,
    }
    print("GEMM (torch) ...", file=sys.stderr)
    res["gemm_torch"] = gemm_torch()
    print("GEMM (numpy/OpenBLAS) ...", file=sys.stderr)
    res["gemm_numpy_openblas"] = gemm_numpy(args.threads)
    flops = 2 * BATCH * D_IN * D_SAE
    for key in ("gemm_torch", "gemm_numpy_openblas"):
        g = res[key]
        if "best_s" in g:
            g["gflops_best"] = round(flops / g["best_s"] / 1e9, 1)
            g["bound_tokens_per_s"] = round(BATCH / g["best_s"], 1)
    print("direct training step ...", file=sys.stderr)
    res["direct"] = run_direct(args)
    if not args.skip_trainer:
        print("SAETrainer.step ...", file=sys.stderr)
        try:
            res["trainer"] = run_trainer(args)
        except Exception as e:
            res["trainer"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    if not args.skip_sparse:
        print("use_sparse_activations=True ...", file=sys.stderr)
        try:
            res["sparse"] = run_direct(args, sparse=True)
        except Exception as e:
            res["sparse"] = {"error": f"{type(e).__name__}: {str(e)[:400]}", "traceback": traceback.format_exc()[-1500:]}
    if args.profile:
        print("profiling one direct step ...", file=sys.stderr)
        res["profile_direct_step"] = run_direct(args, profile=True)
    best_bound = min(g["best_s"] for g in (res["gemm_torch"], res["gemm_numpy_openblas"]) if "best_s" in g)
    res["one_gemm_bound_tokens_per_s"] = round(BATCH / best_bound, 1)
    res["saelens_fraction_of_bound"] = round(res["direct"]["tokens_per_s"] / res["one_gemm_bound_tokens_per_s"], 4)
    res["load_after_run"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    short = {k: res[k] for k in ("torch_threads", "one_gemm_bound_tokens_per_s", "saelens_fraction_of_bound")}
    short["direct_tokens_per_s"] = res["direct"]["tokens_per_s"]
    short["trainer_tokens_per_s"] = res.get("trainer", {}).get("tokens_per_s")
    short["sparse"] = res.get("sparse", {}).get("tokens_per_s", str(res.get("sparse", {}).get("error"))[:160])
    short["direct_tokens_per_s_from_cpu_time"] = res["direct"]["tokens_per_s_from_cpu_time"]
    short["load_avg"] = [res["load_during_run"][0], res["load_after_run"][0]]
    short["gemm_torch_best_s"] = res["gemm_torch"]["best_s"]
    short["gemm_numpy_best_s"] = res["gemm_numpy_openblas"].get("best_s")
    print(json.dumps(short, indent=2))


if __name__ == "__main__":
    main()

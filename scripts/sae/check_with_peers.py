#!/usr/bin/env python3
"""Load an SAE directory with a peer package, run it on DIR/inputs.npy and
compare with DIR/recon.npy (and DIR/codes.npy when present).

    python scripts/sae/check_with_peers.py DIR KIND [--json OUT.json] [--tol 1e-5]

KIND
    saelens            sae_lens.SAE.load_from_disk(DIR)           (cfg.json + sae_weights.safetensors)
    sparsify           sparsify.SparseCoder.load_from_disk(DIR)    (cfg.json + sae.safetensors)
    saelens-sparsify   SAELens's own sparsify converter: SAE.load_from_disk(DIR, converter=sparsify_disk_loader)

DIR may also be a sparsify multi-hookpoint run directory (RUN/<hookpoint>/cfg.json):
every sub-directory with a cfg.json is checked and the worst error reported.
inputs.npy is looked for in DIR, then in DIR's parent.

Besides the package, each directory is also run through an independent numpy
re-implementation of the forward pass described in scripts/sae/FORMATS.md
("numpy_reference"), so a disagreement points at either the file or the doc.

Errors (all float64):
    recon_max_rel_err  = max_i ||recon_i - ref_i||_2 / max(||ref_i||_2, 1e-12)
    recon_max_abs_err  = max_ij |recon_ij - ref_ij|
    codes_max_rel_err  = max_i ||codes_i - ref_i||_2 / max(||ref_i||_2, 1e-12)
    codes_support_mismatch = number of (row, latent) pairs active in one and not the other
Prints one JSON object; exit status 1 if recon_max_rel_err > --tol (default 1e-5).
Python side-by-side tooling only; nothing here is a dependency of the crate.
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")  # triton kernels need a GPU

import numpy as np


def rel_rows(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    num = np.linalg.norm(a - b, axis=-1)
    den = np.maximum(np.linalg.norm(b, axis=-1), 1e-12)
    return float((num / den).max())


def compare(recon, codes, ref_recon, ref_codes):
    out = {
        "recon_max_rel_err": rel_rows(recon, ref_recon),
        "recon_max_abs_err": float(np.abs(np.asarray(recon, np.float64) - ref_recon).max()),
    }
    if ref_codes is not None and codes is not None:
        out["codes_max_rel_err"] = rel_rows(codes, ref_codes)
        out["codes_support_mismatch"] = int(((codes != 0) != (ref_codes != 0)).sum())
    return out


# ---------------------------------------------------------------- packages
def run_saelens(d: Path, x, converter=None):
    import torch
    from sae_lens import SAE

    kw = {}
    if converter is not None:
        kw["converter"] = converter
    sae = SAE.load_from_disk(d, device="cpu", **kw)
    sae.eval()
    with torch.no_grad():
        xt = torch.from_numpy(x).to(sae.dtype)
        codes = sae.encode(xt)
        recon = sae.decode(codes)
    return recon.float().numpy(), codes.float().numpy(), {"class": type(sae).__name__, "cfg": sae.cfg.to_dict()}


def run_sparsify(d: Path, x):
    import contextlib

    import torch

    with contextlib.redirect_stdout(sys.stderr):  # sparsify prints at import
        from sparsify import SparseCoder

    sc = SparseCoder.load_from_disk(d, device="cpu")
    with torch.no_grad():
        xt = torch.from_numpy(x).to(sc.dtype)
        top_acts, top_idx, _ = sc.encode(xt)
        recon = sc.decode(top_acts, top_idx)
        codes = torch.zeros(xt.shape[0], sc.num_latents)
        codes.scatter_(-1, top_idx, top_acts.float())
    return recon.float().numpy(), codes.numpy(), {"class": type(sc).__name__, "cfg": {**sc.cfg.to_dict(), "d_in": sc.d_in}}


# ---------------------------------------------------------------- numpy reference (FORMATS.md)
def load_st(path):
    from safetensors.numpy import load_file

    return {k: v.astype(np.float64) for k, v in load_file(str(path)).items()}


def topk_dense(pre, k):
    idx = np.argpartition(-pre, k - 1, axis=-1)[:, :k]
    out = np.zeros_like(pre)
    np.put_along_axis(out, idx, np.take_along_axis(pre, idx, -1), -1)
    return out


def numpy_saelens(d: Path, x):
    cfg = json.loads((d / "cfg.json").read_text())
    t = load_st(d / "sae_weights.safetensors")
    arch = cfg["architecture"]
    x = x.astype(np.float64)
    norm = cfg.get("normalize_activations", "none")
    if norm == "constant_norm_rescale":
        coeff = np.sqrt(cfg["d_in"]) / np.linalg.norm(x, axis=-1, keepdims=True)
        x = x * coeff
    elif norm == "layer_norm":
        mu = x.mean(-1, keepdims=True)
        xc = x - mu
        std = xc.std(-1, ddof=1, keepdims=True)
        x = xc / (std + 1e-5)
    # "none" and "expected_average_only_in": identity at inference (see FORMATS.md)
    sae_in = x - t["b_dec"] * bool(cfg.get("apply_b_dec_to_input", True))
    pre = sae_in @ t["W_enc"] + t["b_enc"]
    dec_norm = np.linalg.norm(t["W_dec"], axis=-1)
    rescale = arch == "topk" and cfg.get("rescale_acts_by_decoder_norm", False)
    if arch == "standard":
        codes = np.maximum(pre, 0)
    elif arch == "topk":
        if rescale:
            pre = pre * dec_norm
        codes = np.maximum(topk_dense(pre, int(cfg["k"])), 0)  # topk, then ReLU
    elif arch == "jumprelu":
        codes = np.maximum(pre, 0) * (pre > t["threshold"])  # strict >
    else:
        raise SystemExit(f"numpy reference: architecture {arch!r} not covered")
    acts = codes / dec_norm if rescale else codes
    recon = acts @ t["W_dec"] + t["b_dec"]
    if norm == "constant_norm_rescale":
        recon = recon / coeff
    elif norm == "layer_norm":
        recon = recon * std + mu
    return recon, codes


def numpy_sparsify(d: Path, x):
    cfg = json.loads((d / "cfg.json").read_text())
    t = load_st(d / "sae.safetensors")
    x = x.astype(np.float64)
    if cfg.get("transcode", False):
        sae_in = x
    else:
        sae_in = x - t["b_dec"]
    pre = np.maximum(sae_in @ t["encoder.weight"].T + t["encoder.bias"], 0)  # ReLU, then topk
    if cfg.get("activation", "topk") != "topk":
        raise SystemExit("numpy reference: only activation=topk covered")
    codes = topk_dense(pre, int(cfg["k"]))
    recon = codes @ t["W_dec"] + t["b_dec"]
    if "W_skip" in t:
        recon = recon + x @ t["W_skip"].T
    return recon, codes


# ---------------------------------------------------------------- main
def check_one(d: Path, kind: str):
    inputs = d / "inputs.npy"
    if not inputs.exists():
        inputs = d.parent / "inputs.npy"
    x = np.load(inputs).astype(np.float32)
    ref_recon = np.load(d / "recon.npy").astype(np.float64)
    ref_codes = np.load(d / "codes.npy").astype(np.float64) if (d / "codes.npy").exists() else None

    if kind == "saelens":
        recon, codes, info = run_saelens(d, x)
        nrec, ncodes = numpy_saelens(d, x)
    elif kind == "saelens-sparsify":
        # SAELens's converter; it requires the folder to be named like layers.N / layers_N / embed_tokens
        from sae_lens.loading.pretrained_sae_loaders import sparsify_disk_loader

        recon, codes, info = run_saelens(d, x, converter=sparsify_disk_loader)
        nrec, ncodes = numpy_sparsify(d, x)
    elif kind == "sparsify":
        recon, codes, info = run_sparsify(d, x)
        nrec, ncodes = numpy_sparsify(d, x)
    else:
        raise SystemExit(f"unknown KIND {kind!r}")
    res = {"dir": str(d), "kind": kind, "loaded_class": info["class"], "n": int(x.shape[0])}
    res.update(compare(recon, codes, ref_recon, ref_codes))
    res["numpy_reference"] = compare(nrec, ncodes, ref_recon, ref_codes)
    res["package_vs_numpy_reference_recon_rel_err"] = rel_rows(recon, nrec)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("kind", choices=["saelens", "sparsify", "saelens-sparsify"])
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    d = Path(a.dir)
    if (d / "cfg.json").exists():
        dirs = [d]
    else:
        dirs = sorted(p for p in d.iterdir() if (p / "cfg.json").exists())
        if not dirs:
            raise SystemExit(f"{d}: no cfg.json here or in its sub-directories")
    results = []
    for sub in dirs:
        try:
            results.append(check_one(sub, a.kind))
        except Exception as e:  # report, don't hide
            results.append({"dir": str(sub), "kind": a.kind, "error": f"{type(e).__name__}: {e}"})
    worst = max((r.get("recon_max_rel_err", float("inf")) for r in results), default=float("inf"))
    out = {
        "kind": a.kind,
        "dir": str(d),
        "recon_max_rel_err": worst,
        "tol": a.tol,
        "pass": bool(worst <= a.tol),
        "results": results,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text + "\n")
    sys.exit(0 if out["pass"] else 1)


if __name__ == "__main__":
    main()

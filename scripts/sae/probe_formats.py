#!/usr/bin/env python3
"""Probe what the peer loaders accept (the [tested] claims of FORMATS.md).

    python scripts/sae/probe_formats.py PEER_DIR [OUT.txt]

PEER_DIR is what make_peer_saes.py wrote. Each trial edits a copy of a peer directory
(cfg.json and/or tensors), loads it with SAE.load_from_disk / SparseCoder.load_from_disk
and prints OK or the error. Python side-by-side tooling only.
"""
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")
warnings.filterwarnings("ignore")
import torch
from safetensors.torch import load_file, save_file

src = Path(sys.argv[1])
lines = []
work = Path(tempfile.mkdtemp(prefix="probe_"))


def say(s):
    print(s)
    lines.append(s)


def saelens_trial(name, base, cfg_edit=None, tensors_edit=None, check=None):
    from sae_lens import SAE

    d = work / ("saelens_" + name)
    d.mkdir()
    cfg = json.loads((src / base / "cfg.json").read_text())
    t = load_file(str(src / base / "sae_weights.safetensors"))
    if cfg_edit:
        cfg = cfg_edit(cfg)
    if tensors_edit:
        t = tensors_edit(t)
    (d / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(d / "sae_weights.safetensors"))
    try:
        s = SAE.load_from_disk(d)
        extra = check(s) if check else ""
        c = {k: v for k, v in s.cfg.to_dict().items() if k not in ("metadata", "device")}
        say(f"saelens  {name:32s} OK   {type(s).__name__} W_enc.dtype={s.W_enc.dtype} {extra} cfg={c}")
    except Exception as e:
        say(f"saelens  {name:32s} ERR  {type(e).__name__}: {' '.join(str(e).split())[:160]}")


def sparsify_trial(name, cfg_edit=None, tensors_edit=None):
    with contextlib.redirect_stdout(io.StringIO()):
        from sparsify import SparseCoder
    d = work / ("sparsify_" + name)
    d.mkdir()
    cfg = json.loads((src / "sparsify" / "cfg.json").read_text())
    t = load_file(str(src / "sparsify" / "sae.safetensors"))
    if cfg_edit:
        cfg = cfg_edit(cfg)
    if tensors_edit:
        t = tensors_edit(t)
    (d / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(d / "sae.safetensors"))
    try:
        with contextlib.redirect_stdout(io.StringIO()) as buf:
            s = SparseCoder.load_from_disk(d)
        note = " ".join(buf.getvalue().split())
        say(f"sparsify {name:32s} OK   num_latents={s.num_latents} k={s.cfg.k} dtype={s.dtype} {note}")
    except Exception as e:
        say(f"sparsify {name:32s} ERR  {type(e).__name__}: {' '.join(str(e).split())[:160]}")


V = {"sae_lens_version": "6.54.12"}
x = torch.randn(5, 64)
saelens_trial("minimal_standard", "standard", lambda c: {"architecture": "standard", "d_in": 64, "d_sae": 256, "dtype": "float32", "metadata": V})
saelens_trial("minimal_topk", "topk", lambda c: {"architecture": "topk", "d_in": 64, "d_sae": 256, "k": 8, "dtype": "float32", "metadata": V})
saelens_trial("minimal_jumprelu", "jumprelu", lambda c: {"architecture": "jumprelu", "d_in": 64, "d_sae": 256, "dtype": "float32", "metadata": V})
saelens_trial("topk_without_k", "topk", lambda c: {"architecture": "topk", "d_in": 64, "d_sae": 256, "dtype": "float32", "metadata": V})
saelens_trial("without_dtype", "topk", lambda c: {"architecture": "topk", "d_in": 64, "d_sae": 256, "k": 8, "metadata": V})
saelens_trial("without_version(pre-6 path)", "topk", lambda c: {"architecture": "topk", "d_in": 64, "d_sae": 256, "k": 8, "dtype": "float32"})
saelens_trial("version_at_top_level", "topk", lambda c: {"architecture": "topk", "d_in": 64, "d_sae": 256, "k": 8, "dtype": "float32", "sae_lens_version": "6.54.12"})
saelens_trial("without_architecture_v6", "standard", lambda c: {"d_in": 64, "d_sae": 256, "dtype": "float32", "metadata": V})
saelens_trial("without_architecture_pre6", "standard", lambda c: {"d_in": 64, "d_sae": 256, "dtype": "float32"})
saelens_trial("architecture_batchtopk", "jumprelu", lambda c: {"architecture": "batchtopk", "d_in": 64, "d_sae": 256, "k": 8, "dtype": "float32", "metadata": V})
saelens_trial("extra_cfg_keys", "topk", lambda c: {**c, "drsae": {"a": 1}, "metadata": {**c["metadata"], "drsae": 1}})
saelens_trial("extra_tensor", "topk", tensors_edit=lambda t: {**t, "extra": torch.zeros(3)})
saelens_trial("missing_b_enc", "topk", tensors_edit=lambda t: {k: v for k, v in t.items() if k != "b_enc"})
saelens_trial("jumprelu_without_threshold", "jumprelu", tensors_edit=lambda t: {k: v for k, v in t.items() if k != "threshold"})
saelens_trial("jumprelu_log_threshold", "jumprelu", tensors_edit=lambda t: {**{k: v for k, v in t.items() if k != "threshold"}, "log_threshold": torch.log(t["threshold"])})
saelens_trial("W_enc_transposed", "topk", tensors_edit=lambda t: {**t, "W_enc": t["W_enc"].T.contiguous()})
saelens_trial("bf16_file_f32_cfg", "topk", tensors_edit=lambda t: {k: v.bfloat16() for k, v in t.items()})
saelens_trial("f32_file_f16_cfg", "topk", lambda c: {**c, "dtype": "float16"})
from sae_lens import SAE

ref = SAE.load_from_disk(src / "topk")
saelens_trial("expected_average_only_in", "topk", lambda c: {**c, "normalize_activations": "expected_average_only_in"},
              check=lambda s: f"identity_at_inference={bool(torch.equal(s(x), ref(x)))}")
saelens_trial("scaling_factor_all_ones", "standard", tensors_edit=lambda t: {**t, "scaling_factor": torch.ones(256)})
saelens_trial("scaling_factor_twos", "standard", tensors_edit=lambda t: {**t, "scaling_factor": 2 * torch.ones(256)})
sparsify_trial("minimal", lambda c: {"d_in": 64, "num_latents": 256, "k": 8})
sparsify_trial("expansion_factor_only", lambda c: {"d_in": 64, "expansion_factor": 4, "k": 8})
sparsify_trial("without_d_in", lambda c: {"num_latents": 256, "k": 8})
sparsify_trial("extra_keys", lambda c: {**c, "signed": False, "drsae": 1})
sparsify_trial("extra_tensor", tensors_edit=lambda t: {**t, "extra": torch.zeros(2)})
sparsify_trial("bf16_file", tensors_edit=lambda t: {k: v.bfloat16() for k, v in t.items()})
sparsify_trial("without_encoder_bias", tensors_edit=lambda t: {k: v for k, v in t.items() if k != "encoder.bias"})
shutil.rmtree(work)
if len(sys.argv) > 2:
    Path(sys.argv[2]).write_text("\n".join(lines) + "\n")

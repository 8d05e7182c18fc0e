#!/usr/bin/env python3
"""Build small random SAEs with the peer packages themselves and save them with
their own save functions, plus the inputs and the packages' own outputs.

    python scripts/sae/make_peer_saes.py OUT

Writes
    OUT/inputs.npy                      float32 [100, 64]
    OUT/<name>/cfg.json + weights       written by the package's save function
    OUT/<name>/inputs.npy               the same inputs (so each dir is self-contained)
    OUT/<name>/recon.npy                float32 [100, 64]  reconstruction by the package
    OUT/<name>/codes.npy                float32 [100, 256] dense latent codes by the package
    OUT/<name>/peer.json                which package/class wrote it and how
    OUT/manifest.json                   list of the above

SAELens names (loadable with sae_lens.SAE.load_from_disk):
    standard            StandardSAE.save_model
    topk                TopKSAE.save_model (inference class, rescale_acts_by_decoder_norm=False)
    topk_rescaled       TopKSAE.save_model with rescale_acts_by_decoder_norm=True
    topk_from_training  TopKTrainingSAE.save_inference_model (rescale=True, norms folded on save)
    jumprelu            JumpReLUSAE.save_model
    batchtopk           BatchTopKTrainingSAE.save_inference_model -> a *jumprelu* directory
    matryoshka_batchtopk MatryoshkaBatchTopKTrainingSAE.save_inference_model -> jumprelu
    standard_training   StandardTrainingSAE.save_model (training cfg: l1_coefficient etc. kept)
sparsify names (loadable with sparsify.SparseCoder.load_from_disk):
    sparsify            SparseCoder.save_to_disk (topk, k=8, num_latents=256)
    sparsify_multi/     the trainer's multi-hookpoint layout: layers.0/ and layers.1/

Python side-by-side tooling only; nothing here is a dependency of the crate.
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")  # triton kernels need a GPU

import numpy as np
import torch

D_IN, D_SAE, K, N = 64, 256, 8, 100


def randomise(module, gen, scale_enc=0.3, scale_dec=0.3):
    """Give every parameter non-trivial random values (biases non-zero) so that
    b_dec subtraction, b_enc and decoder norms all matter in the comparison."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in ("threshold",):
                continue
            s = scale_dec if "dec" in name else scale_enc
            if p.ndim == 1:
                s = 0.1
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * s)


def save_outputs(d: Path, x: np.ndarray, recon: torch.Tensor, codes: torch.Tensor, info: dict):
    np.save(d / "inputs.npy", x)
    np.save(d / "recon.npy", recon.detach().float().numpy().astype(np.float32))
    np.save(d / "codes.npy", codes.detach().float().numpy().astype(np.float32))
    (d / "peer.json").write_text(json.dumps(info, indent=2) + "\n")


def saelens_models(out: Path, x: np.ndarray, gen):
    import sae_lens
    from sae_lens import (
        SAE,
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        JumpReLUSAE,
        JumpReLUSAEConfig,
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        StandardTrainingSAE,
        StandardTrainingSAEConfig,
        TopKSAE,
        TopKSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )

    xt = torch.from_numpy(x)
    made = []

    def finish(name, sae, how, saver):
        d = out / name
        saver(d)
        # the package's own outputs, computed by the package, from the re-loaded
        # directory (what any other reader will see)
        loaded = SAE.load_from_disk(d)
        with torch.no_grad():
            codes = loaded.encode(xt)
            recon = loaded.decode(codes)
            recon_fwd = loaded(xt)
            # the in-memory object must agree with what it saved
            if hasattr(sae, "encode"):
                sae.eval()
        assert torch.allclose(recon, recon_fwd)
        save_outputs(
            d, x, recon, codes,
            {
                "package": "sae-lens",
                "version": sae_lens.__version__,
                "written_by": how,
                "loaded_class": type(loaded).__name__,
                "architecture_in_cfg": json.loads((d / "cfg.json").read_text())["architecture"],
                "mean_l0": float((codes != 0).float().sum(-1).mean()),
            },
        )
        made.append(name)
        return loaded

    # standard ReLU SAE (inference class)
    sae = StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE))
    randomise(sae, gen)
    finish("standard", sae, "StandardSAE.save_model", sae.save_model)

    # standard, training class (cfg keeps l1_coefficient, lp_norm, decoder_init_norm ...)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=5.0))
    randomise(sae, gen)
    finish("standard_training", sae, "StandardTrainingSAE.save_model", sae.save_model)

    # TopK inference class
    sae = TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K))
    randomise(sae, gen)
    finish("topk", sae, "TopKSAE.save_model", sae.save_model)

    # TopK inference class with rescale_acts_by_decoder_norm (not folded)
    sae = TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, rescale_acts_by_decoder_norm=True))
    randomise(sae, gen)
    finish("topk_rescaled", sae, "TopKSAE.save_model (rescale_acts_by_decoder_norm=True)", sae.save_model)

    # TopK training class -> inference model (folds decoder norms when rescale=True)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K))
    randomise(sae, gen)
    finish("topk_from_training", sae, "TopKTrainingSAE.save_inference_model", sae.save_inference_model)

    # JumpReLU inference class with positive random thresholds
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE))
    randomise(sae, gen)
    with torch.no_grad():
        sae.threshold.copy_(2.5 + torch.rand(D_SAE, generator=gen) * 2.0)
    finish("jumprelu", sae, "JumpReLUSAE.save_model", sae.save_model)

    # BatchTopK training class -> saved as JumpReLU
    sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K))
    randomise(sae, gen)
    with torch.no_grad():
        sae.topk_threshold.fill_(9.0)  # what training would have learned (EMA of min positive act)
    finish("batchtopk", sae, "BatchTopKTrainingSAE.save_inference_model", sae.save_inference_model)

    # Matryoshka BatchTopK -> saved as JumpReLU
    sae = MatryoshkaBatchTopKTrainingSAE(
        MatryoshkaBatchTopKTrainingSAEConfig(
            d_in=D_IN, d_sae=D_SAE, k=K, matryoshka_widths=[32, 128, D_SAE]
        )
    )
    randomise(sae, gen)
    with torch.no_grad():
        sae.topk_threshold.fill_(9.0)
    finish(
        "matryoshka_batchtopk", sae,
        "MatryoshkaBatchTopKTrainingSAE.save_inference_model",
        sae.save_inference_model,
    )
    return made


def sparsify_models(out: Path, x: np.ndarray, gen):
    import importlib.metadata as md

    from sparsify import SparseCoder, SparseCoderConfig

    xt = torch.from_numpy(x)
    made = []

    def outputs(sc):
        with torch.no_grad():
            top_acts, top_idx, _pre = sc.encode(xt)
            recon = sc.decode(top_acts, top_idx)
            codes = torch.zeros(xt.shape[0], sc.num_latents)
            codes.scatter_(-1, top_idx, top_acts.float())
        return recon, codes

    def one(d: Path, seed_shift: int):
        cfg = SparseCoderConfig(num_latents=D_SAE, k=K)  # activation="topk", normalize_decoder=True
        sc = SparseCoder(D_IN, cfg)
        randomise(sc, gen)
        if cfg.normalize_decoder:
            sc.set_decoder_norm_to_unit_norm()  # what the trainer keeps true
        sc.save_to_disk(d)
        loaded = SparseCoder.load_from_disk(d)
        recon, codes = outputs(loaded)
        save_outputs(
            d, x, recon, codes,
            {
                "package": "eai-sparsify",
                "version": md.version("eai-sparsify"),
                "written_by": "SparseCoder.save_to_disk",
                "loaded_class": type(loaded).__name__,
                "mean_l0": float((codes != 0).float().sum(-1).mean()),
            },
        )

    one(out / "sparsify", 0)
    made.append("sparsify")
    # multi-hookpoint layout as sparsify's Trainer writes it: RUN/<hookpoint>/{cfg.json,sae.safetensors}
    for hp in ("layers.0", "layers.1"):
        one(out / "sparsify_multi" / hp, 1)
        made.append(f"sparsify_multi/{hp}")
    return made


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    rng = np.random.default_rng(0)
    # inputs with a non-zero mean so that b_dec subtraction matters
    x = (rng.standard_normal((N, D_IN)) + 0.5).astype(np.float32)
    np.save(out / "inputs.npy", x)
    made = saelens_models(out, x, gen) + sparsify_models(out, x, gen)
    (out / "manifest.json").write_text(json.dumps({"models": made, "d_in": D_IN, "d_sae": D_SAE, "k": K, "n": N}, indent=2) + "\n")
    for m in made:
        info = json.loads((out / m / "peer.json").read_text())
        print(f"{m:28s} {info['loaded_class']:14s} mean_l0={info['mean_l0']:.2f}")


if __name__ == "__main__":
    main()

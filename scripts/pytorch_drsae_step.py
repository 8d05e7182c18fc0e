"""The same DrSAE training step as `cargo run --release --example bench -- train`, in
PyTorch (autograd, SGD, same shapes, losses and projections), for side-by-side timing.
Not a dependency of the crate.

    pip install torch numpy
    python3 scripts/pytorch_drsae_step.py [threads]

Prints JSON lines {"bench": "torch_drsae_b10_unsup", "value": samples/s, ...}.
"""
import gzip, json, os, sys, time
import numpy as np
import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
m, n, T, k = 784, 400, 11, 10

raw = gzip.open("data/mnist-sample/train-images-idx3-ubyte.gz").read()
X = torch.tensor(np.frombuffer(raw[16:], dtype=np.uint8)[: 2000 * 784].reshape(2000, 784).astype(np.float32) / 255.0)
X = X / X.norm(dim=1, keepdim=True)
lab = gzip.open("data/mnist-sample/train-labels-idx1-ubyte.gz").read()
Y = torch.tensor(np.frombuffer(lab[8:], dtype=np.uint8)[:2000].astype(np.int64))

def make():
    D = torch.nn.functional.normalize(0.25 * X[torch.randint(0, 2000, (n,))] + 0.01 * torch.rand(n, m), dim=1).T.contiguous()
    a0 = 1.25 / T
    E = (a0 * D.T).clone().requires_grad_()
    S = (torch.eye(n) - a0 * D.T @ D).requires_grad_()
    b = torch.full((n,), 1e-5, requires_grad=True)
    C = torch.nn.functional.normalize(torch.randn(k, n), dim=1).mul(5).requires_grad_()
    return E, S, b, D.requires_grad_(), C

def step(params, x, y, supervised, lr=1e-3):
    E, S, b, D, C = params
    a = x @ E.T - b
    z = torch.relu(a)
    for _ in range(T - 1):
        z = torch.relu(a + z @ S.T)
    r = x - z @ D.T
    loss = (5.0 * 0.5 * (r * r).sum() + 0.09 * z.sum()) / x.shape[0]
    if supervised:
        zh = z / z.norm(dim=1, keepdim=True).clamp_min(1e-6)
        loss = loss + torch.nn.functional.cross_entropy(zh @ C.T, y)
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        for p, mult in zip(params, [1 / T, 1 / (T - 1), 1 / T, 1.0, 0.2]):
            if p.grad is not None:
                p.sub_(lr * mult * p.grad)
        D.div_(D.norm(dim=0, keepdim=True).clamp_min(1.0))
        E.mul_((1.25 / T / E.norm(dim=1, keepdim=True)).clamp_max(1.0))
        C.mul_(5.0 / C.norm(dim=1, keepdim=True))

for batch in (10, 100):
    for supervised in (False, True):
        params = make()
        nb = 2000 // batch
        for i in range(20):
            step(params, X[(i % nb) * batch:(i % nb + 1) * batch], Y[(i % nb) * batch:(i % nb + 1) * batch], supervised)
        best = 0.0
        for rep in range(3):
            iters, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 1.0:
                i = iters % nb
                step(params, X[i * batch:(i + 1) * batch], Y[i * batch:(i + 1) * batch], supervised)
                iters += 1
            best = max(best, iters * batch / (time.perf_counter() - t0))
        print(json.dumps({"bench": f"torch_drsae_b{batch}_{'sup' if supervised else 'unsup'}", "value": round(best, 1), "unit": "samples/s", "threads": threads}))

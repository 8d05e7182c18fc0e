"""OpenBLAS sgemm through numpy, same shapes and timing as `bench gemm`.

Run as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python3
scripts/numpy_sgemm.py [--big]` (those two variables, set on these machines, make OpenBLAS
use its AVX2 kernel). Many short repetitions, the best one reported: on a shared machine the
best is the least disturbed. `--big` adds the TopK SAE encoder shape 4096×768×16384.
"""
import json, sys, time
import numpy as np

rng = np.random.default_rng(0)
shapes = [(256, 784, 400), (256, 400, 400), (256, 400, 784)]
if "--big" in sys.argv:
    shapes.append((4096, 768, 16384))
for m, k, n in shapes:
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    c = a @ b
    flops = 2 * m * n * k
    t = time.perf_counter()
    np.matmul(a, b, out=c)
    once = max(time.perf_counter() - t, 1e-9)
    target, reps = (1.0, 5) if flops > 1e10 else (0.02, 40)
    it = max(1, int(target / once))
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(it):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t) / it)
    print(json.dumps({"bench": f"numpy_sgemm_{m}x{k}x{n}", "value": round(flops / best / 1e9, 2), "unit": "GFLOP/s"}))

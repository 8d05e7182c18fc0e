"""OpenBLAS sgemm through numpy, same shapes as `bench kernels`. Run with OPENBLAS_NUM_THREADS=2."""
import json, time, numpy as np
rng = np.random.default_rng(0)
for m, k, n in [(256, 784, 400), (256, 400, 400), (256, 400, 784)]:
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    c = a @ b
    best = 1e9
    for _ in range(5):
        it = 200
        t = time.perf_counter()
        for _ in range(it):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t) / it)
    print(json.dumps({"bench": f"numpy_sgemm_{m}x{k}x{n}", "value": round(2 * m * n * k / best / 1e9, 2), "unit": "GFLOP/s"}))

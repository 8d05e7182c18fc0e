"""Side-by-side: `drsae lasso` (the command line) against SPAMS `spams.lasso` (LARS, mode=2)
on the identical problem, in one run. Not a dependency of the crate.

    pip install spams-bin numpy
    cargo build --release -p drsae-cli
    python3 scripts/lasso_vs_spams.py ../shared/data/mnist [solver ...]

Dictionary: first 400 training images / 255, columns scaled to unit L2 norm.
Inputs: first 1000 test images / 255. lambda = 0.5. Objectives are recomputed here in f64
from each side's codes; the relative gap is to the better of the two.
"""
import gzip, json, os, subprocess, sys, tempfile, time
import numpy as np
import spams

data = sys.argv[1]
solvers = sys.argv[2:] or ["exact"]
K, N, LAM, REPS = 400, 1000, 0.5, 7

def idx(name):
    raw = gzip.open(os.path.join(data, name + ".gz")).read()
    nd = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * nd], dtype=">u4")
    return np.frombuffer(raw[4 + 4 * nd:], dtype=np.uint8).reshape(dims)

D = idx("train-images-idx3-ubyte")[:K].reshape(K, -1).astype(np.float64).T / 255.0
D /= np.linalg.norm(D, axis=0, keepdims=True)
X = idx("t10k-images-idx3-ubyte")[:N].reshape(N, -1).astype(np.float64).T / 255.0

def objective(A):  # A: K x N
    R = X - D @ A
    return 0.5 * np.sum(R * R) + LAM * np.sum(np.abs(A))

Xf, Df = np.asfortranarray(X), np.asfortranarray(D)
spams_ms = []
for _ in range(REPS):
    t = time.perf_counter()
    A = spams.lasso(Xf, D=Df, lambda1=LAM, mode=2, numThreads=2)
    spams_ms.append((time.perf_counter() - t) * 1e3)
A = A.toarray()
f_spams = objective(A)

ours = {}
for s in solvers:
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for _ in range(REPS):
            out = subprocess.run(["target/release/drsae", "--threads", "2", "lasso", "--data", data, "--atoms", str(K),
                                  "-n", str(N), "--lambda", str(LAM), "--solver", s, "--out", tmp],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            runs.append(json.loads(out)["ms"])
        Z = np.load(os.path.join(tmp, "codes.npy")).astype(np.float64).T  # N x K -> K x N
        ours[s] = (runs, objective(Z))

best = min([f_spams] + [v[1] for v in ours.values()])
print(json.dumps({"peer": "spams.lasso mode=2 numThreads=2", "ms_median": float(np.median(spams_ms)), "ms_min": min(spams_ms),
                  "objective": f_spams, "rel_gap": (f_spams - best) / best}))
for s, (runs, f) in ours.items():
    print(json.dumps({"peer": f"drsae {s}", "ms_median": float(np.median(runs)), "ms_min": min(runs), "objective": f,
                      "rel_gap": (f - best) / best, "speedup_vs_spams_median": float(np.median(spams_ms) / np.median(runs))}))

"""k nearest neighbours at scale: Winnow's exact blocked search against the usual libraries.

One run, one table. For each dataset (synthetic Gaussian, and "real": CIFAR-10's pixels
projected to 384 dims by a fixed Gaussian matrix, since no sentence embeddings are cached
offline; CIFAR-10 has 60k images, so "real" exists at 50k only) and each size N, every
method runs in its own child process, so that its peak RSS belongs to it alone:

- blocked: `scoring.scores.knn.knn(backend="numpy")` (exact; float32 matrix products in
  blocks);
- winnow-faiss: `knn(backend="faiss")`, what "auto" picks when faiss imports (faiss's flat
  index proposes the candidates, the same float64 refinement orders them: the same result);
- sklearn: `NearestNeighbors(algorithm="brute")` (exact);
- faiss-flat: `IndexFlatIP` on unit rows (exact);
- faiss-hnsw: `IndexHNSWFlat` (M=32, efConstruction=80, efSearch=64; approximate);
- pynndescent: `NNDescent` (approximate; the query rows' neighbours from its own graph).

Each method finds the k=10 cosine neighbours of Q query rows (a fixed sample of the N rows,
self excluded) among all N rows. Columns: build and query seconds, "full s" = build + query
scaled to all N rows as queries (query time is linear in Q), recall@10 against the blocked
search (exact), and the peak RSS above the RSS once the data is loaded. A last row runs the
blocked search alone at 1M x 384 (memory only: the goal is <= 4 GB).

Times are from a shared 2-core machine: only ratios within one run mean anything.

    python bench/knn.py [--sizes 50000,200000] [--queries 5000] [--million]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
CIFAR = Path("/work/shared/data/cifar10/train.parquet")
K = 10
DIM = 384
TIMEOUT_S = 150  # per method: the machine is shared; a stopped method says so
METHODS = ("blocked", "winnow-faiss", "sklearn", "faiss-flat", "faiss-hnsw", "pynndescent")

_CHILD = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from knn import load_data


def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


x = load_data({data!r}, {n})
if {method!r} in ("blocked", "winnow-faiss"):
    # Imported before the reset: the package's imports are no part of the search's memory.
    from scoring.scores.knn import knn
q_rows = np.random.default_rng(1).choice(len(x), size=min({q}, len(x)), replace=False)
q_rows.sort()
# Reset VmHWM to the current RSS: the peak measured next belongs to the method alone.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = peak_mb()
method = {method!r}
k = {k}
t0 = time.perf_counter()
if method in ("blocked", "winnow-faiss"):
    backend = "numpy" if method == "blocked" else "faiss"
    t1 = time.perf_counter()
    if len(q_rows) == len(x):
        idx, _ = knn(x, k=k, backend=backend)
    else:
        # Self excluded by asking one more neighbour and dropping the row itself.
        idx, _ = knn(x[q_rows], x, k=k + 1, backend=backend)
elif method == "sklearn":
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="cosine").fit(x)
    t1 = time.perf_counter()
    _, idx = nn.kneighbors(x[q_rows])
elif method.startswith("faiss"):
    import faiss
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    if method == "faiss-flat":
        index = faiss.IndexFlatIP(xn.shape[1])
    else:
        index = faiss.IndexHNSWFlat(xn.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    index.add(xn)
    if method == "faiss-hnsw":
        index.hnsw.efSearch = 64
    t1 = time.perf_counter()
    _, idx = index.search(xn[q_rows], k + 1)
elif method == "pynndescent":
    from pynndescent import NNDescent
    index = NNDescent(x, n_neighbors=30, metric="cosine", random_state=0, n_jobs=-1)
    t1 = time.perf_counter()
    idx = index.neighbor_graph[0][q_rows, : k + 1]
t2 = time.perf_counter()
idx = np.asarray(idx)
if idx.shape[1] > k:
    # Drop each query's own row (or the last column when a duplicate came first).
    own = idx == q_rows[:, None]
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(idx.shape[1]) < k)
    idx = idx[keep].reshape(len(q_rows), k)
np.save({save!r}, idx)
print("RESULT " + json.dumps({{"build_s": t1 - t0, "query_s": t2 - t1, "n_q": len(q_rows),
      "peak_mb": peak_mb() - base, "data_mb": x.nbytes / 2**20}}))
"""


def load_data(kind: str, n: int) -> np.ndarray:
    """(n, 384) float32 rows: Gaussian, or CIFAR-10 pixels under a fixed random projection."""
    if kind == "gaussian":
        return np.random.default_rng(0).standard_normal((n, DIM), dtype=np.float32)
    cached = OUT / "knn-cifar384.npy"
    if not cached.exists():
        import io

        import pyarrow.parquet as pq
        from PIL import Image

        cells = pq.read_table(CIFAR, columns=["img"]).column("img").to_pylist()
        pixels = np.stack(
            [np.asarray(Image.open(io.BytesIO(c["bytes"])), dtype=np.float32) for c in cells]
        ).reshape(len(cells), -1)
        pixels = pixels / 255 - pixels.mean() / 255
        proj = np.random.default_rng(0).standard_normal((pixels.shape[1], DIM)) / DIM**0.5
        OUT.mkdir(parents=True, exist_ok=True)
        np.save(cached, (pixels @ proj.astype(np.float32)).astype(np.float32))
    x = np.load(cached)
    if n > len(x):
        raise SystemExit(f"only {len(x)} CIFAR-10 rows: use a smaller size for 'cifar'")
    return x[:n]


def run_child(data: str, n: int, q: int, method: str, save: str) -> dict:
    code = _CHILD.format(
        root=str(ROOT), bench=str(ROOT / "bench"), data=data, n=n, q=q, method=method, k=K,
        save=save,
    )  # fmt: skip
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {TIMEOUT_S} s (stopped)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:60]}
    return json.loads(lines[-1][7:])


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact neighbours found, per query, averaged."""
    hits = [len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist(), strict=True)]
    return float(np.sum(hits) / exact.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--million", action="store_true", help="add the 1M x 384 memory row")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    header = (
        f"{'data':<9}{'N':>9}{'method':>13}{'build s':>9}{'query s':>9}{'full s':>9}"
        f"{'recall@10':>11}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for data in ("gaussian", "cifar"):
            for n in sizes:
                if data == "cifar" and n > 60000:
                    continue
                exact = None
                for method in methods:
                    save = f"{tmp}/{data}-{n}-{method}.npy"
                    r = run_child(data, n, args.queries, method, save)
                    if "error" in r:
                        print(f"{data:<9}{n:>9}{method:>13}  error: {r['error']}", flush=True)
                        continue
                    idx = np.load(save)
                    if method == "blocked":
                        exact = idx
                    rec = recall(idx, exact) if exact is not None else float("nan")
                    full = r["build_s"] + r["query_s"] * n / r["n_q"]
                    print(
                        f"{data:<9}{n:>9}{method:>13}{r['build_s']:>9.2f}{r['query_s']:>9.2f}"
                        f"{full:>9.1f}{rec:>11.4f}{r['peak_mb']:>9.0f}",
                        flush=True,
                    )
        if args.million:
            # Memory only: 1000 queries against 1M rows; data itself is 1.5 GB.
            r = run_child("gaussian", 1_000_000, 1000, "blocked", f"{tmp}/million.npy")  # numpy
            if "error" in r:
                print(f"gaussian   1000000      blocked  error: {r['error']}")
            else:
                print(
                    f"{'gaussian':<9}{1_000_000:>9}{'blocked':>13}{r['build_s']:>9.2f}"
                    f"{r['query_s']:>9.2f}{'':>9}{'':>11}{r['peak_mb']:>9.0f}"
                    f"  (+ {r['data_mb']:.0f} MB data)"
                )
    print(
        "\nrecall@10 is against the blocked search (exact). 'full s' extrapolates the query "
        "time to all N rows as queries. Shared 2-core machine: compare ratios, not seconds."
    )


if __name__ == "__main__":
    main()

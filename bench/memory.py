"""How time and memory grow with the number of examples: scoring, gradient scores, pages.

For each size N (default 50k, 100k, 200k) a synthetic dataset of 8x8 class patterns with
pixel noise (as bench/page_render.py) is scored by the real CLI in a child process (mlp,
2 runs x 3 epochs, dynamics and gradient scores, no cross-fitting), and three figures are
taken, each in its own child so that peak RSS belongs to that step alone:

- scoring: wall time (training, gradient scores, score computation, cache writes, from
  summary.json) and the child's peak RSS;
- gradient scores alone: peak RSS above the RSS once the inputs are loaded, for GraNd (all
  weights), TracIn (3 checkpoints) and VoG on all N examples: chunked, so it should stay flat;
- a page's read: `views.load_run` (scores + predictions) as the pages do it, time and RSS.

The table ends with each figure's growth from the smallest to the largest N (goal: about
N_max / N_min for times, about 1 for the gradient scores' extra memory).

    python bench/memory.py [--sizes 50000,100000,200000] [--steps score,grads,page]

`--cifar DIR` instead measures loading and decoding CIFAR-10 (DIR/train.parquet, 50,000
images, with DIR/test.parquet, 10,000) through `scoring.data.load`, in full and with
`--limit 200`: wall time and the child's peak RSS (imports included; the RSS once the
imports are done is shown beside it), each in a fresh child and a fresh datasets cache.

    python bench/memory.py --cifar /work/shared/data/cifar10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
CACHE = OUT / "memory-cache"
SCORES = "el2n,aum,forgetting,loss,confidence,grand,tracin,vog"

# Runs `code` in a fresh interpreter and prints a JSON line with its results and peak RSS.
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
out = {{}}


def peak_mb():
    # VmHWM: this process's peak RSS since start, or since the last reset_peak().
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


def reset_peak():
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux): the peak measured
    # next belongs to the step alone, not to the data loading before it. Returns that RSS.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak_mb()


t0 = time.perf_counter()
{code}
out["wall_s"] = time.perf_counter() - t0
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""

SCORE = """
from scoring.__main__ import build_parser, config_from_args
from scoring.training.pipeline import score
args = build_parser().parse_args(
    ["score", "--dataset", {data!r}, "--test-fraction", "0.1", "--recipe", "mlp", "--runs",
     "2", "--epochs", "3", "--scores", {scores!r}, "--checkpoints", "3"]
)
out["run"] = str(score(config_from_args(args), {cache!r}, show_progress=False))
"""

GRADS = """
import resource, torch
from scoring import data
from scoring.config import DataConfig
from scoring.training.grads import input_grad_variance, sq_grad_norms, tracin_self_influence
from scoring.training.models import build_model
torch.set_num_threads(1)
ds = data.load(DataConfig(source={data!r}, test_fraction=0.1))
x, y = torch.from_numpy(ds.train.inputs), torch.from_numpy(ds.train.labels)
torch.manual_seed(0)
models = [build_model("mlp", tuple(x.shape[1:]), 10).eval() for _ in range(3)]
del ds
base = reset_peak()
t = time.perf_counter()
sq_grad_norms(models[0], x, y)
tracin_self_influence(models, [1e-3] * 3, x, y)
input_grad_variance(models, x, y)
out["grad_s"] = time.perf_counter() - t
out["grad_extra_mb"] = peak_mb() - base
out["n"] = int(x.shape[0])
"""

PAGE = """
import resource
from scoring.read.views import load_run
base = reset_peak()
t = time.perf_counter()
view = load_run({run!r})
out["read_s"] = time.perf_counter() - t
out["read_extra_mb"] = peak_mb() - base
out["rows"] = len(view.table)
"""

DECODE = """
import tempfile
import numpy as np
from scoring import data
from scoring.config import DataConfig
import datasets, PIL.Image  # imported before the baseline: not the decode's memory
if {uint8!r}:
    # What holding uint8 end to end would give: not yet what a run does (training takes
    # float32 inputs), so the bench patches the decoder that `load` calls.
    from functools import partial
    from scoring.data import decode, sources
    sources.read_images = partial(decode.read_images, as_uint8=True)
out["import_mb"] = peak_mb()
t = time.perf_counter()
with tempfile.TemporaryDirectory() as hf:
    ds = data.load(DataConfig(source={train!r}, test={test!r}, limit={limit!r}), hf_cache_dir=hf)
out["load_s"] = time.perf_counter() - t
out["n_train"], out["n_test"] = len(ds.train.labels), len(ds.test.labels)
out["dtype"] = str(ds.train.inputs.dtype)
out["inputs_mb"] = (ds.train.inputs.nbytes + ds.test.inputs.nbytes) / 2**20
"""


def cifar(folder: Path) -> None:
    """Loading + decoding CIFAR-10: full, and --limit 200 (the test file stays whole)."""
    print(
        "| run | train / test rows | dtype | inputs MB | load+decode s | peak RSS MB "
        "| after imports MB |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for limit, uint8 in ((None, False), (200, False), (None, True)):
        code = DECODE.format(
            train=str(folder / "train.parquet"),
            test=str(folder / "test.parquet"),
            limit=limit,
            uint8=uint8,
        )
        r = _child(code)
        print(
            f"| {'full' if limit is None else f'--limit {limit}'}{' (uint8)' if uint8 else ''} "
            f"| {r['n_train']:,} / "
            f"{r['n_test']:,} | {r['dtype']} | {r['inputs_mb']:.0f} | {r['load_s']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | {r['import_mb']:.0f} |",
            flush=True,
        )


def _child(code: str) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT), code=code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def measure(n: int, steps: set[str], old: dict) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from page_render import synthetic_parquet

    data = str(synthetic_parquet(-(-n * 10 // 9)))  # 10% carved out as the test split
    row = dict(old)
    if "score" in steps or "run" not in old:
        scored = _child(SCORE.format(data=data, scores=SCORES, cache=str(CACHE)))
        row.update(score_wall_s=scored["wall_s"], score_peak_mb=scored["peak_rss_mb"])
        row["run"] = scored["run"]
    sys.path.insert(0, str(ROOT))
    from scoring.store import RunDir  # light (numpy, pandas): the parent is not measured

    run = Path(row["run"])
    summary = RunDir(run).read_summary()
    if "grads" in steps:
        grads = _child(GRADS.format(data=data))
        row.update(grad_alone_s=grads["grad_s"], grad_extra_mb=grads["grad_extra_mb"])
    if "page" in steps:
        page = _child(PAGE.format(run=str(run)))
        row.update(page_read_s=page["read_s"], page_read_extra_mb=page["read_extra_mb"])
    t = summary["timings_s"]
    return {
        **row,
        "n": summary["n_train"],
        "training_s": summary.get("training_s"),
        "gradient_scores_s": summary.get("gradient_scores_s"),
        "scores_s": t.get("scores"),
        "write_s": t.get("write"),
        "run_mb": sum(f.stat().st_size for f in run.rglob("*") if f.is_file()) / 2**20,
    }


COLUMNS = [
    ("n", "N", "{:,}"),
    ("score_wall_s", "scoring wall s", "{:.1f}"),
    ("training_s", "training s", "{:.1f}"),
    ("gradient_scores_s", "gradient scores s", "{:.1f}"),
    ("scores_s", "score computation s", "{:.2f}"),
    ("write_s", "cache write s", "{:.2f}"),
    ("score_peak_mb", "scoring peak RSS MB", "{:.0f}"),
    ("grad_extra_mb", "gradient scores extra peak MB", "{:.0f}"),
    ("page_read_s", "page read s", "{:.2f}"),
    ("page_read_extra_mb", "page read extra MB", "{:.0f}"),
    ("run_mb", "run on disk MB", "{:.0f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000,200000")
    parser.add_argument(
        "--steps",
        default="score,grads,page",
        help="which measurements to (re)take; the others come from bench/out/memory.json",
    )
    parser.add_argument("--cifar", type=Path, help="folder with CIFAR-10 train/test.parquet")
    args = parser.parse_args()
    if args.cifar:
        cifar(args.cifar)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    steps = set(args.steps.split(","))
    store = OUT / "memory.json"
    saved = json.loads(store.read_text()) if store.exists() else {}
    t0 = time.perf_counter()
    rows = []
    for n in sizes:
        rows.append(measure(n, steps, saved.get(str(n), {})))
        saved[str(n)] = rows[-1]
        OUT.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(saved, indent=1))
        print(f"N={n:,} measured ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    lines = [
        "| " + " | ".join(label for _, label, _ in COLUMNS) + " |",
        "|" + "---:|" * len(COLUMNS),
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[k]) for k, _, fmt in COLUMNS) + " |")
    first, last = rows[0], rows[-1]
    growth = [f"x{last['n'] / first['n']:.1f}"]
    for key, _, _ in COLUMNS[1:]:
        a, b = first[key], last[key]
        growth.append(f"x{b / a:.2f}" if a and b is not None else "–")
    lines.append("| growth " + " | ".join(growth) + " |")
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "memory.md").write_text(table + "\n")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

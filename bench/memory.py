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

`--cifar DIR` instead measures a CIFAR-10 run's data path (DIR/train.parquet, 50,000
images, with DIR/test.parquet, 10,000): `prepare` (load and decode), the model inputs
(`tensor_inputs`), 20 training steps and one eval pass over all 50,000 training images
(the pass EL2N makes), with the `mlp` recipe so the model stays small beside the data.
Each row is a fresh child with a fresh `datasets` cache; "before" is measured in the same
invocation by re-running the old path on a flag: images decoded straight to float32 and
held whole as float32 tensors (`read_images(as_float=True)`, which the models take as is).
"after" holds uint8 and converts per batch. A third row decodes through `datasets`'
`map(num_proc=2)` instead of the streamed decoder (workers' peaks shown apart: they are
separate processes). A `--limit 200` row shows that only the kept rows are decoded.

    python bench/memory.py --cifar /work/shared/data/cifar10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
CACHE = OUT / "memory-cache"
SCORES = "el2n,aum,forgetting,loss,confidence,grand,tracin,vog"

# Runs `code` in a fresh interpreter and prints a JSON line with its results and peak RSS.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
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
from scoring.cli.main import build_parser
from scoring.cli.score import config_from_args
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
from scoring.training.pixels import to_inputs
torch.set_num_threads(1)
ds = data.load(DataConfig(source={data!r}, test_fraction=0.1))
# uint8 Pixels, as runs hold them (float32 per chunk)
x, y = to_inputs(ds.train.inputs, ds.pixel_divisor), torch.from_numpy(ds.train.labels)
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

DATA_PATH = """
import tempfile
import numpy as np
import torch
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from scoring.data import decode, sources
from scoring.training.loop import fit, predict, seed_everything
from scoring.training.pixels import Pixels
from scoring.training.progress import Progress
from scoring.training.steps import prepare, tensor_inputs
import datasets, PIL.Image  # imported before the baseline: not the data's memory
from functools import partial
if {mode!r} == "float32":  # the old path: float32 decoded and held whole
    sources.read_images = partial(decode.read_images, as_float=True)
elif {mode!r} == "map":
    sys.path.insert(0, {bench!r})
    from memory import map_read_images
    sources.read_images = partial(map_read_images, num_proc=2)
torch.set_num_threads(2)
out["import_mb"] = peak_mb()
cfg = ScoreConfig(
    data=DataConfig(source={train!r}, test={test!r}, limit={limit!r}),
    train=TrainConfig(recipe="mlp", runs=1, epochs=1),
    scores=("loss",),
)
with tempfile.TemporaryDirectory() as cache:
    t = time.perf_counter()
    prep = prepare(cfg, cache)
    out["load_s"] = time.perf_counter() - t
    ds = prep.dataset
    out["n_train"], out["n_test"] = len(ds.train.labels), len(ds.test.labels)
    out["dtype"] = str(ds.train.inputs.dtype)
    out["inputs_mb"] = (ds.train.inputs.nbytes + ds.test.inputs.nbytes) / 2**20
    out["load_peak_mb"] = peak_mb()
    t = time.perf_counter()
    x, x_test = tensor_inputs(prep, Progress(Path(cache) / "p", 1, enabled=False))
    out["held"] = "uint8 Pixels" if isinstance(x, Pixels) else str(x.dtype).replace("torch.", "")
    gen = seed_everything(0)
    model = prep.spec.new_model(x)
    labels = torch.from_numpy(prep.labels)
    fit(model, x, labels, prep.recipe, gen=gen, device=prep.device, record=False, steps=20)
    predict(model, x, device=prep.device)
    out["train_s"] = time.perf_counter() - t
out["children_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
"""

LOAD_ONLY = """
import tempfile
from functools import partial
from scoring import data
from scoring.config import DataConfig
from scoring.data import decode, sources
import datasets, PIL.Image  # imported before the baseline: not the decode's memory
if {mode!r} == "float32":
    sources.read_images = partial(decode.read_images, as_float=True)
out["import_mb"] = peak_mb()
t = time.perf_counter()
with tempfile.TemporaryDirectory() as hf:
    ds = data.load(DataConfig(source={train!r}, test={test!r}, limit={limit!r}), hf_cache_dir=hf)
out["load_s"] = time.perf_counter() - t
out["n_train"], out["n_test"] = len(ds.train.labels), len(ds.test.labels)
out["held"] = str(ds.train.inputs.dtype)
out["inputs_mb"] = (ds.train.inputs.nbytes + ds.test.inputs.nbytes) / 2**20
"""

PREVIOUS_PEAK_MB = 1477  # last session's full CIFAR-10 load, before decoding streamed


def map_read_images(
    col: str, parts: list, num_proc: int = 2, as_float: bool = False
) -> list[np.ndarray]:
    """`decode.read_images` through `datasets`' `map(num_proc=...)`, for the comparison.

    Each worker decodes batches of PNGs to uint8 bytes, `datasets` writes them to an Arrow
    cache file, and the parent copies them into one (N, C, H, W) array. CIFAR-10 only
    (one mode and size, RGB 32x32): the library's decoder checks what this one assumes.
    """
    import datasets
    from PIL import Image

    def decode_batch(batch: dict) -> dict:
        return {
            "pixels": [
                np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))
                .transpose(2, 0, 1)
                .tobytes()
                for cell in batch[col]
            ]
        }

    out = []
    for table, rows, _where in parts:
        sub = table.select(rows).cast_column(col, datasets.Image(decode=False))
        mapped = sub.map(
            decode_batch,
            batched=True,
            batch_size=1000,
            num_proc=num_proc,
            remove_columns=sub.column_names,
            features=datasets.Features({"pixels": datasets.Value("binary")}),
        )
        array = np.empty((len(rows), 3, 32, 32), dtype=np.uint8)
        done = 0
        for chunk in mapped.data.column("pixels").chunks:  # binary: offsets, then values
            offsets = np.frombuffer(chunk.buffers()[1], np.int32)[chunk.offset :][: len(chunk) + 1]
            values = np.frombuffer(chunk.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
            array[done : done + len(chunk)] = values.reshape(len(chunk), 3, 32, 32)
            done += len(chunk)
        out.append(array)
    return out


def cifar(folder: Path) -> None:
    """CIFAR-10's data path: float32 (before), uint8 (after), uint8 via datasets.map."""
    rows = [
        # (label, template, mode, limit): load + decode alone, as last session measured it
        ("load+decode only: float32 (old path)", LOAD_ONLY, "float32", None),
        ("load+decode only: uint8", LOAD_ONLY, "uint8", None),
        # the whole data path of a run: torch and the training code imported
        ("run's data path: float32 held whole (old path)", DATA_PATH, "float32", None),
        ("run's data path: uint8, float32 per batch", DATA_PATH, "uint8", None),
        ("run's data path, decoded by datasets map(num_proc=2)", DATA_PATH, "map", None),
        ("run's data path, --limit 200", DATA_PATH, "uint8", 200),
    ]
    print(
        "| path | train / test rows | inputs held | inputs MB | load+decode s | 20 steps + "
        "eval pass s | peak RSS MB | after imports MB | peak above imports MB "
        "| vs float32 (this run) | vs 1,477 MB (last session) |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    base: dict[str, float] = {}
    for label, template, mode, limit in rows:
        code = template.format(
            train=str(folder / "train.parquet"),
            test=str(folder / "test.parquet"),
            limit=limit,
            mode=mode,
            bench=str(ROOT / "bench"),
        )
        r = _child(code)
        peak, above = r["peak_rss_mb"], r["peak_rss_mb"] - r["import_mb"]
        base.setdefault(template, peak)
        workers = (
            f" (+ each worker's own, largest: {r['children_peak_mb']:.0f})" if mode == "map" else ""
        )
        train_s = f"{r['train_s']:.1f}" if "train_s" in r else "–"
        print(
            f"| {label} | {r['n_train']:,} / {r['n_test']:,} | {r['held']} | "
            f"{r['inputs_mb']:.0f} | {r['load_s']:.1f} | {train_s} | {peak:.0f}{workers} | "
            f"{r['import_mb']:.0f} | {above:.0f} | {peak / base[template]:.2f}x | "
            f"{peak / PREVIOUS_PEAK_MB:.2f}x |",
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

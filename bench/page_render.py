"""Page render time on a 50,000-example run (goal: <= 1 s per page after the cache read).

Builds (once, under bench/out/) a synthetic 50k-image dataset of 8x8 class patterns with
pixel noise, scores it through the real pipeline (mlp, 2 runs x 3 epochs, every score) and
computes its UMAP map, then renders every page with Streamlit's AppTest: the first render
includes reading the run from disk, the next ones hit `st.cache_data`; the median of the
warm renders is the figure that the goal is about.

    python bench/page_render.py [--n 50000] [--repeats 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
PAGES = ["scores", "correlations", "examples", "mislabeled", "map"]


def synthetic_parquet(n: int) -> Path:
    """n 8x8 grayscale PNGs: 10 fixed random class patterns plus noise; label column."""
    from PIL import Image

    path = OUT / f"synth{n}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    patterns = rng.uniform(0, 255, size=(10, 8, 8))
    labels = rng.integers(0, 10, size=n)
    pixels = np.clip(patterns[labels] + rng.normal(0, 60, size=(n, 8, 8)), 0, 255)
    images = []
    for img in pixels.astype(np.uint8):
        buf = io.BytesIO()
        Image.fromarray(img, mode="L").save(buf, format="PNG")
        images.append({"bytes": buf.getvalue(), "path": None})
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image": images, "label": labels}).to_parquet(path)
    return path


def build_run(n: int) -> Path:
    from scoring import store
    from scoring.config import DataConfig, ScoreConfig, TrainConfig
    from scoring.read.maps import compute_map
    from scoring.training.pipeline import score

    # 10% is carved out for testing, so make n / 0.9 rows to keep n training examples.
    cfg = ScoreConfig(
        data=DataConfig(source=str(synthetic_parquet(-(-n * 10 // 9))), test_fraction=0.1),
        train=TrainConfig(recipe="mlp", runs=2, epochs=3),
        cv_folds=2,
    )
    t0 = time.perf_counter()
    run = score(cfg, OUT / "cache", show_progress=True)
    if not store.RunDir(run).map_file.exists():
        compute_map(run)
    print(f"run ready in {time.perf_counter() - t0:.1f} s: {run}", file=sys.stderr)
    return run


def render_times(
    run: Path, repeats: int, cache: Path = OUT / "cache"
) -> list[tuple[str, float, float]]:
    """Each page's (name, first draw s, warm median s) on `run`, a run in `cache`."""
    from streamlit.testing.v1 import AppTest

    from app_pages._shared import UIState

    os.environ["WINNOW_CACHE_DIR"] = str(cache)
    rows = []
    for page in PAGES:
        times = []
        for _ in range(repeats + 1):
            at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=120)
            at.session_state["ui"] = UIState(run=str(run))
            t0 = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].message}")
        rows.append((page, times[0], statistics.median(times[1:])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from scoring import store

    run = build_run(args.n)
    n_train = len(store.RunDir(run).read_scores(columns=["id"]))
    print(f"{n_train:,} training examples; times in seconds")
    print(f"{'page':<14} {'first (read)':>12} {'warm median':>12}")
    for page, first, warm in render_times(run, args.repeats):
        print(f"{page:<14} {first:12.2f} {warm:12.2f}")


if __name__ == "__main__":
    main()

"""A small image source with three known annotators, built by the tests that need one.

Digits 0..4 (scikit-learn's 8x8 images, as PNG bytes in a parquet file, like the CIFAR-10N
file) with the true class and three annotators whose quality is known by construction:
`right` always gives the true class, `mostly` gives it 80% of the time (a random other
class otherwise) and skips 15% of the rows, `random` picks a class uniformly. Labels are
class names ("zero", ...), so vote splits read as words.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

NAMES = ["zero", "one", "two", "three", "four"]
ANNOTATORS = ("right", "mostly", "random")


def votes_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """`truth` and the three annotators' votes (names; None = no vote), `n` rows."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    bunch = load_digits()
    rows = np.flatnonzero(bunch.target < len(NAMES))[:n]
    truth = bunch.target[rows]  # (n,)
    k = len(NAMES)
    other = (truth + rng.integers(1, k, size=n)) % k  # a wrong class, uniformly
    mostly = np.where(rng.random(n) < 0.8, truth, other)
    random = rng.integers(0, k, size=n)
    frame = pd.DataFrame(
        {
            "image": [_png(bunch.images[r]) for r in rows],
            "truth": truth,
            "right": [NAMES[v] for v in truth],
            "mostly": [NAMES[v] for v in mostly],
            "random": [NAMES[v] for v in random],
        }
    )
    frame.loc[rng.random(n) < 0.15, "mostly"] = None  # missing votes are allowed
    return frame


def _png(pixels: np.ndarray) -> dict:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.rint(pixels * (255 / 16)).astype(np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def write_source(folder: Path, n: int = 300, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """`folder/annotated.parquet` (image, truth, right, mostly, random) and its table."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = votes_table(n, seed)
    path = folder / "annotated.parquet"
    frame.to_parquet(path)
    return path, frame


def write_long(folder: Path, frame: pd.DataFrame, name: str = "votes.csv") -> Path:
    """The same votes as a long `id, annotator, label` CSV (id = row index)."""
    long = frame.reset_index(names="id").melt(
        id_vars="id", value_vars=list(ANNOTATORS), var_name="annotator", value_name="label"
    )
    long = long.dropna(subset=["label"]).sort_values(["id", "annotator"])
    path = folder / name
    long.to_csv(path, index=False)
    return path


def score_annotated(cache: Path, source: Path, **data) -> Path:
    """A tiny scored run of `source` with the three annotators (mlp, 2 runs x 3 epochs)."""
    from scoring.config import DataConfig, ScoreConfig, TrainConfig
    from scoring.training.pipeline import score

    data = {"annotator_cols": ANNOTATORS, **data}
    config = ScoreConfig(
        data=DataConfig(source=str(source), **data),
        train=TrainConfig(recipe="mlp", runs=2, epochs=3),
        cv_folds=2,
        scores=(
            "cl_quality",
            "cl_issue",
            "consensus_label",
            "consensus_quality",
            "annotator_agreement",
        ),
    )
    return score(config, cache, show_progress=False)

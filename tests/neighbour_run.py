"""A tiny image run with duplicates and leaks injected by hand, for the neighbourhood tests.

scikit-learn's 8x8 digits written as PNGs into a train and a separate test parquet file:
150 training images and 50 test images, then copies appended to the training file:

- row 3 copied once, row 10 twice (exact copies: two groups, 3 redundant rows);
- row 20 copied with another label (an exact copy whose labels disagree);
- test images 0, 1 and 2 copied into training (three leaks, exact copies of test rows);
- one image of uniform noise (an outlier), last.

Rows keep their file order, so the run's ids are the row numbers (0..156 for training). The
injected rows are listed in `INJECTED`; tests check what the run found against them and
against its own `dup_group` / `leak_of` columns.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST = 150, 50
COPIES = [(3, None), (10, None), (10, None), (20, 7)]  # (train row copied, new label or same)
LEAKED = [0, 1, 2]  # test rows copied into training
SCORES = ("el2n", "cl_quality", "near_dup", "outlier", "leakage")


def injected() -> dict[str, list]:
    """Which training rows are copies of which (row numbers = ids)."""
    copies = [(src, N_TRAIN + k) for k, (src, _) in enumerate(COPIES)]
    start = N_TRAIN + len(COPIES)
    leaks = [(start + k, t) for k, t in enumerate(LEAKED)]  # (train row, test row)
    return {"copies": copies, "leaks": leaks, "outlier": start + len(LEAKED)}


def private_copy(cache: Path, tmp_path: Path) -> Path:
    """A copy of the built cache a test may write decisions to; returns its run folder.

    Its status lists no file manifest (as `app_cache`): a test that edits files in place
    does not read as damage.
    """
    import shutil

    from scoring import store

    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (run,) = list(store.iter_run_dirs(copy))
    status = store.read_status(run)
    status.pop("files", None)
    store.write_json(store.RunDir(run).status_file, status)
    return run


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as the PNGs hold them: pixels (1797, 8, 8) uint8 0..240, labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images * 15).astype(np.uint8), data.target.astype(int)


def source_test_rows() -> tuple[np.ndarray, np.ndarray]:
    """The test file's pixels (N_TEST, 8, 8) and labels (N_TEST,), in file order (= ids)."""
    pixels, labels = digits()
    return pixels[N_TRAIN : N_TRAIN + N_TEST], labels[N_TRAIN : N_TRAIN + N_TEST]


def write_sources(folder: Path) -> tuple[Path, Path]:
    """train.parquet and test.parquet (columns image, label) with the copies injected."""
    import datasets

    pixels, labels = digits()
    train_px, train_y = list(pixels[:N_TRAIN]), list(labels[:N_TRAIN])
    test_px = pixels[N_TRAIN : N_TRAIN + N_TEST]
    test_y = labels[N_TRAIN : N_TRAIN + N_TEST]
    for src, new_label in COPIES:
        train_px.append(pixels[src])
        train_y.append(int(labels[src] if new_label is None else new_label))
    for t in LEAKED:
        train_px.append(test_px[t])
        train_y.append(int(test_y[t]))
    train_px.append(np.random.default_rng(0).integers(0, 241, (8, 8)).astype(np.uint8))
    train_y.append(0)
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=[str(c) for c in range(10)]),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, px, y in (("train", train_px, train_y), ("test", test_px, test_y)):
        table = {
            "image": [{"bytes": _png(p), "path": None} for p in px],
            "label": [int(v) for v in y],
        }
        path = folder / f"{name}.parquet"
        datasets.Dataset.from_dict(table, features=features).to_parquet(str(path))
        paths.append(path)
    return paths[0], paths[1]


def build(cache: Path, sources: Path) -> Path:
    """Score the injected run into `cache`; returns its run folder."""
    from scoring.config import DataConfig, ScoreConfig, TrainConfig
    from scoring.training.pipeline import score

    train, test = write_sources(sources)
    config = ScoreConfig(
        data=DataConfig(source=str(train), test=str(test)),
        train=TrainConfig(runs=2, epochs=3),
        cv_folds=2,
        scores=SCORES,
    )
    return score(config, cache, show_progress=False)

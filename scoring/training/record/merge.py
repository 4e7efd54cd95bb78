"""Merging the ranks' flushes by id: what rank 0 reads of every rank's scratch folder.

Each rank recorded the rows (run order) it trained on; the merge puts every flushed row at
its place. An id logged by several ranks in one epoch (`DistributedSampler` pads a shard by
repeating ids) keeps the lowest rank's values: folders are read highest rank first (by rank
number, `scratch.rank_records`), so rank 0 writes last. One process is the case of one
folder (an id logged twice there keeps its last logging: the epoch buffer's overwrite).

Also the rank's record, `rank.json` (`write_rank_record`, `read_ranks`): which runs, epochs
and extras the rank logged; the ranks must agree on the runs and epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring import store
from scoring.errors import InputError
from scoring.training.record.epochs import STATS
from scoring.training.record.scratch import RANK_FILE, end_file, epoch_file, rank_records

# Per run: held-out logits given, penultimate features given, those features stated
# label-free by the user (`end_run(features_label_free=True)`).
EXTRAS = ("test", "features", "features_free")


@dataclass(frozen=True)
class Ranks:
    """What the ranks of a recording logged, checked to agree.

    Attributes
    ----------
    folders : list of Path
        Each rank's scratch folder, rank 0 first.
    epochs : list of int
        Epochs of each run (the same for every run); empty with out-of-fold probabilities
        only.
    extras : list of dict of str to bool
        Per run, `EXTRAS` given by any rank.
    has_oof : bool
        Some rank logged out-of-fold probabilities.
    """

    folders: list[Path]
    epochs: list[int]
    extras: list[dict[str, bool]]
    has_oof: bool

    @property
    def n_epochs(self) -> int:
        """T, the epochs of every run; 0 without runs."""
        return self.epochs[0] if self.epochs else 0


def write_rank_record(
    folder: Path, epochs: list[int], extras: list[dict[str, bool]], oof: bool
) -> None:
    """A rank's `rank.json`, written after its last flush: its presence means "done"."""
    store.write_json(folder / RANK_FILE, {"epochs": epochs, "extras": extras, "oof": oof})


def read_ranks(recording: Path) -> Ranks:
    """Every rank's record of a recording, checked: the same runs and epochs, something
    recorded, every run as long."""
    files = rank_records(recording)
    records = [store.read_json(f) for f in files]
    epochs = records[0]["epochs"]
    if any(r["epochs"] != epochs for r in records):
        raise InputError(
            "finish: the ranks recorded different runs or epochs "
            f"({[r['epochs'] for r in records]}); every rank logs every epoch"
        )
    has_oof = any(r["oof"] for r in records)
    if not epochs and not has_oof:
        raise InputError("finish: nothing was recorded; log epochs and call end_run()")
    if len(set(epochs)) > 1:
        raise InputError(f"finish: every run needs the same number of epochs, got {epochs}")
    extras = [_run_extras([r["extras"][i] for r in records]) for i in range(len(epochs))]
    return Ranks([f.parent for f in files], epochs, extras, has_oof)


def _run_extras(given: list[dict[str, bool]]) -> dict[str, bool]:
    """One run's `EXTRAS` over the ranks: given by any rank; the features label-free only
    when every rank that gave features said so (one rank's statement is not the others')."""
    out = {k: any(g.get(k, False) for g in given) for k in EXTRAS}
    out["features_free"] = out["features"] and all(
        g.get("features_free", False) for g in given if g["features"]
    )
    return out


def merge_rows(
    folders: list[Path], file: str, n: int, k: int, *, key: str = "probs"
) -> np.ndarray | None:
    """(N, K) rows keyed by `pos` over the ranks' `file`; None when absent or incomplete."""
    out = None
    seen = np.zeros(n, dtype=bool)
    for folder in reversed(folders):  # lowest rank last: its values win
        path = folder / file
        if not path.exists():
            continue
        got = store.load_arrays(path)
        if out is None:
            out = np.zeros((n, k), dtype=got[key].dtype)
        out[got["pos"]] = got[key]
        seen[got["pos"]] = True
    return out if out is not None and seen.all() else None


def count_rows(folders: list[Path], file: str, n: int) -> int | None:
    """How many of the N rows the ranks' `file` covers together; None when no rank wrote it."""
    seen, found = np.zeros(n, dtype=bool), False
    for folder in folders:
        if (folder / file).exists():
            seen[store.load_arrays(folder / file)["pos"]] = True
            found = True
    return int(seen.sum()) if found else None


def merge_epoch_stats(folders: list[Path], r: int, t: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Run r's epoch t (1-based) statistics over the ranks.

    Returns
    -------
    stats : ndarray of shape (4, n_examples), float32
        Rows `epochs.STATS`; zero where no rank logged the row.
    count : ndarray of shape (n_examples,), int64
        How many ranks logged each row.
    """
    row = np.zeros((len(STATS), n), dtype=np.float32)
    count = np.zeros(n, dtype=np.int64)
    for folder in reversed(folders):  # lowest rank last: its values win
        got = store.load_arrays(folder / epoch_file(r, t))
        row[:, got["pos"]] = got["stats"]
        count[got["pos"]] += 1
    return row, count


def merge_features(folders: list[Path], r: int, n: int) -> np.ndarray | None:
    """Run r's penultimate features (N, D) float32, merged over the ranks by id."""
    out, seen = None, np.zeros(n, dtype=bool)
    for folder in reversed(folders):
        got = store.load_arrays(folder / end_file(r))
        if "features" not in got:
            continue
        if out is None:
            out = np.zeros((n, got["features"].shape[1]), dtype=np.float32)
        elif got["features"].shape[1] != out.shape[1]:
            raise InputError("features: the ranks gave features of different widths")
        out[got["feature_pos"]] = got["features"]
        seen[got["feature_pos"]] = True
    if out is None:
        return None
    if not seen.all():
        raise InputError(
            f"features: given for {int(seen.sum()):,} of {n:,} examples; give every example's"
        )
    return out


def merge_test(folders: list[Path], n_runs: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The held-out ids (M,) sorted and their labels (M,), the union over ranks and runs."""
    labels: dict[int, int] = {}
    for folder in folders:
        for r in range(n_runs):
            got = store.load_arrays(folder / end_file(r))
            if "test_ids" not in got:
                continue
            for i, y in zip(got["test_ids"].tolist(), got["test_labels"].tolist(), strict=True):
                if labels.setdefault(i, y) != y:
                    raise InputError(
                        f"test_labels: test id {i} was given two labels ({labels[i]}, {y})"
                    )
    if not labels:
        return None
    ids = np.array(sorted(labels), dtype=np.int64)
    return ids, np.array([labels[i] for i in ids.tolist()], dtype=np.int64)


def merge_test_probs(
    folders: list[Path], r: int, test_ids: np.ndarray, k: int
) -> np.ndarray | None:
    """Run r's held-out probabilities (M, K) in `test_ids` order; None when not given."""
    if test_ids.size == 0:
        return None
    out = np.zeros((test_ids.shape[0], k), dtype=np.float32)
    seen = np.zeros(test_ids.shape[0], dtype=bool)
    found = False
    for folder in reversed(folders):
        got = store.load_arrays(folder / end_file(r))
        if "test_probs" not in got:
            continue
        found = True
        at = np.searchsorted(test_ids, got["test_ids"])
        out[at] = got["test_probs"]
        seen[at] = True
    if not found:
        return None
    if not seen.all():
        raise InputError(
            f"test_logits: run {r + 1} gave {int(seen.sum()):,} of the {seen.size:,} held-out "
            "rows the runs name; give every run the same held-out rows"
        )
    return out


def merge_test_features(folders: list[Path], test_ids: np.ndarray) -> np.ndarray | None:
    """Run 0's held-out features (M, D) float32 in `test_ids` order; None when not given."""
    out = None
    for folder in reversed(folders):
        got = store.load_arrays(folder / end_file(0))
        if "test_features" not in got:
            continue
        if out is None:
            out = np.zeros((test_ids.shape[0], got["test_features"].shape[1]), np.float32)
        out[np.searchsorted(test_ids, got["test_ids"])] = got["test_features"]
    return out

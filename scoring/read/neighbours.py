"""Duplicates, train/test leaks, outliers and class balance of a finished run, as tables.

What the Duplicates & outliers page shows and what the planner's `drop_duplicates` /
`drop_leaks` switches and the `dedup` rule drop, computed once here from the run's own
columns (written by `scoring.training.results` from `scoring.scores.neighbourhood`):

- `dup_group` (int, −1 = none): rows in one group are exact copies by content or near
  duplicates on the label-free embeddings. `keep_one_per_group` is the one rule for which row
  of a group stays: the **lowest id** among the group's rows still in play (after decisions
  and held-out rows are taken out), so it is deterministic, independent of any score and of
  row order, and the row a page and an export keep is the same.
- `leak_of` (int, −1 = none): the id of the held-out/test row a training row copies.
- the `outlier` score (mean cosine distance to the `K_OUTLIER` = 10 nearest rows).

A run scored without near_dup/leakage (or before they existed) lacks the columns:
`missing_message` says so and how to get them, `require` raises it as an InputError.
Pure pandas/numpy over a `RunView` and the run folder (no Streamlit, no torch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.read import suspects
from scoring.read.views import RunView
from scoring.scores import neighbourhood

K_OUTLIER = neighbourhood.K_OUTLIER  # for the pages: the neighbours `outlier` averages

# Each column, with the scores whose computation writes it.
COLUMNS = {"dup_group": ("near_dup", "leakage"), "leak_of": ("near_dup", "leakage")}
RESCORE = (
    "rescore with near_dup/leakage: `winnow score ... --scores all` (the default), or add "
    "near_dup,outlier,leakage to --scores"
)


# --- presence -------------------------------------------------------------------------------


def missing_message(view: RunView, column: str) -> str | None:
    """Why the run cannot give `column` ("dup_group", "leak_of", "outlier"), or None."""
    if column in view.table.columns:
        return None
    what = {
        "dup_group": "duplicate groups (`dup_group`)",
        "leak_of": "train/test leaks (`leak_of`)",
        "outlier": "the `outlier` score",
    }[column]
    source = store.run_source(view.config)
    if source != "scored":  # recorded or imported: nothing to rescore, the features decide
        return (
            f"this run has no {what}: it was {source} without label-free features; record "
            "(or import) embeddings of a model that never saw the labels with "
            "`end_run(features=..., features_label_free=True)` (`winnow import --features "
            "FILE --features-label-free`)"
        )
    fix = RESCORE if column != "outlier" else RESCORE.replace("near_dup/leakage", "outlier")
    return f"this run has no {what}: it was scored without them or before they existed; {fix}"


def require(view: RunView, column: str) -> np.ndarray:
    """The run's `column` as int64 (N,); InputError saying how to get it when absent."""
    message = missing_message(view, column)
    if message is not None:
        raise InputError(message)
    return view.table[column].to_numpy(np.int64)


# --- the dedup rule -------------------------------------------------------------------------


def keep_one_per_group(
    groups: np.ndarray, ids: np.ndarray, in_play: np.ndarray | None = None
) -> np.ndarray:
    """Which rows stay when duplicates are dropped: every ungrouped row, one per group.

    Parameters
    ----------
    groups : ndarray of shape (n_examples,), int
        `dup_group`: −1 for a row without duplicates.
    ids : ndarray of shape (n_examples,), int
        Stable example ids (unique).
    in_play : ndarray of shape (n_examples,), bool, optional
        Rows still selectable (decisions and held-out rows already removed); the survivor of
        a group is chosen among these only. None: every row.

    Returns
    -------
    ndarray of shape (n_examples,), bool
        True for the rows in play that stay: those in no group, and per group the one with
        the lowest id among its rows in play. False for every row not in play.
    """
    groups = np.asarray(groups, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    if groups.shape != ids.shape or groups.ndim != 1:
        raise InputError(
            f"groups and ids must both have shape (n_examples,); got {groups.shape} and {ids.shape}"
        )
    play = np.ones(ids.shape[0], bool) if in_play is None else np.asarray(in_play, bool)
    keep = play & (groups < 0)
    grouped = np.flatnonzero(play & (groups >= 0))
    if grouped.size:
        # Lowest id first within each group: one lexsort, then the first row of each group.
        order = grouped[np.lexsort((ids[grouped], groups[grouped]))]
        first = np.ones(order.shape[0], bool)
        first[1:] = groups[order[1:]] != groups[order[:-1]]
        keep[order[first]] = True
    return keep


# --- tables ---------------------------------------------------------------------------------


def duplicate_rows(view: RunView) -> pd.DataFrame:
    """Every training row in a duplicate group, group by group (largest group first).

    Returns
    -------
    DataFrame, one row per grouped example
        `group`, `id`, `row` (position in `view.table`), `label` (class index the run
        trained with), `exact` (True when another row of the group has the same content:
        same decoded pixels, or the same text up to case and spacing), `kept` (the row
        `keep_one_per_group` keeps with no decisions), and `near_dup` / `outlier` when the
        run has them. Groups are ordered by size (descending), then group number; rows by id.
    """
    groups = require(view, "dup_group")
    ids = view.table["id"].to_numpy(np.int64)
    rows = np.flatnonzero(groups >= 0)
    frame = pd.DataFrame(
        {
            "group": groups[rows],
            "id": ids[rows],
            "row": rows,
            "label": view.table["label"].to_numpy(np.int64)[rows],
        }
    )
    keys = content_keys(view, rows)
    if keys is not None:  # an exact copy: same group and same content as another row
        frame["exact"] = (
            frame.assign(_key=keys).groupby(["group", "_key"])["id"].transform("size") > 1
        )
    else:
        frame["exact"] = False
    frame["kept"] = keep_one_per_group(groups, ids)[rows]
    for key in ("near_dup", "outlier"):
        if key in view.table.columns:
            frame[key] = view.table[key].to_numpy(np.float64)[rows]
    size = frame.groupby("group")["id"].transform("size")
    frame = frame.assign(_size=size).sort_values(
        ["_size", "group", "id"], ascending=[False, True, True], kind="stable"
    )
    return frame.drop(columns="_size").reset_index(drop=True)


def group_table(rows: pd.DataFrame, label_names: Sequence[str]) -> pd.DataFrame:
    """One line per duplicate group of `duplicate_rows`, in its order.

    Returns
    -------
    DataFrame
        `group`, `size`, `exact` (rows with an exact copy in the group), `labels` (distinct
        labels in it: more than one means the copies disagree), `keep_id` (the row dedup
        keeps), `ids` (all ids, ascending), `label_names` ("3, 5").
    """
    out = []
    for group, part in rows.groupby("group", sort=False):
        labels = sorted(set(part["label"].tolist()))
        out.append(
            {
                "group": int(group),
                "size": len(part),
                "exact": int(part["exact"].sum()),
                "labels": len(labels),
                "keep_id": int(part["id"].min()),
                "ids": part["id"].tolist(),
                "label_names": ", ".join(str(label_names[c]) for c in labels),
            }
        )
    columns = ["group", "size", "exact", "labels", "keep_id", "ids", "label_names"]
    return pd.DataFrame(out, columns=columns)


def drops_for_group(rows: pd.DataFrame, group: int, keep_id: int | None = None) -> list[int]:
    """Ids to drop so that only `keep_id` (default: the lowest id, as dedup) stays of `group`."""
    ids = rows.loc[rows["group"] == group, "id"].astype(int).tolist()
    if not ids:
        raise InputError(f"no duplicate group {group} in this run")
    keep = min(ids) if keep_id is None else int(keep_id)
    if keep not in ids:
        raise InputError(f"example {keep} is not in duplicate group {group}")
    return [i for i in ids if i != keep]


def leak_pairs(view: RunView) -> pd.DataFrame:
    """Training rows that copy a held-out/test row, each beside its twin.

    Returns
    -------
    DataFrame, one row per leaked training row (by `leakage` descending when the run has it,
    else by id)
        `id`, `row`, `label`, `test_id`, `test_label` (the twin's source label, −1 when the
        run's split does not list it), `same_label`, `exact` (same content), `split` ("heldout"
        when the held-out rows were carved from the source, else "test"), and `leakage`.
    """
    leak = require(view, "leak_of")
    rows = np.flatnonzero(leak >= 0)
    split = store.RunDir(view.path).read_split()
    test_ids = np.asarray(split.test_ids, np.int64)
    at = pd.Index(test_ids).get_indexer(leak[rows])  # (L,), −1 if the split lacks it
    test_labels = np.where(at >= 0, np.asarray(split.test_labels, np.int64)[at], -1)
    labels = view.table["label"].to_numpy(np.int64)[rows]
    frame = pd.DataFrame(
        {
            "id": view.table["id"].to_numpy(np.int64)[rows],
            "row": rows,
            "label": labels,
            "test_id": leak[rows],
            "test_label": test_labels,
            "same_label": labels == test_labels,
        }
    )
    train_keys, test_keys = content_keys(view, rows), _test_keys(view, at)
    if train_keys is not None and test_keys is not None:
        frame["exact"] = [a == b for a, b in zip(train_keys, test_keys, strict=True)]
    else:
        frame["exact"] = False
    carved = (view.config.get("dataset") or {}).get("test_origin") == "carved"
    frame["split"] = "heldout" if carved else "test"
    if "leakage" in view.table.columns:
        frame["leakage"] = view.table["leakage"].to_numpy(np.float64)[rows]
        frame = frame.sort_values("leakage", ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def top_outliers(view: RunView, k: int) -> pd.DataFrame:
    """The `k` most outlying training rows, most outlying first (ties: earlier row first).

    Returns
    -------
    DataFrame of min(k, N) rows
        `id`, `row`, `label`, `outlier`, `flagged` (among the rows the run's summary counts
        as outliers: robust z-score of `outlier` >= 3; the top `issue_counts()["outliers"]`).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k!r}")
    if "outlier" not in view.table.columns:
        raise InputError(str(missing_message(view, "outlier")))
    values = view.table["outlier"].to_numpy(np.float64)
    order = np.argsort(-values, kind="stable")[:k]
    n_flagged = _n_outliers(values)
    return pd.DataFrame(
        {
            "id": view.table["id"].to_numpy(np.int64)[order],
            "row": order,
            "label": view.table["label"].to_numpy(np.int64)[order],
            "outlier": values[order],
            "flagged": np.arange(order.shape[0]) < n_flagged,
        }
    )


def class_counts(view: RunView) -> pd.DataFrame:
    """Training rows per class (the labels the run trained with), largest first.

    Returns
    -------
    DataFrame of n_classes rows: `class`, `count`, `share`, `vs_largest` (count / largest).
    """
    names = view.label_names
    counts = np.bincount(view.table["label"].to_numpy(np.int64), minlength=len(names))
    counts = counts[: len(names)]
    frame = pd.DataFrame(
        {
            "class": names,
            "count": counts,
            "share": counts / max(int(counts.sum()), 1),
            "vs_largest": counts / max(int(counts.max()), 1),
        }
    )
    return frame.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def issue_counts(view: RunView) -> dict[str, int | float | None]:
    """Counts per issue type, None where the run lacks what a count needs.

    Returns
    -------
    dict
        `exact_copies` (rows whose content repeats an earlier row's: what removing exact
        copies drops), `duplicate_groups`, `rows_in_groups`, `redundant_rows` (what dedup
        drops: rows in groups minus one per group), `leaks`, `outliers` (robust z-score of
        `outlier` >= 3, as in the run's summary), `imbalance` (largest / smallest non-empty
        class), `smallest_class`, `largest_class`.
    """
    out: dict[str, int | float | None] = dict.fromkeys(
        ["exact_copies", "duplicate_groups", "rows_in_groups", "redundant_rows", "leaks"]
    )
    if "dup_group" in view.table.columns:
        groups = view.table["dup_group"].to_numpy(np.int64)
        n_groups = int(np.unique(groups[groups >= 0]).size)
        in_groups = int((groups >= 0).sum())
        rows = np.flatnonzero(groups >= 0)
        keys = content_keys(view, rows)
        out.update(
            duplicate_groups=n_groups,
            rows_in_groups=in_groups,
            redundant_rows=in_groups - n_groups,
            exact_copies=None if keys is None else len(keys) - len(set(keys)),
        )
    if "leak_of" in view.table.columns:
        out["leaks"] = int((view.table["leak_of"].to_numpy(np.int64) >= 0).sum())
    out["outliers"] = (
        _n_outliers(view.table["outlier"].to_numpy(np.float64))
        if "outlier" in view.table.columns
        else None
    )
    counts = class_counts(view)["count"].to_numpy()
    present = counts[counts > 0]
    out["imbalance"] = float(present.max() / present.min()) if present.size else None
    out["largest_class"] = int(present.max()) if present.size else 0
    out["smallest_class"] = int(present.min()) if present.size else 0
    return out


def _n_outliers(values: np.ndarray) -> int:
    """How many rows the run's summary counts as outliers (`neighbourhood.issue_counts`)."""
    none = np.full(values.shape[0], -1, np.int64)
    labels = np.zeros(values.shape[0], np.int64)
    return int(neighbourhood.issue_counts(none, none, values, labels)["outliers"])


# --- content --------------------------------------------------------------------------------


def content_keys(view: RunView, rows: np.ndarray) -> list[str] | None:
    """A digest of each training row's content (rows = positions in `view.table`).

    Images: the stored display pixels (uint8, the decoded image the run trained on, rounded
    as `neighbourhood.content_keys` rounds it); texts: `neighbourhood.content_keys` of the
    stored text (lowercased, spaces collapsed). None when the run kept no examples.
    """
    rd = store.RunDir(view.path)
    rows = np.asarray(rows, dtype=np.int64)
    if view.modality == "image":
        images = rd.open_images()
        if images is None or images.shape[0] != len(view.table):
            return None
        return [_digest(np.asarray(images[r])) for r in rows]
    texts = rd.read_texts()
    if texts is None:
        return None
    by_id = texts.set_index("id")
    picked = by_id.loc[view.table["id"].to_numpy(np.int64)[rows]]
    return neighbourhood.content_keys(_text_items(picked))


def _test_keys(view: RunView, at: np.ndarray) -> list[str] | None:
    """Content digests of held-out/test rows by their position in the split (−1: None)."""
    rd = store.RunDir(view.path)
    if (at < 0).any():
        return None
    if view.modality == "image":
        images = rd.open_images(heldout=True)
        if images is None:
            return None
        return [_digest(np.asarray(images[a])) for a in at]
    texts = rd.read_texts(heldout=True)
    if texts is None:
        return None
    test_ids = np.asarray(rd.read_split().test_ids, np.int64)
    return neighbourhood.content_keys(_text_items(texts.set_index("id").loc[test_ids[at]]))


def _digest(pixels: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16).hexdigest()


def _text_items(texts: pd.DataFrame) -> list:
    """Rows of a stored-texts frame as `content_keys` inputs: str, or (str, str) pairs."""
    if "text_pair" in texts.columns:
        return list(zip(texts["text"].astype(str), texts["text_pair"].astype(str), strict=True))
    return texts["text"].astype(str).tolist()


def twin_images(view: RunView, test_ids: Sequence[int], size: int = 64) -> list[np.ndarray | None]:
    """Held-out/test rows' display images by id, whether carved or a separate test set.

    Returns
    -------
    list of (H', W'[, C]) uint8 arrays upscaled like `suspects.load_images`, None for an id
    without a stored image.
    """
    rd = store.RunDir(view.path)
    images = rd.open_images(heldout=True)
    if images is None:
        return [None] * len(test_ids)
    at = pd.Index(np.asarray(rd.read_split().test_ids, np.int64)).get_indexer(
        np.asarray(test_ids, np.int64)
    )
    out: list[np.ndarray | None] = []
    for a in at:
        if a < 0 or a >= images.shape[0]:
            out.append(None)
            continue
        image = np.asarray(images[a])  # (H, W, C)
        factor = max(1, size // max(image.shape[:2]))
        image = image.repeat(factor, axis=0).repeat(factor, axis=1)
        out.append(image[..., 0] if image.shape[-1] == 1 else image)
    return out


def twin_texts(view: RunView, test_ids: Sequence[int]) -> pd.DataFrame | None:
    """Held-out/test rows' texts by id (columns as `suspects.load_texts`), None without."""
    if suspects.heldout_rows(view) is not None:  # carved: the shared reader has them
        return suspects.load_texts(view, np.asarray(test_ids, np.int64))
    texts = store.RunDir(view.path).read_texts(heldout=True)
    if texts is None:
        return None
    return suspects.texts_by_id(view, texts, test_ids)

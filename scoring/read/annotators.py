"""Several annotators, as the pages read them: vote splits, the consensus, the annotator table.

Pure pandas/numpy over a `RunView` and the run's `annotations.npz` (`store.RunDir.read_votes`),
so the Mislabeled cards and the annotators table only render what is computed here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scoring import store
from scoring.read.views import RunView

ANNOTATOR_COLUMNS = {
    "annotator": "annotator",
    "examples_labelled": "examples labelled",
    "quality": "quality (CROWDLAB)",
    "agreement": "agreement with consensus",
}


def has_annotators(view: RunView) -> bool:
    """Whether the run was scored with several annotators per example."""
    return bool(view.config.get("dataset", {}).get("annotators"))


def annotator_table(view: RunView) -> pd.DataFrame | None:
    """summary.json's `annotators` rows, best quality first; None without them.

    Returns
    -------
    DataFrame with columns `annotator`, `examples_labelled`, `quality`,
    `agreement` (NaN where an annotator has no vote among the training rows), or None.
    """
    rows = view.summary.get("annotators")
    if not isinstance(rows, list) or not rows:
        return None
    frame = pd.DataFrame(rows, columns=list(ANNOTATOR_COLUMNS))
    return frame.astype({"quality": float, "agreement": float})


def vote_split(votes: np.ndarray, names: Sequence[str]) -> str:
    """One example's votes in words: "2 of 3: cat, 1: dog" (most votes first, then class id).

    Parameters
    ----------
    votes : ndarray of shape (n_annotators,), int
        Class ids, -1 = no vote.
    names : sequence of str, length n_classes

    Returns
    -------
    str
        "no votes" when nobody voted.
    """
    given = votes[votes >= 0]
    if given.size == 0:
        return "no votes"
    counts = np.bincount(given, minlength=len(names))  # (K,)
    order = sorted(np.flatnonzero(counts), key=lambda k: (-counts[k], k))
    parts = [f"{counts[k]}: {names[k]}" for k in order]
    parts[0] = f"{counts[order[0]]} of {given.size}: {names[order[0]]}"
    return ", ".join(parts)


def vote_lines(view: RunView, ids: Sequence[int], splits: Sequence[str]) -> dict[int, str]:
    """The votes and the consensus of the given examples, by id.

    "votes 2 of 3: cat, 1: dog · consensus cat (quality 0.84)"; held-out rows have no
    consensus (CROWDLAB reads out-of-fold probabilities, which only training rows have).
    Plain text: the page escapes it. Empty for a run without annotators.

    Parameters
    ----------
    view : RunView
    ids : sequence of int
        Example ids.
    splits : sequence of str, same length
        Each example's split, "train" or "heldout" (a --test file's ids can repeat
        training ids).
    """
    rd = store.RunDir(view.path)
    found = rd.read_votes()
    if found is None:
        return {}
    names = view.label_names
    split = rd.read_split()
    where = {"train": pd.Index(split.train_ids), "heldout": pd.Index(split.test_ids)}
    votes_of = {"train": found.votes, "heldout": found.test_votes}
    table = view.table.set_index("id")
    lines = {}
    for example, part in zip((int(i) for i in ids), splits, strict=True):
        index = where.get(part)
        if index is None or example not in index:
            continue
        line = f"votes {vote_split(votes_of[part][index.get_loc(example)], names)}"
        if part == "train" and "consensus_label" in table.columns:
            row = table.loc[example]
            line += f" · consensus {names[int(row['consensus_label'])]}"
            if "consensus_quality" in table.columns:
                line += f" (quality {float(row['consensus_quality']):.2f})"
        lines[example] = line
    return lines

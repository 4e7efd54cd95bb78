"""Several annotators per example: CROWDLAB's consensus label, its quality, the agreement.

Goh, Tkachenko & Mueller, "CROWDLAB: Supervised learning to infer consensus labels and
quality scores for data with multiple annotators" (NeurIPS 2022 workshop, arXiv 2210.06812).
All numbers come from the cleanlab library (`cleanlab.multiannotator.
get_label_quality_multiannotator`) fed the run's out-of-fold probabilities, so no example's
consensus is weighed against a model that trained on it; nothing here reimplements it.

The three registered scores (`consensus_label`, `consensus_quality`, `annotator_agreement`)
and the per-annotator table (`annotator_stats`, summary.json's `annotators`) are one CROWDLAB
call on the same arrays: it is made once and remembered for the next caller.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.errors import InputError
from scoring.scores._checks import FloatArray, checked
from scoring.scores.cleanlab_scores import cleanlab_function

_SOURCE = """
Computed by [cleanlab](https://github.com/cleanlab/cleanlab)'s
`get_label_quality_multiannotator` (CROWDLAB) from the annotators' votes and the
out-of-fold probabilities (K-fold cross-fitting): it weighs each annotator by how often
they agree with the others, and the model by how often it agrees with the annotators.
Only in runs scored with several annotators (`--annotator-cols` or `--annotations`).

Source: Goh, Tkachenko & Mueller, *CROWDLAB: Supervised learning to infer consensus labels
and quality scores for data with multiple annotators*, 2022.
"""

CONSENSUS_LABEL_DOC = (
    """\
**Consensus label** — the class CROWDLAB infers from every annotator's vote and the
out-of-fold model: the class with the highest weighted vote (annotators weighted by their
estimated quality, the model by its agreement with them). A class id, not a degree: it is
not ranked, histogrammed or correlated; Mislabeled shows it beside the vote split and Export
can write it as the label.
"""
    + _SOURCE
)

CONSENSUS_QUALITY_DOC = (
    """\
**Consensus quality** — CROWDLAB's confidence that the consensus label is right, in [0, 1]:
the label-quality score of the consensus under the weighted mix of the annotators' votes
and the out-of-fold probabilities.

**Low = suspect**: the annotators split, or they agree on a class the model doubts.
"""
    + _SOURCE
)

ANNOTATOR_AGREEMENT_DOC = (
    """\
**Annotator agreement** — the share of the example's annotators whose vote is the consensus
label, in [0, 1] (1 = unanimous; an example with one vote has 1 or 0).

**Low = suspect**: people disagree about this example.
"""
    + _SOURCE
)


@dataclass(frozen=True)
class Crowdlab:
    """One CROWDLAB call: per example and per annotator.

    Attributes
    ----------
    consensus : ndarray of shape (n_examples,), int64
    quality : ndarray of shape (n_examples,), float64
    agreement : ndarray of shape (n_examples,), float64
    annotator_quality : ndarray of shape (n_annotators,), float64
        NaN for an annotator without a vote among these examples.
    annotator_agreement : ndarray of shape (n_annotators,), float64
        Share of the annotator's votes that are the consensus label (NaN without votes).
    n_labelled : ndarray of shape (n_annotators,), int64
    """

    consensus: np.ndarray
    quality: np.ndarray
    agreement: np.ndarray
    annotator_quality: np.ndarray
    annotator_agreement: np.ndarray
    n_labelled: np.ndarray


_LAST: dict[str, Crowdlab] = {}  # the last call, by a digest of its arrays


def crowdlab(*, annotations: npt.ArrayLike, oof_probs: npt.ArrayLike) -> Crowdlab:
    """CROWDLAB's consensus and qualities for the votes, with the out-of-fold model.

    Parameters
    ----------
    annotations : ndarray of shape (n_examples, n_annotators), int
        Class ids, -1 where the annotator did not vote; every example has a vote and two
        or more annotators voted.
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold predicted probabilities.

    Returns
    -------
    Crowdlab

    Raises
    ------
    InputError
        Invalid arrays, or votes CROWDLAB cannot weigh (no example with two votes).
    """
    votes, probs = checked(annotations=annotations, oof_probs=oof_probs)
    probs = np.clip(probs.astype(np.float64), 0.0, 1.0)  # rounding overshoot passed validation
    key = _digest(votes, probs)
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = _compute(votes, probs)
    return _LAST[key]


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _compute(votes: np.ndarray, probs: np.ndarray) -> Crowdlab:
    """The cleanlab call on valid arrays; annotators without a vote here are left out of it
    (cleanlab refuses an empty column) and get NaN."""
    voted = votes >= 0  # (N, A)
    active = np.flatnonzero(voted.any(axis=0))
    wide = np.where(voted, votes, np.nan)[:, active].astype(np.float64)  # (N, A'), NaN = none
    get_label_quality_multiannotator = cleanlab_function(
        "multiannotator", "get_label_quality_multiannotator"
    )
    state = np.random.get_state()
    # cleanlab breaks a tie that survives every rule with the global generator: seed it for
    # the call (determinism) and give the caller's state back.
    np.random.seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "annotators do not agree", tie notes: per call
            found = get_label_quality_multiannotator(wide, probs, verbose=False)
    except ValueError as err:  # e.g. no example with two votes: nothing to weigh
        raise InputError(f"annotations: CROWDLAB cannot weigh these votes: {err}") from None
    finally:
        np.random.set_state(state)
    per_example = found["label_quality"]
    stats = found["annotator_stats"].sort_index()  # rows = positions in `active`
    n_annotators = votes.shape[1]
    quality, agreement = np.full(n_annotators, np.nan), np.full(n_annotators, np.nan)
    quality[active] = stats["annotator_quality"].to_numpy(np.float64)
    agreement[active] = stats["agreement_with_consensus"].to_numpy(np.float64)
    return Crowdlab(
        consensus=per_example["consensus_label"].to_numpy(np.int64),
        quality=per_example["consensus_quality_score"].to_numpy(np.float64),
        agreement=per_example["annotator_agreement"].to_numpy(np.float64),
        annotator_quality=quality,
        annotator_agreement=agreement,
        n_labelled=voted.sum(axis=0).astype(np.int64),
    )


def consensus_label(*, annotations: npt.ArrayLike, oof_probs: npt.ArrayLike) -> FloatArray:
    """Per-example CROWDLAB consensus label.

    Parameters
    ----------
    annotations : ndarray of shape (n_examples, n_annotators), int
        Class ids, -1 = no vote.
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold predicted probabilities.

    Returns
    -------
    ndarray of shape (n_examples,), float64
        Class ids (whole numbers; the run stores them as int64).
    """
    return crowdlab(annotations=annotations, oof_probs=oof_probs).consensus.astype(np.float64)


def consensus_quality(*, annotations: npt.ArrayLike, oof_probs: npt.ArrayLike) -> FloatArray:
    """Per-example CROWDLAB quality of the consensus label.

    Parameters
    ----------
    annotations : ndarray of shape (n_examples, n_annotators), int
        Class ids, -1 = no vote.
    oof_probs : ndarray of shape (n_examples, n_classes)

    Returns
    -------
    ndarray of shape (n_examples,), float64
        In [0, 1]; lower means the consensus is more likely wrong.
    """
    return crowdlab(annotations=annotations, oof_probs=oof_probs).quality.copy()


def annotator_agreement(*, annotations: npt.ArrayLike, oof_probs: npt.ArrayLike) -> FloatArray:
    """Per-example share of the annotators whose vote is the consensus label.

    Parameters
    ----------
    annotations : ndarray of shape (n_examples, n_annotators), int
        Class ids, -1 = no vote.
    oof_probs : ndarray of shape (n_examples, n_classes)

    Returns
    -------
    ndarray of shape (n_examples,), float64
        In [0, 1]; lower means the annotators disagree more.
    """
    return crowdlab(annotations=annotations, oof_probs=oof_probs).agreement.copy()


def annotator_stats(
    annotations: npt.ArrayLike, oof_probs: npt.ArrayLike, names: list[str]
) -> list[dict[str, Any]]:
    """summary.json's `annotators` table: one row per annotator, best quality first.

    Parameters
    ----------
    annotations : ndarray of shape (n_examples, n_annotators), int
        Class ids, -1 = no vote.
    oof_probs : ndarray of shape (n_examples, n_classes)
    names : list of str, length n_annotators

    Returns
    -------
    list of dict
        `annotator`, `examples_labelled`, `quality` (CROWDLAB's annotator quality, in
        [0, 1]) and `agreement` (share of their votes equal to the consensus label); the
        last two None for an annotator without a vote among these examples.
    """
    found = crowdlab(annotations=annotations, oof_probs=oof_probs)
    if len(names) != found.n_labelled.shape[0]:
        raise InputError(
            f"names: expected {found.n_labelled.shape[0]} annotator names, got {len(names)}"
        )

    def number(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    rows = [
        {
            "annotator": str(name),
            "examples_labelled": int(n),
            "quality": number(q),
            "agreement": number(a),
        }
        for name, n, q, a in zip(
            names, found.n_labelled, found.annotator_quality, found.annotator_agreement, strict=True
        )
    ]
    return sorted(rows, key=lambda r: (r["quality"] is None, -(r["quality"] or 0.0)))

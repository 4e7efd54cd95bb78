"""Confident learning: cleanlab's label-quality score and label-issue flag.

Northcutt, Jiang, Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels"
(JAIR 2021). Both call the cleanlab library on out-of-fold probabilities; nothing here
reimplements it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.errors import InputError
from scoring.scores._checks import FloatArray, checked


def cleanlab_function(module: str, name: str) -> Any:
    """`cleanlab.<module>.<name>`, imported on first use.

    Lazily, because cleanlab brings scikit-learn (seconds to import) and every command that
    only reads a run or checks its flags imports the score registry. With the warning
    filters saved and restored, because importing cleanlab runs
    `warnings.filterwarnings("ignore")` (in a Datalab module it pulls in), which would
    silence every warning of the process: PIL's decompression-bomb warning, ours.
    """
    import importlib

    with warnings.catch_warnings():
        return getattr(importlib.import_module(f"cleanlab.{module}"), name)


_SOURCE = """
Computed by the [cleanlab](https://github.com/cleanlab/cleanlab) library from out-of-fold
probabilities (K-fold cross-fitting, one model per fold), so no example is judged by a model
that trained on it.

Source: Northcutt, Jiang & Chuang, *Confident Learning: Estimating Uncertainty in Dataset
Labels*, JAIR 2021.
"""

CL_QUALITY_DOC = (
    """\
**Label quality** — cleanlab's `get_label_quality_scores` with its default method,
*self-confidence*: the out-of-fold probability of the given label, p(y | x), in [0, 1].

**Low = suspect** (likely mislabeled, or an outlier). Higher is cleaner.
"""
    + _SOURCE
)

CL_ISSUE_DOC = (
    """\
**Label issue** — 1 where cleanlab's `find_label_issues` (default settings: confident
learning, pruned by noise rate) flags the given label as an error, else 0. Averaged into a
mean it is the share of flagged examples.

**1 = suspect**. Classes with very few examples may be under-flagged (cleanlab keeps at least
one example per class).
"""
    + _SOURCE
)


def cl_quality(*, labels: npt.ArrayLike, oof_probs: npt.ArrayLike) -> FloatArray:
    """Per-example cleanlab label-quality score (self-confidence).

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        Given labels, integers in [0, n_classes).
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold predicted probabilities.

    Returns
    -------
    ndarray of shape (n_examples,)
        `cleanlab.rank.get_label_quality_scores(labels, oof_probs)`, i.e. oof_probs[y]
        by default. Lower means more likely mislabeled.
    """
    labels, probs = _cleanlab_inputs(labels, oof_probs)
    scores = cleanlab_function("rank", "get_label_quality_scores")
    return np.asarray(scores(labels, probs), dtype=np.float64)


def cl_issue(*, labels: npt.ArrayLike, oof_probs: npt.ArrayLike) -> FloatArray:
    """Per-example cleanlab label-issue flag.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        Given labels, integers in [0, n_classes); at least two distinct classes.
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold predicted probabilities.

    Returns
    -------
    ndarray of shape (n_examples,)
        1.0 where `cleanlab.filter.find_label_issues(labels, oof_probs)` flags the example,
        else 0.0. Higher means more likely mislabeled.
    """
    labels, probs = _cleanlab_inputs(labels, oof_probs)
    present = np.unique(labels)
    if present.size < 2:
        # cleanlab refuses (or, for class 0 alone, returns nothing): no label can be "wrong".
        raise InputError(
            f"labels: label issues need at least 2 distinct classes, got only class {present[0]}"
        )
    with warnings.catch_warnings():
        # Small classes trigger "May not flag all label issues in class ..." once per class;
        # that caveat is stated once in the doc instead of flooding the job log.
        warnings.filterwarnings("ignore", message="May not flag all label issues")
        # n_jobs=1: cleanlab documents that n_jobs changes run time only, never the result,
        # and forking a process pool from inside a job (torch threads loaded) can hang.
        issues = cleanlab_function("filter", "find_label_issues")(labels, probs, n_jobs=1)
    return np.asarray(issues, dtype=np.float64)


def _cleanlab_inputs(labels: npt.ArrayLike, oof_probs: npt.ArrayLike):
    """Validate, then hand cleanlab the exact types it asserts on."""
    labels, probs = checked(labels=labels, oof_probs=oof_probs)
    # cleanlab rejects values outside [0, 1]; rounding overshoot passed validation.
    return labels, np.clip(probs.astype(np.float64), 0.0, 1.0)

"""The explicit registry of per-example scores, and the one way to compute them.

A new score is one module in this package plus one line in `REGISTRY`. The key is the
module's function name and the parquet column; `needs` names the recorded arrays the
function takes as keyword arguments (see `_checks.RECORDED`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.errors import InputError
from scoring.scores.annotators import (
    ANNOTATOR_AGREEMENT_DOC,
    CONSENSUS_LABEL_DOC,
    CONSENSUS_QUALITY_DOC,
    annotator_agreement,
    consensus_label,
    consensus_quality,
)
from scoring.scores.aum import AUM_DOC, aum
from scoring.scores.cleanlab_scores import CL_ISSUE_DOC, CL_QUALITY_DOC, cl_issue, cl_quality
from scoring.scores.consensus import CONSENSUS_DOC, CONSENSUS_NEEDS, consensus
from scoring.scores.data_value import KNN_SHAPLEY_DOC, knn_shapley
from scoring.scores.datamap import (
    CONFIDENCE_DOC,
    CORRECTNESS_DOC,
    VARIABILITY_DOC,
    confidence,
    correctness,
    variability,
)
from scoring.scores.el2n import EL2N_DOC, el2n
from scoring.scores.forgetting import FORGETTING_DOC, forgetting
from scoring.scores.grand import GRAND_DOC, grand
from scoring.scores.image_properties import (
    BLURRY_DOC,
    DARK_DOC,
    GRAYSCALE_DOC,
    LIGHT_DOC,
    LOW_INFORMATION_DOC,
    ODD_ASPECT_RATIO_DOC,
    ODD_SIZE_DOC,
    blurry,
    dark,
    grayscale,
    light,
    low_information,
    odd_aspect_ratio,
    odd_size,
)
from scoring.scores.label_free import (
    EL2N_FREE_DOC,
    GRAND_FREE_DOC,
    GRAND_LOGIT_SQ_DOC,
    el2n_free,
    grand_free,
    grand_logit_sq,
)
from scoring.scores.loss import LOSS_DOC, loss
from scoring.scores.neighbourhood import (
    LEAKAGE_DOC,
    NEAR_DUP_DOC,
    OUTLIER_DOC,
    leakage,
    near_dup,
    outlier,
)
from scoring.scores.prototype import PROTOTYPE_DOC, prototype
from scoring.scores.pvi import PVI_DOC, pvi
from scoring.scores.tracin import TRACIN_DOC, tracin
from scoring.scores.vog import VOG_DOC, vog


@dataclass(frozen=True)
class Score:
    """One registered score: what it computes from, which way is hard, how it is cached."""

    key: str  # = module function name = parquet column
    fn: Callable[..., np.ndarray]  # keyword-only args named like the needs
    needs: tuple[str, ...]  # recorded arrays, by name
    higher_is_harder: bool  # direction; the app shows "harder/more suspect" the same way for all
    version: int  # enters the cache key: bump when the numbers change
    doc: str  # markdown shown in the app: definition, direction, source paper
    per_run: bool = True  # fn returns (R, N) per-run values, averaged over runs; else (N,)
    # Reads no label: blind to label noise by construction (its noise AUROC sits at chance).
    label_free: bool = False
    # Its values are class ids, not a degree: a column of the run that no page ranks,
    # histograms or correlates (`RunView.score_keys` leaves it out; scores.parquet: int64).
    label_valued: bool = False


# One line per score, fields in Score's order:
#   key: Score(key, fn, needs, higher_is_harder, version, doc[, per_run=False][, label_free=True])
# Versions 2 (issue 13): el2n and el2n_free read a fixed-weight eval pass after the early
# epoch (was the training pass); pvi reads out-of-fold probabilities (was the final model on
# its own training data); prototype clusters label-independent embeddings (was the final
# supervised model's features, which had seen the noisy labels).
# fmt: off
REGISTRY: dict[str, Score] = {
    "el2n": Score("el2n", el2n, ("labels", "probs_early"), True, 2, EL2N_DOC),
    "forgetting": Score("forgetting", forgetting, ("correct",), True, 1, FORGETTING_DOC),
    "aum": Score("aum", aum, ("logit_given", "logit_other"), False, 1, AUM_DOC),
    "confidence": Score("confidence", confidence, ("prob_given",), False, 1, CONFIDENCE_DOC),
    "variability": Score("variability", variability, ("prob_given",), True, 1, VARIABILITY_DOC),
    "correctness": Score("correctness", correctness, ("correct",), False, 1, CORRECTNESS_DOC),
    "loss": Score("loss", loss, ("loss",), True, 1, LOSS_DOC),
    "pvi": Score("pvi", pvi, ("labels", "oof_probs", "label_prior"), False, 2, PVI_DOC, per_run=False),  # noqa: E501
    "cl_quality": Score("cl_quality", cl_quality, ("labels", "oof_probs"), False, 1, CL_QUALITY_DOC, per_run=False),  # noqa: E501
    "cl_issue": Score("cl_issue", cl_issue, ("labels", "oof_probs"), True, 1, CL_ISSUE_DOC, per_run=False),  # noqa: E501
    "prototype": Score("prototype", prototype, ("features_free", "n_prototypes"), True, 2, PROTOTYPE_DOC, per_run=False, label_free=True),  # noqa: E501
    "grand": Score("grand", grand, ("grad_norm",), True, 1, GRAND_DOC),
    "vog": Score("vog", vog, ("input_grad_var",), True, 1, VOG_DOC),
    "tracin": Score("tracin", tracin, ("tracin_self",), True, 1, TRACIN_DOC),
    "el2n_free": Score("el2n_free", el2n_free, ("probs_early",), False, 2, EL2N_FREE_DOC, label_free=True),  # noqa: E501
    "grand_free": Score("grand_free", grand_free, ("grad_free_norm",), True, 1, GRAND_FREE_DOC, label_free=True),  # noqa: E501
    "grand_logit_sq": Score("grand_logit_sq", grand_logit_sq, ("grad_logit_sq",), True, 1, GRAND_LOGIT_SQ_DOC, label_free=True),  # noqa: E501
    # Neighbourhood issues (issue 15) on the label-free embeddings; columns dup_group and
    # leak_of come with them (training/results.py).
    "near_dup": Score("near_dup", near_dup, ("features_free",), True, 1, NEAR_DUP_DOC, per_run=False, label_free=True),  # noqa: E501
    "outlier": Score("outlier", outlier, ("features_free",), True, 2, OUTLIER_DOC, per_run=False, label_free=True),  # noqa: E501
    "leakage": Score("leakage", leakage, ("features_free", "features_free_test"), True, 1, LEAKAGE_DOC, per_run=False, label_free=True),  # noqa: E501
    # Data value (issue 24): KNN-Shapley on the label-free embeddings, with the given labels.
    "knn_shapley": Score("knn_shapley", knn_shapley, ("labels", "features_free", "label_prior"), False, 1, KNN_SHAPLEY_DOC, per_run=False),  # noqa: E501
    # One suspect ranking from the label-dependent scores above (issue 17), never the noise.
    "consensus": Score("consensus", consensus, CONSENSUS_NEEDS, True, 2, CONSENSUS_DOC),
    # Several annotators (issue [2/7]): CROWDLAB on the out-of-fold probabilities. Only in runs
    # whose data has annotators (`ANNOTATION_NEEDS`); "all" leaves them out of the others.
    "consensus_label": Score("consensus_label", consensus_label, ("annotations", "oof_probs"), False, 1, CONSENSUS_LABEL_DOC, per_run=False, label_valued=True),  # noqa: E501
    "consensus_quality": Score("consensus_quality", consensus_quality, ("annotations", "oof_probs"), False, 1, CONSENSUS_QUALITY_DOC, per_run=False),  # noqa: E501
    "annotator_agreement": Score("annotator_agreement", annotator_agreement, ("annotations", "oof_probs"), False, 1, ANNOTATOR_AGREEMENT_DOC, per_run=False),  # noqa: E501
    # Image properties (issue 24) as CleanVision defines them, from the pixels and the stored
    # sizes. Only in image runs (`IMAGE_NEEDS`); "all" leaves them out of text runs.
    "dark": Score("dark", dark, ("images",), True, 1, DARK_DOC, per_run=False, label_free=True),  # noqa: E501
    "light": Score("light", light, ("images",), True, 1, LIGHT_DOC, per_run=False, label_free=True),  # noqa: E501
    "blurry": Score("blurry", blurry, ("images",), True, 1, BLURRY_DOC, per_run=False, label_free=True),  # noqa: E501
    "low_information": Score("low_information", low_information, ("images",), True, 1, LOW_INFORMATION_DOC, per_run=False, label_free=True),  # noqa: E501
    "grayscale": Score("grayscale", grayscale, ("images",), True, 1, GRAYSCALE_DOC, per_run=False, label_free=True),  # noqa: E501
    "odd_aspect_ratio": Score("odd_aspect_ratio", odd_aspect_ratio, ("image_sizes",), True, 1, ODD_ASPECT_RATIO_DOC, per_run=False, label_free=True),  # noqa: E501
    "odd_size": Score("odd_size", odd_size, ("image_sizes",), True, 1, ODD_SIZE_DOC, per_run=False, label_free=True),  # noqa: E501
}
# fmt: on


# The recorded arrays only a run with several annotators has: scores needing them are left
# out of "all" for other runs (`available`), and asking for one by name there is an error.
ANNOTATION_NEEDS = frozenset({"annotations"})
# Likewise the arrays only an image run has (pixels, stored sizes): text runs leave out the
# scores that need them, and `absent_reasons` says why (summary.json's `absent_scores`).
IMAGE_NEEDS = frozenset({"images", "image_sizes"})
IMAGE_ONLY_REASON = "an image property: this run's inputs are texts, not images"


def available(keys: Sequence[str], has_annotations: bool, modality: str | None = None) -> list[str]:
    """`keys` (resolved) that a run can compute: without annotators, those needing them go;
    on text, the image properties go.

    Parameters
    ----------
    keys : sequence of str
        Resolved registry keys.
    has_annotations : bool
        Whether the run's data has several annotators per example.
    modality : {"image", "text"} or None
        The data's inputs; None (not known yet, before the data is loaded) keeps the
        image-only scores.

    Returns
    -------
    list of str
    """
    absent = absent_reasons(keys, has_annotations, modality)
    return [k for k in keys if k not in absent]


def absent_reasons(
    keys: Sequence[str], has_annotations: bool, modality: str | None = None
) -> dict[str, str]:
    """The `keys` (resolved) a run cannot compute, each with one line saying why.

    Parameters
    ----------
    keys : sequence of str
        Resolved registry keys.
    has_annotations : bool
        Whether the run's data has several annotators per example.
    modality : {"image", "text"} or None
        The data's inputs; None keeps the image-only scores.

    Returns
    -------
    dict of str to str
        In the order of `keys`.
    """
    reasons = {}
    for k in keys:
        needs = set(REGISTRY[k].needs)
        if not has_annotations and ANNOTATION_NEEDS & needs:
            reasons[k] = "needs several annotators per example (--annotator-cols or --annotations)"
        elif modality not in (None, "image") and IMAGE_NEEDS & needs:
            reasons[k] = IMAGE_ONLY_REASON
    return reasons


@dataclass
class ScoreResult:
    """A computed score: the value shown per example, and the per-run values behind it."""

    key: str
    values: np.ndarray  # (N,) float64: mean over runs (or the single value)
    per_run: np.ndarray | None  # (R, N) float64, or None for a score computed once


def resolve(keys: Sequence[str]) -> list[str]:
    """Expand and check requested score keys.

    Parameters
    ----------
    keys : sequence of str
        Registry keys, or ``("all",)`` for every registered score (in registry order).

    Returns
    -------
    list of str
        The keys, de-duplicated, in the order given.

    Raises
    ------
    InputError
        If no key is given or a key is not registered; the message lists the valid keys.
    """
    if isinstance(keys, str):  # a lone "el2n" is one key, not four characters
        keys = (keys,)
    valid = ", ".join(REGISTRY)
    if not keys:
        raise InputError(f"no scores requested; choose 'all' or some of: {valid}")
    if "all" in keys:
        return list(REGISTRY)
    unknown = [k for k in keys if k not in REGISTRY]
    if unknown:
        raise InputError(
            f"unknown score{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid keys are: all, {valid}"
        )
    return list(dict.fromkeys(keys))


def compute(key: str, arrays: Mapping[str, Any]) -> ScoreResult:
    """Compute one registered score from a run's recorded arrays.

    Parameters
    ----------
    key : str
        A registry key.
    arrays : mapping of str to array
        Recorded arrays by name; only the score's `needs` are read.

    Returns
    -------
    ScoreResult
        `values` of shape (n_examples,), the mean over runs for a per-run score, and
        `per_run` of shape (n_runs, n_examples) (None for a score computed once).

    Raises
    ------
    InputError
        If the key is unknown, a needed array is missing, or the arrays are invalid.
    """
    if key not in REGISTRY:  # "all" included: one call computes one score
        raise InputError(f"unknown score {key!r}; valid keys are: {', '.join(REGISTRY)}")
    score = REGISTRY[key]
    missing = [name for name in score.needs if name not in arrays]
    if missing:
        raise InputError(
            f"score {key!r} needs the recorded array{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}, which the run did not record; re-run scoring with "
            f"{key!r} requested"
        )
    out = np.asarray(score.fn(**{name: arrays[name] for name in score.needs}), dtype=np.float64)
    if score.per_run:
        return ScoreResult(key, out.mean(axis=0), out)  # (N,), (R, N)
    return ScoreResult(key, out, None)


def hardness(values: np.ndarray, higher_is_harder: bool) -> np.ndarray:
    """Score values as float64, oriented so that larger always means harder / more suspect."""
    values = np.asarray(values, dtype=np.float64)
    return values if higher_is_harder else -values

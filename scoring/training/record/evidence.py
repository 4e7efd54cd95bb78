"""The optional evidence `end_run` takes, checked and packed as a run's end file holds it.

Held-out logits with their labels (and ids, and features) give test accuracy, held-out
label quality and leakage; penultimate features give the map and the label-free stand-ins.
Each function returns the arrays to add to the run's end flush (`scratch.end_file`), empty
when the evidence was not given, or raises an InputError naming the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.errors import InputError
from scoring.training.record.epochs import softmax
from scoring.training.record.examples import Examples
from scoring.training.record.inputs import host, int_vector


def held_out_arrays(
    ex: Examples, test_logits: Any, test_labels: Any, test_ids: Any, test_features: Any
) -> dict[str, np.ndarray]:
    """The held-out rows of a run's end (see `Recorder.end_run` for the arguments).

    Returns
    -------
    dict of str to ndarray
        Empty without `test_logits`; else ``test_ids`` (M,) int64, ``test_labels`` (M,)
        int64, ``test_probs`` (M, K) float32 and, when given, ``test_features`` (M, D).
    """
    if (test_logits is not None) != (test_labels is not None):
        raise InputError("end_run: give test_logits and test_labels together")
    if test_logits is None:
        if test_features is not None:
            raise InputError("end_run: test_features go with test_logits and test_labels")
        return {}
    k = ex.n_classes
    probs = softmax(host(test_logits))
    labels = int_vector(test_labels, "test_labels")
    if probs.ndim != 2 or probs.shape != (labels.shape[0], k):
        raise InputError(
            f"test_logits: expected shape ({labels.shape[0]}, {k}) for "
            f"{labels.shape[0]} test labels, got {tuple(probs.shape)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise InputError(f"test_labels: expected class indices in [0, {k})")
    ids = ex.test_ids(test_ids, labels.shape[0])
    arrays = {"test_ids": ids, "test_labels": labels, "test_probs": probs}
    if test_features is not None:
        tf = host(test_features)
        if tf.ndim != 2 or tf.shape[0] != ids.shape[0]:
            raise InputError(
                f"test_features: expected shape ({ids.shape[0]}, n_features), got {tuple(tf.shape)}"
            )
        arrays["test_features"] = tf
    return arrays


def feature_arrays(ex: Examples, features: Any, feature_ids: Any) -> dict[str, np.ndarray]:
    """A run's penultimate features: empty without them; else ``feature_pos`` (n,), their
    rows in the run's order, and ``features`` (n, D) float32, finite."""
    if features is None:
        return {}
    feats = host(features)
    fpos = ex.given_order_rows() if feature_ids is None else ex.rows(feature_ids)
    if feats.ndim != 2 or feats.shape[0] != fpos.shape[0]:
        raise InputError(
            f"features: expected shape ({fpos.shape[0]}, n_features), got {tuple(feats.shape)}"
        )
    if not np.isfinite(feats).all():
        raise InputError("features: expected finite numbers, got NaN or infinite values")
    return {"feature_pos": fpos, "features": feats}

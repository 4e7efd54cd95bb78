"""Synthetic label noise (three kinds) and how well a score finds the noisy examples.

Kinds (`NoiseConfig.kind`, `--noise-kind`), `fraction` = p:

- ``uniform`` (Data Diet's recipe, Paul et al. 2021): round(p * N) examples picked at
  random have their labels permuted among themselves. The class histogram is unchanged; an
  example whose label lands on its own class is not noisy, so fewer than p * N change
  (about half of them with two classes).
- ``asymmetric`` (Patrini et al. 2017): class-conditional flips to one fixed confusable
  class. In each *source* class c exactly round(p * n_c) examples, picked at random, get
  the label `target[c]`. When the label names are CIFAR-10's, the paper's map: truck ->
  automobile, bird -> airplane, deer -> horse, cat <-> dog (the five other classes keep
  their labels, so about p / 2 of all labels change). For any other data every class is a
  source and `target[c]` is the class a cheap model confuses c with most
  (`confusable_classes`): with two classes, simply the other one.
- ``pair`` ("pair flipping", Han et al. 2018): every class c flips to c + 1 (mod K), exactly
  round(p * n_c) examples per class, so p of the labels change (up to rounding).

Every kind is a pure function of the labels (and, for `asymmetric` on non-CIFAR data, the
inputs), the fraction and the seed: the same request gives the same noisy labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from scoring.config import NOISE_KINDS
from scoring.errors import InputError
from scoring.scores.registry import hardness

# Patrini et al. (2017), Sec. 5: the CIFAR-10 flips that mimic real annotators' confusions.
CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_CONFUSABLE = {
    "truck": "automobile",
    "bird": "airplane",
    "deer": "horse",
    "cat": "dog",
    "dog": "cat",
}
# The confusion model sees at most this many examples (stratified): enough to find which
# class each is confused with, cheap on any source size.
CONFUSION_MAX_EXAMPLES = 5000
CONFUSION_SEED = 0  # fixed: the map belongs to the dataset, not to a noise draw
_POOLED_SIDE = 8  # images are block-averaged to at most 8 x 8 per channel for the model


def inject_noise(
    labels: np.ndarray,
    fraction: float,
    seed: int,
    kind: str = "uniform",
    *,
    label_names: Sequence[str] | None = None,
    inputs: np.ndarray | list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a fraction of the labels the way `kind` says (see the module docstring).

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        Clean class ids in [0, n_classes).
    fraction : float in [0, 1)
        p: the share of examples picked (`uniform`), or of each source class flipped
        (`asymmetric`, `pair`).
    seed : int
        Which examples are picked.
    kind : {"uniform", "asymmetric", "pair"}
    label_names : sequence of str of length n_classes, optional
        Needed by `asymmetric` and `pair` (they give K, and CIFAR-10's names select
        Patrini's map).
    inputs : ndarray of shape (n_examples, ...) or list of n_examples texts, optional
        Needed by `asymmetric` on data whose names are not CIFAR-10's and with more than two
        classes: the confusion model reads them.

    Returns
    -------
    noisy_labels : ndarray of shape (n_examples,)
    noisy : ndarray of shape (n_examples,), bool
        True where the label actually changed.
    """
    if not 0 <= fraction < 1:
        raise InputError(f"--noise must be a fraction in [0, 1), got {fraction}")
    if kind not in NOISE_KINDS:  # the config checked it already; a direct caller may not
        raise InputError(f"--noise-kind must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")
    rng = np.random.default_rng(seed)
    if kind == "uniform":  # the original recipe, draw for draw: old runs keep their labels
        picked = rng.choice(labels.shape[0], size=round(fraction * labels.shape[0]), replace=False)
        noisy_labels = labels.copy()
        noisy_labels[picked] = labels[rng.permutation(picked)]
        return noisy_labels, noisy_labels != labels
    if label_names is None:
        raise InputError(f"--noise-kind {kind} needs the label names")
    targets = flip_targets(kind, labels, label_names, inputs)
    return flip_to_targets(labels, targets, fraction, rng)


def flip_targets(
    kind: str,
    labels: np.ndarray,
    label_names: Sequence[str],
    inputs: np.ndarray | list | None = None,
) -> np.ndarray:
    """The class each class flips to under `kind` ("asymmetric" or "pair"); -1 = never flips.

    Returns
    -------
    ndarray of shape (n_classes,), int64
    """
    k = len(label_names)
    if kind == "pair":
        return (np.arange(k) + 1) % k
    if kind != "asymmetric":
        raise InputError(f"flip targets exist for asymmetric and pair noise, not {kind!r}")
    if tuple(label_names) == CIFAR10_NAMES:
        index = {name: i for i, name in enumerate(CIFAR10_NAMES)}
        targets = np.full(k, -1, dtype=np.int64)
        for source, target in CIFAR10_CONFUSABLE.items():
            targets[index[source]] = index[target]
        return targets
    if inputs is None and k > 2:
        raise InputError("--noise-kind asymmetric needs the inputs to find confusable classes")
    return confusable_classes(labels, inputs, k)


def flip_to_targets(
    labels: np.ndarray, targets: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """In each class c with targets[c] >= 0, relabel exactly round(p * n_c) random examples.

    Classes are visited in order 0..K-1, each drawing from `rng`, so the result is a pure
    function of the labels, the targets, p and the generator's seed.

    Returns
    -------
    noisy_labels : ndarray of shape (n_examples,)
    noisy : ndarray of shape (n_examples,), bool
    """
    noisy_labels = labels.copy()
    for c, target in enumerate(targets):
        if target < 0 or target == c:
            continue
        members = np.flatnonzero(labels == c)
        picked = rng.choice(members, size=round(fraction * members.shape[0]), replace=False)
        noisy_labels[picked] = target
    return noisy_labels, noisy_labels != labels


def confusable_classes(
    labels: np.ndarray, inputs: np.ndarray | list | None, n_classes: int
) -> np.ndarray:
    """For each class, the other class a cheap model confuses it with most.

    The model is a logistic regression, 3-fold cross-validated (out-of-fold predictions) on
    the clean labels, over label-free features: images block-averaged to at most 8 x 8 per
    channel, texts as TF-IDF of words and word pairs (a sentence pair joined by " | "). At
    most `CONFUSION_MAX_EXAMPLES` examples (stratified, fixed seed). The soft confusion
    C[c, j] = mean over examples of class c of p_oof(j | x); target[c] = argmax over j != c
    of C[c, j] (the lower class on a tie). With two classes the other class, no model.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
    inputs : ndarray of shape (n_examples, n_channels, height, width) or list of texts
    n_classes : int

    Returns
    -------
    ndarray of shape (n_classes,), int64
    """
    if n_classes == 2:
        return np.array([1, 0], dtype=np.int64)
    confusion = soft_confusion(labels, inputs, n_classes)
    np.fill_diagonal(confusion, -np.inf)
    return confusion.argmax(axis=1).astype(np.int64)


def soft_confusion(labels: np.ndarray, inputs: np.ndarray | list, n_classes: int) -> np.ndarray:
    """C of shape (n_classes, n_classes): row c = mean out-of-fold probabilities of class c.

    A class with no example has a zero row.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    keep = _stratified_subset(labels, CONFUSION_MAX_EXAMPLES, CONFUSION_SEED)
    y = labels[keep]
    x = _features(inputs, keep)
    present = np.unique(y)
    folds = int(min(3, np.bincount(y)[present].min()))
    model = LogisticRegression(max_iter=300, C=1.0)
    if folds >= 2:
        cv = StratifiedKFold(folds, shuffle=True, random_state=CONFUSION_SEED)
        probs = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    else:  # a class with one example cannot be held out: in-sample is all there is
        probs = model.fit(x, y).predict_proba(x)
    full = np.zeros((len(y), n_classes))
    full[:, present] = probs  # columns come in sorted class order
    confusion = np.zeros((n_classes, n_classes))
    for c in present:
        confusion[c] = full[y == c].mean(axis=0)
    return confusion


def _stratified_subset(labels: np.ndarray, most: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `most` examples, each class in proportion (at least one)."""
    if labels.shape[0] <= most:
        return np.arange(labels.shape[0])
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = max(1, round(most * members.shape[0] / labels.shape[0]))
        keep.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def _features(inputs: Any, keep: np.ndarray) -> np.ndarray:
    """Label-free features of the kept examples: pooled pixels (standardized) or TF-IDF."""
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "biuf":
        x = inputs[keep].astype(np.float32)
        if x.ndim == 4:  # (N, C, H, W): block means down to at most 8 x 8
            n, c, h, w = x.shape
            fh, fw = max(1, h // _POOLED_SIDE), max(1, w // _POOLED_SIDE)
            x = x[:, :, : h // fh * fh, : w // fw * fw]
            x = x.reshape(n, c, h // fh, fh, w // fw, fw).mean(axis=(3, 5))
        x = x.reshape(len(keep), -1)
        std = x.std(axis=0)
        return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [" | ".join(t) if isinstance(t, tuple) else str(t) for t in (inputs[i] for i in keep)]
    return TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit_transform(texts)


def noise_detection(
    values: np.ndarray, noisy: np.ndarray, higher_is_harder: bool
) -> dict[str, float | None]:
    """AUROC and precision@k (k = number of noisy) of ranking noisy examples first.

    Parameters
    ----------
    values : ndarray of shape (n_examples,)
    noisy : ndarray of shape (n_examples,), bool

    Returns
    -------
    dict with `noise_auroc` and `noise_precision_at_k` (None when there is no noisy or no
    clean example). Ties in precision@k are broken by example order (stable sort), so a
    binary score such as `cl_issue` is not credited with a lucky order.
    """
    k = int(noisy.sum())
    if k == 0 or k == noisy.shape[0]:
        return {"noise_auroc": None, "noise_precision_at_k": None}
    h = hardness(values, higher_is_harder)
    top = np.argsort(-h, kind="stable")[:k]
    return {
        "noise_auroc": float(roc_auc_score(noisy, h)),
        "noise_precision_at_k": float(noisy[top].mean()),
    }

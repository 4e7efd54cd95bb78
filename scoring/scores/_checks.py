"""Shared validation of the recorded arrays a score reads.

Every public score function calls `checked(...)` once, at its top, with its arguments by
name; the private arithmetic after it assumes valid input. The names are the recorded-array
names (`RECORDED`), so one table fixes the shape and kind of each, and one `_Dims` per call
makes N, K, R, T and D agree across the arguments. Errors name the argument and give the
expected and the actual shape.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.errors import InputError

FloatArray = npt.NDArray[np.float64]

# Axis letters as in comments; the words are the docstring names.
_DIM_WORDS = {
    "R": "n_runs",
    "T": "n_epochs",
    "N": "n_examples",
    "K": "n_classes",
    "D": "n_features",
    "M": "n_test",
    "A": "n_annotators",
    "C": "n_channels",
    "H": "height",
    "W": "width",
    "S": "2",  # (width, height) of an image
}
# Axes that may be empty: a run without held-out rows has no test embeddings.
_MAY_BE_EMPTY = frozenset("M")

# name -> (axes, kind). The kind says what the values must be:
#   labels: integers in [0, K); float: finite reals; prob: finite reals in [0, 1];
#   bool: booleans (or 0/1 numbers); prior: probabilities that sum to 1; count: an int >= 1;
#   nonneg: finite reals >= 0 (norms, variances); votes: class ids in [0, K) or -1 (no vote);
#   pixels: integers 0..255 with 1 or 3 channels; sizes: integer (width, height) pairs >= 1.
_SPECS: dict[str, tuple[str, str]] = {
    "labels": ("N", "labels"),
    "loss": ("RTN", "float"),
    "logit_given": ("RTN", "float"),
    "logit_other": ("RTN", "float"),
    "prob_given": ("RTN", "prob"),
    "correct": ("RTN", "bool"),
    "probs_early": ("RNK", "prob"),
    "probs_final": ("RNK", "prob"),
    "features": ("RND", "float"),
    "features_free": ("ND", "float"),  # label-independent embeddings, once per run folder
    "features_free_test": ("MD", "float"),  # the held-out/test rows' embeddings, same transform
    "label_prior": ("K", "prior"),
    "oof_probs": ("NK", "prob"),
    "n_prototypes": ("", "count"),
    # Several annotators' class ids per example, -1 where one did not vote (data/annotators.py).
    "annotations": ("NA", "votes"),
    # Gradient quantities, one per run and example (scoring/grad_arrays.py).
    "grad_norm": ("RN", "nonneg"),
    "grad_free_norm": ("RN", "nonneg"),
    "grad_logit_sq": ("RN", "nonneg"),
    "tracin_self": ("RN", "nonneg"),
    "input_grad_var": ("RN", "nonneg"),
    # Image runs (scores/image_properties.py): the decoded pixels as shown (0..255, one size
    # for the whole set) and each image's stored (width, height) before that resize.
    "images": ("NCHW", "pixels"),
    "image_sizes": ("NS", "sizes"),
}

# The names a registry entry may list in `needs`.
RECORDED: tuple[str, ...] = tuple(_SPECS)

# Softmax outputs can overshoot [0, 1] by rounding only; anything more is not a probability.
_PROB_TOL = 1e-6
_PRIOR_SUM_TOL = 1e-3


def checked(**arrays: Any) -> tuple[Any, ...]:
    """Validate recorded arrays given by name; return them converted, in the order given.

    Floating arrays keep their dtype (float32 recordings are not copied to float64);
    integer-valued float inputs become float64, labels become intp, `correct` becomes bool,
    `n_prototypes` becomes an int.

    Raises
    ------
    InputError
        When an array cannot be read as numbers, has the wrong number of dimensions, a size
        that disagrees with another argument, an empty axis, or values out of range.
    """
    dims = _Dims()
    out: dict[str, Any] = {}
    for name, value in arrays.items():
        axes, kind = _SPECS[name]
        if kind == "count":
            out[name] = _count(name, value)
            continue
        arr = _as_numeric(name, value)
        dims.check(name, arr, axes)
        out[name] = _convert(name, arr, kind)
    # Label range needs K, which any argument may have fixed, so it is checked last.
    if "labels" in out and "K" in dims.sizes:
        _check_label_range(out["labels"], *dims.sizes["K"])
    if "annotations" in out and "K" in dims.sizes:
        _check_votes(out["annotations"], *dims.sizes["K"])
    return tuple(out.values())


class _Dims:
    """Sizes of N, K, R, T, D seen so far in one call, with the argument that fixed each."""

    def __init__(self) -> None:
        self.sizes: dict[str, tuple[int, str]] = {}

    def check(self, name: str, arr: np.ndarray, axes: str) -> None:
        expected = _shape_words(axes)
        if arr.ndim != len(axes):
            raise InputError(
                f"{name}: expected shape {expected}, got {arr.shape} "
                f"({arr.ndim} dimension{'s' if arr.ndim != 1 else ''} instead of {len(axes)})"
            )
        for axis, size in zip(axes, arr.shape, strict=True):
            if axis in self.sizes and self.sizes[axis][0] != size:
                known, source = self.sizes[axis]
                raise InputError(
                    f"{name}: expected shape {expected} with {_DIM_WORDS[axis]}={known} "
                    f"matching {source}, got {arr.shape}"
                )
            if size == 0 and axis not in _MAY_BE_EMPTY:
                raise InputError(
                    f"{name}: expected shape {expected} with at least one entry along "
                    f"{_DIM_WORDS[axis]}, got {arr.shape}"
                )
        for axis, size in zip(axes, arr.shape, strict=True):
            self.sizes.setdefault(axis, (size, name))


def _shape_words(axes: str) -> str:
    words = [_DIM_WORDS[a] for a in axes]
    return f"({words[0]},)" if len(words) == 1 else f"({', '.join(words)})"


def _as_numeric(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged nested lists and the like
        raise InputError(f"{name}: cannot be read as a numeric array ({err})") from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _convert(name: str, arr: np.ndarray, kind: str) -> np.ndarray:
    if kind in ("pixels", "sizes"):
        return _image_array(name, arr, kind)
    if kind == "votes":
        if arr.dtype.kind not in "iu":
            raise InputError(
                f"{name}: expected integer class indices with -1 for no vote, got dtype "
                f"{arr.dtype}; map label names to 0..n_classes-1 and missing votes to -1 first"
            )
        if arr.min() < -1:
            raise InputError(f"{name}: expected class indices >= -1, got minimum {arr.min()}")
        return arr.astype(np.intp, copy=False)
    if kind == "labels":
        if arr.dtype.kind not in "iu":
            raise InputError(
                f"{name}: expected integer class indices, got dtype {arr.dtype}; "
                "map label names to 0..n_classes-1 first"
            )
        if arr.min() < 0:
            raise InputError(f"{name}: expected class indices >= 0, got minimum {arr.min()}")
        return arr.astype(np.intp, copy=False)
    if kind == "bool":
        if arr.dtype.kind == "b":
            return arr
        bad = ~np.isin(arr, (0, 1))
        if bad.any():
            raise InputError(
                f"{name}: expected booleans (or 0/1), got {int(bad.sum())} other values, "
                f"e.g. {arr[bad].flat[0]}"
            )
        return arr.astype(bool)
    if arr.dtype.kind == "b":
        raise InputError(f"{name}: expected real numbers, got dtype bool")
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    n_bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if n_bad:
        raise InputError(f"{name}: expected finite numbers, got {n_bad} NaN or infinite values")
    if kind in ("prob", "prior"):
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -_PROB_TOL or hi > 1 + _PROB_TOL:
            raise InputError(
                f"{name}: expected probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]"
                " (logits instead of softmax outputs?)"
            )
    if kind == "nonneg" and float(arr.min()) < 0:
        raise InputError(
            f"{name}: expected values >= 0 (a norm or a variance), got minimum {arr.min():.4g}"
        )
    if kind == "prior":
        total = float(arr.sum(dtype=np.float64))
        if abs(total - 1.0) > _PRIOR_SUM_TOL:
            raise InputError(f"{name}: expected frequencies that sum to 1, got sum {total:.6g}")
    return arr


def _image_array(name: str, arr: np.ndarray, kind: str) -> np.ndarray:
    """Pixels as uint8 (N, 1 or 3, H, W); sizes as int64 (N, 2) of positive integers."""
    if arr.dtype.kind not in "iu":
        what = "uint8 pixels 0..255" if kind == "pixels" else "integer (width, height) pairs"
        raise InputError(f"{name}: expected {what}, got dtype {arr.dtype}")
    if kind == "pixels":
        if arr.shape[1] not in (1, 3):
            raise InputError(
                f"{name}: expected 1 (gray) or 3 (RGB) channels along axis 1, got {arr.shape}"
            )
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InputError(f"{name}: expected pixels in [0, 255], got values in [{lo}, {hi}]")
        return arr.astype(np.uint8, copy=False)
    if arr.shape[1] != 2:
        raise InputError(f"{name}: expected shape (n_examples, 2) (width, height), got {arr.shape}")
    if int(arr.min()) < 1:
        raise InputError(f"{name}: expected sizes >= 1 pixel, got minimum {int(arr.min())}")
    return arr.astype(np.int64, copy=False)


def _check_label_range(labels: np.ndarray, n_classes: int, source: str) -> None:
    top = int(labels.max())
    if top >= n_classes:
        raise InputError(
            f"labels: expected class indices in [0, {n_classes}) with n_classes={n_classes} "
            f"from {source}, got a label {top}"
        )


def _check_votes(votes: np.ndarray, n_classes: int, source: str) -> None:
    """Votes index the classes; every example has one; two or more annotators voted."""
    top = int(votes.max())
    if top >= n_classes:
        raise InputError(
            f"annotations: expected class indices in [0, {n_classes}) with "
            f"n_classes={n_classes} from {source}, got a vote {top}"
        )
    voted = votes >= 0  # (N, A)
    if not voted.any(axis=1).all():
        row = int(np.flatnonzero(~voted.any(axis=1))[0])
        raise InputError(f"annotations: every example needs a vote, example {row} has none")
    if int(voted.any(axis=0).sum()) < 2:
        raise InputError(
            "annotations: expected votes from two or more annotators, got "
            f"{int(voted.any(axis=0).sum())}"
        )


def _count(name: str, value: Any) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):  # an int subclass, but never a count
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise InputError(f"{name}: expected a positive integer, got {value!r}") from None
    if n < 1:
        raise InputError(f"{name}: expected a positive integer, got {n}")
    return n

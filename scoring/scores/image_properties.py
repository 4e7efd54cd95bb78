"""Image properties as CleanVision defines them: dark, light, blurry, low information,
grayscale, odd aspect ratio, odd size; and Datalab's spurious-correlation check on them.

CleanVision (cleanlab's `cleanvision` 0.3.7, `issue_managers/image_property.py` and the
defaults of `image_property_issue_manager.py`) gives each image a score in [0, 1] where
**lower** means more affected, and flags it when the score is below a threshold. Winnow's
columns are oriented like every other score here, **higher = more affected**: each column is
``1 - CleanVision's score`` (`THRESHOLDS` = ``1 - CLEANVISION_THRESHOLDS``; a row is flagged
when its value is above its threshold, `flags`). The definitions, on uint8 pixels 0..255:

- ``dark``: 1 - the 99th percentile of per-pixel brightness
  ``sqrt(0.241 R² + 0.691 G² + 0.068 B²) / 255`` (a gray pixel: value / 255).
- ``light``: the 5th percentile of the same brightness.
- ``low_information``: ``1 - min(0.1 * entropy, 1)``, entropy (bits) of PIL's histogram of
  all channels together (768 bins for RGB). For images of fewer than 1,024 values (under
  32x32 gray) the 10 bits become log2 of the values an image holds, the most its histogram
  can carry: a departure that leaves CleanVision's definition unchanged from 32x32 gray up.
- ``blurry``: ``1 - min(b + c, 1)`` with ``b = 1 - exp(-0.01 * std(edges))`` (PIL's
  FIND_EDGES on the gray image, shrunk first to at most 64 px a side) and
  ``c = 1 - exp(-0.01 * std(gray histogram))`` when above 0.18, else 0: a very peaked
  histogram (a near-constant image) is low information, not blurry. One departure: the std
  is over the edge image's interior. PIL copies the one-pixel border unfiltered, so
  CleanVision counts the border's brightness as edges: 12% of a 32x32 image, enough that it
  found 11 of 40 CIFAR-10 images blurred with sigma 2; on the interior, all 40.
- ``grayscale``: 1 when the image has one channel or R = G = B at every pixel, else 0.
  CleanVision asks the file's mode ("L"); pixels decoded to one mode for the whole set keep
  no mode, and a gray image decoded among colour ones has equal channels, so that is the
  test here (which also catches gray pictures saved as RGB, which CleanVision misses).
- ``odd_aspect_ratio``: ``1 - min(w / h, h / w)`` of the stored width and height.
- ``odd_size``: ``|sqrt(w h) - mid| / gap`` clipped to [0, 1], where ``mid`` and ``gap`` are
  the middle and width of the fence ``[Q1 - 3 IQR, Q3 + 3 IQR]`` of ``sqrt(w h)`` over the
  data; when every size sits at the same quartiles (IQR 0), ``gap`` is ``mid`` and any size
  off it is flagged (CleanVision's threshold 1.0 then).

The pixel properties are computed vectorised in numpy on blocks of images: the very
arithmetic of CleanVision's PIL calls (the same integer gray conversion and 3x3 edge kernel,
the same percentiles; bar blurry's border, above), checked against its property classes in
`tests/scores/test_image_properties.py`. The seven took 0.3 s for 2,000 CIFAR-10 images,
against 1.9-2.3 s for CleanVision's `Imagelab` with its decoding (`python bench/health.py`).
Images larger than 64 px a side are shrunk for `blurry` with PIL's own resize, as
CleanVision does.

`spurious_correlation` is per dataset, not per row: Datalab's check of whether one property
alone predicts the label.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.errors import InputError
from scoring.scores._checks import FloatArray, checked

# The seven properties, in registry order; the first five read pixels, the last two sizes.
PROPERTIES = (
    "dark",
    "light",
    "blurry",
    "low_information",
    "grayscale",
    "odd_aspect_ratio",
    "odd_size",
)

# CleanVision's default thresholds on its own scores (lower = more affected, flagged below;
# `ImagePropertyIssueManager.get_default_params`). Grayscale has none (a 0/1 score) and
# odd size's depends on the data (`odd_size_threshold`).
CLEANVISION_THRESHOLDS = {
    "dark": 0.32,
    "light": 0.05,
    "blurry": 0.29,
    "low_information": 0.3,
    "odd_aspect_ratio": 0.35,
}
# The same thresholds on Winnow's columns (1 - CleanVision's score): flagged above. Two
# depart, both measured on CIFAR-10 with injected faults (bench/health.py, docs/benchmarks.md):
# - light: the mirror of dark's (5th percentile of brightness above 0.68, as dark is its 99th
#   below 0.32). CleanVision's 0.95 flags only near-white frames: it flagged none of 40
#   photos brightened the way the darkened ones were darkened (x0.2 toward white), which
#   the mirror flags all of, with 0-0.1% of clean rows.
# - blurry: 0.8 on the interior-edge definition below (`_blur_stats`), chosen on seed 0 of
#   the benchmark and reported on fresh seeds; CleanVision's 0.71 flags 1.9-2.5% of clean rows
#   there.
THRESHOLDS = {key: round(1.0 - t, 12) for key, t in CLEANVISION_THRESHOLDS.items()}
THRESHOLDS["light"] = THRESHOLDS["dark"]
THRESHOLDS["blurry"] = 0.8
THRESHOLDS["grayscale"] = 0.5  # the column is 0 or 1
# More than this share of gray images makes a gray dataset: none is flagged as an issue
# (`property_summary`); the score column still says which images are gray.
GRAY_DATASET_SHARE = 0.5
LOW_INFORMATION_FACTOR = 0.1  # entropy (bits) -> score: 10 bits or more is full information
BLURRY_FACTOR = 0.01  # std of edges / of the gray histogram -> score, 1 - exp(-factor * std)
BLURRY_COLOR_THRESHOLD = 0.18  # the histogram term counts only above this
BLURRY_MAX_SIDE = 64  # images are shrunk to at most this side before finding edges
ODD_SIZE_IQR_FACTOR = 3.0  # the fence around the quartiles of sqrt(w h)
# Datalab's spurious-correlation check (cleanlab `SPURIOUS_CORRELATION_ISSUE`): a property
# whose score is below this predicts the label suspiciously well.
SPURIOUS_THRESHOLD = 0.3
SPURIOUS_FOLDS = 5  # Datalab: 5-fold cross-validated accuracy of Gaussian naive Bayes
_BLOCK_PIXELS = 1 << 22  # pixels per block of images: a 32 MB float64 brightness array
# CleanVision's brightness terms 0.241 R², 0.691 G², 0.068 B² for every byte, (3, 256): the
# very float64 products of its int64 squares, looked up instead of computed per pixel.
_BRIGHTNESS_TERMS = np.array([[0.241], [0.691], [0.068]]) * (np.arange(256, dtype=np.int64) ** 2)

DARK_DOC = """\
**Dark** (label-free, image property) — as CleanVision defines it: 1 − the 99th percentile
of the pixels' brightness √(0.241 R² + 0.691 G² + 0.068 B²) / 255. **Higher = darker**; a
row above 0.68 (CleanVision's default: its score below 0.32) is flagged dark.
"""

LIGHT_DOC = """\
**Light** (label-free, image property) — as CleanVision defines it: the 5th percentile of
the pixels' brightness √(0.241 R² + 0.691 G² + 0.068 B²) / 255. **Higher = lighter
(washed out)**; a row above 0.68 is flagged light, the mirror of dark's threshold
(CleanVision's 0.95 flags only near-white frames).
"""

BLURRY_DOC = """\
**Blurry** (label-free, image property) — CleanVision's: 1 − min(1, b + c),
b = 1 − exp(−0.01 · std of the edge image) (PIL's FIND_EDGES on the grayscale image, shrunk
to at most 64 px a side), c the same of the gray histogram's std when above 0.18 (a
near-constant image is low information, not blurry); the std over the edge image's
interior (PIL leaves the border unfiltered, which hid blur on small images). **Higher =
blurrier**; a row above 0.8 is flagged blurry.
"""

LOW_INFORMATION_DOC = """\
**Low information** (label-free, image property) — as CleanVision defines it:
1 − min(1, 0.1 · entropy in bits of the histogram of all channels) (below 1,024 values an
image, e.g. 8×8 digits, entropy / log2 of its values: the most it can hold). **Higher = less
information** (near-constant images); a row above 0.7 (CleanVision's default) is flagged.
"""

GRAYSCALE_DOC = """\
**Grayscale** (label-free, image property) — 1 when the image has one channel or equal
red, green and blue at every pixel, else 0 (CleanVision's grayscale issue; CleanVision reads
the file's mode, which decoding to one mode for the whole set does not keep). In a colour
dataset a 1 is a gray image; in a gray dataset every row is 1.
"""

ODD_ASPECT_RATIO_DOC = """\
**Odd aspect ratio** (label-free, image property) — as CleanVision defines it:
1 − min(w/h, h/w) of the stored width and height (before images are resized to one size).
**Higher = more elongated**; a row above 0.65 (CleanVision's default) is flagged.
"""

ODD_SIZE_DOC = """\
**Odd size** (label-free, image property) — as CleanVision defines it: how far √(w·h) of
the stored image lies from the middle of the fence [Q1 − 3·IQR, Q3 + 3·IQR] over the
data, as a fraction of the fence's width (clipped to [0, 1]). **Higher = odder size**; a
row above 0.5 is flagged (any size off the common one when the quartiles coincide).
"""


# -- the scores ------------------------------------------------------------------------------


def dark(*, images: npt.NDArray[np.uint8]) -> FloatArray:
    """CleanVision's dark score, oriented so that higher is darker.

    Parameters
    ----------
    images : ndarray of shape (n_examples, n_channels, height, width), uint8
        Pixels 0..255 with 1 (gray) or 3 (RGB) channels.

    Returns
    -------
    ndarray of shape (n_examples,)
        1 - the 99th percentile of pixel brightness, in [0, 1].
    """
    (images,) = checked(images=images)
    return 1.0 - _brightness_percentile(images, 99)


def light(*, images: npt.NDArray[np.uint8]) -> FloatArray:
    """CleanVision's light score, oriented so that higher is lighter.

    Parameters
    ----------
    images : ndarray of shape (n_examples, n_channels, height, width), uint8

    Returns
    -------
    ndarray of shape (n_examples,)
        The 5th percentile of pixel brightness, in [0, 1].
    """
    (images,) = checked(images=images)
    return _brightness_percentile(images, 5)  # CleanVision's score is 1 - this


def blurry(*, images: npt.NDArray[np.uint8]) -> FloatArray:
    """CleanVision's blurry score, oriented so that higher is blurrier.

    Parameters
    ----------
    images : ndarray of shape (n_examples, n_channels, height, width), uint8

    Returns
    -------
    ndarray of shape (n_examples,)
        In [0, 1].
    """
    (images,) = checked(images=images)
    edges_std, hist_std = _blur_stats(images)  # (N,), (N,)
    blur = 1.0 - np.exp(-1.0 * edges_std * BLURRY_FACTOR)
    color = 1.0 - np.exp(-1.0 * hist_std * BLURRY_FACTOR)
    color[color <= BLURRY_COLOR_THRESHOLD] = 0.0
    return 1.0 - np.minimum(blur + color, 1.0)


def low_information(*, images: npt.NDArray[np.uint8]) -> FloatArray:
    """CleanVision's low-information score, oriented so that higher is less information.

    Parameters
    ----------
    images : ndarray of shape (n_examples, n_channels, height, width), uint8

    Returns
    -------
    ndarray of shape (n_examples,)
        ``1 - min(entropy / bits, 1)`` with ``bits = min(10, log2(C H W))``, in [0, 1]:
        CleanVision's ``1 - min(0.1 * entropy, 1)`` for images of 1,024 values or more.
    """
    (images,) = checked(images=images)
    score = _entropy(images) / _entropy_bits(images)
    score[score > 1] = 1.0
    return 1.0 - score


def _entropy_bits(images: np.ndarray) -> float:
    """The entropy counted as full information: CleanVision's 10 bits (its factor 0.1), or
    log2 of the values an image holds when fewer than 1,024. An 8x8 gray image has 64
    values, so at most 6 bits: against 10 every such image would read as low information
    (85% of scikit-learn's digits did, measured), however varied its pixels."""
    values = int(np.prod(images.shape[1:]))
    return min(1.0 / LOW_INFORMATION_FACTOR, float(np.log2(max(values, 2))))


def grayscale(*, images: npt.NDArray[np.uint8]) -> FloatArray:
    """1.0 where an image is gray (one channel, or equal channels everywhere), else 0.0.

    Parameters
    ----------
    images : ndarray of shape (n_examples, n_channels, height, width), uint8

    Returns
    -------
    ndarray of shape (n_examples,)
    """
    (images,) = checked(images=images)
    if images.shape[1] == 1:
        return np.ones(images.shape[0])
    flat = images.reshape(images.shape[0], 3, -1)  # (N, 3, H*W)
    gray = (flat[:, 0] == flat[:, 1]).all(axis=1) & (flat[:, 1] == flat[:, 2]).all(axis=1)
    return gray.astype(np.float64)


def odd_aspect_ratio(*, image_sizes: npt.NDArray[np.int64]) -> FloatArray:
    """CleanVision's odd-aspect-ratio score, oriented so that higher is more elongated.

    Parameters
    ----------
    image_sizes : ndarray of shape (n_examples, 2)
        Width and height of each stored image, before any resizing.

    Returns
    -------
    ndarray of shape (n_examples,)
        ``1 - min(w / h, h / w)``, in [0, 1).
    """
    (image_sizes,) = checked(image_sizes=image_sizes)
    width, height = image_sizes[:, 0].astype(np.float64), image_sizes[:, 1].astype(np.float64)
    return 1.0 - np.minimum(width / height, height / width)


def odd_size(*, image_sizes: npt.NDArray[np.int64]) -> FloatArray:
    """CleanVision's odd-size score, oriented so that higher is an odder size.

    Parameters
    ----------
    image_sizes : ndarray of shape (n_examples, 2)
        Width and height of each stored image, before any resizing.

    Returns
    -------
    ndarray of shape (n_examples,)
        Distance of ``sqrt(w h)`` from the middle of the IQR fence, as a fraction of the
        fence's width (of the middle when the IQR is 0), clipped to [0, 1].
    """
    (image_sizes,) = checked(image_sizes=image_sizes)
    side = _size_side(image_sizes)  # (N,)
    mid, gap = _size_fence(side)
    norm = gap if gap > 0 else mid
    return np.clip(np.absolute(side - mid) / norm, 0, 1)


# -- flags -----------------------------------------------------------------------------------


def odd_size_threshold(image_sizes: npt.NDArray[np.int64]) -> float:
    """The odd-size threshold for these sizes: 0.5, or 0.0 when the IQR fence is empty
    (CleanVision's 0.5 and 1.0 on its own scale: then any size off the middle is odd)."""
    (image_sizes,) = checked(image_sizes=image_sizes)
    _, gap = _size_fence(_size_side(image_sizes))
    return 0.5 if gap > 0 else 0.0


def thresholds(image_sizes: npt.NDArray[np.int64] | None = None) -> dict[str, float]:
    """Each property's threshold on its column (flagged above), in `PROPERTIES` order.

    Parameters
    ----------
    image_sizes : ndarray of shape (n_examples, 2), optional
        Needed for `odd_size`, whose threshold depends on the data; left out without it.

    Returns
    -------
    dict of str to float
    """
    found = {key: THRESHOLDS[key] for key in PROPERTIES if key in THRESHOLDS}
    if image_sizes is not None:
        found["odd_size"] = odd_size_threshold(image_sizes)
    return found


def flags(scores: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]:
    """Which rows a property flags: its column above its threshold (`thresholds`).

    Parameters
    ----------
    scores : array-like of shape (n_examples,)
        One property's column (higher = more affected).
    threshold : float

    Returns
    -------
    ndarray of shape (n_examples,), bool
    """
    return np.asarray(scores, dtype=np.float64) > threshold


# -- spurious correlation (per dataset) ------------------------------------------------------


def spurious_correlation(
    properties: Mapping[str, npt.ArrayLike], labels: npt.ArrayLike
) -> dict[str, float]:
    """How little each property alone says about the label: Datalab's spurious-correlation
    score per property (lower = the property predicts the label better).

    For each property, Gaussian naive Bayes on that one column, 5-fold stratified
    cross-validation (unshuffled, as ``cross_val_score(cv=5)`` in Datalab), and
    ``score = min(1, (1 - accuracy) / (1 - baseline))`` with the baseline the accuracy of
    always answering the most common label. Datalab flags a property whose score is below
    `SPURIOUS_THRESHOLD` (0.3): then a model can learn the label from, e.g., brightness.

    Two departures from cleanlab 2.9's code, both where it is wrong rather than different:
    its baseline is ``bincount(labels).argmax() / n`` (the *index* of the most common class
    over n, not its share), here the share; and a training fold where the property is
    constant (Gaussian naive Bayes divides by its zero variance and answers class 0) answers
    that fold's most common label instead, so a constant property scores 1 (no signal).

    Parameters
    ----------
    properties : mapping of str to array-like of shape (n_examples,)
        Property columns by name (any orientation: the check is invariant to it).
    labels : array-like of shape (n_examples,)
        Integer class ids.

    Returns
    -------
    dict of str to float
        Per property, in the order given, the score in [0, 1].

    Raises
    ------
    InputError
        When a column's length differs from the labels', a value is not finite, fewer than
        two classes are present, or no class has `SPURIOUS_FOLDS` examples.
    """
    columns, labels = _checked_properties(properties, labels)
    baseline = float(np.bincount(labels).max()) / labels.shape[0]
    return {
        name: _room_for_improvement(baseline, _cv_accuracy(col, labels))
        for name, col in columns.items()
    }


def _checked_properties(
    properties: Mapping[str, npt.ArrayLike], labels: npt.ArrayLike
) -> tuple[dict[str, FloatArray], npt.NDArray[np.intp]]:
    """`spurious_correlation`'s input, validated: float64 columns (N,) and labels (N,)."""
    (labels,) = checked(labels=labels)
    counts = np.bincount(labels)
    if int((counts > 0).sum()) < 2:
        raise InputError("spurious correlation: needs two or more classes among the labels")
    if int(counts.max()) < SPURIOUS_FOLDS:
        raise InputError(
            f"spurious correlation: needs a class with at least {SPURIOUS_FOLDS} examples "
            f"({SPURIOUS_FOLDS}-fold cross-validation), the largest has {int(counts.max())}"
        )
    columns = {}
    for name, values in properties.items():
        col = np.asarray(values, dtype=np.float64)
        if col.shape != labels.shape:
            raise InputError(
                f"spurious correlation: {name} has shape {col.shape}, expected "
                f"(n_examples,) = {labels.shape} like the labels"
            )
        if not np.isfinite(col).all():
            raise InputError(f"spurious correlation: {name} has NaN or infinite values")
        columns[name] = col
    return columns, labels


def _cv_accuracy(column: FloatArray, labels: npt.NDArray[np.intp]) -> float:
    """Mean accuracy of Gaussian naive Bayes on one column over stratified folds."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.naive_bayes import GaussianNB

    x = column[:, None]  # (N, 1)
    accs = []
    with warnings.catch_warnings():  # rare classes: "least populated class has only 1 member"
        warnings.simplefilter("ignore", UserWarning)
        folds = list(StratifiedKFold(SPURIOUS_FOLDS).split(x, labels))
    for train, test in folds:
        if np.ptp(column[train]) == 0:  # zero variance: naive Bayes is undefined here
            pred = np.full(test.shape[0], np.bincount(labels[train]).argmax())
        else:
            pred = GaussianNB().fit(x[train], labels[train]).predict(x[test])
        accs.append(float(np.mean(pred == labels[test])))
    return float(np.mean(accs))


def _room_for_improvement(baseline: float, accuracy: float, eps: float = 1e-8) -> float:
    """cleanlab's `relative_room_for_improvement`: (1 - accuracy) / (1 - baseline), at most 1."""
    denominator = 1.0 - baseline + (eps if baseline == 1 else 0.0)
    return min(1.0, (1.0 - accuracy) / denominator)


# -- what summary.json says ------------------------------------------------------------------


def property_summary(
    values: Mapping[str, npt.ArrayLike],
    image_sizes: npt.NDArray[np.int64],
    labels: npt.ArrayLike,
) -> dict[str, Any]:
    """`summary.json`'s ``image_properties`` and ``spurious_correlation`` blocks.

    Parameters
    ----------
    values : mapping of str to array-like of shape (n_examples,)
        The computed property columns by key (any subset of `PROPERTIES`).
    image_sizes : ndarray of shape (n_examples, 2)
        For `odd_size`'s threshold.
    labels : array-like of shape (n_examples,)
        The labels trained on.

    Returns
    -------
    dict
        ``image_properties``: per property key, ``{"count": int, "threshold": float}``
        (rows above the threshold on the column; for ``grayscale`` in a gray dataset, where
        more than half the images are gray, 0 with ``gray_images`` and ``gray_dataset``);
        ``spurious_correlation``:
        ``{"threshold": 0.3, "scores": {key: float}, "flagged": [key, ...]}`` (flagged:
        score below the threshold, in `PROPERTIES` order), with ``"why": str`` and empty
        scores where the check cannot run (one class; no class with 5 examples).
    """
    keys = [k for k in PROPERTIES if k in values]
    limits = thresholds(image_sizes)
    counts = {
        k: {"count": int(flags(values[k], limits[k]).sum()), "threshold": limits[k]} for k in keys
    }
    gray = counts.get("grayscale")
    n = len(np.asarray(labels))
    if gray is not None and gray["count"] > GRAY_DATASET_SHARE * n:
        # A gray dataset (digits, X-rays): gray is its nature, not an issue of some rows.
        gray.update(count=0, gray_images=gray["count"], gray_dataset=True)
    spurious: dict[str, Any] = {"threshold": SPURIOUS_THRESHOLD, "scores": {}, "flagged": []}
    if keys:
        try:
            scores = spurious_correlation({k: values[k] for k in keys}, labels)
        except InputError as err:
            spurious["why"] = str(err)
        else:
            spurious["scores"] = scores
            spurious["flagged"] = [k for k in keys if scores[k] < SPURIOUS_THRESHOLD]
    return {"image_properties": counts, "spurious_correlation": spurious}


# -- the arithmetic (valid input) ------------------------------------------------------------


def _blocks(images: np.ndarray) -> list[slice]:
    """Row ranges holding about `_BLOCK_PIXELS` pixels each (at least one image)."""
    per = max(1, _BLOCK_PIXELS // max(1, images.shape[2] * images.shape[3]))
    return [slice(s, s + per) for s in range(0, images.shape[0], per)]


def _brightness_percentile(images: np.ndarray, q: float) -> FloatArray:
    """Per image, the q-th percentile of CleanVision's per-pixel brightness (N,)."""
    out = np.empty(images.shape[0])
    for rows in _blocks(images):
        block = images[rows]
        n = block.shape[0]
        if block.shape[1] == 1:
            bright = block.reshape(n, -1) / 255.0  # (n, H*W)
        else:
            flat = block.reshape(n, 3, -1)  # (n, 3, H*W)
            bright = (
                np.sqrt(
                    _BRIGHTNESS_TERMS[0][flat[:, 0]]
                    + _BRIGHTNESS_TERMS[1][flat[:, 1]]
                    + _BRIGHTNESS_TERMS[2][flat[:, 2]]
                )
                / 255
            )
        out[rows] = np.percentile(bright, q, axis=1)
    return out


def _entropy(images: np.ndarray) -> FloatArray:
    """Per image, PIL's `Image.entropy()`: bits of the histogram of all channels (N,)."""
    out = np.empty(images.shape[0])
    channels = images.shape[1]
    bins = 256 * channels
    for rows in _blocks(images):
        block = images[rows]
        n = block.shape[0]
        offset = (np.arange(n)[:, None] * bins + np.arange(channels)[None, :] * 256)[..., None]
        hist = np.bincount((block.reshape(n, channels, -1) + offset).ravel(), minlength=n * bins)
        p = hist.reshape(n, bins) / float(block[0].size)  # (n, 256 C)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p), 0.0)
        out[rows] = -terms.sum(axis=1) / np.log(2.0)
    return out


def _gray(images: np.ndarray) -> np.ndarray:
    """PIL's "L" of RGB pixels, (N, H, W) uint8: (19595 R + 38470 G + 7471 B + 2**15) >> 16."""
    if images.shape[1] == 1:
        return images[:, 0]
    rgb = images.astype(np.uint32)
    luma = rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000
    return (luma >> 16).astype(np.uint8)


def _shrunk_gray(images: np.ndarray) -> np.ndarray:
    """The gray images CleanVision finds edges on, (N, h, w) uint8: larger than
    `BLURRY_MAX_SIDE` shrunk with PIL's default resize first (then made gray), as it does."""
    height, width = images.shape[2:]
    ratio = max(width, height) / BLURRY_MAX_SIDE
    if ratio <= 1:
        return _gray(images)
    from PIL import Image

    size = (max(int(width // ratio), 1), max(int(height // ratio), 1))
    hwc = images.transpose(0, 2, 3, 1)  # (N, H, W, C)
    planes = (im[..., 0] if im.shape[2] == 1 else im for im in hwc)  # PIL: (H, W) is "L"
    return np.stack([np.asarray(Image.fromarray(im).resize(size).convert("L")) for im in planes])


def _blur_stats(images: np.ndarray) -> tuple[FloatArray, FloatArray]:
    """Per image, the std of PIL's FIND_EDGES image and of the 256-bin gray histogram."""
    edges_std = np.empty(images.shape[0])
    hist_std = np.empty(images.shape[0])
    for rows in _blocks(images):
        gray = _shrunk_gray(images[rows]).astype(np.int64)  # (n, h, w)
        n = gray.shape[0]
        edges = gray.copy()  # PIL keeps the border pixels as they are (left out below)
        if gray.shape[1] >= 3 and gray.shape[2] >= 3:
            g = gray
            ring = (
                g[:, :-2, :-2] + g[:, :-2, 1:-1] + g[:, :-2, 2:]
                + g[:, 1:-1, :-2] + g[:, 1:-1, 2:]
                + g[:, 2:, :-2] + g[:, 2:, 1:-1] + g[:, 2:, 2:]
            )  # fmt: skip
            edges[:, 1:-1, 1:-1] = np.clip(8 * g[:, 1:-1, 1:-1] - ring, 0, 255)
        # The interior only: PIL's border pixels are the image itself, not edges (module
        # docstring); images under 3 px a side have no interior and keep CleanVision's.
        inner = edges[:, 1:-1, 1:-1] if min(edges.shape[1:]) >= 3 else edges
        flat = inner.reshape(n, -1)
        count = flat.shape[1]
        total = flat.sum(axis=1).astype(np.float64)
        total2 = (flat * flat).sum(axis=1).astype(np.float64)
        # PIL's ImageStat: (sum2 - sum ** 2 / count) / count, exact integer sums.
        edges_std[rows] = np.sqrt((total2 - total**2 / count) / count)
        offset = (np.arange(n) * 256)[:, None]
        hist = np.bincount((gray.reshape(n, -1) + offset).ravel(), minlength=n * 256)
        hist_std[rows] = hist.reshape(n, 256).std(axis=1)
    return edges_std, hist_std


def _size_side(image_sizes: np.ndarray) -> FloatArray:
    """sqrt(w) * sqrt(h) per image (N,), as CleanVision computes it."""
    return np.sqrt(image_sizes[:, 0].astype(np.float64)) * np.sqrt(
        image_sizes[:, 1].astype(np.float64)
    )


def _size_fence(side: FloatArray) -> tuple[float, float]:
    """The middle and the width of [Q1 - 3 IQR, Q3 + 3 IQR] of `side`."""
    q1, q3 = np.percentile(side, [25, 75])
    iqr = q3 - q1
    low, high = q1 - ODD_SIZE_IQR_FACTOR * iqr, q3 + ODD_SIZE_IQR_FACTOR * iqr
    return float((low + high) / 2), float(high - low)

"""Ranking examples for review: likely-mislabeled suspects, easiest/hardest, noise checks.

Pure pandas/numpy over a `RunView`, so the Examples and Mislabeled pages only render what is
computed (and tested) here. Every ranking is oriented with `views.hardness` (larger = harder /
more suspect, whatever the score's raw direction); ties keep the run's example order (a
stable sort, as `scoring.data.noise.noise_detection` does), and missing values rank last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.read.views import RunView, hardness

# Without injected noise there is no evidence in the run itself, so fall back on what the
# literature built for finding label errors: cleanlab's label quality is computed from
# out-of-fold probabilities (a label judged by models that never trained on it), AUM was
# designed to flag mislabeled examples, EL2N is a general hardness score.
DETECTOR_PREFERENCE = ("cl_quality", "aum", "el2n")


def rank_suspects(view: RunView, detector: str, k: int) -> pd.DataFrame:
    """The `k` examples the detector finds most suspect, most suspect first.

    Parameters
    ----------
    view : RunView
    detector : str
        A score key the run holds.
    k : int >= 1
        Clipped to the number of examples.

    Returns
    -------
    DataFrame of shape (min(k, n_examples), n_columns)
        `id`, `given` (given label name), `predicted` (predicted label name), `pred_prob`
        (confidence of the prediction), `given_prob` (p of the given label), the detector's
        raw value under its own key, `noisy` and `true` (true label name) when noise was
        injected, and `row` (row in `scores.parquet` / `examples/images.npy`).
    """
    _check_k(k)
    return _ranked(view, detector).head(k).reset_index(drop=True)


def extremes(
    view: RunView, key: str, k: int, label: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `k` easiest and the `k` hardest examples by one score, optionally within a class.

    Parameters
    ----------
    view : RunView
    key : str
        A score key the run holds.
    k : int >= 1
    label : int or None
        Only examples whose given label is this class index; None for all classes.

    Returns
    -------
    easiest, hardest : DataFrames with the columns of `rank_suspects`, at most `k` rows each;
        `easiest` is easiest first, `hardest` hardest first. A class with fewer than 2k
        examples gives overlapping lists.
    """
    _check_k(k)
    names = view.label_names
    if label is not None and not 0 <= label < len(names):
        raise InputError(f"class index must be in [0, {len(names) - 1}], got {label}")
    frame = _ranked(view, key, label)
    h = hardness(frame[key].to_numpy(), view.higher_is_harder(key))
    easiest = frame.iloc[np.argsort(h, kind="stable")[:k]]  # NaN sorts last here too
    return easiest.reset_index(drop=True), frame.head(k).reset_index(drop=True)


def default_detector(view: RunView) -> str:
    """The detector to show first, chosen from the run's own evidence.

    When noise was injected, the score whose ranking found the noisy examples best (highest
    `noise_auroc` in the summary; the earliest computed wins a tie). Otherwise the first of
    `DETECTOR_PREFERENCE` (cl_quality, aum, el2n) the run holds, else its first score.

    Raises
    ------
    InputError
        The run holds no score.
    """
    keys = view.score_keys
    if not keys:
        raise InputError("this run holds no scores; score the dataset again from Home")
    if view.has_noise:
        aurocs = {k: view.summary["scores"][k].get("noise_auroc") for k in keys}
        known = {k: a for k, a in aurocs.items() if a is not None and np.isfinite(a)}
        if known:
            return max(known, key=lambda k: known[k])  # max keeps the first of equals
    for key in DETECTOR_PREFERENCE:
        if key in keys:
            return key
    return keys[0]


def default_reason(view: RunView) -> str:
    """One sentence saying why `default_detector` picked what it picked."""
    key = default_detector(view)
    auroc = view.summary["scores"][key].get("noise_auroc")
    if view.has_noise and auroc is not None:
        return f"`{key}` found the injected noise best in this run (AUROC {auroc:.3f})."
    if key in DETECTOR_PREFERENCE:
        return (
            f"`{key}` is the first available of {', '.join(DETECTOR_PREFERENCE)}, the scores "
            "built for finding label errors (no injected noise to compare them on)."
        )
    return f"`{key}` is this run's first score (none of {', '.join(DETECTOR_PREFERENCE)})."


def noise_table(view: RunView, ks: list[int] | None = None) -> pd.DataFrame:
    """How well every score finds the injected noise: AUROC and precision/recall at k.

    Parameters
    ----------
    view : RunView
        A run with injected noise (a `noisy` column).
    ks : list of int >= 1, optional
        Cut-offs; default `[n_noisy, 2 * n_noisy]`. A k above n_examples counts all examples.

    Returns
    -------
    DataFrame with one row per score, best AUROC first
        `score`, `auroc` (from the summary; NaN when not recorded), and for each k
        `precision@k` (noisy among the k most suspect / k) and `recall@k` (noisy among the k
        most suspect / all noisy), recomputed from the table with the ranking `rank_suspects`
        uses.

    Raises
    ------
    InputError
        The run had no injected noise, or a k is not a positive integer.
    """
    if not view.has_noise:
        raise InputError("this run had no injected noise; score with --noise 0.1 to compare")
    noisy = view.table["noisy"].to_numpy(dtype=bool)  # (N,)
    n_noisy = int(noisy.sum())
    if ks is None:
        ks = [max(n_noisy, 1), max(2 * n_noisy, 1)]
    for k in ks:
        _check_k(k)
    ks = list(dict.fromkeys(ks))  # one column pair per distinct k
    rows = []
    for key in view.score_keys:
        order = _order(view.table[key].to_numpy(), view.higher_is_harder(key))  # (N,)
        auroc = view.summary["scores"][key].get("noise_auroc")
        row: dict[str, object] = {"score": key, "auroc": np.nan if auroc is None else auroc}
        for k in ks:
            found = int(noisy[order[:k]].sum())
            row[f"precision@{k}"] = found / min(k, len(order))
            row[f"recall@{k}"] = found / n_noisy if n_noisy else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["score", "auroc", *_pr_columns(ks)])
    return frame.sort_values("auroc", ascending=False, kind="stable", na_position="last")


def load_images(view: RunView, rows: np.ndarray | list[int], size: int = 64) -> np.ndarray | None:
    """Rendered images of some examples, upscaled (nearest neighbour) to about `size` pixels.

    Parameters
    ----------
    view : RunView
    rows : array-like of int, shape (n,)
        Row positions in the run's table (the `row` column of the ranked frames).
    size : int
        Target side; images are enlarged by the integer factor max(1, size // side), so an
        8x8 digit becomes 64x64 and stays crisp, a 32x32 image becomes 64x64.

    Returns
    -------
    ndarray of shape (n, H', W') for grey images or (n, H', W', C) for colour, uint8; None
    when the run has no `examples/images.npy` (older runs) or it does not match the table.
    """
    images = store.RunDir(view.path).open_images()  # (N, H, W, C); only asked rows are read
    if images is None or images.ndim != 4 or images.shape[0] != len(view.table):
        return None
    picked = np.asarray(images[np.asarray(rows, dtype=np.int64)])  # (n, H, W, C)
    factor = max(1, size // max(picked.shape[1:3]))
    picked = picked.repeat(factor, axis=1).repeat(factor, axis=2)
    return picked[..., 0] if picked.shape[-1] == 1 else picked


def load_texts(view: RunView, ids: list[int] | np.ndarray) -> pd.DataFrame | None:
    """The texts of some examples, in the order of `ids`.

    Returns
    -------
    DataFrame with `id` and one column per input, named after the dataset's input columns
    (e.g. `premise`, `hypothesis` for sentence pairs); None when the run has no
    `examples/texts.parquet` (older runs).
    """
    texts = store.RunDir(view.path).read_texts()
    if texts is None:
        return None
    inputs = [c for c in ("text", "text_pair") if c in texts.columns]
    names = list(view.config["dataset"].get("input_cols", []))
    if len(names) != len(inputs) or len(set(names)) != len(names) or "id" in names:
        names = inputs
    texts = texts[["id", *inputs]].rename(columns=dict(zip(inputs, names, strict=True)))
    wanted = pd.DataFrame({"id": np.asarray(ids, dtype=np.int64)})
    return wanted.merge(texts, on="id", how="left")


def _ranked(view: RunView, key: str, label: int | None = None) -> pd.DataFrame:
    """The review frame of all (or one class's) examples, hardest first."""
    if key not in view.score_keys:
        have = ", ".join(view.score_keys) or "none"
        raise InputError(f"score {key!r} is not in this run (it has: {have})")
    table = view.table
    names = np.asarray(view.label_names, dtype=object)
    frame = pd.DataFrame({"id": table["id"].to_numpy(), "given": names[table["label"].to_numpy()]})
    if "pred" in table.columns and table["pred"].notna().all():
        frame["predicted"] = names[table["pred"].to_numpy(dtype=np.int64)]
    else:  # a run from before predictions were written
        frame["predicted"] = None
    for col in ("pred_prob", "given_prob"):
        frame[col] = table[col].to_numpy(dtype=np.float64) if col in table else np.nan
    frame[key] = table[key].to_numpy(dtype=np.float64)
    if view.has_noise:
        frame["noisy"] = table["noisy"].to_numpy(dtype=bool)
        if "true_label" in table.columns:
            frame["true"] = names[table["true_label"].to_numpy()]
    frame["row"] = np.arange(len(table))
    if label is not None:
        frame = frame[table["label"].to_numpy() == label]
    return frame.iloc[_order(frame[key].to_numpy(), view.higher_is_harder(key))]


def _order(values: np.ndarray, higher_is_harder: bool) -> np.ndarray:
    """Positions from most to least suspect; ties by position, NaN last."""
    h = hardness(values, higher_is_harder)
    # argsort of -h puts NaN last as well (numpy sorts NaN to the end).
    return np.argsort(-h, kind="stable")


def _pr_columns(ks: list[int]) -> list[str]:
    return [c for k in ks for c in (f"precision@{k}", f"recall@{k}")]


def _check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")

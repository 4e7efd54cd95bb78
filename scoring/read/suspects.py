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
from scoring.scores.registry import REGISTRY

# Without injected noise there is no evidence in the run itself, so fall back on what was
# built for finding label errors: `consensus` (issue 17: measured at or above cleanlab on
# every dataset x noise kind of bench/detectors.py, see docs/benchmarks.md), then cleanlab's
# label quality (out-of-fold probabilities: a label judged by models that never trained on
# it), AUM (designed to flag mislabeled examples), EL2N (a general hardness score).
DETECTOR_PREFERENCE = ("consensus", "cl_quality", "aum", "el2n")


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


SPLITS = ("all", "train", "heldout")
# `likely_model_errors`: when the scoring model itself gets more than 15% of the held-out rows
# wrong, its out-of-sample mistakes on hard but correctly labelled examples look exactly like
# label errors to cleanlab; a flag share above 10% on top of that means the flags are more
# likely the model's errors than the data's (SST-2 with a frozen MiniLM probe: accuracy 0.79,
# 14.5% flagged, about 2 of the top 25 suspects mislabeled when read by hand).
MODEL_ERROR_ACCURACY = 0.85
MODEL_ERROR_FLAG_SHARE = 0.10
SUSPECT_COLUMNS = [
    "id",
    "split",
    "label",
    "suggested_label",
    "given_prob",
    "suggested_prob",
    "score",
    "detector",
    "flagged",
    "why",
    "evidence",
    "row",
]


def suspects(
    view: RunView,
    detector: str | None = None,
    split: str = "all",
    top: int | None = None,
) -> pd.DataFrame:
    """Every example as a suspect with its out-of-sample evidence, most suspect first.

    Training rows are ranked by `detector` (oriented: larger = more suspect); their evidence
    is the detector's own out-of-sample numbers, the cross-fit (out-of-fold) probabilities,
    when the run has them (`oof_*` columns of predictions.parquet), else the final models'
    in-sample ones (`evidence` says which). Held-out rows, when the held-out split was
    carved from the same source (`test_origin` "carved": they are part of the user's data),
    are ranked by their own out-of-sample label quality (`heldout.parquet`'s `cl_quality`,
    from the runs' mean held-out probabilities). The two lists are then interleaved: by value
    when the detector is `cl_quality` (the same self-confidence on both sides), else by rank
    quantile (the k-th percent of one beside the k-th percent of the other), so each keeps
    its own order.

    Parameters
    ----------
    view : RunView
    detector : str, optional
        A score key the run holds; default `default_detector(view)`.
    split : "all" | "train" | "heldout"
    top : int >= 1, optional
        Keep the first `top` rows; None keeps all.

    Returns
    -------
    DataFrame with columns SUSPECT_COLUMNS (plus `noisy`, `true` on runs with injected noise)
        id, split ("train" | "heldout"), label (given label name), suggested_label (name of
        the out-of-sample argmax), given_prob and suggested_prob (its probabilities),
        score (the detector's value for training rows, the held-out cl_quality for held-out
        rows), detector (the key that scored the row), flagged (cleanlab's `cl_issue` flag;
        False where the run has none), why (one line), evidence ("out-of-fold" |
        "in-sample" | "held-out"), row (position in `view.table` for training rows, in
        `heldout.parquet` for held-out rows).

    Raises
    ------
    InputError
        Unknown split, a detector the run lacks, or a bad `top`.
    """
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if top is not None:
        _check_k(top)
    key = detector if detector is not None else default_detector(view)
    train = _train_suspects(view, key)  # also checks the detector
    held = heldout_rows(view)
    if split == "train" or held is None:
        frame = train if split != "heldout" else train.iloc[:0]
    elif split == "heldout":
        frame = _heldout_suspects(view, held)
    else:
        frame = _interleave(train, _heldout_suspects(view, held), by_value=key == "cl_quality")
    frame = frame.reset_index(drop=True)
    return frame if top is None else frame.head(top).reset_index(drop=True)


def heldout_rows(view: RunView) -> pd.DataFrame | None:
    """The held-out rows that belong to the user's dataset, with their evidence.

    Returns
    -------
    DataFrame of `heldout.parquet` (id, label, given_prob, suggested, suggested_prob,
    cl_quality, cl_issue), or None when the held-out split is a separate test set (the
    source's own test split or `--test` file: not part of the data being cleaned) or the run
    was scored before held-out rows were.
    """
    if (view.config.get("dataset") or {}).get("test_origin") != "carved":
        return None
    return store.RunDir(view.path).read_heldout()


def flagged_count(view: RunView, split: str = "all") -> int:
    """How many examples cleanlab flags (`cl_issue`), training and carved held-out rows.

    0 when the run holds no `cl_issue`.
    """
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    n = 0
    if split in ("all", "train") and "cl_issue" in view.table.columns:
        n += int((view.table["cl_issue"].to_numpy(np.float64) > 0.5).sum())
    held = heldout_rows(view)
    if split in ("all", "heldout") and held is not None:
        n += int((held["cl_issue"].to_numpy(np.float64) > 0.5).sum())
    return n


def heldout_accuracy(view: RunView) -> float | None:
    """The scoring models' accuracy on the held-out rows (mean over runs); None if unknown."""
    value = view.summary.get("test_accuracy_mean")
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


def likely_model_errors(view: RunView) -> bool:
    """Whether cleanlab's flags are more likely the model's errors than label errors.

    The rule: held-out accuracy below MODEL_ERROR_ACCURACY (0.85) and a flag share above
    MODEL_ERROR_FLAG_SHARE (10%) of the flaggable rows (see `model_errors_rule`). False when
    either number is unknown.
    """
    accuracy = heldout_accuracy(view)
    if accuracy is None or "cl_issue" not in view.table.columns:
        return False
    held = heldout_rows(view)
    n = len(view.table) + (0 if held is None else len(held))
    return model_errors_rule(accuracy, flagged_count(view) / max(n, 1))


def model_errors_rule(accuracy: float, flag_share: float) -> bool:
    """The rule of `likely_model_errors` on its two numbers: accuracy < 0.85 and share > 0.10.

    A model that gets more than 15% of unseen examples wrong makes out-of-sample mistakes
    on hard, correctly labelled examples, and cleanlab cannot tell those from label errors;
    when on top of that it flags more than 10% of the rows, most flags are such mistakes.
    """
    return accuracy < MODEL_ERROR_ACCURACY and flag_share > MODEL_ERROR_FLAG_SHARE


def model_errors_warning(view: RunView, *, app: bool = False) -> str | None:
    """The plain warning the pages and `score`'s summary show, or None when it does not apply.

    `app` words the remedy for the app (its Recipe menu) instead of the CLI's flags.
    """
    if not likely_model_errors(view):
        return None
    accuracy = heldout_accuracy(view)
    held = heldout_rows(view)
    n = len(view.table) + (0 if held is None else len(held))
    share = flagged_count(view) / max(n, 1)
    return (
        f"the scoring model gets {1 - accuracy:.0%} of held-out examples wrong and cleanlab "
        f"flags {share:.0%} of the rows: many flags are likely the model's mistakes on hard "
        "but correctly labelled examples, not label errors. Score with a stronger model "
        f"{STRONGER_IN_APP if app else STRONGER_IN_CLI} before trusting the list."
    )


STRONGER_IN_CLI = (
    "(`--recipe finetune`, a pretrained encoder with `--model`, or your own training "
    "through the Recorder)"
)
STRONGER_IN_APP = (
    "(on Home, a new run with the Recipe probe or finetune, or your own training "
    "through the Recorder)"
)


def load_example_images(
    view: RunView, ids: list[int] | np.ndarray, size: int = 64
) -> np.ndarray | None:
    """Rendered images of examples by id, training or held-out, in the order of `ids`.

    Returns
    -------
    ndarray of shape (n, H', W'[, C]) uint8 as `load_images`, or None when an id has no
    stored image (older runs kept only training images; unknown ids).
    """
    rd = store.RunDir(view.path)
    ids = np.asarray(ids, dtype=np.int64)
    train_pos = pd.Index(view.table["id"].to_numpy()).get_indexer(ids)  # (n,), -1 if absent
    held = heldout_rows(view)
    held_pos = (
        pd.Index(held["id"].to_numpy()).get_indexer(ids)
        if held is not None
        else np.full(ids.shape[0], -1)
    )
    if ((train_pos < 0) & (held_pos < 0)).any():
        return None
    train_images = rd.open_images()
    if train_images is None:
        return None
    held_images = rd.open_images(heldout=True) if (train_pos < 0).any() else None
    if (train_pos < 0).any() and held_images is None:
        return None
    picked = [
        np.asarray(train_images[t] if t >= 0 else held_images[h])  # type: ignore[index]
        for t, h in zip(train_pos, held_pos, strict=True)
    ]
    stack = np.stack(picked) if picked else np.zeros((0, *train_images.shape[1:]), np.uint8)
    factor = max(1, size // max(stack.shape[1:3]))
    stack = stack.repeat(factor, axis=1).repeat(factor, axis=2)
    return stack[..., 0] if stack.shape[-1] == 1 else stack


def _train_suspects(view: RunView, key: str) -> pd.DataFrame:
    """Training rows ranked by `key`, with their out-of-sample (or in-sample) evidence."""
    ranked = _ranked(view, key)  # hardest first, `row` = position in view.table
    table = view.table.iloc[ranked["row"].to_numpy()]
    names = np.asarray(view.label_names, dtype=object)
    given = table["label"].to_numpy(np.int64)
    if {"oof_given_prob", "oof_suggested", "oof_suggested_prob"} <= set(table.columns) and (
        table["oof_suggested"].notna().all()
    ):
        evidence = "out-of-fold"
        given_prob = table["oof_given_prob"].to_numpy(np.float64)
        suggested = table["oof_suggested"].to_numpy(np.int64)
        suggested_prob = table["oof_suggested_prob"].to_numpy(np.float64)
    elif "pred" in table.columns and table["pred"].notna().all():
        evidence = "in-sample"
        given_prob = table["given_prob"].to_numpy(np.float64)
        suggested = table["pred"].to_numpy(np.int64)
        suggested_prob = table["pred_prob"].to_numpy(np.float64)
    else:  # a run from before predictions were written
        evidence = "none"
        given_prob = np.full(len(table), np.nan)
        suggested = given
        suggested_prob = np.full(len(table), np.nan)
    flagged = (
        table["cl_issue"].to_numpy(np.float64) > 0.5
        if "cl_issue" in table.columns
        else np.zeros(len(table), dtype=bool)
    )
    frame = pd.DataFrame(
        {
            "id": table["id"].to_numpy(np.int64),
            "split": "train",
            "label": names[given],
            "suggested_label": names[suggested],
            "given_prob": given_prob,
            "suggested_prob": suggested_prob,
            "score": ranked[key].to_numpy(np.float64),
            "detector": key,
            "flagged": flagged,
            "why": _why(
                evidence, names[given], names[suggested], given_prob, suggested_prob, flagged
            ),
            "evidence": evidence,
            "row": ranked["row"].to_numpy(np.int64),
        }
    )
    if view.has_noise:
        frame["noisy"] = ranked["noisy"].to_numpy(bool)
        if "true" in ranked.columns:
            frame["true"] = ranked["true"].to_numpy()
    return frame


def _heldout_suspects(view: RunView, held: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows ranked by their out-of-sample label quality, lowest first."""
    names = np.asarray(view.label_names, dtype=object)
    order = np.argsort(held["cl_quality"].to_numpy(np.float64), kind="stable")  # NaN last
    h = held.iloc[order]
    given, suggested = h["label"].to_numpy(np.int64), h["suggested"].to_numpy(np.int64)
    given_prob = h["given_prob"].to_numpy(np.float64)
    suggested_prob = h["suggested_prob"].to_numpy(np.float64)
    flagged = h["cl_issue"].to_numpy(np.float64) > 0.5
    frame = pd.DataFrame(
        {
            "id": h["id"].to_numpy(np.int64),
            "split": "heldout",
            "label": names[given],
            "suggested_label": names[suggested],
            "given_prob": given_prob,
            "suggested_prob": suggested_prob,
            "score": h["cl_quality"].to_numpy(np.float64),
            "detector": "cl_quality",
            "flagged": flagged,
            "why": _why(
                "held-out", names[given], names[suggested], given_prob, suggested_prob, flagged
            ),
            "evidence": "held-out",
            "row": order.astype(np.int64),
        }
    )
    if view.has_noise:  # noise is injected into training labels only
        frame["noisy"] = False
        frame["true"] = frame["label"]
    return frame


def _interleave(train: pd.DataFrame, held: pd.DataFrame, *, by_value: bool) -> pd.DataFrame:
    """Merge two ranked lists, each keeping its order (see `suspects`)."""
    if by_value:  # cl_quality on both sides: lower = more suspect; NaN (last) as +inf
        key_t = np.nan_to_num(train["score"].to_numpy(np.float64), nan=np.inf)
        key_h = np.nan_to_num(held["score"].to_numpy(np.float64), nan=np.inf)
    else:
        key_t = (np.arange(len(train)) + 0.5) / max(len(train), 1)
        key_h = (np.arange(len(held)) + 0.5) / max(len(held), 1)
    merged = pd.concat([train, held], ignore_index=True)
    # Running maxima: non-decreasing within each list, so a stable sort keeps each list's
    # own order even where its values are not monotone (ties broken by the detector's order).
    keys = np.concatenate([np.maximum.accumulate(key_t), np.maximum.accumulate(key_h)])
    return merged.iloc[np.argsort(keys, kind="stable")]


def _why(
    evidence: str,
    given: np.ndarray,
    suggested: np.ndarray,
    given_prob: np.ndarray,
    suggested_prob: np.ndarray,
    flagged: np.ndarray,
) -> list[str]:
    """One line per row: the evidence's p(given), what the models say, cleanlab's flag."""
    lines = []
    for g, s, pg, ps, f in zip(given, suggested, given_prob, suggested_prob, flagged, strict=True):
        if evidence == "none":
            lines.append("no predictions recorded for this run")
            continue
        line = f"{evidence} p(given {g}) = {pg:.2f}; "
        # Ranked high by the detector but not a label error by this evidence: said in full,
        # so a reader does not take the row for one to relabel.
        line += (
            f"the models say {s} ({ps:.2f})"
            if s != g
            else "the models agree with the given label (nothing to relabel)"
        )
        lines.append(line + ("; cleanlab flags it" if f else ""))
    return lines


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
    """The detector to show first: a fixed preference, never the injected-noise mask.

    The first of `DETECTOR_PREFERENCE` the run holds (`consensus`, then `cl_quality`, `aum`,
    `el2n`), else its first score. `consensus` meets issue 17's goal on every cell of
    `bench/detectors.py` (within 0.002 AUROC of the best single score, and never below
    cleanlab). The noise mask of a run with injected noise measures detectors (the
    Mislabeled page's comparison table, `noise_table`); it never chooses what a user sees,
    because on real data there is no mask, and a choice made with it would flatter the run.

    Raises
    ------
    InputError
        The run holds no score.
    """
    keys = view.score_keys
    if not keys:
        raise InputError("this run holds no scores; score the dataset again from Home")
    for key in DETECTOR_PREFERENCE:
        if key in keys:
            return key
    return keys[0]


def default_reason(view: RunView) -> str:
    """One sentence saying why `default_detector` picked what it picked."""
    key = default_detector(view)
    auroc = view.summary["scores"][key].get("noise_auroc") if view.has_noise else None
    # How it did on the injected noise is said as a measurement, never as the reason.
    found = f" (AUROC {auroc:.3f} on this run's injected noise)" if auroc is not None else ""
    if key == "consensus":
        return (
            "`consensus` combines AUM and confidence over the epochs before the model "
            f"memorizes, without knowing which single score is best on this data{found}."
        )
    if key in DETECTOR_PREFERENCE:
        return (
            f"`{key}` is the first available of {', '.join(DETECTOR_PREFERENCE)}, the scores "
            f"built for finding label errors, in that order{found}."
        )
    return f"`{key}` is this run's first score (none of {', '.join(DETECTOR_PREFERENCE)}){found}."


def consensus_comparison(view: RunView) -> pd.DataFrame | None:
    """How `consensus` did on this run's injected noise against the single scores.

    The best single score is picked with the noise mask (which consensus never reads), so
    it is an optimistic yardstick: on real data nobody knows which single score is best.

    Returns
    -------
    DataFrame of up to 3 rows, or None when the run had no injected noise or no consensus
        `detector` ("consensus", "best single: `key`", "cleanlab: `cl_quality`"), `score`,
        `auroc` and `precision@k` (k = the number of flipped labels), as `noise_table`.
    """
    if not view.has_noise or "consensus" not in view.score_keys:
        return None
    table = noise_table(view, ks=[max(int(view.table["noisy"].sum()), 1)])
    table = table.set_index("score")
    # Scores that read no label cannot see label noise: never "the best single detector".
    blind = [k for k in table.index if k in REGISTRY and REGISTRY[k].label_free]
    singles = table.drop(index=["consensus", *blind]).dropna(subset=["auroc"])
    rows = [("consensus", "consensus")]
    if len(singles):
        best = str(singles["auroc"].idxmax())  # the first of equals, as default_detector
        rows.append((f"best single: `{best}`", best))
    if "cl_quality" in table.index:
        rows.append(("cleanlab: `cl_quality`", "cl_quality"))
    precision = [c for c in table.columns if c.startswith("precision@")][0]
    return pd.DataFrame(
        {
            "detector": [label for label, _ in rows],
            "score": [key for _, key in rows],
            "auroc": [float(table.at[key, "auroc"]) for _, key in rows],
            precision: [float(table.at[key, precision]) for _, key in rows],
        }
    )


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
    """The texts of some examples (training or carved held-out), in the order of `ids`.

    Returns
    -------
    DataFrame with `id` and one column per input, named after the dataset's input columns
    (e.g. `premise`, `hypothesis` for sentence pairs); None when the run has no
    `examples/texts.parquet` (older runs).
    """
    rd = store.RunDir(view.path)
    texts = rd.read_texts()
    if texts is None:
        return None
    held = rd.read_texts(heldout=True) if heldout_rows(view) is not None else None
    if held is not None:  # carved held-out ids never repeat a training id
        texts = pd.concat([texts, held], ignore_index=True)
    return texts_by_id(view, texts, ids)


def texts_by_id(view: RunView, texts: pd.DataFrame, ids: list[int] | np.ndarray) -> pd.DataFrame:
    """Rows of a stored texts frame (id, text[, text_pair]) in `ids` order, the text columns
    named as the source's input columns (NaN for an id not in `texts`)."""
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


# --- relabelling to the suggestion in bulk --------------------------------------------------

# Confidence thresholds `safe_threshold` tries, lowest first; MIN_HELDOUT_ROWS: the fewest
# confident held-out rows an estimate may rest on (below it the estimate is noise).
THRESHOLD_GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))  # 0.50, 0.51, ..., 0.99
MIN_HELDOUT_ROWS = 30
MIN_PRECISION = 0.9


def relabel_precision(view: RunView, t: float) -> tuple[float | None, int]:
    """Estimated precision of "relabel to the suggestion" at confidence ≥ `t`.

    The estimate is the scoring models' held-out accuracy at confidence ≥ t: among the
    held-out rows (`heldout.parquet`, whose probabilities come from models that never trained
    on them) whose suggested probability (max of the mean softmax) is ≥ t, the share whose
    suggestion equals the given label. Whether a relabel is right is not observable without
    the truth; this estimates P(the suggestion is correct | confidence ≥ t) under the
    assumption that most given labels are right (then a disagreement between a confident
    suggestion and a label is the label's error about as often as the suggestion is right),
    and that the training rows' out-of-sample evidence is as well calibrated as the
    held-out rows'. Any held-out split counts (carved or a separate test set): it measures
    the models, not the data being cleaned.

    Parameters
    ----------
    view : RunView
    t : float in [0, 1]

    Returns
    -------
    (estimate, n_heldout_used)
        `estimate` is None when no held-out row reaches `t` (or the run has no held-out
        evidence); `n_heldout_used` is how many held-out rows it rests on.
    """
    if not 0.0 <= t <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {t!r}")
    return _precision_at(*_heldout_agreement(view), t)


def _heldout_agreement(view: RunView) -> tuple[np.ndarray, np.ndarray]:
    """The held-out rows' suggested probability (n,) and whether the suggestion is the given
    label (n,), read once for every threshold; empty without held-out evidence."""
    held = store.RunDir(view.path).read_heldout()
    if held is None or held.empty:
        return np.empty(0), np.empty(0, dtype=bool)
    prob = held["suggested_prob"].to_numpy(np.float64)
    return prob, held["suggested"].to_numpy() == held["label"].to_numpy()


def _precision_at(prob: np.ndarray, right: np.ndarray, t: float) -> tuple[float | None, int]:
    """`relabel_precision` on already read arrays."""
    confident = np.isfinite(prob) & (prob >= t)
    n = int(confident.sum())
    return (float(right[confident].mean()), n) if n else (None, 0)


def safe_threshold(
    view: RunView, min_precision: float = MIN_PRECISION, min_rows: int = MIN_HELDOUT_ROWS
) -> float | None:
    """The smallest threshold of THRESHOLD_GRID whose `relabel_precision` is ≥ `min_precision`
    and rests on at least `min_rows` held-out rows; None when none is (a model too weak to
    trust, or too few held-out rows to tell).

    Raises
    ------
    InputError
        `min_precision` outside (0.5, 1]: at or below 0.5 a relabel may be wrong more often
        than right.
    """
    if not 0.5 < min_precision <= 1.0:
        raise InputError(f"min precision must be in (0.5, 1], got {min_precision!r}")
    prob, right = _heldout_agreement(view)  # one read for the whole grid
    for t in THRESHOLD_GRID:
        estimate, n = _precision_at(prob, right, t)
        if n < min_rows:
            return None  # higher thresholds keep fewer rows still
        if estimate is not None and estimate >= min_precision:
            return t
    return None


def relabel_candidates(view: RunView, t: float, decided: pd.Index | list[int]) -> pd.DataFrame:
    """The rows a bulk accept at threshold `t` relabels: flagged (`cl_issue`), not yet decided,
    out-of-sample evidence (out-of-fold or held-out) whose suggestion differs from the given
    label with p(suggested) ≥ t. The Mislabeled page's bulk button picks the same rows.

    Returns
    -------
    DataFrame with columns id, label (given class index), new_label (suggested class index),
    suggested_prob; most suspect first.
    """
    frame = suspects(view)
    index = {name: i for i, name in enumerate(view.label_names)}
    given = frame["label"].map(index)
    suggested = frame["suggested_label"].map(index)
    mask = (
        frame["flagged"].astype(bool)
        & frame["evidence"].isin(["out-of-fold", "held-out"])
        & (frame["suggested_prob"] >= t)
        & (suggested != given)
        & ~frame["id"].isin(pd.Index(decided))
    )
    return pd.DataFrame(
        {
            "id": frame["id"][mask].to_numpy(np.int64),
            "label": given[mask].to_numpy(np.int64),
            "new_label": suggested[mask].to_numpy(np.int64),
            "suggested_prob": frame["suggested_prob"][mask].to_numpy(np.float64),
        }
    )

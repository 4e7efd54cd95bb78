"""The steps of a scoring run after training: score, write the results, summarize.

Pure arrays to files: the scores are computed from the runs as stored (`store.RunDir`), so a
fresh and a resumed run give the same numbers; `scoring.training.steps` holds the steps
before.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from scoring import store
from scoring.data.decode import display_pixels, to_float
from scoring.data.noise import noise_detection
from scoring.errors import InputError
from scoring.read.stats import rank_stability
from scoring.scores import (
    REGISTRY,
    ScoreResult,
    cleanlab_scores,
    compute,
    health,
    image_properties,
    neighbourhood,
)
from scoring.scores.annotators import annotator_stats
from scoring.scores.registry import IMAGE_NEEDS, absent_reasons, available, resolve
from scoring.training import grad_arrays
from scoring.training.embed import embedding_key
from scoring.training.free_features import label_free_features, label_free_test_features
from scoring.training.image_encoders import image_embedding_key
from scoring.training.pixels import Inputs, Pixels
from scoring.training.steps import DEFAULT_MAX_LENGTH, Prepared
from scoring.training.tfidf import tfidf_key

RUN_ARRAYS = (
    "loss",
    "logit_given",
    "logit_other",
    "prob_given",
    "correct",
    "probs_early",
    "probs_final",
    "features",
    *grad_arrays.GRAD_ARRAYS,
)


def shared_arrays(prep: Prepared, oof: np.ndarray | None) -> dict[str, Any]:
    """The arrays every run shares, by the names scores ask for (scores/registry.py).

    `features_free` (label-independent embeddings, `free_features`) is computed and stored
    once per run folder, and only when a requested score needs it.
    """
    k = len(prep.dataset.label_names)
    shared = {
        "labels": prep.labels,
        "label_prior": np.bincount(prep.labels, minlength=k) / prep.labels.shape[0],
        "oof_probs": oof,
        "n_prototypes": prep.config.prototypes or k,
    }
    if prep.dataset.train.votes is not None:  # several annotators: (N, A), -1 = no vote
        shared["annotations"] = prep.dataset.train.votes
    if any("features_free" in REGISTRY[key].needs for key in prep.score_keys):
        shared["features_free"] = label_free_features(prep)
    if any("features_free_test" in REGISTRY[key].needs for key in prep.score_keys):
        shared["features_free_test"] = label_free_test_features(prep)
    ds = prep.dataset
    if ds.modality == "image" and any(
        IMAGE_NEEDS & set(REGISTRY[k].needs) for k in prep.score_keys
    ):
        # The image properties read the pixels as shown (0..255; digits' 0..16 stretched,
        # no copy for image files) and the sizes as stored.
        shared["images"] = display_pixels(ds.train.inputs, ds.pixel_divisor)  # (N, C, H, W)
        shared["image_sizes"] = image_sizes(prep)
    return shared


def image_sizes(prep: Prepared) -> np.ndarray:
    """Each training image's stored (width, height), (N, 2) int64: as the source recorded
    them (`data.Split.sizes`), else the decoded size, which then is the stored one."""
    split = prep.dataset.train
    if split.sizes is not None:
        return split.sizes
    height, width = split.inputs.shape[2:]
    return np.tile(np.array([width, height], dtype=np.int64), (len(split.labels), 1))


def _computable(prep: Prepared) -> list[str]:
    """The requested scores this run's data allows: no image property on text (the one rule,
    `registry.available`; `summarize` records why in `absent_scores`)."""
    return available(prep.score_keys, True, prep.dataset.modality)


def compute_scores(prep: Prepared, oof: np.ndarray | None) -> dict[str, ScoreResult]:
    """Every requested score; per-run scores one run at a time, from the stored runs.

    Reading each run back from disk, one at a time, bounds memory by one run's recording
    (not R of them) and makes a fresh and a resumed run score the very same numbers.
    """
    rd = prep.run_dir
    shared = shared_arrays(prep, oof)
    keys = _computable(prep)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in keys if REGISTRY[k].per_run}
    for r in range(prep.n_runs):  # F * R for several families: every run of each
        run = rd.read_run(r)
        arrays = {**shared, **{n: run[n][None] for n in RUN_ARRAYS if n in run}}  # R = 1
        for key in rows:
            rows[key].append(compute(key, arrays).per_run[0])
        del run, arrays
    results = {}
    for key in keys:
        if key in rows:
            per_run = np.stack(rows.pop(key))  # (R, N)
            results[key] = ScoreResult(key, per_run.mean(axis=0), per_run)
        else:
            results[key] = compute(key, shared)
    return results


# -- step 6: write what pages and retraining read ------------------------------------------


def write_results(
    prep: Prepared,
    results: dict[str, ScoreResult],
    runs: list[dict[str, np.ndarray]],
    x: Inputs | None,
    x_test: Inputs | None,
    oof: np.ndarray | None = None,
) -> None:
    """Scores, per-run scores, predictions (with the out-of-fold evidence when cross-fitting
    ran), the held-out rows' evidence, the examples to display and the model inputs (not
    for several families, `x` None: each family's own run keeps its own)."""
    rd = prep.run_dir
    frame, per_run = score_frames(prep, results)
    store.write_parquet(rd.scores_file, frame)
    store.write_parquet(rd.scores_per_run_file, per_run)
    store.write_parquet(rd.predictions_file, predictions(prep, runs, oof))
    held = heldout_frame(prep, runs)
    if held is not None:
        store.write_parquet(rd.heldout_file, held)
    write_examples(prep)
    if x is not None and x_test is not None:
        write_inputs(prep, x, x_test)


def score_frames(
    prep: Prepared, results: dict[str, ScoreResult]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`scores.parquet` (mean over runs) and `scores_per_run.parquet` as frames."""
    ds = prep.dataset
    frame = pd.DataFrame({"id": ds.train.ids, "label": prep.labels})
    if prep.noisy is not None:
        frame["true_label"] = ds.train.labels
        frame["noisy"] = prep.noisy
    columns: dict[str, np.ndarray] = {"id": ds.train.ids}
    for key, res in results.items():
        # A class id (consensus_label) is stored as one, not as a float score.
        frame[key] = res.values.astype(np.int64) if REGISTRY[key].label_valued else res.values
        if res.per_run is not None:
            for r, vals in enumerate(res.per_run):
                columns[f"{key}__run{r}"] = vals
    per_run = pd.DataFrame(columns)  # at once: hundreds of columns with many runs
    if {"near_dup", "leakage"} & set(results):
        frame = frame.assign(**neighbourhood_columns(prep))
    return frame, per_run


def neighbourhood_columns(prep: Prepared) -> dict[str, np.ndarray]:
    """`dup_group` (−1 = none) and `leak_of` (a held-out/test id, −1 = none) per training row.

    Exact copies are found by content (decoded pixels, normalized text), near copies and
    leaks on the label-free embeddings (`scoring.scores.neighbourhood`) and, for images,
    on the pixels up to a shift of a few pixels (`neighbourhood.shifted_pairs`).
    """
    ds = prep.dataset
    features = label_free_features(prep)
    keys = _content_keys(ds.train.inputs, ds.pixel_divisor)
    image = ds.modality == "image"
    images = ds.train.inputs if image else None
    # The pixel check's training side, once for both the groups and the leaks.
    shift = neighbourhood.shift_index(images, features) if image else None
    cols = {"dup_group": neighbourhood.dup_groups(features, keys, images, shift)}
    if len(ds.test.labels):
        cols["leak_of"] = neighbourhood.leak_of(
            features,
            keys,
            label_free_test_features(prep),
            _content_keys(ds.test.inputs, ds.pixel_divisor),
            np.asarray(ds.test.ids),
            images,
            ds.test.inputs if image else None,
            shift,
        )
    else:
        cols["leak_of"] = np.full(len(keys), -1, dtype=np.int64)
    return cols


def _content_keys(inputs: np.ndarray | list, divisor: int | None) -> list[str]:
    """`neighbourhood.content_keys` of the models' inputs; uint8 pixels go in as their
    float32 form a block at a time (never the whole set as float32)."""
    if divisor is None:
        return neighbourhood.content_keys(inputs)
    block = 4096
    return [
        key
        for start in range(0, len(inputs), block)
        for key in neighbourhood.content_keys(to_float(inputs[start : start + block], divisor))
    ]


def predictions(
    prep: Prepared, runs: list[dict[str, np.ndarray]], oof: np.ndarray | None = None
) -> pd.DataFrame:
    """Final-model predictions averaged over runs, and the out-of-fold evidence.

    Parameters
    ----------
    prep : Prepared
    runs : list of n_runs dicts holding `probs_final` of shape (n_examples, n_classes)
    oof : ndarray of shape (n_examples, n_classes), optional
        Cross-fit probabilities (`steps.cross_fit`): row i from a model that never trained
        on example i.

    Returns
    -------
    DataFrame of n_examples rows
        `id`, `pred`, `pred_prob`, `given_prob` of the final (in-sample) models; with `oof`
        also `oof_given_prob` (p of the given label), `oof_suggested` (argmax) and
        `oof_suggested_prob`: the evidence the out-of-fold detectors (cl_*, pvi) judged by,
        which the review cards show so that a card never contradicts its detector.
    """
    probs = np.mean([r["probs_final"] for r in runs], axis=0)  # (N, K)
    rows = np.arange(probs.shape[0])
    frame = pd.DataFrame(
        {
            "id": prep.dataset.train.ids,
            "pred": probs.argmax(1),
            "pred_prob": probs.max(1),
            "given_prob": probs[rows, prep.labels],
        }
    )
    if oof is not None:
        frame["oof_given_prob"] = oof[rows, prep.labels].astype(np.float64)
        frame["oof_suggested"] = oof.argmax(1).astype(np.int64)
        frame["oof_suggested_prob"] = oof.max(1).astype(np.float64)
    return frame


def heldout_frame(prep: Prepared, runs: list[dict[str, np.ndarray]]) -> pd.DataFrame | None:
    """Out-of-sample label quality of the held-out rows, from the runs' own predictions.

    No run trained on a held-out row, so the mean of the runs' held-out probabilities is
    out-of-sample evidence about its label, like cross-fitting is for a training row:
    cleanlab's self-confidence (`get_label_quality_scores`) and `find_label_issues` on them.

    Returns
    -------
    DataFrame of n_test rows, or None when the runs did not keep `test_probs` or there are
    no held-out rows
        `id`, `label` (the source's), `given_prob`, `suggested` (argmax), `suggested_prob`,
        `cl_quality` (lower = more suspect), `cl_issue` (1.0 = flagged; NaN where cleanlab
        cannot judge, e.g. a single class among the held-out labels).
    """
    ds = prep.dataset
    if len(ds.test.labels) == 0 or not all("test_probs" in r for r in runs):
        return None
    probs = np.mean([np.asarray(r["test_probs"], np.float64) for r in runs], axis=0)  # (M, K)
    labels = np.asarray(ds.test.labels, dtype=np.int64)  # (M,)
    rows = np.arange(labels.shape[0])
    quality = cleanlab_scores.cl_quality(labels=labels, oof_probs=probs)
    try:
        issue = cleanlab_scores.cl_issue(labels=labels, oof_probs=probs)
    except InputError:  # one class only: no label can be judged wrong
        issue = np.full(labels.shape[0], np.nan)
    return pd.DataFrame(
        {
            "id": np.asarray(ds.test.ids, dtype=np.int64),
            "label": labels,
            "given_prob": probs[rows, labels],
            "suggested": probs.argmax(1).astype(np.int64),
            "suggested_prob": probs.max(1),
            "cl_quality": quality,
            "cl_issue": issue,
        }
    )


def write_examples(prep: Prepared) -> None:
    """What the app renders for each example, held-out rows too: images as uint8, texts as
    strings."""
    rd, ds = prep.run_dir, prep.dataset
    for split, heldout in ((ds.train, False), (ds.test, True)):
        inputs = split.inputs
        if heldout and len(split.labels) == 0:
            continue
        if ds.modality == "image":
            pixels = display_pixels(inputs, ds.pixel_divisor)  # (N, C, H, W) uint8
            rd.write_images(pixels.transpose(0, 2, 3, 1), heldout=heldout)  # (N, H, W, C)
            continue
        if len(inputs) and isinstance(inputs[0], tuple):
            cols = {"text": [a for a, _ in inputs], "text_pair": [b for _, b in inputs]}
        else:
            cols = {"text": list(inputs)}
        file = rd.heldout_texts_file if heldout else rd.texts_file
        store.write_parquet(file, pd.DataFrame({"id": split.ids, **cols}))


def write_inputs(prep: Prepared, x: Inputs, x_test: Inputs) -> None:
    """Keep what the models consumed, so retraining never goes back to the source."""
    rd = prep.run_dir
    if prep.dataset.modality == "image" and prep.recipe.name == "probe":  # named, like text's
        key = image_embedding_key(prep.config.train.model)
        rd.write_inputs(
            store.ModelInputs("embeddings", x.numpy(), x_test.numpy()), embedding_key=key
        )
    elif prep.dataset.modality == "image":  # uint8 Pixels and their divisor as they are
        divisor = x.divisor if isinstance(x, Pixels) else None
        rd.write_inputs(store.ModelInputs("images", x.numpy(), x_test.numpy(), divisor=divisor))
    elif prep.recipe.name == "finetune":
        rd.write_inputs(store.ModelInputs("tokens", x.numpy(), x_test.numpy()))
    elif prep.recipe.name == "tfidf":  # the dataset's TF-IDF table, kept like embeddings
        rd.write_inputs(
            store.ModelInputs("embeddings", x.numpy(), x_test.numpy()), embedding_key=tfidf_key()
        )
    else:  # probe: the dataset's embeddings file already holds them; name it
        max_length = prep.config.train.max_length or DEFAULT_MAX_LENGTH
        key = embedding_key(prep.config.train.model, max_length, prep.config.train.long_text)
        rd.write_inputs(
            store.ModelInputs("embeddings", x.numpy(), x_test.numpy()), embedding_key=key
        )


def write_health(prep: Prepared, oof: np.ndarray | None) -> None:
    """`health.json` (`scoring.scores.health.dataset_health`) from the labels the runs trained
    on, the out-of-fold probabilities (N, K) and the label-free embeddings, where the run has
    them: what it lacks is recorded, and the health report says why a type is absent. Scored,
    recorded and imported runs alike."""
    rd = prep.run_dir
    free = rd.features_free_file
    features = rd.read_arrays(free, ("features",))["features"] if free.exists() else None
    record = health.dataset_health(labels=prep.labels, oof_probs=oof, features_free=features)
    rd.write_health(record)


# -- step 7: summary ----------------------------------------------------------------------------


# Longer than 60 lines: summary.json block by block, in the order the file reads.
def summarize(
    prep: Prepared,
    runs: list[dict[str, np.ndarray]],
    results: dict[str, ScoreResult],
    timings: dict[str, float],
    oof: np.ndarray | None = None,
) -> dict[str, Any]:
    """`summary.json`: accuracy, timings, and per score its direction, stability, noise AUROC.

    With several annotators and the out-of-fold probabilities `oof` (N, K), also
    `annotators`: per annotator, examples labelled, CROWDLAB quality and agreement with the
    consensus (`scores.annotators.annotator_stats`).
    """
    accs = [float(r["test_accuracy"]) for r in runs]
    blocks: dict[str, Any] = {}
    for key, res in results.items():
        block: dict[str, Any] = {
            "higher_is_harder": REGISTRY[key].higher_is_harder,
            "version": REGISTRY[key].version,
        }
        if REGISTRY[key].label_valued:  # class ids: `RunView.score_keys` leaves it out
            block["label_valued"] = True
        elif prep.noisy is not None:  # (a class id finds no noise: no AUROC for it)
            block.update(noise_detection(res.values, prep.noisy, REGISTRY[key].higher_is_harder))
        block.update(_stability(res))
        blocks[key] = block
    summary: dict[str, Any] = {
        "test_accuracy": accs,
        "test_accuracy_mean": float(np.mean(accs)),
        "test_accuracy_std": float(np.std(accs)),
        "n_train": int(len(prep.labels)),
        "n_classes": len(prep.dataset.label_names),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        # Summed over runs; absent for runs cached before they were recorded.
        "training_s": _run_total(runs, "train_seconds"),
        "gradient_scores_s": _run_total(runs, "grad_seconds"),
        "train_examples_per_s": _train_rate(prep, runs),
        "scores": blocks,
    }
    rd = prep.run_dir
    if "outlier" in results and rd.scores_file.exists():
        frame = pd.read_parquet(rd.scores_file)
        if {"dup_group", "leak_of"} <= set(frame.columns):
            summary["neighbourhood"] = neighbourhood.issue_counts(
                frame["dup_group"].to_numpy(),
                frame["leak_of"].to_numpy(),
                results["outlier"].values,
                prep.labels,
            )
    summary.update(_image_health(prep, results))
    votes, annotators = prep.dataset.train.votes, prep.dataset.annotators
    if votes is not None and annotators is not None and oof is not None:
        # One row per annotator (CROWDLAB's call is shared with the scores above).
        summary["annotators"] = annotator_stats(votes, oof, list(annotators))
    if prep.noisy is not None:
        summary["noise"] = {
            "fraction": prep.config.noise.fraction,
            "kind": prep.config.noise.kind,
            "n_noisy": int(prep.noisy.sum()),
        }
    return summary


def _image_health(prep: Prepared, results: dict[str, ScoreResult]) -> dict[str, Any]:
    """summary.json's image-property blocks: per property its flag count and threshold, and
    the spurious correlations (`image_properties.property_summary`); on text,
    `absent_scores` saying why the image properties asked for (by name or "all") are not
    there."""
    out: dict[str, Any] = {}
    properties = {k: results[k].values for k in image_properties.PROPERTIES if k in results}
    if properties:
        out.update(image_properties.property_summary(properties, image_sizes(prep), prep.labels))
    asked = resolve(prep.config.scores) if prep.config.scores else []  # (a recording: none)
    image_only = absent_reasons(asked, True, prep.dataset.modality)
    if image_only:
        out["absent_scores"] = image_only
    return out


def _run_total(runs: list[dict[str, np.ndarray]], name: str) -> float | None:
    if not all(name in r for r in runs):
        return None
    return round(float(sum(float(r[name]) for r in runs)), 2)


def _train_rate(prep: Prepared, runs: list[dict[str, np.ndarray]]) -> float | None:
    """Examples per second through the training steps (forward + backward + update)."""
    total = _run_total(runs, "train_seconds")
    if not total:
        return None
    return round(len(prep.labels) * prep.recipe.epochs * len(runs) / total, 1)


def _stability(res: ScoreResult) -> dict[str, Any]:
    """Rank stability across runs (`read.stats.rank_stability`), never a run against a mean
    that contains it; every figure None for a score computed once or a single run, and any
    undefined figure (a score constant in a run) None rather than NaN in the JSON."""
    found = None
    if res.per_run is not None:
        with warnings.catch_warnings():  # a score constant in every run: all-NaN means
            warnings.simplefilter("ignore", RuntimeWarning)
            found = rank_stability(res.per_run)
    if found is None:
        return dict.fromkeys(STABILITY_KEYS)

    def finite(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    return {
        "spearman_loo": finite(found["spearman_loo"]),
        "spearman_pairwise": finite(found["spearman_pairwise"]),
        "spearman_loo_per_run": [finite(v) for v in found["spearman_loo_per_run"]],
        "stability_curve": [
            {"n_runs": p["n_runs"], "spearman": finite(p["spearman"])} for p in found["curve"]
        ],
        "stability_chance": finite(found["chance"]),
    }


STABILITY_KEYS = (
    "spearman_loo",
    "spearman_pairwise",
    "spearman_loo_per_run",
    "stability_curve",
    "stability_chance",
)

"""The scoring pipeline end to end, in-process, on small digits runs."""

import json

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.scores.registry import available
from scoring.training.pipeline import score
from tests.conftest import digits_config

# Every score a run without several annotators per example computes.
PLAIN = available(list(REGISTRY), has_annotations=False)


def tiny(**overrides) -> ScoreConfig:
    return digits_config(400, epochs=4, **overrides)


def test_digits_run_writes_a_complete_entry(cache_dir):
    path = score(tiny(), cache_dir, show_progress=False)
    assert path.parent.parent == cache_dir
    assert store.read_status(path)["state"] == "done"
    frame = store.read_scores(path)
    assert list(frame.columns) == ["id", "label", *PLAIN, "dup_group", "leak_of"]
    assert len(frame) == 400 and frame["id"].is_unique
    # Neighbourhood columns (issue 15): digits has no copies by content; counts agree.
    assert frame["dup_group"].dtype == np.int64 and frame["leak_of"].dtype == np.int64
    assert np.isfinite(frame[PLAIN].to_numpy()).all()
    per_run = pd.read_parquet(path / "scores_per_run.parquet")
    np.testing.assert_allclose(
        per_run[["el2n__run0", "el2n__run1"]].mean(axis=1), frame["el2n"], rtol=1e-12
    )
    assert "cl_quality__run0" not in per_run  # computed once, from out-of-fold probabilities
    summary = json.loads((path / "summary.json").read_text())
    assert len(summary["test_accuracy"]) == 2 and summary["test_accuracy_mean"] > 0.5
    hood = summary["neighbourhood"]
    assert hood["rows_in_duplicate_groups"] == int((frame["dup_group"] >= 0).sum())
    assert hood["leaks"] == int((frame["leak_of"] >= 0).sum())
    for key, block in summary["scores"].items():
        assert block["higher_is_harder"] == REGISTRY[key].higher_is_harder
    stability = summary["scores"]["el2n"]
    assert -1 <= stability["spearman_loo"] <= 1 and len(stability["spearman_loo_per_run"]) == 2
    assert stability["spearman_loo"] == pytest.approx(stability["spearman_pairwise"])  # R = 2
    assert [p["n_runs"] for p in stability["stability_curve"]] == [1]
    assert summary["scores"]["cl_quality"]["spearman_loo"] is None  # computed once
    assert summary["training_s"] > 0 and summary["gradient_scores_s"] > 0
    assert summary["train_examples_per_s"] > 0
    config = json.loads((path / "config.json").read_text())
    assert config["key"] == path.name and config["recipe"]["name"] == "mlp"
    assert config["dataset"]["n_train"] == 400 and config["dataset"]["test_origin"] == "carved"
    run0 = store.load_arrays(path / "runs" / "run_000.npz")
    assert run0["loss"].shape == (4, 400) and run0["probs_early"].shape == (400, 10)
    assert not (path / "lock").exists()


def test_same_config_is_served_from_cache(cache_dir):
    first = score(tiny(), cache_dir, show_progress=False)
    stamp = (first / "scores.parquet").stat().st_mtime_ns
    again = score(tiny(), cache_dir, show_progress=False)
    assert again == first and (again / "scores.parquet").stat().st_mtime_ns == stamp
    other = score(
        tiny(train=TrainConfig(runs=2, epochs=4, base_seed=1)), cache_dir, show_progress=False
    )
    assert other != first and other.parent == first.parent  # same data, another key


def test_noise_run_reports_detection_per_score(cache_dir):
    cfg = tiny(noise=NoiseConfig(fraction=0.2, seed=3), scores=("el2n", "aum", "loss"))
    path = score(cfg, cache_dir, show_progress=False)
    frame = store.read_scores(path)
    assert list(frame.columns) == ["id", "label", "true_label", "noisy", "el2n", "aum", "loss"]
    assert frame["noisy"].sum() == (frame["label"] != frame["true_label"]).sum() > 40
    summary = json.loads((path / "summary.json").read_text())
    for key in ("el2n", "aum", "loss"):
        block = summary["scores"][key]
        assert 0 <= block["noise_auroc"] <= 1 and 0 <= block["noise_precision_at_k"] <= 1
    # Even 4 epochs on 400 digits separate permuted labels far better than chance.
    assert summary["scores"]["aum"]["noise_auroc"] > 0.8
    assert not (path / "cv").exists()  # no cleanlab score asked for: no cross-fitting


def test_a_failing_run_is_marked_failed_not_done(cache_dir, monkeypatch):
    import scoring.training.results as results

    def broken(*_a, **_k):
        raise RuntimeError("simulated crash in scoring")

    monkeypatch.setattr(results, "compute", broken)
    with pytest.raises(RuntimeError):
        score(tiny(scores=("el2n",)), cache_dir, show_progress=False)
    (path,) = store.iter_run_dirs(cache_dir)
    rd = store.RunDir(path)
    status = rd.read_status()
    assert status["state"] == "failed" and "simulated crash" in status["message"]
    assert not rd.scores_file.exists() and not rd.lock_file.exists()
    assert rd.run_file(1).exists()  # finished runs are kept for the retry


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (tiny(train=TrainConfig(runs=0)), "--runs must be at least 1"),
        (tiny(scores=("el2n", "nope")), "unknown score 'nope'"),
        (tiny(cv_folds=1), "--cv-folds must be at least 2"),
        (tiny(train=TrainConfig(recipe="finetune")), "does not fit image data"),
        (tiny(train=TrainConfig(epochs=3, early_epoch=5)), "--early-epoch must be between"),
        (tiny(noise=NoiseConfig(fraction=1.2)), r"--noise must be a fraction in \[0, 1\)"),
        (tiny(noise=NoiseConfig(fraction=-0.1)), r"--noise must be a fraction in \[0, 1\)"),
        (tiny(data=DataConfig(source="digits", limit=30), cv_folds=5), "lower --cv-folds"),
        (tiny(train=TrainConfig(device="cuda:7")), "asked for CUDA"),
        (tiny(train=TrainConfig(device="tpu")), "expected auto, cpu, cuda"),
    ],
)
def test_bad_config_is_refused_before_anything_is_written(cfg, message, cache_dir):
    with pytest.raises(InputError, match=message):
        score(cfg, cache_dir, show_progress=False)
    assert list(store.iter_run_dirs(cache_dir)) == []


def test_text_probe_on_a_tsv_with_unusual_columns(cache_dir, tmp_path):
    """The offline MiniLM embeds the sentences once; the embeddings are reused by a rerun."""
    good = ["a warm , generous film", "sharp and funny throughout", "a triumph of craft"]
    bad = ["a dull , lifeless mess", "tedious and overlong", "nothing here works at all"]
    rows = [(f"{good[i % 3]} {i}", "pos") for i in range(15)]
    rows += [(f"{bad[i % 3]} {i}", "neg") for i in range(15)]
    path = tmp_path / "reviews.tsv"
    path.write_text("review_body\tverdict_cls\n" + "".join(f"{t}\t{v}\n" for t, v in rows))
    cfg = tiny(
        data=DataConfig(source=str(path), input_cols=("review_body",), label_col="verdict_cls"),
        scores=("el2n", "aum", "pvi", "prototype"),
    )
    run = score(cfg, cache_dir, show_progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["name"] == "probe"
    assert config["dataset"]["label_names"] == ["neg", "pos"]
    assert config["dataset"]["modality"] == "text"
    (emb,) = (cache_dir / run.parent.name / "embeddings").glob("*.npz")
    arrays = store.load_arrays(emb)
    assert arrays["train"].shape == (24, 384)  # 30 rows, 20% carved for testing
    np.testing.assert_allclose(np.linalg.norm(arrays["train"], axis=1), 1.0, rtol=1e-5)
    kept = store.RunDir(run).read_inputs()  # named, not copied: the embeddings file holds them
    assert kept.kind == "embeddings" and np.array_equal(kept.train, arrays["train"])
    run0 = store.RunDir(run).read_run(0)
    assert run0["features"].shape == (24, 256)
    assert len(store.read_scores(run)) == 24


def test_image_folder_end_to_end(cache_dir, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        folder = tmp_path / "pets" / name
        folder.mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 60, size=(12, 12, 3)) + 60 * c
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    cfg = tiny(data=DataConfig(source=str(tmp_path / "pets")), scores=("el2n", "loss"))
    run = score(cfg, cache_dir, show_progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["label_names"] == ["cat", "dog", "owl"]
    assert config["recipe"]["name"] == "mlp"
    frame = store.read_scores(run)
    assert len(frame) == 24 and sorted(frame["label"].unique()) == [0, 1, 2]


def test_same_file_by_another_path_finds_the_same_run(cache_dir, tmp_path, monkeypatch):
    rows = "".join(f"sentence {i} {'good' if i % 2 else 'bad'}\t{i % 2}\n" for i in range(30))
    (tmp_path / "d.tsv").write_text("text\tlabel\n" + rows)
    monkeypatch.chdir(tmp_path)
    relative = tiny(data=DataConfig(source="d.tsv"), scores=("loss",))
    absolute = tiny(data=DataConfig(source=str(tmp_path / "d.tsv")), scores=("loss",))
    first = score(relative, cache_dir, show_progress=False)
    assert score(absolute, cache_dir, show_progress=False) == first
    (tmp_path / "d.tsv").write_text("text\tlabel\n" + rows.replace("sentence 3", "changed 3"))
    assert score(absolute, cache_dir, show_progress=False).parent != first.parent


# Each score's declared direction against injected noise: tests/training/test_directions.py.


def test_float16_storage_changes_no_ranking_that_matters(cache_dir):
    """Scores from a run's float16-stored arrays rank like those from its float32 originals."""
    from scipy.stats import spearmanr

    from scoring.data.noise import noise_detection
    from scoring.scores import compute
    from scoring.training.progress import Progress
    from scoring.training.results import RUN_ARRAYS, shared_arrays
    from scoring.training.steps import compact, prepare, tensor_inputs, train_one_run

    cfg = tiny(noise=NoiseConfig(fraction=0.1), train=TrainConfig(runs=1, epochs=6))
    prep = prepare(cfg, cache_dir)
    progress = Progress(cache_dir / "p", 1, enabled=False)
    x, x_test = tensor_inputs(prep, progress)
    _, arrays = train_one_run(prep, x, x_test, 0, progress)
    stored = compact(arrays)
    assert stored["prob_given"].dtype == np.float16 and stored["loss"].dtype == np.float32
    assert stored["probs_final"].dtype == np.float32
    shared = shared_arrays(prep, None)
    # prototype and pvi read no per-run recording (label-free embeddings, out-of-fold probs).
    for key in ("aum", "confidence", "variability", "el2n", "el2n_free"):
        full, small = (
            compute(key, {**shared, **{n: a[n][None] for n in RUN_ARRAYS if n in a}}).values
            for a in (arrays, stored)
        )
        assert spearmanr(full, small).statistic > 0.999, key
        higher = REGISTRY[key].higher_is_harder
        auroc = [noise_detection(v, prep.noisy, higher)["noise_auroc"] for v in (full, small)]
        assert abs(auroc[0] - auroc[1]) < 1e-3, key


def test_cross_fit_scores_come_from_the_registry():
    from scoring.training.pipeline import CV_SCORES

    # the scores that need oof_probs (consensus: cleanlab's noise count sets its window;
    # the annotator scores: CROWDLAB weighs the votes against the out-of-fold model)
    assert CV_SCORES == (
        "pvi", "cl_quality", "cl_issue", "consensus",
        "consensus_label", "consensus_quality", "annotator_agreement",
    )  # fmt: skip


def test_the_run_keeps_its_model_inputs_bit_for_bit(cache_dir):
    """inputs.npz gives back the very float32 tensors the models trained on (uint8 + divisor)."""
    from scoring.training.progress import Progress
    from scoring.training.steps import prepare, tensor_inputs

    cfg = tiny(scores=("loss",))
    rd = store.RunDir(score(cfg, cache_dir, show_progress=False))
    prep = prepare(cfg, cache_dir)
    x, x_test = tensor_inputs(prep, Progress(cache_dir / "p", 1, enabled=False))
    kept = rd.read_inputs()
    assert kept.kind == "images" and store.load_arrays(rd.inputs_file)["train"].dtype == np.uint8
    assert x.numpy().dtype == np.uint8  # held as uint8, float32 per batch
    for got, want in ((kept.train, x.float().numpy()), (kept.test, x_test.float().numpy())):
        assert got.dtype == want.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    split = rd.read_split()
    assert np.array_equal(split.labels, prep.labels)
    assert np.array_equal(split.test_labels, prep.dataset.test.labels)

"""`Recorder` on a plain PyTorch loop: the recorded run finds the labels the test flipped,
holds what the loop logged (checked against an independent computation), and memory does
not grow with epochs; bad calls are refused in one line."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from scoring import store
from scoring.errors import InputError
from scoring.record import Recorder
from scoring.scores import REGISTRY
from scoring.training.loop import _epoch_stats
from scoring.training.record.epochs import epoch_stats
from tests.conftest import run_cli


def test_recorded_run_finds_the_flipped_labels(recorded):
    _cache, path, d, _tape = recorded
    frame = store.RunDir(path).read_scores()
    assert np.array_equal(frame["id"].to_numpy(), d.ids)
    found = {}
    for key in ("aum", "el2n", "forgetting"):
        values = frame[key].to_numpy(np.float64)
        found[key] = roc_auc_score(d.flipped, values if REGISTRY[key].higher_is_harder else -values)
    assert all(v >= 0.98 for v in found.values()), found


def test_the_run_is_a_normal_done_run(recorded):
    cache, path, d, _tape = recorded
    rd = store.RunDir(path)
    assert rd.check(deep=True) == []
    info = store.run_info(path)
    assert (info.state, info.source, info.name, info.runs, info.epochs) == (
        "done",
        "recorded",
        "digits mlp",
        2,
        20,
    )
    config = rd.read_config()
    assert config["recording"]["probs_early"] == "eval pass"  # logged after epoch 2 = 10% of 20
    assert config["recording"]["early_epoch"] == 2
    summary = rd.read_summary()
    # Scores whose inputs were not recorded are absent, and the summary says what they need.
    assert (
        "grand" not in summary["scores"] and "needs grad_norm" in summary["absent_scores"]["grand"]
    )
    assert (
        "cl_issue" not in summary["scores"] and "oof_probs" in summary["absent_scores"]["cl_issue"]
    )
    assert {"aum", "el2n", "forgetting", "loss"} <= set(summary["scores"])
    assert "fixed weights after epoch 2" in summary["definitions"]["el2n"]
    # The loop's features are its trained model's: not label-free, so no label-free scores.
    for key in ("prototype", "near_dup", "outlier", "leakage"):
        assert key not in summary["scores"] and "saw the labels" in summary["absent_scores"][key]
    assert not rd.features_free_file.exists()
    split = rd.read_split()
    assert np.array_equal(split.labels, d.labels) and np.array_equal(
        split.test_labels, d.test_labels
    )


def test_recorded_arrays_are_what_the_loop_logged(recorded):
    """Each epoch's loss, margins and correctness against the logged logits, computed here by
    torch (`loop._epoch_stats`, the built-in loop's own code), not by the Recorder."""
    _cache, path, d, tape = recorded
    run = store.RunDir(path).read_run(1)
    labels = torch.from_numpy(d.labels)
    for t in (0, 7, 19):
        logits = torch.empty(len(d.ids), 10)
        for ids, values in tape.runs[1]["epochs"][t]:
            logits[torch.from_numpy(ids)] = torch.from_numpy(values)
        expected = torch.empty(4, len(d.ids))
        _epoch_stats(logits, labels, out=expected)
        np.testing.assert_allclose(run["loss"][t], expected[0].numpy(), rtol=1e-5, atol=1e-6)
        # float16 on disk, as a built-in run stores them (steps.COMPACT)
        np.testing.assert_allclose(run["logit_given"][t], expected[1].numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(run["logit_other"][t], expected[2].numpy(), rtol=1e-3, atol=1e-3)
        assert np.array_equal(run["correct"][t], (expected[1] > expected[2]).numpy())
    # EL2N's probabilities are the eval pass after epoch 2; the final ones the last epoch's.
    ids, eval_logits = tape.evals[(1, 2)]
    np.testing.assert_allclose(
        run["probs_early"], torch.softmax(torch.from_numpy(eval_logits), 1).numpy(), atol=1e-3
    )
    test_probs = torch.softmax(torch.from_numpy(tape.runs[1]["test_logits"]), 1).numpy()
    np.testing.assert_allclose(run["test_probs"], test_probs, rtol=1e-5, atol=1e-7)
    assert run["test_accuracy"] == pytest.approx((test_probs.argmax(1) == d.test_labels).mean())


def test_epoch_stats_match_the_loops_torch_code():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((500, 7)) * 4).astype(np.float32)
    labels = rng.integers(0, 7, 500)
    got, probs = epoch_stats(logits, labels, probs=True)
    expected = torch.empty(4, 500)
    _epoch_stats(torch.from_numpy(logits), torch.from_numpy(labels), out=expected)
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), 1), atol=1e-6)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert np.array_equal(got[1], expected[1].numpy()) and np.array_equal(
        got[2], expected[2].numpy()
    )


def test_list_and_suspects_read_a_recorded_run(recorded):
    cache, path, d, _tape = recorded
    out = run_cli("list", cache=cache)
    assert out.returncode == 0, out.stderr
    line = next(row for row in out.stdout.splitlines() if str(path) in row)
    assert "digits mlp" in line and "recorded" in line and "2×20" in line
    out = run_cli("suspects", "--run", str(path), "--top", "20", "--format", "csv", cache=cache)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.strip().splitlines()[1:]
    top = [int(r.split(",")[0]) for r in rows]
    assert len(top) == 20 and d.flipped[top].mean() >= 0.9  # the top suspects are flips


def test_ids_in_any_order_and_a_linked_dataset(tmp_path):
    """Shuffled, non-contiguous ids are matched to their rows; a linked source gives the
    examples and true labels."""
    from scoring import data
    from scoring.config import DataConfig

    ds = data.load(DataConfig(source="digits"))
    rng = np.random.default_rng(1)
    keep = np.sort(rng.choice(len(ds.train.ids), 400, replace=False))
    ids = ds.train.ids[keep][::-1].copy()  # descending: the Recorder sorts them
    labels = ds.train.labels[keep][::-1].copy()
    x = torch.from_numpy(
        ds.train.inputs[keep][::-1].reshape(400, -1).astype(np.float32)
        / (getattr(ds, "pixel_divisor", None) or 1)
    )
    rec = Recorder(tmp_path / "cache", "linked", ids, labels, 10, dataset="digits")
    model = torch.nn.Linear(64, 10)
    for _epoch in range(2):
        for start in range(0, 400, 100):
            rec.log(torch.from_numpy(ids[start : start + 100]), model(x[start : start + 100]))
        rec.end_epoch()
    rec.end_run()
    path = rec.finish()
    rd = store.RunDir(path)
    assert np.array_equal(rd.read_split().train_ids, np.sort(ids))
    assert rd.read_config()["dataset"]["description"] == "digits"
    assert rd.open_images().shape[0] == 400
    with torch.no_grad():
        logits = model(x).numpy()
    order = np.argsort(ids)
    loss = -torch.log_softmax(torch.from_numpy(logits), 1)[np.arange(400), labels].numpy()
    np.testing.assert_allclose(rd.read_run(0)["loss"][1], loss[order], rtol=1e-5)


def test_memory_does_not_grow_with_epochs(tmp_path):
    """Peak traced memory of 3 and of 30 epochs differ by far less than one epoch's logits."""
    n, k, bs = 4000, 10, 64
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k, n)
    batches = [rng.standard_normal((bs, k)).astype(np.float32) for _ in range(3)]

    def peak(epochs: int, name: str) -> int:
        rec = Recorder(tmp_path / name, name, np.arange(n), labels, k, early_epoch=1)
        tracemalloc.start()
        for _ in range(epochs):
            for start in range(0, n, bs):
                ids = np.arange(start, min(start + bs, n))
                rec.log(ids, batches[start // bs % 3][: len(ids)])
            rec.end_epoch()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    few, many = peak(3, "few"), peak(30, "many")
    assert many - few < n * k * 4 / 4, (few, many)  # < a quarter of one epoch's logits


def _recorder(tmp_path, **kw):
    return Recorder(tmp_path / "cache", "bad", np.arange(10), np.arange(10) % 3, 3, **kw)


@pytest.mark.parametrize(
    "calls, message",
    [
        (lambda r: r.log([0, 1], np.zeros((2, 4))), "expected shape (2, 3)"),
        (lambda r: r.log([0, 11], np.zeros((2, 3))), "id 11 is not among"),
        (lambda r: (r.log(range(5), np.zeros((5, 3))), r.end_epoch()), "logged 5 of 10"),
        (lambda r: r.end_epoch(), "nothing was logged"),
        (lambda r: (r.log(range(10), np.zeros((10, 3))), r.end_run()), "call end_epoch() first"),
        (lambda r: r.log_eval(range(10), np.zeros((10, 3))), "no epoch has ended"),
        (lambda r: r.finish(), "nothing was recorded"),
        (lambda r: r.log_oof(range(10), np.full((10, 3), 2.0)), "probabilities in [0, 1]"),
        (
            lambda r: r.log([7, 3], np.array([[0.0, 1.0, 2.0], [np.nan, 0.0, 0.0]])),
            "log: 1 row(s) of logits are NaN or infinite (first: id 3)",
        ),
        (
            lambda r: (
                r.log(range(10), np.zeros((10, 3))),
                r.end_epoch(),
                r.log_eval([1], np.array([[np.inf, 0.0, 0.0]])),
            ),
            "log_eval: 1 row(s) of logits are NaN or infinite (first: id 1)",
        ),
        (
            lambda r: (
                r.log(range(10), np.zeros((10, 3))),
                r.end_epoch(),
                r.end_run(features_label_free=True),
            ),
            "features_label_free=True needs features=",
        ),
    ],
)
def test_bad_calls_are_refused_in_one_line(tmp_path, calls, message):
    rec = _recorder(tmp_path)
    with pytest.raises(InputError, match=None) as err:
        calls(rec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_finished_recorder_refuses_more_logging_in_one_line(tmp_path):
    rec = _recorder(tmp_path)
    for _ in range(2):
        rec.log(range(10), np.eye(3)[np.arange(10) % 3])
        rec.end_epoch()
    rec.end_run()
    path = rec.finish()
    for call in (
        lambda: rec.log(range(10), np.zeros((10, 3))),
        rec.end_epoch,
        rec.end_run,
        lambda: rec.log_oof(range(10), np.full((10, 3), 1 / 3)),
    ):
        with pytest.raises(InputError, match="this Recorder has finished") as err:
            call()
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert rec.finish() == path  # finishing again still answers the same run


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(ids=[0, 0, 1], labels=[0, 1, 2]), "id 0 repeats"),
        (dict(ids=[0, 1, 2], labels=[0, 1, 5]), "class indices in [0, 3)"),
        (dict(ids=[0, 1, 2], labels=[0, 1]), "expected 3 labels"),
        (dict(ids=["a", "b", "c"], labels=[0, 1, 2]), "expected integers"),
        (dict(ids=[0, 1, 2], labels=[0, 1, 2], label_names=["a", "b"]), "expected 3 names"),
        (dict(ids=[0, 1, 2], labels=[0, 1, 2], dataset="digits"), "num_classes is 3"),
    ],
)
def test_bad_construction_is_refused_before_training(tmp_path, kw, message):
    with pytest.raises(InputError) as err:
        Recorder(tmp_path / "cache", "bad", num_classes=3, **kw)
    assert message in str(err.value)
    assert not (tmp_path / "cache").exists() or not list(store.iter_run_dirs(tmp_path / "cache"))


def test_sweep_and_export_say_what_a_recorded_run_lacks(recorded, tmp_path):
    cache, path, _d, _tape = recorded
    out = run_cli(
        "sweep",
        "--run",
        str(path),
        "--score",
        "el2n",
        "--rule",
        "hardest",
        "--fractions",
        "0.5",
        cache=cache,
    )
    assert out.returncode == 2, out.stderr
    assert "cannot be retrained here" in out.stderr and "built-in recipe" in out.stderr
    out = run_cli(
        "export",
        "--run",
        str(path),
        "--rule",
        "all",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "x.csv"),
        cache=cache,
    )
    assert out.returncode == 2 and "without a data source" in out.stderr, out.stderr


@pytest.mark.parametrize("kind", ["images", "texts"])
def test_given_inputs_are_the_rows_the_pages_show(tmp_path, kind):
    """Without a dataset, `inputs=` (in the order of `ids`) is what Examples shows."""
    rng = np.random.default_rng(0)
    n = 40
    ids = rng.permutation(np.arange(100, 100 + n))  # shuffled, not 0..N-1
    labels = rng.integers(0, 3, n)
    if kind == "images":
        inputs = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)  # (N, H, W, C)
    else:
        inputs = [f"example number {i}" for i in ids]
    rec = Recorder(tmp_path / "cache", kind, ids, labels, 3, inputs=inputs)
    for _ in range(2):
        rec.log(ids, rng.standard_normal((n, 3)))
        rec.end_epoch()
    rec.end_run()
    rd = store.RunDir(rec.finish())
    order = np.argsort(ids)
    if kind == "images":
        assert np.array_equal(np.asarray(rd.open_images()), inputs[order])
        assert rd.read_config()["dataset"]["modality"] == "image"
    else:
        texts = rd.read_texts()
        assert list(texts["id"]) == sorted(ids.tolist())
        assert list(texts["text"]) == [inputs[i] for i in order]


def _tiny_recording(tmp_path, *, eval_runs=(), features_label_free=False, runs=2):
    """2 runs x 3 epochs of random logits on 60 examples (3 classes), EL2N's epoch 1; an eval
    pass after epoch 1 in `eval_runs`; features and held-out rows at each run's end."""
    rng = np.random.default_rng(0)
    n, k = 60, 3
    labels = np.arange(n) % k
    rec = Recorder(tmp_path / "cache", "tiny", np.arange(n), labels, k, early_epoch=1)
    for r in range(runs):
        for epoch in range(1, 4):
            rec.log(np.arange(n), rng.standard_normal((n, k)))
            rec.end_epoch()
            if epoch == 1 and r in eval_runs:
                rec.log_eval(np.arange(n), rng.standard_normal((n, k)))
        rec.end_run(
            test_logits=rng.standard_normal((20, k)),
            test_labels=np.arange(20) % k,
            features=rng.standard_normal((n, 8)),
            test_features=rng.standard_normal((20, 8)),
            features_label_free=features_label_free,
        )
    return store.RunDir(rec.finish())


@pytest.mark.parametrize(
    "eval_runs, probs_early, said",
    [((), "training pass", "from the training pass of epoch 1, NOT"), ((0,), "mixed", "mixed")],
)
def test_el2n_says_which_pass_it_read(tmp_path, eval_runs, probs_early, said):
    """Without an eval pass at fixed weights EL2N reads the training pass: summary.json says
    so (per score, `definitions`), and config.json per run."""
    rd = _tiny_recording(tmp_path, eval_runs=eval_runs)
    summary, recording = rd.read_summary(), rd.read_config()["recording"]
    assert recording["probs_early"] == probs_early
    assert [r["source"] for r in recording["probs_early_runs"]] == [
        "eval pass" if r in eval_runs else "training pass" for r in range(2)
    ]
    for key in ("el2n", "el2n_free"):
        assert said in summary["definitions"][key] and "log_eval" in summary["definitions"][key]
    assert "no eval pass was logged after epoch 1" in summary["definitions"]["el2n"]


def test_supervised_features_do_not_feed_the_label_free_scores(tmp_path):
    """Penultimate features given without `features_label_free=True` map the run, but
    prototype, near_dup, outlier and leakage stay absent, with the reason; `suspects` and
    the score table cope with their columns missing."""
    rd = _tiny_recording(tmp_path)
    summary, frame = rd.read_summary(), rd.read_scores()
    for key in ("prototype", "near_dup", "outlier", "leakage"):
        assert key not in summary["scores"] and key not in frame.columns
        assert "features_label_free=True" in summary["absent_scores"][key]
        assert key not in summary["definitions"]
    assert {"dup_group", "leak_of"}.isdisjoint(frame.columns)
    assert "features" in rd.read_run(0)  # still the map's
    assert rd.read_config()["recording"]["features_free"] is None
    out = run_cli(
        "suspects", "--run", str(rd.path), "--top", "5", "--format", "csv", cache=tmp_path / "cache"
    )
    assert out.returncode == 0 and len(out.stdout.strip().splitlines()) == 6, out.stderr


def test_features_stated_label_free_give_the_label_free_scores(tmp_path):
    """`end_run(features_label_free=True)`: run 1's features are the label-free embeddings,
    and the definitions say whose they are."""
    rd = _tiny_recording(tmp_path, eval_runs=(0, 1), features_label_free=True)
    summary = rd.read_summary()
    for key in ("prototype", "near_dup", "outlier", "leakage"):
        assert key in summary["scores"]
        assert "stated label-free by the user" in summary["definitions"][key]
    assert "fixed weights after epoch 1" in summary["definitions"]["el2n"]
    assert "NOT" not in summary["definitions"]["el2n"]
    feats = store.load_arrays(rd.features_free_file)["features"]
    np.testing.assert_array_equal(feats, rd.read_run(0)["features"].astype(np.float32))


def test_a_recording_gets_the_health_checks_its_arrays_allow(tmp_path):
    """health.json is written for recordings too: non-IID from the label-free features; the
    overlapping classes absent without `log_oof`, and image types absent without inputs,
    each with the way to get them."""
    from scoring.read import health
    from scoring.read.views import load_run

    rd = _tiny_recording(tmp_path, features_label_free=True)
    record = rd.read_health()
    assert record["non_iid"]["available"] and record["underperforming_group"]["missing"] == [
        "oof_probs"
    ]
    got = {i["type"]: i for i in health.health_report(load_run(rd.path))}
    assert got["non_iid"]["available"]
    assert "log them with `Recorder.log_oof`" in got["overlapping_classes"]["reason"]
    assert got["dark"]["reason"].startswith("this run was recorded without its inputs")

"""The `tfidf` recipe: TF-IDF features against a hand computation, the SVD reduction, the
cached table, and a run end to end with every default score (no transformer loaded)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.scores.registry import available
from scoring.training import steps, tfidf
from scoring.training.pipeline import score
from scoring.training.steps import prepare

GOOD = ["warm", "sharp", "funny", "moving", "bright", "clever"]
BAD = ["dull", "tedious", "lifeless", "bland", "clumsy", "boring"]
FILLER = [f"w{i}" for i in range(40)]


def _sentences(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` short sentences, half positive: filler words plus two words of the label's list,
    and one word of the other list in a tenth of them (so the task is not trivial)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        own, other = (GOOD, BAD) if label else (BAD, GOOD)
        words = list(rng.choice(FILLER, 5)) + list(rng.choice(own, 2))
        if rng.random() < 0.1:
            words.append(str(rng.choice(other)))
        rows.append((" ".join(rng.permutation(words)), ["neg", "pos"][label]))
    return pd.DataFrame(rows, columns=["sentence", "label"])


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.parquet"
    _sentences(200).to_parquet(path, index=False)
    return path


def _config(source: Path, **train) -> ScoreConfig:
    return ScoreConfig(
        data=DataConfig(source=str(source)),
        train=TrainConfig(recipe="tfidf", runs=2, epochs=4, **train),
        cv_folds=2,
    )


def _hand_tfidf(train: list[str], test: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Word 1-2-grams (scikit-learn's token pattern, lowercased), min_df 2, sublinear tf,
    smooth idf, L2 rows: the vocabulary (sorted) and both dense matrices."""

    def grams(text: str) -> list[str]:
        words = re.findall(r"(?u)\b\w\w+\b", text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    counts = [Counter(grams(t)) for t in train]
    df = Counter(g for c in counts for g in c)
    vocab = sorted(g for g, d in df.items() if d >= 2)
    n = len(train)
    idf = np.array([math.log((1 + n) / (1 + df[g])) + 1 for g in vocab])

    def rows(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(vocab)))
        for i, text in enumerate(texts):
            c = Counter(grams(text))
            for j, g in enumerate(vocab):
                if c[g]:
                    out[i, j] = (1 + math.log(c[g])) * idf[j]
            norm = np.linalg.norm(out[i])
            out[i] /= norm if norm else 1.0
        return out

    return vocab, rows(train), rows(test)


def test_tfidf_matches_a_hand_computation() -> None:
    frame = _sentences(60, seed=3)
    train = list(frame.sentence[:45]) + ["Warm warm WARM film, a film"]
    test = list(frame.sentence[45:]) + ["zzz unseen words only"]
    x_train, x_test = tfidf.tfidf_matrices(train, test)
    vocab, want_train, want_test = _hand_tfidf(train, test)
    assert x_train.shape == (46, len(vocab)) and x_test.shape == (16, len(vocab))
    assert x_train.dtype == np.float32
    np.testing.assert_allclose(x_train.toarray(), want_train, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(x_test.toarray(), want_test, rtol=1e-5, atol=1e-7)
    assert x_test[-1].nnz == 0  # nothing it knows: a zero row, not an error


def test_pairs_are_joined_into_one_document() -> None:
    assert tfidf.documents([("a b", "c"), ("d", "e f")]) == ["a b c", "d e f"]
    assert tfidf.documents(["x y"]) == ["x y"]


def test_the_reduction_keeps_inner_products_when_its_width_allows() -> None:
    """With width min(N, V) the SVD spans the training rows: every inner product with a
    training row (of a training or a test row) is kept exactly."""
    frame = _sentences(80, seed=1)
    x_train, x_test = tfidf.tfidf_matrices(list(frame.sentence[:60]), list(frame.sentence[60:]))
    z_train, z_test = tfidf.reduce(x_train, x_test)
    assert z_train.shape == (60, min(x_train.shape)) and z_train.dtype == np.float32
    np.testing.assert_allclose(z_train @ z_train.T, (x_train @ x_train.T).toarray(), atol=2e-5)
    np.testing.assert_allclose(z_test @ z_train.T, (x_test @ x_train.T).toarray(), atol=2e-5)


def test_the_reduction_caps_its_width() -> None:
    rng = np.random.default_rng(0)
    words = [f"t{i}" for i in range(400)]
    texts = [" ".join(rng.choice(words, 12)) for _ in range(600)]
    z_train, z_test = tfidf.reduce(*tfidf.tfidf_matrices(texts[:560], texts[560:]))
    assert z_train.shape == (560, tfidf.N_COMPONENTS) and z_test.shape == (40, 512)
    norms = np.linalg.norm(z_train, axis=1)  # a projection of unit rows: shorter, not longer
    assert (norms <= 1 + 1e-5).all() and norms.mean() > 0.3


def test_a_vocabulary_with_no_shared_word_is_refused() -> None:
    with pytest.raises(InputError, match="no word or word pair occurs in 2"):
        tfidf.tfidf_matrices(["alpha beta", "gamma delta", "epsilon zeta"], [])


def test_tfidf_run_end_to_end_with_every_default_score(text_file, cache_dir, monkeypatch):
    """Every default score present and finite; no transformer is ever loaded."""
    import scoring.training.embed as embed

    def no_transformer(*_a, **_k):
        raise AssertionError("a tfidf run loaded a transformer")

    monkeypatch.setattr(embed, "_from_pretrained", no_transformer)
    run = score(_config(text_file), cache_dir, show_progress=False)
    frame = store.read_scores(run)
    keys = available(list(REGISTRY), False, "text")
    assert set(keys) <= set(frame.columns) and len(frame) == 160  # 20% carved for testing
    values = frame[keys].to_numpy(dtype=float)
    assert np.isfinite(values).all(), [k for k in keys if not np.isfinite(frame[k]).all()]
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["name"] == "tfidf" and config["recipe"]["optimizer"] == "adam"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy_mean"] > 0.8  # the label words are learnable
    table = store.load_arrays(store.RunDir(run).embeddings_file(tfidf.tfidf_key()))
    kept = store.RunDir(run).read_inputs()  # named like embeddings, not copied
    assert kept.kind == "embeddings" and np.array_equal(kept.train, table["train"])
    assert np.array_equal(kept.test, table["test"])
    free = store.load_arrays(store.RunDir(run).features_free_file)["features"]
    assert np.array_equal(free, table["train"])  # prototype & co. read the same table
    assert store.RunDir(run).read_run(0)["features"].shape == (160, 256)


def test_the_table_is_fitted_on_training_rows_only(text_file, cache_dir):
    """What the pipeline caches is `tfidf_features` of the training and test texts, fitted on
    the training texts: adding test texts to the fit would change the idf."""
    prep = prepare(_config(text_file), cache_dir)
    x, x_test = steps.tfidf_inputs(prep)
    want = tfidf.tfidf_features(prep.dataset.train.inputs, prep.dataset.test.inputs)
    np.testing.assert_array_equal(x.numpy(), want["train"])
    np.testing.assert_array_equal(x_test.numpy(), want["test"])
    # Fitted on every row, the idf (and so the vocabulary's weights) would differ.
    both = list(prep.dataset.train.inputs) + list(prep.dataset.test.inputs)
    x_all, _ = tfidf.tfidf_matrices(both, [])
    x_own, _ = tfidf.tfidf_matrices(prep.dataset.train.inputs, [])
    assert x_all.shape != x_own.shape or abs(x_all[:160] - x_own).max() > 1e-3


def test_the_table_is_computed_once_per_dataset(text_file, cache_dir, monkeypatch):
    score(_config(text_file), cache_dir, show_progress=False)

    def again(*_a, **_k):
        raise AssertionError("the TF-IDF table was computed again")

    monkeypatch.setattr(steps, "tfidf_features", again)
    noisy = dataclasses.replace(_config(text_file), noise=NoiseConfig(fraction=0.2, seed=1))
    run = score(noisy, cache_dir, show_progress=False)  # another key, the same dataset
    assert store.read_status(run)["state"] == "done"


def test_tfidf_on_images_is_refused_in_one_line(cache_dir):
    cfg = ScoreConfig(data=DataConfig(source="digits", limit=100), train=TrainConfig("tfidf"))
    with pytest.raises(InputError, match="recipe 'tfidf' does not fit image data") as err:
        prepare(cfg, cache_dir)
    assert "\n" not in str(err.value)
    assert not any(cache_dir.glob("*/*/config.json"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dataset", "digits", "--recipe", "tfidf"), "recipe 'tfidf' does not fit image data"),
        (("--recipe", "tfidf", "--long-text", "cut"), "--long-text must be one of chunk"),
    ],
)
def test_the_cli_refuses_bad_text_options_in_one_line(args, message, text_file, cache_dir, capsys):
    from scoring.__main__ import main

    given = args if "--dataset" in args else ("--dataset", str(text_file), *args)
    assert main(["score", *given, "--preset", "tiny", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not any(cache_dir.glob("*/*/config.json"))

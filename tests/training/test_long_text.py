"""Long texts: chunked embeddings (`--long-text chunk`) against a hand computation on a tiny
random encoder, their cache key, and a probe run end to end with every default score."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from scoring import store
from scoring.config import SCORING_VERSION, DataConfig, NoiseConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.scores.registry import available
from scoring.training import steps
from scoring.training.embed import embed_texts, embedding_key, resolve_model_path, window_overlap
from scoring.training.pipeline import score

WORDS = "the a film story cast plot score scene ending moment actor light music".split()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A local model folder: a random 2-layer BERT with MiniLM's tokenizer and vocabulary."""
    folder = tmp_path_factory.mktemp("tiny-encoder")
    tok = AutoTokenizer.from_pretrained(resolve_model_path(None))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _text(n_words: int, seed: int) -> str:
    return " ".join(np.random.default_rng(seed).choice(WORDS, n_words))


def _by_hand(folder: Path, text: str, max_length: int) -> np.ndarray:
    """Windows cut by hand from the text's tokens, each run alone (no padding), every
    token vector averaged, then unit norm."""
    tok = AutoTokenizer.from_pretrained(folder)
    enc = AutoModel.from_pretrained(folder).eval()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    content = max_length - 2  # [CLS] ... [SEP]
    step = content - window_overlap(max_length)
    starts = [0]
    while starts[-1] + content < len(ids):
        starts.append(starts[-1] + step)
    vectors = []
    with torch.no_grad():
        for s in starts:
            window = [tok.cls_token_id, *ids[s : s + content], tok.sep_token_id]
            hidden = enc(input_ids=torch.tensor([window])).last_hidden_state[0]  # (L, H)
            vectors.append(hidden.double())
    pooled = torch.cat(vectors).mean(0)  # every token of every window, alike
    return (pooled / pooled.norm()).numpy()


def test_chunked_pooling_equals_a_hand_computation(tiny_encoder):
    texts = [_text(70, 1), _text(5, 2), _text(33, 3)]
    got = embed_texts(texts, model=str(tiny_encoder), max_length=16, long_text="chunk")
    assert got.shape == (3, 16) and got.dtype == np.float32
    for row, text in zip(got, texts, strict=True):
        np.testing.assert_allclose(row, _by_hand(tiny_encoder, text, 16), atol=2e-6)


def test_a_text_that_fits_one_window_is_embedded_as_by_truncation(tiny_encoder):
    texts = [_text(n, n) for n in (3, 9, 13)]  # 13 words: 13 tokens + 2 specials <= 16
    kw = dict(model=str(tiny_encoder), max_length=16)
    chunked = embed_texts(texts, long_text="chunk", **kw)
    np.testing.assert_allclose(chunked, embed_texts(texts, long_text="truncate", **kw), atol=1e-6)


def test_truncation_reads_only_the_first_window_and_chunking_all(tiny_encoder):
    head = _text(20, 5)
    texts = [f"{head} {_text(30, 6)}", f"{head} {_text(30, 7)}"]  # same first 16 tokens
    kw = dict(model=str(tiny_encoder), max_length=16)
    cut = embed_texts(texts, long_text="truncate", **kw)
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-6)
    whole = embed_texts(texts, long_text="chunk", **kw)
    assert np.abs(whole[0] - whole[1]).max() > 1e-3


def test_sentence_pairs_are_truncated_either_way(tiny_encoder):
    pairs = [(_text(30, 8), _text(30, 9))]
    kw = dict(model=str(tiny_encoder), max_length=16)
    np.testing.assert_allclose(
        embed_texts(pairs, long_text="chunk", **kw),
        embed_texts(pairs, long_text="truncate", **kw),
        atol=1e-6,
    )


def test_the_mode_enters_the_embedding_and_run_keys(tiny_encoder):
    model = str(tiny_encoder)
    assert embedding_key(model, 16) == embedding_key(model, 16, "truncate")  # names kept
    assert embedding_key(model, 16, "chunk") != embedding_key(model, 16)
    truncate = ScoreConfig(train=TrainConfig(recipe="probe", long_text="truncate"))
    old = truncate.to_dict()  # a run key from before chunking: no long_text in it
    old["data"] = {**old["data"], "source": None, "test": None}
    for name in ("annotator_cols", "annotations"):
        old["data"].pop(name, None)
    del old["noise"]["kind"], old["train"]["long_text"]
    payload = json.dumps({"config": old, "scoring_version": SCORING_VERSION}, sort_keys=True)
    assert truncate.key() == hashlib.sha256(payload.encode()).hexdigest()[:16]
    assert ScoreConfig(train=TrainConfig(recipe="probe")).key() != truncate.key()


def test_an_unknown_mode_is_refused_in_one_line():
    with pytest.raises(InputError, match="--long-text must be one of chunk, truncate, got 'cut'"):
        ScoreConfig(train=TrainConfig(long_text="cut")).validate()


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    """60 'reviews' of 20-40 words: the label's word is in the last few words only, so a
    16-token window from the start cannot see it."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = i % 2
        word = ["awful", "wonderful"][label]
        rows.append((f"{_text(int(rng.integers(20, 40)), i)} truly {word}", label))
    path = tmp_path / "reviews.parquet"
    pd.DataFrame(rows, columns=["review", "label"]).to_parquet(path, index=False)
    return path


def test_probe_on_long_texts_end_to_end_with_every_default_score(
    reviews, tiny_encoder, cache_dir, monkeypatch
):
    cfg = ScoreConfig(
        data=DataConfig(source=str(reviews)),
        train=TrainConfig(recipe="probe", model=str(tiny_encoder), runs=2, epochs=3, max_length=16),
        cv_folds=2,
    )
    run = score(cfg, cache_dir, show_progress=False)
    frame = store.read_scores(run)
    keys = available(list(REGISTRY), False, "text")
    assert np.isfinite(frame[keys].to_numpy(dtype=float)).all()
    rd = store.RunDir(run)
    table = store.load_arrays(rd.embeddings_file(embedding_key(str(tiny_encoder), 16, "chunk")))
    prep = steps.prepare(cfg, cache_dir)
    want = embed_texts(
        prep.dataset.train.inputs, model=str(tiny_encoder), max_length=16, long_text="chunk"
    )
    np.testing.assert_allclose(table["train"], want, atol=1e-6)
    assert np.array_equal(rd.read_inputs().train, table["train"])

    def again(*_a, **_k):
        raise AssertionError("the chunked embeddings were computed again")

    monkeypatch.setattr(steps, "embed_texts", again)
    noisy = dataclasses.replace(cfg, noise=NoiseConfig(fraction=0.2, seed=1))
    assert store.read_status(score(noisy, cache_dir, show_progress=False))["state"] == "done"

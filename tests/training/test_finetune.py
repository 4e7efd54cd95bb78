"""The `finetune` recipe: token tensors, dynamic padding, text VoG and TracIn, pairs.

A randomly initialised small BERT (built here, nothing downloaded) stands in for the
encoder; it is saved with the offline MiniLM's tokenizer as a local model folder, so the
end-to-end runs exercise exactly the `--model PATH` code path a user's encoder takes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertConfig, BertModel

from scoring import store
from scoring.config import DataConfig, GradConfig, ScoreConfig, TrainConfig
from scoring.scores import REGISTRY
from scoring.scores.registry import available
from scoring.training import ghost
from scoring.training.embed import resolve_model_path
from scoring.training.grads import input_grad_variance, sq_grad_norms
from scoring.training.loop import predict
from scoring.training.pipeline import score
from scoring.training.text_models import MASK, TextClassifier, tokenize, trim_padding

# Every score a run without several annotators per example computes.
PLAIN = available(list(REGISTRY), has_annotations=False, modality="text")


def _tiny_bert(seed: int, vocab_size: int = 100) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(config)


def _tokens(lengths: list[int], width: int, seed: int = 0) -> torch.Tensor:
    """(B, 3, width) token tensor: random ids, then padding (id 0, mask 0) after each length."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), 3, width, dtype=torch.int64)
    for i, n in enumerate(lengths):
        x[i, 0, :n] = torch.randint(5, 100, (n,), generator=gen)
        x[i, 1, :n] = 1
    return x


def _classifier(seed: int) -> TextClassifier:
    model = TextClassifier(_tiny_bert(seed), n_classes=3).double().eval()
    return model


def test_trim_padding_cuts_to_the_longest_real_example() -> None:
    x = _tokens([3, 5, 2], width=9)
    assert trim_padding(x).shape == (3, 3, 5)
    images = torch.zeros(2, 3, 4, 4)
    assert trim_padding(images) is images


def test_padding_changes_no_prediction() -> None:
    """Dynamic padding is exact: the same examples padded wider give the same outputs."""
    model = _classifier(0)
    x = _tokens([4, 7, 2], width=7)
    wide = torch.cat([x, torch.zeros(3, 3, 5, dtype=torch.int64)], dim=2)  # 5 more pads
    with torch.no_grad():
        torch.testing.assert_close(model(wide), model(x), rtol=1e-12, atol=1e-12)
    out = predict(model, wide, device=torch.device("cpu"), batch_size=2)
    with torch.no_grad():
        np.testing.assert_allclose(
            out.probs, torch.softmax(model(x), 1).numpy(), rtol=1e-6
        )  # float32 out


def _direct_vog(models, x, y) -> np.ndarray:
    """Example by example, cut to its own length: Var_k of ∂f_y/∂(token embeddings)."""
    out = []
    for i in range(x.shape[0]):
        n = int(x[i, MASK].sum())
        xi = x[i : i + 1, :, :n]
        grads = []
        for m in models:
            emb = m.encoder.get_input_embeddings()(xi[:, 0]).detach().requires_grad_(True)
            logits = m.head(m.features_from_embeddings(emb, xi))
            (g,) = torch.autograd.grad(logits[0, y[i]], emb)
            grads.append(g[0].numpy())  # (n, E)
        out.append(np.stack(grads).var(axis=0).mean())  # over K; then tokens x dims
    return np.array(out)


def test_text_vog_matches_a_direct_computation_and_ignores_padding() -> None:
    models = [_classifier(s) for s in (1, 2, 3)]
    x = _tokens([6, 3, 9, 1], width=12)
    y = torch.tensor([0, 2, 1, 2])
    expected = _direct_vog(models, x, y)
    got = input_grad_variance(models, x, y, chunk=3)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # Wider padding changes nothing: padding tokens are neither in the average nor the model.
    wide = torch.cat([x, torch.zeros(4, 3, 4, dtype=torch.int64)], dim=2)
    np.testing.assert_allclose(input_grad_variance(models, wide, y, chunk=4), got, rtol=1e-10)


def test_all_parameter_gradients_of_tokens_match_padded_autograd() -> None:
    """The per-example path trims each example; full-width autograd must agree."""
    model = _classifier(4)
    x = _tokens([5, 2, 8], width=10)
    y = torch.tensor([1, 0, 2])
    params = [p for p in model.parameters()]
    expected = []
    for i in range(3):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        expected.append(sum(float(g.pow(2).sum()) for g in grads if g is not None))
    np.testing.assert_allclose(sq_grad_norms(model, x, y), expected, rtol=1e-10)


def test_last_layer_closed_form_matches_autograd_on_the_head() -> None:
    model = _classifier(5)
    x = _tokens([4, 6], width=6)
    y = torch.tensor([2, 0])
    expected = []
    for i in range(2):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(model.head.parameters()))
        expected.append(sum(float(g.pow(2).sum()) for g in grads))
    np.testing.assert_allclose(sq_grad_norms(model, x, y, params="last"), expected, rtol=1e-10)


def test_pairs_are_tokenized_as_pairs() -> None:
    tok = AutoTokenizer.from_pretrained(resolve_model_path(None))
    pairs = [("a man is playing a guitar", "someone makes music"), ("hi", "there you go")]
    tokens = tokenize(pairs, model=None, max_length=32)
    assert tokens.shape[:2] == (2, 3)
    for i, (a, b) in enumerate(pairs):
        enc = tok(a, b)
        n = len(enc["input_ids"])
        assert tokens[i, 0, :n].tolist() == enc["input_ids"]
        assert tokens[i, 1].sum() == n and tokens[i, 2, :n].tolist() == enc["token_type_ids"]
        assert tokens[i, 2, :n].max() == 1  # the second sentence has token type 1
    single = tokenize(["a man is playing a guitar"], model=None, max_length=4)
    assert single.shape == (1, 3, 4)  # truncated to --max-length


# --- end to end --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A local model folder: a random 2-layer BERT with MiniLM's tokenizer and vocabulary."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(resolve_model_path(None))
    _tiny_bert(0, vocab_size=tok.vocab_size).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _pairs_file(path, n: int = 48):
    rng = np.random.default_rng(7)
    words = ["cat", "dog", "sun", "rain", "red", "blue", "runs", "sleeps", "big", "small"]
    rows = []
    for i in range(n):
        a = " ".join(rng.choice(words, size=rng.integers(3, 8)))
        label = ["entailment", "neutral", "contradiction"][i % 3]
        b = a if label == "entailment" else " ".join(rng.choice(words, size=rng.integers(2, 5)))
        rows.append({"premise": a, "hypothesis": b, "gold": label})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_sentence_pairs_score_end_to_end_with_every_score(cache_dir, tmp_path, tiny_model_dir):
    data_file = _pairs_file(tmp_path / "nli.jsonl")
    cfg = ScoreConfig(
        data=DataConfig(
            source=str(data_file), input_cols=("premise", "hypothesis"), label_col="gold"
        ),
        train=TrainConfig(
            recipe="finetune", model=str(tiny_model_dir), runs=2, epochs=2, batch_size=8,
            lr=1e-3, max_length=24,
        ),
        cv_folds=2,
        grads=GradConfig(checkpoints=2),
    )  # fmt: skip
    path = score(cfg, cache_dir, show_progress=False)
    frame = store.read_scores(path)
    assert list(frame.columns) == ["id", "label", *PLAIN, "dup_group", "leak_of"]
    assert np.isfinite(frame[PLAIN].to_numpy()).all()
    config = json.loads((path / "config.json").read_text())
    assert config["recipe"]["name"] == "finetune" and config["recipe"]["optimizer"] == "adamw"
    run0 = store.load_arrays(path / "runs" / "run_000.npz")
    assert run0["loss"].shape[0] == 2  # dynamics recorded per epoch, as for every recipe
    assert run0["features"].shape[1] == 16  # the tiny encoder's pooled hidden state
    texts = pd.read_parquet(path / "examples" / "texts.parquet")
    assert {"text", "text_pair"} <= set(texts.columns)


# --- ghost norms (scoring/ghost.py) ------------------------------------------------------


def _loop_norms(model, x, y, target):
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for i in range(x.shape[0]):
        logits = model(trim_padding(x[i : i + 1]))
        if target == "loss":
            values = [F.cross_entropy(logits, y[i : i + 1])]
        elif target == "logit_sum":
            values = [logits.sum()]
        else:
            values = list(logits[0])
        total = 0.0
        for v in values:
            grads = torch.autograd.grad(v, params, retain_graph=True, allow_unused=True)
            total += sum(float(g.double().pow(2).sum()) for g in grads if g is not None)
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("target", ["loss", "logit_sum", "logits"])
def test_ghost_norms_equal_a_per_example_loop_on_a_tiny_bert(target) -> None:
    model = _classifier(6)
    x = _tokens([7, 3, 9, 5], width=11, seed=2)
    x[0, 0, 4] = x[0, 0, 1]  # a repeated token: its embedding row gets two contributions
    x[2, 2, 5:9] = 1  # a second segment (token type 1), as in a sentence pair
    y = torch.tensor([2, 0, 1, 1])
    assert ghost.supports(model)
    got = sq_grad_norms(model, x, y, target=target, chunk=3)
    np.testing.assert_allclose(got, _loop_norms(model, x, y, target), rtol=1e-10)


def test_ghost_norms_on_the_real_minilm() -> None:
    """The offline MiniLM (a real Hugging Face checkpoint, float32) against the loop."""
    from scoring.training.embed import load_encoder

    torch.manual_seed(0)
    model = TextClassifier(load_encoder(None), n_classes=2).eval()
    texts = ["a gripping, funny film", "dull", "the plot goes nowhere and the cast knows it"]
    x = torch.from_numpy(tokenize(texts, model=None, max_length=32))
    y = torch.tensor([1, 0, 0])
    got = sq_grad_norms(model, x, y)
    np.testing.assert_allclose(got, _loop_norms(model, x, y, "loss"), rtol=1e-4)


class _SharedLinear(torch.nn.Module):
    """A layer used twice per forward, and a 2-D head: both code paths of the Linear rule."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = self.inner(torch.tanh(self.inner(x)))  # (B, T, 4), the same weights twice
        return self.head(self.norm(h).mean(1))


def test_ghost_norms_sum_a_layer_called_twice_before_squaring() -> None:
    torch.manual_seed(1)
    model = _SharedLinear().double().eval()
    x, y = torch.randn(5, 6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    got = ghost.sq_norms(model, x, y, "loss", 3).numpy()
    params = list(model.parameters())
    expected = [
        sum(
            float(g.pow(2).sum())
            for g in torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params)
        )
        for i in range(5)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_ghost_norms_refuse_unsupported_layers() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, groups=2), torch.nn.Flatten())
    assert not ghost.supports(conv)
    assert ghost.supports(_SharedLinear())

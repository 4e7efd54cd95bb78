"""The epoch bar: no time left shown until it is known, never a negative one."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from scoring import store
from scoring.training.progress import Progress


def _line(progress: Progress) -> str:
    return str(progress.bar)


def test_time_left_appears_only_once_known_and_never_below_zero(tmp_path, capsys):
    progress = Progress(tmp_path, total=3.0, enabled=True, tty=True)
    progress.stage("run 1/1")
    assert _line(progress).endswith("[00:00]")  # no "<?" before any epoch is done
    for _ in range(30):  # fractional steps whose float sum overshoots 3.0
        time.sleep(0.002)
        progress.advance(0.1 + 1e-9)
    line = _line(progress)
    assert "<" in line and "-" not in line.split("[")[-1], line
    assert progress.bar.n == 3.0 and "3.0/3 epochs" in line
    assert store.read_status(tmp_path)["progress"] <= 0.999  # done is written by the pipeline
    progress.close()
    assert "TqdmWarning" not in capsys.readouterr().err


def test_a_resumed_run_starts_the_bar_at_its_work_read_back(tmp_path, capsys):
    progress = Progress(tmp_path, total=10.0, enabled=True, tty=True)
    progress.advance(4.0)  # runs read back from disk before any stage
    progress.stage("runs 3 of 3")
    assert progress.bar.n == 4.0 and progress.bar.initial == 4.0
    assert _line(progress).endswith("[00:00]")  # the read-back work says nothing of speed
    progress.close()


def test_a_counted_stage_says_loading_then_a_moving_count_even_when_quiet(tmp_path, monkeypatch):
    """A job runs --quiet (no bar drawn): the count still moves, written at most every
    COUNT_EVERY_S seconds and always at the end (the old bar counted nothing when disabled)."""
    from scoring.training import progress as progress_module

    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    written: list[str] = []
    real = store.write_status

    def spy(path, state, **fields):
        real(path, state, **fields)
        written.append(fields["message"])

    monkeypatch.setattr(store, "write_status", spy)
    progress = Progress(tmp_path, total=3.0, enabled=False)
    bar, tick = progress.counter("embedding text", 600, "sentence")
    assert written == ["embedding text: loading the model"]  # at once, before any batch
    for _ in range(10):  # a batch of 60 every 0.4 s
        clock[0] += 0.4
        tick(60)
    bar.close()
    counts = [int(m.split(": ")[1].split("/")[0]) for m in written[1:]]
    assert counts == sorted(counts) and counts[-1] == 600, written
    assert len(counts) in (4, 5)  # about one write a second over 4 s, and the last one
    assert store.read_status(tmp_path)["message"] == "embedding text: 600/600 sentences"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A local model folder: a random 2-layer BERT with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from scoring.training.embed import resolve_model_path

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


@pytest.mark.parametrize("long_text", ["truncate", "chunk"])
def test_embedding_reports_a_count_that_moves_batch_by_batch(tiny_encoder, long_text):
    """Each batch moves the count; with long texts chunked, before any long text is whole
    (their windows come last), and the counts add up to the number of texts."""
    from scoring.training.embed import embed_texts

    words = "the a film story cast plot score scene ending".split()
    lengths = [40 if i % 3 == 0 else 4 for i in range(30)]  # every third text: 3+ windows
    texts = [" ".join(words[(i + j) % 9] for j in range(n)) for i, n in enumerate(lengths)]
    counts: list[int] = []
    embed_texts(
        texts,
        model=str(tiny_encoder),
        max_length=16,
        batch_size=8,
        long_text=long_text,
        on_batch=counts.append,
    )
    running = np.cumsum(counts)
    assert len(counts) > 3 and all(c >= 0 for c in counts)
    assert running[-1] == len(texts)
    assert (np.diff(running[:-1]) > 0).all()  # moving at every batch but possibly the last
    assert running[len(counts) // 2] >= len(texts) // 3  # half the windows: a fair share shown

"""`WinnowTrainer`: a tiny random BERT (built from a config and a vocabulary file, saved to
a temp folder: no download) fine-tuned by Hugging Face's Trainer on an SST-2 subset; the
recorded run is done, its losses are the Trainer's own, and every page renders it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from tests.app.pages import open_page
from tests.conftest import SHARED_DATA

pytest.importorskip("accelerate", reason="Hugging Face's Trainer needs accelerate")
SST2 = SHARED_DATA / "sst2" / "train.parquet"
PAGES = sorted(p.name for p in (Path(__file__).parents[2] / "app_pages").glob("[!_]*.py"))
EPOCHS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import datasets
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
        DataCollatorWithPadding,
        TrainingArguments,
    )

    from scoring import data
    from scoring.config import DataConfig
    from scoring.record import Recorder, WinnowTrainer

    if not SST2.exists():
        pytest.skip(f"{SST2} is not here")
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hf")
    subset = root / "sst2_small.parquet"
    pd.read_parquet(SST2).iloc[:250].to_parquet(subset)
    ds = data.load(DataConfig(source=str(subset)))  # 200 training rows, 50 carved held out

    words = Counter(w for s in ds.train.inputs for w in s.lower().split())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(w for w, c in words.items())]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    folder = root / "tiny-bert"
    BertTokenizer(vocab_file=str(root / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)  # the local folder: nothing fetched
    model = AutoModelForSequenceClassification.from_pretrained(folder)

    def table(split) -> datasets.Dataset:
        frame = {"id": split.ids, "sentence": list(split.inputs), "label": split.labels}
        tokenized = datasets.Dataset.from_dict(frame).map(
            lambda b: tokenizer(b["sentence"], truncation=True, max_length=64), batched=True
        )
        return tokenized.remove_columns(["sentence"])

    cache = root / "cache"
    rec = Recorder(
        cache, "tiny bert", ds.train.ids, ds.train.labels, 2, dataset=str(subset), early_epoch=1
    )
    args = TrainingArguments(
        output_dir=str(root / "out"),
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=20,  # 200 rows: 10 equal batches an epoch
        learning_rate=1e-3,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="epoch",
        seed=0,
    )
    trainer = WinnowTrainer(
        model=model,
        args=args,
        train_dataset=table(ds.train),
        data_collator=DataCollatorWithPadding(tokenizer),
        recorder=rec,
        test_dataset=table(ds.test),
    )
    trainer.train()
    return cache, trainer.finish_recording(), ds, trainer.state.log_history


def test_the_trainer_run_is_done_with_the_trainers_own_losses(trained):
    _cache, path, ds, history = trained
    rd = store.RunDir(path)
    assert rd.check(deep=True) == []
    config = rd.read_config()
    assert config["source"] == "recorded" and config["recording"]["epochs"] == EPOCHS
    assert config["recording"]["probs_early"] == "eval pass"  # EL2N at fixed weights
    assert config["recording"]["logged_per_epoch"] == [[[1, 1]] * EPOCHS]  # each id once
    run = rd.read_run(0)
    # The Trainer's epoch loss is the mean of its 10 equal batches' mean losses, which is the
    # mean of the recorded per-example losses when they are the logits the loss saw.
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == EPOCHS
    np.testing.assert_allclose(run["loss"].mean(axis=1), losses, rtol=2e-3, atol=1e-3)
    assert run["test_probs"].shape == (len(ds.test.ids), 2)
    assert {"aum", "el2n", "forgetting", "loss"} <= set(rd.read_scores().columns)
    texts = rd.read_texts()
    assert list(texts["text"]) == list(ds.train.inputs)  # the linked source's sentences


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_the_trainer_run(trained, monkeypatch, page):
    cache, path, _ds, _history = trained
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(cache))
    at = open_page(page, path)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

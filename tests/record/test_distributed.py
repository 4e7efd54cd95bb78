"""Distributed recording: 2 processes on gloo (CPU) train with DDP, each logs its own
examples; `finish` merges them by id. Every id is recorded once per epoch, even the one the
sampler's padding has both ranks train (the lowest rank's logging is kept), and the scores
equal those of one process logging the very same batches; a sampler that drops examples
fails at the first `end_epoch`, not at `finish`; ranks are merged in numeric order."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.record import Recorder
from scoring.training.record.epochs import epoch_stats
from scoring.training.record.scratch import RANK_FILE, rank_records
from tests.record.ddp_worker import BATCH, EPOCHS, N_TRAIN
from tests.record.loops import digits


@pytest.fixture(scope="module")
def ddp_out(tmp_path_factory) -> Path:
    """The folder the two ranks of `ddp_worker` wrote: tapes, run paths, drop_last errors."""
    out = tmp_path_factory.mktemp("ddp")
    # A fresh interpreter spawns the ranks: spawned children re-run the parent's __main__,
    # which in a pytest process that has driven an AppTest is a page script.
    # Gloo on the loopback device: by default it resolves the host's name to pick one, and
    # a container whose name does not resolve aborts the rank (SIGABRT) with no Python error.
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.record.ddp_worker", str(out)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The ranks' own output names the cause when one dies (CalledProcessError alone does not).
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_two_ranks_merge_to_what_one_process_records(ddp_out):
    tmp_path = ddp_out
    paths = {(tmp_path / f"path_rank{r}.txt").read_text() for r in range(2)}
    assert len(paths) == 1  # both ranks return the one run folder
    merged = store.RunDir(paths.pop())
    assert merged.check(deep=True) == []
    tapes = [dict(np.load(tmp_path / f"tape_rank{r}.npz")) for r in range(2)]
    ids = np.arange(N_TRAIN) * 3 + 7
    steps = math.ceil(math.ceil(N_TRAIN / 2) / BATCH)  # per rank and epoch
    for e in range(EPOCHS):  # every id logged; the padding's one id by both ranks
        logged = np.concatenate([t[f"e{e}s{s}_ids"] for t in tapes for s in range(steps)])
        assert np.array_equal(np.unique(logged), ids) and logged.size == N_TRAIN + 1
    recording = merged.read_config()["recording"]
    assert recording["logged_per_epoch"] == [[[1, 2]] * EPOCHS]  # one id twice an epoch
    assert recording["ranks"] == 2

    # One process sees the same batches and extras, rank 1's before rank 0's: its last
    # logging of the padded id is then rank 0's, the one the merge keeps.
    d = digits(0.1, seed=0)
    rec = Recorder(tmp_path / "single", "ddp", ids, d.labels[:N_TRAIN], 10, early_epoch=1)
    last_first = tapes[::-1]
    for e in range(EPOCHS):
        for t in last_first:
            for s in range(steps):
                rec.log(t[f"e{e}s{s}_ids"], t[f"e{e}s{s}_logits"])
        rec.end_epoch()
        if e == 0:
            rec.log_eval(
                np.concatenate([t["eval_ids"] for t in last_first]),
                np.concatenate([t["eval_logits"] for t in last_first]),
            )
    test_ids = np.concatenate([t["test_ids"] for t in tapes])
    rec.end_run(
        test_logits=np.concatenate([t["test_logits"] for t in tapes]),
        test_labels=np.concatenate([t["test_labels"] for t in tapes]),
        test_ids=test_ids,
        features=np.concatenate([t["features"] for t in last_first]),
        feature_ids=np.concatenate([t["feature_ids"] for t in last_first]),
    )
    single = store.RunDir(rec.finish())
    assert np.array_equal(np.sort(test_ids), np.arange(len(d.test_labels)))
    pd.testing.assert_frame_equal(merged.read_scores(), single.read_scores())
    pd.testing.assert_frame_equal(merged.read_scores_per_run(), single.read_scores_per_run())
    pd.testing.assert_frame_equal(merged.read_predictions(), single.read_predictions())
    pd.testing.assert_frame_equal(merged.read_heldout(), single.read_heldout())
    a, b = merged.read_run(0), single.read_run(0)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "cache" / "_recording").exists()  # the ranks' files are gone


def test_the_padded_id_keeps_rank_0s_logging(ddp_out):
    """Checked directly, not through the replay: the loss recorded for the id both ranks
    trained in epoch 1 is the one rank 0's logits give, not rank 1's."""
    merged = store.RunDir((ddp_out / "path_rank0.txt").read_text())
    tapes = [dict(np.load(ddp_out / f"tape_rank{r}.npz")) for r in range(2)]
    steps = [sorted(k for k in t if k.startswith("e0s") and k.endswith("_ids")) for t in tapes]
    logged = [  # per rank: id -> (step key, place in the batch)
        {int(i): (k, j) for k in keys for j, i in enumerate(t[k])}
        for t, keys in zip(tapes, steps, strict=True)
    ]
    (twice,) = set(logged[0]) & set(logged[1])
    labels = digits(0.1, seed=0).labels[:N_TRAIN]
    row = (twice - 7) // 3  # ids are 3 * row + 7
    losses = []
    for t, where in zip(tapes, logged, strict=True):
        key, j = where[twice]
        logits = t[key.replace("_ids", "_logits")][j : j + 1]
        losses.append(float(epoch_stats(logits, labels[row : row + 1])[0][0, 0]))
    assert losses[0] != losses[1]
    assert merged.read_run(0)["loss"][0][row] == pytest.approx(losses[0], rel=1e-6)


def test_drop_last_fails_every_rank_at_the_first_end_epoch(ddp_out):
    """A DistributedSampler(drop_last=True) trains 600 of the 601 ids: both ranks' first
    `end_epoch` refuses it in one line that says which id and how to fix it."""
    messages = [(ddp_out / f"drop_rank{r}.txt").read_text() for r in range(2)]
    assert messages[0] == messages[1]
    assert "epoch 1 of run 1" in messages[0] and "logged 600 of 601" in messages[0]
    assert "1 missing, e.g. id" in messages[0] and "drop_last=False" in messages[0]
    assert "\n" not in messages[0]


def test_ranks_merge_in_numeric_order(tmp_path):
    """rank10 and rank11 come after rank2..rank9 (not between rank1 and rank2, as text)."""
    for r in range(12):
        (tmp_path / f"rank{r}").mkdir()
        (tmp_path / f"rank{r}" / RANK_FILE).write_text("{}")
    order = [f.parent.name for f in rank_records(tmp_path)]
    assert order == [f"rank{r}" for r in range(12)]

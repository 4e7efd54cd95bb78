"""Distributed recording: 2 processes on gloo (CPU) train with DDP, each logs its own
examples; `finish` merges them by id. Every id is covered exactly once per epoch, and the
scores equal those of one process logging the very same batches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scoring import store
from scoring.record import Recorder
from tests.record.ddp_worker import BATCH, EPOCHS, N_TRAIN
from tests.record.loops import digits


def test_two_ranks_merge_to_what_one_process_records(tmp_path):
    # A fresh interpreter spawns the ranks: spawned children re-run the parent's __main__,
    # which in a pytest process that has driven an AppTest is a page script.
    subprocess.run(
        [sys.executable, "-m", "tests.record.ddp_worker", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        check=True,
        timeout=300,
    )
    paths = {(tmp_path / f"path_rank{r}.txt").read_text() for r in range(2)}
    assert len(paths) == 1  # both ranks return the one run folder
    merged = store.RunDir(paths.pop())
    assert merged.check(deep=True) == []
    tapes = [dict(np.load(tmp_path / f"tape_rank{r}.npz")) for r in range(2)]
    ids = np.arange(N_TRAIN) * 3 + 7
    steps = -(-N_TRAIN // 2 // BATCH)
    for e in range(EPOCHS):  # what the ranks logged covers every id exactly once an epoch
        logged = np.concatenate([t[f"e{e}s{s}_ids"] for t in tapes for s in range(steps)])
        assert np.array_equal(np.sort(logged), ids)
    assert merged.read_config()["recording"]["logged_per_epoch"] == [[[1, 1]] * EPOCHS]
    assert merged.read_config()["recording"]["ranks"] == 2

    # One process sees the same batches (rank 0's step, then rank 1's) and the same extras.
    d = digits(0.1, seed=0)
    rec = Recorder(tmp_path / "single", "ddp", ids, d.labels[:N_TRAIN], 10, early_epoch=1)
    for e in range(EPOCHS):
        for s in range(steps):
            for t in tapes:
                rec.log(t[f"e{e}s{s}_ids"], t[f"e{e}s{s}_logits"])
        rec.end_epoch()
        if e == 0:
            rec.log_eval(
                np.concatenate([t["eval_ids"] for t in tapes]),
                np.concatenate([t["eval_logits"] for t in tapes]),
            )
    test_ids = np.concatenate([t["test_ids"] for t in tapes])
    rec.end_run(
        test_logits=np.concatenate([t["test_logits"] for t in tapes]),
        test_labels=np.concatenate([t["test_labels"] for t in tapes]),
        test_ids=test_ids,
        features=np.concatenate([t["features"] for t in tapes]),
        feature_ids=np.concatenate([t["feature_ids"] for t in tapes]),
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

"""`winnow import`: the files a recording's logits make give back the recorded run's scores;
out-of-fold probabilities alone give the cleanlab scores; bad files are refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring import store
from tests.conftest import run_cli


def _epoch_logits(steps, n: int) -> np.ndarray:
    """(N, K) logits of one epoch from its (ids, logits) steps, rows by id."""
    out = np.empty((n, steps[0][1].shape[1]), dtype=np.float32)
    for ids, values in steps:
        out[ids] = values
    return out


def test_import_of_the_logged_files_gives_the_recorded_scores(recorded, tmp_path):
    """Run 0 as .npz, run 1 as a long .parquet; eval passes, test logits and features in
    files of both kinds: the imported run's scores equal the recorded run's, bit for bit."""
    _cache, path, d, tape = recorded
    n = len(d.ids)
    runs = [
        np.stack([_epoch_logits(s, n) for s in run["epochs"]]) for run in tape.runs
    ]  # (T, N, K)
    np.savez(tmp_path / "run0.npz", id=d.ids, logits=runs[0], label=d.labels)
    long = pd.DataFrame(
        {
            "id": np.tile(d.ids, runs[1].shape[0]),
            # Counted from 0 here, as a Python loop counts (run 0's .npz has no numbers).
            "epoch": np.repeat(np.arange(runs[1].shape[0]), n),
            "logits": list(runs[1].reshape(-1, 10)),
            "label": np.tile(d.labels, runs[1].shape[0]),
        }
    )
    long.to_parquet(tmp_path / "run1.parquet")
    evals = pd.concat(
        [
            pd.DataFrame(
                {
                    "id": ids,
                    "epoch": epoch - 1,  # numbered as the training parquet
                    "run": r,
                    **{f"logit_{j}": v[:, j] for j in range(10)},
                }
            )
            for (r, epoch), (ids, v) in tape.evals.items()
        ]
    )
    evals.to_parquet(tmp_path / "evals.parquet")
    test = np.stack([run["test_logits"] for run in tape.runs])  # (R, M, K)
    m = test.shape[1]
    np.savez(tmp_path / "test.npz", id=np.arange(m), label=d.test_labels, logits=test)
    feats = pd.DataFrame({"id": d.ids, "features": list(tape.runs[0]["features"])})
    feats.to_parquet(tmp_path / "features.parquet")

    cache = tmp_path / "cache"
    out = run_cli(
        "import",
        "--name",
        "from files",
        "--logits",
        str(tmp_path / "run0.npz"),
        "--logits",
        str(tmp_path / "run1.parquet"),
        "--eval-logits",
        str(tmp_path / "evals.parquet"),
        "--test-logits",
        str(tmp_path / "test.npz"),
        "--features",
        str(tmp_path / "features.parquet"),
        cache=cache,
    )
    assert out.returncode == 0, out.stderr
    imported = store.RunDir(out.stdout.strip().splitlines()[-1])
    original = store.RunDir(path)
    pd.testing.assert_frame_equal(imported.read_scores(), original.read_scores())
    pd.testing.assert_frame_equal(imported.read_scores_per_run(), original.read_scores_per_run())
    pd.testing.assert_frame_equal(imported.read_predictions(), original.read_predictions())
    pd.testing.assert_frame_equal(imported.read_heldout(), original.read_heldout())
    info = store.run_info(imported.path)
    assert (info.source, info.name, info.state) == ("imported", "from files", "done")
    listed = run_cli("list", cache=cache).stdout
    assert "from files" in listed and "imported" in listed
    # The features are a trained model's unless the user says otherwise: no label-free
    # scores from them by default; --features-label-free states they never saw a label.
    assert "prototype" not in imported.read_scores().columns
    stated = run_cli(
        "import", "--name", "stated", "--logits", str(tmp_path / "run0.npz"),
        "--features", str(tmp_path / "features.parquet"), "--features-label-free", cache=cache,
    )  # fmt: skip
    assert stated.returncode == 0, stated.stderr
    columns = store.RunDir(stated.stdout.strip().splitlines()[-1]).read_scores().columns
    assert {"prototype", "near_dup", "outlier"} <= set(columns)
    alone = run_cli(
        "import", "--name", "x", "--logits", str(tmp_path / "run0.npz"),
        "--features-label-free", cache=cache,
    )  # fmt: skip
    assert alone.returncode == 2 and "goes with --features" in alone.stderr


def test_out_of_fold_probabilities_alone_give_the_cleanlab_scores(tmp_path):
    """With --dataset, labels come from the source; cl_quality is cleanlab's own ranking."""
    from cleanlab.rank import get_label_quality_scores

    from scoring import data
    from scoring.config import DataConfig

    ds = data.load(DataConfig(source="digits"))
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), len(ds.train.ids)).astype(np.float32)
    probs[np.arange(len(probs)), ds.train.labels] += 1.0  # mostly agree with the labels
    probs /= probs.sum(1, keepdims=True)
    frame = pd.DataFrame({"id": ds.train.ids, **{f"prob_{j}": probs[:, j] for j in range(10)}})
    frame.to_parquet(tmp_path / "oof.parquet")
    cache = tmp_path / "cache"
    out = run_cli(
        "import",
        "--name",
        "oof",
        "--oof",
        str(tmp_path / "oof.parquet"),
        "--dataset",
        "digits",
        cache=cache,
    )
    assert out.returncode == 0, out.stderr
    rd = store.RunDir(out.stdout.strip().splitlines()[-1])
    scores = rd.read_scores()
    assert {"cl_quality", "cl_issue", "pvi"} <= set(scores.columns)
    assert "aum" not in scores.columns  # no training logits: no dynamics
    expected = get_label_quality_scores(ds.train.labels, probs.astype(np.float64))
    np.testing.assert_allclose(scores["cl_quality"], expected, rtol=1e-5)
    assert rd.open_images().shape[0] == len(ds.train.ids)  # the source's rows, shown


@pytest.mark.parametrize(
    "files, message",
    [
        ({}, "give the training logits"),
        ({"--logits": "missing.npz"}, "does not exist"),
        ({"--logits": "bad.npz"}, "expected an array 'logits'"),
        ({"--logits": "nolabel.npz"}, "no labels"),
        ({"--logits": "ok.npz", "--oof": "short.parquet"}, "its ids differ"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, files, message):
    np.savez(tmp_path / "bad.npz", id=np.arange(4), probs=np.zeros((4, 3)))
    np.savez(tmp_path / "nolabel.npz", id=np.arange(4), logits=np.zeros((2, 4, 3)))
    np.savez(tmp_path / "ok.npz", id=np.arange(4), logits=np.zeros((2, 4, 3)), label=[0, 1, 2, 0])
    pd.DataFrame({"id": [0, 1], "probs": [[0.5, 0.5, 0.0]] * 2}).to_parquet(
        tmp_path / "short.parquet"
    )
    args = [a for flag, f in files.items() for a in (flag, str(tmp_path / f))]
    out = run_cli("import", "--name", "x", *args, cache=tmp_path / "cache")
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line

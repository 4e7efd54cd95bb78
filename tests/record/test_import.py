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
        ({"--logits": "cut.npz"}, "is not a whole .npz archive (BadZipFile"),
        ({"--logits": "garbage.npz"}, "is not an .npz archive (neither a zip nor a .npy"),
        ({"--logits": "no_epochs.npz"}, "no_epochs.npz holds no epochs: nothing to import"),
        ({"--logits": "no_rows.parquet"}, "no_rows.parquet holds no epochs: nothing to import"),
        ({"--oof": "no_rows.parquet"}, "no_rows.parquet holds no rows: nothing to import"),
        ({"--logits": "one.npz"}, "the files hold 1 example; an import needs at least 2"),
        ({"--logits": "half_epochs.parquet"}, "`epoch` must hold whole numbers (0, 1, 2, ...)"),
        (
            {"--logits": "gap.parquet"},
            "run 0 epoch 2: its ids differ from the training logits' (3 rows, expected the "
            "same 4 ids): id 3 is missing",
        ),
        ({"--logits": "null.parquet"}, "row 1 (id 1) has no `logits` (null or empty"),
        (
            {"--logits": "ok.npz", "--features": "some_features.npz"},
            "features: given for 3 of 4 examples",
        ),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, files, message):
    np.savez(tmp_path / "bad.npz", id=np.arange(4), probs=np.zeros((4, 3)))
    np.savez(tmp_path / "nolabel.npz", id=np.arange(4), logits=np.zeros((2, 4, 3)))
    np.savez(tmp_path / "ok.npz", id=np.arange(4), logits=np.zeros((2, 4, 3)), label=[0, 1, 2, 0])
    pd.DataFrame({"id": [0, 1], "probs": [[0.5, 0.5, 0.0]] * 2}).to_parquet(
        tmp_path / "short.parquet"
    )
    whole = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.npz").write_bytes(np.random.default_rng(0).bytes(500))
    np.savez(tmp_path / "no_epochs.npz", id=np.arange(4), logits=np.zeros((0, 4, 3)), label=[0] * 4)
    empty = {c: pd.Series([], dtype=t) for c, t in [("id", "int64"), ("epoch", "int64")]}
    empty |= {f"{v}_{j}": pd.Series([], dtype="float32") for v in ("logit", "prob") for j in (0, 1)}
    pd.DataFrame(empty).to_parquet(tmp_path / "no_rows.parquet")
    np.savez(tmp_path / "one.npz", id=[0], logits=np.zeros((2, 1, 3)), label=[0])
    rows = {"id": [0, 1, 2, 3] * 2, "label": [0, 1, 2, 0] * 2}
    rows |= {f"logit_{j}": [0.0] * 8 for j in range(3)}
    pd.DataFrame({**rows, "epoch": [1.5] * 4 + [2.5] * 4}).to_parquet(
        tmp_path / "half_epochs.parquet"
    )
    gap = pd.DataFrame({**rows, "epoch": [1] * 4 + [2] * 4}).drop(index=7)  # id 3, epoch 2
    gap.to_parquet(tmp_path / "gap.parquet")
    lists = {"id": [0, 1, 2, 3], "label": [0, 1, 2, 0], "epoch": [1] * 4}
    lists["logits"] = [[0.0, 1.0, 2.0], None, [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]
    pd.DataFrame(lists).to_parquet(tmp_path / "null.parquet")
    np.savez(tmp_path / "some_features.npz", id=[0, 1, 2], features=np.zeros((3, 5)))
    args = [a for flag, f in files.items() for a in (flag, str(tmp_path / f))]
    out = run_cli("import", "--name", "x", *args, cache=tmp_path / "cache")
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    cache = tmp_path / "cache"  # a refused import leaves no run and no recording behind
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]

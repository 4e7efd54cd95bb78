"""Several annotators per example: the two inputs, the majority vote, and every refusal.

One column per annotator (`--annotator-cols`) and a long `id, annotator, label` table
(`--annotations`) give the same votes; the label is their majority (or `--label-col`); bad
input is one line (exit 2 from the CLI) before any run folder exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import data, store
from scoring.config import DataConfig, ScoreConfig
from scoring.data.annotators import NO_VOTE, majority_vote
from scoring.errors import InputError
from tests.annotator_source import ANNOTATORS, NAMES, write_long, write_source
from tests.conftest import run_cli


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    return write_source(tmp_path / "src", n=120)


def _load(**kw) -> data.Dataset:
    return data.load(DataConfig(**kw))


def _votes_by_hand(frame: pd.DataFrame) -> np.ndarray:
    """The (n, 3) vote matrix straight from the names, -1 for a missing vote."""
    index = {name: i for i, name in enumerate(NAMES)}
    return np.array([[NO_VOTE if pd.isna(v) else index[v] for v in frame[a]] for a in ANNOTATORS]).T


def test_annotator_columns_give_votes_and_the_majority(source):
    path, frame = source
    ds = _load(source=str(path), annotator_cols=ANNOTATORS)
    assert ds.annotators == ANNOTATORS and ds.label_col is None
    assert ds.label_names == sorted(NAMES)  # names sorted, as a label column's
    votes = _votes_by_hand(frame)  # (n, 3) in NAMES order
    order = np.argsort(np.argsort(NAMES))  # NAMES index -> sorted-name index
    votes = np.where(votes >= 0, order[np.maximum(votes, 0)], NO_VOTE)
    both = np.concatenate([ds.train.ids, ds.test.ids])
    got = np.concatenate([ds.train.votes, ds.test.votes])
    np.testing.assert_array_equal(got, votes[both])
    labels = np.concatenate([ds.train.labels, ds.test.labels])
    np.testing.assert_array_equal(labels, majority_vote(votes[both], len(NAMES)))
    # Where `right` and `mostly` agree, two of three votes are the truth.
    truth = order[frame["truth"].to_numpy()[both]]
    agree = got[:, 0] == got[:, 1]
    assert agree.mean() > 0.5 and (labels[agree] == truth[agree]).all()


def test_majority_ties_go_to_the_rarest_class_then_the_lowest_id():
    votes = np.array(
        [
            [0, 0, 1],  # a clear majority
            [1, 2, NO_VOTE],  # tie 1/2: class 2 has fewer votes overall
            [0, 1, 2],  # three-way tie: 2 is rarest
            [3, 4, NO_VOTE],  # tie 3/4, equally rare: the lowest id
            [NO_VOTE, 0, NO_VOTE],  # one vote
        ]
    )
    # totals: class 0 -> 4, 1 -> 3, 2 -> 2, 3 -> 1, 4 -> 1
    np.testing.assert_array_equal(majority_vote(votes, 5), [0, 2, 2, 3, 0])


def test_long_table_gives_the_same_votes_as_the_columns(source, tmp_path):
    path, frame = source
    wide = _load(source=str(path), annotator_cols=ANNOTATORS)
    long = _load(source=str(path), annotations=str(write_long(tmp_path, frame)))
    assert long.annotators == ("mostly", "random", "right")  # order of first appearance
    order = [ANNOTATORS.index(a) for a in long.annotators]
    np.testing.assert_array_equal(long.train.ids, wide.train.ids)
    np.testing.assert_array_equal(long.train.votes, wide.train.votes[:, order])
    np.testing.assert_array_equal(long.train.labels, wide.train.labels)
    np.testing.assert_array_equal(long.test.votes, wide.test.votes[:, order])
    assert long.fingerprint != wide.fingerprint


def test_annotators_enter_the_fingerprint_and_the_key(source):
    path, _ = source
    plain = _load(source=str(path), label_col="right")
    labelled = _load(source=str(path), annotator_cols=("mostly", "random"), label_col="right")
    voted = _load(source=str(path), annotator_cols=("mostly", "random"))
    assert len({plain.fingerprint, labelled.fingerprint, voted.fingerprint}) == 3
    assert plain.train.votes is None and plain.annotators is None
    keys = {
        ScoreConfig(data=DataConfig(source=str(path), annotator_cols=cols)).key()
        for cols in (None, ("right", "mostly"), ANNOTATORS)
    }
    assert len(keys) == 3


def test_label_col_is_the_given_label_and_fixes_the_classes(source):
    path, frame = source
    ds = _load(source=str(path), annotator_cols=("mostly", "random"), label_col="right")
    assert ds.label_col == "right"
    names = np.array(ds.label_names)
    both = np.concatenate([ds.train.ids, ds.test.ids])
    given = np.concatenate([ds.train.labels, ds.test.labels])
    np.testing.assert_array_equal(names[given], frame["right"].to_numpy()[both])


def test_export_reads_the_same_rows_back(source):
    """`source_rows` recomputes the fingerprint the way `load` made it."""
    path, frame = source
    cfg = DataConfig(source=str(path), annotator_cols=ANNOTATORS)
    ds = data.load(cfg)
    rows = data.source_rows(cfg, ds.train.ids[:5], fingerprint=ds.fingerprint)
    assert rows["right"] == frame["right"].to_numpy()[ds.train.ids[:5]].tolist()


# -- refusals: one line each --------------------------------------------------------------


def _refused(match: str, **kw) -> str:
    with pytest.raises(InputError, match=match) as err:
        ScoreConfig(data=DataConfig(**kw)).validate()
        data.load(DataConfig(**kw))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_single_annotator_column_is_refused(source):
    path, _ = source
    _refused("two or more distinct columns", source=str(path), annotator_cols=("right",))
    _refused("two or more distinct columns", source=str(path), annotator_cols=("right", "right"))


def test_unknown_ids_in_the_annotations_file_are_refused(source, tmp_path):
    path, frame = source
    votes = pd.DataFrame({"id": [0, 1, 500, -3], "annotator": ["a", "b", "a", "b"]})
    votes["label"] = "one"
    file = tmp_path / "votes.csv"
    votes.to_csv(file, index=False)
    message = _refused("unknown ids -3, 500", source=str(path), annotations=str(file))
    assert "rows 0..119" in message


def test_labels_outside_the_classes_are_refused(source, tmp_path):
    path, frame = source
    frame = frame.copy()
    frame.loc[3, "random"] = "seven"
    bad = tmp_path / "bad.parquet"
    frame.to_parquet(bad)
    message = _refused(
        r"outside the classes: \['seven'\]",
        source=str(bad),
        annotator_cols=("mostly", "random"),
        label_col="right",
    )
    assert "zero" in message  # the classes are named


def test_other_vote_problems_are_refused(source, tmp_path):
    path, frame = source
    empty = frame.copy()
    empty.loc[7, list(ANNOTATORS)] = None
    file = tmp_path / "empty.parquet"
    empty.to_parquet(file)
    _refused(
        "rows 7 of the training data have no vote", source=str(file), annotator_cols=ANNOTATORS
    )
    twice = pd.DataFrame({"id": [0, 0, 1], "annotator": ["a", "a", "b"], "label": "one"})
    twice.to_csv(tmp_path / "twice.csv", index=False)
    _refused("votes twice for id 0", source=str(path), annotations=str(tmp_path / "twice.csv"))
    _refused(
        "either --annotator-cols .* or --annotations",
        source=str(path),
        annotator_cols=ANNOTATORS,
        annotations=str(tmp_path / "twice.csv"),
    )
    _refused("digits has one label per example", source="digits", annotator_cols=("a", "b"))
    _refused("no column\\(s\\) 'nope'", source=str(path), annotator_cols=("right", "nope"))


def test_the_cli_refuses_in_one_line_without_a_run_folder(source, tmp_path, cache_dir):
    path, frame = source
    votes = tmp_path / "votes.csv"
    pd.DataFrame({"id": [0, 999], "annotator": ["a", "b"], "label": ["one", "two"]}).to_csv(
        votes, index=False
    )
    bad = tmp_path / "bad.parquet"
    frame.assign(random=frame["random"].where(frame.index != 3, "seven")).to_parquet(bad)
    cases = [
        (["--dataset", str(path), "--annotator-cols", "right"], "two or more distinct"),
        (["--dataset", str(path), "--annotations", str(votes)], "unknown ids 999"),
        (
            ["--dataset", str(bad), "--annotator-cols", "mostly,random", "--label-col", "right"],
            "outside the classes",
        ),
    ]
    for args, expected in cases:
        done = run_cli("score", *args, "--recipe", "mlp", "--quiet", cache=cache_dir)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    done = run_cli(
        "import", "--name", "x", "--logits", "none.npz", "--annotator-cols", "a,b", cache=cache_dir
    )
    assert done.returncode == 2 and "work with `winnow score` only" in done.stderr
    assert not list(store.iter_run_dirs(cache_dir))

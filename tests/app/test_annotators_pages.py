"""Several annotators in the app: Mislabeled's vote split and consensus on every card, the
annotators table, and Export writing the consensus label (votes kept, `original_label`).

One tiny image run (digits 0..4, three annotators of known quality: tests/annotator_source.py)
is scored once for the module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.prune.export import export_selection, manifest_path
from scoring.prune.select import SelectionConfig
from scoring.read.annotators import vote_split
from scoring.read.views import load_run
from tests.annotator_source import ANNOTATORS, score_annotated, write_long, write_source
from tests.app.pages import open_page, shown


@pytest.fixture(scope="module")
def annotated(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The finished run and its source table."""
    source, frame = write_source(tmp_path_factory.mktemp("annotated_src"))
    return score_annotated(tmp_path_factory.mktemp("annotated_cache"), source), frame


@pytest.fixture
def run(annotated, monkeypatch) -> Path:
    path, _ = annotated
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(path.parent.parent))
    return path


def _names_split(frame: pd.DataFrame, example: int) -> str:
    """The vote split of a source row, by hand from its names."""
    votes = [frame.loc[example, a] for a in ANNOTATORS]
    counts = pd.Series([v for v in votes if isinstance(v, str)]).value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    parts = [f"{n}: {name}" for name, n in counts.items()]
    parts[0] = f"{counts.iloc[0]} of {counts.sum()}: {counts.index[0]}"
    return ", ".join(parts)


def test_cards_show_the_vote_split_and_the_consensus(run, annotated):
    _, frame = annotated
    at = open_page("mislabeled.py", run, mislabeled_split="train")
    assert not at.exception
    view = load_run(run)
    table = view.table.set_index("id")
    cards = [shown(m.value) for m in at.markdown if m.value.startswith("**#")]
    assert cards
    for card in cards:
        example = int(card.split("**#")[1].split("**")[0])
        consensus = view.label_names[int(table.loc[example, "consensus_label"])]
        quality = table.loc[example, "consensus_quality"]
        expected = f"votes {_names_split(frame, example)} · consensus {consensus}"
        assert f"{expected} (quality {quality:.2f})" in card, card


def test_the_annotators_table_ranks_them(run):
    at = open_page("mislabeled.py", run)
    assert not at.exception
    assert "Annotators" in [h.value for h in at.subheader]
    shown_table = next(d.value for d in at.dataframe if "annotator" in d.value.columns)
    assert shown_table["annotator"].tolist() == ["right", "mostly", "random"]
    summary = load_run(run).summary["annotators"]
    assert shown_table["examples labelled"].tolist() == [r["examples_labelled"] for r in summary]
    np.testing.assert_allclose(shown_table["quality (CROWDLAB)"], [r["quality"] for r in summary])
    np.testing.assert_allclose(
        shown_table["agreement with consensus"], [r["agreement"] for r in summary]
    )
    # The always-right annotator labels every row; the other one skips some.
    assert summary[0]["agreement"] > summary[1]["agreement"] > summary[2]["agreement"]


def test_vote_split_words():
    names = ["cat", "dog", "bird"]
    assert vote_split(np.array([0, 0, 1]), names) == "2 of 3: cat, 1: dog"
    assert vote_split(np.array([2, -1, 1]), names) == "1 of 2: dog, 1: bird"
    assert vote_split(np.array([-1, -1]), names) == "no votes"


def test_export_page_writes_the_consensus_label(run, tmp_path):
    at = open_page(
        "export.py", run, **{f"export_mode:{run}": "cleaned"}, export_folder=str(tmp_path)
    )
    assert not at.exception
    toggle = at.toggle(key="export_consensus")
    assert not toggle.value  # the given label unless asked
    toggle.set_value(True).run()
    at.button(key="export_go").click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    (written,) = (tmp_path / "exports").glob("*.parquet")
    frame = pd.read_parquet(written).set_index("id")
    view = load_run(run)
    names = np.array(view.label_names)
    train = frame[frame["split"] == "train"]
    table = view.table.set_index("id").loc[train.index]
    assert (train["label"] == names[table["consensus_label"]]).all()
    assert (train["original_label"] == names[table["label"]]).all()
    assert (train["label"] != train["original_label"]).any()  # the consensus changed some
    assert set(ANNOTATORS) <= set(frame.columns)  # the votes are kept
    assert store.read_json(manifest_path(written, "parquet"))["consensus_label"] is True


def test_export_keeps_the_votes_of_a_long_table(annotated, tmp_path):
    """An --annotations run's votes are not source columns: the export adds them."""
    _, frame = annotated
    source, _ = write_source(tmp_path / "src")
    votes = write_long(tmp_path, frame)
    run = score_annotated(tmp_path / "cache", source, annotator_cols=None, annotations=str(votes))
    out = export_selection(
        run, SelectionConfig("all", 1.0), fmt="csv", out=tmp_path / "x.csv", consensus_label=True
    )
    written = pd.read_csv(out).set_index("id")
    view = load_run(run)
    train = written[written["split"] == "train"]
    # Columns: the source's own (a `right` column among them), so the annotator columns the
    # export adds for the same names get the winnow_ prefix.
    for annotator in ANNOTATORS:
        column = f"winnow_{annotator}"
        expected = frame.loc[train.index, annotator].fillna("")  # a missing vote is empty
        assert train[column].fillna("").tolist() == expected.tolist()
    names = np.array(view.label_names)
    table = view.table.set_index("id").loc[train.index]
    assert (train["label"] == names[table["consensus_label"]]).all()
    manifest = store.read_json(manifest_path(out, "csv"))
    assert manifest["columns"]["annotators"] == {a: f"winnow_{a}" for a in ANNOTATORS}
    assert manifest["reproduce"].endswith("--consensus-label")

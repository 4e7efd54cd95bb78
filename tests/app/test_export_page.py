"""The Export page: it starts on every row (the cleaned dataset), writes the Pruning page's
selection only when chosen, writes exactly the planner's rows (the count it shows is the count
written), and turns every refusal (occupied path, `..`, empty selection, bad settings) into a
warning, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from scoring import store
from scoring.prune.export import manifest_path
from scoring.prune.plan import select_run
from scoring.prune.select import SelectionConfig
from scoring.read import decisions
from scoring.read.views import load_run
from tests.app.pages import open_page, page_text, shown
from tests.conftest import digits_run, text_run

PAGE = "export.py"


def _expected_ids(run: Path, **cfg) -> list[int]:
    view = load_run(run)
    return view.table["id"].to_numpy()[select_run(view, SelectionConfig(**cfg))].tolist()


def _selection_mode(run: Path) -> dict[str, str]:
    """The remembered choice of a user who picked the pruning selection on this page."""
    return {f"export_mode:{run}": "selection"}


def test_defaults_follow_the_pruning_pages_choices(app_cache):
    run = digits_run(app_cache)
    at = open_page(
        PAGE,
        run,
        score="aum",
        prune_rule="easiest",
        prune_fraction=0.3,
        prune_norm="class",
        prune_balanced=True,
        **_selection_mode(run),
    )
    assert not at.exception
    assert at.title[0].value == "Export"
    assert at.selectbox(key="w_score").value == "aum"
    assert at.selectbox(key="export_rule").value == "easiest"
    assert at.selectbox(key="export_norm").value == "class"
    assert at.slider(key="export_fraction").value == 0.3
    assert at.checkbox(key="export_balanced").value
    text = page_text(at)
    assert "**keep easiest** by **aum**, class z-scores, fraction **0.3** of each class" in text
    assert "Pruning" in text
    # Per class: what the manifest will count (source labels: the injected noise is not data).
    view = load_run(run)
    rows = select_run(
        view,
        SelectionConfig("easiest", 0.3, score="aum", normalization="class", class_balanced=True),
    )
    expected = np.bincount(view.table["true_label"].to_numpy()[rows], minlength=10)
    table = at.dataframe[0].value
    assert table["written"].tolist() == expected.tolist()
    assert f"writes **{expected.sum()}** of 500 training rows" in text
    assert at.text_input(key="export_out").value == "exports/digits-easiest-0.3.parquet"

    # A change here is a change of the shared selection (the Pruning page reads it back),
    # and the default path follows it.
    at.slider(key="export_fraction").set_value(0.6).run()
    assert at.session_state["ui"].choices["prune_fraction"] == 0.6
    assert at.text_input(key="export_out").value == "exports/digits-easiest-0.6.parquet"

    # A path the user typed is theirs: it stays when they come back to the page.
    back = open_page(
        PAGE,
        run,
        export_out="mine/x.parquet",
        export_out_default="exports/old.parquet",
        **_selection_mode(run),
    )
    assert back.text_input(key="export_out").value == "mine/x.parquet"


def test_parquet_export_loads_back_with_select_runs_ids(app_cache, tmp_path):
    run = digits_run(app_cache)
    at = open_page(
        PAGE,
        run,
        prune_rule="hardest",
        prune_fraction=0.4,
        export_folder=str(tmp_path),
        **_selection_mode(run),
    )
    assert at.selectbox(key="export_format").value == "parquet"
    # Keep-hardest by EL2N starves some classes: said, per class, with a one-click fix.
    view = load_run(run)
    kept = np.zeros(500, bool)
    kept[select_run(view, SelectionConfig("hardest", 0.4, score="el2n"))] = True
    labels = view.table["true_label"].to_numpy()
    share = np.array([kept[labels == c].mean() for c in range(10)])
    low = [c for c in range(10) if share[c] < 0.5 * 0.4]
    assert low  # the fixture's noisy digits: EL2N's hardest are uneven across classes
    (warning,) = [shown(w.value) for w in at.warning]
    assert f"under half that of {len(low)} class(es)" in warning
    assert all(f"{c} ({share[c]:.0%})" in warning for c in low)
    at.button(key="export_go").click().run()
    assert not at.exception
    written = tmp_path / "exports" / "digits-hardest-0.4.parquet"
    assert written.is_file()
    assert f"Wrote **200** examples to `{written}`" in page_text(at)

    loaded = datasets.load_dataset("parquet", data_files=str(written), split="train")
    assert loaded["id"] == _expected_ids(run, rule="hardest", fraction=0.4, score="el2n")
    manifest = store.read_json(manifest_path(written, "parquet"))
    assert manifest["selection"]["rule"] == "hardest"
    assert manifest["selection"]["score"] == "el2n"
    # The page's summary predicted the manifest's counts, and the result shows them.
    assert at.dataframe[0].value["written"].tolist() == list(manifest["counts_per_class"].values())
    assert at.dataframe[1].value["examples"].tolist() == list(manifest["counts_per_class"].values())
    assert at.json[0].value  # the manifest, shown
    (download,) = at.get("download_button")
    assert shown(download.proto.label) == f"Download {written.name}"

    # The fix: class-balanced, the warning gone.
    at.button(key="export_make_balanced").click().run()
    assert at.checkbox(key="export_balanced").value
    assert at.session_state["ui"].choices["prune_balanced"] is True
    assert not at.warning, [w.value for w in at.warning]


def test_overwrite_is_refused_until_ticked(app_cache, tmp_path):
    run = text_run(app_cache)
    at = open_page(
        PAGE,
        run,
        prune_rule="random",
        prune_fraction=0.5,
        export_folder=str(tmp_path),
        **_selection_mode(run),
    )
    at.selectbox(key="export_format").select("jsonl").run()
    out = at.text_input(key="export_out").value
    assert out.endswith("-random-0.5.jsonl")
    at.button(key="export_go").click().run()
    assert not at.warning, [w.value for w in at.warning]
    written = tmp_path / out
    first = written.read_text()

    at.button(key="export_go").click().run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert "already exists" in warning and "Overwrite an existing export" in warning
    assert "--force" not in warning

    # Another seed draws another random subset: overwriting it works once ticked.
    at.number_input(key="export_seed").set_value(3)
    at.checkbox(key="export_force").check().run()
    at.button(key="export_go").click().run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert written.read_text() != first
    ids = pd.read_json(written, lines=True)["id"].tolist()
    assert ids == _expected_ids(run, rule="random", fraction=0.5, seed=3)
    assert at.get("download_button")


def test_paths_that_leave_the_folder_are_refused(app_cache, tmp_path):
    run = digits_run(app_cache)
    root = tmp_path / "out"
    at = open_page(PAGE, run, export_folder=str(root / "inside"))
    at.text_input(key="export_out").input("../escape.parquet").run()
    assert not at.exception
    assert any("contains '..'" in shown(w.value) for w in at.warning)
    assert at.button(key="export_go").disabled
    at.text_input(key="export_out").input(str(root / "elsewhere.parquet")).run()
    assert any("outside the export folder" in w.value for w in at.warning)
    assert at.button(key="export_go").disabled
    assert not root.exists()


def test_bad_settings_and_empty_selections_are_warnings(app_cache, tmp_path):
    run = text_run(app_cache)  # 40 examples
    # An offset window that cannot fit.
    at = open_page(
        PAGE, run, prune_rule="offset", prune_offset=0.5, prune_fraction=0.8, **_selection_mode(run)
    )
    assert not at.exception
    assert any("exceeds 1" in w.value for w in at.warning)
    assert at.button(key="export_go").disabled

    # Decisions that drop every example leave nothing to write.
    for example in load_run(run).table["id"]:
        decisions.append(run, int(example), "drop")
    at = open_page(
        PAGE,
        run,
        prune_fraction=0.05,
        export_folder=str(tmp_path),
        **_selection_mode(run),
    )
    assert not at.exception
    assert at.toggle(key="export_decisions").value  # on by default once there are decisions
    assert any("no examples left" in w.value for w in at.warning)
    assert at.button(key="export_go").disabled

    # Without the decisions the same selection is written.
    keep = _expected_ids(run, rule="hardest", fraction=0.05, score="el2n")
    at.toggle(key="export_decisions").set_value(False).run()
    assert not any("no examples" in w.value for w in at.warning)
    at.button(key="export_go").click().run()
    assert not at.exception
    assert f"Wrote **{len(keep)}** examples" in page_text(at)


def test_the_count_shown_is_the_count_written_with_drops_and_a_fraction(app_cache, tmp_path):
    # The bug this guards: the page once applied the rule first and the decisions second
    # (easiest 50% by EL2N with drops among them: it said fewer than the export wrote).
    run = digits_run(app_cache)
    easiest = _expected_ids(run, rule="easiest", fraction=0.5, score="el2n")
    for example in easiest[:60]:  # drops inside what the rule alone would keep
        decisions.append(run, int(example), "drop")
    at = open_page(
        PAGE,
        run,
        prune_rule="easiest",
        prune_fraction=0.5,
        export_folder=str(tmp_path),
        **_selection_mode(run),
    )
    assert not at.exception
    expected = round(0.5 * (500 - 60))  # decisions first, then half of what is left
    assert f"writes **{expected}** of 500 training rows" in page_text(at)
    assert at.dataframe[0].value["written"].sum() == expected
    at.button(key="export_go").click().run()
    assert not at.exception
    assert all("under half that of" in w.value for w in at.warning)  # imbalance only
    written = tmp_path / "exports" / "digits-easiest-0.5.parquet"
    assert datasets.load_dataset("parquet", data_files=str(written), split="train").num_rows == (
        expected
    )
    manifest = store.read_json(manifest_path(written, "parquet"))
    assert manifest["rows"] == expected and manifest["decisions"]["dropped"] == 60


def test_with_decisions_the_cleaned_dataset_is_the_default(app_cache, tmp_path):
    run = digits_run(app_cache)
    view = load_run(run)
    held = pd.read_parquet(run / "heldout.parquet")
    train_ids = view.table["id"].tolist()
    # Without decisions the page starts on every row too (see the test below).
    at = open_page(PAGE, run, export_folder=str(tmp_path))
    assert at.radio(key="export_mode").value == "cleaned"
    assert at.toggle(key="export_decisions").disabled
    # Drops and relabels on training and on held-out rows.
    drops = [train_ids[0], train_ids[5], int(held["id"].iloc[0])]
    relabels = {train_ids[1]: 3, int(held["id"].iloc[1]): 7}
    for example in drops:
        decisions.append(run, example, "drop")
    for example, label in relabels.items():
        decisions.append(run, example, "relabel", label)
    decisions.append(run, train_ids[2], "keep")
    at = open_page(PAGE, run, export_folder=str(tmp_path))
    assert not at.exception
    assert at.radio(key="export_mode").value == "cleaned"
    assert at.toggle(key="export_decisions").value
    # One keep: "1 keep", not "1 keeps".
    assert (
        at.toggle(key="export_decisions").label
        == "Apply my decisions (3 drops, 2 relabels, 1 keep)"
    )
    n_rows = 500 + len(held) - len(drops)
    text = shown(page_text(at))
    assert f"writes **{n_rows:,}** of 625 examples (498 training, {len(held) - 1} held-out)" in text
    assert at.text_input(key="export_out").value == "exports/digits-cleaned.parquet"
    at.button(key="export_go").click().run()
    assert not at.exception
    assert f"Wrote **{n_rows:,}** examples" in page_text(at)
    frame = pd.read_parquet(tmp_path / "exports" / "digits-cleaned.parquet")
    assert len(frame) == n_rows
    assert set(frame["id"]) == (set(train_ids) | set(held["id"])) - set(drops)
    assert set(frame["split"]) == {"train", "heldout"}
    assert (frame["split"] == "heldout").sum() == len(held) - 1
    by_id = frame.set_index("id")
    true = view.table.set_index("id")["true_label"]  # the source's labels, not the noise
    for example, label in relabels.items():
        assert by_id.loc[example, "label"] == label
        source = true.get(example, held.set_index("id")["label"].get(example))
        assert by_id.loc[example, "original_label"] == source
    # The switch off: every row with its source label.
    at.toggle(key="export_decisions").set_value(False).run()
    assert "writes **625** of 625 examples" in shown(page_text(at))


def test_without_decisions_the_default_writes_every_row(app_cache, tmp_path):
    # The bug: with no decisions the page started on the Pruning page's default selection,
    # "keep the hardest 50% by EL2N", so a first export silently lost half the data.
    run = digits_run(app_cache)
    held = pd.read_parquet(run / "heldout.parquet")
    at = open_page(PAGE, run, export_folder=str(tmp_path))
    assert not at.exception
    assert at.radio(key="export_mode").value == "cleaned"
    n_rows = 500 + len(held)
    assert f"writes **{n_rows:,}** of {n_rows:,} examples" in shown(page_text(at))
    at.button(key="export_go").click().run()
    assert not at.exception
    assert f"Wrote **{n_rows:,}** examples" in page_text(at)
    frame = pd.read_parquet(tmp_path / "exports" / "digits-cleaned.parquet")
    assert len(frame) == n_rows
    # The pruning selection is one deliberate click away, and then remembered for the run.
    at.radio(key="export_mode").set_value("selection").run()
    assert "writes **250** of 500 training rows" in page_text(at)
    assert (
        open_page(PAGE, run, **at.session_state["ui"].choices).radio(key="export_mode").value
        == "selection"
    )


def test_empty_cache_shows_the_way_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.button

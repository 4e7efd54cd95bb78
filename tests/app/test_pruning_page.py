"""The Pruning page: the preview equals `select_run`, refusals are warnings, the chart reads trials.

Trial records are written by hand in the format `scoring.training.retrain._run_trial` writes, so no
training runs here except in the one test that clicks "Retrain at this fraction" and waits for
the real job (a few seconds on the tiny digits run).
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from scoring import jobs, store
from scoring.prune.plan import select_run
from scoring.prune.select import SelectionConfig
from scoring.prune.sweeps import TRIAL_FORMAT, SweepConfig, canonical, pack_correct, trial_key
from scoring.read import decisions
from scoring.read.views import load_run
from tests.app.pages import fake_job, figures, open_page, page_text, plotly_array, shown
from tests.conftest import PAGES, digits_run, text_run

PAGE = "pruning.py"


def _kept_per_class(at: AppTest) -> np.ndarray:
    (fig,) = [f for f in figures(at) if "per class" in f["layout"]["title"]["text"]]
    (kept,) = [t for t in fig["data"] if t["name"] == "kept"]
    return plotly_array(kept["y"]).astype(np.int64)


def _expected(run: Path, **cfg) -> np.ndarray:
    view = load_run(run)
    rows = select_run(view, SelectionConfig(**cfg))
    return np.bincount(view.table["label"].to_numpy()[rows], minlength=len(view.label_names))


def test_keep_easiest_by_knn_shapley_keeps_the_most_valuable_rows(app_cache):
    """The data value's words on the page, and the rows: the highest knn_shapley values."""
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="knn_shapley", prune_rule="easiest", prune_fraction=0.3)
    assert not at.exception
    assert any("keeps the most valuable rows" in c.value for c in at.caption)
    view = load_run(run)
    rows = select_run(view, SelectionConfig(rule="easiest", score="knn_shapley", fraction=0.3))
    values = view.table["knn_shapley"].to_numpy()
    assert values[rows].min() >= np.sort(values)[::-1][len(rows) - 1]  # the top 30% by value
    assert (
        _kept_per_class(at).tolist()
        == _expected(run, rule="easiest", score="knn_shapley", fraction=0.3).tolist()
    )
    at = open_page(PAGE, run, score="el2n", prune_rule="easiest")
    assert not any("most valuable" in c.value for c in at.caption)  # not a data value


def test_preview_counts_are_select_run_and_follow_the_slider(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    assert not at.exception
    assert at.title[0].value == "Pruning"
    # Defaults: keep hardest by el2n, half the data, no normalization.
    assert at.selectbox(key="w_score").value == "el2n"
    kept = _kept_per_class(at)
    assert kept.tolist() == _expected(run, rule="hardest", fraction=0.5, score="el2n").tolist()
    assert "Keeps **250** of 500" in page_text(at)
    assert len(at.get("plotly_chart")) == 2  # per class + distribution; no trials yet
    assert "No retraining results yet" in page_text(at)

    at.slider(key="w_prune_fraction").set_value(0.2).run()
    assert not at.exception
    moved = _kept_per_class(at)
    assert moved.tolist() == _expected(run, rule="hardest", fraction=0.2, score="el2n").tolist()
    assert moved.sum() == 100 and moved.tolist() != kept.tolist()
    # The distribution is drawn from binned counts: kept + dropped = every example.
    (dist,) = [f for f in figures(at) if "distribution" in f["layout"]["title"]["text"]]
    assert sum(plotly_array(t["y"]).sum() for t in dist["data"]) == 500
    assert at.session_state["ui"].choices["prune_fraction"] == pytest.approx(0.2)


def test_dataset_normalization_is_offered_only_where_it_changes_the_pick(app_cache):
    at = open_page(PAGE, digits_run(app_cache))
    assert at.selectbox(key="w_prune_norm").options == ["none: raw values", (
        "class: z-score within each class")]  # fmt: skip
    at.selectbox(key="w_prune_rule").select("softmax").run()
    assert not at.exception
    assert "dataset: z-score over the whole dataset (changes only softmax sampling)" in (
        at.selectbox(key="w_prune_norm").options
    )


def test_offset_rule_shows_its_slider_and_refuses_an_impossible_window(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    assert "w_prune_offset" not in [s.key for s in at.slider]
    at.selectbox(key="w_prune_rule").select("offset").run()
    assert "w_prune_offset" in [s.key for s in at.slider]
    assert "auto (noise estimate from cl_issue)" in [c.label for c in at.checkbox]
    assert "Data Diet" in page_text(at)
    at.slider(key="w_prune_offset").set_value(0.1).run()
    expected = _expected(run, rule="offset", fraction=0.5, score="el2n", offset=0.1)
    assert _kept_per_class(at).tolist() == expected.tolist()

    at.slider(key="w_prune_offset").set_value(0.5).run()
    at.slider(key="w_prune_fraction").set_value(0.8).run()
    assert not at.exception
    assert any("exceeds 1" in w.value for w in at.warning)
    assert not at.get("plotly_chart")  # no preview of a refused selection
    assert "Fix the selection above" in page_text(at)

    # auto: the run's own cl_issue noise estimate replaces the slider's value.
    at.slider(key="w_prune_fraction").set_value(0.5).run()
    at.checkbox(key="w_prune_auto_offset").check().run()
    assert not at.exception
    assert at.slider(key="w_prune_offset").disabled
    assert "Auto offset" in page_text(at)


def test_text_run_without_cl_issue_offers_no_auto_offset(app_cache):
    at = open_page(PAGE, text_run(app_cache), prune_rule="offset")
    assert not at.exception
    assert "w_prune_offset" in [s.key for s in at.slider]
    assert "auto (noise estimate from cl_issue)" not in [c.label for c in at.checkbox]


def test_losing_a_class_is_warned_about_and_class_balance_fixes_it(app_cache):
    run = digits_run(app_cache)
    # A "loss" equal to the label: keeping the easiest 5% keeps only class 0.
    table = pd.read_parquet(run / "scores.parquet")
    table["loss"] = table["label"].astype(np.float64)
    store.write_parquet(run / "scores.parquet", table)
    at = open_page(PAGE, run, score="loss", prune_rule="easiest", prune_fraction=0.05)
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert "keeps no example of 9 class(es)" in warning
    assert "9" in warning and "0," not in warning  # class names of digits are "0".."9"
    assert _kept_per_class(at).tolist() == [25] + [0] * 9

    at.checkbox(key="w_prune_balanced").check().run()
    assert not at.exception
    assert not at.warning
    assert (_kept_per_class(at) >= 1).all()


def test_decisions_can_be_applied_before_selecting(app_cache):
    run = digits_run(app_cache)
    ids = pd.read_parquet(run / "scores.parquet")["id"]
    decisions.append(run, int(ids[0]), "drop")
    decisions.append(run, int(ids[1]), "drop")
    at = open_page(PAGE, run)
    box = at.checkbox(key="w_prune_decisions")
    assert box.label.startswith("Apply Mislabeled decisions (2: 2 drops")
    box.check().run()
    assert not at.exception
    assert "Keeps **249** of 498" in page_text(at)


N_TEST, N_VAL = 200, 100


def _correct(accuracy: float, n: int) -> np.ndarray:
    """(n,) bool: the first round(accuracy * n) examples right, so equal accuracies pair exactly."""
    return np.arange(n) < round(accuracy * n)


def _trial(
    run: Path,
    sel: SelectionConfig,
    accuracy: float,
    schedule: str = "steps",
    val_accuracy: float | None = None,
) -> None:
    """A trial record exactly as `scoring.training.retrain._run_trial` writes it."""
    view = load_run(run)
    sel = canonical(sel)
    sweep = SweepConfig(sel, (sel.fraction,), 1, schedule)
    n_kept = round(sel.fraction * len(view.table))
    val = accuracy if val_accuracy is None else val_accuracy
    record = {
        "format": TRIAL_FORMAT,
        "rule": sel.rule,
        "score": sel.score,
        "fraction": sel.fraction,
        "seed": sel.seed,
        "accuracy": _correct(accuracy, N_TEST).mean(),
        "val_accuracy": _correct(val, N_VAL).mean(),
        "test_correct": pack_correct(_correct(accuracy, N_TEST)),
        "n_test": N_TEST,
        "val_correct": pack_correct(_correct(val, N_VAL)),
        "n_val": N_VAL,
        "validation": {"fraction": 0.1, "seed": 0},
        "per_class_accuracy": [accuracy] * len(view.label_names),
        "n_kept": n_kept,
        "kept_per_class": [n_kept // len(view.label_names)] * len(view.label_names),
        "steps": 100,
        "schedule": schedule,
        "train_seconds": 0.1,
        "selection": sel.to_dict(),
        "apply_decisions": False,
    }
    key = trial_key(view.config["key"], sel, sweep)
    store.write_json(run / "sweeps" / "trials" / f"{key}.json", record)


def _legend(fig: dict) -> list[str]:
    return [t["name"] for t in fig["data"] if t.get("showlegend", True)]


def test_chart_shows_validation_curves_differences_with_cis_and_test_at_the_chosen_point(
    app_cache,
):
    run = digits_run(app_cache)
    for fraction in (0.2, 0.6):
        for seed in (0, 1):
            hard = SelectionConfig("hardest", fraction, score="el2n", seed=seed)
            # validation: equal to random at 0.2 (same examples right), far above at 0.6
            val = 0.80 if fraction == 0.2 else 0.95
            _trial(run, hard, 0.70 + 0.1 * fraction + 0.01 * seed, val_accuracy=val)
            rand = SelectionConfig("random", fraction, seed=seed)
            _trial(run, rand, 0.80 + 0.01 * seed, val_accuracy=0.80 if fraction == 0.2 else 0.60)
    # Trials of other settings must not be drawn: another score, another schedule.
    _trial(run, SelectionConfig("hardest", 0.4, score="aum"), 0.1)
    _trial(run, SelectionConfig("hardest", 0.4, score="el2n"), 0.1, schedule="epochs")
    # A trial of the old format (no validation split) is never shown.
    old = SelectionConfig("hardest", 0.4, score="el2n", seed=5)
    store.write_json(
        run / "sweeps" / "trials" / "old.json",
        {"rule": "hardest", "score": "el2n", "fraction": 0.4, "seed": 5, "accuracy": 0.1,
         "selection": old.to_dict()},
    )  # fmt: skip
    at = open_page(PAGE, run, prune_fraction=0.2)
    assert not at.exception
    assert at.radio(key="w_prune_split").value == "validation"  # curves on validation by default
    figs = figures(at)
    assert len(figs) == 3
    fig = figs[2]
    assert _legend(fig) == ["hardest by el2n", "random"]
    (hard_line,) = [t for t in fig["data"] if t["name"] == "hardest by el2n"]
    assert plotly_array(hard_line["x"]).tolist() == [0.2, 0.6]
    assert plotly_array(hard_line["y"]) == pytest.approx([0.80, 0.95])  # validation accuracy
    (diff,) = [t for t in fig["data"] if t["name"] == "hardest by el2n − random"]
    assert plotly_array(diff["y"]) == pytest.approx([0.0, 0.35])
    assert diff["yaxis"] == "y2"  # the difference panel under the curves
    assert list(diff["text"]) == ["indistinguishable from random", ""]
    assert not [sh for sh in fig["layout"]["shapes"] if sh.get("y0") not in (0, None)]
    assert "**hardest by el2n** is indistinguishable from random at 0.2" in page_text(at)
    table = at.dataframe[0].value
    assert table["fraction"].tolist() == [0.2, 0.2, 0.6, 0.6]
    assert table["rule"].tolist() == ["hardest by el2n", "random"] * 2
    assert table["seeds"].tolist() == [2, 2, 2, 2]
    assert table["accuracy (mean ± std)"].iloc[0] == "0.8000 ± 0.0000"
    assert table["− random [95% CI]"].iloc[0] == "+0.0000 [+0.0000, +0.0000]"
    low, high = map(float, table["− random [95% CI]"].iloc[2].split("[")[1].rstrip("]").split(","))
    assert 0 < low < 0.35 < high
    # The test split at the chosen fraction, labelled as such.
    assert "Test split at the chosen fraction (0.2)" in [h.value for h in at.subheader]
    point = at.dataframe[1].value
    assert point["rule"].tolist() == ["hardest by el2n", "random"]
    assert point["accuracy (mean ± std)"].iloc[0] == "0.7250 ± 0.0071"  # 0.72, 0.73: ddof 1

    # The test curves, on request, with the run's all-data accuracy.
    at.radio(key="w_prune_split").set_value("test").run()
    fig = figures(at)[2]
    (hard_line,) = [t for t in fig["data"] if t["name"] == "hardest by el2n"]
    assert plotly_array(hard_line["y"]) == pytest.approx([0.725, 0.765])
    full = load_run(run).summary["test_accuracy_mean"]
    assert any(sh.get("y0") == pytest.approx(full) for sh in fig["layout"]["shapes"])
    assert "min–max over seeds" in page_text(at)

    # Same epochs: only the one epochs trial matches, and random has none.
    at.radio(key="w_prune_schedule").set_value("epochs").run()
    fig = figures(at)[2]
    assert _legend(fig) == ["hardest by el2n"]
    assert at.dataframe[0].value["fraction"].tolist() == [0.4]
    assert "No trial at fraction 0.2 yet" in page_text(at)


def test_one_seed_shows_its_difference_without_an_interval_and_says_why(app_cache):
    run = digits_run(app_cache)
    _trial(run, SelectionConfig("hardest", 0.2, score="el2n"), 0.75, val_accuracy=0.95)
    _trial(run, SelectionConfig("random", 0.2), 0.80, val_accuracy=0.80)
    at = open_page(PAGE, run, prune_fraction=0.2)
    assert not at.exception
    assert at.number_input(key="w_prune_seeds").value == 5  # the default: usable intervals
    table = at.dataframe[0].value.set_index("rule")
    assert table.loc["hardest by el2n", "− random [95% CI]"] == (
        "+0.1500 (too few seeds for an interval)"
    )
    assert table.loc["hardest by el2n", "accuracy (mean ± std)"] == "0.9500"  # no std of one
    assert "**hardest by el2n**: too few seeds for an interval at 0.2 (sweep 2+" in page_text(at)
    assert "is indistinguishable from random" not in page_text(at)
    at.number_input(key="w_prune_seeds").set_value(1).run()
    assert any("1 seed: too few seeds for an interval" in c.value for c in at.caption)
    at.number_input(key="w_prune_seeds").set_value(3).run()
    assert any("t quantile with 2 degree(s)" in c.value for c in at.caption)


def test_offset_sweeps_draw_their_honest_baseline(app_cache):
    run = digits_run(app_cache)
    for seed in (0, 1):
        common = dict(score="el2n", offset=0.1, seed=seed)
        _trial(run, SelectionConfig("offset", 0.4, **common), 0.95, val_accuracy=0.95)
        _trial(run, SelectionConfig("offset_random", 0.4, **common), 0.93, val_accuracy=0.93)
        _trial(run, SelectionConfig("random", 0.4, seed=seed), 0.90, val_accuracy=0.90)
    at = open_page(PAGE, run, prune_rule="offset", prune_offset=0.1, prune_fraction=0.4)
    assert not at.exception
    fig = figures(at)[2]
    assert _legend(fig) == ["offset by el2n", "offset_random by el2n", "random"]
    (denoise,) = [t for t in fig["data"] if t["name"] == "offset_random by el2n − random"]
    assert plotly_array(denoise["y"]) == pytest.approx([0.03])  # the denoising share
    table = at.dataframe[0].value
    assert "− offset_random [95% CI]" in table.columns
    row = table.set_index("rule").loc["offset by el2n"]
    assert row["− random [95% CI]"].startswith("+0.0500 [")
    assert row["− offset_random [95% CI]"].startswith("+0.0200 [")  # the selection share


def test_sweep_fractions_are_validated(app_cache):
    at = open_page(PAGE, digits_run(app_cache))
    at.text_input(key="w_prune_fractions").input("0.2, abc").run()
    assert not at.exception
    assert any("'abc' is not a number" in w.value for w in at.warning)
    assert at.button(key="prune_sweep").disabled
    at.text_input(key="w_prune_fractions").input("0.2,1.5").run()
    assert any("(0, 1]" in shown(w.value) for w in at.warning)
    # Fractions the rule cannot satisfy are refused too (offset 0.3 leaves room for 0.7).
    at.text_input(key="w_prune_fractions").input("0.5,0.8").run()
    at.selectbox(key="w_prune_rule").select("offset").run()
    at.slider(key="w_prune_offset").set_value(0.3).run()
    assert any("Sweep fraction 0.8" in shown(w.value) for w in at.warning)
    assert at.button(key="prune_sweep").disabled
    assert not at.button(key="prune_retrain").disabled


def test_a_running_sweep_is_followed_and_a_failed_one_explained(app_cache):
    run = digits_run(app_cache)
    # Alive pid and no exit code: a sweep another tab started; the page follows it.
    job_id = fake_job(app_cache, run, "sweep", pid=os.getpid())
    at = open_page(PAGE, run)
    assert not at.exception
    assert f"job `{job_id}`" in at.get("progress")[0].proto.text
    assert at.button(key="prune_retrain").disabled and at.button(key="prune_sweep").disabled

    # Our own job: progress counts its trials already on disk (1 of 2 x 2 fractions x 1 seed).
    sweep = SweepConfig(SelectionConfig("hardest", 1.0, score="el2n"), (0.2, 0.6), 1)
    _trial(run, SelectionConfig("random", 0.2), 0.8)
    mine = {"id": job_id, "n_trials": 4, "sweep": sweep.to_dict()}
    at = open_page(PAGE, run, **{f"prune_job:{run}": mine})
    assert not at.exception
    assert "1 of 4 trials done" in at.get("progress")[0].proto.text
    assert len(at.get("plotly_chart")) == 3  # the chart is drawn while the job runs

    fake_job(app_cache, run, "sweep", exit_code=2, message="this run has no score 'el2n'")
    at = open_page(PAGE, run, **{f"prune_job:{run}": {"id": job_id, "n_trials": 4, "sweep": {}}})
    assert not at.exception
    assert "failed: this run has no score 'el2n'" in at.error[0].value
    # The terminal hint is the sweep's own flags (SweepConfig.cli_args), fractions and all.
    sweep = SweepConfig(SelectionConfig("hardest", 1.0, score="el2n"), (0.2, 0.4, 0.6, 0.8), 5)
    assert f"`python -m scoring sweep {shlex.join(sweep.cli_args(run))}`" in at.error[0].value
    assert not at.button(key="prune_retrain").disabled


def test_retrain_button_starts_a_sweep_job_with_its_typed_config(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, prune_seeds=2)  # 2 of the default 5: fewer trials to train
    at.button(key="prune_retrain").click().run()
    assert not at.exception
    job_id = at.session_state["ui"].choices[f"prune_job:{run}"]["id"]
    record = store.read_json(jobs.jobs_dir(app_cache) / f"{job_id}.json")
    # The job gets the SweepConfig itself (no hand-built selection flags).
    selection = SelectionConfig("hardest", 1.0, score="el2n")
    assert record["config"] == SweepConfig(selection, (0.5,), 2, "steps").to_dict()
    assert "--rule" not in record["argv"] and "--config" in record["argv"]
    deadline = time.time() + 120
    status = jobs.status(job_id, app_cache)
    while status.state == "running" and time.time() < deadline:
        time.sleep(0.5)
        status = jobs.status(job_id, app_cache)
    assert status.state == "done", jobs.log_tail(job_id, app_cache)
    at.run()
    assert not at.exception
    fig = figures(at)[2]
    assert _legend(fig) == ["hardest by el2n", "random"]
    assert at.dataframe[0].value["seeds"].tolist() == [2, 2]
    assert "Test split at the chosen fraction (0.5)" in [h.value for h in at.subheader]
    assert len(at.dataframe[1].value) == 2  # the test split for the point just retrained


def test_empty_cache_shows_the_way_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(str(PAGES / PAGE), default_timeout=60).run()
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.get("plotly_chart")


def test_the_rule_menu_lists_pruning_rules_only(app_cache):
    """`all` (the cleaned dataset) keeps every row: Export writes it, Pruning cannot sweep it."""
    from scoring.prune.rules import RULES

    at = open_page(PAGE, digits_run(app_cache))
    options = at.selectbox(key="w_prune_rule").options
    assert [o for o in options] == [RULES[n].label for n in RULES if not RULES[n].keeps_all]
    assert RULES["all"].label not in options

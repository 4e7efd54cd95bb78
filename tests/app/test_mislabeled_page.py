"""Mislabeled page: suspects, noise table, decisions saved at once and shown after a restart."""

from __future__ import annotations

import json

import pandas as pd
from streamlit.testing.v1 import AppTest

from scoring.read import decisions
from tests.app.pages import open_page, page_text
from tests.conftest import digits_run, text_run

PAGE = "mislabeled.py"


def _shown_ids(at: AppTest) -> list[int]:
    return [int(b.key.split("_")[1]) for b in at.button if b.key.startswith("drop_")]


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_default_detector_noise_table_and_suspect_order(app_cache):
    run = digits_run(app_cache)
    summary = json.loads((run / "summary.json").read_text())
    aurocs = {k: v["noise_auroc"] for k, v in summary["scores"].items()}
    at = open_page(PAGE, run)
    assert not at.exception
    assert at.title[0].value == "Mislabeled"
    best = max(aurocs, key=aurocs.get)
    assert at.selectbox(key="w_detector").value == best
    assert "This choice is optimistic" in page_text(at)  # tuned on the very noise it reports
    assert "0 decisions saved to decisions.jsonl" in _markdown(at)[0]
    # The noise table: every score, and precision@n_noisy agrees with the engine's summary.
    noise = at.dataframe[0].value
    n_noisy = summary["noise"]["n_noisy"]
    assert sorted(noise["score"]) == sorted(aurocs)
    for _, row in noise.iterrows():
        assert row["auroc"] == aurocs[row["score"]]
        assert abs(row[f"precision@{n_noisy}"] - summary["scores"][row["score"]][
            "noise_precision_at_k"]) < 1e-12  # fmt: skip
        assert 0 <= row[f"recall@{2 * n_noisy}"] <= 1
    # Ten suspects per page, most suspect first by the detector (oriented by direction).
    table = pd.read_parquet(run / "scores.parquet")
    lower_is_harder = not summary["scores"][best]["higher_is_harder"]
    expected = table.sort_values(best, ascending=lower_is_harder, kind="stable")["id"]
    assert _shown_ids(at) == expected.head(10).tolist()
    # Each suspect says whether its label was actually flipped.
    flipped = set(table.loc[table["noisy"], "id"])
    for example in _shown_ids(at):
        text = next(m for m in _markdown(at) if m.startswith(f"**#{example}**"))
        assert ("label was flipped" in text) == (example in flipped)
    # The second page shows the next ten.
    at.selectbox(key=at.selectbox[1].key).select(1)
    at.run()
    assert _shown_ids(at) == expected.iloc[10:20].tolist()


def test_decisions_saved_at_once_and_shown_after_restart(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, detector="el2n")
    first, second = _shown_ids(at)[:2]
    at.button(key=f"drop_{first}").click()
    at.run()
    given = int(pd.read_parquet(run / "scores.parquet").set_index("id").loc[second, "label"])
    new_label = (given + 1) % 10
    at.selectbox(key=f"relabel_{second}").select(new_label)
    at.run()
    assert not at.exception
    lines = [json.loads(x) for x in (run / "decisions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["action"], r["new_label"]) for r in lines] == [
        (first, "drop", None),
        (second, "relabel", new_label),
    ]
    assert "2 decisions saved to decisions.jsonl" in _markdown(at)[0]

    # An app restart: a fresh AppTest (new session) on the same cache.
    fresh = open_page(PAGE, run, detector="el2n")
    assert not fresh.exception
    assert "2 decisions saved to decisions.jsonl" in _markdown(fresh)[0]
    shown = _markdown(fresh)
    assert "Decision: **drop**" in shown
    assert f"Decision: **relabel → {new_label}**" in shown
    assert fresh.selectbox(key=f"relabel_{second}").value == new_label
    assert fresh.selectbox(key=f"relabel_{first}").value is None

    # Keep replaces the relabel (and clears the select); Undo withdraws the drop.
    fresh.button(key=f"keep_{second}").click()
    fresh.run()
    fresh.button(key=f"clear_{first}").click()
    fresh.run()
    assert not fresh.exception and not fresh.warning
    assert fresh.selectbox(key=f"relabel_{second}").value is None
    current = decisions.latest(run)
    assert current[["id", "action"]].values.tolist() == [[second, "keep"]]
    assert "1 decision saved to decisions.jsonl" in _markdown(fresh)[0]
    assert len((run / "decisions.jsonl").read_text().splitlines()) == 4  # append-only


def test_text_run_without_noise(app_cache):
    run = text_run(app_cache)
    at = open_page(PAGE, run, detector="forgetting")  # remembered, but this run has no forgetting
    assert not at.exception
    assert at.selectbox(key="w_detector").value == "cl_quality"  # preference, no noise
    assert "optimistic" not in page_text(at)
    assert not any("injected noise" in h.value for h in at.subheader)
    assert not any("flipped" in m for m in _markdown(at))
    assert any(m.startswith("*premise:*") and "*hypothesis:*" in m for m in _markdown(at))
    assert len(_shown_ids(at)) == 10


def test_empty_cache_shows_info(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.button

"""One real-browser pass: Debian's chromium driven by Playwright against a live server.

Starts `streamlit run serve.py` on 127.0.0.1 with an empty temp cache, starts a tiny digits run
from Home, waits for it, visits every page, marks an example as mislabeled and checks the
decision is still shown after a reload. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import re

import pytest

from tests.app.browser import ARTIFACTS, goto, no_error, wait_until

pytestmark = pytest.mark.browser


def test_a_user_scores_digits_and_visits_every_page(server, page):
    pg = page
    pg.goto(server)
    pg.get_by_text("The cache is empty").wait_for()
    pg.screenshot(path=str(ARTIFACTS / "00-home-empty.png"))
    # A tiny run from the form: the preset select, then Start.
    pg.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").locator("input").click()
    pg.get_by_role("option", name="tiny").click()
    pg.get_by_role("button", name="Start scoring").click()
    pg.get_by_text("Done: the new run is now the current run").wait_for(timeout=180_000)
    no_error(pg)
    pg.get_by_text("Runs in the cache").wait_for()
    pg.screenshot(path=str(ARTIFACTS / "01-home-done.png"), full_page=True)

    for n, title in enumerate(["Scores", "Correlations", "Map"], start=2):
        goto(pg, server, title)
        if title == "Map":
            pg.get_by_role("button", name="Compute the map").click()
        pg.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
        no_error(pg)
        pg.screenshot(path=str(ARTIFACTS / f"0{n}-{title.lower()}.png"), full_page=True)

    goto(pg, server, "Pruning")
    pg.get_by_text("Keeps").first.wait_for()
    slider = pg.locator('[data-testid="stSlider"]').filter(has_text="Fraction kept")
    slider.get_by_role("slider").focus()
    for _ in range(2):  # 0.50 -> 0.40, one rerun per key press
        pg.keyboard.press("ArrowLeft")
    pg.get_by_text(re.compile(r"Keeps .* \(40%\)")).first.wait_for()
    fractions = pg.locator('[data-testid="stTextInput"]').filter(has_text="Fractions for the sweep")
    fractions.locator("input").fill("0.3,0.6")
    fractions.locator("input").press("Enter")
    pg.wait_for_load_state("networkidle")
    pg.get_by_role("button", name="Run the sweep").click()
    # The chart fills in as trials finish: both the rule's line and random's must appear.
    pg.locator(".js-plotly-plot .legendtext", has_text="random").first.wait_for(timeout=240_000)
    pg.locator(".js-plotly-plot .legendtext", has_text="hardest").first.wait_for()
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "05-pruning.png"), full_page=True)

    goto(pg, server, "Examples")
    pg.locator('[data-testid="stImage"]').first.wait_for()
    # The grids stream in card by card: wait for both (hardest + easiest), not the first.
    images = pg.locator('[data-testid="stImage"] img')
    wait_until(lambda: images.count() >= 8, "eight example images on Examples")
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "06-examples.png"), full_page=True)

    goto(pg, server, "Mislabeled")
    pg.get_by_text("0 decisions saved").wait_for()
    pg.get_by_role("button", name="Drop").first.click()
    pg.get_by_text("1 decision saved").wait_for()
    pg.get_by_text("Decision: drop").first.wait_for()
    pg.screenshot(path=str(ARTIFACTS / "07-mislabeled.png"), full_page=True)
    pg.reload()  # a new session: what is shown now comes from decisions.jsonl
    pg.get_by_role("heading", name="Mislabeled").first.wait_for()
    pg.get_by_text("1 decision saved").wait_for()
    pg.get_by_text("Decision: drop").first.wait_for()  # cards render after the count
    assert pg.get_by_text("Decision: drop").count() == 1
    no_error(pg)


def _fill(pg, testid: str, label: str, value: str) -> None:
    """Type into the labelled text / number input and commit it (one rerun)."""
    box = pg.locator(f'[data-testid="{testid}"]').filter(has_text=label).locator("input")
    box.fill(value)
    box.press("Enter")
    pg.wait_for_load_state("networkidle")


def _saved(pg, n: int) -> None:
    pg.get_by_text(f"{n} decision{'' if n == 1 else 's'} saved").first.wait_for()


def test_the_review_loop_from_score_to_cleaned_export(server, page, tmp_path):
    """Score noisy digits from Home, review suspects (relabel to the suggestion, drop, bulk
    accept), export the cleaned dataset: every row but the drops, relabels applied, `split`
    covering train and held-out, the page's count equal to the file's rows."""
    import pandas as pd

    from scoring import store
    from scoring.read import decisions

    pg = page
    pg.goto(server)
    pg.get_by_role("button", name="Start scoring").wait_for()
    pg.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").locator("input").click()
    pg.get_by_role("option", name="tiny").click()
    _fill(pg, "stNumberInput", "Inject label noise", "0.1")
    pg.get_by_role("button", name="Start scoring").click()
    pg.get_by_text("Done: the new run is now the current run").wait_for(timeout=240_000)
    no_error(pg)
    (run,) = [r.path for r in store.list_runs(tmp_path / "cache") if r.state == "done"]

    goto(pg, server, "Mislabeled")
    pg.get_by_text(re.compile(r"cleanlab flags [\d,]+")).first.wait_for()
    _saved(pg, 0)
    pg.get_by_role("button", name=re.compile(r"^Relabel to ")).first.click()
    _saved(pg, 1)
    pg.get_by_role("button", name="Drop", exact=True).nth(1).click()
    _saved(pg, 2)
    # Bulk accept every flagged suspect from the lowest safe p(suggested) the slider allows.
    slider = pg.locator('[data-testid="stSlider"]').filter(has_text="p(suggested)")
    slider.get_by_role("slider").focus()
    pg.keyboard.press("Home")
    # The preview follows the slider (at 0.9 it counts none): wait for the rerun's count.
    preview = pg.get_by_text(re.compile(r"^[1-9][\d,]* flagged suspect\(s\) without a decision"))
    preview.first.wait_for()
    n_bulk = int(re.match(r"[\d,]+", preview.first.inner_text()).group().replace(",", ""))
    assert n_bulk > 0
    pg.get_by_role("button", name=f"Relabel {n_bulk:,} to their suggestion").click()
    pg.get_by_role("button", name=f"Confirm: relabel {n_bulk:,}").click()  # the second step
    _saved(pg, 2 + n_bulk)
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "10-mislabeled-reviewed.png"), full_page=True)

    goto(pg, server, "Export")
    pg.get_by_text("The cleaned dataset", exact=False).first.wait_for()
    _fill(pg, "stTextInput", "Export folder", str(tmp_path))
    said = pg.get_by_text(re.compile(r"The cleaned dataset: writes [\d,]+ of")).first
    n_said = int(re.search(r"writes ([\d,]+)", said.inner_text()).group(1).replace(",", ""))
    pg.get_by_role("button", name="Export", exact=True).click()
    pg.get_by_text(re.compile(r"Wrote [\d,]+ examples")).first.wait_for()
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "11-export-cleaned.png"), full_page=True)

    (written,) = (tmp_path / "exports").glob("*cleaned.parquet")
    frame = pd.read_parquet(written)
    assert len(frame) == n_said
    latest = decisions.latest(run).set_index("id")
    drops = set(latest.index[latest["action"] == "drop"])
    assert len(drops) == 1
    split = store.RunDir(run).read_split()
    every = set(split.train_ids.tolist()) | set(split.test_ids.tolist())
    assert set(frame["id"]) == every - drops
    assert set(frame["split"]) == {"train", "heldout"}
    relabels = latest[latest["action"] == "relabel"]
    assert len(relabels) == 1 + n_bulk
    by_id = frame.set_index("id")
    source = dict(zip(split.train_ids.tolist(), split.true_labels.tolist(), strict=True))
    source |= dict(zip(split.test_ids.tolist(), split.test_labels.tolist(), strict=True))
    for example, row in relabels.iterrows():
        assert by_id.loc[example, "label"] == int(row["new_label"])
        assert by_id.loc[example, "original_label"] == source[example]  # not the noise
    untouched = [i for i in by_id.index if i not in latest.index][:50]
    assert all(by_id.loc[i, "label"] == source[i] for i in untouched)

"""A new user's first hour in Chromium (issue 23's walk): upload a file → score it → accept
the suggestions in bulk at the safe default → undo that bulk action from a new browser
session → export with the default selection, and check the file.

The upload is a parquet of the bundled digits as PNG bytes under a name of the user's own;
the run must show that name (not the content hash it is stored under), the bulk accept must
not move its threshold below the safe one, the undo must come from the decisions log (the
new session has no memory of the first), and the default export must hold every row.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.app.browser import ARTIFACTS, goto, no_error, wait_until

pytestmark = pytest.mark.browser
UPLOAD_NAME = "handwritten_digits.parquet"


def _digits_parquet(path) -> int:
    """The 1,797 digits as 8x8 PNGs (column `image`: structs of bytes and path, the shape a
    Hugging Face dataset exports) with `label`; returns the rows."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pngs = []
    for pixels in digits.images:
        buffer = io.BytesIO()
        Image.fromarray((pixels * 255 / 16).round().astype(np.uint8)).save(buffer, format="PNG")
        pngs.append({"bytes": buffer.getvalue(), "path": None})
    pd.DataFrame({"image": pngs, "label": digits.target}).to_parquet(path)
    return len(pngs)


def test_upload_score_bulk_accept_undo_in_a_new_session_export_all(server, page, tmp_path):
    from scoring import store
    from scoring.read import decisions, suspects
    from scoring.read.views import load_run

    source = tmp_path / UPLOAD_NAME
    n_rows = _digits_parquet(source)
    pg = page

    # Upload and score (tiny preset, 10% injected noise so there is something to fix).
    pg.goto(server)
    pg.get_by_role("button", name="Start scoring").wait_for()
    pg.get_by_text("upload a file", exact=True).click()
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(source))
    pg.locator('[data-testid="stFileChipName"]').first.wait_for()  # uploaded
    pg.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").locator("input").click()
    pg.get_by_role("option", name="tiny").click()
    box = pg.locator('[data-testid="stNumberInput"]').filter(has_text="Inject label noise")
    box.locator("input").fill("0.1")
    box.locator("input").press("Enter")
    pg.wait_for_load_state("networkidle")
    pg.get_by_role("button", name="Start scoring").click()
    pg.get_by_text("Done: the new run is now the current run").wait_for(timeout=300_000)
    no_error(pg)
    # The run is named after the file the user uploaded, not the hash it is stored under.
    # The runs table (a canvas grid: its cells are in the accessible DOM, not painted text).
    cell = pg.locator('td[role="gridcell"]', has_text=UPLOAD_NAME).first
    cell.wait_for(state="attached")
    (info,) = [r for r in store.list_runs(tmp_path / "cache") if r.state == "done"]
    assert info.dataset == UPLOAD_NAME  # the runs table's and the pickers' dataset column
    run = info.path
    pg.screenshot(path=str(ARTIFACTS / "30-first-hour-home.png"), full_page=True)

    # Bulk accept at the safe default: the slider starts at the safe threshold, untouched.
    view = load_run(run)
    safe = suspects.safe_threshold(view)
    assert safe is not None, "the tiny digits run should be strong enough for a bulk accept"
    expected = suspects.relabel_candidates(view, safe, decisions.latest(run)["id"])
    assert len(expected) > 0
    goto(pg, server, "Mislabeled")
    button = pg.get_by_role("button", name=f"Relabel {len(expected):,} to their suggestion")
    button.click()
    pg.get_by_text(re.compile(r"estimated to be correct labels that this would break")).wait_for()
    pg.get_by_role("button", name=f"Confirm: relabel {len(expected):,}").click()
    wait_until(lambda: len(decisions.latest(run)) == len(expected), "the bulk accept's decisions")
    latest = decisions.latest(run)
    assert set(latest["id"]) == set(expected["id"]) and set(latest["action"]) == {"relabel"}
    (action,) = decisions.bulk_actions(run).itertuples()
    assert action.in_force == len(expected)
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "31-first-hour-bulk.png"), full_page=True)

    # A new session (a second browser context: no shared state) undoes it from the log.
    other = pg.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg2 = other.new_page()
        pg2.set_default_timeout(60_000)
        pg2.goto(server)
        pg2.get_by_text("Runs in the cache").wait_for()
        goto(pg2, server, "Mislabeled")
        pg2.get_by_role("button", name=re.compile(r"^Undo")).first.click()
        wait_until(lambda: decisions.latest(run).empty, "every bulk relabel withdrawn")
        assert decisions.bulk_actions(run)["undone"].tolist() == [True]
        no_error(pg2)
        pg2.screenshot(path=str(ARTIFACTS / "32-first-hour-undone.png"), full_page=True)

        # Export with the page's defaults: every row, labels as given.
        goto(pg2, server, "Export")
        folder = pg2.locator('[data-testid="stTextInput"]').filter(has_text="Export folder")
        folder.locator("input").fill(str(tmp_path))
        folder.locator("input").press("Enter")
        pg2.wait_for_load_state("networkidle")
        said = pg2.get_by_text(re.compile(r"writes [\d,]+ of [\d,]+ examples")).first
        said.wait_for()
        pg2.get_by_role("button", name="Export", exact=True).click()
        pg2.get_by_text(re.compile(r"Wrote [\d,]+ examples")).first.wait_for()
        no_error(pg2)
        pg2.screenshot(path=str(ARTIFACTS / "33-first-hour-export.png"), full_page=True)
    finally:
        other.close()
    (written,) = (tmp_path / "exports").glob("*.parquet")
    assert written.name.startswith("handwritten_digits")  # the user's name, not the hash
    manifest = json.loads(written.with_name(written.name + ".manifest.json").read_text())
    assert manifest["source"]["name"] == UPLOAD_NAME
    frame = pd.read_parquet(written)
    assert len(frame) == n_rows  # every row: the default keeps everything
    assert sorted(frame["id"]) == list(range(n_rows))
    split = store.RunDir(run).read_split()
    given = dict(zip(split.train_ids.tolist(), split.true_labels.tolist(), strict=True))
    given |= dict(zip(split.test_ids.tolist(), split.test_labels.tolist(), strict=True))
    assert all(frame.set_index("id")["label"].to_dict()[i] == given[i] for i in given)

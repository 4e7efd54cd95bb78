"""Regenerate the README's screenshots from the live app (Playwright + Debian's chromium).

    winnow score --dataset digits --noise 0.1 --name "digits, 10% noise" --cache-dir /tmp/shots
    .venv/bin/python docs/screenshots.py /tmp/shots

Starts `streamlit run serve.py` on 127.0.0.1 over that cache (its newest finished run is the
current one), opens each page and saves `docs/walkthrough-*.png` (score → review → export)
and the per-page shots `docs/<page>.png`. Nothing here changes the cache except that the
Map page computes its map when it has none.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.browser import CHROMIUM, LAUNCH_ARGS, serve  # noqa: E402

DOCS = ROOT / "docs"
SHOTS = [  # (file, sidebar title, text to wait for)
    ("walkthrough-1-home.png", "Home", "Health of the current run"),
    ("walkthrough-2-mislabeled.png", "Mislabeled", None),
    ("walkthrough-3-export.png", "Export", None),
    ("scores.png", "Scores", None),
    ("correlations.png", "Correlations", None),
    ("examples.png", "Examples", None),
    ("mislabeled.png", "Mislabeled", None),
    ("duplicates.png", "Duplicates & outliers", None),
    ("map.png", "Map", None),
]


def main(cache: str) -> None:
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as logs,
        serve(Path(cache), Path(logs)) as url,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(120_000)
        pg.goto(url)
        pg.get_by_role("heading", name="Winnow").first.wait_for()
        for file, title, wait_text in SHOTS:
            nav = pg.locator('[data-testid="stSidebarNav"]')
            nav.get_by_text(title, exact=True).click()
            pg.wait_for_load_state("networkidle")
            pg.get_by_role("heading", name=title if title != "Home" else "Winnow").first.wait_for()
            if title == "Map" and pg.get_by_role("button", name="Compute the map").count():
                pg.get_by_role("button", name="Compute the map").click()
            if title == "Map":  # the data map draws at once; wait for the UMAP one too
                computing = pg.get_by_text("Computing the map")
                computing.first.wait_for(state="hidden", timeout=300_000)
                pg.locator(".js-plotly-plot").nth(1).wait_for(timeout=300_000)
            if wait_text:
                pg.get_by_text(wait_text).first.wait_for()
            pg.wait_for_timeout(1500)  # plotly draws after the network settles
            pg.screenshot(path=str(DOCS / file), full_page=False)
            print(DOCS / file)
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/screenshots.py CACHE_DIR")
    main(sys.argv[1])

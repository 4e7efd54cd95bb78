"""Mislabeled's labelling-tool box in AppTest: downloads only without a configured server; with
LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY set, a direct send whose failure (no server there)
is said on the page, with nothing written. The send to a real server is driven in
tests/test_label_studio_server.py (slow)."""

from __future__ import annotations

import socket

from scoring.read import decisions
from tests.app.pages import open_page, shown
from tests.conftest import digits_run

PAGE = "mislabeled.py"


def _closed_port() -> int:
    with socket.socket() as s:  # bound then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_a_server_the_box_offers_files_only(app_cache, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    at = open_page(PAGE, digits_run(app_cache))
    assert not at.exception, at.exception
    assert [e.label for e in at.expander if "to Label Studio" in e.label]
    assert not [b for b in at.button if b.key == "mislabeled_ls_send"]


def test_a_configured_server_that_is_down_is_said_and_nothing_is_written(app_cache, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-a-key")
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    send = at.button(key="mislabeled_ls_send")
    assert send.label.endswith(f"to Label Studio at {url}")
    at = send.click().run()
    assert not at.exception, at.exception
    errors = shown(" ".join(e.value for e in at.error))
    assert errors.startswith(f"cannot reach Label Studio at {url} (ConnectError")
    at = at.button(key="mislabeled_ls_fetch").click().run()
    assert shown(at.error[-1].value).startswith(f"cannot reach Label Studio at {url}")
    assert not decisions.path_of(run).exists()

"""The Label Studio round trip against a real server (slow): `winnow send --url` creates the
project and imports 20 suspects, an annotator answers through the SDK (relabels, keeps, one
skip, some left), `winnow receive --url --project` records the answers, and `winnow export
--rule all` writes what the annotator said. Then the Mislabeled page, with the server in
LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, sends its listed suspects as a new project and
records an answer fetched from it.

The server is Label Studio itself (`pip install label-studio`, SQLite), in its own virtual
environment: `make label-studio` makes `.venv-label-studio` (`.ci/run` does), or point
`WINNOW_LABEL_STUDIO` at a `label-studio` executable. Without one the test is skipped. It
listens on a free 127.0.0.1 port with a data folder of its own, and is stopped by the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from scoring.read import decisions
from scoring.read.views import load_run
from tests.conftest import ROOT, digits_run, run_cli

pytestmark = pytest.mark.slow
TOKEN = "0123456789abcdef0123456789abcdef01234567"  # the test user's legacy API token
START_S = 600  # the first start migrates a fresh SQLite database: about 70 s on 2 busy cores
# Label Studio 1.17+ turns legacy tokens off for a new organization; turn them on, as its UI's
# Organization settings would, with its own Django models (run by its own interpreter).
ENABLE_TOKENS = """
import os, sys, pathlib, label_studio
sys.path.insert(0, str(pathlib.Path(label_studio.__file__).parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from organizations.models import Organization
for org in Organization.objects.all():
    org.jwt.legacy_api_tokens_enabled = True
    org.jwt.save()
"""


def _executable() -> Path | None:
    given = os.environ.get("WINNOW_LABEL_STUDIO")
    path = Path(given) if given else ROOT / ".venv-label-studio" / "bin" / "label-studio"
    return path if path.exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    """A running Label Studio: (url, api token); stopped afterwards."""
    exe = _executable()
    if exe is None:
        pytest.skip("no Label Studio: set WINNOW_LABEL_STUDIO or make .venv-label-studio")
    port, data = _free_port(), tmp_path / "label-studio-data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HOST"}  # it reads HOST as its URL
    env |= {"LABEL_STUDIO_BASE_DATA_DIR": str(data), "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}
    log = (tmp_path / "label-studio.log").open("w")
    proc = subprocess.Popen(
        [str(exe), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
         "--username", "annotator@example.com", "--password", "winnow-test-password",
         "--user-token", TOKEN],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while not _up(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (tmp_path / "label-studio.log").read_text()[-3000:]
                pytest.fail(f"Label Studio did not start (exit {proc.poll()}):\n{text}")
            time.sleep(2)
        python = exe.parent / "python"
        subprocess.run([str(python), "-c", ENABLE_TOKENS], env=env, check=True, timeout=300)
        yield url, TOKEN
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _choice(value: str) -> list[dict]:
    return [
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [value]}}
    ]


def test_send_answer_receive_export_against_a_real_label_studio(server, app_cache, tmp_path):
    from label_studio_sdk import LabelStudio

    url, token = server
    run = digits_run(app_cache)
    auth = ("--url", url, "--api-key", token)
    sent = run_cli(
        "send", "--run", str(run), "--to", "label-studio", "--top", "20", *auth,
        "--out", str(tmp_path / "tasks.json"), cache=app_cache,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    project = int(sent.stdout.strip())

    # The annotator: 5 relabels to the next class, 10 keeps, 1 skip, 4 left unanswered.
    client = LabelStudio(base_url=url, api_key=token)
    tasks = sorted(client.tasks.list(project=project), key=lambda t: t.id)
    assert len(tasks) == 20
    names = [str(n) for n in load_run(run).label_names]
    wanted: dict[int, tuple[str, int | None]] = {}
    for k, task in enumerate(tasks[:16]):
        given = task.data["given_label"]
        if k < 5:
            new = names[(names.index(given) + 1) % len(names)]
            client.annotations.create(task.id, result=_choice(new), was_cancelled=False)
            wanted[task.data["id"]] = ("relabel", names.index(new))
        elif k < 15:
            client.annotations.create(task.id, result=_choice(given), was_cancelled=False)
            wanted[task.data["id"]] = ("keep", None)
        else:
            client.annotations.create(task.id, result=[], was_cancelled=True)  # skipped

    got = run_cli("receive", "--run", str(run), "--project", str(project), *auth, cache=app_cache)
    assert got.returncode == 0, got.stderr
    assert "15 decision(s) from Label Studio (10 keep, 5 relabel)" in got.stderr
    assert "5 task(s) without an answer left alone" in got.stderr
    lines = [json.loads(x) for x in decisions.path_of(run).read_text().splitlines()]
    assert {r["id"]: (r["action"], r["new_label"]) for r in lines} == wanted
    assert all(r["tool"] == "label-studio" and len(r["annotators"]) == 1 for r in lines)

    out = tmp_path / "clean.csv"
    done = run_cli(
        "export", "--run", str(run), "--rule", "all", "--format", "csv", "--out", str(out),
        cache=app_cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out, dtype={"label": str, "original_label": str}).set_index("id")
    for example, (action, new) in wanted.items():
        if action == "relabel":
            assert frame.loc[example, "label"] == names[new]
            assert frame.loc[example, "original_label"] != frame.loc[example, "label"]
        else:
            assert frame.loc[example, "label"] == frame.loc[example, "original_label"]

    _page_round_trip(url, token, run, client, names)


def _page_round_trip(url: str, token: str, run: Path, client, names: list[str]) -> None:
    """Mislabeled with the server configured: "Send these N" makes a project of the listed
    suspects on it; an answer given there is fetched, previewed and recorded from the page."""
    from streamlit.testing.v1 import AppTest

    from tests.app.pages import open_page

    os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"] = url, token
    try:
        at: AppTest = open_page("mislabeled.py", run)
        before = {p.id for p in client.projects.list()}
        at = at.button(key="mislabeled_ls_send").click().run()
        assert not at.exception and not at.error, (at.exception, at.error)
        (project,) = {p.id for p in client.projects.list()} - before
        tasks = sorted(client.tasks.list(project=project), key=lambda t: t.id)
        box = next(e.label for e in at.expander if "to Label Studio" in e.label)
        assert box == f"Send these {len(tasks)} to Label Studio"
        task = tasks[0]
        new = names[(names.index(task.data["given_label"]) + 3) % len(names)]
        client.annotations.create(task.id, result=_choice(new), was_cancelled=False)
        at.number_input(key="mislabeled_ls_project").set_value(project)
        at = at.button(key="mislabeled_ls_fetch").click().run()
        assert any(
            "1 answer from Label Studio to record (0 keep, 1 relabel)" in m.value
            for m in at.markdown
        )
        at = at.button(key="mislabeled_ls_record").click().run()
        latest = decisions.latest(run).set_index("id")
        assert latest.loc[task.data["id"], "new_label"] == names.index(new)
    finally:
        del os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"]

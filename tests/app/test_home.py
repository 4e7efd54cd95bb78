"""Home: the quick start on an empty cache, the form, job progress, the runs table."""

import time

from streamlit.testing.v1 import AppTest

from app_pages._shared import UIState
from scoring import jobs
from tests.conftest import ROOT, digits_run, text_run


def _home() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    return at


def test_empty_cache_offers_a_one_click_digits_run(cache_dir):
    at = _home()
    assert not at.exception
    assert any("The cache is empty" in i.value for i in at.info)
    assert at.button(key="home_quickstart").label == "Score digits now"
    assert at.expander[0].label == "New scoring run"
    assert len(at.dataframe) == 0  # no runs table yet


def test_runs_table_lists_runs_and_picks_the_current_one(app_cache):
    at = _home()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 2 and set(table["state"]) == {"done"}
    assert table["test accuracy"].between(0, 1).all()
    assert "home_quickstart" not in [b.key for b in at.button]
    select = at.selectbox(key="home_current_run")
    assert select.value in {str(digits_run(app_cache)), str(text_run(app_cache))}
    select.select(str(text_run(app_cache))).run()
    assert at.session_state["ui"].run == str(text_run(app_cache))


def test_start_button_launches_a_job_and_progress_is_shown(cache_dir):
    at = _home()
    at.selectbox(key="home_preset").select("tiny")
    at.number_input(key="home_limit").set_value(300)
    at.radio(key="home_grad_params").set_value("last")
    at.number_input(key="home_checkpoints").set_value(3)
    at.button(key="home_start").click().run()
    job_id = at.session_state["ui"].job_id
    assert job_id is not None
    status = jobs.status(job_id, cache_dir)
    assert status.state in ("running", "done")
    argv = " ".join(_argv(cache_dir, job_id))
    assert "--preset" in argv and "300" in _argv(cache_dir, job_id)
    assert "--grad-params last" in argv and "--checkpoints 3" in argv
    assert "--grad-at" not in argv and "--executor" not in argv  # defaults stay implicit
    deadline = time.monotonic() + 120
    while jobs.status(job_id, cache_dir).state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    at.run()
    assert not at.exception
    assert any("Done: the new run" in s.value for s in at.success)
    assert len(at.dataframe[0].value) == 1


def test_a_failing_job_shows_its_message(cache_dir, tmp_path):
    at = _home()
    at.radio(key="home_source_kind").set_value("local file or folder")
    at.run()
    at.text_input(key="home_path").input(str(tmp_path / "missing.parquet"))
    # The job fails before any training (no cluster at that address): its message shows.
    at.radio(key="home_executor").set_value("ray")
    at.text_input(key="home_ray_address").input("head-node:6379")
    at.number_input(key="home_max_length").set_value(64)
    at.button(key="home_start").click().run()
    job_id = at.session_state["ui"].job_id
    argv = " ".join(_argv(cache_dir, job_id))
    assert "--executor ray --ray-address head-node:6379" in argv and "--max-length 64" in argv
    deadline = time.monotonic() + 60
    while jobs.status(job_id, cache_dir).state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    at.run()
    assert any("cannot reach a Ray cluster at 'head-node:6379'" in e.value for e in at.error)


def test_session_state_is_the_typed_dataclass(cache_dir):
    at = _home()
    assert isinstance(at.session_state["ui"], UIState)


def _argv(cache_dir, job_id):
    from scoring import store

    return store.read_json(jobs.jobs_dir(cache_dir) / f"{job_id}.json")["argv"]

"""Home: the quick start on an empty cache, the form, job progress, the runs table; the router."""

import json
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages._shared import UIState
from scoring import jobs, store
from scoring.cli.main import build_parser
from scoring.cli.score import config_from_args
from scoring.config import ScoreConfig
from tests.app.pages import fake_job, open_page, runs_table, shown
from tests.conftest import PAGES, ROOT, digits_run, text_run


def _home() -> AppTest:
    at = AppTest.from_file(str(PAGES / "home.py"), default_timeout=60)
    at.run()
    return at


def test_the_router_opens_on_home(cache_dir):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Winnow"
    assert at.button(key="home_quickstart").label == "Score digits now"


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
    table = runs_table(at)
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
    config = _config(cache_dir, job_id)
    assert (config.train.runs, config.train.epochs, config.cv_folds) == (2, 4, 2)  # tiny
    assert config.data.limit == 300
    assert (config.grads.params, config.grads.checkpoints, config.grads.at) == ("last", 3, "init")
    assert "--executor local" in " ".join(_argv(cache_dir, job_id))
    deadline = time.monotonic() + 120
    while jobs.status(job_id, cache_dir).state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    at.run()
    assert not at.exception
    assert any("Done: the new run" in s.value for s in at.success)
    assert len(runs_table(at)) == 1


def _texts_csv(path: Path, n: int = 40) -> Path:
    """A small two-class text CSV (text, label)."""
    words = ["good", "bad", "film", "plot", "great", "awful", "cast", "scene"]
    lines = ["text,label"]
    for i in range(n):
        text = " ".join(words[(i * 3 + j) % len(words)] for j in range(6))
        lines.append(f"{text} {i},{'pos' if i % 2 else 'neg'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_failing_job_shows_its_message(cache_dir, tmp_path):
    at = _home()
    at.radio(key="home_source_kind").set_value("local file or folder")
    at.run()
    # A real file (the form refuses a missing one before any job): the job itself fails.
    at.text_input(key="home_path").input(str(_texts_csv(tmp_path / "texts.csv")))
    # The job fails before any training (no cluster at that address): its message shows.
    at.radio(key="home_executor").set_value("ray")
    at.text_input(key="home_ray_address").input("head-node:6379")
    at.number_input(key="home_max_length").set_value(64)
    at.button(key="home_start").click().run()
    job_id = at.session_state["ui"].job_id
    argv = " ".join(_argv(cache_dir, job_id))
    assert "--executor ray --ray-address head-node:6379" in argv
    assert _config(cache_dir, job_id).train.max_length == 64
    deadline = time.monotonic() + 60
    while jobs.status(job_id, cache_dir).state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    at.run()
    assert any("cannot reach a Ray cluster at 'head-node:6379'" in shown(e.value) for e in at.error)


def test_session_state_is_the_typed_dataclass(cache_dir):
    at = _home()
    assert isinstance(at.session_state["ui"], UIState)


def _pairs_jsonl(path: Path, n: int = 20) -> Path:
    rows = [
        json.dumps({"premise": f"a man plays {i}", "hypothesis": f"he is {i}", "label": i % 2})
        for i in range(n)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def _captured_starts(monkeypatch) -> list:
    """`jobs.start_score` replaced by a recorder: the config the form sends, no process."""
    started = []

    def start_score(config, cache, **kw):
        started.append((config, kw))
        return f"job-{len(started)}"

    monkeypatch.setattr(jobs, "start_score", start_score)
    return started


def test_the_form_sends_the_config_the_cli_builds_from_the_same_flags(
    cache_dir, tmp_path, monkeypatch
):
    """Home and `winnow score` share one config builder and one preset: same run, same key."""
    source = str(_pairs_jsonl(tmp_path / "pairs.jsonl"))
    started = _captured_starts(monkeypatch)  # nothing trains: only the config is looked at
    at = _home()
    at.radio(key="home_source_kind").set_value("local file or folder")
    at.run()
    at.text_input(key="home_path").input(source)
    at.selectbox(key="home_recipe").select("finetune")
    at.selectbox(key="home_preset").select("tiny")
    at.number_input(key="home_epochs").set_value(2)  # beats the preset's 1 for finetune
    at.number_input(key="home_noise").set_value(0.1)
    at.selectbox(key="home_noise_kind").select("asymmetric")
    at.number_input(key="home_limit").set_value(200)
    at.text_input(key="home_input_col").input("premise, hypothesis")
    at.text_input(key="home_label_col").input("label")
    at.radio(key="home_grad_at").set_value("early")
    at.multiselect(key="home_scores").select("el2n").select("aum")
    at.button(key="home_start").click().run()
    assert not at.error, [e.value for e in at.error]
    ((sent, _kw),) = started
    assert at.session_state["ui"].job_id == "job-1"
    flags = (
        f"score --dataset {source} --recipe finetune --preset tiny --epochs 2 --noise 0.1 "
        "--noise-kind asymmetric --limit 200 --input-col premise,hypothesis --label-col label "
        "--grad-at early --scores el2n,aum"
    ).split()
    cli = config_from_args(build_parser().parse_args(flags))
    assert sent == cli and sent.key() == cli.key()
    assert sent.noise.kind == "asymmetric"  # not the default: the box reached the config
    assert (sent.train.epochs, sent.train.max_length, sent.train.runs) == (2, 64, 2)


def _argv(cache_dir, job_id):
    return store.read_json(jobs.jobs_dir(cache_dir) / f"{job_id}.json")["argv"]


def _config(cache_dir, job_id) -> ScoreConfig:
    """The config the job was handed (its --config file)."""
    argv = _argv(cache_dir, job_id)
    return ScoreConfig.from_dict(store.read_json(argv[argv.index("--config") + 1]))


def test_a_finished_job_makes_its_run_current_over_the_pickers_memory(app_cache):
    """The bug: the picker kept its session value after "the new run is now the current run"."""
    old, new = str(text_run(app_cache)), str(digits_run(app_cache))
    at = AppTest.from_file(str(PAGES / "home.py"), default_timeout=60)
    at.session_state["ui"] = UIState(run=old)
    at.run()
    assert at.selectbox(key="home_current_run").value == old  # the widget now remembers `old`
    job_id = fake_job(app_cache, Path(new), "score", exit_code=0, message="done")
    at.session_state["ui"].job_id = job_id
    at.run()
    assert not at.exception
    assert any("Done: the new run" in s.value for s in at.success)
    assert at.selectbox(key="home_current_run").value == new
    assert at.session_state["ui"].run == new
    # adopted once: the user's own pick afterwards sticks
    at.selectbox(key="home_current_run").select(old).run()
    at.run()
    assert at.session_state["ui"].run == old
    assert at.selectbox(key="home_current_run").value == old


def test_every_page_follows_a_finished_job_without_visiting_home(app_cache):
    old, new = text_run(app_cache), digits_run(app_cache)
    at = AppTest.from_file(str(PAGES / "scores.py"), default_timeout=60)
    at.session_state["ui"] = UIState(
        run=str(old), job_id=fake_job(app_cache, new, "score", exit_code=0)
    )
    at.run()
    assert not at.exception
    assert at.session_state["ui"].run == str(new)
    assert shown(at.caption[0].value) == store.run_title(store.run_info(new))


def test_picker_and_table_name_each_run(app_cache):
    store.RunDir(digits_run(app_cache)).write_meta(name="noisy digits", preset="tiny")
    at = _home()
    at.toggle(key="home_all_columns").set_value(True).run()
    table = runs_table(at)
    row = table[table["name"] == "noisy digits"].iloc[0]
    assert (row["dataset"], row["preset"]) == ("digits", "tiny")
    assert row["runs × epochs"] == "{}×{}".format(*_budget(digits_run(app_cache)))
    assert row["noise %"] > 0
    select = at.selectbox(key="home_current_run")
    assert select.format_func(str(digits_run(app_cache))).startswith("noisy digits · digits · ")
    assert "tiny" in select.format_func(str(digits_run(app_cache)))


def _budget(run: Path) -> tuple[int, int]:
    config = store.RunDir(run).read_config()
    return config["config"]["train"]["runs"], config["recipe"]["epochs"]


def test_start_is_disabled_while_the_same_run_is_being_scored(cache_dir):
    at = _home()
    assert not at.button(key="home_start").disabled
    # The form's defaults describe the run `winnow score --dataset digits` describes.
    config = config_from_args(build_parser().parse_args(["score", "--dataset", "digits"]))
    fake_job(
        cache_dir,
        cache_dir / "somewhere",
        "score",
        config=config.to_dict(),
        pid=os.getpid(),  # alive: this very process
        pid_start=store.process_start(os.getpid()),
    )
    at.run()
    assert at.button(key="home_start").disabled
    assert "already being scored" in " ".join(c.value for c in at.caption)
    assert not at.expander[0].proto.expanded  # the form folds away while a job runs
    at.number_input(key="home_noise").set_value(0.1).run()  # another run: allowed
    assert not at.button(key="home_start").disabled


def test_time_left_comes_from_the_measured_rate():
    time_left = jobs.time_left
    # 10% -> 40% in 20 s is 0.015/s; the 60% left takes 40 s
    assert time_left((100.0, 0.10), (120.0, 0.40)) == pytest.approx(40.0)
    assert time_left(None, (120.0, 0.40)) is None  # no first reading yet
    assert time_left((100.0, 0.10), (101.0, 0.20)) is None  # too short a window to trust
    assert time_left((100.0, 0.40), (120.0, 0.40)) is None  # no progress: no rate
    assert time_left((100.0, 0.10), (120.0, 0.40), eta_s=12.0) == 12.0  # the engine's own


# -- issue 23: bad input answered in the form, uploads keep their name, progress, the table --


def test_a_bad_path_or_column_is_refused_in_the_form_and_starts_no_job(cache_dir, tmp_path):
    at = _home()
    at.radio(key="home_source_kind").set_value("local file or folder")
    at.run()
    missing = str(tmp_path / "missing.parquet")
    at.text_input(key="home_path").input(missing)
    t0 = time.monotonic()
    at.button(key="home_start").click().run()
    took = time.monotonic() - t0
    assert not at.exception
    assert any("does not exist" in shown(e.value) for e in at.error), [e.value for e in at.error]
    assert at.text_input(key="home_path").value == missing  # the form keeps what was typed
    assert at.session_state["ui"].job_id is None
    assert not jobs.jobs_dir(cache_dir).exists() and jobs.list_jobs(cache_dir) == []
    assert took < 10, took  # the header check, not a job's 12 s of imports (AppTest included)
    # A real file with a column it lacks: said at once, with the columns it has.
    at.text_input(key="home_path").input(str(_texts_csv(tmp_path / "texts.csv")))
    at.text_input(key="home_label_col").input("lable")
    at.button(key="home_start").click().run()
    said = " ".join(shown(e.value) for e in at.error)
    assert "has no column(s) 'lable'" in said and "text (str), label (str)" in said, said
    assert at.text_input(key="home_label_col").value == "lable"
    assert at.session_state["ui"].job_id is None and jobs.list_jobs(cache_dir) == []
    assert not any(p.is_dir() and not p.name.startswith("_") for p in cache_dir.glob("*"))


def test_the_runs_table_shows_a_few_columns_and_all_on_demand(app_cache):
    at = _home()
    compact = runs_table(at)
    assert "test accuracy" in compact.columns and len(compact.columns) <= 7
    assert {"name", "dataset", "recipe", "date"} <= set(compact.columns)
    at.toggle(key="home_all_columns").set_value(True).run()
    full = runs_table(at)
    assert set(compact.columns) < set(full.columns)
    every = {"source", "runs × epochs", "preset", "noise %", "folder", "problem"}
    assert every <= set(full.columns)


def test_the_job_panel_shows_the_stage_and_the_clock_before_any_estimate(cache_dir):
    fake_job(
        cache_dir,
        cache_dir / "not-yet",
        "score",
        stage="loading libraries",
        pid=os.getpid(),  # alive: this very process
        pid_start=store.process_start(os.getpid()),
    )
    at = _home()
    assert not at.exception
    (bar,) = at.get("progress")
    assert bar.text.startswith("loading libraries · ") and " so far" in bar.text
    assert " left" not in bar.text  # no estimate before the pace is known
    assert "seconds" not in " ".join(i.value for i in at.info)


def test_an_uploaded_file_keeps_its_name_in_the_table_the_title_and_the_export(cache_dir, tmp_path):
    """The run of an upload is called by the file's name, while the file is stored by hash."""
    content = _texts_csv(tmp_path / "any.csv").read_bytes()
    at = _home()
    at.radio(key="home_source_kind").set_value("upload a file")
    at.run()
    at.file_uploader(key="home_upload").upload("my reviews.csv", content, "text/csv")
    at.selectbox(key="home_recipe").select("tfidf")
    at.selectbox(key="home_preset").select("tiny")
    at.multiselect(key="home_scores").select("el2n")
    at.button(key="home_start").click().run()
    assert not at.error, [e.value for e in at.error]
    job_id = at.session_state["ui"].job_id
    config = _config(cache_dir, job_id)
    assert config.data.source_name == "my reviews.csv"
    stored = Path(config.data.source)
    assert stored.parent.name == "_uploads" and stored.name != "my reviews.csv"
    assert stored.read_bytes() == content  # stored by content hash
    deadline = time.monotonic() + 180
    while (job := jobs.status(job_id, cache_dir)).state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert job.state == "done", jobs.log_tail(job_id, cache_dir)
    at.run()
    assert not at.exception
    table = runs_table(at)
    assert list(table["dataset"]) == ["my reviews.csv"]
    title = at.selectbox(key="home_current_run").format_func(job.run)
    assert "my reviews.csv" in title and "_uploads" not in title
    (info,) = store.list_runs(cache_dir)
    assert info.dataset == "my reviews.csv" and "my reviews.csv" in info.title
    export = open_page("export.py", Path(job.run))
    assert not export.exception
    assert export.text_input(key="export_out").value.startswith("exports/my-reviews-")


# --- Health ----------------------------------------------------------------------------------


def test_health_section_lists_the_current_runs_issues_most_rows_first(app_cache):
    from scoring.read.health import health_report
    from scoring.read.views import load_run

    run = digits_run(app_cache)
    at = open_page("home.py", run)
    assert not at.exception
    assert "Health of the current run" in [h.value for h in at.subheader]
    table = at.dataframe[0].value  # at the top: before the form and the runs table
    issues = health_report(load_run(run))
    found = [i for i in issues if i["available"]]
    assert table["issue"].tolist() == [i["title"] for i in found]
    assert table["severity"].tolist() == [i["severity"] for i in found]
    from scoring.read.health import count_text

    assert table["count"].tolist() == [count_text(i) for i in found]
    # Outside app.py's router (this test runs the page alone) the links are captions.
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Review on Mislabeled") for c in captions)
    # A digits run scored with every score has every issue type: no "Not available" list.
    assert [i["type"] for i in issues if not i["available"]] == []
    assert not any(e.label.startswith("Not available") for e in at.expander)


def test_health_links_open_the_reviewing_pages_through_the_router(app_cache):
    run = digits_run(app_cache)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["ui"] = UIState(run=str(run))
    at.run()
    assert not at.exception
    from scoring.read.health import health_report
    from scoring.read.views import load_run

    links = {p.proto.label: p.proto.page for p in at.get("page_link")}
    label = next(k for k in links if k.startswith("Review on Mislabeled: label issues"))
    assert links[label] == "mislabeled"  # the router's own page: a click keeps the session
    # one link per page that reviews an issue the run has (a count above 0)
    issues = health_report(load_run(run))
    pages = {
        i["page"].removesuffix(".py")
        for i in issues
        if i["available"] and i["count"] and i["page"] not in (None, "home.py")
    }
    assert set(links.values()) == pages


def test_health_of_a_text_run_says_why_image_types_are_absent(app_cache):
    at = open_page("home.py", text_run(app_cache))
    assert not at.exception
    reasons = "\n".join(m.value for m in at.markdown)
    assert "an image property: this run's inputs are texts, not images" in shown(reasons)


def test_weak_slices_show_their_size_accuracy_and_examples(app_cache):
    run = digits_run(app_cache)
    rd = store.RunDir(run)
    record = rd.read_health()
    record["underperforming_group"]["slices"] = [
        {"cluster": 2, "size": 4, "accuracy": 0.25, "rest_accuracy": 0.9,
         "quality_ratio": 0.3, "rows": [0, 1, 2, 3]},
    ]  # fmt: skip
    rd.write_health(record)
    at = open_page("home.py", run)
    assert not at.exception
    (slices,) = [e for e in at.expander if e.label == "Weak slices (1)"]
    text = "\n".join(m.value for m in slices.markdown)
    assert "4 rows, out-of-fold accuracy 25% vs 90% elsewhere" in text
    assert len(slices.get("image")) == 1  # one gallery of the slice's images

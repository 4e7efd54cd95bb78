"""Home: pick a dataset and a recipe, start a scoring job, follow it, choose the current run.

A job gets its typed config (`score_config` builds it from the form, with the preset applied
by `scoring.config.apply_preset`, as the CLI does): no command line is written by hand here.
Start runs the CLI's own input checks first (`jobs.check_score`, from file headers, well
under a second): bad input is said in the form and starts no job. Progress is polled every
second while a job runs, with the stage it is in, the time so far and, once the estimate is
steady, the time left; the chosen run is the current one on every page.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from app_pages._shared import (
    adopt_finished_job,
    cache_dir,
    damaged_panel,
    escape_md,
    finished_runs,
    mtime,
    read_run,
    ui,
)
from scoring import jobs, store
from scoring.config import (
    NOISE_KINDS,
    DataConfig,
    GradConfig,
    NoiseConfig,
    ScoreConfig,
    TrainConfig,
    apply_preset,
    parse_names,
)
from scoring.errors import InputError
from scoring.read import health, labelling, suspects
from scoring.scores.registry import REGISTRY, available

if TYPE_CHECKING:  # only a hint: the page needs no more of Streamlit's runtime
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from scoring.read.views import RunView

RECIPES = {
    "auto": "auto (from the data)",
    "mlp": "mlp: tiny images (digits)",
    "cnn": "cnn: tiny images",
    "cnn32": "cnn32: 32x32 images on CPU",
    "resnet18": "resnet18: 32x32 images on a GPU",
    "probe": "probe: frozen encoder + head (text: MiniLM; images: EfficientNet-Lite0)",
    "tfidf": "tfidf: text, TF-IDF of words and word pairs + head (fast; long texts)",
    "finetune": "finetune: text, the whole encoder fine-tuned (GPU-sized)",
}
UPLOAD_TYPES = ["parquet", "csv", "tsv", "jsonl", "json"]
# The runs table shows what a person compares first; the rest behind "All columns".
COMPARED_COLUMNS = ["name", "dataset", "recipe", "examples", "test accuracy", "state", "date"]
SLICES_SHOWN, SLICE_GALLERY = 5, 8  # the weak slices shown on Home, examples shown of each
MAX_READINGS = 120  # per job: two minutes of one-second polls, far more than steadiness needs


def _save_upload(upload) -> Path:
    """Keep an uploaded file under the cache (content-named, so re-uploads share it).

    The stored name is a hash; the file's own name travels in the config
    (`DataConfig.source_name`) for titles, the runs table and export file names.
    """
    data = upload.getvalue()
    suffix = Path(upload.name).suffix.lower()
    folder = cache_dir() / "_uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if not path.exists():
        store.atomic_write_bytes(path, data)
    return path


def score_config(source: str, form: dict, source_name: str | None = None) -> ScoreConfig:
    """The run the form describes, the preset applied as the CLI applies it.

    `form` holds the widgets' values (empty boxes are None, 0 or ""); the boxes a preset
    would fill are left to the preset only when empty, like the CLI's unset flags.
    `source_name`: an uploaded file's own name, shown in place of its stored path (not
    part of the run's key).
    """
    budget = {"runs": form.get("runs"), "epochs": form.get("epochs")}
    budget["max_length"] = form.get("max_length")
    given = {k: v for k, v in budget.items() if v}
    scores = form.get("scores") or []
    annotator_cols = parse_names(form.get("annotator_cols"))
    every = available(list(REGISTRY), annotator_cols is not None)  # what "all" computes
    config = ScoreConfig(
        data=DataConfig(
            source=source,
            source_name=source_name,
            test=form.get("test") or None,
            input_cols=parse_names(form.get("input_col")),
            label_col=form.get("label_col") or None,
            limit=form.get("limit") or None,
            annotator_cols=annotator_cols,
        ),
        train=dataclasses.replace(TrainConfig(recipe=form.get("recipe", "auto")), **given),
        noise=NoiseConfig(
            fraction=float(form.get("noise") or 0.0), kind=form.get("noise_kind") or "uniform"
        ),
        # Every score picked is the same run as "all": one cache entry, not two.
        scores=tuple(scores) if scores and not set(every) <= set(scores) else ("all",),
        grads=GradConfig(
            at=form.get("grad_at", "init"),
            params=form.get("grad_params", "all"),
            checkpoints=form.get("checkpoints") or None,
        ),
    )
    return apply_preset(config, form.get("preset") or "default", keep=given)


def _start(config: ScoreConfig, form: dict | None = None) -> None:
    form = form or {}
    ui().job_id = jobs.start_score(
        config,
        cache_dir(),
        executor=form.get("executor") or "local",
        ray_address=form.get("ray_address") or None,
        # Labels beside the run (meta.json), not in its key: the title every page shows.
        name=form.get("name") or None,
        preset=form.get("preset") or "default",
    )
    st.toast("Scoring job started")
    st.rerun()  # draw the job panel (and start polling) at the top of the page now


def _running_keys() -> set[str]:
    """Run keys of the scoring jobs running now (one job per key: a second would wait)."""
    keys = set()
    for job in jobs.running(cache_dir()):
        config = jobs.job_config(job.job_id, cache_dir()) if job.kind == "score" else None
        if config is None:
            continue
        try:
            keys.add(ScoreConfig.from_dict(config).key())
        except InputError:  # a job record from another version: it cannot be this form's run
            continue
    return keys


def _already_running(source: str, form: dict) -> bool:
    """Whether the run the form describes is being scored right now."""
    if not source:
        return False
    keys = _running_keys()
    if not keys:
        return False
    try:
        return score_config(source, form).key() in keys
    except InputError:  # said when Start is pressed
        return False


def _new_run_form() -> None:
    # Collapsed while a job runs, so its progress stays the first thing on the page.
    expanded = not finished_runs() and not jobs.running(cache_dir())
    with st.expander("New scoring run", expanded=expanded):
        source, upload = _dataset_fields()
        form: dict = {}
        _recipe_fields(form)
        _noise_fields(form)
        _columns_popover(form)
        _executor_popover(form)
        _grads_popover(form)
        form["scores"] = st.multiselect("Scores (empty = all)", list(REGISTRY), key="home_scores")
        _submit(source, upload, form)


def _dataset_fields() -> tuple[str, UploadedFile | None]:
    """The dataset radio and its one box: (source, upload); source is "" until given."""
    kind = st.radio(
        "Dataset",
        ["digits (bundled)", "local file or folder", "upload a file", "Hugging Face Hub"],
        horizontal=True,
        key="home_source_kind",
    )
    source, upload = "digits", None
    if kind == "local file or folder":
        source = st.text_input(
            "Path", placeholder="/data/train.parquet or /data/images/", key="home_path"
        ).strip()
    elif kind == "upload a file":
        upload = st.file_uploader(
            "File (parquet, CSV, TSV, JSONL)", type=UPLOAD_TYPES, key="home_upload"
        )
    elif kind == "Hugging Face Hub":
        name = st.text_input(
            "Dataset name", placeholder="stanfordnlp/sst2 or glue:sst2", key="home_hub"
        ).strip()
        source = f"hf:{name}" if name else ""
    return source, upload


def _recipe_fields(form: dict) -> None:
    """The run's name, recipe and budget (runs, epochs) into `form`."""
    form["name"] = st.text_input(
        "Name (optional)",
        placeholder="e.g. digits 10% noise: shown in every caption and picker",
        max_chars=80,
        key="home_name",
    ).strip()
    c1, c2, c3 = st.columns(3)
    form["recipe"] = c1.selectbox(
        "Recipe", list(RECIPES), format_func=RECIPES.get, key="home_recipe"
    )
    # Empty = the preset's choice (default: 5 runs; tiny: 2 runs x 4 epochs, finetune 1).
    form["runs"] = c2.number_input(
        "Runs", 1, 20, None, placeholder="preset default", key="home_runs"
    )
    form["epochs"] = c3.number_input(
        "Epochs", 1, 500, None, placeholder="recipe default", key="home_epochs"
    )


def _noise_fields(form: dict) -> None:
    """Injected noise, the example limit and the preset into `form` (one row of four)."""
    c1, c0, c2, c3 = st.columns(4)
    form["noise"] = c1.number_input(
        "Inject label noise (fraction)", 0.0, 0.9, 0.0, 0.05, key="home_noise"
    )
    form["noise_kind"] = c0.selectbox(
        "Noise kind",
        NOISE_KINDS,
        key="home_noise_kind",
        help="uniform: a random fraction permuted; asymmetric: each class flipped to a "
        "confusable class (CIFAR-10: truck→automobile, bird→airplane, deer→horse, "
        "cat↔dog); pair: class c → c+1 mod K. As `--noise-kind`.",
    )
    form["limit"] = c2.number_input("Limit examples (0 = all)", 0, 10_000_000, 0, key="home_limit")
    form["preset"] = c3.selectbox("Preset", ["default", "tiny"], key="home_preset")


def _columns_popover(form: dict) -> None:
    """Input and label columns, the held-out file and the token limit into `form`."""
    with st.popover("Columns and held-out file"):
        form["input_col"] = st.text_input(
            "Input column(s), comma-separated", key="home_input_col"
        ).strip()
        form["label_col"] = st.text_input("Label column", key="home_label_col").strip()
        form["annotator_cols"] = st.text_input(
            "Annotator columns (several annotators), comma-separated",
            key="home_annotator_cols",
            help="One column per annotator (missing values allowed): the label is their "
            "majority vote unless a label column is named; adds CROWDLAB's consensus label, "
            "its quality and each annotator's quality. As `--annotator-cols`.",
        ).strip()
        form["test"] = st.text_input("Held-out file (optional)", key="home_test").strip()
        form["max_length"] = st.number_input(
            "Max tokens per text (a pair counts both parts)", 8, 4096, None,
            placeholder="128", key="home_max_length",
        )  # fmt: skip


def _executor_popover(form: dict) -> None:
    """Where the runs execute (here or on Ray) into `form`."""
    with st.popover("Where to run"):
        form["executor"] = st.radio(
            "Runs execute",
            ["local", "ray"],
            format_func={
                "local": "here, one after another",
                "ray": "as Ray tasks (needs requirements-ray.txt)",
            }.get,
            key="home_executor",
        )
        form["ray_address"] = st.text_input(
            "Ray cluster address (empty = a local Ray)", key="home_ray_address"
        ).strip()


def _grads_popover(form: dict) -> None:
    """When and over which weights the gradient scores are taken, into `form`."""
    with st.popover("Gradient scores"):
        form["grad_at"] = st.radio(
            "GraNd and its label-free variants at",
            ["init", "early"],
            format_func={"init": "initialization", "early": "EL2N's early epoch"}.get,
            horizontal=True,
            key="home_grad_at",
        )
        form["grad_params"] = st.radio(
            "GraNd and TracIn over",
            ["all", "last"],
            format_func={"all": "all weights", "last": "last layer (closed form)"}.get,
            horizontal=True,
            key="home_grad_params",
        )
        form["checkpoints"] = st.number_input(
            "Checkpoints for TracIn and VoG", 2, 50, None, placeholder="5",
            key="home_checkpoints",
        )  # fmt: skip


def _submit(source: str, upload: UploadedFile | None, form: dict) -> None:
    """The Start button: checks the form as the CLI checks its flags, then starts the job
    (disabled while the same run is being scored).

    Bad input (a missing file, a column the file lacks, a number out of range) is said here,
    in the form, which keeps its values; no job starts for it.
    """
    # An upload is only saved (and so keyed) on Start: until then it cannot match a job.
    busy = _already_running(source, form) if upload is None else False
    if busy:
        st.caption("This run is already being scored: follow it above, or cancel it there.")
    if not st.button("Start scoring", type="primary", key="home_start", disabled=busy):
        return
    source_name = None
    if upload is not None:
        source = str(_save_upload(upload))
        source_name = Path(upload.name).name  # stored by content hash; shown by its name
    if not source:
        st.warning("Give a dataset first: a path, an uploaded file or a Hub name.")
        return
    try:  # the CLI's own checks, from file headers: no job (and no torch) for bad input
        config = jobs.check_score(score_config(source, form, source_name))
    except InputError as err:
        st.error(escape_md(err))
        return
    if _already_running(source, form):  # an upload that matches a running job
        st.warning("This run is already being scored: follow it above.")
        return
    _start(config, form)


def _job_panel(job: jobs.JobStatus) -> None:
    label = {
        "running": "Running",
        "done": "Finished",
        "failed": "Failed",
        "cancelled": "Cancelled",
    }[job.state]
    st.markdown(f"**{label}** · job `{job.job_id}`")
    if job.state == "running":
        # The stage that is running (loading libraries, reading data, embedding i/N, run r/R)
        # and the clock, which moves every poll even while a stage does; a time left only
        # once its estimate is steady, never a promise made before the rate is known.
        parts = [escape_md(job.message or "starting")]
        if job.started:
            parts.append(f"{_duration(time.time() - job.started)} so far")
        left = _time_left(job)
        if left is not None:
            parts.append(f"about {_duration(left)} left")
        st.progress(min(max(job.progress, 0.0), 1.0), text=" · ".join(parts))
        if st.button("Cancel", key=f"cancel_{job.job_id}"):
            jobs.cancel(job.job_id, cache_dir())
            st.toast("Cancelling…")
    elif job.state == "failed":  # messages quote paths, columns and labels: shown as typed
        st.error(escape_md(job.message))
    elif job.state == "cancelled":
        st.warning(escape_md(job.message))
    else:
        st.success("Done: the new run is now the current run on every page.")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{max(seconds, 1)} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _time_left(job: jobs.JobStatus) -> float | None:
    """The job's time left once steady (`jobs.steady_time_left`), else None.

    Each poll adds a reading to this session's history of the job: its progress and the
    finish time its estimate predicts, the engine's own (a smoothed rate) when its status
    has one, else the rate this session measured since it first saw progress.
    """
    now = time.time()
    seen = st.session_state.setdefault("home_progress_seen", {})
    history = seen.setdefault(job.job_id, {"first": None, "readings": []})
    if history["first"] is None and 0.0 < job.progress < 1.0:
        history["first"] = (now, float(job.progress))
    if job.seconds_left is not None and job.updated is not None:
        finish = job.updated + job.seconds_left
    else:
        measured = jobs.time_left(history["first"], (now, float(job.progress)))
        finish = None if measured is None else now + measured
    readings = history["readings"]
    readings.append((now, float(job.progress), finish))
    del readings[:-MAX_READINGS]
    return jobs.steady_time_left(readings, now)


@st.fragment(run_every=1.0)
def _live_jobs() -> None:
    """Polls while a job runs; when the last one ends, one full rerun stops the polling
    (and makes this session's finished job's run current: `adopt_finished_job`)."""
    active = jobs.running(cache_dir())
    for job in active:
        _job_panel(job)
    if not active:
        st.rerun()


def _jobs_section() -> None:
    active = jobs.running(cache_dir())
    if active:
        _live_jobs()
        return
    state = ui()
    if state.job_id:  # the last job this session started, once it has ended
        job = jobs.status(state.job_id, cache_dir())
        if job is not None:
            _job_panel(job)


def _runs_table() -> None:
    runs = store.list_runs(cache_dir())
    if not runs:
        return
    rows = [
        {
            "name": r.name or "",
            "dataset": r.dataset,  # an upload's own file name, not its stored hash
            "source": r.source,  # scored by a recipe here, recorded or imported
            "recipe": r.recipe,
            "runs × epochs": f"{r.runs}×{r.epochs}" if r.runs and r.epochs else None,
            "preset": r.preset,
            "noise %": round(100 * r.noise, 1),
            "date": datetime.datetime.fromtimestamp(
                r.created if r.created is not None else r.updated
            ).strftime("%Y-%m-%d %H:%M"),
            "state": r.state if r.version_ok or r.problems else f"{r.state} (older version)",
            "examples": r.n_train,
            "test accuracy": None if r.test_accuracy is None else round(r.test_accuracy, 4),
            "folder": str(r.path),
            "problem": r.problem,  # a damaged run: which file and why (the panel below: fix)
        }
        for r in runs
    ]
    st.subheader("Runs in the cache")
    table = pd.DataFrame(rows)
    every = st.toggle(
        "All columns",
        key="home_all_columns",
        help="Also where each run came from, its preset, runs × epochs, injected noise, "
        "folder and any damage.",
    )
    # A few columns fit any window (the accuracy is never cut off); the rest on demand.
    st.dataframe(table if every else table[COMPARED_COLUMNS], hide_index=True, width="stretch")
    for r in runs:
        if r.problems:  # each damaged run: the reason and a way out (rescore, else delete)
            with st.expander(f"Damaged run `{r.path.name}`", expanded=True):
                damaged_panel(r.path, r.problems)
    done = _settle_current_run()
    if done:
        state = ui()
        paths = [str(r.path) for r in done]
        labels = {str(r.path): store.run_title(r) for r in done}
        # UIState.run is the one truth: the widget is set from it before it is drawn (a job
        # that finished switches it) and writes back through its callback (the user's pick).
        st.session_state["home_current_run"] = state.run
        st.selectbox(
            "Current run (used by every page)",
            paths,
            format_func=labels.get,
            key="home_current_run",
            on_change=_picked_run,
        )


def _settle_current_run() -> list[store.RunInfo]:
    """The finished runs; the current one set before anything shows it (a finished job's run,
    else the one picked, else the newest), so Health at the top and the picker agree."""
    done = finished_runs()
    if done:
        adopt_finished_job()
        state = ui()
        if state.run not in [str(r.path) for r in done]:
            state.run = str(done[0].path)
    return done


def _picked_run() -> None:
    ui().run = st.session_state["home_current_run"]


# --- Health: the current run's issue types (read from its folder: `scoring.read.health`) ---


@st.cache_data(show_spinner=False, max_entries=4)
def _health_cached(run: str, stamp: tuple[float, ...]) -> list[dict]:
    # `stamp` (the run files' mtimes) is in the key: a rescored run's report is read again.
    return health.health_report(read_run(run))


def _health_section() -> None:
    """Every issue type of the current run: count, rows, severity, a one-line summary, and a
    link to the page that reviews it; most rows affected first (`read.health`). Nothing is
    computed here: scoring wrote it all (health.json, summary.json, the score columns)."""
    run = ui().run
    if run is None:
        return
    rd = store.RunDir(Path(run))
    stamp = (mtime(rd.status_file), *(mtime(f) for f in rd.written_files()))
    try:
        view, issues = read_run(run), _health_cached(run, stamp)
    except InputError:  # a damaged run: the runs table above shows it with its fix
        return
    st.subheader("Health of the current run")
    st.caption(
        f"{escape_md(view.title())} — every issue type, most rows affected first. "
        "Pick another run in the runs table below."
    )
    found = [i for i in issues if i["available"]]
    st.dataframe(
        pd.DataFrame(
            {
                "issue": [i["title"] for i in found],
                "count": [health.count_text(i) for i in found],
                "rows affected": [f"{i['rows_affected']:,} ({i['share']:.1%})" for i in found],
                "severity": [i["severity"] for i in found],
                "review on": [i["page_title"] or "" for i in found],
                "summary": [i["summary"] for i in found],  # last: the long one
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Severity: share of the rows affected, high ≥ 5%, medium ≥ 1%, low > 0. "
        "`winnow report --run RUN` prints the same."
    )
    _health_links(found)
    _from_tools(run)
    absent = [i for i in issues if not i["available"]]
    if absent:
        with st.expander(f"Not available for this run ({len(absent)})"):
            st.markdown(
                "\n".join(
                    f"- **{escape_md(i['title'])}**: {escape_md(i['reason'])}" for i in absent
                )
            )
    _weak_slices(view)


def _from_tools(run: str) -> None:
    """The decisions that came back from a labelling tool, with the tool's name and who."""
    received = labelling.from_tools(run)
    if received.empty:
        return
    lines = []
    for r in received.itertuples():
        who = f" by {', '.join(r.annotators[:5])}" if r.annotators else ""
        more = f" and {len(r.annotators) - 5} more" if len(r.annotators) > 5 else ""
        lines.append(
            f"- **{r.tool}** ({str(r.time)[:16].replace('T', ' ')} UTC): {r.actions}, "
            f"{r.in_force} still in force{escape_md(who + more)}"
        )
    st.markdown("**Decisions from labelling tools**\n" + "\n".join(lines))


def _health_links(found: list[dict]) -> None:
    """One link per page that reviews an issue this run has."""
    pages: dict[str, list[str]] = {}
    for i in found:
        if i["count"] and i["page"] and i["page"] != "home.py":
            pages.setdefault(i["page"], []).append(i["title"])
    titles = {i["page"]: i["page_title"] for i in found}
    for page, names in pages.items():
        label = f"Review on {titles[page]}: {', '.join(names).lower()}"
        try:
            st.page_link(f"app_pages/{page}", label=label, icon=":material/arrow_forward:")
        except StreamlitPageNotFoundError:  # this page run on its own, outside app.py's router
            st.caption(escape_md(label))


def _weak_slices(view: RunView) -> None:
    """The weak slices' sizes, accuracy and a few of their examples (the gallery)."""
    slices = health.weak_slices(view)
    if not slices:
        return
    with st.expander(f"Weak slices ({len(slices)})"):
        for n, s in enumerate(slices[:SLICES_SHOWN], start=1):
            rest = s["rest_accuracy"]
            elsewhere = "" if rest is None else f" vs {rest:.0%} elsewhere"
            st.markdown(
                f"**Slice {n}**: {s['size']:,} rows, out-of-fold accuracy "
                f"{s['accuracy']:.0%}{elsewhere}"
            )
            shown = s["rows"][:SLICE_GALLERY]
            if view.modality == "image":
                images = suspects.load_images(view, shown)
                if images is not None:
                    st.image(list(images), width=64)
                continue
            texts = suspects.load_texts(view, s["ids"][:SLICE_GALLERY])
            if texts is not None:
                cells = texts.drop(columns="id").astype(str).agg(" · ".join, axis=1)
                st.markdown("\n".join(f"- {escape_md(t[:160])}" for t in cells))


def main() -> None:
    st.title("Winnow")
    st.caption("Find the easy, the hard and the mislabeled examples of a classification dataset.")
    if not store.list_runs(cache_dir()) and not jobs.running(cache_dir()):
        st.info(
            "The cache is empty. Score the bundled digits dataset (1,797 images) to see "
            "every page filled in; the job's progress shows here, with its time left once "
            "the pace is known."
        )
        if st.button("Score digits now", type="primary", key="home_quickstart"):
            _start(ScoreConfig())  # digits, every score, the default budget
    _jobs_section()
    _settle_current_run()
    _health_section()  # first: what is wrong with the current run's data, worst first
    _new_run_form()
    _runs_table()


main()

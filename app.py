"""Winnow: the Streamlit entry point — navigation plus the Home view.

The page files live in `app_pages/`, not `pages/`: a `pages/` folder beside an app that calls
`st.navigation` puts Streamlit in a hybrid mode where opening a page's URL directly (a
bookmark, a browser refresh) shows the folder's files as a second, legacy navigation and
skips this entry point (its layout and sidebar).

Home picks a dataset and recipe, starts a scoring job in the background, shows its progress
(polling only while a job runs), lets the user cancel it, and lists the finished runs of the
cache; the chosen run is the current one for every page.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages._shared import cache_dir, finished_runs, ui
from scoring import jobs, store
from scoring.scores.registry import REGISTRY

RECIPES = {
    "auto": "auto (from the data)",
    "mlp": "mlp: tiny images (digits)",
    "cnn": "cnn: tiny images",
    "cnn32": "cnn32: 32x32 images on CPU",
    "resnet18": "resnet18: 32x32 images on a GPU",
    "probe": "probe: text, frozen encoder + head (fast, CPU)",
    "finetune": "finetune: text, the whole encoder fine-tuned (GPU-sized)",
}
UPLOAD_TYPES = ["parquet", "csv", "tsv", "jsonl", "json"]


def _save_upload(upload) -> Path:
    """Keep an uploaded file under the cache (content-named, so re-uploads share it)."""
    data = upload.getvalue()
    suffix = Path(upload.name).suffix.lower()
    folder = cache_dir() / "_uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if not path.exists():
        store.atomic_write_bytes(path, data)
    return path


def _score_args(source: str, form: dict) -> list[str]:
    args = ["--dataset", source, "--recipe", form["recipe"]]
    if form.get("runs"):
        args += ["--runs", str(form["runs"])]
    if form.get("test"):
        args += ["--test", form["test"]]
    if form.get("input_col"):
        args += ["--input-col", form["input_col"]]
    if form.get("label_col"):
        args += ["--label-col", form["label_col"]]
    if form.get("epochs"):
        args += ["--epochs", str(form["epochs"])]
    if form.get("limit"):
        args += ["--limit", str(form["limit"])]
    if form.get("noise"):
        args += ["--noise", str(form["noise"])]
    scores = form.get("scores") or []
    args += ["--scores", ",".join(scores) if scores and len(scores) < len(REGISTRY) else "all"]
    if form.get("preset"):
        args += ["--preset", form["preset"]]
    if form.get("executor", "local") != "local":
        args += ["--executor", form["executor"]]
        if form.get("ray_address"):
            args += ["--ray-address", form["ray_address"]]
    if form.get("max_length"):
        args += ["--max-length", str(form["max_length"])]
    if form.get("grad_at", "init") != "init":
        args += ["--grad-at", form["grad_at"]]
    if form.get("grad_params", "all") != "all":
        args += ["--grad-params", form["grad_params"]]
    if form.get("checkpoints"):
        args += ["--checkpoints", str(form["checkpoints"])]
    return args


def _start(args: list[str]) -> None:
    ui().job_id = jobs.start("score", args, cache_dir())
    st.toast("Scoring job started")
    st.rerun()  # draw the job panel (and start polling) at the top of the page now


def _new_run_form() -> None:
    with st.expander("New scoring run", expanded=not finished_runs()):
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
        form: dict = {}
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
        c1, c2, c3 = st.columns(3)
        form["noise"] = c1.number_input(
            "Inject label noise (fraction)", 0.0, 0.9, 0.0, 0.05, key="home_noise"
        )
        form["limit"] = c2.number_input(
            "Limit examples (0 = all)", 0, 10_000_000, 0, key="home_limit"
        )
        form["preset"] = c3.selectbox("Preset", ["default", "tiny"], key="home_preset")
        with st.popover("Columns and held-out file"):
            form["input_col"] = st.text_input(
                "Input column(s), comma-separated", key="home_input_col"
            ).strip()
            form["label_col"] = st.text_input("Label column", key="home_label_col").strip()
            form["test"] = st.text_input("Held-out file (optional)", key="home_test").strip()
            form["max_length"] = st.number_input(
                "Max tokens per text (a pair counts both parts)", 8, 4096, None,
                placeholder="128", key="home_max_length",
            )  # fmt: skip
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
        form["scores"] = st.multiselect("Scores (empty = all)", list(REGISTRY), key="home_scores")
        if st.button("Start scoring", type="primary", key="home_start"):
            if upload is not None:
                source = str(_save_upload(upload))
            if not source:
                st.warning("Give a dataset first: a path, an uploaded file or a Hub name.")
                return
            _start(_score_args(source, form))


def _job_panel(job: jobs.JobStatus) -> None:
    label = {
        "running": "Running",
        "done": "Finished",
        "failed": "Failed",
        "cancelled": "Cancelled",
    }[job.state]
    st.markdown(f"**{label}** · job `{job.job_id}`")
    if job.state == "running":
        st.progress(min(max(job.progress, 0.0), 1.0), text=job.message or "starting")
        if st.button("Cancel", key=f"cancel_{job.job_id}"):
            jobs.cancel(job.job_id, cache_dir())
            st.toast("Cancelling…")
    elif job.state == "failed":
        st.error(job.message)
    elif job.state == "cancelled":
        st.warning(job.message)
    else:
        st.success("Done: the new run is now the current run on every page.")


@st.fragment(run_every=1.0)
def _live_jobs() -> None:
    """Polls while a job runs; when the last one ends, one full rerun stops the polling."""
    active = jobs.running(cache_dir())
    for job in active:
        _job_panel(job)
    if not active:
        ui().run = None  # the newest finished run becomes current
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
            "dataset": r.dataset,
            "state": r.state if r.version_ok else f"{r.state} (older version)",
            "date": datetime.datetime.fromtimestamp(r.updated).strftime("%Y-%m-%d %H:%M"),
            "examples": r.n_train,
            "recipe": r.recipe,
            "test accuracy": None if r.test_accuracy is None else round(r.test_accuracy, 4),
            "folder": str(r.path),
        }
        for r in runs
    ]
    st.subheader("Runs in the cache")
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    done = finished_runs()
    if done:
        state = ui()
        paths = [str(r.path) for r in done]
        if state.run not in paths:
            state.run = paths[0]
        labels = {
            str(r.path): f"{r.dataset} · {r.recipe} · n={r.n_train} · "
            f"{datetime.datetime.fromtimestamp(r.updated):%Y-%m-%d %H:%M}"
            for r in done
        }
        state.run = st.selectbox(
            "Current run (used by every page)",
            paths,
            index=paths.index(state.run),
            format_func=labels.get,
            key="home_current_run",
        )


def home() -> None:
    st.title("Winnow")
    st.caption("Find the easy, the hard and the mislabeled examples of a classification dataset.")
    if not store.list_runs(cache_dir()) and not jobs.running(cache_dir()):
        st.info(
            "The cache is empty. Score the bundled digits dataset (1,797 images) to see "
            "every page filled in about a minute."
        )
        if st.button("Score digits now", type="primary", key="home_quickstart"):
            _start(["--dataset", "digits"])
    _jobs_section()
    _new_run_form()
    _runs_table()


def main() -> None:
    st.set_page_config(page_title="Winnow", page_icon=":material/grain:", layout="wide")
    pages = [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/scores.py", title="Scores", icon=":material/bar_chart:"),
        st.Page("app_pages/correlations.py", title="Correlations", icon=":material/grid_on:"),
        st.Page("app_pages/examples.py", title="Examples", icon=":material/image:"),
        st.Page("app_pages/mislabeled.py", title="Mislabeled", icon=":material/flag:"),
        st.Page("app_pages/map.py", title="Map", icon=":material/scatter_plot:"),
        st.Page("app_pages/pruning.py", title="Pruning", icon=":material/content_cut:"),
        st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
    ]
    st.navigation(pages).run()


main()

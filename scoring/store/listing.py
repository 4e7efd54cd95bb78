"""Every run in a cache, as `winnow list` and the app's pages show it: `RunInfo` and its title.

Listing never raises for a damaged run: it shows it as `damaged`, with the file, the reason
and the fix (`RunDir.check`), and a running run whose job died as `interrupted`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.config import SCORING_VERSION
from scoring.store.integrity import FIX_CONFIG, DamagedRun
from scoring.store.paths import CONFIG_NAME, STATUS_NAME
from scoring.store.rundir import RunDir
from scoring.store.status import pid_alive


@dataclass
class RunInfo:
    """One cached run as listed by `python -m scoring list` (and the app's home page).

    `state` is the status file's (running / done / failed / cancelled), `interrupted` for a
    running one whose job died, or `damaged`: then `problem` says which file and why, and
    `problems` holds every DamagedRun found (`RunDir.check`). `name` and `preset` come from
    `meta.json` (None when never given); `runs`, `epochs`, `noise`, `noise_kind` and
    `created` from `config.json`; `dataset` is `dataset_name`'s. `title` is the one-line
    label every page and `list` use.
    """

    path: Path
    dataset: str
    state: str
    updated: float
    n_train: int | None
    recipe: str | None
    test_accuracy: float | None
    version_ok: bool
    problems: list[DamagedRun] = dataclasses.field(default_factory=list)
    name: str | None = None
    preset: str | None = None
    runs: int | None = None
    epochs: int | None = None
    noise: float = 0.0  # share of training labels the run's --noise check corrupted
    noise_kind: str | None = None  # NoiseConfig.kind when the config has one
    created: float | None = None  # config.json's creation time (else `updated`)
    # What made the run (config.json's "source"): "scored" (a built-in recipe), "recorded"
    # (the user's own training, `scoring.record.Recorder`) or "imported" (`winnow import`).
    source: str = "scored"

    @property
    def title(self) -> str:
        """One line naming the run: `run_title(self)`."""
        return run_title(self)

    @property
    def problem(self) -> str | None:
        """The first damage in one line (`file reason`, `(+n more)`), or None."""
        if not self.problems:
            return None
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return self.problems[0].short + more

    @property
    def fix(self) -> str | None:
        """What to do about the damage (the config's own fix when config.json is damaged)."""
        if not self.problems:
            return None
        files = {p.file for p in self.problems}
        return FIX_CONFIG if CONFIG_NAME in files else self.problems[0].fix


def run_title(info: RunInfo) -> str:
    """The one-line label of a run, the same in every caption, picker, table and `list`.

    "my run · digits · mlp 5×30 · tiny · 10% noise · 2026-12-01 14:05": the name (when
    given), the dataset, the recipe with runs × epochs, the preset (when it is not
    "default"), the injected noise (when any; its kind when not the default permutation)
    and the creation time. Parts that are unknown (a damaged config) are left out.
    """
    parts = [info.name] if info.name else []
    parts.append(info.dataset)
    if info.recipe:
        budget = f" {info.runs}×{info.epochs}" if info.runs and info.epochs else ""
        parts.append(f"{info.recipe}{budget}")
    if info.preset and info.preset != "default":
        parts.append(info.preset)
    if info.noise:
        kind = f" {info.noise_kind}" if info.noise_kind and info.noise_kind != "uniform" else ""
        parts.append(f"{info.noise:.0%}{kind} noise")
    when = info.created if info.created is not None else info.updated
    parts.append(datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


def dataset_name(config: dict[str, Any], meta: dict[str, Any]) -> str:
    """The run's data as people know it, for titles, tables and export file names.

    The source's own name when a `score` call gave one (`DataConfig.source_name`: an
    uploaded file's name, where the stored path is a content hash): the newest call's,
    kept in `meta.json` like the run's name, else the one in the run's config. Otherwise
    the data's description ("digits", "cifar10/train.parquet", "hf:glue:sst2"); "?" when
    the config is unreadable.

    Parameters
    ----------
    config : dict
        The run's `config.json` ({} when damaged).
    meta : dict
        The run's `meta.json` ({} when absent).
    """
    scored = config.get("config") if isinstance(config.get("config"), dict) else {}
    data = scored.get("data") if isinstance(scored.get("data"), dict) else {}
    named = _text_or_none(meta.get("source_name")) or _text_or_none(data.get("source_name"))
    if named:
        return named
    dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    return str(dataset.get("description", "?"))


def iter_run_dirs(cache_dir: Path | str) -> Iterator[Path]:
    """Every run folder: `<fingerprint>/<key>/` holding a config or a status file.

    Either one is enough, so a run whose config.json was lost is still listed (as damaged).
    """
    root = Path(cache_dir)
    if not root.is_dir():
        return
    found: set[Path] = set()
    for name in (CONFIG_NAME, STATUS_NAME):
        for file in root.glob(f"*/*/{name}"):
            if not file.parts[-3].startswith("_"):  # _hf/, _jobs/, _uploads/ are not runs
                found.add(file.parent)
    yield from sorted(found)


def _number(value: Any) -> float | None:
    """`value` as a float when it is a number (not a bool), else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_info(path: Path | str) -> RunInfo:
    """One run as `list` shows it: never raises for a damaged run, says what is wrong."""
    rd = RunDir(Path(path))
    problems = rd.check()
    try:
        config = rd.read_config()
    except DamagedRun:
        config = {}
    try:
        status = rd.read_status() or {"state": "running", "updated": 0.0}
    except DamagedRun:
        status = {"state": "damaged"}
    state = status["state"]
    pid = status.get("pid")
    alive = isinstance(pid, int) and pid_alive(pid, status.get("pid_start"))
    if state == "running" and not alive and not rd.lock_live():
        state = "interrupted"  # the job died; running the same command resumes it
    if problems:
        state = "damaged"
    summary: dict[str, Any] = {}
    if state == "done":
        with contextlib.suppress(DamagedRun):
            summary = rd.read_summary()
    updated = _number(status.get("updated"))
    if updated is None:  # unreadable status: the folder's own time keeps the order sensible
        updated = rd.path.stat().st_mtime
    dataset = config.get("dataset") or {}
    meta = rd.read_meta()
    scored = config.get("config") if isinstance(config.get("config"), dict) else {}
    noise = scored.get("noise") if isinstance(scored.get("noise"), dict) else {}
    train = scored.get("train") if isinstance(scored.get("train"), dict) else {}
    recipe = config.get("recipe") if isinstance(config.get("recipe"), dict) else {}
    runs, epochs = train.get("runs"), recipe.get("epochs")
    return RunInfo(
        path=rd.path,
        dataset=dataset_name(config, meta),
        state=state,
        updated=updated,
        n_train=dataset.get("n_train") if isinstance(dataset.get("n_train"), int) else None,
        recipe=(config.get("recipe") or {}).get("name"),
        test_accuracy=_number(summary.get("test_accuracy_mean")),
        version_ok=config.get("scoring_version") == SCORING_VERSION,
        problems=problems,
        name=_text_or_none(meta.get("name")),
        preset=_text_or_none(meta.get("preset")),
        runs=runs if isinstance(runs, int) and not isinstance(runs, bool) else None,
        epochs=epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
        noise=_number(noise.get("fraction")) or 0.0,
        noise_kind=_text_or_none(noise.get("kind")),
        created=_number(config.get("created")),
        source=run_source(config),
    )


RUN_SOURCES = ("scored", "recorded", "imported")


def run_source(config: dict[str, Any]) -> str:
    """What made a run, from its `config.json`: "scored", "recorded" or "imported".

    Only "scored" runs can be rescored or retrained from their config (a built-in recipe on
    a loadable source); the others hold what the user's own training logged.
    """
    source = config.get("source")
    return source if source in RUN_SOURCES else "scored"


def _text_or_none(value: Any) -> str | None:
    """`value` when it is a non-blank string, else None."""
    return value if isinstance(value, str) and value.strip() else None


def list_runs(cache_dir: Path | str) -> list[RunInfo]:
    """Every run under `cache_dir`, newest first; damaged runs too (state `damaged`)."""
    runs = [run_info(path) for path in iter_run_dirs(cache_dir)]
    return sorted(runs, key=lambda r: r.updated, reverse=True)

"""Where everything sits in the cache: the cache root, a run's folder and every file name in it.

Layout: `<cache-dir>/<dataset-fingerprint>/<run-key>/`, one folder per run. Beside the runs,
`<dataset-fingerprint>/embeddings/` caches text embeddings shared by the runs of one
dataset, `_hf/` holds Hugging Face's own cache, `_recording/` the recordings in progress and
`_jobs/` the background jobs' records and logs (`scoring.jobs`).

This module is the only one that spells a run file's name (`tests/test_store.py` checks it):
`RunPaths` names every file of a run folder, `SweepDir` those of a sweep's, and the few names
other parts of the store need without a run at hand are the constants below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The two files every computed folder (a run, a sweep) holds; the rest are RunPaths'.
STATUS_NAME, LOCK_NAME = "status.json", "lock"
# Named without a run at hand: `DamagedRun` picks its fix by them.
CONFIG_NAME, MAP_NAME = "config.json", "map.parquet"


def default_cache_dir() -> Path:
    """`$WINNOW_CACHE_DIR`, else `cache/` in the working directory."""
    return Path(os.environ.get("WINNOW_CACHE_DIR", "cache"))


def run_dir(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    """The folder of run `key` of the dataset whose fingerprint is `fingerprint`."""
    return Path(cache_dir) / fingerprint / key


def hf_cache_dir(cache_dir: Path | str) -> Path:
    """Where Hugging Face `datasets` keeps its own cache of the sources it reads."""
    return Path(cache_dir) / "_hf"


def digest_cache_file(hf_cache: Path | str) -> Path:
    """Source files' content digests keyed by (path, size, mtime): an unchanged file is not
    re-hashed. Beside `datasets`' own cache of the same sources (`hf_cache_dir`)."""
    return Path(hf_cache) / "source_digests.json"


def embeddings_file(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    """A dataset's cached text embeddings (`embed.embedding_key` names the encoder setting).

    They sit beside the dataset's runs, not in one, so every run of the same texts and
    encoder (another recipe, seed or score set) reuses them.
    """
    return Path(cache_dir) / fingerprint / "embeddings" / f"{key}.npz"


def recording_dir(cache_dir: Path | str, key: str) -> Path:
    """Where a `Recorder` (`scoring.training.record`) flushes a recording in progress.

    `<cache>/_recording/<key>/`, one sub-folder per process (rank): epoch by epoch, the
    statistics of the examples that process logged. Outside any run folder (so never listed
    as a run); removed once `finish` has written the run folder.
    """
    return Path(cache_dir) / "_recording" / key


@dataclass(frozen=True)
class SweepDir:
    """One sweep's folder `<run>/sweeps/<sweep-key>/` (see `RunDir`)."""

    path: Path

    @property
    def record_file(self) -> Path:
        """`sweep.json`: the sweep's description (run, rule, fractions, seeds, schedule)."""
        return self.path / "sweep.json"

    @property
    def trials_file(self) -> Path:
        """`trials.parquet`: one row per finished trial, rewritten after each one."""
        return self.path / "trials.parquet"

    @property
    def summary_file(self) -> Path:
        """`summary.parquet`: per split, rule and fraction, accuracy and the paired difference
        to random with its bootstrap CI (`prune.sweeps.sweep_summary`), written once done."""
        return self.path / "summary.parquet"


@dataclass(frozen=True)
class RunPaths:
    """Every path of a run folder `<cache>/<dataset-fingerprint>/<run-key>/`.

    The base of `RunDir` (`scoring.store.rundir`), whose docstring says what each file holds
    and who writes it when; this class only names them, so it needs nothing but `pathlib`.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # -- where the run sits ------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def fingerprint(self) -> str:
        return self.path.parent.name

    @property
    def cache_dir(self) -> Path:
        return self.path.parent.parent

    @property
    def hf_cache_dir(self) -> Path:
        return hf_cache_dir(self.cache_dir)

    def embeddings_file(self, key: str) -> Path:
        """The dataset's cached embeddings for encoder setting `key` (not in the run)."""
        return embeddings_file(self.cache_dir, self.fingerprint, key)

    def relative(self, file: Path) -> str:
        """`file`'s name relative to the run folder, as messages and the manifest spell it."""
        try:
            return Path(file).relative_to(self.path).as_posix()
        except ValueError:
            return str(file)

    # -- paths -------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def status_file(self) -> Path:
        return self.path / STATUS_NAME

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    @property
    def split_file(self) -> Path:
        return self.path / "split.npz"

    @property
    def inputs_file(self) -> Path:
        return self.path / "inputs.npz"

    @property
    def annotations_file(self) -> Path:
        """Several annotators' votes: names, (N, A) and (M, A) class ids, -1 = no vote."""
        return self.path / "annotations.npz"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    def run_file(self, r: int) -> Path:
        return self.runs_dir / f"run_{r:03d}.npz"

    def states_file(self, r: int) -> Path:
        return self.runs_dir / f"run_{r:03d}.safetensors"

    @property
    def cv_dir(self) -> Path:
        return self.path / "cv"

    def fold_file(self, f: int) -> Path:
        return self.cv_dir / f"fold_{f}.npz"

    @property
    def features_free_file(self) -> Path:
        """Label-independent embeddings of the training set (`features`: (N, D) float32)."""
        return self.path / "features_free.npz"

    @property
    def features_free_test_file(self) -> Path:
        """The same label-independent embeddings of the held-out rows ((M, D) float32)."""
        return self.path / "features_free_test.npz"

    @property
    def scores_file(self) -> Path:
        return self.path / "scores.parquet"

    @property
    def scores_per_run_file(self) -> Path:
        return self.path / "scores_per_run.parquet"

    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.parquet"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def health_file(self) -> Path:
        """`health.json`: the dataset-level issues (`scoring.scores.health.dataset_health`)."""
        return self.path / "health.json"

    @property
    def examples_dir(self) -> Path:
        return self.path / "examples"

    @property
    def images_file(self) -> Path:
        return self.examples_dir / "images.npy"

    @property
    def texts_file(self) -> Path:
        return self.examples_dir / "texts.parquet"

    @property
    def heldout_images_file(self) -> Path:
        """(M, H, W, C) uint8 display images of the held-out rows (image runs)."""
        return self.examples_dir / "heldout_images.npy"

    @property
    def heldout_texts_file(self) -> Path:
        """id, text[, text_pair] of the held-out rows (text runs)."""
        return self.examples_dir / "heldout_texts.parquet"

    @property
    def decisions_file(self) -> Path:
        return self.path / "decisions.jsonl"

    @property
    def heldout_file(self) -> Path:
        """`heldout.parquet`: out-of-sample label quality of the held-out rows (M rows)."""
        return self.path / "heldout.parquet"

    @property
    def meta_file(self) -> Path:
        """`meta.json`: the run's name and preset, set by each `score` call (not in its key)."""
        return self.path / "meta.json"

    @property
    def map_file(self) -> Path:
        return self.path / MAP_NAME

    @property
    def sweeps_dir(self) -> Path:
        return self.path / "sweeps"

    @property
    def trials_dir(self) -> Path:
        return self.sweeps_dir / "trials"

    def trial_file(self, key: str) -> Path:
        return self.trials_dir / f"{key}.json"

    def trial_files(self) -> list[Path]:
        """Every finished trial's record file, sorted by name."""
        return sorted(self.trials_dir.glob("*.json")) if self.trials_dir.is_dir() else []

    def sweep(self, key: str) -> SweepDir:
        return SweepDir(self.sweeps_dir / key)

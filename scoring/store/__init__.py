"""Content-addressed store of scoring runs: one folder per run, written atomically.

Layout: `<cache-dir>/<dataset-fingerprint>/<run-key>/`, one folder per run; `RunDir` is the
one owner of a run folder's file names and readers (its docstring lists every file). Every
write goes to a temp file in the same folder and is moved into place with `os.replace`, so
a reader never sees half a file; `status.json` says `done` only after everything else is
written, with the size and sha256 of each file it wrote. Arrays are `.npz` read with
`allow_pickle=False`: no pickled objects ever enter the cache.

Damage (a file missing, empty, cut short, garbled, of the wrong shape) never surfaces as a
parser's exception: `RunDir`'s readers raise `DamagedRun` (an `InputError` naming the file,
the reason and the fix), `RunDir.check` lists it, `list_runs` shows the run as `damaged`,
and `scoring.training.pipeline.score` repairs it.

Callers use this package's names (`from scoring import store; store.RunDir(...)`); each
part owns one concern and imports only the parts below it (never this package):

- `paths`: the cache layout and every file name (`RunPaths`, `SweepDir`, `hf_cache_dir`,
  `embeddings_file`, `recording_dir`, ...).
- `atomic`: whole-file writes and plain reads (`atomic_write_bytes`, `link_or_copy`,
  `write_json`, `save_arrays`, `load_arrays`, `write_parquet`, ...).
- `status`: `status.json`, process identity and the run lock (`write_status`,
  `read_status`, `pid_alive`, `unfinished_reason`, `RunLock`).
- `integrity`: what damage is and how it is found (`DamagedRun`, the `FIX_*` lines,
  `file_digest`, `compare_file`).
- `inputs`: what the models consumed and its exact compact encoding (`ModelInputs`).
- `rundir`: `RunDir` (readers, `check`, writers), `RunSplit`, `RunVotes`, `check_version`,
  `read_scores`.
- `listing`: every run of a cache as `list` and the pages show it (`list_runs`,
  `RunInfo`, `run_title`, `run_source`).

A test that replaces a function must patch it in the part that calls it
(`scoring.store.atomic.atomic_write_bytes`), not here: the parts never look names up in
this package.
"""

from scoring.store.atomic import (
    atomic_write_bytes,
    link_or_copy,
    load_arrays,
    read_json,
    save_arrays,
    save_npz_files,
    write_json,
    write_parquet,
)
from scoring.store.inputs import INPUT_KINDS, ModelInputs
from scoring.store.integrity import (
    FIX_CONFIG,
    FIX_MAP,
    FIX_RESCORE,
    DamagedRun,
    compare_file,
    file_digest,
)
from scoring.store.listing import (
    RUN_SOURCES,
    RunInfo,
    iter_run_dirs,
    list_runs,
    run_info,
    run_source,
    run_title,
)
from scoring.store.paths import (
    RunPaths,
    SweepDir,
    default_cache_dir,
    digest_cache_file,
    embeddings_file,
    hf_cache_dir,
    recording_dir,
    run_dir,
)
from scoring.store.rundir import RunDir, RunSplit, RunVotes, check_version, read_scores
from scoring.store.status import (
    STATES,
    RunLock,
    is_process,
    pid_alive,
    process_start,
    process_started_at,
    read_status,
    unfinished_reason,
    write_status,
)

__all__ = [
    "FIX_CONFIG",
    "FIX_MAP",
    "FIX_RESCORE",
    "INPUT_KINDS",
    "RUN_SOURCES",
    "STATES",
    "DamagedRun",
    "ModelInputs",
    "RunDir",
    "RunInfo",
    "RunLock",
    "RunPaths",
    "RunSplit",
    "RunVotes",
    "SweepDir",
    "atomic_write_bytes",
    "check_version",
    "compare_file",
    "default_cache_dir",
    "digest_cache_file",
    "embeddings_file",
    "file_digest",
    "hf_cache_dir",
    "is_process",
    "iter_run_dirs",
    "link_or_copy",
    "list_runs",
    "load_arrays",
    "pid_alive",
    "process_start",
    "process_started_at",
    "read_json",
    "read_scores",
    "read_status",
    "recording_dir",
    "run_dir",
    "run_info",
    "run_source",
    "run_title",
    "save_arrays",
    "save_npz_files",
    "unfinished_reason",
    "write_json",
    "write_parquet",
    "write_status",
]

"""What damage is and how it is found: `DamagedRun`, its reasons and fixes, file digests.

Damage (a file missing, empty, cut short, garbled, of the wrong shape) never surfaces as a
parser's exception: `RunDir`'s readers turn every error in `READ_ERRORS` into `DamagedRun`
(an `InputError` naming the file, the reason from `damage_reason` and the fix), and
`RunDir.check` compares every file a finished run's manifest lists (`file_digest`, written
into `status.json` with `done`) against what is on disk now (`compare_file`).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from scoring.errors import InputError
from scoring.store.paths import CONFIG_NAME, MAP_NAME

# What to do about a damaged run file. The pipeline's own files come back by running the same
# `score` command: it checks every file against the sizes and hashes `status.json` recorded
# and recomputes only what is damaged or missing (`scoring.training.pipeline`).
FIX_RESCORE = (
    "run the same `winnow score` command again to repair it (only the damaged files are "
    "recomputed), or delete the run folder"
)
FIX_CONFIG = (
    "run the `winnow score` command that made it again (it rewrites the config), "
    "or delete the run folder"
)
FIX_MAP = "compute the map again (`winnow map --run RUN`, or the Map page's button)"


class DamagedRun(InputError):
    """A run file that is missing, empty, cut short, garbled or of the wrong shape.

    An `InputError`, so the CLI answers it in one line (exit 2) and pages show it as a
    message; `RunDir.check` returns them as a list instead of raising.

    Attributes
    ----------
    run : Path
        The run folder.
    file : str
        The damaged file, relative to the run (``runs/run_000.npz``).
    reason : str
        One line: what is wrong with it (``is missing``, ``is empty``, ...).
    fix : str
        What to do about it.
    """

    def __init__(self, run: Path | str, file: str, reason: str, fix: str | None = None) -> None:
        self.run, self.file, self.reason = Path(run), file, reason
        self.fix = fix or (
            FIX_CONFIG if file == CONFIG_NAME else FIX_MAP if file == MAP_NAME else FIX_RESCORE
        )
        super().__init__(f"damaged run {self.run}: {file} {reason}; {self.fix}")

    @property
    def short(self) -> str:
        """`file reason`, without the folder and the fix (tables, page headlines)."""
        return f"{self.file} {self.reason}"


def damage_reason(file: Path, err: BaseException) -> str:
    """One line saying how `file` failed to read."""
    if isinstance(err, FileNotFoundError) or not file.exists():
        return "is missing"
    if file.is_dir():
        return "is a folder, not a file"
    if file.stat().st_size == 0:
        return "is empty"
    if isinstance(err, json.JSONDecodeError):
        return f"is not valid JSON ({err.msg} at line {err.lineno})"
    if isinstance(err, UnicodeDecodeError):
        return "is not text (binary garbage)"
    text = " ".join(str(err).split())[:160]
    return (
        f"cannot be read ({type(err).__name__}: {text})"
        if text
        else (f"cannot be read ({type(err).__name__})")
    )


# Every way a damaged file surfaces while it is parsed: missing or unreadable (OSError),
# garbage or cut short (ValueError covers JSON, UnicodeDecodeError, pyarrow's ArrowInvalid and
# numpy's header errors; BadZipFile and EOFError an .npz), an array or key it lacks
# (KeyError), a value of the wrong type (TypeError).
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile)


def file_digest(path: Path) -> dict[str, Any]:
    """`{"size", "mtime_ns", "sha256"}` of a file, read in blocks (memory stays flat)."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    """The file's sha256 in hex, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compare_file(file: Path, meta: dict[str, Any], *, deep: bool) -> str | None:
    """How `file` differs from its manifest entry `meta` ({size, mtime_ns, sha256}), or None.

    Without `deep`, a file whose size and modification time are as written is taken as
    intact (a stat, no read: what `list` and every page afford); one whose time moved (a
    rewrite, or a copy that did not keep times) is hashed. `deep` always hashes.
    """
    if not file.is_file():
        return "is missing"
    stat = file.stat()
    size, expected = stat.st_size, int(meta["size"])
    if size == 0 and expected:
        return "is empty"
    if size < expected:
        return f"is cut short ({size:,} of {expected:,} bytes)"
    if size != expected:
        return f"changed size since the run finished ({size:,} bytes, {expected:,} written)"
    deep = deep or stat.st_mtime_ns != meta.get("mtime_ns")
    if deep and _sha256(file) != meta["sha256"]:
        return "changed since the run finished (its sha256 differs)"
    return None

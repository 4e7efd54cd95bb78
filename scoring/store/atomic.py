"""Whole-file writes and plain reads: a reader sees the old file or the new one, never half.

Every write goes to a temp file in the same folder (so `os.replace` is a rename on one file
system, atomic) and is fsynced before it is moved into place. Arrays are `.npz` read with
`allow_pickle=False`: no pickled objects ever enter the cache.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[str]:
    """A temp file beside `path` to fill; fsynced and moved onto `path` if the block ends well.

    On any exception (Ctrl-C included) the temp file is removed and `path` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    with _replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def link_or_copy(source: Path, path: Path) -> None:
    """Put `source`'s content at `path` as a hard link (no second copy on disk), or as an
    atomic copy where the file system has no links; `path` appears whole or not at all.

    Every writer here replaces a file (`os.replace`) rather than changing it in place, so a
    later rewrite of either name leaves the other's content as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    try:
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        atomic_write_bytes(path, Path(source).read_bytes())


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    """The JSON value in `path` (raises as `json` and the file system do)."""
    return json.loads(Path(path).read_text())


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Save named arrays as one uncompressed `.npz`, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def save_npz_files(path: Path, files: dict[str, Path]) -> None:
    """Pack `.npy` files (name -> file) into one uncompressed `.npz`, atomically.

    The same layout `save_arrays` writes (`np.load` reads it alike), but each member is
    copied from its file in blocks: arrays larger than memory (a recording's (T, N)
    statistics, memory-mapped while they were assembled) never sit in memory whole.
    """
    with (
        _replacing(path) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z,
    ):
        for name, file in files.items():
            z.write(file, arcname=f"{name}.npy")


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz` by name, read in full; object arrays are refused (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write `frame` as parquet (no index), atomically."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scoring import store
from scoring.config import SCORING_VERSION
from scoring.errors import InputError


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    store.write_json(target, {"v": 1})

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


def test_arrays_round_trip_without_pickle(tmp_path):
    path = tmp_path / "run.npz"
    store.save_arrays(path, a=np.arange(3), b=np.eye(2, dtype=np.float32))
    got = store.load_arrays(path)
    assert np.array_equal(got["a"], np.arange(3)) and got["b"].dtype == np.float32
    store.save_arrays(path, obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):  # object arrays would need pickle: refused
        store.load_arrays(path)


def test_status_round_trip(tmp_path):
    assert store.read_status(tmp_path) is None
    store.write_status(tmp_path, "running", progress=0.25, message="run 1/5")
    st = store.read_status(tmp_path)
    assert st["state"] == "running" and st["progress"] == 0.25 and st["pid"] == os.getpid()
    with pytest.raises(ValueError):
        store.write_status(tmp_path, "finished")


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    first, second = store.RunLock(tmp_path), store.RunLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()  # held by a live process (us)
    first.release()
    assert second.acquire()
    second.release()
    # A lock left by a process that died is stale.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    assert store.RunLock(tmp_path).acquire()


def test_check_version_refuses_other_versions(tmp_path):
    store.write_json(tmp_path / "config.json", {"scoring_version": SCORING_VERSION})
    store.check_version(tmp_path)
    store.write_json(tmp_path / "config.json", {"scoring_version": SCORING_VERSION + 1})
    with pytest.raises(InputError, match="written by scoring version"):
        store.check_version(tmp_path)

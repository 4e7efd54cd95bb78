"""Image data at scale: chunked decoding stays bit-identical; source digests are cached."""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scoring import store
from scoring.config import DataConfig
from scoring.data import decode, sources


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_chunked_decode_keeps_the_bytes_and_as_float_is_value_over_255(tmp_path, monkeypatch):
    # Chunks of 3 rows over 10 images (two parts): chunk edges must not shift or drop rows.
    monkeypatch.setattr(decode, "_CHUNK", 3)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(10, 5, 4, 3), dtype=np.uint8)  # (N, H, W, C)
    path = tmp_path / "images.parquet"
    cells = [{"bytes": _png(p), "path": None} for p in pixels]
    pd.DataFrame({"image": cells, "label": np.arange(10) % 2}).to_parquet(path)
    table = sources._open_file(path, str(tmp_path / "hf"))
    rows_a, rows_b = np.array([7, 0, 3, 4, 9]), np.array([1, 2, 5, 6, 8])
    parts = [(table, rows_a, "a"), (table, rows_b, "b")]
    a8, b8 = decode.read_images("image", parts)
    # Independent: PIL's decoded bytes, channels first; float32 divided by float32 255.
    channels_first = pixels.transpose(0, 3, 1, 2)
    assert a8.dtype == np.uint8 and a8.shape == (5, 3, 5, 4)
    assert np.array_equal(a8, channels_first[rows_a]) and np.array_equal(b8, channels_first[rows_b])
    a, b = decode.read_images("image", parts, as_float=True)
    expected = channels_first.astype(np.float32) / np.float32(255)
    assert a.dtype == np.float32 and np.array_equal(a, expected[rows_a])
    assert np.array_equal(b, expected[rows_b])
    assert np.array_equal(decode.to_float(a8, 255).view(np.uint32), a.view(np.uint32))


def test_file_digest_cached_by_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,0\nb,1\n")
    hf = str(tmp_path / "hf")
    first = sources._file_digest(path, hf)
    assert first == hashlib.sha256(path.read_bytes()).digest()
    assert store.digest_cache_file(hf).exists()
    calls = []
    real = sources._sha256_file
    monkeypatch.setattr(sources, "_sha256_file", lambda p: calls.append(p) or real(p))
    assert sources._file_digest(path, hf) == first and calls == []  # unchanged: not re-read
    path.write_text("text,label\na,0\nb,0\n")  # same size, new mtime
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = sources._file_digest(path, hf)
    assert calls == [path] and second == hashlib.sha256(path.read_bytes()).digest() != first


def test_folder_digest_cached_and_invalidated(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        (root / label / "a.png").write_bytes(
            _png(np.full((2, 2), 7 if label == "cat" else 9, np.uint8))
        )
    hf = str(tmp_path / "hf")
    plain = sources._folder_digest(root)
    assert sources._folder_digest(root, hf) == plain
    monkeypatch.setattr(sources, "_sha256_folder", lambda *a: pytest.fail("re-hashed"))
    assert sources._folder_digest(root, hf) == plain
    monkeypatch.undo()
    (root / "dog" / "b.png").write_bytes(_png(np.zeros((2, 2), np.uint8)))  # a new file
    assert sources._folder_digest(root, hf) == sources._folder_digest(root) != plain


def test_load_fingerprint_unchanged_by_the_cache(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(20)))
    cfg = DataConfig(source=str(path), test_fraction=0.25)
    hf = str(tmp_path / "hf")
    without = sources.load(cfg, hf_cache_dir=str(tmp_path / "fresh")).fingerprint  # hashed
    assert sources.load(cfg, hf_cache_dir=hf).fingerprint == without
    assert sources.load(cfg, hf_cache_dir=hf).fingerprint == without  # from the cache

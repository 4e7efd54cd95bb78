"""The encoders over a real local Ray (2 workers) give the local embeddings, byte for byte:
images (the bundled EfficientNet-Lite0) and texts (the bundled MiniLM, long texts as several
windows), split into several tasks, and a whole `score --executor ray` run's table."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from scoring import store
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, n: int) -> None:
        self.n += n


@pytest.fixture(scope="module")
def executor():
    pytest.importorskip("ray")
    from scoring.training.executors import RayExecutor

    ray_executor = RayExecutor()
    ray_executor._start()
    import ray

    assert ray.cluster_resources().get("CPU", 0) >= 2  # at least 2 workers may run at once
    yield ray_executor
    ray_executor.close()


def _images(n: int, seed: int) -> np.ndarray:
    """(n, 3, 32, 32) uint8: smooth colour fields with noise, each image different."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 1, 32)
    base = rng.uniform(0, 255, size=(n, 3, 1, 1)) * grid[None, None, :, None]
    noise = rng.normal(0, 30, size=(n, 3, 32, 32))
    return np.clip(base + noise + 60, 0, 255).astype(np.uint8)


def test_image_tasks_equal_the_local_embedding(executor, monkeypatch) -> None:
    from scoring.training import image_encoders as ie

    images = _images(44, seed=3)  # 44 = 5 batches of 8 and a short one
    local = ie.embed_images(images, model=None)
    # 2 batches (16 images) per task: 3 tasks, the last one short.
    monkeypatch.setattr(ie, "TASK_BYTES", 16 * images[:1].nbytes)
    count = _Count()
    spread = ie.embed_images_spread(images, model=None, executor=executor, on_batch=count)
    assert executor.started
    assert spread.dtype == np.float32 and spread.shape == local.shape
    np.testing.assert_array_equal(spread, local)
    assert count.n == len(images)  # every image counted once, in the caller


def test_text_tasks_equal_the_local_embedding(executor, monkeypatch) -> None:
    from scoring.training import embed

    words = "the film was long and quietly moving but the ending felt rushed".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 30))) for _ in range(37)]
    texts[5] = " ".join(rng.choice(words, size=300))  # several windows of 64 tokens
    texts[20] = " ".join(rng.choice(words, size=150))
    kw = dict(max_length=64, batch_size=4, long_text="chunk")
    local = embed.embed_texts(texts, **kw)
    monkeypatch.setattr(embed, "_TASK_BATCHES", 3)  # 12 windows per task: several tasks
    count = _Count()
    spread = embed.embed_texts(texts, **kw, executor=executor, on_batch=count)
    np.testing.assert_array_equal(spread, local)
    assert count.n == len(texts)
    assert torch.get_num_threads() >= 1  # the caller's threads untouched by the tasks


def _image_parquet(path, n: int, seed: int) -> None:
    rows = []
    for i, img in enumerate(_images(n, seed)):
        buf = io.BytesIO()
        Image.fromarray(img.transpose(1, 2, 0)).save(buf, format="PNG")
        rows.append({"photo": {"bytes": buf.getvalue(), "path": None}, "kind": f"k{i % 2}"})
    pd.DataFrame(rows).to_parquet(path)


def test_score_with_ray_writes_the_local_embeddings_table(tmp_path) -> None:
    pytest.importorskip("ray")
    _image_parquet(tmp_path / "shots.parquet", 30, seed=8)
    args = [
        "--dataset", str(tmp_path / "shots.parquet"), "--input-col", "photo",
        "--label-col", "kind", "--recipe", "probe", "--runs", "1", "--epochs", "2",
        "--scores", "el2n,loss", "--test-fraction", "0.3", "--quiet",
    ]  # fmt: skip
    tables = []
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        run_cli("score", *args, *extra, cache=tmp_path / name)
        (emb,) = (tmp_path / name).glob("*/embeddings/*.npz")
        tables.append(store.load_arrays(emb))
    for split in ("train", "test"):
        np.testing.assert_array_equal(tables[0][split], tables[1][split])
    assert tables[0]["train"].shape == (21, 1280)

"""The kNN's query blocks spread over a real local Ray give the single-process result."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.scores.knn import knn


class _Sink:
    def __init__(self) -> None:
        self.done, self.stages = 0.0, []

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount

    def stage(self, message: str) -> None:
        self.stages.append(message)


@pytest.mark.slow
def test_ray_blocks_equal_the_single_process_search() -> None:
    pytest.importorskip("ray")
    from scoring.training.executors import RayExecutor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 16)).astype(np.float32)
    x[700] = x[3]  # an exact copy and a tie across blocks
    x[1400] = x[3]
    y = rng.normal(size=(300, 16)).astype(np.float32)
    budget = 6 * 1500 * 200  # 200-row query blocks: 8 Ray tasks per search
    local = [knn(x, k=5, block_bytes=budget), knn(x, y, k=3, metric="l2", block_bytes=budget)]
    executor, sink = RayExecutor(), _Sink()
    try:
        spread = [
            knn(x, k=5, block_bytes=budget, executor=executor, progress=sink),
            knn(x, y, k=3, metric="l2", block_bytes=budget, executor=executor),
        ]
        assert executor.started  # the blocks really ran as Ray tasks
    finally:
        executor.close()
    for (li, ld), (ri, rd) in zip(local, spread, strict=True):
        np.testing.assert_array_equal(li, ri)
        np.testing.assert_array_equal(ld, rd)
    assert local[0][0][3, :2].tolist() == [700, 1400]  # the copies, lower index first
    assert sink.done == pytest.approx(8.0)  # every block's report reached the caller

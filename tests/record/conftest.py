"""The recorded run the recording tests share: built once per session."""

from __future__ import annotations

import pytest
import torch

from scoring.record import Recorder
from tests.record.loops import Tape, digits, train


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """2 runs x 20 epochs on 1,500 digits with 10% flipped labels, recorded; and its tape."""
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("recorded") / "cache"
    d = digits(0.1, seed=0)
    tape = Tape(Recorder(cache, "digits mlp", d.ids, d.labels, 10))
    train(tape, d, runs=2, epochs=20, eval_after=(2,))
    return cache, tape.finish(), d, tape

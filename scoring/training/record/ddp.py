"""A recording under distributed training: the rank, one run key for all ranks, the handshake.

Every rank makes its own Recorder and flushes what it logged into its own scratch folder;
`end_epoch` sums, over the ranks, which ids each logged (`ranks_coverage`), so an id no rank
trained on fails that epoch rather than the whole recording at `finish`; `finish` meets the
ranks at a barrier, rank 0 merges and writes the run (`merge`, `write`), and every rank
learns the run folder, or rank 0's error, by broadcast. Outside
`torch.distributed` (one process) each of these is a no-op or a constant.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path

import numpy as np
import torch

from scoring.errors import InputError


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of `torch.distributed` when initialized, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shared_key(name: str, rank: int, world: int) -> str:
    """A new run key; rank 0's, broadcast, under distributed training."""
    key = hashlib.sha256(
        f"{name}\0{time.time_ns()}\0{os.getpid()}\0{secrets.token_hex(8)}".encode()
    ).hexdigest()[:16]
    if world > 1:
        box = [key]
        torch.distributed.broadcast_object_list(box, src=0)
        key = box[0]
    return key


def ranks_coverage(seen: np.ndarray, world: int) -> np.ndarray:
    """How many ranks logged each row in the epoch: `seen` summed over the ranks.

    Every rank must call it at the same point (a collective): `end_epoch` does, before it
    raises anything, so a missing id fails every rank alike instead of leaving one waiting.

    Parameters
    ----------
    seen : ndarray of shape (n_examples,), bool
        The rows this rank logged.
    world : int
        The number of ranks; 1: no collective, `seen` as counts.

    Returns
    -------
    ndarray of shape (n_examples,), int32
        0: no rank logged the row; 2 or more: a sampler that pads (`DistributedSampler` repeats
        a few ids when N is not a multiple of the world size).
    """
    count = seen.astype(np.int32)
    if world == 1:
        return count
    dist = torch.distributed
    # NCCL reduces only GPU tensors; gloo (and a "cpu:gloo,cuda:nccl" mix) takes host ones.
    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    total = torch.from_numpy(count).to(device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.cpu().numpy()


def barrier(world: int) -> None:
    """Wait for every rank (distributed training only)."""
    if world > 1:
        torch.distributed.barrier()


def share_outcome(path: Path | None, error: str | None) -> Path:
    """Rank 0's outcome of `finish` on every rank: the run folder, or rank 0's error raised
    as an InputError. Ends with a barrier, so no rank's scratch files go before every rank
    has its answer."""
    box = [str(path) if path else None, error]
    torch.distributed.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise InputError(f"finish failed on rank 0: {box[1]}")
    shared = Path(box[0])
    torch.distributed.barrier()  # every rank has its answer before the files go
    return shared

"""One rank of the distributed recording test (`test_distributed.py`): DDP on gloo, CPU.

Each rank trains its DistributedSampler shard, logs its own batches to the Recorder, gives
its share of the eval pass, of the held-out rows and of the features, and keeps a copy of
all it logged (`tape_rank<r>.npz`) for the single-process replay to compare with. N_TRAIN is
odd, so the sampler pads: one id per epoch is trained (and logged) by both ranks.

Then `drop_last`: the same sampler with drop_last=True leaves an id out of every epoch;
each rank writes what its first `end_epoch` raised (`drop_rank<r>.txt`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from tests.record.loops import digits, mlp

N_TRAIN, EPOCHS, BATCH = 601, 4, 32  # odd: 2 ranks pad


def worker(rank: int, world: int, folder: str) -> None:
    from scoring.record import Recorder

    torch.set_num_threads(1)
    out = Path(folder)
    dist.init_process_group(
        "gloo", init_method=f"file://{out / 'rendezvous'}", rank=rank, world_size=world
    )
    d = digits(0.1, seed=0)
    x, y = d.x[:N_TRAIN], torch.from_numpy(d.labels[:N_TRAIN])
    ids = np.arange(N_TRAIN) * 3 + 7  # not the row index: the merge goes by id
    rec = Recorder(out / "cache", "ddp", ids, d.labels[:N_TRAIN], 10, early_epoch=1)
    model = DistributedDataParallel(mlp(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sampler = DistributedSampler(range(N_TRAIN), num_replicas=world, rank=rank, seed=0)
    tape: dict[str, np.ndarray] = {}
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        rows = torch.tensor(list(sampler))
        for s, start in enumerate(range(0, len(rows), BATCH)):
            b = rows[start : start + BATCH]
            logits = model(x[b])
            loss = torch.nn.functional.cross_entropy(logits, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(ids[b.numpy()], logits)
            tape[f"e{epoch}s{s}_ids"] = ids[b.numpy()]
            tape[f"e{epoch}s{s}_logits"] = logits.detach().numpy()
        rec.end_epoch()
        if epoch == 0:  # each rank evaluates its own shard
            with torch.no_grad():
                shard = rows.numpy()
                logits = model.module(x[rows])
            rec.log_eval(ids[shard], logits)
            tape["eval_ids"], tape["eval_logits"] = ids[shard], logits.numpy()
    with torch.no_grad():
        m = len(d.test_labels)
        mine = np.arange(rank, m, world)  # held-out rows split between the ranks
        test_logits = model.module(d.x_test[mine])
        shard = np.sort(np.asarray(list(sampler)))
        feats = model.module[:2](x[shard])
    rec.end_run(
        test_logits=test_logits,
        test_labels=d.test_labels[mine],
        test_ids=mine,
        features=feats,
        feature_ids=ids[shard],
    )
    tape.update(
        test_ids=mine,
        test_logits=test_logits.numpy(),
        test_labels=d.test_labels[mine],
        feature_ids=ids[shard],
        features=feats.numpy(),
    )
    np.savez(out / f"tape_rank{rank}.npz", **tape)
    path = rec.finish()
    (out / f"path_rank{rank}.txt").write_text(str(path))
    drop_last(rank, world, out, x, ids, d.labels[:N_TRAIN])
    dist.destroy_process_group()


def drop_last(
    rank: int, world: int, out: Path, x: torch.Tensor, ids: np.ndarray, labels: np.ndarray
) -> None:
    """One epoch on a drop_last=True sampler: every rank's `end_epoch` must refuse it."""
    from scoring.errors import InputError
    from scoring.record import Recorder

    rec = Recorder(out / "cache_drop", "drop", ids, labels, 10, early_epoch=1)
    model = mlp(0)
    sampler = DistributedSampler(range(N_TRAIN), num_replicas=world, rank=rank, drop_last=True)
    rows = torch.tensor(list(sampler))
    for start in range(0, len(rows), BATCH):
        b = rows[start : start + BATCH]
        with torch.no_grad():
            rec.log(ids[b.numpy()], model(x[b]))
    try:
        rec.end_epoch()
        message = "end_epoch accepted the epoch"
    except InputError as err:
        message = str(err)
    (out / f"drop_rank{rank}.txt").write_text(message)


if __name__ == "__main__":  # `python -m tests.record.ddp_worker FOLDER`: both ranks
    import sys

    import torch.multiprocessing as mp

    mp.spawn(worker, args=(2, sys.argv[1]), nprocs=2, join=True)

"""Does training survive a busy machine? OpenMP wait policy, measured in one run.

A background job shares its cores with the app, the browser and whatever else the user
runs. With PyTorch's default OpenMP spin-waiting, a thread that finishes its share of a
parallel region spins for the others; when another process holds a core, the spinning
thread burns the time slice the straggler needs. Jobs therefore start with
`OMP_WAIT_POLICY=PASSIVE` (scoring/jobs.py, scoring/cli/__init__.py).

This bench times cnn32 forward+backward steps (batch 128, 2 threads, random 32x32 inputs:
only the arithmetic matters here) in a fresh child process per setting, idle and with
`--hogs` busy-looping processes beside it, and prints steps/s and the slowdown each policy
suffers under load.

    python bench/busy_machine.py [--hogs 1] [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import time, torch, torch.nn.functional as F
from scoring.training.models import build_model
torch.set_num_threads({threads})
torch.manual_seed(0)
model = build_model("cnn32", (3, 32, 32), 10).train()
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for _ in range(3):  # warm-up
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
t = time.perf_counter()
for _ in range({steps}):
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
print({steps} / (time.perf_counter() - t))
"""


def _hog(stop: mp.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _steps_per_s(policy: str | None, threads: int, steps: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(threads=threads, steps=steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=1, help="busy-looping processes beside it")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    policies = {"PyTorch default (spin)": None, "OMP_WAIT_POLICY=PASSIVE": "PASSIVE"}
    idle = {name: _steps_per_s(p, args.threads, args.steps) for name, p in policies.items()}
    stop = mp.Event()
    hogs = [mp.Process(target=_hog, args=(stop,), daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    time.sleep(0.5)
    try:
        busy = {name: _steps_per_s(p, args.threads, args.steps) for name, p in policies.items()}
    finally:
        stop.set()
        for h in hogs:
            h.join(timeout=5)
    print(
        f"cnn32 forward+backward, batch 128, {args.threads} threads, {os.cpu_count()} cores, "
        f"{args.hogs} busy process(es) beside it under load\n"
    )
    print("| OpenMP wait policy | idle steps/s | loaded steps/s | slowdown under load |")
    print("|---|---:|---:|---:|")
    for name in policies:
        print(f"| {name} | {idle[name]:.2f} | {busy[name]:.2f} | {idle[name] / busy[name]:.1f}x |")


if __name__ == "__main__":
    main()

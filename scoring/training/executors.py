"""Where independent units of work run: in this process, or as Ray tasks.

A scoring run's R training runs and a sweep's trials are independent given their seeds, so
they are the unit to spread over cores, GPUs and machines. An executor takes a function and
a list of items, runs `fn(item, report)` for each, and hands each result back to the caller
as soon as it is ready (in the caller's process, which alone writes the cache). `report`
forwards progress (a fraction of one unit, and a stage message) to the caller's `Progress`.

`ray` is an optional dependency (requirements-ray.txt): with `address=None` a local Ray
starts bound to 127.0.0.1 for this job and is shut down after it; with an address the job
joins that cluster, which must be able to import this package (it is shipped with the
job) and read the dataset (a path every node sees, or a Hub name).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from scoring.errors import InputError

EXECUTORS = ("local", "ray")
_POLL_S = 0.5


class Report(Protocol):
    """What a unit of work may tell the caller while it runs."""

    def advance(self, amount: float = 1.0) -> None: ...

    def stage(self, message: str) -> None: ...


Work = Callable[[Any, Report], Any]
OnResult = Callable[[int, Any], None]


class Executor(Protocol):
    """Runs `fn(item, report)` for every item; `on_result(i, result)` in the caller."""

    name: str

    def map(self, fn: Work, items: list[Any], progress: Report, on_result: OnResult) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs every item here, in order: the default, and what a laptop needs."""

    name = "local"

    def map(self, fn: Work, items: list[Any], progress: Report, on_result: OnResult) -> None:
        for i, item in enumerate(items):
            on_result(i, fn(item, progress))

    def close(self) -> None:
        pass


class RayExecutor:
    """Runs every item as a Ray task; results come back to the caller as they finish.

    Parameters
    ----------
    address : str, optional
        An existing cluster (`ray://host:10001` or `host:6379`); None starts a local Ray.
    num_gpus : float
        GPUs per task (1 when the job runs on CUDA, so each task gets a GPU of its own).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_gpus: float = 0.0) -> None:
        if address is None:
            # Read when Ray is imported: a single-machine Ray then uses the loopback address
            # for its node (Ray's own switch for laptops), so nothing listens beyond localhost.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            raise InputError(
                "--executor ray needs Ray: pip install -r requirements-ray.txt "
                "(or use --executor local)"
            ) from None
        if address not in (None, "auto", "local"):
            _check_reachable(address)  # Ray itself waits minutes before giving up
        self.ray, self.num_gpus, self.address = ray, num_gpus, address
        self.started = False

    def _start(self) -> None:
        """Start or join Ray on first use: a cached run never pays for it."""
        ray, address = self.ray, self.address
        if not ray.is_initialized():
            self.started = True
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
            package = str(Path(__file__).resolve().parents[1])  # the whole `scoring` package
            kw: dict[str, Any] = dict(
                runtime_env={
                    "py_modules": [package],
                    "env_vars": {"OMP_WAIT_POLICY": "PASSIVE"},
                },
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            if address is None:
                # Ray's switch for single-machine use (its env var is read at import, which
                # may have happened already): the node takes the loopback address.
                from ray._private import ray_constants

                ray_constants.ENABLE_RAY_CLUSTER = False
                kw["_node_ip_address"] = "127.0.0.1"
            try:
                ray.init(address=address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(f"could not start or join Ray at {address!r}: {err}") from err

    def map(self, fn: Work, items: list[Any], progress: Report, on_result: OnResult) -> None:
        self._start()
        ray = self.ray
        tally = _tally_actor(ray).remote()
        # A unit of work may ask for several cores (`fn.num_cpus`: an encoder's threads).
        cpus = min(getattr(fn, "num_cpus", 1), int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=max(1, cpus), num_gpus=self.num_gpus, max_retries=0)(_run_remote)
        fn_ref = ray.put(fn)
        pending = {task.remote(fn_ref, item, tally): i for i, item in enumerate(items)}
        reported = 0.0

        def forward() -> None:
            nonlocal reported
            done, message = ray.get(tally.read.remote())
            if message:
                progress.stage(message)
            if done > reported:
                progress.advance(done - reported)
                reported = done

        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                forward()
                for ref in ready:
                    on_result(pending.pop(ref), ray.get(ref))
            forward()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before any data loads, when nothing listens at a cluster's address."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            f"--ray-address must look like host:6379 or ray://host:10001, got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise InputError(
            f"cannot reach a Ray cluster at {address!r} ({err}); check --ray-address, or "
            "leave it out to start a local Ray"
        ) from None


class _RemoteReport:
    """A task's `Report`: forwards to the driver's tally actor without waiting."""

    def __init__(self, tally: Any) -> None:
        self.tally = tally

    def advance(self, amount: float = 1.0) -> None:
        self.tally.add.remote(amount)

    def stage(self, message: str) -> None:
        self.tally.say.remote(message)


def _run_remote(fn: Work, item: Any, tally: Any) -> Any:
    import ray

    result = fn(item, _RemoteReport(tally))
    # An actor runs one caller's calls in order: once this read returns, every report this
    # task sent is counted, so the caller's last read sees all of them.
    ray.get(tally.read.remote())
    return result


_TALLY = None


def _tally_actor(ray):
    """An actor summing the progress every task reports (created once per process)."""
    global _TALLY
    if _TALLY is None:

        class Tally:
            def __init__(self) -> None:
                self.done, self.message = 0.0, ""

            def add(self, amount: float) -> None:
                self.done += amount

            def say(self, message: str) -> None:
                self.message = message

            def read(self) -> tuple[float, str]:
                return self.done, self.message

        _TALLY = ray.remote(num_cpus=0)(Tally)
    return _TALLY


class _Ticks:
    """A `Report` that counts units of a side bar (`Progress.counter`'s tick)."""

    def __init__(self, tick: Callable[[int], None] | None) -> None:
        self.tick = tick

    def advance(self, amount: float = 1.0) -> None:
        if self.tick is not None and amount:
            self.tick(int(round(amount)))

    def stage(self, message: str) -> None:
        pass


def map_in_order(
    executor: Executor, fn: Work, items: list[Any], tick: Callable[[int], None] | None = None
) -> list[Any]:
    """`fn(item, report)` for every item through `executor`, results in the items' order.

    `tick(n)` hears of n more units done (what each task passes to `report.advance`).
    """
    results: list[Any] = [None] * len(items)

    def keep(i: int, result: Any) -> None:
        results[i] = result

    executor.map(fn, items, _Ticks(tick), keep)
    return results


def spreads(executor: Executor | None) -> bool:
    """Whether `executor` sends work elsewhere (Ray), so splitting it into tasks pays."""
    return executor is not None and executor.name != "local"


def make(name: str, *, address: str | None = None, cuda: bool = False):
    """The executor called `name`; `cuda` gives each Ray task one GPU."""
    if name not in EXECUTORS:
        raise InputError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if address and name != "ray":
        raise InputError("--ray-address only applies with --executor ray")
    if name == "local":
        return LocalExecutor()
    return RayExecutor(address, num_gpus=1.0 if cuda else 0.0)

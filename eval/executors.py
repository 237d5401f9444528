"""Where sweep work items run: in this process, in a local process pool, or on Ray.

All three take the same picklable function and argument tuples and yield
``(key, result)`` pairs as items finish (not in submission order), so the
caller can store each result the moment it exists. At most a few items per
worker are in flight at once, which keeps the memory of queued inputs bounded.

* :class:`SerialExecutor` — ``jobs=1``; simplest to debug.
* :class:`PoolExecutor` — ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (safe with torch and threads); each worker gets
  ``max(1, cores // jobs)`` torch threads.
* :class:`RayExecutor` — the same items as Ray tasks (``num_cpus=1`` each) on
  a local Ray instance or a cluster (``address``); Ray is an optional
  dependency (``pip install inrkit[ray]``) imported only here, when chosen.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from inrkit.errors import InputError

Task = tuple[str, tuple]  # (key, arguments)


def worker_threads(jobs: int) -> int:
    """torch threads per worker so that ``jobs`` workers share the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _fill(pending: dict, tasks: Iterator[Task], submit: Callable, window: int) -> None:
    """Submit tasks until ``window`` are in flight or none are left; ``pending``
    maps each submitted handle (future or Ray reference) to its task's key."""
    while len(pending) < window:
        try:
            key, args = next(tasks)
        except StopIteration:
            return
        pending[submit(*args)] = key


class SerialExecutor:
    """Run items one after another in this process."""

    jobs = 1

    def run(self, fn: Callable, tasks: Iterable[Task]) -> Iterator[tuple[str, object]]:
        for key, args in tasks:
            yield key, fn(*args)

    def close(self) -> None:
        pass


class PoolExecutor:
    """A local pool of ``jobs`` spawned worker processes."""

    def __init__(self, jobs: int):
        if jobs < 1:
            raise InputError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(worker_threads(jobs),),
        )

    def run(self, fn: Callable, tasks: Iterable[Task]) -> Iterator[tuple[str, object]]:
        tasks = iter(tasks)
        pending: dict = {}
        window = 2 * self.jobs

        def refill() -> None:
            _fill(pending, tasks, lambda *args: self._pool.submit(fn, *args), window)

        refill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                key = pending.pop(future)
                yield key, future.result()  # re-raises the worker's exception
            refill()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _ray_call(fn: Callable, threads: int, *args):
    torch.set_num_threads(threads)
    return fn(*args)


class RayExecutor:
    """Ray tasks on a local instance (``address=None``) or an existing cluster."""

    def __init__(self, jobs: int = 1, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise InputError(
                "--executor ray needs Ray, which is not installed: pip install inrkit[ray]"
            ) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options["num_cpus"] = max(1, jobs)
            ray.init(address=address, **options)
            self._started = True
        self.jobs = max(1, int(ray.cluster_resources().get("CPU", jobs)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_call)

    def run(self, fn: Callable, tasks: Iterable[Task]) -> Iterator[tuple[str, object]]:
        ray = self._ray
        tasks = iter(tasks)
        pending: dict = {}
        window = 2 * self.jobs

        def refill() -> None:
            _fill(pending, tasks, lambda *args: self._remote.remote(fn, 1, *args), window)

        refill()
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    key = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = getattr(exc, "cause", None)  # the task's own exception
                        raise (cause if isinstance(cause, Exception) else exc) from None
                    yield key, result
                refill()
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def check_executor(kind: str = "local", jobs: int = 1, address: str | None = None) -> None:
    """Refuse executor settings that :func:`make_executor` cannot honour, before any work."""
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if kind not in ("local", "ray"):
        raise InputError(f"--executor: expected 'local' or 'ray', got {kind!r}")
    if kind == "local" and address is not None:
        raise InputError("--address applies to --executor ray only")


def make_executor(kind: str = "local", jobs: int = 1, address: str | None = None):
    """An executor by name: ``local`` (serial for one job, else a process pool) or ``ray``."""
    check_executor(kind, jobs, address)
    if kind == "ray":
        return RayExecutor(jobs, address)
    return SerialExecutor() if jobs == 1 else PoolExecutor(jobs)

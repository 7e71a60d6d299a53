"""``--engine ray``: fmtkit's units of work as Ray tasks, on a local Ray instance or an existing cluster.

The tasks are the ones the local worker processes run (a file, or a byte range
of a JSON Lines file, with the same record checker; for ``stats``, a batch of
samples, streamed a few per CPU at a time); their results come back
in order and are joined by the same code, so the report is the one a local
run gives. Every task's worker runs with ``PYTHONHASHSEED=0``: duplicate
records (FMT803) are found by comparing ``hash()`` values made in different
workers, which must agree. Workers import the fmtkit this process runs (its
folder is put on their ``PYTHONPATH``); on a cluster of other machines, install
the same fmtkit version on every node, and give data paths every node can read
(a shared folder, or URLs). Ray is imported only when an engine starts
(``--engine ray``), so this module loads without it. tests/test_ray.py runs it
on a local instance of 2 CPUs.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import fmtkit
from fmtkit.errors import EXIT_USAGE, FmtkitError
from fmtkit.workers import WORKER_DIED, available_cores

__all__ = ["RayEngine"]

_ready: str | None = None  # in a worker: the map whose initializer ran there last


def _run(key: str, init: tuple | None, fn: Callable[[Any], Any], task: Any) -> Any:
    global _ready
    if init is not None and _ready != key:
        init[0](*init[1])
        _ready = key
    return fn(task)


def _reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast (exit 2) when a cluster address given as HOST:PORT or ray://HOST:PORT does not answer: Ray itself retries for minutes."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        why = "not HOST:PORT" if isinstance(exc, ValueError) else (exc.strerror or str(exc))
        raise FmtkitError(f"cannot start or reach the Ray cluster at {address}: {why} (is a cluster running there? start one with: ray start --head)",
                          EXIT_USAGE) from None  # fmt: skip


def _results(refs: list[Any]) -> list[Any]:
    """The results of started tasks, in order; a task's error is raised as it was raised there, a lost worker is exit 2."""
    import ray

    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        raise (cause if isinstance(cause, BaseException) else FmtkitError(str(exc).splitlines()[0], EXIT_USAGE)) from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError):
        raise FmtkitError(WORKER_DIED.replace("worker process", "Ray worker"), EXIT_USAGE) from None
    except BaseException:
        _cancel(refs)
        raise


def _cancel(refs: Iterable[Any]) -> None:
    import ray

    for ref in refs:
        ray.cancel(ref, force=True)


class RayEngine:
    """Runs units of work as Ray tasks; ``address`` None starts a local Ray instance with ``jobs`` CPUs."""

    def __init__(self, jobs: int | None = None, address: str | None = None):
        import ray

        self.owned = False
        if not ray.is_initialized():
            _reachable(address)
            try:
                ray.init(address=address, num_cpus=None if address else (jobs or available_cores()), include_dashboard=False,
                         log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                hint = " (is a cluster running there? start one with: ray start --head)" if address else ""
                raise FmtkitError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}{hint}", EXIT_USAGE) from None
            self.owned = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, min(jobs, cpus) if jobs else cpus)
        here = str(Path(fmtkit.__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        self.task = ray.remote(_run).options(runtime_env={"env_vars": {"PYTHONHASHSEED": "0", "PYTHONPATH": path}})

    def submit(self, fn: Callable[[Any], Any], tasks: Sequence[Any], initializer: Callable[..., Any] | None = None,
               initargs: tuple = ()) -> Callable[[], list[Any]]:  # fmt: skip
        """Start every task now; the call returned waits for their results, in order."""
        start = self._starter(fn, initializer, initargs)
        refs = [start(t) for t in tasks]
        return lambda: _results(refs)

    def stream(self, fn: Callable[[Any], Any], tasks: Iterable[Any], initializer: Callable[..., Any] | None = None,
               initargs: tuple = ()) -> Iterator[Any]:  # fmt: skip
        """``fn(t) for t in tasks``, lazily and in order: at most two tasks per slot in flight, so any stream runs in bounded memory."""
        start, pending = self._starter(fn, initializer, initargs), deque()
        try:
            for task in tasks:
                pending.append(start(task))
                if len(pending) >= 2 * self.slots:
                    yield _results([pending.popleft()])[0]
            while pending:
                yield _results([pending.popleft()])[0]
        finally:  # stopped early (an error, Ctrl-C, the consumer gone): what is still running is cancelled
            _cancel(pending)

    def _starter(self, fn: Callable[[Any], Any], initializer: Callable[..., Any] | None, initargs: tuple) -> Callable[[Any], Any]:
        """Starts one task of ``fn``: ``initializer(*initargs)`` runs once per worker for all the tasks it starts."""
        import ray

        key = uuid.uuid4().hex
        init = ray.put((initializer, initargs)) if initializer is not None else None
        return lambda task: self.task.remote(key, init, fn, task)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int, initializer: Callable[..., Any] | None = None,
            initargs: tuple = ()) -> list[Any]:  # fmt: skip
        """``[fn(t) for t in tasks]`` as Ray tasks (the cluster decides how many run at once)."""
        return self.submit(fn, tasks, initializer, initargs)()

    def close(self) -> None:
        import ray

        if self.owned:
            ray.shutdown()
            self.owned = False

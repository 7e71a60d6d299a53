"""The one worker pool for everything fmtkit runs in parallel (``convert``, ``validate`` and ``stats`` ``--jobs``).

:func:`run_in_workers` maps a function over tasks in worker processes, in
order; :func:`stream_in_workers` does the same lazily, over a stream of tasks. It never starts more workers than there are tasks or cores this process
may run on (:func:`available_cores`), whatever ``--jobs`` asks. Workers are
forked where the system can (they share the parent's state, hash seed
included). A worker that dies (killed, out of memory) ends the run at once
with a clear message and exit code 2, never a hang or a traceback; an
interrupted run (Ctrl-C, SIGTERM) stops its workers. Under another engine
(``--engine ray``, :func:`fmtkit.engines.using`) the same map runs there instead.

>>> run_in_workers(abs, [-1, -2, 3], jobs=2)
[1, 2, 3]
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from fmtkit.errors import EXIT_USAGE, FmtkitError

__all__ = ["WORKER_DIED", "available_cores", "run_in_workers", "stream_in_workers"]

T = TypeVar("T")
R = TypeVar("R")

WORKER_DIED = (
    "a worker process ended unexpectedly (killed, or out of memory?); the run was stopped and nothing was written. "
    "Run again, with fewer --jobs if memory is short"
)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_in_workers(fn: Callable[[T], R], tasks: Sequence[T], jobs: int, initializer: Callable[..., Any] | None = None,
                   initargs: tuple = (), meanwhile: Callable[[], Any] | None = None) -> list[R]:  # fmt: skip
    """``[fn(t) for t in tasks]``, over at most ``jobs`` worker processes (capped at the tasks and cores).

    ``meanwhile``: what this process does while the workers run (e.g. import what
    joining their results needs), once every worker has started.
    """
    from fmtkit.engines import current

    if (engine := current()) is not None:
        if meanwhile is not None:
            meanwhile()
        return engine.map(fn, tasks, jobs, initializer, initargs)
    with _worker_pool(max(1, min(jobs, len(tasks), available_cores())), initializer, initargs) as pool:
        futures = [pool.submit(fn, task) for task in tasks]  # forked workers all start at the first submit
        if meanwhile is not None:
            meanwhile()
        return [future.result() for future in futures]


def stream_in_workers(fn: Callable[[T], R], tasks: Iterable[T], jobs: int, initializer: Callable[..., Any] | None = None,
                      initargs: tuple = ()) -> Iterator[R]:  # fmt: skip
    """``fn(t) for t in tasks``, lazily and in order, over at most ``jobs`` workers (capped at the cores).

    Tasks are taken from the iterable as results are consumed (at most two per
    worker in flight), so a stream of any length runs in bounded memory. With one
    job everything runs in this process (``initializer`` too).

    >>> list(stream_in_workers(abs, iter([-1, -2, 3]), jobs=2))
    [1, 2, 3]
    """
    from collections import deque

    from fmtkit.engines import current

    if (engine := current()) is not None:
        yield from engine.stream(fn, tasks, initializer, initargs)
        return
    workers = max(1, min(jobs, available_cores()))
    if workers == 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    with _worker_pool(workers, initializer, initargs) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.submit(fn, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextlib.contextmanager
def _worker_pool(workers: int, initializer: Callable[..., Any] | None, initargs: tuple) -> Iterator[Any]:
    """A process pool (forked where the system can) that stops at once, with :data:`WORKER_DIED`, when a worker dies."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=(initializer, initargs))
    try:
        yield pool
    except BrokenProcessPool:
        _stop(pool)
        raise FmtkitError(WORKER_DIED, EXIT_USAGE) from None
    except BaseException:
        _stop(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    # The parent handles Ctrl-C and SIGTERM (and stops the workers); a worker just ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


def _stop(pool: Any) -> None:
    """Stop every worker now: a broken or interrupted run must not wait for the others to finish.

    The pool's pipes are closed by then, so it is taken out of the interpreter's exit hook, which would
    otherwise wake its manager thread through a closed pipe and print a traceback.
    """
    from concurrent.futures import process

    process._threads_wakeups.pop(getattr(pool, "_executor_manager_thread", None), None)
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)

"""Where fmtkit's units of work run: this machine's worker processes, or a Ray cluster (``--engine ray``).

A unit of work is what ``--jobs`` splits a check (and a conversion) into: one
data file, or a byte range of a JSON Lines file or of an indented JSON array
(:func:`fmtkit.record_loop.plan_units`). An engine runs a
list of units and hands their results back in order; the caller joins them
with the same code whatever ran them, so the report does not depend on the
engine.

- ``local`` (default): worker processes on this machine, :func:`fmtkit.workers.run_in_workers`.
- ``ray``: Ray tasks on a local Ray instance or an existing cluster
  (:class:`fmtkit.engines.ray_engine.RayEngine`; needs ``pip install 'fmtkit[ray]'``).

:func:`using` makes an engine the one that every parallel step of a run goes
through (``run_in_workers`` hands its map to it, ``stream_in_workers`` its stream):

>>> current() is None  # the local worker processes
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from fmtkit.errors import EXIT_USAGE, FmtkitError

__all__ = ["ENGINES", "Engine", "check_ahead", "current", "start", "using"]

ENGINES = ("local", "ray")
RAY_MISSING = "--engine ray needs Ray, an optional extra: pip install 'fmtkit[ray]' (or pip install ray), then run again"


class Engine(Protocol):
    """What runs units of work somewhere other than this machine's worker processes."""

    slots: int  # units it runs at once: the parts a big file is split into

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int, initializer: Callable[..., Any] | None = None,
            initargs: tuple = ()) -> list[Any]:  # fmt: skip
        """``[fn(t) for t in tasks]``, in order, ``initializer(*initargs)`` run first where each runs."""

    def submit(self, fn: Callable[[Any], Any], tasks: Sequence[Any], initializer: Callable[..., Any] | None = None,
               initargs: tuple = ()) -> Callable[[], list[Any]]:  # fmt: skip
        """Start ``fn`` over ``tasks`` now; the returned call waits for their results, in order."""

    def stream(self, fn: Callable[[Any], Any], tasks: Iterable[Any], initializer: Callable[..., Any] | None = None,
               initargs: tuple = ()) -> Iterator[Any]:  # fmt: skip
        """``fn(t) for t in tasks``, lazily and in order, with a bounded number of tasks in flight."""

    def close(self) -> None:
        """Let go of what :func:`start` started."""


_current: ContextVar[Engine | None] = ContextVar("fmtkit_engine", default=None)


def current() -> Engine | None:
    """The engine of this run; None: the local worker processes."""
    return _current.get()


@contextlib.contextmanager
def using(engine: Engine | None) -> Iterator[Engine | None]:
    """Run the block on ``engine`` (None: locally), then close it."""
    token = _current.set(engine)
    try:
        yield engine
    finally:
        _current.reset(token)
        if engine is not None:
            engine.close()


def start(name: str | None, jobs: int | None = None, address: str | None = None) -> Engine | None:
    """The engine ``--engine NAME`` asks for, started: None for ``local``.

    ``jobs``: the CPUs of a local Ray instance; ``address``: an existing Ray
    cluster (``auto``, ``ray://host:port`` or a ``host:port`` of its head).

    >>> start("local") is None
    True
    >>> start("local", address="auto")
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: --address names a Ray cluster: it goes with --engine ray
    """
    if name in (None, "local"):
        if address:
            raise FmtkitError("--address names a Ray cluster: it goes with --engine ray", EXIT_USAGE)
        return None
    if name != "ray":
        raise FmtkitError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}", EXIT_USAGE)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise FmtkitError(RAY_MISSING, EXIT_USAGE) from None
    from fmtkit.engines.ray_engine import RayEngine

    return RayEngine(jobs=jobs, address=address)


def check_ahead(engine: Engine, path: Path, rel: str, view: Any, form: str) -> Callable[[], tuple[list, Any]]:
    """Start checking one file on ``engine`` now, in the units ``--jobs`` uses; the call returned waits and joins them.

    Started for every file of an entry before the first is joined, the files run
    at once; joined in file order, they give :func:`fmtkit.record_loop.check_path`'s result.
    """
    from fmtkit.record_loop import Unit, join_units, plan_units, run_unit, unit_tasks

    path = path.resolve()  # where the workers run, the working folder may differ
    check = (rel, view, form, None)
    units = plan_units(path, engine.slots)
    started = engine.submit(run_unit, unit_tasks(units, check, None))

    def joined() -> tuple[list, Any]:
        results = started()
        if None not in results:
            return join_units(path, units, results, None)
        whole = [Unit(path)]  # an array range that only the whole-file reader may judge: the file is checked whole
        return join_units(path, whole, engine.submit(run_unit, unit_tasks(whole, check, None))(), None)

    return joined

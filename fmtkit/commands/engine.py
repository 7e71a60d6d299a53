"""``--engine`` and ``--address``: where a command's units of work run (:mod:`fmtkit.engines`), the same in every command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from fmtkit.engines import ENGINES


def engine_options(fn):
    """The ``--engine`` and ``--address`` options of a command that has ``--jobs``."""
    fn = click.option("--address", metavar="ADDRESS",
                      help="With --engine ray: an existing Ray cluster ('auto', 'ray://HOST:10001' or its head's HOST:6379). "
                           "Without it a local Ray instance starts with --jobs CPUs.")(fn)  # fmt: skip
    return click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                        help="Where the work runs: worker processes here (--jobs), or Ray tasks (needs pip install 'fmtkit[ray]').")(fn)  # fmt: skip


@contextlib.contextmanager
def engine_running(engine: str, jobs: int | None, address: str | None) -> Iterator[int | None]:
    """The block run on the engine the options ask for (started here, stopped after); yields the units it runs at once.

    ``jobs`` None: every core (a local Ray instance), or the cluster's CPUs; yields None for the local engine.
    """
    from fmtkit.engines import start, using

    with using(start(engine, jobs, address)) as started:
        yield started.slots if started is not None else None

"""The progress bar of ``fmtkit stats``: records, rate and, from the position in the data files, percent and ETA.

Shown on stderr only when stderr is a terminal; piped or redirected output
never holds it. The position is where the reader is in the file it has open
(Linux: ``/proc/self/fd``); elsewhere the bar shows records and rate only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

REFRESH_S = 0.25


def file_position(path: Path) -> int | None:
    """Where this process reads ``path`` (the offset of an open descriptor on it; a remote file's own position), or None."""
    if hasattr(path, "position"):  # a fmtkit.remote.RemoteFile, read from its store
        return path.position
    fd_dir = "/proc/self/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    target = str(path.resolve())
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}") == target:
                return os.lseek(int(fd), 0, os.SEEK_CUR)
        except OSError:
            continue
    return None


class ProgressBar:
    """``with ProgressBar(name, files, enabled) as bar: ... bar(records)`` (a :data:`~fmtkit.stats.summary.Progress`)."""

    def __init__(self, name: str, files: list[Path], enabled: bool) -> None:
        self.files = files
        self.enabled = enabled
        self.sizes = [f.stat().st_size if f.is_file() else 0 for f in files]
        self.progress: Any = None
        self.task: Any = None
        self.last = 0.0
        self.name = name

    def __enter__(self) -> ProgressBar:
        if not self.enabled:
            return self
        from rich.markup import escape

        from fmtkit.report.terminal import console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[records]:,} records · {task.fields[rate]:,.0f}/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console(stderr=True), transient=True,
        )  # fmt: skip
        self.progress.start()
        self.task = self.progress.add_task(escape(self.name), total=sum(self.sizes) or None, records=0, rate=0.0)
        self.start = time.monotonic()
        return self

    def _position(self) -> int | None:
        done = 0
        for path, size in zip(self.files, self.sizes):
            pos = file_position(path)
            if pos is not None:
                return done + min(pos, size)
            done += size
        return None

    def __call__(self, records: int) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if now - self.last < REFRESH_S:
            return
        self.last = now
        rate = records / max(now - self.start, 1e-9)
        pos = self._position()
        self.progress.update(self.task, records=records, rate=rate, **({"completed": pos} if pos is not None else {}))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

"""Which entries of a source ``fmtkit stats`` / ``fmtkit render`` look at, read through :func:`fmtkit.read`.

A dataset folder (with ``dataset_info.json``) gives its local entries (or the
named ones); a data file is one unnamed entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fmtkit.errors import FmtkitError
from fmtkit.sample import Sample

if TYPE_CHECKING:
    from fmtkit.remote import Stage


def entry_names(source: str | Path, wanted: list[str] | None = None) -> list[str | None]:
    """The entries to read: ``[None]`` for a data file, else the local entries of the folder (in file order).

    Named entries (``wanted``) must exist (else FMT115's message, as
    :func:`fmtkit.entries.load_entry` gives it); whether each can be read is :func:`read_entry`'s to say.
    """
    from fmtkit.entries import load_info, local_entries
    from fmtkit.rules.info import undefined_message

    path = Path(source)
    if not path.exists():
        raise FmtkitError(f"no such file or folder: {source}")
    if not path.is_dir():
        if wanted:
            raise FmtkitError("--entry needs a dataset folder with dataset_info.json, not a data file")
        return [None]
    info = load_info(path)
    if not wanted:
        return list(local_entries(info))
    for name in wanted:
        if name not in info:
            raise FmtkitError(f"{path / 'dataset_info.json'}: {undefined_message(name, info)}")
    return list(wanted)


class Skipped:
    """Records left out because they cannot be read: how many, and the first few messages (bounded)."""

    def __init__(self, keep: int = 3) -> None:
        self.records = 0
        self.keep = keep
        self.first: list[str] = []

    def __call__(self, file: Path, index: int, line: int | None, code: str, message: str) -> None:
        self.records += 1
        if len(self.first) < self.keep:
            self.first.append(f"{file}{f':{line}' if line else ''}: record {index}: {message} [{code}]")


def stream_entry(source: str | Path, entry: str | None, skipped: Skipped, fetched: Stage | None = None) -> Iterator[Sample]:
    """The readable samples of one entry, streamed; records that cannot be read go to ``skipped``
    (``fmtkit validate`` explains them). ``fetched``: the :class:`~fmtkit.remote.Stage` a URL source is laid out in (its files read from the store)."""
    from fmtkit.sources import read, resolve

    src = resolve(str(source), entry)
    src.files = _readable(src.files, fetched)
    return read(src, errors="skip", on_skip=skipped)


def entry_files(source: str | Path, entry: str | None, fetched: Stage | None = None) -> list[Path]:
    """The data files of one entry (what a progress bar measures its position in); with ``fetched``, those read from the store as such."""
    from fmtkit.sources import resolve

    return _readable(resolve(str(source), entry).files, fetched)


def _readable(files: list[Path], fetched: Stage | None) -> list[Path]:
    return [fetched.readable(p) for p in files] if fetched is not None else files


def read_entry(source: str | Path, entry: str | None) -> tuple[list[Sample], list[str]]:
    """Every readable sample of one entry, and the first messages of records skipped (``fmtkit validate`` explains them)."""
    skipped = Skipped(keep=1 << 62)
    return list(stream_entry(source, entry, skipped)), skipped.first

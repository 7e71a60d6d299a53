"""Which entries of a source ``fmtkit stats`` / ``fmtkit render`` look at, read through :func:`fmtkit.read`.

A dataset folder (with ``dataset_info.json``) gives its local entries (or the
named ones); a data file is one unnamed entry.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from fmtkit.dataset_info import INFO_FILE, DatasetEntry
from fmtkit.errors import FmtkitError
from fmtkit.sample import Sample


def entry_names(source: str | Path, wanted: list[str] | None = None) -> list[str | None]:
    """The entries to read: ``[None]`` for a data file, else the local entries of the folder (in file order)."""
    path = Path(source)
    if not path.exists():
        raise FmtkitError(f"no such file or folder: {source}")
    info = path / INFO_FILE if path.is_dir() else None
    if info is None:
        if wanted:
            raise FmtkitError(f"--entry needs a dataset folder with {INFO_FILE}, not a data file")
        return [None]
    if not info.is_file():
        raise FmtkitError(f"{source}: no {INFO_FILE} here (is this the dataset folder?)")
    try:
        raw = orjson.loads(info.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise FmtkitError(f"{info}: not valid JSON ({exc}); run fmtkit validate") from exc
    local = [n for n, e in raw.items() if isinstance(e, dict) and DatasetEntry.from_dict(n, e, path).is_local]
    if not wanted:
        return list(local)
    unknown = [n for n in wanted if n not in raw]
    if unknown:
        raise FmtkitError(f"no entry {', '.join(map(repr, unknown))} in {info}; entries: {', '.join(raw)}")
    remote = [n for n in wanted if n not in local]
    if remote:
        raise FmtkitError(f"entry {', '.join(map(repr, remote))} is not a local file; download it first")
    return list(wanted)


def read_entry(source: str | Path, entry: str | None) -> tuple[list[Sample], list[str]]:
    """Every readable sample of one entry, and a message per record skipped (``fmtkit validate`` explains them)."""
    from fmtkit.conversion import read

    skipped: list[str] = []

    def on_skip(file: Path, index: int, line: int | None, code: str, message: str) -> None:
        skipped.append(f"{file}{f':{line}' if line else ''}: record {index}: {message} [{code}]")

    return list(read(str(source), entry=entry, errors="skip", on_skip=on_skip)), skipped

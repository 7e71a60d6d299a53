"""Loading data files as LLaMA-Factory does, keeping every record's location.

Each reader yields :class:`Record` tuples ``(index, line, value)``: the 0-based
record index, the 1-based line where the record starts (None for columnar
files) and the decoded value. Problems that stop a record from being read
(invalid JSON, bad UTF-8, ...) go to the ``problem`` callback with a rule code;
the reader then goes on with the next record where it can.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
>>> _ = p.write_text('{"a": 1}\\n\\n{"a": 2}\\n')
>>> [(r.index, r.line, r.value) for r in iter_records(p)]
[(0, 1, {'a': 1}), (1, 3, {'a': 2})]
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from fmtkit.dataset_info import DATA_EXTENSIONS
from fmtkit.errors import FmtkitError


class Record(NamedTuple):
    """One record: 0-based ``index``, 1-based ``line`` (None in columnar files), decoded ``value``,
    and for JSON Lines the ``raw`` bytes of its line (duplicate detection hashes them)."""

    index: int
    line: int | None
    value: Any
    raw: bytes | None = None


class LoadProblem(NamedTuple):
    """A problem met while reading: ``code`` names the rule (see ``fmtkit rules``)."""

    code: str
    message: str
    line: int | None = None
    record: int | None = None


ProblemSink = Callable[[LoadProblem], None]


def _ignore(_: LoadProblem) -> None:
    return None


def iter_records(path: Path | str, problem: ProblemSink = _ignore) -> Iterator[Record]:
    """Yield the records of one data file, choosing the reader by extension.

    ``.json`` holding a top-level array is read incrementally; any other
    ``.json`` and every ``.jsonl`` is read as JSON Lines, as ``datasets`` does.
    ``path`` may also be a file in a store (:class:`fmtkit.remote.RemoteFile`), streamed.
    """
    path = Path(path) if isinstance(path, str) else path
    kind = DATA_EXTENSIONS.get(path.suffix.lower())
    if path.exists() and not path.is_file():
        # a folder, FIFO or device: opening a FIFO would block until a writer comes
        raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path)) if path.is_dir() else OSError(errno.EINVAL, "not a regular file", str(path))
    if kind == "json":
        from fmtkit.loading.json_file import iter_json

        return iter_json(path, problem)
    if kind == "csv":
        from fmtkit.loading.csv_file import iter_csv

        return iter_csv(path, problem)
    if kind in ("parquet", "arrow"):
        from fmtkit.loading.columnar import iter_columnar

        return iter_columnar(path, kind, problem)
    if kind == "text":
        from fmtkit.loading.text_file import iter_text

        return iter_text(path, problem)
    problem(LoadProblem("FMT206", f"cannot read {path.name}: fmtkit reads {', '.join(DATA_EXTENSIONS)} files"))  # in a folder entry
    return iter(())


def check_data_file(path: Path, readable: bool = True) -> None:
    """Exit 2 (a clear message) unless ``path`` is a regular file with a data extension fmtkit reads (and, ``readable``, can open).

    A FIFO or device (``/dev/zero``) would block or never end; an unknown
    extension has no reader.
    """
    if not path.is_file():
        raise FmtkitError(f"{path}: not a regular file (a FIFO, device or socket?); give a data file or a dataset folder")
    if path.suffix.lower() not in DATA_EXTENSIONS:
        raise FmtkitError(f"{path}: fmtkit reads {', '.join(DATA_EXTENSIONS)} files, not {path.suffix or 'a file without extension'}")
    if not readable:
        return
    try:
        path.open("rb").close()
    except OSError as exc:
        raise FmtkitError(f"cannot read {path}: {exc.strerror or exc}") from None


def head_records(path: Path | str, n: int = 20) -> list[Any]:
    """The first ``n`` decoded records of a file (to detect its form and columns); [] when unreadable."""
    out: list[Any] = []
    try:
        for record in iter_records(path):
            out.append(record.value)
            if len(out) >= n:
                break
    except (OSError, ValueError):
        pass
    return out


def data_files(path: Path | None) -> list[Path]:
    """The files LLaMA-Factory reads for a ``file_name``: the file itself, or a folder's direct children.

    Hidden files are included and folders are not entered, as in LLaMA-Factory.
    """
    if path is None:  # an entry without a usable file_name (reported by the entry rules)
        return []
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file())
    return [path]

"""Reading any dataset into Samples: a data file (form detected, or forced) or one entry of a dataset folder.

``read`` yields the canonical :class:`~fmtkit.sample.Sample` of every record;
``resolve`` finds what to read (files, entry, form, reader). ``convert``,
``stats``, ``render`` and ``train`` all read their sources through here::

    import fmtkit
    for sample in fmtkit.read("dataset/", entry="alpaca_demo"):
        print(sample.kind, sample.system, [t.role for t in sample.turns])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmtkit.dataset_info import INFO_FILE, DatasetEntry
from fmtkit.detect import FORMS as FORM_NAMES
from fmtkit.detect import detect_form, detect_v1
from fmtkit.entries import load_entry, load_info, local_entries
from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.forms import BARE_ENTRIES, FORMS, Reader, ReadError, reader_for
from fmtkit.loading import LoadProblem, check_data_file, data_files, head_records, iter_records
from fmtkit.sample import Sample


# Load problems that leave the record readable (a byte order mark).
WARNING_PROBLEMS = frozenset({"FMT204"})

__all__ = ["Source", "resolve", "iter_samples", "read"]


@dataclass(slots=True)
class Source:
    """What to read: the data files of one entry (or one bare file), its entry, form and reader.

    ``base_dir`` is where relative media paths resolve (LLaMA-Factory's dataset dir).
    """

    files: list[Path]
    entry: DatasetEntry | None
    form: str
    reader: Reader
    base_dir: Path
    info_dir: Path | None = None  # the dataset folder, when read through dataset_info.json

    @property
    def name(self) -> str:
        if self.entry is not None and not self.entry.name.startswith("<"):
            return self.entry.name
        return self.files[0].stem if self.files else "data"


def _pick_entry(folder: Path, name: str | None) -> DatasetEntry:
    """The entry to read (``name``, or the folder's one local entry), through :func:`fmtkit.entries.load_entry`."""
    info = load_info(folder)
    if name is None:
        local = local_entries(info)
        if len(local) != 1:
            names = ", ".join(local) or "none"
            raise FmtkitError(f"{folder / INFO_FILE}: choose an entry with --entry NAME (local entries: {names})")
        name = local[0]
    return load_entry(folder, name, info)


def resolve(source: str | Path, entry: str | None = None, form: str | None = None) -> Source:
    """Find the files, entry, form and reader for ``read`` and ``convert``.

    ``source`` is a data file (form detected, or ``form``), a dataset folder with
    ``dataset_info.json`` (``entry`` names the entry; optional when it has one
    local entry), or a data file with ``entry`` naming its entry in the
    ``dataset_info.json`` beside it.
    """
    path = Path(source)
    if form is not None and form not in FORMS:
        raise FmtkitError(f"unknown form {form!r}; forms: {', '.join(FORM_NAMES)}")
    if not path.exists():
        raise FmtkitError(f"{path}: no such file or folder")
    if path.is_file() and path.name == INFO_FILE:
        path = path.parent
    if path.is_dir() or entry is not None:
        folder = path if path.is_dir() else path.parent
        dentry = _pick_entry(folder, entry)
        target = dentry.data_path()
        assert target is not None  # load_entry checked it exists
        files = data_files(target)
        if not files:
            raise FmtkitError(f"entry {dentry.name!r}: folder {target} holds no data files")
        name = form or dentry.form
        return Source(files, dentry, name, reader_for(dentry, form), folder, folder)
    check_data_file(path)
    head: list[Any] = head_records(path) if form is None or form in BARE_ENTRIES else []
    if form is None:
        form = detect_form(head)
        if form is None and detect_v1(head):
            from fmtkit.rules.files import v1_message

            raise FmtkitError(f"{path}: {v1_message(detect_v1(head))}, and fmtkit convert does not read it either (FMT208)")
        if form is None:
            raise FmtkitError(f"{path}: cannot tell the form of this file; pass --from FORM ({', '.join(FORM_NAMES)})")
    dentry = DatasetEntry.for_file(form, head, path.parent, path.name) if form in BARE_ENTRIES else None
    reader = FORMS[form].read
    return Source([path], dentry, form, reader, path.parent)


def iter_samples(
    src: Source,
    on_problem: Callable[[int, LoadProblem], None] | None = None,
) -> Iterator[tuple[int, int, int | None, Any, Sample | ReadError]]:
    """(file number, record index, line, record, Sample or the ReadError) for every record of a source."""
    reader, entry = src.reader, src.entry
    for fno, path in enumerate(src.files):
        sink = (lambda p, _f=fno: on_problem(_f, p)) if on_problem else (lambda p: None)
        for index, line, value, _ in iter_records(path, sink):
            try:
                yield fno, index, line, value, reader(value, entry)
            except ReadError as exc:
                yield fno, index, line, value, exc


def read(
    source: str | Path | Source,
    entry: str | None = None,
    form: str | None = None,
    *,
    errors: str = "raise",
    on_skip: Callable[[Path, int, int | None, str, str], None] | None = None,
) -> Iterator[Sample]:
    """The Samples of a data file or of one entry of a dataset folder, streamed.

    ``errors="raise"`` (default) stops at the first record that cannot be read
    with a :class:`~fmtkit.errors.FmtkitError` naming file, line and reason;
    ``errors="skip"`` skips it and calls ``on_skip(file, index, line, code, message)``.
    Media paths are as written: relative ones resolve against the dataset folder.
    ``source`` may also be a :class:`Source` that :func:`resolve` gave (``stats
    --remote`` puts the store's streams in place of its files).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_text('{"instruction": "Hi", "output": "Hello"}\\n')
    >>> [(t.role, t.content) for s in read(p) for t in s.turns]
    [('user', 'Hi'), ('assistant', 'Hello')]
    """
    if errors not in ("raise", "skip"):
        raise ValueError("errors must be 'raise' or 'skip'")
    src = source if isinstance(source, Source) else resolve(source, entry, form)

    def skip(fno: int, index: int, line: int | None, code: str, message: str) -> None:
        where = f"{src.files[fno]}:{line}" if line else str(src.files[fno])
        if errors == "raise":
            raise FmtkitError(f"{where}: record {index}: {message} [{code}]", exit_code=EXIT_FINDINGS)
        if on_skip is not None:
            on_skip(src.files[fno], index, line, code, message)

    def problem(fno: int, p: LoadProblem) -> None:
        if p.code in WARNING_PROBLEMS:
            return
        skip(fno, p.record if p.record is not None else -1, p.line, p.code, p.message)

    for fno, index, line, _value, result in iter_samples(src, problem):
        if isinstance(result, ReadError):
            skip(fno, index, line, result.code, result.message)
        else:
            yield result

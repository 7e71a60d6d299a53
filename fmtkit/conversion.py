"""Reading any dataset into Samples, and converting it to another form.

``read`` yields the canonical :class:`~fmtkit.sample.Sample` of every record of
a data file (form detected, or forced) or of one entry of a dataset folder::

    import fmtkit
    for sample in fmtkit.read("dataset/", entry="alpaca_demo"):
        print(sample.kind, sample.system, [t.role for t in sample.turns])

``convert`` reads, then writes each sample in the target form, skipping (and
reporting) every record the target cannot express, and writes the output
atomically::

    report = fmtkit.convert("data/chat.jsonl", to="openai", output="data/chat.openai.jsonl")
    print(report.written, report.skipped)
"""

from __future__ import annotations

import contextlib
import copy
import json
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtkit.dataset_info import INFO_FILE, DatasetEntry
from fmtkit.detect import FORMS as FORM_NAMES
from fmtkit.detect import detect_form
from fmtkit.entries import load_entry, load_info, local_entries
from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.forms import BARE_ENTRIES, FORMS, PARTS_HINT, Reader, ReadError, reader_for
from fmtkit.loading import LoadProblem, Record, check_data_file, data_files, head_records, iter_records
from fmtkit.loading.json_file import decode_line, encode_line, is_json_lines, iter_line_range, line_ranges
from fmtkit.rules import RULES
from fmtkit.sample import Sample

if TYPE_CHECKING:
    from fmtkit.record_loop import RecordChecker

# Load problems that leave the record readable (a byte order mark).
WARNING_PROBLEMS = frozenset({"FMT204"})
# Rules of `fmtkit validate` whose errors the readers repair: FMT405 (content not a
# string) for records whose content the reader read from OpenAI's lists of typed parts.
READ_REPAIRS = frozenset({"FMT405"})

__all__ = ["read", "convert", "Source", "resolve", "ConvertReport"]


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
    source: str | Path,
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

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_text('{"instruction": "Hi", "output": "Hello"}\\n')
    >>> [(t.role, t.content) for s in read(p) for t in s.turns]
    [('user', 'Hi'), ('assistant', 'Hello')]
    """
    if errors not in ("raise", "skip"):
        raise ValueError("errors must be 'raise' or 'skip'")
    src = resolve(source, entry, form)

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


# ---- converting ------------------------------------------------------------

OUTPUT_TYPES = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
SHOW_LIMIT = 50
EXAMPLES_PER_CODE = 3
HEAD_RECORDS = 1000  # records converted up front to fix the output's columns
MIN_SHARD_BYTES = 4 << 20


@dataclass(slots=True)
class Options:
    """What to do with each sample: the picklable part of a conversion, shared with worker processes."""

    to: str
    strict: bool = False
    pairs_to_kto: bool = False
    extract_prompt: bool = False
    conversational: bool = True
    rebase: tuple[str, str] | None = None  # (from dir, to dir) for relative media paths
    for_llamafactory: bool = False  # --register: OpenAI tool call arguments as objects (FMT705)
    show: int = 0


@dataclass(slots=True)
class Tally:
    """Counts from converting some records (one shard, or all); shards add up in order."""

    read: int = 0
    written: int = 0
    lines: int = 0  # lines consumed (JSONL byte ranges), to place later shards' line numbers
    indices: int = 0  # record indices consumed (JSONL byte ranges), to place later shards' records
    skipped: int = 0
    skipped_by: dict[str, int] = field(default_factory=dict)  # "unreadable:CODE", "not-expressible:CODE"
    lost: dict[str, int] = field(default_factory=dict)  # loss code -> records that have it
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    shown: list[dict[str, Any]] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)  # keys outside the fixed columns (the output needs filling)
    rows: array = field(default_factory=lambda: array("q"))  # the record key of each row written
    first_index: int = 0  # set when shards are merged: the file's record index of this shard's first record
    parts: set[int] = field(default_factory=set)  # record keys whose content was read from lists of typed parts
    tool_turns: bool = False  # a row with a tool call or a tool result was written (registration needs to know)

    def example(self, code: str, fno: int, index: int, line: int | None, message: str) -> None:
        bucket = self.examples.setdefault(code, [])
        if len(bucket) < EXAMPLES_PER_CODE:
            bucket.append({"file": fno, "record": index, "line": line, "message": message})

    def skip(self, reason: str, fno: int, index: int, line: int | None, message: str) -> None:
        self.skipped += 1
        self.skipped_by[reason] = self.skipped_by.get(reason, 0) + 1
        self.example(reason, fno, index, line, message)


def _key(fno: int, index: int) -> int:
    return (fno << 40) | index


def _rebase(sample: Sample, rebase: tuple[str, str]) -> None:
    import os.path

    src, dst = rebase
    for kind in ("images", "videos", "audios"):
        paths = getattr(sample, kind)
        if paths:
            setattr(sample, kind, [
                p if (os.path.isabs(p) or "://" in p or p.startswith("data:")) else os.path.relpath(os.path.join(src, p), dst)
                for p in paths
            ])  # fmt: skip


class _Converter:
    """Turns located records into output rows, counting everything; the hot loop of ``convert``."""

    def __init__(self, src: Source, opts: Options, template: dict[str, Any] | None):
        from functools import partial

        from fmtkit.forms import is_droppable

        self.reader, self.entry = src.reader, src.entry
        write = FORMS[opts.to].write
        if opts.to.startswith("trl-") and opts.to != "trl-text" and not opts.conversational:
            write = partial(write, conversational=False)
        if opts.to == "openai" and opts.for_llamafactory:
            write = partial(write, arguments_as_text=False)
        self.write = write
        self.opts = opts
        self.template = template
        self.droppable = {code for code in _loss_codes() if is_droppable(code)}
        self.dumps = encode_line
        self.tally = Tally()
        self.seen_keys: dict[str, None] = {}
        self.transform = opts.extract_prompt or opts.pairs_to_kto
        self.rebase = opts.rebase  # applied to samples with media; fast lanes never write media
        # the form's fast lane to the target, when it applies (same rows as the general path, see fmtkit.forms.lanes);
        # it needs the output's columns, so the first records (read to fix them) take the general path
        self.lane = None
        source = FORMS.get(src.form)
        if (
            template is not None and source is not None and src.entry is not None and source.read is src.reader
            and not self.transform and opts.to in source.direct and not (opts.to.startswith("trl-") and not opts.conversational)
        ):  # fmt: skip
            self.lane = source.direct[opts.to](src.entry, template)

    def run(self, fno: int, records: Iterator[Record], out, checker: RecordChecker | None = None) -> Tally:
        """Convert the records of file ``fno``; ``out`` is a binary file or None (dry run).

        ``checker`` (the rules of ``fmtkit validate``) sees each record as it is read.
        """
        t = self.tally
        one = self._one
        check = checker.check if checker is not None else None
        write = out.write if out is not None else None
        for index, line, value, raw in records:
            t.read += 1
            if check is not None:
                check(index, line, value, raw)
            one(fno, index, line, value, write)
        return t

    def run_range(self, path: Path, fno: int, start: int, end: int, out, checker: RecordChecker | None = None) -> Tally:
        """Convert the JSON Lines in bytes ``[start, end)``, the fast lane first: the lines it takes are neither decoded nor checked again.

        Indices and lines are local to the range (``Tally.indices`` / ``lines`` say how many were used).
        """
        t = self.tally
        counts = [0, 0]
        lane = self.lane
        shown, show, strict = t.shown, self.opts.show, self.opts.strict
        write = out.write if out is not None else None
        rows_append = t.rows.append
        key0 = fno << 40
        vouched = checker.vouched if checker is not None else None
        taken = 0

        def take(raw: bytes, index: int, line: int) -> bool:
            """The fast lane: write the line's output row; False when it leaves the line to the general path."""
            nonlocal taken
            if show and len(shown) < show:  # records to show take the general path, which keeps their rows
                return False
            got = lane(raw)  # (output line, shape, droppable loss)
            if got is None:
                return False
            loss = got[2]
            if loss is not None:
                if strict:  # the general path skips the record, saying why
                    return False
                t.lost[loss.code] = t.lost.get(loss.code, 0) + 1
                t.example("lost:" + loss.code, fno, index, line, loss.message)
            if write is not None:
                write(got[0])
            rows_append(key0 | index)
            taken += 1
            if vouched is not None:
                vouched(index, line, got[1])
            return True

        one = self._one
        check = checker.check if checker is not None else None
        read = 0
        for index, line, value, raw in iter_line_range(path, _problem_sink(fno, t, checker), start, end, counts, take if lane else None):
            read += 1
            if check is not None:
                check(index, line, value, raw)
            one(fno, index, line, value, write)
        t.read += read + taken
        t.written += taken
        t.indices, t.lines = counts
        return t

    def _one(self, fno: int, index: int, line: int | None, value: Any, write) -> None:
        """Write the output rows of one record through the general path; ``write`` None: a dry run."""
        t = self.tally
        template = self.template
        show = self.opts.show
        for row in self._general(fno, index, line, value):
            if template is not None:
                row = {**template, **row}
                if len(row) != len(template):
                    for k in row:
                        if k not in template and k not in self.seen_keys:
                            self.seen_keys[k] = None
                            t.new_keys.append(k)
            else:  # the first records, read to fix the output's columns
                self.seen_keys.update(dict.fromkeys(row))
            if write is not None:
                write(self.dumps(row))
            t.rows.append((fno << 40) | index)
            t.written += 1
            if len(t.shown) < show:
                t.shown.append({"file": fno, "record": index, "line": line, "input": value, "output": row, "reason": None})

    def _general(self, fno: int, index: int, line: int | None, value: Any) -> list[dict[str, Any]]:
        """Read, transform and write one record: its output rows, or none (skipped, and counted)."""
        t, opts = self.tally, self.opts
        try:
            sample = self.reader(value, self.entry)
        except ReadError as exc:
            t.skip("unreadable:" + exc.code, fno, index, line, exc.message)
            if len(t.shown) < opts.show:
                t.shown.append({"file": fno, "record": index, "line": line, "input": value, "output": None, "reason": f"unreadable: {exc.message}"})
            return []
        if sample.hints and PARTS_HINT in sample.hints:
            t.parts.add((fno << 40) | index)
        if self.rebase is not None and (sample.images or sample.videos or sample.audios):
            _rebase(sample, self.rebase)
        samples = self._transform(sample) if self.transform else (sample,)
        rows = []
        lost = t.lost
        for sample in samples:
            row, losses = self.write(sample)
            if losses:
                blocking = None
                codes = set()
                for loss in losses:
                    if loss.code in codes:
                        continue
                    codes.add(loss.code)
                    lost[loss.code] = lost.get(loss.code, 0) + 1
                    t.example("lost:" + loss.code, fno, index, line, loss.message)
                    if blocking is None and (opts.strict or loss.code not in self.droppable):
                        blocking = loss
                if blocking is not None:
                    t.skip("not-expressible:" + blocking.code, fno, index, line, blocking.message)
                    if len(t.shown) < opts.show:
                        t.shown.append({"file": fno, "record": index, "line": line, "input": value, "output": None, "reason": f"skipped: {blocking.message}"})
                    continue
            rows.append(row)
            if not t.tool_turns and any(turn.tool_calls or turn.role == "tool" for turn in sample.turns):
                t.tool_turns = True
        return rows

    def _transform(self, sample: Sample) -> list[Sample]:
        opts = self.opts
        if opts.extract_prompt:
            from fmtkit.forms.trl import extract_prompt

            sample = extract_prompt(sample)
        if opts.pairs_to_kto:
            from fmtkit.forms.trl import pairs_to_kto

            return pairs_to_kto(sample)
        return [sample]


def _loss_codes() -> list[str]:
    from fmtkit.forms import LOSS_CODES

    return list(LOSS_CODES)


# ---- reading, converting and checking shards ------------------------------------


def _problem_sink(fno: int, tally: Tally, checker: RecordChecker | None = None):
    """Loader problems become skipped records (``unreadable:<code>``) and, when checking, findings; a BOM is no loss."""
    report = checker.problem if checker is not None else None

    def problem(p: LoadProblem) -> None:
        if report is not None:
            report(p)
        if p.code in WARNING_PROBLEMS:
            return
        tally.read += 1
        tally.skip("unreadable:" + p.code, fno, p.record if p.record is not None else -1, p.line, p.message)

    return problem


@dataclass(slots=True)
class _Shard:
    fno: int
    start: int
    end: int  # -1: the whole file, through the loader


def _shards(src: Source, jobs: int) -> list[_Shard]:
    shards = []
    for fno, path in enumerate(src.files):
        size = path.stat().st_size
        lines = is_json_lines(path)
        if jobs > 1 and lines and size >= 2 * MIN_SHARD_BYTES:
            n = max(1, min(jobs, size // MIN_SHARD_BYTES))
            shards.extend(_Shard(fno, a, b) for a, b in line_ranges(path, n))
        elif lines:
            shards.append(_Shard(fno, 0, size))
        else:
            shards.append(_Shard(fno, 0, -1))
    return shards


# What the input check of one file needs in a worker: (file name in findings, the validator's EntryView, form).
CheckArgs = tuple[str, Any, str]


def _run_shard(src: Source, opts: Options, template: dict[str, Any] | None, shard: _Shard, part: Path | None,
               check: CheckArgs | None) -> tuple[Tally, tuple | None]:  # fmt: skip
    """Convert one shard (and check it with ``fmtkit validate``'s rules): its Tally, and the checker's shard result."""
    conv = _Converter(src, opts, template)
    problems: list[Any] = []
    checker = None
    if check is not None:
        from fmtkit import rules
        from fmtkit.record_loop import RecordChecker

        rules.load_all()
        checker = RecordChecker(*check, problems, hash_limit=0)  # duplicates are warnings: convert skips only errors
    path = src.files[shard.fno]
    with part.open("wb", buffering=1 << 20) if part is not None else contextlib.nullcontext() as out:  # one write per row into a 1 MiB buffer
        if shard.end < 0:
            conv.run(shard.fno, iter_records(path, _problem_sink(shard.fno, conv.tally, checker)), out, checker)
        else:
            conv.run_range(path, shard.fno, shard.start, shard.end, out, checker)
    if checker is None:
        return conv.tally, None
    from fmtkit.record_loop import shard_result

    return conv.tally, shard_result(problems, checker.tally, [conv.tally.indices, conv.tally.lines])


# Worker processes get the conversion through these globals (set before fork, or by the initializer).
_WORKER: dict[str, Any] = {}


def _worker_init(src: Source, opts: Options, template: dict[str, Any] | None) -> None:
    _WORKER.update(src=src, opts=opts, template=template)


def _worker_run(args: tuple[_Shard, str | None, CheckArgs | None]) -> tuple[Tally, tuple | None]:
    shard, part, check = args
    opts = _WORKER["opts"]
    if shard.start > 0:  # only the first shard of a file shows records
        opts = replace(opts, show=0)
    return _run_shard(_WORKER["src"], opts, _WORKER["template"], shard, Path(part) if part else None, check)


def _run_shards(src: Source, opts: Options, template: dict[str, Any], items: list[tuple[_Shard, Path | None]], jobs: int,
                check: CheckArgs | None = None, shown: int = 0) -> list[tuple[Tally, tuple | None]]:  # fmt: skip
    """Run shards in order (``shown``: records shown already), or over ``jobs`` worker processes."""
    if jobs == 1 or len(items) == 1:
        out = []
        for shard, part in items:
            out.append(_run_shard(src, replace(opts, show=max(0, opts.show - shown)), template, shard, part, check))
            shown += len(out[-1][0].shown)
        return out
    from fmtkit.workers import run_in_workers

    tasks = [(shard, str(part) if part else None, check) for shard, part in items]
    return run_in_workers(_worker_run, tasks, jobs, _worker_init, (src, opts, template))


class _CheckedPass:
    """``fmtkit validate``'s record pass over the input, done by the conversion: each file is read once, converted and checked.

    :func:`fmtkit.validation.validate` calls it for each file of the entry, with
    the entry's view, and gets the findings and tally it would have got from
    :func:`fmtkit.record_loop.check_path`; the conversion keeps the shards' Tallies.
    """

    def __init__(self, src: Source, opts: Options, template: dict[str, Any], shards: list[_Shard], parts: list[Path], jobs: int):
        self.src, self.opts, self.template, self.shards, self.parts, self.jobs = src, opts, template, shards, parts, jobs
        self.fnos = {str(p.resolve()): k for k, p in enumerate(src.files)}
        self.tallies: dict[int, Tally] = {}  # shard number -> its Tally
        self.numbers: dict[int, list[int]] = {}  # file number -> its shard numbers (a folder entry may have many files)
        for k, shard in enumerate(shards):
            self.numbers.setdefault(shard.fno, []).append(k)
        self.shown = 0  # records shown so far

    def __call__(self, path: Path, rel: str, view: Any, form: str, jobs: int = 1, progress: Any = None):
        fno = self.fnos[str(path.resolve())]
        numbers = self.numbers.get(fno, [])
        items = [(self.shards[k], self.parts[k] if self.parts else None) for k in numbers]
        results = _run_shards(self.src, self.opts, self.template, items, self.jobs, (rel, view, form), self.shown)
        for k, (tally, _) in zip(numbers, results, strict=True):
            self.tallies[k] = tally
            self.shown += len(tally.shown)
        if len(results) == 1:
            problems, file_tally, _ = results[0][1]
            return problems, file_tally
        from fmtkit.record_loop import join_shards

        return join_shards(r[1] for r in results)


def _convert_checked(src: Source, opts: Options, template: dict[str, Any], shards: list[_Shard], parts: list[Path], jobs: int,
                     notes: list[str]) -> tuple[list[Tally], tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]]:  # fmt: skip
    """Convert every shard while ``fmtkit validate`` checks the input in the same read.

    Returns the Tallies (in shard order) and the error-level findings: those of
    each record (by record key), and those of no record. A file the validator
    does not read (an entry error stops it) is converted unchecked, with a note.
    """
    from fmtkit.validation import validate

    checked = _CheckedPass(src, opts, template, shards, parts, jobs)
    if src.info_dir is not None and src.entry is not None:
        report = validate(src.info_dir, entries=[src.entry.name], jobs=jobs, record_pass=checked)
    else:  # a bare file: validate reads it through the same DatasetEntry.for_file
        report = validate(src.files[0], form=src.form, jobs=jobs, record_pass=checked)
    missing = [k for k in range(len(shards)) if k not in checked.tallies]
    if missing:
        items = [(shards[k], parts[k] if parts else None) for k in missing]
        for k, (tally, _) in zip(missing, _run_shards(src, replace(opts, show=0), template, items, jobs), strict=True):
            checked.tallies[k] = tally
        for fno in sorted({shards[k].fno for k in missing}):
            notes.append(f"{src.files[fno]}: not checked: fmtkit validate did not read it (see its findings)")
    return [checked.tallies[k] for k in range(len(shards))], _errors_of(report, src)


def _severity(finding: Any) -> str:
    sev = getattr(finding, "severity", "")
    return str(getattr(sev, "value", sev)).lower()


def _errors_of(report: Any, src: Source) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The error-level findings of a validate report: every one of each record (by record key), and those of no record."""
    by_file = {}
    for fno, path in enumerate(src.files):
        by_file[str(path.resolve())] = fno
    by_record: dict[int, list[dict[str, Any]]] = {}
    general: list[dict[str, Any]] = []
    for f in report.findings:
        if _severity(f) != "error":
            continue
        item = {"code": getattr(f, "code", "?"), "message": getattr(f, "message", str(f)), "line": getattr(f, "line", None),
                "record": getattr(f, "record", None), "file": str(getattr(f, "file", "") or ""), "fix": getattr(f, "fix", None)}  # fmt: skip
        fno = None
        if item["file"]:
            p = Path(item["file"])
            if not p.is_absolute():
                p = (src.info_dir or src.base_dir) / p
            fno = by_file.get(str(p.resolve()))
            if fno is None and len(src.files) == 1 and Path(item["file"]).name == src.files[0].name:
                fno = 0
        if fno is not None:
            item["file"] = str(src.files[fno])  # as the report names the input elsewhere
        if fno is None or item["record"] is None or getattr(RULES.get(item["code"]), "scope", None) == "dataset":
            general.append(item)  # whole-file findings (types across rows, ...) are about the input, not a record to leave out
        else:
            by_record.setdefault(_key(fno, item["record"]), []).append(item)
    return by_record, general


# ---- the report -------------------------------------------------------------


@dataclass
class ConvertReport:
    """What a conversion did: counts, what was skipped or dropped and why, and a few records to show.

    ``skipped_by`` keys are ``reason:code``: ``unreadable`` (the record cannot be
    read), ``invalid`` (``fmtkit validate`` found an error in it) and
    ``not-expressible`` (the target form cannot hold part of it). ``lost`` counts,
    per loss code, the records that have it (skipped, or written without it when
    the loss only drops metadata: see ``dropped``).
    """

    source: str
    entry: str | None
    source_form: str
    target_form: str
    output: str | None
    records_read: int = 0
    written: int = 0
    skipped: int = 0
    skipped_by: dict[str, int] | None = None
    lost: dict[str, int] | None = None
    dropped: dict[str, int] | None = None
    examples: dict[str, list[dict[str, Any]]] | None = None
    findings: list[dict[str, Any]] | None = None
    shown: list[dict[str, Any]] | None = None
    registered: dict[str, Any] | None = None
    refused: str | None = None  # why nothing was written although records converted (the loader would misread the output)
    notes: list[str] | None = None
    checked: bool = False
    dry_run: bool = False
    strict: bool = False
    jobs: int = 1
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 when the input check found errors (records skipped for them, or errors of no record), or (``strict``) anything was lost; else 0."""
        invalid = any(not k.startswith("not-expressible:") for k in self.skipped_by or {})
        if invalid or self.findings or self.refused or (self.strict and (self.lost or self.skipped)):
            return EXIT_FINDINGS
        return 0

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data

    def loss_lines(self) -> list[str]:
        """One sentence per loss: "12 records have tool calls, which alpaca cannot express: skipped"."""
        from fmtkit.forms import describe_loss, is_droppable

        out = []
        for code, n in sorted((self.lost or {}).items(), key=lambda kv: -kv[1]):
            what = describe_loss(code)
            if self.strict:
                action = "error (--strict)"
            else:
                action = "dropped, record written" if is_droppable(code) else "skipped"
            out.append(f"{n} record{'s' if n != 1 else ''} {'has' if n == 1 else 'have'} {what}, which {self.target_form} cannot express: {action}")
        return out


# ---- writing the output ----------------------------------------------------


def _template(src: Source, opts: Options) -> dict[str, Any]:
    """The output's columns, in the form's order, with their "absent" values: those the first records use."""
    import itertools

    from fmtkit.forms import REQUIRED

    conv = _Converter(src, replace(opts, show=0, strict=False), None)
    conv.run(0, itertools.islice(iter_records(src.files[0], _problem_sink(0, conv.tally)), HEAD_RECORDS), None)
    keys = conv.seen_keys
    columns = FORMS[opts.to].columns
    template = {k: (None if d is REQUIRED else d) for k, d in columns.items() if k in keys or d is REQUIRED}
    for k in keys:
        if k not in template:
            template[k] = None
    return template


def _write_parquet(lines: Callable[[], Iterator[bytes]], dest: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise FmtkitError("writing .parquet needs pyarrow: pip install 'fmtkit[arrow]'") from None

    def batches():
        rows = []
        for raw in lines():
            rows.append(decode_line(raw))
            if len(rows) >= 20000:
                yield rows
                rows = []
        if rows:
            yield rows

    schema = None
    try:
        for rows in batches():  # pass 1: one schema for every batch
            s = pa.Table.from_pylist(rows).schema
            schema = s if schema is None else pa.unify_schemas([schema, s], promote_options="permissive")
        if schema is None:
            pq.write_table(pa.table({}), dest)
            return
        with pq.ParquetWriter(dest, schema) as writer:
            for rows in batches():
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise FmtkitError(f"cannot write parquet: a column changes type between records ({exc}); write .jsonl instead") from None
    except (pa.ArrowException, OverflowError) as exc:  # an all-{} column, an integer beyond 64 bits...
        raise FmtkitError(f"cannot write parquet: Arrow cannot hold this data ({exc}); write .jsonl instead") from None


def _concatenate(parts: list[Path]) -> None:
    """Append the other parts to the first, in order (in the kernel where it can)."""
    import os
    import shutil

    if len(parts) < 2:
        return
    with parts[0].open("ab") as out:
        for part in parts[1:]:
            with part.open("rb") as src:
                size = os.fstat(src.fileno()).st_size
                done = 0
                try:
                    while done < size:
                        n = os.copy_file_range(src.fileno(), out.fileno(), size - done)
                        if n == 0:
                            break
                        done += n
                except (AttributeError, OSError):  # no copy_file_range here: copy through Python
                    pass
                if done < size:
                    src.seek(done)
                    out.seek(0, os.SEEK_END)
                    shutil.copyfileobj(src, out, 1 << 20)


def _assemble(parts: list[Path], dest: Path, kind: str, fill: dict[str, Any] | None, drop: set[int]) -> None:
    """Join the parts into ``dest`` in the output type, filling missing columns and leaving out dropped rows."""

    def lines() -> Iterator[bytes]:
        row = 0
        for part in parts:
            with part.open("rb") as fh:
                for raw in fh:
                    if row in drop:
                        row += 1
                        continue
                    row += 1
                    if fill is not None:
                        raw = encode_line({**fill, **decode_line(raw)})
                    yield raw

    if kind == "parquet":
        _write_parquet(lines, dest)
        return
    with dest.open("wb", buffering=1 << 20) as out:
        if kind == "jsonl":
            for raw in lines():
                out.write(raw)
            return
        out.write(b"[")
        first = True
        for raw in lines():
            out.write(b"\n" if first else b",\n")
            out.write(raw.rstrip(b"\n"))
            first = False
        out.write(b"\n]\n")


# ---- registering the output in dataset_info.json ----------------------------


def registration(form: str, output: Path, info_dir: Path, columns: list[str], tool_turns: bool = True) -> dict[str, Any]:
    """The ``dataset_info.json`` entry that makes LLaMA-Factory load a converted file as it is.

    OpenAI output with no tool call or tool result (``tool_turns`` False) is
    registered with ``formatting: sharegpt`` and OpenAI tags: LLaMA-Factory's
    ShareGPT reader reads it exactly as its openai reader would, except that the
    openai reader also appends "detailed thinking off" to every system prompt
    (FMT119). Only ``tool_calls`` need the openai reader.

    >>> registration("openai", Path("d/o.jsonl"), Path("d"), ["messages"], tool_turns=False)["formatting"]
    'sharegpt'
    """
    import os.path

    f = FORMS[form]
    if not f.roles:
        lf = ", ".join(n for n, x in FORMS.items() if x.roles)
        raise FmtkitError(f"LLaMA-Factory cannot load the {form} form, so --register cannot register it (forms it loads: {lf})")
    rel = os.path.relpath(output.resolve(), info_dir.resolve())
    raw: dict[str, Any] = {"file_name": str(output.resolve()) if rel.startswith("..") else rel}
    entry = copy.deepcopy(f.entry or {})
    tags = entry.pop("tags", None)
    if entry.get("formatting") == "openai" and not tool_turns:
        entry["formatting"] = "sharegpt"
    raw.update(entry)
    raw["columns"] = {role: col for role, col in f.roles.items() if col in columns}
    if tags:
        raw["tags"] = tags
    return raw


def _check_entry_name(name: str) -> None:
    """An entry name LLaMA-Factory can refer to: its ``dataset:`` list is split at commas and each name stripped.

    >>> _check_entry_name("a,b")
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: --name 'a,b': LLaMA-Factory splits dataset names at commas and strips spaces around them, so no config could name it; choose a name without commas, control characters or surrounding spaces
    """
    if not name or "," in name or name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise FmtkitError(
            f"--name {name!r}: LLaMA-Factory splits dataset names at commas and strips spaces around them, so no config "
            "could name it; choose a name without commas, control characters or surrounding spaces"
        )


def _add_entry(info_dir: Path, name: str, raw: dict[str, Any]) -> None:
    """Append one entry to ``dataset_info.json``, leaving the text of every other entry as it was; atomic, under the folder's lock."""
    from fmtkit.writing import atomic_write, locked

    path = info_dir / INFO_FILE
    entry_text = json.dumps({name: raw}, indent=2, ensure_ascii=False)[1:-1].strip("\n")
    with locked(info_dir):  # concurrent registrations take turns: each reads what the one before wrote
        if path.exists():
            text = path.read_text(encoding="utf-8")
            info = json.loads(text)
            if name in info:
                raise FmtkitError(f"{path}: an entry named {name!r} exists already; choose another with --name")
            body = text.rstrip()
            if not body.endswith("}"):
                raise FmtkitError(f"{path}: does not end with '}}'")
            head = body[:-1].rstrip()
            new = f"{head}{',' if info else ''}\n{entry_text}\n}}\n"
            if json.loads(new) != {**info, name: raw}:  # the text edit must mean exactly "one more entry"
                new = json.dumps({**info, name: raw}, indent=2, ensure_ascii=False) + "\n"
        else:
            new = json.dumps({name: raw}, indent=2, ensure_ascii=False) + "\n"
        with atomic_write(path) as fh:
            fh.write(new.encode("utf-8"))


# ---- convert ----------------------------------------------------------------


def _default_output(src: Source, to: str) -> Path:
    if src.info_dir is not None:
        return src.info_dir / f"{src.name}_{to}.jsonl"
    first = src.files[0]
    return first.with_name(f"{first.stem}.{to}.jsonl")


def _check_output(src: Source, output: Path) -> str:
    kind = OUTPUT_TYPES.get(output.suffix.lower())
    if kind is None:
        raise FmtkitError(f"{output}: the output type comes from its extension: {', '.join(OUTPUT_TYPES)}")
    from fmtkit.writing import refuse_output

    out = output.resolve()
    data = src.entry.data_path() if src.entry is not None else None
    if data is not None and data.is_dir() and data.resolve() in out.parents:
        raise FmtkitError(f"{output}: inside the input folder {data}, it would become part of the dataset")
    folders = [d for d in (src.info_dir, out.parent) if d is not None and (d / INFO_FILE).is_file()]
    refuse_output(output, src.files, folders)
    return kind


def convert(
    source: str | Path,
    to: str,
    output: str | Path | None = None,
    entry: str | None = None,
    *,
    form: str | None = None,
    register: bool = False,
    name: str | None = None,
    pairs_to_kto: bool = False,
    extract_prompt: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    jobs: int = 1,
    show: int = 0,
    conversational: bool = True,
    check: bool = True,
) -> ConvertReport:
    """Convert a data file (or one entry of a dataset folder) to the form ``to``.

    Every record is read into a Sample and written in the target form; a record
    the target cannot express is skipped and reported (``strict``: any loss is
    an error and nothing is written), never half-converted. Records that
    ``fmtkit validate`` finds errors in are skipped too (``check=False`` skips
    that check). The output type comes from its extension (``.jsonl``,
    ``.json``, ``.parquet``); it is written to a temporary file beside it and
    renamed into place, so an interrupted run leaves nothing behind.
    ``register`` adds an entry for the output to the dataset folder's
    ``dataset_info.json`` (named ``name``, default ``<entry>_<form>``).
    ``jobs`` splits JSON Lines input by byte ranges over that many processes.
    ``conversational=False`` writes TRL's standard (string) style.
    """
    import time

    from fmtkit.writing import discard, publish, real_target, sweep_stale, temp_path, write_failure

    started = time.perf_counter()
    if to not in FORMS:
        raise FmtkitError(f"unknown form {to!r}; forms: {', '.join(FORM_NAMES)}")
    if jobs < 1:
        raise FmtkitError("--jobs must be at least 1")
    src = resolve(source, entry, form)
    out_path = Path(output) if output is not None else _default_output(src, to)
    kind = _check_output(src, out_path)
    info_dir = src.info_dir or out_path.parent
    reg_name = name or f"{src.name}_{to}"
    if register:
        _check_entry_name(reg_name)
        registration(to, out_path, info_dir, [])  # fails early for forms LLaMA-Factory cannot load
        info_path = info_dir / INFO_FILE
        if info_path.exists() and reg_name in load_info(info_dir):
            raise FmtkitError(f"{info_path}: an entry named {reg_name!r} exists already; choose another with --name")
    report = ConvertReport(
        source=str(source), entry=src.entry.name if src.entry is not None and src.info_dir else None,
        source_form=src.form, target_form=to, output=None if dry_run else str(out_path),
        skipped_by={}, lost={}, dropped={}, examples={}, findings=[], shown=[], notes=[],
        dry_run=dry_run, strict=strict, jobs=jobs,
    )  # fmt: skip
    media_to = info_dir if register else out_path.parent
    rebase = None  # media may come from columns or from OpenAI content parts
    if src.base_dir.resolve() != media_to.resolve():
        rebase = (str(src.base_dir.resolve()), str(media_to.resolve()))
    opts = Options(to, strict, pairs_to_kto, extract_prompt, conversational, rebase, for_llamafactory=register, show=min(show, SHOW_LIMIT))

    template = _template(src, opts)
    shards = _shards(src, jobs)
    out_dir = out_path.parent
    if not dry_run:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(exc, out_path) from None
    target = real_target(out_path)  # an output that is a symbolic link is written at its destination
    if not dry_run:
        sweep_stale(target.parent)
    parts = [] if dry_run else [temp_path(target, k) for k in range(len(shards))]
    tmp = temp_path(target, "all")
    try:
        checked = None
        if check:
            tallies, checked = _convert_checked(src, opts, template, shards, parts, jobs, report.notes)
        else:
            items = [(shard, parts[k] if parts else None) for k, shard in enumerate(shards)]
            tallies = [tally for tally, _ in _run_shards(src, opts, template, items, jobs)]
        _merge(report, src, shards, tallies)
        report.shown = report.shown[:opts.show]
        fill = None
        new_keys = [k for t in tallies for k in (t.new_keys or [])]
        if new_keys:
            fill = dict(template)
            for k in new_keys:
                fill.setdefault(k, None)
        drop = _apply_check(report, checked, tallies, shards)
        if strict and (report.lost or report.skipped):
            report.notes.append("nothing written: --strict and something would be lost or skipped")
            report.output = None
        elif not dry_run:
            if kind == "jsonl" and fill is None and not drop:
                _concatenate(parts)
                written = parts[0]
            else:
                _assemble(parts, tmp, kind, fill, drop)
                written = tmp
            report.refused = _unloadable(written, kind) if register and report.written else None
            if report.refused:  # registered, it would not load as meant: write nothing
                report.notes.append(f"nothing written: {report.refused}")
                report.output = None
            else:
                publish(written, out_path)
            if register and report.written == 0:
                report.notes.append("nothing written, so nothing registered")
            elif register and not report.refused:
                columns = list(fill or template)
                raw = registration(to, out_path, info_dir, columns, any(t.tool_turns for t in tallies))
                _add_entry(info_dir, reg_name, raw)
                report.registered = {"name": reg_name, "dataset_info": str(info_dir / INFO_FILE), "entry": raw}
        elif register:
            raw = registration(to, out_path, info_dir, list(fill or template), any(t.tool_turns for t in tallies))
            report.registered = {"name": reg_name, "dataset_info": str(info_dir / INFO_FILE), "entry": raw, "dry_run": True}
    except OSError as exc:  # a full disk, a file size limit, a folder fmtkit may not write in; or an input gone unreadable
        if exc.filename is not None and str(exc.filename) in {str(f) for f in src.files}:
            raise FmtkitError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
        raise write_failure(exc, out_path) from None
    finally:
        discard(*parts, tmp)
    report.notes.extend(_openai_notes(src, to, report.registered))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _unloadable(path: Path, kind: str) -> str | None:
    """Why LLaMA-Factory would not load a converted file as written, or None: the Arrow rules on the output.

    `datasets` gives each column (and nested field) one Arrow type: tool call
    ``arguments`` objects of several shapes fail to load, or come back with the
    union of their keys (null where absent), which LLaMA-Factory's openai
    reader then trains on (FMT807, FMT810).
    """
    if kind not in ("jsonl", "json"):
        return None  # columnar output is typed already
    from fmtkit.loading.json_file import iter_json
    from fmtkit.rules.arrow_types import arrow_conflicts

    problems = arrow_conflicts((r.value for r in iter_json(path, lambda _: None)), array_file=kind == "json")
    if not problems:
        return None
    p = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (f"LLaMA-Factory would not read the output as written: output record {p.record} {p.message} [{p.code}]{more}; "
            f"{p.fix}")


def _openai_notes(src: Source, to: str, registered: dict[str, Any] | None) -> list[str]:
    """What LLaMA-Factory's openai reader does to system prompts (FMT119), where it reads the source or the output."""
    quirk = 'LLaMA-Factory\'s openai reader appends "detailed thinking off" to system prompts (FMT119)'
    notes = []
    if src.entry is not None and src.info_dir is not None and src.entry.formatting == "openai" and FORMS[to].roles:
        notes.append(f"the source entry has formatting: openai, so {quirk}; the output holds the system prompts as written")
    if registered is not None and registered["entry"].get("formatting") == "openai":
        notes.append(f"registered with formatting: openai, which its tool calls need, so {quirk}")
    return notes


def _merge(report: ConvertReport, src: Source, shards: list[_Shard], tallies: list[Tally]) -> None:
    """Add the shards' tallies up, placing each shard's records and lines after those of earlier shards."""
    from fmtkit.forms import is_droppable

    index_off: dict[int, int] = {}
    line_off: dict[int, int] = {}
    for shard, t in zip(shards, tallies, strict=True):
        i0, l0 = index_off.get(shard.fno, 0), line_off.get(shard.fno, 0)
        if shard.end >= 0:
            index_off[shard.fno] = i0 + t.indices
            line_off[shard.fno] = l0 + t.lines
        t.first_index = i0
        report.records_read += t.read
        report.written += t.written
        report.skipped += t.skipped
        for k, v in t.skipped_by.items():
            report.skipped_by[k] = report.skipped_by.get(k, 0) + v
        for k, v in t.lost.items():
            report.lost[k] = report.lost.get(k, 0) + v
            if is_droppable(k) and not report.strict:
                report.dropped[k] = report.dropped.get(k, 0) + v
        for code, items in t.examples.items():
            bucket = report.examples.setdefault(code, [])
            for item in items:
                if len(bucket) < EXAMPLES_PER_CODE:
                    bucket.append(_place(item, src, i0, l0))
        for item in t.shown:
            if len(report.shown) < SHOW_LIMIT:
                report.shown.append(_place(item, src, i0, l0))


def _place(item: dict[str, Any], src: Source, i0: int, l0: int) -> dict[str, Any]:
    item = dict(item)
    item["file"] = str(src.files[item["file"]])
    if item.get("record") is not None and item["record"] >= 0:
        item["record"] += i0
    if item.get("line") is not None:
        item["line"] += l0
    return item


def _apply_check(report: ConvertReport, result: Any, tallies: list[Tally], shards: list[_Shard]) -> set[int]:
    """Rows to leave out because ``fmtkit validate`` found errors in their records; counts them as skipped.

    ``result`` is None when the check was turned off (``--no-check``).
    """
    if result is None:
        return set()
    report.checked = True
    by_record, general = result
    report.findings.extend(general)
    if not by_record:
        return set()
    drop: set[int] = set()
    records: set[int] = set()
    row = 0
    for shard, t in zip(shards, tallies, strict=True):
        off = t.first_index
        for key in t.rows:
            found = by_record.get(key + off)
            if found and key in t.parts:  # the reader read the list of parts: those findings are about the input's spelling only
                found = [f for f in found if f["code"] not in READ_REPAIRS]
            finding = found[0] if found else None  # any error the reader does not repair skips the record
            if finding is not None:
                drop.add(row)
                if key + off in records:  # the second row of a record split by --pairs-to-kto
                    row += 1
                    continue
                records.add(key + off)
                reason = f"invalid:{finding['code']}"
                report.skipped_by[reason] = report.skipped_by.get(reason, 0) + 1
                bucket = report.examples.setdefault(reason, [])
                if len(bucket) < EXAMPLES_PER_CODE:
                    bucket.append(finding)
                if len(report.findings) < 1000:
                    report.findings.append(finding)
            row += 1
    report.written -= len(drop)
    report.skipped += len(records)
    return drop

"""The conversion engine: each record read, transformed and written in the target form, counted in a :class:`Tally`.

Who calls whom: :func:`fmtkit.conversion.convert` makes a :class:`ConvertPass`
and hands it to :func:`fmtkit.validation.validate`, whose file walk reads each
input file through :func:`fmtkit.record_loop.check_path`: the one engine that
splits a file into units of work (``--jobs``, ``--engine ray``) runs
:class:`ConvertUnit` on each unit, which converts the unit's records (each
checked by the unit's record checker) and writes the unit's part of the
output. The converted units' tallies are then merged in file order
(:func:`merge_tallies`) and the records the check found errors in left out
(:func:`apply_check`).
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtkit.forms import FORMS, PARTS_HINT, Loss, ReadError
from fmtkit.loading import LoadProblem, Record, iter_records
from fmtkit.dataset_info import DATA_EXTENSIONS
from fmtkit.loading.json_file import encode_line, is_json_lines, iter_json_blocks, iter_line_blocks, iter_line_range
from fmtkit.rules import RULES
from fmtkit.rules.media import is_web_media
from fmtkit.sample import Sample

from fmtkit.report.convert import ConvertReport
from fmtkit.sources import WARNING_PROBLEMS, Source

if TYPE_CHECKING:
    from fmtkit.record_loop import RecordChecker, Unit

# Rules of `fmtkit validate` whose errors the readers repair: FMT405 (content not a
# string) for records whose content the reader read from OpenAI's lists of typed parts.
READ_REPAIRS = frozenset({"FMT405"})


OUTPUT_TYPES = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
SHOW_LIMIT = 50
EXAMPLES_PER_CODE = 3
HEAD_RECORDS = 1000  # records converted up front to fix the output's columns
# JSON Lines (without a fast lane) and JSON arrays are decoded and checked a block of records at a time;
# False: one record at a time, the reference tests/test_blocks.py compares with
READ_IN_BLOCKS = True


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
    """Counts from converting some records (one unit of work of a file); units add up in order."""

    read: int = 0
    written: int = 0
    lines: int = 0  # lines consumed (byte ranges), to place later units' line numbers
    indices: int = 0  # record indices consumed (byte ranges), to place later units' records
    skipped: int = 0
    skipped_by: dict[str, int] = field(default_factory=dict)  # "unreadable:CODE", "not-expressible:CODE"
    lost: dict[str, int] = field(default_factory=dict)  # loss code -> records that have it
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    shown: list[dict[str, Any]] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)  # keys outside the fixed columns (the output needs filling)
    rows: array = field(default_factory=lambda: array("q"))  # the record key of each row written
    first_index: int = 0  # set when units are merged: the file's record index of this unit's first record
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


class Converter:
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
        self.web_images = bool(FORMS[opts.to].roles)  # a LLaMA-Factory form: image URLs are a loss (FMT607)
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
        take = self._taker(fno, out, checker)
        if take is None and READ_IN_BLOCKS:  # no lane: lines decoded and checked a block at a time
            self.run_blocks(fno, iter_line_blocks(path, _problem_sink(fno, t, checker), start, end, counts), out, checker, raw_hash=True)
            t.indices, t.lines = counts
            return t
        write = out.write if out is not None else None
        one = self._one
        check = checker.check if checker is not None else None
        read = 0
        for index, line, value, raw in iter_line_range(path, _problem_sink(fno, t, checker), start, end, counts, take):
            read += 1
            if check is not None:
                check(index, line, value, raw)
            one(fno, index, line, value, write)
        t.read += read
        t.indices, t.lines = counts
        return t

    def run_blocks(self, fno: int, blocks: Iterator[tuple[int, Any, list, list[bytes] | None]], out, checker: RecordChecker | None = None,
                   raw_hash: bool = False) -> Tally:  # fmt: skip
        """:meth:`run` for the blocks ``(index, lines, records, raws)`` of a JSON array (:func:`iter_json_blocks`),
        or with ``raw_hash`` of JSON Lines (:func:`iter_line_blocks`).

        The fast lane takes an element by its bytes, as a JSON line in :meth:`run_range`; without a lane a
        block is checked at once (:meth:`RecordChecker.check_block`: the findings and tally of record by record).
        """
        t = self.tally
        take = self._taker(fno, out, checker)
        write = out.write if out is not None else None
        one = self._one
        check = checker.check if checker is not None else None
        for index, lines, recs, raws in blocks:
            if take is None or raws is None:
                t.read += len(recs)
                if checker is not None:
                    checker.check_block(index, lines, recs, raws, raw_hash)
                for i, rec in enumerate(recs):
                    one(fno, index + i, lines[i], rec, write)
                continue
            for i, rec in enumerate(recs):
                if not take(raws[i], index + i, lines[i]):
                    t.read += 1
                    if check is not None:
                        check(index + i, lines[i], rec, None)
                    one(fno, index + i, lines[i], rec, write)
        return t

    def _taker(self, fno: int, out, checker: RecordChecker | None):
        """The fast lane as a screen ``take(raw, index, line)``: it writes the record's output row and returns True,
        or False to leave the record to the general path; None without a lane. A record it takes counts as read,
        written and (with ``checker``) checked clean."""
        lane = self.lane
        if lane is None:
            return None
        t = self.tally
        shown, show, strict = t.shown, self.opts.show, self.opts.strict
        write = out.write if out is not None else None
        rows_append = t.rows.append
        key0 = fno << 40
        vouched = checker.vouched if checker is not None else None

        def take(raw: bytes, index: int, line: int) -> bool:
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
            t.read += 1
            t.written += 1
            if vouched is not None:
                vouched(index, line, got[1])
            return True

        return take

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
            if self.web_images and sample.images and any(is_web_media(p) for p in sample.images):
                losses = [*(losses or ()), Loss("media-url", "an image is a URL or data: URI, which LLaMA-Factory cannot open (FMT607)")]
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
class ConvertUnit:
    """:class:`ConvertPass`'s work on one unit of a file, where the unit runs: convert its records (each checked by
    the unit's ``checker``, when there is one) and write their rows to ``part`` (None: a dry run)."""

    src: Source
    opts: Options
    template: dict[str, Any] | None
    fno: int
    part: str | None

    def __call__(self, unit: Unit, checker: RecordChecker | None, counts: list[int]) -> Tally:
        conv = Converter(self.src, self.opts, self.template)
        t, fno, path = conv.tally, self.fno, unit.path
        with open(self.part, "wb", buffering=1 << 20) if self.part is not None else contextlib.nullcontext() as out:  # one write per row into a 1 MiB buffer
            if unit.array:  # a range of an indented array's elements
                conv.run_blocks(fno, iter_json_blocks(path, _problem_sink(fno, t, checker), span=(unit.start, unit.end), counts=counts), out, checker)
                t.indices, t.lines = counts
            elif unit.end is not None or is_json_lines(path):  # JSON Lines: the fast lane takes lines by their bytes
                conv.run_range(path, fno, unit.start, unit.end, out, checker)
                counts[:] = [t.indices, t.lines]
            elif READ_IN_BLOCKS and DATA_EXTENSIONS.get(path.suffix.lower()) == "json":  # an array, or objects one after another
                conv.run_blocks(fno, iter_json_blocks(path, _problem_sink(fno, t, checker)), out, checker)
            else:
                conv.run(fno, iter_records(path, _problem_sink(fno, t, checker)), out, checker)
        return t


@dataclass(slots=True)
class Converted:
    """One converted unit: its file, its part of the output (None: a dry run) and its counts."""

    fno: int
    part: Path | None
    tally: Tally


class ConvertPass:
    """``fmtkit convert``'s :class:`fmtkit.record_loop.FilePass`: each unit of each input file converted in the read that checks it.

    :func:`fmtkit.conversion.convert` hands it to :func:`fmtkit.validation.validate`, whose
    file walk calls :func:`fmtkit.record_loop.check_path` with it for each file;
    :meth:`finish` converts, unchecked, the files the check did not read (or all of
    them, with ``--no-check``). :meth:`units` then lists what was converted, in file order.
    """

    hash_limit = 0  # duplicates are warnings: convert leaves out only records with errors
    whole_arrow = True  # the fast lane vouches for records without their bytes, so the Arrow model cannot follow datasets' chunks

    def __init__(self, src: Source, readable: list, opts: Options, template: dict[str, Any], target: Path | None):
        self.src, self.opts, self.template, self.target = src, opts, template, target
        self.readable = readable  # what to read for each of src.files: the file, or with --remote the store's file it stands for
        self.fnos = file_numbers(readable)
        self.parts: list[Path] = []  # every temporary part made (a failed array range's too): the caller discards them
        self.planned: dict[int, list[Path | None]] = {}  # file number -> the parts of its units, as last planned
        self.done: dict[int, list[Converted]] = {}  # file number -> its converted units, in order
        self.shown = 0  # records shown so far
        self.showing = True

    def works(self, path: Path, units: list[Unit]) -> list[ConvertUnit]:
        fno = self.fnos[str(path.resolve())]
        parts = [self._part() for _ in units]
        self.planned[fno] = parts
        show = max(0, self.opts.show - self.shown) if self.showing else 0
        return [ConvertUnit(self.src, replace(self.opts, show=0 if k else show), self.template, fno, None if part is None else str(part))
                for k, part in enumerate(parts)]  # only the first unit of a file shows records  # fmt: skip

    def joined(self, path: Path, units: list[Unit], kept: list[Tally]) -> None:
        fno = self.fnos[str(path.resolve())]
        self.done[fno] = [Converted(fno, part, tally) for part, tally in zip(self.planned.pop(fno), kept, strict=True)]
        self.shown += sum(len(t.shown) for t in kept)

    def _part(self) -> Path | None:
        if self.target is None:
            return None
        from fmtkit.writing import temp_path

        self.parts.append(temp_path(self.target, len(self.parts)))
        return self.parts[-1]

    def finish(self, jobs: int, show: bool = True) -> list[int]:
        """Convert, unchecked, every file not converted yet (``show``: records of them may be shown); their numbers."""
        from fmtkit.record_loop import run_paths

        self.showing = show
        rest = [fno for fno in range(len(self.src.files)) if fno not in self.done]
        run_paths([self.readable[fno] for fno in rest], [None] * len(rest), jobs, self)
        return rest

    def units(self) -> list[Converted]:
        return [c for fno in range(len(self.src.files)) for c in self.done[fno]]


def file_numbers(files: list) -> dict[str, int]:
    """The number of each input file (its place in ``files``), by its resolved path (a URL for a :class:`fmtkit.remote.RemoteFile`)."""
    return {str(p.resolve()): k for k, p in enumerate(files)}


def _severity(finding: Any) -> str:
    sev = getattr(finding, "severity", "")
    return str(getattr(sev, "value", sev)).lower()


def errors_of(report: Any, src: Source) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The error-level findings of a validate report: every one of each record (by record key), and those of no record."""
    by_file = file_numbers(src.files)
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


def merge_tallies(report: ConvertReport, src: Source, units: list[Converted]) -> None:
    """Add the units' tallies up, in file order, placing each unit's records and lines after those of earlier units of its file."""
    from fmtkit.forms import is_droppable

    index_off: dict[int, int] = {}
    line_off: dict[int, int] = {}
    for unit in units:
        t = unit.tally
        i0, l0 = index_off.get(unit.fno, 0), line_off.get(unit.fno, 0)
        index_off[unit.fno] = i0 + t.indices
        line_off[unit.fno] = l0 + t.lines
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


def apply_check(report: ConvertReport, result: Any, units: list[Converted]) -> set[int]:
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
    for unit in units:
        t = unit.tally
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


def output_template(src: Source, opts: Options, first: Any) -> dict[str, Any]:
    """The output's columns, in the form's order, with their "absent" values: those the first records (of ``first``, the first file) use."""
    import itertools

    from fmtkit.forms import REQUIRED

    conv = Converter(src, replace(opts, show=0, strict=False), None)
    conv.run(0, itertools.islice(iter_records(first, _problem_sink(0, conv.tally)), HEAD_RECORDS), None)
    keys = conv.seen_keys
    columns = FORMS[opts.to].columns
    template = {k: (None if d is REQUIRED else d) for k, d in columns.items() if k in keys or d is REQUIRED}
    for k in keys:
        if k not in template:
            template[k] = None
    return template

"""The conversion engine: each record read, transformed and written in the target form, counted in a
:class:`Tally`; JSON Lines split in byte ranges over worker processes, the input check run in the same read,
and the shards' tallies merged in order.
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
from fmtkit.loading.json_file import encode_line, is_json_lines, iter_line_range, line_ranges
from fmtkit.rules import RULES
from fmtkit.rules.media import is_web_media
from fmtkit.sample import Sample

from fmtkit.report.convert import ConvertReport
from fmtkit.sources import WARNING_PROBLEMS, Source

if TYPE_CHECKING:
    from fmtkit.record_loop import RecordChecker

# Rules of `fmtkit validate` whose errors the readers repair: FMT405 (content not a
# string) for records whose content the reader read from OpenAI's lists of typed parts.
READ_REPAIRS = frozenset({"FMT405"})


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
class Shard:
    fno: int
    start: int
    end: int  # -1: the whole file, through the loader


def plan_shards(src: Source, jobs: int) -> list[Shard]:
    shards = []
    for fno, path in enumerate(src.files):
        size = path.stat().st_size
        lines = is_json_lines(path)
        if jobs > 1 and lines and size >= 2 * MIN_SHARD_BYTES:
            n = max(1, min(jobs, size // MIN_SHARD_BYTES))
            shards.extend(Shard(fno, a, b) for a, b in line_ranges(path, n))
        elif lines:
            shards.append(Shard(fno, 0, size))
        else:
            shards.append(Shard(fno, 0, -1))
    return shards


# What the input check of one file needs in a worker: (file name in findings, the validator's EntryView, form).
CheckArgs = tuple[str, Any, str]


def _run_shard(src: Source, opts: Options, template: dict[str, Any] | None, shard: Shard, part: Path | None,
               check: CheckArgs | None) -> tuple[Tally, tuple | None]:  # fmt: skip
    """Convert one shard (and check it with ``fmtkit validate``'s rules): its Tally, and the checker's shard result."""
    conv = Converter(src, opts, template)
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


def _worker_run(args: tuple[Shard, str | None, CheckArgs | None]) -> tuple[Tally, tuple | None]:
    shard, part, check = args
    opts = _WORKER["opts"]
    if shard.start > 0:  # only the first shard of a file shows records
        opts = replace(opts, show=0)
    return _run_shard(_WORKER["src"], opts, _WORKER["template"], shard, Path(part) if part else None, check)


def run_shards(src: Source, opts: Options, template: dict[str, Any], items: list[tuple[Shard, Path | None]], jobs: int,
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

    def __init__(self, src: Source, opts: Options, template: dict[str, Any], shards: list[Shard], parts: list[Path], jobs: int):
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
        results = run_shards(self.src, self.opts, self.template, items, self.jobs, (rel, view, form), self.shown)
        for k, (tally, _) in zip(numbers, results, strict=True):
            self.tallies[k] = tally
            self.shown += len(tally.shown)
        if len(results) == 1:
            problems, file_tally, _ = results[0][1]
            return problems, file_tally
        from fmtkit.record_loop import join_shards

        return join_shards(r[1] for r in results)


def convert_checked(src: Source, opts: Options, template: dict[str, Any], shards: list[Shard], parts: list[Path], jobs: int,
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
        for k, (tally, _) in zip(missing, run_shards(src, replace(opts, show=0), template, items, jobs), strict=True):
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


def merge_tallies(report: ConvertReport, src: Source, shards: list[Shard], tallies: list[Tally]) -> None:
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


def apply_check(report: ConvertReport, result: Any, tallies: list[Tally], shards: list[Shard]) -> set[int]:
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


def output_template(src: Source, opts: Options) -> dict[str, Any]:
    """The output's columns, in the form's order, with their "absent" values: those the first records use."""
    import itertools

    from fmtkit.forms import REQUIRED

    conv = Converter(src, replace(opts, show=0, strict=False), None)
    conv.run(0, itertools.islice(iter_records(src.files[0], _problem_sink(0, conv.tally)), HEAD_RECORDS), None)
    keys = conv.seen_keys
    columns = FORMS[opts.to].columns
    template = {k: (None if d is REQUIRED else d) for k, d in columns.items() if k in keys or d is REQUIRED}
    for k in keys:
        if k not in template:
            template[k] = None
    return template

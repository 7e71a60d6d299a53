"""JSON and JSON Lines files, streamed with their line numbers.

JSON Lines are read line by line (constant memory). A top-level JSON array is
read incrementally: chunks are decoded one element at a time with the C JSON
scanner, so memory stays near the size of one record, not of the file.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from itertools import accumulate, repeat
from operator import add
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import orjson

from fmtkit.dataset_info import DATA_EXTENSIONS
from fmtkit.loading import LoadProblem, ProblemSink, Record

BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20
CHUNK = 1 << 20
_decoder = json.JSONDecoder()
_WS = " \t\r\n"
_decode_exact = msgspec.json.Decoder().decode


def decode_line(raw: bytes) -> object:
    """One JSON value, as ``orjson.loads`` reads it (and fails), except that integers beyond 64 bits stay exact.

    orjson reads 12345678901234567890123 as the float 1.2345678901234568e+22;
    msgspec keeps it an int (and is as fast), so it decodes first.

    >>> decode_line(b'{"id": 12345678901234567890123}')
    {'id': 12345678901234567890123}
    """
    try:
        return _decode_exact(raw)
    except (msgspec.DecodeError, RecursionError):  # orjson's error, or a value only orjson takes (1e400)
        return orjson.loads(raw)


def encode_line(value: object) -> bytes:
    """One JSON Lines line (newline included); integers beyond 64 bits and deep nesting, which orjson refuses, go through the stdlib.

    >>> encode_line({"id": 12345678901234567890123})
    b'{"id":12345678901234567890123}\\n'
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _first_byte(path: Path) -> tuple[bytes, bool]:
    with path.open("rb") as fh:
        head = fh.read(4096)
    has_bom = head.startswith(BOM)
    if has_bom:
        head = head[3:]
    return head.lstrip()[:1], has_bom


def _spans_lines(path: Path, has_bom: bool) -> bool:
    """Whether the first record is one JSON object written over several lines (pretty-printed).

    `datasets` reads a ``.json`` file that is one pretty-printed object, or several
    of them one after another, as records (Arrow's JSON reader takes any white
    space between and inside objects); JSON Lines have a whole record per line.
    """
    with path.open("rb") as fh:
        head = fh.read(CHUNK)
    if has_bom:
        head = head[3:]
    first = len(head) - len(head.lstrip(b" \t\r\n"))
    end = head.find(b"\n", first)
    if end >= 0:  # the first line a whole record (valid UTF-8 and JSON): JSON Lines, without decoding the rest
        try:
            orjson.loads(head[first:end])
            return False
        except orjson.JSONDecodeError:
            pass
    text = head.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(_WS))
    newline = text.find("\n", start)
    if newline < 0:
        return False
    try:
        orjson.loads(text[start:newline])
        return False  # the first line is a whole record: JSON Lines
    except orjson.JSONDecodeError:
        pass
    try:
        _, end = _decoder.raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError):
        # broken: a lone "{" opens a pretty-printed object (reported once, where it
        # breaks); any other first line that fails is a bad JSON Line
        return text[start:newline].strip() == "{"
    return end > newline


def container(path: Path) -> str:
    """How a ``.json`` / ``.jsonl`` file holds its records: ``"lines"``, ``"array"`` or ``"objects"``.

    ``"objects"`` is pretty-printed objects one after another (or just one),
    which `datasets` reads like JSON Lines.
    """
    first, has_bom = _first_byte(path)
    if first == b"[":
        return "array"
    if first == b"{" and _spans_lines(path, has_bom):
        return "objects"
    return "lines"


def is_json_lines(path: Path) -> bool:
    """Whether a ``.json`` / ``.jsonl`` file holds JSON Lines (one record per line), not a top-level array.

    Only JSON Lines can be split into byte ranges (``--jobs``).
    """
    return DATA_EXTENSIONS.get(path.suffix.lower()) == "json" and container(path) == "lines"


def iter_json(path: Path, problem: ProblemSink) -> Iterator[Record]:
    """Records of a ``.json`` / ``.jsonl`` file: an array is streamed element by element, and so are
    pretty-printed objects one after another."""
    first, has_bom = _first_byte(path)
    if has_bom:
        problem(LoadProblem("FMT204", "the file starts with a UTF-8 byte order mark (BOM)", line=1))
    kind = container(path)
    if kind == "lines":
        return _iter_lines(path, problem, has_bom)
    return _iter_elements(path, problem, has_bom, array=kind == "array")


def _utf8_error(exc: UnicodeDecodeError, line: int, index: int) -> LoadProblem:
    return LoadProblem("FMT203", f"invalid UTF-8 (byte 0x{exc.object[exc.start]:02x} at byte {exc.start} of the line)", line, index)


def _iter_lines(path: Path, problem: ProblemSink, has_bom: bool) -> Iterator[Record]:
    return iter_line_range(path, problem)


def line_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Split a JSON Lines file into ``parts`` byte ranges that start and end on line boundaries.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_bytes(b'{"a": 1}\\n{"a": 2}\\n{"a": 3}\\n')
    >>> line_ranges(p, 2)
    [(0, 18), (18, 27)]
    """
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as fh:
        for k in range(1, parts):
            fh.seek(max(cuts[-1], size * k // parts))
            fh.readline()
            cuts.append(fh.tell())
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def iter_line_range(
    path: Path,
    problem: ProblemSink,
    start: int = 0,
    end: int | None = None,
    counts: list[int] | None = None,
    screen: Callable[[bytes, int, int], bool] | None = None,
) -> Iterator[Record]:
    """Records of the JSON Lines in bytes ``[start, end)`` (from :func:`line_ranges`), with local
    indices and line numbers; a leading BOM is skipped (the caller reports it).

    ``counts``, when given, is set to ``[records, lines]`` read, so shards can be joined.
    ``screen(raw, index, line)``, when given, sees each line first: a line it
    returns True for is taken care of (``fmtkit convert``'s fast lane wrote it),
    so it is neither decoded nor yielded.
    """
    loads = decode_line
    make = tuple.__new__  # Record(...) without the Python-level __new__: this is the hot loop
    index = lineno = 0
    with path.open("rb", buffering=READ_BUFFER) as fh:  # a big buffer: measured 0.85 -> 0.35 us per 1.6 kB line
        pos = _seek_lines(fh, start)
        for raw in fh:
            if end is not None:
                if pos >= end:
                    break
                pos += len(raw)
            lineno += 1
            if raw.isspace():  # a line is never empty; white space only is skipped
                continue
            if screen is not None and screen(raw, index, lineno):
                index += 1
                continue
            try:
                value = loads(raw)
            except orjson.JSONDecodeError as exc:
                problem(json_problem(raw, exc, lineno, index))
                index += 1
                continue
            yield make(Record, (index, lineno, value, raw))
            index += 1
    if counts is not None:
        counts[:] = [index, lineno]


def _seek_lines(fh, start: int) -> int:
    """Put ``fh`` at byte ``start`` (past a leading BOM at 0); the position it is at."""
    fh.seek(start)
    if start == 0 and fh.read(3) != BOM:
        fh.seek(0)
    return fh.tell()


BLOCK_BYTES = 64 << 10  # lines read per block: a bad record sends ~60 short records down the per-record path


def iter_line_blocks(path: Path, problem: ProblemSink, start: int = 0, end: int | None = None, counts: list[int] | None = None,
                     size: int | None = None) -> Iterator[tuple[int, range, list, list[bytes]]]:  # fmt: skip
    """What :func:`iter_line_range` yields, grouped: ``(index, lines, values, raws)`` for runs of consecutive records.

    Lines are read ``size`` bytes at a time and decoded in one C-level ``map``;
    a block holding a blank or undecodable line is read line by line, exactly as
    :func:`iter_line_range` does (its problems reported, its good records in
    runs), so indices, lines and messages are the same.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_bytes(b'{"a": 1}\\n{"a": 2}\\n\\n{"a": 3}\\n')
    >>> [(i, list(ln), v) for i, ln, v, _ in iter_line_blocks(p, print)]
    [(0, [1, 2], [{'a': 1}, {'a': 2}]), (2, [4], [{'a': 3}])]
    """
    decode = _decode_exact
    index = lineno = 0
    with path.open("rb", buffering=READ_BUFFER) as fh:
        pos = _seek_lines(fh, start)
        while True:
            lines = fh.readlines(size or BLOCK_BYTES)
            if not lines:
                break
            last = False
            if end is not None:  # the lines that start before `end`
                ends = list(accumulate(map(len, lines), initial=pos))
                k = bisect_left(ends, end, 0, len(lines))
                if k < len(lines):
                    lines, last = lines[:k], True
                pos = ends[k]
            try:
                values = None if any(map(bytes.isspace, lines)) else list(map(decode, lines))
            except (ValueError, RecursionError):
                values = None
            if values is not None:
                if values:
                    yield index, range(lineno + 1, lineno + 1 + len(values)), values, lines
                index += len(values)
                lineno += len(values)
            else:  # line by line
                run_v: list = []
                run_r: list[bytes] = []
                for raw in lines:
                    lineno += 1
                    if raw.isspace():
                        value = _NOT_DECODED
                    else:
                        try:
                            value = decode_line(raw)
                        except orjson.JSONDecodeError as exc:
                            if run_v:
                                yield index - len(run_v), range(lineno - len(run_v), lineno), run_v, run_r
                                run_v, run_r = [], []
                            problem(json_problem(raw, exc, lineno, index))
                            index += 1
                            continue
                    if value is _NOT_DECODED:
                        if run_v:
                            yield index - len(run_v), range(lineno - len(run_v), lineno), run_v, run_r
                            run_v, run_r = [], []
                        continue
                    run_v.append(value)
                    run_r.append(raw)
                    index += 1
                if run_v:
                    yield index - len(run_v), range(lineno + 1 - len(run_v), lineno + 1), run_v, run_r
            if last:
                break
    if counts is not None:
        counts[:] = [index, lineno]


def json_problem(raw: bytes, exc: orjson.JSONDecodeError, lineno: int, index: int) -> LoadProblem:
    """The FMT201 / FMT203 problem for a JSON Lines line that does not decode."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return _utf8_error(uexc, lineno, index)
    if b"\x00" in raw:
        return LoadProblem("FMT201", "not JSON: the line holds binary data (NUL bytes)", lineno, index)
    col = getattr(exc, "colno", None)
    msg = str(exc.msg if hasattr(exc, "msg") else exc)
    where = f" at column {col}" if col else ""
    return LoadProblem("FMT201", f"invalid JSON{where}: {msg}", lineno, index)


def _iter_values(path: Path, problem: ProblemSink, has_bom: bool, array: bool, resume: tuple[int, int, int, bool, int] | None = None) -> Iterator[Record]:
    """Decode a top-level array (``array``), or JSON objects one after another, one value at a time, exactly.

    The buffer holds at most the current element plus one chunk; ``line``
    counts newlines consumed so far so each element knows where it starts.
    ``resume``: (byte, line, index, expect_value, column) where :func:`_iter_elements` stopped.
    """
    with path.open("rb") as fh:
        if resume is not None:
            fh.seek(resume[0])
        elif has_bom:
            fh.read(3)
        reader = _TextChunks(fh)
        buf = reader.read() or ""
        column = 0  # the column of buf[0], while its line is in the buffer
        if resume is None:
            pos = buf.index("[") + 1 if array else 0
            line = 1 + buf.count("\n", 0, pos)
            index = 0
            expect_value = True
        else:
            pos, (_, line, index, expect_value, column) = 0, resume
        while True:
            # skip white space and one comma between elements
            while True:
                while pos < len(buf) and buf[pos] in _WS:
                    if buf[pos] == "\n":
                        line += 1
                    pos += 1
                if pos < len(buf):
                    break
                more = reader.read()
                if more is None:
                    if array:
                        problem(LoadProblem("FMT201", "invalid JSON: the file ends inside the top-level array (truncated?)", line, index))
                    return
                column = _column_at(buf, pos, column)
                buf, pos = buf[pos:] + more, 0
            ch = buf[pos]
            if not array:
                expect_value = True  # objects follow each other with nothing between them
            elif ch == "]":
                if expect_value and index:  # "[{...},]": Python's json and datasets refuse it
                    problem(LoadProblem("FMT201", "invalid JSON: a trailing ',' before ']'", line, index))
                    return
                _after_array(reader, buf, pos + 1, line, index, problem)
                return
            elif ch == ",":
                if expect_value:
                    problem(LoadProblem("FMT201", "invalid JSON: unexpected ','", line, index))
                    return
                expect_value = True
                pos += 1
                continue
            if not expect_value:
                problem(LoadProblem("FMT201", "invalid JSON: expected ',' or ']' between array elements", line, index))
                return
            while True:
                try:
                    value, end = _decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    more = reader.read(len(buf))  # grow geometrically: huge records stay linear
                    if more is None:
                        err_line = line + buf.count("\n", pos, exc.pos)
                        col = exc.colno + (column if buf.rfind("\n", 0, exc.pos) < 0 else 0)
                        problem(LoadProblem("FMT201", f"invalid JSON at column {col}: {exc.msg}", err_line, index))
                        return
                    column = _column_at(buf, pos, column)
                    buf, pos = buf[pos:] + more, 0
                except RecursionError:
                    problem(LoadProblem("FMT201", "invalid JSON: nested too deeply", line, index))
                    return
            if reader.error is not None:
                problem(reader.error._replace(line=line, record=index))
                return
            if (buf.find("\\ud", pos, end) >= 0 or buf.find("\\uD", pos, end) >= 0) and _lone_surrogate(value):
                # the stdlib decoder accepts "\ud800" alone; orjson (JSON Lines) and Arrow reject it
                problem(LoadProblem("FMT201", "invalid JSON: a lone UTF-16 surrogate escape (\\ud800-\\udfff) is not a character", line, index))
                line += buf.count("\n", pos, end)
                pos = end
                index += 1
                expect_value = False
                continue
            yield Record(index, line, value)
            line += buf.count("\n", pos, end)
            pos = end
            index += 1
            expect_value = False
            if pos > CHUNK:  # drop what has been consumed
                column = _column_at(buf, pos, column)
                buf, pos = buf[pos:], 0

_GAP = re.compile(rb"[ \t\r\n]*")


def iter_json_blocks(path: Path, problem: ProblemSink, size: int = 256, span: tuple[int, int] | None = None,
                     counts: list[int] | None = None) -> Iterator[tuple[int, list[int], list, list[bytes] | None]]:  # fmt: skip
    """The records of a ``.json`` file holding an array (or objects one after another) in blocks ``(index, lines, values, raws)``.

    ``raws`` are the elements' bytes as written (None for the elements read by
    the exact path); a block holds consecutive records, at most ``size``. ``span`` and
    ``counts``: one range of :func:`element_ranges` (see :func:`_element_blocks`).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.json"
    >>> _ = p.write_text('[\\n  {"a": 1},\\n  {"a": 2}\\n]\\n')
    >>> [(i, lines, values, raws) for i, lines, values, raws in iter_json_blocks(p, print)]
    [(0, [2, 3], [{'a': 1}, {'a': 2}], [b'{"a": 1}', b'{"a": 2}'])]
    """
    _, has_bom = _first_byte(path)
    if has_bom and not (span and span[0]):
        problem(LoadProblem("FMT204", "the file starts with a UTF-8 byte order mark (BOM)", line=1))
    held: list[LoadProblem] = []  # problems met reading the next records: reported after the records before them
    start, lines, values, raws = 0, [], [], []
    for index, got_lines, got, got_raws in _element_blocks(path, held.append, has_bom, container(path) == "array", True, span, counts):
        if values and (held or index != start + len(values) or len(values) + len(got) > size or (got_raws is None) != (raws is None)):
            yield start, lines, values, raws
            lines, values, raws = [], [], []
        for p in held:
            problem(p)
        held.clear()
        if not values:
            start, raws = index, None if got_raws is None else []
        lines.extend(got_lines)
        values.extend(got)
        if raws is not None:
            raws.extend(got_raws)
    if values:
        yield start, lines, values, raws
    for p in held:
        problem(p)


def _iter_elements(path: Path, problem: ProblemSink, has_bom: bool, array: bool) -> Iterator[Record]:
    """The records of :func:`_element_blocks`, one at a time."""
    make = tuple.__new__  # Record(...) without the Python-level __new__, as iter_line_range
    for index, lines, values, _ in _element_blocks(path, problem, has_bom, array):
        for k, value in enumerate(values):
            yield make(Record, (index + k, lines[k], value, None))


class ShardFailed(Exception):
    """A byte range of an array (``--jobs``) held something only the whole-file reader may judge: read the file in one process."""


def element_ranges(path: Path, parts: int) -> list[tuple[int, int]] | None:
    """Split a pretty-printed JSON array into ``parts`` byte ranges cut at the line of an element, or None.

    The cut is the line start of the ``{`` after ``\\n<indent>},\\n<indent>`` at the indentation of
    the first element (``json.dump(indent=N)``); a cut that is not between two
    elements makes a range fail to read (:class:`ShardFailed`), and the file is
    then read in one process.

    >>> import tempfile, pathlib, json
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.json"
    >>> _ = p.write_text(json.dumps([{"a": i} for i in range(4)], indent=2))
    >>> element_ranges(p, 2)
    [(0, 62), (62, 82)]
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(CHUNK)
        at = _GAP.match(head, 3 if head.startswith(BOM) else 0).end()
        if head[at : at + 1] != b"[":
            return None
        first = _GAP.match(head, at + 1).end()
        lead = head.rfind(b"\n", 0, first) + 1
        indent = head[lead:first]
        if head[first : first + 1] != b"{" or not lead or indent.strip(b" \t"):
            return None
        sep = b"\n" + indent + b"},\n" + indent + b"{"
        cuts = [0]
        for k in range(1, parts):
            fh.seek(max(cuts[-1] + 1, size * k // parts))
            where = fh.tell()
            found = fh.read(CHUNK).find(sep)  # the next element is near: read more only for huge ones
            if found < 0:
                fh.seek(where)
                found = fh.read(16 << 20).find(sep)
            if found < 0:
                return None
            cuts.append(where + found + len(sep) - len(indent) - 1)  # the start of the element's line
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _element_blocks(path: Path, problem: ProblemSink, has_bom: bool, array: bool, with_bytes: bool = False,
                    span: tuple[int, int] | None = None, counts: list[int] | None = None) -> Iterator[tuple]:  # fmt: skip
    """The values of a top-level array (``array``) or of objects one after another, at JSON Lines speed.

    A byte-level splitter: an element that fits on its line, or one whose
    closing bracket sits on a line of its own at the indentation of its
    opening line (``json.dump(..., indent=N)``, as LLaMA-Factory writes its
    files), is cut out and decoded by ``msgspec`` (which refuses what the
    stdlib would read otherwise: NaN, lone surrogates, 1e400). Raw newlines
    occur only between tokens, and an object or array that decodes whole ends
    where its closing bracket is, so the cut is the element. Anything else (a
    one-line array, an element that does not decode, invalid UTF-8, what
    follows the last element) goes on with :func:`_iter_values` from the end
    of the last element, so every message and line stays the exact path's.
    The buffer holds at most the current element plus one chunk.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.json"
    >>> _ = p.write_text('[\\n  {\\n    "a": [\\n      1\\n    ]\\n  },\\n  {"a": 2}\\n]\\n')
    >>> [(r.line, r.value) for r in _iter_elements(p, print, False, True)]
    [(2, {'a': [1]}), (7, {'a': 2})]

    It yields blocks ``(index, lines, values, raws)`` of consecutive records
    (``raws``: their bytes, ``with_bytes``); in the steady state of
    ``json.dump(indent=N)`` the rest of the buffer is split at once.

    ``span``: only the elements in bytes ``[start, end)`` of an array (from
    :func:`element_ranges`), with local indices and lines; ``counts`` is then
    set to ``[records, newlines]`` read, and anything the exact reader would
    have to judge raises :class:`ShardFailed`.
    """
    loads = msgspec.json.Decoder().decode  # as fast as orjson here, and exact on integers beyond 64 bits, like the stdlib
    origin, stop = span or (0, None)
    with path.open("rb") as fh:
        fh.seek(origin)

        def read(n: int) -> bytes:
            return fh.read(n if stop is None else min(n, stop - fh.tell()))

        buf = read(CHUNK)
        eof = len(buf) < CHUNK
        valid = _utf8(buf, eof)  # invalid UTF-8 at the start: the exact path says where (later, an element that holds it does not decode)
        base = 0  # the file offset of buf[0]
        done = _GAP.match(buf, 3 if has_bom and not origin else 0).end() + (1 if array and not origin else 0)  # container() saw the "["
        done_line = 1 + buf.count(b"\n", 0, done)
        index = 0  # done: the end of the last element (or of "["): where the exact path takes over
        grow = 0  # > 0: the element does not fit in the buffer, read this much more
        split = True  # the buffer may be split at once (no element of it failed to decode yet)
        while True:
            if not eof and (grow or len(buf) - done < (1 << 16)):  # keep a whole element in the buffer
                want = max(CHUNK, grow)
                more = read(want)
                eof = len(more) < want
                buf, base, done, grow = buf[done:] + more, base + done, 0, 0
                split = True
            expect_value, line = index == 0 or not array, done_line
            gap = _GAP.match(buf, done).end()
            if not expect_value and gap < len(buf) and buf[gap] == 0x2C:  # ","
                expect_value = True
                gap = _GAP.match(buf, gap + 1).end()
            bracket = _CLOSING.get(buf[gap]) if gap < len(buf) else None
            if not expect_value or bracket is None or not valid:
                break  # "]", the end of the data, or anything unusual: the exact path decides
            start = gap
            line += buf.count(b"\n", done, start)
            eol = buf.find(b"\n", start)
            if eol < 0:
                eol = len(buf)
            end = buf.rfind(bracket, start, eol) + 1  # the element on its own line
            value = _loads(loads, buf, start, end) if end > start + 1 else _NOT_DECODED
            lead = buf.rfind(b"\n", 0, start) + 1
            if value is _NOT_DECODED:  # an element written over several lines: its closing line
                indent = buf[lead:start]
                if indent.strip(b" \t"):
                    break
                closer = buf.find(b"\n" + indent + bracket, eol)
                if closer < 0:
                    if eof:
                        break
                    grow = 2 * len(buf)  # a huge element: grow the buffer geometrically, then look again
                    continue
                end = closer + len(indent) + 2
                value = _loads(loads, buf, start, end)
                if value is _NOT_DECODED:
                    break
            yield index, (line,), (value,), (buf[start:end],) if with_bytes else None
            index += 1
            done = end
            done_line = line + buf.count(b"\n", start, end)
            if array and end > eol:  # an element over several lines
                # the steady state of json.dump(indent=N): "\n<indent>},\n<indent>{" between elements, found with
                # two searches per element; anything else goes back to the steps above
                step, closing = b",\n" + buf[lead:start + 1], b"\n" + buf[lead:start] + bracket
                skip, sep, opener = len(step) - 1, closing + step, step[-1:]
                while buf.startswith(step, done) and (eof or len(buf) - done >= (1 << 16)):
                    if split:  # every element the separators enclose, each decoded on its own
                        first = done + len(step)
                        pieces = buf[first:].split(sep)
                        pieces.pop()  # the last one may not be whole
                        elems = list(map(b"".join, zip(repeat(opener), pieces, repeat(closing))))  # one copy each
                        try:
                            values = list(map(loads, elems))
                        except (msgspec.DecodeError, RecursionError):
                            values, split = None, False  # one at a time for the rest of this buffer
                        if values:
                            n = len(values)
                            lines = list(accumulate(map(add, map(bytes.count, pieces, repeat(b"\n")), repeat(2)), initial=done_line + 1))
                            yield index, lines[:n], values, elems if with_bytes else None
                            index += n
                            done = first + sum(map(len, pieces)) + len(sep) * (n - 1) + len(closing)
                            done_line = lines[n] - 1
                            continue
                    start = done + skip
                    closer = buf.find(closing, start)
                    if closer < 0:
                        break
                    end = closer + len(closing)
                    try:
                        value = loads(buf[start:end])
                    except (msgspec.DecodeError, RecursionError):
                        break
                    line = done_line + 1
                    yield index, (line,), (value,), (buf[start:end],) if with_bytes else None
                    index += 1
                    done = end
                    done_line = line + buf.count(b"\n", start, end)
        if span is not None:  # a range of the array: it must end after an element, with "," (or "]" at the end of the file)
            tail = buf[done:].strip(b" \t\r\n")
            if not eof or not index or tail != (b"]" if stop == path.stat().st_size else b","):
                raise ShardFailed(path)
            if counts is not None:
                counts[:] = [index, done_line - 1 + buf.count(b"\n", done)]
            return
    if index == 0:  # nothing read fast: the exact path from the start
        rest = _iter_values(path, problem, has_bom, array)
    else:
        line_start = max(buf.rfind(b"\n", 0, done) + 1, 3 if has_bom and base == 0 else 0)  # the exact path's columns leave out a BOM
        column = len(buf[line_start:done].decode("utf-8"))
        rest = _iter_values(path, problem, has_bom, array, resume=(base + done, done_line, index, index == 0 or not array, column))
    for r in rest:
        yield r.index, (r.line,), (r.value,), None


_NOT_DECODED = object()
_CLOSING = {0x7B: b"}", 0x5B: b"]"}


def _loads(loads, buf: bytes, start: int, end: int):
    """``buf[start:end]`` decoded, or _NOT_DECODED."""
    if end <= start:
        return _NOT_DECODED
    try:
        return loads(buf[start:end])
    except (msgspec.DecodeError, RecursionError):
        return _NOT_DECODED


def _utf8(data: bytes, final: bool) -> bool:
    """Whether ``data`` is UTF-8 (but for a character cut at its end, unless ``final``)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not final and exc.end == len(data) and exc.reason == "unexpected end of data"
    return True


def _column_at(buf: str, pos: int, column: int) -> int:
    """The column (0-based) of ``buf[pos]``, given that of ``buf[0]``."""
    newline = buf.rfind("\n", 0, pos)
    return pos - newline - 1 if newline >= 0 else column + pos


def _lone_surrogate(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def _after_array(reader: _TextChunks, buf: str, pos: int, line: int, index: int, problem: ProblemSink) -> None:
    """Only white space may follow the top-level array (``datasets`` fails on anything else)."""
    while True:
        rest = buf[pos:]
        stripped = rest.lstrip(_WS)
        if stripped:
            line += rest.count("\n", 0, len(rest) - len(stripped))
            problem(LoadProblem("FMT201", "invalid JSON: extra data after the top-level array", line, index))
            return
        line += rest.count("\n")
        more = reader.read()
        if more is None:
            return
        buf, pos = more, 0


class _TextChunks:
    """Reads UTF-8 text in chunks without splitting a character; records a decoding error once."""

    def __init__(self, fh):
        self.fh = fh
        self.pending = b""
        self.error: LoadProblem | None = None
        self.done = False

    def read(self, size: int = CHUNK) -> str | None:
        if self.done:
            return None
        data = self.fh.read(max(size, CHUNK))
        if not data:
            self.done = True
            if self.pending:
                return self._decode(self.pending, final=True)
            return None
        data, self.pending = self.pending + data, b""
        cut = len(data)
        # keep an incomplete trailing UTF-8 sequence for the next chunk
        for back in range(1, 4):
            if cut - back >= 0 and (data[cut - back] & 0xC0) == 0xC0:
                need = 2 if data[cut - back] < 0xE0 else 3 if data[cut - back] < 0xF0 else 4
                if back < need:
                    cut -= back
                break
        data, self.pending = data[:cut], data[cut:]
        return self._decode(data, final=False)

    def _decode(self, data: bytes, final: bool) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.error = LoadProblem("FMT203", f"invalid UTF-8 (byte 0x{data[exc.start]:02x})")
            return data.decode("utf-8", errors="replace")

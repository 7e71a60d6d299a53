"""Where in the text a finding is: the line and column of the value its JSON Pointer names.

The record loop knows a finding's record (its index and the line where it
starts) and, for many rules, a JSON Pointer to the offending value inside it
(``/conversations/1/from``). :func:`locate` reads each JSON or JSON Lines file
that has findings once more and moves each such finding to the line and column
of that value, or, without a pointer, to the column where its record starts.
Columns count characters, 1-based.

>>> _find('{"a": [1, {"b": "x"}]}', 0, "/a/1/b")
16
>>> _find('{"a": 1}', 0, "/nope") is None
True
"""

from __future__ import annotations

import json
from pathlib import Path

from fmtkit.loading.json_file import is_json_lines

_WS = " \t\r\n"


def pointer(*parts) -> str:
    """A JSON Pointer (RFC 6901) from keys and indices.

    >>> pointer("conversations", 1, "from"), pointer("a/b", "m~n")
    ('/conversations/1/from', '/a~1b/m~0n')
    """
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _tokens(ptr: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:]] if ptr else []


def _ws(text: str, i: int) -> int:
    while text[i] in _WS:
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """The index after the string that starts (with its quote) at ``i``."""
    j = i + 1
    while text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _skip(text: str, i: int) -> int:
    """The index after the JSON value that starts at ``i``."""
    ch = text[i]
    if ch == '"':
        return _string_end(text, i)
    if ch in "{[":
        depth = 0
        while True:
            ch = text[i]
            if ch == '"':
                i = _string_end(text, i)
                continue
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while text[i] not in ",}]" + _WS:
        i += 1
    return i


def _find(text: str, start: int, ptr: str) -> int | None:
    """The index in ``text`` of the value ``ptr`` names in the JSON value starting at or after ``start``."""
    try:
        i = _ws(text, start)
        for token in _tokens(ptr):
            if text[i] == "{":
                i = _ws(text, i + 1)
                while text[i] != "}":
                    end = _string_end(text, i)
                    key = json.loads(text[i:end])
                    i = _ws(text, _ws(text, end) + 1)  # past the ':'
                    if key == token:
                        break
                    i = _ws(text, _skip(text, i))
                    if text[i] == ",":
                        i = _ws(text, i + 1)
                else:
                    return None
            elif text[i] == "[" and token.isdigit():
                i = _ws(text, i + 1)
                for _ in range(int(token)):
                    if text[i] == "]":
                        return None
                    i = _ws(text, _skip(text, i))
                    if text[i] == ",":
                        i = _ws(text, i + 1)
                if text[i] == "]":
                    return None
            else:
                return None
        return i
    except (IndexError, ValueError):
        return None


def line_starts(text: str) -> list[int]:
    """The offset where each line of ``text`` starts.

    >>> line_starts("a\\nbc\\n")
    [0, 2, 5]
    """
    starts = [0]
    i = text.find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


def value_span(text: str, start: int, ptr: str) -> tuple[int, int] | None:
    """(start, end) offsets of the value ``ptr`` names in the JSON value at or after ``start``.

    >>> text = '{"a": [1, "x"]}'
    >>> a, b = value_span(text, 0, "/a/1"); text[a:b]
    '"x"'
    """
    at = _find(text, start, ptr)
    if at is None:
        return None
    try:
        return at, _skip(text, at)
    except IndexError:
        return None


def locate(root: str, findings: list, path_of=None) -> None:
    """Set ``line`` and ``column`` of the findings (in place) from their files' text, as the module says.

    ``path_of(file)``: where a finding's file is read (default ``root / file``; ``--remote``: the file in its store).
    """
    by_file: dict[str, list] = {}
    for f in findings:
        if f.file and f.line and f.column is None and f.file.lower().endswith((".json", ".jsonl")):
            by_file.setdefault(f.file, []).append(f)
    for file, group in by_file.items():
        path = Path(root) / file if path_of is None else path_of(file)
        try:
            if is_json_lines(path):
                _locate_lines(path, group)
            else:
                _locate_text(path.read_text(encoding="utf-8-sig", errors="replace"), group)
        except OSError:
            continue


def _locate_lines(path: Path, group: list) -> None:
    """JSON Lines: each record is one line; read the file once, up to the last line asked for."""
    wanted: dict[int, list] = {}
    for f in group:
        wanted.setdefault(f.line, []).append(f)
    last = max(wanted)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        for n, text in enumerate(fh, 1):
            for f in wanted.get(n, ()):
                _place(f, text, 0, n)
            if n >= last:
                break


def _locate_text(text: str, group: list) -> None:
    """A JSON document: a record starts at its line and may span many."""
    starts = line_starts(text)
    for f in group:
        if f.line <= len(starts):
            _place(f, text, starts[f.line - 1], f.line, starts)


def _place(f, text: str, offset: int, line: int, starts: list[int] | None = None) -> None:
    try:
        begin = _ws(text, offset)
    except IndexError:
        return
    at = _find(text, begin, f.pointer) if f.pointer else None
    if at is None:
        if text[offset:begin].count("\n") == 0:  # the record starts on its line
            f.column = begin - offset + 1
        return
    if starts is None:  # one line
        f.column = at - offset + 1
        return
    import bisect

    row = bisect.bisect_right(starts, at)
    f.line, f.column = row, at - starts[row - 1] + 1

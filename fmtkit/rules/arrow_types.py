"""The Arrow layer: the one type per column that ``datasets`` gives a JSON file, nested fields included.

LLaMA-Factory and TRL load JSON and JSON Lines through ``datasets``, which
turns the records into an Arrow table before any row is read. This module
models what that load accepts, as measured on ``datasets`` 4.0.0 (the newest
LLaMA-Factory 0.9.5 allows) by ``tests/test_arrow_types.py``, and says which
record breaks it:

- **Within one part of the data** every path (``/meta/score``,
  ``/tool_calls/[]/function/arguments``) gets one type, the join of all its
  values: null fits any type (a missing key is null); integers and floats
  make a float; objects are structs whose fields are the union of all their
  keys; ``[]`` and ``{}`` fit any array and any object; list items join
  within and across rows. Any other pair (string and number, boolean and
  number, object and string, list and non-list, ...) fails ("changed from
  number to string"): FMT802 for a top-level column, FMT807 below it.
- **Parts**: ``datasets`` reads a JSON Lines file in 10 MB chunks and a
  folder entry file by file (in directory order), infers each part on its own
  and casts every later part to the types of the first (FMT808). A later part
  may not add a column or object field, nor give a value to a path the first
  part had only as null, ``[]`` or ``{}``; numbers and booleans cast to strings
  and to each other (a float with a fraction does not become an integer);
  objects and arrays cast to nothing else. ``datasets`` also casts text that
  spells a number ("7") to a number column; fmtkit reports it (it keeps
  types, not values).
- Arrow nests at most 63 levels, and in a file holding one JSON array
  ``datasets`` 4.0 goes through pandas, which cannot hold an integer beyond
  64 bits (FMT809).

``datasets`` releases with the ``Json`` feature type (4.7 and later, which
TRL needs; 5.2 measured) load a path whose type varies within a part, or
whose objects differ in keys, as JSON values, unaltered but for strings that
are JSON text, which they decode; LLaMA-Factory 0.9.5 pins
``datasets<=4.0.0``. So TRL's forms are judged with those semantics
(``problems(json_type=True)``), entries of ``dataset_info.json`` with 4.0's,
and a bare file of ``messages``, which both read, gets FMT813 (a warning)
for what only 4.0 rejects or alters.
The state is a few nodes per path, not per record (:class:`ArrowTally`), and
joins across the shards of ``--jobs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path

from fmtkit.dataset_info import DATA_EXTENSIONS
from fmtkit.rules import _JSON_TYPES, ERROR, WARNING, declare  # _JSON_TYPES: the package's JSON names of Python types (FMT802's words)

declare(
    "FMT807", "nested-type-drift", ERROR, "give the field one type in every record", "dataset",
    """A field inside a column changes type between records (number vs string, object vs string, list vs non-list).

    `datasets` gives every path of a JSON file one Arrow type, nested fields
    included, and fails with "JSON parse error: Column(/meta/score) changed
    from number to string" before any row is read. null and missing keys are
    fine (they become null), integers and floats join as float, objects join
    field by field (the union of their keys), and ``[]`` / ``{}`` fit any
    array / object. OpenAI ``tool_calls`` whose ``arguments`` objects give one
    key different types are the usual case (and objects that differ in keys
    load, but altered: FMT810).

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "meta": {"score": 1}}
        {"instruction": "Bye", "input": "", "output": "Goodbye", "meta": {"score": 2.5, "tag": "x"}}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "meta": {"score": 1}}
        {"instruction": "Bye", "input": "", "output": "Goodbye", "meta": {"score": "high"}}
    """,
)  # fmt: skip

declare(
    "FMT808", "late-schema-change", ERROR, "make the first part hold every column and field with its final type", "dataset",
    """A later part of the data has a column, field or type that the first part did not fix.

    `datasets` reads a JSON Lines file in 10 MB chunks and a folder entry file
    by file (in directory order, which is not sorted), infers each part on its
    own and casts every later part to the Arrow types of the first. A column
    or object field that first appears after the first part, a value where the
    first part had only null, ``[]`` or ``{}``, a float with a fraction where
    it had integers, or an object or list where it had another type, fails
    ("column names don't match", "Couldn't cast array of type ...").
    Numbers and booleans cast to strings and to each other, so those pass.

    Passes::

        # demo/a.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "meta": {"score": 1.5}}
        # demo/b.jsonl
        {"instruction": "Bye", "input": "", "output": "Goodbye", "meta": {"score": 2.5}}
        # dataset_info.json
        {"demo": {"file_name": "demo"}}

    Fails::

        # demo/a.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "meta": {"score": 1}}
        # demo/b.jsonl
        {"instruction": "Bye", "input": "", "output": "Goodbye", "meta": {"score": 1, "tag": "x"}}
        # dataset_info.json
        {"demo": {"file_name": "demo"}}
    """,
)  # fmt: skip

declare(
    "FMT809", "not-arrow", ERROR, "flatten the value, or store it as a JSON string", "dataset",
    """A value that `datasets` cannot turn into Arrow at all.

    Arrow nests at most 63 levels below the record ("Recursion level in
    ArrowSchema struct exceeded"), and a file holding one JSON array goes
    through pandas, which cannot hold an integer beyond 64 bits (any below the
    top level, or one below -2**63 or from 2**64 at the top level).

    Passes::

        # demo.json
        [{"instruction": "Hi", "input": "", "output": "Hello", "id": "123456789012345678901234567890"}]

    Fails::

        # demo.json
        [{"instruction": "Hi", "input": "", "output": "Hello", "id": 123456789012345678901234567890}]
    """,
)  # fmt: skip

declare(
    "FMT810", "arrow-changes-rendered-value", ERROR, "give the objects the same keys, or use ShareGPT function_call turns", "dataset",
    """Arrow changes a value that a chat template writes into the prompt: tool call arguments, tools, message content.

    `datasets` (4.0, LLaMA-Factory's pin) gives all objects of one path the
    same keys, filling the missing ones with null, and turns every integer of
    a path that also holds fractions into a float. LLaMA-Factory's openai
    reader writes each tool call's ``function`` (name and arguments) into the
    prompt with ``json.dumps``, and ``tools`` given as a list too: a call
    ``{"city": "Paris"}`` in a file that also has ``{"a": 1, "b": 2}`` is
    trained as ``{"city": "Paris", "a": null, "b": null}``. ``tools`` stored
    as a JSON string is kept as written; arguments stored as JSON strings are
    encoded a second time by that reader (FMT705), so tool calls whose
    arguments differ in keys belong in ShareGPT form, as ``function_call``
    turns whose values are JSON text (``fmtkit convert --to sharegpt``).

    `datasets` 4.7 and later (TRL's) store a path whose values vary in type
    (strings in some records, arrays or numbers in others) as JSON and decode
    every string there that is JSON text: a message content ``"42"`` beside
    contents that are lists of parts is rendered as the number 42, ``"true"``
    as a boolean, ``"[1, 2]"`` as an array. Give every content one type.

    Passes::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}
        {"messages": [{"role": "user", "content": "And in Rome?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Rome"}}}]}, {"role": "tool", "content": "rain"}, {"role": "assistant", "content": "Rain."}]}

    Fails::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}
        {"messages": [{"role": "user", "content": "Add"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]}, {"role": "tool", "content": "3"}, {"role": "assistant", "content": "3."}]}
    """,
)  # fmt: skip

declare(
    "FMT813", "arrow-llamafactory-only", WARNING, "for LLaMA-Factory, fix it as the finding says; TRL loads the file (decoding JSON-text strings there: FMT810)", "dataset",
    """A bare OpenAI-style file loads with TRL's `datasets` but not as LLaMA-Factory's `datasets` 4.0 reads it.

    A file of ``messages`` is both LLaMA-Factory's openai form and TRL's
    conversational form. `datasets` 4.7 and later (TRL needs them) load a path
    whose values vary in type, or objects that differ in keys, as its ``Json``
    type (unaltered, but for strings there that are JSON text, which it decodes:
    FMT810 says where); `datasets` 4.0, the newest LLaMA-Factory 0.9.5 allows,
    fails on the first (FMT802, FMT807) and fills the missing keys of the
    second with null (FMT810). Read through a ``dataset_info.json`` entry, the
    same file gets those errors.

    Passes::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "meta": {"source": "web"}}
        {"messages": [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye"}], "meta": {"source": "book"}}

    Fails::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "meta": {"source": "web"}}
        {"messages": [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye"}], "meta": {"source": 7}}
    """,
)  # fmt: skip


def split_by_loader(tally: ArrowTally) -> list[ArrowProblem]:
    """The Arrow problems of a file both loaders read (a bare OpenAI-style file): what TRL's ``datasets``
    (4.7 and later) rejects or alters keeps its code; what only LLaMA-Factory's (4.0) does becomes FMT813."""
    trl = tally.problems(json_type=True)
    both = {(p.code, p.record, p.pointer) for p in trl}
    lf = tally.problems()
    seen = {(p.code, p.record, p.pointer) for p in lf}
    out = [p for p in trl if (p.code, p.record, p.pointer) not in seen]  # what only TRL's datasets alters (content that is JSON text)
    decoded = {_column_path(p.pointer) for p in out}
    for p in lf:
        if (p.code, p.record, p.pointer) in both:
            out.append(p)
        else:
            trl_reads = "decodes its JSON-text strings (FMT810)" if _column_path(p.pointer) in decoded else "loads it as written"
            message = f"[{p.code} for LLaMA-Factory's datasets 4.0; TRL's datasets 4.7+ {trl_reads}] {p.message}"
            out.append(ArrowProblem("FMT813", p.record, p.line, p.pointer, message, p.fix))
    return sorted(out, key=lambda p: p.record)


def _column_path(pointer: str) -> str:
    """A JSON pointer with its array indices left out: the path of a column's type.

    >>> _column_path("/messages/1/content")
    '/messages/content'
    """
    return "/" + "/".join(part for part in pointer.split("/") if part and not part.isdigit())


CHUNK_BYTES = 10 << 20  # datasets' JsonConfig.chunksize: it reads JSON Lines in parts of this size
_NULL = type(None)
_INT64 = 1 << 63
MAX_DEPTH = 63  # the longest path (keys and list items below the record) Arrow takes
_TOO_DEEP, _TOO_BIG = "too deep", "too big"  # FMT809's conflicts, in place of a type
_NAMES = {_NULL: "null", bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object"}


class Shape:
    """The Arrow type of one path so far: ``py`` is the Python type of its values (None: only nulls yet).

    ``record``, ``line`` and ``path`` (a JSON pointer as a tuple) say where it
    got that type (or first appeared); ``fields`` (objects) and ``item``
    (arrays) hold the nested shapes; ``fraction``: a float with a fraction was
    seen (an integer column cannot take it); ``altered``: where Arrow first
    changes a value here (record, line, path, how): an object lacks keys
    others have (they become null), or an integer becomes a float; ``text``:
    the first message content here that is JSON text (record, line, path,
    value, decoded), which the ``Json`` type decodes if the path gets it.
    """

    __slots__ = ("py", "fields", "item", "record", "line", "path", "fraction", "altered", "text")

    def __init__(self, record: int, line: int | None, path: tuple):
        self.py = _NULL
        self.fields: dict[str, Shape] | None = None
        self.item: Shape | None = None
        self.record, self.line, self.path = record, line, path
        self.fraction = False
        self.altered: tuple | None = None
        self.text: tuple | None = None

    def describe(self) -> str:
        """In words, for messages: 'an object', 'an array that is always empty', ..."""
        if self.py is list and self.item is not None and self.item.py is _NULL:
            return "an array that is always empty"
        if self.py is dict and not self.fields:
            return "an object that is always empty"
        return _name(self.py)


@dataclass(frozen=True, slots=True)
class ArrowProblem:
    """A record that breaks the Arrow types: its rule code, where, what, and the fix."""

    code: str
    record: int
    line: int | None
    pointer: str
    message: str
    fix: str


def pointer(path: tuple) -> str:
    """A JSON pointer from a path tuple.

    >>> pointer(("tool_calls", 0, "function", "arguments"))
    '/tool_calls/0/function/arguments'
    """
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _schema_path(path: tuple) -> tuple:
    return tuple("[]" if type(p) is int else p for p in path)


class _Absorber:
    """Joins records into a root shape, noting the first conflict per schema path (``conflicts``)."""

    __slots__ = ("conflicts", "array_file")

    def __init__(self, conflicts: dict, array_file: bool):
        self.conflicts = conflicts
        self.array_file = array_file

    def fields(self, fields: dict, obj: dict, record: int, line, path: tuple) -> None:
        for k, v in obj.items():
            node = fields.get(k)
            if node is None:
                if len(path) >= MAX_DEPTH:
                    self._conflict(path + (k,), _TOO_DEEP, None, record, line)
                    continue
                fields[k] = node = Shape(record, line, path + (k,))
            t = type(v)
            if t is str and k == "content" and v[:1] in _TEXT_START and (v[:1] in _JSON_START or v[:3] in _LITERAL_START) and node.text is None:
                _note_text(node, v, record, line, path + (k,))
            if t is node.py and (t is str or t is bool):  # the common case: nothing to do
                continue
            if v is not None:
                self.value(node, v, t, record, line, path + (k,))

    def items(self, item: Shape, values: list, record: int, line, path: tuple) -> None:
        for i, v in enumerate(values):
            t = type(v)
            if t is item.py and (t is str or t is bool):
                continue
            if v is not None:
                self.value(item, v, t, record, line, path + (i,))

    def value(self, node: Shape, v, t: type, record: int, line, path: tuple) -> None:
        """Join a non-null value of type ``t`` into ``node``."""
        if t is int and not -_INT64 <= v < _INT64:
            if self.array_file and (len(path) > 1 or not 0 <= v < 2 * _INT64):
                self._conflict(path, _TOO_BIG, None, record, line)
                return
            if node.altered is None:
                node.altered = (record, line, path, "an integer beyond 64 bits becomes a float")
            t, v = float, 0.5  # pyarrow reads it as a float, which no integer column can take back
        nt = node.py
        if nt is t:
            if t is dict:
                n = len(node.fields)
                self.fields(node.fields, v, record, line, path)
                if node.altered is None and not n == len(node.fields) == len(v):
                    keys = ", ".join(map(repr, sorted(set(node.fields) - set(v)) or sorted(v)))
                    node.altered = (record, line, path, f"{_KEYS_DIFFER} ({keys}): each gets them all, the missing ones null")
            elif t is list:
                if v:
                    self.items(node.item, v, record, line, path)
            elif t is float and not node.fraction and not v.is_integer():
                node.fraction, node.record, node.line, node.path = True, record, line, path
            return
        if nt is _NULL:
            node.py, node.record, node.line, node.path = t, record, line, path
            if t is dict:
                node.fields = {}
                self.fields(node.fields, v, record, line, path)
            elif t is list:
                if len(path) >= MAX_DEPTH:
                    node.py = _NULL
                    self._conflict(path + (0,), _TOO_DEEP, None, record, line)
                    return
                node.item = Shape(record, line, path + (0,))
                if v:
                    self.items(node.item, v, record, line, path)
            elif t is float:
                node.fraction = not v.is_integer()
        elif nt is int and t is float or nt is float and t is int:
            if nt is int:
                node.py, node.fraction = float, not v.is_integer()
                node.record, node.line, node.path = record, line, path
            if node.altered is None:
                node.altered = (record, line, path, "integers and numbers with a fraction mix here: every one becomes a float (1 becomes 1.0)")
        else:
            self._conflict(path, t, node, record, line)

    def _conflict(self, path: tuple, now: type | str, was: Shape | None, record: int, line) -> None:
        key = _schema_path(path)
        seen = self.conflicts.get(key)
        if seen is None or record < seen[0]:
            self.conflicts[key] = (record, line, path, now, was)

    def join(self, a: Shape, b: Shape) -> None:
        """Join shape ``b`` (of later records) into ``a``; a conflict is placed where ``b`` got its type."""
        if a.text is None or b.text is not None and b.text[0] < a.text[0]:
            a.text = b.text
        if b.py is _NULL:
            return
        if a.py is _NULL:
            a.py, a.fields, a.item, a.fraction, a.altered = b.py, b.fields, b.item, b.fraction, b.altered
            a.record, a.line, a.path = b.record, b.line, b.path
        elif a.py is b.py or {a.py, b.py} == {int, float}:
            if a.altered is None and (b.altered is not None or a.py is not b.py or b.py is dict and a.fields.keys() != b.fields.keys()):
                keys = b.py is dict and a.py is dict and a.fields.keys() != b.fields.keys()
                how = f"{_KEYS_DIFFER} between the parts of the file --jobs read" if keys else "integers and numbers with a fraction mix here"
                a.altered = b.altered or (b.record, b.line, b.path, how)
            if b.py is float and (b.fraction and not a.fraction or a.py is int):
                a.py, a.fraction, a.record, a.line, a.path = float, a.fraction or b.fraction, b.record, b.line, b.path
            if b.py is dict:
                for k, node in b.fields.items():
                    mine = a.fields.get(k)
                    if mine is None:
                        a.fields[k] = node
                    else:
                        self.join(mine, node)
            elif b.py is list:
                self.join(a.item, b.item)
        else:
            self._conflict(b.path, b.py, a, b.record, b.line)


def _settled_objects(node: Shape, objs: list[dict]) -> bool:
    """Whether joining ``objs`` into the object shape ``node`` changes nothing: they share one key order, each
    key a field of ``node`` whose values are null or its type, a string or boolean, and no key is missing
    unless a missing key is noted already."""
    keys = set(map(tuple, objs))
    if len(keys) != 1:
        return False
    (order,) = keys
    if len(order) != len(node.fields) and node.altered is None:
        return False
    for k in order:
        field = node.fields.get(k)
        types = set(map(type, map(itemgetter(k), objs)))
        types.discard(_NULL)
        if field is None or types and (types != {field.py} or field.py not in (str, bool)):
            return False
    return True


def _cast_problem(src: Shape, dst: Shape, first: str) -> tuple[Shape, str] | None:
    """Why ``datasets`` cannot cast a later part's ``src`` to the ``first`` part's ``dst`` (the shape to blame and why), or None."""
    s, d = src.py, dst.py
    if s is _NULL:
        return None
    if d is _NULL:
        return src, f"is {src.describe()} here, but always null in {first}"
    if d is dict or s is dict:
        if s is not d:
            return src, f"is {src.describe()} here, but {dst.describe()} in {first}"
        for k, node in src.fields.items():
            mine = dst.fields.get(k)
            if mine is None:
                return node, f"is not in {first}"
            found = _cast_problem(node, mine, first)
            if found:
                return found
        return None
    if d is list or s is list:
        if s is not d:
            return src, f"is {src.describe()} here, but {dst.describe()} in {first}"
        return _cast_problem(src.item, dst.item, first)
    if d is str:
        return None  # numbers and booleans become text
    if s is str:
        return src, f"is a string here, but {dst.describe()} in {first}"
    if d is int and s is float and src.fraction:
        return src, f"has a fraction here, but is an integer in {first}"
    return None


def _part_problems(first: str, root: Shape, later: list[Shape], seen: set) -> list[tuple[Shape, str]]:
    """(shape, why) for each ``later`` part's root that does not cast to the first part's ``root``.

    One per part (the loader stops at the first) and per schema path (``seen``).
    """
    out = []
    for part in later:
        found = _cast_problem(part, root, first)
        if found is not None and _schema_path(found[0].path) not in seen:
            seen.add(_schema_path(found[0].path))
            out.append(found)
    return out


class ArrowTally:
    """Per-file state of the model: the root shape of each part (10 MB chunk) of the records, and the conflicts.

    ``add`` joins one record; ``join`` appends the tally of the next shard of
    the same file (its indices moved first with ``shift``); ``problems`` lists
    the findings. For a JSON Lines file over 10 MB, :func:`arrow_tally_for`
    gives ``chunks``: the file, the byte where the records given start, the
    chunk of that byte, and the bytes where later chunks start (see
    :func:`chunk_bounds`); records are placed by the bytes of their lines.
    """

    __slots__ = ("parts", "conflicts", "absorb", "_fields", "_clean_col", "_path", "_bounds", "_pos", "_last", "_file", "_source", "_skipped")

    def __init__(self, array_file: bool = False, chunks: tuple[Path, int, int, list[int]] | None = None, source: Path | None = None):
        self.conflicts: dict[tuple, tuple] = {}  # schema path -> (record, line, path, type now or _TOO_DEEP / _TOO_BIG, Shape before)
        self.absorb = _Absorber(self.conflicts, array_file)
        self._path, self._pos, first_chunk, self._bounds = chunks or (None, 0, 0, [])
        self._last = 0  # the line that ends at byte _pos
        self._file = None  # open while lines the reader skipped are stepped over (see _place)
        self.parts: list[tuple[int, Shape]] = [(first_chunk, _root())]
        self._fields = self.parts[0][1].fields  # the current part's columns
        self._clean_col: str | None = None  # a column whose shape a clean record cannot change (see add)
        self._source = source  # the file, read again if a content path varies in type and records were skipped
        self._skipped = False  # whether some records' clean_col went unwalked (their contents unseen)

    def add(self, record: int, line: int | None, rec: dict, clean_col: str | None = None, raw: bytes | None = None) -> None:
        """Join a record (``raw``: its line, in a JSON Lines file). ``clean_col``: a column the caller proved
        to be a list of objects each holding the same two keys with string values (record_loop's clean
        conversation); once the column's shape holds that, it is not walked again."""
        bounds = self._bounds
        if bounds:  # a JSON Lines file of several chunks: follow the bytes of the lines
            if line == self._last + 1 and self._pos < bounds[0]:
                self._pos += len(raw)
                self._last = line
            else:
                self._place(line, raw)
        self._join_record(record, line, rec, clean_col)

    def add_block(self, record: int, lines: Sequence[int], recs: list[dict], raws: list[bytes] | None, clean_col: str | None = None) -> None:
        """:meth:`add` for consecutive records (on ``lines``; ``raws``: their JSON Lines), in one step where they cannot change the shapes.

        After the first record, a block changes nothing when every key is a known
        column whose values are all null or of its type, a string or a boolean
        (``clean_col``, once settled, as in :meth:`add`), and no part starts within
        it; any other block is added record by record.
        """
        bounds = self._bounds
        if bounds and (raws is None or lines[0] != self._last + 1 or self._pos + sum(map(len, raws)) - len(raws[-1]) >= bounds[0]):
            for i, rec in enumerate(recs):
                self.add(record + i, lines[i], rec, clean_col, raws and raws[i])
            return
        if bounds:
            self._pos += sum(map(len, raws))
            self._last = lines[-1]
        self._join_record(record, lines[0], recs[0], clean_col)
        fields = self._fields
        for k in set().union(*recs):
            node = fields.get(k)
            if node is None:
                break
            if k == clean_col and k == self._clean_col:
                continue
            values = list(map(dict.get, recs, repeat(k)))
            types = set(map(type, values))
            types.discard(_NULL)
            if types == {dict} and node.py is dict:  # e.g. a preference pair's messages: objects of strings
                if not _settled_objects(node, [v for v in values if v is not None]):
                    break
            elif types and (len(types) > 1 or node.py not in types or node.py not in (str, bool)):
                break
        else:
            return
        for i in range(1, len(recs)):
            self._join_record(record + i, lines[i], recs[i], clean_col)

    def _join_record(self, record: int, line: int | None, rec: dict, clean_col: str | None) -> None:
        fields = self._fields
        if clean_col is not None and clean_col == self._clean_col:  # the hot path of a clean conversation file
            if len(rec) > 1:
                for k, v in rec.items():
                    if k != clean_col:
                        node = fields.get(k)
                        if node is None or type(v) is not node.py or type(v) is not str:
                            self.absorb.fields(fields, {k: v}, record, line, ())
            return
        self.absorb.fields(fields, rec, record, line, ())
        if clean_col is not None:
            item = fields[clean_col].item
            if item is not None and item.py is dict and all(item.fields[k].py is str for k in rec[clean_col][0]):
                self._clean_col = clean_col
                self._skipped = True

    def _place(self, line: int, raw: bytes) -> None:
        """Start a new part when the record's line starts at or past the next chunk's first byte."""
        if line != self._last + 1:  # lines the reader did not yield (blank, undecodable): step over them
            fh = self._file = self._file or self._path.open("rb")
            fh.seek(self._pos)
            for _ in range(line - self._last - 1):
                fh.readline()
            self._pos = fh.tell()
        if self._pos >= self._bounds[0]:
            while self._bounds and self._pos >= self._bounds[0]:
                self._bounds.pop(0)
                self.parts.append((self.parts[-1][0] + 1, _root()))
            self._fields = self.parts[-1][1].fields
            self._clean_col = None
            if not self._bounds:
                self.close()
        self._pos += len(raw)
        self._last = line

    def close(self) -> None:
        """Close the file :meth:`_place` opened (the records are all added)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self):  # a shard's tally goes back to the parent process: without the open file
        return tuple(None if k == "_file" else getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state) -> None:
        for k, v in zip(self.__slots__, state, strict=True):
            setattr(self, k, v)

    @property
    def columns(self) -> dict[str, str]:
        """Column -> JSON type name, for the columns with a non-null value in some record."""
        out: dict[str, str] = {}
        for _, root in self.parts:
            for k, node in root.fields.items():
                if node.py is not _NULL:
                    out.setdefault(k, _json_name(node.py))
        return out

    def shift(self, records: int, lines: int) -> None:
        """Move record indices and line numbers past an earlier shard's."""

        def move(node: Shape) -> None:
            node.record += records
            if node.line:
                node.line += lines
            if node.altered is not None:
                r, ln, *rest = node.altered
                node.altered = (r + records, ln + lines if ln else ln, *rest)
            if node.text is not None:
                r, ln, *rest = node.text
                node.text = (r + records, ln + lines if ln else ln, *rest)
            for child in (node.fields or {}).values():
                move(child)
            if node.item is not None:
                move(node.item)

        for _, root in self.parts:
            move(root)
        for key, (r, ln, *rest) in list(self.conflicts.items()):
            self.conflicts[key] = (r + records, ln + lines if ln else ln, *rest)

    def join(self, later: ArrowTally) -> None:
        """Append the tally of the next shard of the file."""
        self.close()
        self._skipped = self._skipped or later._skipped
        for key, v in later.conflicts.items():
            seen = self.conflicts.get(key)
            if seen is None or v[0] < seen[0]:
                self.conflicts[key] = v
        parts = later.parts
        if parts[0][0] == self.parts[-1][0]:  # the shard starts inside this chunk
            self.absorb.join(self.parts[-1][1], parts[0][1])
            parts = parts[1:]
        self.parts.extend(parts)

    def _json_content(self, fatal: dict) -> list[tuple]:
        """The first message content that is JSON text (record, line, path, value, decoded) of each column whose
        contents vary in type, so the ``Json`` type decodes them; the file is read again where clean records
        went unwalked (only a file whose contents vary in type pays for it)."""
        cols = [k[0] for k in self.conflicts if k not in fatal and len(k) == 3 and k[1:] == ("[]", "content")]
        if not cols:
            return []
        if self._skipped and self._source is not None:
            try:
                return _read_json_content(self._source, cols)
            except OSError:
                pass  # the file went away since it was read: what the walked records showed
        noted = ([t for t in map(_content_text, [root for _, root in self.parts], repeat(c)) if t is not None] for c in cols)
        return [min(texts) for texts in noted if texts]

    def problems(self, json_type: bool = False) -> list[ArrowProblem]:
        """FMT802 / FMT807 for conflicts within a part, FMT808 for later chunks that do not cast to the first, by record.

        ``json_type``: judge as ``datasets`` 4.7 and later do (TRL's), with the
        ``Json`` feature type: a path whose values vary in type, or objects
        that differ in keys, load as JSON values, unaltered; integers beyond
        64 bits below the top level of a JSON array file load too. Mixed
        integers and fractions still become floats, and the chunks and the
        nesting depth limit are the same.
        """
        self.close()
        conflicts = {k: v for k, v in self.conflicts.items() if not json_type or _fails_with_json_type(k, v[3])}
        out = [_conflict_problem(key, *v) for key, v in conflicts.items()]
        if json_type:  # the other conflicts load as JSON values, and a string there that is JSON text is decoded
            out += [_decoded_problem(*v) for key, v in self.conflicts.items() if key not in conflicts and _decodes_rendered_text(key, v[3], v[4])]
            out += [_decoded_content(text) for text in self._json_content(conflicts)]
        out += [_altered_problem(node, json_type) for node in _rendered(self.parts[0][1], json_type) if _schema_path(node.path) not in self.conflicts]
        first = "the first 10 MB of the file"
        for shape, why in _part_problems(first, self.parts[0][1], [root for _, root in self.parts[1:]], set(self.conflicts)):
            out.append(_late_problem(shape, why, "a JSON Lines file in chunks of 10 MB", f"move a record that has it, with its final type, into {first} (e.g. to the top)"))
        return sorted(out, key=lambda p: p.record)


def _root() -> Shape:
    root = Shape(0, None, ())
    root.py, root.fields = dict, {}
    return root


def _decodes_rendered_text(key: tuple, now: type | str, was: Shape | None) -> bool:
    """Whether a conflict the ``Json`` type absorbs involves strings in a value written into the prompt as JSON.

    A string where other records hold objects or arrays (tool call arguments, tools) is JSON text, which the
    ``Json`` type decodes: ``"{}"`` becomes ``{}``. (Other strings, such as ``"a"`` beside numbers, stay strings.)
    """
    rendered = key[0] == "tools" or any(k == "tool_calls" and "function" in key[i + 1:i + 3] for i, k in enumerate(key))
    kinds = {now, was.py if was is not None else None}
    return rendered and str in kinds and bool(kinds & {dict, list})


def _decoded_problem(record: int, line, path: tuple, now: type | str, was: Shape) -> ArrowProblem:
    where = pointer(path)
    message = (f"{where} is {_name(now)} here but {was.describe()} in record {was.record} (at {pointer(was.path)}): datasets (4.7 and later) "
               "stores these values as JSON and decodes the strings that are JSON text, so a chat template writes them as objects")  # fmt: skip
    return ArrowProblem("FMT810", record, line, where, message, "give the value one type in every record: all objects, or all JSON strings")


_JSON_START = frozenset('0123456789-[{" \t\n\r')  # how a string that is JSON text can start, or
_LITERAL_START = frozenset(("tru", "fal", "nul", "NaN", "Inf"))  # its first three characters
_TEXT_START = _JSON_START | frozenset("tfnNI")  # the first characters of both
_UJSON_NUMBER = re.compile(r"(-?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([-+]?[0-9]*))?")  # the numbers datasets' decoder (pandas' ujson) takes: "-", "01", "1." too
_LITERALS = {"true": True, "false": False, "null": None, "NaN": None, "Infinity": float("inf"), "-Infinity": float("-inf")}


def _note_text(node: Shape, v: str, record: int, line, path: tuple) -> None:
    """Note ``v`` on ``node`` if it is JSON text the ``Json`` type decodes."""
    decoded = _json_text(v)
    if decoded is not _NOT_JSON:
        node.text = (record, line, path, v, decoded)


_NOT_JSON = object()


def _json_text(s: str):
    """What ``datasets``' ``Json`` type reads back for the string ``s`` (pandas' ujson decodes it), or ``_NOT_JSON``.

    As measured on ``datasets`` 5.2: surrounding spaces, tabs and newlines are
    skipped; numbers are read leniently, integers within 64 bits; ``NaN``
    becomes null. Arrays and objects are judged by Python's JSON reader,
    which is stricter than ujson about some malformed text ("[01]").

    >>> _json_text(" 42"), _json_text("true"), _json_text('"x"'), _json_text("[1, 2]"), _json_text("True") is _NOT_JSON
    (42, True, 'x', [1, 2], True)
    """
    t = s.strip(" \t\n\r")
    if not t:
        return _NOT_JSON
    if t in _LITERALS:
        return _LITERALS[t]
    if t[0] in "-0123456789":
        m = _UJSON_NUMBER.fullmatch(t)
        if m is None:
            return _NOT_JSON
        sign, whole, frac, exp = m.groups()
        if frac is None and exp is None:
            n = int(sign + (whole or "0"))
            return n if -_INT64 <= n < 2 * _INT64 else _NOT_JSON
        return float(f"{sign}{whole or 0}.{frac or 0}e{(exp or '0').rstrip('+-') or 0}")
    if t[0] in '[{"':
        try:
            return json.loads(t)
        except ValueError:
            return _NOT_JSON
    return _NOT_JSON


def _read_json_content(source, cols: list[str]) -> list[tuple]:
    """The first message content that is JSON text (record, line, path, value, decoded) in each of ``cols``, read from ``source``."""
    from fmtkit.loading import iter_records

    found: dict[str, tuple] = {}
    for index, line, rec, _ in iter_records(source):
        for col in cols:
            msgs = rec.get(col) if type(rec) is dict and col not in found else None
            for i, m in enumerate(msgs if type(msgs) is list else ()):
                v = m.get("content") if type(m) is dict else None
                if type(v) is str and v[:1] in _TEXT_START and (decoded := _json_text(v)) is not _NOT_JSON:
                    found[col] = (index, line, (col, i, "content"), v, decoded)
                    break
        if len(found) == len(cols):
            break
    return list(found.values())


def _content_text(root: Shape, col: str) -> tuple | None:
    """The JSON text noted at ``/col/[]/content`` of one part, if any."""
    node = root.fields.get(col)
    node = node.item if node is not None else None
    node = node.fields.get("content") if node is not None and node.fields else None
    return node.text if node is not None else None


def _decoded_content(text: tuple) -> ArrowProblem:
    record, line, path, value, decoded = text
    where = pointer(path)
    what = "null" if decoded is None else f"{_name(type(decoded))} {json.dumps(decoded)}"
    message = (f"{where} is the string {json.dumps(value)}, JSON text: its values vary in type across records, so datasets (4.7 and later) "
               f"stores them as JSON and reads it back as {what}, and the chat template renders that, not the text")  # fmt: skip
    fix = 'give every content one type: all strings, or all lists of parts ([{"type": "text", "text": ...}])'
    return ArrowProblem("FMT810", record, line, where, message, fix)


def _fails_with_json_type(key: tuple, now: type | str) -> bool:
    """Whether a conflict still stops ``datasets`` with the ``Json`` type: too deep, or a top-level integer pandas cannot hold."""
    return now is _TOO_DEEP or now is _TOO_BIG and len(key) == 1


def _conflict_problem(key: tuple, record: int, line, path: tuple, now: type | str, was: Shape | None) -> ArrowProblem:
    where = pointer(path)
    if now is _TOO_BIG:
        return ArrowProblem("FMT809", record, line, where, f"{where} is an integer beyond 64 bits: datasets reads a JSON array file through pandas, which cannot hold it",
                            "write the number as a string, or the file as JSON Lines")  # fmt: skip
    if now is _TOO_DEEP:
        return ArrowProblem("FMT809", record, line, where, f"{pointer(path[:MAX_DEPTH])} nests deeper than the {MAX_DEPTH} levels Arrow takes below a record",
                            "flatten the value, or store it as a JSON string")  # fmt: skip
    fix = _fix(key, was.py, now)
    if len(key) == 1:
        message = f"column {key[0]!r} is {_json_name(was.py)} in record {was.record} but {_json_name(now)} here"
        return ArrowProblem("FMT802", record, line, where, message, fix)
    message = f"{where} is {_name(now)} here but {was.describe()} in record {was.record} (at {pointer(was.path)}): datasets cannot give {'/'.join(('',) + key)} one Arrow type"
    return ArrowProblem("FMT807", record, line, where, message, fix)


def _json_name(t: type) -> str:
    return _JSON_TYPES.get(t) or t.__name__


def _name(t: type) -> str:
    return _NAMES.get(t) or f"a {t.__name__}"


def _fix(key: tuple, was: type, now: type) -> str:
    where = "/".join(("",) + key)
    if "arguments" in key:
        return (f"give {where} one type in every tool call, or write the entry as ShareGPT with function_call turns "
                "(fmtkit convert --to sharegpt), whose arguments are JSON text")  # fmt: skip
    kinds = {was, now}
    if list in kinds:
        return f"make every {where} an array (wrap a single value in [ ]), or none of them"
    if str in kinds and dict not in kinds:
        return f"write every {where} as a string"
    return f"give {where} one type in every record (encode it as a JSON string if it must vary)"


_KEYS_DIFFER = "objects here differ in their keys"  # how an object path is altered when its objects differ in keys


def _rendered(root: Shape, json_type: bool = False):
    """The shapes whose values LLaMA-Factory writes into the prompt as JSON and Arrow altered:
    everything under a tool call's ``function`` (name and arguments) and under ``tools``.

    ``json_type``: objects that differ in keys load as JSON values, whole and unaltered (nothing below them is reported).
    """
    stack = [(k, node, k == "tools") for k, node in root.fields.items()]
    while stack:
        key, node, rendered = stack.pop()
        if json_type and node.altered is not None and node.altered[3].startswith(_KEYS_DIFFER):
            continue
        if rendered and node.altered is not None:
            yield node
        for k, child in (node.fields or {}).items():
            stack.append((k, child, rendered or k == "function" and key == "tool_calls"))
        if node.item is not None:
            stack.append((key, node.item, rendered))


def _altered_problem(node: Shape, json_type: bool = False) -> ArrowProblem:
    record, line, path, how = node.altered
    where = pointer(path)
    if json_type:
        fix = "write every such number with a fraction (1.0) or none, or store the value as a JSON string"
        message = f"{where}: {how}: datasets changes these values, and a chat template writes them into the prompt as JSON"
        return ArrowProblem("FMT810", record, line, where, message, fix)
    if "tool_calls" in _schema_path(path):
        fix = ("give every tool call's arguments the same keys, or write the entry as ShareGPT with function_call turns "
               "(fmtkit convert --to sharegpt): in OpenAI form, arguments written as JSON text are encoded twice (FMT705)")  # fmt: skip
    else:
        fix = "store `tools` as a JSON string (LLaMA-Factory and TRL parse it)"
    message = f"{where}: {how}: datasets (4.0 and before) changes these values, and LLaMA-Factory (or a chat template) writes them into the prompt as JSON"
    return ArrowProblem("FMT810", record, line, where, message, fix)


def _late_problem(shape: Shape, why: str, reads: str, fix: str) -> ArrowProblem:
    where = pointer(shape.path)
    what = f"column {shape.path[0]!r}" if len(shape.path) == 1 else where
    message = f"{what} {why}: datasets reads {reads} and casts every later one to the Arrow types of the first"
    return ArrowProblem("FMT808", shape.record, shape.line, where, message, fix)


def folder_problems(files: list[tuple[str, list]]) -> list[tuple[str, ArrowProblem]]:
    """FMT808 across the files of a folder entry: ``files`` holds (file, its :attr:`ArrowTally.parts`).

    ``datasets`` takes the types from whichever file the directory lists first
    (``os.listdir`` order, not sorted), so each file is tried as the first: a
    file is reported (once per path) when its data does not cast to another's.
    """
    out: list[tuple[str, ArrowProblem]] = []
    seen: dict[str, set] = {}
    for first, parts in files:
        for name, later in files:
            if name == first:
                continue
            mine = seen.setdefault(name, set())
            for shape, why in _part_problems(f"{first} (if read first)", parts[0][1], [root for _, root in later], mine):
                fix = "give every file of the folder the same columns and field types (or merge them into one file)"
                out.append((name, _late_problem(shape, why, "a folder entry file by file, in directory order,", fix)))
    return out


def chunk_bounds(path: Path, chunk: int = CHUNK_BYTES) -> list[int]:
    """The bytes where ``datasets`` starts each chunk of a JSON Lines file after the first.

    It reads ``chunk`` bytes, then to the end of the line, so a chunk ends at
    the first newline at or after ``chunk`` bytes from its start.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_bytes(b'{"a": 1}\\n' * 5)
    >>> chunk_bounds(p), chunk_bounds(p, chunk=20)
    ([], [27])
    """
    size = path.stat().st_size
    bounds = []
    with path.open("rb") as fh:
        at = 0
        while at + chunk < size:
            fh.seek(at + chunk)
            rest = fh.readline()
            at = at + chunk + len(rest)
            if not rest.endswith(b"\n") or at >= size:
                break
            bounds.append(at)
    return bounds


def arrow_tally_for(path: Path, start: int = 0, end: int | None = None) -> ArrowTally:
    """The :class:`ArrowTally` for the records of ``path`` (bytes ``[start, end)`` of a JSON Lines file)."""
    from fmtkit.loading.json_file import BOM, is_json_lines

    if DATA_EXTENSIONS.get(path.suffix.lower()) != "json":
        return ArrowTally()
    if not is_json_lines(path):
        return ArrowTally(array_file=True, source=path)
    bounds = chunk_bounds(path) if path.stat().st_size > CHUNK_BYTES else []
    if not bounds:
        return ArrowTally(source=path)
    end = path.stat().st_size if end is None else end
    if start == 0:
        with path.open("rb") as fh:
            start = 3 if fh.read(3) == BOM else 0  # the reader skips it: the first line starts after it
    return ArrowTally(chunks=(path, start, sum(1 for b in bounds if b <= start), [b for b in bounds if start < b < end]), source=path)


def arrow_conflicts(records, array_file: bool = False) -> list[ArrowProblem]:
    """What ``datasets`` would refuse or change in ``records`` read as one JSON Lines part (FMT802, FMT807, FMT809, FMT810).

    For checking records before they are written (``fmtkit convert``).

    >>> [p.message for p in arrow_conflicts([{"meta": {"score": 1}}, {"meta": {"score": "high"}}])]
    ['/meta/score is a string here but an integer in record 0 (at /meta/score): datasets cannot give /meta/score one Arrow type']
    >>> call = lambda args: {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": args}}]}
    >>> [(p.code, p.record, p.pointer) for p in arrow_conflicts([{"messages": [call({"city": "Paris"})]}, {"messages": [call({"n": 1})]}])]
    [('FMT810', 1, '/messages/0/tool_calls/0/function/arguments')]
    >>> arrow_conflicts([{"tools": []}, {"tools": "[]"}])[0].fix
    'make every /tools an array (wrap a single value in [ ]), or none of them'
    """
    tally = ArrowTally(array_file=array_file)
    for i, rec in enumerate(records):
        if type(rec) is dict:
            tally.add(i, None, rec)
    return tally.problems()

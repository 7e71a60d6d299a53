"""FMT8xx: whole files: columns across rows, duplicates, and files where no sample survives.

These rules need every record of a file, so they keep a little state per file
(:class:`FileTally`), which also merges across the worker processes of
``--jobs``; :func:`file_findings`, :func:`kto_balance` and
:func:`entry_findings` turn a file's (or an entry's) tally into findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from array import array
from itertools import chain, count, repeat
from dataclasses import dataclass, field

import orjson

from fmtkit.dataset_info import ALPACA_ONLY, DatasetEntry
from fmtkit.rules import ERROR, INFO, WARNING, declare
from fmtkit.rules.arrow_types import ArrowTally, split_by_loader
from fmtkit.rules.trl_columns import TrlColumns
from fmtkit.rules.view import EntryView

declare(
    "FMT801", "column-absent", ERROR, "add the column to the data, or fix the entry's `columns` mapping", "dataset",
    """A column the entry maps is absent from every record of a file.

    LLaMA-Factory looks every mapped column up in every row, so a column that no
    row has crashes it with a ``KeyError``. Defaults count: an alpaca entry
    without `columns` maps ``input``, so its file needs an ``input`` key in at
    least one row (empty strings are fine).

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "system": "Be brief."}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "sys"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "system": "Be brief."}
    """,
)  # fmt: skip

declare(
    "FMT802", "type-drift", ERROR, "give the column one JSON type in every row", "dataset",
    """A column's JSON type changes between rows (object vs array, string vs list, ...).

    Arrow needs one type per column; `datasets` fails with "changed from object
    to array in row 0" and no hint of which row. null is compatible with any
    type, and integers with floats. Fields inside a column are FMT807; the
    whole model is in ``fmtkit/rules/arrow_types.py``.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instruction": "Bye", "input": "", "output": "Goodbye"}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "meta": {"id": 1}}
        {"instruction": "Bye", "input": "", "output": "Goodbye", "meta": [1]}
    """,
)  # fmt: skip

declare(
    "FMT803", "duplicate", WARNING, "remove the duplicate record", "dataset",
    """A record is an exact duplicate of an earlier one in the same file.

    JSON Lines records are compared byte for byte (white space around the line
    ignored), records of other files on their decoded value. ``fmtkit stats``
    also counts near duplicates (normalised text).

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instruction": "Bye", "input": "", "output": "Goodbye"}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip

declare(
    "FMT804", "no-valid-sample", ERROR, "fix the errors above (each says what LLaMA-Factory does with such a record)", "dataset",
    """Every record of an entry has an error: LLaMA-Factory cannot train on any of them.

    The findings above it say why, record by record, and what LLaMA-Factory
    does: a record whose turns it cannot align is dropped with a warning
    ("Invalid message count", "Invalid role tag"), and when none is left it
    stops with "Cannot find valid samples"; others stop loading or training
    at the first such record (content that is not a string: RuntimeError
    "Expected a string" from its formatter; an image it cannot open:
    FileNotFoundError). The finding names the rules that found the errors.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Hi"}]}
    """,
)  # fmt: skip

declare(
    "FMT805", "keys-differ", INFO, "give every record the same keys (use null for absent values)", "dataset",
    """Records of one file have different key sets; missing keys become null in Arrow.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instruction": "Bye", "input": "", "output": "Goodbye"}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instruction": "Bye", "input": "", "output": "Goodbye", "system": "Be brief."}
    """,
)  # fmt: skip


_UNIQUE = count()
_dumps = orjson.dumps


declare(
    "FMT806", "unmapped-column", WARNING, "map the column in the entry's `columns`", "dataset",
    """The data has a column the entry does not map, so LLaMA-Factory ignores it.

    `columns` is all-or-nothing: giving it without ``query`` drops every
    ``input``, without ``system`` every system prompt. Preference columns
    (``chosen`` / ``rejected``) on an entry without ``ranking: true`` are
    ignored too, and such records then have no answer.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}}
        # demo.jsonl
        {"instruction": "Summarise.", "input": "A long text.", "output": "Short.", "system": "Be brief."}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "response": "output", "system": "system"}}
        # demo.jsonl
        {"instruction": "Summarise.", "input": "A long text.", "output": "Short.", "system": "Be brief."}
    """,
)  # fmt: skip


# FMT803 keeps 16 bytes per record; past this many records per file it stops indexing (96 MB),
# so `fmtkit validate` stays under 200 MB on any file size, and the report says so.
DUPLICATE_LIMIT = 6_000_000
DUPLICATE_FINDINGS = 1000  # FMT803 findings listed per file; the report's notes give the full count
SET_CHECK_MAX = 1 << 18  # up to this many hashes, one set tells whether any two are alike faster than importing numpy


def _digest(rec: dict, _dumps=orjson.dumps) -> int:
    """The 8-byte hash FMT803 compares (the file keeps one per record, not the records)."""
    try:
        return hash(_dumps(rec))
    except TypeError:  # orjson.JSONEncodeError: nesting deeper than 255, integers over 64 bits, lone surrogates
        try:
            return hash(repr(rec))
        except RecursionError:
            return hash(("unique", next(_UNIQUE)))  # too deep to compare cheaply: never a duplicate


@dataclass(slots=True)
class FileTally:
    """Per-file state for the FMT8xx rules and FMT504 (KTO balance).

    Indices and lines are local to the shard that filled it; :meth:`shifted`
    moves them when shards are joined. ``arrow`` models the Arrow types
    (FMT802, FMT807, FMT808).
    """

    mapped: tuple[str, ...] = ()
    kto_col: str | None = None
    records: int = 0
    lines: int = 0
    errored: int = 0
    arrow: ArrowTally = field(default_factory=ArrowTally)
    keysets: dict = field(default_factory=dict)  # frozenset -> (record, line), first two kept
    kto: list = field(default_factory=lambda: [0, 0])
    hashes: array = field(default_factory=lambda: array("q"))
    hash_lines: array = field(default_factory=lambda: array("q"))
    hash_limit: int = DUPLICATE_LIMIT  # records indexed for FMT803 (16 bytes each)
    shapes: dict = field(default_factory=dict)  # id -> shape, for add_shape
    trl: TrlColumns | None = None  # a TRL file's rows by their TRL columns (FMT811, FMT812)

    @property
    def types(self) -> dict[str, str]:
        """Column -> JSON type, for the columns with a non-null value in some record."""
        return self.arrow.columns

    def add(self, index: int, line: int | None, rec: dict, raw: bytes | None = None, clean_col: str | None = None) -> None:
        """Count a record; ``clean_col``: see :meth:`ArrowTally.add`."""
        self.arrow.add(index, line, rec, clean_col, raw)
        if self.trl is not None:
            self.trl.add(index, line, rec)
        keysets = self.keysets
        if len(keysets) < 2:
            ks = frozenset(rec)
            if ks not in keysets:
                keysets[ks] = (index, line)
        if self.kto_col is not None:
            label = rec.get(self.kto_col)
            if type(label) is bool:
                self.kto[label] += 1
        if len(self.hashes) >= self.hash_limit:
            return  # the duplicate index is full: memory stays bounded on any file size
        if raw is not None:  # a JSON Lines record: its bytes, 8x cheaper than re-encoding it
            self.hashes.append(hash(raw.strip()))
        else:
            try:
                self.hashes.append(hash(_dumps(rec)))
            except TypeError:
                self.hashes.append(_digest(rec))
        self.hash_lines.append(line or 0)

    def add_block(self, index: int, lines: Sequence[int], recs: list[dict], raws: list[bytes] | None, clean_col: str | None = None) -> None:
        """:meth:`add` for consecutive records (on ``lines``), with C-level loops; ``raws``: their JSON Lines, or None (hash the records)."""
        self.arrow.add_block(index, lines, recs, raws, clean_col)
        if self.trl is not None:
            self.trl.add_block(index, lines, recs)
        keysets = self.keysets
        if len(keysets) == 1 and set(map(len, recs)) == {len(known := next(iter(keysets)))} and set().union(*recs) <= known:
            pass  # every record has exactly the known keys (as many, none other): no new key set
        elif len(keysets) < 2:
            sets = list(map(frozenset, recs))
            for ks in sorted(set(sets).difference(keysets), key=sets.index)[: 2 - len(keysets)]:
                i = sets.index(ks)
                keysets[ks] = (index + i, lines[i])
        if self.kto_col is not None:
            labels = list(map(dict.get, recs, repeat(self.kto_col)))
            if set(map(type, labels)) <= {bool, type(None)}:
                self.kto[1] += labels.count(True)
                self.kto[0] += labels.count(False)
            else:
                for label in labels:
                    if type(label) is bool:
                        self.kto[label] += 1
        room = self.hash_limit - len(self.hashes)
        if room > 0:
            take = recs if len(recs) <= room else recs[:room]
            if raws is not None:
                self.hashes.extend(map(hash, map(bytes.strip, raws[: len(take)])))
            else:
                try:
                    hashes = list(map(hash, map(_dumps, take)))
                except TypeError:  # a record orjson cannot write: each as add does
                    hashes = list(map(_digest, take))
                self.hashes.extend(hashes)
            self.hash_lines.extend(lines[: len(take)] if lines[0] is not None else [0] * len(take))  # columnar rows: no lines

    def add_shape(self, index: int, line: int | None, shape: dict) -> None:
        """Track the column types and key set of a record known only by its ``shape`` (column -> a value of its type).

        A shape object seen before changes no types or key sets (the first are
        kept, and a drift is reported once); the row still counts in its TRL group.
        """
        if self.trl is not None:  # every row counts in its TRL group (FMT811 names the rows)
            self.trl.add(index, line, shape)
        key = id(shape)
        if key in self.shapes:
            return
        self.shapes[key] = shape  # kept alive, so its id stays its own
        self.arrow.add(index, line, shape)
        if len(self.keysets) < 2:
            ks = frozenset(shape)
            if ks not in self.keysets:
                self.keysets[ks] = (index, line)

    def join(self, later: FileTally) -> None:
        """Append a later shard's tally (its indices already shifted)."""
        self.arrow.join(later.arrow)
        if self.trl is not None and later.trl is not None:
            self.trl.join(later.trl)
        for ks, where in later.keysets.items():
            if len(self.keysets) < 2 and ks not in self.keysets:
                self.keysets[ks] = where
        self.kto[0] += later.kto[0]
        self.kto[1] += later.kto[1]
        self.hashes.extend(later.hashes)
        self.hash_lines.extend(later.hash_lines)
        self.errored += later.errored  # records and lines are summed by the caller

    def shifted(self, records: int, lines: int) -> FileTally:
        def move(idx, ln):
            return idx + records, (ln + lines if ln else ln)

        self.arrow.shift(records, lines)
        if self.trl is not None:
            self.trl.shift(records, lines)
        self.keysets = {ks: move(i, ln) for ks, (i, ln) in self.keysets.items()}
        if lines and self.hash_lines:  # (with numpy: 45 ms for 340k lines in Python, the parent's serial work in --jobs)
            import numpy as np

            got = np.frombuffer(self.hash_lines, dtype=np.int64)
            self.hash_lines = array("q", np.where(got != 0, got + lines, 0).tobytes())  # records without a line keep 0
        return self

    def duplicates(self, limit: int = 1000) -> tuple[list[tuple[int, int | None, int]], int]:
        """(record, line, first record) for the first ``limit`` exact duplicates, and how many there are in all.

        A few hashes are told apart with one set; more are sorted with numpy (a
        set of a million Python ints takes ~0.4 s, the sort ~15 ms), and only the
        records holding a hash seen twice are then looked at, in order. Extra
        memory: one sorted copy of the hashes (8 bytes per record).
        """
        hashes = self.hashes
        n = len(hashes)
        if n <= SET_CHECK_MAX:  # a set, in C: no two alike is the common case
            if len(set(hashes)) == n:
                return [], 0
            pairs: Iterable[tuple[int, int]] = enumerate(hashes)
        else:
            import numpy as np

            h = np.frombuffer(hashes, dtype=np.int64)
            s = np.sort(h)
            same = s[1:] == s[:-1]
            if not same.any():
                return [], 0
            twice = np.unique(s[1:][same])  # the hashes more than one record has
            del s, same
            # the records holding one of them, in file order (a slice at a time: bounded memory)
            held = np.concatenate([np.flatnonzero(np.isin(h[a : a + _SLICE], twice)) + a for a in range(0, n, _SLICE)])
            pairs = chain.from_iterable(zip(held[a : a + _SLICE].tolist(), h[held[a : a + _SLICE]].tolist(), strict=True) for a in range(0, len(held), _SLICE))
        found: list[tuple[int, int | None, int]] = []
        first: dict[int, int] = {}
        total = 0
        for i, v in pairs:
            j = first.setdefault(v, i)
            if j != i:
                total += 1
                if len(found) < limit:
                    found.append((i, self.hash_lines[i] or None, j))
        return found, total


_SLICE = 1 << 20


# ---- the whole-file checks: what the rules above find in a file's (or an entry's) tally ----------


@dataclass(slots=True)
class FileFinding:
    """A finding of a whole-file rule: its code, message, where (line and record, when one record is meant) and fix."""

    code: str
    message: str
    line: int | None = None
    record: int | None = None
    fix: str | None = None


# columns a bare file maps only when it has them (its form does not need them)
OPTIONAL_COLUMNS = ("query", "history", "system", "tools", "images", "videos", "audios")


def file_findings(tally: FileTally, view: EntryView | None, rel: str, form: str | None = None) -> tuple[list[FileFinding], set[str], list[str]]:
    """The whole-file rules on one file: (findings, record rule codes an absent column explains, report notes).

    FMT801 and FMT806 (columns, for files read through an entry), the Arrow
    types (FMT802, FMT807-FMT810, FMT813: judged as the loader of ``form``
    reads them), FMT805 (key sets) and FMT803 (duplicates).
    """
    out: list[FileFinding] = []
    quiet: set[str] = set()
    notes: list[str] = []
    if not tally.records:
        return out, quiet, notes
    if view is not None:
        e = view.entry
        keys = set().union(*tally.keysets)  # a column null in every row is still a column (`datasets` keeps it)
        absent = [k for k, col in e.used_columns().items()
                  if col not in tally.types and col not in keys and _indexed_by_reader(e, k) and not (e.is_bare and k in OPTIONAL_COLUMNS)]  # fmt: skip
        for key in absent:
            col = getattr(e, key)
            out.append(FileFinding("FMT801", f"column {col!r} ({key}) is in no record: LLaMA-Factory fails with KeyError: {col!r}",
                                   fix=_absent_column_fix(e, key, tally.types)))  # fmt: skip
        quiet = {c for k in absent for c in _EXPLAINED_BY_ABSENT.get(k, ())}
        for key, role, hint in _unmapped_columns(e, tally.types):
            fix = f'add "{role}": "{key}" to the entry\'s `columns`' if role not in ("chosen", "rejected") else 'set "ranking": true and map chosen and rejected in `columns`'
            out.append(FileFinding("FMT806", f"column {key!r} is in the data but {hint}: LLaMA-Factory ignores it", fix=fix))
    if form is not None and form.startswith("trl-"):  # TRL's forms, read with TRL's datasets (4.7 and later)
        arrow = tally.arrow.problems(json_type=True)
    elif view is not None and view.entry.is_bare and view.entry.form == "openai":  # a bare messages file: LLaMA-Factory's or TRL's
        arrow = split_by_loader(tally.arrow)
    else:
        arrow = tally.arrow.problems()
    for p in arrow:
        out.append(FileFinding(p.code, p.message, p.line, p.record, p.fix))
    for code, record, line, message in tally.trl.problems() if tally.trl is not None else ():
        out.append(FileFinding(code, message, line, record))
    if len(tally.keysets) > 1:
        (k1, _), (k2, (i2, l2)) = list(tally.keysets.items())[:2]
        diff = sorted(set(k1) ^ set(k2))
        out.append(FileFinding("FMT805", f"keys differ from the first record's: {', '.join(map(repr, diff))}", l2, i2))
    if len(tally.hashes) < tally.records:
        notes.append(f"{rel}: duplicates (FMT803) checked among {len(tally.hashes):,} of {tally.records:,} records")
    shown, total = tally.duplicates(DUPLICATE_FINDINGS)
    for index, line, first in shown:
        out.append(FileFinding("FMT803", f"duplicate of record {first}", line, index))
    if total > len(shown):
        notes.append(f"{rel}: {total:,} duplicates (FMT803), the first {len(shown):,} listed")
    return out, quiet, notes


def kto_balance(tally: FileTally, entry: DatasetEntry) -> list[FileFinding]:
    """FMT504: every KTO label of a file on one side."""
    if entry.kto_tag is None:
        return []
    false, true = tally.kto
    if (true or false) and not (true and false):
        side = "desirable (true)" if true else "undesirable (false)"
        return [FileFinding("FMT504", f"all {true + false} labels are {side}")]
    return []


def entry_findings(entry: DatasetEntry, total: int, errored: int, codes: list[str] = ()) -> list[FileFinding]:
    """FMT804: every record of an entry has an error (``codes``: the rules that found them)."""
    if total and errored == total:
        found = f" ({', '.join(codes)})" if codes else ""
        return [FileFinding("FMT804", f"all {total} records of entry {entry.name!r} have errors{found}: LLaMA-Factory cannot train on any of them")]
    return []


# data key -> the column role that usually holds it
_USUAL_COLUMNS = {"instruction": "prompt", "input": "query", "output": "response", "history": "history", "system": "system",
                  "tools": "tools", "images": "images", "videos": "videos", "audios": "audios", "kto_tag": "kto_tag",
                  "chosen": "chosen", "rejected": "rejected", "conversations": "messages", "messages": "messages"}  # fmt: skip


# record-level findings that an absent column (FMT801) already explains
_EXPLAINED_BY_ABSENT = {"prompt": ("FMT301", "FMT303"), "response": ("FMT904",), "messages": ("FMT401",)}


def _absent_column_fix(entry: DatasetEntry, key: str, types: dict) -> str:
    """How to fix FMT801 for column role ``key`` of ``entry``."""
    if key == "prompt" and "text" in types:
        return 'this is text data: map it with "columns": {"prompt": "text"}'
    if key in OPTIONAL_COLUMNS and not entry.columns_given:
        return f'it is mapped by default: give `columns` without {key!r}, or add {getattr(entry, key)!r} to the records ("" is fine)'
    return f"map {key!r} in `columns` to the column your records use, or add that column to them"


def _unmapped_columns(entry: DatasetEntry, types: dict) -> list[tuple[str, str, str]]:
    """(key, role, why) for data keys that look like a column the entry leaves unset (FMT806)."""
    used = set(entry.used_columns().values())
    out = []
    for key, role in _USUAL_COLUMNS.items():
        if key not in types or key in used:
            continue
        if role in ALPACA_ONLY and entry.is_conversation or role == "messages" and not entry.is_conversation:
            continue  # another form's column
        if role in ("chosen", "rejected"):
            if entry.ranking is not True:
                out.append((key, role, "the entry has no ranking: true"))
        elif getattr(entry, role) is None:
            why = "`columns` leaves it out" if entry.columns_given else f"the entry maps no {role} column"
            out.append((key, role, why))
        elif role == "messages":
            out.append((key, role, f"the entry reads its turns from {entry.messages!r}"))
    return out


def _indexed_by_reader(entry: DatasetEntry, key: str) -> bool:
    """Whether LLaMA-Factory's reader looks column ``key`` up in every row (a KeyError when absent).

    Its openai reader uses ``.get`` for system and tools; the response column of a
    preference entry is only read for rows that are not pairs.
    """
    if entry.formatting == "openai" and key in ("system", "tools"):
        return False
    return not (key == "response" and entry.ranking is True)

"""FMT811, FMT812: the columns of a TRL file as TRL sees them in every row.

``datasets`` gives every row of a file every column (null where a row has
none), so a TRL dataset row carries the key set of the whole file, not its
own. TRL's ``maybe_extract_prompt`` and ``maybe_apply_chat_template`` then
take a conversational row (a column holding messages) as one of TRL's types by
its keys: a set that fits no type stops with ``KeyError: Invalid keys in the
example``, and a column that is null in this row fails where its messages
belong (``TypeError``). A preference row whose ``chosen`` and ``rejected`` are
conversations (or both text) and whose prompt is null or of the other style
is the exception: its prompt is extracted from them, and only those three
keys go on.

:class:`TrlColumns` groups the rows of one file by the TRL columns they give
(a few groups per file, each keeping where its first rows are), and joins
across the shards of ``--jobs``; :meth:`TrlColumns.problems` judges each group
against the file's columns once the file is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

from fmtkit.rules import ERROR, WARNING, declare

declare(
    "FMT811", "trl-row-columns", ERROR, "give every row the same TRL columns, of one dataset type (split the file by type)", "dataset",
    """A conversational row of a TRL file fails with the columns the whole file gives it.

    `datasets` gives every row every column of its file (null where the row
    has none). TRL's chat-template step then sees, in each row, the key set of
    the whole file: a set that fits no TRL dataset type (``messages`` in one
    row beside ``prompt`` in another) fails every conversational row with
    ``KeyError: Invalid keys in the example``, and a row without a column
    other rows have (a prompt-only row in a prompt-completion file) fails on
    the null it gets (``TypeError``).

    Passes::

        # demo.jsonl (alone)
        {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello"}]}
        {"prompt": [{"role": "user", "content": "Bye"}], "completion": [{"role": "assistant", "content": "Goodbye"}]}

    Fails::

        # demo.jsonl (alone)
        {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello"}]}
        {"prompt": [{"role": "user", "content": "Bye"}]}
    """,
)  # fmt: skip

declare(
    "FMT812", "trl-prompt-mixed", WARNING, "give every row a prompt column, or none (keep the prompt inside chosen and rejected)", "dataset",
    """A TRL preference file mixes rows with an explicit prompt and rows whose prompt is inside `chosen` and `rejected`.

    TRL's ``maybe_extract_prompt`` takes each row's own (fmtkit reads them
    the same way), but ``DPOTrainer`` decides once, by its first row: since
    `datasets` gives every row the ``prompt`` column, it extracts no prompt,
    and the rows without one fail there.

    Passes::

        # demo.jsonl (alone)
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go"}]}

    Fails::

        # demo.jsonl (alone)
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go"}]}
        {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go"}]}
    """,
)  # fmt: skip

TRL_KEYS = ("prompt", "completion", "chosen", "rejected", "messages", "label", "text")
# the key sets TRL's apply_chat_template takes (``text`` is not one of its keys)
TYPES = frozenset(frozenset(s) for s in (
    ("messages",), ("prompt",), ("prompt", "completion"), ("prompt", "chosen", "rejected"), ("chosen", "rejected"),
    ("prompt", "completion", "label"),
))  # fmt: skip
ROWS_LISTED = 100  # rows named per group; the last finding counts the rest
_KEYS = frozenset(TRL_KEYS)
# a group's key: bit i for a value in column TRL_KEYS[i], bits 7 + i (with bit i) for a list there
_BIT = {k: 1 << i for i, k in enumerate(TRL_KEYS)}
_LIST_BIT = {k: (1 | 1 << len(TRL_KEYS)) << i for i, k in enumerate(TRL_KEYS)}


def _bits(rec: dict) -> int:
    """A row's group: the TRL columns it has (not null), and which of them are lists."""
    key = 0
    for k in rec.keys() & _KEYS:  # usually one or two keys
        v = rec[k]
        if v is not None:
            key |= _LIST_BIT[k] if type(v) is list else _BIT[k]
    return key


def _keys(bits: int) -> frozenset[str]:
    return frozenset(k for i, k in enumerate(TRL_KEYS) if bits >> i & 1)


class TrlColumns:
    """The rows of one TRL file grouped by the TRL columns with a value and those holding lists: a count and the first rows.

    >>> t = TrlColumns()
    >>> for i, rec in enumerate([{"prompt": [{"role": "user"}], "completion": [{"role": "assistant"}]}, {"prompt": [{"role": "user"}]}]):
    ...     t.add(i, i + 1, rec)
    >>> [(code, record) for code, record, line, message in t.problems()]
    [('FMT811', 1)]
    """

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[int, list] = {}  # bits (see _BIT) -> [count, [(record, line), ...]]

    def add(self, record: int, line: int | None, rec: dict) -> None:
        self._count(_bits(rec), record, (line,))

    def add_block(self, record: int, lines: Sequence, recs: list[dict]) -> None:
        """:meth:`add` for consecutive records (on ``lines``): at once when each column holds one kind of value in all of them."""
        for k in set().union(*recs) & _KEYS:
            if len(set(map(type, map(dict.get, recs, repeat(k))))) > 1:  # (absent counts as null)
                for i, rec in enumerate(recs):
                    self.add(record + i, lines[i], rec)
                return
        self._count(_bits(recs[0]), record, lines)

    def _count(self, key: int, record: int, lines: Sequence) -> None:
        """Records ``record``, ``record + 1``, ... (on ``lines``) in the group ``key``."""
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = group = [0, []]
        group[0] += len(lines)
        room = ROWS_LISTED - len(group[1])
        if room > 0:
            group[1].extend(zip(range(record, record + room), lines[:room]))

    def shift(self, records: int, lines: int) -> None:
        for group in self.groups.values():
            group[1] = [(r + records, ln + lines if ln else ln) for r, ln in group[1]]

    def join(self, later: TrlColumns) -> None:
        for key, (n, rows) in later.groups.items():
            group = self.groups.setdefault(key, [0, []])
            group[0] += n
            group[1] = (group[1] + rows)[:ROWS_LISTED]

    def problems(self) -> list[tuple[str, int | None, int | None, str]]:
        """(code, record, line, message): FMT811 for each row listed of a failing group, FMT812 once per file."""
        groups = [(_keys(bits), _keys(bits >> len(TRL_KEYS)), group) for bits, group in self.groups.items()]
        columns = frozenset().union(*(present for present, _, _ in groups))
        keys = columns - {"text"}
        out = []
        explicit = implicit = False
        for present, lists, (count, rows) in groups:
            if {"chosen", "rejected"} <= present:
                if "prompt" in present and ("prompt" in lists) == ("chosen" in lists):
                    explicit = True
                else:  # maybe_extract_prompt takes the prompt out of chosen and rejected, and only those go on
                    implicit = True
                    continue
            if not lists:
                continue  # text rows: TRL applies no chat template to them
            if keys not in TYPES:
                why = f"the file's columns {sorted(keys)} fit no TRL dataset type (`datasets` gives every row every column): TRL fails with KeyError"
            elif keys - present:
                why = f"no {', '.join(map(repr, sorted(keys - present)))} in this row, which other rows have: `datasets` gives it null here and TRL fails on it"
            else:
                continue
            for n, (record, line) in enumerate(rows):
                more = f" (and {count - len(rows):,} more rows like it)" if n == len(rows) - 1 and count > len(rows) else ""
                out.append(("FMT811", record, line, why + more))
        if explicit and implicit:
            out.append(("FMT812", None, None, "rows with a prompt column and rows with the prompt inside chosen and rejected: "
                                              "DPOTrainer extracts no prompt when its first row has one, and fails on the others"))  # fmt: skip
        return out

"""The record loop: every record of one file through the record rules and the schema; and the one engine
that splits a data file into units of work for ``--jobs`` and ``--engine``.

This is the hot path of ``fmtkit validate``. Work per record is kept small:
the rules that apply to an entry are chosen once, each returns None quickly
for a good record, and the JSON Schema runs compiled (``jsonschema_rs``).

Who calls whom: :mod:`fmtkit.validation` walks the entries and files and calls
:func:`check_path` for each file. :func:`run_paths` plans the file's units
(:func:`plan_units`: the whole file, or byte ranges of JSON Lines or of an
indented JSON array), runs each through :func:`run_unit` (here, over
:func:`fmtkit.workers.run_in_workers`, or as the tasks of ``--engine ray``,
:func:`fmtkit.engines.check_ahead`) and joins their findings and
:class:`FileTally` in file order (:func:`join_shards`). ``fmtkit convert`` does
its work in the same read: it hands :func:`fmtkit.validation.validate` a
:class:`FilePass` whose per-unit work converts the unit's records (each
checked by the unit's :class:`RecordChecker`) and writes the unit's part; the
files the check does not read go through :func:`run_paths` unchecked.
"""

from __future__ import annotations

import gc
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from bisect import bisect_right
from itertools import accumulate, chain, compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple, Protocol


from fmtkit import rules as rule_registry
from fmtkit.findings import ERROR, Finding
from fmtkit.loading import LoadProblem, Record, iter_records
from fmtkit.dataset_info import DATA_EXTENSIONS
from fmtkit.loading.json_file import BOM, ShardFailed, element_ranges, is_json_lines, iter_json_blocks, iter_line_blocks, line_ranges
from fmtkit.pointers import rule_pointer, schema_pointer
from fmtkit.rules import whole_file
from fmtkit.rules.arrow_types import arrow_tally_for
from fmtkit.rules.tools import function_call_problem
from fmtkit.rules.trl_columns import TrlColumns
from fmtkit.rules.whole_file import FileTally
from fmtkit.rules.view import EntryView
from fmtkit.sample import PLACEHOLDERS
from fmtkit.workers import run_in_workers
from fmtkit.schemas import explain_error, fast_validator, reference_validator, schema_for_form

SHARD_MIN_BYTES = 8 << 20  # below this, one process is faster than starting workers
RANGES_PER_JOB = 8  # byte ranges per worker: a worker that finishes early takes the next (equal bytes are not equal work)
PROGRESS_EVERY = 8192
UNDECODED = ("FMT201", "FMT203")  # load problems that cost a record

# canonical schema key -> DatasetEntry attribute
_ALPACA_KEYS = {"instruction": "prompt", "input": "query", "output": "response", "system": "system", "history": "history",
                "chosen": "chosen", "rejected": "rejected", "kto_tag": "kto_tag", "images": "images", "videos": "videos", "audios": "audios"}  # fmt: skip
_SHAREGPT_KEYS = {"conversations": "messages", "system": "system", "tools": "tools", "chosen": "chosen", "rejected": "rejected",
                  "kto_tag": "kto_tag", "images": "images", "videos": "videos", "audios": "audios"}  # fmt: skip
_DEFAULT_TAGS = {"user_tag": "human", "assistant_tag": "gpt", "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


class _SchemaView:
    """Turns a record into what its form's schema describes: the mapped columns, under default names."""

    def __init__(self, view: EntryView | None, form: str):
        self.form = form
        self.validator = None
        self.keys: list[tuple[str, str]] = []
        self.retag = None
        self.tools_dumped = False
        self.identity: frozenset[str] | None = None
        self.name: str | None = None
        base = form.split("-")[0]
        if view is None:
            name = self.name = schema_for_form(form)
            self.validator = fast_validator(name) if name else None
            return
        e = view.entry
        if e.is_pretrain:
            name, self.keys = schema_for_form("alpaca-pretrain"), [("text", e.prompt)]
        else:
            # OpenAI's schema is OpenAI's API: for a bare file; LLaMA-Factory's openai reader reads less (no `name`, either tools shape)
            openai_native = e.is_bare and e.formatting == "openai" and e.role_tag == "role" and e.content_tag == "content" and not e.ranking and not e.is_kto
            if openai_native:
                name, table = schema_for_form("openai"), {"messages": "messages", "tools": "tools"} | {k: k for k in ("images", "videos", "audios")}
            else:
                name = schema_for_form({"alpaca": "alpaca", "sharegpt": "sharegpt", "openai": "sharegpt"}.get(base, base) + form[len(base):])
                table = _ALPACA_KEYS if e.formatting == "alpaca" else _SHAREGPT_KEYS
                if e.is_conversation and (e.role_tag != "from" or e.content_tag != "value" or any(getattr(e, t) != v for t, v in _DEFAULT_TAGS.items())):
                    self.retag = (e.role_tag, e.content_tag, {getattr(e, t): v for t, v in _DEFAULT_TAGS.items() if getattr(e, t) is not None})
            self.keys = [(k, getattr(e, attr)) for k, attr in table.items() if getattr(e, attr, None) is not None]
        self.name = name
        self.validator = fast_validator(name) if name else None
        self.tools_dumped = not e.is_bare and e.formatting == "openai"  # its reader json.dumps a list or object of tools
        self.message_keys = {"conversations", "chosen", "rejected"}
        # columns under their default names and no retagging: a record holding only those
        # keys, none of them null, is its own projection (saves a dict per record)
        if self.retag is None and not self.tools_dumped and self.keys and all(k == col for k, col in self.keys):
            self.identity = frozenset(k for k, _ in self.keys)

    def project(self, rec: dict):
        if not self.keys:
            return rec
        out = {k: rec[col] for k, col in self.keys if col in rec and rec[col] is not None}
        if self.tools_dumped and type(out.get("tools")) in (list, dict):
            out["tools"] = "[]"  # a JSON text, as the reader makes it (FMT701 checks what it holds)
        if self.retag is not None:
            rt, ct, roles = self.retag
            for k in ("conversations", "chosen", "rejected"):
                v = out.get(k)
                if type(v) is list:
                    out[k] = [self._msg(m, rt, ct, roles) for m in v]
                elif type(v) is dict:
                    out[k] = self._msg(v, rt, ct, roles)
        return out

    @staticmethod
    def _msg(m, rt, ct, roles):
        if type(m) is not dict:
            return m
        out = {k: v for k, v in m.items() if k != rt and k != ct}
        if rt in m:
            out["from"] = roles.get(m[rt], m[rt])
        if ct in m:
            out["value"] = m[ct]
        return out


# Record rules whose every finding the fast path below rules out for a record it calls clean.
FAST_COVERED = frozenset(
    ("FMT401", "FMT402", "FMT403", "FMT404", "FMT405", "FMT406", "FMT407", "FMT408", "FMT409", "FMT410", "FMT412",
     "FMT601", "FMT602", "FMT605", "FMT701", "FMT702", "FMT703", "FMT704", "FMT705", "FMT706")
)  # fmt: skip
# Schemas a clean record is known to pass (with the per-record conditions in _CleanConversation.clean).
_OPENAI_ROLES = frozenset(("system", "user", "assistant", "tool"))
FAST_SCHEMAS = ("sharegpt-sft.schema.json", "openai-messages.schema.json", "sharegpt-preference.schema.json")
# Preference rules the fast path also rules out for a pair it calls clean (see _CleanConversation.clean).
PAIR_COVERED = frozenset(("FMT501", "FMT502"))
NOT_CLEAN, CLEAN, CLEAN_AND_VALID = 0, 1, 2


class _CleanConversation:
    """One pass over a conversation that proves the common, clean record clean.

    The conversation rules (FMT4xx), the media rules (FMT6xx) and the tool rules
    (FMT7xx) each walk the messages; for a record that :meth:`clean` accepts,
    every rule of :data:`FAST_COVERED` returns None, so only the other rules
    run, and for the plain SFT schemas of :data:`FAST_SCHEMAS` the schema check
    is implied too. Any record it does not accept goes through every rule and
    the schema as before, so what is reported never depends on it
    (tests/test_properties.py checks this against the rules and schemas on
    random records). It accepts only: a non-empty list of objects holding
    exactly the role and content tags, non-blank string contents without media
    placeholders, an optional leading system message (when no system column also
    has a value), then user/observation and assistant turns alternating, an even
    number of them, function calls (in answer turns) only where FMT702 finds
    none of them malformed, and a tools value only when it is a string FMT701
    accepts (its verdict is remembered per distinct string: most files repeat
    one). With ``ranking`` the turns end with a user turn instead, and ``chosen``
    and ``rejected`` are each one assistant message of the same kind, with
    different texts (so :data:`PAIR_COVERED` is covered too).
    """

    __slots__ = ("mcol", "rt", "ct", "system_tag", "sys_col", "tools_col", "even", "odd", "tags", "schema", "sides",
                 "call", "view", "tools_seen", "covers")  # fmt: skip

    @classmethod
    def make(cls, view: EntryView | None, codes: set[str], schema_name: str | None = None) -> _CleanConversation | None:
        if view is None or not codes & FAST_COVERED:
            return None
        e = view.entry
        if not (e.is_conversation and e.messages is not None) or (e.ranking is True and not (e.chosen and e.rejected)):
            return None
        if e.role_tag == e.content_tag or any(getattr(e, k) is not None for k in PLACEHOLDERS):
            return None
        even = frozenset(view.even_roles) - {e.function_tag, e.system_tag}
        odd = frozenset(view.odd_roles) - {e.function_tag, e.system_tag}
        if not even or not odd or even & odd or not all(type(r) is str for r in even | odd):
            return None
        self = cls()
        self.mcol, self.rt, self.ct = e.messages, e.role_tag, e.content_tag
        self.system_tag, self.sys_col, self.tools_col = e.system_tag, e.system, e.tools
        self.even, self.odd = even, odd
        self.sides = (e.chosen, e.rejected) if e.ranking is True else None
        self.covers = FAST_COVERED | PAIR_COVERED if self.sides is not None else FAST_COVERED
        self.tags = tuple(PLACEHOLDERS.values())
        self.view = view
        # a function call answers as the assistant does, when FMT702 checks its JSON; FMT701 judges a tools string
        call = e.function_tag
        self.call = call if "FMT702" in codes and type(call) is str and call in view.odd_roles and call not in even and call != e.system_tag else None
        self.tools_seen: dict[str, bool] | None = {} if "FMT701" in codes and e.tools is not None else None
        # which schema a clean record passes without running it: 0 none, 1 sharegpt SFT, 2 OpenAI messages
        self.schema = 0
        if schema_name == FAST_SCHEMAS[2 if self.sides is not None else 0] and not e.is_kto:
            self.schema = 1  # the preference schema describes its pairs with the SFT schema's messages
        elif schema_name == FAST_SCHEMAS[1] and not e.is_kto and (even | odd | {e.system_tag}) - {None} <= _OPENAI_ROLES:
            self.schema = 2
        return self

    def clean(self, rec: dict) -> int:
        """NOT_CLEAN, CLEAN (no finding of FAST_COVERED), or CLEAN_AND_VALID (the schema passes too)."""
        msgs = rec.get(self.mcol)
        if type(msgs) is not list or not msgs:
            return NOT_CLEAN
        rt, ct, tags = self.rt, self.ct, self.tags
        start = 0
        first = msgs[0]
        if type(first) is dict and self.system_tag is not None and first.get(rt) == self.system_tag:
            if self.sys_col is not None and rec.get(self.sys_col):
                return NOT_CLEAN  # FMT408
            c = first.get(ct)
            if len(first) != 2 or type(c) is not str or not c or c.isspace() or ("<" in c and any(t in c for t in tags)):
                return NOT_CLEAN
            start = 1
        sides = self.sides
        if sides is not None:  # a preference pair: the prompt ends with the user, the answers are chosen and rejected
            if not (len(msgs) - start) & 1:
                return NOT_CLEAN  # FMT404
            last = msgs[-1]
            for m in (last, rec.get(sides[0]), rec.get(sides[1])):
                if type(m) is not dict or len(m) != 2:
                    return NOT_CLEAN
                c = m.get(ct)
                if type(c) is not str or not c or c.isspace() or ("<" in c and any(t in c for t in tags)):
                    return NOT_CLEAN
            try:
                if last.get(rt) not in self.even or rec[sides[0]].get(rt) not in self.odd or rec[sides[1]].get(rt) not in self.odd:
                    return NOT_CLEAN
            except TypeError:  # a list as role
                return NOT_CLEAN
            if rec[sides[0]][ct] == rec[sides[1]][ct]:
                return NOT_CLEAN  # FMT502
            msgs = msgs[:-1]
        elif (len(msgs) - start) & 1 or len(msgs) == start:
            return NOT_CLEAN  # FMT404
        tools = rec.get(self.tools_col) if self.tools_col is not None else None
        if tools is not None and tools != "" and not self._tools_ok(tools):
            return NOT_CLEAN
        even, odd, call = self.even, self.odd, self.call
        calls = False
        it = iter(msgs)
        if start:
            next(it)
        try:
            for u in it:
                a = next(it)  # an even number of turns is left
                if type(u) is not dict or type(a) is not dict or len(u) != 2 or len(a) != 2:
                    return NOT_CLEAN
                if u[rt] not in even:  # KeyError / TypeError (a list as role): not clean
                    return NOT_CLEAN
                if a[rt] not in odd:
                    if a[rt] != call or call is None:
                        return NOT_CLEAN
                    calls = True
                cu, ca = u[ct], a[ct]
                if type(cu) is not str or type(ca) is not str or not cu or not ca or cu.isspace() or ca.isspace():
                    return NOT_CLEAN
                if ("<" in cu or "<" in ca) and any(t in cu or t in ca for t in tags):
                    return NOT_CLEAN
        except (KeyError, TypeError):
            return NOT_CLEAN
        if calls and rule_registry.RULES["FMT702"].check(rec, self.view):
            return NOT_CLEAN
        if self.schema == 1:  # sharegpt-sft: system and tools are strings when present
            if self.sys_col is None or type(rec.get(self.sys_col)) in (str, type(None)):
                return CLEAN_AND_VALID
        elif self.schema == 2:  # openai-messages: tools is a list when present
            if tools is None:
                return CLEAN_AND_VALID
        return CLEAN

    def _tools_ok(self, tools) -> bool:
        """Whether FMT701 accepts a tools string (remembered per distinct string); any other value: let the rules judge."""
        seen = self.tools_seen
        if seen is None or type(tools) is not str:
            return False
        ok = seen.get(tools)
        if ok is None:
            ok = not rule_registry.RULES["FMT701"].check({self.tools_col: tools}, self.view)
            if len(seen) < 1024:
                seen[tools] = ok
        return ok

    def clean_block(self, recs: list[dict], raws: list[bytes] | None) -> int:
        """The least :meth:`clean` state of ``recs``: all messages at once in C-level loops, where no record opens
        with a system message or holds a function call (the records that hold a ``<`` then one by one); record by
        record otherwise."""
        return self._clean_messages(recs, raws) or min(map(self.clean, recs))

    def _clean_messages(self, recs: list[dict], raws: list[bytes] | None) -> int:
        """:meth:`clean`'s checks over the flattened messages of ``recs``, or NOT_CLEAN (then look at each record).

        A preference pair's prompt (an odd number of messages) is followed by its ``chosen`` message, so that
        each conversation again starts at an even position; ``rejected`` is checked beside.
        """
        get = dict.get
        convs = list(map(get, recs, repeat(self.mcol)))
        if set(map(type, convs)) != {list}:
            return NOT_CLEAN
        lens = list(map(len, convs))
        sides, rejected = self.sides, []
        if sides is not None:
            if not all(map(int.__and__, lens, repeat(1))):  # every prompt ends with the user
                return NOT_CLEAN
            chosen, rejected = list(map(get, recs, repeat(sides[0]))), list(map(get, recs, repeat(sides[1])))
            convs = list(map(list.__add__, convs, [[m] for m in chosen]))
        elif 0 in lens or any(map(int.__and__, lens, repeat(1))):  # every conversation has pairs of turns
            return NOT_CLEAN
        msgs = list(chain.from_iterable(convs))
        try:
            # objects of two keys (anything else fails len() or itemgetter below with a TypeError)
            if set(map(len, msgs)) != {2} or not set(map(type, rejected)) <= {dict} or not set(map(len, rejected)) <= {2}:
                return NOT_CLEAN
            roles = list(map(itemgetter(self.rt), msgs))
            contents = list(map(itemgetter(self.ct), msgs))
            contents += map(itemgetter(self.ct), rejected)
            # each conversation starts at an even position: user turns there, answers between (no system message),
            # some of them function calls (checked below, as FMT702 does)
            answers = set(roles[1::2])
            calls = sides is None and self.call is not None and self.call in answers
            if not (set(roles[0::2]) <= self.even and (answers - {self.call} if calls else answers) <= self.odd and set(map(itemgetter(self.rt), rejected)) <= self.odd):
                return NOT_CLEAN
            if sides is not None and any(map(operator.eq, map(itemgetter(self.ct), chosen), map(itemgetter(self.ct), rejected))):
                return NOT_CLEAN  # FMT502
            tools = set(map(get, recs, repeat(self.tools_col))) if self.tools_col is not None else {None}
        except (KeyError, TypeError):  # a missing tag, an unhashable role or tools value
            return NOT_CLEAN
        if not all(map(self._tools_ok, tools - {None, ""})) or not _texts(contents):
            return NOT_CLEAN
        if calls and any(map(function_call_problem, compress(contents, map(operator.eq, roles, repeat(self.call))))):
            return NOT_CLEAN
        state = CLEAN
        if self.schema == 1 and (self.sys_col is None or set(map(type, map(get, recs, repeat(self.sys_col)))) <= _STR_OR_NONE):
            state = CLEAN_AND_VALID
        elif self.schema == 2 and tools == {None}:
            state = CLEAN_AND_VALID
        # the records that may hold a media tag: each as clean() sees it (bytes are searched faster than texts)
        marked = _may_hold_tags(raws) if raws is not None else range(len(recs)) if "<" in "".join(contents) else ()
        return min(state, *map(self.clean, map(recs.__getitem__, marked))) if marked else state


# Record rules whose every finding _CleanAlpaca rules out for a record it calls clean.
ALPACA_COVERED = frozenset(("FMT301", "FMT302", "FMT303", "FMT304", "FMT305", "FMT601", "FMT602", "FMT605"))
ALPACA_SCHEMA = "alpaca-sft.schema.json"


class _CleanAlpaca:
    """The Alpaca counterpart of :class:`_CleanConversation`: one look at a record's text columns.

    It accepts only, on an entry without media columns: an instruction that is a
    non-blank string; an input and a system prompt that are strings or absent;
    an answer (when mapped, outside preference data) that is a non-blank string;
    no history value; and no media placeholder in any text. Such a record gets
    no finding from any rule of :data:`ALPACA_COVERED`, and with
    ``alpaca-sft.schema.json`` it passes the schema too (CLEAN_AND_VALID, as it
    always has an answer then); every other record takes all rules.

    >>> from fmtkit.dataset_info import DatasetEntry
    >>> fast = _CleanAlpaca.make(EntryView.of(DatasetEntry.for_file("alpaca")), ALPACA_COVERED, ALPACA_SCHEMA)
    >>> fast.clean({"instruction": "Add 1 and 2", "input": "", "output": "3"}) == CLEAN_AND_VALID
    True
    >>> fast.clean({"instruction": "What is <image>?", "input": "", "output": "A tag."})
    0
    """

    __slots__ = ("prompt", "strings", "answer", "texts", "history", "tags", "schema", "mcol")
    covers = ALPACA_COVERED

    @classmethod
    def make(cls, view: EntryView | None, codes: set[str], schema_name: str | None = None) -> _CleanAlpaca | None:
        if view is None or not codes & ALPACA_COVERED:
            return None
        e = view.entry
        if e.formatting != "alpaca" or e.is_conversation or e.prompt is None or any(getattr(e, k) is not None for k in PLACEHOLDERS):
            return None
        self = cls()
        self.mcol = None  # no conversation column (see RecordChecker: the Arrow tally's clean column)
        self.prompt = e.prompt
        self.answer = e.response if not e.ranking else None
        self.strings = tuple(c for c in (e.query, e.system) if c is not None)  # strings or absent
        self.texts = tuple(c for c in (e.query, e.response, e.chosen, e.rejected) if c is not None)  # looked at for placeholders
        self.history = e.history
        self.tags = tuple(PLACEHOLDERS.values())
        self.schema = schema_name == ALPACA_SCHEMA and self.answer is not None and not e.is_kto
        return self

    def clean(self, rec: dict) -> int:
        """NOT_CLEAN, CLEAN (no finding of ALPACA_COVERED), or CLEAN_AND_VALID (the schema passes too)."""
        p = rec.get(self.prompt)
        if type(p) is not str or not p or p.isspace():
            return NOT_CLEAN  # FMT301, FMT302, FMT303
        if self.history is not None and rec.get(self.history) is not None:
            return NOT_CLEAN  # FMT304, FMT305 and the history's texts: the rules decide
        for col in self.strings:
            v = rec.get(col)
            if v is not None and type(v) is not str:
                return NOT_CLEAN  # FMT302
        if self.answer is not None:
            a = rec.get(self.answer)
            if type(a) is not str or not a or a.isspace():
                return NOT_CLEAN  # FMT302, FMT303; absent: the schema's to report
        tags = self.tags
        if "<" in p and any(t in p for t in tags):
            return NOT_CLEAN  # FMT605
        for col in self.texts:
            v = rec.get(col)
            if type(v) is str and "<" in v and any(t in v for t in tags):
                return NOT_CLEAN
        return CLEAN_AND_VALID if self.schema else CLEAN

    def clean_block(self, recs: list[dict], raws: list[bytes] | None) -> int:
        """The least :meth:`clean` state of ``recs`` (``raws``: their bytes), column by column in C-level loops.

        A block whose lines (or texts, without ``raws``) hold no ``<`` (nor its
        escape) has no placeholder; any other is looked at record by record.
        """
        get = dict.get
        prompts = list(map(get, recs, repeat(self.prompt)))
        if not _texts(prompts):
            return NOT_CLEAN
        if self.history is not None and list(map(get, recs, repeat(self.history))).count(None) != len(recs):
            return NOT_CLEAN
        for col in self.strings:
            if not set(map(type, map(get, recs, repeat(col)))) <= _STR_OR_NONE:
                return NOT_CLEAN
        if self.answer is not None and not _texts(list(map(get, recs, repeat(self.answer)))):
            return NOT_CLEAN
        state = CLEAN_AND_VALID if self.schema else CLEAN
        if raws is None:  # rows of a columnar file: their texts
            texts = [v for col in self.texts for v in map(get, recs, repeat(col)) if type(v) is str]
            marked = range(len(recs)) if "<" in "".join(prompts) or "<" in "".join(texts) else ()
        else:
            marked = _may_hold_tags(raws)
        return min(state, *map(self.clean, map(recs.__getitem__, marked))) if marked else state


def _may_hold_tags(raws: list[bytes]) -> list[int]:
    """The positions of the lines that hold a ``<`` or its JSON escape: only their records may hold a media tag.

    >>> _may_hold_tags([b'{"a": "x"}', b'{"a": "<b>"}', b'{"a": "\\\\u003cimage>"}'])
    [1, 2]
    """
    data = b"".join(raws)
    starts: list[int] | None = None
    marked: set[int] = set()
    for find in (_lt_at, _escaped_lt_at):
        at = find(data, 0)
        while at >= 0:
            if starts is None:
                starts = list(accumulate(map(len, raws)))
            i = bisect_right(starts, at)  # the line holding byte `at`
            marked.add(i)
            at = find(data, starts[i])
    return sorted(marked)


def _lt_at(data: bytes, pos: int) -> int:
    return data.find(b"<", pos)


_ESCAPED_LT = re.compile(rb"\\u003")  # "<" written \u003c (or \u003C): the regex engine finds it faster than bytes.find (~1.6x)


def _escaped_lt_at(data: bytes, pos: int) -> int:
    found = _ESCAPED_LT.search(data, pos)
    return found.start() if found else -1


_STR_OR_NONE = frozenset((str, type(None)))


def _texts(values: list) -> bool:
    """Whether every value is a string with a character that is not white space (C-level loops)."""
    try:
        return all(values) and not any(map(str.isspace, values))  # str.isspace takes nothing but a string
    except TypeError:
        return False


class _CleanStrings:
    """For TRL's standard forms (read without an entry): one look that proves a record gives no finding when read.

    It accepts a record holding exactly its form's text columns, each a
    non-blank string (and ``label`` a boolean for trl-unpaired; ``chosen`` and
    ``rejected`` different for trl-preference): such a record reads into a
    Sample without a read error and with no finding of the rules' sample
    checks, so neither runs (the schema still does). Every other record is
    read and checked as before (tests/test_properties.py pins this).

    >>> fast = _CleanStrings.make("trl-prompt-completion")
    >>> fast.clean({"prompt": "2+2?", "completion": "4"}), fast.clean({"prompt": "2+2?", "completion": " "})
    (True, False)
    """

    __slots__ = ("columns", "keys", "label", "pair")
    mcol = None
    COLUMNS = {"trl-text": ("text",), "trl-prompt-only": ("prompt",), "trl-prompt-completion": ("prompt", "completion"),
               "trl-preference": ("prompt", "chosen", "rejected"), "trl-unpaired": ("prompt", "completion")}  # fmt: skip

    @classmethod
    def make(cls, form: str) -> _CleanStrings | None:
        if form not in cls.COLUMNS:
            return None
        self = cls()
        self.columns = cls.COLUMNS[form]
        self.label = form == "trl-unpaired"
        self.pair = form == "trl-preference"
        self.keys = frozenset(self.columns + (("label",) if self.label else ()))
        return self

    def clean(self, rec: dict) -> bool:
        if rec.keys() != self.keys:
            return False
        for col in self.columns:
            v = rec[col]
            if type(v) is not str or not v or v.isspace():
                return False
        if self.label and type(rec["label"]) is not bool:
            return False
        return not self.pair or rec["chosen"] != rec["rejected"]

    def clean_block(self, recs: list[dict]) -> bool:
        """Whether :meth:`clean` accepts every record of ``recs`` (C-level loops)."""
        if set(map(len, recs)) != {len(self.keys)}:
            return False
        try:
            cols = {c: list(map(itemgetter(c), recs)) for c in self.columns}  # every column present: exactly the keys
            if self.label and set(map(type, map(itemgetter("label"), recs))) != {bool}:
                return False
        except KeyError:
            return False
        if not all(map(_texts, cols.values())):
            return False
        return not self.pair or not any(map(operator.eq, cols["chosen"], cols["rejected"]))


class _CleanMessages:
    """:class:`_CleanStrings` for ``trl-messages``: a record that reads into a Sample with no finding of the sample checks.

    It accepts a record holding only ``messages``: a list of objects holding
    exactly ``role`` and ``content``, each content a non-blank string, each role
    ``user`` or ``assistant`` but for an optional leading ``system`` message,
    and at least one turn besides it.

    >>> fast = _CleanMessages.make("trl-messages")
    >>> fast.clean({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})
    True
    >>> fast.clean({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": ""}]})
    False
    """

    __slots__ = ()
    TURNS = frozenset(("user", "assistant"))
    mcol = "messages"  # a column of objects holding two strings in a block it accepts (see RecordChecker)

    @classmethod
    def make(cls, form: str) -> _CleanMessages | None:
        return cls() if form == "trl-messages" else None

    def clean(self, rec: dict) -> bool:
        return self.clean_block([rec])

    def clean_block(self, recs: list[dict]) -> bool:
        """Whether every record of ``recs`` is accepted (C-level loops over all their messages at once)."""
        if set(map(len, recs)) != {1}:
            return False
        try:
            convs = list(map(itemgetter("messages"), recs))
            if set(map(type, convs)) != {list} or 0 in map(len, convs):
                return False
            msgs = list(chain.from_iterable(convs))
            if set(map(type, msgs)) != {dict} or set(map(len, msgs)) != {2}:
                return False
            roles = list(map(itemgetter("role"), msgs))
            if not _texts(list(map(itemgetter("content"), msgs))):
                return False
            firsts = list(map(itemgetter("role"), map(itemgetter(0), convs)))
            if not set(roles) - {"system"} <= self.TURNS or roles.count("system") != firsts.count("system"):
                return False  # an unhashable role (TypeError), another role, or a system message past the first
        except (KeyError, TypeError):
            return False
        # a system message opens a conversation only when a turn follows it
        return "system" not in firsts or 1 not in map(len, convs) or not any(len(c) == 1 and f == "system" for c, f in zip(convs, firsts))


def schema_message(name: str | None, obj, validator) -> tuple[str, str]:
    """The FMT300 message for a record its schema rejects (the most specific error, kept short), and its path.

    ``jsonschema_rs`` reports a failed ``oneOf`` as a whole; the reference
    validator's ``best_match`` names the property that is actually wrong.
    This runs only for rejected records.
    """
    err = next(iter(validator.iter_errors(obj)))
    where, text = "/".join(str(p) for p in err.instance_path), err.message
    reference = reference_validator(name) if name else None
    best = next(iter(reference.iter_errors(obj)), None) if reference is not None else None
    if best is not None:
        where, text = explain_error(best)
    return f"{where or '(record)'}: {text}", where


def _record_rules(view: EntryView | None) -> list:
    if view is None:
        return []
    out = []
    for rule in rule_registry.RULES.values():
        if rule.scope == "record" and rule.check is not None and (rule.applies is None or rule.applies(view)):
            out.append((rule.code, rule.severity, rule.fix, rule.check))
    return out


def _sample_rules(view: EntryView | None, form: str) -> tuple[Any, list]:
    """For a form read without a LLaMA-Factory entry (TRL's, vendors'): its reader and the rules' sample checks."""
    from fmtkit.forms import FORMS

    if view is not None or form not in FORMS or FORMS[form].roles:
        return None, []
    checks = [(r.code, r.severity, r.fix, r.on_sample) for r in rule_registry.RULES.values() if r.on_sample is not None]
    return FORMS[form].read, checks


def _check_sample(read, checks: list, rec: dict, rel: str, line: int | None, index: int, append) -> bool:
    """Read one record into a Sample (a read error is a finding with its rule code) and run the sample checks."""
    from fmtkit.forms import ReadError

    errored = False
    try:
        sample = read(rec, None)
    except ReadError as exc:
        rule = rule_registry.RULES[exc.code]
        append(Finding(exc.code, rule.severity, exc.message, rule.fix, rel, line, index))
        return rule.severity == ERROR
    for code, severity, fix, check in checks:
        out = check(sample)
        if out:
            errored = errored or severity == ERROR
            for message in (out,) if type(out) is str else out:
                append(Finding(code, severity, message, fix, rel, line, index))
    return errored


class RecordChecker:
    """The record rules and the schema over one file, a record at a time, with the file's :class:`FileTally`.

    ``check(index, line, rec, raw)`` checks one decoded record, appends its
    findings and returns whether it has an error; ``problem(p)`` takes a
    :class:`LoadProblem` (a line that does not decode); ``vouched(index, line,
    shape, raw)`` counts a record its caller has proved free of errors without
    checking it (a conversion lane: ``shape`` maps the record's columns to values
    of their JSON types, for the whole-file rules). ``fmtkit validate`` runs
    :func:`check_records`; ``fmtkit convert`` calls these for the records it parses.

    >>> from fmtkit import rules; _ = rules.load_all()
    >>> problems = []
    >>> checker = RecordChecker("d.jsonl", None, "unknown", problems)
    >>> checker.check(0, 1, ["not", "an", "object"], None), [f.code for f in problems], checker.tally.records
    (True, ['FMT202'], 1)
    """

    def __init__(self, rel: str, view: EntryView | None, form: str, problems: list[Finding], hash_limit: int | None = None):
        e = view.entry if view is not None else None
        self.tally = FileTally(mapped=tuple(e.used_columns().values()) if e else (), kto_col=e.kto_tag if e else None,
                               hash_limit=whole_file.DUPLICATE_LIMIT if hash_limit is None else hash_limit,
                               trl=TrlColumns() if form.startswith("trl-") or form == "openai" and (e is None or e.is_bare) else None)  # fmt: skip
        self.check = self._make_check(rel, view, form, problems)
        self.problem = _sink(problems, rel, self.tally)

    def check_block(self, index: int, lines: Sequence[int], recs: list, raws: list[bytes] | None, raw_hash: bool = True) -> None:
        """:meth:`check` for consecutive records (on ``lines``), in one step for a block of clean records.

        ``raws``: the records' bytes (JSON Lines, or array elements), or None;
        ``raw_hash``: they are JSON Lines (duplicates are found by their bytes).
        ``_block_clean`` accepts a block only when every record would get no
        finding from ``check``; the tally then takes the block at once (same
        state as record by record). Any other block goes record by record.
        """
        if self._block_clean(recs, raws):
            self.tally.records += len(recs)
            self.tally.add_block(index, lines, recs, raws if raw_hash else None, self._clean_col)
            return
        check = self.check
        for i, rec in enumerate(recs):
            check(index + i, lines[i], rec, raws[i] if raw_hash and raws is not None else None)

    def vouched(self, index: int, line: int | None, shape: dict) -> None:
        """Count a record proved clean elsewhere (not indexed for duplicates: those are warnings)."""
        tally = self.tally
        tally.records += 1
        if tally.trl is not None or id(shape) not in tally.shapes:
            tally.add_shape(index, line, shape)

    def _make_check(self, rel: str, view: EntryView | None, form: str, problems: list[Finding]):
        """The per-record check, as a closure over everything chosen once per file (the hot loop)."""
        checks = _record_rules(view)
        read, sample_checks = _sample_rules(view, form)
        fast_strings = (_CleanStrings.make(form) or _CleanMessages.make(form)) if read is not None else None
        strings = fast_strings.clean if fast_strings is not None else None  # a record it accepts is neither read nor sample-checked
        schema = _SchemaView(view, form)
        validator, project, identity = schema.validator, schema.project, schema.identity
        codes, schema_name = {c[0] for c in checks}, schema.name if validator is not None else None
        fast = _CleanConversation.make(view, codes, schema_name) or _CleanAlpaca.make(view, codes, schema_name)
        clean = fast.clean if fast is not None else None
        # a clean record's (or block's) messages cannot change the column's Arrow type
        clean_col = fast.mcol if fast is not None else fast_strings.mcol if fast_strings is not None else None
        rest = [c for c in checks if fast is None or c[0] not in fast.covers]  # the rules to run on a record `clean` accepts
        tally = self.tally
        add = tally.add
        append = problems.append
        entry = view.entry if view is not None else None

        def to_schema(rec):
            return rec if identity is not None and rec.keys() <= identity and None not in rec.values() else project(rec)

        def block_clean(recs: list, raws: list[bytes]) -> bool:
            """Whether no record of ``recs`` gets a finding from ``check`` (False: look at each)."""
            if set(map(type, recs)) != {dict}:
                return False
            state = NOT_CLEAN
            if fast is not None:
                state = fast.clean_block(recs, raws)
                if not state:
                    return False
                for _, _, _, rule in rest:
                    if any(map(rule, recs, repeat(view))):
                        return False
            elif checks:
                return False
            if validator is not None and state != CLEAN_AND_VALID:
                try:
                    if not all(map(validator.is_valid, map(to_schema, recs) if schema.keys else recs)):
                        return False
                except (ValueError, OverflowError):
                    return False
            return read is None or (fast_strings is not None and fast_strings.clean_block(recs))

        self._block_clean = block_clean
        self._clean_col = clean_col

        def check(index: int, line: int | None, rec, raw: bytes | None) -> bool:
            tally.records += 1
            if type(rec) is not dict:
                append(Finding("FMT202", ERROR, f"the record is a JSON {rule_registry.json_type(rec)}, not an object", rule_registry.RULES["FMT202"].fix, rel, line, index))
                tally.errored += 1
                return True
            errored = False
            state = clean(rec) if clean is not None else NOT_CLEAN
            for code, severity, fix, rule in rest if state else checks:
                out = rule(rec, view)
                if out:
                    if severity == ERROR:
                        errored = True
                    for message in (out,) if type(out) is str else out:
                        append(Finding(code, severity, message, fix, rel, line, index, pointer=rule_pointer(code, message, entry)))
            if validator is not None and not errored and state != CLEAN_AND_VALID:
                obj = to_schema(rec)
                try:
                    if validator.is_valid(obj):
                        message = None
                    else:
                        message, where = schema_message(schema.name, obj, validator)
                except (ValueError, OverflowError) as exc:  # a lone surrogate (UnicodeEncodeError) or a value the schema engine cannot take
                    message, where = f"(record): cannot be checked against the schema: {exc}", ""
                if message is not None:
                    append(Finding("FMT300", ERROR, message, rule_registry.RULES["FMT300"].fix, rel, line, index, pointer=schema_pointer(where, schema)))
                    errored = True
            if read is not None and not errored and not (strings is not None and strings(rec)):
                errored = _check_sample(read, sample_checks, rec, rel, line, index, append)
            if errored:
                tally.errored += 1
            add(index, line, rec, raw, clean_col if state else None)
            return errored

        return check


def check_records(records: Iterator[Record], rel: str, view: EntryView | None, form: str, problems: list[Finding], progress=None,
                  hash_limit: int | None = None, checker: RecordChecker | None = None) -> FileTally:  # fmt: skip
    """Run the record rules and the schema over ``records``, appending findings to ``problems``.

    ``checker``: the :class:`RecordChecker` to use (one whose ``problem`` the loader already reports to).
    """
    if checker is None:
        checker = RecordChecker(rel, view, form, problems, hash_limit)
    check = checker.check
    for n, (index, line, rec, raw) in enumerate(records, 1):
        check(index, line, rec, raw)
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(rel, n)
    return checker.tally


def check_blocks(blocks: Iterator[tuple[int, Sequence[int], list, list[bytes] | None]], checker: RecordChecker, progress=None,
                 rel: str = "", raw_hash: bool = True) -> FileTally:  # fmt: skip
    """:func:`check_records` for blocks ``(index, lines, records, raws)`` (see :meth:`RecordChecker.check_block`).

    The cyclic garbage collector is paused meanwhile: decoded JSON holds no
    cycles, and a block's thousand containers made it run every block (-15% on
    conversations).
    """
    check_block = checker.check_block
    done = 0
    collecting = gc.isenabled()
    gc.disable()
    try:
        for index, lines, recs, raws in blocks:
            check_block(index, lines, recs, raws, raw_hash)
            if progress is not None and (done + len(recs)) // PROGRESS_EVERY > done // PROGRESS_EVERY:
                progress(rel, done + len(recs))
            done += len(recs)
    finally:
        if collecting:
            gc.enable()
    return checker.tally


def _sink(problems: list[Finding], rel: str, tally: FileTally | None = None):
    """A load problem becomes a finding; a record that does not decode counts as a record with an error."""

    def on_problem(p: LoadProblem) -> None:
        rule = rule_registry.RULES[p.code]
        problems.append(Finding(p.code, rule.severity, p.message, rule.fix, rel, p.line, p.record))
        if tally is not None and p.record is not None and p.code in UNDECODED:
            tally.errored += 1

    return on_problem


# -- the units of work of a data file: one engine for validate and convert ----------------------------------


class Unit(NamedTuple):
    """One unit of work of a data file: the whole file (``end`` None, read by its loader), or the records in bytes
    ``[start, end)``: JSON Lines (:func:`line_ranges`) or, with ``array``, elements of an indented JSON array (:func:`element_ranges`)."""

    path: Path
    start: int = 0
    end: int | None = None
    array: bool = False


def plan_units(path: Path, jobs: int) -> list[Unit]:
    """The units ``--jobs`` splits a file into: byte ranges of a JSON Lines file or an indented JSON array of
    :data:`SHARD_MIN_BYTES` or more (:data:`RANGES_PER_JOB` per job, so a worker that finishes early takes the next), else the whole file.

    >>> plan_units(Path("dataset/alpaca_demo.json"), 4) == [Unit(Path("dataset/alpaca_demo.json"))]
    True
    """
    if jobs > 1 and path.is_file() and DATA_EXTENSIONS.get(path.suffix.lower()) == "json" and path.stat().st_size >= SHARD_MIN_BYTES:
        lines = is_json_lines(path)
        parts = jobs * RANGES_PER_JOB
        bounds = line_ranges(path, parts) if lines else element_ranges(path, parts)
        if bounds:
            return [Unit(path, a, b, not lines) for a, b in bounds]
    return [Unit(path)]


# What the RecordChecker of a unit needs: (file name in findings, entry view, form, records indexed for
# duplicates (None: the default)); None: the unit is not checked (``fmtkit convert --no-check``).
CheckArgs = tuple[str, EntryView | None, str, int | None]
# What a pass does with one unit, where the unit runs: ``work(unit, checker, counts)`` reads the unit's records
# (each through ``checker`` when it is not None), sets ``counts`` to ``[record indices, lines]`` used and returns
# what the pass keeps of the unit. Picklable: it travels to the worker process or Ray task.
UnitWork = Callable[[Unit, "RecordChecker | None", list[int]], Any]


class FilePass(Protocol):
    """What a caller does with a file's records in the same read that checks them, unit by unit.

    ``fmtkit validate`` reads a file for its checks alone (no pass); ``fmtkit convert``
    hands :func:`fmtkit.validation.validate` its :class:`fmtkit.conversion.engine.ConvertPass`,
    which converts each unit's records and writes the unit's part of the output.
    """

    hash_limit: int | None  # records each unit's checker indexes for duplicates (FMT803); None: the default
    whole_arrow: bool  # True: the Arrow model sees the file as one part (the pass's records come without their bytes)

    def works(self, path: Path, units: list[Unit]) -> list[UnitWork]:
        """One work per unit of ``path`` (asked again, for the whole file, when an array's ranges fail)."""

    def joined(self, path: Path, units: list[Unit], kept: list[Any]) -> None:
        """What the works of ``units`` returned, in file order."""


def check_path(path: Path, rel: str, view: EntryView | None, form: str, jobs: int = 1, progress=None,
               file_pass: FilePass | None = None) -> tuple[list[Finding], FileTally]:  # fmt: skip
    """Check one file: its findings and tally. Big JSON Lines files and indented JSON arrays are split in
    units (:func:`plan_units`) over ``jobs`` processes; ``file_pass`` does its work in the same read."""
    return run_paths([path], [(rel, view, form, None)], jobs, file_pass, progress)[0]


def run_paths(paths: list[Path], checks: list[CheckArgs | None], jobs: int = 1, file_pass: FilePass | None = None, progress=None) -> list:
    """The engine: plan the units of ``paths``, run them (here, or all at once over :func:`run_in_workers` and
    so the engine of ``--engine``), join each file's in file order. Returns each file's findings and tally of
    its ``checks`` item (None: not checked) and hands ``file_pass`` what its works kept, file by file."""
    planned = [(path, plan_units(path, jobs)) for path in paths]
    tasks = [task for (_, units), check in zip(planned, checks, strict=True) for task in unit_tasks(units, check, file_pass)]
    if jobs > 1 and len(tasks) > 1:
        # FMT803 compares hash() values made in different workers: they must share the parent's hash seed (the pool forks)
        split = any(len(units) > 1 for _, units in planned)
        results = run_in_workers(run_unit, tasks, jobs, meanwhile=_ready_to_join if split else None)
    else:
        results = [run_unit(task, progress) for task in tasks]
    out = []
    for (path, units), check in zip(planned, checks, strict=True):
        mine, results = results[: len(units)], results[len(units) :]
        if None in mine:  # an array range that only the whole-file reader may judge: the file is read whole, here
            units = [Unit(path)]
            mine = [run_unit(unit_tasks(units, check, file_pass)[0], progress)]
        out.append(join_units(path, units, mine, file_pass))
    return out


def _ready_to_join() -> None:
    """Import numpy, which joining a split file's tallies takes (:meth:`FileTally.shifted`), while the workers run."""
    import numpy  # noqa: F401


def unit_tasks(units: list[Unit], check: CheckArgs | None, file_pass: FilePass | None) -> list[tuple]:
    """The :func:`run_unit` task of each unit: a file's duplicate index is shared out between its units."""
    works = file_pass.works(units[0].path, units) if file_pass is not None else [None] * len(units)
    if check is not None:
        limit = file_pass.hash_limit if file_pass is not None else None if len(units) == 1 else whole_file.DUPLICATE_LIMIT // len(units)
        check = (*check[:3], limit)
    whole_arrow = file_pass is not None and file_pass.whole_arrow
    return [(unit, check, work, whole_arrow) for unit, work in zip(units, works, strict=True)]


def join_units(path: Path, units: list[Unit], results: list, file_pass: FilePass | None):
    """The :func:`run_unit` results of a file's units joined in file order: (findings, tally) of the check, or None."""
    if file_pass is not None:
        file_pass.joined(path, units, [kept for _, kept in results])
    if results[0][0] is None:
        return None
    if len(results) == 1:
        problems, tally, _ = results[0][0]
        return problems, tally
    return join_shards(shard for shard, _ in results)


def run_unit(task: tuple, progress=None) -> tuple[tuple[list[Finding], FileTally, int] | None, Any] | None:
    """One unit, where it runs (a worker process, a Ray task, or here): its :func:`shard_result` (None when not
    checked) and what its work kept; None when an array range holds what only the whole-file reader may judge."""
    unit, check, work, whole_arrow = task
    rule_registry.load_all()
    problems: list[Finding] = []
    counts = [0, 0]
    checker = None
    if check is not None:
        checker = RecordChecker(check[0], check[1], check[2], problems, check[3])
    try:
        if checker is not None and not whole_arrow:
            checker.tally.arrow = arrow_tally_for(unit.path, unit.start, unit.end)
        kept = work(unit, checker, counts) if work is not None else read_unit(unit, checker, check[0], counts, progress)
    except ShardFailed:
        return None
    except OSError as exc:  # the whole file, checked alone: a finding (a pass's read error is its caller's to report)
        if work is not None or unit.end is not None:
            raise
        problems.append(Finding("FMT206", ERROR, f"cannot read {check[0]}: {exc.strerror or exc}", rule_registry.RULES["FMT206"].fix, check[0]))
        return (problems, FileTally(), 0), None
    return (None if checker is None else shard_result(problems, checker.tally, counts)), kept


def read_unit(unit: Unit, checker: RecordChecker, rel: str, counts: list[int], progress=None) -> None:
    """``fmtkit validate``'s read of a unit: its records through ``checker``, a block at a time where the loader has blocks."""
    path = unit.path
    if unit.end is not None:
        if unit.array:
            check_blocks(iter_json_blocks(path, checker.problem, span=(unit.start, unit.end), counts=counts), checker, raw_hash=False)
        else:
            check_blocks(iter_line_blocks(path, range_problems(path, unit.start, checker), unit.start, unit.end, counts), checker)
        return
    kind = DATA_EXTENSIONS.get(path.suffix.lower()) if path.is_file() else None
    if kind == "json" and is_json_lines(path):
        check_blocks(iter_line_blocks(path, range_problems(path, 0, checker)), checker, progress, rel)
    elif kind == "json":  # an array, or objects one after another
        check_blocks(iter_json_blocks(path, checker.problem), checker, progress, rel, raw_hash=False)
    elif kind in ("parquet", "arrow"):
        from fmtkit.loading.columnar import iter_columnar_blocks

        check_blocks(iter_columnar_blocks(path, kind, checker.problem), checker, progress, rel, raw_hash=False)
    else:  # with a checker given, check_records uses no other argument but the records, rel and progress
        check_records(iter_records(path, checker.problem), rel, None, "", [], progress, checker=checker)


def range_problems(path: Path, start: int, checker: RecordChecker):
    """The load-problem sink for the JSON Lines in a byte range starting at ``start``: a leading BOM is reported here."""
    if start == 0 and _starts_with_bom(path):
        checker.problem(LoadProblem("FMT204", "the file starts with a UTF-8 byte order mark (BOM)", 1))
    return checker.problem


def _starts_with_bom(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(3) == BOM


def shard_result(problems: list[Finding], tally: FileTally, counts: list[int]) -> tuple[list[Finding], FileTally, int]:
    """What one shard of a file hands back for :func:`join_shards`: its findings, its tally and the record indices it used."""
    # tally.records counts decoded records (as one process does); indices also count unreadable lines
    tally.lines = counts[1]
    return problems, tally, counts[0]


def join_shards(results: Iterable[tuple[list[Finding], FileTally, int]]) -> tuple[list[Finding], FileTally]:
    """Join the :func:`shard_result` of a file's shards, in file order: later shards' records and lines move past earlier ones'."""
    problems: list[Finding] = []
    total: FileTally | None = None
    records = lines = decoded = 0
    for found, tally, indices in results:
        for f in found:
            if f.record is not None:
                f.record += records
            if f.line is not None:
                f.line += lines
        problems.extend(found)
        n, ln = tally.records, tally.lines
        tally.shifted(records, lines)
        if total is None:
            total = tally
        else:
            total.join(tally)
        records += indices
        lines += ln
        decoded += n
    assert total is not None
    total.records, total.lines = decoded, lines
    return problems, total

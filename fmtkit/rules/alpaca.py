"""FMT3xx: Alpaca records (instruction / input / output / system / history), and the record schemas."""

from __future__ import annotations

from fmtkit.rules import ERROR, WARNING, declare, rule, json_type
from fmtkit.rules.view import EntryView


def _alpaca(view: EntryView) -> bool:
    return view.entry.formatting == "alpaca"


declare(
    "FMT300", "record-schema", ERROR, "make the record match its form's schema in schemas/", "record",
    """A record does not match the JSON Schema of its form (a wrong type or a missing key
    that no more specific rule reported).

    Only the columns the entry maps are checked (LLaMA-Factory ignores the
    rest). Files of TRL's forms, given alone, are checked by their schema.

    Passes::

        # demo.jsonl (alone)
        {"prompt": "Hi", "completion": "Hello"}

    Fails::

        # demo.jsonl (alone)
        {"prompt": "Hi", "completion": 3}
    """,
)  # fmt: skip


@rule("FMT301", "missing-column", WARNING, "add the column to the record, or map it in the entry's `columns`", applies=_alpaca)
def missing_column(rec: dict, view: EntryView):
    """A record lacks the column the entry maps its instruction (`prompt`) to, often a misspelled key.

    `datasets` fills the key with null, so LLaMA-Factory trains the record with
    the input alone as the prompt (or an empty one); a column that no record
    has stops it (FMT801).

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instuction": "Hi", "output": "Hello"}
    """
    col = view.entry.prompt
    if col is not None and col not in rec and not (view.entry.query and rec.get(view.entry.query)) and not _bare_text(view):
        if view.entry.is_pretrain:
            return f"no {col!r}: LLaMA-Factory trains this record as the end-of-sequence token alone"
        return f"no {col!r} (the entry's prompt column)"
    return None


def _bare_text(view: EntryView) -> bool:
    return view.entry.is_bare and view.entry.is_pretrain


@rule("FMT306", "no-text", ERROR, "give every record its text, or drop the record", applies=_bare_text)
def no_text(rec: dict, view: EntryView):
    """A record of a text file given alone (no ``dataset_info.json``) has no `text`, or a null one.

    `datasets` gives the record a null text, and a trainer reading the file
    alone (TRL's) fails on it. In an entry of a ``dataset_info.json``
    LLaMA-Factory trains such a record as the end-of-sequence token alone
    instead: FMT301 warns of it there.

    Passes::

        # demo.jsonl (alone)
        {"text": "A long document."}

    Fails::

        # demo.jsonl (alone)
        {"text": "A long document."}
        {"source": "wiki"}
    """
    if rec.get(view.entry.prompt) is None and type(rec.get("messages")) is not list:  # another type is FMT302's
        return f"no {view.entry.prompt!r}: a trainer reading this file alone fails on it"  # (TRL takes a row's messages instead)
    return None


_STR_COLUMNS = ("prompt", "query", "response", "system")


@rule("FMT302", "not-a-string", ERROR, "make the value a string", applies=_alpaca)
def not_a_string(rec: dict, view: EntryView):
    """An Alpaca text column (instruction, input, output, system) holds a non-string.

    Passes::

        # demo.jsonl
        {"instruction": "Add 1 and 2", "input": "", "output": "3"}

    Fails::

        # demo.jsonl
        {"instruction": "Add 1 and 2", "input": "", "output": 3}
    """
    e = view.entry
    out = None
    for key in _STR_COLUMNS:
        col = getattr(e, key)
        if col is not None:
            value = rec.get(col)
            if value is not None and type(value) is not str:
                out = out or []
                out.append(f"{col!r} is {json_type(value)}, not a string")
    return out


@rule("FMT303", "empty-text", WARNING, "fill in the text, or drop the record", applies=_alpaca)
def empty_text(rec: dict, view: EntryView):
    """The instruction (with input) or the answer is empty or only white space.

    LLaMA-Factory keeps such records and trains on an empty prompt or answer.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "  "}
    """
    e = view.entry
    out = None
    if e.prompt is not None and not e.ranking:
        p = rec.get(e.prompt)
        q = rec.get(e.query) if e.query else None
        if (type(p) is str or p is None) and (type(q) is str or q is None) and not (p or "").strip() and not (q or "").strip():
            out = ["the prompt (instruction and input) is empty"]
    if e.response is not None and not e.ranking:
        r = rec.get(e.response)
        if type(r) is str and not r.strip():
            out = (out or []) + ["the answer is empty"]
    return out


@rule("FMT304", "bad-history", ERROR, "make history a list of [user, assistant] string pairs, oldest first", applies=lambda v: _alpaca(v) and v.entry.history is not None)
def bad_history(rec: dict, view: EntryView):
    """`history` is a list, but not of ``[user, assistant]`` string pairs.

    LLaMA-Factory unpacks each item of a list history as a pair, so any other
    item stops it. A history that is not a list at all is ignored (FMT305).

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}
        # demo.jsonl
        {"instruction": "And 2+2?", "input": "", "output": "4", "history": [["1+1?", "2"]]}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}
        # demo.jsonl
        {"instruction": "And 2+2?", "input": "", "output": "4", "history": ["1+1?", "2"]}
    """
    h = rec.get(view.entry.history)
    if type(h) is not list:
        return None  # LLaMA-Factory reads a history only when it is a list (FMT305)
    for i, pair in enumerate(h):
        if type(pair) is not list or len(pair) != 2 or not all(type(x) is str for x in pair):
            return f"history[{i}] is not a [user, assistant] pair of strings"
    return None


@rule("FMT305", "history-ignored", WARNING, "make history a list of [user, assistant] pairs, or remove it", applies=lambda v: _alpaca(v) and v.entry.history is not None)
def history_ignored(rec: dict, view: EntryView):
    """`history` holds a value that is not a list, which LLaMA-Factory silently ignores.

    Its Alpaca reader uses the history only when it is a list, so a history
    written as text (or an object) is not trained on. Null and ``""`` mean "no
    history" and pass. (The column must still have one type in every row.)

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}
        # demo.jsonl
        {"instruction": "And 2+2?", "input": "", "output": "4", "history": ""}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}
        # demo.jsonl
        {"instruction": "And 2+2?", "input": "", "output": "4", "history": "user: 1+1? assistant: 2"}
    """
    h = rec.get(view.entry.history)
    if h is None or h == "" or type(h) is list:
        return None
    return f"history is {json_type(h)}, not a list of pairs: LLaMA-Factory ignores it, so it is not trained on"

"""FMT5xx: preference pairs (``ranking: true``) and KTO labels (``kto_tag``)."""

from __future__ import annotations

from fmtkit.rules import ERROR, WARNING, declare, rule, json_type, sample_check
from fmtkit.rules.view import EntryView
from fmtkit.sample import Sample


def _ranking(view: EntryView) -> bool:
    return view.entry.ranking is True and view.entry.chosen is not None and view.entry.rejected is not None


def _kto(view: EntryView) -> bool:
    return view.entry.kto_tag is not None


@rule("FMT501", "bad-pair", ERROR, "give chosen and rejected as strings (alpaca) or single assistant messages (sharegpt)", applies=_ranking)
def bad_pair(rec: dict, view: EntryView):
    """A preference record's `chosen` or `rejected` is missing or malformed.

    Alpaca pairs are two strings; ShareGPT pairs are two single message objects
    whose role is the assistant (or function_call) tag. LLaMA-Factory drops
    anything else.

    Passes::

        # entry: {"formatting": "sharegpt", "ranking": true, "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello!"}, "rejected": {"from": "gpt", "value": "Go away."}}

    Fails::

        # entry: {"formatting": "sharegpt", "ranking": true, "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}], "chosen": "Hello!", "rejected": {"from": "gpt", "value": "Go away."}}
    """
    e = view.entry
    out = []
    for side in ("chosen", "rejected"):
        col = getattr(e, side)
        v = rec.get(col)
        if v is None:
            out.append(f"no {col!r} ({side}) in this record")
        elif e.is_conversation:
            if type(v) is not dict:
                out.append(f"{side} {col!r} is {json_type(v)}, not a single message object")
            elif type(v.get(e.role_tag)) is not str or v[e.role_tag] not in view.odd_roles:
                out.append(f"{side} has role {v.get(e.role_tag)!r}; it must be {' or '.join(map(repr, sorted(view.odd_roles)))}")
            elif type(v.get(e.content_tag)) is not str:
                out.append(f"{side} has no string {e.content_tag!r}")
        elif type(v) is not str:
            out.append(f"{side} {col!r} is {json_type(v)}, not a string")
    return out or None


def _side_text(v, view: EntryView):
    if type(v) is dict:
        return v.get(view.entry.content_tag)
    return v


@rule("FMT502", "identical-pair", WARNING, "make chosen and rejected differ, or drop the pair", applies=_ranking)
def identical_pair(rec: dict, view: EntryView):
    """`chosen` and `rejected` are the same: the pair teaches nothing.

    Checked in every form that holds pairs (TRL's and vendors' too).

    Passes::

        # entry: {"ranking": true, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "chosen": "Hello!", "rejected": "Go away."}

    Fails::

        # entry: {"ranking": true, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "chosen": "Hello!", "rejected": "Hello!"}
    """
    e = view.entry
    c, r = _side_text(rec.get(e.chosen), view), _side_text(rec.get(e.rejected), view)
    if type(c) is str and c == r:
        return "chosen and rejected are identical"
    return None


@rule("FMT503", "kto-tag-not-bool", ERROR, "use JSON true / false (not strings or numbers)", applies=_kto)
def kto_tag_not_bool(rec: dict, view: EntryView):
    """A KTO label is not a JSON boolean.

    LLaMA-Factory only treats ``true`` / ``false`` as labels; the string
    ``"true"`` or the number ``1`` silently turns the row into a broken sample.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": true}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": "true"}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}
    """
    col = view.entry.kto_tag
    v = rec.get(col)
    if type(v) is not bool:
        return f"{col!r} is {v!r} ({json_type(v)}), not true or false"
    return None


declare(
    "FMT504", "kto-one-sided", WARNING, "include both desirable (true) and undesirable (false) examples", "dataset",
    """Every KTO label in an entry is the same: KTO needs both kinds to learn.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": true}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": true}
        {"instruction": "Hey", "input": "", "output": "Hey there", "label": true}
    """,
)  # fmt: skip


@sample_check("FMT502")
def identical_pair_sample(sample: Sample):
    if sample.chosen is not None and sample.rejected is not None and sample.chosen == sample.rejected:
        return "chosen and rejected are identical"
    return None


@rule("FMT505", "kto-empty-desirable", ERROR, "write the answer, or drop the record", applies=_kto)
def kto_empty_desirable(rec: dict, view: EntryView):
    """A KTO record labelled desirable (``true``) has an empty answer: LLaMA-Factory trains it as undesirable.

    Its feedback processor tells the label from which side of the pair holds
    the answer, so an empty desirable answer reads as ``false``.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": true}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "", "label": true}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}
    """
    e = view.entry
    if rec.get(e.kto_tag) is not True:
        return None
    if e.is_conversation:
        msgs = rec.get(e.messages)
        answer = msgs[-1].get(e.content_tag) if type(msgs) is list and msgs and type(msgs[-1]) is dict else None
    else:
        answer = rec.get(e.response) if e.response is not None else None
    if answer == "":
        return "the answer is empty and the label is true: LLaMA-Factory reads the record as undesirable (false)"
    return None

"""Fast lanes: the busiest conversions done on a JSON Lines line's bytes, without building a Sample.

A lane turns one line straight into the output line, exactly as the general
path (read, then write, then fill the output's columns) would write it, or
returns None for any line it does not handle, which then takes the general
path. It decodes the line with ``msgspec`` into a strict struct that keeps each
text as its raw JSON bytes (no Python string is built, none is re-encoded), so
it runs at several times the speed of ``orjson.loads`` + ``orjson.dumps``.

A lane also proves the record clean: it takes only records on which
``fmtkit validate`` reports no error (a decodable, valid UTF-8 line; exactly the
mapped columns; string texts without media placeholders; the turn order
LLaMA-Factory accepts), so ``fmtkit convert`` counts the records it takes as
checked without running the rules on them. Tests check both claims, on random
records, against the general path and against the validator.

A lane factory takes the entry the input is read through and the output's
columns (in order, each with the value that stands for "absent", which fills
the columns the lane does not write) and returns the lane, or None when it does
not handle that entry or those columns. The lane returns ``(output line,
shape, loss)``: ``shape`` maps each column of the record to a value of its JSON type,
for the validator's whole-file rules; ``loss`` is the one droppable
:class:`~fmtkit.forms.Loss` the general path would report for the record
(Alpaca's instruction/input split), or None.

>>> from fmtkit.dataset_info import DatasetEntry
>>> lane = sharegpt_to_openai(DatasetEntry.for_file("sharegpt"), {"messages": None})
>>> lane(b'{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "system": "S"}')[0]
b'{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]}\\n'
>>> lane(b'{"conversations": [{"from": "gpt", "value": "Yo"}]}') is None  # not an order it takes: the general path decides
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import Loss
from fmtkit.sample import PLACEHOLDERS

Lane = Callable[[bytes], "tuple[bytes, dict[str, Any], Loss | None] | None"]
INPUT_SPLIT = Loss("input-split", "sharegpt joins the Alpaca instruction and input into one user message")

_QUOTE = 0x22  # the first byte of a JSON string
_TAGS = tuple(t.encode() for t in PLACEHOLDERS.values())


def _text_ok(line: bytes) -> bool:
    """Valid UTF-8 (msgspec does not check raw values) and no media placeholder (FMT602 needs the media count)."""
    if not line.isascii():
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return b"<" not in line or not any(t in line for t in _TAGS)


def _tail(columns: dict[str, Any], own: int) -> bytes:
    """The end of every output line: the columns after the lane's ``own`` first ones, absent, and the closing brace."""
    import orjson

    return b"".join(b"," + orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in list(columns.items())[own:]) + b"}\n"


def _struct(name: str, fields: list[tuple], rename: dict[str, str]):
    """A strict msgspec struct: an unknown key fails decoding, so the record takes the general path."""
    import msgspec

    return msgspec.defstruct(name, fields, rename=rename, forbid_unknown_fields=True, gc=False)


def _turns(parts: list, msgs: list, user: Any, assistant: Any, pu: bytes, pa: bytes) -> bool:
    """Append ``pu`` + content + ``},`` then ``pa`` + content + ``},`` for each user/assistant pair of ``msgs``
    (decoded messages with raw contents); False when they are not such pairs of strings (none, or an odd number)."""
    if not msgs or len(msgs) & 1:
        return False
    view, sep = memoryview, b"},"
    it = iter(msgs)
    for u, a in zip(it, it):
        cu, ca = u.content, a.content
        if u.role != user or a.role != assistant or view(cu)[0] != _QUOTE or view(ca)[0] != _QUOTE:
            return False
        parts += (pu, cu, sep, pa, ca, sep)
    return True


def sharegpt_to_openai(entry: DatasetEntry, columns: dict[str, Any]) -> Lane | None:
    """ShareGPT -> OpenAI for plain text conversations: an optional system prompt, then user/assistant turns."""
    if next(iter(columns), None) != "messages" or not entry.is_conversation or entry.ranking or entry.kto_tag or entry.messages is None:
        return None
    user, assistant, system_tag = entry.user_tag, entry.assistant_tag, entry.system_tag
    if user is None or assistant is None or len({user, assistant, system_tag}) < 3 or entry.role_tag == entry.content_tag:
        return None
    import msgspec

    raw, unset = msgspec.Raw, msgspec.UNSET
    message = _struct("Message", [("role", str), ("content", raw)], {"role": entry.role_tag, "content": entry.content_tag})
    fields: list[tuple] = [("messages", list[message])]
    rename = {"messages": entry.messages}
    sys_col = entry.system
    if sys_col is not None and sys_col != entry.messages:
        fields.append(("system", raw | msgspec.UnsetType, unset))
        rename["system"] = sys_col
    else:
        sys_col = None
    decode = msgspec.json.Decoder(_struct("Record", fields, rename)).decode
    failed = msgspec.DecodeError  # ValidationError is one
    view = memoryview
    col = entry.messages
    msgs_shape = [{entry.role_tag: "", entry.content_tag: ""}]  # the messages it takes: objects of two strings
    shapes = {0: {col: msgs_shape}, 1: {col: msgs_shape, sys_col: ""}, 2: {col: msgs_shape, sys_col: None}}
    head, system, sep, tail = b'{"messages":[', b'{"role":"system","content":', b"},", b"}]" + _tail(columns, 1)
    pu, pa = b'{"role":"user","content":', b'{"role":"assistant","content":'

    tags = _TAGS

    def lane(line: bytes) -> tuple[bytes, dict[str, Any]] | None:
        try:
            rec = decode(line)
        except failed:
            return None
        if not line.isascii():  # the hot loop: _text_ok, inlined
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if b"<" in line and (tags[0] in line or tags[1] in line or tags[2] in line):
            return None
        msgs = rec.messages
        parts = [head]
        shape = 0
        if sys_col is not None and rec.system is not unset:
            value = rec.system
            if view(value)[0] == _QUOTE:
                shape = 1
                if len(value) > 2:  # not "": the general path writes no empty system prompt
                    parts += (system, value, sep)
            elif bytes(value) == b"null":
                shape = 2
            else:
                return None
        if msgs and msgs[0].role == system_tag:
            if shape:
                return None  # a system column beside a system message (FMT408): the general path decides
            value = msgs[0].content
            if view(value)[0] != _QUOTE:
                return None
            if len(value) > 2:
                parts += (system, value, sep)
            msgs = msgs[1:]
        if not _turns(parts, msgs, user, assistant, pu, pa):
            return None
        parts[-1] = tail
        return b"".join(parts), shapes[shape], None

    return lane


def openai_to_sharegpt(entry: DatasetEntry, columns: dict[str, Any]) -> Lane | None:
    """OpenAI -> ShareGPT for plain text conversations: an optional system message, then user/assistant turns.

    >>> lane = openai_to_sharegpt(DatasetEntry.for_file("openai"), {"conversations": None, "system": ""})
    >>> lane(b'{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}')[0]
    b'{"conversations":[{"from":"human","value":"Hi"},{"from":"gpt","value":"Yo"}],"system":""}\\n'
    """
    order = list(columns)
    with_system = order[1:2] == ["system"]  # the output has a system column (the first records had one)
    if order[:1] != ["conversations"] or ("system" in order and not with_system):
        return None
    if not entry.is_conversation or entry.ranking or entry.kto_tag or entry.messages is None or entry.system is not None:
        return None
    user, assistant, system_tag = entry.user_tag, entry.assistant_tag, entry.system_tag
    if user is None or assistant is None or len({user, assistant, system_tag}) < 3 or entry.role_tag == entry.content_tag:
        return None
    import msgspec
    import orjson

    message = _struct("Message", [("role", str), ("content", msgspec.Raw)], {"role": entry.role_tag, "content": entry.content_tag})
    decode = msgspec.json.Decoder(_struct("Record", [("messages", list[message])], {"messages": entry.messages})).decode
    failed = msgspec.DecodeError
    view = memoryview
    shape = {entry.messages: [{entry.role_tag: "", entry.content_tag: ""}]}  # the messages it takes: objects of two strings
    fill_system = b',"system":' + orjson.dumps(columns["system"]) if with_system else b""
    end = _tail(columns, 2 if with_system else 1)
    head, close = b'{"conversations":[', b"}]"
    pu, pa = b'{"from":"human","value":', b'{"from":"gpt","value":'

    def lane(line: bytes) -> tuple[bytes, dict[str, Any], None] | None:
        try:
            msgs = decode(line).messages
        except failed:
            return None
        if not _text_ok(line):
            return None
        system = fill_system
        if msgs and msgs[0].role == system_tag:
            value = msgs[0].content
            if view(value)[0] != _QUOTE:
                return None
            if len(value) > 2:  # not "": the general path writes no empty system prompt
                if not with_system:
                    return None  # a column the output's first records did not have: the general path adds it
                system = b',"system":' + value
            msgs = msgs[1:]
        parts = [head]
        if not _turns(parts, msgs, user, assistant, pu, pa):
            return None
        parts[-1] = close
        parts += (system, end)
        return b"".join(parts), shape, None

    return lane


def alpaca_to_sharegpt(entry: DatasetEntry, columns: dict[str, Any]) -> Lane | None:
    """Alpaca -> ShareGPT for single-turn SFT records: instruction (and input), output, an optional system prompt.

    >>> lane = alpaca_to_sharegpt(DatasetEntry.for_file("alpaca"), {"conversations": None, "system": ""})
    >>> lane(b'{"instruction": "A", "input": "B", "output": "C"}')[0]
    b'{"conversations":[{"from":"human","value":"A\\\\nB"},{"from":"gpt","value":"C"}],"system":""}\\n'
    """
    if entry.form != "alpaca" or entry.prompt is None or entry.response is None:
        return None
    order = list(columns)
    with_system = order[1:2] == ["system"]  # the output has a system column (the first records had one)
    if order[:1] != ["conversations"] or ("system" in order and not with_system):
        return None
    names = {"prompt": entry.prompt, "query": entry.query, "response": entry.response, "system": entry.system, "history": entry.history}
    names = {k: v for k, v in names.items() if v is not None}
    if len(set(names.values())) != len(names):
        return None
    import msgspec
    import orjson

    raw, unset = msgspec.Raw, msgspec.UNSET
    optional = raw | msgspec.UnsetType
    fields: list[tuple] = [("prompt", raw), ("response", raw)]
    fields += [(k, optional, unset) for k in ("query", "system", "history") if k in names]
    decode = msgspec.json.Decoder(_struct("Record", fields, names)).decode
    failed = msgspec.DecodeError
    view = memoryview
    has_query, has_system, has_history = "query" in names, "system" in names, "history" in names
    fill_system = b',"system":' + orjson.dumps(columns["system"]) if with_system else b""
    end = _tail(columns, 2 if with_system else 1)
    shapes: dict[tuple[bool, bool, bool], dict[str, Any]] = {}
    head, mid, tail = b'{"conversations":[{"from":"human","value":', b'},{"from":"gpt","value":', b"}]"
    newline = b"\\n"

    def lane(line: bytes) -> tuple[bytes, dict[str, Any]] | None:
        try:
            rec = decode(line)
        except failed:
            return None
        ins, out = rec.prompt, rec.response
        query = rec.query if has_query else unset
        system = rec.system if has_system else unset
        history = rec.history if has_history else unset
        if view(ins)[0] != _QUOTE or view(out)[0] != _QUOTE:
            return None
        if query is not unset and view(query)[0] != _QUOTE:
            return None
        if history is not unset and bytes(history) != b"[]":
            return None
        if not _text_ok(line):
            return None
        lost = None
        if query is unset or len(query) == 2:
            value = ins
        elif len(ins) == 2:
            value, lost = query, INPUT_SPLIT
        else:  # "instruction\ninput", joined inside the JSON strings
            value, lost = b"".join((view(ins)[:-1], newline, view(query)[1:])), INPUT_SPLIT
        parts = [head, value, mid, out, tail]
        if system is not unset:
            if view(system)[0] != _QUOTE:
                return None
            if len(system) > 2:
                if not fill_system:
                    return None  # a column the output's first records did not have: the general path fills it
                parts += (b',"system":', system)
            else:
                parts.append(fill_system)
        else:
            parts.append(fill_system)
        parts.append(end)
        key = (query is not unset, system is not unset, history is not unset)
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = {names[k]: ([] if k == "history" else "") for k, present in
                                   zip(("prompt", "response", "query", "system", "history"), (True, True, *key), strict=True) if present}  # fmt: skip
        return b"".join(parts), shape, lost

    return lane

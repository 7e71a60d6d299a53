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


# ---- the lanes of the other LLaMA-Factory kinds and of TRL's conversational forms ----------------------------
#
# A source lane reads a line into ``(system, texts, chosen, rejected, label, shape, loss)``: the raw system prompt
# (None when there is none), the raw texts of alternating user/assistant turns (the prompt, then for SFT and KTO
# the answer), the raw preference answers and the KTO label (True or False). A target writes those as its columns.
# Both are pure splicing of raw JSON strings; anything else returns None and takes the general path.

Parsed = tuple  # (system, texts, chosen, rejected, label, shape, loss)
_USER, _ASSISTANT, _SYSTEM = b'{"role":"user","content":', b'{"role":"assistant","content":', b'{"role":"system","content":'
_HUMAN, _GPT = b'{"from":"human","value":', b'{"from":"gpt","value":'


def _kind_of(entry: DatasetEntry) -> str | None:
    """The kind of sample an entry's records hold (None: one the lanes leave to the general path)."""
    if entry.ranking and entry.kto_tag:
        return None
    return "preference" if entry.ranking else "kto" if entry.kto_tag else "sft"


def _read_conversation(entry: DatasetEntry) -> Callable[[bytes], Parsed | None] | None:
    """A source lane for conversation entries (ShareGPT or OpenAI tags): an optional system prompt (column or first
    message), user/assistant turns that alternate from the user, and the entry's chosen/rejected messages or kto_tag."""
    kind = _kind_of(entry)
    if not entry.is_conversation or kind is None or entry.messages is None:
        return None
    user, assistant, system_tag = entry.user_tag, entry.assistant_tag, entry.system_tag
    if user is None or assistant is None or len({user, assistant, system_tag}) < 3 or entry.role_tag == entry.content_tag:
        return None
    import msgspec

    raw, unset = msgspec.Raw, msgspec.UNSET
    message = _struct("Message", [("role", str), ("content", raw)], {"role": entry.role_tag, "content": entry.content_tag})
    col = entry.messages
    fields: list[tuple] = [("messages", list[message])]
    rename = {"messages": col}
    names = {col: [{entry.role_tag: "", entry.content_tag: ""}]}  # column -> a value of its type, for the shape
    if kind == "preference":
        fields += [("chosen", message), ("rejected", message)]
        rename |= {"chosen": entry.chosen, "rejected": entry.rejected}
        names |= {entry.chosen: {entry.role_tag: "", entry.content_tag: ""}, entry.rejected: {entry.role_tag: "", entry.content_tag: ""}}
    elif kind == "kto":
        fields.append(("label", bool))
        rename["label"] = entry.kto_tag
        names[entry.kto_tag] = True
    sys_col = entry.system if entry.system != col else None
    if sys_col is not None:
        fields.append(("system", raw | msgspec.UnsetType, unset))
        rename["system"] = sys_col
    if len(set(rename.values())) != len(rename) or None in rename.values():
        return None
    decode = msgspec.json.Decoder(_struct("Record", fields, rename)).decode
    failed = msgspec.DecodeError
    view = memoryview
    shapes = {key: {**names, sys_col: value} if key else names for key, value in ((0, None), (1, ""), (2, None))}
    odd = kind == "preference"  # a preference prompt ends with the user
    roles = _Alternation(user, assistant)
    tags = _TAGS

    def read(line: bytes) -> Parsed | None:
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
        msgs, system, shape = rec.messages, None, 0
        if sys_col is not None and rec.system is not unset:
            value = rec.system
            if view(value)[0] == _QUOTE:
                shape, system = 1, value
            elif bytes(value) == b"null":
                shape = 2
            else:
                return None
        if msgs and msgs[0].role == system_tag:
            if shape:
                return None  # a system column beside a system message (FMT408): the general path decides
            system = msgs[0].content
            if view(system)[0] != _QUOTE:
                return None
            msgs = msgs[1:]
        n = len(msgs)
        if not n or n & 1 != odd:
            return None
        texts = []
        append = texts.append
        for m, role in zip(msgs, roles[n]):
            content = m.content
            if m.role != role or view(content)[0] != _QUOTE:
                return None
            append(content)
        chosen = rejected = label = None
        if odd:
            chosen, rejected = rec.chosen, rec.rejected
            if chosen.role != assistant or rejected.role != assistant:
                return None
            chosen, rejected = chosen.content, rejected.content
            if view(chosen)[0] != _QUOTE or view(rejected)[0] != _QUOTE:
                return None
        elif kind == "kto":
            label = rec.label
        if system is not None and len(system) == 2:
            system = None  # "": no system prompt
        return system, texts, chosen, rejected, label, shapes[shape], None

    return read


def _read_alpaca(entry: DatasetEntry) -> Callable[[bytes], Parsed | None] | None:
    """A source lane for Alpaca entries: instruction (and input), the answer (output, chosen/rejected, or output and
    kto_tag), an optional system prompt and an empty history."""
    kind = _kind_of(entry)
    if entry.is_conversation or entry.is_pretrain or kind is None or entry.prompt is None:
        return None
    answers = {"sft": ("response",), "kto": ("response", "kto_tag"), "preference": ("chosen", "rejected")}[kind]
    names = {"prompt": entry.prompt, **{k: getattr(entry, k) for k in answers}, "query": entry.query, "system": entry.system, "history": entry.history}
    if any(names[k] is None for k in answers) or (kind == "preference" and entry.response is not None):
        return None
    names = {k: v for k, v in names.items() if v is not None}
    if len(set(names.values())) != len(names):
        return None
    import msgspec

    raw, unset = msgspec.Raw, msgspec.UNSET
    optional = raw | msgspec.UnsetType
    fields: list[tuple] = [("prompt", raw), *((k, bool if k == "kto_tag" else raw) for k in answers)]
    fields += [(k, optional, unset) for k in ("query", "system", "history") if k in names]
    decode = msgspec.json.Decoder(_struct("Record", fields, names)).decode
    failed = msgspec.DecodeError
    view = memoryview
    has_query, has_system, has_history = "query" in names, "system" in names, "history" in names
    shapes: dict[tuple[bool, bool, bool], dict[str, Any]] = {}
    newline = b"\\n"
    sft, kto = kind == "sft", kind == "kto"

    def read(line: bytes) -> Parsed | None:
        try:
            rec = decode(line)
        except failed:
            return None
        ins = rec.prompt
        query = rec.query if has_query else unset
        system = rec.system if has_system else unset
        history = rec.history if has_history else unset
        if view(ins)[0] != _QUOTE or (query is not unset and view(query)[0] != _QUOTE):
            return None
        if system is not unset and view(system)[0] != _QUOTE:
            return None
        if history is not unset and bytes(history) != b"[]":
            return None
        chosen = rejected = label = None
        if sft or kto:
            out = rec.response
            if view(out)[0] != _QUOTE:
                return None
        else:
            chosen, rejected = rec.chosen, rec.rejected
            if view(chosen)[0] != _QUOTE or view(rejected)[0] != _QUOTE:
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
        key = (query is not unset, system is not unset, history is not unset)
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = {names[k]: True if k == "kto_tag" else [] if k == "history" else "" for k in names
                                   if k in ("prompt", *answers) or (k, True) in zip(("query", "system", "history"), key)}  # fmt: skip
        if kto:
            label = rec.kto_tag
        return (system if system is not unset and len(system) > 2 else None), ([value, out] if sft or kto else [value]), chosen, rejected, label, shape, lost

    return read


class _Alternation(dict):
    """n -> the list of n values ``first``, ``second``, ``first``, ... (made once per length)."""

    def __init__(self, first: Any, second: Any):
        super().__init__()
        self.pair = (first, second)

    def __missing__(self, n: int) -> list:
        self[n] = out = [self.pair[i & 1] for i in range(n)]
        return out


_OPENAI_TURNS, _SHAREGPT_TURNS = _Alternation(_USER, _ASSISTANT), _Alternation(_HUMAN, _GPT)


def _alternate(parts: list, texts: list, prefixes: _Alternation) -> None:
    """Append each text as a message (user and assistant in turn, ``prefixes`` their openings), each followed by ``},``."""
    sep = b"},"
    for p, t in zip(prefixes[len(texts)], texts):
        parts += (p, t, sep)


def _conv(parts: list, system: bytes | None, texts: list) -> None:
    """A TRL conversational message list: OpenAI messages, the system prompt first."""
    parts.append(b"[")
    if system is not None:
        parts += (_SYSTEM, system, b"},")
    _alternate(parts, texts, _OPENAI_TURNS)
    parts[-1] = b"}]"


def _sharegpt(parts: list, texts: list) -> None:
    parts.append(b"[")
    _alternate(parts, texts, _SHAREGPT_TURNS)
    parts[-1] = b"}]"


def _bool(label: bool) -> bytes:
    return b"true" if label else b"false"


def _trl_messages(parts: list, system, texts, chosen, rejected, label) -> None:
    parts.append(b'{"messages":')
    _conv(parts, system, texts)


def _trl_prompt_completion(parts: list, system, texts, chosen, rejected, label) -> None:
    parts.append(b'{"prompt":')
    _conv(parts, system, texts[:-1])
    parts += (b',"completion":[', _ASSISTANT, texts[-1], b"}]")


def _trl_preference(parts: list, system, texts, chosen, rejected, label) -> None:
    parts.append(b'{"prompt":')
    _conv(parts, system, texts)
    parts += (b',"chosen":[', _ASSISTANT, chosen, b'}],"rejected":[', _ASSISTANT, rejected, b"}]")


def _trl_unpaired(parts: list, system, texts, chosen, rejected, label) -> None:
    _trl_prompt_completion(parts, system, texts, chosen, rejected, label)
    parts += (b',"label":', _bool(label))


def _sharegpt_preference(parts: list, system, texts, chosen, rejected, label) -> None:
    parts.append(b'{"conversations":')
    _sharegpt(parts, texts)
    parts += (b',"chosen":', _GPT, chosen, b'},"rejected":', _GPT, rejected, b"}")


def _sharegpt_kto(parts: list, system, texts, chosen, rejected, label) -> None:
    parts.append(b'{"conversations":')
    _sharegpt(parts, texts)
    parts += (b',"kto_tag":', _bool(label))


# target form -> (the kind of sample it holds, its first columns, their writer, whether the system prompt is a column)
TARGETS: dict[str, tuple[str, tuple[str, ...], Callable[..., None], bool]] = {
    "trl-messages": ("sft", ("messages",), _trl_messages, False),
    "trl-prompt-completion": ("sft", ("prompt", "completion"), _trl_prompt_completion, False),
    "trl-preference": ("preference", ("prompt", "chosen", "rejected"), _trl_preference, False),
    "trl-unpaired": ("kto", ("prompt", "completion", "label"), _trl_unpaired, False),
    "sharegpt-preference": ("preference", ("conversations", "chosen", "rejected"), _sharegpt_preference, True),
    "sharegpt-kto": ("kto", ("conversations", "kto_tag"), _sharegpt_kto, True),
}


def _lane(read: Callable[[DatasetEntry], Callable[[bytes], Parsed | None] | None], target: str):
    """The lane factory from a source lane (:func:`_read_conversation`, :func:`_read_alpaca`) to ``target``."""
    kind, own, write, system_column = TARGETS[target]

    def factory(entry: DatasetEntry, columns: dict[str, Any]) -> Lane | None:
        order, n = list(columns), len(own)
        if tuple(order[:n]) != own or _kind_of(entry) != kind:
            return None
        with_system = system_column and order[n : n + 1] == ["system"]  # the output has a system column (the first records had one)
        if system_column and "system" in order and not with_system:
            return None
        parse = read(entry)
        if parse is None:
            return None
        import orjson

        fill_system = b',"system":' + orjson.dumps(columns["system"]) if with_system else b""
        end = _tail(columns, n + with_system)

        def lane(line: bytes) -> tuple[bytes, dict[str, Any], Loss | None] | None:
            got = parse(line)
            if got is None:
                return None
            system, texts, chosen, rejected, label, shape, loss = got
            parts: list = []
            write(parts, system, texts, chosen, rejected, label)
            if system_column:
                if system is None:
                    parts.append(fill_system)
                elif with_system:
                    parts += (b',"system":', system)
                else:
                    return None  # a column the output's first records did not have: the general path adds it
            parts.append(end)
            return b"".join(parts), shape, loss

        return lane

    return factory


def conversation_to(target: str):
    """The lane factory from a conversation entry (ShareGPT or OpenAI tags) to ``target``.

    >>> lane = conversation_to("trl-prompt-completion")(DatasetEntry.for_file("sharegpt"), {"prompt": None, "completion": None, "tools": None})
    >>> lane(b'{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "system": "S"}')[0]
    b'{"prompt":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}],"completion":[{"role":"assistant","content":"Yo"}],"tools":null}\\n'
    """
    return _lane(_read_conversation, target)


def alpaca_to(target: str):
    """The lane factory from an Alpaca entry to ``target``.

    >>> lane = alpaca_to("trl-unpaired")(DatasetEntry.for_file("alpaca-kto"), {"prompt": None, "completion": None, "label": None})
    >>> lane(b'{"instruction": "A", "input": "", "output": "C", "kto_tag": false}')[0]
    b'{"prompt":[{"role":"user","content":"A"}],"completion":[{"role":"assistant","content":"C"}],"label":false}\\n'
    """
    return _lane(_read_alpaca, target)

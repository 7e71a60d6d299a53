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

A lane is a source reader and a target writer. The reader (:func:`_read_conversation`
for ShareGPT and OpenAI entries, :func:`_read_alpaca` for Alpaca ones) takes the
plain records of the entry's kind (SFT, preference or KTO): an optional system
prompt, user/assistant turns that alternate from the user, the answers, all
texts as raw JSON strings. The writer (:data:`TARGETS`) splices them into the
target's columns.

A lane factory takes the entry the input is read through and the output's
columns (in order, each with the value that stands for "absent", which fills
the columns the lane does not write) and returns the lane, or None when it does
not handle that entry or those columns. The lane returns ``(output line,
shape, loss)``: ``shape`` maps each column of the record to a value of its JSON type,
for the validator's whole-file rules; ``loss`` is the one droppable
:class:`~fmtkit.forms.Loss` the general path would report for the record
(Alpaca's instruction/input split), or None.

>>> from fmtkit.dataset_info import DatasetEntry
>>> lane = conversation_to("openai")(DatasetEntry.for_file("sharegpt"), {"messages": None})
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
# what a reader gives: (system, texts, chosen, rejected, label, shape, input split): the raw system prompt (None
# when there is none or it is ""), the raw texts of the alternating turns (the prompt, then for SFT and KTO the
# answer), the raw preference answers, the KTO label (True or False), the record's shape, whether Alpaca's
# instruction and input were joined
Parsed = tuple

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


def _kind_of(entry: DatasetEntry) -> str | None:
    """The kind of sample an entry's records hold (None: one the lanes leave to the general path)."""
    if entry.ranking and entry.kto_tag:
        return None
    return "preference" if entry.ranking else "kto" if entry.kto_tag else "sft"


class _Alternation(dict):
    """n -> the list of n values ``first``, ``second``, ``first``, ... (made once per length)."""

    def __init__(self, first: Any, second: Any):
        super().__init__()
        self.pair = (first, second)

    def __missing__(self, n: int) -> list:
        self[n] = out = [self.pair[i & 1] for i in range(n)]
        return out


# ---- readers: one line -> Parsed, or None ------------------------------------------------------------


def _read_conversation(entry: DatasetEntry) -> Callable[[bytes], Parsed | None] | None:
    """The reader of conversation entries (ShareGPT or OpenAI tags): an optional system prompt (column or first
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
    a_message = {entry.role_tag: "", entry.content_tag: ""}
    names: dict[str, Any] = {col: [a_message]}  # column -> a value of its type, for the shape
    if kind == "preference":
        fields += [("chosen", message), ("rejected", message)]
        rename |= {"chosen": entry.chosen, "rejected": entry.rejected}
        names |= {entry.chosen: a_message, entry.rejected: a_message}
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
    failed = msgspec.DecodeError  # ValidationError is one
    view = memoryview
    shapes = [names, {**names, sys_col: ""}, {**names, sys_col: None}]  # no system column, a string, null
    odd = kind == "preference"  # a preference prompt ends with the user
    kto = kind == "kto"
    roles = _Alternation(user, assistant)
    text_ok = _text_ok

    def read(line: bytes) -> Parsed | None:
        try:
            rec = decode(line)
        except failed:
            return None
        if not text_ok(line):
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
        elif kto:
            label = rec.label
            if label and len(texts[-1]) == 2:
                return None  # an empty desirable answer, which LLaMA-Factory reads as undesirable (FMT505)
        if system is not None and len(system) == 2:
            system = None  # "": the general path writes no empty system prompt
        return system, texts, chosen, rejected, label, shapes[shape], False

    return read


def _read_alpaca(entry: DatasetEntry) -> Callable[[bytes], Parsed | None] | None:
    """The reader of Alpaca entries: instruction (and input), the answer (output, chosen/rejected, or output and
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
    # the record's shape by which of query (1), system (2) and history (4) it has
    shapes = [{col: True if k == "kto_tag" else [] if k == "history" else "" for k, col in names.items()
               if k not in ("query", "system", "history") or bits & {"query": 1, "system": 2, "history": 4}[k]} for bits in range(8)]  # fmt: skip
    newline = b"\\n"
    sft, kto = kind == "sft", kind == "kto"
    text_ok = _text_ok

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
        if not text_ok(line):
            return None
        split = True
        if query is unset or len(query) == 2:
            value, split = ins, False
        elif len(ins) == 2:
            value = query
        else:  # "instruction\ninput", joined inside the JSON strings
            value = b"".join((view(ins)[:-1], newline, view(query)[1:]))
        shape = shapes[(query is not unset) + 2 * (system is not unset) + 4 * (history is not unset)]
        if kto:
            label = rec.kto_tag
            if label and len(out) == 2:
                return None  # an empty desirable answer, which LLaMA-Factory reads as undesirable (FMT505)
        system = system if system is not unset and len(system) > 2 else None
        return system, ([value, out] if sft or kto else [value]), chosen, rejected, label, shape, split

    return read


# ---- writers: the target's first columns from a Parsed record, as parts of the output line ------------------

class _Frames(dict):
    """n -> the bytes around n texts written as a message list, user and assistant in turn: the first message's
    opening, then the close of each message and the opening of the next, then ``}]`` (made once per length)."""

    def __init__(self, user: bytes, assistant: bytes):
        super().__init__()
        self.openings = _Alternation(user, assistant)

    def __missing__(self, n: int) -> list[bytes]:
        opens = self.openings[n]
        self[n] = out = [opens[0], *(b"}," + o for o in opens[1:]), b"}]"]
        return out


_USER, _ASSISTANT, _SYSTEM = b'{"role":"user","content":', b'{"role":"assistant","content":', b'{"role":"system","content":'
_GPT = b'{"from":"gpt","value":'
_OPENAI_TURNS, _SHAREGPT_TURNS = _Frames(_USER, _ASSISTANT), _Frames(b'{"from":"human","value":', _GPT)
_BOOL = {True: b"true", False: b"false"}


def _turns(parts: list, texts: list, frames: _Frames) -> list:
    """Append the texts as messages, user and assistant in turn, and close the list."""
    n = len(texts)
    f = frames[n]
    if n == 2:  # one exchange: the common case, in one step
        parts += (f[0], texts[0], f[1], texts[1], f[2])
    else:  # the frames and the texts interleaved by slice assignment (a Python loop is twice as slow)
        run = [None] * (2 * n + 1)
        run[::2] = f
        run[1::2] = texts
        parts += run
    return parts


def _openai(system, texts, chosen, rejected, label) -> list:
    return _turns([b'{"messages":['] if system is None else [b'{"messages":[', _SYSTEM, system, b"},"], texts, _OPENAI_TURNS)


def _sharegpt(system, texts, chosen, rejected, label) -> list:
    return _turns([b'{"conversations":['], texts, _SHAREGPT_TURNS)


def _trl_prompt_completion(system, texts, chosen, rejected, label) -> list:
    parts = _turns([b'{"prompt":['] if system is None else [b'{"prompt":[', _SYSTEM, system, b"},"], texts[:-1], _OPENAI_TURNS)
    parts += (b',"completion":[', _ASSISTANT, texts[-1], b"}]")
    return parts


def _trl_preference(system, texts, chosen, rejected, label) -> list:
    parts = _turns([b'{"prompt":['] if system is None else [b'{"prompt":[', _SYSTEM, system, b"},"], texts, _OPENAI_TURNS)
    parts += (b',"chosen":[', _ASSISTANT, chosen, b'}],"rejected":[', _ASSISTANT, rejected, b"}]")
    return parts


def _trl_unpaired(system, texts, chosen, rejected, label) -> list:
    parts = _trl_prompt_completion(system, texts, chosen, rejected, label)
    parts += (b',"label":', _BOOL[label])
    return parts


def _sharegpt_preference(system, texts, chosen, rejected, label) -> list:
    parts = _turns([b'{"conversations":['], texts, _SHAREGPT_TURNS)
    parts += (b',"chosen":', _GPT, chosen, b'},"rejected":', _GPT, rejected, b"}")
    return parts


def _sharegpt_kto(system, texts, chosen, rejected, label) -> list:
    parts = _turns([b'{"conversations":['], texts, _SHAREGPT_TURNS)
    parts += (b',"kto_tag":', _BOOL[label])
    return parts


# target form -> (the kind of sample it holds, its first columns, their writer, whether the system prompt is a column)
TARGETS: dict[str, tuple[str, tuple[str, ...], Callable[..., list], bool]] = {
    "openai": ("sft", ("messages",), _openai, False),
    "sharegpt": ("sft", ("conversations",), _sharegpt, True),
    "sharegpt-preference": ("preference", ("conversations", "chosen", "rejected"), _sharegpt_preference, True),
    "sharegpt-kto": ("kto", ("conversations", "kto_tag"), _sharegpt_kto, True),
    "trl-messages": ("sft", ("messages",), _openai, False),
    "trl-prompt-completion": ("sft", ("prompt", "completion"), _trl_prompt_completion, False),
    "trl-preference": ("preference", ("prompt", "chosen", "rejected"), _trl_preference, False),
    "trl-unpaired": ("kto", ("prompt", "completion", "label"), _trl_unpaired, False),
}


def _lane(read: Callable[[DatasetEntry], Callable[[bytes], Parsed | None] | None], target: str):
    """The lane factory from a reader (:func:`_read_conversation`, :func:`_read_alpaca`) to ``target``."""
    kind, own, write, system_column = TARGETS[target]
    split = Loss("input-split", f"{target} joins the Alpaca instruction and input into one user message")

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

        end = _tail(columns, n + with_system)
        fill = b',"system":' + orjson.dumps(columns["system"]) + end if with_system else end
        join = b"".join

        def lane(line: bytes) -> tuple[bytes, dict[str, Any], Loss | None] | None:
            got = parse(line)
            if got is None:
                return None
            system, texts, chosen, rejected, label, shape, joined = got
            if not system_column:
                parts = write(system, texts, chosen, rejected, label)
                parts.append(end)
            elif system is None:
                parts = write(system, texts, chosen, rejected, label)
                parts.append(fill)
            elif with_system:
                parts = write(system, texts, chosen, rejected, label)
                parts += (b',"system":', system, end)
            else:
                return None  # a column the output's first records did not have: the general path adds it
            return join(parts), shape, split if joined else None

        return lane

    return factory


def conversation_to(target: str):
    """The lane factory from a conversation entry (ShareGPT or OpenAI tags) to ``target``.

    >>> lane = conversation_to("trl-prompt-completion")(DatasetEntry.for_file("sharegpt"), {"prompt": None, "completion": None, "tools": None})
    >>> lane(b'{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "system": "S"}')[0]
    b'{"prompt":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}],"completion":[{"role":"assistant","content":"Yo"}],"tools":null}\\n'
    >>> lane = conversation_to("sharegpt")(DatasetEntry.for_file("openai"), {"conversations": None, "system": ""})
    >>> lane(b'{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}')[0]
    b'{"conversations":[{"from":"human","value":"Hi"},{"from":"gpt","value":"Yo"}],"system":""}\\n'
    """
    return _lane(_read_conversation, target)


def alpaca_to(target: str):
    """The lane factory from an Alpaca entry to ``target``.

    >>> lane = alpaca_to("sharegpt")(DatasetEntry.for_file("alpaca"), {"conversations": None, "system": ""})
    >>> lane(b'{"instruction": "A", "input": "B", "output": "C"}')[0]
    b'{"conversations":[{"from":"human","value":"A\\\\nB"},{"from":"gpt","value":"C"}],"system":""}\\n'
    >>> lane = alpaca_to("trl-unpaired")(DatasetEntry.for_file("alpaca-kto"), {"prompt": None, "completion": None, "label": None})
    >>> lane(b'{"instruction": "A", "input": "", "output": "C", "kto_tag": false}')[0]
    b'{"prompt":[{"role":"user","content":"A"}],"completion":[{"role":"assistant","content":"C"}],"label":false}\\n'
    """
    return _lane(_read_alpaca, target)

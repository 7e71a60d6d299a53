"""ShareGPT forms (LLaMA-Factory ``formatting: sharegpt``): SFT, preference and KTO.

The reader honours the entry's tags, so it reads any tag spelling, OpenAI's
(``role``/``content``/``user``/``assistant``/``tool``) included. As in
LLaMA-Factory: a first system message overrides the system column; after it,
even positions hold user or observation turns and odd positions assistant or
function_call turns; a ``function_call`` value is JSON ``{"name", "arguments"}``
(or a list of such) and becomes an assistant turn with tool calls; an
``observation`` is a tool turn. OpenAI keys on messages (``tool_calls``,
``tool_call_id``, ``weight``) are read too.

>>> from fmtkit.dataset_info import DatasetEntry
>>> e = DatasetEntry.for_file("sharegpt")
>>> s = read({"conversations": [
...     {"from": "human", "value": "Weather in Paris?"},
...     {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
...     {"from": "observation", "value": "sunny"},
...     {"from": "gpt", "value": "Sunny."}]}, e)
>>> s.turns[1].tool_calls
[ToolCall(name='weather', arguments={'city': 'Paris'}, id=None)]
>>> write(s)[0]["conversations"][1]["value"]
'{"name": "weather", "arguments": {"city": "Paris"}}'
"""

from __future__ import annotations

import json
from typing import Any

from fmtkit.alignment import LLAMAFACTORY, Tags, align
from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import REQUIRED, Form, Loss, ReadError, lanes
from fmtkit.forms.columns import (
    SHAREGPT_MESSAGE_KEYS,
    add_found,
    carry_message_keys,
    content_text,
    extra_of,
    read_sample_media,
    read_tools,
    source_losses,
    text,
    tools_json,
    write_extra,
    write_media,
)
from fmtkit.sample import Sample, ToolCall, Turn

_PROMPT_SIDE = ("user", "tool")
_ANSWER_SIDE = ("assistant", "function")


class _Tags:
    """An entry's tags, resolved once: tag value -> canonical role, plus column names and its alignment."""

    __slots__ = ("entry", "roles", "role", "content", "system_tag", "known", "by_position", "aligned")

    def __init__(self, entry: DatasetEntry):
        self.entry = entry
        self.roles: dict[Any, str] = {}
        for tag, role in (
            (entry.user_tag, "user"), (entry.assistant_tag, "assistant"),
            (entry.observation_tag, "tool"), (entry.function_tag, "function"),
        ):  # fmt: skip
            if tag is not None:
                self.roles.setdefault(tag, role)
        self.role = entry.role_tag
        self.content = entry.content_tag
        self.system_tag = entry.system_tag
        self.known = frozenset(entry.column_map().values())
        prompt = {t: r for t, r in self.roles.items() if r in _PROMPT_SIDE}
        answer = {t: r for t, r in self.roles.items() if r in _ANSWER_SIDE}
        # tag -> role allowed at even / odd positions: (LLaMA-Factory order, any order)
        self.by_position = ((prompt, answer), (self.roles, self.roles))
        self.aligned = Tags.of(entry)


_tags_cache: dict[int, _Tags] = {}


def _tags(entry: DatasetEntry) -> _Tags:
    tags = _tags_cache.get(id(entry))
    if tags is None or tags.entry is not entry:
        tags = _tags_cache[id(entry)] = _Tags(entry)
    return tags


def parse_calls(value: Any, where: str) -> list[ToolCall]:
    """ShareGPT function_call content: JSON ``{"name", "arguments"}`` or a list of such."""
    try:
        calls = json.loads(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ReadError("FMT702", f"{where}: the function call is not valid JSON: {exc}") from None
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list) or not calls:
        raise ReadError("FMT702", f"{where}: a function call must be an object with name and arguments, or a list of them")
    out = []
    for call in calls:
        if not (isinstance(call, dict) and isinstance(call.get("name"), str) and "arguments" in call):
            raise ReadError("FMT702", f"{where}: a function call needs a string name and arguments")
        out.append(ToolCall(call["name"], call["arguments"]))
    return out


def calls_json(calls: list[ToolCall]) -> str:
    """Tool calls as ShareGPT function_call content (an object for one call, a list for several)."""
    items = [{"name": c.name, "arguments": c.arguments} for c in calls]
    return json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False)


def read_openai_calls(value: Any, where: str) -> list[ToolCall]:
    """OpenAI ``tool_calls``: ``[{"id", "type": "function", "function": {"name", "arguments": JSON string}}]``.

    ``arguments`` given as an object (TRL's spelling) is taken as it is.
    """
    if not isinstance(value, list):
        raise ReadError("FMT703", f"{where}: tool_calls must be a list")
    out = []
    for call in value:
        fn = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
            raise ReadError("FMT703", f"{where}: a tool call needs function.name")
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError as exc:
                raise ReadError("FMT703", f"{where}: tool call arguments are not valid JSON: {exc}") from None
        out.append(ToolCall(fn["name"], args, call.get("id")))
    return out


def read_messages(
    msgs: Any, entry: DatasetEntry, lf_order: bool, where: str = "messages", found: list[tuple[str, Any]] | None = None
) -> tuple[str | None, list[Turn]]:
    """A message list as (system or None, turns), by the entry's tags.

    ``lf_order``: enforce LLaMA-Factory's alternation (prompt-side turns at even
    positions, answer-side at odd); OpenAI's own format allows any order.
    Content given as OpenAI's list of typed parts is read by
    :func:`~fmtkit.forms.columns.content_text`, which appends to ``found`` what
    the parts carry besides text (pass the list to
    :func:`~fmtkit.forms.columns.add_found`). Message keys besides the tags and
    OpenAI's ``tool_calls``, ``tool_call_id`` and ``weight`` go to ``Turn.extra``.
    """
    if type(msgs) is not list:
        raise ReadError("FMT401", f"{where} is {'missing' if msgs is None else type(msgs).__name__}, not a list of messages")
    tags = _tags(entry)
    role_tag, content_tag = tags.role, tags.content
    system = None
    start = 0
    if msgs and tags.system_tag is not None and type(msgs[0]) is dict and msgs[0].get(role_tag) == tags.system_tag:
        first = msgs[0]
        if first.get(content_tag) is None and tags.aligned.order != LLAMAFACTORY:  # LLaMA-Factory reads none; chat templates fail
            raise ReadError("FMT405", f"{where}[0]: a system message without content, on which chat templates fail")
        system = content_text(first.get(content_tag), f"{where}[0].{content_tag}", found)
        if len(first) > 2:
            keys = [f"{where}[0].{k}" for k in first if k != role_tag and k != content_tag]
            if found is None:
                raise ReadError("FMT407", f"{', '.join(keys)} cannot be read in this form")
            found.extend(("dropped-key", k) for k in keys)
        start = 1
    maps = tags.by_position[0 if lf_order else 1]
    turns = []
    append = turns.append
    try:  # the fast path; anything odd goes to _read_messages_checked for its exact message
        for i in range(start, len(msgs)):
            msg = msgs[i]
            role = maps[(i - start) & 1][msg[role_tag]]
            content = msg[content_tag]
            if role == "function":
                turn = Turn("assistant", "", parse_calls(content, f"{where}[{i}]"))
            else:
                if type(content) is not str:
                    content = content_text(content, f"{where}[{i}].{content_tag}", found)
                turn = Turn(role, content)
            if len(msg) > 2:
                _openai_keys(turn, msg, role, f"{where}[{i}]", role_tag, content_tag)
            append(turn)
    except (KeyError, TypeError):
        turns = _read_messages_checked(msgs, start, tags, lf_order, where, found)
    return system, turns


def _openai_keys(turn: Turn, msg: dict[str, Any], role: str, where: str, role_tag: Any, content_tag: Any) -> None:
    """Keys beside role and content: OpenAI's tool_calls, weight, tool_call_id; any other goes to ``turn.extra``.

    A null (or empty ``tool_calls``) means the key's absence.
    """
    for key, value in msg.items():
        if key == role_tag or key == content_tag:
            continue
        if key == "tool_calls":
            if not value:
                continue
            if role == "assistant":
                turn.tool_calls = read_openai_calls(value, where)
                continue
        elif key == "weight":
            if value is None:
                continue
            if type(value) is int and value in (0, 1):  # OpenAI's switch; another value is kept as a plain key (FMT409, FMT410)
                turn.weight = value
                continue
        elif key == "tool_call_id":
            if value is None:
                continue
            turn.tool_call_id = value
            continue
        turn.extra[key] = value


def _read_messages_checked(
    msgs: list[Any], start: int, tags: _Tags, lf_order: bool, where: str, found: list[tuple[str, Any]] | None
) -> list[Turn]:
    """The slow path of :func:`read_messages`: the same reading, checking each step to say what is wrong."""
    role_tag, content_tag, roles = tags.role, tags.content, tags.roles
    for i in range(start, len(msgs)):
        if not isinstance(msgs[i], dict):
            raise ReadError("FMT401", f"{where}[{i}] is {type(msgs[i]).__name__}, not a message object")
    for problem in align(msgs, tags.aligned).problems:  # the role and order verdicts, as the rules give them
        if problem.code == "FMT402" or (lf_order and problem.code == "FMT403"):
            raise ReadError(problem.code, f"{where}: {problem.message}")
    turns = []
    for i in range(start, len(msgs)):
        msg = msgs[i]
        tag = msg.get(role_tag)
        try:
            role = roles.get(tag)
        except TypeError:  # an unhashable role value
            role = None
        if role is None:  # a system message past the first, in a form that takes any order
            raise ReadError("FMT403", f"{where}[{i}]: a system message is allowed only first")
        content = msg.get(content_tag)
        if role == "function":
            turn = Turn("assistant", "", parse_calls(content, f"{where}[{i}]"))
        else:
            turn = Turn(role, content_text(content, f"{where}[{i}].{content_tag}", found))
        if len(msg) > (role_tag in msg) + (content_tag in msg):  # tool_calls may stand without content
            _openai_keys(turn, msg, role, f"{where}[{i}]", role_tag, content_tag)
        turns.append(turn)
    return turns


def _read_answer(value: Any, entry: DatasetEntry, side: str, found: list[tuple[str, Any]]) -> Turn:
    if not isinstance(value, dict):
        raise ReadError("FMT501", f"{side} must be one message object")
    _, turns = read_messages([value], entry, lf_order=False, where=side, found=found)
    turn = turns[0]
    if turn.role != "assistant":
        raise ReadError("FMT501", f"{side} must be an assistant or function_call message")
    return turn


def read_conversation(record: dict[str, Any], entry: DatasetEntry) -> Sample:
    """One conversation record, its turns in the order :func:`fmtkit.alignment.order_of` gives the entry.

    Under LLaMA-Factory's order, the alignment (:func:`fmtkit.alignment.align`)
    decides, so a record is read exactly when validate finds no FMT402-FMT404
    in it; the sharegpt reader's plain alternation is read on a fast path.
    """
    if not isinstance(record, dict):
        raise ReadError("FMT202", f"the record is {type(record).__name__}, not an object")
    column = entry.messages
    if column is None:
        raise ReadError("FMT106", "the entry maps no messages column")
    found: list[tuple[str, Any]] = []
    msgs = record.get(column)
    aligned = _tags(entry).aligned
    lf_order = aligned.order == LLAMAFACTORY
    system, turns = read_messages(msgs, entry, lf_order and not aligned.openai_reader, column, found)
    sample = Sample(turns)
    if system is not None:
        sample.system = system
    elif entry.system is not None:
        sample.system = text(record.get(entry.system), entry.system)
    n = len(turns)
    if n == 0 or (lf_order and (aligned.openai_reader or n % 2 != aligned.ranking)):
        for problem in align(msgs, aligned).problems:
            raise ReadError(problem.code, f"{column}: {problem.message}")
    if entry.ranking:
        sample.chosen = _read_answer(record.get(entry.chosen), entry, entry.chosen or "chosen", found)
        sample.rejected = _read_answer(record.get(entry.rejected), entry, entry.rejected or "rejected", found)
    else:
        if entry.kto_tag is not None:
            label = record.get(entry.kto_tag)
            if not isinstance(label, bool):
                raise ReadError("FMT503", f"{entry.kto_tag} is {label!r}, not a boolean (true or false)")
            sample.label = label
    if entry.tools is not None:
        sample.tools = read_tools(record.get(entry.tools))
    read_sample_media(sample, record, entry.images, entry.videos, entry.audios)
    if found:
        add_found(sample, found, column)
    extra = extra_of(record, _tags(entry).known)
    if extra:
        sample.extra = extra
    return sample


def read(record: dict[str, Any], entry: DatasetEntry) -> Sample:
    """One ShareGPT record (SFT, preference or KTO, as the entry says) as a Sample."""
    return read_conversation(record, entry)


def _message(turn: Turn, form: str, losses: list[Loss]) -> dict[str, Any]:
    if turn.weight is not None:
        losses.append(Loss("weight", f"{form} cannot hold per-message weights"))
    if turn.role == "assistant":
        if turn.tool_calls:
            if turn.content:
                losses.append(Loss("tool-call-text", f"{form} cannot hold text beside tool calls in one turn"))
            if any(c.id is not None for c in turn.tool_calls):
                losses.append(Loss("tool-call-ids", f"{form} drops tool call ids"))
            msg = {"from": "function_call", "value": calls_json(turn.tool_calls)}
        else:
            msg = {"from": "gpt", "value": turn.content}
    elif turn.role == "tool":
        if turn.tool_call_id is not None:
            losses.append(Loss("tool-call-ids", f"{form} drops tool call ids"))
        msg = {"from": "observation", "value": turn.content}
    else:
        msg = {"from": "human", "value": turn.content}
    if turn.extra:  # other message keys ride along (LLaMA-Factory ignores them)
        carry_message_keys(msg, turn, SHAREGPT_MESSAGE_KEYS)
    return msg


def _write_turns(turns: list[Turn], form: str, losses: list[Loss]) -> list[dict[str, Any]]:
    out = []
    order_ok = True
    for i, turn in enumerate(turns):
        if (turn.role == "assistant") != (i % 2 == 1):
            order_ok = False
        out.append(_message(turn, form, losses))
    if not order_ok:
        losses.append(Loss("role-order", f"{form} needs user/tool and assistant turns to alternate, starting with the user"))
    return out


def _write_common(sample: Sample, record: dict[str, Any], form: str, losses: list[Loss], columns: Any) -> None:
    source_losses(sample, form, losses, SHAREGPT_MESSAGE_KEYS)
    if sample.system:
        record["system"] = sample.system
    if sample.tools is not None:
        record["tools"] = tools_json(sample.tools)
    if sample.images or sample.videos or sample.audios:
        write_media(sample, record, form, losses)
    if sample.extra:
        write_extra(sample, record, form, losses, reserved=columns)


def write(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    """An SFT sample as a ShareGPT record (system and tools in their columns)."""
    losses: list[Loss] = []
    kind = sample.kind
    if kind != "sft":
        losses.append(Loss("kind", f"sharegpt holds sft samples, not {kind} samples"))
    record = {"conversations": _write_turns(sample.turns, "sharegpt", losses)}
    _write_common(sample, record, "sharegpt", losses, COLUMNS)
    return record, losses


def write_preference(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    form = "sharegpt-preference"
    if sample.kind != "preference":
        losses.append(Loss("kind", f"{form} holds preference samples, not {sample.kind} samples"))
        record: dict[str, Any] = {"conversations": _write_turns(sample.turns, form, losses)}
    else:
        if not sample.turns:
            losses.append(Loss("implicit-prompt", f"{form} needs a prompt apart from chosen and rejected"))
        record = {"conversations": _write_turns(sample.turns, form, losses)}
        if sample.turns and sample.turns[-1].role == "assistant":
            losses.append(Loss("role-order", f"{form} needs the prompt to end with a user or tool turn"))
        for side in ("chosen", "rejected"):
            record[side] = _message(getattr(sample, side) or Turn("assistant"), form, losses)
    _write_common(sample, record, form, losses, PREFERENCE_COLUMNS)
    return record, losses


def write_kto(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    form = "sharegpt-kto"
    if sample.kind != "kto":
        losses.append(Loss("kind", f"{form} holds kto samples, not {sample.kind} samples"))
    record = {"conversations": _write_turns(sample.turns, form, losses), "kto_tag": sample.label}
    _write_common(sample, record, form, losses, KTO_COLUMNS)
    return record, losses


_OPTIONAL = {"system": "", "tools": "", "images": [], "videos": [], "audios": []}
_ROLES = {"messages": "conversations", "system": "system", "tools": "tools", "images": "images", "videos": "videos", "audios": "audios"}
COLUMNS = {"conversations": REQUIRED} | _OPTIONAL
PREFERENCE_COLUMNS = {"conversations": REQUIRED, "chosen": REQUIRED, "rejected": REQUIRED} | _OPTIONAL
KTO_COLUMNS = {"conversations": REQUIRED, "kto_tag": REQUIRED} | _OPTIONAL

_BARE_COLUMNS = {"messages": "conversations", "system": "system"}
FORM = Form(
    "sharegpt", read, write, COLUMNS, roles=_ROLES, entry={"formatting": "sharegpt"}, direct={t: lanes.conversation_to(t) for t in ("openai", "trl-messages", "trl-prompt-completion")},
    schema="sharegpt-sft.schema.json", bare={"formatting": "sharegpt", "columns": _BARE_COLUMNS | {"tools": "tools"}},
)  # fmt: skip
PREFERENCE_FORM = Form(
    "sharegpt-preference", read, write_preference, PREFERENCE_COLUMNS,
    roles=_ROLES | {"chosen": "chosen", "rejected": "rejected"}, entry={"formatting": "sharegpt", "ranking": True},
    direct={"trl-preference": lanes.conversation_to("trl-preference")}, schema="sharegpt-preference.schema.json",
    bare={"formatting": "sharegpt", "ranking": True, "columns": _BARE_COLUMNS | {"chosen": "chosen", "rejected": "rejected"}},
)  # fmt: skip
KTO_FORM = Form(
    "sharegpt-kto", read, write_kto, KTO_COLUMNS,
    roles=_ROLES | {"kto_tag": "kto_tag"}, entry={"formatting": "sharegpt"}, direct={"trl-unpaired": lanes.conversation_to("trl-unpaired")},
    schema="sharegpt-kto.schema.json", bare={"formatting": "sharegpt", "columns": _BARE_COLUMNS | {"kto_tag": "kto_tag"}},
)  # fmt: skip

"""The OpenAI chat form: ``{"messages": [{"role", "content"}, ...], "tools": ...}``.

Roles are system (first only), user, assistant and tool. Assistant turns may
carry ``tool_calls`` (``arguments`` a JSON string), tool turns a
``tool_call_id``, any turn an integer ``weight``; turns may come in any order
(parallel tool results are consecutive tool messages). Converted files with
tool calls are registered with ``formatting: openai`` and OpenAI tags:
LLaMA-Factory's ShareGPT reader would ignore ``tool_calls``, its OpenAI reader
turns them into function calls (and appends "detailed thinking off" to system
prompts, FMT119); files without are registered with ``formatting: sharegpt``
and the same tags (see :func:`fmtkit.conversion.output.registration`). ``tools`` is written as a JSON string, as LLaMA-Factory and TRL read
it; the reader takes a list too.

``content`` may be a list of typed parts: text parts (``text``, ``input_text``,
``output_text``) are concatenated in order with nothing between them; each
``image_url`` / ``input_image`` / ``video_url`` / ``audio_url`` /
``input_audio`` part becomes its placeholder (``<image>``, ``<video>``,
``<audio>``) at its position and its URL, path or ``data:`` URI goes to the
media list. The writer writes plain strings with placeholders and media
columns; an image's ``detail`` (other than ``auto``) is reported lost
(``part-fields``). Other message keys (``name``, ``reasoning_content``, ...)
are kept in ``Turn.extra`` and written back, so openai -> openai keeps them.

>>> from fmtkit.dataset_info import DatasetEntry
>>> s = read({"messages": [{"role": "system", "content": "Be brief."},
...     {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 1}]},
...     DatasetEntry.for_file("openai"))
>>> (s.system, s.turns[1].weight)
('Be brief.', 1)
>>> write(s)[0]["messages"][0]
{'role': 'system', 'content': 'Be brief.'}
"""

from __future__ import annotations

import json
from typing import Any

from fmtkit.alignment import ANY_ORDER
from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import REQUIRED, Form, Loss, lanes
from fmtkit.forms.columns import (
    OPENAI_MESSAGE_KEYS,
    carry_message_keys,
    source_losses,
    tools_json,
    write_extra,
    write_media,
)
from fmtkit.forms.sharegpt import read_conversation
from fmtkit.sample import Sample, Turn


def read(record: dict[str, Any], entry: DatasetEntry) -> Sample:
    """One OpenAI record as a Sample (tags and columns from the entry): any turn order in a bare file,
    LLaMA-Factory's in an entry of a ``dataset_info.json`` (:func:`fmtkit.alignment.order_of`)."""
    return read_conversation(record, entry)


def message(turn: Turn, arguments_as_text: bool = True) -> dict[str, Any]:
    """One turn as an OpenAI message; TRL spells tool call arguments as objects (``arguments_as_text=False``)."""
    msg: dict[str, Any] = {"role": turn.role, "content": turn.content}
    if turn.tool_calls:
        calls = []
        for c in turn.tool_calls:
            call: dict[str, Any] = {} if c.id is None else {"id": c.id}
            call["type"] = "function"
            args = json.dumps(c.arguments, ensure_ascii=False) if arguments_as_text else c.arguments
            call["function"] = {"name": c.name, "arguments": args}
            calls.append(call)
        msg["tool_calls"] = calls
    if turn.tool_call_id is not None:
        msg["tool_call_id"] = turn.tool_call_id
    if turn.weight is not None:
        msg["weight"] = turn.weight
    return msg


def messages(sample: Sample, turns: list[Turn], arguments_as_text: bool = True) -> list[dict[str, Any]]:
    """The system message (if any) and the turns as OpenAI messages."""
    out = [{"role": "system", "content": sample.system}] if sample.system else []
    append = out.append
    for t in turns:
        if t.tool_calls or t.tool_call_id is not None or t.weight is not None:
            append(message(t, arguments_as_text))
        else:
            append({"role": t.role, "content": t.content})
    return out


def write(sample: Sample, arguments_as_text: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    """An SFT sample as an OpenAI record (system as the first message).

    Tool call ``arguments`` are JSON text, as OpenAI's API has them; with
    ``arguments_as_text=False`` objects, as LLaMA-Factory needs them (its
    function formatter encodes them once more: FMT705), which ``fmtkit convert
    --register`` writes.
    """
    losses: list[Loss] = []
    kind = sample.kind
    if kind != "sft":
        losses.append(Loss("kind", f"openai holds sft samples, not {kind} samples"))
    msgs = messages(sample, sample.turns, arguments_as_text)
    if any(t.extra for t in sample.turns):  # other message keys (name, reasoning_content, ...) ride along
        offset = len(msgs) - len(sample.turns)
        for t, m in zip(sample.turns, msgs[offset:], strict=True):
            if t.extra:
                carry_message_keys(m, t, OPENAI_MESSAGE_KEYS)
    source_losses(sample, "openai", losses, OPENAI_MESSAGE_KEYS)
    record: dict[str, Any] = {"messages": msgs}
    if sample.tools is not None:
        record["tools"] = tools_json(sample.tools)
    if sample.images or sample.videos or sample.audios:
        write_media(sample, record, "openai", losses)
    if sample.extra:
        write_extra(sample, record, "openai", losses, reserved=COLUMNS)
    return record, losses


COLUMNS = {"messages": REQUIRED, "tools": "", "images": [], "videos": [], "audios": []}
_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
         "observation_tag": "tool", "system_tag": "system"}  # fmt: skip
FORM = Form(
    "openai", read, write, COLUMNS,
    roles={"messages": "messages", "tools": "tools", "images": "images", "videos": "videos", "audios": "audios"},
    entry={"formatting": "openai", "tags": _TAGS},
    schema="openai-messages.schema.json", direct={t: lanes.conversation_to(t) for t in ("sharegpt", "trl-messages", "trl-prompt-completion")},
    bare={"formatting": "openai", "columns": {"messages": "messages", "tools": "tools"}, "tags": _TAGS},
    order=ANY_ORDER,  # as OpenAI's API and chat templates take it
)  # fmt: skip
# a bare OpenAI file's entry: how TRL's and vendors' forms read their message lists
BARE_ENTRY = DatasetEntry.from_dict("<openai>", FORM.bare)

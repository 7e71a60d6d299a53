"""TRL 1.16 dataset types, standard (strings) and conversational (message lists).

| form | columns |
|---|---|
| trl-text | ``text`` |
| trl-messages | ``messages`` |
| trl-prompt-only | ``prompt`` |
| trl-prompt-completion | ``prompt``, ``completion`` |
| trl-preference | ``prompt``, ``chosen``, ``rejected`` |
| trl-preference-implicit | ``chosen``, ``rejected`` |
| trl-unpaired | ``prompt``, ``completion``, ``label`` |

Readers take either style; writers write the conversational style unless
called with ``conversational=False``. Conversational messages are OpenAI's,
with tool call ``arguments`` as objects (as chat templates take them) and the
system prompt as the first message. TRL ignores columns it does not know, so
extra fields are carried over, except those TRL reads (:data:`TRL_COLUMNS`,
reported as ``extra-fields``); what it refuses is a set of its own column
names that fits no type (``messages`` beside ``prompt``). ``tools`` is a JSON string.

A conversational implicit pair is split at its last shared message when read;
a standard (string) pair keeps its prompt inside ``chosen``/``rejected`` until
:func:`extract_prompt` splits it by longest common prefix.

>>> s = read_prompt_completion({"prompt": "2+2?", "completion": "4"}, None)
>>> write_prompt_completion(s, conversational=False)[0]
{'prompt': '2+2?', 'completion': '4'}
>>> write_prompt_completion(s)[0]["completion"]
[{'role': 'assistant', 'content': '4'}]
"""

from __future__ import annotations

from typing import Any

from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import EMPTY_SYSTEM_HINT, REQUIRED, Form, Loss, ReadError
from fmtkit.forms.columns import (
    OPENAI_MESSAGE_KEYS,
    add_found,
    carry_message_keys,
    read_media,
    read_tools,
    source_losses,
    text,
    tools_json,
    write_extra,
)
from fmtkit.forms.openai import BARE_ENTRY as _OPENAI
from fmtkit.forms.openai import message
from fmtkit.forms.sharegpt import read_messages
from fmtkit.sample import MEDIA_KINDS, Sample, Turn



# ---- reading ---------------------------------------------------------------


Found = list[tuple[str, Any]]  # what content parts carried besides text (see columns.content_text)


def _prompt(value: Any, found: Found, where: str = "prompt") -> tuple[str | None, list[Turn]]:
    """A standard prompt (one user turn) or a conversational one, which TRL's chat template must end with a
    user, tool or assistant message (it refuses any other: "Invalid role in the last message")."""
    if isinstance(value, str):
        return None, [Turn("user", value)]
    system, turns = read_messages(value, _OPENAI, lf_order=False, where=where, found=found)
    if not turns:
        last = "is empty" if system is None else "ends with the system message"
        raise ReadError("FMT404", f"{where} {last}: TRL's chat template needs a user, tool or assistant message last")
    return system, turns


def _completion(value: Any, where: str, found: Found) -> list[Turn]:
    if isinstance(value, str):
        return [Turn("assistant", value)]
    system, turns = read_messages(value, _OPENAI, lf_order=False, where=where, found=found)
    if system is not None or not turns:
        raise ReadError("FMT300", f"{where} must hold the answer messages only")
    return turns


def _single(value: Any, where: str, found: Found) -> Turn:
    turns = _completion(value, where, found)
    if len(turns) != 1 or turns[0].role != "assistant":
        raise ReadError("FMT300", f"{where} must be one assistant message")
    return turns[0]


def _finish(sample: Sample, record: dict[str, Any], columns: frozenset[str], system: str | None = None, found: Found | None = None) -> Sample:
    if system:
        sample.system = system
    elif system is not None and not system.strip():
        sample.hints[EMPTY_SYSTEM_HINT] = True
    if "tools" in record:
        sample.tools = read_tools(record["tools"])
    for kind in MEDIA_KINDS:
        if kind in record:
            setattr(sample, kind, read_media(record[kind], kind))
    if found:
        add_found(sample, found, "record")
    if not columns.issuperset(record):
        sample.extra = {k: v for k, v in record.items() if k not in columns}
    return sample


def _check(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ReadError("FMT202", f"the record is {type(record).__name__}, not an object")
    return record


def _column(record: dict[str, Any], name: str) -> Any:
    if name not in record:
        raise ReadError("FMT300", f"the record has no {name!r} column")
    return record[name]


def read_text(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    _check(record)
    return _finish(Sample(text=text(_column(record, "text"), "text")), record, TEXT_KNOWN)


def read_messages_form(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    found: Found = []
    system, turns = read_messages(_column(_check(record), "messages"), _OPENAI, lf_order=False, found=found)
    return _finish(Sample(turns), record, MESSAGES_KNOWN, system, found)


def read_prompt_only(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    found: Found = []
    system, turns = _prompt(_column(_check(record), "prompt"), found)
    if turns[-1].role == "assistant":
        raise ReadError("FMT411", "the prompt ends with an assistant message: TRL continues that message instead of starting an answer")
    return _finish(Sample(turns), record, PROMPT_ONLY_KNOWN, system, found)


def read_prompt_completion(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    found: Found = []
    system, turns = _prompt(_column(_check(record), "prompt"), found)
    turns = turns + _completion(_column(record, "completion"), "completion", found)
    if turns[-1].role != "assistant":
        raise ReadError("FMT300", "completion must end with an assistant message")
    return _finish(Sample(turns), record, PROMPT_COMPLETION_KNOWN, system, found)


def _conversational(value: Any) -> bool:
    """TRL's ``is_conversational`` on one column: a list whose first item is a message with a role."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def read_preference(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    """A preference row, its prompt taken as TRL's ``maybe_extract_prompt`` takes it.

    An explicit ``prompt`` of the style of ``chosen`` (both conversational or both
    text) is the prompt; a row without one, or with one of the other style (a text
    prompt beside conversations, as UltraFeedback has), has its prompt inside
    ``chosen`` and ``rejected``, where it is extracted from.
    """
    prompt, chosen = _check(record).get("prompt"), _column(record, "chosen")
    if prompt is None or _conversational(prompt) != _conversational(chosen):
        return _implicit(record)
    found: Found = []
    system, turns = _prompt(prompt, found)
    sample = Sample(turns, chosen=_single(chosen, "chosen", found), rejected=_single(_column(record, "rejected"), "rejected", found))
    return _finish(sample, record, PREFERENCE_KNOWN, system, found)


def read_preference_implicit(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    """The same reading as :func:`read_preference`: a row's own prompt column decides (``maybe_extract_prompt``)."""
    return read_preference(record, entry)


def _implicit(record: dict[str, Any]) -> Sample:
    chosen, rejected = _column(record, "chosen"), _column(record, "rejected")
    known = IMPLICIT_KNOWN | {"prompt"}  # a prompt of the other style is dropped, as TRL drops it
    if isinstance(chosen, str) and isinstance(rejected, str):
        sample = Sample(chosen=Turn("assistant", chosen), rejected=Turn("assistant", rejected))
        return _finish(sample, record, known)
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise ReadError("FMT300", "chosen and rejected must both be strings or both be message lists")
    n = 0
    while n < len(chosen) and n < len(rejected) and chosen[n] == rejected[n]:
        n += 1
    if n == len(chosen) == len(rejected):
        n -= 1  # identical pair: the last message is the answer on both sides
    if len(chosen) - n != 1 or len(rejected) - n != 1:
        raise ReadError("FMT300", "chosen and rejected differ before their last message: no single shared prompt")
    if n == 0:
        raise ReadError("FMT300", "chosen and rejected share no first message: TRL extracts an empty prompt and fails on it")
    found: Found = []
    system, turns = _prompt(chosen[:n], found, "chosen")
    sample = Sample(turns, chosen=_single(chosen[n:], "chosen", found), rejected=_single(rejected[n:], "rejected", found))
    return _finish(sample, record, known, system, found)


def read_unpaired(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    found: Found = []
    system, turns = _prompt(_column(_check(record), "prompt"), found)
    turns = turns + _completion(_column(record, "completion"), "completion", found)
    label = _column(record, "label")
    if not isinstance(label, bool):
        raise ReadError("FMT503", f"label is {label!r}, not a boolean (true or false)")
    if turns[-1].role != "assistant":
        raise ReadError("FMT300", "completion must end with an assistant message")
    return _finish(Sample(turns, label=label), record, UNPAIRED_KNOWN, system, found)


# ---- writing ---------------------------------------------------------------


def _kind(sample: Sample, form: str, want: str, losses: list[Loss]) -> bool:
    if sample.kind != want:
        losses.append(Loss("kind", f"{form} holds {want} samples, not {sample.kind} samples"))
        return False
    return True


def _weights(turns: list[Turn], form: str, losses: list[Loss]) -> None:
    if any(t.weight is not None for t in turns):
        losses.append(Loss("weight", f"{form} cannot hold per-message weights"))


def _conv(sample: Sample, turns: list[Turn], with_system: bool = True) -> list[dict[str, Any]]:
    out = [{"role": "system", "content": sample.system}] if with_system and sample.system else []
    for t in turns:
        msg = message(t, arguments_as_text=False)
        msg.pop("weight", None)  # reported by _weights
        if t.extra:  # other message keys (name, reasoning_content, ...): chat templates may use them
            carry_message_keys(msg, t, OPENAI_MESSAGE_KEYS)
        out.append(msg)
    return out


def _std_prompt(sample: Sample, turns: list[Turn], form: str, losses: list[Loss]) -> str:
    """The one user turn of a standard-style prompt."""
    if sample.system:
        losses.append(Loss("system", f"{form} (standard) cannot hold a system prompt"))
    if any(t.role == "tool" for t in turns):
        losses.append(Loss("tool-results", f"{form} (standard) cannot hold tool results"))
    elif any(t.tool_calls for t in turns):
        losses.append(Loss("tool-calls", f"{form} (standard) cannot hold tool calls"))
    elif len(turns) > 1:
        losses.append(Loss("multi-turn", f"{form} (standard) holds one prompt string, not a conversation"))
    elif not turns or turns[0].role != "user":
        losses.append(Loss("role-order", f"{form} (standard) needs the prompt to be one user turn"))
    return turns[-1].content if turns else ""


def _std_answer(turn: Turn | None, form: str, losses: list[Loss]) -> str:
    if turn is None:
        return ""
    if turn.tool_calls:
        losses.append(Loss("tool-calls", f"{form} (standard) cannot hold tool calls"))
    return turn.content


def _common(
    sample: Sample, record: dict[str, Any], form: str, losses: list[Loss], conversational: bool, messages: bool | None = None
) -> None:
    """Tools, media, extra fields; ``messages``: whether turns were written as messages (default: ``conversational``)."""
    source_losses(sample, form, losses, OPENAI_MESSAGE_KEYS if (conversational if messages is None else messages) else None)
    if sample.tools is not None:
        if conversational:
            record["tools"] = tools_json(sample.tools)
        else:
            losses.append(Loss("tools", f"{form} (standard) cannot hold tool definitions"))
    if sample.images or sample.videos or sample.audios:
        losses.append(Loss("media", f"{form} cannot hold images, videos or audios (convert to a LLaMA-Factory form)"))
    if sample.extra:
        write_extra(sample, record, form, losses, reserved=TRL_COLUMNS)


def _prompt_turns(turns: list[Turn], form: str, losses: list[Loss]) -> None:
    """A conversational prompt needs a message after any system message (TRL's chat template reads the last one)."""
    if not turns:
        losses.append(Loss("role-order", f"{form} needs a prompt message (a system prompt alone ends the prompt with it)"))


def _prompt_losses(sample: Sample, form: str, losses: list[Loss]) -> None:
    if not sample.turns:
        losses.append(Loss("implicit-prompt", f"{form} needs a prompt apart from chosen and rejected"))


def write_text(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    record: dict[str, Any] = {}
    if sample.kind != "pretrain":
        losses.append(Loss("kind", f"trl-text holds pretraining text, not {sample.kind} samples"))
    record["text"] = sample.text if sample.text is not None else ""
    if sample.system:
        losses.append(Loss("system", "trl-text cannot hold a system prompt"))
    _common(sample, record, "trl-text", losses, conversational=False)
    return record, losses


def write_messages(sample: Sample, conversational: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    form = "trl-messages"
    losses: list[Loss] = []
    _kind(sample, form, "sft", losses)
    _weights(sample.turns, form, losses)
    record: dict[str, Any] = {"messages": _conv(sample, sample.turns)}
    _common(sample, record, form, losses, conversational=True)
    return record, losses


def write_prompt_only(sample: Sample, conversational: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    form = "trl-prompt-only"
    losses: list[Loss] = []
    _kind(sample, form, "prompt", losses)
    _weights(sample.turns, form, losses)
    if conversational:
        _prompt_turns(sample.turns, form, losses)
    prompt = _conv(sample, sample.turns) if conversational else _std_prompt(sample, sample.turns, form, losses)
    record: dict[str, Any] = {"prompt": prompt}
    _common(sample, record, form, losses, conversational)
    return record, losses


def write_prompt_completion(sample: Sample, conversational: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    return _write_completion(sample, "trl-prompt-completion", "sft", conversational)


def _pair(sample: Sample, form: str, record: dict[str, Any], conversational: bool, losses: list[Loss]) -> None:
    for side in ("chosen", "rejected"):
        turn = getattr(sample, side) or Turn("assistant")
        record[side] = _conv(sample, [turn], False) if conversational else _std_answer(turn, form, losses)
    _weights([t for t in (sample.chosen, sample.rejected) if t is not None], form, losses)


def write_preference(sample: Sample, conversational: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    form = "trl-preference"
    losses: list[Loss] = []
    if _kind(sample, form, "preference", losses):
        _prompt_losses(sample, form, losses)
    _weights(sample.turns, form, losses)
    record: dict[str, Any] = {"prompt": _conv(sample, sample.turns) if conversational else _std_prompt(sample, sample.turns, form, losses)}
    _pair(sample, form, record, conversational, losses)
    _common(sample, record, form, losses, conversational)
    return record, losses


def write_preference_implicit(sample: Sample, conversational: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    form = "trl-preference-implicit"
    losses: list[Loss] = []
    _kind(sample, form, "preference", losses)
    _weights(sample.turns, form, losses)
    record: dict[str, Any] = {}
    if conversational and sample.turns:
        prompt = _conv(sample, sample.turns)
        for side in ("chosen", "rejected"):
            record[side] = prompt + _conv(sample, [getattr(sample, side) or Turn("assistant")], False)
    else:
        head = ""
        if sample.turns or sample.system:
            head = _std_prompt(sample, sample.turns, form, losses)
            losses.append(Loss("prompt-boundary", f"{form} (standard) joins the prompt into chosen and rejected"))
        for side in ("chosen", "rejected"):
            record[side] = head + _std_answer(getattr(sample, side), form, losses)
    _common(sample, record, form, losses, conversational, messages=conversational and bool(sample.turns))
    return record, losses


def write_unpaired(sample: Sample, conversational: bool = True) -> tuple[dict[str, Any], list[Loss]]:
    return _write_completion(sample, "trl-unpaired", "kto", conversational, label=bool(sample.label))


def _write_completion(sample: Sample, form: str, kind: str, conversational: bool, label: bool | None = None) -> tuple[dict[str, Any], list[Loss]]:
    """``prompt`` + ``completion`` (the last turn) of an ``sft`` or ``kto`` sample, in either TRL style (+ KTO ``label``)."""
    losses: list[Loss] = []
    ok = _kind(sample, form, kind, losses)
    _weights(sample.turns, form, losses)
    prompt_turns = sample.turns[:-1] if ok else sample.turns
    answer = sample.turns[-1] if ok else None
    if conversational:
        if ok:
            _prompt_turns(prompt_turns, form, losses)
        record: dict[str, Any] = {"prompt": _conv(sample, prompt_turns), "completion": _conv(sample, [answer] if answer else [], False)}
    else:
        record = {"prompt": _std_prompt(sample, prompt_turns, form, losses), "completion": _std_answer(answer, form, losses)}
    if label is not None:
        record["label"] = label
    _common(sample, record, form, losses, conversational)
    return record, losses


# ---- transforms ------------------------------------------------------------


def extract_prompt(sample: Sample) -> Sample:
    """Split a standard implicit pair (prompt inside chosen and rejected) at their longest common prefix.

    As TRL's ``extract_prompt`` does, a space just before the split goes with the answers.

    >>> s = extract_prompt(Sample(chosen=Turn("assistant", "Sky is blue"), rejected=Turn("assistant", "Sky is green")))
    >>> (s.turns[0].content, s.chosen.content, s.rejected.content)
    ('Sky is', ' blue', ' green')
    """
    if sample.turns or sample.chosen is None or sample.rejected is None:
        return sample
    c, r = sample.chosen.content, sample.rejected.content
    n = 0
    limit = min(len(c), len(r))
    while n < limit and c[n] == r[n]:
        n += 1
    if n and n < limit and c[n - 1] == " ":
        n -= 1
    sample.turns = [Turn("user", c[:n])]
    sample.chosen = Turn("assistant", c[n:])
    sample.rejected = Turn("assistant", r[n:])
    return sample


def pairs_to_kto(sample: Sample) -> list[Sample]:
    """One KTO sample per side of a preference pair: chosen is desirable (True), rejected not.

    >>> [s.label for s in pairs_to_kto(Sample([Turn("user", "Q")], chosen=Turn("assistant", "a"), rejected=Turn("assistant", "b")))]
    [True, False]
    """
    if sample.kind != "preference":
        return [sample]
    out = []
    for turn, label in ((sample.chosen, True), (sample.rejected, False)):
        if turn is None:
            continue
        out.append(Sample(
            turns=[*sample.turns, turn], system=sample.system, tools=sample.tools, label=label,
            images=sample.images, videos=sample.videos, audios=sample.audios, extra=sample.extra, hints=sample.hints,
        ))  # fmt: skip
    return out


_MEDIA = {"images": [], "videos": [], "audios": []}
TEXT_KNOWN = frozenset({"text", *_MEDIA})
# the columns TRL's trainers and data utilities read: never written from a source's extra fields
TRL_COLUMNS = frozenset({"prompt", "chosen", "rejected", "completion", "messages", "label", "text", "tools", "chat_template_kwargs", *_MEDIA})
MESSAGES_KNOWN = frozenset({"messages", "tools", *_MEDIA})
PROMPT_ONLY_KNOWN = frozenset({"prompt", "tools", *_MEDIA})
PROMPT_COMPLETION_KNOWN = frozenset({"prompt", "completion", "tools", *_MEDIA})
PREFERENCE_KNOWN = frozenset({"prompt", "chosen", "rejected", "tools", *_MEDIA})
IMPLICIT_KNOWN = frozenset({"chosen", "rejected", "tools", *_MEDIA})
UNPAIRED_KNOWN = frozenset({"prompt", "completion", "label", "tools", *_MEDIA})

# tools default to None: TRL parses a string column as JSON, and "" is not JSON
TEXT_FORM = Form("trl-text", read_text, write_text, {"text": REQUIRED}, schema="trl-language-modeling.schema.json")
MESSAGES_FORM = Form(
    "trl-messages", read_messages_form, write_messages, {"messages": REQUIRED, "tools": None},
    schema="trl-language-modeling.schema.json",
)  # fmt: skip
PROMPT_ONLY_FORM = Form(
    "trl-prompt-only", read_prompt_only, write_prompt_only, {"prompt": REQUIRED, "tools": None},
    schema="trl-prompt-only.schema.json",
)  # fmt: skip
PROMPT_COMPLETION_FORM = Form(
    "trl-prompt-completion", read_prompt_completion, write_prompt_completion,
    {"prompt": REQUIRED, "completion": REQUIRED, "tools": None}, schema="trl-prompt-completion.schema.json",
)  # fmt: skip
PREFERENCE_FORM = Form(
    "trl-preference", read_preference, write_preference,
    {"prompt": REQUIRED, "chosen": REQUIRED, "rejected": REQUIRED, "tools": None}, schema="trl-preference.schema.json",
)  # fmt: skip
PREFERENCE_IMPLICIT_FORM = Form(
    "trl-preference-implicit", read_preference_implicit, write_preference_implicit,
    {"chosen": REQUIRED, "rejected": REQUIRED, "tools": None}, schema="trl-preference.schema.json",
)  # fmt: skip
UNPAIRED_FORM = Form(
    "trl-unpaired", read_unpaired, write_unpaired,
    {"prompt": REQUIRED, "completion": REQUIRED, "label": REQUIRED, "tools": None}, schema="trl-unpaired-preference.schema.json",
)  # fmt: skip

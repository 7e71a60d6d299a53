"""Alpaca forms (LLaMA-Factory ``formatting: alpaca``): SFT, pretraining, preference and KTO.

Read as LLaMA-Factory reads them: ``history`` pairs become alternating
user/assistant turns, the last user turn is ``instruction`` and ``input``
joined by a newline (each only if non-empty), the answer is ``output``;
``chosen``/``rejected`` strings replace it for preference entries and a boolean
``kto_tag`` makes a KTO sample. The split between instruction and input is kept
as a hint so that writing back to Alpaca restores it.

>>> from fmtkit.dataset_info import DatasetEntry
>>> e = DatasetEntry.for_file("alpaca")
>>> s = read({"instruction": "Translate", "input": "chat", "output": "cat"}, e)
>>> [(t.role, t.content) for t in s.turns]
[('user', 'Translate\\nchat'), ('assistant', 'cat')]
>>> write(s)[0]
{'instruction': 'Translate', 'input': 'chat', 'output': 'cat'}
"""

from __future__ import annotations

from typing import Any

from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import QUERY_HINT, REQUIRED, Form, Loss, ReadError, lanes
from fmtkit.forms.columns import (
    extra_of,
    read_sample_media,
    read_tools,
    source_losses,
    text,
    tools_json,
    write_extra,
    write_media,
)
from fmtkit.sample import Sample, Turn


_known: dict[int, tuple[DatasetEntry, frozenset[str]]] = {}


def _known_columns(entry: DatasetEntry) -> frozenset[str]:
    cached = _known.get(id(entry))
    if cached is None or cached[0] is not entry:
        cached = (entry, frozenset(entry.column_map().values()))
        _known[id(entry)] = cached
    return cached[1]


def read(record: dict[str, Any], entry: DatasetEntry) -> Sample:
    """One Alpaca record (any Alpaca variant, as the entry says) as a Sample."""
    if not isinstance(record, dict):
        raise ReadError("FMT202", f"the record is {type(record).__name__}, not an object")
    get = record.get
    if entry.is_pretrain:
        sample = Sample(text=text(get(entry.prompt), entry.prompt))
    else:
        turns = []
        sample_extra = None
        if entry.history is not None:
            history = get(entry.history)
            if isinstance(history, list):
                for pair in history:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise ReadError("FMT304", f"{entry.history} must be a list of [user, assistant] pairs")
                    turns.append(Turn("user", text(pair[0], entry.history)))
                    turns.append(Turn("assistant", text(pair[1], entry.history)))
            elif history is not None and history != "":  # LLaMA-Factory ignores it (FMT305): kept aside, not trained
                sample_extra = {entry.history: history}
        instruction = text(get(entry.prompt), entry.prompt) if entry.prompt is not None else ""
        query = text(get(entry.query), entry.query) if entry.query is not None else ""
        turns.append(Turn("user", f"{instruction}\n{query}" if instruction and query else instruction or query))
        sample = Sample(turns)
        if sample_extra:
            sample.extra.update(sample_extra)
        if query:
            sample.hints[QUERY_HINT] = query
        if entry.kto_tag is not None:
            label = get(entry.kto_tag)
            if not isinstance(label, bool):
                raise ReadError("FMT503", f"{entry.kto_tag} is {label!r}, not a boolean (true or false)")
            turns.append(Turn("assistant", text(get(entry.response), entry.response or "output")))
            sample.label = label
        elif entry.ranking:
            chosen, rejected = get(entry.chosen), get(entry.rejected)
            if not (isinstance(chosen, str) and isinstance(rejected, str)):
                raise ReadError("FMT501", f"{entry.chosen} and {entry.rejected} must both be strings")
            sample.chosen, sample.rejected = Turn("assistant", chosen), Turn("assistant", rejected)
        elif entry.response is not None:
            response = get(entry.response)
            if isinstance(response, str):
                turns.append(Turn("assistant", response))
            elif response is not None:
                raise ReadError("FMT302", f"{entry.response} is {type(response).__name__}, not a string")
    if entry.system is not None:
        sample.system = text(get(entry.system), entry.system)
    if entry.tools is not None:
        sample.tools = read_tools(get(entry.tools))
    read_sample_media(sample, record, entry.images, entry.videos, entry.audios)
    extra = extra_of(record, _known_columns(entry))
    if extra:
        sample.extra.update(extra)
    return sample


def _write_prompt(sample: Sample, turns: list[Turn], record: dict[str, Any], form: str, losses: list[Loss]) -> None:
    """instruction / input / history from the prompt turns (user, assistant, ..., user)."""
    n = len(turns)
    has_results = any(t.role == "tool" for t in turns)
    if has_results:
        losses.append(Loss("tool-results", f"{form} cannot hold tool results"))
    if any(t.tool_calls for t in turns):
        losses.append(Loss("tool-calls", f"{form} cannot hold tool calls"))
    if any(t.weight is not None for t in turns):
        losses.append(Loss("weight", f"{form} cannot hold per-message weights"))
    if not has_results and (n % 2 == 0 or any(t.role != ("user" if i % 2 == 0 else "assistant") for i, t in enumerate(turns))):
        losses.append(Loss("role-order", f"{form} needs alternating user/assistant turns that start and end with the user"))
    last = turns[-1].content if n else ""
    instruction, query = last, ""
    hint = sample.hints.get(QUERY_HINT) if sample.hints else None
    if hint and last.endswith(hint):
        head = last[: -len(hint)]
        if not head:
            instruction, query = "", hint
        elif len(head) > 1 and head[-1] == "\n":
            instruction, query = head[:-1], hint
    record["instruction"] = instruction
    record["input"] = query
    if n > 1:
        record["history"] = [[turns[i].content, turns[i + 1].content] for i in range(0, n - 1, 2)]


def _write_answer(turn: Turn, form: str, losses: list[Loss]) -> str:
    if turn.tool_calls:
        losses.append(Loss("tool-calls", f"{form} cannot hold tool calls"))
    if turn.weight is not None:
        losses.append(Loss("weight", f"{form} cannot hold per-message weights"))
    return turn.content


def _write_common(sample: Sample, record: dict[str, Any], form: str, losses: list[Loss], columns: Any) -> None:
    source_losses(sample, form, losses, holds_input=True)
    if sample.system:
        record["system"] = sample.system
    if sample.tools is not None:
        record["tools"] = tools_json(sample.tools)
    if sample.images or sample.videos or sample.audios:
        write_media(sample, record, form, losses)
    if sample.extra:
        write_extra(sample, record, form, losses, reserved=columns)


def _kind_loss(form: str, holds: str, kind: str) -> Loss:
    return Loss("kind", f"{form} holds {holds}, not {kind} samples")


def write(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    """An SFT (or prompt-only: ``output`` null) sample as an Alpaca record."""
    losses: list[Loss] = []
    record: dict[str, Any] = {}
    kind = sample.kind
    if kind == "sft":
        _write_prompt(sample, sample.turns[:-1], record, "alpaca", losses)
        record["output"] = _write_answer(sample.turns[-1], "alpaca", losses)
    elif kind == "prompt":
        _write_prompt(sample, sample.turns, record, "alpaca", losses)
        record["output"] = None  # not a string: LLaMA-Factory reads a prompt without an answer
    else:
        losses.append(_kind_loss("alpaca", "sft and prompt-only", kind))
    _write_common(sample, record, "alpaca", losses, COLUMNS)
    return record, losses


def write_preference(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    record: dict[str, Any] = {}
    if sample.kind != "preference":
        losses.append(_kind_loss("alpaca-preference", "preference", sample.kind))
    else:
        if not sample.turns:
            losses.append(Loss("implicit-prompt", "alpaca-preference needs a prompt apart from chosen and rejected"))
        else:
            _write_prompt(sample, sample.turns, record, "alpaca-preference", losses)
        for side in ("chosen", "rejected"):
            turn = getattr(sample, side)
            record[side] = _write_answer(turn, "alpaca-preference", losses) if turn is not None else ""
    _write_common(sample, record, "alpaca-preference", losses, PREFERENCE_COLUMNS)
    return record, losses


def write_kto(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    record: dict[str, Any] = {}
    if sample.kind != "kto":
        losses.append(_kind_loss("alpaca-kto", "kto", sample.kind))
    else:
        _write_prompt(sample, sample.turns[:-1], record, "alpaca-kto", losses)
        record["output"] = _write_answer(sample.turns[-1], "alpaca-kto", losses)
        record["kto_tag"] = sample.label
    _write_common(sample, record, "alpaca-kto", losses, KTO_COLUMNS)
    return record, losses


def write_pretrain(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    record: dict[str, Any] = {}
    if sample.kind != "pretrain":
        losses.append(_kind_loss("alpaca-pretrain", "pretraining text", sample.kind))
    else:
        record["text"] = sample.text
    if sample.system:
        losses.append(Loss("system", "alpaca-pretrain cannot hold a system prompt"))
    if sample.tools is not None:
        losses.append(Loss("tools", "alpaca-pretrain cannot hold tool definitions"))
    if sample.images or sample.videos or sample.audios:
        write_media(sample, record, "alpaca-pretrain", losses)
    source_losses(sample, "alpaca-pretrain", losses)
    if sample.extra:
        write_extra(sample, record, "alpaca-pretrain", losses, reserved=PRETRAIN_COLUMNS)
    return record, losses


_OPTIONAL = {"system": "", "history": [], "tools": "", "images": [], "videos": [], "audios": []}
_MEDIA_ROLES = {"images": "images", "videos": "videos", "audios": "audios"}
_PROMPT_ROLES = {"prompt": "instruction", "query": "input", "system": "system", "history": "history", "tools": "tools"}

COLUMNS = {"instruction": REQUIRED, "input": REQUIRED, "output": REQUIRED} | _OPTIONAL
PREFERENCE_COLUMNS = {"instruction": REQUIRED, "input": REQUIRED, "chosen": REQUIRED, "rejected": REQUIRED} | _OPTIONAL
KTO_COLUMNS = {"instruction": REQUIRED, "input": REQUIRED, "output": REQUIRED, "kto_tag": REQUIRED} | _OPTIONAL
PRETRAIN_COLUMNS = {"text": REQUIRED, "images": [], "videos": [], "audios": []}

FORM = Form(
    "alpaca", read, write, COLUMNS,
    roles=_PROMPT_ROLES | {"response": "output"} | _MEDIA_ROLES,
    entry={"formatting": "alpaca"}, direct={t: lanes.alpaca_to(t) for t in ("sharegpt", "trl-messages", "trl-prompt-completion")},
    schema="alpaca-sft.schema.json", bare={"formatting": "alpaca"},
)  # fmt: skip
PREFERENCE_FORM = Form(
    "alpaca-preference", read, write_preference, PREFERENCE_COLUMNS,
    roles=_PROMPT_ROLES | {"chosen": "chosen", "rejected": "rejected"} | _MEDIA_ROLES,
    entry={"formatting": "alpaca", "ranking": True}, direct={t: lanes.alpaca_to(t) for t in ("sharegpt-preference", "trl-preference")},
    schema="alpaca-preference.schema.json",
    bare={"ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}},
)  # fmt: skip
KTO_FORM = Form(
    "alpaca-kto", read, write_kto, KTO_COLUMNS,
    roles=_PROMPT_ROLES | {"response": "output", "kto_tag": "kto_tag"} | _MEDIA_ROLES,
    entry={"formatting": "alpaca"}, direct={t: lanes.alpaca_to(t) for t in ("sharegpt-kto", "trl-unpaired")},
    schema="alpaca-kto.schema.json",
    bare={"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "kto_tag"}},
)  # fmt: skip
PRETRAIN_FORM = Form(
    "alpaca-pretrain", read, write_pretrain, PRETRAIN_COLUMNS,
    roles={"prompt": "text"} | _MEDIA_ROLES,
    entry={"formatting": "alpaca"},
    schema="alpaca-pretrain.schema.json", bare={"columns": {"prompt": "text"}},
)  # fmt: skip

"""Vendors' forms: OpenAI's preference (DPO) fine-tuning format.

``{"input": {"messages": [...], "tools": [...], "parallel_tool_calls": bool},
"preferred_output": [assistant message], "non_preferred_output": [assistant message]}``.
Messages are OpenAI's (tool call ``arguments`` as JSON strings); ``tools`` is a
list here, as the API takes it. Vendors refuse unknown keys, so extra fields
are dropped (``parallel_tool_calls`` is kept, in ``input``).

>>> s = read_preference({"input": {"messages": [{"role": "user", "content": "Hi"}]},
...     "preferred_output": [{"role": "assistant", "content": "Hello!"}],
...     "non_preferred_output": [{"role": "assistant", "content": "What?"}]}, None)
>>> (s.kind, s.chosen.content)
('preference', 'Hello!')
"""

from __future__ import annotations

from typing import Any

from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import REQUIRED, Form, Loss, ReadError
from fmtkit.forms.columns import add_found, read_tools, source_losses, write_extra
from fmtkit.forms.openai import BARE_ENTRY as _OPENAI
from fmtkit.forms.openai import message, messages
from fmtkit.forms.sharegpt import read_messages
from fmtkit.sample import Sample

_KNOWN = frozenset({"input", "preferred_output", "non_preferred_output"})
_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
PARALLEL = "parallel_tool_calls"


def _answer(value: Any, where: str, found: list[tuple[str, Any]]):
    _, turns = read_messages(value, _OPENAI, lf_order=False, where=where, found=found)
    if len(turns) != 1 or turns[0].role != "assistant":
        raise ReadError("FMT300", f"{where} must be a list of one assistant message")
    return turns[0]


def read_preference(record: dict[str, Any], entry: DatasetEntry | None) -> Sample:
    if not isinstance(record, dict):
        raise ReadError("FMT202", f"the record is {type(record).__name__}, not an object")
    inp = record.get("input")
    if not isinstance(inp, dict):
        raise ReadError("FMT300", "input must be an object with messages")
    found: list[tuple[str, Any]] = []
    system, turns = read_messages(inp.get("messages"), _OPENAI, lf_order=False, where="input.messages", found=found)
    sample = Sample(
        turns,
        chosen=_answer(record.get("preferred_output"), "preferred_output", found),
        rejected=_answer(record.get("non_preferred_output"), "non_preferred_output", found),
    )
    if found:
        add_found(sample, found, "input.messages")
    if system:
        sample.system = system
    sample.tools = read_tools(inp.get("tools"))
    if PARALLEL in inp:
        sample.extra[PARALLEL] = inp[PARALLEL]
    unknown = [k for k in inp if k not in _INPUT_KEYS]
    if unknown:
        raise ReadError("FMT300", f"input has keys the model does not hold: {', '.join(unknown)}")
    for key, value in record.items():
        if key not in _KNOWN:
            sample.extra[key] = value
    return sample


def write_preference(sample: Sample) -> tuple[dict[str, Any], list[Loss]]:
    form = "vendor-preference"
    losses: list[Loss] = []
    if sample.kind != "preference":
        losses.append(Loss("kind", f"{form} holds preference samples, not {sample.kind} samples"))
    elif not sample.turns:
        losses.append(Loss("implicit-prompt", f"{form} needs a prompt apart from chosen and rejected"))
    turns = [*sample.turns, *(t for t in (sample.chosen, sample.rejected) if t is not None)]
    if any(t.weight is not None for t in turns):
        losses.append(Loss("weight", f"{form} cannot hold per-message weights"))
    inp: dict[str, Any] = {"messages": [{k: v for k, v in m.items() if k != "weight"} for m in messages(sample, sample.turns)]}
    if sample.tools:
        inp["tools"] = list(sample.tools)
    record: dict[str, Any] = {"input": inp}
    for key, side in (("preferred_output", sample.chosen), ("non_preferred_output", sample.rejected)):
        msg = message(side) if side is not None else {"role": "assistant", "content": ""}
        msg.pop("weight", None)
        record[key] = [msg]
    if sample.images or sample.videos or sample.audios:
        losses.append(Loss("media", f"{form} cannot hold images, videos or audios"))
    source_losses(sample, form, losses)
    if sample.extra:
        if PARALLEL in sample.extra:
            inp[PARALLEL] = sample.extra[PARALLEL]
        rest = {k: v for k, v in sample.extra.items() if k != PARALLEL}
        if rest:
            write_extra(Sample(extra=rest), record, form, losses, carry=False)
    return record, losses


PREFERENCE_FORM = Form(
    "vendor-preference", read_preference, write_preference,
    {"input": REQUIRED, "preferred_output": REQUIRED, "non_preferred_output": REQUIRED}, schema="vendor-preference.schema.json",
)  # fmt: skip

"""From fmtkit's canonical samples to the rows TRL's trainers take.

Small pure functions map one :class:`~fmtkit.sample.Sample` to one row of a
TRL dataset type (docs/llamafactory.md, "TRL"): conversational ``messages`` for SFT,
``text`` for pretraining, explicit-prompt preference rows for DPO / ORPO /
SimPO / reward modelling, unpaired rows for KTO. Messages carry ``role`` and
``content``, the system prompt first, and tool calls OpenAI's way; tools go in
a ``tools`` column as a JSON string (one Arrow type whatever the schemas).
Columns TRL does not know are never produced, so the extra fields of a record
are dropped here.

>>> from fmtkit.sample import Sample, Turn
>>> sft_row(Sample(system="Be brief.", turns=[Turn("user", "Hi"), Turn("assistant", "Hello")]))["messages"]
[{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]
>>> pt_row(Sample(text="Once upon a time"))
{'text': 'Once upon a time'}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.sample import Sample, ToolCall, Turn

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from fmtkit.dataset_info import DatasetEntry

Row = dict[str, Any]


class SampleKindError(FmtkitError):
    """A sample of the wrong kind for the stage (the validator should have said so first)."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=EXIT_FINDINGS)


def tool_call_dict(call: ToolCall) -> dict[str, Any]:
    """One tool call, OpenAI's way (arguments as a JSON string).

    >>> tool_call_dict(ToolCall("get_weather", {"city": "Paris"}, id="c1"))
    {'type': 'function', 'function': {'name': 'get_weather', 'arguments': '{"city": "Paris"}'}, 'id': 'c1'}
    """
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
    out: dict[str, Any] = {"type": "function", "function": {"name": call.name, "arguments": arguments}}
    if call.id is not None:
        out["id"] = call.id
    return out


def message(turn: Turn) -> dict[str, Any]:
    """One turn as a chat message: role and content, plus tool calls / tool_call_id when present.

    >>> message(Turn("assistant", tool_calls=[ToolCall("f", {})]))
    {'role': 'assistant', 'content': '', 'tool_calls': [{'type': 'function', 'function': {'name': 'f', 'arguments': '{}'}}]}
    >>> message(Turn("tool", "20C", tool_call_id="c1"))
    {'role': 'tool', 'content': '20C', 'tool_call_id': 'c1'}
    """
    out: dict[str, Any] = {"role": turn.role, "content": turn.content or ""}
    if turn.tool_calls:
        out["tool_calls"] = [tool_call_dict(call) for call in turn.tool_calls]
    if turn.tool_call_id is not None:
        out["tool_call_id"] = turn.tool_call_id
    return out


def prompt_messages(sample: Sample, default_system: str | None = None) -> list[dict[str, Any]]:
    """The system prompt (if any) then every turn before the answer.

    >>> prompt_messages(Sample(turns=[Turn("user", "Hi")]), default_system="Be kind.")
    [{'role': 'system', 'content': 'Be kind.'}, {'role': 'user', 'content': 'Hi'}]
    """
    system = sample.system or default_system or ""
    head = [{"role": "system", "content": system}] if system else []
    return head + [message(turn) for turn in sample.prompt_turns]


def _with_tools(row: Row, sample: Sample) -> Row:
    if sample.tools:
        row["tools"] = sample.tools if isinstance(sample.tools, str) else json.dumps(sample.tools, ensure_ascii=False)
    return row


def _expect(sample: Sample, kinds: tuple[str, ...], stage: str) -> None:
    if sample.kind not in kinds:
        raise SampleKindError(f"a {sample.kind} sample cannot train stage {stage} (it needs {' or '.join(kinds)} data)")
    if sample.images or sample.videos or sample.audios:
        raise SampleKindError(  # a vision-language model's rows come from trainer_plugin.vision
            "samples with images need a vision-language model as model_name_or_path (stages sft and dpo)"
        )


SFT_TEMPLATE_KWARGS = {"think_in_history": True}


def sft_row(sample: Sample, default_system: str | None = None) -> Row:
    """An SFT sample as conversational language modelling.

    Every assistant turn of an SFT conversation is trained, so the row tells the templates that treat
    earlier answers as context (qwen3's think blocks) to render each one as an answer
    (:data:`SFT_TEMPLATE_KWARGS`, as LLaMA-Factory trains multi-turn SFT).

    >>> from fmtkit.sample import Sample, Turn
    >>> sft_row(Sample(turns=[Turn("user", "2+2?"), Turn("assistant", "4")], tools=[{"name": "calc"}]))
    {'messages': [{'role': 'user', 'content': '2+2?'}, {'role': 'assistant', 'content': '4'}], 'chat_template_kwargs': {'think_in_history': True}, 'tools': '[{"name": "calc"}]'}
    """
    _expect(sample, ("sft",), "sft")
    messages = prompt_messages(sample, default_system) + [message(sample.turns[-1])]
    return _with_tools({"messages": messages, "chat_template_kwargs": dict(SFT_TEMPLATE_KWARGS)}, sample)


def pt_row(sample: Sample, default_system: str | None = None) -> Row:
    """A pretraining sample as language modelling on ``text``."""
    _expect(sample, ("pretrain",), "pt")
    return {"text": sample.text}


def preference_row(sample: Sample, default_system: str | None = None) -> Row:
    """A preference pair as explicit-prompt conversational preference.

    >>> s = Sample(turns=[Turn("user", "Do tigers eat grass?")], chosen=Turn("assistant", "No."), rejected=Turn("assistant", "Yes."))
    >>> preference_row(s)
    {'prompt': [{'role': 'user', 'content': 'Do tigers eat grass?'}], 'chosen': [{'role': 'assistant', 'content': 'No.'}], 'rejected': [{'role': 'assistant', 'content': 'Yes.'}]}
    """
    _expect(sample, ("preference",), "dpo/rm")
    if sample.chosen is None or sample.rejected is None:
        raise SampleKindError("a preference sample needs both chosen and rejected answers")
    row = {
        "prompt": prompt_messages(sample, default_system),
        "chosen": [message(sample.chosen)],
        "rejected": [message(sample.rejected)],
    }
    return _with_tools(row, sample)


def kto_row(sample: Sample, default_system: str | None = None) -> Row:
    """A labelled answer as an unpaired preference row.

    >>> kto_row(Sample(turns=[Turn("user", "Hi"), Turn("assistant", "Go away.")], label=False))
    {'prompt': [{'role': 'user', 'content': 'Hi'}], 'completion': [{'role': 'assistant', 'content': 'Go away.'}], 'label': False}
    """
    _expect(sample, ("kto",), "kto")
    row = {
        "prompt": prompt_messages(sample, default_system),
        "completion": [message(sample.turns[-1])],
        "label": bool(sample.label),
    }
    return _with_tools(row, sample)


def with_kl_answers(dataset: Dataset, group: int, answers: str = "completion", into: str = "kl_completion") -> Dataset:
    """KTO rows with the mismatched answers of its KL term: each row gets the ``answers`` of the row before it.

    Rows go in groups of ``group``; the first row of a group gets the group's last answer. LLaMA-Factory
    pairs the rows so (groups of ``preprocessing_batch_size``) when it encodes them, before rows are
    dropped or split off; TRL pairs its tokenized rows so in each batch (``"completion_ids"`` into
    ``"KL_completion_ids"``, groups of ``per_device_train_batch_size``), then reads them in order.

    >>> rows = with_kl_answers(to_dataset([{"prompt": [], "completion": [{"role": "assistant", "content": c}], "label": True} for c in "abc"]), 2)
    >>> [r["kl_completion"][0]["content"] for r in rows]
    ['b', 'a', 'c']
    """

    def rotate(batch: dict[str, list]) -> dict[str, list]:
        return {into: batch[answers][-1:] + batch[answers][:-1]}

    return dataset.map(rotate, batched=True, batch_size=group)


RowFunction = Callable[[Sample, "str | None"], Row]


def train_entry(dataset_dir: str | Path, entry_name: str) -> DatasetEntry:
    """The local entry ``entry_name`` (:func:`fmtkit.entries.load_entry`); a hub entry says how to make it local."""
    from fmtkit.entries import EntryNotLocal, load_entry

    try:
        return load_entry(dataset_dir, entry_name)
    except EntryNotLocal as exc:
        e = exc.entry
        raise FmtkitError(
            f"dataset {entry_name!r} reads {e.source_key} {e.source!r}: fmtkit train needs local data and never downloads it;"
            f" download the dataset into {Path(dataset_dir)}, then give the entry \"file_name\" (the downloaded file or folder)"
            f" in place of {e.source_key}"
        ) from None


def load_samples(entry: DatasetEntry) -> Iterator[Sample]:
    """The samples of one local entry (from :func:`train_entry`), read by fmtkit's conversion engine."""
    import fmtkit

    return fmtkit.read(entry.base_dir, entry=entry.name)


def entry_num_samples(entry: DatasetEntry) -> int | None:
    """The ``num_samples`` of an entry of ``dataset_info.json`` (None when unset or not a positive integer)."""
    value = entry.num_samples
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def subsample(samples: list[Sample], num_samples: int, seed: int) -> list[Sample]:
    """LLaMA-Factory's ``num_samples``: a random subset, drawn with replacement past the data's size.

    >>> data = [Sample(text=str(i)) for i in range(3)]
    >>> len(subsample(data, 2, seed=0)), len(subsample(data, 5, seed=0))
    (2, 5)
    """
    import random

    rng = random.Random(seed)
    picked = rng.sample(range(len(samples)), min(num_samples, len(samples)))
    picked += [rng.randrange(len(samples)) for _ in range(num_samples - len(picked))] if samples else []
    return [samples[i] for i in picked]


def take(samples: Iterable[Sample], max_samples: int | None) -> list[Sample]:
    """The first ``max_samples`` samples (all when None), as LLaMA-Factory truncates each dataset.

    >>> len(take(iter([Sample(text="a")] * 5), 2))
    2
    """
    out: list[Sample] = []
    for sample in samples:
        if max_samples is not None and len(out) >= max_samples:
            break
        out.append(sample)
    return out


def rows_for(
    samples: Iterable[Sample], to_row: RowFunction, entry: str, default_system: str | None = None
) -> list[Row]:
    """Map samples to rows, naming the entry and record of any sample that does not fit."""
    rows = []
    for index, sample in enumerate(samples):
        try:
            rows.append(to_row(sample, default_system))
        except SampleKindError as exc:
            raise SampleKindError(f"dataset {entry}, record {index}: {exc}") from None
    return rows


def to_dataset(rows: list[Row]) -> Dataset:
    """Rows as a ``datasets.Dataset``, with every column any row has (None where a row lacks it: ``Dataset.from_list``
    alone takes the first row's columns, so the tools of later rows would be lost); an empty list is an error.

    >>> list(to_dataset([{"text": "a"}, {"text": "b", "tools": "[]"}])["tools"])
    [None, '[]']
    """
    from datasets import Dataset

    if not rows:
        raise FmtkitError("no training samples: the datasets are empty", exit_code=EXIT_FINDINGS)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return Dataset.from_list([{key: row.get(key) for key in columns} for row in rows])


def split_eval(dataset: Dataset, val_size: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Split off an evaluation set as LLaMA-Factory does: a fraction (< 1) or a count (> 1), shuffled by ``seed``."""
    if not val_size:
        return dataset, None
    size: float | int = int(val_size) if val_size > 1 else val_size
    held = size if isinstance(size, int) else math.ceil(size * len(dataset))
    if held >= len(dataset):
        raise FmtkitError(f"val_size {size} leaves no training data ({len(dataset)} samples)")
    parts = dataset.train_test_split(test_size=size, seed=seed)
    return parts["train"], parts["test"]

"""LLaMA-Factory's truncation (``truncation: llamafactory``): training rows to token ids, cut as it cuts them.

fmtkit renders each row with the run's chat template, exactly as the TRL
trainers would, then fits it in ``cutoff_len`` the way LLaMA-Factory 0.9.5's
dataset processors do, and hands the trainer the token ids (the trainer only
batches them):

- sft: turn by turn. Each (prompt, answer) pair of the conversation gets a
  share of the budget left (:func:`~fmtkit.truncation.split_budget`); once the budget is spent the
  later turns are left out. Every turn's answer stays in the loss.
- dpo, orpo, simpo, rm (pairs): the prompt and the *longer* of the two answers
  share ``cutoff_len``; both answers are cut to the same length.
- kto: the prompt and the answer share ``cutoff_len``.
- pt: texts (each ending with the end-of-sequence text) are concatenated per
  group of ``preprocessing_batch_size`` texts and cut into blocks of
  ``cutoff_len`` tokens; the remainder of each group, shorter than a block,
  is dropped. Without packing each text is cut to its first ``cutoff_len``.

Unlike TRL's truncation (first ``cutoff_len`` tokens), no answer loses all its
tokens to a long prompt, so rows are kept. A row left with nothing to train all
the same (an answer with no token in the loss) is dropped and counted, as
:mod:`trainer_plugin.fit` does for TRL's truncation.

The budget rule is :mod:`fmtkit.truncation` (shared with ``fmtkit stats --cutoff-len``).
"""

from __future__ import annotations

import bisect
import json
from typing import TYPE_CHECKING, Any

from fmtkit.truncation import split_budget, turn_budgets, turns
from trainer_plugin.data import with_kl_answers

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

IGNORE = -100
KL_PROMPT = "KL_prompt_ids"  # a KTO row's KL pair's own prompt ids (cut with its answer), beside TRL's KL_completion_ids
PACKING_GROUP = 1000  # LLaMA-Factory's preprocessing_batch_size: texts packed together before the remainder is dropped
# The columns each stage's trainer takes, pre-tokenized (TRL 1.16; ORPO and CPO: their tokenize_row's output).
COLUMNS = {
    "sft": ("input_ids", "labels"),
    "pt": ("input_ids",),
    "dpo": ("prompt_ids", "chosen_ids", "rejected_ids"),
    "kto": ("prompt_ids", "completion_ids", "label"),
    "rm": ("chosen_ids", "rejected_ids"),
    "orpo": tuple(f"{side}_{key}" for side in ("prompt", "chosen", "rejected") for key in ("input_ids", "attention_mask"))
    + ("chosen_labels", "rejected_labels"),
}
COLUMNS["simpo"] = COLUMNS["orpo"]


def is_tokenized(dataset: Any) -> bool:
    """Whether a training set's rows carry token ids (made here) rather than chat messages or texts."""
    columns = getattr(dataset, "column_names", None) or ()
    return any(column in columns for column in ("input_ids", "prompt_ids", "chosen_ids", "chosen_input_ids"))


def _kwargs(row: dict[str, Any]) -> dict[str, Any]:
    tools = row.get("tools")
    kwargs: dict[str, Any] = {"tools": json.loads(tools) if isinstance(tools, str) else tools}
    kwargs.update(row.get("chat_template_kwargs") or {})
    return kwargs


def render_ids(tokenizer: Any, messages: list[dict[str, Any]], kwargs: dict[str, Any], **extra: Any) -> dict:
    """The chat template's token ids of ``messages`` (``input_ids``, plus ``assistant_masks`` when asked), as TRL renders them."""
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs, **extra)


def _fit(length: int, trained: int, full: int, truncated: bool, drop: str = "") -> dict[str, Any]:
    return {"_fit_length": length, "_fit_trained": trained, "_fit_trained_full": full, "_fit_truncated": truncated, "_fit_drop": drop}


def encode_sft(row: dict[str, Any], tokenizer: Any, cutoff: int, train_on_prompt: bool) -> dict[str, Any]:
    """One conversation: ``input_ids`` and ``labels`` (``IGNORE`` outside the loss), cut turn by turn.

    The turns come from the template's ``{% generation %}`` markers (the assistant mask).
    """
    done = render_ids(tokenizer, row["messages"], _kwargs(row), return_assistant_tokens_mask=True)
    ids = done["input_ids"]
    pairs = turns(ids, done["assistant_masks"])
    input_ids: list[int] = []
    labels: list[int] = []
    for (source, target), (keep_source, keep_target) in zip(pairs, turn_budgets([(len(s), len(t)) for s, t in pairs], cutoff)):
        prompt, answer = source[:keep_source], target[:keep_target]
        input_ids += prompt + answer
        labels += (prompt if train_on_prompt else [IGNORE] * len(prompt)) + answer
    full = len(ids) if train_on_prompt else sum(len(t) for _, t in pairs)
    trained = sum(1 for label in labels if label != IGNORE)
    drop = "no_trained_token" if not full else ("answer_past_cutoff_len" if not trained else "")
    return {"input_ids": input_ids, "labels": labels, **_fit(len(ids), trained, full, len(input_ids) < len(ids), drop)}


def _prompt_and_answers(row: dict[str, Any], tokenizer: Any, sides: tuple[str, ...]) -> tuple[list[int], list[list[int]]]:
    """The prompt's ids and each answer's, split where the rendered prompt and prompt + answer part (TRL's rule)."""
    kwargs = _kwargs(row)
    prompt = render_ids(tokenizer, row["prompt"], kwargs, add_generation_prompt=True)["input_ids"]
    fulls = [render_ids(tokenizer, row["prompt"] + row[side], kwargs)["input_ids"] for side in sides]
    start = min(common_prefix(prompt, ids) for ids in fulls)
    return fulls[0][:start], [ids[start:] for ids in fulls]


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading ids ``a`` and ``b`` share.

    >>> common_prefix([1, 2, 3], [1, 2, 4, 5])
    2
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_pair(row: dict[str, Any], tokenizer: Any, cutoff: int, stage: str) -> dict[str, Any]:
    """A preference pair: the prompt and both answers, cut with the longer answer's share (dpo, orpo, simpo, rm)."""
    prompt, (chosen, rejected) = _prompt_and_answers(row, tokenizer, ("chosen", "rejected"))
    longer = max(len(chosen), len(rejected))
    keep_prompt, keep_answer = split_budget(len(prompt), longer, cutoff)
    p, c, r = prompt[:keep_prompt], chosen[:keep_answer], rejected[:keep_answer]
    kept, full = len(c) + len(r), len(chosen) + len(rejected)
    if stage == "rm":  # the reward model scores whole sequences
        out: dict[str, Any] = {"chosen_ids": p + c, "rejected_ids": p + r}
        kept, full = kept + 2 * len(p), full + 2 * len(prompt)
    elif stage == "dpo":
        out = {"prompt_ids": p, "chosen_ids": c, "rejected_ids": r}
    else:  # TRL's experimental ORPO / CPO trainers: their tokenize_row's columns
        out = {"prompt_input_ids": p, "prompt_attention_mask": [1] * len(p)}
        for side, answer in (("chosen", c), ("rejected", r)):
            out[f"{side}_input_ids"] = p + answer
            out[f"{side}_attention_mask"] = [1] * (len(p) + len(answer))
            out[f"{side}_labels"] = [IGNORE] * len(p) + answer
    drop = "no_trained_token" if not (chosen and rejected) else ("answer_past_cutoff_len" if not keep_answer else "")
    return {**out, **_fit(len(prompt) + longer, kept, full, keep_prompt + keep_answer < len(prompt) + longer, drop)}


def _prompt_and_answer_cut(row: dict[str, Any], tokenizer: Any, cutoff: int, side: str) -> tuple[list[int], list[int], int, int]:
    """The prompt's and the ``side`` answer's ids, each cut to its share of ``cutoff``; and their full lengths."""
    prompt, (answer,) = _prompt_and_answers(row, tokenizer, (side,))
    keep_prompt, keep_answer = split_budget(len(prompt), len(answer), cutoff)
    return prompt[:keep_prompt], answer[:keep_answer], len(prompt), len(answer)


def encode_kto(row: dict[str, Any], tokenizer: Any, cutoff: int) -> dict[str, Any]:
    """A labelled answer: the prompt and the answer share ``cutoff_len``.

    With a ``kl_completion`` (:func:`trainer_plugin.data.with_kl_answers`), also the KL term's
    sequence, the prompt with that answer, cut the same way on its own (``KL_prompt_ids``,
    ``KL_completion_ids``), as LLaMA-Factory's feedback processor encodes it.
    """
    prompt, answer, prompt_len, answer_len = _prompt_and_answer_cut(row, tokenizer, cutoff, "completion")
    drop = "no_trained_token" if not answer_len else ("answer_past_cutoff_len" if not answer else "")
    out = {"prompt_ids": prompt, "completion_ids": answer, "label": row["label"]}
    if row.get("kl_completion"):
        out[KL_PROMPT], out["KL_completion_ids"], *_ = _prompt_and_answer_cut(row, tokenizer, cutoff, "kl_completion")
    length = prompt_len + answer_len
    return {**out, **_fit(length, len(answer), answer_len, len(prompt) + len(answer) < length, drop)}


def pt_texts_ids(texts: list[str], tokenizer: Any, eos_text: str) -> list[list[int]]:
    """Each text with the end-of-sequence text appended, tokenized without special tokens (BOS first when the tokenizer adds one)."""
    bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id is not None else []
    return [bos + tokenizer(text + eos_text, add_special_tokens=False)["input_ids"] for text in texts]


def pack_blocks(ids: list[list[int]], block: int, group: int = PACKING_GROUP, bos_id: int | None = None) -> tuple[list[list[int]], list[int]]:
    """Texts' ids packed into blocks of ``block`` tokens, ``group`` texts at a time; and how many tokens of each text made it.

    The remainder of each group (fewer than ``block`` tokens) is dropped, as LLaMA-Factory packs.
    ``bos_id``: the first token of every block becomes BOS (tokenizers that add one).

    >>> pack_blocks([[1, 2, 3], [4, 5], [6, 7, 8]], block=3, group=2)  # [4, 5]: the first group's remainder
    ([[1, 2, 3], [6, 7, 8]], [3, 0, 3])
    >>> pack_blocks([[1, 2, 3], [4, 5], [6, 7, 8]], block=2, group=3)
    ([[1, 2], [3, 4], [5, 6], [7, 8]], [3, 2, 3])
    """
    blocks: list[list[int]] = []
    kept: list[int] = []
    for start in range(0, len(ids), group):
        part = ids[start : start + group]
        flat = [token for text in part for token in text]
        usable = len(flat) // block * block
        blocks += [flat[i : i + block] for i in range(0, usable, block)]
        seen = 0
        for text in part:
            kept.append(max(0, min(len(text), usable - seen)))
            seen += len(text)
    if bos_id is not None:
        for b in blocks:
            b[0] = bos_id
    return blocks, kept


def pt_eos_text(tokenizer: Any, template: str | None) -> str:
    """The text LLaMA-Factory appends to each pretraining text: the template's stop token (it replaces EOS), llama3's end of text."""
    from fmtkit.templates import TEMPLATES

    if template == "llama3":
        return "<|end_of_text|>"
    chat = TEMPLATES.get(template or "")
    return chat.stop_token if chat is not None and chat.stop_token else tokenizer.eos_token


def encode_pt(
    texts: list[str], tokenizer: Any, cutoff: int, packed: bool, template: str | None, group: int = PACKING_GROUP
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pretraining texts: the ``_fit_*`` columns of each text, and the trainer's ``input_ids`` rows (blocks when ``packed``)."""
    ids = pt_texts_ids(texts, tokenizer, pt_eos_text(tokenizer, template))
    if not packed:
        fits = [_fit(len(t), min(len(t), cutoff), len(t), len(t) > cutoff) for t in ids]
        return fits, [{"input_ids": t[:cutoff]} for t in ids]
    bos = tokenizer.bos_token_id if getattr(tokenizer, "add_bos_token", False) else None
    blocks, kept = pack_blocks(ids, cutoff, group, bos)
    fits = [_fit(len(t), k, len(t), 0 < k < len(t), "" if k else "past_last_block") for t, k in zip(ids, kept, strict=True)]
    return fits, [{"input_ids": b} for b in blocks]


def encode_row(row: dict[str, Any], tokenizer: Any, stage: str, cutoff: int, train_on_prompt: bool) -> dict[str, Any]:
    """One row of any conversational stage, cut as LLaMA-Factory cuts it, with its ``_fit_*`` columns."""
    try:
        if stage == "sft":
            return encode_sft(row, tokenizer, cutoff, train_on_prompt)
        if stage == "kto":
            return encode_kto(row, tokenizer, cutoff)
        return encode_pair(row, tokenizer, cutoff, stage)
    except Exception as exc:  # noqa: BLE001 - a template that fails on a row is reported, not a crash
        empty: dict[str, Any] = {column: [] for column in COLUMNS[stage]}
        if stage == "kto":
            empty["label"] = bool(row.get("label"))
            if row.get("kl_completion"):
                empty[KL_PROMPT] = empty["KL_completion_ids"] = []
        return {**empty, **_fit(0, 0, 0, False, f"template_error:{exc}")}


def knapsack_blocks(lengths: list[int], capacity: int) -> list[list[int]]:
    """Which samples go in each block, in order: LLaMA-Factory's greedy knapsack over the samples' lengths.

    Each block takes, again and again, the longest sample that still fits (of samples of the same
    length, the last one first) until none fits; then the next block starts. Lengths must be 1 to ``capacity``.

    >>> knapsack_blocks([3, 5, 2, 4, 1], 6)  # lengths 5+1, 4+2, 3
    [[1, 4], [3, 2], [0]]
    """
    waiting = sorted(lengths)
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        by_length.setdefault(length, []).append(index)
    blocks: list[list[int]] = []
    while waiting:
        block, room = [], capacity
        while (fits := bisect.bisect_right(waiting, room)) > 0:
            length = waiting.pop(fits - 1)
            room -= length
            block.append(by_length[length].pop())
        if not block:
            raise ValueError(f"a sample of {waiting[-1]} tokens does not fit a block of {capacity}")
        blocks.append(block)
    return blocks


def pack_sft(rows: list[dict[str, Any]], groups: list[int], cutoff: int, pad_id: int) -> list[dict[str, Any]]:
    """SFT rows (``input_ids``, ``labels``, at most ``cutoff`` tokens) packed as LLaMA-Factory packs them (``packing: true``).

    The rows of each group (``groups[i]``: row i's group, LLaMA-Factory's batches of
    ``preprocessing_batch_size``) are packed with :func:`knapsack_blocks`; each block is padded
    with ``pad_id`` (not trained) to ``cutoff + 1`` tokens. ``seq_lengths``: each sample's length,
    then the padding's, from which the trainer restarts the positions at each sample.

    >>> pack_sft([{"input_ids": [1, 2], "labels": [-100, 2]}, {"input_ids": [3], "labels": [3]}], [0, 0], 4, 0)
    [{'input_ids': [1, 2, 3, 0, 0], 'labels': [-100, 2, 3, -100, -100], 'seq_lengths': [2, 1, 2]}]
    """
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    blocks = []
    for indices in members.values():
        for block in knapsack_blocks([len(rows[i]["input_ids"]) for i in indices], cutoff):
            parts = [rows[indices[i]] for i in block]
            ids = [token for part in parts for token in part["input_ids"]]
            labels = [label for part in parts for label in part["labels"]]
            pad = cutoff + 1 - len(ids)
            blocks.append(
                {"input_ids": ids + [pad_id] * pad, "labels": labels + [IGNORE] * pad, "seq_lengths": [len(p["input_ids"]) for p in parts] + [pad]}
            )
    return blocks


def accepting_tokenized(trainer_class: type) -> type:
    """``trainer_class`` taking the rows :mod:`trainer_plugin.encode` made as they are, without tokenizing them again.

    TRL 1.16's ``SFTTrainer`` and ``RewardTrainer`` already skip rows that carry token ids; its
    ``DPOTrainer`` and ``KTOTrainer`` always tokenize (``_prepare_dataset``), and the experimental
    ``ORPOTrainer`` / ``CPOTrainer`` map every row through ``tokenize_row``: those two steps pass
    rows with token ids through (KTO still gets its KL answers, as TRL adds them, unless the rows
    carry their own: ``kto_kl_pairs: llamafactory``).
    """

    class Trainer(trainer_class):  # type: ignore[misc, valid-type]
        def _prepare_dataset(self, dataset, processing_class, args, *rest, **kwargs):
            if "prompt_ids" not in (dataset.column_names or []):
                return super()._prepare_dataset(dataset, processing_class, args, *rest, **kwargs)
            if getattr(self, "calculate_KL", False) and "KL_completion_ids" not in dataset.column_names:  # TRL's KL pairs
                dataset = with_kl_answers(dataset, args.per_device_train_batch_size, "completion_ids", "KL_completion_ids")
            return dataset

        def tokenize_row(self, feature, model=None):
            if "chosen_input_ids" in feature:
                return {}
            return super().tokenize_row(feature, model)

    Trainer.__name__ = Trainer.__qualname__ = trainer_class.__name__
    return Trainer

"""How each training row fits ``cutoff_len``: measured, and dropped when it would train on nothing.

Every row of the training set is measured before the trainer is built: its
length, the tokens in its loss, and what ``cutoff_len`` does to it. Rows that
would train on nothing are dropped here, each counted under its reason, so the
trainer never sees them (an empty answer makes the length-normalised loss of
ORPO / SimPO 0/0: NaN) and the counts in the log and ``train_summary.json`` are
those of the data the trainer really consumes.

Two ways to fit ``cutoff_len`` (the config's ``truncation``, :data:`TRUNCATIONS`):

- ``llamafactory`` (:func:`encode_rows`): fmtkit tokenizes and cuts every row as
  LLaMA-Factory does (:mod:`trainer_plugin.encode`) and the trainer gets the token ids;
- ``trl`` (:func:`fit_rows`): the trainer gets the rows as chat messages and
  tokenizes and cuts them itself; each row is measured here as TRL tokenizes it.

With ``truncation: trl``, what TRL does with a row longer than ``cutoff_len``, stage by stage:

- sft: keeps the first ``cutoff_len`` tokens (the loss mask with them);
- dpo, kto, orpo, simpo: keeps the prompt and the start of each answer; a
  prompt of ``cutoff_len`` tokens or more leaves no answer;
- rm: drops the pair;
- pt, packed: concatenates the texts and cuts blocks, nothing is lost.

Reasons a row is dropped (:data:`DROP_REASONS`):

>>> sorted(DROP_REASONS)
['answer_past_cutoff_len', 'longer_than_cutoff_len', 'no_trained_token', 'past_last_block', 'prompt_fills_cutoff_len', 'template_error']
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from trainer_plugin.encode import PACKING_GROUP, common_prefix, encode_pt, encode_row, pack_sft, render_ids

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

DROP_REASONS = {
    "prompt_fills_cutoff_len": "the prompt alone fills cutoff_len, no answer token is left",
    "answer_past_cutoff_len": "every trained token lies past cutoff_len",
    "longer_than_cutoff_len": "longer than cutoff_len, which the reward trainer drops",
    "no_trained_token": "the chat template puts no token of the answer in the loss",
    "template_error": "the chat template fails on it",
    "past_last_block": "all its tokens fall in the remainder after the last full block, which packing drops",
}
TRUNCATIONS = {
    "llamafactory": "LLaMA-Factory's: cutoff_len shared between prompt and answer, turn by turn; rows are kept",
    "trl": "TRL's: the first cutoff_len tokens; rows left with nothing to train are dropped",
}
PAIR_STAGES = ("dpo", "orpo", "simpo")
EOS_APPENDING_STAGES = ("orpo", "simpo")  # TRL's experimental trainers: text rows, EOS appended when missing
_COLUMNS = ("_fit_length", "_fit_trained", "_fit_trained_full", "_fit_drop", "_fit_truncated")
MIN_ROWS_PER_PROCESS = 2_000


def _id_features():
    from datasets import Features, Sequence, Value

    return Features({"input_ids": Sequence(Value("int64"))})


@dataclass
class FitReport:
    """What ``cutoff_len`` does to the training rows, counted over every row."""

    cutoff_len: int
    rows: int = 0  # rows given
    trained: int = 0  # rows left for the trainer
    truncated: int = 0  # of those, rows cut at cutoff_len
    packed: bool = False  # texts are packed into blocks
    truncation: str = "trl"  # how rows fit cutoff_len (TRUNCATIONS)
    sequences: int | None = None  # packed blocks the trainer gets (llamafactory truncation, packed pt)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    trained_tokens: int = 0  # tokens in the loss of the rows left, after truncation
    trained_tokens_lost: int = 0  # tokens in the loss that truncation cuts off (rows left and dropped)
    first_error: str | None = None  # the first template error, to show

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stop_ids(tokenizer: Any) -> frozenset[int]:
    """The ids that end an answer: EOS, and the end-of-turn token of fmtkit's templates when the vocabulary has it."""
    from fmtkit.templates import TEMPLATES

    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    ids |= {vocab[f.stop_token] for f in TEMPLATES.values() if f.stop_token in vocab}
    return frozenset(ids)


def measure_row(
    row: dict[str, Any], tokenizer: Any, stage: str, cutoff: int, assistant_only: bool, packed: bool, stops: frozenset = frozenset()
) -> dict:
    """The fit of one TRL row: ``_fit_length`` (tokens; the longer answer for pairs), ``_fit_trained``
    (tokens in the loss after truncation), ``_fit_trained_full`` (before) and ``_fit_drop`` ("" or a reason)."""
    try:
        return _measure(row, tokenizer, stage, cutoff, assistant_only, packed, stops)
    except Exception as exc:  # noqa: BLE001 - a template that fails on a row is reported, not a crash
        return {"_fit_length": 0, "_fit_trained": 0, "_fit_trained_full": 0, "_fit_drop": f"template_error:{exc}"}


def _measure(
    row: dict[str, Any], tokenizer: Any, stage: str, cutoff: int, assistant_only: bool, packed: bool, stops: frozenset
) -> dict:
    def out(length: int, trained: int, full: int, drop: str = "") -> dict:
        return {"_fit_length": length, "_fit_trained": trained, "_fit_trained_full": full, "_fit_drop": drop}

    tools = row.get("tools") if stage not in EOS_APPENDING_STAGES else None  # TRL's ORPO / CPO render no tools
    kwargs: dict[str, Any] = {"tools": json.loads(tools) if isinstance(tools, str) else tools}
    kwargs.update(row.get("chat_template_kwargs") or {})
    if stage == "pt":
        ids = tokenizer(row["text"])["input_ids"]
        n = len(ids) + (0 if ids and ids[-1] == tokenizer.eos_token_id else 1)  # TRL appends EOS
        kept = n if packed else min(n, cutoff)
        return out(n, kept, n)
    if stage == "sft":
        done = render_ids(tokenizer, row["messages"], kwargs, return_assistant_tokens_mask=assistant_only)
        ids = done["input_ids"]
        mask = done["assistant_masks"] if assistant_only else [1] * len(ids)
        full = sum(mask)
        kept = sum(mask[:cutoff])  # packed or not: SFT's packing (best fit) truncates too
        if not full:
            return out(len(ids), 0, 0, "no_trained_token")
        return out(len(ids), kept, full, "" if kept else "answer_past_cutoff_len")
    if stage == "rm":
        lengths = [len(render_ids(tokenizer, row["prompt"] + row[k], kwargs)["input_ids"]) for k in ("chosen", "rejected")]
        n = max(lengths)
        return out(n, 0 if n > cutoff else sum(lengths), sum(lengths), "longer_than_cutoff_len" if n > cutoff else "")
    # Prompt and answer(s): the answer starts where the prompt and prompt + answer part (TRL's rule).
    prompt = render_ids(tokenizer, row["prompt"], kwargs, add_generation_prompt=True)["input_ids"]
    answers = ("chosen", "rejected") if stage in PAIR_STAGES else ("completion",)
    fulls = [render_ids(tokenizer, row["prompt"] + row[k], kwargs)["input_ids"] for k in answers]
    start = min(common_prefix(prompt, ids) for ids in fulls)
    lengths = [len(ids) - start for ids in fulls]
    if stage in EOS_APPENDING_STAGES:  # TRL appends EOS to an answer without a stop token of its own
        lengths = [n + (not stops.intersection(ids[start:])) for n, ids in zip(lengths, fulls, strict=True)]
    room = max(0, cutoff - start)
    kept = sum(min(n, room) for n in lengths)
    if not all(lengths):
        return out(start + max(lengths), 0, sum(lengths), "no_trained_token")
    return out(start + max(lengths), kept, sum(lengths), "" if start < cutoff else "prompt_fills_cutoff_len")


def fit_rows(
    dataset: Dataset, tokenizer: Any, stage: str, cutoff: int, assistant_only: bool, packed: bool, jobs: int = 1
) -> tuple[Dataset, FitReport]:
    """Measure every row (:func:`measure_row`), drop those that would train on nothing; the rows left and the counts."""
    report = FitReport(cutoff_len=cutoff, rows=len(dataset), packed=packed, truncation="trl")
    if not len(dataset):
        return dataset, report
    num_proc = min(jobs, len(dataset) // MIN_ROWS_PER_PROCESS) or None
    measured = dataset.map(
        measure_row,
        fn_kwargs=dict(
            tokenizer=tokenizer,
            stage=stage,
            cutoff=cutoff,
            assistant_only=assistant_only,
            packed=packed,
            stops=stop_ids(tokenizer) if stage in EOS_APPENDING_STAGES else frozenset(),
        ),
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        load_from_cache_file=False,
        new_fingerprint=f"fmtkit-fit-{uuid.uuid4().hex}",  # not a hash of the tokenizer: slow, and nothing to reuse
    )
    truncated = None if packed else [n > cutoff for n in measured["_fit_length"]]
    keep = _count(measured, report, truncated)
    kept = dataset if len(keep) == len(dataset) else dataset.select(keep)
    return kept, report


def _count(measured: Dataset, report: FitReport, truncated: list[bool] | None) -> list[int]:
    """Fill ``report`` from the ``_fit_*`` columns of the measured rows; the indices of the rows kept."""
    drops = measured["_fit_drop"]
    reasons: Counter[str] = Counter()
    for drop in drops:
        if drop:
            reason, _, why = drop.partition(":")
            reasons[reason] += 1
            if why and report.first_error is None:
                report.first_error = why
    trained, full = measured["_fit_trained"], measured["_fit_trained_full"]
    keep = [i for i, drop in enumerate(drops) if not drop]
    report.dropped = {reason: reasons[reason] for reason in DROP_REASONS if reasons[reason]}
    report.trained = len(keep)
    report.truncated = sum(1 for i in keep if truncated[i]) if truncated is not None else 0
    report.trained_tokens = sum(trained[i] for i in keep)
    report.trained_tokens_lost = sum(f - t for f, t, d in zip(full, trained, drops, strict=True) if not d.startswith("template"))
    return keep


def encode_rows(
    dataset: Dataset,
    tokenizer: Any,
    stage: str,
    cutoff: int,
    train_on_prompt: bool,
    packed: bool,
    template: str | None = None,
    group: int = PACKING_GROUP,
    jobs: int = 1,
) -> tuple[Dataset, FitReport]:
    """Tokenize and cut every row as LLaMA-Factory does (:mod:`trainer_plugin.encode`); the trainer's token-id rows and the counts.

    Rows that would train on nothing are dropped and counted. Packed pretraining texts become
    blocks of ``cutoff`` tokens, packed sft rows blocks of ``cutoff + 1`` (:func:`~trainer_plugin.encode.pack_sft`)
    (``report.sequences``); the counts stay per text or row.
    """
    from datasets import Dataset

    report = FitReport(cutoff_len=cutoff, rows=len(dataset), packed=packed, truncation="llamafactory")
    if not len(dataset):
        return dataset, report
    if stage == "pt":
        fits, rows = encode_pt(dataset["text"], tokenizer, cutoff, packed, template, group)
        measured = Dataset.from_list(fits)
        keep = _count(measured, report, measured["_fit_truncated"])
        if packed:
            report.sequences = len(rows)
        else:
            rows = [rows[i] for i in keep]
        return Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows]}, features=_id_features()), report
    num_proc = min(jobs, len(dataset) // MIN_ROWS_PER_PROCESS) or None
    measured = dataset.map(
        encode_row,
        fn_kwargs=dict(tokenizer=tokenizer, stage=stage, cutoff=cutoff, train_on_prompt=train_on_prompt),
        remove_columns=dataset.column_names,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        load_from_cache_file=False,
        new_fingerprint=f"fmtkit-encode-{uuid.uuid4().hex}",
    )
    keep = _count(measured, report, measured["_fit_truncated"])
    kept = measured if len(keep) == len(measured) else measured.select(keep)
    kept = kept.remove_columns(list(_COLUMNS))
    if stage == "sft" and packed:  # LLaMA-Factory's packing; its groups are of the rows given, dropped ones included
        blocks = pack_sft(kept.to_list(), [i // group for i in keep], cutoff, tokenizer.pad_token_id)
        report.sequences = len(blocks)
        return Dataset.from_list(blocks), report
    return kept, report

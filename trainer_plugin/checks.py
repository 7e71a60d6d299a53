"""The data check before training: what ``cutoff_len`` does to each row, rows with nothing to train, template problems.

Run after the tokenizer and its chat template are resolved and before the
model loads. Every training row is measured as the stage's trainer tokenizes
it (:mod:`trainer_plugin.fit`): rows that would train on nothing are dropped
and counted by reason, rows cut at ``cutoff_len`` are counted, and the figures
are printed and saved in ``train_summary.json`` (``data_warnings``). Template
problems (the end-of-turn token outside the loss, markers that cover nothing)
come from the first sample of each dataset, with :func:`fmtkit.stats.mask_problems`
(the same code as ``fmtkit render``).

Warnings never stop a run, with one exception: when *no* row is left to train
(a template without generation markers under assistant-only loss, or every
answer cut off by ``cutoff_len``), :class:`AllMaskedError` stops it (exit 1)
before the model loads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.sample import Sample
from fmtkit.templates import TEMPLATES
from trainer_plugin.config import TrainConfig
from trainer_plugin.data import with_kl_answers
from trainer_plugin.fit import DROP_REASONS, FitReport, encode_rows, fit_rows
from trainer_plugin.stages import Stage

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

NO_MARKERS = (
    "the chat template has no {% generation %} markers, which training on the assistant's tokens only needs"
)
REMEDY = (
    f"set `template:` to one of fmtkit's ({', '.join(TEMPLATES)}), "
    "add {% generation %}...{% endgeneration %} around each answer (and its end-of-turn token) in your template, "
    "or set `train_on_prompt: true`"
)


class AllMaskedError(FmtkitError):
    """No training row has a token to train: the run would learn nothing."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=EXIT_FINDINGS)


def assistant_only(config: TrainConfig, stage: Stage) -> bool:
    """Whether the loss covers the assistant's tokens only, masked by the template's generation markers."""
    return stage.name == "sft" and not config.train_on_prompt


def _with_default_system(samples: list[Sample], default_system: str | None) -> list[Sample]:
    if not default_system:
        return samples
    return [replace(s, system=default_system) if not s.system and s.text is None else s for s in samples]


def _jobs() -> int:
    from fmtkit.workers import available_cores

    # Under a launcher every process runs the check: share the cores between them.
    return max(1, available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def lf_cutoff(config: TrainConfig, stage: Stage) -> int:
    """The ``cutoff_len`` LLaMA-Factory cuts with: one less when the config sets ``packing: true`` itself (its own rule)."""
    return config.cutoff_len - 1 if config.packing is True and stage.name in ("pt", "sft") else config.cutoff_len


def fit_dataset(config: TrainConfig, stage: Stage, tokenizer: Any, dataset: Dataset) -> tuple[Dataset, FitReport]:
    """The run's rows fitted to ``cutoff_len`` by its ``truncation`` (``tokenizer`` carries the loss template):
    :func:`~trainer_plugin.fit.encode_rows` (token ids) or :func:`~trainer_plugin.fit.fit_rows` (chat rows)."""
    packed = stage.name == "pt" and config.use_packing
    if config.truncation == "llamafactory":
        if stage.name == "kto" and config.resolved_kto_kl_pairs == "llamafactory" and "kl_completion" not in dataset.column_names:
            dataset = with_kl_answers(dataset, config.preprocessing_batch_size)  # rows made in memory
        packed = packed or (stage.name == "sft" and config.use_packing and config.resolved_sft_packing == "llamafactory")
        return encode_rows(
            dataset, tokenizer, stage.name, lf_cutoff(config, stage), config.train_on_prompt, packed,
            template=config.template, group=config.preprocessing_batch_size, jobs=_jobs(),
        )  # fmt: skip
    return fit_rows(
        dataset, tokenizer, stage.name, config.cutoff_len, assistant_only(config, stage), packed, jobs=_jobs()
    )


def check_data(
    config: TrainConfig,
    stage: Stage,
    tokenizer: Any,
    loss_template: str | None,
    first_samples: dict[str, list[Sample]] | None,
    train_dataset: Dataset,
    echo: Callable[[str], None],
) -> tuple[Dataset, dict[str, Any]]:
    """Measure every training row, drop those with nothing to train; print and return the rows left and the ``data_warnings``.

    ``loss_template`` is the chat template the loss is masked with (None: assistant-only
    loss has no markers to mask with); ``first_samples`` a few samples of each training
    dataset for the template check (None: rows made in memory, not checked for template problems).
    Raises :class:`AllMaskedError` when no row is left.
    """
    only_assistant = assistant_only(config, stage)
    cutoff = config.cutoff_len
    if stage.name == "pt" and config.use_packing:
        effect = "packed"  # texts are concatenated and cut into blocks
    elif config.truncation == "llamafactory":
        effect = "truncated"  # prompt and answer share cutoff_len (trainer_plugin.encode)
    elif stage.name == "rm":
        effect = "dropped"  # TRL's RewardTrainer filters out pairs longer than max_length
    else:
        effect = "truncated"  # TRL keeps the first max_length tokens (preference stages: the prompt, then the answer)
    if only_assistant and loss_template is None:
        # Assistant-only loss would mask every token of every sample: nothing to count.
        raise AllMaskedError(
            f"every training sample is all-masked: {NO_MARKERS} ({config.template or config.model_name_or_path}), "
            f"so the loss would cover no token and training would learn nothing; {REMEDY}"
        )
    saved = tokenizer.chat_template
    problems: dict[str, list[str]] = {}
    try:
        if loss_template is not None:
            tokenizer.chat_template = loss_template  # e.g. TRL's training version of the model's template
        kept, fit = fit_dataset(config, stage, tokenizer, train_dataset)
        if only_assistant and first_samples:
            from fmtkit.stats import mask_problems

            for name, part in first_samples.items():
                if part and (found := mask_problems(tokenizer, _with_default_system(part[:1], config.default_system)[0])):
                    problems[name] = found
    finally:
        tokenizer.chat_template = saved
    warnings_: dict[str, Any] = {
        "samples_total": fit.rows,
        "samples_trained": fit.trained,
        "samples_truncated": fit.truncated,
        "samples_dropped": fit.dropped,
        "cutoff_len": cutoff,
        "truncation": config.truncation,
        "over_cutoff_effect": effect,
        "supervised_tokens": fit.trained_tokens,
        "supervised_tokens_lost": fit.trained_tokens_lost,
        "template_problems": problems,
        **({"packed_sequences": fit.sequences} if fit.sequences is not None else {}),
        "render_errors": fit.dropped.get("template_error", 0),
    }

    lines: list[str] = []
    total = fit.rows
    if fit.truncated:
        lines.append(
            f"warning: {fit.truncated:,} of {total:,} samples ({100 * fit.truncated / total:.1f}%) exceed cutoff_len {cutoff} "
            f"and are truncated: {fit.trained_tokens_lost:,} trained tokens are cut off"
        )
    for reason, n in fit.dropped.items():
        why = DROP_REASONS[reason] + (f" ({fit.first_error})" if reason == "template_error" and fit.first_error else "")
        lines.append(f"warning: {n:,} of {total:,} samples dropped, training on nothing: {why}")
    for name, found in problems.items():
        lines.extend(f"warning: {name}: {problem}" for problem in found)
    if lines:
        verdict = f"{fit.trained:,} to train, {len(lines)} warning{'s' if len(lines) > 1 else ''}"
    elif effect == "packed":
        verdict = f"texts are packed into blocks of cutoff_len {cutoff}" + (
            f" ({fit.sequences:,} blocks)" if fit.sequences is not None else ", nothing is cut"
        )
    else:
        verdict = f"none over cutoff_len {cutoff}, every sample has tokens to train"
    echo(f"data check ({total:,} training samples, in tokens as the trainer renders them): {verdict}")
    for line in lines:
        echo(line)
    if not fit.trained and set(fit.dropped) == {"past_last_block"}:
        raise AllMaskedError(
            f"the texts together fill no block of cutoff_len {cutoff} tokens, and packing drops what is left after the "
            "last block: training would learn nothing; lower cutoff_len or add text"
        )
    if not fit.trained:
        reasons = "; ".join(f"{n:,} {DROP_REASONS[r]}" for r, n in fit.dropped.items())
        raise AllMaskedError(
            f"every training sample is dropped ({reasons}): training would learn nothing; "
            "raise cutoff_len or shorten the samples" + (", or set `train_on_prompt: true`" if only_assistant else "")
        )
    return kept, warnings_

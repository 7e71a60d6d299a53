"""Warnings before training: what ``cutoff_len`` cuts, samples with nothing to train, template problems.

Run after the tokenizer and its chat template are resolved and before the
model loads, on the training samples (the first :data:`CHECK_CAP` of them,
shared out between the datasets in proportion to their sizes). The figures
come from :mod:`fmtkit.stats` (``length_report`` and ``mask_problems``, the
same code as ``fmtkit stats`` and ``fmtkit render``), so they agree with what
those commands say about the data.

Warnings never stop a run, with one exception: when *every* sample would have
every trained token masked (a template without generation markers under
assistant-only loss, or answers cut off by ``cutoff_len`` in every sample),
training would learn nothing, and :class:`AllMaskedError` stops it (exit 1).

>>> from fmtkit.sample import Sample
>>> parts = capped({"a": [Sample(text="x")] * 30, "b": [Sample(text="y")] * 10}, cap=8)
>>> {name: len(samples) for name, samples in parts.items()}
{'a': 6, 'b': 2}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.sample import Sample
from fmtkit.templates import TEMPLATES
from trainer_plugin.config import TrainConfig
from trainer_plugin.stages import Stage

CHECK_CAP = 20_000

NO_MARKERS = (
    "the chat template has no {% generation %} markers, which training on the assistant's tokens only needs"
)
REMEDY = (
    f"set `template:` to one of fmtkit's ({', '.join(TEMPLATES)}), "
    "add {% generation %}...{% endgeneration %} around each answer (and its end-of-turn token) in your template, "
    "or set `train_on_prompt: true`"
)


class AllMaskedError(FmtkitError):
    """Every training sample would have every trained token masked: the run would learn nothing."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=EXIT_FINDINGS)


def capped(samples_by_entry: dict[str, list[Sample]], cap: int | None = None) -> dict[str, list[Sample]]:
    """The first samples of each entry, ``cap`` (default :data:`CHECK_CAP`) in all, in proportion to each entry's size."""
    cap = CHECK_CAP if cap is None else cap
    total = sum(len(samples) for samples in samples_by_entry.values())
    if total <= cap:
        return dict(samples_by_entry)
    shares = {name: max(1, cap * len(samples) // total) for name, samples in samples_by_entry.items()}
    for name in list(shares)[: max(0, cap - sum(shares.values()))]:  # what rounding down left over
        shares[name] = min(shares[name] + 1, len(samples_by_entry[name]))
    return {name: samples[: shares[name]] for name, samples in samples_by_entry.items()}


def _samples(n: int) -> str:
    return "1 sample is" if n == 1 else f"{n:,} samples are"


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


def check_data(
    config: TrainConfig,
    stage: Stage,
    tokenizer: Any,
    loss_template: str | None,
    samples_by_entry: dict[str, list[Sample]] | None,
    train_samples: int,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Compute, print and return the ``data_warnings`` of a run; raise :class:`AllMaskedError` when nothing would train.

    ``loss_template`` is the chat template the loss is masked with (None: assistant-only
    loss has no markers to mask with); ``samples_by_entry`` the first training samples of
    each dataset, already :func:`capped` (None: rows made in memory, only the template is
    checked); ``train_samples`` how many samples the training datasets have in all.
    """
    only_assistant = assistant_only(config, stage)
    cutoff = config.cutoff_len
    if stage.name == "pt" and config.use_packing:
        effect = "packed"  # texts are concatenated and cut into blocks: nothing is lost
    elif stage.name == "rm":
        effect = "dropped"  # TRL's RewardTrainer filters out pairs longer than max_length
    else:
        effect = "truncated"  # TRL keeps the first max_length tokens
    warnings_: dict[str, Any] = {
        "samples_checked": 0,
        "samples_total": train_samples,
        "capped": False,
        "cutoff_len": cutoff,
        "over_cutoff": None,
        "over_cutoff_effect": effect,
        "supervised_tokens_lost": None,
        "all_masked": None,
        "template_problems": {},
        "render_errors": 0,
    }
    if only_assistant and loss_template is None:
        # Assistant-only loss would mask every token of every sample: nothing to count.
        raise AllMaskedError(
            f"every training sample is all-masked: {NO_MARKERS} ({config.template or config.model_name_or_path}), "
            f"so the loss would cover no token and training would learn nothing; {REMEDY}"
        )
    if not samples_by_entry:
        return warnings_

    from fmtkit.stats import length_report, mask_problems

    parts = samples_by_entry
    samples = [s for part in parts.values() for s in _with_default_system(part, config.default_system)]
    checked = len(samples)
    total = max(train_samples, checked)
    warnings_.update(samples_checked=checked, capped=checked < total)
    saved = tokenizer.chat_template
    try:
        if loss_template is not None:
            tokenizer.chat_template = loss_template  # e.g. TRL's training version of the model's template
        report = length_report(samples, tokenizer, cutoff, jobs=_jobs(), keep_lengths=not only_assistant)
        problems: dict[str, list[str]] = {}
        if only_assistant:
            for name, part in parts.items():
                if part and (found := mask_problems(tokenizer, _with_default_system(part[:1], config.default_system)[0])):
                    problems[name] = found
    finally:
        tokenizer.chat_template = saved
    over = report["over_cutoff"] or 0
    if effect == "packed":
        lost = 0
    elif only_assistant or stage.name != "sft":
        lost = report["supervised_lost"] or 0
    else:  # train_on_prompt: every token is trained, so every token past the cutoff is lost
        lost = sum(max(0, n - cutoff) for n in report["lengths"])
    if effect == "dropped":
        all_masked = over  # a dropped pair trains nothing
    elif effect == "packed" or (stage.name == "sft" and not only_assistant):
        all_masked = 0  # every token is trained (packed text, or train_on_prompt)
    else:
        all_masked = (report["all_supervised_lost"] or 0) + report["no_supervised"]
    warnings_.update(
        over_cutoff=over,
        supervised_tokens_lost=lost,
        all_masked=all_masked,
        template_problems=problems,
        render_errors=report["render_errors"],
    )

    lines: list[str] = []
    scope = f"{checked:,} training samples" if checked == total else f"the first {checked:,} of {total:,} training samples"
    share = f"{100 * over / checked:.1f}%" if checked else "0%"
    if over and effect == "truncated":
        lines.append(
            f"warning: {over:,} of {checked:,} samples ({share}) exceed cutoff_len {cutoff}: "
            f"{lost:,} trained tokens are cut off"
        )
    elif over and effect == "dropped":
        lines.append(
            f"warning: {over:,} of {checked:,} samples ({share}) exceed cutoff_len {cutoff}: the reward trainer drops them"
        )
    if all_masked and effect == "truncated":
        lines.append(
            f"warning: {_samples(all_masked)} all-masked, training on nothing (the answer lies past "
            "cutoff_len, or the loss covers none of its tokens)"
        )
    for name, found in problems.items():
        lines.extend(f"warning: {name}: {problem}" for problem in found)
    if report["render_errors"]:
        index, why = report["first_render_error"]
        lines.append(f"warning: the chat template fails on {report['render_errors']:,} sample(s) (sample {index}: {why})")
    if lines:
        verdict = f"{len(lines)} warning{'s' if len(lines) > 1 else ''}"
    elif effect == "packed":
        verdict = f"texts are packed into blocks of cutoff_len {cutoff}, nothing is cut"
    else:
        verdict = f"none over cutoff_len {cutoff}, every sample has tokens to train"
    echo(f"data check ({scope}, in tokens as the trainer renders them): {verdict}")
    for line in lines:
        echo(line)
    if checked and all_masked == checked:
        if checked == total:
            why = (
                f"longer than cutoff_len {cutoff}, and the reward trainer drops such pairs"
                if effect == "dropped"
                else f"its answer lies past cutoff_len {cutoff}, or no token is in the loss"
            )
            raise AllMaskedError(
                f"every training sample is all-masked ({why}): training would learn nothing; "
                "raise cutoff_len or shorten the samples" + (", or set `train_on_prompt: true`" if only_assistant else "")
            )
        echo(f"warning: every one of the {checked:,} samples checked is all-masked: training may learn nothing")
    return warnings_

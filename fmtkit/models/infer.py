"""Answers for every prompt of a dataset, written as JSON Lines.

Each output line is one record of the dataset that has a prompt::

    {"prompt": [{"role": "user", "content": "Hi"}], "reference": "Hello", "prediction": "...", "new_tokens": 12}

``prompt`` holds the chat messages given to the model (system prompt first),
``reference`` the dataset's answer (the chosen one for preference data; null
when the dataset has none), ``prediction`` the model's answer and
``new_tokens`` how many tokens it took (equal to ``--max-new-tokens`` when the
answer was cut). Records without a prompt (pretraining text) are skipped and
counted. With a vision-language model, the images of each record (its
``images`` column, relative to the dataset folder) go with its prompt; with a
text model, or for videos and audios, records with media are counted as
media the model did not see. The file appears only when complete: it is written next to its
destination under a temporary name, then renamed.

::

    summary = infer_dataset(load_model("models/Qwen3-0.6B"), fmtkit.read("data.jsonl"), "out.jsonl")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtkit.errors import EXIT_FINDINGS, EXIT_USAGE, FmtkitError
from fmtkit.models.generate import Generation, GenerationSettings, Message, generate, prompt_messages, reference_answer
from fmtkit.sample import MEDIA_KINDS, Sample
from fmtkit.writing import write_lines


@dataclass(frozen=True)
class Prompt:
    """What one output record is made from."""

    messages: list[Message]
    reference: str | None
    tools: list[Any] | None = None
    images: list[str] = field(default_factory=list)  # files, for a vision-language model


@dataclass
class InferenceSummary:
    """What a run did: records written, records skipped (no prompt), prompts with media the model did not see."""

    output: Path
    written: int = 0
    skipped: int = 0
    with_media: int = 0
    new_tokens: int = 0
    cut: int = 0  # answers that reached max_new_tokens without a stop token


def collect_prompts(
    samples: Iterable[Sample], summary: InferenceSummary | None = None, image_dir: str | Path | None = None
) -> list[Prompt]:
    """The prompts of the samples that have one, in order; the others are counted in ``summary``.

    ``image_dir``: the folder image paths are relative to, when the model sees images (else they are not read).
    """
    prompts = []
    for sample in samples:
        messages = prompt_messages(sample)
        if not messages or messages[-1]["role"] == "system":
            if summary is not None:
                summary.skipped += 1
            continue
        seen = ("images",) if image_dir is not None else ()
        if summary is not None and any(sample.media(kind) for kind in MEDIA_KINDS if kind not in seen):
            summary.with_media += 1
        images = [str(Path(image_dir) / path) for path in sample.images] if image_dir is not None else []
        prompts.append(Prompt(messages, reference_answer(sample), sample.tools or None, images))
    return prompts


def infer_dataset(
    loaded: Any,
    samples: Iterable[Sample],
    output: str | Path,
    settings: GenerationSettings | None = None,
    *,
    batch_size: int = 8,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    image_dir: str | Path | None = None,
) -> InferenceSummary:
    """Generate an answer for every prompt of ``samples`` and write the records to ``output``.

    ``on_start(total)`` is called once the prompts are read, ``on_progress(n)``
    after each batch with the number of prompts it answered. Prompts are
    batched by length (less padding); the output keeps the dataset's order.
    ``image_dir``: where the samples' image paths resolve, for a vision-language model (see :func:`collect_prompts`).
    """
    settings = settings or GenerationSettings()
    settings.check()
    if batch_size < 1:
        raise FmtkitError("--batch-size must be at least 1", EXIT_USAGE)
    output = Path(output)
    if output.is_dir():
        raise FmtkitError(f"-o {output}: is a folder; give a file name such as {output / 'predictions.jsonl'}", EXIT_USAGE)
    summary = InferenceSummary(output=output)
    prompts = collect_prompts(samples, summary, image_dir if loaded.processor is not None else None)
    if not prompts:
        raise FmtkitError("the dataset has no prompt to answer", EXIT_FINDINGS)
    if on_start is not None:
        on_start(len(prompts))

    tokenizer = loaded.tokenizer
    lengths = [len(tokenizer(_flat(p), add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    answers: list[Generation | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        results = generate(
            loaded,
            [prompts[i].messages for i in chunk],
            settings,
            [prompts[i].tools for i in chunk],
            [prompts[i].images for i in chunk],
        )
        for i, result in zip(chunk, results, strict=True):
            answers[i] = result
        if on_progress is not None:
            on_progress(len(chunk))

    def lines() -> Iterable[str]:
        for prompt, answer in zip(prompts, answers, strict=True):
            assert answer is not None
            summary.written += 1
            summary.new_tokens += answer.tokens
            summary.cut += not answer.stopped
            record = {"prompt": prompt.messages, "reference": prompt.reference, "prediction": answer.text,
                      "new_tokens": answer.tokens}  # fmt: skip
            if prompt.images:
                record["images"] = prompt.images
            yield json.dumps(record, ensure_ascii=False) + "\n"

    write_lines(output, lines())
    return summary


def _flat(prompt: Prompt) -> str:
    # Only to sort prompts by length: the text of the messages is close enough.
    return "\n".join(str(m.get("content") or "") for m in prompt.messages)

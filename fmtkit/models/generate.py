"""Generation through the tokenizer's chat template: prompts from samples, batches, streams.

A prompt is a list of chat messages in the OpenAI form that chat templates
take (``{"role": ..., "content": ...}``, with ``tool_calls`` on assistant
messages). :func:`prompt_messages` builds it from a
:class:`~fmtkit.sample.Sample`: the system prompt, then every turn before the
answer.

>>> from fmtkit.sample import Sample, Turn
>>> s = Sample(system="Be brief.", turns=[Turn("user", "Hi"), Turn("assistant", "Hello")])
>>> prompt_messages(s)
[{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]
>>> reference_answer(s)
'Hello'
>>> GenerationSettings().sampling, GenerationSettings(temperature=0.7).sampling
(False, True)

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fmtkit.errors import EXIT_USAGE, FmtkitError
from fmtkit.sample import Sample

Message = dict[str, Any]

# Sampling knobs of a generation_config that would contradict greedy decoding.
_SAMPLING_FIELDS = {"temperature": 1.0, "top_p": 1.0, "top_k": 50, "min_p": None, "typical_p": 1.0}


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate. Greedy unless ``do_sample``, a ``temperature`` above 0, or a ``top_p`` is given;
    ``temperature=0`` always means greedy.

    ``min_new_tokens`` forces answers of at least that length (tests use it to
    get an exact count from a model with random weights).
    """

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    min_new_tokens: int | None = None

    @property
    def sampling(self) -> bool:
        if self.temperature == 0:
            return False
        return self.do_sample or self.temperature is not None or self.top_p is not None

    def check(self) -> None:
        """Raise a usage error for values generate() would reject later, in the middle of a run."""
        if self.max_new_tokens < 1:
            raise FmtkitError("--max-new-tokens must be at least 1", EXIT_USAGE)
        if self.temperature is not None and self.temperature < 0:
            raise FmtkitError("--temperature must be 0 (greedy) or more", EXIT_USAGE)
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise FmtkitError("--top-p must be in (0, 1]", EXIT_USAGE)


@dataclass(frozen=True)
class Generation:
    """One answer: its text (special tokens removed) and how many tokens the model produced for it.

    ``tokens`` counts the stop token when the model produced one; ``stopped``
    says whether it did (False: cut at ``max_new_tokens``).
    """

    text: str
    tokens: int
    stopped: bool


def prompt_messages(sample: Sample) -> list[Message]:
    """The prompt of a sample as chat messages: system prompt, then the turns before the answer.

    Tool call arguments stay objects, as chat templates take them. Empty for a
    sample without a prompt (pretraining text).
    """
    from fmtkit.forms.openai import messages

    if sample.kind == "pretrain" or not sample.prompt_turns:
        return []
    # A turn's training weight means nothing to generation.
    return [{k: v for k, v in m.items() if k != "weight"} for m in messages(sample, sample.prompt_turns, False)]


def reference_answer(sample: Sample) -> str | None:
    """The answer the dataset gives, as text: the SFT/KTO answer or the chosen one; None for prompts only."""
    turn = sample.answer if sample.kind in ("sft", "kto") else sample.chosen
    if turn is None:
        return None
    if turn.content or not turn.tool_calls:
        return turn.content
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in turn.tool_calls], ensure_ascii=False)


def render_prompt(tokenizer: Any, messages: Sequence[Message], tools: list[Any] | None = None) -> str:
    """The text the model sees for ``messages``, ending where the assistant's answer starts."""
    if not getattr(tokenizer, "chat_template", None):
        raise FmtkitError(
            "this tokenizer has no chat template, so it cannot build chat prompts (is it a base model?)", EXIT_USAGE
        )
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
    if tools:
        kwargs["tools"] = tools
    return tokenizer.apply_chat_template(list(messages), **kwargs)


def generation_config(model: Any, tokenizer: Any, settings: GenerationSettings) -> Any:
    """The model's own generation config, with ``settings`` applied and nothing contradicting them."""
    import copy

    from transformers import GenerationConfig

    config = copy.deepcopy(getattr(model, "generation_config", None) or GenerationConfig())
    config.max_new_tokens = settings.max_new_tokens
    config.max_length = None
    config.min_new_tokens = settings.min_new_tokens
    config.do_sample = settings.sampling
    if settings.sampling:
        if settings.temperature is not None:
            config.temperature = settings.temperature
        if settings.top_p is not None:
            config.top_p = settings.top_p
    else:  # the checkpoint may ship sampling defaults (Qwen does): greedy means none of them
        for name, neutral in _SAMPLING_FIELDS.items():
            if hasattr(config, name):
                setattr(config, name, neutral)
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


def _stop_ids(config: Any) -> set[int]:
    eos = config.eos_token_id
    return set(eos) if isinstance(eos, (list, tuple)) else {eos} if eos is not None else set()


def _count(row: Sequence[int], stop: set[int]) -> tuple[int, bool]:
    """Tokens the model produced in a row of new tokens: up to and including the first stop token."""
    for i, token in enumerate(row):
        if token in stop:
            return i + 1, True
    return len(row), False


def encode_prompts(
    loaded: Any,
    prompts: Sequence[Sequence[Message]],
    tools: Sequence[list[Any] | None] | None = None,
    images: Sequence[Sequence[str]] | None = None,
) -> Any:
    """The left-padded model inputs of a batch of prompts; with a VLM's processor, ``images[i]`` (files) go with prompt i,
    one per ``<image>`` placeholder of its messages."""
    if loaded.processor is None:
        if images and any(images):
            raise FmtkitError(f"{loaded.name} is a text model: images need a vision-language model", EXIT_USAGE)
        texts = [render_prompt(loaded.tokenizer, p, tools[i] if tools else None) for i, p in enumerate(prompts)]
        return loaded.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
    from fmtkit.models.vision import chat_with_images, open_image

    per_prompt = [[open_image(path) for path in (images[i] if images else [])] for i in range(len(prompts))]
    texts = [
        render_prompt(loaded.processor, chat_with_images(list(p), per_prompt[i]), tools[i] if tools else None)
        for i, p in enumerate(prompts)
    ]
    flat = [image for row in per_prompt for image in row]
    batch = loaded.processor(text=texts, images=flat or None, return_tensors="pt", padding=True, add_special_tokens=False)
    return batch.to(loaded.device)


def generate(
    loaded: Any,
    prompts: Sequence[Sequence[Message]],
    settings: GenerationSettings,
    tools: Sequence[list[Any] | None] | None = None,
    images: Sequence[Sequence[str]] | None = None,
) -> list[Generation]:
    """Answers for a batch of prompts (one forward pass over the left-padded batch); ``images``: see :func:`encode_prompts`."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    batch = encode_prompts(loaded, prompts, tools, images)
    config = generation_config(model, tokenizer, settings)
    with torch.inference_mode():
        out = model.generate(**batch, generation_config=config)
    new = out[:, batch["input_ids"].shape[1] :].tolist()
    stop = _stop_ids(config)
    results = []
    for row in new:
        n, stopped = _count(row, stop)
        results.append(Generation(tokenizer.decode(row[:n], skip_special_tokens=True), n, stopped))
    return results


def stream(
    loaded: Any,
    messages: Sequence[Message],
    settings: GenerationSettings,
    on_text: Callable[[str], None],
    images: Sequence[str] = (),
) -> Generation:
    """One answer, passing its text to ``on_text`` piece by piece as the model writes it (``images``: the files of the
    conversation's ``<image>`` placeholders, in order)."""
    import torch
    from transformers import TextStreamer

    class _Callback(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_text(text)

    tokenizer, model = loaded.tokenizer, loaded.model
    batch = encode_prompts(loaded, [messages], images=[list(images)])
    config = generation_config(model, tokenizer, settings)
    streamer = _Callback(tokenizer, skip_prompt=True, skip_special_tokens=True)
    with torch.inference_mode():
        out = model.generate(**batch, generation_config=config, streamer=streamer)
    row = out[0, batch["input_ids"].shape[1] :].tolist()
    n, stopped = _count(row, _stop_ids(config))
    return Generation(tokenizer.decode(row[:n], skip_special_tokens=True), n, stopped)

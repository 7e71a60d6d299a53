"""A sample as the sequences a trainer tokenizes: chat messages for ``apply_chat_template``, or plain text.

An SFT or KTO sample is one sequence; a preference pair is two (prompt +
chosen, prompt + rejected); a prompt-only sample is its prompt followed by the
assistant header (``add_generation_prompt``), with nothing to train; a
pretraining sample is its text.

>>> from fmtkit.sample import Sample, Turn
>>> s = Sample(system="Be brief.", turns=[Turn("user", "Hi")], chosen=Turn("assistant", "Yo"), rejected=Turn("assistant", "No"))
>>> [q.messages[-1]["content"] for q in sequences(s)]
['Yo', 'No']
>>> sequences(s)[0].messages[0]
{'role': 'system', 'content': 'Be brief.'}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fmtkit.forms.openai import message, messages
from fmtkit.sample import Sample


@dataclass(slots=True)
class ChatSequence:
    """One sequence to render: ``messages`` (None for pretraining ``text``), ``tools``,
    ``generation_prompt`` (a prompt-only sample), ``prompt_len`` (how many leading
    messages are the prompt, for templates without generation markers) and
    ``think_in_history`` (SFT: every answer is trained, so Qwen3's template gives each
    an empty think block, as ``fmtkit train`` and LLaMA-Factory render it)."""

    messages: list[dict[str, Any]] | None
    tools: list[Any] | None = None
    generation_prompt: bool = False
    prompt_len: int = 0
    text: str | None = None
    think_in_history: bool = False

    @property
    def tools_key(self) -> str:
        """Sequences with equal keys can share one batched ``apply_chat_template`` call."""
        return "" if not self.tools else json.dumps(self.tools, sort_keys=True, default=str)


def sequences(sample: Sample) -> list[ChatSequence]:
    """The sequences a trainer builds from one sample (see the module docstring)."""
    if sample.text is not None:
        return [ChatSequence(None, text=sample.text)]
    if not sample.turns:
        return []
    # The OpenAI writer's messages, with tool call arguments as objects (as TRL and chat templates take them).
    msgs = messages(sample, sample.turns, arguments_as_text=False)
    kind = sample.kind
    if kind == "preference":
        return [
            ChatSequence(msgs + [message(answer, arguments_as_text=False)], sample.tools, prompt_len=len(msgs))
            for answer in (sample.chosen, sample.rejected)
            if answer is not None
        ]
    if kind == "prompt":
        return [ChatSequence(msgs, sample.tools, generation_prompt=True, prompt_len=len(msgs))]
    return [ChatSequence(msgs, sample.tools, prompt_len=len(msgs) - 1, think_in_history=kind == "sft")]

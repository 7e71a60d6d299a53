"""The canonical sample: the one model every form is read into and written from.

A reader turns one record of some form (Alpaca, ShareGPT, OpenAI, TRL, ...) into
a :class:`Sample`; a writer turns a :class:`Sample` back into a record of its own
form, or says what it cannot express. ``convert`` is read, then write.

>>> s = Sample(system="Be brief.", turns=[Turn("user", "Hi"), Turn("assistant", "Hello")])
>>> s.kind
'sft'
>>> s.prompt_turns[-1].content
'Hi'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant", "tool"]
Kind = Literal["sft", "pretrain", "preference", "kto", "prompt"]

MEDIA_KINDS = ("images", "videos", "audios")
PLACEHOLDERS = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}


@dataclass(slots=True)
class ToolCall:
    """One function call made by the assistant.

    ``arguments`` is the decoded JSON object (OpenAI stores it as a JSON string,
    ShareGPT's function_call as an object: readers decode, writers encode).

    >>> ToolCall("get_weather", {"city": "Paris"}).name
    'get_weather'
    """

    name: str
    arguments: Any = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True)
class Turn:
    """One message: ``user``, ``assistant`` (text and/or tool calls) or ``tool`` (a tool result).

    ShareGPT's ``observation`` is a ``tool`` turn; its ``function_call`` is an
    ``assistant`` turn whose ``tool_calls`` is set and whose content is empty.

    >>> Turn("assistant", tool_calls=[ToolCall("f", {})]).has_tool_calls
    True
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    weight: int | None = None  # OpenAI's per-message training weight (0 or 1)
    tool_call_id: str | None = None  # OpenAI's link from a tool result to its call
    # keys of the source message that no field above holds (OpenAI's ``name``,
    # ``reasoning_content``, ...): message-list forms write them back, others report them
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_tool_calls(self) -> bool:
        return bool(self.tool_calls)


@dataclass(slots=True)
class Sample:
    """One training example in fmtkit's canonical form.

    - ``turns``: the ordered conversation. For SFT and KTO it ends with the
      answer (an assistant turn); for preference and prompt-only samples it ends
      with the last user (or tool) turn, and the answers are ``chosen`` /
      ``rejected`` (preference) or absent (prompt-only).
    - ``text``: pretraining text (then ``turns`` is empty).
    - ``label``: the KTO label (True = desirable).
    - ``images`` / ``videos`` / ``audios``: media paths, in placeholder order.
    - ``extra``: fields of the source record that no part of the model holds;
      kept aside so that writers of the same form can carry them over.
    - ``hints``: how the source spelled the sample, changing nothing in its
      meaning (so not compared): Alpaca's instruction/input split (``"fmtkit:input"``,
      used by the Alpaca writer to restore it), and what the reader could not
      carry (``"fmtkit:dropped"``: ``(loss code, where)`` pairs every writer reports).
    """

    turns: list[Turn] = field(default_factory=list)
    system: str = ""
    tools: list[Any] | None = None
    chosen: Turn | None = None
    rejected: Turn | None = None
    label: bool | None = None
    text: str | None = None
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    audios: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> Kind:
        """What the sample is for: sft, pretrain, preference, kto or prompt."""
        if self.text is not None:
            return "pretrain"
        if self.chosen is not None or self.rejected is not None:
            return "preference"
        if self.label is not None:
            return "kto"
        if self.turns and self.turns[-1].role == "assistant":
            return "sft"
        return "prompt"

    @property
    def prompt_turns(self) -> list[Turn]:
        """The turns before the answer (all turns for preference and prompt-only samples)."""
        if self.kind in ("sft", "kto"):
            return self.turns[:-1]
        return self.turns

    @property
    def answer(self) -> Turn | None:
        """The final assistant turn of an SFT or KTO sample, else None."""
        if self.kind in ("sft", "kto"):
            return self.turns[-1]
        return None

    def media(self, kind: str) -> list[str]:
        """The media list of one kind: ``images``, ``videos`` or ``audios``."""
        return getattr(self, kind)

"""A conversation with a model that keeps its history.

::

    session = ChatSession(load_model("models/Qwen3-0.6B"), system="Be brief.")
    answer = session.send("Hello!", on_text=print)   # streams, then returns the Generation
    session.send("What is this?", images=["cat.png"]) # a vision-language model: the image goes before the text
    session.reset()                                   # back to the system prompt alone
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fmtkit.models.generate import Generation, GenerationSettings, Message, stream
from fmtkit.models.vision import IMAGE_PLACEHOLDER

COMMANDS = {"/reset": "forget the conversation", "/exit": "quit"}


class ChatSession:
    """The messages so far, and the model and settings that answer them."""

    def __init__(self, loaded: Any, settings: GenerationSettings | None = None, system: str | None = None):
        self.loaded = loaded
        self.settings = settings or GenerationSettings()
        self.system = system
        self.messages: list[Message] = []
        self.images: list[str] = []  # the files of the conversation's <image> placeholders, in order
        self.reset()

    def reset(self) -> None:
        """Forget every turn; keep the system prompt."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []
        self.images = []

    def send(self, text: str, on_text: Callable[[str], None] | None = None, images: Sequence[str] = ()) -> Generation:
        """Add a user message, generate the answer (streamed to ``on_text``), add it to the history.

        ``images``: files for the message's ``<image>`` placeholders; those it lacks go before its text.
        """
        missing = len(images) - text.count(IMAGE_PLACEHOLDER)
        self.messages.append({"role": "user", "content": IMAGE_PLACEHOLDER * max(0, missing) + text})
        self.images.extend(images)
        try:
            answer = stream(self.loaded, self.messages, self.settings, on_text or (lambda _: None), self.images)
        except BaseException:
            self.messages.pop()  # an interrupted answer leaves the history as it was
            del self.images[len(self.images) - len(images) :]
            raise
        self.messages.append({"role": "assistant", "content": answer.text})
        return answer

"""``fmtkit chat``: the terminal shell over :class:`fmtkit.models.chat.ChatSession`.

The model options and generation options are shared with ``fmtkit infer``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from fmtkit.errors import EXIT_USAGE, FmtkitError
from fmtkit.models.chat import COMMANDS, ChatSession
from fmtkit.models.generate import Generation, GenerationSettings
from fmtkit.models.loading import DTYPES, load_model
from fmtkit.report.terminal import printable


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """MODEL, --adapter, --dtype, --device, --trust-remote-code."""
    for option in reversed([
        click.argument("model", required=False),
        click.option("--adapter", type=click.Path(file_okay=False),
                     help="A LoRA adapter folder to put on MODEL; alone, its adapter_config.json names the base."),
        click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
                     help="Weights dtype (auto: the checkpoint's)."),
        click.option("--device", help="cpu, cuda, cuda:1, mps... (default: cuda when available, with device_map=auto)."),
        click.option("--trust-remote-code", is_flag=True,
                     help="Run the model repository's own Python code (only if you trust it)."),
    ]):  # fmt: skip
        command = option(command)
    return command


def generation_options(max_new_tokens: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--max-new-tokens, --temperature, --top-p, --do-sample."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed([
            click.option("--max-new-tokens", type=click.IntRange(1), default=max_new_tokens, show_default=True,
                         help="Longest answer, in tokens."),
            click.option("--temperature", type=click.FloatRange(0), help="Sample at this temperature (0: greedy)."),
            click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Sample from this probability mass."),
            click.option("--do-sample", is_flag=True, help="Sample with the model's defaults (else greedy)."),
        ]):  # fmt: skip
            command = option(command)
        return command

    return decorate


def settings_from(
    max_new_tokens: int, temperature: float | None, top_p: float | None, do_sample: bool
) -> GenerationSettings:
    """The generation options as settings, checked."""
    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_p=top_p)
    settings.check()
    return settings


@click.command("chat")
@model_options
@generation_options(max_new_tokens=512)
@click.option("--system", help="System prompt.")
@click.option("--image", "images", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An image for the first message (repeatable; a vision-language model). The message's <image> "
                   "placeholders mark where; without them the images go first.")  # fmt: skip
def chat(
    model: str | None,
    adapter: str | None,
    dtype: str,
    device: str | None,
    trust_remote_code: bool,
    max_new_tokens: int,
    temperature: float | None,
    top_p: float | None,
    do_sample: bool,
    system: str | None,
    images: tuple[str, ...],
) -> None:
    """Chat with MODEL (a folder or hub id), or with a trained --adapter.

    Answers stream as they are written and the conversation is kept:
    /reset forgets it, /exit quits. With stdin piped, each line is one message
    and each answer is printed on stdout (token counts go to stderr).

    \b
    Examples:
      fmtkit chat models/Qwen3-0.6B
      fmtkit chat --adapter outputs/sft-lora
      printf 'Hi\\nWhat is 2+2?\\n' | fmtkit chat models/Qwen3-0.6B
      fmtkit chat models/Qwen2-VL-2B-Instruct --image cat.png
    """
    settings = settings_from(max_new_tokens, temperature, top_p, do_sample)
    loaded = load_model(model, adapter, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    if images and loaded.processor is None:
        raise FmtkitError(f"--image: {loaded.name} is a text model; images need a vision-language model (e.g. Qwen2-VL)", EXIT_USAGE)
    session = ChatSession(loaded, settings, system=system)
    pending = list(images)  # for the first message
    interactive = sys.stdin.isatty()
    if interactive:
        help_text = ", ".join(f"{name} {what}" for name, what in COMMANDS.items())
        click.echo(f"Chatting with {loaded.name} on {loaded.device}. {help_text}.", err=True)
    for text in _messages(interactive):
        if text == "/exit":
            break
        if text == "/reset":
            session.reset()
            click.echo("(conversation forgotten)", err=True)
            continue
        if interactive:
            click.secho("model> ", fg="green", nl=False)
        started = time.perf_counter()
        answer = session.send(text, on_text=lambda piece: click.echo(printable(piece), nl=False), images=pending)
        pending = []
        click.echo()
        click.echo(_stats(answer, time.perf_counter() - started), err=True)


MAX_MESSAGE_BYTES = 1 << 20  # a line of piped input longer than this is not a message (e.g. < /dev/zero)


def _messages(interactive: bool) -> Iterator[str]:
    """The user's messages, stripped, blank lines skipped, until end of input."""
    if not interactive:
        stream = getattr(sys.stdin, "buffer", None)
        while True:
            raw = stream.readline(MAX_MESSAGE_BYTES + 1) if stream is not None else sys.stdin.readline(MAX_MESSAGE_BYTES + 1)
            if not raw:
                return
            if len(raw) > MAX_MESSAGE_BYTES:
                raise FmtkitError(f"a line of standard input is longer than {MAX_MESSAGE_BYTES >> 20} MiB: give one message per line")
            line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            if line.strip():
                yield line.strip()
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:
        pass
    while True:
        try:
            line = input(click.style("you> ", fg="cyan"))
        except EOFError:
            click.echo(err=True)
            return
        if line.strip():
            yield line.strip()


def _stats(answer: Generation, seconds: float) -> str:
    rate = f", {answer.tokens / seconds:.1f} tokens/s" if seconds > 0 else ""
    cut = ", cut at --max-new-tokens" if not answer.stopped else ""
    return click.style(f"({answer.tokens} tokens{cut}{rate})", dim=True)

"""The plain text of a sample: what character lengths, duplicates and scripts are measured on.

>>> from collections.abc import Iterator, Sequence

from fmtkit.sample import Sample, Turn

CHUNK_CHARS = 1 << 19  # characters per numpy pass over a batch of texts (a few MB per array)
>>> plain_text(Sample(system="Be brief.", turns=[Turn("user", "Hi"), Turn("assistant", "Hello")]))
'Be brief.\\nHi\\nHello'
"""

from __future__ import annotations

import json

from collections.abc import Iterator, Sequence

from fmtkit.sample import Sample, Turn

CHUNK_CHARS = 1 << 19  # characters per numpy pass over a batch of texts (a few MB per array)


def _turn_text(turn: Turn) -> list[str]:
    parts = [turn.content] if turn.content else []
    for call in turn.tool_calls:
        parts.append(f"{call.name} {json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)}")
    return parts


def plain_text(sample: Sample) -> str:
    """System prompt, every turn (tool calls as ``name {json}``), the answers and pretraining text, one per line.

    Tool definitions are left out: they are usually the same in every sample and
    would swamp the lengths and hide duplicates.
    """
    if sample.text is not None:
        return sample.text
    parts = [sample.system] if sample.system else []
    for turn in sample.turns:
        parts.extend(_turn_text(turn))
    for answer in (sample.chosen, sample.rejected):
        if answer is not None:
            parts.extend(_turn_text(answer))
    return "\n".join(parts)


def chunks(texts: Sequence[str], limit: int = CHUNK_CHARS) -> Iterator[Sequence[str]]:
    """Consecutive slices of ``texts`` of about ``limit`` characters (at least one text each), so
    that the numpy arrays built over a batch of texts stay a few MB whatever the texts' length.

    >>> [len(c) for c in chunks(["ab", "cd", "efgh", "i"], limit=4)]
    [2, 1, 1]
    """
    start = size = 0
    for i, t in enumerate(texts):
        if size and size + len(t) > limit:
            yield texts[start:i]
            start, size = i, 0
        size += len(t)
    if start < len(texts):
        yield texts[start:]

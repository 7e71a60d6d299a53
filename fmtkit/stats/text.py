"""The plain text of a sample: what character lengths, duplicates and scripts are measured on.

>>> from fmtkit.sample import Sample, Turn
>>> plain_text(Sample(system="Be brief.", turns=[Turn("user", "Hi"), Turn("assistant", "Hello")]))
'Be brief.\\nHi\\nHello'
"""

from __future__ import annotations

import json

from fmtkit.sample import Sample, Turn


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

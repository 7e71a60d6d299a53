"""Chat templates fmtkit ships, for tokenizers without one or to compare masking.

``--template NAME`` takes one of :data:`TEMPLATES` or the path of a Jinja file.

- ``chatml``: ChatML as Qwen models write it, with each assistant answer *and
  its* ``<|im_end|>`` inside ``{% generation %}`` markers, so that
  assistant-only loss trains the answer and the stop token.
- ``chatml-stock``: the same text without markers, as most checkpoints ship
  it: assistant-only loss then masks every token (TRL refuses it).
"""

from __future__ import annotations

import re
from pathlib import Path

from fmtkit.errors import FmtkitError

_TOOLS = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
)
_CALLS = (
    "{%- for call in message.get('tool_calls') or [] %}"
    "{{- '<tool_call>\\n{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' }}"
    "{%- if call['function']['arguments'] is string %}{{- call['function']['arguments'] }}"
    "{%- else %}{{- call['function']['arguments'] | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
)


def _chatml(markers: bool) -> str:
    start, end = ("{%- generation %}", "{%- endgeneration %}") if markers else ("", "")
    return (
        _TOOLS
        + "{%- for message in messages %}"
        "{%- if message['role'] == 'system' %}"
        "{%- elif message['role'] == 'assistant' %}"
        "{{- '<|im_start|>assistant\\n' }}" + start + "{{- message['content'] }}" + _CALLS + "{{- '<|im_end|>' }}" + end
        + "{{- '\\n' }}"
        "{%- elif message['role'] == 'tool' %}"
        "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


TEMPLATES: dict[str, str] = {"chatml": _chatml(markers=True), "chatml-stock": _chatml(markers=False)}

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


def has_generation_markers(template: str | None) -> bool:
    """Whether a template marks assistant text with ``{% generation %}`` (needed for assistant-only loss).

    >>> has_generation_markers(TEMPLATES["chatml"]), has_generation_markers(TEMPLATES["chatml-stock"])
    (True, False)
    """
    return bool(template) and _GENERATION.search(template) is not None


def resolve_template(name_or_path: str) -> str:
    """A template by name (see :data:`TEMPLATES`) or from a Jinja file."""
    if name_or_path in TEMPLATES:
        return TEMPLATES[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise FmtkitError(f"unknown template {name_or_path!r}: use one of {', '.join(TEMPLATES)} or the path of a Jinja file")

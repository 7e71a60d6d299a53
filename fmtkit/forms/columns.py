"""Codecs for the columns every LLaMA-Factory form shares: system, tools, media, extra fields.

Readers call the ``read_*`` functions with the column names of the entry;
writers call the ``write_*`` functions, which add the column to the record or
a :class:`~fmtkit.forms.Loss` to the list.

>>> read_tools('[{"name": "f"}]')
[{'name': 'f'}]
>>> read_tools("") is None
True
"""

from __future__ import annotations

import json
from typing import Any

from fmtkit.forms import HINT_PREFIX, Loss, ReadError
from fmtkit.sample import MEDIA_KINDS, Sample


def text(value: Any, what: str) -> str:
    """A string field (None reads as empty); anything else cannot be read."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ReadError("type", f"{what} is {type(value).__name__}, not a string")


def read_tools(value: Any) -> list[Any] | None:
    """Tool schemas from a JSON string (LLaMA-Factory) or a list (OpenAI, TRL); empty reads as None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ReadError("tool-json", f"tools is not valid JSON: {exc}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ReadError("tool-json", f"tools is {type(value).__name__}, not a list of function schemas")
    return value or None


def tools_json(tools: list[Any]) -> str:
    """Tools as LLaMA-Factory and TRL take them: one JSON string (Arrow-safe across rows)."""
    return json.dumps(tools, ensure_ascii=False)


def read_media(value: Any, kind: str) -> list[str]:
    """A media list; a bare string counts as one path, as LLaMA-Factory reads it."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ReadError("type", f"{kind} must be a list of paths")


def read_sample_media(sample: Sample, record: dict[str, Any], images: str | None, videos: str | None, audios: str | None) -> None:
    if images is not None and images in record:
        sample.images = read_media(record[images], "images")
    if videos is not None and videos in record:
        sample.videos = read_media(record[videos], "videos")
    if audios is not None and audios in record:
        sample.audios = read_media(record[audios], "audios")


def write_media(sample: Sample, record: dict[str, Any], form: str, losses: list[Loss], supported: bool = True) -> None:
    for kind in MEDIA_KINDS:
        paths = getattr(sample, kind)
        if paths:
            if supported:
                record[kind] = list(paths)
            else:
                losses.append(Loss("media", f"{form} cannot hold {kind}"))
                return


def extra_of(record: dict[str, Any], known: frozenset[str] | set[str]) -> dict[str, Any]:
    """The fields of a record that no mapped column holds."""
    if known.issuperset(record):
        return {}
    return {k: v for k, v in record.items() if k not in known}


def write_extra(
    sample: Sample, record: dict[str, Any], form: str, losses: list[Loss], reserved: Any = (), carry: bool = True
) -> None:
    """Carry extra fields over (forms whose loaders ignore unknown columns), else report them dropped.

    A field whose name the form's own columns use is always dropped: written,
    it would change what the record means.
    """
    extra = sample.extra
    if not extra:
        return
    dropped = []
    for key, value in extra.items():
        if key.startswith(HINT_PREFIX):
            continue
        if carry and key not in record and key not in reserved:
            record[key] = value
        else:
            dropped.append(key)
    if dropped:
        losses.append(Loss("extra-fields", f"{form} drops field{'s' if len(dropped) > 1 else ''} {', '.join(map(repr, dropped))}"))

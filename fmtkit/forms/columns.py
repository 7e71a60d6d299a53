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

from fmtkit.forms import DROPPED_HINT, PARTS_HINT, QUERY_HINT, Loss, ReadError
from fmtkit.sample import MEDIA_KINDS, PLACEHOLDERS, Sample, Turn


def text(value: Any, what: str) -> str:
    """A string field (None reads as empty); anything else cannot be read."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ReadError("FMT302", f"{what} is {type(value).__name__}, not a string")


# OpenAI content parts (Chat Completions and Responses spellings, and the
# video_url / audio_url parts of OpenAI-compatible servers)
_TEXT_PARTS = frozenset(("text", "input_text", "output_text"))
_MEDIA_PARTS = {
    "image_url": ("images", "image_url"), "input_image": ("images", "image_url"),
    "video_url": ("videos", "video_url"), "audio_url": ("audios", "audio_url"),
}  # fmt: skip


def content_text(value: Any, where: str, found: list[tuple[str, Any]] | None) -> str:
    """A message's content: a string, or OpenAI's list of typed parts (None reads as empty).

    Text parts are concatenated in order, with nothing between them (what the
    list means); each image / video / audio part becomes its placeholder
    (``<image>``, ...) at its position, and its URL or path is appended to
    ``found`` as ``(media kind, path)``. ``input_audio`` data is kept as a
    ``data:audio/FORMAT;base64,...`` URI. Fields that cannot be carried (an
    image's ``detail`` other than ``auto``, unknown part keys) are appended as
    ``("dropped", where)``; each list read is noted as ``("parts", where)``. With ``found`` None (a form that holds no media),
    media parts and such fields cannot be read.

    >>> found = []
    >>> content_text([{"type": "text", "text": "What is "}, {"type": "image_url", "image_url": {"url": "a.png"}},
    ...               {"type": "text", "text": "?"}], "content", found), found
    ('What is <image>?', [('parts', 'content'), ('images', 'a.png')])
    """
    if value is None:
        return ""
    if type(value) is str:
        return value
    if type(value) is not list:
        raise ReadError("FMT405", f"{where} is {type(value).__name__}, not a string or a list of content parts")
    if found is not None:
        found.append(("parts", where))
    out = []
    for j, part in enumerate(value):
        at = f"{where}[{j}]"
        if type(part) is not dict:
            raise ReadError("FMT405", f"{at} is {type(part).__name__}, not a content part object")
        kind = part.get("type")
        dropped: list[str] = []
        if kind in _TEXT_PARTS:
            piece = part.get("text")
            if type(piece) is not str:
                raise ReadError("FMT405", f"{at}: a {kind} part needs a string text")
            out.append(piece)
            known: tuple[str, ...] = ("type", "text")
        elif kind in _MEDIA_PARTS or kind == "input_audio":
            if kind == "input_audio":
                media, key = "audios", "input_audio"
                payload = part.get(key)
                data = payload.get("data") if type(payload) is dict else None
                fmt = payload.get("format") if type(payload) is dict else None
                if type(data) is not str or type(fmt) is not str or not data or not fmt:
                    raise ReadError("FMT405", f"{at}: an input_audio part needs input_audio.data and input_audio.format")
                path = f"data:audio/{fmt};base64,{data}"
                dropped += [f"{at}.{key}.{k}" for k in payload if k not in ("data", "format")]
            else:
                media, key = _MEDIA_PARTS[kind]
                payload = part.get(key)
                if type(payload) is dict:
                    path = payload.get("url")
                    dropped += [f"{at}.{key}.{k}" for k, v in payload.items() if k != "url" and not (k == "detail" and v == "auto")]
                else:
                    path = payload
                if type(path) is not str or not path:
                    raise ReadError("FMT405", f"{at}: a {kind} part needs a URL or path (file ids cannot be read)")
            if found is None:
                raise ReadError("FMT405", f"{at}: a {kind} part, but this form holds no {media}")
            found.append((media, path))
            out.append(PLACEHOLDERS[media])
            known = ("type", key)
            if part.get("detail", "auto") == "auto":
                known = ("type", key, "detail")
        else:
            raise ReadError("FMT405", f"{at}: content part type {kind!r} cannot be read")
        dropped += [f"{at}.{k}" for k in part if k not in known]
        if dropped:
            if found is None:
                raise ReadError("FMT405", f"{at}: {', '.join(dropped)} cannot be read in this form")
            found.extend(("dropped", d) for d in dropped)
    return "".join(out)


def add_found(sample: Sample, found: list[tuple[str, Any]], where: str) -> None:
    """Put what content parts carried besides text into the sample: media lists, dropped fields.

    Media from parts may not mix with media columns of the same kind, and the
    sample's placeholders of that kind must be exactly the parts' (a literal
    ``<image>`` in a text part would shift every image after it).
    """
    dropped = []
    by_kind: dict[str, list[str]] = {}
    for kind, value in found:
        if kind == "parts":
            sample.hints[PARTS_HINT] = True
        elif kind == "dropped":
            dropped.append(("part-fields", value))
        elif kind == "dropped-key":  # keys of a system message (a Sample has no turn for it)
            dropped.append(("message-fields", value))
        else:
            by_kind.setdefault(kind, []).append(value)
    if by_kind:
        turns = [*sample.turns, *(t for t in (sample.chosen, sample.rejected) if t is not None)]
        for kind, paths in by_kind.items():
            if getattr(sample, kind):
                raise ReadError("FMT405", f"{where}: {kind} both in content parts and in the {kind} column")
            tag = PLACEHOLDERS[kind]
            if sample.system and tag in sample.system:
                raise ReadError("FMT405", f"{where}: {kind} in the system message cannot be placed")
            if sum(t.content.count(tag) for t in turns) != len(paths):
                raise ReadError("FMT405", f"{where}: text holds {tag} besides the {kind} parts; their order is ambiguous")
            setattr(sample, kind, paths)
    if dropped:
        sample.hints.setdefault(DROPPED_HINT, []).extend(dropped)


# the keys an OpenAI-style message (openai, trl conversational) spells itself
OPENAI_MESSAGE_KEYS = frozenset(("role", "content", "tool_calls", "tool_call_id", "weight"))
SHAREGPT_MESSAGE_KEYS = frozenset(("from", "value"))


def source_losses(
    sample: Sample, form: str, losses: list[Loss], reserved: frozenset[str] | None = None, holds_input: bool = False
) -> None:
    """Report what the reader could not carry, and the message keys (``Turn.extra``) the form cannot hold.

    ``reserved``: None for a form that holds no message keys; else the keys its
    messages spell themselves (another key is written along with
    :func:`carry_message_keys`, one of these would change the message).
    ``holds_input``: the form keeps Alpaca's instruction/input split (else it is
    reported as ``input-split``).
    """
    if not holds_input and sample.hints and sample.hints.get(QUERY_HINT):
        losses.append(Loss("input-split", f"{form} joins the Alpaca instruction and input into one user message"))
    dropped = sample.hints.get(DROPPED_HINT) if sample.hints else None
    if dropped:
        by_code: dict[str, list[str]] = {}
        for code, where in dropped:
            by_code.setdefault(code, []).append(where)
        for code, wheres in by_code.items():
            more = f" and {len(wheres) - 3} more" if len(wheres) > 3 else ""
            losses.append(Loss(code, f"{form} cannot hold {', '.join(wheres[:3])}{more}"))
    keys: dict[str, None] = {}
    for t in sample.turns:
        if t.extra:
            keys.update(dict.fromkeys(t.extra))
    for t in (sample.chosen, sample.rejected):
        if t is not None and t.extra:
            keys.update(dict.fromkeys(t.extra))
    if keys and reserved is not None:
        keys = {k: None for k in keys if k in reserved}
    if keys:
        losses.append(Loss("message-fields", f"{form} drops message key{'s' if len(keys) > 1 else ''} {', '.join(map(repr, keys))}"))


def carry_message_keys(msg: dict[str, Any], turn: Turn, reserved: frozenset[str]) -> dict[str, Any]:
    """Write a turn's extra message keys into its message, except ``reserved`` ones (see :func:`source_losses`)."""
    for k, v in turn.extra.items():
        if k not in reserved:
            msg[k] = v
    return msg


def read_tools(value: Any) -> list[Any] | None:
    """Tool schemas from a JSON string (LLaMA-Factory) or a list (OpenAI, TRL).

    Absent, null and ``""`` read as None (no tools); ``"[]"`` (or ``"{}"``) reads
    as an empty list, which is not the same: LLaMA-Factory's template takes any
    non-empty tools string as "tools present" and renders a system block for it,
    so writers carry it.

    >>> read_tools(""), read_tools("[]"), read_tools("{}")
    (None, [], [])
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ReadError("FMT701", f"tools is not valid JSON: {exc}") from None
    if isinstance(value, dict):
        value = [value] if value else []
    if not isinstance(value, list):
        raise ReadError("FMT701", f"tools is {type(value).__name__}, not a list of function schemas")
    return value


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
    raise ReadError("FMT300", f"{kind} must be a list of paths")


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
    for key, value in extra.items():  # hints live in Sample.hints: every key here is a field of the record
        if carry and key not in record and key not in reserved:
            record[key] = value
        else:
            dropped.append(key)
    if dropped:
        losses.append(Loss("extra-fields", f"{form} drops field{'s' if len(dropped) > 1 else ''} {', '.join(map(repr, dropped))}"))

"""Safe fixes: mechanical repairs of findings, as edits to a data file's text.

A fix never changes what LLaMA-Factory trains on, except to make a record it
would drop or misread loadable the way its author evidently meant. Each edit
replaces one value (found by the finding's JSON Pointer) and leaves the rest of
the text as it was, so the diff shows only the repair.

====== =====================================================================
FMT204 drop the UTF-8 byte order mark
FMT402 a role spelled with the other tag set (``user`` in a ShareGPT entry,
       ``gpt`` in an OpenAI one) becomes the entry's tag for that role
FMT503 a KTO label ``"true"`` / ``"false"`` (a string) becomes the boolean
FMT601 a media column holding one path (``"a.png"``) becomes a list
====== =====================================================================

Unsafe fixes (``--unsafe-fixes``) change what is trained: they drop whole
records, an exact duplicate (FMT803) or one LLaMA-Factory would drop
(FMT402-FMT404: a role out of place or the wrong turn count).

>>> sorted(FIXES), sorted(UNSAFE_FIXES)
(['FMT204', 'FMT402', 'FMT503', 'FMT601'], ['FMT402', 'FMT403', 'FMT404', 'FMT803'])
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtkit.loading.json_file import BOM
from fmtkit.locate import line_starts, value_span

# role as the other tag set spells it -> the DatasetEntry attribute of that role
_ROLES = {"user": "user_tag", "human": "user_tag", "assistant": "assistant_tag", "gpt": "assistant_tag", "system": "system_tag",
          "tool": "observation_tag", "observation": "observation_tag", "function_call": "function_tag"}  # fmt: skip


def _role(value: Any, entry) -> Any:
    attr = _ROLES.get(value) if isinstance(value, str) else None
    tag = getattr(entry, attr) if attr and entry is not None else None
    return tag if tag is not None and tag != value else None


def _kto_label(value: Any, entry) -> Any:
    return {"true": True, "false": False}.get(value.strip().lower()) if isinstance(value, str) else None


def _media_list(value: Any, entry) -> Any:
    return [value] if isinstance(value, str) else None


# code -> (what the fix does, value at the finding's pointer + its entry -> the new value, or None: no safe fix)
FIXES: dict[str, tuple[str, Callable[[Any, Any], Any] | None]] = {
    "FMT204": ("drops the byte order mark", None),
    "FMT402": ("writes the entry's tag for a role spelled with the other tag set (user -> human, gpt -> assistant, ...)", _role),
    "FMT503": ('writes a KTO label "true" / "false" as the boolean', _kto_label),
    "FMT601": ('wraps a single media path in a list: "a.png" -> ["a.png"]', _media_list),
}


# code -> what the unsafe fix does: drop the whole record
UNSAFE_FIXES: dict[str, str] = {
    "FMT402": "drops the record (a role that is none of the entry's tags: LLaMA-Factory drops it, or its openai reader fails)",
    "FMT403": "drops the record (a role out of place: LLaMA-Factory drops it)",
    "FMT404": "drops the record (the wrong number of turns: LLaMA-Factory drops it)",
    "FMT803": "drops the duplicate record (the first copy stays)",
}


def fix_kind(code: str) -> str | None:
    """``"safe"``, ``"unsafe"`` or None: the fix rule ``code`` has (a safe fix is used first).

    >>> fix_kind("FMT503"), fix_kind("FMT803"), fix_kind("FMT300")
    ('safe', 'unsafe', None)
    """
    if code in FIXES:
        return "safe"
    return "unsafe" if code in UNSAFE_FIXES else None


@dataclass
class FileFix:
    """The repaired text of one file, and the findings it repairs."""

    path: Path
    old: str
    new: str
    fixed: list = field(default_factory=list)

    def diff(self, name: str) -> str:
        return "".join(difflib.unified_diff(self.old.splitlines(keepends=True), self.new.splitlines(keepends=True), f"a/{name}", f"b/{name}"))


def plan(root: str, findings: list, entry_of: Callable[[Any], Any], unsafe: bool = False) -> list[FileFix]:
    """The fixes for ``findings`` (those with a safe fix; with ``unsafe`` also the record drops), file by file.
    Nothing is written.

    ``entry_of(finding)``: the :class:`fmtkit.dataset_info.DatasetEntry` the finding's record was read through.
    A finding's ``line`` must still be where its record starts (before :func:`fmtkit.locate.locate`).
    """
    by_file: dict[str, list] = {}
    for f in findings:
        safe = f.code in FIXES and (f.code == "FMT204" or f.pointer and f.line)
        drop = unsafe and f.code in UNSAFE_FIXES and f.line and f.record is not None
        if f.file and (safe or drop):
            by_file.setdefault(f.file, []).append(f)
    out = []
    for file, group in by_file.items():
        path = Path(root) / file
        try:
            old = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # an unreadable file has no safe fix
        fix = _fix_text(path, old, group, entry_of, unsafe)
        if fix.fixed:
            out.append(fix)
    return out


def _fix_text(path: Path, old: str, group: list, entry_of, unsafe: bool = False) -> FileFix:
    bom = old.startswith(BOM.decode())
    text = old[1:] if bom else old
    starts = line_starts(text)
    edits: list[tuple[int, int, str]] = []
    fix = FileFix(path, old, old)
    if unsafe:  # record drops first: a value fix inside a dropped record is moot
        dropped: dict[int, tuple[int, int]] = {}
        kept = []
        for f in group:
            if f.code not in UNSAFE_FIXES or not f.line or f.line > len(starts) or _safe_value(text, starts, f, entry_of) is not None:
                kept.append(f)  # a safe fix (FMT402 as the other tag set) goes first
                continue
            span = dropped.get(f.record) or _record_span(text, starts[f.line - 1])
            if span is not None:
                if f.record not in dropped:
                    dropped[f.record] = span
                    edits.append((*span, ""))
                fix.fixed.append(f)
        group = [f for f in kept if f.code in FIXES]
    for f in group:
        if f.code == "FMT204":
            if bom:
                fix.fixed.append(f)
            continue
        if f.line > len(starts):
            continue
        span = value_span(text, starts[f.line - 1], f.pointer)
        if span is None:
            continue
        try:
            value = json.loads(text[span[0] : span[1]])
        except ValueError:
            continue
        new = FIXES[f.code][1](value, entry_of(f))
        if new is not None and not any(a < span[1] and span[0] < b for a, b, _ in edits):
            edits.append((span[0], span[1], json.dumps(new, ensure_ascii=False)))
            fix.fixed.append(f)
    for a, b, replacement in sorted(edits, reverse=True):
        text = text[:a] + replacement + text[b:]
    drop_bom = any(f.code == "FMT204" for f in fix.fixed)
    fix.new = text if drop_bom or not bom else BOM.decode() + text
    return fix


def _safe_value(text: str, starts: list[int], f, entry_of) -> Any:
    """The new value the safe fix of ``f`` writes, or None (no safe fix applies)."""
    if f.code not in FIXES or FIXES[f.code][1] is None or not f.pointer:
        return None
    span = value_span(text, starts[f.line - 1], f.pointer)
    if span is None:
        return None
    try:
        value = json.loads(text[span[0] : span[1]])
    except ValueError:
        return None
    return FIXES[f.code][1](value, entry_of(f))


def _record_span(text: str, start: int) -> tuple[int, int] | None:
    """What to cut to drop the record starting at or after ``start``: its line in JSON Lines, or the
    element and the comma before it (after it, for a first element) in a JSON array."""
    span = value_span(text, start, "")
    if span is None:
        return None
    a, b = span
    if not text.lstrip().startswith("["):  # a JSON Lines record: its line
        before = text.rfind("\n", 0, a) + 1
        end = text.find("\n", b)
        return before, len(text) if end < 0 else end + 1
    i = a - 1  # an array element: take the comma before it, or the one after a first element
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    if i >= 0 and text[i] == ",":
        return i, b
    j = b
    while j < len(text) and text[j] in " \t\r\n":
        j += 1
    return (a, j + 1) if j < len(text) and text[j] == "," else (a, b)

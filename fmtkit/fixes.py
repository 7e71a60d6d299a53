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

>>> sorted(FIXES)
['FMT204', 'FMT402', 'FMT503', 'FMT601']
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


@dataclass
class FileFix:
    """The repaired text of one file, and the findings it repairs."""

    path: Path
    old: str
    new: str
    fixed: list = field(default_factory=list)

    def diff(self, name: str) -> str:
        return "".join(difflib.unified_diff(self.old.splitlines(keepends=True), self.new.splitlines(keepends=True), f"a/{name}", f"b/{name}"))


def plan(root: str, findings: list, entry_of: Callable[[Any], Any]) -> list[FileFix]:
    """The fixes for ``findings`` (those with a safe fix), file by file. Nothing is written.

    ``entry_of(finding)``: the :class:`fmtkit.dataset_info.DatasetEntry` the finding's record was read through.
    A finding's ``line`` must still be where its record starts (before :func:`fmtkit.locate.locate`).
    """
    by_file: dict[str, list] = {}
    for f in findings:
        if f.code in FIXES and f.file and (f.code == "FMT204" or f.pointer and f.line):
            by_file.setdefault(f.file, []).append(f)
    out = []
    for file, group in by_file.items():
        path = Path(root) / file
        try:
            old = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # an unreadable file has no safe fix
        fix = _fix_text(path, old, group, entry_of)
        if fix.fixed:
            out.append(fix)
    return out


def _fix_text(path: Path, old: str, group: list, entry_of) -> FileFix:
    bom = old.startswith(BOM.decode())
    text = old[1:] if bom else old
    starts = line_starts(text)
    edits: list[tuple[int, int, str]] = []
    fix = FileFix(path, old, old)
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

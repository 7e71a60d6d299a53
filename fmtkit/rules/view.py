"""What record rules see: an entry resolved once, with the role sets and paths they need."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmtkit.alignment import Alignment, Tags, align
from fmtkit.dataset_info import DatasetEntry


@dataclass(slots=True)
class EntryView:
    """One entry prepared for the record loop (computed once per entry, not per record).

    >>> v = EntryView.of(DatasetEntry.from_dict("d", {"file_name": "d.json", "formatting": "sharegpt"}))
    >>> sorted(v.even_roles), sorted(v.odd_roles)
    (['human', 'observation'], ['function_call', 'gpt'])
    """

    entry: DatasetEntry
    root: Path = field(default_factory=Path)
    stage: str | None = None
    even_roles: frozenset[str] = frozenset()  # user positions: user and observation tags
    odd_roles: frozenset[str] = frozenset()  # assistant positions: assistant and function tags
    known_roles: dict[str, str] = field(default_factory=dict)  # value in data -> tag name
    media_exists: dict[str, bool] = field(default_factory=dict)
    tags: Tags | None = None  # conversation entries: how LLaMA-Factory aligns their messages
    _aligned: tuple[Any, Alignment] | None = None  # the last record aligned (the rules of one record share it)

    def alignment(self, rec: dict) -> Alignment | None:
        """The record's messages aligned as LLaMA-Factory reads them (:func:`fmtkit.alignment.align`), once per record."""
        cached = self._aligned
        if cached is not None and cached[0] is rec:
            return cached[1]
        msgs = rec.get(self.entry.messages) if self.tags is not None else None
        if type(msgs) is not list:
            return None
        result = align(msgs, self.tags)
        self._aligned = (rec, result)
        return result

    @classmethod
    def of(cls, entry: DatasetEntry, root: Path | None = None, stage: str | None = None) -> EntryView:
        e = entry
        even = frozenset(t for t in (e.user_tag, e.observation_tag) if t is not None)
        odd = frozenset(t for t in (e.assistant_tag, e.function_tag) if t is not None)
        known = {getattr(e, k): k for k in ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag") if getattr(e, k) is not None}
        tags = Tags.of(e) if e.is_conversation and e.messages is not None else None
        return cls(entry, root if root is not None else e.base_dir, stage, even, odd, known, tags=tags)

"""What record rules see: an entry resolved once, with the role sets and paths they need."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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

    @classmethod
    def of(cls, entry: DatasetEntry, root: Path | None = None, stage: str | None = None) -> EntryView:
        e = entry
        even = frozenset(t for t in (e.user_tag, e.observation_tag) if t is not None)
        odd = frozenset(t for t in (e.assistant_tag, e.function_tag) if t is not None)
        known = {getattr(e, k): k for k in ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag") if getattr(e, k) is not None}
        return cls(entry, root if root is not None else e.base_dir, stage, even, odd, known)

    def describe_tags(self) -> str:
        """The role values the entry accepts, for messages: ``user_tag='human', ...``."""
        e = self.entry
        parts = [f"{k}={getattr(e, k)!r}" for k in ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag") if getattr(e, k) is not None]
        unset = [k for k in ("observation_tag", "function_tag", "system_tag") if getattr(e, k) is None]
        text = ", ".join(parts)
        if unset:
            text += f"; unset because `tags` leaves them out: {', '.join(unset)}"
        return text

"""Counts of one dataset entry: records, kinds, turns, roles, system prompts, tools, media, KTO labels.

:class:`Counts` adds samples one at a time and merges with the counts of
another part of the data (``--jobs``); :func:`count_samples` counts a list.

>>> from fmtkit.sample import Sample, Turn
>>> c = count_samples([Sample(system="S", turns=[Turn("user", "Hi"), Turn("assistant", "Yo")], label=False)])
>>> (c["records"], c["kinds"], c["roles"], c["system_prompts"], c["kto_labels"])
(1, {'kto': 1}, {'user': 1, 'assistant': 1}, 1, {'desirable': 0, 'undesirable': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fmtkit.sample import MEDIA_KINDS, Sample


class Counts:
    """Running counts (bounded: a counter per kind, role and media kind). Answers of preference pairs count as assistant turns."""

    def __init__(self) -> None:
        self.n = Counter()  # records, turns, system_prompts, with_tools, tool_calls, with_media
        self.kinds: Counter[str] = Counter()
        self.roles: Counter[str] = Counter()
        self.media: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()

    def add(self, s: Sample) -> None:
        n = self.n
        n["records"] += 1
        self.kinds[s.kind] += 1
        all_turns = list(s.turns) + [t for t in (s.chosen, s.rejected) if t is not None]
        n["turns"] += len(all_turns)
        for t in all_turns:
            self.roles[t.role] += 1
            n["tool_calls"] += len(t.tool_calls)
        n["system_prompts"] += bool(s.system)
        n["with_tools"] += bool(s.tools)
        n_media = 0
        for kind in MEDIA_KINDS:
            k = len(s.media(kind))
            self.media[kind] += k
            n_media += k
        n["with_media"] += n_media > 0
        if s.label is not None:
            self.labels["desirable" if s.label else "undesirable"] += 1

    def merge(self, other: Counts) -> None:
        for mine, theirs in ((self.n, other.n), (self.kinds, other.kinds), (self.roles, other.roles),
                             (self.media, other.media), (self.labels, other.labels)):  # fmt: skip
            mine.update(theirs)

    def report(self) -> dict:
        n = self.n
        return {
            "records": n["records"],
            "kinds": dict(self.kinds),
            "turns": n["turns"],
            "roles": dict(self.roles),
            "system_prompts": n["system_prompts"],
            "with_tools": n["with_tools"],
            "tool_calls": n["tool_calls"],
            "media": {k: self.media[k] for k in MEDIA_KINDS},
            "with_media": n["with_media"],
            "kto_labels": {k: self.labels[k] for k in ("desirable", "undesirable")} if self.kinds.get("kto") else None,
        }


def count_samples(samples: Iterable[Sample]) -> dict:
    """Count what an entry holds (see :class:`Counts`)."""
    counts = Counts()
    for s in samples:
        counts.add(s)
    return counts.report()

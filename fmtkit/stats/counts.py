"""Counts of one dataset entry: records, kinds, turns, roles, system prompts, tools, media, KTO labels.

>>> from fmtkit.sample import Sample, Turn
>>> c = count_samples([Sample(system="S", turns=[Turn("user", "Hi"), Turn("assistant", "Yo")], label=False)])
>>> (c["records"], c["kinds"], c["roles"], c["system_prompts"], c["kto_labels"])
(1, {'kto': 1}, {'user': 1, 'assistant': 1}, 1, {'desirable': 0, 'undesirable': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fmtkit.sample import MEDIA_KINDS, Sample


def count_samples(samples: Iterable[Sample]) -> dict:
    """Count what an entry holds. Answers of preference pairs count as assistant turns."""
    records = turns = system = with_tools = tool_calls = with_media = 0
    kinds: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    media: Counter[str] = Counter()
    labels = Counter({"desirable": 0, "undesirable": 0})
    for s in samples:
        records += 1
        kinds[s.kind] += 1
        all_turns = list(s.turns) + [t for t in (s.chosen, s.rejected) if t is not None]
        turns += len(all_turns)
        for t in all_turns:
            roles[t.role] += 1
            tool_calls += len(t.tool_calls)
        system += bool(s.system)
        with_tools += bool(s.tools)
        n_media = 0
        for kind in MEDIA_KINDS:
            n = len(s.media(kind))
            media[kind] += n
            n_media += n
        with_media += n_media > 0
        if s.label is not None:
            labels["desirable" if s.label else "undesirable"] += 1
    return {
        "records": records,
        "kinds": dict(kinds),
        "turns": turns,
        "roles": dict(roles),
        "system_prompts": system,
        "with_tools": with_tools,
        "tool_calls": tool_calls,
        "media": {k: media[k] for k in MEDIA_KINDS},
        "with_media": with_media,
        "kto_labels": dict(labels) if kinds.get("kto") else None,
    }

"""Everything ``fmtkit stats`` reports about one entry, as one JSON-ready dict.

>>> from fmtkit.sample import Sample, Turn
>>> s = summarize([Sample(turns=[Turn("user", "Bonjour"), Turn("assistant", "Salut")])])
>>> sorted(s)
['characters', 'counts', 'duplicates', 'mask_problems', 'scripts', 'tokens']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fmtkit.sample import Sample
from fmtkit.stats.counts import count_samples
from fmtkit.stats.duplicates import find_duplicates
from fmtkit.stats.lengths import length_report
from fmtkit.stats.scripts import script_mix


def summarize(
    samples: Iterable[Sample], tokenizer: Any = None, cutoff_len: int | None = None, *, jobs: int | None = None,
    keep_lengths: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Counts, character lengths, token lengths (with a tokenizer, else None), duplicates, scripts, mask problems."""
    samples = samples if isinstance(samples, list) else list(samples)
    tokens = None
    problems: list[str] = []
    if tokenizer is not None:
        from fmtkit.stats.render import mask_problems

        tokens = length_report(samples, tokenizer, cutoff_len, jobs=jobs, keep_lengths=keep_lengths)
        # The mask depends on the template more than on the data: the first trained sample tells.
        first = next((s for s in samples if s.kind in ("sft", "kto", "preference")), None)
        problems = mask_problems(tokenizer, first) if first is not None else []
    return {
        "counts": count_samples(samples),
        "characters": length_report(samples, None, keep_lengths=keep_lengths),
        "tokens": tokens,
        "duplicates": find_duplicates(samples),
        "scripts": script_mix(samples),
        "mask_problems": problems,
    }

"""Length distributions, in characters or in tokens of the fully rendered sample, and what a cutoff cuts.

>>> d = distribution([1, 2, 3, 4, 100])
>>> (d["min"], d["median"], d["p95"], d["max"])
(1, 3, 100, 100)
>>> from fmtkit.sample import Sample
>>> length_report([Sample(text="abc"), Sample(text="abcdef")], None, None)["max"]
6
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from fmtkit.sample import Sample
from fmtkit.stats.text import plain_text

HISTOGRAM_BINS = 20


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (a value that occurs in the data) of sorted values.

    >>> percentile([10, 20, 30, 40], 50), percentile([10, 20, 30, 40], 95)
    (20, 40)
    """
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def histogram(values: Sequence[int], bins: int | None = None) -> dict[str, list[int]]:
    """Equal-width bins from min to max: ``edges`` (bins + 1 integers) and ``counts``.

    ``bins`` defaults to twice the square root of the number of values, 5 to 20.

    >>> histogram([0, 1, 2, 3], bins=2)
    {'edges': [0, 2, 4], 'counts': [2, 2]}
    """
    if not values:
        return {"edges": [], "counts": []}
    if bins is None:
        bins = min(HISTOGRAM_BINS, max(5, math.ceil(2 * math.sqrt(len(values)))))
    lo, hi = min(values), max(values)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    edges = [lo + i * width for i in range(bins + 1)]
    counts = [0] * bins
    for v in values:
        counts[min((v - lo) // width, bins - 1)] += 1
    while len(counts) > 1 and counts[-1] == 0:  # wide bins can leave empty ones at the end
        counts.pop()
        edges.pop()
    return {"edges": edges, "counts": counts}


def distribution(values: Sequence[int]) -> dict[str, Any]:
    """min, median, p95, max, mean and a histogram of lengths."""
    s = sorted(values)
    return {
        "min": s[0] if s else 0,
        "median": percentile(s, 50),
        "p95": percentile(s, 95),
        "max": s[-1] if s else 0,
        "mean": round(sum(s) / len(s), 1) if s else 0.0,
        "histogram": histogram(s),
    }


def length_report(
    samples: Iterable[Sample], tokenizer: Any = None, cutoff_len: int | None = None, *, jobs: int | None = None,
    keep_lengths: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Lengths of samples and what ``cutoff_len`` would cut; ``tokenizer=None`` measures characters.

    With a tokenizer (a fast ``transformers`` tokenizer with a chat template),
    lengths are tokens of each sample rendered by the chat template, and the
    report adds supervised vs prompt tokens, the samples over ``cutoff_len``
    and the supervised tokens truncation would drop. ``fmtkit train`` calls this
    to warn before training::

        r = length_report(samples, tokenizer, cutoff_len=2048)
        if r["over_cutoff"]:
            print(f"{r['over_cutoff']} samples exceed 2048 tokens; {r['supervised_lost']} trained tokens lost")

    ``keep_lengths`` adds the per-sample ``lengths`` (for plots).
    """
    samples = samples if isinstance(samples, list) else list(samples)
    if tokenizer is None:
        lengths = [len(plain_text(s)) for s in samples]
        report: dict[str, Any] = {"unit": "characters", "samples": len(samples), **distribution(lengths)}
        if keep_lengths:
            report["lengths"] = lengths
        return report

    from fmtkit.stats.tokens import count_tokens

    counts = count_tokens(tokenizer, samples, cutoff_len, jobs=jobs)
    total = sum(counts.total)
    supervised = sum(counts.supervised)
    over = sum(1 for n in counts.total if cutoff_len is not None and n > cutoff_len)
    report = {
        "unit": "tokens",
        "samples": len(samples),
        **distribution(counts.total),
        "total_tokens": total,
        "supervised_tokens": supervised,
        # A preference pair's supervised tokens add both answers; its prompt is counted once.
        "prompt_tokens": max(0, total - supervised),
        "supervised_share": round(supervised / total, 4) if total else 0.0,
        "supervised_method": counts.method,
        "cutoff_len": cutoff_len,
        "over_cutoff": over if cutoff_len is not None else None,
        "over_cutoff_share": round(over / len(samples), 4) if cutoff_len is not None and samples else None,
        "supervised_lost": sum(counts.lost) if cutoff_len is not None else None,
        "all_supervised_lost": (
            sum(1 for sup, lost in zip(counts.supervised, counts.lost) if sup and lost == sup) if cutoff_len is not None else None
        ),
        # Samples with answers but no token in the loss (e.g. generation markers that cover nothing).
        "no_supervised": sum(
            1 for i, (sample, sup) in enumerate(zip(samples, counts.supervised)) if not sup and i not in counts.errors
            and sample.kind not in ("prompt", "pretrain")
        ),
        "render_errors": len(counts.errors),
        "first_render_error": next(iter(counts.errors.items()), None),
    }
    if keep_lengths:
        report["lengths"] = counts.total
    return report

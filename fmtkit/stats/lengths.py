"""Length distributions, in characters or in tokens of the fully rendered sample, and what a cutoff cuts.

Lengths go into a :class:`~fmtkit.stats.sketches.LengthSketch` (exact up to
200,000 samples, a KLL sketch beyond); token figures are running sums, so
memory does not grow with the data.

>>> d = distribution([1, 2, 3, 4, 100])
>>> (d["min"], d["median"], d["p95"], d["max"])
(1, 3, 100, 100)
>>> from fmtkit.sample import Sample
>>> length_report([Sample(text="abc"), Sample(text="abcdef")], None, None)["max"]
6
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fmtkit.sample import Sample
from fmtkit.stats.sketches import LengthSketch, histogram, percentile

__all__ = ["TokenTally", "distribution", "histogram", "length_report", "percentile"]


def distribution(values: Sequence[int]) -> dict[str, Any]:
    """min, median, p95, max, mean and a histogram of lengths (see :meth:`LengthSketch.distribution`)."""
    sketch = LengthSketch()
    sketch.add(values)
    return sketch.distribution()


class TokenTally:
    """Running token figures of an entry: lengths (a sketch), totals, and what ``cutoff_len`` cuts.

    ``add`` takes the :class:`~fmtkit.stats.tokens.TokenCounts` of a batch;
    ``merge`` adds a later part of the data (record indices of its render errors shifted by ``offset``).
    """

    def __init__(self, cutoff_len: int | None, method: str) -> None:
        self.cutoff_len = cutoff_len
        self.method = method
        self.lengths = LengthSketch()
        self.samples = self.total = self.supervised = self.over = self.lost = self.all_lost = self.no_supervised = 0
        self.errors = 0
        self.first_error: tuple[int, str] | None = None

    def add(self, samples: Sequence[Sample], counts: Any) -> None:
        cutoff = self.cutoff_len
        self.samples += len(samples)
        self.lengths.add(counts.total)
        self.total += sum(counts.total)
        self.supervised += sum(counts.supervised)
        self.lost += sum(counts.lost)
        if cutoff is not None:
            self.over += sum(1 for n in counts.total if n > cutoff)
            self.all_lost += sum(1 for sup, lost in zip(counts.supervised, counts.lost) if sup and lost == sup)
        # Samples with answers but no token in the loss (e.g. generation markers that cover nothing).
        self.no_supervised += sum(
            1 for i, (sample, sup) in enumerate(zip(samples, counts.supervised))
            if not sup and i not in counts.errors and sample.kind not in ("prompt", "pretrain")
        )  # fmt: skip
        self.errors += len(counts.errors)
        if self.first_error is None and counts.errors:
            self.first_error = next(iter(counts.errors.items()))

    def merge(self, other: TokenTally, offset: int) -> None:
        if self.first_error is None and other.first_error is not None:
            self.first_error = (other.first_error[0] + offset, other.first_error[1])
        self.lengths.merge(other.lengths)
        for key in ("samples", "total", "supervised", "over", "lost", "all_lost", "no_supervised", "errors"):
            setattr(self, key, getattr(self, key) + getattr(other, key))

    def report(self) -> dict[str, Any]:
        cut = self.cutoff_len is not None
        return {
            "unit": "tokens",
            "samples": self.samples,
            **self.lengths.distribution(),
            "total_tokens": self.total,
            "supervised_tokens": self.supervised,
            # A preference pair's supervised tokens add both answers; its prompt is counted once.
            "prompt_tokens": max(0, self.total - self.supervised),
            "supervised_share": round(self.supervised / self.total, 4) if self.total else 0.0,
            "supervised_method": self.method,
            "cutoff_len": self.cutoff_len,
            "over_cutoff": self.over if cut else None,
            "over_cutoff_share": round(self.over / self.samples, 4) if cut and self.samples else None,
            "supervised_lost": self.lost if cut else None,
            "all_supervised_lost": self.all_lost if cut else None,
            "no_supervised": self.no_supervised,
            "render_errors": self.errors,
            "first_render_error": list(self.first_error) if self.first_error else None,
        }


def length_report(samples: Iterable[Sample], tokenizer: Any = None, cutoff_len: int | None = None, *, jobs: int | None = 1) -> dict[str, Any]:
    """Lengths of samples and what ``cutoff_len`` would cut; ``tokenizer=None`` measures characters.

    With a tokenizer (a fast ``transformers`` tokenizer with a chat template),
    lengths are tokens of each sample rendered by the chat template, and the
    report adds supervised vs prompt tokens, the samples over ``cutoff_len``
    and the supervised tokens ``fmtkit train``'s default truncation would cut
    (LLaMA-Factory's, :mod:`fmtkit.truncation`). The part of
    :func:`~fmtkit.stats.summary.summarize` that measures lengths::

        r = length_report(samples, tokenizer, cutoff_len=2048)
        if r["over_cutoff"]:
            print(f"{r['over_cutoff']} samples exceed 2048 tokens; {r['supervised_lost']} trained tokens lost")
    """
    from fmtkit.stats.summary import summarize

    report = summarize(samples, tokenizer, cutoff_len, jobs=jobs)
    return report["characters" if tokenizer is None else "tokens"]

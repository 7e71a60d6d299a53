"""Length distributions in bounded memory: exact up to :data:`EXACT_LIMIT` values, a KLL sketch beyond.

:class:`LengthSketch` keeps every value while there are at most
``EXACT_LIMIT`` of them (8 bytes each), so small entries get exact
percentiles and histograms. Past that it keeps an Apache DataSketches KLL
sketch (``k = 200``, a few kB at any size): the median and p95 are then
values whose rank is within ``rank_error`` (1.33% of the records, with 99%
confidence) of the true rank, and histogram counts are within
``rank_error * records`` of the true counts. min, max, mean and the number
of values stay exact. Sketches of parts of the data merge (``--jobs``).

>>> s = LengthSketch()
>>> s.add([5, 1, 3])
>>> d = s.distribution()
>>> (d["min"], d["median"], d["p95"], d["max"], d["mean"], d["exact"])
(1, 3, 5, 5, 3.0, True)
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

EXACT_LIMIT = 200_000  # values kept as they are (1.6 MB); percentiles are exact up to here
KLL_K = 200  # the sketch's size parameter: normalized rank error ~1.33% (99% confidence)
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


def bin_edges(lo: int, hi: int, n: int, bins: int | None = None) -> list[int]:
    """Equal-width integer bins from ``lo`` to ``hi``: ``bins + 1`` edges (``bins``: 2*sqrt(n), 5 to 20).

    >>> bin_edges(0, 3, 4, bins=2)
    [0, 2, 4]
    """
    if bins is None:
        bins = min(HISTOGRAM_BINS, max(5, math.ceil(2 * math.sqrt(n))))
    width = max(1, math.ceil((hi - lo + 1) / bins))
    return [lo + i * width for i in range(bins + 1)]


def _trim(edges: list[int], counts: list[int]) -> dict[str, list[int]]:
    while len(counts) > 1 and counts[-1] == 0:  # wide bins can leave empty ones at the end
        counts.pop()
        edges.pop()
    return {"edges": edges, "counts": counts}


def histogram(values: Sequence[int], bins: int | None = None) -> dict[str, list[int]]:
    """Equal-width bins from min to max (:func:`bin_edges`): ``edges`` and ``counts``.

    >>> histogram([0, 1, 2, 3], bins=2)
    {'edges': [0, 2, 4], 'counts': [2, 2]}
    """
    if not values:
        return {"edges": [], "counts": []}
    lo = min(values)
    edges = bin_edges(lo, max(values), len(values), bins)
    width = edges[1] - edges[0]
    counts = [0] * (len(edges) - 1)
    for v in values:
        counts[min((v - lo) // width, len(counts) - 1)] += 1
    return _trim(edges, counts)


class LengthSketch:
    """A stream of non-negative integer lengths: count, sum, min, max, and exact values or a KLL sketch."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0
        self.lo: int | None = None
        self.hi: int | None = None
        self.values: array | None = array("q")  # None once the sketch took over
        self.kll: Any = None

    def add(self, values: Iterable[int]) -> None:
        values = values if isinstance(values, (list, array)) else list(values)
        if not values:
            return
        self.n += len(values)
        self.total += sum(values)
        lo, hi = min(values), max(values)
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        if self.values is not None:
            self.values.extend(values)
            if len(self.values) > EXACT_LIMIT:
                self._to_sketch()
        else:
            self._sketch_update(values)

    def _to_sketch(self) -> None:
        from datasketches import kll_ints_sketch

        self.kll = kll_ints_sketch(KLL_K)
        values, self.values = self.values, None
        self._sketch_update(values)

    def _sketch_update(self, values: Sequence[int]) -> None:
        import numpy as np

        self.kll.update(np.asarray(values, dtype=np.int32).clip(0, 2**31 - 1))

    def merge(self, other: LengthSketch) -> None:
        """Add another part's lengths (the other part comes after this one)."""
        if other.n == 0:
            return
        if other.values is not None:
            self.add(other.values)
            return
        self.n += other.n
        self.total += other.total
        self.lo = other.lo if self.lo is None else min(self.lo, other.lo)
        self.hi = other.hi if self.hi is None else max(self.hi, other.hi)
        if self.values is not None:
            self._to_sketch()
        self.kll.merge(other.kll)

    def __getstate__(self) -> dict[str, Any]:  # the KLL sketch pickles as its serialized bytes
        return {**self.__dict__, "kll": None if self.kll is None else self.kll.serialize()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["kll"] is not None:
            from datasketches import kll_ints_sketch

            state["kll"] = kll_ints_sketch.deserialize(state["kll"])
        self.__dict__.update(state)

    @property
    def exact(self) -> bool:
        return self.values is not None

    def distribution(self) -> dict[str, Any]:
        """min, median, p95, max, mean, a histogram, and whether the percentiles and counts are ``exact``.

        ``rank_error`` is the sketch's normalized rank error (0.0 when exact).
        """
        if self.n == 0:
            return {"min": 0, "median": 0, "p95": 0, "max": 0, "mean": 0.0, "histogram": histogram([]), "exact": True, "rank_error": 0.0}
        common = {"min": self.lo, "max": self.hi, "mean": round(self.total / self.n, 1)}
        if self.values is not None:
            s = sorted(self.values)
            return {**common, "median": percentile(s, 50), "p95": percentile(s, 95), "histogram": histogram(s),
                    "exact": True, "rank_error": 0.0}  # fmt: skip
        median, p95 = (int(v) for v in self.kll.get_quantiles([0.5, 0.95]))
        edges = bin_edges(self.lo, self.hi, self.n)
        # get_cdf(split points) gives the share of values < each point (inclusive=False), then 1.0
        cdf = self.kll.get_cdf(edges[1:-1], False)
        shares = [b - a for a, b in zip([0.0, *cdf[:-1]], cdf)]
        counts = [round(share * self.n) for share in shares]
        return {**common, "median": median, "p95": p95, "histogram": _trim(edges, counts),
                "exact": False, "rank_error": round(self.kll.normalized_rank_error(False), 4)}  # fmt: skip

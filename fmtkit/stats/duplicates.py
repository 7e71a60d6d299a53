"""Exact and near duplicates, streamed in bounded memory.

- **exact**: the same sample, role for role and character for character: a
  64-bit BLAKE2b of the sample's canonical JSON (kind, system, tools, turns,
  answers, label, text, media) seen before. Each key is kept with the index
  of its first record (12 bytes) in sorted numpy runs (:class:`KeySet`), up
  to :data:`EXACT_CAPACITY` samples; past that, new samples are still
  compared with the remembered ones but no longer remembered, and the report
  says so (``complete: false``, the count is then a lower bound).
- **near**: the same text up to small edits, by MinHash LSH. The text (NFKC,
  ``casefold()``, without punctuation, symbols and whitespace, roles ignored)
  is cut into overlapping :data:`SHINGLE`-character pieces; a one-permutation
  MinHash of :data:`BANDS` x :data:`ROWS` values estimates the Jaccard
  similarity of two samples' pieces, and a sample is a near duplicate when
  all :data:`ROWS` values of one band equal those of an earlier sample. Two
  samples with similarity *s* are matched with probability
  ``1 - (1 - s**ROWS)**BANDS``: 98.9% at 0.9, 77% at 0.8, 13% at 0.6, 0.5% at 0.4.
  8 band keys per sample are kept, up to :data:`NEAR_CAPACITY`
  samples (then as for exact).

A *duplicate* is a sample equal (or near) to an earlier one: two identical
samples count 1. Near duplicates include the exact ones.

>>> from fmtkit.sample import Sample, Turn
>>> a = Sample(turns=[Turn("user", "Hello, world! How are you today?"), Turn("assistant", "Fine, thanks.")])
>>> b = Sample(turns=[Turn("user", "hello world how are you today"), Turn("assistant", "fine thanks")])
>>> d = find_duplicates([a, a, b])
>>> (d["exact"], d["near"], d["near_examples"])
(1, 2, [[0, 1], [0, 2]])
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from fmtkit.sample import Sample
from fmtkit.stats.text import plain_text

SHINGLE = 5  # characters per piece of normalised text
BANDS, ROWS = 8, 8  # 64 MinHash values; a band matches when its 8 values are equal
EXACT_CAPACITY = 4_000_000  # distinct samples remembered for exact duplicates (12 bytes each: 48 MB)
NEAR_CAPACITY = 1_000_000  # samples whose band keys are remembered (8 keys x 12 bytes each: 96 MB)
MAX_EXAMPLES = 10  # duplicate pairs listed in the report (the first found)
RUN_LIMIT = 1 << 20  # keys per sorted run of a KeySet (8 MB): merging never copies more

METHOD = {
    "exact": "64-bit BLAKE2b of the sample's canonical JSON (roles, system, tools, answers, label, media)",
    "near": f"MinHash LSH ({BANDS} bands x {ROWS} rows) of {SHINGLE}-character pieces of the text after NFKC + casefold, "
    "without punctuation, symbols or whitespace",
}

_M64 = (1 << 64) - 1
_SLOT_WEIGHTS: Any = None  # set on first use (numpy is imported lazily)
_KEEP: Any = None  # a bool per code point: kept in the normalised text (letters, digits, marks)
_TABLE_SIZE = 0x30000


def _keep_table() -> Any:
    """Whether each code point below U+30000 is kept; the planes above (rare ideographs, tags,
    private use) are kept whole, so building the table stays a fraction of a second."""
    global _KEEP
    if _KEEP is None:
        import numpy as np

        keep = np.ones(_TABLE_SIZE, dtype=bool)
        for cp in range(_TABLE_SIZE):
            ch = chr(cp)
            if unicodedata.category(ch)[0] in "PSZ" or ch.isspace():
                keep[cp] = False
        _KEEP = keep
    return _KEEP


def normalize(text: str) -> str:
    """The text near duplicates compare.

    >>> normalize("  Hello,   World!! ")
    'helloworld'
    """
    import numpy as np

    cps = _code_points(text)
    return cps.astype(np.uint32).tobytes().decode("utf-32-le")


def _code_points(text: str) -> Any:
    import numpy as np

    cps = np.frombuffer(unicodedata.normalize("NFKC", text).casefold().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return cps[_keep_table()[np.minimum(cps, _TABLE_SIZE - 1)] | (cps >= _TABLE_SIZE)]


def _mix(h: Any) -> Any:
    """A 64-bit finaliser (splitmix64) over a uint64 array: every input bit reaches every output bit."""
    import numpy as np

    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def near_keys(texts: Sequence[str]) -> Any:
    """The :data:`BANDS` 64-bit band keys of each text's MinHash (a uint64 array, texts x bands).

    Equal keys in a band mean a match. The batch is hashed in a few numpy passes
    over the concatenated code points (pieces crossing two texts are dropped), a
    chunk of :data:`~fmtkit.stats.text.CHUNK_CHARS` characters at a time.
    """
    import numpy as np

    from fmtkit.stats.text import CHUNK_CHARS, chunks

    if sum(map(len, texts)) > CHUNK_CHARS:
        return np.concatenate([near_keys(part) for part in chunks(texts)])
    global _SLOT_WEIGHTS
    if _SLOT_WEIGHTS is None:
        _SLOT_WEIGHTS = _mix(np.arange(1, BANDS * ROWS + 1, dtype=np.uint64)) | np.uint64(1)
    slots = BANDS * ROWS
    parts = [_code_points(t) for t in texts]
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    # A text shorter than a piece is padded with zeros (an empty one too), so every text has a piece.
    short = lengths < SHINGLE
    for i in np.flatnonzero(short):
        parts[i] = np.concatenate([parts[i], np.zeros(SHINGLE - lengths[i], dtype=np.uint32)])
    sizes = np.maximum(lengths, SHINGLE)
    cps = np.concatenate(parts).astype(np.uint64) if parts else np.zeros(0, dtype=np.uint64)
    ends = np.cumsum(sizes)
    count = len(cps) - SHINGLE + 1
    with np.errstate(over="ignore"):
        h = np.zeros(max(0, count), dtype=np.uint64)
        for i in range(SHINGLE):  # a polynomial over each piece's code points
            h = h * np.uint64(0x100000001B3) + cps[i : i + count]
        keep = np.ones(max(0, count), dtype=bool)
        for end in ends[:-1].tolist():  # the pieces that cross into the next text
            keep[end - SHINGLE + 1 : end] = False
        owner = np.repeat(np.arange(len(texts)), sizes)[: max(0, count)][keep]
        pieces = _mix(h[keep])
        # One permutation, 64 bins per text: the top 6 bits pick the bin, the rest is the value kept if smallest.
        values = pieces & np.uint64((1 << 58) - 1)
        sig = np.full(len(texts) * slots, np.uint64(_M64), dtype=np.uint64)
        np.minimum.at(sig, owner * slots + (pieces >> np.uint64(58)).astype(np.intp), values)
        sig = sig.reshape(len(texts), slots)
        for row in np.flatnonzero((sig == np.uint64(_M64)).any(axis=1)):
            sig[row] = _densify(sig[row])
        # A band's key: its values weighted by odd constants (one per slot, so bands differ), summed, mixed.
        weighted = _mix(sig) * _SLOT_WEIGHTS
        return _mix(weighted.reshape(len(texts), BANDS, ROWS).sum(axis=2, dtype=np.uint64))


def _densify(sig: Any) -> Any:
    """Fill a short text's empty bins: each takes the next filled bin's value, shifted by the distance."""
    import numpy as np

    slots = len(sig)
    filled = np.flatnonzero(sig != np.uint64(_M64))
    idx = np.arange(slots)
    src = filled[np.searchsorted(filled, idx) % len(filled)]
    with np.errstate(over="ignore"):
        return sig[src] + ((src - idx) % slots).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def exact_key(sample: Sample) -> int:
    """A 64-bit key of the sample's canonical JSON (its ``extra`` fields, which no trainer reads, left out)."""
    doc = (sample.kind, sample.system, sample.tools, sample.turns, sample.chosen, sample.rejected, sample.label,
           sample.text, sample.images, sample.videos, sample.audios)  # fmt: skip
    try:
        data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except orjson.JSONEncodeError:  # what orjson cannot write (integers past 64 bits, deep nesting): the slow, general way
        data = _general_json(doc)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _general_json(doc: tuple) -> bytes:
    """``doc`` as JSON by the standard library (dataclasses as dicts); its repr where even that fails (nesting past the stack)."""
    import dataclasses
    import json

    def plain(value: Any) -> Any:
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else str(value)

    try:
        text = json.dumps(doc, sort_keys=True, default=plain, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = repr(doc)
    return text.encode("utf-8", "surrogatepass")


class KeySet:
    """A set of 64-bit keys, each with the record index that first had it: sorted numpy runs (12 bytes a key).

    Runs of similar size are merged (as a log-structured merge tree), never past
    :data:`RUN_LIMIT` keys, so a lookup is a binary search in a few runs and no
    merge copies more than a few MB.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[Any, Any]] = []  # (sorted keys, record index of each)
        self.size = 0

    def find(self, keys: Any) -> Any:
        """The record index that first had each key, or -1."""
        import numpy as np

        found = np.full(len(keys), -1, dtype=np.int64)
        for run_keys, run_ids in self.runs:
            pos = np.searchsorted(run_keys, keys).clip(0, len(run_keys) - 1)
            hit = (run_keys[pos] == keys) & (found < 0)
            found[hit] = run_ids[pos[hit]]
        return found

    def add(self, keys: Any, ids: Any) -> None:
        """Add keys not yet in the set (the caller looked them up), first occurrence kept."""
        import numpy as np

        if not len(keys):
            return
        keys, first = np.unique(keys, return_index=True)
        self.runs.append((keys, ids[first].astype(np.uint32)))
        self.size += len(keys)
        while len(self.runs) > 1 and len(self.runs[-1][0]) >= len(self.runs[-2][0]) and len(self.runs[-1][0]) + len(self.runs[-2][0]) <= RUN_LIMIT:
            (k2, i2), (k1, i1) = self.runs.pop(), self.runs.pop()
            k = np.concatenate([k1, k2])
            order = np.argsort(k, kind="stable")
            self.runs.append((k[order], np.concatenate([i1, i2])[order]))


class DuplicateFinder:
    """Exact and near duplicates of a stream of samples, fed in order by batches of keys."""

    def __init__(self, exact_capacity: int = EXACT_CAPACITY, near_capacity: int = NEAR_CAPACITY) -> None:
        self.records = 0
        self.exact = self.near = 0
        self.exact_examples: list[list[int]] = []
        self.near_examples: list[list[int]] = []
        self.exact_keys, self.near_keys = KeySet(), KeySet()
        self.exact_capacity, self.near_capacity = exact_capacity, near_capacity
        self.exact_complete = self.near_complete = True

    def add(self, exact: Sequence[int] | Any, near: Any) -> None:
        """One batch, in record order: ``exact`` keys (one per sample) and ``near`` band keys (samples x BANDS)."""
        import numpy as np

        n = len(exact)
        ids = np.arange(self.records, self.records + n, dtype=np.int64)
        self.records += n
        self.exact += self._batch(np.asarray(exact, dtype=np.uint64).reshape(n, 1), ids, self.exact_keys, self.exact_examples, "exact")
        self.near += self._batch(np.asarray(near, dtype=np.uint64).reshape(n, BANDS), ids, self.near_keys, self.near_examples, "near")

    def _batch(self, keys: Any, ids: Any, seen: KeySet, examples: list[list[int]], kind: str) -> int:
        """How many samples of the batch have a key of an earlier sample (in the set or earlier in the batch)."""
        import numpy as np

        n, width = keys.shape
        flat, owner = keys.ravel(), np.repeat(ids, width)
        earlier = seen.find(flat)
        # Within the batch: the first sample with each key owns it.
        uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        in_batch = owner[first][inverse]
        earlier = np.where((earlier < 0) & (in_batch < owner), in_batch, earlier)
        matched = earlier.reshape(n, width)
        masked = np.where(matched >= 0, matched, np.iinfo(np.int64).max)
        best = masked.min(axis=1)
        dup = best != np.iinfo(np.int64).max
        for i in np.flatnonzero(dup)[: max(0, MAX_EXAMPLES - len(examples))]:
            examples.append([int(best[i]), int(ids[i])])
        capacity = self.exact_capacity if kind == "exact" else self.near_capacity
        new = earlier < 0
        room = max(0, capacity * width - seen.size)
        if new.sum() > room:
            new[np.flatnonzero(new)[room:]] = False
            setattr(self, f"{kind}_complete", False)
        seen.add(flat[new], owner[new])
        return int(dup.sum())

    def report(self) -> dict[str, Any]:
        n = self.records
        return {
            "records": n,
            "exact": self.exact,
            "near": self.near,
            "exact_share": self.exact / n if n else 0.0,
            "near_share": self.near / n if n else 0.0,
            "exact_examples": self.exact_examples,
            "near_examples": self.near_examples,
            # False once more distinct samples came than the capacity: the counts are then lower bounds.
            "complete": self.exact_complete and self.near_complete,
            "method": METHOD,
        }


def sample_keys(samples: Sequence[Sample], texts: Sequence[str] | None = None) -> tuple[list[int], Any]:
    """The exact key and near band keys of each sample (what a worker computes for :class:`DuplicateFinder`).

    ``texts``: the samples' :func:`~fmtkit.stats.text.plain_text`, when already at hand.
    """
    return [exact_key(s) for s in samples], near_keys(texts if texts is not None else [plain_text(s) for s in samples])


def find_duplicates(samples: Iterable[Sample]) -> dict:
    """Count exact and near duplicates of samples; list the first pairs found (``[earlier, later]`` record indices)."""
    finder = DuplicateFinder()
    samples = list(samples)
    finder.add(*sample_keys(samples))
    return finder.report()

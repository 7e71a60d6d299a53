"""Exact and near duplicates.

- **exact**: the same sample, role for role and character for character
  (BLAKE2b of the sample's canonical JSON: kind, system, tools, turns,
  answers, label, text, media).
- **near**: the same words once case, punctuation, symbols and whitespace are
  ignored (BLAKE2b of the plain text after NFKC, ``casefold()``, and dropping
  every character of Unicode category P*, S* or Z* and all whitespace). Roles
  are ignored too, so near duplicates include the exact ones.

A *duplicate* is a sample equal to an earlier one: two identical samples
count 1.

>>> from fmtkit.sample import Sample, Turn
>>> a = Sample(turns=[Turn("user", "Hello, world!"), Turn("assistant", "Hi.")])
>>> b = Sample(turns=[Turn("user", "hello world"), Turn("assistant", "hi")])
>>> d = find_duplicates([a, a, b])
>>> (d["exact"], d["near"], d["near_groups"])
(1, 2, [[0, 1, 2]])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import unicodedata
from collections.abc import Iterable

from fmtkit.sample import Sample
from fmtkit.stats.text import plain_text

METHOD = {
    "exact": "BLAKE2b of the sample's canonical JSON (roles, system, tools, answers, label, media)",
    "near": "BLAKE2b of the text after NFKC + casefold, without punctuation, symbols or whitespace",
}
MAX_GROUPS = 10  # groups listed in the report (indices of the records), the largest first

# str.translate table built lazily: every punctuation / symbol / separator code point -> None.
_DROP: dict[int, None] | None = None


def _drop_table() -> dict[int, None]:
    global _DROP
    if _DROP is None:
        import sys

        _DROP = {
            cp: None
            for cp in range(sys.maxunicode + 1)
            if unicodedata.category(chr(cp))[0] in "PSZ" or chr(cp).isspace()
        }
    return _DROP


def normalize(text: str) -> str:
    """The text near duplicates compare.

    >>> normalize("  Hello,   World!! ")
    'helloworld'
    """
    return unicodedata.normalize("NFKC", text).casefold().translate(_drop_table())


def _digest(data: str) -> bytes:
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def exact_key(sample: Sample) -> bytes:
    record = dataclasses.asdict(sample)
    record.pop("extra", None)  # fields no trainer reads
    return _digest(json.dumps(record, ensure_ascii=False, sort_keys=True, default=str))


def near_key(sample: Sample) -> bytes:
    return _digest(normalize(plain_text(sample)))


def find_duplicates(samples: Iterable[Sample]) -> dict:
    """Count exact and near duplicates; list the largest near-duplicate groups (record indices)."""
    exact_seen: set[bytes] = set()
    near: dict[bytes, list[int]] = {}
    n = exact = 0
    for i, s in enumerate(samples):
        n += 1
        key = exact_key(s)
        if key in exact_seen:
            exact += 1
        exact_seen.add(key)
        near.setdefault(near_key(s), []).append(i)
    groups = sorted((g for g in near.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
    near_dupes = sum(len(g) - 1 for g in groups)
    return {
        "records": n,
        "exact": exact,
        "near": near_dupes,
        "exact_share": exact / n if n else 0.0,
        "near_share": near_dupes / n if n else 0.0,
        "near_groups": groups[:MAX_GROUPS],
        "method": METHOD,
    }

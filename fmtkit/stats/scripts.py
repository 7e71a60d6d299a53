"""The language mix of a dataset, by the Unicode script of its letters (Latin, Han, Cyrillic, ...).

Only letters count (digits, punctuation and emoji belong to no language). The
script comes from the character's Unicode name (``LATIN SMALL LETTER A`` ->
Latin, ``CJK UNIFIED IDEOGRAPH-4F60`` -> Han), which matches the Unicode Script
property for the letters of every major writing system. Each sample is also
assigned its *main* script, the one most of its letters are written in.

>>> from fmtkit.sample import Sample
>>> mix = script_mix([Sample(text="Hello мир 你好"), Sample(text="Привет, мир")])
>>> mix["letters"]
{'Cyrillic': 12, 'Latin': 5, 'Han': 2}
>>> mix["samples"]
{'Latin': 1, 'Cyrillic': 1}
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from fmtkit.sample import Sample
from fmtkit.stats.text import plain_text

# First word(s) of a character name -> script, where the name does not start with the script itself.
_NAME_PREFIX = {
    "CJK": "Han",
    "KANGXI": "Han",
    "IDEOGRAPHIC": "Han",
    "HANGUL": "Hangul",
    "HIRAGANA": "Hiragana",
    "KATAKANA": "Katakana",
}
_WIDTH_WORDS = ("FULLWIDTH", "HALFWIDTH", "MODIFIER", "SMALL", "CAPITAL")


@lru_cache(maxsize=65536)
def script_of(char: str) -> str | None:
    """The script of a letter, or None for anything that is not a letter.

    >>> script_of("é"), script_of("ж"), script_of("字"), script_of("7")
    ('Latin', 'Cyrillic', 'Han', None)
    """
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    words = [w for w in name.split() if w not in _WIDTH_WORDS] if name else []
    if not words:
        return "Unknown"
    first = words[0]
    return _NAME_PREFIX.get(first, first.title())


# Script of each code point, filled as characters are first met: -2 not looked up yet, -1 not a letter,
# else an index into _SCRIPTS.
_TABLE: Any = None
_SCRIPTS: list[str] = []


def _script_ids(cps: Any) -> Any:
    """The script index of each code point (numpy), looking up each new character once per process."""
    global _TABLE
    import sys

    import numpy as np

    if _TABLE is None:
        _TABLE = np.full(sys.maxunicode + 1, -2, dtype=np.int16)
    ids = _TABLE[cps]
    new = np.unique(cps[ids == -2])
    if len(new):
        for cp in new.tolist():
            script = script_of(chr(cp))
            if script is not None and script not in _SCRIPTS:
                _SCRIPTS.append(script)
            _TABLE[cp] = -1 if script is None else _SCRIPTS.index(script)
        ids = _TABLE[cps]
    return ids.astype(np.intp)


class ScriptMix:
    """Running letters per script and samples per main script (bounded: one counter per script)."""

    def __init__(self) -> None:
        self.letters: Counter[str] = Counter()
        self.mains: Counter[str] = Counter()

    def add(self, texts: Sequence[str]) -> None:
        """Count the letters of a batch of texts (one sample each) in a few numpy passes.

        The script lookup runs once per distinct character of the batch; a
        sample's main script is its most frequent one (the first in order of
        :meth:`report` on a tie).
        """
        import numpy as np

        from fmtkit.stats.text import CHUNK_CHARS, chunks

        if sum(map(len, texts)) > CHUNK_CHARS:
            for part in chunks(texts):
                self.add(part)
            return
        if not texts:
            return
        cps = [np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) for t in texts]
        owner = np.repeat(np.arange(len(texts)), [len(c) for c in cps])
        script = _script_ids(np.concatenate(cps))
        letter = script >= 0
        width = len(_SCRIPTS)
        table = np.bincount(owner[letter] * width + script[letter], minlength=len(texts) * width).reshape(len(texts), width)
        for name, n in zip(_SCRIPTS, table.sum(axis=0).tolist()):
            if n:
                self.letters[name] += n
        has_letters = table.sum(axis=1) > 0
        for i, n in zip(*np.unique(table.argmax(axis=1)[has_letters], return_counts=True)):
            self.mains[_SCRIPTS[i]] += int(n)
        if (~has_letters).any():
            self.mains["none"] += int((~has_letters).sum())

    def merge(self, other: ScriptMix) -> None:
        self.letters.update(other.letters)
        self.mains.update(other.mains)

    def report(self) -> dict:
        """Letters per script and samples per main script, both most common first."""
        return {"letters": dict(self.letters.most_common()), "samples": dict(self.mains.most_common())}


def script_mix(samples: Iterable[Sample]) -> dict:
    """Letters per script and samples per main script of samples (see :class:`ScriptMix`)."""
    mix = ScriptMix()
    mix.add([plain_text(s) for s in samples])
    return mix.report()

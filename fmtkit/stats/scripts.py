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
from collections.abc import Iterable
from functools import lru_cache

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


class ScriptMix:
    """Running letters per script and samples per main script (bounded: one counter per script)."""

    def __init__(self) -> None:
        self.letters: Counter[str] = Counter()
        self.mains: Counter[str] = Counter()

    def add(self, text: str) -> None:
        per_sample: Counter[str] = Counter()
        # Count characters in C first; the script lookup then runs once per distinct character.
        for char, n in Counter(text).items():
            script = script_of(char)
            if script is not None:
                per_sample[script] += n
        self.letters.update(per_sample)
        self.mains[per_sample.most_common(1)[0][0] if per_sample else "none"] += 1

    def merge(self, other: ScriptMix) -> None:
        self.letters.update(other.letters)
        self.mains.update(other.mains)

    def report(self) -> dict:
        """Letters per script and samples per main script, both most common first."""
        return {"letters": dict(self.letters.most_common()), "samples": dict(self.mains.most_common())}


def script_mix(samples: Iterable[Sample]) -> dict:
    """Letters per script and samples per main script of samples (see :class:`ScriptMix`)."""
    mix = ScriptMix()
    for s in samples:
        mix.add(plain_text(s))
    return mix.report()

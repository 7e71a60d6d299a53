"""Dataset statistics: counts, lengths, duplicates, scripts, and how training sees a sample.

Everything here works on an iterable of :class:`~fmtkit.sample.Sample` (what
``fmtkit.read`` yields), so ``fmtkit stats``, ``fmtkit render`` and ``fmtkit
train`` (to warn before training) share one implementation. Only the token
functions import transformers, and only when called with a tokenizer.

>>> from fmtkit.sample import Sample, Turn
>>> samples = [Sample(turns=[Turn("user", "Hi"), Turn("assistant", "Hello!")])] * 2
>>> summarize(samples)["duplicates"]["exact"]
1
>>> length_report(samples, None, None)["unit"]
'characters'

With a tokenizer (any fast ``transformers`` tokenizer with a chat template)::

    report = length_report(samples, tokenizer, cutoff_len=1024)
    report["over_cutoff"], report["supervised_lost"]
    mask_problems(tokenizer, samples[0])   # [] when the loss mask looks right
"""

from __future__ import annotations

from fmtkit.stats.counts import count_samples
from fmtkit.stats.duplicates import find_duplicates
from fmtkit.stats.lengths import length_report
from fmtkit.stats.render import mask_problems, render_sample
from fmtkit.stats.scripts import script_mix
from fmtkit.stats.summary import summarize

__all__ = [
    "count_samples",
    "find_duplicates",
    "length_report",
    "mask_problems",
    "render_sample",
    "script_mix",
    "summarize",
]

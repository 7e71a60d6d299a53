"""Everything ``fmtkit stats`` reports about one entry, as one JSON-ready dict, streamed in bounded memory.

Samples are cut into batches; each batch is measured (:func:`measure`: counts,
scripts, character lengths, duplicate keys and, with a tokenizer, token
counts) in worker processes (``jobs``), and the measures are folded into one
:class:`EntryStats` in record order. Nothing per sample is kept: lengths go
into sketches, duplicates into a bounded key index (see
:mod:`fmtkit.stats.sketches` and :mod:`fmtkit.stats.duplicates` for which
figures become approximate past which size).

>>> from fmtkit.sample import Sample, Turn
>>> s = summarize([Sample(turns=[Turn("user", "Bonjour"), Turn("assistant", "Salut")])])
>>> sorted(s)
['characters', 'counts', 'duplicates', 'mask_problems', 'scripts', 'tokens']
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fmtkit.sample import Sample
from fmtkit.stats.counts import Counts
from fmtkit.stats.duplicates import DuplicateFinder, sample_keys
from fmtkit.stats.lengths import TokenTally
from fmtkit.stats.scripts import ScriptMix
from fmtkit.stats.sketches import LengthSketch
from fmtkit.stats.text import plain_text

BATCH = 512  # samples per task sent to a worker

# A progress callback: called with the number of samples measured so far.
Progress = Callable[[int], None]


@dataclass(slots=True)
class Measures:
    """What one batch of samples contributes (small and picklable: a worker returns it)."""

    records: int
    counts: Counts
    scripts: ScriptMix
    characters: LengthSketch
    tokens: TokenTally | None
    exact_keys: list[int]
    near_keys: Any  # uint64 array, samples x bands


def _measure_in_worker(samples: list[Sample]) -> Measures:
    from fmtkit.stats.tokens import worker_tokenizer

    return measure(samples, *worker_tokenizer())


def measure(samples: list[Sample], tokenizer: Any = None, cutoff_len: int | None = None) -> Measures:
    """Everything one batch contributes to the report.

    Token counting goes through :func:`count_tokens_in_batch`, the seam where a
    count of media tokens can join the text's.
    """
    counts, scripts, chars = Counts(), ScriptMix(), LengthSketch()
    for s in samples:
        counts.add(s)
    texts = [plain_text(s) for s in samples]
    scripts.add(texts)
    chars.add([len(t) for t in texts])
    tokens = None
    if tokenizer is not None:
        counted = count_tokens_in_batch(tokenizer, samples, cutoff_len)
        tokens = TokenTally(cutoff_len, counted.method)
        tokens.add(samples, counted)
    exact, near = sample_keys(samples, texts)
    return Measures(len(samples), counts, scripts, chars, tokens, exact, near)


def count_tokens_in_batch(tokenizer: Any, samples: list[Sample], cutoff_len: int | None) -> Any:
    """Per-sample token counts (:class:`~fmtkit.stats.tokens.TokenCounts`) of one batch: the text as the chat template
    renders it; with a :class:`~fmtkit.stats.tokens.MediaCounter` (a VLM's processor), images count as their image tokens."""
    from fmtkit.stats.tokens import MediaCounter, count_media_batch, count_tokens_serial

    if isinstance(tokenizer, MediaCounter):
        return count_media_batch(tokenizer, samples, cutoff_len)
    return count_tokens_serial(tokenizer, samples, cutoff_len)


class EntryStats:
    """The running figures of one entry, fed :class:`Measures` in record order."""

    def __init__(self) -> None:
        self.records = 0
        self.counts, self.scripts, self.characters = Counts(), ScriptMix(), LengthSketch()
        self.tokens: TokenTally | None = None
        self.duplicates = DuplicateFinder()

    def merge(self, m: Measures) -> None:
        self.counts.merge(m.counts)
        self.scripts.merge(m.scripts)
        self.characters.merge(m.characters)
        if m.tokens is not None:
            if self.tokens is None:
                self.tokens = TokenTally(m.tokens.cutoff_len, m.tokens.method)
            self.tokens.merge(m.tokens, offset=self.records)
        self.duplicates.add(m.exact_keys, m.near_keys)
        self.records += m.records

    def report(self, with_tokens: bool, cutoff_len: int | None = None) -> dict[str, Any]:
        tokens = None
        if with_tokens:
            tokens = (self.tokens or TokenTally(cutoff_len, "")).report()
        return {
            "counts": self.counts.report(),
            "characters": {"unit": "characters", "samples": self.records, **self.characters.distribution()},
            "tokens": tokens,
            "duplicates": self.duplicates.report(),
            "scripts": self.scripts.report(),
        }


def batches(samples: Iterable[Sample], size: int = BATCH) -> Iterator[list[Sample]]:
    """Lists of ``size`` samples (the last one shorter)."""
    it = iter(samples)
    while batch := list(itertools.islice(it, size)):
        yield batch


def summarize(
    samples: Iterable[Sample], tokenizer: Any = None, cutoff_len: int | None = None, *, jobs: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Counts, character lengths, token lengths (with a tokenizer, else None), duplicates, scripts, mask problems.

    ``samples`` may be any iterable (a stream is never held in memory);
    ``jobs`` worker processes measure batches (default: every core; 1: this
    process only). ``progress(n)`` is called after each batch.
    """
    from fmtkit.workers import available_cores, stream_in_workers

    first: list[Sample] = []  # the first trained sample: its loss mask tells what the template does

    def watch(stream: Iterable[Sample]) -> Iterator[Sample]:
        for s in stream:
            if not first and s.kind in ("sft", "kto", "preference"):
                first.append(s)
            yield s

    stats = EntryStats()
    tasks = batches(watch(samples))
    head = list(itertools.islice(tasks, 2))
    tasks = itertools.chain(head, tasks)
    jobs = (jobs or available_cores()) if len(head) > 1 else 1  # one batch: starting workers costs more than it saves
    from fmtkit.stats.tokens import MediaCounter, quiet_tokenizer_threads, set_worker_tokenizer

    with quiet_tokenizer_threads() if tokenizer is not None and jobs > 1 else contextlib.nullcontext():
        for m in stream_in_workers(_measure_in_worker, tasks, jobs, set_worker_tokenizer, (tokenizer, cutoff_len)):
            stats.merge(m)
            if progress is not None:
                progress(stats.records)
    report = stats.report(tokenizer is not None, cutoff_len)
    problems: list[str] = []
    if tokenizer is not None and first and not isinstance(tokenizer, MediaCounter):  # as render, no check with a VLM
        from fmtkit.stats.render import mask_problems

        # The mask depends on the template more than on the data: the first trained sample tells.
        problems = mask_problems(tokenizer, first[0])
    report["mask_problems"] = problems
    return report

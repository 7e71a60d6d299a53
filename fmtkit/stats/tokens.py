"""Token counts of whole samples as training renders them: batched, on every core.

For each sample: its length in tokens (the longer sequence of a preference
pair), its supervised tokens (those in the loss) and the answer tokens a
``cutoff_len`` would cut off as ``fmtkit train`` cuts by default
(``truncation: llamafactory``, :mod:`fmtkit.truncation`): a conversation turn by
turn, prompt and answer sharing the budget; a preference pair by its longer
answer; a KTO sample its prompt and answer; pretraining text is packed into
blocks, nothing cut.

Supervised tokens come from the template's ``{% generation %}`` markers
(``return_assistant_tokens_mask``: every assistant turn). A template without
markers cannot do assistant-only loss, so the count falls back to what
completion-only loss trains: the tokens after the rendered prompt (the prompt
followed by the assistant header). Pretraining text is all supervised.

Speed: conversations render as ``apply_chat_template`` renders them, then one
Rust call tokenizes the batch and the supervised tokens come from binary
searches in the token offsets (:func:`span_turns`), not from its per-token
Python loop: the same counts, 1.8-2.7x a per-sample loop (``bench/bench_stats.py --only D``).
Batches are spread over worker processes (:func:`fmtkit.workers.stream_in_workers`;
forked, so the tokenizer is not pickled). Rendering the Jinja template is
Python and is what the processes parallelise.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from fmtkit.errors import FmtkitError
from fmtkit.sample import Sample
from fmtkit.stats.conversation import ChatSequence, sequences
from fmtkit.templates import has_generation_markers
from fmtkit.truncation import pair_answers_kept, turn_budgets

BATCH_SIZE = 256
MIN_PER_PROCESS = 2048  # below this many samples per process, forking costs more than it saves

METHOD_MARKERS = "generation markers (every assistant turn)"
METHOD_PROMPT = "tokens after the prompt (the template has no generation markers)"
METHOD_NO_MASK = "none (the processor's template has no generation markers)"


@dataclass(slots=True)
class TokenCounts:
    """Per-sample counts (lists aligned with the samples); ``errors`` maps a sample index to why it failed to render."""

    total: list[int] = field(default_factory=list)
    supervised: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    method: str = METHOD_MARKERS
    errors: dict[int, str] = field(default_factory=dict)

    def extend(self, other: TokenCounts, offset: int) -> None:
        self.total += other.total
        self.supervised += other.supervised
        self.lost += other.lost
        self.errors.update({offset + i: e for i, e in other.errors.items()})


Turns = list[tuple[int, int]]  # (prompt, answer) lengths of a rendered sequence's turns


def _render(tokenizer: Any, batch: list[ChatSequence], mask: bool, prompt_only: bool = False) -> list[tuple[int, Turns]]:
    """(length, turns) of sequences sharing tools, generation-prompt and think-in-history flags, as
    ``apply_chat_template(..., return_assistant_tokens_mask=mask)`` gives them, without its per-token Python.

    The template renders each sequence as ``apply_chat_template`` does (transformers'
    ``render_jinja_template``: the text and the character spans of its ``{% generation %}``
    blocks); one Rust call tokenizes the batch; a token is supervised when it overlaps a
    span (transformers' rule), found by two binary searches per span in the token offsets
    rather than a loop over every token. Without ``mask``, a sequence is one prompt turn.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    if prompt_only:
        convs = [s.messages[: s.prompt_len] for s in batch]
        gen = True
    else:
        convs = [s.messages for s in batch]
        gen = batch[0].generation_prompt
    if not all(convs):  # a prompt of no message (an answer alone): apply_chat_template's own error
        raise ValueError("Cannot apply chat template to an empty conversation. Provide at least one message.")
    tools = batch[0].tools or None
    extra = {"think_in_history": True} if batch[0].think_in_history and not prompt_only else {}
    texts, spans = render_jinja_template(
        # as apply_chat_template normalises messages: keys whose value is None are left out
        conversations=[[{k: v for k, v in m.items() if v is not None} for m in conv] for conv in convs],
        tools=tools,
        chat_template=tokenizer.get_chat_template(None, tools),
        return_assistant_tokens_mask=mask,
        add_generation_prompt=gen,
        **{**tokenizer.special_tokens_map, **extra},
    )
    encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    if not mask:
        return [(len(e), [(len(e), 0)] if len(e) else []) for e in encodings]
    return [(len(e), span_turns(e.offsets, s)) for e, s in zip(encodings, spans, strict=True)]


def span_turns(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> Turns:
    """(prompt, answer) token counts of a rendered sequence: each answer is a run of tokens overlapping
    the character ``spans`` of its generation blocks, the prompt the tokens before it.

    The same pairs as :func:`fmtkit.truncation.turns` gives for the ids and assistant mask of
    ``apply_chat_template`` (token offsets in order, as it assumes too).

    >>> span_turns([(0, 3), (3, 5), (5, 9), (9, 10)], [(4, 9)])  # tokens 1-2 overlap the span
    [(1, 2), (1, 0)]
    >>> span_turns([(0, 2), (2, 4)], [(0, 4)]), span_turns([(0, 2)], []), span_turns([], [])
    ([(0, 2)], [(1, 0)], [])
    """
    n = len(offsets)
    runs: list[list[int]] = []  # [first, end) token ranges of the answers, touching ones joined
    for start, end in spans:
        first = bisect.bisect_right(offsets, start, key=_token_end)  # the first token ending after the span starts
        stop = bisect.bisect_left(offsets, end, lo=first, key=_token_start)  # the first token starting at its end
        if stop <= first:
            continue
        if runs and first <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], stop)
        else:
            runs.append([first, stop])
    pairs, pos = [], 0
    for first, stop in runs:
        pairs.append((first - pos, stop - first))
        pos = stop
    if pos < n:
        pairs.append((n - pos, 0))
    return pairs


_token_start, _token_end = itemgetter(0), itemgetter(1)  # of a token's (start, end) character offsets


def _count_sequences(tokenizer: Any, seqs: list[ChatSequence], markers: bool) -> list[tuple[int, int, Turns]]:
    """(total, supervised, turns) of chat sequences that share tools and generation-prompt flag."""
    if seqs[0].generation_prompt:
        return [(n, 0, []) for n, _ in _render(tokenizer, seqs, mask=False)]
    full = _render(tokenizer, seqs, mask=markers)
    if markers:
        return [(n, sum(a for _, a in seq_turns), seq_turns) for n, seq_turns in full]
    prompts = _render(tokenizer, seqs, mask=False, prompt_only=True)
    out = []
    for (n, _), (prompt_n, _) in zip(full, prompts, strict=True):
        p = min(prompt_n, n)
        out.append((n, n - p, [(p, n - p)]))
    return out


def answer_tokens_lost(kind: str, sequence_turns: list[Turns], cutoff: int | None) -> int:
    """Answer tokens ``fmtkit train``'s default truncation cuts off a sample (LLaMA-Factory's rule).

    An sft conversation is cut turn by turn; a preference pair (or KTO sample) keeps its prompt and
    last answer(s) in the budget, both answers cut to the longer one's share.

    >>> answer_tokens_lost("sft", [[(10, 30), (10, 30)]], 64)  # the second answer keeps 14 of 30
    16
    >>> answer_tokens_lost("preference", [[(100, 40)], [(100, 10)]], 64)  # both answers keep up to 18
    22
    """
    if cutoff is None or not sequence_turns or not any(sequence_turns):
        return 0
    if kind == "sft":
        (conversation,) = sequence_turns
        return sum(a for _, a in conversation) - sum(a for _, a in turn_budgets(conversation, cutoff))
    answers = [t[-1][1] if t else 0 for t in sequence_turns]
    prompt = sum(p + a for p, a in sequence_turns[0]) - answers[0]
    return sum(answers) - sum(pair_answers_kept(prompt, answers, cutoff))


def count_batch(tokenizer: Any, samples: Sequence[Sample], cutoff_len: int | None = None) -> TokenCounts:
    """Token counts of a batch of samples in this process (one tokenizer call per group of alike sequences)."""
    markers = has_generation_markers(tokenizer.chat_template)
    counts = TokenCounts(method=METHOD_MARKERS if markers else METHOD_PROMPT)
    per_sample = [[0, 0, 0] for _ in samples]
    sample_turns: list[list[Turns]] = [[] for _ in samples]
    texts: list[tuple[int, str]] = []
    groups: dict[tuple[str, bool, bool], list[tuple[int, ChatSequence]]] = defaultdict(list)
    for i, sample in enumerate(samples):
        for seq in sequences(sample):
            if seq.text is not None:
                texts.append((i, seq.text))
            else:
                groups[(seq.tools_key, seq.generation_prompt, seq.think_in_history)].append((i, seq))
    if texts:
        eos = 1 if tokenizer.eos_token_id is not None else 0  # trainers append EOS to pretraining text
        ids = tokenizer([t for _, t in texts], add_special_tokens=False)["input_ids"]
        for (i, _), row in zip(texts, ids, strict=True):
            n = len(row) + eos
            per_sample[i] = [n, n, 0]  # packed into cutoff_len blocks: nothing is cut
    for members in groups.values():
        seqs = [s for _, s in members]
        try:
            results = _count_sequences(tokenizer, seqs, markers)
        except Exception:  # one sample the template rejects: count the others one by one
            results = []
            for i, seq in members:
                try:
                    results.extend(_count_sequences(tokenizer, [seq], markers))
                except Exception as exc:  # noqa: BLE001 - the template's own error, reported per sample
                    counts.errors[i] = f"{type(exc).__name__}: {exc}"
                    results.append((0, 0, []))
        for (i, _), (n, sup, seq_turns) in zip(members, results, strict=True):
            row = per_sample[i]
            row[0] = max(row[0], n)  # a preference pair is as long as its longer sequence
            row[1] += sup
            sample_turns[i].append(seq_turns)
    for sample, (n, sup, lost), seq_turns in zip(samples, per_sample, sample_turns, strict=True):
        counts.total.append(n)
        counts.supervised.append(sup)
        counts.lost.append(lost + answer_tokens_lost(sample.kind, seq_turns, cutoff_len))
    return counts


@dataclass(frozen=True, slots=True)
class MediaCounter:
    """What token counts use for a vision-language model: its ``processor`` (image sizes already set, see
    :func:`fmtkit.models.vision.set_image_pixels`) and the folder ``base_dir`` the entry's media paths are relative to.

    Passed where a tokenizer goes (``summarize(samples, MediaCounter(processor, base_dir))``); the seam
    :func:`fmtkit.stats.summary.count_tokens_in_batch` counts with :func:`count_media_batch` then.
    """

    processor: Any
    base_dir: Path


def count_media_batch(counter: MediaCounter, samples: Sequence[Sample], cutoff_len: int | None = None) -> TokenCounts:
    """Token counts of a batch with a VLM's processor: each image counts as the image tokens it expands to.

    Chat samples render one by one as ``fmtkit render`` renders them
    (:func:`fmtkit.models.vision.vision_ids_and_mask`: same tokens, same loss
    mask); pretraining text is counted as :func:`count_batch` counts it.
    """
    from fmtkit.models.vision import loss_template, open_image, vision_ids_and_mask

    processor = counter.processor
    template = loss_template(processor)
    counts = TokenCounts(method=METHOD_MARKERS if template is not None else METHOD_NO_MASK)
    texts = [i for i, s in enumerate(samples) if all(seq.text is not None for seq in sequences(s))]
    text_counts = count_batch(processor.tokenizer, [samples[i] for i in texts], cutoff_len) if texts else None
    by_text = dict(zip(texts, range(len(texts)), strict=True))
    for i, sample in enumerate(samples):
        if i in by_text:
            j = by_text[i]
            n, sup, lost = text_counts.total[j], text_counts.supervised[j], text_counts.lost[j]
        else:
            n = sup = lost = 0
            try:
                images = [open_image(counter.base_dir / path) for path in sample.images]
                for seq in sequences(sample):
                    ids, mask = vision_ids_and_mask(processor, seq, images, template)
                    n = max(n, len(ids))  # a preference pair is as long as its longer sequence
                    sup += sum(mask)
                    lost += sum(mask[cutoff_len:]) if cutoff_len is not None else 0
            except Exception as exc:  # noqa: BLE001 - an unreadable image, the template's or processor's error: per sample
                counts.errors[i] = str(exc) if isinstance(exc, FmtkitError) else f"{type(exc).__name__}: {exc}"
                n = sup = lost = 0
        counts.total.append(n)
        counts.supervised.append(sup)
        counts.lost.append(lost)
    return counts


def count_tokens_serial(tokenizer: Any, samples: Sequence[Sample], cutoff_len: int | None = None, batch_size: int = BATCH_SIZE) -> TokenCounts:
    """Token counts in this process, ``batch_size`` samples per tokenizer call."""
    counts = TokenCounts(method=METHOD_MARKERS if has_generation_markers(tokenizer.chat_template) else METHOD_PROMPT)
    for start in range(0, len(samples), batch_size):
        counts.extend(count_batch(tokenizer, samples[start : start + batch_size], cutoff_len), start)
    return counts


# What each worker counts with, set once per worker (inherited when forked, never pickled then).
_WORKER: dict[str, Any] = {"tokenizer": None, "cutoff_len": None}


def set_worker_tokenizer(tokenizer: Any, cutoff_len: int | None) -> None:
    """The pool's initializer: the tokenizer (or None) and cutoff this worker process counts with."""
    _WORKER.update(tokenizer=tokenizer, cutoff_len=cutoff_len)


def worker_tokenizer() -> tuple[Any, int | None]:
    """The tokenizer and cutoff :func:`set_worker_tokenizer` set in this process."""
    return _WORKER["tokenizer"], _WORKER["cutoff_len"]


def worker_counts(samples: Sequence[Sample]) -> TokenCounts:
    """Token counts of a batch with the worker's tokenizer (see :func:`set_worker_tokenizer`)."""
    tokenizer, cutoff_len = worker_tokenizer()
    return count_tokens_serial(tokenizer, samples, cutoff_len)


@contextlib.contextmanager
def quiet_tokenizer_threads() -> Iterator[None]:
    """Configure the Rust thread pool before forking (children then say nothing about "already used
    parallelism"); the setting is restored for this process afterwards."""
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def count_tokens(tokenizer: Any, samples: Sequence[Sample], cutoff_len: int | None = None, jobs: int | None = None) -> TokenCounts:
    """Per-sample token counts of a list of samples, on ``jobs`` processes (default: every core available).

    Small inputs and ``jobs=1`` run in this process. (``fmtkit stats`` streams
    through :func:`fmtkit.stats.summary.summarize` instead, keeping no per-sample lists.)
    """
    from fmtkit.workers import available_cores, stream_in_workers

    samples = samples if isinstance(samples, list) else list(samples)
    jobs = min(jobs or available_cores(), max(1, len(samples) // MIN_PER_PROCESS))
    if jobs <= 1:
        return count_tokens_serial(tokenizer, samples, cutoff_len)
    # A few chunks per process keep every core busy to the end when samples differ in length.
    step = max(BATCH_SIZE, -(-len(samples) // (jobs * 4)))
    chunks = (samples[i : i + step] for i in range(0, len(samples), step))
    counts = TokenCounts(method=METHOD_MARKERS if has_generation_markers(tokenizer.chat_template) else METHOD_PROMPT)
    with quiet_tokenizer_threads():
        for start, part in zip(range(0, len(samples), step), stream_in_workers(worker_counts, chunks, jobs, set_worker_tokenizer, (tokenizer, cutoff_len))):
            counts.extend(part, start)
    return counts

"""LLaMA-Factory's truncation to ``cutoff_len``, as token counts: what ``fmtkit train`` keeps by default.

Shared by ``fmtkit train`` (``truncation: llamafactory``, which cuts the token ids
this way: :mod:`trainer_plugin.encode`) and ``fmtkit stats --cutoff-len`` (which
counts the answer tokens it cuts off). Pure arithmetic: importing it imports nothing.

- a conversation (sft) is cut turn by turn: each (prompt, answer) pair gets a share
  of the budget left (:func:`split_budget`); once it is spent, later turns are left out;
- a preference pair: the prompt and the *longer* answer share ``cutoff_len``, both
  answers are cut to that answer's share (:func:`pair_answers_kept`); kto: the prompt
  and its answer share it.

>>> split_budget(10, 5, 64)  # it fits: nothing is cut
(10, 5)
>>> split_budget(100, 100, 64)  # both long: split by their ratio
(32, 32)
>>> split_budget(10, 100, 64)  # a short prompt is kept whole, the answer takes the rest
(10, 54)
>>> split_budget(100, 20, 64)  # a short answer is kept whole, the prompt takes the rest
(44, 20)
"""

from __future__ import annotations


def split_budget(prompt_len: int, answer_len: int, budget: int) -> tuple[int, int]:
    """How many prompt and answer tokens LLaMA-Factory keeps of a pair in ``budget`` tokens (its ``infer_seqlen``).

    An answer shorter than half the budget is kept whole; else a prompt shorter than half is kept
    whole and the answer gets the rest; else the budget is shared in proportion to the two lengths.
    """
    if 2 * answer_len < budget:
        answer_room = budget
    elif 2 * prompt_len < budget:
        answer_room = budget - prompt_len
    else:
        answer_room = int(budget * answer_len / (prompt_len + answer_len))
    answer = min(answer_room, answer_len)
    return min(max(budget - answer, 0), prompt_len), answer


def turn_budgets(turn_lengths: list[tuple[int, int]], cutoff: int) -> list[tuple[int, int]]:
    """(prompt, answer) tokens kept of each turn of a conversation cut turn by turn; turns past the budget left out.

    >>> turn_budgets([(10, 30), (10, 30)], 64)  # the second turn shares what the first left: 24
    [(10, 30), (10, 14)]
    >>> turn_budgets([(60, 10), (5, 5)], 64)
    [(54, 10)]
    """
    kept: list[tuple[int, int]] = []
    used = 0
    for prompt_len, answer_len in turn_lengths:
        room = cutoff - used
        if room <= 0:
            break
        kept.append(split_budget(prompt_len, answer_len, room))
        used += sum(kept[-1])
    return kept


def pair_answers_kept(prompt_len: int, answer_lens: list[int], cutoff: int) -> list[int]:
    """Tokens kept of each answer of a preference pair: the longer answer's share, for both.

    >>> pair_answers_kept(100, [40, 10], 64)  # the longer answer (40) gets 64 * 40 / 140 = 18
    [18, 10]
    """
    _, keep = split_budget(prompt_len, max(answer_lens, default=0), cutoff)
    return [min(n, keep) for n in answer_lens]


def turns(ids: list[int], mask: list[int]) -> list[tuple[list[int], list[int]]]:
    """A rendered conversation as (prompt, answer) pairs: each run of unmasked tokens, then the masked run after it.

    >>> turns([1, 2, 3, 4, 5, 6], [0, 0, 1, 0, 1, 1])
    [([1, 2], [3]), ([4], [5, 6])]
    >>> turns([1, 2], [0, 0])  # no answer marked: one prompt
    [([1, 2], [])]
    """
    pairs: list[tuple[list[int], list[int]]] = []
    source: list[int] = []
    target: list[int] = []
    for token, trained in zip(ids, mask, strict=True):
        if not trained and target:
            pairs.append((source, target))
            source, target = [], []
        (target if trained else source).append(token)
    if source or target:
        pairs.append((source, target))
    return pairs

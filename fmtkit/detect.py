"""Detecting the form of a data file from its first records.

>>> detect_form([{"conversations": [{"from": "human", "value": "Hi"}]}])
'sharegpt'
>>> detect_form([{"prompt": "Hi", "chosen": "a", "rejected": "b"}])
'trl-preference'
>>> detect_form([{"x": 1}]) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fmtkit.forms import FORMS as _FORMS

# Every form name fmtkit knows (from the form registry): LLaMA-Factory forms first, then TRL's, then vendors'.
FORMS = tuple(_FORMS)


def v1_record(record: Any) -> str | None:
    """Which sample of LLaMA-Factory's experimental v1 data format (``USE_V1=1``) a record is ("sft", "dpo"), or None.

    v1 messages hold their content as a list of ``{"type", "value"}`` parts
    and may carry a ``loss_weight``; its pairs are ``chosen_messages`` and
    ``rejected_messages``. LLaMA-Factory 0.9.x's ``dataset_info.json`` loader
    reads none of it.

    >>> v1_record({"messages": [{"role": "user", "content": [{"type": "text", "value": "hi"}], "loss_weight": 0.0}]})
    'sft'
    >>> v1_record({"chosen_messages": [], "rejected_messages": []}), v1_record({"messages": [{"role": "user", "content": "hi"}]})
    ('dpo', None)
    """
    if not isinstance(record, dict):
        return None
    if "chosen_messages" in record and "rejected_messages" in record:
        return "dpo"
    msgs = record.get("messages")
    if not isinstance(msgs, list):
        return None
    for m in msgs[:4]:
        if not isinstance(m, dict):
            return None
        content = m.get("content")
        parts = content if isinstance(content, list) else []
        if "loss_weight" in m or any(isinstance(p, dict) and "value" in p and "type" in p and "text" not in p for p in parts):
            return "sft"
    return None


def detect_v1(records: Iterable[Any], sample: int = 20) -> str | None:
    """The v1 sample kind (:func:`v1_record`) of most of the first ``sample`` records, or None."""
    found = [v1_record(r) for i, r in zip(range(sample), records, strict=False)]
    kinds = [k for k in found if k]
    return max(set(kinds), key=kinds.count) if len(kinds) * 2 > len(found) else None


def detect_record(record: Any) -> str | None:
    """The form one record looks like, or None (LLaMA-Factory's v1 format included: :func:`v1_record`)."""
    if not isinstance(record, dict):
        return None
    if v1_record(record):
        return None
    keys = record.keys()
    if "preferred_output" in keys or "non_preferred_output" in keys:
        return "vendor-preference"
    if "conversations" in keys:
        if "chosen" in keys or "rejected" in keys:
            return "sharegpt-preference"
        return "sharegpt-kto" if "kto_tag" in keys else "sharegpt"
    if "instruction" in keys:
        if "chosen" in keys or "rejected" in keys:
            return "alpaca-preference"
        return "alpaca-kto" if "kto_tag" in keys else "alpaca"
    if "chosen" in keys and "rejected" in keys:  # before `messages`: preference sets often carry an SFT copy (UltraFeedback)
        return "trl-preference" if "prompt" in keys else "trl-preference-implicit"
    if "messages" in keys and "prompt" not in keys:  # beside a prompt: a TRL row whose key set fits no type (FMT300)
        msgs = record["messages"]
        first = msgs[0] if isinstance(msgs, list) and msgs else None
        if isinstance(first, dict) and "from" in first:
            return "sharegpt"  # ShareGPT turns under a `messages` column
        return "openai"
    if "label" in keys and "completion" in keys:
        return "trl-unpaired"
    if "prompt" in keys:
        return "trl-prompt-completion" if "completion" in keys else "trl-prompt-only"
    if "text" in keys:
        return "alpaca-pretrain"
    return None


def detect_form(records: Iterable[Any], sample: int = 20) -> str | None:
    """The most common form among the first ``sample`` records, or None."""
    counts: dict[str, int] = {}
    for i, record in enumerate(records):
        if i >= sample:
            break
        form = detect_record(record)
        if form:
            counts[form] = counts.get(form, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None

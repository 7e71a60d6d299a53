"""FMT4xx: conversations (ShareGPT and OpenAI message lists), as LLaMA-Factory's converter reads them.

LLaMA-Factory drops a row with only a log line when a role is out of place or
the turn count is wrong; these rules report each such row with its reason.
Roles, order and turn count come from :func:`fmtkit.alignment.align`, the one
statement of how LLaMA-Factory aligns messages (the readers use it too).
"""

from __future__ import annotations

from fmtkit.rules import ERROR, INFO, WARNING, declare, rule, json_type, sample_check
from fmtkit.alignment import LLAMAFACTORY
from fmtkit.rules.view import EntryView
from fmtkit.sample import Sample


def _conv(view: EntryView) -> bool:
    return view.entry.is_conversation and view.entry.messages is not None


def _messages(rec: dict, view: EntryView):
    msgs = rec.get(view.entry.messages)
    return msgs if type(msgs) is list else None


@rule("FMT401", "messages-not-list", ERROR, "make the messages column a non-empty list of message objects", applies=_conv)
def messages_not_list(rec: dict, view: EntryView):
    """The messages column is missing, not a list, empty, or holds a non-object.

    An OpenAI assistant message with ``tool_calls`` may leave ``content`` out:
    `datasets` fills the key with null and LLaMA-Factory's openai reader puts the
    calls in its place (its sharegpt reader ignores ``tool_calls``, so there the
    key is needed).

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": []}
    """
    col = view.entry.messages
    msgs = rec.get(col)
    if msgs is None:
        return f"no {col!r} column in this record"
    if type(msgs) is not list:
        return f"{col!r} is {json_type(msgs)}, not a list of messages"
    if not msgs:
        return f"{col!r} is empty"
    e = view.entry
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            return f"message {i} is {json_type(m)}, not an object"
        if e.role_tag not in m or e.content_tag not in m:  # both readers index m[content_tag]
            if e.role_tag in m and e.formatting == "openai" and m.get("tool_calls"):
                continue  # `datasets` fills the key with null, and the openai reader replaces it by the calls
            if i == 0 and e.system_tag is not None and m.get(e.role_tag) == e.system_tag:
                continue  # a null system prompt: the template's default
            missing = e.role_tag if e.role_tag not in m else e.content_tag
            message = f"message {i} has no {missing!r} key (keys: {', '.join(map(repr, m))})"
            for role_key, content_key in (("role", "content"), ("from", "value")):
                if role_key in m and (role_key, content_key) != (e.role_tag, e.content_tag):
                    return message + f"; for such messages set the entry's tags role_tag={role_key!r}, content_tag={content_key!r}"
            if "tool_calls" in m:
                return message + "; LLaMA-Factory reads it even beside tool_calls: write it as null or \"\""
            return message
    return None


@rule("FMT402", "unknown-role", ERROR, "use one of the entry's tags as the role, or add the tag to `tags`", applies=_conv)
def unknown_role(rec: dict, view: EntryView):
    """A message's role is not one of the entry's tags.

    The message names the tags the entry configures. A partial `tags` block
    leaves the other tags unset: an entry giving only role/content/user/assistant
    tags has no system tag, so a leading system message becomes invalid.

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt", "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
        # demo.jsonl
        {"conversations": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    """
    aligned = view.alignment(rec)
    return aligned.problem("FMT402") if aligned is not None else None


@rule("FMT403", "role-order", ERROR, "alternate user (or observation) and assistant (or function_call) turns", applies=_conv)
def role_order(rec: dict, view: EntryView):
    """A role stands where LLaMA-Factory does not accept it.

    After an optional leading system message, even positions (0, 2, ...) must
    be user or observation turns and odd positions assistant or function_call
    turns; a system message anywhere else is also out of place.

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "human", "value": "Hello?"}, {"from": "gpt", "value": "Hello"}]}
    """
    aligned = view.alignment(rec)
    return aligned.problem("FMT403") if aligned is not None else None


@rule("FMT404", "turn-count", ERROR, "end SFT/KTO conversations with the answer, preference prompts with the user turn", applies=_conv)
def turn_count(rec: dict, view: EntryView):
    """The number of turns does not fit the entry.

    Without ``ranking`` a conversation needs an even number of turns (it ends
    with the assistant's answer or a function call); with ``ranking`` an odd
    number (it ends with the user turn; the answers are ``chosen`` and
    ``rejected``). A leading system message is not counted.

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Bye"}]}
    """
    aligned = view.alignment(rec)
    return aligned.problem("FMT404") if aligned is not None and rec.get(view.entry.messages) else None


@rule("FMT405", "content-not-string", ERROR, "make each message's content a string (fmtkit convert --to sharegpt flattens OpenAI typed content parts into text and <image> placeholders)", applies=_conv)
def content_not_string(rec: dict, view: EntryView):
    """A message's content is not a string (a list of typed parts, a number, null).

    LLaMA-Factory's templates need plain strings; OpenAI's list-of-parts
    content must be flattened first (``fmtkit convert`` does).

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": [{"type": "text", "text": "Hi"}]}, {"from": "gpt", "value": "Hello"}]}
    """
    msgs = _messages(rec, view)
    if not msgs:
        return None
    tag = view.entry.content_tag
    for i, m in enumerate(msgs):
        if type(m) is dict:
            c = m.get(tag)
            if c is None and ("tool_calls" in m or (i == 0 and m.get(view.entry.role_tag) == view.entry.system_tag and view.tags.order == LLAMAFACTORY)):
                continue  # replaced by the calls; LLaMA-Factory takes a null system prompt for none (chat templates fail on it)
            if c is None and tag not in m and i == 0 and view.tags.order != LLAMAFACTORY and m.get(view.entry.role_tag) == view.entry.system_tag:
                return f"message 0: a system message without {tag!r}, on which chat templates fail"
            if type(c) is not str and tag in m:
                return f"message {i}: {tag!r} is {json_type(c)}, not a string"
    return None


@rule("FMT406", "empty-content", WARNING, "fill in the message, or drop the record", applies=_conv)
def empty_content(rec: dict, view: EntryView):
    """A message's content is empty or only white space: the model trains on nothing there.

    Checked in every conversational form (TRL's and vendors' too).

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ""}]}
    """
    msgs = _messages(rec, view)
    if not msgs:
        return None
    tag = view.entry.content_tag
    for i, m in enumerate(msgs):
        if type(m) is dict:
            c = m.get(tag)
            if type(c) is str and not c.strip() and "tool_calls" not in m:
                return f"message {i} is empty"
    return None


_OPENAI_KEYS = frozenset(("tool_calls", "tool_call_id", "name", "weight", "reasoning_content", "thinking", "loss", "function_call"))


@rule("FMT407", "unknown-message-key", WARNING, "rename the key to the entry's role/content tag, or remove it", applies=_conv)
def unknown_message_key(rec: dict, view: EntryView):
    """A message has a key besides its role and content tags: often a misspelled tag.

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi", "valeu": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    """
    msgs = _messages(rec, view)
    if not msgs:
        return None
    e = view.entry
    for i, m in enumerate(msgs):
        if type(m) is dict and len(m) > 2:
            extra = [k for k in m if k != e.role_tag and k != e.content_tag and k not in _OPENAI_KEYS]
            if extra:
                return f"message {i} has unknown key(s) {', '.join(map(repr, extra))}"
    return None


@rule("FMT408", "system-overridden", INFO, "keep the system prompt in one place", applies=lambda v: _conv(v) and v.entry.system is not None and v.entry.system_tag is not None)
def system_overridden(rec: dict, view: EntryView):
    """A record has both a system column and a leading system message; the message wins.

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "Be brief."}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
        # demo.jsonl
        {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "Be brief."}
    """
    aligned = view.alignment(rec)
    if aligned is not None and aligned.system_index is not None and rec.get(view.entry.system):
        return "the leading system message overrides the system column"
    return None


@rule("FMT409", "bad-weight", ERROR, "set weight to 0 or 1", applies=lambda v: _conv(v) and v.entry.is_bare)
def bad_weight(rec: dict, view: EntryView):
    """A message's `weight` (OpenAI's per-message training switch) is not the integer 0 or 1.

    Checked in bare OpenAI files, whose weights OpenAI's fine-tuning reads;
    null means no weight. LLaMA-Factory never reads `weight` (FMT410).

    Passes::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 1}]}

    Fails::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0.5}]}
    """
    msgs = _messages(rec, view)
    if not msgs:
        return None
    for i, m in enumerate(msgs):
        if type(m) is dict and m.get("weight") is not None and (type(m["weight"]) is not int or m["weight"] not in (0, 1)):
            return f"message {i} has weight {m['weight']!r}"
    return None


@rule("FMT410", "weight-ignored", WARNING, "remove the turn (or the whole record) that should not be trained, or drop the weight key", applies=lambda v: _conv(v) and not v.entry.is_bare)
def weight_ignored(rec: dict, view: EntryView):
    """A message has a `weight` other than 1 in an entry LLaMA-Factory reads, which never reads `weight`.

    OpenAI's fine-tuning API skips an assistant message with weight 0;
    LLaMA-Factory ignores the key and trains on the message all the same, so
    the data does not mean what it says there. (Null and 1 mean the same to both.)

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 1}]}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0}]}
    """
    msgs = _messages(rec, view)
    if not msgs:
        return None
    odd = [i for i, m in enumerate(msgs) if type(m) is dict and m.get("weight") is not None and m["weight"] != 1]
    if odd:
        more = f" (and message{'s' if len(odd) > 2 else ''} {', '.join(map(str, odd[1:]))})" if len(odd) > 1 else ""
        return f"message {odd[0]} has weight {msgs[odd[0]]['weight']!r}{more}, but LLaMA-Factory ignores weight and trains on it"
    return None



@rule("FMT412", "no-final-answer", WARNING, "end the conversation with the assistant's answer, or drop the messages after it", applies=lambda v: _conv(v) and v.tags.order != LLAMAFACTORY)
def no_final_answer(rec: dict, view: EntryView):
    """A conversation read in any order (a bare OpenAI file) ends with a user or tool message, not an answer.

    Chat templates render it as it is, so a trainer of the whole text trains
    on it, but nothing answers the last message: fmtkit reads it as a prompt,
    which converts to prompt-only forms only. (An entry LLaMA-Factory reads
    counts turns instead: FMT404.)

    Passes::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

    Fails::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]}
    """
    msgs = _messages(rec, view)
    if not msgs or type(msgs[-1]) is not dict or msgs[-1].get(view.entry.role_tag) == view.entry.assistant_tag:
        return None  # the common case, without aligning
    aligned = view.alignment(rec)
    return aligned.problem("FMT412") if aligned is not None else None


declare(
    "FMT411", "prompt-continued", WARNING, "end the prompt with the user's message, or use trl-prompt-completion with that message as the completion", "record",
    """A TRL prompt-only row whose prompt ends with an assistant message.

    TRL's chat template then continues that message (``continue_final_message``)
    instead of starting a new answer: the row is a prefill, which no other form
    can hold (they read a conversation ending with the assistant as answered),
    so ``convert`` skips it.

    Passes::

        # demo.jsonl (alone)
        {"prompt": [{"role": "user", "content": "Name a colour."}]}

    Fails::

        # demo.jsonl (alone)
        {"prompt": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "The colour is"}]}
    """,
)  # fmt: skip


@sample_check("FMT406")
def empty_content_sample(sample: Sample):
    from fmtkit.forms import EMPTY_SYSTEM_HINT

    if sample.hints.get(EMPTY_SYSTEM_HINT):
        return "the system message is empty: chat templates render an empty system block, which a converted copy loses"
    sides = [("message", i, t) for i, t in enumerate(sample.turns)]
    sides += [(name, None, t) for name, t in (("chosen", sample.chosen), ("rejected", sample.rejected)) if t is not None]
    for name, i, t in sides:
        if not t.tool_calls and not t.content.strip():
            return f"{name} {i} is empty" if i is not None else f"{name} is empty"
    return None

"""How a message list becomes turns: LLaMA-Factory's turn, role and tag semantics, stated once.

LLaMA-Factory's two conversation readers (``formatting: sharegpt`` and
``formatting: openai``) align a record's messages the same way:

1. a first message whose role is the entry's ``system_tag`` is the system
   prompt (it overrides the ``system`` column);
2. the openai reader only: an assistant message with ``tool_calls`` is a
   function call turn, and consecutive tool results are one observation turn;
3. the turns alternate: user or observation at even positions, assistant or
   function call at odd ones; a system message anywhere else is out of place
   (in any order too: many chat templates refuse it);
4. without ``ranking`` the count is even (the record ends with its answer),
   with ``ranking`` odd (the prompt ends with the user; the answers are
   ``chosen`` and ``rejected``); the openai reader drops tool results that
   end the conversation before it counts.

A record that breaks 3 or 4 is dropped with a log line; a role that is none
of the entry's tags is dropped by the sharegpt reader and stops the openai
reader's whole load (a ``KeyError``). OpenAI's own API and TRL's chat templates
take turns in any order (:data:`ANY_ORDER`): a bare OpenAI file is read that
way, while every entry of a ``dataset_info.json`` is read as LLaMA-Factory
reads it (:data:`LLAMAFACTORY`). :func:`order_of` decides which, once.

The rules (FMT402, FMT403, FMT404), the readers in :mod:`fmtkit.forms` and so
``convert`` all take their verdict from :func:`align`; fast paths may only
accept a record that :func:`align` would accept.

>>> from fmtkit.dataset_info import DatasetEntry
>>> tags = Tags.of(DatasetEntry.for_file("sharegpt"))
>>> a = align([{"from": "system", "value": "S"}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], tags)
>>> (a.system_index, [t.role for t in a.turns], a.problems)
(0, ['user', 'assistant'], [])
>>> align([{"from": "human", "value": "Hi"}, {"from": "human", "value": "Hi?"}], tags).problems[0].code
'FMT403'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from fmtkit.dataset_info import DatasetEntry

LLAMAFACTORY = "llamafactory"  # LLaMA-Factory's alternation and turn count
ANY_ORDER = "any"  # any order, as OpenAI's API and chat templates take it

_PROMPT_SIDE = ("user", "tool")
_ANSWER_SIDE = ("assistant", "function")


def order_of(entry: DatasetEntry) -> str:
    """The turn order a record of ``entry`` must follow.

    An entry of a ``dataset_info.json`` is read by LLaMA-Factory, so its order
    holds; a bare data file follows its form's own (:attr:`fmtkit.forms.Form.order`:
    OpenAI's is any order).

    >>> order_of(DatasetEntry.for_file("openai")), order_of(DatasetEntry.for_file("sharegpt"))
    ('any', 'llamafactory')
    """
    if entry.is_bare:
        from fmtkit.forms import FORMS

        form = FORMS.get(entry.form)
        if form is not None:
            return form.order
    return LLAMAFACTORY


class Problem(NamedTuple):
    """Why LLaMA-Factory would not read a record's turns as written: a rule code and a message."""

    code: str
    message: str


class AlignedTurn(NamedTuple):
    """One turn: its canonical role (``user``, ``assistant``, ``tool``, ``function``), its first message, how many messages."""

    role: str
    index: int
    count: int = 1


@dataclass(slots=True)
class Alignment:
    system_index: int | None  # 0 when the first message is the system prompt
    turns: list[AlignedTurn]
    problems: list[Problem]

    def problem(self, code: str) -> str | None:
        """The message of the first problem with ``code``, or None."""
        for p in self.problems:
            if p.code == code:
                return p.message
        return None


@dataclass(frozen=True, slots=True)
class Tags:
    """An entry's tags, resolved once: role value -> canonical role, and how its reader aligns."""

    role_tag: Any
    content_tag: Any
    system_tag: Any
    roles: dict[Any, str]
    openai_reader: bool  # formatting: openai (tool_calls and merged tool results)
    ranking: bool
    order: str
    described: str  # the tags, for messages

    @classmethod
    def of(cls, entry: DatasetEntry, order: str | None = None) -> Tags:
        roles: dict[Any, str] = {}
        for tag, role in ((entry.user_tag, "user"), (entry.assistant_tag, "assistant"),
                          (entry.observation_tag, "tool"), (entry.function_tag, "function")):  # fmt: skip
            if tag is not None:
                roles.setdefault(tag, role)
        names = ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
        described = ", ".join(f"{k}={getattr(entry, k)!r}" for k in names if getattr(entry, k) is not None)
        unset = [k for k in ("observation_tag", "function_tag", "system_tag") if getattr(entry, k) is None]
        if unset:
            described += f"; unset because `tags` leaves them out: {', '.join(unset)}"
        return cls(entry.role_tag, entry.content_tag, entry.system_tag, roles, entry.formatting == "openai",
                   entry.ranking is True, order or order_of(entry), described)  # fmt: skip


def align(messages: list[Any], tags: Tags) -> Alignment:
    """The turns of a message list and why LLaMA-Factory would not read them as written (see the module).

    Messages that are not objects are left to FMT401: alignment stops there with no problem.

    >>> from fmtkit.dataset_info import DatasetEntry
    >>> entry = DatasetEntry.from_dict("d", {"file_name": "d.json", "formatting": "openai", "columns": {"messages": "messages"},
    ...     "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
    ...              "observation_tag": "tool", "function_tag": "function", "system_tag": "system"}})
    >>> a = align([{"role": "user", "content": "Q"}, {"role": "assistant", "tool_calls": [{}]},
    ...            {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"}, {"role": "assistant", "content": "A"}], Tags.of(entry))
    >>> [(t.role, t.count) for t in a.turns], a.problems
    ([('user', 1), ('function', 1), ('tool', 2), ('assistant', 1)], [])
    """
    rt = tags.role_tag
    if any(type(m) is not dict for m in messages):
        return Alignment(None, [], [])
    start = 1 if messages and tags.system_tag is not None and messages[0].get(rt) == tags.system_tag else 0
    turns: list[AlignedTurn] = []
    problems: list[Problem] = []
    unknown = None
    for i in range(start, len(messages)):
        m = messages[i]
        tag = m.get(rt)
        try:
            role = tags.roles.get(tag)
        except TypeError:  # a list or object as role
            role = None
        if role is None:
            if tag is not None and tag == tags.system_tag:
                role = "system"
            elif unknown is None:
                unknown = i
                stops = "stops the openai reader's whole load" if tags.openai_reader else "drops the record"
                problems.append(Problem("FMT402", f"message {i} has role {tag!r}, which is none of the entry's tags "
                                                  f"({tags.described}); LLaMA-Factory {stops}"))  # fmt: skip
        if tags.openai_reader and role == "assistant" and m.get("tool_calls"):
            role = "function"
        if tags.openai_reader and role == "tool" and turns and turns[-1].role == "tool":
            last = turns[-1]
            turns[-1] = AlignedTurn("tool", last.index, last.count + 1)
            continue
        turns.append(AlignedTurn(role or "unknown", i, 1))
    if tags.order == LLAMAFACTORY and tags.openai_reader and turns and turns[-1].role == "tool":
        last = turns.pop()  # its reader writes merged tool results out only when another message follows
        problems.append(Problem("FMT404", f"message {last.index}: tool results end the conversation, and LLaMA-Factory's "
                                          "openai reader drops them (it writes them out only before a following message)"))  # fmt: skip
    if tags.order != LLAMAFACTORY:
        late = next((t for t in turns if t.role == "system"), None)
        if late is not None:  # chat templates differ on it: many refuse it, some render it in place
            problems.append(Problem("FMT403", f"message {late.index} is a system message; only the first message may be one"))
        if not turns:
            problems.append(Problem("FMT404", "no turn besides the system message"))
        elif turns[-1].role not in _ANSWER_SIDE and not tags.ranking:
            problems.append(Problem("FMT412", f"message {turns[-1].index} ({turns[-1].role}) ends the conversation: no answer follows it"))
        return Alignment(0 if start else None, turns, problems)
    if unknown is None:
        for k, turn in enumerate(turns):
            if turn.role not in (_ANSWER_SIDE if k & 1 else _PROMPT_SIDE):
                at = f"message {turn.index}"
                if turn.role == "system":
                    message = f"{at} is a system message; only the first message may be one"
                else:
                    where = "an assistant/function_call" if k & 1 else "a user/observation"
                    message = f"{at} has role {messages[turn.index].get(rt)!r} where {where} turn must stand"
                problems.append(Problem("FMT403", message))
                break
    n = len(turns)
    counted = f"{n} turn{'' if n == 1 else 's'}" + (" after the system message" if start else "")
    if tags.openai_reader and any(t.count > 1 for t in turns):
        counted += " (consecutive tool results count as one)"
    if tags.ranking:
        if n % 2 == 0:
            problems.append(Problem("FMT404", f"{counted}; a preference prompt needs an odd number (ending with the user)"))
    elif n % 2 == 1:
        problems.append(Problem("FMT404", f"{counted}; the conversation must end with the assistant (an even number)"))
    elif n == 0:
        problems.append(Problem("FMT404", "no turn besides the system message"))
    return Alignment(0 if start else None, turns, problems)

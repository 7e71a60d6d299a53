"""Readers and writers of every form, around the one :class:`~fmtkit.sample.Sample` model.

A *reader* turns one record (a dict) of its form into a Sample, honouring the
entry's column and tag names; it raises :class:`ReadError` for a record it
cannot read. A *writer* turns a Sample into a record of its form and returns
``(record, losses)``: each :class:`Loss` names, with a stable code, something
of the sample the form cannot express. ``convert`` is read, then write.

Adding a form is one reader, one writer and one line in :data:`FORMS` below.

>>> from fmtkit.dataset_info import DatasetEntry
>>> entry = DatasetEntry.for_file("alpaca")
>>> sample = FORMS["alpaca"].read({"instruction": "Hi", "output": "Hello"}, entry)
>>> FORMS["sharegpt"].write(sample)
({'conversations': [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hello'}]}, [])
>>> FORMS["trl-text"].write(sample)[1]
[Loss(code='kind', message='trl-text holds pretraining text, not sft samples')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fmtkit.dataset_info import DatasetEntry
from fmtkit.sample import Sample


class Loss(NamedTuple):
    """Something a writer could not express: a stable ``code`` and a one-line ``message``."""

    code: str
    message: str


class ReadError(ValueError):
    """A record its reader cannot turn into a Sample (the record is skipped, never guessed at).

    ``code`` is the rule code validate reports for the same problem
    (``fmtkit explain CODE``), so convert's "unreadable:FMT403" and validate's
    FMT403 name one thing.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# Loss codes: code -> (what is lost, in words; whether converting drops it or skips the record).
# "drop" losses are metadata no trainer reads (the record is written without it);
# every other loss would change what is trained, so the record is skipped.
LOSS_CODES: dict[str, tuple[str, str]] = {
    "kind": ("a kind of sample (sft, preference, kto, pretrain, prompt-only) the form does not hold", "skip"),
    "system": ("a system prompt", "skip"),
    "tools": ("tool definitions", "skip"),
    "tool-calls": ("assistant tool calls", "skip"),
    "tool-results": ("tool results", "skip"),
    "tool-call-text": ("text beside tool calls in one assistant turn", "skip"),
    "multi-turn": ("more than one exchange", "skip"),
    "role-order": ("a turn order the form cannot express", "skip"),
    "media": ("images, videos or audios", "skip"),
    "weight": ("per-message training weights", "skip"),
    "implicit-prompt": ("preference pairs without a separate prompt (try --extract-prompt)", "skip"),
    "prompt-boundary": ("where the prompt ends inside chosen and rejected (recoverable with --extract-prompt)", "drop"),
    "tool-call-ids": ("tool call ids", "drop"),
    "input-split": ("the Alpaca instruction/input split (the text is kept: LLaMA-Factory joins the two with a newline)", "drop"),
    "extra-fields": ("fields that no part of the model holds", "drop"),
    "message-fields": ("message keys that no part of the model holds (name, reasoning_content, ...)", "drop"),
    "part-fields": ("fields of content parts that no part of the model holds (an image's detail, ...)", "drop"),
    # "warn": written whole, but the output's loader cannot use it
    "media-url": ("image URLs (http(s):// or data:), which LLaMA-Factory cannot open (FMT607): written as they are; download the images and write local paths", "warn"),
}


def is_droppable(code: str) -> bool:
    """Whether the record is still written despite the loss (it only drops metadata, or is a warning)."""
    return LOSS_CODES.get(code, ("", "skip"))[1] in ("drop", "warn")


# Keys of ``Sample.hints`` start with this prefix: hints about how the source
# spelled the sample (e.g. Alpaca's instruction/input split). They change nothing
# in meaning; writers of the same form use them and others ignore them, except
# DROPPED_HINT: ``(loss code, where)`` pairs for what the reader could not carry
# (e.g. an image part's ``detail``), which every writer reports as losses.
HINT_PREFIX = "fmtkit:"
DROPPED_HINT = HINT_PREFIX + "dropped"
QUERY_HINT = HINT_PREFIX + "input"  # the Alpaca `input` joined into the last user turn (forms without the split report "input-split")
PARTS_HINT = HINT_PREFIX + "parts"  # some content was a list of typed parts (read into strings and media)
EMPTY_SYSTEM_HINT = HINT_PREFIX + "empty-system"  # an empty system message, which chat templates render and a Sample cannot hold (FMT406)

Reader = Callable[[dict[str, Any], DatasetEntry], Sample]
Writer = Callable[..., tuple[dict[str, Any], list[Loss]]]


@dataclass(frozen=True, slots=True)
class Form:
    """One form, every fact about it in one place: its reader, its writer, the columns its writer emits,
    its JSON Schema, the ``dataset_info.json`` entry that registers it and the one a bare file of it
    stands for, and the turn order a bare file follows. The tables elsewhere
    (:data:`fmtkit.detect.FORMS`, :func:`fmtkit.schemas.schema_for_form`,
    :meth:`fmtkit.dataset_info.DatasetEntry.for_file`) are read from here.

    ``columns`` maps each column the writer may emit to the value that stands
    for "absent" (``REQUIRED`` for columns every record has); converted files
    give every record the same keys, as Arrow loading needs. ``roles`` maps a
    LLaMA-Factory column role to its column name for ``dataset_info.json``
    (empty for forms LLaMA-Factory cannot load).

    ``direct`` holds optional fast lanes, measured to matter for the busiest
    conversions: target form -> lane factory (see :mod:`fmtkit.forms.lanes`),
    which turns a JSON Lines line straight into the target's line, exactly as
    the general path would, or passes it on to the general path. A lane never
    writes media (records with media take the general path, which rebases their
    paths). Tests check the lanes against the general path and the validator.
    """

    name: str
    read: Reader
    write: Writer
    columns: dict[str, Any]
    roles: dict[str, str] = field(default_factory=dict)
    entry: dict[str, Any] | None = None  # the entry keys besides columns (formatting, ranking, tags)
    direct: dict[str, Callable[[DatasetEntry, dict[str, Any]], Callable[[bytes], Any] | None]] = field(default_factory=dict)
    schema: str | None = None  # the file in schemas/ that checks a record of the form
    bare: dict[str, Any] | None = None  # the entry a bare data file of the form stands for (LLaMA-Factory forms)
    order: str = "llamafactory"  # the turn order of a bare file (:mod:`fmtkit.alignment`); entries follow LLaMA-Factory's


REQUIRED = object()


def _forms() -> dict[str, Form]:
    from fmtkit.forms import alpaca, openai, sharegpt, trl, vendor

    forms = [
        alpaca.FORM, alpaca.PRETRAIN_FORM, alpaca.PREFERENCE_FORM, alpaca.KTO_FORM,
        sharegpt.FORM, sharegpt.PREFERENCE_FORM, sharegpt.KTO_FORM,
        openai.FORM,
        trl.TEXT_FORM, trl.MESSAGES_FORM, trl.PROMPT_ONLY_FORM, trl.PROMPT_COMPLETION_FORM,
        trl.PREFERENCE_FORM, trl.PREFERENCE_IMPLICIT_FORM, trl.UNPAIRED_FORM,
        vendor.PREFERENCE_FORM,
    ]  # fmt: skip
    return {f.name: f for f in forms}


FORMS: dict[str, Form] = _forms()
# derived: the entry each bare data file of a LLaMA-Factory form stands for, as a user would register it
BARE_ENTRIES: dict[str, dict[str, Any]] = {name: f.bare for name, f in FORMS.items() if f.bare is not None}


def reader_for(entry: DatasetEntry, form: str | None = None) -> Reader:
    """The reader for records of an entry (or of a forced ``form``).

    LLaMA-Factory entries are read by their family: every conversation entry by
    the ShareGPT reader (which honours any tags, OpenAI's included), except
    plain OpenAI-tagged SFT entries, read by the OpenAI reader; the turn order
    comes from :func:`fmtkit.alignment.order_of`.
    """
    if form is not None:
        return FORMS[form].read
    name = entry.form
    if name in FORMS:
        return FORMS[name].read
    return FORMS["sharegpt" if entry.is_conversation else "alpaca"].read


def describe_loss(code: str) -> str:
    return LOSS_CODES.get(code, (code, "skip"))[0]

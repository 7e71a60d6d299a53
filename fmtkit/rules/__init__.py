"""The rule registry: every check fmtkit makes, with a stable code.

A rule is a code (``FMT401``), a short name, a severity, a one-line fix, and a
docstring that documents it with an example that passes and one that fails
(``fmtkit explain FMT401`` prints it; the tests run every example). Codes are
grouped by what they look at:

=======  ===========================================
FMT1xx   ``dataset_info.json`` and its entries
FMT2xx   reading files (JSON, encodings)
FMT3xx   Alpaca records (and the record schemas)
FMT4xx   conversations (ShareGPT, OpenAI)
FMT5xx   preference pairs and KTO labels
FMT6xx   multimodal media
FMT7xx   tools and function calls
FMT8xx   whole files (types across rows, duplicates)
FMT9xx   fitness for a training stage (``--stage``)
=======  ===========================================

Adding a rule: write a function in the module of its group, decorate it with
:func:`rule`, and give it a docstring with ``Passes::`` and ``Fails::`` examples.
A *record* rule's function takes ``(record, view)`` and returns None when the
record is fine, else a message (or a list of messages). A rule that means
something for any sample (an identical pair, an empty answer) also gets a
*sample* check with :func:`sample_check`: it takes the canonical
:class:`~fmtkit.sample.Sample` and runs on the forms read without a
LLaMA-Factory entry (TRL's, vendors'), so every form gets it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fmtkit.findings import ERROR, INFO, WARNING  # noqa: F401  (re-exported for rule modules)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: str
    fix: str
    scope: str  # "info" | "entry" | "file" | "record" | "dataset" | "stage"
    doc: str
    check: Callable[..., Any] | None = None
    applies: Callable[..., bool] | None = None
    on_sample: Callable[..., Any] | None = None  # the same check on a Sample, for forms without an entry view

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line."""
        first = self.doc.strip().split("\n\n")[0]
        return " ".join(first.split()) or self.name


RULES: dict[str, Rule] = {}

_JSON_TYPES = {str: "string", dict: "object", list: "array", bool: "boolean", int: "number", float: "number", type(None): "null"}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages.

    >>> json_type(None), json_type([]), json_type(True)
    ('null', 'array', 'boolean')
    """
    return _JSON_TYPES.get(type(value), type(value).__name__)


def rule(code: str, name: str, severity: str, fix: str, scope: str = "record", applies: Callable[..., bool] | None = None):
    """Register the decorated function as the check of rule ``code``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        declare(code, name, severity, fix, scope, inspect.getdoc(fn) or "", fn, applies)
        return fn

    return register


def sample_check(code: str):
    """Register the decorated function as rule ``code``'s check on a :class:`~fmtkit.sample.Sample`.

    It takes the sample and returns None, a message, or a list of messages.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        from dataclasses import replace

        RULES[code] = replace(RULES[code], on_sample=fn)
        return fn

    return register


def declare(code, name, severity, fix, scope, doc, check=None, applies=None) -> Rule:
    """Register a rule whose check lives in the engine (loading, schemas) rather than in a function."""
    if code in RULES:
        raise ValueError(f"rule code {code} registered twice")
    RULES[code] = Rule(code, name, severity, fix, scope, inspect.cleandoc(doc), check, applies)
    return RULES[code]


def load_all() -> dict[str, Rule]:
    """Import every rule module (registration happens on import) and return the registry."""
    from fmtkit.rules import alpaca, conversation, files, info, media, preference, stage, tools, trl_columns, whole_file  # noqa: F401

    return dict(sorted(RULES.items()))


def get(code: str) -> Rule:
    return load_all()[code.upper()]

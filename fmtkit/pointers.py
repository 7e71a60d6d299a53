"""JSON Pointers to the offending value of a record finding.

A record rule says what is wrong in its message ("message 1 has role 'bot'");
the pointer says where: ``/conversations/1/from``. The conversation (FMT4xx)
and Alpaca (FMT3xx) rules, FMT503 (KTO label) and FMT601 (media not a list)
name the message or column in a fixed form, from
which :func:`rule_pointer` builds the pointer with the entry's own column and tag
names; ``tests/test_linter_output.py`` runs every such rule's failing example, so
a message that changes form fails there. Schema errors (FMT300) get theirs from
the schema's error path (:func:`schema_pointer`).
"""

from __future__ import annotations

import ast
import re

from fmtkit.locate import pointer

_MESSAGE = re.compile(r"message (\d+)\b")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_HISTORY_ITEM = re.compile(r"history\[(\d+)\]")


def _first_quoted(text: str) -> str | None:
    m = _QUOTED.search(text)
    return ast.literal_eval(m.group()) if m else None


def rule_pointer(code: str, message: str, entry) -> str | None:
    """The pointer for a record rule's finding, or None where the message names no place.

    >>> from fmtkit.dataset_info import DatasetEntry
    >>> e = DatasetEntry.from_dict("d", {"file_name": "d.jsonl", "formatting": "sharegpt"})
    >>> rule_pointer("FMT402", "message 1 has role 'bot', which is not one of the entry's tags", e)
    '/conversations/1/from'
    """
    if entry is None:
        return None
    group = code[:4]
    if group == "FMT4" and entry.messages is not None:
        col = entry.messages
        m = _MESSAGE.match(message)
        if m is None:  # about the whole list, its first (system) message, or a column that is not there
            if code == "FMT404" or code == "FMT401" and message.startswith(repr(col)):
                return pointer(col)
            return pointer(col, 0) if code == "FMT408" else None
        i = int(m.group(1))
        if code in ("FMT402", "FMT403"):
            tail = entry.role_tag
        elif code in ("FMT405", "FMT406"):
            tail = entry.content_tag
        elif code == "FMT407":
            tail = _first_quoted(message[m.end() :])  # the first unknown key
        else:
            tail = "weight" if code in ("FMT409", "FMT410") else None
        return pointer(col, i, tail) if tail is not None else pointer(col, i)
    if code in ("FMT503", "FMT601"):  # "'label' is 'true' (string), ...", "'images' is a string, ..."
        col = _first_quoted(message)
        return pointer(col) if col is not None else None
    if group == "FMT3" and code != "FMT300":
        if code == "FMT302":
            col = _first_quoted(message)
            return pointer(col) if col is not None else None
        if code == "FMT303":
            col = entry.response if "answer" in message else entry.prompt
            return pointer(col) if col is not None else None
        if code == "FMT305" and entry.history is not None:
            return pointer(entry.history)
        if code == "FMT304" and entry.history is not None:
            m = _HISTORY_ITEM.match(message)
            return pointer(entry.history, int(m.group(1))) if m else pointer(entry.history)
    return None


def schema_pointer(path: str, schema_view) -> str | None:
    """The pointer in the record for an error at ``path`` (``conversations/1/from``) of the record's
    projection under its form's default names (see :class:`fmtkit.record_loop._SchemaView`).

    >>> schema_pointer("output", None)
    '/output'
    """
    if not path:
        return ""
    parts: list = path.split("/")
    if schema_view is not None and schema_view.keys:
        columns = dict(schema_view.keys)
        parts[0] = columns.get(parts[0], parts[0])
        if schema_view.retag is not None and len(parts) >= 3 and parts[0] in columns.values():
            role_tag, content_tag, _ = schema_view.retag
            parts[2] = {"from": role_tag, "value": content_tag}.get(parts[2], parts[2])
    return pointer(*parts)

"""Findings: what a rule says about one place in a dataset.

The JSON form of a finding is a public interface (``fmtkit validate --output-format json``):
``code``, ``severity`` (``error``, ``warning`` or ``info``), ``file`` (relative to
the folder validated), ``line`` (1-based or null), ``record`` (0-based or null),
``entry`` (dataset name or null), ``message``, ``fix``, ``column`` (1-based or null: where
``line`` and ``column`` point at the offending value when ``pointer`` is known, else at the
record's start) and ``pointer`` (a JSON Pointer, RFC 6901, to the offending value inside
the record, or null).

>>> Finding("FMT401", "error", "role 'bot' is not a configured tag", "use 'gpt'", file="a.json", line=3).to_dict()["line"]
3
"""

from __future__ import annotations

from dataclasses import dataclass, fields

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
SEVERITY_RANK = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(slots=True)
class Finding:
    """One problem at one place: a rule's code and severity, what is wrong, and how to fix it."""

    code: str
    severity: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None
    record: int | None = None
    entry: str | None = None
    column: int | None = None
    pointer: str | None = None

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def sort_key(self) -> tuple:
        return (self.file or "", self.line or 0, self.record if self.record is not None else -1, self.column or 0, self.code)


_FIELDS = tuple(f.name for f in fields(Finding))

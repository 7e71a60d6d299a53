"""Reporters: each renders a :class:`fmtkit.validation.Report` in one output format.

``human`` for people; ``json`` (fmtkit's own, versioned), ``github`` (Actions
annotations), ``sarif`` (2.1.0, for code scanning), ``junit`` (JUnit XML, for CI
test views) and ``gitlab`` (GitLab code quality) for machines.

>>> sorted(FORMATS)
['github', 'gitlab', 'human', 'json', 'junit', 'sarif']
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TextIO

from fmtkit.findings import ERROR, SEVERITY_RANK

FORMATS = {
    "human": "fmtkit.report.human:render",
    "json": "fmtkit.report.json_report:render",
    "github": "fmtkit.report.github:render",
    "sarif": "fmtkit.report.sarif:render",
    "junit": "fmtkit.report.junit:render",
    "gitlab": "fmtkit.report.gitlab:render",
}
REPORTERS = FORMATS  # the name before --output-format


def render(report, output: str = "human", quiet: bool = False, out: TextIO | None = None, **options) -> None:
    """Write ``report`` in the ``output`` format to ``out`` (standard output by default).

    ``options`` go to the reporter that takes them (``max_per_rule`` for human).
    """
    import importlib

    module, _, attr = FORMATS[output].partition(":")
    getattr(importlib.import_module(module), attr)(report, out or sys.stdout, quiet=quiet, **options)


def plain(text: str) -> str:
    """A rule's documentation as plain text: reStructuredText's ``code`` as `code`, ``Passes::`` as ``Passes:``.

    >>> plain("Give ``--entry``. Passes::")
    'Give `--entry`. Passes:'
    """
    import re

    return re.sub(r"::$", ":", text.replace("``", "`"), flags=re.M)


def shown(report, quiet: bool, fail_on: str = ERROR) -> list:
    """The findings to write, in order: all of them, or with ``quiet`` those at or above ``fail_on``."""
    findings = sorted(report.findings, key=lambda f: f.sort_key)
    return [f for f in findings if SEVERITY_RANK[f.severity] <= SEVERITY_RANK[fail_on]] if quiet else findings


def capped(findings: list, max_per_rule: int) -> tuple[list, dict[str, int]]:
    """The first ``max_per_rule`` findings of each rule (all with 0), and how many of each rule were left out.

    >>> from fmtkit.findings import Finding
    >>> kept, more = capped([Finding("FMT402", "error", "m", "f")] * 3, 2)
    >>> len(kept), more
    (2, {'FMT402': 1})
    """
    seen: dict[str, int] = {}
    kept = []
    for f in findings:
        seen[f.code] = seen.get(f.code, 0) + 1
        if not max_per_rule or seen[f.code] <= max_per_rule:
            kept.append(f)
    return kept, {code: n - max_per_rule for code, n in seen.items() if max_per_rule and n > max_per_rule}


def display_path(report, file: str | None) -> str:
    """Where a finding's file is, as the user can open it: relative to the working folder when
    it lies below it, else as the validated path was given.

    >>> from fmtkit.validation import Report
    >>> display_path(Report(root="dataset"), "chat.jsonl")
    'dataset/chat.jsonl'
    """
    if getattr(report, "stdin", False):
        return "-"
    if "://" in report.root or (file and "://" in file):  # read with --remote: a URL, or a hub file's URL
        return file if file and "://" in file else f"{report.root.rstrip('/')}/{file}" if file else report.root
    return _display(report.root, file, os.getcwd())


@functools.lru_cache(maxsize=4096)
def _display(root: str, file: str | None, cwd: str) -> str:
    path = Path(root) / file if file else Path(root)
    try:
        rel = path.resolve().relative_to(Path(cwd).resolve())
        return rel.as_posix() if str(rel) != "." else "."
    except ValueError:
        return os.path.normpath(path).replace(os.sep, "/")


def location(report, f) -> str:
    """``path:line:column`` (as far as known) of a finding, for terminals and editors."""
    where = display_path(report, f.file)
    if f.line:
        where += f":{f.line}"
        if f.column:
            where += f":{f.column}"
    return where

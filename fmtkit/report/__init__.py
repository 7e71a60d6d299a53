"""Reporters: they only render a :class:`fmtkit.validation.Report` (human, json, github).

>>> sorted(REPORTERS)
['github', 'human', 'json']
"""

from __future__ import annotations

REPORTERS = {
    "human": "fmtkit.report.human:render",
    "json": "fmtkit.report.json_report:render",
    "github": "fmtkit.report.github:render",
}


def render(report, output: str, quiet: bool = False) -> None:
    """Print ``report`` in the ``output`` format to standard output."""
    import importlib

    module, _, attr = REPORTERS[output].partition(":")
    getattr(importlib.import_module(module), attr)(report, quiet=quiet)

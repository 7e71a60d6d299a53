"""``--output json``: one JSON object with ``findings``, ``files`` and ``summary`` (a public interface)."""

from __future__ import annotations

import sys

import orjson


def render(report, quiet: bool = False) -> None:
    data = report.to_dict()
    if quiet:
        data["findings"] = [f for f in data["findings"] if f["severity"] == "error"]
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()

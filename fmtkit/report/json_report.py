"""``--output-format json``: one JSON object with ``version``, ``findings``, ``files`` and ``summary`` (a public interface).

``version`` changes when a field changes meaning or goes away (new fields may come
without one). Version 2 added ``version``, and per finding ``path`` (the file as
the user can open it: relative to the working folder), ``column`` and ``pointer``.
"""

from __future__ import annotations

import orjson

from fmtkit.report import display_path, shown

VERSION = 2


def render(report, out, quiet: bool = False, fail_on: str = "error", **_) -> None:
    data = {"version": VERSION, **report.to_dict()}
    data["findings"] = [f.to_dict() for f in shown(report, quiet, fail_on)]
    for f in data["findings"]:
        f["path"] = display_path(report, f["file"])
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    out.flush()

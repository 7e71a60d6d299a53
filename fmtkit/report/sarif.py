"""``--output-format sarif``: SARIF 2.1.0, which GitHub code scanning (and other code hosts) read.

One run; its tool lists every rule of the registry (name, summary, fix, full
documentation, default level, and a help URI where the installed package names
its documentation); each finding is a result at its file, line and column, with
the record, entry and JSON Pointer as properties.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, metadata
from urllib.parse import quote

from fmtkit import __version__
from fmtkit.report import display_path, plain, shown

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def docs_url() -> str | None:
    """The rules reference, from the installed package's ``Documentation`` project URL (None without one)."""
    try:
        urls = metadata("fmtkit").get_all("Project-URL") or []
    except PackageNotFoundError:
        return None
    for item in urls:
        label, _, url = item.partition(",")
        if label.strip().lower() == "documentation" and url.strip():
            return url.strip().rstrip("/") + "/rules.md"
    return None


def uri(path: str) -> str:
    """A relative or ``file:`` URI for a displayed path.

    >>> uri("data/my chat.jsonl"), uri("/tmp/a.jsonl")
    ('data/my%20chat.jsonl', 'file:///tmp/a.jsonl')
    """
    return f"file://{quote(path)}" if path.startswith("/") else quote(path)


def sarif_log(report, quiet: bool = False, fail_on: str = "error") -> dict:
    from fmtkit.rules import load_all

    rules = load_all()
    index = {code: i for i, code in enumerate(rules)}
    base = docs_url()
    driver = {
        "name": "fmtkit",
        "version": __version__,
        "rules": [
            {
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": plain(r.summary)},
                "fullDescription": {"text": plain(r.doc or r.summary)},
                "help": {"text": f"Fix: {r.fix}\n\n{plain(r.doc)}"},
                "defaultConfiguration": {"level": LEVEL[r.severity]},
                **({"helpUri": f"{base}#{r.code.lower()}"} if base else {}),
            }
            for r in rules.values()
        ],
    }
    if base:
        driver["informationUri"] = base
    results = []
    for f in shown(report, quiet, fail_on):
        region = {}
        if f.line:
            region["startLine"] = f.line
            if f.column:
                region["startColumn"] = f.column
        physical = {"artifactLocation": {"uri": uri(display_path(report, f.file))}}
        if region:
            physical["region"] = region
        props = {k: v for k, v in (("record", f.record), ("entry", f.entry), ("pointer", f.pointer)) if v is not None}
        result = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": LEVEL[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [{"physicalLocation": physical}],
        }
        if props:
            result["properties"] = props
        results.append(result)
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results, "columnKind": "unicodeCodePoints"}]}


def render(report, out, quiet: bool = False, fail_on: str = "error", **_) -> None:
    out.write(json.dumps(sarif_log(report, quiet, fail_on), ensure_ascii=False, indent=2) + "\n")
    out.flush()

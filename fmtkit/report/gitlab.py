"""``--output-format gitlab``: GitLab code quality JSON (a list of issues), for ``artifacts:reports:codequality``.

Severities map error -> major, warning -> minor, info -> info; each issue's
``fingerprint`` is stable across runs for the same finding at the same place.
"""

from __future__ import annotations

import hashlib
import json

from fmtkit.report import display_path, shown

SEVERITY = {"error": "major", "warning": "minor", "info": "info"}


def render(report, out, quiet: bool = False, fail_on: str = "error", **_) -> None:
    issues = []
    for f in shown(report, quiet, fail_on):
        path = display_path(report, f.file)
        key = "\0".join(str(x) for x in (f.code, path, f.line, f.column, f.record, f.pointer, f.message))
        issues.append({
            "description": f"{f.code}: {f.message}" + (f" (at {f.pointer})" if f.pointer else ""),
            "check_name": f.code,
            "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
            "severity": SEVERITY[f.severity],
            "location": {"path": path, "lines": {"begin": f.line or 1}},
        })  # fmt: skip
    out.write(json.dumps(issues, ensure_ascii=False, indent=2) + "\n")
    out.flush()

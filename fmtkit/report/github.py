"""``--output github``: GitHub Actions workflow commands, one annotation per finding.

>>> _escape("50% done\\nnext")
'50%25 done%0Anext'
"""

from __future__ import annotations

import os

from fmtkit.findings import ERROR

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def render(report, quiet: bool = False) -> None:
    for f in sorted(report.findings, key=lambda f: f.sort_key):
        if quiet and f.severity != ERROR:
            continue
        path = os.path.join(report.root, f.file) if f.file else report.root
        props = [f"file={_prop(os.path.normpath(path))}", f"title={_prop(f.code)}"]
        if f.line:
            props.insert(1, f"line={f.line}")
        where = f" (record {f.record})" if f.record is not None else ""
        print(f"::{_LEVEL[f.severity]} {','.join(props)}::{_escape(f'{f.message}{where}. Fix: {f.fix}')}")
    s = report.summary
    print(f"fmtkit: {s['errors']} errors, {s['warnings']} warnings in {s['files']} files ({s['records']} records)")

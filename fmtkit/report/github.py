"""``--output-format github``: GitHub Actions workflow commands, one annotation per finding.

>>> _escape("50% done\\nnext")
'50%25 done%0Anext'
"""

from __future__ import annotations

from fmtkit.report import display_path, shown

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def render(report, out, quiet: bool = False, fail_on: str = "error", **_) -> None:
    for f in shown(report, quiet, fail_on):
        props = [f"file={_prop(display_path(report, f.file))}"]
        if f.line:
            props.append(f"line={f.line}")
            if f.column:
                props.append(f"col={f.column}")
        props.append(f"title={_prop(f.code)}")
        where = f" (record {f.record})" if f.record is not None else ""
        at = f" at {f.pointer}" if f.pointer else ""
        print(f"::{_LEVEL[f.severity]} {','.join(props)}::{_escape(f'{f.message}{where}{at}. Fix: {f.fix}')}", file=out)
    s = report.summary
    print(f"fmtkit: {s['errors']} errors, {s['warnings']} warnings in {s['files']} files ({s['records']} records)", file=out)

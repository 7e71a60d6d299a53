"""``--output-format junit``: JUnit XML, which most CI systems show as test results.

One ``testsuite`` per file checked; one ``testcase`` per finding (named
``CODE line:column``), a ``failure`` when its severity is at or above ``fail_on``
and a passing case with the message in ``system-out`` below it; a file without
findings has one passing case. The layout follows the JUnit XSD that Jenkins
and pytest use (testsuites > testsuite > testcase > failure | system-out).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby

from fmtkit.findings import SEVERITY_RANK
from fmtkit.report import display_path, shown


def render(report, out, quiet: bool = False, fail_on: str = "error", **_) -> None:
    findings = shown(report, quiet, fail_on)
    limit = SEVERITY_RANK[fail_on]
    suites = ET.Element("testsuites", name="fmtkit validate")
    by_file = {file: list(group) for file, group in groupby(findings, key=lambda f: f.file)}
    for fr in report.files:
        by_file.setdefault(fr.file, [])
    total = failed = 0
    for file, group in by_file.items():
        path = display_path(report, file)
        suite = ET.SubElement(suites, "testsuite", name=path)
        fails = 0
        for f in group or [None]:
            if f is None:
                ET.SubElement(suite, "testcase", name="fmtkit validate", classname=path)
                continue
            where = f"{f.line}:{f.column}" if f.line and f.column else str(f.line or "-")
            case = ET.SubElement(suite, "testcase", name=f"{f.code} {where}", classname=path)
            text = f"{path}:{where}: {f.code} {f.severity}: {f.message}" + (f" (record {f.record})" if f.record is not None else "") + (f" at {f.pointer}" if f.pointer else "") + f"\nfix: {f.fix}"
            if SEVERITY_RANK[f.severity] <= limit:
                failure = ET.SubElement(case, "failure", message=f.message, type=f.code)
                failure.text = text
                fails += 1
            else:
                ET.SubElement(case, "system-out").text = text
        n = max(len(group), 1)
        suite.set("tests", str(n))
        suite.set("failures", str(fails))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        total += n
        failed += fails
    suites.set("tests", str(total))
    suites.set("failures", str(failed))
    suites.set("errors", "0")
    ET.indent(suites)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n")
    out.flush()

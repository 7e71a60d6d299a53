"""Human output: findings grouped by file, then a summary table (rich)."""

from __future__ import annotations

from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fmtkit.findings import ERROR
from fmtkit.report.terminal import console as safe_console

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _count(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(report, quiet: bool = False, console: Console | None = None) -> None:
    console = console or safe_console(highlight=False, soft_wrap=True)
    findings = sorted(report.findings, key=lambda f: f.sort_key)
    if quiet:
        findings = [f for f in findings if f.severity == ERROR]
    for file, group in groupby(findings, key=lambda f: f.file or "(dataset)"):
        console.print(Text(file, style="bold underline"))
        for f in group:
            where = f"{f.line}" if f.line else "-"
            rec = f" record {f.record}" if f.record is not None else ""
            entry = f" [{f.entry}]" if f.entry else ""
            line = Text("  ")
            line.append(f"{file}:{where}", style="dim")
            line.append(f" {f.code} ", style=_STYLE[f.severity])
            line.append(f"{f.severity}{rec}{entry}: ", style=_STYLE[f.severity])
            line.append(f.message)
            console.print(line)
            console.print(Text(f"      fix: {f.fix}", style="dim"))
    s = report.summary
    if quiet:
        if s["errors"]:
            console.print(Text(f"{_count(s['errors'], 'error')} in {report.root}"))
        return
    if findings:
        console.print()
    for rel, form in report.detected.items():
        console.print(Text.assemble((f"{rel}: detected form ", "dim"), (form, "bold")))
    for note in report.notes:
        console.print(Text(note, style="dim"))
    for name in report.not_checked:
        console.print(Text(f"entry {name!r}: reads from a hub, a script or cloud storage; not checked locally", style="dim"))
    table = Table(title="fmtkit validate", title_justify="left", show_edge=False)
    table.add_column("checked")
    table.add_column("count", justify="right")
    table.add_row("entries", str(s["entries"]))
    table.add_row("files", str(s["files"]))
    table.add_row("records", str(s["records"]))
    table.add_row(Text("errors", style=_STYLE["error"]), str(s["errors"]))
    table.add_row(Text("warnings", style=_STYLE["warning"]), str(s["warnings"]))
    table.add_row(Text("info", style=_STYLE["info"]), str(s["infos"]))
    console.print(table)
    if s["by_rule"]:
        from fmtkit.rules import RULES

        rules = Table(show_edge=False)
        rules.add_column("rule")
        rules.add_column("severity")
        rules.add_column("findings", justify="right")
        rules.add_column("what")
        for code, n in s["by_rule"].items():
            r = RULES[code]
            rules.add_row(code, Text(r.severity, style=_STYLE[r.severity]), str(n), Text(r.summary))
        console.print(rules)
    verdict = "[bold red]errors found[/]" if report.has_errors else "[bold green]no errors[/]"
    console.print(verdict)

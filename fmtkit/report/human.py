"""Human output: findings grouped by file (at most ``max_per_rule`` of each rule), then a summary table (rich).

Locations read ``path:line:column`` with the path relative to the working
folder, so terminals and editors jump to them.
"""

from __future__ import annotations

from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fmtkit.config import DEFAULT_MAX_PER_RULE
from fmtkit.report import capped, display_path, location, plain, shown
from fmtkit.report.terminal import console as safe_console

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _count(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _checked(report) -> str:
    """What was validated, for the one-line summary: the file itself when a single bare file, else the folder."""
    if not report.entries and len(report.files) == 1:
        return display_path(report, report.files[0].file)
    return report.root


def render(report, out=None, quiet: bool = False, console: Console | None = None, max_per_rule: int = DEFAULT_MAX_PER_RULE, fail_on: str = "error", **_) -> None:
    console = console or safe_console(file=out, highlight=False, soft_wrap=True)
    findings = shown(report, quiet, fail_on)
    kept, hidden = capped(findings, max_per_rule)
    for file, group in groupby(kept, key=lambda f: f.file):
        console.print(Text(display_path(report, file) if file else "(dataset)", style="bold underline"))
        for f in group:
            rec = f" record {f.record}" if f.record is not None else ""
            entry = f" [{f.entry}]" if f.entry else ""
            line = Text("  ")
            line.append(location(report, f) if f.line else f"{location(report, f)}:-", style="dim")
            line.append(f" {f.code} ", style=_STYLE[f.severity])
            line.append(f"{f.severity}{rec}{entry}: ", style=_STYLE[f.severity])
            line.append(f.message)
            if f.pointer:
                line.append(f" (at {f.pointer})", style="dim")
            console.print(line)
            console.print(Text(f"      fix: {f.fix}", style="dim"))
    for code, n in hidden.items():
        console.print(Text(f"... and {n:,} more {code} finding{'' if n == 1 else 's'} (--max-per-rule 0 shows all)", style="dim"))
    s = report.summary
    if quiet:
        if findings:
            what = _count(len(findings), "error") if fail_on == "error" else f"{_count(len(findings), 'finding')} at or above {fail_on}"
            console.print(Text(f"{what} in {_checked(report)}"))
        return
    if findings:
        console.print()
    for rel, form in report.detected.items():
        console.print(Text.assemble((f"{rel}: detected form ", "dim"), (form, "bold")))
    for note in report.notes:
        console.print(Text(note, style="dim"))
    said = {f.entry for f in findings if f.code == "FMT114"}  # shown, or counted in "... and N more FMT114"
    unsaid = [name for name in report.not_checked if name not in said]
    if unsaid:
        names = ", ".join(map(repr, unsaid[:5])) + (f" and {len(unsaid) - 5:,} more" if len(unsaid) > 5 else "")
        console.print(Text(f"not checked locally (they read from a hub, a script or cloud storage: FMT114): {names}", style="dim"))
    table = Table(title="fmtkit validate", title_justify="left", show_edge=False)
    table.add_column("checked")
    table.add_column("count", justify="right")
    table.add_row("entries", str(s["entries"]))
    table.add_row("files", str(s["files"]))
    table.add_row("records decoded", str(s["records"]))
    table.add_row(Text("errors", style=_STYLE["error"]), str(s["errors"]))
    table.add_row(Text("warnings", style=_STYLE["warning"]), str(s["warnings"]))
    table.add_row(Text("info", style=_STYLE["info"]), str(s["infos"]))
    console.print(table)
    if s["by_rule"]:
        statistics(report, console)
    verdict = "[bold red]errors found[/]" if report.has_errors else "[bold green]no errors[/]"
    console.print(verdict)


def statistics(report, console: Console) -> None:
    """The findings per rule, at the severity they were reported at (``--statistics`` prints this alone)."""
    from fmtkit.rules import load_all

    rules = load_all()
    severity = {f.code: f.severity for f in report.findings}
    table = Table(show_edge=False)
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("findings", justify="right")
    table.add_column("what")
    for code, n in report.summary["by_rule"].items():
        table.add_row(code, Text(severity[code], style=_STYLE[severity[code]]), str(n), Text(plain(rules[code].summary)))
    console.print(table)

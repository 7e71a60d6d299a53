"""The report of ``fmtkit convert``: what was read, written, skipped and lost, and why; and its rendering for people."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fmtkit.errors import EXIT_FINDINGS


@dataclass
class ConvertReport:
    """What a conversion did: counts, what was skipped or dropped and why, and a few records to show.

    ``skipped_by`` keys are ``reason:code``: ``unreadable`` (the record cannot be
    read), ``invalid`` (``fmtkit validate`` found an error in it) and
    ``not-expressible`` (the target form cannot hold part of it). ``lost`` counts,
    per loss code, the records that have it (skipped, or written without it when
    the loss only drops metadata: see ``dropped``).
    """

    source: str
    entry: str | None
    source_form: str
    target_form: str
    output: str | None
    records_read: int = 0
    written: int = 0
    skipped: int = 0
    skipped_by: dict[str, int] | None = None
    lost: dict[str, int] | None = None
    dropped: dict[str, int] | None = None
    examples: dict[str, list[dict[str, Any]]] | None = None
    findings: list[dict[str, Any]] | None = None
    shown: list[dict[str, Any]] | None = None
    registered: dict[str, Any] | None = None
    refused: str | None = None  # why nothing was written although records converted (the loader would misread the output)
    notes: list[str] | None = None
    checked: bool = False
    dry_run: bool = False
    strict: bool = False
    jobs: int = 1
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 when the input check found errors (records skipped for them, or errors of no record), no record
        was (or, in a dry run, would be) written, or (``strict``) anything was lost; else 0."""
        invalid = any(not k.startswith("not-expressible:") for k in self.skipped_by or {})
        if invalid or self.findings or self.refused or not self.written or (self.strict and (self.lost or self.skipped)):
            return EXIT_FINDINGS
        return 0

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data

    def loss_lines(self) -> list[str]:
        """One sentence per loss: "12 records have tool calls, which alpaca cannot express: skipped"."""
        from fmtkit.forms import LOSS_CODES, describe_loss, is_droppable

        out = []
        for code, n in sorted((self.lost or {}).items(), key=lambda kv: -kv[1]):
            what = describe_loss(code)
            if LOSS_CODES.get(code, ("", ""))[1] == "warn" and not self.strict:
                out.append(f"{n} record{'s' if n != 1 else ''} {'has' if n == 1 else 'have'} {what}")
                continue
            if self.strict:
                action = "error (--strict)"
            else:
                action = "dropped, record written" if is_droppable(code) else "skipped"
            out.append(f"{n} record{'s' if n != 1 else ''} {'has' if n == 1 else 'have'} {what}, which {self.target_form} cannot express: {action}")
        return out


def render(report: Any, file: Any = None) -> None:
    """The report for people (on ``file``, default standard output): a summary, what was lost and why, and the records asked for with --show."""
    from rich.columns import Columns
    from fmtkit.report.terminal import console as safe_console
    from rich.markup import escape
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    console = safe_console(file=file)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    entry = f" (entry {escape(report.entry)})" if report.entry else ""
    summary.add_row("source", f"{escape(str(report.source))}{entry}  [dim]{report.source_form}[/]")
    target = report.output or ("nothing written (dry run)" if report.dry_run else "nothing written")
    summary.add_row("output", f"{escape(str(target))}  [dim]{report.target_form}[/]")
    summary.add_row("records read", str(report.records_read))
    summary.add_row("written", f"[green]{report.written}[/]")
    summary.add_row("skipped", f"[{'red' if report.skipped else 'green'}]{report.skipped}[/]")
    summary.add_row("time", f"{report.seconds:.2f} s")
    console.print(Panel(summary, title="fmtkit convert", expand=False))

    if report.skipped_by:
        table = Table(title="Skipped records", show_lines=False)
        table.add_column("reason")
        table.add_column("code")
        table.add_column("records", justify="right")
        table.add_column("first example")
        for key, n in sorted(report.skipped_by.items(), key=lambda kv: -kv[1]):
            reason, _, code = key.partition(":")
            ex = (report.examples or {}).get(key) or []
            first = ""
            if ex:
                e = ex[0]
                where = f"{e.get('file') or ''}:{e['line']}" if e.get("line") else f"record {e.get('record')}"
                first = f"{where}: {e.get('message', '')}"
            table.add_row(Text(reason), Text(code), str(n), Text(first))
        console.print(table)
    for line in report.loss_lines():
        console.print(f"[yellow]•[/] {escape(line)}")
    # findings about the input as a whole (a skipped record's finding is in the table above)
    about_input = [f for f in report.findings or [] if f.get("record") is None or f"invalid:{f.get('code')}" not in (report.skipped_by or {})]
    for f in about_input[:10]:
        where = f" {f.get('file')}:{f['line']}" if f.get("line") else ""
        console.print(Text.assemble(("error", "red"), f" {f.get('code')}{where}: {f.get('message')}"))
    if len(about_input) > 10:
        console.print(Text(f"... and {len(about_input) - 10} more (--output-format json lists them all)"))
    for note in report.notes or []:
        console.print(Text(f"note: {note}", style="dim"))
    if report.registered:
        reg = report.registered
        verb = "would register" if reg.get("dry_run") else "registered"
        console.print(f"{verb} entry [bold]{escape(reg['name'])}[/] in {escape(str(reg['dataset_info']))}")

    for item in report.shown or []:
        where = f"{item['file']}" + (f":{item['line']}" if item.get("line") else "") + f"  record {item['record']}"
        left = Panel(Syntax(json.dumps(item["input"], ensure_ascii=False, indent=2), "json", word_wrap=True), title="input", expand=True)
        if item["output"] is not None:
            right_body: Any = Syntax(json.dumps(item["output"], ensure_ascii=False, indent=2), "json", word_wrap=True)
            title = report.target_form
        else:
            right_body = Text(str(item["reason"]), style="red")
            title = "not written"
        right = Panel(right_body, title=Text(title), expand=True)
        console.rule(Text(where))
        console.print(Columns([left, right], equal=True, expand=True))

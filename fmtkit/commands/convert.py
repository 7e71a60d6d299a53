"""``fmtkit convert``: a thin shell over :func:`fmtkit.conversion.convert` and its report."""

from __future__ import annotations

import json
from typing import Any

import click

from fmtkit.detect import FORMS

FORM_CHOICE = click.Choice(FORMS)


@click.command("convert")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--to", "to", required=True, type=FORM_CHOICE, help="The form to write.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file; its extension (.jsonl, .json, .parquet) sets its type.")
@click.option("--entry", help="The entry of dataset_info.json to convert (SOURCE is a dataset folder).")
@click.option("--from", "from_form", type=FORM_CHOICE, help="Read SOURCE as this form instead of detecting it.")
@click.option("--register", is_flag=True, help="Add an entry for the output to the dataset folder's dataset_info.json.")
@click.option("--name", help="Name of the registered entry (default <entry>_<form>).")
@click.option("--pairs-to-kto", is_flag=True, help="Write one KTO record per side of each preference pair.")
@click.option("--extract-prompt", is_flag=True, help="Split implicit preference pairs at their longest common prefix.")
@click.option("--standard", is_flag=True, help="TRL forms: write the standard style (strings), not conversational.")
@click.option("--show", type=click.IntRange(0, 50), default=0, help="Show N records side by side, before and after.")
@click.option("--output-format", "report_format", type=click.Choice(["human", "json"]), help="Report format. [default: human]")
@click.option("--report", "report", type=click.Choice(["text", "json"]), hidden=True,
              deprecated="use --output-format human|json; --report goes in the next release")  # fmt: skip
@click.option("--strict", is_flag=True, help="Any loss is an error: exit 1 and write nothing.")
@click.option("--dry-run", is_flag=True, help="Convert and report, but write nothing.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=1, help="Worker processes (JSON Lines input is split by byte ranges).")
@click.option("--no-check", is_flag=True, help="Do not check the input with the rules of `fmtkit validate` first.")
@click.pass_context
def convert(ctx: click.Context, source: str, to: str, output: str | None, entry: str | None, from_form: str | None,
            register: bool, name: str | None, pairs_to_kto: bool, extract_prompt: bool, standard: bool, show: int,
            report_format: str | None, report: str | None, strict: bool, dry_run: bool, jobs: int, no_check: bool) -> None:  # fmt: skip
    """Convert SOURCE (a data file, or a dataset folder with --entry) to another form.

    Records the target form cannot express are skipped and reported, never
    half-converted; the output is written atomically and never over the input.

    \b
    Examples:
      fmtkit convert data/chat.jsonl --to openai -o data/chat.openai.jsonl
      fmtkit convert dataset/ --entry alpaca_demo --to sharegpt --register
      fmtkit convert prefs.jsonl --to trl-unpaired --pairs-to-kto --show 2
    """
    from fmtkit.conversion import convert as run

    report_format = report_format or {"text": "human"}.get(report, report) or "human"
    if name is not None and not register:
        raise click.UsageError("--name goes with --register")
    report = run(
        source, to, output, entry, form=from_form, register=register, name=name, pairs_to_kto=pairs_to_kto,
        extract_prompt=extract_prompt, strict=strict, dry_run=dry_run, jobs=jobs, show=show,
        conversational=not standard, check=not no_check,
    )  # fmt: skip
    if report_format == "json":
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        render(report)
    ctx.exit(report.exit_code)


def render(report: Any) -> None:
    """The report for people: a summary, what was lost and why, and the records asked for with --show."""
    from rich.columns import Columns
    from fmtkit.report.terminal import console as safe_console
    from rich.markup import escape
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    console = safe_console()
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

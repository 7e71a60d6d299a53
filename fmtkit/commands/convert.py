"""``fmtkit convert``: a thin shell over :func:`fmtkit.conversion.convert` and its report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from fmtkit.commands.engine import engine_options, engine_running
from fmtkit.detect import FORMS

FORM_CHOICE = click.Choice(FORMS)


@click.command("convert")
@click.argument("source", type=click.Path(path_type=str, allow_dash=True))
@click.option("--to", "to", required=True, type=FORM_CHOICE, help="The form to write.")
@click.option("-o", "--output", type=click.Path(allow_dash=True), help="Output file; its extension (.jsonl, .json, .parquet) sets its type. A folder (ending with /): one JSON Lines shard per input file, and FOLDER.manifest.json. '-': JSON Lines on standard output (the report goes to standard error).")
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
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=1, help="Worker processes (big JSON Lines and indented JSON array input is split by byte ranges).")
@engine_options
@click.option("--no-check", is_flag=True, help="Do not check the input with the rules of `fmtkit validate` first.")
@click.option("--remote", is_flag=True, help="SOURCE is an fsspec URL (hf://datasets/ORG/NAME/..., s3://, memory://): read it from there, streamed as it is converted. Uses the network.")
@click.pass_context
def convert(ctx: click.Context, source: str, to: str, output: str | None, entry: str | None, from_form: str | None,
            register: bool, name: str | None, pairs_to_kto: bool, extract_prompt: bool, standard: bool, show: int,
            report_format: str | None, report: str | None, strict: bool, dry_run: bool, jobs: int, engine: str, address: str | None,
            no_check: bool, remote: bool) -> None:  # fmt: skip
    """Convert SOURCE (a data file, or a dataset folder with --entry; '-': standard input) to another form.

    Records the target form cannot express are skipped and reported, never
    half-converted; the output is written atomically and never over the input.

    \b
    Examples:
      fmtkit convert data/chat.jsonl --to openai -o data/chat.openai.jsonl
      fmtkit convert dataset/ --entry alpaca_demo --to sharegpt --register
      fmtkit convert prefs.jsonl --to trl-unpaired --pairs-to-kto --show 2
    """
    import contextlib
    import sys
    import tempfile

    from fmtkit.conversion import convert as run

    report_format = report_format or {"text": "human"}.get(report, report) or "human"
    if name is not None and not register:
        raise click.UsageError("--name goes with --register")
    to_stdout = output == "-"
    if register and (to_stdout or source == "-"):
        raise click.UsageError("--register needs a dataset folder and an output file, not '-'")
    if source == "-" and output is None:
        raise click.UsageError("reading standard input ('-'), give -o FILE (or -o - for standard output)")
    from fmtkit.remote import is_url

    if is_url(source) and remote and (register or (output is None and not dry_run)):
        raise click.UsageError("a URL SOURCE is read, not written beside: give -o FILE or -o FOLDER/ (and no --register)")
    with tempfile.TemporaryDirectory(prefix="fmtkit-stdio-") if "-" in (source, output) else contextlib.nullcontext() as tmp:
        if source == "-":
            from fmtkit.commands.output import stdin_copy

            source = str(stdin_copy(Path(tmp)))
        target = str(Path(tmp) / "stdout.jsonl") if to_stdout else output
        asked = jobs if ctx.get_parameter_source("jobs") is not click.core.ParameterSource.DEFAULT else None
        with engine_running(engine, asked, address) as slots:
            report = run(
                source, to, target, entry, form=from_form, register=register, name=name, pairs_to_kto=pairs_to_kto,
                extract_prompt=extract_prompt, strict=strict, dry_run=dry_run, jobs=slots or jobs, show=show,
                conversational=not standard, check=not no_check, remote=remote,
            )  # fmt: skip
        if to_stdout:
            if report.output is not None:
                with open(report.output, "rb") as fh:
                    shutil.copyfileobj(fh, sys.stdout.buffer)
                sys.stdout.flush()
            report.output = "-" if report.output is not None else None
    where = sys.stderr if to_stdout else None
    if report_format == "json":
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str), file=where)
    else:
        from fmtkit.report.convert import render

        render(report, file=where)
    ctx.exit(report.exit_code)

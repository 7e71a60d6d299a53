"""``fmtkit rules`` and ``fmtkit explain CODE``: the rule registry, for people."""

from __future__ import annotations

import click

from fmtkit.errors import FmtkitError


@click.command("rules")
@click.option("--output", type=click.Choice(["human", "json"]), default="human", show_default=True)
def rules(output):
    """List every rule: code, severity, name and what it checks."""
    from fmtkit.rules import load_all

    registry = load_all()
    if output == "json":
        import orjson

        click.echo(orjson.dumps([{"code": r.code, "name": r.name, "severity": r.severity, "summary": r.summary, "fix": r.fix} for r in registry.values()], option=orjson.OPT_INDENT_2).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False)
    for col in ("code", "name", "severity", "what it checks"):
        table.add_column(col)
    from rich.text import Text

    for r in registry.values():
        table.add_row(r.code, r.name, r.severity, Text(r.summary))
    Console().print(table)


@click.command("explain")
@click.argument("code")
def explain(code):
    """Print the documentation of one rule, with examples that pass and fail."""
    from fmtkit.rules import load_all

    registry = load_all()
    rule = registry.get(code.upper()) or next((r for r in registry.values() if r.name == code), None)
    if rule is None:
        import difflib

        near = difflib.get_close_matches(code.upper(), list(registry), n=1)
        raise FmtkitError(f"no rule {code!r}" + (f" (did you mean {near[0]}?)" if near else "") + "; `fmtkit rules` lists them")
    click.echo(f"{rule.code} {rule.name} ({rule.severity})\n")
    click.echo(rule.doc)
    click.echo(f"\nFix: {rule.fix}")

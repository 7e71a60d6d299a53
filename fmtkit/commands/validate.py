"""``fmtkit validate``: the click shell over :func:`fmtkit.validation.validate`."""

from __future__ import annotations

import sys

import click

from fmtkit.detect import FORMS
from fmtkit.rules.stage import STAGES


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--entry", "entries", multiple=True, help="Only these dataset names (repeat, or comma-separated).")
@click.option("--form", type=click.Choice(FORMS), help="Force the form of a bare data file instead of detecting it.")
@click.option("--stage", type=click.Choice(STAGES), help="Also check what this LLaMA-Factory stage would reject.")
@click.option("--output", "-o", "output", type=click.Choice(["human", "json", "github"]), default="human", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Only errors; no summary.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True, help="Worker processes for large JSON Lines files.")
@click.option("--staged", is_flag=True, help="PATHS are changed files (pre-commit): check each dataset folder once; skip files no entry reads.")
def validate(paths, entries, form, stage, output, quiet, jobs, staged):
    """Check a dataset folder (with dataset_info.json) or data files.

    \b
    Examples:
      fmtkit validate dataset/
      fmtkit validate dataset/ --entry alpaca_demo --stage sft
      fmtkit validate data.jsonl --form sharegpt --output json

    Exit codes: 0 no error-level finding, 1 errors found, 2 usage error or unreadable input.
    """
    from fmtkit.report import render
    from fmtkit.validation import validate as run

    from fmtkit.validation import Report

    names = [n.strip() for e in entries for n in e.split(",") if n.strip()] or None
    targets = _group_staged(paths) if staged else dict.fromkeys(paths, names)
    reports = [run(p, entries=e, form=form, stage=stage, jobs=jobs, progress=_progress_hook(output)) for p, e in targets.items()]
    if not reports:
        sys.exit(0)
    report = reports[0] if len(reports) == 1 else Report.merge(reports)  # one document, whatever the output
    render(report, output, quiet=quiet)
    sys.exit(report.exit_code)


def _group_staged(paths: tuple[str, ...]) -> dict[str, list[str] | None]:
    """Changed files -> dataset folder -> the entries to validate (None: all of them).

    A changed dataset_info.json checks its whole folder; a changed data file checks the entries of
    its folder's dataset_info.json that read it; files no entry reads are left out.
    Each dataset_info.json is read once.

    >>> _group_staged(("README.md",))
    {}
    """
    from pathlib import Path

    from fmtkit.dataset_info import INFO_FILE
    from fmtkit.validation import read_info, owning_entries

    docs: dict[Path, object] = {}

    targets: dict[str, list[str] | None] = {str(Path(p).parent): None for p in paths if Path(p).name == INFO_FILE}
    for p in dict.fromkeys(paths):
        path = Path(p)
        # data files sit beside dataset_info.json, or one level down in a folder entry
        for info in (path.parent / INFO_FILE, path.parent.parent / INFO_FILE):
            folder = str(info.parent)
            if path.name == INFO_FILE or not info.is_file():
                continue
            if folder in targets and targets[folder] is None:
                break  # the whole folder is checked anyway
            if info not in docs:
                docs[info] = read_info(info)[0]
            owners = owning_entries(info, path, docs[info]) if docs[info] is not None else []
            if owners:
                targets[folder] = list(dict.fromkeys((targets.get(folder) or []) + owners))
                break
    return targets


def _progress_hook(output: str):
    if output != "human" or not sys.stderr.isatty():
        return None
    from fmtkit.report.terminal import console as safe_console

    console = safe_console(stderr=True)
    status = console.status("")
    state = {"started": False}

    def hook(file: str, n: int) -> None:
        if not state["started"]:
            status.start()
            state["started"] = True
        status.update(f"{file}: {n:,} records checked")

    import atexit

    atexit.register(lambda: status.stop() if state["started"] else None)
    return hook

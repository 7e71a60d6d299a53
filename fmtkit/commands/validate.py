"""``fmtkit validate``: the click shell over :func:`fmtkit.validation.validate`.

After the check, the settings (:mod:`fmtkit.config`) choose what is reported
(rule selection, ignores, severities), a baseline hides accepted findings
(:mod:`fmtkit.baseline`), :mod:`fmtkit.locate` finds each finding's column,
and a reporter (:mod:`fmtkit.report`) writes it.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import click

from fmtkit.commands.engine import engine_options, engine_running
from fmtkit.commands.output import output_options, resolve_output, stdin_copy, write_report
from fmtkit.detect import FORMS
from fmtkit.findings import SEVERITIES
from fmtkit.report import FORMATS
from fmtkit.rules.stage import STAGES

CODES = "Codes or prefixes (FMT8 is every FMT8xx rule); repeat, or comma-separated."


def settings_options(fn):
    """The options that choose the config file; shared by ``validate`` and ``config``."""
    fn = click.option("--isolated", is_flag=True, help="Use no config file.")(fn)
    fn = click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                      help="Config file to use instead of the one found from PATHS upward.")(fn)  # fmt: skip
    return fn


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--entry", "entries", multiple=True, help="Only these dataset names (repeat, or comma-separated).")
@click.option("--form", type=click.Choice(FORMS), help="Force the form of a bare data file instead of detecting it.")
@click.option("--stage", type=click.Choice(STAGES), help="Also check what this LLaMA-Factory stage would reject.")
@click.option("--select", "select", multiple=True, help=f"Check only these rules. {CODES}")
@click.option("--extend-select", multiple=True, help=f"Check these rules besides the selected ones. {CODES}")
@click.option("--ignore", multiple=True, help=f"Do not report these rules. {CODES}")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="Lowest severity that fails the run (exit 1). [default: error]")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even with findings (2 still means a usage error).")
@output_options(list(FORMATS), "human")
@click.option("--max-per-rule", type=click.IntRange(0), help="Findings shown per rule in the human report; 0 shows all. [default: 20]")
@click.option("--statistics", is_flag=True, help="Only the number of findings per rule.")
@click.option("--quiet", "-q", is_flag=True, help="Only findings at or above --fail-on (errors by default); no summary.")
@click.option("--jobs", "-j", type=click.IntRange(1), help="Worker processes for large JSON Lines files. [default: 1]")
@engine_options
@click.option("--remote", is_flag=True, help="Read PATHS where they live: fsspec URLs (hf://datasets/ORG/NAME/..., s3://, memory://) and hf_hub_url entries. Uses the network.")
@click.option("--staged", is_flag=True, help="PATHS are changed files (pre-commit): check each dataset folder once; skip files no entry reads.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=str), help="Hide the findings this baseline file accepts; report new ones.")
@click.option("--write-baseline", type=click.Path(dir_okay=False, path_type=Path), help="Write today's findings to this baseline file and exit 0.")
@click.option("--fix", is_flag=True, help="Repair what has a safe fix (FMT204, FMT402, FMT503, FMT601) in copies under fmtkit-fixed/; report the rest.")
@click.option("--in-place", is_flag=True, help="With --fix: replace the files themselves (atomically), keeping backups under .fmtkit-backup/.")
@click.option("--diff", is_flag=True, help="Print the safe fixes as a unified diff; write nothing (exit 1 when there are any).")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff: also drop records (exact duplicates, FMT803; rows LLaMA-Factory drops, FMT402-FMT404). This changes what is trained.")
@settings_options
@click.option("--show-settings", is_flag=True, help="Print the resolved settings and where each came from, then exit.")
def validate(paths, entries, form, stage, select, extend_select, ignore, fail_on, exit_zero, output_format, output, max_per_rule,
             statistics, quiet, jobs, engine, address, remote, staged, baseline, write_baseline, fix, in_place, diff, unsafe_fixes, isolated, config_file, show_settings):  # fmt: skip
    """Check a dataset folder (with dataset_info.json) or data files; '-' reads a data file from standard input.

    Settings come from the nearest .fmtkit.toml, fmtkit.toml or pyproject.toml
    [tool.fmtkit] at or above PATHS, then from these options (see docs/ci.md).

    \b
    Examples:
      fmtkit validate dataset/
      fmtkit validate dataset/ --entry alpaca_demo --stage sft
      fmtkit validate data.jsonl --form sharegpt --output-format json
      fmtkit validate dataset/ --ignore FMT805 --fail-on warning
      fmtkit validate dataset/ --output-format sarif -o fmtkit.sarif

    Exit codes: 0 no finding at or above --fail-on, 1 such findings, 2 usage error or unreadable input.
    """
    from fmtkit.config import resolve
    from fmtkit.errors import FmtkitError

    output, output_format = resolve_output(output, output_format, FORMATS, "human")
    if in_place and not fix:
        raise click.UsageError("--in-place goes with --fix")
    if unsafe_fixes and not (fix or diff):
        raise click.UsageError("--unsafe-fixes goes with --fix or --diff")
    cli = {"select": _codes(select), "extend_select": _codes(extend_select), "ignore": _codes(ignore), "fail_on": fail_on,
           "stage": stage, "jobs": jobs, "baseline": baseline, "max_per_rule": max_per_rule}  # fmt: skip
    settings = resolve(cli, start=_common_folder(paths), config=config_file, isolated=isolated)
    if show_settings:
        print_settings(settings)
        return
    if "-" in paths and len(paths) > 1:
        raise FmtkitError("'-' (standard input) is the only PATH when given")
    names = [n.strip() for e in entries for n in e.split(",") if n.strip()] or None
    stdin = paths == ("-",)
    with tempfile.TemporaryDirectory(prefix="fmtkit-stdin-") if stdin else contextlib.nullcontext() as tmp:
        if stdin:  # a copy, which stays while its findings are located and baselined
            paths = (str(stdin_copy(Path(tmp))),)
        with engine_running(engine, jobs, address):
            report = _run(paths, names, form, settings, output_format, staged, remote)
        if report is None:
            sys.exit(0)
        report.stdin = stdin
        if stdin and fix and in_place:
            raise click.UsageError("--in-place cannot replace standard input; use --fix (a copy) or --diff")
        _report(report, names, settings, write_baseline, output_format, output, quiet, statistics, exit_zero, (fix, in_place, diff, unsafe_fixes))


def _report(report, names, settings, write_baseline, output_format, output, quiet, statistics, exit_zero, fixing) -> None:
    """Settings, fixes, baseline and locations applied to the findings; the report written; the exit code."""
    if names:
        _entry_typo(report)
    report.findings = settings.apply(report.findings, report.root)
    if any(fixing[:3]):
        _fix(report, *fixing)
    if write_baseline is not None:
        from fmtkit import baseline as baselines

        n = baselines.write(write_baseline, report.findings, report.root, stdin=report.stdin)
        click.echo(f"fmtkit: wrote {n} finding{'' if n == 1 else 's'} to the baseline {write_baseline}", err=True)
        sys.exit(0)
    if settings.baseline:
        from fmtkit import baseline as baselines

        report.findings, hidden, gone = baselines.apply(Path(settings.baseline), report.findings, report.root, stdin=report.stdin)
        report.notes.append(f"baseline {settings.baseline}: {hidden} accepted finding{'' if hidden == 1 else 's'} hidden"
                            + (f"; {gone} no longer occur (rewrite it with --write-baseline)" if gone else ""))  # fmt: skip
    from fmtkit.locate import locate
    from fmtkit.report import capped, shown

    if not statistics:  # the findings written: in the human report, at most max-per-rule of each rule
        written = shown(report, quiet, settings.fail_on)
        locate(report.root, capped(written, settings.max_per_rule)[0] if output_format == "human" else written)
    _write(report, output_format, output, quiet=quiet, statistics=statistics, max_per_rule=settings.max_per_rule, fail_on=settings.fail_on)
    sys.exit(1 if settings.fails(report.findings) and not exit_zero else 0)


def _fix(report, fix: bool, in_place: bool, diff: bool, unsafe: bool = False) -> None:
    """--diff: print the fixes and exit; --fix: write them and keep only the findings left to report (``unsafe``: record drops too)."""
    from fmtkit import fixes
    from fmtkit.writing import write_lines
    from fmtkit.report import display_path

    planned = fixes.plan(report.root, report.findings, _entry_lookup(report), unsafe=unsafe)
    if diff:
        for p in planned:
            sys.stdout.write(p.diff(display_path(report, p.fixed[0].file)))
        kind = "a fix (safe or unsafe)" if unsafe else "a safe fix"
        click.echo(f"fmtkit: {sum(len(p.fixed) for p in planned)} findings have {kind} in {len(planned)} files", err=True)
        sys.exit(1 if planned else 0)
    for p in planned:
        name = display_path(report, p.fixed[0].file)
        if in_place:
            backup = Path(".fmtkit-backup") / name.lstrip("/")
            backup.parent.mkdir(parents=True, exist_ok=True)
            backup.write_bytes(p.path.read_bytes())
            target = p.path
        else:
            target = Path("fmtkit-fixed") / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
        write_lines(target, [p.new])
        codes = ", ".join(sorted({f.code for f in p.fixed}))
        click.echo(f"fmtkit: fixed {len(p.fixed)} finding{'' if len(p.fixed) == 1 else 's'} ({codes}) in {name} -> {target}"
                   + (f" (backup: {backup})" if in_place else ""), err=True)  # fmt: skip
    done = {id(f) for p in planned for f in p.fixed}
    report.findings = [f for f in report.findings if id(f) not in done]


def _entry_lookup(report):
    """finding -> the DatasetEntry its record was read through (from its dataset_info.json, or its bare file's form)."""
    from functools import cache

    from fmtkit.dataset_info import INFO_FILE, DatasetEntry
    from fmtkit.forms import BARE_ENTRIES
    from fmtkit.loading import head_records
    from fmtkit.validation import read_info

    forms = {fr.file: fr.form for fr in report.files}

    @cache
    def entry(file: str, name: str | None):
        path = Path(report.root) / file
        if name is None:
            form = forms.get(file)
            return DatasetEntry.for_file(form, head_records(path), path.parent, file_name=path.name) if form in BARE_ENTRIES else None
        for info in (path.parent / INFO_FILE, path.parent.parent / INFO_FILE):
            if info.is_file():
                doc = read_info(info)[0]
                if isinstance(doc, dict) and isinstance(doc.get(name), dict):
                    return DatasetEntry.from_dict(name, doc[name], info.parent)
        return None

    return lambda f: entry(f.file, f.entry)


def _codes(values: tuple[str, ...]) -> list[str] | None:
    return [p.strip() for v in values for p in v.split(",") if p.strip()] or None


def _common_folder(paths: tuple[str, ...]) -> Path:
    import os

    folders = [str(Path(p).resolve()) for p in paths if p != "-"]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def _run(paths, names, form, settings, output_format, staged, remote=False):
    from fmtkit.validation import Report
    from fmtkit.validation import validate as run

    targets = _group_staged(paths) if staged else dict.fromkeys(paths, names)
    progress = _progress_hook(output_format)
    reports = [run(p, entries=e, form=form, stage=settings.stage, jobs=settings.jobs, progress=progress, remote=remote) for p, e in targets.items()]
    if not reports:
        return None
    return reports[0] if len(reports) == 1 else Report.merge(reports)  # one document, whatever the output


def _entry_typo(report) -> None:
    """An --entry name that dataset_info.json does not define is a usage error (exit 2), as in every command."""
    from fmtkit.errors import FmtkitError

    typo = next((f for f in report.findings if f.code == "FMT115"), None)
    if typo is not None:
        raise FmtkitError(f"{Path(report.root) / typo.file}: {typo.message}")


def _write(report, output_format: str, output: str | None, statistics: bool, **options) -> None:
    """The report (or with ``statistics`` its counts per rule) to standard output or the file ``output``."""
    from fmtkit.report import render

    if statistics:
        write_report(output, lambda: _statistics(report, output_format, sys.stdout))
    else:
        write_report(output, lambda: render(report, output_format, out=sys.stdout, **options))


def _statistics(report, output_format: str, out) -> None:
    """``--statistics``: findings per rule only (a table, or JSON with --output-format json)."""
    if output_format == "json":
        import json

        severity = {f.code: f.severity for f in report.findings}
        rows = [{"code": c, "severity": severity[c], "count": n} for c, n in report.summary["by_rule"].items()]
        out.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.console import Console

    from fmtkit.report.human import statistics

    statistics(report, Console(file=out, highlight=False, soft_wrap=True))


def print_settings(settings) -> None:
    """The resolved settings, one per line: key, value (as TOML would write it), and where it came from."""
    import json

    rows = settings.describe()
    width = max(len(k) for k, _, _ in rows)
    for key, value, source in rows:
        text = (value or "none") if key in ("config file", "enabled rules") else json.dumps(value)
        click.echo(f"{key:<{width}}  {text}  ({source})")


@click.command("config")
@click.argument("path", required=False, default=".", type=click.Path(exists=True, path_type=Path))
@settings_options
def config(path, config_file, isolated):
    """Print the settings `fmtkit validate PATH` would use, and where each came from.

    \b
    Examples:
      fmtkit config
      fmtkit config dataset/ --config ci/fmtkit.toml
    """
    from fmtkit.config import resolve

    print_settings(resolve(start=path, config=config_file, isolated=isolated))


def _group_staged(paths: tuple[str, ...]) -> dict[str, list[str] | None]:
    """Changed files -> dataset folder -> the entries to validate (None: all of them).

    A changed dataset_info.json checks its whole folder; a changed data file checks the entries of
    its folder's dataset_info.json that read it; files no entry reads are left out.
    Each dataset_info.json is read once.

    >>> _group_staged(("README.md",))
    {}
    """
    from fmtkit.dataset_info import INFO_FILE
    from fmtkit.validation import owning_entries, read_info

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


def _progress_hook(output_format: str):
    if output_format != "human" or not sys.stderr.isatty():
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

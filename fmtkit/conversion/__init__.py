"""Converting a dataset to another form: read, then write each sample in the target form.

``convert`` skips (and reports) every record the target cannot express and
writes the output atomically::

    import fmtkit
    report = fmtkit.convert("data/chat.jsonl", to="openai", output="data/chat.openai.jsonl")
    print(report.written, report.skipped)

The parts: :mod:`fmtkit.sources` finds and reads the input,
:mod:`fmtkit.conversion.engine` converts and counts, :mod:`fmtkit.conversion.output`
writes and registers, and :mod:`fmtkit.report.convert` is the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmtkit.dataset_info import INFO_FILE
from fmtkit.detect import FORMS as FORM_NAMES
from fmtkit.entries import load_info
from fmtkit.errors import FmtkitError
from fmtkit.forms import FORMS
from fmtkit.conversion.engine import (
    OUTPUT_TYPES,
    SHOW_LIMIT,
    Options,
    apply_check,
    convert_checked,
    merge_tallies,
    output_template,
    plan_shards,
    run_shards,
)
from fmtkit.conversion.output import add_entry, assemble, check_entry_name, concatenate, registration, unloadable
from fmtkit.report.convert import ConvertReport
from fmtkit.sources import Source, resolve

__all__ = ["convert", "ConvertReport", "registration"]


def _default_output(src: Source, to: str) -> Path:
    if src.info_dir is not None:
        return src.info_dir / f"{src.name}_{to}.jsonl"
    first = src.files[0]
    return first.with_name(f"{first.stem}.{to}.jsonl")


def _check_output(src: Source, output: Path) -> str:
    kind = OUTPUT_TYPES.get(output.suffix.lower())
    if kind is None:
        raise FmtkitError(f"{output}: the output type comes from its extension: {', '.join(OUTPUT_TYPES)}")
    from fmtkit.writing import refuse_output

    out = output.resolve()
    data = src.entry.data_path() if src.entry is not None else None
    if data is not None and data.is_dir() and data.resolve() in out.parents:
        raise FmtkitError(f"{output}: inside the input folder {data}, it would become part of the dataset")
    folders = [d for d in (src.info_dir, out.parent) if d is not None and (d / INFO_FILE).is_file()]
    refuse_output(output, src.files, folders)
    return kind


def convert(
    source: str | Path,
    to: str,
    output: str | Path | None = None,
    entry: str | None = None,
    *,
    form: str | None = None,
    register: bool = False,
    name: str | None = None,
    pairs_to_kto: bool = False,
    extract_prompt: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    jobs: int = 1,
    show: int = 0,
    conversational: bool = True,
    check: bool = True,
) -> ConvertReport:
    """Convert a data file (or one entry of a dataset folder) to the form ``to``.

    Every record is read into a Sample and written in the target form; a record
    the target cannot express is skipped and reported (``strict``: any loss is
    an error and nothing is written), never half-converted. Records that
    ``fmtkit validate`` finds errors in are skipped too (``check=False`` skips
    that check). The output type comes from its extension (``.jsonl``,
    ``.json``, ``.parquet``); it is written to a temporary file beside it and
    renamed into place, so an interrupted run leaves nothing behind.
    ``register`` adds an entry for the output to the dataset folder's
    ``dataset_info.json`` (named ``name``, default ``<entry>_<form>``).
    ``jobs`` splits JSON Lines input by byte ranges over that many processes.
    ``conversational=False`` writes TRL's standard (string) style.
    """
    import time

    from fmtkit.writing import discard, publish, real_target, sweep_stale, temp_path, write_failure

    started = time.perf_counter()
    if to not in FORMS:
        raise FmtkitError(f"unknown form {to!r}; forms: {', '.join(FORM_NAMES)}")
    if jobs < 1:
        raise FmtkitError("--jobs must be at least 1")
    src = resolve(source, entry, form)
    out_path = Path(output) if output is not None else _default_output(src, to)
    kind = _check_output(src, out_path)
    info_dir = src.info_dir or out_path.parent
    reg_name = name or f"{src.name}_{to}"
    if register:
        check_entry_name(reg_name)
        registration(to, out_path, info_dir, [])  # fails early for forms LLaMA-Factory cannot load
        info_path = info_dir / INFO_FILE
        if info_path.exists() and reg_name in load_info(info_dir):
            raise FmtkitError(f"{info_path}: an entry named {reg_name!r} exists already; choose another with --name")
    report = ConvertReport(
        source=str(source), entry=src.entry.name if src.entry is not None and src.info_dir else None,
        source_form=src.form, target_form=to, output=None if dry_run else str(out_path),
        skipped_by={}, lost={}, dropped={}, examples={}, findings=[], shown=[], notes=[],
        dry_run=dry_run, strict=strict, jobs=jobs,
    )  # fmt: skip
    media_to = info_dir if register else out_path.parent
    rebase = None  # media may come from columns or from OpenAI content parts
    if src.base_dir.resolve() != media_to.resolve():
        rebase = (str(src.base_dir.resolve()), str(media_to.resolve()))
    opts = Options(to, strict, pairs_to_kto, extract_prompt, conversational, rebase, for_llamafactory=register, show=min(show, SHOW_LIMIT))

    template = output_template(src, opts)
    shards = plan_shards(src, jobs)
    out_dir = out_path.parent
    if not dry_run:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(exc, out_path) from None
    target = real_target(out_path)  # an output that is a symbolic link is written at its destination
    if not dry_run:
        sweep_stale(target.parent)
    parts = [] if dry_run else [temp_path(target, k) for k in range(len(shards))]
    tmp = temp_path(target, "all")
    try:
        checked = None
        if check:
            tallies, checked = convert_checked(src, opts, template, shards, parts, jobs, report.notes)
        else:
            items = [(shard, parts[k] if parts else None) for k, shard in enumerate(shards)]
            tallies = [tally for tally, _ in run_shards(src, opts, template, items, jobs)]
        merge_tallies(report, src, shards, tallies)
        report.shown = report.shown[:opts.show]
        fill = None
        new_keys = [k for t in tallies for k in (t.new_keys or [])]
        if new_keys:
            fill = dict(template)
            for k in new_keys:
                fill.setdefault(k, None)
        drop = apply_check(report, checked, tallies, shards)
        if strict and (report.lost or report.skipped):
            report.notes.append("nothing written: --strict and something would be lost or skipped")
            report.output = None
        elif not dry_run:
            if kind == "jsonl" and fill is None and not drop:
                concatenate(parts)
                written = parts[0]
            else:
                assemble(parts, tmp, kind, fill, drop)
                written = tmp
            report.refused = unloadable(written, kind) if register and report.written else None
            if report.refused:  # registered, it would not load as meant: write nothing
                report.notes.append(f"nothing written: {report.refused}")
                report.output = None
            else:
                publish(written, out_path)
            if register and report.written == 0:
                report.notes.append("nothing written, so nothing registered")
            elif register and not report.refused:
                columns = list(fill or template)
                raw = registration(to, out_path, info_dir, columns, any(t.tool_turns for t in tallies))
                add_entry(info_dir, reg_name, raw)
                report.registered = {"name": reg_name, "dataset_info": str(info_dir / INFO_FILE), "entry": raw}
        elif register:
            raw = registration(to, out_path, info_dir, list(fill or template), any(t.tool_turns for t in tallies))
            report.registered = {"name": reg_name, "dataset_info": str(info_dir / INFO_FILE), "entry": raw, "dry_run": True}
    except OSError as exc:  # a full disk, a file size limit, a folder fmtkit may not write in; or an input gone unreadable
        if exc.filename is not None and str(exc.filename) in {str(f) for f in src.files}:
            raise FmtkitError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
        raise write_failure(exc, out_path) from None
    finally:
        discard(*parts, tmp)
    report.notes.extend(_openai_notes(src, to, report.registered))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _openai_notes(src: Source, to: str, registered: dict[str, Any] | None) -> list[str]:
    """What LLaMA-Factory's openai reader does to system prompts (FMT119), where it reads the source or the output."""
    quirk = 'LLaMA-Factory\'s openai reader appends "detailed thinking off" to system prompts (FMT119)'
    notes = []
    if src.entry is not None and src.info_dir is not None and src.entry.formatting == "openai" and FORMS[to].roles:
        notes.append(f"the source entry has formatting: openai, so {quirk}; the output holds the system prompts as written")
    if registered is not None and registered["entry"].get("formatting") == "openai":
        notes.append(f"registered with formatting: openai, which its tool calls need, so {quirk}")
    return notes

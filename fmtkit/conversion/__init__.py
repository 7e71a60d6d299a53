"""Converting a dataset to another form: read, then write each sample in the target form.

``convert`` skips (and reports) every record the target cannot express and
writes the output atomically::

    import fmtkit
    report = fmtkit.convert("data/chat.jsonl", to="openai", output="data/chat.openai.jsonl")
    print(report.written, report.skipped)

The parts: :mod:`fmtkit.sources` finds and reads the input,
:mod:`fmtkit.conversion.engine` converts and counts, :mod:`fmtkit.conversion.output`
writes and registers, and :mod:`fmtkit.report.convert` is the report.

Who calls whom: :func:`convert` drives. It resolves the source, then hands
:func:`fmtkit.validation.validate` a :class:`~fmtkit.conversion.engine.ConvertPass`:
validate walks the entry's files and reads each through the one engine of
units of work (:mod:`fmtkit.record_loop`), whose units convert their records
and write their parts while the rules check them. Files the check does not
read (``--no-check``, or an entry error) go through the same engine
unchecked (:meth:`ConvertPass.finish`). :func:`convert` then merges the units'
tallies, leaves out the records with errors and writes the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmtkit.dataset_info import INFO_FILE
from fmtkit.detect import FORMS as FORM_NAMES
from fmtkit.entries import load_info
from fmtkit.errors import FmtkitError
from fmtkit.forms import FORMS
from fmtkit.conversion.engine import OUTPUT_TYPES, SHOW_LIMIT, ConvertPass, Converted, Options, apply_check, errors_of, merge_tallies, output_template
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
    remote: bool = False,
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
    ``jobs`` splits big JSON Lines and indented JSON array input by byte ranges over that many processes
    (the units of work of :mod:`fmtkit.record_loop`, as ``fmtkit validate --jobs`` reads them).
    ``conversational=False`` writes TRL's standard (string) style.
    An ``output`` that is a folder (it exists, or ends with ``/``) gets one JSON
    Lines shard per input file, named after it, and ``<folder>.manifest.json``
    beside it lists them (:func:`publish_shards`).
    ``remote``: ``source`` may be a URL (``hf://datasets/ORG/NAME/...``, ``s3://``,
    ``memory://`` ...); its data files are streamed from the store as they are
    converted, as ``validate(remote=True)`` reads them (:mod:`fmtkit.remote`).
    """
    from fmtkit.remote import is_url, needs_remote

    args = dict(source=source, to=to, entry=entry, form=form, register=register, name=name, pairs_to_kto=pairs_to_kto, extract_prompt=extract_prompt,
                strict=strict, dry_run=dry_run, jobs=jobs, show=show, conversational=conversational, check=check)  # fmt: skip
    if output is not None and is_url(str(output)):
        return _convert_to_url(str(output), register, {**args, "remote": remote})
    if is_url(str(source)):
        if not remote:
            raise needs_remote(str(source))
        return _convert_from_url(str(source), output, args)
    return _convert(output=output, fetched=None, **args)


def _convert_from_url(url: str, output: str | Path | None, args: dict[str, Any]) -> ConvertReport:
    """``convert(URL, remote=True)``: the source laid out in a temporary folder (:class:`fmtkit.remote.Stage`: the heads
    of its data files), the files streamed from the store as the units of work read them; the report names the URL."""
    import tempfile

    from fmtkit.remote import Stage

    with tempfile.TemporaryDirectory(prefix="fmtkit-remote-") as tmp:
        fetched = Stage(Path(tmp))
        report = _convert(output=output, fetched=fetched, **{**args, "source": str(fetched.source(url))})
    for key, value in vars(report).items():
        setattr(report, key, fetched.named(value))
    return report


def _convert(source: str | Path, to: str, output: str | Path | None, entry: str | None, *, form: str | None, register: bool, name: str | None,
             pairs_to_kto: bool, extract_prompt: bool, strict: bool, dry_run: bool, jobs: int, show: int, conversational: bool, check: bool,
             fetched: Any) -> ConvertReport:  # fmt: skip
    """:func:`convert` of a local source; ``fetched``: the :class:`fmtkit.remote.Stage` it was laid out in, whose streamed files to read."""
    import time

    from fmtkit.writing import discard, publish, real_target, sweep_stale, temp_path, write_failure

    started = time.perf_counter()
    if to not in FORMS:
        raise FmtkitError(f"unknown form {to!r}; forms: {', '.join(FORM_NAMES)}")
    if jobs < 1:
        raise FmtkitError("--jobs must be at least 1")
    src = resolve(source, entry, form)
    readable = [fetched.streamed.get(str(p), p) for p in src.files] if fetched is not None else list(src.files)  # what to read for each file
    out_path = Path(output) if output is not None else _default_output(src, to)
    sharded = output is not None and (str(output).endswith(("/", "\\")) or out_path.is_dir())
    kind = "jsonl" if sharded else _check_output(src, out_path)
    names = shard_names(src, out_path) if sharded else []
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
    media_to = info_dir if register else out_path if sharded else out_path.parent
    rebase = None  # media may come from columns or from OpenAI content parts
    if src.base_dir.resolve() != media_to.resolve():
        rebase = (str(src.base_dir.resolve()), str(media_to.resolve()))
    opts = Options(to, strict, pairs_to_kto, extract_prompt, conversational, rebase, for_llamafactory=register, show=min(show, SHOW_LIMIT))

    template = output_template(src, opts, readable[0])
    out_dir = out_path if sharded else out_path.parent
    if not dry_run:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(exc, out_path) from None
    target = real_target(out_path)  # an output that is a symbolic link is written at its destination
    if not dry_run:
        sweep_stale(target.parent)
    converting = ConvertPass(src, readable, opts, template, None if dry_run else target)
    tmp = temp_path(target, "all")
    shard_tmps = [temp_path(target, f"s{k}") for k in range(len(names))]
    try:
        checked = None
        if check:  # the check of `fmtkit validate`, in the conversion's own read of each file
            from fmtkit.validation import validate

            if src.info_dir is not None and src.entry is not None:
                found = validate(src.info_dir, entries=[src.entry.name], jobs=jobs, file_pass=converting, fetched=fetched)
            else:  # a bare file: validate reads it through the same DatasetEntry.for_file
                found = validate(src.files[0], form=src.form, jobs=jobs, file_pass=converting, fetched=fetched)
            checked = errors_of(found, src)
        for fno in converting.finish(jobs, show=not check):  # an entry error stops the check from reading the files
            if check:
                report.notes.append(f"{src.files[fno]}: not checked: fmtkit validate did not read it (see its findings)")
        units = converting.units()
        tallies = [u.tally for u in units]
        parts = [u.part for u in units] if not dry_run else []
        merge_tallies(report, src, units)
        report.shown = report.shown[:opts.show]
        fill = None
        new_keys = [k for t in tallies for k in (t.new_keys or [])]
        if new_keys:
            fill = dict(template)
            for k in new_keys:
                fill.setdefault(k, None)
        drop = apply_check(report, checked, units)
        if strict and (report.lost or report.skipped):
            report.notes.append("nothing written: --strict and something would be lost or skipped")
            report.output = None
        elif not report.written:
            why = f"{to} can hold none of the {report.records_read:,} records read (see why above)" if report.records_read else "no record was read"
            report.notes.append(f"nothing written: {why}" + (", so nothing registered" if register else ""))
            report.output = None
        elif not dry_run and sharded:
            written_files = write_shards(units, names, shard_tmps, fill, drop)
            report.refused = unloadable(written_files[0], kind) if register and written_files else None
            if report.refused:
                report.notes.append(f"nothing written: {report.refused}")
                report.output = None
            else:
                report.notes.append(publish_shards(src, to, out_path, names, shard_tmps, written_files))
            if register and not report.refused:
                raw = registration(to, out_path, info_dir, list(fill or template), any(t.tool_turns for t in tallies))
                add_entry(info_dir, reg_name, raw)
                report.registered = {"name": reg_name, "dataset_info": str(info_dir / INFO_FILE), "entry": raw}
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
            if register and not report.refused:
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
        discard(*converting.parts, tmp, *shard_tmps)
    report.notes.extend(_openai_notes(src, to, report.registered))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


MANIFEST = ".manifest.json"  # beside the folder of shards: LLaMA-Factory reads every file inside it


def shard_names(src: Source, folder: Path) -> list[str]:
    """The output shard of each input file, in ``folder``: the input's name with ``.jsonl``; the same name twice is an error.

    >>> from fmtkit.sources import Source
    >>> shard_names(Source([Path("in/part-00000.json"), Path("in/part-00001.jsonl")], None, "alpaca", None, Path("in")), Path("out"))
    ['part-00000.jsonl', 'part-00001.jsonl']
    """
    from fmtkit.writing import refuse_output

    names = [f"{f.stem}.jsonl" for f in src.files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FmtkitError(f"{folder}: two input files would write the same shard {twice[0]} (inputs that differ only in extension); convert them apart")
    folders = [d for d in (src.info_dir, folder.parent) if d is not None and (d / INFO_FILE).is_file()]
    for name in names:
        refuse_output(folder / name, src.files, folders)
    return names


def write_shards(units: list[Converted], names: list[str], tmps: list[Path], fill: dict[str, Any] | None, drop: set[int]) -> list[Path]:
    """Each input file's converted parts joined into its shard's temporary file (rows ``drop`` left out); the non-empty ones."""
    written, row = [], 0
    for fno, tmp in enumerate(tmps):
        mine = [u.part for u in units if u.fno == fno]
        rows = sum(p.read_bytes().count(b"\n") for p in mine)
        assemble(mine, tmp, "jsonl", fill, {r - row for r in drop if row <= r < row + rows})
        row += rows
        if tmp.stat().st_size:
            written.append(tmp)
    return written


def publish_shards(src: Source, to: str, folder: Path, names: list[str], tmps: list[Path], written: list[Path]) -> str:
    """Put the non-empty shards in place and write the manifest beside the folder; the report's note about them."""
    import json

    from fmtkit.writing import atomic_write, publish

    shards = []
    for name, tmp, source in zip(names, tmps, src.files, strict=True):
        if tmp in written:
            records = tmp.read_bytes().count(b"\n")
            publish(tmp, folder / name)
            shards.append({"file": name, "source": str(source), "records": records})
    manifest = folder.with_name(folder.name + MANIFEST)
    doc = {"form": to, "source_form": src.form, "records": sum(s["records"] for s in shards), "shards": shards}
    with atomic_write(manifest) as fh:
        fh.write(json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n")
    return f"{len(shards)} shards in {folder} (one per input file with records left), listed in {manifest}"


def _convert_to_url(url: str, register: bool, args: dict[str, Any]) -> ConvertReport:
    """``-o URL/`` (a writable fsspec URL such as ``memory://`` or ``s3://``): the shards written here, then uploaded with the manifest.

    Each shard is one object put whole, so a reader never sees half of one; the manifest goes last.
    """
    import tempfile

    from fmtkit.remote import filesystem, remote_error

    if register:
        raise FmtkitError("--register needs a local output folder: dataset_info.json names local files")
    if not url.endswith("/"):
        raise FmtkitError(f"{url}: a URL output is a folder of shards: end it with /")
    fs, path = filesystem(url)
    with tempfile.TemporaryDirectory(prefix="fmtkit-shards-") as tmp:
        local = Path(tmp) / "out"
        report = convert(output=f"{local}/", **args)
        report.output = None if report.output is None else url
        if report.dry_run or report.output is None:
            return report
        try:
            fs.makedirs(path.rstrip("/"), exist_ok=True)
            for shard in sorted(local.iterdir()):
                fs.put_file(str(shard), f"{path.rstrip('/')}/{shard.name}")
            fs.put_file(str(local.with_name(local.name + MANIFEST)), path.rstrip("/") + MANIFEST)
        except Exception as exc:  # noqa: BLE001 - each store raises its own types
            raise remote_error(url, exc) from None
    report.notes = [n.replace(str(local.with_name(local.name + MANIFEST)), url.rstrip("/") + MANIFEST).replace(str(local), url.rstrip("/"))
                    for n in report.notes]  # fmt: skip
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

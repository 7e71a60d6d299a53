"""``fmtkit validate``: load -> check (schema, then rules) -> collect, as a library.

>>> import fmtkit
>>> report = fmtkit.validate("dataset/")
>>> report.has_errors
False

The pipeline: the ``dataset_info.json`` is checked against its schema and the
entry rules (FMT1xx); each local entry's files are read record by record
(FMT2xx), every record goes through the record rules that apply to its entry
and then the form's JSON Schema as a catch-all (FMT300), and whole-file rules
(FMT8xx) and stage rules (FMT9xx) close the file.

Who calls whom: :class:`_Checker` walks the entries and their files and
calls :func:`fmtkit.record_loop.check_path` for each file, which reads it in
units of work (``--jobs``, ``--engine``) and hands back its findings and
tally; the whole-file, entry and folder rules run here on those tallies.
``fmtkit convert`` calls :func:`validate` with a ``file_pass``
(:class:`fmtkit.record_loop.FilePass`) that converts each unit's records in
the same read; validation knows nothing else of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from fmtkit import rules as rule_registry
from fmtkit.dataset_info import DATA_EXTENSIONS, INFO_FILE, DatasetEntry
from fmtkit.forms import BARE_ENTRIES
from fmtkit.detect import FORMS, detect_form, detect_v1
from fmtkit.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, FmtkitError
from fmtkit.findings import ERROR, SEVERITIES, SEVERITY_RANK, Finding
from fmtkit.loading import LoadProblem, check_data_file, data_files, head_records
from fmtkit.rules import json_type
from fmtkit.rules.arrow_types import folder_problems
from fmtkit.rules.files import v1_message
from fmtkit.rules.whole_file import FileFinding, FileTally, entry_findings, file_findings, kto_balance
from fmtkit.rules.info import undefined_message
from fmtkit.rules.stage import STAGES
from fmtkit.rules.view import EntryView
from fmtkit.schemas import INFO_SCHEMA, explain_error, reference_validator

if TYPE_CHECKING:
    from fmtkit.record_loop import FilePass
    from fmtkit.remote import Stage

ProgressHook = Callable[[str, int], None]
@dataclass
class FileResult:
    """What was checked in one data file."""

    file: str
    entry: str | None
    form: str
    records: int = 0


@dataclass
class Report:
    """The result of a validation: findings plus what was checked."""

    root: str
    findings: list[Finding] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    detected: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stage: str | None = None

    @classmethod
    def merge(cls, reports: list[Report]) -> Report:
        """One report for several validated paths; file paths become relative to their common folder.

        >>> a, b = Report(root="data/a"), Report(root="data/b")
        >>> b.findings.append(Finding("FMT205", "error", "the file is empty", "add records", file="x.jsonl"))
        >>> m = Report.merge([a, b])
        >>> m.root, m.findings[0].file
        ('data', 'b/x.jsonl')
        """
        root = Path(os.path.commonpath([str(Path(r.root).resolve()) for r in reports]))

        def moved(report: Report, file: str | None) -> str | None:
            return _rel(Path(report.root).resolve() / file, root) if file else file

        out = cls(root=str(Path(os.path.relpath(root))), stage=reports[0].stage)
        for r in reports:
            for f in r.findings:
                f.file = moved(r, f.file)
                out.findings.append(f)
            for fr in r.files:
                fr.file = moved(r, fr.file)
                out.files.append(fr)
            out.entries += r.entries
            out.not_checked += r.not_checked
            out.notes += r.notes
            out.detected.update({moved(r, k): v for k, v in r.detected.items()})
        return out

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.has_errors else EXIT_OK

    @property
    def summary(self) -> dict[str, Any]:
        by_rule: dict[str, int] = {}
        by_sev = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            by_rule[f.code] = by_rule.get(f.code, 0) + 1
            by_sev[f.severity] += 1
        return {
            "root": self.root,
            "entries": len(self.entries),
            "files": len(self.files),
            "records": sum(f.records for f in self.files),
            "errors": by_sev[ERROR],
            "warnings": by_sev["warning"],
            "infos": by_sev["info"],
            "by_rule": dict(sorted(by_rule.items())),
            "not_checked": self.not_checked,
            "detected_forms": self.detected,
            "notes": self.notes,
            "stage": self.stage,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in sorted(self.findings, key=lambda f: f.sort_key)],
            "files": [vars(f) for f in self.files],
            "summary": self.summary,
        }


def validate(
    path: str | os.PathLike,
    entries: Iterable[str] | None = None,
    form: str | None = None,
    stage: str | None = None,
    jobs: int = 1,
    progress: ProgressHook | None = None,
    remote: bool = False,
    file_pass: FilePass | None = None,
    fetched: Stage | None = None,
) -> Report:
    """Validate a dataset folder, a ``dataset_info.json``, or a single data file.

    - ``entries``: only these dataset names (an unknown name is an FMT115 finding).
    - ``form``: force the form of a bare data file (see :data:`fmtkit.detect.FORMS`).
    - ``stage``: also check fitness for a LLaMA-Factory stage (pt, sft, rm, dpo, kto, ppo).
    - ``jobs``: worker processes for large JSON Lines files and indented JSON arrays.
    - ``remote``: ``path`` may be a URL (``hf://datasets/ORG/NAME/...``, ``s3://``, ``memory://``
      ...), and ``hf_hub_url`` entries are read from the hub and checked (:mod:`fmtkit.remote`).
    - ``file_pass``: what else to do with each data file's records in the read that checks them
      (:class:`fmtkit.record_loop.FilePass`); ``fmtkit convert`` converts them.
    - ``fetched``: the :class:`fmtkit.remote.Stage` a URL was laid out in, ``path`` being its local
      folder or file (``fmtkit convert --remote``): its streamed files are read from their store.

    Raises :class:`FmtkitError` (exit code 2) only when the path cannot be read at all.

    >>> report = validate("dataset/", entries=["sharegpt_demo"], stage="sft")
    >>> report.has_errors, report.summary["records"]
    (False, 5)
    >>> validate("dataset/", entries=["sharegpt_demo"], stage="dpo").findings[0].code
    'FMT901'
    """
    from fmtkit.remote import is_url, needs_remote

    if remote:
        return _validate_remote(str(path), entries, form, stage, jobs, progress, file_pass)
    if is_url(path):
        raise needs_remote(str(path))
    return _validate(Path(path), entries, form, stage, jobs, progress, file_pass, fetched)


def _validate_remote(path: str, entries, form, stage, jobs, progress, file_pass) -> Report:
    """``validate(remote=True)``: a URL's dataset (or a local folder's hub entries) laid out in a temporary folder, its data files streamed."""
    import tempfile

    from fmtkit.remote import Stage, is_url

    with tempfile.TemporaryDirectory(prefix="fmtkit-remote-") as tmp:
        fetched = Stage(Path(tmp))
        url = path if is_url(path) else None
        local = fetched.source(url) if url else Path(path)
        report = _validate(local, entries, form, stage, jobs, progress, file_pass, fetched)
        fetched.locate(report)
        fetched.relabel(report, None if url is None else url.rstrip("/") if local.is_dir() else url.rpartition("/")[0])
    return report


def _validate(path: Path, entries, form, stage, jobs, progress, file_pass, fetched=None) -> Report:
    if stage is not None and stage not in STAGES:
        raise FmtkitError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    if form is not None and form not in FORMS:
        raise FmtkitError(f"unknown form {form!r}; use one of {', '.join(FORMS)}")
    if not path.exists():
        raise FmtkitError(f"no such file or folder: {path}")
    rule_registry.load_all()
    checker = _Checker(stage=stage, jobs=max(1, jobs), progress=progress, file_pass=file_pass, fetched=fetched)
    if path.is_dir() or path.name == INFO_FILE:
        root = path if path.is_dir() else path.parent
        report = Report(root=str(root), stage=stage)
        checker.report = report
        if (root / INFO_FILE).is_file():
            if form is not None:
                raise FmtkitError(f"--form applies to bare data files; the entries of {root / INFO_FILE} say what form their files are")
            checker.check_folder(root, list(entries) if entries is not None else None)
        elif entries is not None:
            raise FmtkitError(f"{root}: no {INFO_FILE} here, so there is no entry {', '.join(map(repr, entries))} (is this the dataset folder?)")
        else:
            files = [p for p in data_files(root) if p.suffix.lower() in (".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt")]
            if not files:
                raise FmtkitError(f"{root}: no {INFO_FILE} and no data file here (is this the dataset folder?)")
            checker.check_bare_files(files, root, form)
    else:
        if path.is_file():  # a FIFO, a device or an unreadable file is a finding (FMT206), an unknown extension a usage error
            check_data_file(path, readable=False)
        root = path.parent
        report = Report(root=str(root), stage=stage)
        checker.report = report
        info = root / INFO_FILE
        if not info.is_file() and (path.parent.parent / INFO_FILE).is_file():
            info = path.parent.parent / INFO_FILE  # a file inside a folder entry
        owners = owning_entries(info, path) if info.is_file() and form is None else []
        if owners:  # checked through every entry that reads it, as LLaMA-Factory would read it
            report.root = str(info.parent)
            checker.check_folder(info.parent, owners, only_file=path)
        else:
            checker.check_bare_file(path, root, form)
    report.findings.sort(key=lambda f: (f.sort_key, SEVERITY_RANK[f.severity]))
    return report


def read_info(info: Path) -> tuple[Any, LoadProblem | None]:
    """The parsed ``dataset_info.json`` and None, or None and its FMT101 problem; unreadable: FmtkitError."""
    try:
        data = info.read_bytes()
    except OSError as exc:
        raise FmtkitError(f"cannot read {info}: {exc.strerror}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as exc:
        return None, LoadProblem("FMT101", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", exc.lineno)


def owning_entries(info: Path, file: Path, doc: Any = None) -> list[str]:
    """The entries of ``dataset_info.json`` that read ``file`` (directly or through its folder).

    ``doc``: the parsed ``info`` when the caller has it already.

    >>> owning_entries(Path("dataset/dataset_info.json"), Path("dataset/sharegpt_demo.jsonl"))
    ['sharegpt_demo']
    """
    problem = None
    if doc is None:
        doc, problem = read_info(info)
    if problem or not isinstance(doc, dict):
        return []
    target = file.resolve()
    out = []
    for name, raw in doc.items():
        if isinstance(raw, dict) and isinstance(raw.get("file_name"), str) and raw["file_name"]:
            src = (info.parent / raw["file_name"]).resolve()
            if src == target or (src.is_dir() and target.parent == src):
                out.append(name)
    return out


class _Checker:
    """Runs the checks and fills one :class:`Report`."""

    def __init__(self, stage: str | None, jobs: int, progress: ProgressHook | None, file_pass=None, fetched=None):
        self.stage = stage
        self.jobs = jobs
        self.progress = progress
        self.file_pass = file_pass
        self.fetched = fetched  # with --remote: the fmtkit.remote.Stage that lays out the remote files (hub entries' too)
        self.report: Report
        self.ahead: dict[Path, Callable[[], tuple[list[Finding], FileTally]]] = {}

    def run_ahead(self, files: list[tuple[Path, EntryView | None, str]], root: Path) -> None:
        """Under an engine that runs many units at once (``--engine ray``), start each file's check now.

        :meth:`check_file` then joins each file's result in file order, where it would
        have checked it, so the report is the same as the file-by-file one.
        """
        from fmtkit.engines import check_ahead, current

        engine = current()
        if engine is None or self.file_pass is not None:
            return
        for path, view, form in files:
            if self.fetched is not None and self.readable(path) is path and str(path) in self.fetched.urls:
                continue  # a remote file copied to this machine (Parquet, Arrow): checked here, where the copy is
            if os.access(path, os.R_OK) and path.is_file() and path.stat().st_size:  # else check_file reports it
                self.ahead[path.resolve()] = check_ahead(engine, self.readable(path), _rel(path, root), view, form)

    def readable(self, path: Path):
        """The file whose records to read for ``path``: with --remote, a streamed file's :class:`fmtkit.remote.RemoteFile` (``path`` holds its head)."""
        return self.fetched.readable(path) if self.fetched is not None else path

    def add(self, code: str, message: str, *, file=None, line=None, record=None, entry=None, fix=None) -> None:
        rule = rule_registry.RULES[code]
        self.report.findings.append(Finding(code, rule.severity, message, fix or rule.fix, file, line, record, entry))

    # -- dataset_info.json -------------------------------------------------
    def check_folder(self, root: Path, wanted: list[str] | None, only_file: Path | None = None) -> None:
        info_path = root / INFO_FILE
        doc, problem = read_info(info_path)
        info_text = info_path.read_text(encoding="utf-8-sig", errors="replace") if problem is None else ""
        if problem is not None:
            self.add(problem.code, problem.message, file=INFO_FILE, line=problem.line)
            return
        if not isinstance(doc, dict):
            self.add("FMT102", f"dataset_info.json holds a JSON {json_type(doc)}, not an object", file=INFO_FILE)
            return
        names = [n for n in doc if n != "$schema"]  # "$schema" lets editors find the schema
        if wanted is not None:
            for name in wanted:
                if name not in doc:
                    self.add("FMT115", undefined_message(name, doc), file=INFO_FILE)
            names = [n for n in wanted if n in doc]
        lines = _key_lines(info_text, names)
        for name in names:
            raw = doc[name]
            line = lines.get(name)
            if not isinstance(raw, dict):
                self.add("FMT102", f"entry {name!r} is a JSON {json_type(raw)}, not an object", file=INFO_FILE, line=line, entry=name)
                continue
            entry = DatasetEntry.from_dict(name, raw, root)
            self.report.entries.append(name)
            if self.check_entry(entry, line):
                continue
            if entry.is_local:
                self.check_entry_files(entry, root, only_file)
            elif self._from_hub(entry):
                self.check_hub_entry(entry, root, line)

    def check_entry(self, entry: DatasetEntry, line: int | None) -> bool:
        """Entry and stage rules; True when an error stops the entry's files from being read."""
        before = len(self.report.findings)
        for rule in rule_registry.RULES.values():
            if rule.scope == "entry" or (rule.scope == "stage" and self.stage):
                if rule.code == "FMT114" and self._from_hub(entry):
                    continue  # "not checked locally": with --remote it is
                args = (entry,) if rule.scope == "entry" else (entry, self.stage)
                for message in rule.check(*args) or ():
                    self.add(rule.code, message, file=INFO_FILE, line=line, entry=entry.name)
        validator = reference_validator(INFO_SCHEMA)
        mine = self.report.findings[before:]
        if validator is not None and not any(f.severity == ERROR for f in mine):
            for err in sorted(validator.iter_errors({entry.name: entry.raw}), key=lambda e: list(e.path))[:3]:
                where, text = explain_error(err)
                where = where.partition("/")[2] or "(entry)"
                self.add("FMT100", f"{where}: {text}", file=INFO_FILE, line=line, entry=entry.name)
        if entry.source_key is not None and not entry.is_local and not self._from_hub(entry):
            self.report.not_checked.append(entry.name)
        blocking = {"FMT104", "FMT105", "FMT106", "FMT111", "FMT112", "FMT113", "FMT116", "FMT117", "FMT120"}
        return any(f.code in blocking for f in self.report.findings[before:])

    def _from_hub(self, entry: DatasetEntry) -> bool:
        """With --remote: an ``hf_hub_url`` entry, whose files are read from the hub."""
        return self.fetched is not None and entry.source_key == "hf_hub_url"

    def check_hub_entry(self, entry: DatasetEntry, root: Path, line: int | None) -> None:
        """An ``hf_hub_url`` entry's files as ``datasets`` picks them (:meth:`fmtkit.remote.Stage.hub_entry`); a subset, split or folder the repository lacks is FMT112."""
        from fmtkit.remote import HubMismatch, NotCheckable

        try:
            files = self.fetched.hub_entry(entry.name, entry.raw)
        except HubMismatch as exc:
            self.add("FMT112", str(exc), file=INFO_FILE, line=line, entry=entry.name, fix=exc.fix)
            return
        except NotCheckable as exc:
            self.report.not_checked.append(entry.name)
            self.report.notes.append(f"entry {entry.name!r}: not checked: {exc}")
            return
        self.check_entry_files(entry, root, None, files)

    # -- data files --------------------------------------------------------
    def check_entry_files(self, entry: DatasetEntry, root: Path, only_file: Path | None, fetched: list[Path] | None = None) -> None:
        """The entry's files (``fetched``: copies of its hub files) through the record and whole-file rules."""
        view = EntryView.of(entry, root=root, stage=self.stage)
        total = errored = 0
        parts = []  # (file, its Arrow parts): datasets loads a folder's files as one table
        files = fetched if fetched is not None else [p for p in data_files(entry.data_path()) if only_file is None or p.resolve() == only_file.resolve()]
        files = [p for p in files if not self._v1_file(p, root, entry)]
        self.run_ahead([(p, view, entry.form) for p in files], root)
        for path in files:
            tally = self.check_file(path, root, view, entry.form)
            total += tally.records
            errored += tally.errored
            if tally.records:
                parts.append((_rel(path, root), tally.arrow.parts))
            self._add_all(kto_balance(tally, entry), _rel(path, root), entry.name)
        for rel, p in folder_problems(parts):
            self.add(p.code, p.message, file=rel, line=p.line, record=p.record, entry=entry.name, fix=p.fix)
        codes = sorted({f.code for f in self.report.findings if f.entry == entry.name and f.record is not None and f.severity == ERROR})
        self._add_all(entry_findings(entry, total, errored, codes), INFO_FILE, entry.name)

    def _v1_file(self, path: Path, root: Path, entry: DatasetEntry) -> bool:
        """FMT208 (once) when a conversation entry's JSON file is in LLaMA-Factory's v1 format: its records are not checked."""
        if not entry.is_conversation or DATA_EXTENSIONS.get(path.suffix.lower()) != "json":
            return False
        v1 = detect_v1(head_records(path))
        if v1:
            self.add("FMT208", v1_message(v1) + "; its records are not checked", file=_rel(path, root), entry=entry.name)
        return v1 is not None

    def _add_all(self, found: list[FileFinding], file: str, entry: str | None) -> None:
        for f in found:
            self.add(f.code, f.message, file=file, line=f.line, record=f.record, entry=entry, fix=f.fix)

    def bare_plan(self, path: Path, root: Path, form: str | None) -> tuple[str | None, EntryView | None]:
        """A bare file's form (``form``, or detected from its first records; None: unknown) and the view it is checked through."""
        head = head_records(path)
        form = form or detect_form(head)
        if form not in BARE_ENTRIES:
            return form, None
        entry = DatasetEntry.for_file(form, head, root, file_name=_rel(path, root))
        return form, EntryView.of(entry, root=root, stage=self.stage)

    def check_bare_files(self, files: list[Path], root: Path, form: str | None) -> None:
        plans = [self.bare_plan(p, root, form) for p in files]
        self.run_ahead([(p, view, found or "unknown") for p, (found, view) in zip(files, plans, strict=True)], root)
        for p, plan in zip(files, plans, strict=True):
            self.check_bare_file(p, root, form, plan)

    def check_bare_file(self, path: Path, root: Path, form: str | None, plan: tuple[str | None, EntryView | None] | None = None) -> None:
        rel = _rel(path, root)
        found, view = plan or self.bare_plan(path, root, form)
        if found is None:
            tally = self.check_file(path, root, None, "unknown")
            v1 = detect_v1(head_records(path)) if tally.records else None
            if v1:
                self.add("FMT208", v1_message(v1) + "; its records are not checked", file=rel)  # bare: the form is unknown
            elif tally.records:
                self.add("FMT207", "no known form detected (looked for instruction, conversations, messages, prompt, chosen, text ...)", file=rel)
            return
        if form is None:
            self.report.detected[rel] = found
        tally = self.check_file(path, root, view, found)
        if view is not None:
            self._add_all(kto_balance(tally, view.entry), rel, None)

    def check_file(self, path: Path, root: Path, view: EntryView | None, form: str) -> FileTally:
        rel = _rel(path, root)
        name = view.entry.name if view is not None and not view.entry.name.startswith("<") else None
        result = FileResult(rel, name, form)
        self.report.files.append(result)
        try:
            if not os.access(path, os.R_OK) or not path.is_file():
                raise PermissionError
            size = path.stat().st_size
        except OSError:
            self.add("FMT206", f"cannot read {rel}", file=rel, entry=name)
            return FileTally()
        if size == 0:
            self.add("FMT205", "the file is empty", file=rel, entry=name)
            return FileTally()
        from fmtkit.record_loop import check_path

        started = self.ahead.pop(path.resolve(), None)
        findings, tally = started() if started else check_path(self.readable(path), rel, view, form, self.jobs, self.progress, self.file_pass)
        for f in findings:
            f.entry = name
        self.report.findings.extend(findings)
        result.records = tally.records
        if tally.records == 0 and not findings:
            self.add("FMT205", "the file holds no record", file=rel, entry=name)
        self._file_rules(tally, rel, name, view, form)
        return tally

    def _file_rules(self, tally: FileTally, rel: str, name: str | None, view: EntryView | None, form: str) -> None:
        """The whole-file rules (FMT8xx, :func:`fmtkit.rules.whole_file.file_findings`) on one file's tally."""
        found, quiet, notes = file_findings(tally, view, rel, form)
        if quiet:  # one absent column explains every record's finding about it: keep the one finding
            self.report.findings = [f for f in self.report.findings if not (f.file == rel and f.entry == name and f.code in quiet)]
        self._add_all(found, rel, name)
        self.report.notes.extend(notes)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _key_lines(text: str, names: list[str]) -> dict[str, int]:
    """1-based line of each top-level entry name in the text of dataset_info.json (for finding locations).

    A small scanner: it tracks strings and nesting depth, so it works on
    pretty-printed and one-line files alike.

    >>> _key_lines('{"a": {"file_name": "x"},\\n "b": {}}', ["a", "b"])
    {'a': 1, 'b': 2}
    """
    wanted, out = set(names), {}
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == '"':
            start_line, j = line, i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1:
                try:
                    key = orjson.loads(text[i : j + 1])
                except orjson.JSONDecodeError:
                    key = None
                rest = text[j + 1 : j + 64].lstrip()
                if key in wanted and key not in out and rest.startswith(":"):
                    out[key] = start_line
            line += text.count("\n", i, j)
            i = j
        i += 1
    return out


__all__ = ["validate", "Report", "FileResult", "Finding", "EXIT_USAGE"]

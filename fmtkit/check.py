"""The record loop: every record of one file through the record rules and the schema.

This is the hot path of ``fmtkit validate``. Work per record is kept small:
the rules that apply to an entry are chosen once, each returns None quickly
for a good record, and the JSON Schema runs compiled (``jsonschema_rs``). Big
JSON Lines files are split by byte ranges over worker processes (``--jobs``);
each worker returns its findings and a :class:`FileTally` that joins in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson

from fmtkit import rules as rule_registry
from fmtkit.dataset_info import DATA_EXTENSIONS
from fmtkit.findings import ERROR, Finding
from fmtkit.loading import LoadProblem, Record, iter_records
from fmtkit.rules.dataset import FileTally
from fmtkit.rules.view import EntryView
from fmtkit.schemas import fast_validator, schema_for_form

SHARD_MIN_BYTES = 8 << 20  # below this, one process is faster than starting workers
PROGRESS_EVERY = 8192

# canonical schema key -> DatasetEntry attribute
_ALPACA_KEYS = {"instruction": "prompt", "input": "query", "output": "response", "system": "system", "history": "history",
                "chosen": "chosen", "rejected": "rejected", "kto_tag": "kto_tag", "images": "images", "videos": "videos", "audios": "audios"}  # fmt: skip
_SHAREGPT_KEYS = {"conversations": "messages", "system": "system", "tools": "tools", "chosen": "chosen", "rejected": "rejected",
                  "kto_tag": "kto_tag", "images": "images", "videos": "videos", "audios": "audios"}  # fmt: skip
_DEFAULT_TAGS = {"user_tag": "human", "assistant_tag": "gpt", "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


class _SchemaView:
    """Turns a record into what its form's schema describes: the mapped columns, under default names."""

    def __init__(self, view: EntryView | None, form: str):
        self.form = form
        self.validator = None
        self.keys: list[tuple[str, str]] = []
        self.retag = None
        base = form.split("-")[0]
        if view is None:
            name = schema_for_form(form)
            self.validator = fast_validator(name) if name else None
            return
        e = view.entry
        if e.is_pretrain:
            name, self.keys = schema_for_form("alpaca-pretrain"), [("text", e.prompt)]
        else:
            openai_native = e.role_tag == "role" and e.content_tag == "content" and not e.ranking and not e.is_kto
            if openai_native:
                name, table = schema_for_form("openai"), {"messages": "messages", "tools": "tools"} | {k: k for k in ("images", "videos", "audios")}
            else:
                name = schema_for_form({"alpaca": "alpaca", "sharegpt": "sharegpt", "openai": "sharegpt"}.get(base, base) + form[len(base):])
                table = _ALPACA_KEYS if e.formatting == "alpaca" else _SHAREGPT_KEYS
                if e.is_conversation and (e.role_tag != "from" or e.content_tag != "value" or any(getattr(e, t) != v for t, v in _DEFAULT_TAGS.items())):
                    self.retag = (e.role_tag, e.content_tag, {getattr(e, t): v for t, v in _DEFAULT_TAGS.items() if getattr(e, t) is not None})
            self.keys = [(k, getattr(e, attr)) for k, attr in table.items() if getattr(e, attr, None) is not None]
        self.validator = fast_validator(name) if name else None
        self.message_keys = {"conversations", "chosen", "rejected"}

    def project(self, rec: dict):
        if not self.keys:
            return rec
        out = {k: rec[col] for k, col in self.keys if col in rec and rec[col] is not None}
        if self.retag is not None:
            rt, ct, roles = self.retag
            for k in ("conversations", "chosen", "rejected"):
                v = out.get(k)
                if type(v) is list:
                    out[k] = [self._msg(m, rt, ct, roles) for m in v]
                elif type(v) is dict:
                    out[k] = self._msg(v, rt, ct, roles)
        return out

    @staticmethod
    def _msg(m, rt, ct, roles):
        if type(m) is not dict:
            return m
        out = {k: v for k, v in m.items() if k != rt and k != ct}
        if rt in m:
            out["from"] = roles.get(m[rt], m[rt])
        if ct in m:
            out["value"] = m[ct]
        return out


def _record_rules(view: EntryView | None) -> list:
    if view is None:
        return []
    out = []
    for rule in rule_registry.RULES.values():
        if rule.scope == "record" and rule.check is not None and (rule.applies is None or rule.applies(view)):
            out.append((rule.code, rule.severity, rule.fix, rule.check))
    return out


def check_records(records: Iterator[Record], rel: str, view: EntryView | None, form: str, problems: list[Finding], progress=None) -> FileTally:
    """Run the record rules and the schema over ``records``, appending findings to ``problems``."""
    checks = _record_rules(view)
    schema = _SchemaView(view, form)
    validator, project = schema.validator, schema.project
    e = view.entry if view is not None else None
    tally = FileTally(mapped=tuple(e.used_columns().values()) if e else (), kto_col=e.kto_tag if e else None)
    append = problems.append
    n = 0
    for index, line, rec in records:
        n += 1
        if type(rec) is not dict:
            append(Finding("FMT202", ERROR, f"the record is {type(rec).__name__ if rec is not None else 'null'}, not an object", rule_registry.RULES["FMT202"].fix, rel, line, index))
            tally.errored += 1
            continue
        errored = False
        for code, severity, fix, check in checks:
            out = check(rec, view)
            if out:
                if severity == ERROR:
                    errored = True
                for message in (out,) if type(out) is str else out:
                    append(Finding(code, severity, message, fix, rel, line, index))
        if validator is not None and not errored:
            obj = project(rec)
            if not validator.is_valid(obj):
                err = next(iter(validator.iter_errors(obj)))
                where = "/".join(str(p) for p in err.instance_path) or "(record)"
                append(Finding("FMT300", ERROR, f"{where}: {err.message}", rule_registry.RULES["FMT300"].fix, rel, line, index))
                errored = True
        if errored:
            tally.errored += 1
        tally.add(index, line, rec)
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(rel, n)
    tally.records = n
    return tally


def _sink(problems: list[Finding], rel: str):
    def on_problem(p: LoadProblem) -> None:
        rule = rule_registry.RULES[p.code]
        problems.append(Finding(p.code, rule.severity, p.message, rule.fix, rel, p.line, p.record))

    return on_problem


def check_path(path: Path, rel: str, view: EntryView | None, form: str, jobs: int = 1, progress=None):
    """Check one file; JSON Lines files bigger than a few MB are sharded over ``jobs`` processes."""
    problems: list[Finding] = []
    is_lines = DATA_EXTENSIONS.get(path.suffix.lower()) == "json" and not _starts_array(path)
    size = path.stat().st_size
    if jobs > 1 and is_lines and size >= SHARD_MIN_BYTES:
        return _check_sharded(path, rel, view, form, jobs, size)
    try:
        tally = check_records(iter_records(path, _sink(problems, rel)), rel, view, form, problems, progress)
    except OSError as exc:
        problems.append(Finding("FMT206", ERROR, f"cannot read {rel}: {exc.strerror or exc}", rule_registry.RULES["FMT206"].fix, rel))
        tally = FileTally()
    tally.errored += sum(1 for f in problems if f.code in ("FMT201", "FMT203") and f.record is not None)
    return problems, tally


def _starts_array(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] == b"["


def _shard_bounds(path: Path, parts: int, size: int) -> list[tuple[int, int]]:
    """Byte ranges that start and end on line boundaries."""
    cuts = [0]
    with path.open("rb") as fh:
        for k in range(1, parts):
            fh.seek(max(cuts[-1], size * k // parts))
            fh.readline()
            cuts.append(fh.tell())
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _iter_range(path: Path, start: int, end: int, problems: list[Finding], rel: str, counts: list[int]) -> Iterator[Record]:
    sink = _sink(problems, rel)
    loads = orjson.loads
    index = 0
    lineno = 0
    with path.open("rb") as fh:
        fh.seek(start)
        pos = start
        for raw in fh:
            if pos >= end:
                break
            pos += len(raw)
            lineno += 1
            if start == 0 and lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                sink(LoadProblem("FMT204", "the file starts with a UTF-8 byte order mark (BOM)", 1))
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                value = loads(raw)
            except orjson.JSONDecodeError as exc:
                from fmtkit.loading.json_file import _json_problem

                sink(_json_problem(raw, exc, lineno, index))
                index += 1
                continue
            yield Record(index, lineno, value)
            index += 1
    counts[:] = [index, lineno]


def _check_shard(args):
    path, start, end, rel, view, form = args
    rule_registry.load_all()
    problems: list[Finding] = []
    counts = [0, 0]
    tally = check_records(_iter_range(path, start, end, problems, rel, counts), rel, view, form, problems)
    tally.errored += sum(1 for f in problems if f.code in ("FMT201", "FMT203"))
    tally.records, tally.lines = counts
    return problems, tally


def _check_sharded(path: Path, rel: str, view: EntryView | None, form: str, jobs: int, size: int):
    bounds = _shard_bounds(path, jobs, size)
    problems: list[Finding] = []
    total: FileTally | None = None
    records = lines = 0
    with ProcessPoolExecutor(max_workers=min(jobs, len(bounds), os.cpu_count() or 1)) as pool:
        for found, tally in pool.map(_check_shard, [(path, a, b, rel, view, form) for a, b in bounds]):
            for f in found:
                if f.record is not None:
                    f.record += records
                if f.line is not None:
                    f.line += lines
            problems.extend(found)
            n, ln = tally.records, tally.lines
            tally.shifted(records, lines)
            if total is None:
                total = tally
            else:
                total.join(tally)
            records += n
            lines += ln
    assert total is not None
    total.records, total.lines = records, lines
    return problems, total

"""Baselines: accept today's findings, report only new ones.

Data files cannot carry ``# noqa`` comments, so a baseline file lists the
findings a team has accepted: each by rule code, file (relative to the
baseline's folder) and a content hash of its record (SHA-256 of the record's
JSON with sorted keys), so inserting or moving records does not invalidate it.
A finding about no record (a file or an entry) is keyed by rule and file alone.

>>> key_of("FMT402", "data/chat.jsonl", {"b": 1, "a": [2]})[2][:12]
'63c9663de90e'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import orjson

from fmtkit.errors import FmtkitError
from fmtkit.loading import iter_records

VERSION = 1
Key = tuple[str, str, str]


def record_hash(value) -> str:
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        data = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def key_of(code: str, file: str, record) -> Key:
    return (code, file, record_hash(record) if record is not None else "")


def keys(findings: list, root: str, base: Path, stdin: bool = False) -> list[Key]:
    """The baseline key of each finding (in order); files are read once, only for the records named.

    ``stdin``: the findings are about standard input (copied under ``root``), whose file is keyed ``-``.
    """
    wanted: dict[str, set[int]] = {}
    for f in findings:
        if f.file and f.record is not None:
            wanted.setdefault(f.file, set()).add(f.record)
    records: dict[tuple[str, int], object] = {}
    for file, indices in wanted.items():
        last = max(indices)
        for rec in iter_records(Path(root) / file):
            if rec.index in indices:
                records[file, rec.index] = rec.value
            if rec.index >= last:
                break
    out = []
    for f in findings:
        file = "-" if stdin else _relative(Path(root) / f.file, base) if f.file else ""
        value = records.get((f.file, f.record)) if f.record is not None else None
        # a record that no longer decodes (FMT201) is keyed by its line's finding alone
        out.append((f.code, file, record_hash(value) if value is not None else (f"line:{f.message}" if f.record is not None else "")))
    return out


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve()).replace(os.sep, "/")


def write(path: Path, findings: list, root: str, stdin: bool = False) -> int:
    """Write the baseline of ``findings`` to ``path`` (atomically); return how many it holds."""
    from fmtkit.writing import write_lines

    counts = Counter(keys(findings, root, path.parent, stdin))
    rows = [{"code": c, "file": f, "hash": h, "count": n} for (c, f, h), n in sorted(counts.items())]
    doc = {"version": VERSION, "tool": "fmtkit", "findings": rows}
    write_lines(path, [json.dumps(doc, indent=2, ensure_ascii=False) + "\n"])
    return sum(counts.values())


def read(path: Path) -> Counter:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = doc["findings"] if doc.get("tool") == "fmtkit" else None
        if rows is None:
            raise KeyError
        return Counter({(r["code"], r["file"], r["hash"]): int(r.get("count", 1)) for r in rows})
    except OSError as exc:
        raise FmtkitError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FmtkitError(f"{path}: not an fmtkit baseline (write one with `fmtkit validate --write-baseline {path}`)") from None


def apply(path: Path, findings: list, root: str, stdin: bool = False) -> tuple[list, int, int]:
    """(the findings not in the baseline, how many it hid, how many baselined findings no longer occur)."""
    accepted = read(path)
    kept, hidden = [], 0
    for f, key in zip(findings, keys(findings, root, path.parent, stdin), strict=True):
        if accepted[key] > 0:
            accepted[key] -= 1
            hidden += 1
        else:
            kept.append(f)
    return kept, hidden, sum(accepted.values())

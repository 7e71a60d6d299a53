"""Writing a conversion's output: the columns every record gets, the file types, assembling the shards'
parts, the check that LLaMA-Factory would load the output as written, and registering it in ``dataset_info.json``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fmtkit.dataset_info import INFO_FILE
from fmtkit.errors import FmtkitError
from fmtkit.forms import FORMS
from fmtkit.loading.json_file import decode_line, encode_line


def _write_parquet(lines: Callable[[], Iterator[bytes]], dest: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise FmtkitError("writing .parquet needs pyarrow: pip install 'fmtkit[arrow]'") from None

    def batches():
        rows = []
        for raw in lines():
            rows.append(decode_line(raw))
            if len(rows) >= 20000:
                yield rows
                rows = []
        if rows:
            yield rows

    schema = None
    try:
        for rows in batches():  # pass 1: one schema for every batch
            s = pa.Table.from_pylist(rows).schema
            schema = s if schema is None else pa.unify_schemas([schema, s], promote_options="permissive")
        if schema is None:
            pq.write_table(pa.table({}), dest)
            return
        with pq.ParquetWriter(dest, schema) as writer:
            for rows in batches():
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise FmtkitError(f"cannot write parquet: a column changes type between records ({exc}); write .jsonl instead") from None
    except (pa.ArrowException, OverflowError) as exc:  # an all-{} column, an integer beyond 64 bits...
        raise FmtkitError(f"cannot write parquet: Arrow cannot hold this data ({exc}); write .jsonl instead") from None


def concatenate(parts: list[Path]) -> None:
    """Append the other parts to the first, in order (in the kernel where it can)."""
    import os
    import shutil

    if len(parts) < 2:
        return
    with parts[0].open("ab") as out:
        for part in parts[1:]:
            with part.open("rb") as src:
                size = os.fstat(src.fileno()).st_size
                done = 0
                try:
                    while done < size:
                        n = os.copy_file_range(src.fileno(), out.fileno(), size - done)
                        if n == 0:
                            break
                        done += n
                except (AttributeError, OSError):  # no copy_file_range here: copy through Python
                    pass
                if done < size:
                    src.seek(done)
                    out.seek(0, os.SEEK_END)
                    shutil.copyfileobj(src, out, 1 << 20)


def assemble(parts: list[Path], dest: Path, kind: str, fill: dict[str, Any] | None, drop: set[int]) -> None:
    """Join the parts into ``dest`` in the output type, filling missing columns and leaving out dropped rows."""

    def lines() -> Iterator[bytes]:
        row = 0
        for part in parts:
            with part.open("rb") as fh:
                for raw in fh:
                    if row in drop:
                        row += 1
                        continue
                    row += 1
                    if fill is not None:
                        raw = encode_line({**fill, **decode_line(raw)})
                    yield raw

    if kind == "parquet":
        _write_parquet(lines, dest)
        return
    with dest.open("wb", buffering=1 << 20) as out:
        if kind == "jsonl":
            for raw in lines():
                out.write(raw)
            return
        out.write(b"[")
        first = True
        for raw in lines():
            out.write(b"\n" if first else b",\n")
            out.write(raw.rstrip(b"\n"))
            first = False
        out.write(b"\n]\n")


def registration(form: str, output: Path, info_dir: Path, columns: list[str], tool_turns: bool = True) -> dict[str, Any]:
    """The ``dataset_info.json`` entry that makes LLaMA-Factory load a converted file as it is.

    OpenAI output with no tool call or tool result (``tool_turns`` False) is
    registered with ``formatting: sharegpt`` and OpenAI tags: LLaMA-Factory's
    ShareGPT reader reads it exactly as its openai reader would, except that the
    openai reader also appends "detailed thinking off" to every system prompt
    (FMT119). Only ``tool_calls`` need the openai reader.

    >>> registration("openai", Path("d/o.jsonl"), Path("d"), ["messages"], tool_turns=False)["formatting"]
    'sharegpt'
    """
    import os.path

    f = FORMS[form]
    if not f.roles:
        lf = ", ".join(n for n, x in FORMS.items() if x.roles)
        raise FmtkitError(f"LLaMA-Factory cannot load the {form} form, so --register cannot register it (forms it loads: {lf})")
    rel = os.path.relpath(output.resolve(), info_dir.resolve())
    raw: dict[str, Any] = {"file_name": str(output.resolve()) if rel.startswith("..") else rel}
    entry = copy.deepcopy(f.entry or {})
    tags = entry.pop("tags", None)
    if entry.get("formatting") == "openai" and not tool_turns:
        entry["formatting"] = "sharegpt"
    raw.update(entry)
    raw["columns"] = {role: col for role, col in f.roles.items() if col in columns}
    if tags:
        raw["tags"] = tags
    return raw


def check_entry_name(name: str) -> None:
    """An entry name LLaMA-Factory can refer to: its ``dataset:`` list is split at commas and each name stripped.

    >>> check_entry_name("a,b")
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: --name 'a,b': LLaMA-Factory splits dataset names at commas and strips spaces around them, so no config could name it; choose a name without commas, control characters or surrounding spaces
    """
    if not name or "," in name or name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise FmtkitError(
            f"--name {name!r}: LLaMA-Factory splits dataset names at commas and strips spaces around them, so no config "
            "could name it; choose a name without commas, control characters or surrounding spaces"
        )


def add_entry(info_dir: Path, name: str, raw: dict[str, Any]) -> None:
    """Append one entry to ``dataset_info.json``, leaving the text of every other entry as it was; atomic, under the folder's lock."""
    from fmtkit.writing import atomic_write, locked

    path = info_dir / INFO_FILE
    entry_text = json.dumps({name: raw}, indent=2, ensure_ascii=False)[1:-1].strip("\n")
    with locked(info_dir):  # concurrent registrations take turns: each reads what the one before wrote
        if path.exists():
            text = path.read_text(encoding="utf-8")
            info = json.loads(text)
            if name in info:
                raise FmtkitError(f"{path}: an entry named {name!r} exists already; choose another with --name")
            body = text.rstrip()
            if not body.endswith("}"):
                raise FmtkitError(f"{path}: does not end with '}}'")
            head = body[:-1].rstrip()
            new = f"{head}{',' if info else ''}\n{entry_text}\n}}\n"
            if json.loads(new) != {**info, name: raw}:  # the text edit must mean exactly "one more entry"
                new = json.dumps({**info, name: raw}, indent=2, ensure_ascii=False) + "\n"
        else:
            new = json.dumps({name: raw}, indent=2, ensure_ascii=False) + "\n"
        with atomic_write(path) as fh:
            fh.write(new.encode("utf-8"))


def unloadable(path: Path, kind: str) -> str | None:
    """Why LLaMA-Factory would not load a converted file as written, or None: the Arrow rules on the output.

    `datasets` gives each column (and nested field) one Arrow type: tool call
    ``arguments`` objects of several shapes fail to load, or come back with the
    union of their keys (null where absent), which LLaMA-Factory's openai
    reader then trains on (FMT807, FMT810).
    """
    if kind not in ("jsonl", "json"):
        return None  # columnar output is typed already
    from fmtkit.loading.json_file import iter_json
    from fmtkit.rules.arrow_types import arrow_conflicts

    problems = arrow_conflicts((r.value for r in iter_json(path, lambda _: None)), array_file=kind == "json")
    if not problems:
        return None
    p = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (f"LLaMA-Factory would not read the output as written: output record {p.record} {p.message} [{p.code}]{more}; "
            f"{p.fix}")

"""Meaning as the REAL LLaMA-Factory sees it: conversions between its forms keep the aligned view.

Optional: runs only where the separate LLaMA-Factory 0.9.5 environment exists
(``bash scripts/setup-llamafactory.sh`` makes ``.venv-lf``; it cannot share
``.venv``). ``FMTKIT_LF_PYTHON`` names another python that has llamafactory;
set to an empty string it means "no such environment" (the test skips).

Same loop as ``test_convert_lf.py``, but the reader is LLaMA-Factory itself:
every local entry of the bundled ``dataset/`` folder is converted to every
LLaMA-Factory form that can hold it (``register=True``), then ``lf_probe.py``
loads each source entry and each registered entry with LLaMA-Factory's own
loader and converters, in one subprocess, and each written record's aligned
view (prompt, response, system, tools, media) must equal its source record's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_convert_lf import LF_FORMS, _call

import fmtkit

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "dataset"
PROBE = Path(__file__).resolve().parent / "lf_probe.py"
DEFAULT_PYTHON = ROOT / ".venv-lf" / "bin" / "python"
SETUP = "run `bash scripts/setup-llamafactory.sh` to make it"


def lf_python() -> tuple[Path | None, str]:
    """The python of the LLaMA-Factory environment, or None and why it is absent."""
    env = os.environ.get("FMTKIT_LF_PYTHON")
    if env == "":
        return None, "FMTKIT_LF_PYTHON is empty: no LLaMA-Factory environment"
    path = Path(env) if env else DEFAULT_PYTHON
    if not path.exists():
        return None, f"no LLaMA-Factory environment at {path}: {SETUP}"
    has = subprocess.run(
        [str(path), "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('llamafactory') is None)"],
        check=False, capture_output=True, env=_clean_env(), timeout=60,
    )  # fmt: skip
    if has.returncode != 0:
        return None, f"{path} has no llamafactory: {SETUP}"
    return path, ""


def require_lf_python() -> Path:
    """The LLaMA-Factory environment's python; without one the test skips, saying why, except where
    ``FMTKIT_REQUIRE_LF=1`` (CI sets it once it has built the environment): there it fails."""
    python, why = lf_python()
    if python is None:
        if os.environ.get("FMTKIT_REQUIRE_LF") == "1":
            pytest.fail(f"FMTKIT_REQUIRE_LF=1 but {why}")
        pytest.skip(why)
    return python


def _clean_env() -> dict[str, str]:
    """This process's environment without what would point the other python at .venv's packages."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    }


def probe(python: Path, folder: Path, entries: list[str]) -> dict:
    """LLaMA-Factory's aligned records of each entry (see lf_probe.py), in one subprocess."""
    run = subprocess.run(
        [str(python), str(PROBE), str(folder), *entries],
        check=False,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=600,
    )
    assert run.returncode == 0, f"lf_probe.py failed:\n{run.stderr[-4000:]}"
    out = json.loads(run.stdout)
    errors = {name: v["error"] for name, v in out.items() if isinstance(v, dict)}
    assert not errors, f"LLaMA-Factory could not load these entries: {errors}"
    return out


# ---- the aligned view, normalised only for LLaMA-Factory's own documented quirks ---------


def _turn(message: dict) -> tuple:
    role, content = message["role"], message["content"]
    # A function call's JSON is compared as LLaMA-Factory's function formatter reads it, with
    # test_convert_lf's _call: the key order and spacing of the call's JSON differ between
    # writers, but its arguments must be the same value (JSON text would be encoded again: FMT705).
    return (role, _call(content) if role == "function" else content)


def _tools(value):
    # LLaMA-Factory's tool formatter reads the tools with json.loads; None (a null column) and ""
    # both mean no tools (its templates test `if tools`).
    if isinstance(value, str):
        return json.loads(value) if value else None
    return value


def _openai_system(system: str, tools) -> str:
    """The system prompt LLaMA-Factory 0.9.5's openai converter makes of ``system``.

    docs/llamafactory.md (the openai reader): it appends "detailed thinking off" in some cases (no
    tools and no thinking switch in the system prompt), or a newline when there
    are tools. So a record read through an openai entry is compared with one
    read through another formatting after applying the same rule to the latter.
    """
    off = "detailed thinking off"
    if not system:
        return "" if tools else off
    if tools:
        return system + "\n"
    return (
        system
        if ("detailed thinking on" in system or off in system)
        else system + "\n" + off
    )


def view(record: dict, formatting: str, other: str) -> dict | None:
    """The aligned view of one record read through a ``formatting`` entry, made comparable with ``other``'s."""
    if not record["_prompt"] and not record["_response"]:
        return None  # the converter found it broken: LLaMA-Factory drops it
    # None (a null column) and "" both mean no system prompt (templates use `system or default`).
    system = record["_system"] or ""
    if other == "openai" and formatting != "openai":
        raw = record["_tools"]
        system = _openai_system(
            system, bool(raw) if isinstance(raw, str) else raw is not None
        )
    return {
        "prompt": [_turn(m) for m in record["_prompt"]],
        "response": [_turn(m) for m in record["_response"]],
        "system": system,
        "tools": _tools(record["_tools"]),
        "images": record["_images"],
        "videos": record["_videos"],
        "audios": record["_audios"],
    }


# ---- the test ------------------------------------------------------------------------------


def skipped_indices(report) -> set[int]:
    """Source records the conversion left out (not expressible, or invalid), from the report's examples."""
    found = {
        ex["record"]
        for key, items in report.examples.items()
        if not key.startswith("lost:")
        for ex in items
    }
    assert len(found) == report.skipped, (
        "more skipped records than examples: grow EXAMPLES_PER_CODE in the test"
    )
    return found


def test_real_llamafactory_reads_converted_records_as_their_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    python = require_lf_python()
    from fmtkit.conversion import engine

    monkeypatch.setattr(engine, "EXAMPLES_PER_CODE", 1000)
    assert (DATASET / "dataset_info.json").is_file(), (
        "the bundled dataset/ folder is missing"
    )
    ds = tmp_path / "ds"
    shutil.copytree(DATASET, ds)
    info = json.loads((ds / "dataset_info.json").read_text())
    sources = [name for name, raw in info.items() if "file_name" in raw]
    conversions = []  # (source entry, target form, registered entry, skipped source indices)
    for name in sources:
        for to in LF_FORMS:
            report = fmtkit.convert(
                ds, to, ds / "out" / f"{name}.{to}.jsonl", entry=name, register=True
            )
            if report.written:
                conversions.append(
                    (name, to, report.registered["name"], skipped_indices(report))
                )
    assert len(conversions) >= 25

    read = probe(
        python, ds, sources + [registered for _, _, registered, _ in conversions]
    )
    info = json.loads((ds / "dataset_info.json").read_text())
    formatting = {name: info[name].get("formatting", "alpaca") for name in read}
    differences = []
    for name, to, registered, skipped in conversions:
        src_fmt, dst_fmt = formatting[name], formatting[registered]
        before = [
            view(r, src_fmt, dst_fmt)
            for i, r in enumerate(read[name])
            if i not in skipped
        ]
        after = [view(r, dst_fmt, src_fmt) for r in read[registered]]
        if len(after) != len(before):
            differences.append(
                f"{name} -> {to}: {len(after)} records read, {len(before)} expected"
            )
            continue
        kept = [i for i in range(len(read[name])) if i not in skipped]
        for i, b, a in zip(kept, before, after, strict=True):
            if a != b:
                diff = {
                    k: {"source": b and b[k], "converted": a and a[k]}
                    for k in (b or a)
                    if (a and a[k]) != (b and b[k])
                }
                differences.append(
                    f"{name} -> {to}, record {i}: {json.dumps(diff, ensure_ascii=False, default=str)}"
                )
    assert not differences, "LLaMA-Factory reads these differently:\n" + "\n".join(
        differences
    )


def test_the_comparison_skips_cleanly_without_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FMTKIT_LF_PYTHON", "")
    assert lf_python() == (None, "FMTKIT_LF_PYTHON is empty: no LLaMA-Factory environment")
    monkeypatch.setenv("FMTKIT_LF_PYTHON", str(tmp_path / "nowhere" / "python"))
    python, why = lf_python()
    assert python is None and "setup-llamafactory.sh" in why

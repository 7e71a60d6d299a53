"""``fmtkit convert --register`` against the real LLaMA-Factory, for test_differential.py.

For every generated case (``differential.random_case``) that fmtkit finds
clean (no error, no warning, with the stage of its kind), each LLaMA-Factory
form that holds its kind is a target: ``convert(..., register=True)`` writes
the converted file and its entry into the same dataset folder. One
LLaMA-Factory subprocess (``lf_train_probe.py``) then loads every source entry
and every converted entry with LLaMA-Factory's own loader and converters and
encodes each row with the dataset processor of the case's stage; the property
is that each converted row trains on the same tokens and media as its source
row (where they differ, the aligned ``_prompt``, ``_response``, ``_system``,
``_tools`` that differ are shown). Aligned values the template renders alike
(a null or empty system prompt, one function call or a list of one) are not
differences.

A conversion that writes fewer records than the source has (a loss it
reports, or a refusal) is not compared: it is counted, as fmtkit said what
it would not carry.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fmtkit
from differential import Case, fmtkit_side, write_batch
from fmtkit.errors import FmtkitError
from test_llamafactory_real import _clean_env

# the LLaMA-Factory forms that hold each kind of case (convert --register refuses the others)
TARGETS = {
    "sft": ("alpaca", "sharegpt", "openai"),
    "preference": ("alpaca-preference", "sharegpt-preference"),
    "kto": ("alpaca-kto", "sharegpt-kto"),
    "pretrain": ("alpaca-pretrain",),
}
COMPARED = ("_prompt", "_response", "_system", "_tools", "_images", "_videos", "_audios")


@dataclass
class Converted:
    case: Case
    target: str
    entry: str  # the registered entry's name


@dataclass
class Difference:
    """A converted entry LLaMA-Factory trains otherwise than its source: what, where, and the aligned values that differ."""

    what: str  # unloadable / row-count / trains-differently
    converted: Converted
    row: int | None
    diff: dict[str, Any]  # aligned key -> {"source": ..., "converted": ...}, values the template renders alike left out
    registered: dict[str, Any]  # the converted entry, as registered

    def __str__(self) -> str:
        c = self.converted
        rows = c.case.rows if self.row is None else [c.case.rows[self.row]]
        where = f"{c.case.name} -> {c.target}" + ("" if self.row is None else f" row {self.row}")
        return (f"[{self.what}] {where}: {json.dumps(self.diff, ensure_ascii=False)[:700]}\n"
                f"    entry={json.dumps(c.case.entry, ensure_ascii=False)} registered={json.dumps(self.registered)} rows={json.dumps(rows, ensure_ascii=False)}")  # fmt: skip


@dataclass
class ConvertRun:
    compared: list[Converted]
    not_written: dict[str, int]  # target -> conversions that left records out (reported losses or refusals)
    differences: list[Difference]


def convert_batch(python: Path, folder: Path, cases: list[Case]) -> ConvertRun:
    """Write the cases, convert each clean one to every target that holds it, and compare LLaMA-Factory's readings."""
    write_batch(folder, cases)
    fm = fmtkit_side(folder, cases)
    clean = [c for c in cases if all(not r.errors and not r.warnings and r.aligned is not None for r in fm[c.name])]
    done: list[Converted] = []
    not_written: dict[str, int] = {}
    for case in clean:
        for target in TARGETS[case.kind]:
            name = f"{case.name}-to-{target}"
            try:
                report = fmtkit.convert(folder, target, folder / "converted" / f"{name}.jsonl", entry=case.name, register=True, name=name)
            except FmtkitError as exc:
                not_written[f"{target}: {exc}"[:120]] = not_written.get(f"{target}: {exc}"[:120], 0) + 1
                continue
            if report.registered is None or report.written != len(case.rows):
                not_written[target] = not_written.get(target, 0) + 1
                continue
            done.append(Converted(case, target, name))
    entries = {c.case.name: {"stage": c.case.stage, "media": c.case.media} for c in done}
    entries |= {c.entry: {"stage": c.case.stage, "media": c.case.media} for c in done}
    job = folder.parent / f"{folder.name}.convert-job.json"
    job.write_text(json.dumps({"dataset_dir": str(folder), "entries": entries}), encoding="utf-8")
    out = folder.parent / f"{folder.name}.convert-lf.jsonl"
    probe = Path(__file__).resolve().parent / "lf_train_probe.py"
    run = subprocess.run([str(python), str(probe), str(job), str(out)], check=False, capture_output=True, text=True, env=_clean_env(), timeout=900)
    assert run.returncode == 0, f"lf_train_probe.py failed:\n{run.stderr[-4000:]}"
    lf = {}
    for line in out.read_text(encoding="utf-8").splitlines() if out.exists() else ():
        got = json.loads(line)
        lf[got.pop("name")] = got
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    return ConvertRun(done, not_written, [d for c in done for d in _differences(c, lf, info)])


def _differences(c: Converted, lf: dict[str, Any], info: dict[str, Any]) -> list[Difference]:
    """Where LLaMA-Factory trains the converted entry otherwise than its source: other tokens or other media."""
    source, converted = lf[c.case.name], lf[c.entry]
    registered = info[c.entry]
    if "error" in converted:
        return [Difference("unloadable", c, None, {"error": converted["error"][:300]}, registered)]
    if "error" in source or len(source["rows"]) != len(converted["rows"]):
        return [Difference("row-count", c, None, {"source": source.get("error") or len(source["rows"]), "converted": len(converted["rows"])}, registered)]
    out = []
    for i, (a, b) in enumerate(zip(source["rows"], converted["rows"], strict=True)):
        x, y = _rendered(a["aligned"]), _rendered(b["aligned"])
        if a["encoded"] != b["encoded"] or any(x[k] != y[k] for k in ("_images", "_videos", "_audios")):
            out.append(Difference("trains-differently", c, i, {k: {"source": x[k], "converted": y[k]} for k in COMPARED if x[k] != y[k]}, registered))
    return out


def _rendered(aligned: dict[str, Any]) -> dict[str, Any]:
    """An aligned row with the values LLaMA-Factory's template renders alike made equal: a null or empty system
    prompt or tools value, and a function call turn holding one call or a list of it."""
    out = {k: aligned.get(k) for k in COMPARED}
    out["_system"] = out["_system"] or ""
    out["_tools"] = out["_tools"] or ""
    for side in ("_prompt", "_response"):
        msgs = []
        for m in out[side] or []:
            if isinstance(m, dict) and m.get("role") == "function":
                try:
                    calls = json.loads(m["content"])
                    m = {**m, "content": calls if isinstance(calls, list) else [calls]}
                except (TypeError, ValueError):
                    pass
            msgs.append(m)
        out[side] = msgs
    return out

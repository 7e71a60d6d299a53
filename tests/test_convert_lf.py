"""Meaning as LLaMA-Factory sees it: a conversion between LLaMA-Factory forms keeps the aligned view.

``aligned`` below re-implements, independently of fmtkit's readers, how
LLaMA-Factory's dataset converters turn one record into its aligned view
(prompt / response / system / tools / media), as docs/llamafactory.md states it. For every
conversion between LLaMA-Factory forms, the view of each written record through
its registered entry equals the view of its source record through the source
entry.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fmtkit
from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import FORMS, REQUIRED
from fmtkit.loading import data_files, iter_records

DATASET = Path(__file__).resolve().parent.parent / "dataset"
LF_FORMS = ("alpaca", "alpaca-pretrain", "alpaca-preference", "alpaca-kto", "sharegpt", "sharegpt-preference", "sharegpt-kto", "openai")


def _call(content):
    """A function call's content, as LLaMA-Factory's function formatter reads it: [(name, arguments)].

    The formatter ``json.dumps`` the arguments, whatever they are: an object
    becomes its JSON, JSON text (OpenAI's spelling) a quoted string of it, which
    the model would learn (FMT705). So the two spellings are not the same call.
    """
    calls = json.loads(content)
    calls = calls if isinstance(calls, list) else [calls]
    return [(c["name"], json.dumps(c["arguments"], sort_keys=True)) for c in calls]


def _msg(role, content):
    return (role, _call(content) if role == "function" else content)


def _medias(value, base: Path):
    if value is None:
        return None
    value = value if isinstance(value, list) else [value]
    return [os.path.normpath(base / v) for v in value] or None


def aligned(e: DatasetEntry, ex: dict, base: Path):
    """LLaMA-Factory's aligned view of one record, or None when it drops the record."""
    if e.formatting == "alpaca":
        prompt = []
        if e.history and isinstance(ex.get(e.history), list):
            for old_prompt, old_response in ex[e.history]:
                prompt += [("user", old_prompt), ("assistant", old_response)]
        query = [ex[c] for c in (e.prompt, e.query) if c and ex.get(c)]
        prompt.append(("user", "\n".join(query)))
        if e.kto_tag and isinstance(ex.get(e.kto_tag), bool):
            response = [("assistant", ex.get(e.response))]
            response = response + [("assistant", "")] if ex[e.kto_tag] else [("assistant", "")] + response
        elif e.ranking and isinstance(ex.get(e.chosen), str) and isinstance(ex.get(e.rejected), str):
            response = [("assistant", ex[e.chosen]), ("assistant", ex[e.rejected])]
        elif e.response and isinstance(ex.get(e.response), str):
            response = [("assistant", ex.get(e.response))]
        else:
            response = []
        system = ex.get(e.system) if e.system else ""
    else:
        tags = {e.user_tag: "user", e.assistant_tag: "assistant", e.observation_tag: "observation", e.function_tag: "function", e.system_tag: "system"}
        messages = list(ex[e.messages])
        rt, ct = e.role_tag, e.content_tag
        if e.system_tag and messages and messages[0][rt] == e.system_tag:
            system, messages = messages[0][ct], messages[1:]
        else:
            system = ex.get(e.system, "") if e.system else ""
        msgs = []
        if e.formatting == "openai":  # tool_calls become function calls; consecutive tool results merge
            results = []
            for m in messages:
                role, content = m[rt], m[ct]
                if role in (e.assistant_tag, e.function_tag) and m.get("tool_calls"):
                    content, role = json.dumps([c["function"] for c in m["tool_calls"]]), e.function_tag or "function_call"
                    tags.setdefault(role, "function")
                if role == e.observation_tag:
                    results.append(content)
                    continue
                if results:
                    msgs.append(("observation", "\n</tool_response>\n<tool_response>\n".join(results)))
                    results = []
                msgs.append(_msg(tags[role], content))
            if results:
                msgs.append(("observation", "\n</tool_response>\n<tool_response>\n".join(results)))
        else:
            msgs = [_msg(tags.get(m[rt], "?"), m[ct]) for m in messages]
        sides = (("user", "observation"), ("assistant", "function"))
        if any(role not in sides[i % 2] for i, (role, _) in enumerate(msgs)):
            return None
        if (not e.ranking and len(msgs) % 2) or (e.ranking and len(msgs) % 2 == 0):
            return None
        if e.kto_tag and isinstance(ex.get(e.kto_tag), bool):
            prompt, response = msgs[:-1], msgs[-1:]
            response = response + [("assistant", "")] if ex[e.kto_tag] else [("assistant", "")] + response
        elif e.ranking:
            prompt = msgs
            response = [_msg(tags[ex[c][rt]], ex[c][ct]) for c in (e.chosen, e.rejected)]
        else:
            prompt, response = msgs[:-1], msgs[-1:]
    tools = ex.get(e.tools) if e.tools else ""
    if isinstance(tools, (list, dict)):
        tools = json.dumps(tools)
    return {
        "prompt": prompt, "response": response, "system": system or "",
        "tools": json.loads(tools) if tools else None,
        **{k: _medias(ex.get(getattr(e, k)), base) if getattr(e, k) else None for k in ("images", "videos", "audios")},
    }  # fmt: skip


def views(folder: Path, name: str) -> list:
    raw = json.loads((folder / "dataset_info.json").read_text())[name]
    e = DatasetEntry.from_dict(name, raw, folder)
    out = []
    for path in data_files(e.data_path()):
        out += [aligned(e, r.value, folder) for r in iter_records(path)]
    return out


def skipped_indices(report, before: list) -> set[int]:
    """Records convert skipped: those the target cannot express, and those it cannot read, which LLaMA-Factory drops too."""
    found = {ex["record"] for key, items in report.examples.items() if key.startswith("not-expressible:") for ex in items}
    unread = {ex["record"] for key, items in report.examples.items() if key.startswith("unreadable:") for ex in items}
    assert len(found | unread) == report.skipped, "more skipped records than examples: grow EXAMPLES_PER_CODE in the test"
    assert all(before[i] is None for i in unread), [report.examples[k] for k in report.examples if k.startswith("unreadable:")]
    return found | unread


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    assert (DATASET / "dataset_info.json").is_file(), "the bundled dataset/ folder is missing"
    shutil.copytree(DATASET, tmp_path / "ds")
    return tmp_path / "ds"


def test_bundled_entries_keep_their_meaning_across_llamafactory_forms(ds: Path, monkeypatch: pytest.MonkeyPatch):
    from fmtkit.conversion import engine

    monkeypatch.setattr(engine, "EXAMPLES_PER_CODE", 1000)
    info = json.loads((ds / "dataset_info.json").read_text())
    compared = 0
    for name, raw in info.items():
        if "file_name" not in raw:
            continue
        before = views(ds, name)
        for to in LF_FORMS:
            report = fmtkit.convert(ds, to, ds / "out" / f"{name}.{to}.jsonl", entry=name, register=True, check=False)
            if not report.written:
                continue
            skipped = skipped_indices(report, before)
            kept = [v for i, v in enumerate(before) if i not in skipped]
            after = views(ds, report.registered["name"])
            assert after == kept, (name, to)
            compared += 1
    assert compared >= 25


# ---- generated data, every LLaMA-Factory form to every other -----------------------------

from test_forms_roundtrip import samples  # noqa: E402  (the canonical Sample strategy)


KINDS = {
    "alpaca": ("sft", "prompt"), "alpaca-pretrain": ("pretrain",), "alpaca-preference": ("preference",), "alpaca-kto": ("kto",),
    "sharegpt": ("sft",), "sharegpt-preference": ("preference",), "sharegpt-kto": ("kto",), "openai": ("sft",),
}  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), st.sampled_from(LF_FORMS))
def test_generated_data_keeps_its_meaning(tmp_path_factory, data, source: str):
    import fmtkit.conversion as c
    from fmtkit.conversion import engine

    kinds = KINDS[source]
    batch = data.draw(st.lists(samples(kinds), min_size=5, max_size=15))
    folder = tmp_path_factory.mktemp("lf")
    write = FORMS[source].write
    if source == "openai":  # as `convert --register` writes it for LLaMA-Factory: arguments as objects (FMT705)
        write = partial(write, arguments_as_text=False)
    rows = [write(s) for s in batch]
    rows = [r for r, losses in rows if not losses]
    if not rows:
        return
    columns = sorted({k for r in rows for k in r})
    fill = {k: None if FORMS[source].columns.get(k) is REQUIRED else FORMS[source].columns.get(k) for k in columns}
    (folder / "src.jsonl").write_bytes(b"".join(orjson.dumps({**fill, **r}) + b"\n" for r in rows))
    src_entry = c.registration(source, folder / "src.jsonl", folder, columns)
    (folder / "dataset_info.json").write_text(json.dumps({"src": src_entry}))
    before = views(folder, "src")
    for to in LF_FORMS:
        engine.EXAMPLES_PER_CODE = 1000
        try:
            report = fmtkit.convert(folder, to, folder / f"{to}.jsonl", entry="src", register=True, check=False)
        finally:
            engine.EXAMPLES_PER_CODE = 3
        if not report.written:
            continue
        if report.refused:  # tool call arguments of several shapes: LLaMA-Factory would misread them in OpenAI form
            assert to == "openai" and "LLaMA-Factory would not read the output" in report.refused and report.registered is None
            continue
        kept = [v for i, v in enumerate(before) if i not in skipped_indices(report, before)]
        assert views(folder, report.registered["name"]) == kept, (source, to)


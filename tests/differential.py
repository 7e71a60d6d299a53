"""Generated LLaMA-Factory datasets and the comparison of fmtkit's verdicts with LLaMA-Factory's, for test_differential.py.

A :class:`Case` is one ``dataset_info.json`` entry and the rows of its data
file, of any LLaMA-Factory form (Alpaca SFT / preference / KTO / pretraining /
multimodal, ShareGPT with any tags, tools, function calls, observations and
system turns, OpenAI messages with tool calls), often with one near-miss
(a wrong role, a missing key, an empty or null value, a value of another type,
a dropped turn, media without placeholders, ...). :func:`cases` draws them
from a ``random.Random`` that hypothesis seeds.

:func:`write_batch` writes many cases into one dataset folder (one entry and
one file each) so that one LLaMA-Factory subprocess (``lf_train_probe.py``)
loads them all; :func:`fmtkit_side` gathers fmtkit's verdict and reading of
every row; :func:`disagreements` compares the two, row by row.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fmtkit
from fmtkit.sources import iter_samples, resolve
from fmtkit.errors import FmtkitError
from fmtkit.findings import ERROR, WARNING
from fmtkit.sample import Sample, Turn
from test_llamafactory_real import _clean_env, _openai_system

WORDS = ["Hi", "Hello there.", "好的", "a\nb", "2+2=4", " padded ", "Why?"]
ODD = [None, "", " ", 3, 1.5, True, ["a"], {"a": 1}]  # empty, null, or another JSON type
MEDIA_FILES = {"images": ["img/a.png", "img/b.png"], "videos": ["vid/a.mp4"], "audios": ["aud/a.wav"]}
PLACEHOLDER = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}
STAGE = {"preference": "rm", "kto": "kto", "pretrain": "pt"}


@dataclass
class Case:
    """One entry of a generated dataset folder: its ``dataset_info.json`` entry (no file_name) and its rows."""

    kind: str  # sft, preference, kto or pretrain
    entry: dict[str, Any]
    rows: list[Any]
    ext: str = "jsonl"
    why: str = ""  # what the case is, for explicit (regression) cases
    name: str = field(default="", compare=False)

    @property
    def stage(self) -> str:
        return STAGE.get(self.kind, "sft")

    @property
    def media(self) -> bool:
        return any(k in self.entry.get("columns", {}) for k in PLACEHOLDER)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "entry": self.entry, "rows": self.rows, "ext": self.ext}


# ---- generation -------------------------------------------------------------------------------


def _text(rnd: random.Random, odd: float = 0.06) -> Any:
    return rnd.choice(ODD) if rnd.random() < odd else rnd.choice(WORDS)


def _tools(rnd: random.Random) -> Any:
    tool = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}
    return rnd.choice([json.dumps([tool]), json.dumps([tool]), "", "[]", None, "[{", [tool], json.dumps(tool)])


def _media(rnd: random.Random, kind: str) -> tuple[Any, int]:
    """A media column value and how many placeholders its text should hold (sometimes not its length)."""
    files = MEDIA_FILES[kind]
    value: Any = rnd.sample(files, rnd.randint(0, len(files)))
    n = len(value)
    r = rnd.random()
    if r < 0.08:
        value = files[0]  # a bare string: one path
        n = 1
    elif r < 0.14:
        value = [*value, f"{kind[:3]}/missing.bin"]
        n += 1
    elif r < 0.2:
        value = rnd.choice([None, [], [3]])
        n = 0
    if rnd.random() < 0.15:
        n += rnd.choice([-1, 1])
    return value, max(n, 0)


def _place(rnd: random.Random, texts: list[Any], tag: str, n: int) -> list[Any]:
    """Put ``n`` copies of ``tag`` into the string values of ``texts`` (the first one when there is only one)."""
    out = list(texts)
    spots = [i for i, t in enumerate(out) if isinstance(t, str)]
    for _ in range(n if spots else 0):
        i = rnd.choice(spots[:1] if rnd.random() < 0.6 else spots)
        out[i] = tag + out[i]
    return out


def _mutate_row(rnd: random.Random, row: dict[str, Any], keys: list[str]) -> None:
    r = rnd.random()
    if r < 0.06 and keys:
        row.pop(rnd.choice(keys), None)
    elif r < 0.12 and keys:
        row[rnd.choice(keys)] = rnd.choice(ODD)
    elif r < 0.17:
        row[rnd.choice(["id", "meta"])] = rnd.choice([1, "x", {"score": 1}, {"score": "high"}, None])


def alpaca_case(rnd: random.Random, kind: str) -> Case:
    """An Alpaca entry (sft, preference, kto, pretrain; sometimes with media) and 1-3 rows."""
    custom = rnd.random() < 0.3
    names = {"prompt": "q", "query": "ctx", "response": "a", "system": "sys", "history": "hist", "tools": "fns"} if custom else {
        "prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history", "tools": "tools"}  # fmt: skip
    if kind == "pretrain":
        names = {"prompt": rnd.choice(["text", "content"])}
    else:
        if rnd.random() < 0.2:
            del names["query"]
        for role, p in (("system", 0.5), ("history", 0.4), ("tools", 0.15)):
            if rnd.random() > p:
                del names[role]
        if kind == "preference":
            del names["response"]
            names |= {"chosen": "chosen", "rejected": "rejected"}
        if kind == "kto":
            names["kto_tag"] = rnd.choice(["kto_tag", "label"])
    media = [k for k in PLACEHOLDER if rnd.random() < 0.12]
    names |= {k: k for k in media}
    entry: dict[str, Any] = {}
    if kind == "preference":
        entry["ranking"] = True
    if custom or set(names) - {"prompt", "query", "response"} or rnd.random() < 0.3:
        entry["columns"] = dict(names)
    if rnd.random() < 0.04:
        entry.setdefault("columns", dict(names))["system"] = "nowhere"  # a mapped column no row has
    rows = []
    for _ in range(rnd.choice([1, 1, 2, 2, 3])):
        row: dict[str, Any] = {names["prompt"]: _text(rnd)}
        if "query" in names:
            row[names["query"]] = rnd.choice(["", "", "x", _text(rnd)])
        if "response" in names:
            row[names["response"]] = _text(rnd)
        if "system" in names:
            row[names["system"]] = rnd.choice(["", "Be brief.", None, _text(rnd)])
        if "history" in names:
            hist: Any = [[_text(rnd, 0.03), _text(rnd, 0.03)] for _ in range(rnd.choice([0, 1, 2]))]
            if rnd.random() < 0.15:
                hist = rnd.choice(["", "x", None, [["a"]], [["a", "b", "c"]], {"a": "b"}, [[1, "b"]]])
            row[names["history"]] = hist
        if "tools" in names:
            row[names["tools"]] = _tools(rnd)
        if kind == "preference":
            row["chosen"] = _text(rnd)
            row["rejected"] = row["chosen"] if rnd.random() < 0.1 else _text(rnd)
        if kind == "kto":
            row[names["kto_tag"]] = rnd.choice([True, False, True, False, "true", 1, None])
        for m in media:
            value, n = _media(rnd, m)
            row[m] = value
            key = names["prompt"] if kind == "pretrain" or rnd.random() < 0.8 else names.get("query", names["prompt"])
            row[key] = _place(rnd, [row.get(key)], PLACEHOLDER[m], n)[0]
        if not media and rnd.random() < 0.04:
            row[names["prompt"]] = f"{PLACEHOLDER['images']} {row[names['prompt']]}"  # a literal tag, text-only entry
        _mutate_row(rnd, row, list(names.values()))
        rows.append(row)
    return Case(kind, entry, rows, ext=rnd.choice(["jsonl", "jsonl", "json"]))


@dataclass
class Tags:
    role: str = "from"
    content: str = "value"
    user: str | None = "human"
    assistant: str | None = "gpt"
    observation: str | None = "observation"
    function: str | None = "function_call"
    system: str | None = "system"

    def entry(self) -> dict[str, str]:
        keys = ("role", "content", "user", "assistant", "observation", "function", "system")
        return {f"{k}_tag": getattr(self, k) for k in keys if getattr(self, k) is not None}


TAGS = {
    "default": (Tags(), False),
    "openai-tags": (Tags("role", "content", "user", "assistant", "tool", "function_call", "system"), True),
    "custom": (Tags("speaker", "text", "me", "bot", "result", "call", "sys"), True),
    "partial": (Tags("role", "content", "user", "assistant", None, None, None), True),
}


def _call(rnd: random.Random) -> dict[str, Any]:
    return {"name": rnd.choice(["f", "get_weather"]), "arguments": rnd.choice([{"x": 1}, {"city": "Paris"}, {}])}


def _conversation(rnd: random.Random, t: Tags, openai: bool, answer: bool) -> list[Any]:
    """Alternating turns by the tags, with tool flows where the tags allow them; ends with the answer when ``answer``."""
    R, C = t.role, t.content
    msgs: list[Any] = []
    if t.system and rnd.random() < 0.3:
        msgs.append({R: t.system, C: _text(rnd)})
    pairs = rnd.choice([1, 1, 2, 3])
    for p in range(pairs):
        msgs.append({R: t.user, C: _text(rnd)})
        if openai and rnd.random() < 0.35:
            calls = [_call(rnd) for _ in range(rnd.choice([1, 1, 2]))]
            spelled = []
            for i, c in enumerate(calls):
                args = json.dumps(c["arguments"]) if rnd.random() < 0.5 else c["arguments"]
                spelled.append({"id": f"c{i}", "type": "function", "function": {"name": c["name"], "arguments": args}})
            msg: dict[str, Any] = {R: t.assistant, "tool_calls": spelled}
            how = rnd.random()
            if how < 0.4:
                msg[C] = ""
            elif how < 0.6:
                msg[C] = None
            elif how < 0.7:
                msg[C] = "Let me check."
            msgs.append(msg)
            for i in range(len(calls) if rnd.random() < 0.8 else 1):
                res: dict[str, Any] = {R: t.observation, C: rnd.choice(["sunny", "42", '{"ok": true}'])}
                if rnd.random() < 0.5:
                    res["tool_call_id"] = f"c{i}"
                msgs.append(res)
        elif not openai and t.function and t.observation and rnd.random() < 0.3:
            calls = [_call(rnd) for _ in range(rnd.choice([1, 1, 2]))]
            msgs.append({R: t.function, C: json.dumps(calls[0] if len(calls) == 1 else calls)})
            msgs.append({R: t.observation, C: rnd.choice(["sunny", "42"])})
        if p < pairs - 1 or answer:
            msgs.append({R: t.assistant, C: _text(rnd)})
    return msgs


def _mutate_messages(rnd: random.Random, msgs: list[Any], t: Tags) -> Any:
    """At most one near-miss in a message list (it is returned: it may stop being a list)."""
    if rnd.random() > 0.4 or not msgs:
        return msgs
    R, C = t.role, t.content
    how = rnd.choice(["role", "role", "drop", "drop", "content", "content", "no-content", "key", "system-late", "call-json", "empty", "not-list"])
    i = rnd.randrange(len(msgs))
    m = msgs[i]
    if how == "role":
        m[R] = rnd.choice([t.user, t.assistant, t.observation, t.function, t.system, "bot", None, 3])
    elif how == "drop":
        msgs.pop(i)
    elif how == "content":
        m[C] = rnd.choice(ODD)
    elif how == "no-content":
        m.pop(C, None)
    elif how == "key":
        m[rnd.choice(["weight", "weight", "name", "tool_calls"])] = rnd.choice([0, 1, 2, "1", "x", None])
    elif how == "system-late":
        msgs.insert(rnd.randint(1, len(msgs)), {R: t.system or "system", C: "S"})
    elif how == "call-json":
        msgs.insert(1, {R: t.function or "function_call", C: rnd.choice(["not json", '{"name": "f"}', "[]", '{"arguments": {}}'])})
        msgs.insert(2, {R: t.observation or "observation", C: "r"})
    elif how == "empty":
        msgs.clear()
    else:
        return rnd.choice(["", None, {"a": 1}])
    return msgs


def conversation_case(rnd: random.Random, kind: str, formatting: str) -> Case:
    """A ShareGPT (any tags) or OpenAI entry (sft, preference or kto) and 1-3 rows."""
    if formatting == "openai":
        tags, openai = TAGS["openai-tags"]
        tag_name = "openai-tags"
    else:
        tag_name = rnd.choice(list(TAGS))
        tags, openai = TAGS[tag_name]
        openai = openai and rnd.random() < 0.2  # OpenAI tool_calls under sharegpt formatting (ignored by it)
    entry: dict[str, Any] = {"formatting": formatting}
    column = rnd.choice(["conversations", "messages", "dialog"]) if formatting == "sharegpt" else "messages"
    columns: dict[str, str] = {"messages": column}
    if rnd.random() < 0.3:
        columns["system"] = "system"
    if rnd.random() < 0.3:
        columns["tools"] = "tools"
    if kind == "preference":
        entry["ranking"] = True
        columns |= {"chosen": "chosen", "rejected": "rejected"}
    if kind == "kto":
        columns["kto_tag"] = "kto_tag"
    media = [k for k in PLACEHOLDER if rnd.random() < 0.08]
    columns |= {k: k for k in media}
    if column != "conversations" or len(columns) > 1 or rnd.random() < 0.3:
        entry["columns"] = columns
    if tag_name != "default":
        entry["tags"] = tags.entry()
    rows = []
    for _ in range(rnd.choice([1, 1, 2, 2, 3])):
        msgs = _mutate_messages(rnd, _conversation(rnd, tags, openai, answer=kind != "preference"), tags)
        row: dict[str, Any] = {column: msgs}
        if "system" in columns:
            row["system"] = rnd.choice(["", "Be brief.", None, _text(rnd)])
        if "tools" in columns:
            row["tools"] = _tools(rnd)
        if kind == "preference":
            for side in ("chosen", "rejected"):
                if rnd.random() < 0.08:
                    row[side] = rnd.choice(["a string", None, {tags.role: tags.user, tags.content: "x"}])
                else:
                    row[side] = {tags.role: tags.assistant, tags.content: _text(rnd)}
        if kind == "kto":
            row["kto_tag"] = rnd.choice([True, False, True, False, "true", 1, None])
        if media and isinstance(msgs, list):
            for m in media:
                value, n = _media(rnd, m)
                row[m] = value
                contents = [x.get(tags.content) if isinstance(x, dict) and x.get(tags.role) == tags.user else None for x in msgs]
                placed = _place(rnd, contents, PLACEHOLDER[m], n)
                for x, new, old in zip(msgs, placed, contents, strict=True):
                    if new is not old:
                        x[tags.content] = new
        _mutate_row(rnd, row, list(columns.values()))
        rows.append(row)
    return Case(kind, entry, rows, ext=rnd.choice(["jsonl", "jsonl", "json"]))


def _mutate_entry(rnd: random.Random, entry: dict[str, Any]) -> None:
    """One near-miss in a ``dataset_info.json`` entry: a misspelt key, a half-given block, a clash."""
    how = rnd.choice(["format-typo", "tags-half", "columns-half", "ranking-and-kto", "split", "unknown-formatting"])
    if how == "format-typo" and "formatting" in entry:
        entry["format"] = entry.pop("formatting")  # LLaMA-Factory ignores it: the entry means alpaca
    elif how == "tags-half":
        entry["tags"] = {k: v for k, v in entry.get("tags", Tags().entry()).items() if k in ("role_tag", "content_tag")}
    elif how == "columns-half" and "columns" in entry:
        entry["columns"].pop(rnd.choice(sorted(entry["columns"])))
    elif how == "ranking-and-kto":
        entry.setdefault("columns", {})["kto_tag"] = "kto_tag"
        entry["ranking"] = True
    elif how == "split":
        entry["split"] = "test"
    elif how == "unknown-formatting":
        entry["formatting"] = "chatml"


def random_case(rnd: random.Random) -> Case:
    """Any LLaMA-Factory form, any kind it holds; now and then with a near-miss in its entry."""
    form = rnd.choice(["alpaca", "alpaca", "sharegpt", "sharegpt", "openai"])
    if form == "alpaca":
        case = alpaca_case(rnd, rnd.choice(["sft", "sft", "preference", "kto", "pretrain"]))
    else:
        kinds = ["sft", "sft", "preference", "kto"] if form == "sharegpt" else ["sft", "sft", "sft", "preference", "kto"]
        case = conversation_case(rnd, rnd.choice(kinds), form)
    if rnd.random() < 0.05:
        _mutate_entry(rnd, case.entry)
    return case


# ---- running both sides -----------------------------------------------------------------------


def write_batch(folder: Path, cases: list[Case]) -> None:
    """One dataset folder: ``cases/<name>.<ext>`` and a ``dataset_info.json`` entry for each case, and the media files."""
    (folder / "cases").mkdir(parents=True)
    for paths in MEDIA_FILES.values():
        for p in paths:
            (folder / p).parent.mkdir(exist_ok=True)
            (folder / p).write_bytes(b"\0")
    info = {}
    for i, case in enumerate(cases):
        case.name = f"case{i:04d}"
        rel = f"cases/{case.name}.{case.ext}"
        if case.ext == "json":
            text = json.dumps(case.rows, ensure_ascii=False, indent=1)
        else:
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in case.rows)
        (folder / rel).write_text(text, encoding="utf-8")
        info[case.name] = {**case.entry, "file_name": rel}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


@dataclass
class FmtkitRow:
    errors: list[str]  # codes of the error findings about this row or its whole file / entry
    warnings: list[str]  # codes of its warnings
    aligned: dict[str, Any] | None  # fmtkit's reading, in LLaMA-Factory's aligned layout; None: unreadable
    read_error: str = ""


def _tag(role: str) -> str:
    return {"user": "user", "assistant": "assistant", "tool": "observation"}[role]


def _message(turn: Turn) -> dict[str, str]:
    if turn.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in turn.tool_calls]
        # LLaMA-Factory's function turn holds calls only: text beside them makes the JSON unreadable (an error
        # when encoded), so a reading with both never equals a row LLaMA-Factory trains on.
        return {"role": "function", "content": turn.content + json.dumps(calls, ensure_ascii=False)}
    return {"role": _tag(turn.role), "content": turn.content}


def aligned_of(sample: Sample, formatting: str) -> dict[str, Any]:
    """A fmtkit Sample in LLaMA-Factory's aligned layout (``_prompt``, ``_response``, ...), to encode the same way."""
    if sample.text is not None:
        prompt, response = [{"role": "user", "content": sample.text}], []
    else:
        turns = [_message(t) for t in sample.turns]
        if formatting == "openai":  # its converter joins consecutive tool results into one observation
            merged: list[dict[str, str]] = []
            for m in turns:
                if m["role"] == "observation" and merged and merged[-1]["role"] == "observation":
                    merged[-1] = {"role": "observation", "content": merged[-1]["content"] + "\n</tool_response>\n<tool_response>\n" + m["content"]}
                else:
                    merged.append(m)
            turns = merged
        kind = sample.kind
        if kind == "preference":
            prompt = turns
            response = [_message(t) if t is not None else None for t in (sample.chosen, sample.rejected)]
        elif kind in ("sft", "kto"):
            prompt, response = turns[:-1], turns[-1:]
            if kind == "kto":
                empty = {"role": "assistant", "content": ""}
                response = response + [empty] if sample.label else [empty, *response]
        else:
            prompt, response = turns, []
    tools = json.dumps(sample.tools, ensure_ascii=False) if sample.tools is not None else ""
    # LLaMA-Factory 0.9.5's openai converter appends "detailed thinking off" (or a newline, with tools): FMT119
    system = _openai_system(sample.system, bool(tools)) if formatting == "openai" else sample.system
    media = {f"_{k}": list(getattr(sample, k)) or None for k in ("images", "videos", "audios")}
    # _label is not LLaMA-Factory's (the probe ignores it): KTO's label, which LLaMA-Factory derives from the answer
    return {"_prompt": prompt, "_response": response, "_system": system, "_tools": tools, **media, "_label": sample.label}


def fmtkit_side(folder: Path, cases: list[Case]) -> dict[str, list[FmtkitRow]]:
    """fmtkit's verdict (``validate`` with the case's stage) and reading (its readers) of every row of every case."""
    errors: dict[tuple[str, int | None], list[str]] = {}
    warnings: dict[tuple[str, int | None], list[str]] = {}
    by_stage: dict[str, list[str]] = {}
    for case in cases:
        by_stage.setdefault(case.stage, []).append(case.name)
    for stage, names in by_stage.items():
        report = fmtkit.validate(folder, entries=names, stage=stage)
        for f in report.findings:
            if f.severity in (ERROR, WARNING):
                (errors if f.severity == ERROR else warnings).setdefault((f.entry, f.record), []).append(f.code)
    out = {}
    for case in cases:
        rows = [
            FmtkitRow(
                errors.get((case.name, None), []) + errors.get((case.name, i), []),
                warnings.get((case.name, None), []) + warnings.get((case.name, i), []),
                None,
                "not read",
            )
            for i in range(len(case.rows))
        ]
        try:
            src = resolve(folder, entry=case.name)
            for _fno, index, _line, _value, result in iter_samples(src):
                if index >= len(rows):
                    continue
                if isinstance(result, Sample):
                    rows[index].aligned = aligned_of(result, case.entry.get("formatting", "alpaca"))
                    rows[index].read_error = ""
                else:
                    rows[index].read_error = f"{result.code}: {result.message}"
        except FmtkitError as exc:
            for r in rows:
                r.read_error = str(exc)
        out[case.name] = rows
    return out


def probe_job(folder: Path, cases: list[Case], fm: dict[str, list[FmtkitRow]]) -> dict[str, Any]:
    return {
        "dataset_dir": str(folder),
        "entries": {c.name: {"stage": c.stage, "media": c.media} for c in cases},
        "extra": {c.name: [r.aligned for r in fm[c.name]] for c in cases},
    }


def _media_view(value: Any, folder: Path) -> Any:
    """A media list as lf_probe prints LLaMA-Factory's: paths relative to the folder, or {"unresolved": path}."""
    if value is None:
        return None
    return [os.path.relpath(os.path.normpath(folder / v), folder) if (folder / v).is_file() else {"unresolved": v} for v in value]


@dataclass
class Disagreement:
    case: Case
    row: int | None  # None: the whole entry
    what: str  # missed / false-error / read-differs / error-unreadable
    detail: str

    def __str__(self) -> str:
        where = "entry" if self.row is None else f"row {self.row}"
        rows = self.case.rows if self.row is None else [self.case.rows[self.row]]
        return f"[{self.what}] {self.case.name} {where}: {self.detail}\n    entry={json.dumps(self.case.entry, ensure_ascii=False)} rows={json.dumps(rows, ensure_ascii=False)}"


def _lf_state(encoded: dict[str, Any], aligned: dict[str, Any], media: bool) -> str:
    if "error" in encoded:
        return "fails: " + encoded["error"][:200]
    if "dropped" in encoded:
        return "drops the row"
    if media and any(isinstance(p, dict) for k in ("_images", "_videos", "_audios") for p in aligned.get(k) or []):
        return "fails: a media file is missing (it is opened at training time)"
    return ""


def disagreements(folder: Path, cases: list[Case], fm: dict[str, list[FmtkitRow]], lf: dict[str, Any]) -> list[Disagreement]:
    """Every row where fmtkit's verdict or reading and LLaMA-Factory's do not match.

    - LLaMA-Factory cannot load the entry: fmtkit must report an error in it ("missed").
    - LLaMA-Factory drops a row, fails on it, or trains a KTO row on the other label (it reads an
      empty answer as undesirable): fmtkit must report an error for it ("missed").
    - fmtkit finds nothing in a row (no error, no warning): LLaMA-Factory trains on the same tokens
      and media as it would on fmtkit's reading of the row ("read-differs"). A warning is fmtkit
      saying that LLaMA-Factory reads the row its own way (e.g. FMT705).
    - fmtkit reports an error for a row that LLaMA-Factory trains on exactly as fmtkit reads it
      ("false-error"), or that fmtkit cannot read although LLaMA-Factory trains on it
      ("error-unreadable": fmtkit is right only if that row means something else to its author).
    - A pretraining entry's media: LLaMA-Factory's pretraining never reads them (nor opens them),
      so fmtkit must report something (a warning will do).
    - An entry whose ``ranking`` does not fit the stage fails to load as a whole (LLaMA-Factory
      checks it before reading a row; its single-dataset loader, which the probe runs, does not).
    """
    out = []
    for case in cases:
        got, rows = lf[case.name], fm[case.name]
        ranking = case.entry.get("ranking", False)  # LLaMA-Factory's _get_merged_dataset, before any row is read:
        if (case.stage == "rm" and ranking is False) or (case.stage != "rm" and ranking is True):
            got = {"error": "ValueError: The dataset is not applicable in the current training stage."}
        if "error" in got:
            if not any(r.errors for r in rows):
                out.append(Disagreement(case, None, "missed", f"LLaMA-Factory cannot load it ({got['error'][:300]}); fmtkit: no error"))
            continue
        if len(got["rows"]) != len(rows):
            out.append(Disagreement(case, None, "row-count", f"LLaMA-Factory reads {len(got['rows'])} rows, fmtkit {len(rows)}"))
            continue
        for i, (lf_row, fm_row, fm_encoded) in enumerate(zip(got["rows"], rows, got["extra"], strict=True)):
            state = _lf_state(lf_row["encoded"], lf_row["aligned"], case.media and case.stage != "pt")  # pt opens no media
            same = (
                fm_encoded is not None
                and fm_encoded == lf_row["encoded"]
                and all(_media_view(fm_row.aligned[k], folder) == lf_row["aligned"][k] for k in ("_images", "_videos", "_audios"))
            )
            label = fm_row.aligned and fm_row.aligned["_label"]
            tags = lf_row["encoded"].get("ids", {}).get("kto_tags")
            if not state and label is not None and tags != label:
                state = f"trains on kto_tag {tags} for a row labelled {label}"  # it reads an empty answer as undesirable
            if not state and case.stage == "pt" and any(lf_row["aligned"][k] for k in ("_images", "_videos", "_audios")):
                # LLaMA-Factory's pretraining processor never reads media: fmtkit must say so (a warning will do)
                if not fm_row.errors and not fm_row.warnings:
                    out.append(Disagreement(case, i, "missed", "LLaMA-Factory's pretraining ignores the media; fmtkit: nothing"))
                continue
            if state:
                if not fm_row.errors:
                    out.append(Disagreement(case, i, "missed", f"LLaMA-Factory {state}; fmtkit: no error"))
            elif not fm_row.errors:
                # a reading LLaMA-Factory does not share must come with a warning that says so
                if not same and not fm_row.warnings:
                    why = f"fmtkit cannot read it ({fm_row.read_error})" if fm_row.aligned is None else _difference(lf_row, fm_row, fm_encoded)
                    out.append(Disagreement(case, i, "read-differs", f"fmtkit: no finding, but {why}"))
            elif same:
                out.append(Disagreement(case, i, "false-error", f"fmtkit: {fm_row.errors}; LLaMA-Factory trains on it exactly as fmtkit reads it"))
            elif fm_row.aligned is None:
                out.append(Disagreement(case, i, "error-unreadable", f"fmtkit: {fm_row.errors} ({fm_row.read_error}); LLaMA-Factory trains on it"))
    return out


def _difference(lf_row: dict[str, Any], fm_row: FmtkitRow, fm_encoded: dict[str, Any]) -> str:
    a, b = lf_row["aligned"], fm_row.aligned or {}
    keys = [k for k in a if k in b and a[k] != b[k]]
    diff = {k: {"llamafactory": a[k], "fmtkit": b[k]} for k in keys}
    if "error" in fm_encoded:
        diff["fmtkit reading encodes"] = fm_encoded["error"][:200]
    return "LLaMA-Factory trains on something else: " + json.dumps(diff, ensure_ascii=False, default=str)[:600]


def run_batch(python: Path, folder: Path, cases: list[Case]) -> list[Disagreement]:
    """Write the cases into ``folder``, run both sides (one LLaMA-Factory subprocess) and compare them.

    An entry during which the LLaMA-Factory process dies (``datasets`` on pyarrow can crash with
    SIGBUS on some nested nulls) counts as one LLaMA-Factory cannot load; the rest run again.
    """
    import subprocess

    write_batch(folder, cases)
    fm = fmtkit_side(folder, cases)
    job = probe_job(folder, cases, fm)
    out = folder.parent / f"{folder.name}.lf.jsonl"
    probe = Path(__file__).resolve().parent / "lf_train_probe.py"
    lf: dict[str, Any] = {}
    todo = list(job["entries"])
    while todo:
        job_file = folder.parent / f"{folder.name}.job.json"
        job_file.write_text(json.dumps({**job, "entries": {n: job["entries"][n] for n in todo}}, ensure_ascii=False), encoding="utf-8")
        run = subprocess.run([str(python), str(probe), str(job_file), str(out)], check=False, capture_output=True, text=True, env=_clean_env(), timeout=900)
        for line in out.read_text(encoding="utf-8").splitlines() if out.exists() else ():
            got = json.loads(line)
            lf[got.pop("name")] = got
        todo = [n for n in todo if n not in lf]
        if todo and run.returncode == 0:
            raise AssertionError(f"lf_train_probe.py left entries out: {todo[:5]}")
        if todo:
            assert run.returncode < 0 or run.returncode > 128, f"lf_train_probe.py failed:\n{run.stderr[-4000:]}"
            lf[todo.pop(0)] = {"error": f"the LLaMA-Factory process died (exit code {run.returncode})", "extra": []}
    return disagreements(folder, cases, fm, lf)


if __name__ == "__main__":  # by hand: python tests/differential.py SEED CASES | --cases FILE.json  [LF_PYTHON]
    import sys
    import tempfile
    import time

    if sys.argv[1] == "--cases":
        batch = [Case(**c) for c in json.loads(Path(sys.argv[2]).read_text())]
    else:
        rnd = random.Random(int(sys.argv[1]))
        batch = [random_case(random.Random(rnd.random())) for _ in range(int(sys.argv[2]))]
    python = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parents[1] / ".venv-lf" / "bin" / "python"
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        found = run_batch(python, Path(tmp) / "ds", batch)
    for d in found:
        print(d)
    print(f"{len(batch)} cases, {sum(len(c.rows) for c in batch)} rows, {len(found)} disagreements, {time.time() - start:.1f}s")

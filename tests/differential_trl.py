"""Generated TRL datasets and the comparison of fmtkit's verdicts with TRL's ``data_utils``, for test_differential.py.

A case is one JSON Lines file of one TRL dataset type (language modeling,
prompt-only, prompt-completion, preference with an explicit or implicit
prompt, unpaired preference), conversational or standard, often with a
near-miss: a wrong role, an empty or null content, a missing or extra key, a
``messages`` column beside ``prompt``, a string label. Both sides read it:

- TRL as its trainers do: ``datasets.load_dataset("json")`` (one Arrow type per
  column; every row gets every column), then per row ``maybe_extract_prompt``
  and ``maybe_apply_chat_template`` with the tiny ChatML tokenizer, and the
  tokenizer on every text the row then holds;
- fmtkit: ``validate(file, form=...)`` for its verdict, and its reader then the
  form's own writer for its reading, rendered by TRL the same way.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fmtkit
from differential import ODD, WORDS, _text
from fmtkit.sources import iter_samples, resolve
from fmtkit.errors import FmtkitError
from fmtkit.findings import ERROR, WARNING
from fmtkit.forms import FORMS, is_droppable

TRL_KEYS = ("prompt", "completion", "chosen", "rejected", "messages", "text", "label")
TRL_WRITERS = ("alpaca-pretrain", "openai", "trl-text", "trl-messages", "trl-prompt-only", "trl-prompt-completion", "trl-preference", "trl-preference-implicit", "trl-unpaired")
TRL_FORMS = ("trl-text", "trl-messages", "trl-prompt-only", "trl-prompt-completion", "trl-preference", "trl-preference-implicit", "trl-unpaired")


@dataclass
class TrlCase:
    form: str
    rows: list[Any]
    name: str = ""


def _turns(rnd: random.Random, roles: list[str]) -> list[dict[str, Any]]:
    return [{"role": r, "content": _text(rnd)} for r in roles]


def _conversation(rnd: random.Random, answer: bool) -> list[dict[str, Any]]:
    roles = ["system"] if rnd.random() < 0.2 else []
    for i in range(rnd.choice([1, 1, 2])):
        roles += ["user", "assistant"]
    return _turns(rnd, roles if answer else roles[:-1])


def trl_row(rnd: random.Random, form: str, conversational: bool) -> dict[str, Any]:
    def text() -> Any:
        return _text(rnd)

    if form == "trl-text":
        return {"text": text()}
    if form == "trl-messages":
        return {"messages": _conversation(rnd, answer=True)}
    prompt = _conversation(rnd, answer=False) if conversational else text()

    def answer() -> Any:
        return _turns(rnd, ["assistant"]) if conversational else text()

    if form == "trl-prompt-only":
        return {"prompt": prompt}
    if form == "trl-prompt-completion":
        return {"prompt": prompt, "completion": answer()}
    if form == "trl-preference":
        return {"prompt": prompt, "chosen": answer(), "rejected": answer()}
    if form == "trl-preference-implicit":
        if conversational:
            return {"chosen": prompt + answer(), "rejected": prompt + answer()}
        return {"chosen": f"{prompt} {rnd.choice(WORDS)}", "rejected": f"{prompt} {rnd.choice(WORDS)}"}
    return {"prompt": prompt, "completion": answer(), "label": rnd.choice([True, False])}


def _mutate(rnd: random.Random, row: dict[str, Any]) -> None:
    how = rnd.choice(["role", "content", "drop-key", "extra-key", "messages-beside", "label", "last-role", "empty-list"])
    lists = [v for v in row.values() if isinstance(v, list) and v and all(isinstance(m, dict) for m in v)]
    if how == "role" and lists:
        rnd.choice(rnd.choice(lists))["role"] = rnd.choice(["bot", "tool", "system", None])
    elif how == "content" and lists:
        rnd.choice(rnd.choice(lists))["content"] = rnd.choice(ODD)
    elif how == "drop-key":
        row.pop(rnd.choice(sorted(row)))
    elif how == "extra-key":
        row[rnd.choice(["id", "score_chosen", "prompt_id"])] = rnd.choice([1, "x", 5.0])
    elif how == "messages-beside":
        row["messages"] = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    elif how == "label" and "label" in row:
        row["label"] = rnd.choice(["true", 1, None])
    elif how == "last-role" and isinstance(row.get("prompt"), list):
        row["prompt"].append({"role": "assistant", "content": "Partial"})
    elif how == "empty-list" and lists:
        row[rnd.choice([k for k, v in row.items() if v in lists])] = []


def random_trl_case(rnd: random.Random) -> TrlCase:
    form = rnd.choice(TRL_FORMS)
    conversational = rnd.random() < 0.7
    rows = []
    for _ in range(rnd.choice([1, 1, 2, 3])):
        row = trl_row(rnd, form, conversational)
        if rnd.random() < 0.35:
            _mutate(rnd, row)
        rows.append(row)
    return TrlCase(form, rows)


# ---- both sides --------------------------------------------------------------------------------


def _render(example: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """What a TRL trainer makes of one example: the chat template applied, every text tokenized."""
    from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt

    try:
        if all(example.get(k) is None for k in TRL_KEYS):
            raise KeyError("no column of any TRL dataset type")
        out = maybe_apply_chat_template(maybe_extract_prompt(example), tokenizer)
        rendered = {}
        for key in TRL_KEYS:  # a null column another row brought in is no text to tokenize
            if out.get(key) is not None and key != "label":
                if not isinstance(out[key], str):
                    raise TypeError(f"{key} is {type(out[key]).__name__}, not text")
                rendered[key] = tokenizer(out[key], add_special_tokens=False)["input_ids"]
        if "label" in out:
            if not isinstance(out["label"], bool):
                raise TypeError(f"label is {out['label']!r}, not a boolean")
            rendered["label"] = out["label"]
        return {"ok": rendered}
    except Exception as err:  # noqa: BLE001  (what TRL does with the row: an error stops training)
        return {"error": f"{type(err).__name__}: {str(err)[:200]}"}


def trl_disagreements(folder: Path, cases: list[TrlCase], tokenizer: Any) -> list[str]:
    """Every row where fmtkit's verdict or reading and TRL's do not match (the rules of :func:`differential.disagreements`)."""
    import datasets

    out = []
    for i, case in enumerate(cases):
        case.name = f"trl{i:04d}"
        path = folder / f"{case.name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in case.rows), encoding="utf-8")
        report = fmtkit.validate(path)  # the form detected, as a user runs it
        errors: dict[int | None, list[str]] = {}
        warned: set[int | None] = set()
        for f in report.findings:
            if f.severity == ERROR:
                errors.setdefault(f.record, []).append(f.code)
            elif f.severity == WARNING:
                warned.add(f.record)
        where = f"{case.name} ({case.form})"

        def say(what: str, row: int | None, detail: str, case: TrlCase = case, where: str = where) -> None:
            rows = case.rows if row is None else [case.rows[row]]
            out.append(f"[{what}] {where} {'file' if row is None else f'row {row}'}: {detail}\n    rows={json.dumps(rows, ensure_ascii=False)}")

        try:
            loaded = list(datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(folder / "cache")))
        except Exception as err:  # noqa: BLE001
            if not errors:
                say("missed", None, f"datasets cannot load it ({type(err).__name__}); fmtkit: no error")
            continue
        readings: dict[int, Any] = {}
        form = None
        try:
            src = resolve(path)
            form = src.form
            for _fno, index, _line, _value, result in iter_samples(src):
                readings[index] = result
        except FmtkitError:
            pass
        for r, example in enumerate(loaded):
            trl = _render(example, tokenizer)
            row_errors = errors.get(None, []) + errors.get(r, [])
            sample = readings.get(r)
            mine = None
            if form in TRL_WRITERS and sample is not None and not isinstance(sample, Exception):
                conversational = any(isinstance(v, list) for k, v in case.rows[r].items() if k in TRL_KEYS)
                writer = FORMS[form].write
                record, losses = writer(sample, conversational=conversational) if form.startswith("trl-") and form != "trl-text" else writer(sample)
                if not any(not is_droppable(loss.code) for loss in losses):
                    mine = _render(record, tokenizer)
            same = mine is not None and mine == trl
            if "error" in trl:
                if not row_errors:
                    say("missed", r, f"TRL fails ({trl['error']}); fmtkit: no error")
            elif not row_errors:
                if not same and not (None in warned or r in warned):
                    why = f"fmtkit cannot read it: {sample}" if isinstance(sample, Exception) else (mine or {}).get("error", "other tokens")
                    say("read-differs", r, f"fmtkit: no finding, but TRL renders it differently from fmtkit's reading ({why})")
            elif same:
                say("false-error", r, f"fmtkit: {row_errors}; TRL renders it exactly as fmtkit reads it")
            elif mine is None:
                say("error-unreadable", r, f"fmtkit: {row_errors} (it cannot read it); TRL renders it")
    return out

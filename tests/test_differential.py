"""Differential fuzzing: fmtkit's verdict and reading of generated datasets against the real LLaMA-Factory.

Hypothesis generates ``dataset_info.json`` entries and rows of every
LLaMA-Factory form, near-misses included (see ``tests/differential.py``). Each
batch is written as one dataset folder; fmtkit validates it (with the stage of
each entry) and reads every row, and one subprocess of the LLaMA-Factory 0.9.5
environment (``tests/lf_train_probe.py``) loads every entry with LLaMA-Factory's
own loader and converters and runs every row through the dataset processor of
its stage (template encoding with the tiny Qwen tokenizer). The properties, row
by row, are in :func:`differential.disagreements`: fmtkit reports an error <=>
LLaMA-Factory fails, drops the row or trains on something else; fmtkit finds
nothing => LLaMA-Factory trains on exactly the tokens of fmtkit's reading.

Every disagreement found so far is kept below as a minimal case:
``REGRESSIONS`` agree today; ``KNOWN_DISAGREEMENTS`` are fmtkit's to fix (each
is an ``xfail(strict=True)``: the fix makes it pass, which fails the test until
the entry is removed from the list); ``ACCEPTED`` are rows LLaMA-Factory trains
on although they do not mean what they say, where fmtkit's error is right.
The generated test excuses disagreements of those two lists only.

Optional like ``test_llamafactory_real.py``: it skips (saying why) without the
LLaMA-Factory environment (``FMTKIT_LF_PYTHON=""``, or no ``.venv-lf``).
``FMTKIT_DIFF_SCALE=10`` runs ten times the generated cases.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from differential import Case, Disagreement, random_case, run_batch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_llamafactory_real import require_lf_python

SCALE = float(os.environ.get("FMTKIT_DIFF_SCALE", "1"))
BATCHES, CASES_PER_BATCH = max(1, round(3 * SCALE)), 150

OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}
OPENAI = {"formatting": "openai", "columns": {"messages": "messages"}, "tags": OPENAI_TAGS}
OPENAI_PAIRS = {"formatting": "openai", "ranking": True, "columns": {"messages": "messages", "chosen": "chosen", "rejected": "rejected"}, "tags": OPENAI_TAGS}
CALL = {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}


def _user(text: str = "Hi") -> dict[str, Any]:
    return {"role": "user", "content": text}


def _assistant(text: str = "Yo") -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def _messages(d: Disagreement) -> list[dict[str, Any]]:
    """Every message object in the rows of a disagreement."""
    rows = d.case.rows if d.row is None else [d.case.rows[d.row]]
    out = []
    for row in rows:
        for value in row.values() if isinstance(row, dict) else ():
            if isinstance(value, dict):
                out.append(value)
            elif isinstance(value, list):
                out += [m for m in value if isinstance(m, dict)]
    return out


def _last_message(d: Disagreement) -> dict[str, Any]:
    msgs = d.case.rows[d.row].get("messages") if d.row is not None else None
    return msgs[-1] if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict) else {}


def _system_without_content(d: Disagreement) -> bool:
    """A message with the entry's system tag and a null or absent content."""
    tags = {"role_tag": "from", "content_tag": "value", "system_tag": "system"} | d.case.entry.get("tags", {})
    return any(m.get(tags["role_tag"]) == tags.get("system_tag") and m.get(tags["content_tag"]) is None for m in _messages(d))


def _alpaca_prompt_null(d: Disagreement) -> bool:
    if "formatting" in d.case.entry or d.row is None:
        return False
    column = d.case.entry.get("columns", {}).get("prompt", "instruction")
    return d.case.rows[d.row].get(column) is None


@dataclass(frozen=True)
class Minimal:
    """A minimal case, what it shows, and which generated disagreements it explains."""

    name: str
    case: Case
    reason: str = ""
    matches: Callable[[Disagreement], bool] = lambda d: False


# ---- minimal cases that agree today (several were disagreements, fixed since) -----------------

REGRESSIONS = [
    Minimal("openai-tool-calls-without-content", Case("sft", OPENAI, [{"messages": [_user(), {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "42"}, _assistant()]}])),
    Minimal("history-not-a-list", Case("sft", {"columns": {"prompt": "instruction", "response": "output", "history": "history"}}, [{"instruction": "a", "output": "b", "history": ""}])),
    Minimal("placeholder-in-text-only-alpaca", Case("sft", {}, [{"instruction": "<image> a", "input": "", "output": "b"}])),
    Minimal("tools-empty-list-string", Case("sft", {**OPENAI, "columns": {"messages": "messages", "tools": "tools"}}, [{"messages": [_user(), _assistant()], "tools": "[]"}])),
    Minimal("sharegpt-function-call-and-observation", Case("sft", {"formatting": "sharegpt"}, [{"conversations": [
        {"from": "human", "value": "Hi"}, {"from": "function_call", "value": '{"name": "f", "arguments": {"x": 1}}'},
        {"from": "observation", "value": "42"}, {"from": "gpt", "value": "Yo"}]}])),
    Minimal("sharegpt-wrong-role-dropped", Case("sft", {"formatting": "sharegpt"}, [{"conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "Yo"}]}])),
    Minimal("kto-label-a-string", Case("kto", {"columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}}, [{"instruction": "a", "output": "b", "kto_tag": "true"}])),
    Minimal("placeholders-match-images", Case("sft", {"columns": {"prompt": "instruction", "response": "output", "images": "images"}}, [{"instruction": "<image>a", "output": "b", "images": ["img/a.png"]}])),
    Minimal("placeholder-without-image", Case("sft", {"columns": {"prompt": "instruction", "response": "output", "images": "images"}}, [{"instruction": "<image>a", "output": "b", "images": []}])),
    Minimal("tool-calls-under-sharegpt", Case("sft", {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": OPENAI_TAGS}, [{"messages": [
        _user(), {"role": "assistant", "content": "", "tool_calls": [CALL]}, {"role": "tool", "content": "42"}, _assistant()]}])),
    # datasets 4.0 on pyarrow 26 reads garbage (UnicodeDecodeError) or dies of SIGBUS on this file: fmtkit must report it (FMT304)
    Minimal("null-inside-history-breaks-the-loader", Case("preference", {"ranking": True, "columns": {
        "prompt": "instruction", "history": "history", "chosen": "chosen", "rejected": "rejected"}}, [
        {"instruction": "a", "history": [[None, "b"]], "chosen": "c", "rejected": "d"}, {"instruction": "a", "history": [], "chosen": "c", "rejected": "d"}])),
    # FMT807: tool call arguments an object in one call and JSON text in another (datasets cannot load the file)
    Minimal("arrow-nested-type-drift", Case("sft", OPENAI, [{"messages": [_user(), {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {}}}, {"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "content": "42"}, _assistant()]}])),
    Minimal("openai-system-suffix", Case("sft", OPENAI, [{"messages": [{"role": "system", "content": "S"}, _user(), _assistant()]}])),
    # an entry's row without text: LLaMA-Factory trains the end-of-sequence token alone (FMT301 warns); a text file
    # given alone is TRL's, which fails on it (FMT306) -- rules/alpaca.py, schemas/alpaca-pretrain.schema.json
    Minimal("pretraining-row-without-text", Case("pretrain", {"columns": {"prompt": "text"}}, [{"text": "a"}, {}])),
    # null content beside tool_calls in an openai pair: its reader writes the calls (schemas/sharegpt-sft.schema.json message)
    Minimal("openai-pairs-null-content-beside-tool-calls", Case("preference", OPENAI_PAIRS, [{"messages": [
        _user(), {"role": "assistant", "content": None, "tool_calls": [CALL]}, {"role": "tool", "content": "42"}, _assistant(), _user()],
        "chosen": _assistant("a"), "rejected": _assistant("b")}])),
    # stage pt never reads media (FMT906 warns; FMT602 does not count placeholders there) -- rules/stage.py, rules/media.py
    Minimal("pretraining-media", Case("pretrain", {"columns": {"prompt": "text", "images": "images"}}, [{"text": "<image>Hi", "images": ["img/a.png"]}])),
    Minimal("pretraining-media-placeholders-differ", Case("pretrain", {"columns": {"prompt": "text", "images": "images"}}, [{"text": "<image><image>Hi", "images": ["img/a.png"]}])),
    # found at a larger scale: OpenAI's API schema applied to an openai entry (record_loop._SchemaView: bare files only)
    Minimal("openai-entry-message-key-type", Case("sft", OPENAI, [{"messages": [_user(), {**_assistant(), "name": 1}]}])),
    Minimal("openai-entry-tools-without-type", Case("sft", {**OPENAI, "columns": {"messages": "messages", "tools": "tools"}}, [{"messages": [_user(), _assistant()],
        "tools": [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}]}])),
    Minimal("pretraining-media-not-a-path", Case("pretrain", {"columns": {"prompt": "text", "images": "images"}}, [{"text": "Hi", "images": [3]}])),  # pt opens none
    Minimal("ranking-under-stage-kto", Case("kto", {"ranking": True, "columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}},
        [{"instruction": "a", "output": "b", "kto_tag": True}, {"instruction": "a", "output": "c", "kto_tag": False}])),  # LLaMA-Factory refuses the entry
    Minimal(
        "weight-in-llamafactory-entry",
        Case("sft", OPENAI, [{"messages": [_user(), {**_assistant(), "weight": None}]}]),
        "FMT409 for a null (or 2, or \"x\") weight: LLaMA-Factory never reads weight (FMT410 says so for 0); null means "
        "absent to fmtkit's own reader (rules/conversation.py FMT409)",
        lambda d: "FMT409" in d.detail,
    ),
    Minimal(
        "tool-calls-on-a-user-message",
        Case("sft", OPENAI, [{"messages": [{**_user(), "tool_calls": 1}, _assistant()]}]),
        "FMT703 for tool_calls on a user message: LLaMA-Factory's openai converter reads tool_calls on assistant turns "
        "only (rules/tools.py FMT703)",
        lambda d: d.what == "false-error" and "FMT703" in d.detail,
    ),
    Minimal(
        "tools-as-a-list-outside-openai",
        Case("sft", {"columns": {"prompt": "instruction", "response": "output", "tools": "tools"}}, [{"instruction": "a", "output": "b", "tools": [{"name": "f"}]}]),
        "tools as a JSON list (not a string) in an alpaca or sharegpt entry: LLaMA-Factory's tool formatter json.loads "
        "it and training stops with TypeError; only the openai converter dumps lists (rules/tools.py FMT701)",
        lambda d: d.what == "missed" and "JSON object must be str" in d.detail,
    ),
    Minimal(
        "system-message-without-content",
        Case("sft", OPENAI, [{"messages": [{"role": "system", "content": None}, _user(), _assistant()]}]),
        "FMT405 (content null) or FMT401 (no content key) for a leading system message: LLaMA-Factory takes it as no "
        "system prompt, as fmtkit's reader does (rules/conversation.py)",
        lambda d: d.what == "false-error" and ("FMT405" in d.detail or "FMT401" in d.detail) and _system_without_content(d),
    ),
    Minimal(
        "null-column",
        Case("sft", {"columns": {"prompt": "instruction", "response": "output", "system": "system"}}, [{"instruction": "a", "output": "b", "system": None}]),
        "FMT801 calls a column null in every row absent (LLaMA-Factory fails with KeyError); `datasets` keeps it as a null "
        "column and LLaMA-Factory reads None (rules/whole_file.py)",
        lambda d: d.what == "false-error" and "FMT801" in d.detail,
    ),
    Minimal(
        "alpaca-prompt-null",
        Case("sft", {}, [{"instruction": None, "input": "x", "output": "b"}]),
        "FMT300/FMT301 for a null or missing instruction: LLaMA-Factory skips empty parts and takes the input alone as the "
        "prompt (rules/alpaca.py, schemas/alpaca-sft.schema.json)",
        lambda d: d.what == "false-error" and ("FMT300" in d.detail or "FMT301" in d.detail) and _alpaca_prompt_null(d),
    ),
    Minimal(
        "openai-prompt-ending-with-tool-results",
        Case("preference", OPENAI_PAIRS, [{"messages": [_user(), {"role": "assistant", "content": "", "tool_calls": [CALL]}, {"role": "tool", "content": "42"}],
                                            "chosen": _assistant("a"), "rejected": _assistant("b")}]),
        "LLaMA-Factory's openai converter only writes tool results out when a later message follows, so a preference "
        "prompt ending with them loses them and the row is dropped (even turn count); fmtkit finds nothing "
        "(rules/conversation.py FMT404 for openai entries)",
        lambda d: d.what == "missed" and d.case.entry.get("formatting") == "openai" and d.case.kind == "preference" and "drops the row" in d.detail,
    ),
    Minimal(
        "openai-text-beside-tool-calls",
        Case("sft", OPENAI, [{"messages": [_user(), {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL]}, {"role": "tool", "content": "42"}, _assistant()]}]),
        "an assistant message with text and tool_calls: LLaMA-Factory's openai converter replaces the text with the "
        "calls (the text is never trained); fmtkit finds nothing (rules/tools.py)",
        lambda d: d.what in ("read-differs", "missed") and any(m.get("tool_calls") and isinstance(m.get("content"), str) and m["content"].strip() for m in _messages(d)),
    ),
    Minimal(
        "kto-desirable-with-empty-answer",
        Case("kto", {"columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}}, [{"instruction": "a", "output": "", "kto_tag": True}]),
        "a KTO row labelled true with an empty answer: LLaMA-Factory's feedback processor takes an empty first response "
        "for the undesirable side and trains it with kto_tag false; fmtkit warns of empty text only (rules/preference.py)",
        lambda d: "trains on kto_tag" in d.detail,
    ),
    Minimal(
        "sharegpt-role-tags-with-function-call",
        Case("sft", {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {**OPENAI_TAGS, "function_tag": "function_call"}}, [{"messages": [
            _user(), {"role": "function_call", "content": '{"name": "f", "arguments": {"x": 1}}'}, {"role": "tool", "content": "42"}, _assistant()]}]),
        "FMT300: an entry with role/content tags is checked against OpenAI's message schema, whose roles leave out the "
        "entry's own function_tag (record_loop._SchemaView, schemas/openai-messages.schema.json)",
        lambda d: d.what == "false-error" and "FMT300" in d.detail and any(m.get("role") == "function_call" for m in _messages(d)),
    ),
    Minimal(
        "message-key-type",
        Case("sft", {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": OPENAI_TAGS}, [{"messages": [{**_user(), "name": 0}, _assistant()]}]),
        "FMT300 for the type of a message key LLaMA-Factory never reads (`name`, `tool_calls` on a user message): "
        "OpenAI's message schema applied to a LLaMA-Factory entry (record_loop._SchemaView, schemas/openai-messages.schema.json)",
        lambda d: d.what == "false-error" and "FMT300" in d.detail and any(
            "name" in m or ("tool_calls" in m and m.get("role") != "assistant") for m in _messages(d)),
    ),
    Minimal(
        "system-column-type-under-role-tags",
        Case("sft", {"formatting": "sharegpt", "columns": {"messages": "messages", "system": "system"}, "tags": OPENAI_TAGS}, [{"messages": [_user(), _assistant()], "system": True}]),
        "a system column that is not a string, in an entry with role/content tags: LLaMA-Factory's template fails "
        "(TypeError); fmtkit finds nothing, as the OpenAI message schema it uses there leaves the system column out "
        "(record_loop._SchemaView; default tags give FMT300)",
        lambda d: d.what == "missed" and d.row is not None and not isinstance(d.case.rows[d.row].get("system", ""), (str, type(None))),
    ),
]

# ---- fmtkit's to fix: each xfails until fixed, then fails until removed from this list --------

KNOWN_DISAGREEMENTS: list[Minimal] = []

# ---- LLaMA-Factory trains on these, but not as written: fmtkit's error is right ------------------

ACCEPTED = [
    Minimal(
        "chosen-with-a-user-role",
        Case("preference", OPENAI_PAIRS, [{"messages": [_user()], "chosen": _user("x"), "rejected": _assistant("b")}]),
        "LLaMA-Factory's pairwise converter marks a chosen/rejected of the wrong role broken after it decided to keep "
        "the row, so it trains a user turn as the chosen answer (FMT501)",
        lambda d: "FMT501" in d.detail,
    ),
    Minimal(
        "function-call-of-no-call",
        Case("sft", {"formatting": "sharegpt"}, [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "function_call", "value": "[]"},
                                                                     {"from": "observation", "value": "42"}, {"from": "gpt", "value": "Yo"}]}]),
        "a function_call turn holding `[]`: LLaMA-Factory trains an empty function call (FMT702)",
        lambda d: "FMT702" in d.detail,
    ),
    Minimal(
        "openai-tool-results-after-the-user",
        Case("preference", OPENAI_PAIRS, [{"messages": [_user(), {"role": "tool", "content": "42"}], "chosen": _assistant("a"), "rejected": _assistant("b")}]),
        "tool results no call asked for, ending an openai prompt: LLaMA-Factory's openai converter drops trailing tool "
        "results and trains on the prompt without them (FMT404 names the drop; FMT403 the tool turn in a user's place)",
        lambda d: d.what == "error-unreadable" and d.case.entry.get("formatting") == "openai" and ("FMT403" in d.detail or "FMT404" in d.detail)
        and _last_message(d).get("role") == "tool",
    ),
    Minimal(
        "arrow-struct-union-of-arguments",
        Case("sft", OPENAI, [
            {"messages": [_user(), {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}, {"role": "tool", "content": "42"}, _assistant()]},
            {"messages": [_user(), {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"city": "P"}}}]}, {"role": "tool", "content": "42"}, _assistant()]}]),
        "tool call arguments objects with different keys: `datasets` makes one struct of all their keys, so "
        "LLaMA-Factory trains {\"x\": 1, \"city\": null} in every row; fmtkit reports FMT810 once, at the first "
        "record whose keys differ (the earlier rows, altered too, carry no finding of their own)",
        lambda d: d.what == "read-differs" and "null" in d.detail and "arguments" in d.detail,
    ),
    Minimal(
        "tool-calls-not-a-list-under-sharegpt",
        Case("sft", {"formatting": "sharegpt"}, [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo", "tool_calls": "1"}]}]),
        "a tool_calls key under formatting sharegpt, whatever it holds, is never read by LLaMA-Factory (FMT704)",
        lambda d: "FMT704" in d.detail,
    ),
]


@pytest.fixture(scope="module")
def python() -> Path:
    return require_lf_python()


@pytest.fixture(scope="module")
def minimal_results(python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Disagreement]]:
    """Every minimal case of the three lists, through both sides in one batch."""
    cases = {m.name: Case(**m.case.to_dict()) for m in (*REGRESSIONS, *KNOWN_DISAGREEMENTS, *ACCEPTED)}
    found = run_batch(python, tmp_path_factory.mktemp("minimal") / "ds", list(cases.values()))
    return {name: [d for d in found if d.case is case] for name, case in cases.items()}


def _explained(d: Disagreement) -> bool:
    return any(m.matches(d) for m in (*KNOWN_DISAGREEMENTS, *ACCEPTED))


@pytest.mark.parametrize(
    "name",
    [m.name for m in REGRESSIONS] + [pytest.param(m.name, marks=pytest.mark.xfail(strict=True, reason=m.reason)) for m in KNOWN_DISAGREEMENTS],
)
def test_minimal_case_agrees_with_llamafactory(minimal_results: dict[str, list[Disagreement]], name: str):
    assert not minimal_results[name], "\n".join(map(str, minimal_results[name]))


@pytest.mark.parametrize("name", [m.name for m in ACCEPTED])
def test_accepted_case_is_an_error_llamafactory_misreads(minimal_results: dict[str, list[Disagreement]], name: str):
    (accepted,) = [m for m in ACCEPTED if m.name == name]
    found = minimal_results[name]
    assert found and all(accepted.matches(d) for d in found), "\n".join(map(str, found)) or "no disagreement left: move it to REGRESSIONS"


def test_known_disagreements_are_still_recognised(minimal_results: dict[str, list[Disagreement]]):
    """Each known case's matcher matches what its minimal case produces today (else it excuses nothing)."""
    for m in KNOWN_DISAGREEMENTS:
        assert all(m.matches(d) for d in minimal_results[m.name]), (m.name, [str(d) for d in minimal_results[m.name]])


@settings(
    max_examples=BATCHES, derandomize=True, database=None, deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a batch is costly to shrink: the report lists each small case instead
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(st.lists(st.integers(0, 2**32 - 1), min_size=CASES_PER_BATCH, max_size=CASES_PER_BATCH, unique=True))
def test_generated_datasets_agree_with_llamafactory(python: Path, tmp_path_factory: pytest.TempPathFactory, seeds: list[int]):
    # one seed per case: a case draws its many choices from its own Random (hypothesis' own draws lean to edge values)
    batch = [random_case(random.Random(seed)) for seed in seeds]
    found = [d for d in run_batch(python, tmp_path_factory.mktemp("generated") / "ds", batch) if not _explained(d)]
    assert not found, f"{len(found)} new disagreements with LLaMA-Factory (add each, reduced, to a list above):\n" + "\n".join(map(str, found))


# ==== TRL: its data_utils on generated TRL datasets (in this environment, no subprocess) =========

from differential_trl import TrlCase, random_trl_case, trl_disagreements  # noqa: E402

U, A = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}


def _trl_rows(d: str) -> list[Any]:
    import json

    return json.loads(d.split("rows=", 1)[1])


def _trl_answer_roles(d: str) -> set[Any]:
    return {m.get("role") for r in _trl_rows(d) for k in ("completion", "chosen", "rejected") if isinstance(r.get(k), list) for m in r[k] if isinstance(m, dict)}


TRL_REGRESSIONS = [
    Minimal("trl-messages-in-any-order", TrlCase("trl-messages", [{"messages": [U, A, U, {"role": "tool", "content": "42"}, A]}])),
    Minimal("trl-extra-columns", TrlCase("trl-preference", [{"prompt": [U], "chosen": [A], "rejected": [{"role": "assistant", "content": "No"}], "prompt_id": "p1", "score_chosen": 8.0}])),
    # `datasets` gives every row every column: FMT811 judges each row by the file's TRL columns (rules/trl_columns.py)
    Minimal("trl-a-key-in-one-row-is-in-every-row", TrlCase("trl-unpaired", [{"prompt": [U], "completion": [A], "label": True, "messages": [U, A]}, {"prompt": [U], "completion": [A], "label": False}])),
    Minimal("trl-column-missing-in-a-row", TrlCase("trl-prompt-only", [{"prompt": [U]}, {"prompt": [U]}, {"prompt": [U], "completion": [A]}])),
    # messages beside a prompt is a TRL row (detect.py), whose key set fits no type (FMT300)
    Minimal("trl-messages-beside-strings", TrlCase("trl-prompt-completion", [{"prompt": "Why?", "completion": "Yo", "messages": [U, A]}])),
    # each preference row's prompt read as maybe_extract_prompt reads it (forms/trl.py read_preference); FMT812 warns of DPOTrainer
    Minimal("trl-preference-rows-with-and-without-prompt", TrlCase("trl-preference", [
        {"chosen": [U, A], "rejected": [U, {"role": "assistant", "content": "No"}]}, {"prompt": [U], "chosen": [A], "rejected": [{"role": "assistant", "content": "No"}]}])),
    Minimal("trl-preference-without-a-shared-prompt", TrlCase("trl-preference-implicit", [{"chosen": [A], "rejected": [{"role": "assistant", "content": "No"}]}])),
    Minimal("trl-prompt-ending-with-system", TrlCase("trl-prompt-only", [{"prompt": [{"role": "system", "content": "S"}]}])),
    # FMT411 (warning): TRL continues the assistant message, which no other form can hold
    Minimal("trl-prompt-ending-with-assistant", TrlCase("trl-prompt-only", [{"prompt": [U, {"role": "assistant", "content": "Partial"}]}])),
    Minimal("trl-implicit-preference-with-messages", TrlCase("trl-preference-implicit", [
        {"chosen": [U, A], "rejected": [U, {"role": "assistant", "content": "No"}], "messages": [U, A]}])),
    # found by the generated cases at a larger scale (FMTKIT_DIFF_SCALE)
    Minimal("trl-standard-rows-with-and-without-prompt", TrlCase("trl-preference", [{"prompt": "Q", "chosen": "a", "rejected": "b"}, {"chosen": "Qa", "rejected": "Qb"}])),  # FMT812
    Minimal("trl-empty-system-message", TrlCase("trl-unpaired", [{"prompt": [{"role": "system", "content": ""}, U], "completion": [A], "label": False}])),  # FMT406
    Minimal("trl-null-system-message", TrlCase("trl-messages", [{"messages": [{"role": "system", "content": None}, U, A]}])),  # FMT405
    Minimal("trl-messages-ending-with-a-tool-result", TrlCase("trl-messages", [{"messages": [U, {"role": "tool", "content": "42"}]}])),  # FMT412
    Minimal("trl-shared-prompt-ending-with-system", TrlCase("trl-preference-implicit", [
        {"chosen": [{"role": "system", "content": "S"}, A], "rejected": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "No"}]}])),  # FMT404
    Minimal("trl-text-row-holding-messages", TrlCase("trl-text", [{"text": "Hi"}, {"text": "Yo"}, {"text": None, "messages": [U, A]}])),
]

TRL_KNOWN: list[Minimal] = []

TRL_ACCEPTED = [
    Minimal(
        "trl-type-drift",
        TrlCase("trl-text", [{"text": 1.5}, {"text": "Hi"}]),
        "a column (or a field inside one) of two JSON types: datasets 5 (TRL's) loads it as a Json column where "
        "LLaMA-Factory's datasets 4 fails; fmtkit follows the stricter loader (FMT802, FMT807, FMT808)",
        lambda d: any(code in d for code in ("FMT802", "FMT807", "FMT808")),
    ),
    Minimal(
        "trl-content-not-a-string",
        TrlCase("trl-messages", [{"messages": [U, {"role": "assistant", "content": 3}]}]),
        "a content that is not a string (or null): this chat template prints it, others fail; fmtkit refuses it "
        "(FMT300, FMT405)",
        lambda d: ("FMT300" in d or "FMT405" in d) and (d.startswith("[error-unreadable]") or d.startswith("[false-error]")),
    ),
    Minimal(
        "trl-system-message-not-first",
        TrlCase("trl-prompt-completion", [{"prompt": [U, {"role": "system", "content": "S"}, U], "completion": [A]}]),
        "a system message after the first turn: this chat template renders it in place, many refuse it (FMT403)",
        lambda d: d.startswith("[error-unreadable]") and "FMT403" in d and '"role": "system"' in d,
    ),
    Minimal(
        "trl-two-leading-system-messages",
        TrlCase("trl-messages", [{"messages": [{"role": "system", "content": "S"}, {"role": "system", "content": "T"}, U, A]}]),
        "a second system message, even before the first turn: this chat template renders both, many refuse any system "
        "message but the first, and a sample holds one system prompt (FMT403, from fmtkit/alignment.py in any order too)",
        lambda d: d.startswith("[error-unreadable]") and "FMT403" in d and '"role": "system"' in d,
    ),
    Minimal(
        "trl-answer-with-another-role",
        TrlCase("trl-prompt-completion", [{"prompt": [U], "completion": [{"role": "tool", "content": "42"}]}]),
        "a completion (or chosen/rejected) that does not end with an assistant message: TRL trains the model to speak as "
        "the tool or the user; fmtkit refuses it (FMT300, forms/trl.py)",
        lambda d: d.startswith("[error-unreadable]") and "FMT300" in d and bool(_trl_answer_roles(d) - {"assistant"}),
    ),
    Minimal(
        "trl-unknown-role",
        TrlCase("trl-messages", [{"messages": [U, A, {"role": "bot", "content": "x"}, A]}]),
        "a role no chat template knows: this one prints it, others fail (FMT402)",
        lambda d: "FMT402" in d,
    ),
    Minimal(
        "trl-row-of-another-type",
        TrlCase("trl-messages", [{"messages": [U, A]}, {"messages": [U, A]}, {"prompt": "Hi"}]),
        "a prompt-only row in a messages file: TRL renders each row alone, but its trainers take the dataset type from "
        "the columns and the first row; FMT401 (no messages)",
        lambda d: d.startswith("[error-unreadable]") and "FMT401" in d,
    ),
    Minimal(
        "trl-no-type",
        TrlCase("trl-preference-implicit", [{"chosen": "Hi"}]),
        "`chosen` without `rejected` is no TRL dataset type (a trainer fails on the missing column); FMT207",
        lambda d: "FMT207" in d,
    ),
]


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("trl")
    from tiny_model import build_tokenizer

    return build_tokenizer()


def _trl_explained(d: str) -> bool:
    return any(m.matches(d) for m in (*TRL_KNOWN, *TRL_ACCEPTED))


@pytest.fixture(scope="module")
def trl_minimal_results(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    out = {}
    for m in (*TRL_REGRESSIONS, *TRL_KNOWN, *TRL_ACCEPTED):
        case = TrlCase(m.case.form, m.case.rows)
        out[m.name] = trl_disagreements(tmp_path_factory.mktemp("trl-minimal"), [case], tokenizer)
    return out


@pytest.mark.parametrize(
    "name", [m.name for m in TRL_REGRESSIONS] + [pytest.param(m.name, marks=pytest.mark.xfail(strict=True, reason=m.reason)) for m in TRL_KNOWN]
)
def test_trl_minimal_case_agrees_with_trl(trl_minimal_results: dict[str, list[str]], name: str):
    assert not trl_minimal_results[name], "\n".join(trl_minimal_results[name])


@pytest.mark.parametrize("name", [m.name for m in (*TRL_KNOWN, *TRL_ACCEPTED)])
def test_trl_minimal_case_is_recognised(trl_minimal_results: dict[str, list[str]], name: str):
    """Each known or accepted TRL case's matcher matches what it produces today (else it excuses nothing)."""
    (m,) = [m for m in (*TRL_KNOWN, *TRL_ACCEPTED) if m.name == name]
    found = trl_minimal_results[name]
    assert all(_trl_explained(d) for d in found), found
    if m in TRL_ACCEPTED:
        assert any(m.matches(d) for d in found), found or "no disagreement left: fmtkit and TRL agree on it now"


@settings(
    max_examples=BATCHES, derandomize=True, database=None, deadline=None,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(st.lists(st.integers(0, 2**32 - 1), min_size=CASES_PER_BATCH // 2, max_size=CASES_PER_BATCH // 2, unique=True))
def test_generated_trl_datasets_agree_with_trl(tokenizer, tmp_path_factory: pytest.TempPathFactory, seeds: list[int]):
    batch = [random_trl_case(random.Random(seed)) for seed in seeds]
    found = [d for d in trl_disagreements(tmp_path_factory.mktemp("trl-generated"), batch, tokenizer) if not _trl_explained(d)]
    assert not found, f"{len(found)} new disagreements with TRL (add each, reduced, to a list above):\n" + "\n".join(found)


# ==== convert --register: LLaMA-Factory trains the converted entry as it trains its source ==========

from differential_convert import Difference, convert_batch  # noqa: E402


def _openai_system_suffix(d: Difference) -> bool:
    """LLaMA-Factory 0.9.5's openai reader appends "detailed thinking off" (or a newline, with tools) to the system
    prompt of every row of an openai entry (FMT119). Converting from such an entry, fmtkit writes the system prompt as
    written; registering tool calls, which need the openai reader, adds it. convert's notes say both."""
    openai = d.converted.case.entry.get("formatting") == "openai" or d.registered.get("formatting") == "openai"
    return d.what == "trains-differently" and set(d.diff) == {"_system"} and openai


CONVERT_ACCEPTED = {"openai-system-suffix": _openai_system_suffix}

SHAREGPT_CALL = {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
CONVERT_CASES = [
    # each to every LLaMA-Factory form of its kind (differential_convert.TARGETS)
    Case("sft", SHAREGPT_CALL, [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "tools": "[]"}], why="tools \"[]\" renders a tools block"),
    Case("sft", {"columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}},
         [{"instruction": "Sum", "input": "1 2", "output": "3", "system": ""}], why="instruction and input joined; an empty system"),
    Case("preference", {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected", "history": "history"}},
         [{"instruction": "Q", "chosen": "a", "rejected": "b", "history": [["x", "y"]]}], why="a pair with history"),
    Case("kto", {"formatting": "sharegpt", "columns": {"messages": "conversations", "kto_tag": "label"}},
         [{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "a"}], "label": False},
          {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "b"}], "label": True}], why="KTO rows of both labels"),
    Case("sft", OPENAI, [{"messages": [{"role": "system", "content": "S"}, _user(), {"role": "assistant", "content": "", "tool_calls": [CALL]},
                                       {"role": "tool", "content": "42"}, _assistant()]}], why="openai tool calls (FMT119 both ways)"),
]


def test_converted_minimal_cases_train_as_their_source(python: Path, tmp_path: Path):
    run = convert_batch(python, tmp_path / "ds", [Case(**c.to_dict()) for c in CONVERT_CASES])
    assert {(c.case.kind, c.target) for c in run.compared} >= {("sft", "alpaca"), ("sft", "sharegpt"), ("sft", "openai"), ("preference", "alpaca-preference"),
                                                                ("preference", "sharegpt-preference"), ("kto", "alpaca-kto"), ("kto", "sharegpt-kto")}  # fmt: skip
    unexplained = [d for d in run.differences if not any(m(d) for m in CONVERT_ACCEPTED.values())]
    assert not unexplained, "\n".join(map(str, unexplained))
    assert any(_openai_system_suffix(d) for d in run.differences), "the openai reader's suffix no longer shows: drop CONVERT_ACCEPTED's entry"


@settings(
    max_examples=max(1, round(SCALE)), derandomize=True, database=None, deadline=None,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(st.lists(st.integers(0, 2**32 - 1), min_size=CASES_PER_BATCH, max_size=CASES_PER_BATCH, unique=True))
def test_generated_conversions_train_as_their_source(python: Path, tmp_path_factory: pytest.TempPathFactory, seeds: list[int]):
    """Every clean generated case, converted with --register to each LLaMA-Factory form of its kind, trains on the same tokens."""
    batch = [random_case(random.Random(seed)) for seed in seeds]
    run = convert_batch(python, tmp_path_factory.mktemp("converted") / "ds", batch)
    assert len(run.compared) >= CASES_PER_BATCH // 4, (len(run.compared), run.not_written)  # clean cases are about half
    found = [d for d in run.differences if not any(m(d) for m in CONVERT_ACCEPTED.values())]
    assert not found, f"{len(found)} conversions LLaMA-Factory trains otherwise than their source (fix, or explain in CONVERT_ACCEPTED):\n" + "\n".join(map(str, found))

"""A fuzzer over ``dataset_info.json`` entries and over the options of every command: exit 0, 1 or 2, never a traceback.

Commands run in this process (:func:`cli_runner.run_cli`), so any exception
but ``SystemExit`` fails the test with its traceback, and hypothesis shrinks
the input to the smallest that breaks. Every run happens in a temporary
folder: generated paths are plain names inside it, never absolute.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cli_runner import run_cli
from fmtkit.dataset_info import COLUMN_DEFAULTS, ENTRY_KEYS, TAG_DEFAULTS

DATASET = Path(__file__).resolve().parent.parent / "dataset"
FUZZ = settings(max_examples=int(os.environ.get("FMTKIT_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip

# ---- dataset_info.json entries ---------------------------------------------------------------

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=12))
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                          max_leaves=8)  # fmt: skip
name_value = st.one_of(json_value, st.sampled_from(["instruction", "output", "conversations", "messages", "from", "value", "human",
                                                    "gpt", "images", "chosen", "rejected", "kto_tag", "system", "tools"]))  # fmt: skip
file_name = st.one_of(json_value, st.sampled_from(["d.jsonl", "d.json", "sub", "missing.jsonl", "dataset_info.json", "", ".", "x.xml"]))
entry_value = st.fixed_dictionaries({}, optional={
    **{k: json_value for k in ENTRY_KEYS},
    "file_name": file_name,
    "formatting": st.one_of(json_value, st.sampled_from(["alpaca", "sharegpt", "openai"])),
    "ranking": st.one_of(json_value, st.booleans()),
    "columns": st.one_of(json_value, st.dictionaries(st.sampled_from(list(COLUMN_DEFAULTS)), name_value, max_size=6)),
    "tags": st.one_of(json_value, st.dictionaries(st.sampled_from(list(TAG_DEFAULTS)), name_value, max_size=5)),
})  # fmt: skip
entry_name = st.one_of(st.text(max_size=10), st.sampled_from(["d", "a[/x]", "[bold]x", "a,b", "\x1b[2J", "$schema"]))
info_doc = st.one_of(json_value, st.dictionaries(entry_name, st.one_of(entry_value, json_value), min_size=1, max_size=3))


def dataset_folder(info: object) -> Path:
    """A folder with a few data files of different forms and ``info`` as its dataset_info.json."""
    folder = Path(tempfile.mkdtemp(prefix="fmtkit-fuzz-"))
    rows = [{"instruction": "q", "input": "", "output": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}],
             "chosen": "c", "rejected": "r", "kto_tag": True, "images": [], "messages": [{"role": "user", "content": "x"}]}]  # fmt: skip
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "d.json").write_text(json.dumps(rows))
    (folder / "sub").mkdir()
    (folder / "sub" / "a.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (folder / "x.xml").write_text("<a/>")
    (folder / "dataset_info.json").write_text(json.dumps(info))
    return folder


def assert_clean(code: int, err: str) -> None:
    assert code in (0, 1, 2), err
    assert "Traceback" not in err


@FUZZ
@given(info=info_doc)
def test_fuzz_dataset_info_entries(capsys, info):
    folder = dataset_folder(info)
    try:
        names = list(info) if isinstance(info, dict) else []
        assert_clean(*run_cli(capsys, "validate", folder, "--output", "json")[::2])
        assert_clean(*run_cli(capsys, "stats", folder)[::2])
        for name in names[:2]:
            assert_clean(*run_cli(capsys, "convert", folder, "--entry", name, "--to", "sharegpt", "-o", folder / "out.jsonl")[::2])
            assert_clean(*run_cli(capsys, "convert", folder, "--entry", name, "--to", "alpaca", "-o", folder / "out.json", "--register",
                                  "--name", "conv")[::2])  # fmt: skip
            assert_clean(*run_cli(capsys, "stats", folder, "--entry", name, "--output", "json")[::2])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- every option of every command -------------------------------------------------------------

COMMANDS = ["validate", "convert", "stats", "rules", "explain", "download", "render", "infer", "train", "export"]
# plain names inside the run's folder, numbers, and odd text: never an absolute path, never a path up
plain = st.text(st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)), max_size=12).filter(lambda s: not s.startswith("."))
option_value = st.one_of(
    st.sampled_from(["ds", "ds/alpaca_demo.json", "ds/dataset_info.json", "ds/media", "out.jsonl", "out.json", "out.parquet", "out.png",
                     "alpaca_demo", "sharegpt_demo", "sharegpt", "openai", "alpaca", "trl-preference", "sft", "dpo", "json", "github",
                     "human", "FMT101", "chatml", "0", "-1", "1", "3", "nan", "1e400", "", " ", "a,b", "x.jinja", "MODEL"]),
    st.integers(-3, 10**20).map(str), plain,
)  # fmt: skip


SOURCES = st.sampled_from(["ds", "ds/alpaca_demo.json", "ds/sharegpt_demo.jsonl", "ds/openai_demo.jsonl", "ds/pretrain_lines.txt"])
FIRST = {"validate": SOURCES, "convert": SOURCES, "stats": SOURCES, "render": SOURCES, "explain": st.sampled_from(["FMT101", "FMT605", "x"]),
         "download": st.one_of(plain, st.sampled_from(["a/b", "../x", "a/b/c"])), "rules": st.just(""), "export": st.just(""),
         "infer": st.one_of(plain, st.sampled_from(["ds", "ds/media", "a/b", "MODEL"])),
         "train": st.sampled_from(["ds/dataset_info.json", "ds/alpaca_demo.json", "train.yaml", "missing.yaml"])}  # fmt: skip


def _options(command: str) -> list[tuple[str, object]]:
    """(option flag, strategy of its value or None for a flag) of a command, from its click parameters."""
    import click

    from fmtkit.cli import cli

    cmd = cli.get_command(click.Context(cli), command)
    out: list[tuple[str, object]] = []
    for p in cmd.params:
        if not isinstance(p, click.Option) or p.opts[0] in ("--help", "-h"):
            continue
        if p.is_flag:
            value = None
        elif isinstance(p.type, click.Choice):
            value = st.one_of(st.sampled_from(list(p.type.choices)), option_value)
        elif isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)):
            value = st.one_of(st.integers(-2, 40).map(str), option_value)
        else:
            value = option_value
        out.append((max(p.opts, key=len), value))
    return out


@st.composite
def command_line(draw) -> list[str]:
    command = draw(st.sampled_from(COMMANDS))
    args = [command]
    first = draw(FIRST[command])
    if first:
        args.append(first)
    if command == "convert":
        args += ["--to", draw(st.sampled_from(["sharegpt", "alpaca", "openai", "trl-preference", "trl-text", "x"]))]
    if command in ("render", "stats", "infer") and draw(st.booleans()):
        args += ["--tokenizer", "MODEL"] if command != "infer" else ["--dataset", "ds/alpaca_demo.json", "-o", "p.jsonl"]
    options = _options(command)
    for flag, value in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        args.append(flag)
        if value is not None:
            args.append(draw(value))
    return args


@FUZZ
@given(args=command_line())
def test_fuzz_command_line_options(capsys, monkeypatch, tiny_model, args):
    """``MODEL`` in an argument stands for the tiny test model (a real tokenizer and model)."""
    work = Path(tempfile.mkdtemp(prefix="fmtkit-fuzz-"))
    try:
        shutil.copytree(DATASET, work / "ds")
        monkeypatch.chdir(work)
        code, _, err = run_cli(capsys, *[str(tiny_model) if a == "MODEL" else a for a in args])
        event(f"{args[0]} exit {code}")
        assert_clean(code, err)
    finally:
        monkeypatch.undo()
        shutil.rmtree(work, ignore_errors=True)

"""Cases found by trying fmtkit on public datasets: its verdicts agree with what the loaders really do.

Each test writes the smallest data that showed the problem, asks fmtkit, and
(where the loader is at hand) asks the loader too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli, run_cli_joined
from test_llamafactory_real import PROBE, _clean_env, require_lf_python


def _write(folder: Path, info: dict | None, files: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if info is not None:
        (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _lf_load(python: Path, folder: Path, entry: str):
    """What LLaMA-Factory's loader makes of an entry (tests/lf_probe.py); its log lines share stdout, the document is last."""
    run = subprocess.run([str(python), str(PROBE), str(folder), entry], check=False, capture_output=True, text=True, env=_clean_env(), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])[entry]


def _codes(text: str) -> set[str]:
    return set(re.findall(r"\bFMT\d{3}\b", text))


# ---- 1. image URLs: LLaMA-Factory opens images as local files ---------------------------

URL = "https://example.com/0.png"
URL_ENTRY = {"m": {"file_name": "m.jsonl", "formatting": "sharegpt", "columns": {"messages": "conversations", "images": "images"}}}
URL_ROW = {"conversations": [{"from": "human", "value": "<image>What is this?"}, {"from": "gpt", "value": "A chart."}], "images": [URL]}


def test_an_image_url_is_an_error_for_llamafactory(tmp_path, capsys):
    folder = _write(tmp_path / "url", URL_ENTRY, {"m.jsonl": [URL_ROW, {**URL_ROW, "images": ["data:image/png;base64,iVBORw0KGgo="]}]})
    code, out = run_cli_joined(capsys, "validate", folder)
    assert code == 1 and "FMT607" in out
    assert out.count("FMT607 error") == 2 and "is a data: URI" in out


def test_llamafactory_keeps_the_url_and_its_image_reader_opens_it_as_a_file(tmp_path):
    """The facts FMT607 stands on: the converter keeps the URL, and ``Image.open(str)`` reads a local file."""
    python = require_lf_python()
    folder = _write(tmp_path / "url", URL_ENTRY, {"m.jsonl": [URL_ROW]})
    assert _lf_load(python, folder, "m")[0]["_images"] == [{"unresolved": URL}]
    src = subprocess.run(
        [str(python), "-c", "import inspect, llamafactory.data.mm_plugin as m; print(inspect.getsource(m.MMPluginMixin._regularize_images))"],
        check=True, capture_output=True, text=True, env=_clean_env(), timeout=120,
    ).stdout  # fmt: skip
    assert "if isinstance(image, (str, BinaryIO)):\n                image = Image.open(image)" in src
    from PIL import Image

    with pytest.raises(FileNotFoundError):
        Image.open(URL)


def test_convert_warns_when_it_writes_image_urls_for_llamafactory(tmp_path, capsys):
    src = _write(tmp_path, None, {"oa.jsonl": [{"messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": URL}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A chart."}]},
    ]}]}) / "oa.jsonl"  # fmt: skip
    out_path = tmp_path / "out.sharegpt.jsonl"
    code, out = run_cli_joined(capsys, "convert", src, "--to", "sharegpt", "-o", out_path)
    assert code == 0, out
    assert "1 record has image URLs" in " ".join(out.split()) and "FMT607" in out
    assert json.loads(out_path.read_text())["images"] == [URL]
    code, out = run_cli_joined(capsys, "convert", src, "--to", "alpaca", "-o", tmp_path / "out.alpaca.jsonl", "--output-format", "json")
    assert code == 0 and json.loads(out)["lost"] == {"media-url": 1}, out
    code, out = run_cli_joined(capsys, "convert", src, "--to", "sharegpt", "-o", tmp_path / "strict.jsonl", "--strict")
    assert code == 1 and not (tmp_path / "strict.jsonl").exists()


# ---- 2. Arrow types: TRL reads with datasets 4.7+ (the Json type), LLaMA-Factory with 4.0 ----------

from test_arrow_types import CASES, LOAD_CODES, written  # noqa: E402,F401  (written: the cases' files, a fixture)

import fmtkit  # noqa: E402

TRL_CASES = [c for c in CASES if not c.folder]  # a folder is read through a dataset_info.json entry: LLaMA-Factory's


@pytest.mark.parametrize("case", TRL_CASES, ids=[c.name for c in TRL_CASES])
def test_a_trl_file_is_judged_as_datasets_with_the_json_type_loads_it(case, written):
    """The verdicts measured with datasets 5.2 (test_arrow_types' ``loads_json`` and ``alters_json``), for a TRL form."""
    found = {f.code for f in fmtkit.validate(written[case.name][0], form="trl-messages").findings}
    assert (not found & LOAD_CODES) == case.loads_json, found
    assert ("FMT810" in found) == case.alters_json, found


def _function_call(name: str, arguments: dict) -> dict:
    return {"from": "function_call", "value": json.dumps({"name": name, "arguments": arguments})}


TOOL_ROWS = [
    {"conversations": [{"from": "human", "value": q}, _function_call(n, a), {"from": "observation", "value": "r"}, {"from": "gpt", "value": "ok"}], "tools": "[]"}
    for q, n, a in (("a", "f", {"x": 1}), ("b", "g", {"y": "s"}))
]  # fmt: skip
TOOL_ENTRY = {"tc": {"file_name": "tc.jsonl", "formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}}


def test_tool_calls_converted_to_trl_messages_validate_clean_and_load_with_datasets_5(tmp_path, capsys):
    folder = _write(tmp_path / "tc", TOOL_ENTRY, {"tc.jsonl": TOOL_ROWS})
    out = tmp_path / "tc.trl.jsonl"
    code, text = run_cli_joined(capsys, "convert", folder, "--entry", "tc", "--to", "trl-messages", "-o", out)
    assert code == 0, text
    code, text = run_cli_joined(capsys, "validate", out, "--form", "trl-messages")
    assert code == 0 and not _codes(text) & {"FMT802", "FMT807", "FMT810"}, text
    # detected as a bare messages file (LLaMA-Factory's openai form or TRL's): what only datasets 4.0 minds is a warning
    code, text = run_cli_joined(capsys, "validate", out)
    assert code == 0 and "FMT813" in text and "FMT810 error" not in text, text
    datasets = pytest.importorskip("datasets")
    assert hasattr(datasets, "Json"), datasets.__version__  # TRL 1.16 needs datasets>=4.7
    rows = list(datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")))
    args = [m["tool_calls"][0]["function"]["arguments"] for r in rows for m in r["messages"] if m.get("tool_calls")]
    assert args == [{"x": 1}, {"y": "s"}]  # as written: no keys filled with null


def test_the_same_file_through_a_llamafactory_entry_is_still_an_error(tmp_path, capsys):
    call = lambda a: {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": a}}]}  # noqa: E731
    rows = [{"messages": [{"role": "user", "content": q}, call(a), {"role": "tool", "content": "r"}, {"role": "assistant", "content": "ok"}]}
            for q, a in (("a", {"x": 1}), ("b", {"y": "s"}))]  # fmt: skip
    tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}
    folder = _write(tmp_path / "oa", {"oa": {"file_name": "oa.jsonl", "formatting": "openai", "columns": {"messages": "messages"}, "tags": tags}}, {"oa.jsonl": rows})
    code, text = run_cli_joined(capsys, "validate", folder)
    assert code == 1 and "FMT810 error" in text and "FMT813" not in text, text


# ---- 3. a conversion that writes nothing fails ------------------------------------------------------


@pytest.mark.parametrize("register", [False, True], ids=["output", "register"])
def test_convert_that_writes_nothing_exits_1_and_leaves_no_file(tmp_path, capsys, register):
    folder = _write(tmp_path / "pt", {"p": {"file_name": "p.jsonl", "columns": {"prompt": "text"}}}, {"p.jsonl": [{"text": "Some pretraining text."}]})
    info = (folder / "dataset_info.json").read_text()
    out = tmp_path / "out.jsonl"
    args = ["--register"] if register else ["-o", out]
    code, text = run_cli_joined(capsys, "convert", folder, "--entry", "p", "--to", "sharegpt", *args)
    assert code == 1, text
    assert "nothing written: sharegpt can hold none of the 1 records read" in " ".join(text.split())
    assert not out.exists() and not (folder / "p_sharegpt.jsonl").exists()
    assert (folder / "dataset_info.json").read_text() == info


# ---- 4. LLaMA-Factory's experimental v1 data format: one finding per file ------------------------

V1_SFT = {"messages": [{"role": "user", "content": [{"type": "text", "value": "hi"}], "loss_weight": 0.0},
                       {"role": "assistant", "content": [{"type": "text", "value": "Hello"}], "loss_weight": 1.0}]}  # fmt: skip
V1_DPO = {"chosen_messages": V1_SFT["messages"], "rejected_messages": [V1_SFT["messages"][0], {"role": "assistant", "content": [{"type": "text", "value": "Go away"}]}]}


@pytest.mark.parametrize(("row", "kind"), [(V1_SFT, "sft"), (V1_DPO, "dpo")], ids=["sft", "dpo"])
def test_a_v1_file_gets_one_finding_not_one_per_record(tmp_path, capsys, row, kind):
    path = _write(tmp_path, None, {"v1.jsonl": [{**row, "id": i} for i in range(50)]}) / "v1.jsonl"
    code, text = run_cli_joined(capsys, "validate", path, "--output-format", "json")
    found = json.loads(text)["findings"]
    assert code == 1 and [f["code"] for f in found] == ["FMT208"], found
    assert f"v1 data format ({kind} samples, USE_V1=1)" in found[0]["message"]
    code, text = run_cli_joined(capsys, "convert", path, "--to", "sharegpt", "-o", tmp_path / "o.jsonl")
    assert code == 2 and "FMT208" in text and not (tmp_path / "o.jsonl").exists()


def test_the_v1_shape_is_llamafactory_v1s_own(tmp_path):
    """The shape fmtkit detects is the one LLaMA-Factory's v1 types declare."""
    python = require_lf_python()
    code = ("import json, typing; from llamafactory.v1.utils import types as t; "
            "print(json.dumps({n: sorted(typing.get_type_hints(getattr(t, n))) for n in ('Content', 'Message', 'SFTSample', 'DPOSample')}))")  # fmt: skip
    run = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, env=_clean_env(), timeout=120)
    hints = json.loads(run.stdout.strip().splitlines()[-1])
    assert hints["Content"] == ["type", "value"] and hints["Message"] == ["content", "loss_weight", "role"]
    assert {"messages"} <= set(hints["SFTSample"]) and {"chosen_messages", "rejected_messages"} <= set(hints["DPOSample"])
    from fmtkit.detect import v1_record

    assert set(V1_SFT["messages"][0]) == set(hints["Message"]) and set(V1_SFT["messages"][0]["content"][0]) == set(hints["Content"])
    assert (v1_record(V1_SFT), v1_record(V1_DPO)) == ("sft", "dpo")


# ---- 5. ranking: true without chosen/rejected mapped: one finding, worded as LLaMA-Factory fails -----

RANK_ENTRY = {"r": {"file_name": "r.jsonl", "ranking": True}}
RANK_ROW = {"instruction": "Hi", "input": "", "chosen": "Hello", "rejected": "Go away"}


def test_unmapped_ranking_columns_are_one_finding_that_says_what_llamafactory_does(tmp_path, capsys):
    folder = _write(tmp_path / "r", RANK_ENTRY, {"r.jsonl": [RANK_ROW]})
    code, text = run_cli_joined(capsys, "validate", folder, "--output-format", "json")
    found = json.loads(text)["findings"]
    assert code == 1 and [f["code"] for f in found] == ["FMT111"], found  # no FMT300 "'chosen' is a required property", no FMT804
    assert found[0]["message"].endswith("LLaMA-Factory stops loading the entry with KeyError: None")


def test_llamafactory_stops_with_key_error_on_unmapped_ranking_columns(tmp_path):
    python = require_lf_python()
    folder = _write(tmp_path / "r", RANK_ENTRY, {"r.jsonl": [RANK_ROW]})
    assert _lf_load(python, folder, "r") == {"error": "KeyError: None"}


def test_fmt804_names_the_rules_and_does_not_claim_every_record_is_dropped(tmp_path, capsys):
    folder = _write(tmp_path / "url", URL_ENTRY, {"m.jsonl": [URL_ROW]})
    code, text = run_cli_joined(capsys, "validate", folder, "--output-format", "json")
    f804 = [f for f in json.loads(text)["findings"] if f["code"] == "FMT804"]
    assert code == 1 and len(f804) == 1
    assert "(FMT607)" in f804[0]["message"] and "drop" not in f804[0]["fix"]


# ---- 6. hub entries are said once; 7. the one-line summary of -q names the bare file ---------------------

HUB_INFO = {"a": {"hf_hub_url": "org/a"}, "b": {"hf_hub_url": "org/b"}, "c": {"file_name": "c.jsonl"}}


def test_hub_entries_are_reported_once(tmp_path, capsys):
    folder = _write(tmp_path / "hub", HUB_INFO, {"c.jsonl": [{"instruction": "Hi", "input": "", "output": "Hello"}]})
    code, text = run_cli_joined(capsys, "validate", folder, "--max-per-rule", "1")
    assert code == 0 and text.count("'org/") == 1 and "1 more FMT114" in text, text
    assert "not checked locally (" not in text
    code, text = run_cli_joined(capsys, "validate", folder, "--ignore", "FMT114")  # no FMT114 shown: one line names them
    assert code == 0 and text.count("not checked locally") == 1 and "'a', 'b'" in text, text


def test_quiet_summary_names_the_bare_file(tmp_path, capsys):
    path = _write(tmp_path, None, {"d.jsonl": [{"instruction": "Hi", "input": "", "output": ""}, {"instruction": 1}]}) / "d.jsonl"
    code, out, _ = run_cli(capsys, "validate", "-q", path)
    assert code == 1 and out.strip().splitlines()[-1].endswith(f"in {path}"), out



V1_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}


def test_a_v1_file_of_an_entry_gets_one_finding(tmp_path, capsys):
    info = {"v": {"file_name": "v1.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": V1_TAGS}}
    folder = _write(tmp_path / "v1", info, {"v1.jsonl": [{**V1_SFT, "id": i} for i in range(30)]})
    code, text = run_cli_joined(capsys, "validate", folder, "--output-format", "json")
    found = json.loads(text)["findings"]
    assert code == 1 and [(f["code"], f["file"]) for f in found] == [("FMT208", "v1.jsonl")], found


def test_llamafactory_0_9_keeps_v1_content_parts_and_its_formatter_refuses_them(tmp_path):
    python = require_lf_python()
    info = {"v": {"file_name": "v1.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": V1_TAGS}}
    folder = _write(tmp_path / "v1", info, {"v1.jsonl": [V1_SFT]})
    assert _lf_load(python, folder, "v")[0]["_prompt"] == [{"role": "user", "content": [{"type": "text", "value": "hi"}]}]
    code = ("from llamafactory.data.formatter import StringFormatter\n"
            "try:\n    StringFormatter(slots=['{{content}}']).apply(content=[{'type': 'text', 'value': 'hi'}])\n"
            "except RuntimeError as e:\n    print(e)")  # fmt: skip
    run = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert run.stdout.strip().splitlines()[-1].startswith("Expected a string")

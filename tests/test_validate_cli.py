"""``fmtkit validate`` through the real command line: exit codes, outputs, options, and no heavy imports.

Most cases call the console entry point (:func:`fmtkit.cli.main`) in this
process (fast, and an unexpected exception fails with its traceback); the
import checks and a smoke run use a fresh interpreter.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "dataset"
HEAVY = ("torch", "transformers", "datasets", "ray")
FINDING_KEYS = {"code", "severity", "message", "fix", "file", "line", "record", "entry", "column", "pointer", "path"}
SUMMARY_KEYS = {"root", "entries", "files", "records", "errors", "warnings", "infos", "by_rule", "not_checked", "detected_forms", "notes", "stage"}
FILE_KEYS = {"file", "entry", "form", "records"}


run = run_cli


def run_json(capsys, *args) -> tuple[int, dict]:
    code, out, err = run(capsys, "validate", *args, "--output-format", "json")
    assert "Traceback" not in err
    return code, json.loads(out)


def errors(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f["severity"] == "error"]


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    """A copy of the bundled dataset folder to break."""
    dst = tmp_path / "dataset"
    shutil.copytree(DATASET, dst)
    return dst


def set_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- the bundled folder ------------------------------------------------------------


def test_bundled_dataset_is_clean(capsys):
    code, out, err = run(capsys, "validate", DATASET)
    assert code == 0, out + err
    assert "no errors" in out


def test_readme_documents_the_json_output():
    readme = (DATASET.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("### JSON output", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    doc = json.loads(block)
    assert set(doc) == {"version", "findings", "files", "summary"}
    assert set(doc["summary"]) == SUMMARY_KEYS
    assert set(doc["findings"][0]) == FINDING_KEYS and set(doc["files"][0]) == FILE_KEYS


def test_json_output_shape(capsys):
    code, data = run_json(capsys, DATASET)
    assert code == 0
    assert set(data) == {"version", "findings", "files", "summary"} and data["version"] == 2
    assert data["findings"], "the bundled folder has info-level findings (FMT805, FMT114)"
    for f in data["findings"]:
        assert set(f) == FINDING_KEYS
        assert f["severity"] in ("error", "warning", "info")
        assert f["code"].startswith("FMT") and len(f["code"]) == 6
        assert f["line"] is None or (isinstance(f["line"], int) and f["line"] >= 1)
        assert f["record"] is None or (isinstance(f["record"], int) and f["record"] >= 0)
        assert isinstance(f["message"], str) and isinstance(f["fix"], str)
    for f in data["files"]:
        assert set(f) == FILE_KEYS
    s = data["summary"]
    assert set(s) == SUMMARY_KEYS
    assert s["errors"] == 0 and s["entries"] == 13 and s["files"] == len(data["files"])
    assert s["records"] == sum(f["records"] for f in data["files"]) > 0
    assert sum(s["by_rule"].values()) == len(data["findings"]) == s["errors"] + s["warnings"] + s["infos"]
    assert s["not_checked"] == ["remote_example"]
    assert s["stage"] is None
    # findings are sorted by file, then line
    keys = [(f["file"] or "", f["line"] or 0) for f in data["findings"]]
    assert keys == sorted(keys)


# -- broken copies ---------------------------------------------------------------------


def test_broken_records_report_code_file_line_record(capsys, ds):
    set_line(ds / "sharegpt_demo.jsonl", 2, '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}')
    set_line(ds / "openai_demo.jsonl", 1, '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": 5}]}')
    set_line(ds / "pretrain_demo.jsonl", 3, '{"text": "cut off')
    code, data = run_json(capsys, ds)
    assert code == 1
    got = {(f["code"], f["file"], f["line"], f["record"], f["entry"]) for f in errors(data)}
    assert ("FMT402", "sharegpt_demo.jsonl", 2, 1, "sharegpt_demo") in got
    assert ("FMT405", "openai_demo.jsonl", 1, 0, "openai_demo") in got
    assert ("FMT201", "pretrain_demo.jsonl", 3, 2, "pretrain_demo") in got
    assert data["summary"]["errors"] == len(errors(data)) >= 3
    assert data["summary"]["by_rule"]["FMT402"] >= 1


def test_broken_json_array_line_numbers(capsys, ds):
    text = (ds / "alpaca_demo.json").read_text(encoding="utf-8")
    records = json.loads(text)
    records[3]["output"] = ["not", "a", "string"]
    (ds / "alpaca_demo.json").write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    code, data = run_json(capsys, ds, "--entry", "alpaca_demo")
    assert code == 1
    [f] = [f for f in errors(data) if f["record"] == 3 and f["code"].startswith("FMT3")]
    assert f["file"] == "alpaca_demo.json" and f["pointer"] == "/output"
    [drift] = [g for g in errors(data) if g["code"] == "FMT802"]
    lines = (ds / "alpaca_demo.json").read_text(encoding="utf-8").splitlines()
    assert lines[drift["line"] - 1].strip() == "{", "FMT802 (no pointer): the line where record 3 starts"
    assert lines[f["line"] - 1].strip() == '"output": [' and lines[f["line"] - 1][f["column"] - 1] == "[", "FMT302: the line and column of the value"


def test_broken_dataset_info(capsys, ds):
    info = json.loads((ds / "dataset_info.json").read_text())
    info["sharegpt_demo"]["formating"] = info["sharegpt_demo"].pop("formatting")
    info["alpaca_demo"]["file_name"] = "missing.json"
    (ds / "dataset_info.json").write_text(json.dumps(info, indent=2))
    code, data = run_json(capsys, ds)
    assert code == 1
    got = {(f["code"], f["entry"]) for f in data["findings"] if f["file"] == "dataset_info.json"}
    assert ("FMT112", "alpaca_demo") in got
    assert any(e == "sharegpt_demo" for _, e in got), got


def test_github_output(capsys, ds):
    set_line(ds / "sharegpt_demo.jsonl", 2, '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}')
    code, out, _ = run(capsys, "validate", ds, "--output", "github")
    assert code == 1
    lines = out.splitlines()
    [err] = [ln for ln in lines if ln.startswith("::error ") and "FMT402" in ln]
    col = (ds / "sharegpt_demo.jsonl").read_text(encoding="utf-8").splitlines()[1].index('"bot"') + 1
    assert err.startswith(f"::error file={ds / 'sharegpt_demo.jsonl'},line=2,col={col},title=FMT402::")
    assert "(record 1) at /conversations/1/from" in err and "Fix: " in err
    assert any(ln.startswith("::notice ") for ln in lines), "info findings become notices"
    assert lines[-1].startswith("fmtkit: ") and "errors" in lines[-1]
    for ln in lines[:-1]:
        assert ln.startswith(("::error ", "::warning ", "::notice ")) and "\n" not in ln


def test_quiet_shows_only_errors(capsys, ds):
    code, out, _ = run(capsys, "validate", ds, "--quiet")
    assert code == 0
    assert "FMT805" not in out and "FMT114" not in out and "checked" not in out
    set_line(ds / "sharegpt_demo.jsonl", 2, '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}')
    code, out, _ = run(capsys, "validate", ds, "-q")
    assert code == 1
    assert "FMT402" in out and "FMT805" not in out
    code, data = run_json(capsys, ds, "--quiet")
    assert {f["severity"] for f in data["findings"]} == {"error"}


def test_stage_dpo_on_sft_entry(capsys):
    code, data = run_json(capsys, DATASET, "--entry", "alpaca_demo", "--stage", "dpo")
    assert code == 1
    [f] = errors(data)
    assert (f["code"], f["entry"], f["file"]) == ("FMT901", "alpaca_demo", "dataset_info.json")
    assert f["line"] == 2
    assert data["summary"]["stage"] == "dpo"


def test_stage_dpo_on_preference_entry_is_fine(capsys):
    code, data = run_json(capsys, DATASET, "--entry", "alpaca_preference_demo,sharegpt_preference_demo", "--stage", "dpo")
    assert code == 0, errors(data)
    assert data["summary"]["entries"] == 2


def test_entry_typo_did_you_mean(capsys):
    """An --entry typo is a usage error (exit 2), with the message every command gives."""
    code, out, err = run(capsys, "validate", DATASET, "--entry", "sharegpt_dmeo", "--output-format", "json")
    assert code == 2 and out == ""
    assert f"{DATASET / 'dataset_info.json'}: undefined dataset 'sharegpt_dmeo'" in err
    assert "did you mean 'sharegpt_demo'" in err and "Traceback" not in err


def test_entry_file_name_instead_of_entry_name(capsys):
    code, out, err = run(capsys, "validate", DATASET, "--entry", "alpaca_demo.json")
    assert code == 2
    assert "that is a file name; the entry reading it is 'alpaca_demo'" in err


def test_bare_file_names_the_detected_form(capsys, tmp_path):
    p = tmp_path / "chat.jsonl"
    p.write_text('{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}\n', encoding="utf-8")
    code, out, _ = run(capsys, "validate", p)
    assert code == 0, out
    assert "chat.jsonl: detected form sharegpt" in out
    code, data = run_json(capsys, p)
    assert code == 0 and errors(data) == []
    assert data["summary"]["detected_forms"] == {"chat.jsonl": "sharegpt"}
    assert data["files"] == [{"file": "chat.jsonl", "entry": None, "form": "sharegpt", "records": 1}]


def test_bare_file_with_unknown_form(capsys, tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"foo": 1}\n', encoding="utf-8")
    code, data = run_json(capsys, p)
    assert code == 1
    assert "FMT207" in {f["code"] for f in data["findings"]}


def test_form_forces_the_form(capsys, tmp_path):
    p = tmp_path / "chat.jsonl"
    p.write_text('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n', encoding="utf-8")
    code, data = run_json(capsys, p)
    assert code == 0 and data["summary"]["detected_forms"] == {"chat.jsonl": "openai"}
    code, data = run_json(capsys, p, "--form", "sharegpt")
    assert code == 1
    assert data["summary"]["detected_forms"] == {}
    assert data["files"][0]["form"] == "sharegpt"
    assert {f["code"] for f in errors(data)} & {"FMT401", "FMT801"}


def test_data_file_of_an_entry_uses_the_entry(capsys):
    code, data = run_json(capsys, DATASET / "sharegpt_demo.jsonl")
    assert code == 0
    assert data["files"] == [{"file": "sharegpt_demo.jsonl", "entry": "sharegpt_demo", "form": "sharegpt", "records": 5}]
    assert data["summary"]["detected_forms"] == {}


def test_missing_path_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "validate", tmp_path / "nope")
    assert code == 2
    assert "no such file or folder" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["--form", "nope"], ["--stage", "nope"], ["--output-format", "xml"], ["--jobs", "0"], []],
    ids=["unknown-option", "bad-form", "bad-stage", "bad-output", "bad-jobs", "no-path"],
)
def test_bad_option_exit_2(capsys, args):
    code, out, err = run(capsys, "validate", *(args if args == [] else [DATASET, *args]))
    assert code == 2
    assert "Traceback" not in err and err.strip()


def test_multiple_paths_worst_exit_code(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversations": []}\n', encoding="utf-8")
    code, out, _ = run(capsys, "validate", DATASET, bad, "-q")
    assert code == 1


# -- --jobs --------------------------------------------------------------------------


DEFECTS = [
    lambda t: t[-1].update({"from": "bot"}),  # FMT402
    lambda t: t.pop(),  # FMT404
    lambda t: t[0].update({"value": "  "}),  # FMT406
    lambda t: t[1].update({"value": 5}),  # FMT405
    lambda t: t[1].update({"valeu": "x"}),  # FMT407
    lambda t: t[0].update({"value": "<image> what?"}),  # FMT602
    lambda t: t.insert(0, {"from": "system", "value": "Be brief."}),  # fine, or FMT408 beside a system column
    lambda t: t[1].update({"from": "function_call", "value": "{not json"}),  # FMT702
    lambda t: t[1].update({"weight": 0.5}),  # FMT409
    lambda t: t.append({"from": "system", "value": "late"}),  # FMT403 / FMT404
]


def defect_file(path: Path, min_bytes: int, seed: int = 7) -> Path:
    """ShareGPT JSON Lines with a defect every few records, duplicates far apart, a broken line and a blank line."""
    rng = random.Random(seed)
    lines, size, i = [], 0, 0
    while size < min_bytes:
        turns = [{"from": "human" if t % 2 == 0 else "gpt", "value": f"r{i} t{t} " + "x中" * rng.randint(10, 150)} for t in range(rng.choice((2, 4)))]
        rec = {"conversations": turns}
        if rng.random() < 0.1:
            rec["system"] = "You are helpful."
        if rng.random() < 0.05:
            rec["tools"] = rng.choice(["", "[]", '[{"name": "f"}]', "[{bad"])
        if i % 37 == 5:
            rng.choice(DEFECTS)(turns)
        line = json.dumps(rec, ensure_ascii=False)
        lines.append(line)
        size += len(line.encode()) + 1
        i += 1
    n = len(lines)
    lines[n - 3] = lines[10]  # duplicate across shards
    lines[n // 2] = "{broken"  # FMT201
    lines.insert(n // 3, "")  # a blank line shifts the line numbers after it
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fast_path_reports_exactly_what_the_rules_report(tmp_path, monkeypatch):
    import fmtkit
    from fmtkit import record_loop as check

    p = defect_file(tmp_path / "d.jsonl", 400_000)
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "chat": {"file_name": "d.jsonl", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}},
        "plain": {"file_name": "d.jsonl", "formatting": "sharegpt"},
    }))  # fmt: skip
    pairs = tmp_path / "pairs" / "d.jsonl"  # the same records as preference pairs: the last turn answered twice
    pairs.parent.mkdir()
    with pairs.open("w", encoding="utf-8") as fh:
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()):
            rec = json.loads(line) if line.startswith("{") and line.endswith("}") else None
            turns = rec.get("conversations") if rec else None
            if type(turns) is list and turns and type(turns[-1]) is dict:
                rec["chosen"], rec["rejected"] = turns[-1], dict(turns[-1], value=f"other {i}") if i % 9 else turns[-1]
                rec["conversations"] = turns[:-1] if i % 17 else turns
            fh.write((json.dumps(rec, ensure_ascii=False) if rec else line) + "\n")
    targets = [(tmp_path, None), (p, "sharegpt"), (p, "openai"), (p, "sharegpt-kto"), (pairs, "sharegpt-preference"), (DATASET, None)]
    fast = [fmtkit.validate(t, form=f, stage="sft").to_dict() for t, f in targets]
    monkeypatch.setattr(check._CleanConversation, "make", classmethod(lambda cls, *a, **k: None))
    slow = [fmtkit.validate(t, form=f, stage="sft").to_dict() for t, f in targets]
    assert fast[0]["summary"]["errors"] > 20 and len(fast[0]["summary"]["by_rule"]) >= 8
    assert fast == slow


def alpaca_defect_file(path: Path, n: int, seed: int = 7) -> Path:
    """Alpaca records (SFT, preference, KTO and pretrain columns side by side) with a defect every few records."""
    rng = random.Random(seed)
    defects = [("output", " "), ("output", 3), ("instruction", ""), ("instruction", None), ("input", "<image> here"), ("output", "see <audio>"),
               ("system", ["x"]), ("history", "h"), ("history", [["a"]]), ("chosen", ""), ("text", "<video>"), ("kto_tag", "yes"), ("images", "a.png")]  # fmt: skip
    lines = []
    for i in range(n):
        rec = {"instruction": f"q{i} " + "x" * rng.randint(1, 40), "input": rng.choice(["", "a < b"]), "output": f"a{i}",
               "chosen": "c", "rejected": "r", "kto_tag": True, "text": f"t{i}"}  # fmt: skip
        if i % 7 == 3:
            key, value = rng.choice(defects)
            rec[key] = value
        lines.append(json.dumps(rec, ensure_ascii=False))
    lines[n - 3] = lines[10]  # a duplicate
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_alpaca_fast_path_reports_exactly_what_the_rules_report(tmp_path, monkeypatch):
    import fmtkit
    from fmtkit import record_loop as check

    p = alpaca_defect_file(tmp_path / "d.jsonl", 3000)
    targets = [(p, "alpaca"), (p, "alpaca-preference"), (p, "alpaca-kto"), (p, "alpaca-pretrain"), (DATASET, None)]
    fast = [fmtkit.validate(t, form=f, stage="sft").to_dict() for t, f in targets]
    monkeypatch.setattr(check._CleanAlpaca, "make", classmethod(lambda cls, *a, **k: None))
    slow = [fmtkit.validate(t, form=f, stage="sft").to_dict() for t, f in targets]
    assert fast[0]["summary"]["errors"] > 50 and {"FMT302", "FMT303", "FMT605"} <= set(fast[0]["summary"]["by_rule"])
    assert fast == slow


def test_trl_strings_fast_path_reports_exactly_what_the_rules_report(tmp_path, monkeypatch):
    import fmtkit
    from fmtkit import record_loop as check

    p = alpaca_defect_file(tmp_path / "d.jsonl", 2000)
    rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
    shapes = [("text",), ("prompt",), ("prompt", "completion"), ("prompt", "completion", "label"), ("prompt", "chosen", "rejected")]
    for i, r in enumerate(rows):  # each TRL form's columns in turn, with the same defects now and then
        r["prompt"], r["completion"], r["label"] = r.pop("instruction"), r.pop("output"), r.pop("kto_tag")
        rows[i] = {k: r[k] for k in shapes[i % len(shapes)] + (("text",) if i % 11 == 0 else ()) if k in r}
        if i % 13 == 4:
            rows[i]["chosen"] = rows[i]["rejected"] = "same"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    forms = list(check._CleanStrings.COLUMNS)
    fast = [fmtkit.validate(p, form=f).to_dict() for f in forms]
    monkeypatch.setattr(check._CleanStrings, "make", classmethod(lambda cls, *a, **k: None))
    slow = [fmtkit.validate(p, form=f).to_dict() for f in forms]
    assert all(r["summary"]["records"] == 2000 for r in fast) and sum(r["summary"]["errors"] for r in fast) > 100
    assert fast[forms.index("trl-preference")]["summary"]["by_rule"].get("FMT502")
    assert fast == slow


def test_jobs_2_finds_the_same_as_jobs_1(capsys, tmp_path):
    """A file above the sharding threshold, with defects in every shard and duplicates across shards."""
    from fmtkit.record_loop import SHARD_MIN_BYTES

    p = defect_file(tmp_path / "big.jsonl", int(SHARD_MIN_BYTES * 1.3))
    _, one = run_json(capsys, p, "--form", "sharegpt")
    _, two = run_json(capsys, p, "--form", "sharegpt", "--jobs", "2")
    assert one["summary"]["errors"] > 5
    assert {"FMT201", "FMT402", "FMT404", "FMT406", "FMT803"} <= set(one["summary"]["by_rule"])
    assert one == two


# -- no heavy imports ----------------------------------------------------------------


def _imported_after(code: str) -> list[str]:
    probe = (
        "import sys\n"
        "from fmtkit.cli import main\n"
        "try:\n"
        f"    {code}\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY=' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})), file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("HEAVY=")]
    return [m for m in line[len("HEAVY=") :].split(",") if m]


def test_help_imports_no_heavy_module():
    assert _imported_after("main(['--help'])") == []


def test_validate_imports_no_heavy_module():
    assert _imported_after(f"main(['validate', {str(DATASET)!r}, '-q', '--stage', 'sft'])") == []


def test_console_script_smoke():
    exe = shutil.which("fmtkit", path=str(Path(sys.executable).parent))
    assert exe is not None, "the fmtkit console script is not installed beside this Python"
    r = subprocess.run([exe, "validate", str(DATASET), "--output", "json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["errors"] == 0
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "validate" in r.stdout


def test_jobs_2_on_a_small_file_with_bom_blank_and_broken_lines(tmp_path, monkeypatch):
    import fmtkit
    from fmtkit import record_loop as check

    monkeypatch.setattr(check, "SHARD_MIN_BYTES", 1)  # shard even a small file
    p = defect_file(tmp_path / "d.jsonl", 60_000)
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes() + b"\n  \n{bad\n")
    one = fmtkit.validate(p, form="sharegpt").to_dict()
    two = fmtkit.validate(p, form="sharegpt", jobs=2).to_dict()
    assert {"FMT204", "FMT201"} <= set(one["summary"]["by_rule"])
    assert one == two


def test_duplicate_index_is_bounded_and_says_so(tmp_path, monkeypatch):
    """Past DUPLICATE_LIMIT records FMT803 stops indexing (memory stays bounded) and the report says how far it looked."""
    import fmtkit
    from fmtkit.rules import whole_file

    rows = [{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(4)] + [{"instruction": "q0", "input": "", "output": "a"}]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [f.record for f in fmtkit.validate(p).findings if f.code == "FMT803"] == [4]
    monkeypatch.setattr(whole_file, "DUPLICATE_LIMIT", 3)
    report = fmtkit.validate(p)
    assert not [f for f in report.findings if f.code == "FMT803"]
    assert report.summary["notes"] == ["d.jsonl: duplicates (FMT803) checked among 3 of 5 records"]


def test_every_duplicate_is_counted_and_a_capped_list_says_so(tmp_path):
    """1,201 duplicates: the first 1,000 are listed (DUPLICATE_FINDINGS) and the notes give the full count."""
    import fmtkit

    p = tmp_path / "d.jsonl"
    p.write_text('{"instruction": "q", "input": "", "output": "a"}\n' * 1202)
    report = fmtkit.validate(p)
    listed = [f.record for f in report.findings if f.code == "FMT803"]
    assert listed == list(range(1, 1001))
    assert report.summary["notes"] == ["d.jsonl: 1,201 duplicates (FMT803), the first 1,000 listed"]
    p.write_text('{"instruction": "q", "input": "", "output": "a"}\n' * 1001)
    assert fmtkit.validate(p).summary["notes"] == []


def test_a_light_install_gets_an_install_hint_not_a_traceback(tmp_path, capsys, monkeypatch):
    """Without the training stack, a command that needs torch says how to install it (exit 2)."""
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as on a light install
    code, out, err = run(capsys, "export", "--adapter", tmp_path, "-o", tmp_path / "merged")
    assert code == 2
    assert "needs torch" in err and "pip install torch==2.13.0" in err and "Traceback" not in err

"""``fmtkit validate --fix / --diff``: each safe fix on its rule's failing example, and what is written where."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli

from fmtkit.fixes import FIXES
from fmtkit.rules import load_all
from fmtkit.rules.examples import parse_examples
from fmtkit.validation import validate

REPO = Path(__file__).resolve().parent.parent


def failing_example(code: str, folder: Path) -> tuple[Path, dict]:
    [example] = [e for e in parse_examples(load_all()[code].doc) if e.kind == "fail"]
    return example.build(folder)


def test_fmt402_failing_example_has_no_safe_fix(capsys, tmp_path):
    """FMT402's documented failure is a system message in an entry without a system tag: there is no tag to
    write, so nothing is fixed (the other-tag-set case is fixed in test_fix_writes_a_copy_and_reports_the_rest)."""
    path, kwargs = failing_example("FMT402", tmp_path / "ds")
    assert kwargs == {}
    code, out, err = run_cli(capsys, "validate", path, "--isolated", "--diff")
    assert (code, out) == (0, "") and "0 findings have a safe fix" in err


@pytest.mark.parametrize("code", sorted(set(FIXES) - {"FMT402"}))
def test_fix_on_the_rules_failing_example(code, capsys, tmp_path, monkeypatch):
    """--fix --in-place repairs the failing example: it then validates clean of the code, with a backup kept."""
    path, kwargs = failing_example(code, tmp_path / "ds")
    assert code in {f.code for f in validate(path, **kwargs).findings}
    data = sorted(p for p in (tmp_path / "ds").rglob("demo.*"))
    before = {p: p.read_bytes() for p in data}
    monkeypatch.chdir(tmp_path)
    args = [path, "--isolated", "--select", code] + (["--entry", kwargs["entries"][0]] if kwargs.get("entries") else [])
    code_, out, err = run_cli(capsys, "validate", *args, "--diff")
    assert code_ == 1 and out.startswith("--- a/") and "+++ b/" in out, err
    assert {p: p.read_bytes() for p in data} == before, "--diff writes nothing"
    code_, out, err = run_cli(capsys, "validate", *args, "--fix", "--in-place")
    assert code_ == 0 and "fmtkit: fixed 1 finding" in err, out + err
    assert code not in {f.code for f in validate(path, **kwargs).findings}
    changed = [p for p in data if p.read_bytes() != before[p]]
    assert len(changed) == 1
    backup = tmp_path / ".fmtkit-backup" / changed[0].relative_to(tmp_path)
    assert backup.read_bytes() == before[changed[0]]
    # the fix changes only the value (and the BOM): every other record and key is as it was
    old, new = before[changed[0]].decode("utf-8-sig"), changed[0].read_text(encoding="utf-8")
    assert len(old.splitlines()) == len(new.splitlines())
    assert sum(a != b for a, b in zip(old.splitlines(), new.splitlines(), strict=True)) <= 1


def test_fixed_values(tmp_path):
    from fmtkit.dataset_info import DatasetEntry

    role, kto, media = FIXES["FMT402"][1], FIXES["FMT503"][1], FIXES["FMT601"][1]
    sharegpt = DatasetEntry.from_dict("d", {"file_name": "d.jsonl", "formatting": "sharegpt"})
    openai = DatasetEntry.for_file("openai")
    assert [role(r, sharegpt) for r in ("user", "assistant", "tool", "system", "bot", "human")] == ["human", "gpt", "observation", None, None, None]
    assert [role(r, openai) for r in ("human", "gpt", "observation", "user")] == ["user", "assistant", "tool", None]
    assert [kto(v, None) for v in ("true", "False", "yes", 1, True)] == [True, False, None, None, None]
    assert media("a.png", None) == ["a.png"] and media(["a.png"], None) is None


def test_fix_writes_a_copy_and_reports_the_rest(capsys, tmp_path, monkeypatch):
    ds = tmp_path / "data"
    shutil.copytree(REPO / "dataset", ds)
    chat = ds / "sharegpt_demo.jsonl"
    lines = chat.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace('"from": "human"', '"from": "user"', 1)  # fixable: the OpenAI spelling
    lines[1] = '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}'  # not
    chat.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode())
    original = chat.read_bytes()
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "validate", "data", "--isolated", "--fix", "--output-format", "json")
    assert chat.read_bytes() == original, "without --in-place the input is not changed"
    copy = tmp_path / "fmtkit-fixed" / "data" / "sharegpt_demo.jsonl"
    assert "fixed 2 findings (FMT204, FMT402) in data/sharegpt_demo.jsonl -> fmtkit-fixed/data/sharegpt_demo.jsonl" in err
    fixed = copy.read_bytes()
    assert not fixed.startswith(b"\xef\xbb\xbf")
    assert fixed.decode().splitlines()[0] == lines[0].replace('"user"', '"human"')
    assert fixed.decode().splitlines()[1:] == lines[1:]
    assert code == 1, "FMT402 'bot' has no safe fix and is still reported"
    assert [(f["code"], f["line"]) for f in json.loads(out)["findings"] if f["severity"] == "error"] == [("FMT402", 2)]


def test_in_place_needs_fix(capsys):
    code, _, err = run_cli(capsys, "validate", REPO / "dataset", "--in-place")
    assert code == 2 and "--in-place goes with --fix" in err


def test_diff_of_a_clean_folder_is_empty(capsys):
    code, out, _ = run_cli(capsys, "validate", REPO / "dataset", "--diff", "--isolated")
    assert (code, out) == (0, "")


def test_rules_and_explain_say_which_rules_have_a_fix(capsys):
    code, out, _ = run_cli(capsys, "explain", "FMT601")
    assert code == 0 and "Automatic fix: safe; `fmtkit validate --fix` wraps a single media path in a list" in out
    code, out, _ = run_cli(capsys, "explain", "FMT401")
    assert "Automatic fix: none." in out
    code, out, _ = run_cli(capsys, "rules", "--output-format", "json")
    assert {r["code"] for r in json.loads(out) if r["autofix"] == "safe"} == set(FIXES)


def test_unsafe_fixes_drop_records_only_when_asked(capsys, tmp_path, monkeypatch):
    """FMT803 (a duplicate) and FMT403 (a row LLaMA-Factory drops) go with --unsafe-fixes: the JSON Lines record
    with its line, the array element with its comma; without the flag nothing is dropped."""
    monkeypatch.chdir(tmp_path)  # backups go under the working folder
    hi = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    bad = {"conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "Yo"}]}
    ok = {"conversations": [{"from": "human", "value": "A"}, {"from": "gpt", "value": "B"}]}
    lines = tmp_path / "c.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in (hi, hi, bad, ok)))
    array = tmp_path / "a.json"
    array.write_text(json.dumps([hi, ok, hi], indent=2))
    for path in (lines, array):
        before = path.read_text()
        assert run_cli(capsys, "validate", path, "--isolated", "--diff")[2].count("0 findings have a safe fix") == 1
        code, _, err = run_cli(capsys, "validate", path, "--isolated", "--fix", "--in-place", "--unsafe-fixes")
        assert "fixed" in err and path.read_text() != before
        found = {f.code for f in validate(path).findings}
        assert not found & {"FMT803", "FMT403"}, found
    assert [json.loads(x) for x in lines.read_text().splitlines()] == [hi, ok]
    assert json.loads(array.read_text()) == [hi, ok]
    assert run_cli(capsys, "validate", lines, "--unsafe-fixes")[0] == 2  # it goes with --fix or --diff

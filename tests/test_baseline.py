"""Baselines: accept today's findings by rule, file and record content; report only new ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent
BAD = [
    '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}',  # FMT402
    '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Bye"}]}',  # FMT404
]
GOOD = '{"conversations": [{"from": "human", "value": "Q%d"}, {"from": "gpt", "value": "A"}]}'


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "chat.jsonl").write_text("\n".join([GOOD % 0, BAD[0], GOOD % 1, BAD[1]]) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def findings(capsys, *args) -> tuple[int, list[dict], dict]:
    code, out, err = run_cli(capsys, "validate", "data", "--isolated", "--output-format", "json", *args)
    assert code != 2, err
    data = json.loads(out)
    return code, [(f["code"], f["line"]) for f in data["findings"]], data["summary"]


def test_baseline_hides_accepted_findings_and_survives_inserted_records(capsys, repo):
    code, out, err = run_cli(capsys, "validate", "data", "--isolated", "--write-baseline", "baseline.json")
    assert code == 0 and out == "" and "wrote 2 findings to the baseline baseline.json" in err
    doc = json.loads((repo / "baseline.json").read_text())
    assert doc["version"] == 1 and {r["code"] for r in doc["findings"]} == {"FMT402", "FMT404"}
    assert {r["file"] for r in doc["findings"]} == {"data/chat.jsonl"}, "relative to the baseline's folder"
    assert all(len(r["hash"]) == 64 for r in doc["findings"])
    code, found, summary = findings(capsys, "--baseline", "baseline.json")
    assert (code, found) == (0, [])
    assert "baseline baseline.json: 2 accepted findings hidden" in summary["notes"][0]
    # records inserted above move the old findings to other lines and indices: still accepted
    lines = (repo / "data" / "chat.jsonl").read_text().splitlines()
    new_bad = '{"conversations": [{"from": "human", "value": "New"}, {"from": "robot", "value": "x"}]}'
    (repo / "data" / "chat.jsonl").write_text("\n".join([GOOD % 7, new_bad, *lines]) + "\n")
    code, found, summary = findings(capsys, "--baseline", "baseline.json")
    assert (code, found) == (1, [("FMT402", 2)]), "only the new record is reported"


def test_baseline_says_what_no_longer_occurs(capsys, repo):
    run_cli(capsys, "validate", "data", "--isolated", "--write-baseline", "baseline.json")
    lines = (repo / "data" / "chat.jsonl").read_text().splitlines()
    (repo / "data" / "chat.jsonl").write_text("\n".join([lines[0], lines[2], lines[3]]) + "\n")  # the FMT402 record is fixed
    code, found, summary = findings(capsys, "--baseline", "baseline.json")
    assert (code, found) == (0, [])
    assert summary["notes"][0] == "baseline baseline.json: 1 accepted finding hidden; 1 no longer occur (rewrite it with --write-baseline)"
    code, out, _ = run_cli(capsys, "validate", "data", "--isolated", "--baseline", "baseline.json")
    assert "1 no longer occur" in out


def test_a_changed_record_is_a_new_finding(capsys, repo):
    run_cli(capsys, "validate", "data", "--isolated", "--write-baseline", "baseline.json")
    text = (repo / "data" / "chat.jsonl").read_text().replace('"bot", "value": "Hello"', '"bot", "value": "Hello!"')
    (repo / "data" / "chat.jsonl").write_text(text)
    code, found, _ = findings(capsys, "--baseline", "baseline.json")
    assert (code, found) == (1, [("FMT402", 2)])


def test_baseline_from_the_config_file_is_relative_to_it(capsys, repo, tmp_path):
    (repo / "ci").mkdir()
    run_cli(capsys, "validate", "data", "--isolated", "--write-baseline", "ci/accepted.json")
    (repo / "fmtkit.toml").write_text('baseline = "ci/accepted.json"\n')
    code, out, err = run_cli(capsys, "validate", "data", "--output-format", "json")
    assert code == 0 and json.loads(out)["findings"] == [], err
    code, out, _ = run_cli(capsys, "config", "data")
    assert str(repo / "ci" / "accepted.json") in out


def test_duplicates_are_counted(capsys, repo):
    """Two identical bad records are two baselined findings; a third copy is new."""
    (repo / "data" / "chat.jsonl").write_text("\n".join([BAD[0], BAD[0]]) + "\n")
    run_cli(capsys, "validate", "data", "--isolated", "--select", "FMT402", "--write-baseline", "b.json")
    assert json.loads((repo / "b.json").read_text())["findings"][0]["count"] == 2
    (repo / "data" / "chat.jsonl").write_text("\n".join([BAD[0]] * 3) + "\n")
    code, found, _ = findings(capsys, "--select", "FMT402", "--baseline", "b.json")
    assert code == 1 and len(found) == 1


def test_a_bad_baseline_is_a_usage_error(capsys, repo):
    (repo / "b.json").write_text('{"not": "a baseline"}')
    code, out, err = run_cli(capsys, "validate", "data", "--isolated", "--baseline", "b.json")
    assert code == 2 and "not an fmtkit baseline" in err
    code, out, err = run_cli(capsys, "validate", "data", "--isolated", "--baseline", "missing.json")
    assert code == 2 and "cannot read baseline missing.json" in err


def test_baseline_of_a_json_array_and_a_bundled_folder(capsys, tmp_path, monkeypatch):
    shutil.copytree(REPO / "dataset", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    run_cli(capsys, "validate", "data", "--isolated", "--fail-on", "info", "--write-baseline", "b.json")
    code, out, err = run_cli(capsys, "validate", "data", "--isolated", "--fail-on", "info", "--baseline", "b.json", "--output-format", "json")
    assert code == 0 and json.loads(out)["findings"] == [], err


def test_baseline_of_standard_input(capsys, repo, monkeypatch):
    import io

    def stdin(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))

    stdin(BAD[0] + "\n")
    code, _, err = run_cli(capsys, "validate", "-", "--isolated", "--write-baseline", "b.json")
    assert code == 0 and json.loads((repo / "b.json").read_text())["findings"][0]["file"] == "-"
    stdin(GOOD % 3 + "\n" + BAD[0] + "\n")
    code, out, err = run_cli(capsys, "validate", "-", "--isolated", "--baseline", "b.json")
    assert code == 0, out + err

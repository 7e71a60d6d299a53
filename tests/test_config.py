"""Settings for ``fmtkit validate``: config files found like ruff's, and rule selection on the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "dataset"
BUNDLED_INFO = {"FMT805", "FMT114", "FMT119"}  # the info findings of the bundled folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding a copy of the bundled dataset under data/."""
    shutil.copytree(DATASET, tmp_path / "data")
    return tmp_path


def codes(capsys, *args) -> tuple[int, set[str]]:
    code, out, err = run_cli(capsys, "validate", *args, "--output-format", "json")
    assert "Traceback" not in err
    assert code != 2, err
    return code, {f["code"] for f in json.loads(out)["findings"]}


def test_bundled_findings_are_what_the_tests_assume(capsys):
    assert codes(capsys, DATASET)[1] == BUNDLED_INFO


def test_pyproject_tool_table_is_found_upward(capsys, project, monkeypatch):
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.fmtkit]\nignore = ["FMT805"]\n')
    assert codes(capsys, project / "data")[1] == BUNDLED_INFO - {"FMT805"}
    assert codes(capsys, project / "data" / "sharegpt_demo.jsonl")[1] == set(), "found from a file's folder too"
    assert codes(capsys, project / "data", "--isolated")[1] == BUNDLED_INFO
    code, out, _ = run_cli(capsys, "config", project / "data")
    assert code == 0
    assert f"config file        {project / 'pyproject.toml'}" in out
    assert f'ignore             ["FMT805"]  ({project / "pyproject.toml"})' in out
    assert "select             [\"FMT\"]  (default)" in out


def test_pyproject_without_a_table_is_passed_over(capsys, project):
    (project / "fmtkit.toml").write_text('ignore = ["FMT114"]\n')
    (project / "data" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert codes(capsys, project / "data")[1] == BUNDLED_INFO - {"FMT114"}


def test_dot_fmtkit_toml_wins_over_fmtkit_toml_and_pyproject(capsys, project):
    (project / "pyproject.toml").write_text('[tool.fmtkit]\nignore = ["FMT119"]\n')
    (project / "fmtkit.toml").write_text('ignore = ["FMT114"]\n')
    assert codes(capsys, project / "data")[1] == BUNDLED_INFO - {"FMT114"}
    (project / ".fmtkit.toml").write_text('ignore = ["FMT805"]\n')
    assert codes(capsys, project / "data")[1] == BUNDLED_INFO - {"FMT805"}


def test_config_option_names_the_file(capsys, project, tmp_path):
    other = tmp_path / "ci.toml"
    other.write_text('select = ["FMT8"]\n')
    (project / "fmtkit.toml").write_text('ignore = ["FMT114"]\n')
    assert codes(capsys, project / "data", "--config", other)[1] == {"FMT805"}


def test_all_keys(capsys, project):
    (project / "fmtkit.toml").write_text(
        "\n".join([
            'select = ["FMT1", "FMT8", "FMT9"]',
            'extend-select = ["FMT4"]',
            'ignore = ["FMT114"]',
            'stage = "sft"',
            "jobs = 2",
            'fail-on = "warning"',
            "max-per-rule = 5",
            "[per-file-ignores]",
            '"sharegpt_*.jsonl" = ["FMT805"]',
            "[per-entry-ignores]",
            'openai_demo = ["FMT119"]',
            "[severity]",
            'FMT805 = "warning"',
        ]) + "\n"
    )  # fmt: skip
    code, out, err = run_cli(capsys, "validate", project / "data", "--output-format", "json")
    data = json.loads(out)
    got = {(f["code"], f["file"], f["severity"]) for f in data["findings"]}
    # FMT805 is a warning now, ignored in sharegpt_*.jsonl; FMT119 ignored for openai_demo; FMT114 ignored
    assert {g for g in got if g[0][:4] != "FMT9"} == {("FMT805", "alpaca_demo.json", "warning"), ("FMT805", "openai_demo.jsonl", "warning")}
    assert data["summary"]["stage"] == "sft" and ("FMT901", "dataset_info.json", "error") in got, "stage = sft: preference entries fail it"
    assert code == 1
    code, out, _ = run_cli(capsys, "validate", "--show-settings", project / "data")
    assert code == 0
    for line in ['stage              "sft"', "jobs               2", 'per-file-ignores   {"sharegpt_*.jsonl": ["FMT805"]}', "max-per-rule       5"]:
        assert line in out, out
    assert "disabled rules" in out and "FMT201" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('ignroe = ["FMT805"]\n', "unknown key 'ignroe'; did you mean 'ignore'?"),
        ('ignore = ["FMT8055"]\n', "ignore: unknown rule code or prefix 'FMT8055'; did you mean 'FMT805'?"),
        ('fail-on = "fatal"\n', "fail-on: 'fatal' is not one of error, warning, info"),
        ("jobs = 0\n", "jobs: expected an integer of at least 1, got 0"),
        ('stage = "sfft"\n', "unknown stage 'sfft'"),
        ("[severity]\nFMT805 = 'loud'\n", "severity: expected a table of code -> error | warning | info"),
        ("ignore = [\n", "not valid TOML"),
    ],
    ids=["key", "code", "fail-on", "jobs", "stage", "severity", "toml"],
)
def test_bad_config_is_a_usage_error(capsys, project, text, message):
    (project / "fmtkit.toml").write_text(text)
    code, out, err = run_cli(capsys, "validate", project / "data")
    assert code == 2 and out == ""
    assert message in err and str(project / "fmtkit.toml") in err and "Traceback" not in err


# -- the command line ------------------------------------------------------------------


def test_select_prefix_and_extend_select(capsys):
    assert codes(capsys, DATASET, "--isolated", "--select", "FMT8")[1] == {"FMT805"}
    assert codes(capsys, DATASET, "--isolated", "--select", "fmt8", "--extend-select", "FMT114")[1] == {"FMT805", "FMT114"}


def test_ignore_prefix_and_more_specific_select(capsys):
    assert codes(capsys, DATASET, "--isolated", "--ignore", "FMT1")[1] == {"FMT805"}
    # the longer selector wins: FMT114 is selected though FMT1 is ignored
    assert codes(capsys, DATASET, "--isolated", "--ignore", "FMT1", "--extend-select", "FMT114")[1] == {"FMT805", "FMT114"}
    assert codes(capsys, DATASET, "--isolated", "--ignore", "FMT805,FMT114")[1] == {"FMT119"}


def test_command_line_overrides_config(capsys, project):
    (project / "fmtkit.toml").write_text('select = ["FMT1"]\nfail-on = "info"\n')
    code, found = codes(capsys, project / "data")
    assert (code, found) == (1, {"FMT114", "FMT119"})
    code, found = codes(capsys, project / "data", "--select", "FMT8", "--fail-on", "error")
    assert (code, found) == (0, {"FMT805"})
    code, found = codes(capsys, project / "data", "--ignore", "FMT119")
    assert (code, found) == (1, {"FMT114"}), "--ignore adjusts the file's selection"


def test_unknown_code_is_a_usage_error_with_a_suggestion(capsys):
    code, out, err = run_cli(capsys, "validate", DATASET, "--select", "FMT4022")
    assert code == 2
    assert "--select: unknown rule code or prefix 'FMT4022'; did you mean 'FMT402'?" in err
    code, _, err = run_cli(capsys, "validate", DATASET, "--ignore", "E501")
    assert code == 2 and "unknown rule code or prefix 'E501'" in err


def test_fail_on_and_exit_zero(capsys, tmp_path):
    code, _ = codes(capsys, DATASET, "--isolated")
    assert code == 0, "info findings do not fail by default"
    assert codes(capsys, DATASET, "--isolated", "--fail-on", "info")[0] == 1
    assert codes(capsys, DATASET, "--isolated", "--fail-on", "warning")[0] == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversations": []}\n')
    assert codes(capsys, bad, "--isolated")[0] == 1
    assert codes(capsys, bad, "--isolated", "--exit-zero")[0] == 0
    code, _, err = run_cli(capsys, "validate", tmp_path / "missing.jsonl", "--exit-zero")
    assert code == 2, "--exit-zero does not hide a usage error"


def test_severity_override_changes_the_exit_code(capsys, project):
    (project / "data" / "fmtkit.toml").write_text('[severity]\nFMT8 = "error"\n')
    code, out, _ = run_cli(capsys, "validate", project / "data", "-q")
    assert code == 1
    assert "FMT805" in out and "FMT114" not in out


def test_quiet_shows_what_fails_the_run(capsys):
    code, out, _ = run_cli(capsys, "validate", DATASET, "--isolated", "-q")
    assert (code, out) == (0, "")
    code, out, _ = run_cli(capsys, "validate", DATASET, "--isolated", "-q", "--fail-on", "info")
    assert code == 1
    assert "FMT805" in out and "5 findings at or above info in" in out and "records decoded" not in out


def test_the_documented_example_config_is_valid(capsys, project):
    """docs/ci.md's complete example: every key, accepted as written."""
    text = (REPO / "docs" / "ci.md").read_text(encoding="utf-8").split("```toml", 1)[1].split("```", 1)[0]
    (project / "fmtkit.toml").write_text(text)
    (project / ".fmtkit-baseline.json").write_text('{"version": 1, "tool": "fmtkit", "findings": []}')
    code, out, err = run_cli(capsys, "config", project / "data")
    assert code == 0, err
    from fmtkit.config import KEYS

    for key in KEYS:
        assert f"({project / 'fmtkit.toml'})" in next(line for line in out.splitlines() if line.startswith(key + " ")), key
    code, out, err = run_cli(capsys, "validate", project / "data", "--output-format", "json")
    assert code in (0, 1) and json.loads(out)["version"] == 2, err

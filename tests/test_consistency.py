"""One behaviour across commands: --entry typos, plain help texts, render's NO_COLOR brackets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_runner import run_cli

from fmtkit.cli import BUILTIN_COMMANDS, PLUGIN_HELP
from fmtkit.rules import load_all

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "dataset"
RST = re.compile(r"``|::\s*$|:(?:func|class|mod|data|meth):`", re.M)


@pytest.mark.parametrize(
    "args",
    [
        ["validate", DATASET],
        ["stats", DATASET],
        ["convert", DATASET, "--to", "alpaca", "--dry-run"],
        ["render", DATASET, "--tokenizer", "no-such-tokenizer"],
    ],
    ids=["validate", "stats", "convert", "render"],
)
def test_entry_typo_exits_2_with_one_message(capsys, args):
    code, out, err = run_cli(capsys, *args, "--entry", "sharegpt_dmeo")
    assert code == 2, out + err
    assert err.strip() == f"error: {DATASET / 'dataset_info.json'}: undefined dataset 'sharegpt_dmeo' (did you mean 'sharegpt_demo'?)"


@pytest.mark.parametrize("command", sorted(set(BUILTIN_COMMANDS) | set(PLUGIN_HELP)))
def test_help_is_plain_text(capsys, command):
    code, out, err = run_cli(capsys, command, "--help")
    assert code == 0, err
    assert not RST.search(out), RST.search(out).group()


def test_explain_and_rules_are_plain_text(capsys):
    for code in load_all():
        status, out, _ = run_cli(capsys, "explain", code)
        assert status == 0
        assert not RST.search(out), (code, RST.search(out).group())
        assert ("Passes:" in out and "Fails:" in out), code
    status, out, _ = run_cli(capsys, "rules")
    assert status == 0 and "``" not in out


def test_render_brackets_under_no_color_in_a_terminal(capsys, tiny_model, monkeypatch):
    """NO_COLOR drops the colours; the ⟦trained⟧ brackets the help promises must take their place."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = run_cli(capsys, "render", DATASET, "--entry", "sharegpt_demo", "--index", "1", "--tokenizer", tiny_model)
    assert code == 0, err
    assert "\x1b[1;30;42m" not in out and "\x1b[1;30;102m" not in out, "no colours"
    text = re.sub(r"\x1b\[[0-9;]*m", "", out)  # bold and dim stay: NO_COLOR is about colour
    assert "⟦12.<|im_end|>⟧" in text and "⟦24.<|im_end|>⟧" in text

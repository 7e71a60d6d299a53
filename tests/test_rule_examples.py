"""Every rule's documented examples run through the full validator: passes pass, fails fail."""

from __future__ import annotations

import pytest

from fmtkit.rules import load_all
from fmtkit.rules.examples import parse_examples
from fmtkit.validation import validate

RULES = load_all()
CASES = [(code, i, ex) for code, rule in RULES.items() for i, ex in enumerate(parse_examples(rule.doc))]


def test_every_rule_documents_a_passing_and_a_failing_example():
    for code, rule in RULES.items():
        kinds = sorted(ex.kind for ex in parse_examples(rule.doc))
        assert kinds == ["fail", "pass"], f"{code} must document one Passes:: and one Fails:: example"
        assert rule.fix and rule.summary, code


@pytest.mark.parametrize(("code", "i", "example"), CASES, ids=[f"{c}-{e.kind}" for c, _, e in CASES])
def test_rule_example(code, i, example, tmp_path):
    path, kwargs = example.build(tmp_path / "ds")
    report = validate(path, **kwargs)
    codes = [f.code for f in report.findings]
    if example.kind == "pass":
        # FMT119 (info) is about `formatting: openai` itself, which examples of OpenAI tool_calls need
        found = [f for f in report.findings if f.code != "FMT119" or code == "FMT119"]
        assert found == [], f"{code}: the passing example must be clean: {found}"
    else:
        assert code in codes, report.findings


def test_docs_rules_md_is_current():
    """docs/rules.md is generated from the registry: regenerate it with `fmtkit rules --output-format markdown`."""
    from pathlib import Path

    from fmtkit.commands.rules import rules_markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
    assert page.read_text(encoding="utf-8") == rules_markdown(RULES)

"""``fmtkit render`` and :func:`fmtkit.stats.render_sample` / :func:`fmtkit.stats.mask_problems`, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import run_cli_joined

from fmtkit.sample import Sample, Turn
from fmtkit.stats import mask_problems, render_sample
from fmtkit.templates import chat_template

pytest.importorskip("transformers")

DATASET = Path(__file__).resolve().parent.parent / "dataset"

# ChatML whose generation block stops before <|im_end|>: the model never learns to stop.
EOT_OUTSIDE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{%- generation %}{{- message['content'] }}{%- endgeneration %}{{- '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
)


run = run_cli_joined


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture
def template_file(tmp_path):
    def write(text: str) -> str:
        path = tmp_path / "template.jinja"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


SAMPLE = Sample(system="Be brief.", turns=[Turn("user", "Hello!"), Turn("assistant", "Hi there."), Turn("user", "Bye"), Turn("assistant", "Bye!")])


def test_render_sample_marks_assistant_tokens(tokenizer):
    view = render_sample(tokenizer, SAMPLE)
    assert "".join(t.text for t in view.tokens) == view.text
    assert "".join(t.text for t in view.tokens if t.trained) == "Hi there.<|im_end|>Bye!<|im_end|>"
    assert view.trained == sum(t.trained for t in view.tokens) > 0
    assert mask_problems(tokenizer, SAMPLE) == []


def test_render_pretrain_preference_and_prompt(tokenizer):
    text = render_sample(tokenizer, Sample(text="Paris is the capital."))
    assert all(t.trained for t in text.tokens) and text.text.endswith("<|im_end|>")
    pair = Sample(turns=[Turn("user", "Q")], chosen=Turn("assistant", "good"), rejected=Turn("assistant", "bad"))
    chosen, rejected = render_sample(tokenizer, pair), render_sample(tokenizer, pair, "rejected")
    assert (chosen.answer, rejected.answer) == ("chosen", "rejected")
    assert "".join(t.text for t in rejected.tokens if t.trained) == "bad<|im_end|>"
    prompt = render_sample(tokenizer, Sample(turns=[Turn("user", "Q")]))
    assert prompt.trained == 0 and prompt.text.endswith("<|im_start|>assistant\n")


def test_mask_problems(tokenizer):
    saved = tokenizer.chat_template
    try:
        tokenizer.chat_template = chat_template("chatml", markers=False)
        (problem,) = mask_problems(tokenizer, SAMPLE)
        assert "no {% generation %} markers" in problem and "every token is masked" in problem
        tokenizer.chat_template = EOT_OUTSIDE_TEMPLATE
        (problem,) = mask_problems(tokenizer, SAMPLE)
        assert "'<|im_end|>'" in problem and "never trained to stop" in problem
        tokenizer.chat_template = chat_template("chatml")
        assert mask_problems(tokenizer, SAMPLE) == []
        tokenizer.chat_template = None
        assert "no chat template" in mask_problems(tokenizer, SAMPLE)[0]
    finally:
        tokenizer.chat_template = saved
    assert mask_problems(tokenizer, Sample(text="raw")) == []


def test_cli_render_plain(capsys, tiny_model):
    code, out = run(capsys, "render", str(DATASET), "--entry", "sharegpt_demo", "--index", "1", "--tokenizer", str(tiny_model))
    assert code == 0, out
    assert "sharegpt_demo #1 (sft)" in out
    # no terminal: trained runs are bracketed
    assert "⟦12.<|im_end|>⟧" in out and "⟦24.<|im_end|>⟧" in out
    assert "<|im_start|>user\nWhat is 5 + 7?<|im_end|>" in out
    assert "49 tokens, 8 in the loss (16.3%), 41 masked" in out
    assert "warning" not in out


def test_cli_render_highlights_in_colour(capsys, tiny_model, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out = run(capsys, "render", str(DATASET), "--entry", "alpaca_demo", "--tokenizer", str(tiny_model))
    assert code == 0, out
    assert "⟦" not in out
    assert "\x1b[1;30;42m" in out or "\x1b[1;30;102m" in out  # bold black on green: trained
    assert "\x1b[2m" in out  # dim: masked


def test_cli_warns_when_every_token_is_masked(capsys, tiny_model, template_file):
    stock = template_file(chat_template("chatml", markers=False))  # ChatML as most checkpoints ship it
    code, out = run(capsys, "render", str(DATASET), "--entry", "alpaca_kto_demo", "--tokenizer", str(tiny_model), "--template", stock)
    assert code == 0, out
    assert ", 0 in the loss (0.0%)" in out
    assert "warning: the chat template has no {% generation %} markers" in out.replace("\n", " ")


def test_cli_warns_when_end_of_turn_is_not_trained(capsys, tiny_model, template_file):
    path = template_file(EOT_OUTSIDE_TEMPLATE)
    code, out = run(capsys, "render", str(DATASET), "--entry", "alpaca_demo", "--tokenizer", str(tiny_model), "--template", path)
    assert code == 0, out
    assert "outside the loss" in out and "⟦" in out


def test_cli_render_preference_rejected(capsys, tiny_model):
    args = ("render", str(DATASET), "--entry", "sharegpt_preference_demo", "--tokenizer", str(tiny_model))
    code, chosen = run(capsys, *args)
    code2, rejected = run(capsys, *args, "--rejected")
    assert code == code2 == 0
    assert "chosen answer" in chosen and "rejected answer" in rejected and chosen != rejected


def test_cli_render_errors(capsys, tiny_model):
    code, out = run(capsys, "render", str(DATASET), "--tokenizer", str(tiny_model))
    assert code == 2 and "choose an entry with --entry NAME (local entries: alpaca_demo," in out
    code, out = run(capsys, "render", str(DATASET), "--entry", "openai_demo", "--index", "99", "--tokenizer", str(tiny_model))
    assert code == 2 and "the entry has 3 samples" in out
    code, out = run(capsys, "render", str(DATASET), "--entry", "openai_demo", "--tokenizer", str(tiny_model), "--template", "nope")
    assert code == 2 and "unknown template 'nope'" in out
    code, out = run(capsys, "render", str(DATASET), "--entry", "openai_demo", "--tokenizer", str(tiny_model), "--template", "qwen4")
    assert code == 2 and "did you mean qwen, qwen3?" in out  # the names of `fmtkit train`'s `template:`
    code, out = run(capsys, "render", str(DATASET), "--entry", "openai_demo", "--tokenizer", str(DATASET / "no-model"))
    assert code == 2 and "cannot load a tokenizer" in out

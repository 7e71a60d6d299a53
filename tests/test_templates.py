"""fmtkit's chat templates (fmtkit.templates, shared by train, stats and render): each renders, marks
exactly the assistant's answers, prompts as it trains, and renders the same text without its markers."""

from __future__ import annotations

import pytest

from fmtkit.errors import FmtkitError
from fmtkit.templates import TEMPLATES, chat_template, has_generation_markers

pytest.importorskip("transformers")

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
    },
    {"role": "tool", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "You are welcome."},
]
TOOLS = [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_only_the_answers_and_their_stop_are_trained(tokenizer, name):
    template = chat_template(name)
    out = tokenizer.apply_chat_template(
        CONVERSATION, tools=TOOLS, chat_template=template, return_dict=True, return_assistant_tokens_mask=True
    )
    trained = tokenizer.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m])
    stop = TEMPLATES[name].assistant_suffix or tokenizer.eos_token
    for answer in ("get_weather", "Sunny.", "You are welcome."):
        assert answer in trained
    for prompt in ("Be brief", "Weather in Paris", "sunny", "Thanks"):
        assert prompt not in trained
    assert trained.count(stop) == 3 and trained.rstrip().endswith(stop)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_the_generation_prompt_is_how_answers_start_in_training(tokenizer, name):
    template = chat_template(name)
    full = tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, chat_template=template, tokenize=False)
    prompt = tokenizer.apply_chat_template(
        CONVERSATION[:-1], tools=TOOLS, chat_template=template, tokenize=False, add_generation_prompt=True
    )
    assert full.startswith(prompt)
    assert full[len(prompt) :].lstrip().startswith(("You are welcome.", "<think>"))


def test_tools_and_system_appear_in_the_prompt(tokenizer):
    text = tokenizer.apply_chat_template(
        CONVERSATION, tools=TOOLS, chat_template=chat_template("qwen3"), tokenize=False
    )
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools")
    assert '{"type": "function", "function": {"name": "get_weather"' in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>" in text


def test_qwen_has_a_default_system_and_qwen3_thinks_empty(tokenizer):
    chat = [{"role": "user", "content": "Hi"}]
    assert "You are Qwen" in tokenizer.apply_chat_template(chat, chat_template=chat_template("qwen"), tokenize=False)
    nothink = tokenizer.apply_chat_template(
        chat, chat_template=chat_template("qwen3"), tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert nothink.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_unknown_names_and_jinja_files(tmp_path):
    with pytest.raises(FmtkitError, match="did you mean llama3"):
        chat_template("llama")
    custom = tmp_path / "mine.jinja"
    custom.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}", encoding="utf-8")
    assert chat_template(str(custom)).startswith("{% for m")


def rendered(tokenizer, template: str) -> str:
    return tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, chat_template=template, tokenize=False)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_without_markers_the_text_is_the_same(tokenizer, name):
    marked, stock = chat_template(name), chat_template(name, markers=False)
    assert has_generation_markers(marked) and not has_generation_markers(stock)
    assert "endgeneration" not in stock
    assert rendered(tokenizer, marked) == rendered(tokenizer, stock)


def test_markers_come_off_a_file_too(tokenizer, tmp_path):
    path = tmp_path / "chatml.jinja"
    path.write_text(chat_template("chatml"), encoding="utf-8")
    stock = chat_template(str(path), markers=False)
    assert not has_generation_markers(stock)
    assert rendered(tokenizer, stock) == rendered(tokenizer, chat_template("chatml"))


def test_qwen_writes_tool_turns_as_qwen_does(tokenizer):
    """Qwen2.5/Qwen3's own format (and LLaMA-Factory's qwen templates): Qwen's tool instructions, each call on
    its own line after the answer's text, consecutive tool results in one user turn."""
    chat = [
        {"role": "user", "content": "Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}} for city in ("Paris", "Rome")
            ],
        },
        {"role": "tool", "content": "sunny"},
        {"role": "tool", "content": "rainy"},
    ]
    text = tokenizer.apply_chat_template(chat, tools=TOOLS, chat_template=chat_template("qwen"), tokenize=False)
    assert "You are provided with function signatures within <tools></tools> XML tags" in text
    assert (
        '<|im_start|>assistant\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        '\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nrainy\n</tool_response><|im_end|>\n"
    ) in text


def test_chatml_writes_tool_turns_as_llamafactory_does(tokenizer):
    """LLaMA-Factory's chatml: its default tool prompt after the system prompt, calls as Action lines, a tool turn."""
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny"},
    ]
    text = tokenizer.apply_chat_template(chat, tools=TOOLS, chat_template=chat_template("chatml"), tokenize=False)
    assert text.startswith("<|im_start|>system\nBe brief.You have access to the following tools:\n> Tool Name: get_weather\n")
    assert "Action: tool name (one of [get_weather])\n" in text
    assert (
        '<|im_start|>assistant\nAction: get_weather\nAction Input: {"city": "Paris"}<|im_end|>\n'
        "<|im_start|>tool\nsunny<|im_end|>\n"
    ) in text
    assert "<tool_call>" not in text


def _trained(tokenizer, template: str, messages: list[dict], **kwargs) -> str:
    out = tokenizer.apply_chat_template(
        messages, chat_template=template, return_dict=True, return_assistant_tokens_mask=True, **kwargs
    )
    return tokenizer.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m])


TWO_TURNS = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello"},
    {"role": "user", "content": "Bye"},
    {"role": "assistant", "content": "Goodbye"},
]


@pytest.mark.parametrize("name", ["chatml", "qwen", "qwen3", "qwen3_nothink", "default"])
def test_the_newline_after_the_stop_is_trained_unless_switched_off(tokenizer, name):
    trained = _trained(tokenizer, chat_template(name), TWO_TURNS[2:])
    untrained = _trained(tokenizer, chat_template(name, train_separator=False), TWO_TURNS[2:])
    stop = TEMPLATES[name].assistant_suffix or tokenizer.eos_token
    assert trained.endswith(stop + "\n") and untrained.endswith(stop)  # LLaMA-Factory's tokens / TRL's
    # the text is the same wherever another turn follows; the newline then opens that turn
    both = [chat_template(name, train_separator=flag) for flag in (True, False)]
    texts = [tokenizer.apply_chat_template(TWO_TURNS, chat_template=t, tokenize=False) for t in both]
    assert texts[0] == texts[1] + "\n"
    prompts = [
        tokenizer.apply_chat_template(TWO_TURNS, chat_template=t, tokenize=False, add_generation_prompt=True) for t in both
    ]
    assert prompts[0] == prompts[1]


def test_qwen3_thinks_empty_only_in_the_last_answer_unless_every_answer_is_trained(tokenizer):
    template = chat_template("qwen3")
    # a preference prompt's earlier answers are context: no empty think block, their thoughts dropped
    text = tokenizer.apply_chat_template(TWO_TURNS, chat_template=template, tokenize=False)
    assert "assistant\nHello<|im_end|>" in text and text.endswith("assistant\n<think>\n\n</think>\n\nGoodbye<|im_end|>\n")
    prompt = tokenizer.apply_chat_template(TWO_TURNS[:3], chat_template=template, tokenize=False, add_generation_prompt=True)
    assert "<think>" not in prompt and text.startswith(prompt)
    # SFT trains every answer (think_in_history, which fmtkit's SFT rows set): each keeps or gets its block
    trained = _trained(tokenizer, template, TWO_TURNS, think_in_history=True)
    assert trained == "<think>\nhm\n</think>\n\nHello<|im_end|>\n<think>\n\n</think>\n\nGoodbye<|im_end|>\n"


def test_qwen3_without_thinking_puts_the_empty_block_in_the_prompt(tokenizer):
    template = chat_template("qwen3", enable_thinking=False)
    trained = _trained(tokenizer, template, TWO_TURNS, think_in_history=True)
    assert trained == "Hello<|im_end|>\nGoodbye<|im_end|>\n"  # thoughts dropped, nothing of the block trained
    text = tokenizer.apply_chat_template(TWO_TURNS, chat_template=template, tokenize=False, think_in_history=True)
    assert text.count("<think>\n\n</think>\n\n") == 2 and "hm" not in text
    prompt = tokenizer.apply_chat_template(TWO_TURNS[:1], chat_template=template, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # inference pre-fills it too
    # the template variable still wins, as in Qwen3's own template
    thinking = tokenizer.apply_chat_template(
        TWO_TURNS[:1], chat_template=template, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    assert thinking.endswith("<|im_start|>assistant\n")

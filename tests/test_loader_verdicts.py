"""Verdicts that must agree with what LLaMA-Factory 0.9.5 and TRL really do, each from a minimal case
reduced from a public dataset where fmtkit once said otherwise (false errors and misses)."""

from __future__ import annotations

import json
from pathlib import Path

import fmtkit
from fmtkit.detect import detect_form


def folder(tmp_path: Path, entry: dict, rows: list[dict], name: str = "d.jsonl") -> Path:
    (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"demo": {"file_name": name, **entry}}), encoding="utf-8")
    return tmp_path


def codes(report) -> dict[str, str]:
    return {f.code: f.severity for f in report.findings}


OPENAI_ENTRY = {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {
    "role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
    "observation_tag": "tool", "function_tag": "function", "system_tag": "system"}}  # fmt: skip


def test_openai_tool_calls_without_content_are_read(tmp_path):
    """`datasets` fills the missing key with null; the openai reader replaces it by the calls (OpenAI's own example)."""
    row = {"messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."}]}  # fmt: skip
    report = fmtkit.validate(folder(tmp_path, OPENAI_ENTRY, [row]))
    assert not report.has_errors, report.findings
    (sample,) = fmtkit.read(tmp_path, entry="demo")
    assert sample.turns[1].tool_calls[0].arguments == {"city": "Paris"}
    # the sharegpt reader ignores tool_calls: there the missing content is a real error
    sharegpt = {**OPENAI_ENTRY, "formatting": "sharegpt"}
    assert "FMT401" in codes(fmtkit.validate(folder(tmp_path, sharegpt, [row])))


def test_one_pretty_printed_object_is_one_record(tmp_path):
    (tmp_path / "one.json").write_text('{\n  "instruction": "Hi",\n  "input": "",\n  "output": "Hello"\n}\n', encoding="utf-8")
    report = fmtkit.validate(tmp_path / "one.json")
    assert not report.has_errors and report.summary["records"] == 1, report.findings
    (tmp_path / "two.json").write_text('{\n "instruction": "A",\n "output": "B"\n}\n{\n "instruction": "C",\n "output": "D"\n}\n', encoding="utf-8")
    assert fmtkit.validate(tmp_path / "two.json").summary["records"] == 2
    (tmp_path / "bad.json").write_text('{\n "instruction": "Hi",\n "input": ""\n "output": "x"}\n', encoding="utf-8")
    (bad,) = fmtkit.validate(tmp_path / "bad.json").findings
    assert (bad.code, bad.line) == ("FMT201", 4)  # one finding where the object breaks, not one per line


ALPACA_HISTORY = {"columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}


def test_a_history_that_is_not_a_list_is_ignored_not_an_error(tmp_path):
    rows = [{"instruction": "Hi", "input": "", "output": "Hello", "history": ""}, {"instruction": "Yo", "input": "", "output": "Hey", "history": ""}]
    assert codes(fmtkit.validate(folder(tmp_path, ALPACA_HISTORY, rows))) == {}
    rows = [{"instruction": "Hi", "input": "", "output": "Hello", "history": "user: hi"}]
    assert codes(fmtkit.validate(folder(tmp_path, ALPACA_HISTORY, rows))) == {"FMT305": "warning"}
    rows = [{"instruction": "Hi", "input": "", "output": "Hello", "history": [["a", "b", "c"]]}]
    assert codes(fmtkit.validate(folder(tmp_path, ALPACA_HISTORY, rows)))["FMT304"] == "error"


def test_a_placeholder_in_a_text_only_entry_is_a_warning(tmp_path):
    rows = [{"instruction": "What does <image> mean in HTML?", "input": "", "output": "It is not a tag."}]
    report = fmtkit.validate(folder(tmp_path, {}, rows))
    assert codes(report) == {"FMT605": "warning"}
    mm = {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
    assert codes(fmtkit.validate(folder(tmp_path, mm, [{**rows[0], "images": []}])))["FMT602"] == "error"


def test_trl_forms_take_extra_columns_but_not_a_set_of_their_keys_that_fits_no_type(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "Hi", "chosen": "a", "rejected": "b", "prompt_id": "x1", "score_chosen": 8.0, "id": 3}) + "\n")
    assert not fmtkit.validate(path).has_errors
    path.write_text(json.dumps({"prompt": "Hi", "chosen": "a", "rejected": "b", "messages": [{"role": "user", "content": "Hi"}]}) + "\n")
    assert "FMT300" in codes(fmtkit.validate(path))


def test_ultrafeedback_layout_is_a_preference_set():
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    row = {"prompt": "Hi", "prompt_id": "p1", "chosen": conv, "rejected": conv, "messages": conv, "score_chosen": 8.0}
    assert detect_form([row]) == "trl-preference"


def test_weight_zero_on_a_llamafactory_entry_is_reported(tmp_path):
    entry = {**OPENAI_ENTRY, "formatting": "sharegpt"}
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0}]}
    assert codes(fmtkit.validate(folder(tmp_path, entry, [row]))) == {"FMT410": "warning"}


def test_tools_given_as_an_empty_list_survive_conversion(tmp_path, capsys):
    """LLaMA-Factory's template takes the string "[]" as tools present and renders a system block for it."""
    rows = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "tools": "[]"}]
    entry = {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
    src = folder(tmp_path, entry, rows)
    out = tmp_path / "o.jsonl"
    for target in ("openai", "sharegpt", "alpaca"):
        report = fmtkit.convert(src, target, out, entry="demo")
        assert report.written == 1, report
        assert json.loads(out.read_text())["tools"] == "[]", target


def _tool_row(name: str, arguments: dict) -> dict:
    call = json.dumps({"name": name, "arguments": arguments})
    return {"conversations": [{"from": "human", "value": "Q"}, {"from": "function_call", "value": call},
                              {"from": "observation", "value": "r"}, {"from": "gpt", "value": "A"}]}  # fmt: skip


def test_openai_registration_refuses_tool_calls_arrow_would_reshape(tmp_path):
    """Argument objects of different shapes load as one Arrow struct: every call would train on the union of keys."""
    entry = {"formatting": "sharegpt", "columns": {"messages": "conversations"}}
    src = folder(tmp_path, entry, [_tool_row("w", {"city": "Paris"}), _tool_row("t", {"zone": "UTC", "fmt": 24})])
    report = fmtkit.convert(src, "openai", tmp_path / "o.jsonl", entry="demo", register=True)
    assert report.exit_code == 1 and report.registered is None and "output record 1" in report.refused and "[FMT810]" in report.refused
    assert not (tmp_path / "o.jsonl").exists() and "demo_openai" not in json.loads((tmp_path / "dataset_info.json").read_text())
    # sharegpt holds each call as JSON text: registered
    assert fmtkit.convert(src, "sharegpt", tmp_path / "s.jsonl", entry="demo", register=True).registered is not None
    # one shape throughout: registered, and without --register the OpenAI file is written as OpenAI's API has it
    src = folder(tmp_path, entry, [_tool_row("w", {"city": "Paris"}), _tool_row("w", {"city": "Rome"})])
    assert fmtkit.convert(src, "openai", tmp_path / "o2.jsonl", entry="demo", register=True).registered is not None
    src = folder(tmp_path, entry, [_tool_row("w", {"city": "Paris"}), _tool_row("t", {"zone": "UTC"})])
    assert fmtkit.convert(src, "openai", tmp_path / "o3.jsonl", entry="demo").exit_code == 0


def test_turn_order_follows_the_reader(tmp_path, capsys):
    """A bare OpenAI file takes any order (OpenAI's API, TRL); an entry of a dataset_info.json LLaMA-Factory's."""
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Still there?"}, {"role": "assistant", "content": "Yes"}]}
    bare = tmp_path / "bare" / "o.jsonl"
    bare.parent.mkdir()
    bare.write_text(json.dumps(row) + "\n")
    assert codes(fmtkit.validate(bare)) == {}
    report = fmtkit.convert(bare, "trl-messages", tmp_path / "t.jsonl")
    assert report.written == 1 and report.exit_code == 0
    entry = folder(tmp_path / "lf", OPENAI_ENTRY, [row]) if (tmp_path / "lf").mkdir() is None else None
    found = codes(fmtkit.validate(entry))
    assert found["FMT403"] == "error"
    report = fmtkit.convert(entry, "trl-messages", tmp_path / "t2.jsonl", entry="demo", check=False)
    assert report.skipped_by == {"unreadable:FMT403": 1}  # the reader's verdict is validate's, with its code


def test_sample_rules_run_on_trl_forms(tmp_path):
    """An identical pair or an empty answer means the same in TRL form as in LLaMA-Factory's."""
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "Hi", "chosen": "Same.", "rejected": "Same."}) + "\n"
                    + json.dumps({"prompt": "Hi", "chosen": "Hello!", "rejected": "  "}) + "\n")  # fmt: skip
    report = fmtkit.validate(path)
    assert [(f.code, f.record) for f in report.findings] == [("FMT502", 0), ("FMT406", 1)]
    # a record its reader cannot read is a finding with the rule code convert skips it with
    path.write_text(json.dumps({"chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "x"}],
                                "rejected": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "y"}]}) + "\n")  # fmt: skip
    (finding,) = fmtkit.validate(path).findings
    assert finding.code == "FMT300" and "no single shared prompt" in finding.message


def test_weight_is_checked_by_one_rule_per_reader(tmp_path):
    """A bare OpenAI file: OpenAI's 0/1 contract (FMT409, error). An entry LLaMA-Factory reads: it never reads
    weight, so any value is a warning (FMT410) and null is nothing. The schema leaves weight to these rules."""
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 2}]}
    bare = tmp_path / "o.jsonl"
    bare.write_text(json.dumps(row) + "\n")
    assert codes(fmtkit.validate(bare)) == {"FMT409": "error"}
    entry = folder(tmp_path / "lf", OPENAI_ENTRY, [row]) if (tmp_path / "lf").mkdir() is None else None
    assert codes(fmtkit.validate(entry)) == {"FMT410": "warning", "FMT119": "info"}
    row["messages"][1]["weight"] = None
    assert codes(fmtkit.validate(folder(tmp_path / "lf", OPENAI_ENTRY, [row]))) == {"FMT119": "info"}


def _bare(tmp_path, rows) -> dict[str, str]:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {(f.code, f.record): f.severity for f in fmtkit.validate(path).findings}


U, A, N = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "assistant", "content": "No"}


def test_trl_rows_are_judged_by_the_columns_of_the_whole_file(tmp_path):
    """`datasets` gives every row every column (null where absent): TRL sees the file's key set in each row (FMT811)."""
    found = _bare(tmp_path, [{"prompt": [U], "completion": [A], "label": True, "messages": [U, A]}, {"prompt": [U], "completion": [A], "label": False}])
    assert found[("FMT811", 1)] == "error"  # the row without `messages` fails too
    found = _bare(tmp_path, [{"prompt": [U]}, {"prompt": [U], "completion": [A]}, {"prompt": [U], "completion": [A]}])
    assert found[("FMT811", 0)] == "error" and not any(code == "FMT811" and row for code, row in found)
    # a standard row gets no chat template; an implicit pair keeps only prompt/chosen/rejected after extraction
    assert not any(code == "FMT811" for code, _ in _bare(tmp_path, [{"prompt": "a"}, {"prompt": "b", "completion": "c"}]))
    assert _bare(tmp_path, [{"chosen": [U, A], "rejected": [U, N], "messages": [U, A]}]) == {}


def test_trl_preference_rows_take_their_own_prompt(tmp_path):
    """As maybe_extract_prompt: a prompt of the pair's style is kept, a row without one has it extracted (FMT812 warns of DPOTrainer)."""
    rows = [{"chosen": [U, A], "rejected": [U, N]}, {"prompt": [U], "chosen": [A], "rejected": [N]}]
    assert _bare(tmp_path, rows) == {("FMT812", None): "warning", ("FMT805", 1): "info"}
    samples = [fmtkit.read(tmp_path / "t.jsonl")][0]
    assert [(len(s.turns), s.chosen.content) for s in samples] == [(1, "Yo"), (1, "Yo")]
    assert _bare(tmp_path, [{"chosen": [A], "rejected": [N]}]) == {("FMT300", 0): "error"}  # no shared first message: TRL fails


def test_trl_prompt_endings(tmp_path):
    assert _bare(tmp_path, [{"prompt": [{"role": "system", "content": "S"}]}]) == {("FMT404", 0): "error"}  # "Invalid role in the last message"
    assert _bare(tmp_path, [{"prompt": [U, {"role": "assistant", "content": "The colour is"}]}]) == {("FMT411", 0): "warning"}  # continued
    assert _bare(tmp_path, [{"prompt": "Why?", "completion": "Yo", "messages": [U, A]}])[("FMT300", 0)] == "error"  # a TRL row, not openai


def test_a_second_system_message_is_out_of_place_in_any_order(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "S"}, {"role": "system", "content": "T"}, U, A]}]
    assert _bare(tmp_path, rows) == {("FMT403", 0): "error"}  # validate says what the reader says


def test_pretraining_text_missing_follows_the_loader(tmp_path):
    """An entry's row without text trains as EOS alone in LLaMA-Factory (FMT301 warns); a text file alone is TRL's (FMT306)."""
    rows = [{"text": "a"}, {"source": "wiki"}]
    entry = codes(fmtkit.validate(folder(tmp_path / "e" if (tmp_path / "e").mkdir() is None else None, {"columns": {"prompt": "text"}}, rows)))
    assert entry["FMT301"] == "warning" and "FMT300" not in entry and "FMT306" not in entry
    assert _bare(tmp_path, rows)[("FMT306", 1)] == "error"


def test_openai_pair_with_null_content_beside_tool_calls(tmp_path):
    entry = {**OPENAI_ENTRY, "ranking": True, "columns": {"messages": "messages", "chosen": "chosen", "rejected": "rejected"}}
    call = {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    row = {"messages": [U, {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "content": "42"}, A, U],
           "chosen": A, "rejected": N}  # fmt: skip
    assert not fmtkit.validate(folder(tmp_path, entry, [row])).has_errors


def test_stage_pt_ignores_media(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\0")
    entry = {"columns": {"prompt": "text", "images": "images"}}
    src = folder(tmp_path, entry, [{"text": "<image><image>Hi", "images": ["a.png"]}])
    found = codes(fmtkit.validate(src, stage="pt"))
    assert found["FMT906"] == "warning" and "FMT602" not in found
    assert codes(fmtkit.validate(src, stage="sft"))["FMT602"] == "error"


def test_system_messages_chat_templates_render(tmp_path):
    """A bare file's chat template renders an empty system message (a Sample holds none: FMT406 warns) and fails on a null one."""
    assert _bare(tmp_path, [{"prompt": [{"role": "system", "content": ""}, U], "completion": [A]}]) == {("FMT406", 0): "warning"}
    assert _bare(tmp_path, [{"messages": [{"role": "system", "content": None}, U, A]}]) == {("FMT405", 0): "error"}
    entry = {**OPENAI_ENTRY, "formatting": "sharegpt"}  # LLaMA-Factory takes a null system prompt for none
    assert codes(fmtkit.validate(folder(tmp_path, entry, [{"messages": [{"role": "system", "content": None}, U, A]}]))) == {}


def test_a_bare_conversation_without_a_final_answer_is_a_warning(tmp_path):
    assert _bare(tmp_path, [{"messages": [U, {"role": "tool", "content": "42"}]}]) == {("FMT412", 0): "warning"}
    shared = [{"role": "system", "content": "S"}]
    assert _bare(tmp_path, [{"chosen": [*shared, A], "rejected": [*shared, N]}]) == {("FMT404", 0): "error"}  # an extracted prompt ends with it


def test_an_openai_entry_is_checked_for_what_its_reader_reads(tmp_path):
    """OpenAI's own schema (a string `name`, tools as {"type": "function", ...}) binds a bare OpenAI file, not an entry."""
    entry = {**OPENAI_ENTRY, "columns": {"messages": "messages", "tools": "tools"}}
    row = {"messages": [U, {**A, "name": 1}], "tools": [{"name": "f", "parameters": {"type": "object", "properties": {}}}]}
    assert codes(fmtkit.validate(folder(tmp_path, entry, [row]))) == {"FMT119": "info"}
    assert _bare(tmp_path, [row])[("FMT300", 0)] == "error"

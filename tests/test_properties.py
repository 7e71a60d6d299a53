"""Property tests (hypothesis): no input makes the loaders or the rules raise, and valid data stays clean.

- any JSON value as a record, under the entry of every form (and every stage),
  goes through all record rules, the schema and the file rules without raising;
- any bytes written to a ``.json`` / ``.jsonl`` file give exit code 0 or 1;
- generated valid ShareGPT conversations (alternating roles) give no error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmtkit import rules as rule_registry
from fmtkit.record_loop import check_records
from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import BARE_ENTRIES
from fmtkit.findings import ERROR, Finding
from fmtkit.loading import Record, iter_records
from fmtkit.rules.stage import STAGES
from fmtkit.rules.view import EntryView
from fmtkit.validation import validate

rule_registry.load_all()
SCALE = float(os.environ.get("FMTKIT_PROPERTY_SCALE", "1"))  # e.g. 20 for a deeper run
SETTINGS = settings(max_examples=int(60 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(tempfile.mkdtemp(prefix="fmtkit-props-"))

# keys that the entries of the forms read, so that random records reach deep into the rules
KEYS = sorted(
    {"instruction", "input", "output", "system", "history", "conversations", "messages", "tools", "chosen", "rejected",
     "kto_tag", "images", "videos", "audios", "text", "from", "value", "role", "content", "tool_calls", "tool_call_id",
     "name", "weight", "prompt", "completion", "label", "function", "arguments", "type", "parameters"}
)  # fmt: skip
ROLES = ["human", "gpt", "system", "observation", "function_call", "user", "assistant", "tool", "bot"]

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(ROLES + ["", " ", "\n"])
# lone surrogates: the .json reader (stdlib decoder) can produce them; orjson cannot encode them
surrogate_text = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | surrogate_text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | text, children, max_size=5),
    max_leaves=25,
)
records = json_values | st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)
message = st.fixed_dictionaries({}, optional={k: json_values | st.sampled_from(ROLES) for k in ("from", "value", "role", "content", "weight", "tool_calls")})
pair_message = st.fixed_dictionaries({}, optional={k: json_values | st.sampled_from(ROLES) for k in ("from", "role", "value", "content")})
conversation_records = st.fixed_dictionaries(
    {},
    optional={
        "conversations": st.lists(message, max_size=5) | json_values,
        "messages": st.lists(message, max_size=5),
        "system": json_values,
        "chosen": pair_message | scalars | st.lists(message, max_size=2),
        "rejected": pair_message | scalars | st.lists(message, max_size=2),
        "kto_tag": st.booleans() | json_values,
        "tools": json_values,
        "images": st.lists(text, max_size=2) | json_values,
    },
)


def _views() -> list[EntryView]:
    views = []
    for form in BARE_ENTRIES:
        entry = DatasetEntry.for_file(form, (), ROOT, file_name="d.jsonl")
        for stage in (None, *STAGES):
            views.append(EntryView.of(entry, root=ROOT, stage=stage))
    return views


VIEWS = _views()


def _check_all(recs: list) -> None:
    for view in VIEWS:
        problems: list[Finding] = []
        form = view.entry.form
        tally = check_records(iter(Record(i, i + 1, r) for i, r in enumerate(recs)), "d.jsonl", view, form, problems)
        assert tally.records == len(recs)
        list(tally.duplicates())
        for f in problems:
            assert f.code in rule_registry.RULES and isinstance(f.message, str)
    # no entry at all (a bare file of unknown form) and every form's plain schema
    for form in ("unknown", "alpaca", "sharegpt", "openai"):
        check_records(iter(Record(i, i + 1, r) for i, r in enumerate(recs)), "d.jsonl", None, form, [])


@SETTINGS
@given(st.lists(records, min_size=1, max_size=4))
def test_any_json_record_through_every_rule(recs):
    _check_all(recs)


@SETTINGS
@given(st.lists(conversation_records, min_size=1, max_size=4))
def test_conversation_shaped_records_through_every_rule(recs):
    _check_all(recs)


@SETTINGS
@given(st.lists(records, min_size=1, max_size=4), st.sampled_from(["d.jsonl", "d.json"]))
def test_records_through_the_loader_and_validate(recs, name):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        if name == "d.json":
            p.write_text(json.dumps(recs, indent=1), encoding="utf-8", errors="surrogatepass")
        else:
            p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8", errors="surrogatepass")
        loaded = list(iter_records(p))
        if name == "d.json":
            assert len(loaded) <= len(recs)
        for form in (None, "alpaca", "sharegpt", "openai", "sharegpt-preference", "alpaca-kto"):
            report = validate(p, form=form)
            assert report.exit_code in (0, 1)
            if report.exit_code == 0:
                assert all(type(r.value) is dict for r in loaded)


@settings(max_examples=int(80 * SCALE), deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["d.json", "d.jsonl"]), st.sampled_from([None, "alpaca", "sharegpt"]))
def test_random_bytes_never_raise(data, name, form):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_bytes(data)
        for _ in iter_records(p, lambda problem: None):
            pass
        report = validate(p, form=form)
        assert report.exit_code in (0, 1)
        report.to_dict()


@settings(max_examples=int(40 * SCALE), deadline=None)
@given(st.binary(max_size=300), st.sampled_from([b"[", b'[{"instruction": "a", "output": "b"},', b'{"conversations": [']))
def test_random_bytes_after_a_plausible_start_never_raise(data, start):
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("d.json", "d.jsonl"):
            p = Path(tmp) / name
            p.write_bytes(start + data)
            assert validate(p).exit_code in (0, 1)


# -- the fast JSON array reader reads exactly what the exact one reads ---------------------------------

from fmtkit.loading import json_file  # noqa: E402

array_elements = st.lists(records | st.fixed_dictionaries({"a": st.integers(min_value=-(2**80), max_value=2**80)}), max_size=5)


@st.composite
def array_files(draw):
    """JSON arrays (or objects one after another) written the ways people write them, now and then damaged."""
    rnd = draw(st.randoms(use_true_random=False))
    values = draw(array_elements)
    style = rnd.choice(["indent", "indent", "lines", "compact", "objects"])
    indent = rnd.choice([1, 2, 4, "\t"])
    ascii_only = rnd.random() < 0.5
    dump = (lambda v: json.dumps(v, ensure_ascii=ascii_only, indent=indent)) if style in ("indent", "objects") else (lambda v: json.dumps(v, ensure_ascii=ascii_only))
    if style == "objects":
        text = "\n".join(dump(v) for v in values if isinstance(v, dict)) + "\n"
    elif style == "lines":
        text = "[\n" + ",\n".join(dump(v) for v in values) + "\n]\n"
    elif style == "compact":
        text = dump(values)
    else:
        text = json.dumps(values, ensure_ascii=ascii_only, indent=indent)
    data = text.encode("utf-8", errors="surrogatepass")
    if rnd.random() < 0.3 and data:  # damage: a byte replaced, cut, or inserted
        at = rnd.randrange(len(data))
        data = rnd.choice([data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at + 1 :], data[:at], data[:at] + b",\n" + data[at:]])
    return data


@settings(max_examples=int(300 * SCALE), deadline=None)
@given(array_files(), st.booleans())
def test_fast_array_reader_reads_what_the_exact_one_reads(data, bom):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "d.json"
        p.write_bytes((json_file.BOM if bom else b"") + data)
        kind = json_file.container(p)
        if kind == "lines":
            return
        fast_problems: list = []
        exact_problems: list = []
        fast = list(json_file._iter_elements(p, fast_problems.append, bom, kind == "array"))
        exact = list(json_file._iter_values(p, exact_problems.append, bom, kind == "array"))
        assert [(r.index, r.line, repr(r.value)) for r in fast] == [(r.index, r.line, repr(r.value)) for r in exact]
        assert fast_problems == exact_problems


def test_fast_array_reader_takes_every_element_of_pretty_printed_arrays(tmp_path, monkeypatch):
    """The exact reader is left only what follows the last element, for each way json.dump indents."""
    resumed = []
    exact = json_file._iter_values
    monkeypatch.setattr(json_file, "_iter_values", lambda *a, **k: (resumed.append(k["resume"][2]), exact(*a, **k))[1])
    recs = [{"instruction": f"q{i} 你好 <b>", "input": "", "output": "a\nb", "history": [["x", "y"]], "n": 2**40} for i in range(300)]
    for name, text in {"indent2": json.dumps(recs, indent=2, ensure_ascii=False), "indent4": json.dumps(recs, indent=4),
                       "tab": json.dumps(recs, indent="\t"), "lines": "[\n" + ",\n".join(json.dumps(r) for r in recs) + "\n]"}.items():  # fmt: skip
        p = tmp_path / f"{name}.json"
        p.write_text(text, encoding="utf-8")
        resumed.clear()
        loaded = list(json_file.iter_json(p, lambda problem: None))
        assert [r.value for r in loaded] == recs and resumed == [300], name


# -- round trip: valid conversations stay clean ----------------------------------------------

def _plain(s: str) -> bool:
    """Non-blank, and no media placeholder (those need a media column: FMT602)."""
    return bool(s.strip()) and not any(tag in s for tag in ("<image>", "<video>", "<audio>"))


content = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40).filter(_plain)
cjk = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=20)


@st.composite
def sharegpt_records(draw):
    pairs = draw(st.integers(min_value=1, max_value=4))
    turns = []
    if draw(st.booleans()):
        turns.append({"from": "system", "value": draw(content | cjk)})
    for _ in range(pairs):
        turns.append({"from": "human", "value": draw(content | cjk)})
        if draw(st.integers(0, 4)) == 0:  # a tool round: call, result, answer
            call = {"name": draw(st.sampled_from(["get_weather", "search"])), "arguments": {"q": draw(content | cjk)}}
            turns.append({"from": "function_call", "value": json.dumps(call, ensure_ascii=False)})
            turns.append({"from": "observation", "value": draw(content)})
        turns.append({"from": "gpt", "value": draw(content | cjk)})
    return {"conversations": turns}


@settings(max_examples=int(50 * SCALE), deadline=None)
@given(st.lists(sharegpt_records(), min_size=1, max_size=5), st.sampled_from(["d.jsonl", "d.json"]))
def test_valid_sharegpt_round_trip_has_no_error(recs, name):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        p = root / name
        if name == "d.json":
            p.write_text(json.dumps(recs, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in recs) + "\n", encoding="utf-8")
        loaded = [r.value for r in iter_records(p)]
        assert loaded == recs
        (root / "dataset_info.json").write_text(json.dumps({"chat": {"file_name": name, "formatting": "sharegpt"}}))
        for target, form in ((root, None), (p, None), (p, "sharegpt")):
            report = validate(target, form=form, stage="sft")
            errs = [f for f in report.findings if f.severity == ERROR]
            assert errs == [], (target, form, errs)
        bare = root / "bare"
        bare.mkdir()
        (bare / name).write_bytes(p.read_bytes())
        report = validate(bare / name)
        assert report.detected == {name: "sharegpt"}
        assert [f for f in report.findings if f.severity == ERROR] == []


# -- the record loop's fast path (fmtkit/record_loop.py) never hides a finding ------------------------

from fmtkit.record_loop import CLEAN, CLEAN_AND_VALID, FAST_COVERED, _CleanConversation, _record_rules, _SchemaView  # noqa: E402

_REPO = Path(__file__).resolve().parent.parent


def _fast_views() -> list[EntryView]:
    views = list(VIEWS)
    info = json.loads((_REPO / "dataset" / "dataset_info.json").read_text(encoding="utf-8"))
    extra = {
        "partial_tags": {"file_name": "d.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"},
                         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
        "kto": {"file_name": "d.jsonl", "formatting": "sharegpt", "columns": {"messages": "conversations", "kto_tag": "kto_tag"}},
    }  # fmt: skip
    for name, raw in {**info, **extra}.items():
        if isinstance(raw, dict) and "file_name" in raw:
            entry = DatasetEntry.from_dict(name, raw, _REPO / "dataset")
            views += [EntryView.of(entry, root=_REPO / "dataset", stage=s) for s in (None, "sft", "kto")]
    return views


FAST_VIEWS = _fast_views()
near_text = st.sampled_from(["Hi", "你好", " ", "", "\u3000", "\t\n", "a <image> b", "<video>", "<b>", "x<audio"]) | text
near_role = st.sampled_from(ROLES)


@st.composite
def near_conversations(draw):
    """Records close to clean ones (both tag conventions), with small defects now and then."""
    rnd = draw(st.randoms(use_true_random=False))  # uniform odds: hypothesis' own draws lean to edge values
    rt, ct = rnd.choice([("from", "value"), ("role", "content")])
    users, assistants = (["human", "observation"], ["gpt", "function_call"]) if rt == "from" else (["user", "tool"], ["assistant"])
    msgs = []
    if rnd.random() < 0.25:
        msgs.append({rt: "system", ct: rnd.choice(["Be brief.", "Be brief.", " ", "<image>"])})
    for i in range(rnd.choice([1, 2, 2, 2, 3, 4, 4, 6])):
        role = rnd.choice(assistants[:1] if i % 2 else users[:1]) if rnd.random() < 0.85 else rnd.choice(ROLES + users + assistants)
        m = {rt: role, ct: rnd.choice(["fine", "好的"]) if rnd.random() < 0.85 else draw(near_text)}
        if i % 2 and rnd.random() < 0.2:  # a function call answers, its JSON now and then malformed
            m = {rt: assistants[-1], ct: rnd.choice(NEAR_CALLS[:2]) if rnd.random() < 0.6 else rnd.choice(NEAR_CALLS)}
        if rnd.random() < 0.05:
            m[rnd.choice(["weight", "tool_calls", "name", "valeu", rt])] = draw(scalars)
        if rnd.random() < 0.03:
            del m[ct]
        if rnd.random() < 0.02:
            m = draw(scalars)
        msgs.append(m)
    rec = {rnd.choice(["conversations", "conversations", "messages"]): msgs}
    if rnd.random() < 0.4:  # a preference pair, mostly well formed
        for side in ("chosen", "rejected"):
            content = rnd.choice(["fine", "好的"]) if rnd.random() < 0.8 else rnd.choice([" ", "", "<image>", "a <video>", draw(near_text)])
            m = {rt: rnd.choice(assistants[:1]) if rnd.random() < 0.85 else rnd.choice(ROLES), ct: content}
            if rnd.random() < 0.05:
                m[rnd.choice(["weight", "name", rt])] = draw(scalars)
            rec[side] = m if rnd.random() < 0.97 else draw(scalars)
    for key in ("system", "tools", "kto_tag", "images"):
        if rnd.random() < 0.15:
            rec[key] = rnd.choice(["", "Be brief.", None, True, "[]", [], 0])
    if rnd.random() < 0.3:
        rec["tools"] = rnd.choice(NEAR_TOOLS[:2]) if rnd.random() < 0.6 else rnd.choice(NEAR_TOOLS)
    return rec


# function call texts and tools strings: the first two of each are good, the rest have one defect each
NEAR_CALLS = ['{"name": "f", "arguments": {"a": 1}}', '[{"name": "f", "arguments": "{\\"a\\": 1}"}]', "[]", '{"name": "f"}',
              '{"name": 1, "arguments": {}}', "f(1)", '{"name": "f", "arguments": "x"}', '"f"', "[1]", " ", "<image>", '{"name": "<video>", "arguments": {}}']  # fmt: skip
NEAR_TOOLS = ['[{"name": "f", "parameters": {"type": "object"}}]', '[{"type": "function", "function": {"name": "f"}}]',
              '{"name": "f"}', '[{"name": 1}]', "[{name: f}]", "null", '"f"', "[1]", '[{"function": "f"}]', " "]  # fmt: skip


@settings(max_examples=int(300 * SCALE), deadline=None)
@given(st.lists(near_conversations(), min_size=1, max_size=6))
def test_fast_path_never_hides_a_finding(recs):
    assert_fast_path_sound(_CleanConversation, recs)


def assert_fast_path_sound(fast_path, recs: list) -> None:
    """A record ``fast_path`` calls clean gets no finding from a rule it covers, and CLEAN_AND_VALID passes the schema."""
    for view in FAST_VIEWS:
        checks = _record_rules(view)
        schema = _SchemaView(view, view.entry.form)
        fast = fast_path.make(view, {c[0] for c in checks}, schema.name)
        if fast is None:
            continue
        for rec in recs:
            state = fast.clean(rec)
            if state:
                for code, _, _, check in checks:
                    if code in fast.covers:
                        assert not check(rec, view), (view.entry.name, code, rec)
            if state == CLEAN_AND_VALID:
                assert schema.validator.is_valid(schema.project(rec)), (view.entry.name, schema.name, rec)


def test_fast_path_applies_to_the_common_entries():
    applies = {v.entry.name for v in FAST_VIEWS if _CleanConversation.make(v, {c[0] for c in _record_rules(v)})}
    assert {"<sharegpt>", "<openai>", "sharegpt_demo", "openai_demo", "sharegpt_kto_demo"} <= applies
    skips_schema = {
        v.entry.name for v in FAST_VIEWS
        if (f := _CleanConversation.make(v, {c[0] for c in _record_rules(v)}, _SchemaView(v, v.entry.form).name)) and f.schema
    }  # fmt: skip
    assert {"<sharegpt>", "<openai>", "sharegpt_demo", "openai_demo"} <= skips_schema
    assert "sharegpt_kto_demo" not in skips_schema
    clean = _CleanConversation.make(VIEWS[[v.entry.name for v in VIEWS].index("<sharegpt>")], FAST_COVERED)
    assert clean.clean({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]})
    assert not clean.clean({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": " "}]})
    # tool conversations too: a well-formed call and tools string, and not once either is malformed
    call = [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": NEAR_CALLS[0]}, {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]
    assert clean.clean({"conversations": call, "tools": NEAR_TOOLS[0]})
    assert not clean.clean({"conversations": call, "tools": NEAR_TOOLS[2]})
    assert not clean.clean({"conversations": [*call[:1], {"from": "function_call", "value": NEAR_CALLS[3]}, *call[2:]], "tools": NEAR_TOOLS[0]})
    # a block of them at once, without looking at each record, and not once one call is malformed
    tool_recs = [{"conversations": call, "tools": NEAR_TOOLS[0]}, {"conversations": call[:1] + call[3:]}]
    assert clean._clean_messages(tool_recs, None) == CLEAN
    bad_call = {"conversations": [*call[:1], {"from": "function_call", "value": NEAR_CALLS[5]}, *call[2:]]}
    assert clean._clean_messages([*tool_recs, bad_call], None) == 0
    assert clean._clean_messages([{"conversations": [call[0], {"from": None, "value": "x"}]}], None) == 0
    # preference pairs: a block of clean pairs passes the rules and the schema at once; an identical pair does not
    pairs = EntryView.of(DatasetEntry.for_file("sharegpt-preference"))
    fast = _CleanConversation.make(pairs, {c[0] for c in _record_rules(pairs)}, _SchemaView(pairs, "sharegpt-preference").name)
    pair = {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": "Go"}}
    assert fast.clean_block([pair, pair], None) == CLEAN_AND_VALID
    assert fast.clean_block([pair, pair | {"rejected": pair["chosen"]}], None) == 0


# -- the Alpaca fast path (record_loop._CleanAlpaca) never hides a finding either ------------------

from fmtkit.record_loop import _CleanAlpaca  # noqa: E402

near_alpaca_text = st.sampled_from(["Add 1 and 2", "你好", "3", "a < b", "<b>x</b>"]) | near_text


@st.composite
def near_alpaca(draw):
    """Records close to clean Alpaca ones (SFT, preference, KTO, pretrain), with small defects now and then."""
    rnd = draw(st.randoms(use_true_random=False))
    rec = {}
    for key, odds in (("instruction", 0.95), ("input", 0.7), ("output", 0.9), ("text", 0.3), ("chosen", 0.2), ("rejected", 0.2),
                      ("system", 0.15), ("history", 0.1), ("kto_tag", 0.1), ("images", 0.05)):  # fmt: skip
        if rnd.random() < odds:
            rec[key] = rnd.choice(["Add 1 and 2", "3", ""]) if rnd.random() < 0.8 else draw(near_alpaca_text | scalars | json_values)
    if "history" in rec and rnd.random() < 0.5:
        rec["history"] = [[draw(near_alpaca_text), draw(near_alpaca_text)]]
    return rec


@settings(max_examples=int(300 * SCALE), deadline=None)
@given(st.lists(near_alpaca(), min_size=1, max_size=6))
def test_alpaca_fast_path_never_hides_a_finding(recs):
    assert_fast_path_sound(_CleanAlpaca, recs)


def test_alpaca_fast_path_applies_to_the_common_entries():
    def fast(v):
        return _CleanAlpaca.make(v, {c[0] for c in _record_rules(v)}, _SchemaView(v, v.entry.form).name)

    applies = {v.entry.name for v in FAST_VIEWS if fast(v)}
    assert {"<alpaca>", "<alpaca-preference>", "<alpaca-kto>", "<alpaca-pretrain>", "alpaca_demo", "alpaca_preference_demo", "pretrain_demo"} <= applies
    assert "alpaca_mm_demo" not in applies  # media columns: the media rules run
    skips_schema = {v.entry.name for v in FAST_VIEWS if (f := fast(v)) and f.schema}
    assert {"<alpaca>", "alpaca_demo"} <= skips_schema
    assert not {"<alpaca-preference>", "<alpaca-kto>", "<alpaca-pretrain>"} & skips_schema
    clean = fast(VIEWS[[v.entry.name for v in VIEWS].index("<alpaca>")])
    assert clean.clean({"instruction": "Add 1 and 2", "input": "", "output": "3"}) == CLEAN_AND_VALID
    assert clean.clean({"instruction": "is a < b?", "input": "", "output": "yes"}) == CLEAN_AND_VALID  # '<' but no placeholder
    assert not clean.clean({"instruction": "Add 1 and 2", "input": "", "output": " "})
    assert not clean.clean({"instruction": "Describe <image>", "input": "", "output": "3"})


# -- the TRL string-form fast path (record_loop._CleanStrings) never hides a finding either ------------------

from fmtkit.record_loop import _CleanMessages, _CleanStrings, _check_sample, _sample_rules  # noqa: E402


@st.composite
def near_trl_strings(draw):
    """Records close to clean ones of TRL's standard forms: one form's columns, now and then a column more or less."""
    rnd = draw(st.randoms(use_true_random=False))
    keys = list(rnd.choice(list(_CleanStrings.COLUMNS.values()))) + (["label"] if rnd.random() < 0.3 else [])
    if rnd.random() < 0.1:
        keys.append(rnd.choice(["prompt", "completion", "chosen", "text", "tools", "images", "extra"]))
    if rnd.random() < 0.1:
        keys.pop(rnd.randrange(len(keys)))
    rec = {k: rnd.choice(["2+2?", "4", "5"]) if rnd.random() < 0.85 else draw(near_alpaca_text | scalars | json_values) for k in keys}
    if "label" in rec and rnd.random() < 0.8:
        rec["label"] = rnd.random() < 0.5
    return rec


@settings(max_examples=int(300 * SCALE), deadline=None)
@given(st.lists(near_trl_strings(), min_size=1, max_size=6))
def test_trl_strings_fast_path_never_hides_a_finding(recs):
    for form in _CleanStrings.COLUMNS:
        fast = _CleanStrings.make(form)
        read, checks = _sample_rules(None, form)
        for rec in recs:
            if fast.clean(rec):
                found: list = []
                assert not _check_sample(read, checks, rec, "d.jsonl", 1, 0, found.append) and found == [], (form, rec, found)


@settings(max_examples=int(300 * SCALE), deadline=None)
@given(st.lists(near_conversations(), min_size=1, max_size=6))
def test_trl_messages_fast_path_never_hides_a_finding(recs):
    fast = _CleanMessages.make("trl-messages")
    read, checks = _sample_rules(None, "trl-messages")
    recs = recs + [{"messages": next(iter(r.values()))} for r in recs]  # the messages alone, as the form holds them
    for rec in recs:
        if fast.clean(rec):
            found: list = []
            assert not _check_sample(read, checks, rec, "d.jsonl", 1, 0, found.append) and found == [], (rec, found)
    assert fast.clean_block(recs) == all(map(fast.clean, recs))
    assert fast.clean({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]})


# -- convert's fast lanes (fmtkit/forms/lanes.py) take only records validate finds no error in ----------

from fmtkit.forms import FORMS  # noqa: E402
from fmtkit.record_loop import RecordChecker  # noqa: E402
from fmtkit.rules import json_type  # noqa: E402

from fmtkit.forms.lanes import TARGETS  # noqa: E402

# the output columns a lane is built for: each target's own columns, alone, then a system column or TRL's tools
LANE_TEMPLATES = [{"messages": None}, {"conversations": None}, {"conversations": None, "system": ""}]
LANE_TEMPLATES += [{**dict.fromkeys(own), **({"system": ""} if system else {"tools": None})} for _, own, _, system in TARGETS.values()]
LANE_TEMPLATES += [dict.fromkeys(own) for _, own, _, _ in TARGETS.values()]
# UTF-8 (a lone surrogate becomes bytes that are not UTF-8, which validate reports), or ASCII with escapes
SPELL = [lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass"), lambda r: json.dumps(r).encode()]


ODD_VALUES = ["", " ", "\u3000", "<image>", "a<video>", "\ud800", None, 3, [], ["a"], {"a": 1}, True]


@st.composite
def lane_records(draw):
    """Clean conversation and Alpaca records (both tag conventions; SFT, preference and KTO), half of them with one defect."""
    rnd = draw(st.randoms(use_true_random=False))
    pick = rnd.choice
    kind = pick(["sft", "sft", "preference", "kto"])
    if rnd.random() < 0.5:
        rt, ct, user, assistant = pick([("from", "value", "human", "gpt"), ("role", "content", "user", "assistant")])
        n = pick([2, 2, 4, 6]) - (kind == "preference")
        msgs = [{rt: user if i % 2 == 0 else assistant, ct: pick(["Hi", "好的", "a\nb", ""])} for i in range(n)]
        rec: dict = {pick(["conversations", "messages"]): msgs}
        if kind == "preference":
            rec["chosen"], rec["rejected"] = {rt: assistant, ct: pick(["Yes", "好"])}, {rt: assistant, ct: "No"}
        elif kind == "kto":
            rec["kto_tag"] = pick([True, False])
        if rnd.random() < 0.3:
            rec["system"] = pick(["Be brief.", ""])
        if rnd.random() < 0.5:
            how = pick(["content", "role", "drop", "system-message", "system-value", "message-key", "record-key", "empty", "not-list", "answer", "label"])
            m = pick(msgs) if msgs else {}
            if how == "content":
                m[ct] = pick(ODD_VALUES)
            elif how == "role":
                m[rt] = pick(["observation", "function_call", "tool", "system", assistant, user, 3, None])
            elif how == "drop":
                msgs.pop(rnd.randrange(len(msgs)))
            elif how == "system-message":
                msgs.insert(0, {rt: "system", ct: pick(["S", *ODD_VALUES])})
            elif how == "system-value":
                rec["system"] = pick(ODD_VALUES)
            elif how == "message-key":
                m[pick(["weight", "name", "tool_calls", "valeu"])] = pick([0, 1, "x", None])
            elif how == "record-key":
                rec[pick(["id", "tools", "images", "kto_tag", "chosen"])] = pick(["", "x", None, [], ["a.png"], True])
            elif how == "empty":
                msgs.clear()
            elif how == "answer":
                side = pick(["chosen", "rejected"])
                answer = rec.setdefault(side, {rt: assistant, ct: "A"})
                if rnd.random() < 0.3:
                    rec[side] = pick(ODD_VALUES)
                else:
                    answer[pick([rt, ct, "name"])] = pick([user, "function_call", "<image>", *ODD_VALUES])
            elif how == "label":
                rec["kto_tag"] = pick([1, 0, "true", None, [], True])
            else:
                rec[next(iter(rec))] = pick(ODD_VALUES)
        return rec
    rec = {"instruction": pick(["Hi", "好的", "<b>x</b>"])}
    if kind == "preference":
        rec["chosen"], rec["rejected"] = pick(["Fine.", "a\nb"]), pick(["No.", ""])
    else:
        rec["output"] = pick(["Fine.", "a\nb", ""])
    if kind == "kto":
        rec["kto_tag"] = pick([True, False])
    if rnd.random() < 0.7:
        rec["input"] = pick(["", "x"])
    if rnd.random() < 0.3:
        rec["system"] = pick(["S", ""])
    if rnd.random() < 0.1:
        rec["history"] = []
    if rnd.random() < 0.5:
        key = pick(["instruction", "input", "output", "system", "history", "id", "chosen", "rejected", "kto_tag"])
        if rnd.random() < 0.2:
            rec.pop(key, None)
        else:
            rec[key] = pick([*ODD_VALUES, [["a", "b"]], [["a"]], False])
    return rec


@settings(max_examples=int(300 * SCALE), deadline=None)
@given(st.lists(lane_records(), min_size=1, max_size=6), st.sampled_from([0, 1]))
def test_fast_lanes_take_only_records_without_errors(recs, spelling):
    for view in FAST_VIEWS:
        if view.stage is not None:
            continue  # convert checks without a stage
        for form in FORMS.values():
            for factory in form.direct.values():
                for template in LANE_TEMPLATES:
                    lane = factory(view.entry, template)
                    if lane is None:
                        continue
                    for rec in recs:
                        line = SPELL[spelling](rec)
                        got = lane(line)
                        if got is None:
                            continue
                        problems: list[Finding] = []
                        RecordChecker("d.jsonl", view, view.entry.form, problems).check(0, 1, rec, line)
                        assert not [f for f in problems if f.severity == ERROR], (view.entry.name, rec, problems)
                        shape = got[1]
                        assert shape.keys() == rec.keys(), (view.entry.name, rec, shape)
                        assert all(json_type(shape[k]) == json_type(rec[k]) for k in rec if rec[k] is not None), (rec, shape)


def test_fast_lanes_take_the_common_records_of_the_bundled_entries():
    lines = {"sharegpt_demo": b'{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}',
             "<sharegpt>": b'{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "system": "S"}',
             "alpaca_demo": b'{"instruction": "Hi", "input": "", "output": "Yo"}',
             "<alpaca>": b'{"instruction": "Hi", "input": "x", "output": "Yo"}'}  # fmt: skip
    views = {v.entry.name: v for v in FAST_VIEWS if v.stage is None}
    for name, line in lines.items():
        entry = views[name].entry
        target = "openai" if entry.is_conversation else "sharegpt"
        template = {"messages": None} if entry.is_conversation else {"conversations": None, "system": ""}
        assert FORMS[entry.form].direct[target](entry, template)(line) is not None, name

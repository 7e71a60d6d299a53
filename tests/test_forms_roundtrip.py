"""Property tests: every form round-trips what it can express, and reports exactly what it cannot.

Canonical Samples are generated; each form's writer either reports no loss,
and then read(write(s)) == s (and so every pair of such forms round-trips
through each other), or reports losses whose codes are exactly those the
capability table below predicts.
"""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmtkit.dataset_info import DatasetEntry
from fmtkit.forms import FORMS, is_droppable
from fmtkit.forms.lanes import TARGETS
from fmtkit.sample import Sample, ToolCall, Turn

ALL = ("sft", "preference", "kto", "pretrain", "prompt")
LF = dict(system=True, tools=True, media=True, extra=True, keys=True)
# form -> what it can hold (the table in docs/convert.md)
CAPS: dict[str, dict] = {
    "alpaca": dict(kinds={"sft", "prompt"}, calls=False, order="alternate", weight=False, ids=False, **LF | {"keys": False}),
    "alpaca-preference": dict(kinds={"preference"}, calls=False, order="alternate", weight=False, ids=False, **LF | {"keys": False}),
    "alpaca-kto": dict(kinds={"kto"}, calls=False, order="alternate", weight=False, ids=False, **LF | {"keys": False}),
    "alpaca-pretrain": dict(kinds={"pretrain"}, system=False, tools=False, media=True, extra=True, keys=False),
    "sharegpt": dict(kinds={"sft"}, calls=True, order="alternate", weight=False, ids=False, **LF),
    "sharegpt-preference": dict(kinds={"preference"}, calls=True, order="alternate", weight=False, ids=False, **LF),
    "sharegpt-kto": dict(kinds={"kto"}, calls=True, order="alternate", weight=False, ids=False, **LF),
    "openai": dict(kinds={"sft"}, calls=True, order="any", weight=True, ids=True, **LF),
    "trl-text": dict(kinds={"pretrain"}, system=False, tools=False, media=False, extra=True, keys=False),
    "vendor-preference": dict(kinds={"preference"}, calls=True, order="any", weight=False, ids=True,
                              system=True, tools=True, media=False, extra=False, keys=False),  # fmt: skip
}
for _name, _kind in (("trl-messages", "sft"), ("trl-prompt-only", "prompt"), ("trl-prompt-completion", "sft"),
                     ("trl-preference", "preference"), ("trl-preference-implicit", "preference"), ("trl-unpaired", "kto")):  # fmt: skip
    CAPS[_name] = dict(kinds={_kind}, calls=True, order="any", weight=False, ids=True, system=True, tools=True, media=False, extra=True, keys=True)


def entry_for(form: str) -> DatasetEntry | None:
    """The entry a written file of ``form`` is registered with (every column the writer may emit)."""
    f = FORMS[form]
    if not f.roles:
        return None
    raw = {"file_name": "out.jsonl", **{k: v for k, v in (f.entry or {}).items()}, "columns": dict(f.roles)}
    # the OpenAI form itself takes any turn order: read it as a bare file (an entry of a dataset_info.json
    # follows LLaMA-Factory's order, see fmtkit.alignment.order_of)
    return DatasetEntry.from_dict(f"<{form}>" if form == "openai" else form, raw)


ENTRIES = {name: entry_for(name) for name in FORMS}

# ---- strategies -------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
words = st.sampled_from(["hi", "", "a\nb", "你好", " x ", "<tool>", "{}", "\n"])
content = st.one_of(words, texts)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(st.text(max_size=5), json_values, max_size=3)
ids = st.one_of(st.none(), st.none(), st.text("abc123", min_size=1, max_size=4))


@st.composite
def calls(draw, with_ids: bool) -> list[ToolCall]:
    n = draw(st.integers(1, 2))
    return [ToolCall(draw(st.sampled_from(["get", "search", "f"])), draw(arguments), draw(ids) if with_ids else None) for _ in range(n)]


@st.composite
def answer(draw, tools: bool, ids_ok: bool, weight: bool) -> Turn:
    w = draw(st.sampled_from([None, None, 0, 1])) if weight else None
    if tools and draw(st.booleans()):
        return Turn("assistant", draw(st.sampled_from(["", "", "calling"])), draw(calls(ids_ok)), weight=w)
    return Turn("assistant", draw(content), weight=w)


@st.composite
def conversation(draw, end_with_user: bool) -> list[Turn]:
    """Prompt-side/answer-side alternation most of the time; sometimes any order."""
    style = draw(st.sampled_from(["simple", "simple", "tools", "free"]))
    ids_ok = draw(st.booleans())
    weight = draw(st.integers(0, 4)) == 0
    if style == "free":
        roles = draw(st.lists(st.sampled_from(["user", "assistant", "tool"]), min_size=1, max_size=5))
        turns = [Turn(r, draw(content)) if r != "assistant" else draw(answer(True, ids_ok, weight)) for r in roles]
        if not end_with_user and turns[-1].role != "assistant":
            turns.append(draw(answer(True, ids_ok, weight)))
        if end_with_user and turns[-1].role == "assistant":
            turns.append(Turn("user", draw(content)))
        return turns
    tools = style == "tools"
    turns = []
    for _ in range(draw(st.integers(1, 3))):
        if turns and tools and turns[-1].tool_calls:
            turns.append(Turn("tool", draw(content), tool_call_id=draw(ids) if ids_ok else None))
        else:
            turns.append(Turn("user", draw(content)))
        turns.append(draw(answer(tools, ids_ok, weight)))
    if end_with_user:
        turns.pop()
    return turns


@st.composite
def samples(draw, kinds: tuple[str, ...] = ALL) -> Sample:
    kind = draw(st.sampled_from(kinds))
    s = Sample()
    if kind == "pretrain":
        s.text = draw(content)
    elif kind == "preference":
        s.turns = draw(conversation(end_with_user=True))
        s.chosen = draw(answer(True, False, False))
        s.rejected = draw(answer(True, False, False))
    else:
        s.turns = draw(conversation(end_with_user=kind == "prompt"))
        if kind == "kto":
            s.label = draw(st.booleans())
    if kind != "pretrain" or draw(st.booleans()):
        s.system = draw(st.sampled_from(["", "", "Be brief.", "系统"]))
    if kind != "pretrain" and draw(st.integers(0, 3)) == 0:
        s.tools = [{"name": "get", "description": draw(texts), "parameters": {"type": "object"}}]
    if draw(st.integers(0, 4)) == 0:
        s.images = draw(st.lists(st.sampled_from(["a.png", "media/b.jpg"]), min_size=1, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        s.extra = {"id": draw(st.integers(0, 99)), "source": draw(texts)}
    if draw(st.integers(0, 4)) == 0:  # message keys no field holds (OpenAI's name, reasoning_content, ...)
        for t in [*s.turns, *(x for x in (s.chosen, s.rejected) if x is not None)]:
            t.extra = draw(message_keys)
    return s


message_keys = st.sampled_from([{}, {"name": "ann"}, {"reasoning_content": "think", "name": None}])


# ---- the oracle ---------------------------------------------------------------------


def alternates(turns: list[Turn]) -> bool:
    return all((t.role == "assistant") == (i % 2 == 1) for i, t in enumerate(turns))


def expected_codes(form: str, s: Sample) -> set[str] | None:
    """The loss codes ``form`` must report for ``s``; None where only "kind" is certain."""
    cap = CAPS[form]
    if s.kind not in cap["kinds"]:
        return None
    out = set()
    turns = [*s.turns, *(t for t in (s.chosen, s.rejected) if t is not None)]
    if s.system and not cap["system"]:
        out.add("system")
    if s.tools and not cap["tools"]:
        out.add("tools")
    if (s.images or s.videos or s.audios) and not cap["media"]:
        out.add("media")
    if s.extra and not cap["extra"]:
        out.add("extra-fields")
    holds_keys = cap["keys"] and not (form == "trl-preference-implicit" and not s.turns)  # no prompt: written as strings
    if any(t.extra for t in [*s.turns, *(x for x in (s.chosen, s.rejected) if x is not None)]) and not holds_keys:
        out.add("message-fields")
    if any(t.weight is not None for t in turns) and not cap["weight"]:
        out.add("weight")
    if not cap.get("calls", False):
        if any(t.tool_calls for t in turns):
            out.add("tool-calls")
        if any(t.role == "tool" for t in s.turns):
            out.add("tool-results")
    elif form.startswith("sharegpt"):
        if any(t.tool_calls and t.content for t in turns):
            out.add("tool-call-text")
        if any(c.id is not None for t in turns for c in t.tool_calls) or any(t.tool_call_id is not None for t in s.turns):
            out.add("tool-call-ids")
    checks_order = cap.get("order") == "alternate"
    if form.startswith("alpaca") and any(t.role == "tool" for t in s.turns):
        checks_order = False  # reported as tool results, not as turn order
    if checks_order:
        if not alternates(s.turns) or (s.kind == "preference" and s.turns and s.turns[-1].role == "assistant"):
            out.add("role-order")
    if s.kind == "preference" and not s.turns and form != "trl-preference-implicit":
        out.add("implicit-prompt")
    if form == "trl-preference-implicit" and not s.turns and s.system:
        out.add("system")  # no prompt turns: written in the standard (string) style
    if form == "trl-preference-implicit" and not s.turns and any(t.tool_calls for t in turns):
        out.add("tool-calls")
    if form in ("trl-prompt-only", "trl-prompt-completion", "trl-unpaired") and s.kind in cap["kinds"] and not s.prompt_turns:
        out.add("role-order")  # TRL's chat template needs a message to end the prompt
    if form.startswith("alpaca") and not form.endswith("pretrain") and s.kind in cap["kinds"]:
        prompt = s.turns if s.kind in ("preference", "prompt") else s.turns[:-1]
        if not prompt:
            out.add("role-order")
    return out


def strip(s: Sample, codes: set[str]) -> Sample:
    """``s`` without what drop-only losses leave out."""
    import copy

    s = copy.deepcopy(s)
    if "extra-fields" in codes:
        s.extra = {}
    if "message-fields" in codes:
        for t in [*s.turns, *(x for x in (s.chosen, s.rejected) if x is not None)]:
            t.extra = {}
    if "tool-call-ids" in codes:
        for t in [*s.turns, *(x for x in (s.chosen, s.rejected) if x is not None)]:
            t.tool_call_id = None
            for c in t.tool_calls:
                c.id = None
    return s


def through_json(record: dict) -> dict:
    return orjson.loads(orjson.dumps(record))


def round_trip(form: str, s: Sample, **kw) -> tuple[Sample | None, set[str]]:
    record, losses = FORMS[form].write(s, **kw)
    codes = {loss.code for loss in losses}
    if any(not is_droppable(c) for c in codes):
        return None, codes
    return FORMS[form].read(through_json(record), ENTRIES[form]), codes


# ---- the properties -------------------------------------------------------------------

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(samples())
def test_each_form_round_trips_or_reports_exactly_what_it_drops(s: Sample):
    for form in FORMS:
        record, losses = FORMS[form].write(s)
        got = {loss.code for loss in losses}
        want = expected_codes(form, s)
        if want is None:
            assert "kind" in got, (form, s.kind)
            continue
        assert got == want, (form, s)
        back, codes = round_trip(form, s)
        if back is not None:
            assert back == strip(s, codes), form


@SETTINGS
@given(samples())
def test_trl_standard_style_reports_message_keys(s: Sample):
    has_keys = any(t.extra for t in [*s.turns, *(x for x in (s.chosen, s.rejected) if x is not None)])
    for form in ("trl-prompt-only", "trl-prompt-completion", "trl-preference", "trl-unpaired"):
        codes = {loss.code for loss in FORMS[form].write(s, conversational=False)[1]}
        assert ("message-fields" in codes) == has_keys, form


@SETTINGS
@given(samples())
def test_trl_standard_style_round_trips_when_lossless(s: Sample):
    for form in ("trl-prompt-only", "trl-prompt-completion", "trl-preference", "trl-unpaired"):
        back, codes = round_trip(form, s, conversational=False)
        if back is not None and not codes:
            assert back == s, form


@settings(max_examples=120, deadline=None)
@given(samples())
def test_every_pair_of_forms_that_both_express_a_sample_round_trips(s: Sample):
    lossless = [f for f in FORMS if not FORMS[f].write(s)[1]]
    for a in lossless:
        first = FORMS[a].read(through_json(FORMS[a].write(s)[0]), ENTRIES[a])
        for b in lossless:
            record, losses = FORMS[b].write(first)
            assert not losses, (a, b)
            again = FORMS[b].read(through_json(record), ENTRIES[b])
            assert again == s, (a, b)  # hints (Alpaca's input split) are not compared


# ---- OpenAI content as lists of typed parts ------------------------------------------------

plain_texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00<"), max_size=8)


@st.composite
def parts_conversation(draw) -> tuple[dict, dict]:
    """The same conversation twice: content as typed parts, and as strings with placeholders plus media columns."""
    parts_msgs, plain_msgs, media = [], [], {"images": [], "audios": []}
    system = draw(st.sampled_from(["", "S"]))
    if system:
        pieces = draw(st.lists(plain_texts, min_size=1, max_size=2))
        parts_msgs.append({"role": "system", "content": [{"type": "text", "text": p} for p in pieces]})
        plain_msgs.append({"role": "system", "content": "".join(pieces)})
    for _ in range(draw(st.integers(1, 3))):
        for role in ("user", "assistant"):
            parts, plain = [], []
            for _ in range(draw(st.integers(0 if role == "user" else 1, 4))):
                kind = draw(st.sampled_from(["text", "text", "image", "input_image", "audio"]) if role == "user" else st.just("text"))
                if kind == "text":
                    t = draw(plain_texts)
                    parts.append({"type": draw(st.sampled_from(["text", "input_text", "output_text"])), "text": t})
                    plain.append(t)
                elif kind == "audio":
                    data, fmt = draw(st.sampled_from(["QUJD", "UklGRg=="])), draw(st.sampled_from(["wav", "mp3"]))
                    parts.append({"type": "input_audio", "input_audio": {"data": data, "format": fmt}})
                    plain.append("<audio>")
                    media["audios"].append(f"data:audio/{fmt};base64,{data}")
                else:
                    url = draw(st.sampled_from(["a.png", "img/b.jpg", "https://x.org/c.png", "data:image/png;base64,AAAA"]))
                    detail = draw(st.sampled_from([None, "auto"]))
                    if kind == "image":
                        payload = {"url": url} if detail is None else {"url": url, "detail": detail}
                        parts.append({"type": "image_url", "image_url": payload if draw(st.booleans()) else url})
                    else:
                        parts.append({"type": "input_image", "image_url": url, **({} if detail is None else {"detail": detail})})
                    plain.append("<image>")
                    media["images"].append(url)
            parts_msgs.append({"role": role, "content": parts})
            plain_msgs.append({"role": role, "content": "".join(plain)})
    plain_record = {"messages": plain_msgs, **{k: v for k, v in media.items() if v}}
    return {"messages": parts_msgs}, plain_record


@SETTINGS
@given(parts_conversation())
def test_openai_parts_read_as_strings_with_placeholders_and_media(pair):
    parts_record, plain_record = pair
    plain_entry = DatasetEntry.for_file("openai", [plain_record])
    from_parts = FORMS["openai"].read(through_json(parts_record), ENTRIES["openai"])
    from_plain = FORMS["openai"].read(through_json(plain_record), plain_entry)
    assert from_parts == from_plain
    for form in FORMS:  # the same losses (none from the parts themselves) and the same rows, in every form
        assert FORMS[form].write(from_parts) == FORMS[form].write(from_plain), form
    record, losses = FORMS["openai"].write(from_parts)
    assert losses == []
    assert FORMS["openai"].read(through_json(record), ENTRIES["openai"]) == from_parts


# ---- the fast lanes give exactly the rows of the general path ----------------------------

perturb = st.sampled_from(["none", "none", "system-message", "empty-system", "extra", "tools", "bad-content", "odd", "history", "null-input",
                           "input", "answer-role", "answer-content", "label"])  # fmt: skip


def _perturbed(record: dict, how: str) -> dict:
    record = orjson.loads(orjson.dumps(record))
    msgs = record.get("conversations")
    if how == "system-message" and msgs is not None:
        msgs.insert(0, {"from": "system", "value": "from message"})
        record["system"] = "column"
    elif how == "empty-system":
        record["system"] = ""
    elif how == "extra":
        record["id"] = 1
    elif how == "tools":
        record["tools"] = '[{"name": "f"}]'
    elif how == "bad-content" and msgs:
        msgs[0]["value"] = 3
    elif how == "bad-content":
        record["output"] = None
    elif how == "odd" and msgs:
        msgs.pop()
    elif how == "history" and msgs is None:
        record["history"] = [["a", "b"]]
    elif how == "null-input" and msgs is None:
        record["input"] = None
    elif how == "input" and msgs is None and "input" in record:  # the instruction/input split, a droppable loss
        record["input"] = "more"
    elif how.startswith("answer-") and isinstance(record.get("chosen"), dict):
        record["chosen"]["from" if how == "answer-role" else "value"] = "human" if how == "answer-role" else 3
    elif how.startswith("answer-") and "chosen" in record:
        record["chosen"] = 3
    elif how == "label" and "kto_tag" in record:
        record["kto_tag"] = 1
    return record


def _general(source: str, target: str, record: dict, entry: DatasetEntry):
    """The general path's row and the codes of its (droppable) losses, or None where it skips the record."""
    from fmtkit.forms import ReadError

    try:
        sample = FORMS[source].read(record, entry)
    except ReadError:
        return None
    row, losses = FORMS[target].write(sample)
    codes = {loss.code for loss in losses}
    return None if any(not is_droppable(c) for c in codes) else (row, codes)


def _filled(columns: dict, row: dict) -> dict:
    """The general path's row with the output's columns filled in, as convert writes it."""
    return {**columns, **row}


SPELLINGS = {
    "orjson": orjson.dumps,
    "ascii": lambda r: json.dumps(r, ensure_ascii=True).encode(),
    "spaced": lambda r: json.dumps(r, ensure_ascii=False, indent=None, separators=(" , ", " : ")).encode(),
}
LANE_COLUMNS = {"openai": [{"messages": None}, {"messages": None, "tools": "", "id": None}],
                "sharegpt": [{"conversations": None}, {"conversations": None, "system": ""}, {"conversations": None, "system": "", "images": [], "id": None}]}
for _target, (_, _own, _, _system) in TARGETS.items():  # each target's own columns, then those the first records may add
    LANE_COLUMNS[_target] = [dict.fromkeys(_own), {**dict.fromkeys(_own), **({"system": ""} if _system else {}), "tools": None, "id": None}]


@settings(max_examples=300, deadline=None)
@given(samples(), perturb, st.sampled_from(["registered", "bare", "custom"]), st.sampled_from(sorted(SPELLINGS)))
def test_fast_lanes_match_the_general_path(s: Sample, how: str, variant: str, spelling: str):
    lanes = [(src, dst) for src, f in FORMS.items() for dst in f.direct]
    assert {("sharegpt", "openai"), ("alpaca", "sharegpt"), ("sharegpt-kto", "trl-unpaired"), ("alpaca-preference", "trl-preference")} <= set(lanes)
    for source, target in lanes:
        record, losses = FORMS[source].write(s)
        if any(loss.code == "kind" for loss in losses):
            continue
        record = _perturbed(record, how)
        entry = ENTRIES[source] if variant == "registered" else DatasetEntry.for_file(source)
        if variant == "custom" and source == "sharegpt":
            entry = DatasetEntry.from_dict("c", {"file_name": "x", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"},
                                                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}})  # fmt: skip
        line = SPELLINGS[spelling](record)
        for columns in LANE_COLUMNS[target]:
            lane = FORMS[source].direct[target](entry, columns)
            if columns == LANE_COLUMNS[target][0]:
                assert lane is not None
            if lane is None:
                continue
            fast = lane(line)
            slow = _general(source, target, record, entry)
            if fast is not None:
                assert slow is not None, (source, target, record)
                slow, codes = slow
                assert codes == ({fast[2].code} if fast[2] else set()), (source, target, record)
                filled = _filled(columns, slow)
                assert orjson.loads(fast[0]) == filled and list(orjson.loads(fast[0])) == list(filled), (source, target, record)
                assert fast[0].endswith(b"\n") and fast[0].count(b"\n") == 1


def test_fast_lanes_pass_on_lines_they_must_not_take():
    sharegpt = FORMS["sharegpt"].direct["openai"](DatasetEntry.for_file("sharegpt"), {"messages": None})
    good = b'{"conversations": [{"from": "human", "value": "%s"}, {"from": "gpt", "value": "A"}]}'
    assert sharegpt(good % "Q".encode()) is not None
    assert sharegpt(good % rb"\u4f60\ud83d\ude00") is not None  # escapes, a surrogate pair
    assert sharegpt(good % b"\xff\xfe") is None  # not UTF-8: validate reports FMT203
    assert sharegpt(good % rb"\ud800") is None  # a lone surrogate: not JSON
    assert sharegpt(good % b"<image>") is None  # a placeholder without an image: FMT602
    assert sharegpt(good.replace(b"gpt", b"observation") % b"Q") is None
    assert sharegpt(good.replace(b'"A"', b"3") % b"Q") is None  # not a string: FMT405
    assert sharegpt(good.replace(b"}]}", b'}], "id": 1}') % b"Q") is None  # an extra column: the general path carries it
    alpaca = FORMS["alpaca"].direct["sharegpt"](DatasetEntry.for_file("alpaca"), {"conversations": None})
    assert alpaca(b'{"instruction": "I", "input": "", "output": "O"}') is not None
    assert alpaca(b'{"instruction": "I", "input": "", "output": "O", "system": "S"}') is None  # no system column in the output
    assert alpaca(b'{"input": "x", "output": "O"}') is None  # no instruction: validate reports FMT301
    assert alpaca(b'{"instruction": "I", "output": null}') is None
    pair = FORMS["sharegpt-preference"].direct["trl-preference"](DatasetEntry.for_file("sharegpt-preference"), {"prompt": None, "chosen": None, "rejected": None})
    good = b'{"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "A"}, "rejected": %s}'
    assert pair(good % b'{"from": "gpt", "value": "B"}') is not None
    assert pair(good % b'{"from": "function_call", "value": "{\\"name\\": \\"f\\", \\"arguments\\": {}}"}') is None  # a tool call
    assert pair(good % b'{"from": "gpt", "value": ["B"]}') is None
    assert pair(good % b'"B"') is None  # not a message: FMT501
    assert pair(good.replace(b'}], "chosen"', b'}, {"from": "gpt", "value": "x"}], "chosen"') % b'{"from": "gpt", "value": "B"}') is None  # even
    kto = FORMS["alpaca-kto"].direct["trl-unpaired"](DatasetEntry.for_file("alpaca-kto"), {"prompt": None, "completion": None, "label": None})
    assert kto(b'{"instruction": "I", "input": "", "output": "O", "kto_tag": true}') is not None
    for label in (b"1", b'"true"', b"null"):  # not a boolean: FMT503
        assert kto(b'{"instruction": "I", "input": "", "output": "O", "kto_tag": %s}' % label) is None
    assert kto(b'{"instruction": "I", "input": "", "output": "O"}') is None


PLAIN = {  # one plain record of each source form that has lanes
    "alpaca": {"instruction": "Q", "input": "x", "output": "A"},
    "alpaca-preference": {"instruction": "Q", "input": "", "chosen": "A", "rejected": "B"},
    "alpaca-kto": {"instruction": "Q", "input": "", "output": "A", "kto_tag": False},
    "sharegpt": {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": "S"},
    "sharegpt-preference": {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "A"}, "rejected": {"from": "gpt", "value": "B"}},
    "sharegpt-kto": {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "kto_tag": True},
    "openai": {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
}  # fmt: skip


def test_every_fast_lane_takes_a_plain_record_of_its_source():
    for source, form in FORMS.items():
        for target, factory in form.direct.items():
            record, entry = PLAIN[source], DatasetEntry.for_file(source)
            columns = {k: None for k in FORMS[target].columns}  # every column the target may write, in its order
            lane = factory(entry, columns)
            assert lane is not None, (source, target)
            got = lane(orjson.dumps(record))
            assert got is not None, (source, target)
            row, codes = _general(source, target, record, entry)
            assert orjson.loads(got[0]) == {**columns, **row} and codes == ({got[2].code} if got[2] else set()), (source, target)

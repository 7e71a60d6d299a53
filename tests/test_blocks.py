"""The block path of ``fmtkit validate`` (JSON Lines read and checked many records at a time) reports what
the record-by-record path reports: the same findings, record numbers and lines, and the same file tally
(types, key sets, KTO labels, duplicate hashes), on clean, near-clean and odd records of every form.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_properties import FAST_VIEWS, SCALE, lane_records, near_conversations, records

from fmtkit import record_loop
from fmtkit.loading import iter_records, json_file
from fmtkit.record_loop import RecordChecker, check_path, check_records
from fmtkit.rules import arrow_types
from fmtkit.rules.whole_file import file_findings

ROOT = Path(tempfile.mkdtemp(prefix="fmtkit-blocks-"))
TRL_FORMS = ["trl-text", "trl-prompt-only", "trl-prompt-completion", "trl-preference", "trl-unpaired", "trl-messages", "unknown"]
# one view per distinct entry (the stage does not change the record rules' fast paths)
VIEWS = list({v.entry.name: v for v in FAST_VIEWS if v.stage is None}.values())


def _trl_record(rnd: random.Random) -> dict:
    """Clean TRL records of the string forms and of trl-messages, now and then with a defect."""
    pick = rnd.choice
    rec = {"prompt": pick(["2+2?", "好的", "a <b>"]), "completion": pick(["4", "four"])}
    if rnd.random() < 0.3:
        system = [{"role": "system", "content": pick(["Be brief.", " "])}] if rnd.random() < 0.2 else []
        turns = [{"role": pick(["user", "user", "user", "assistant", "tool", "system"]) if i % 2 == 0 else pick(["assistant"] * 5 + ["user"]),
                  "content": pick(["Hi", "好的", "4", " ", "<image>", "[1]", " true", '"x"', [{"type": "text", "text": "a"}]] if rnd.random() < 0.2 else ["Hi", "4"])}
                 for i in range(pick([0, 1, 2, 2, 4]))]  # fmt: skip  (content that is JSON text: datasets 5.2 decodes it where content varies in type)
        rec = {"messages": system + turns}
        if rec["messages"] and rnd.random() < 0.1:
            rec["messages"][0][pick(["weight", "name", "content"])] = pick([1, "x", None])
    elif rnd.random() < 0.3:
        rec = {"prompt": rec["prompt"], "chosen": "4", "rejected": pick(["5", "4"])}
    elif rnd.random() < 0.3:
        rec["label"] = pick([True, False, True, 1, "yes"])
    elif rnd.random() < 0.2:
        rec = {"text": pick(["a doc", " ", "", "<image>"])}
    if rnd.random() < 0.2:
        rec[pick(list(rec))] = pick(["", " ", "\u3000", None, 3, ["a"], {"a": 1}])
    if rnd.random() < 0.05:
        rec["id"] = 1
    return rec


@st.composite
def trl_records(draw):
    return _trl_record(draw(st.randoms(use_true_random=False)))


def _write(recs: list, rnd: random.Random) -> Path:
    """JSON Lines with a blank or broken line now and then, or a JSON array (indented as LLaMA-Factory writes
    its files, or on one line), in both spellings (UTF-8 and ASCII escapes)."""
    ascii_only = rnd.random() < 0.2
    if rnd.random() < 0.4:
        path = ROOT / f"d{rnd.randrange(1 << 30)}.json"
        text = json.dumps(recs, ensure_ascii=ascii_only, indent=rnd.choice([2, 2, 4, None]))
        if rnd.random() < 0.05:
            text = text[: rnd.randrange(len(text))]  # cut short
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        return path
    out = []
    for rec in recs:
        out.append(json.dumps(rec, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + b"\n")
        if rnd.random() < 0.03:
            out.append(rnd.choice([b"\n", b"  \n", b'{"a": \n', b"[1]\n"]))
    path = ROOT / f"d{rnd.randrange(1 << 30)}.jsonl"
    path.write_bytes(b"".join(out))
    return path


def _as_parquet(recs: list, rnd: random.Random) -> Path | None:
    """The records as a Parquet file (small record batches), or None where Arrow cannot hold them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(recs)
        path = ROOT / f"d{rnd.randrange(1 << 30)}.parquet"
        pq.write_table(table, path, row_group_size=rnd.choice([1, 7, 1000]))
    except Exception:  # mixed types, or what Parquet cannot hold ({}): not a table
        return None
    return path


def _per_record(path: Path, rel: str, view, form: str):
    """The reference: every record through ``RecordChecker.check``, one at a time."""
    problems: list = []
    checker = RecordChecker(rel, view, form, problems)
    checker.tally.arrow = record_loop.arrow_tally_for(path)
    check_records(iter_records(path, checker.problem), rel, view, form, problems, checker=checker)
    return problems, checker.tally


def _state(found: list, tally, view) -> tuple:
    arrow = tally.arrow
    file_level, _, notes = file_findings(tally, view, "d.jsonl")
    return (
        [(f.code, f.severity, f.message, f.line, f.record, f.pointer) for f in found],
        (tally.records, tally.errored, dict(tally.keysets), list(tally.kto), list(tally.hashes), list(tally.hash_lines)),
        (arrow.columns, [repr(p) for p in arrow.problems()], [repr(p) for p in arrow.problems(json_type=True)], len(arrow.parts)),
        ([repr(f) for f in file_level], notes),
    )


def _assert_same(recs: list, seed: int, forms: list[tuple]) -> None:
    rnd = random.Random(seed)
    path = _write(recs, rnd)
    block = rnd.choice([1, 40, 200, 1 << 16])  # bytes of lines per block: one line, a few, all
    chunk = rnd.choice([60, 300, 1 << 30])  # datasets' chunks (FMT808 parts), small so that blocks cross them
    saved = json_file.BLOCK_BYTES, arrow_types.CHUNK_BYTES, arrow_types.chunk_bounds
    json_file.BLOCK_BYTES, arrow_types.CHUNK_BYTES = block, chunk
    arrow_types.chunk_bounds = functools.partial(saved[2], chunk=chunk)
    try:
        if path.suffix == ".json":  # the splitter reads what the exact (stdlib) reader reads
            kind = json_file.container(path)
            if kind != "lines":
                has_bom = path.read_bytes().startswith(json_file.BOM)
                fast, exact = [], []
                got = list(json_file._iter_elements(path, fast.append, has_bom, kind == "array"))
                want = list(json_file._iter_values(path, exact.append, has_bom, kind == "array"))
                assert [tuple(r)[:3] for r in got] == [tuple(r)[:3] for r in want] and fast == exact, recs
        for view, form in forms:
            want = _state(*_per_record(path, "d.jsonl", view, form), view)
            got = _state(*check_path(path, "d.jsonl", view, form), view)
            assert got == want, (view.entry.name if view else form, recs)
    finally:
        json_file.BLOCK_BYTES, arrow_types.CHUNK_BYTES, arrow_types.chunk_bounds = saved
        path.unlink()
    parquet = _as_parquet(recs, rnd)
    if parquet is not None:
        for view, form in forms:
            assert _state(*check_path(parquet, "d.parquet", view, form), view) == _state(*_per_record(parquet, "d.parquet", view, form), view), recs
        parquet.unlink()


SETTINGS = settings(max_examples=int(40 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.lists(lane_records(), min_size=1, max_size=30), st.integers(0, 1 << 20))
def test_blocks_of_conversation_and_alpaca_records(recs, seed):
    _assert_same(recs, seed, [(v, v.entry.form) for v in VIEWS])


@SETTINGS
@given(st.lists(near_conversations(), min_size=1, max_size=30), st.integers(0, 1 << 20))
def test_blocks_of_near_clean_conversations(recs, seed):
    _assert_same(recs, seed, [(v, v.entry.form) for v in VIEWS])


@SETTINGS
@given(st.lists(trl_records() | records, min_size=1, max_size=30), st.integers(0, 1 << 20))
def test_blocks_of_trl_records(recs, seed):
    _assert_same(recs, seed, [(None, form) for form in TRL_FORMS])


def test_blocks_of_a_clean_file_with_duplicates_and_kto_labels():
    rnd = random.Random(7)
    recs = [{"instruction": f"q{i % 50}", "input": "", "output": "a", "kto_tag": i % 3 == 0} for i in range(400)]
    recs[123]["instruction"] = "<image> what?"
    kto = [v for v in VIEWS if v.entry.kto_tag is not None and v.entry.formatting == "alpaca"]
    assert kto
    _assert_same(recs, rnd.randrange(1 << 20), [(v, v.entry.form) for v in VIEWS])


def test_blocks_find_json_text_in_clean_conversations():
    """Content that is JSON text in clean records (whose messages a clean block does not walk), where the last
    record's content is a list of parts: both paths name the first such record (FMT810 on TRL's side)."""
    recs = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]} for i in range(3000)]
    recs[1000]["messages"][1]["content"] = "42"
    recs.append({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]})
    for seed in range(3):
        _assert_same(recs, seed, [(None, "trl-messages"), (None, "openai")])
    path = ROOT / "json-text.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    for form in ("trl-messages", None):  # None: a bare messages file, read by both loaders
        found = [(f.code, f.record) for f in validate(path, form=form).findings if f.code == "FMT810"]
        assert found == [("FMT810", 1000)], form


# -- --jobs splits a pretty-printed array at element lines: the same report as one process ----------------

from fmtkit.validation import validate  # noqa: E402


def _report(path: Path, form: str, jobs: int) -> tuple:
    result = validate(path, form=form, jobs=jobs)
    return [(f.code, f.message, f.line, f.record) for f in result.findings], result.summary["records"]


def test_jobs_split_arrays_and_report_as_one_process(monkeypatch):
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 0)
    rnd = random.Random(3)
    good = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a" * rnd.randrange(1, 40)}]} for i in range(300)]
    defects = {
        "clean": lambda recs: None,
        "bad record late": lambda recs: recs[250]["conversations"].append({"from": "human", "value": ""}),
        "duplicates across the cut": lambda recs: recs.__setitem__(280, dict(recs[10])),
        "type drift": lambda recs: recs[290].__setitem__("system", 3) or recs[5].__setitem__("system", "s"),
    }
    for name, spoil in defects.items():
        recs = json.loads(json.dumps(good))
        spoil(recs)
        for indent, prefix in ((2, ""), (4, ""), (2, "\ufeff")):
            path = ROOT / f"jobs-{indent}-{len(prefix)}.json"
            path.write_text(prefix + json.dumps(recs, indent=indent, ensure_ascii=False), encoding="utf-8")
            assert json_file.element_ranges(path, 2), name
            assert _report(path, "sharegpt", 2) == _report(path, "sharegpt", 1), (name, indent, prefix)
    # what only the whole-file reader may judge: a trailing comma, an element that does not decode, a cut inside
    # an element (a nested list written at the top level's indentation), and arrays that are not indented
    text = json.dumps(good, indent=2)
    odd = {
        "trailing comma": text[:-2] + ",\n]",
        "broken element": text.replace('"q200"', '"q200" "x"'),
        "cut inside": text.replace('"conversations": [\n      {\n        "from": "human",\n        "value": "q150"',
                                   '"conversations": [\n  {\n        "from": "human",\n        "value": "q150"\n  },\n  {"from": "human", "value": "q150"'),
        "one line": json.dumps(good),
    }
    for name, body in odd.items():
        path = ROOT / "jobs-odd.json"
        path.write_text(body, encoding="utf-8")
        assert _report(path, "sharegpt", 2) == _report(path, "sharegpt", 1), name


def test_array_ranges_are_read_in_parallel_or_refused():
    good = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "answer"}]} for i in range(300)]
    text = json.dumps(good, indent=2)
    cut_inside = text.replace('"conversations": [\n      {\n        "from": "human",\n        "value": "q150"',
                              '"conversations": [\n  {\n        "from": "human",\n        "value": "q150"\n  },\n  {"from": "human", "value": "q150"')
    for body, whole in ((text, True), (cut_inside, False)):
        path = ROOT / "ranges.json"
        path.write_text(body, encoding="utf-8")
        ranges = json_file.element_ranges(path, 2)
        shards = [record_loop.run_unit((record_loop.Unit(path, a, b, True), ("d.json", None, "sharegpt", 1000), None, False)) for a, b in ranges]
        assert (None not in shards) == whole
        if whole:
            assert sum(s[0][2] for s in shards) == 300 and sum(s[0][1].lines for s in shards) == body.count("\n")


# -- convert reads a JSON array in blocks, its fast lanes take the plain records by their bytes (JSON Lines or array
# elements): the output and report of every record read and written one at a time ----

# the common conversions, each from the form the records are detected as
CONVERSIONS = [("sharegpt", "openai"), ("alpaca", "sharegpt"), ("openai", "sharegpt"), ("sharegpt", "trl-messages"), ("alpaca", "trl-prompt-completion"),
               ("openai", "trl-messages"), ("sharegpt", "trl-prompt-completion"), ("alpaca", "trl-messages"),
               ("alpaca-preference", "trl-preference"), ("alpaca-preference", "sharegpt-preference"), ("sharegpt-preference", "trl-preference"),
               ("alpaca-kto", "trl-unpaired"), ("alpaca-kto", "sharegpt-kto"), ("sharegpt-kto", "trl-unpaired")]  # fmt: skip


def _converted(path: Path, form: str, to: str, blocks: bool, monkeypatch, as_rows: bool = False) -> tuple:
    """Convert ``path``; ``blocks`` False: the reference, every record read one at a time through the general path."""
    from fmtkit.conversion import convert, engine
    from fmtkit.forms import FORMS

    if not blocks:
        monkeypatch.setattr(engine, "READ_IN_BLOCKS", False)
        for f in FORMS.values():
            for target in list(f.direct):
                monkeypatch.delitem(f.direct, target)
    out = path.with_name(f"{path.stem}_{blocks}_{to}.jsonl")
    try:
        report = convert(path, to, out, form=form).to_dict()
    except SystemExit as exc:  # a usage error (e.g. no record of the form): the same either way
        return ("exit", str(exc))
    data = out.read_bytes() if out.exists() else None
    if as_rows and data is not None:  # the fast lane keeps each string as the input spells it (as for JSON Lines)
        data = [json.loads(line) for line in data.decode("utf-8", "surrogatepass").splitlines()]
    out.unlink(missing_ok=True)
    report.pop("output", None), report.pop("seconds", None)
    return data, json.dumps(report, sort_keys=True, default=str).replace(out.name, "")


_MIXED = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi"}]}
_EMPTY_ASK = {"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "Hi"}], "system": "Be brief."}
_ODD = {"conversations": [{"from": "system", "value": "Be brief."}, None], "chosen": {"from": "gpt", "value": "fine", "weight": None},
        "rejected": {"from": "gpt", "value": "fine", "weight": None}, "system": "", "tools": "", "kto_tag": "", "images": ""}  # fmt: skip


@SETTINGS
@given(st.lists(lane_records() | near_conversations(), min_size=1, max_size=30), st.integers(0, 1 << 20))
@example([_MIXED, _EMPTY_ASK, _EMPTY_ASK, _EMPTY_ASK, _MIXED, {"output": "Fine.", "system": "S", "history": []},
          {"output": "Fine.", "system": "S", "history": []}, _ODD], 0)  # FMT811 once per block, once per record (found by hypothesis)
def test_convert_in_blocks_and_lanes_is_convert_record_by_record(recs, seed):
    import pytest

    rnd = random.Random(seed)
    escaped = rnd.random() < 0.2  # strings spelled with ASCII escapes, not as orjson spells them: the same rows, not bytes
    if rnd.random() < 0.7:
        path = ROOT / f"c{rnd.randrange(1 << 30)}.json"
        path.write_bytes(json.dumps(recs, ensure_ascii=escaped, indent=rnd.choice([2, 2, None])).encode("utf-8", "surrogatepass"))
    else:
        path = ROOT / f"c{rnd.randrange(1 << 30)}.jsonl"
        path.write_bytes(b"".join(json.dumps(r, ensure_ascii=escaped).encode("utf-8", "surrogatepass") + b"\n" for r in recs))
    try:
        for form, to in CONVERSIONS:
            with pytest.MonkeyPatch.context() as mp:
                fast = _converted(path, form, to, True, mp, escaped)
            with pytest.MonkeyPatch.context() as mp:
                assert fast == _converted(path, form, to, False, mp, escaped), (form, to, recs)
    finally:
        path.unlink()


def test_convert_lane_rows_each_count_in_their_trl_group():
    """Rows a fast lane writes share one shape: each still counts in its TRL group, so FMT811 names every such row."""
    import pytest

    chat = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hi"}]}
    msgs = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi"}]}
    pair = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human"}], "chosen": {"from": "gpt", "value": "fine"},
            "rejected": {"from": "gpt", "value": "fine"}}  # fmt: skip
    path = ROOT / "lane-trl.json"
    path.write_text(json.dumps([chat, chat, msgs, chat, msgs, pair], indent=2), encoding="utf-8")
    try:
        with pytest.MonkeyPatch.context() as mp:
            fast = _converted(path, "openai", "sharegpt", True, mp)
        with pytest.MonkeyPatch.context() as mp:
            assert fast == _converted(path, "openai", "sharegpt", False, mp)
        assert [f["record"] for f in json.loads(fast[1])["findings"] if f["code"] == "FMT811"] == [2, 4]
    finally:
        path.unlink()


# -- FMT803 over more hashes than one set is used for: the same answer as counting by hand --------------


def test_duplicates_beyond_the_set_check_are_found_in_order_with_their_lines():
    from array import array

    from fmtkit.rules.whole_file import SET_CHECK_MAX, FileTally

    rnd = random.Random(3)
    n = SET_CHECK_MAX + 5000
    hashes = [rnd.getrandbits(63) - (1 << 62) for _ in range(n)]
    for i, j in ((10, n - 1), (10, 500), (7000, 7001), (n - 3, n - 2), (42, 99999)):
        hashes[j] = hashes[i]
    lines = list(range(1, n + 1))
    lines[500] = 0  # a record without a line (a columnar row)
    whole = FileTally(hashes=array("q", hashes), hash_lines=array("q", lines))
    first: dict[int, int] = {}
    expected = [(i, lines[i] or None, first[h]) for i, h in enumerate(hashes) if first.setdefault(h, i) != i]
    assert len(expected) == 5
    assert whole.duplicates() == (expected, 5)
    assert whole.duplicates(limit=2) == (expected[:2], 5)
    # two shards joined: the later one's lines move past the earlier one's (0 stays: no line)
    cut = n // 2
    left = FileTally(hashes=array("q", hashes[:cut]), hash_lines=array("q", lines[:cut]))
    right = FileTally(hashes=array("q", hashes[cut:]), hash_lines=array("q", [ln - cut if ln else 0 for ln in lines[cut:]]))
    left.join(right.shifted(cut, cut))
    assert left.duplicates() == (expected, 5)
    assert FileTally(hashes=array("q", range(n)), hash_lines=array("q", lines)).duplicates() == ([], 0)

"""``fmtkit.read`` / ``fmtkit.convert`` / ``fmtkit convert``: files, safety, registration, report, jobs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

import fmtkit
from fmtkit import record_loop, sources
from fmtkit.conversion import engine
from fmtkit.cli import cli
from fmtkit.errors import FmtkitError
from fmtkit.forms import FORMS

DATASET = Path(__file__).resolve().parent.parent / "dataset"
LF_FORMS = ("alpaca", "alpaca-pretrain", "alpaca-preference", "alpaca-kto", "sharegpt", "sharegpt-preference", "sharegpt-kto", "openai")


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    assert (DATASET / "dataset_info.json").is_file(), "the bundled dataset/ folder is missing"
    shutil.copytree(DATASET, tmp_path / "ds")
    return tmp_path / "ds"


def entries(folder: Path) -> list[str]:
    info = json.loads((folder / "dataset_info.json").read_text())
    return [k for k, v in info.items() if "file_name" in v]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def rows_of(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith((".part", ".tmp"))]


# ---- read -----------------------------------------------------------------------


def test_read_every_entry_of_the_bundled_dataset(ds: Path):
    for name in entries(ds):
        samples = list(fmtkit.read(ds, entry=name))
        assert samples, name


def test_read_bare_file_detects_the_form(tmp_path: Path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}])
    (s,) = fmtkit.read(p)
    assert [t.role for t in s.turns] == ["user", "assistant"]
    (s,) = fmtkit.read(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Q", "completion": "A"}]))
    assert s.kind == "sft"


def test_read_errors_raise_or_skip(tmp_path: Path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"instruction": "Q", "output": "A"}\nnot json\n{"instruction": 3, "output": "A"}\n')
    with pytest.raises(FmtkitError, match=r"d.jsonl:2"):
        list(fmtkit.read(p))
    skipped = []
    samples = list(fmtkit.read(p, errors="skip", on_skip=lambda *a: skipped.append(a[1:4])))
    assert len(samples) == 1
    assert [(i, line, code) for i, line, code in skipped] == [(1, 2, "FMT201"), (2, 3, "FMT302")]


def test_read_unknown_entry_suggests_names(ds: Path):
    with pytest.raises(FmtkitError, match="did you mean"):
        list(fmtkit.read(ds, entry="alpaca_dem"))


# ---- convert: every LLaMA-Factory pair, registered, validates clean --------------------


def test_every_entry_to_every_llamafactory_form_validates_clean_through_its_entry(ds: Path):
    from fmtkit.validation import validate
    original = (ds / "dataset_info.json").read_text()
    names = entries(ds)
    registered = []
    for name in names:
        for to in LF_FORMS:
            report = fmtkit.convert(ds, to, ds / "out" / f"{name}.{to}.jsonl", entry=name, register=True)
            assert report.exit_code == (0 if report.written else 1), report.to_dict()  # nothing written is exit 1
            assert report.written + report.skipped == report.records_read
            assert report.written or (report.output is None and report.registered is None)
            if report.written:
                registered.append(report.registered["name"])
                assert all(k.startswith("not-expressible:") for k in report.skipped_by)
    assert len(registered) > 20
    result = validate(ds, entries=registered)
    errors = [f for f in result.findings if f.severity == "error"]
    assert errors == []
    # the original entries are untouched, text and order, and come first
    text = (ds / "dataset_info.json").read_text()
    assert text.startswith(original.rstrip()[:-1].rstrip())
    info = json.loads(text)
    assert list(info)[: len(json.loads(original))] == list(json.loads(original))
    assert leftovers(ds) == []


def test_register_refuses_an_existing_name_and_forms_llamafactory_cannot_load(ds: Path):
    with pytest.raises(FmtkitError, match="exists already"):
        fmtkit.convert(ds, "sharegpt", ds / "x.jsonl", entry="alpaca_demo", register=True, name="sharegpt_demo")
    with pytest.raises(FmtkitError, match="cannot load"):
        fmtkit.convert(ds, "trl-messages", ds / "x.jsonl", entry="alpaca_demo", register=True)
    assert not (ds / "x.jsonl").exists()


def test_registered_entry_maps_only_written_columns(ds: Path):
    report = fmtkit.convert(ds, "alpaca", ds / "a.json", entry="sharegpt_demo", register=True)
    entry = report.registered["entry"]
    assert entry["file_name"] == "a.json"
    assert entry["columns"] == {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}
    assert json.loads((ds / "dataset_info.json").read_text())["sharegpt_demo_alpaca"] == entry


# ---- convert: losses, strictness, safety ------------------------------------------------


def tool_records(n: int) -> list[dict]:
    call = {"from": "function_call", "value": json.dumps({"name": "f", "arguments": {"x": 1}})}
    plain = {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}
    tools = {"conversations": [{"from": "human", "value": "Q"}, call, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "A"}]}
    return [tools if i % 3 == 0 else plain for i in range(n)]


def test_lossy_records_are_skipped_and_reported(tmp_path: Path):
    src = write_jsonl(tmp_path / "s.jsonl", tool_records(36))
    report = fmtkit.convert(src, "alpaca", tmp_path / "a.jsonl")
    assert (report.records_read, report.written, report.skipped) == (36, 24, 12)
    assert report.skipped_by == {"not-expressible:tool-results": 12}
    assert "12 records have assistant tool calls, which alpaca cannot express: skipped" in report.loss_lines()
    assert report.exit_code == 0
    assert len(rows_of(tmp_path / "a.jsonl")) == 24


def test_strict_writes_nothing_and_fails(tmp_path: Path):
    src = write_jsonl(tmp_path / "s.jsonl", tool_records(6))
    report = fmtkit.convert(src, "alpaca", tmp_path / "a.jsonl", strict=True)
    assert report.exit_code == 1 and report.output is None
    assert not (tmp_path / "a.jsonl").exists() and leftovers(tmp_path) == []
    # lossless under --strict is fine
    assert fmtkit.convert(src, "openai", tmp_path / "o.jsonl", strict=True).exit_code == 0


def test_dry_run_writes_nothing(ds: Path):
    before = sorted(p.name for p in ds.rglob("*"))
    info = (ds / "dataset_info.json").read_text()
    report = fmtkit.convert(ds, "openai", ds / "o.jsonl", entry="sharegpt_demo", dry_run=True, register=True)
    assert report.written == 5 and report.registered["dry_run"]
    assert sorted(p.name for p in ds.rglob("*")) == before
    assert (ds / "dataset_info.json").read_text() == info


def test_never_over_the_input(ds: Path, tmp_path: Path):
    with pytest.raises(FmtkitError, match="that is the input"):
        fmtkit.convert(ds, "alpaca", ds / "alpaca_demo.json", entry="alpaca_demo")
    src = write_jsonl(tmp_path / "s.jsonl", tool_records(2))
    with pytest.raises(FmtkitError, match="that is the input"):
        fmtkit.convert(src, "sharegpt", tmp_path / "." / "s.jsonl")
    with pytest.raises(FmtkitError, match="extension"):
        fmtkit.convert(src, "sharegpt", tmp_path / "s.csv")


def test_output_inside_an_input_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", tool_records(2))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "parts", "formatting": "sharegpt"}}))
    with pytest.raises(FmtkitError, match="part of the dataset"):
        fmtkit.convert(tmp_path, "openai", folder / "b.jsonl", entry="d")


def test_interrupted_run_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = write_jsonl(tmp_path / "s.jsonl", tool_records(3000))
    from fmtkit.forms import FORMS

    calls = {"n": 0}
    real = FORMS["sharegpt"].read

    def boom(record, entry):
        calls["n"] += 1
        if calls["n"] > 2500:
            raise KeyboardInterrupt
        return real(record, entry)

    monkeypatch.setattr(sources, "reader_for", lambda e, f=None: boom)
    monkeypatch.setitem(FORMS, "sharegpt", FORMS["sharegpt"].__class__(**{**{f: getattr(FORMS["sharegpt"], f) for f in FORMS["sharegpt"].__slots__}, "read": boom, "direct": {}}))
    with pytest.raises(KeyboardInterrupt):
        fmtkit.convert(src, "openai", tmp_path / "o.jsonl", check=False)
    assert not (tmp_path / "o.jsonl").exists() and leftovers(tmp_path) == []


# ---- output types, columns, jobs -----------------------------------------------------


@pytest.mark.parametrize("ext", [".jsonl", ".json", ".parquet"])
def test_output_types_hold_the_same_rows(tmp_path: Path, ext: str):
    src = write_jsonl(tmp_path / "s.jsonl", tool_records(9))
    fmtkit.convert(src, "openai", tmp_path / "ref.jsonl")
    fmtkit.convert(src, "openai", tmp_path / f"o{ext}")
    ref = rows_of(tmp_path / "ref.jsonl")
    got = rows_of(tmp_path / f"o{ext}")
    if ext == ".parquet":  # Arrow fills absent struct fields with null
        got = [json.loads(json.dumps(r)) for r in got]
        for row in got:
            for m in row["messages"]:
                for k in [k for k, v in m.items() if v is None]:
                    del m[k]
    assert got == ref


def test_every_row_has_the_same_keys_even_when_a_field_appears_late(tmp_path: Path):
    rows = [{"instruction": f"q{i}", "output": "a"} for i in range(1500)]
    rows[1200]["id"] = 7
    rows[1300]["system"] = "late system"  # a bare file's columns come from its first records: not read
    src = write_jsonl(tmp_path / "a.jsonl", rows)
    report = fmtkit.convert(src, "sharegpt", tmp_path / "s.jsonl")
    out = rows_of(tmp_path / "s.jsonl")
    assert len({tuple(r) for r in out}) == 1
    assert out[1200]["id"] == 7 and out[0]["id"] is None and "system" not in out[1300]
    assert report.dropped == {"extra-fields": 1}  # the unread `system` field would clash with the system column


def test_jobs_split_by_byte_ranges_gives_the_same_output_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 4000)
    rows = tool_records(400)
    src = tmp_path / "s.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + (b"\n\n" if i % 50 == 0 else b"\n") for i, r in enumerate(rows)) + b"{broken\n")
    one = fmtkit.convert(src, "alpaca", tmp_path / "one.jsonl", jobs=1, check=False)
    four = fmtkit.convert(src, "alpaca", tmp_path / "four.jsonl", jobs=4, check=False)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "four.jsonl").read_bytes()
    for key in ("records_read", "written", "skipped", "skipped_by", "lost"):
        assert getattr(one, key) == getattr(four, key), key
    assert one.examples["unreadable:FMT201"] == four.examples["unreadable:FMT201"]
    assert one.examples["unreadable:FMT201"][0]["line"] == 409  # after 8 blank lines


def test_jobs_split_an_indented_array_by_elements_and_give_what_one_process_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An indented JSON array is converted (and checked) in element ranges, as validate reads it; one only the
    whole-file reader may judge (a cut inside an element) is converted whole: the same output and report."""
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 3000)
    monkeypatch.setattr(record_loop, "RANGES_PER_JOB", 1)  # two ranges, cut at the middle element
    rows = [{"conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": "A"}], "images": []} for i in range(300)]
    rows[7]["conversations"][0]["value"] = "<image>Q"  # one placeholder, two images: an error for validate only, left out
    rows[7]["images"] = ["a.png", "a.png"]
    (tmp_path / "a.png").write_bytes(b"x")
    rows[260]["conversations"].append({"from": "human", "value": "late"})  # in the second range: left out, at its place in the file
    text = json.dumps(rows, indent=2)
    cut = text.replace('"conversations": [\n      {\n        "from": "human",\n        "value": "Q150"',
                       '"conversations": [\n  {\n        "from": "human",\n        "value": "Q150"\n  },\n  {"from": "human", "value": "Q150"')
    units = []
    run = record_loop.run_in_workers
    monkeypatch.setattr(record_loop, "run_in_workers", lambda fn, tasks, jobs, *a, **kw: units.extend(t[0] for t in tasks) or run(fn, tasks, jobs, *a, **kw))
    for name, body in (("plain", text), ("cut inside", cut)):
        src = tmp_path / f"{name}.json"
        src.write_text(body, encoding="utf-8")
        units.clear()
        one, two = (fmtkit.convert(src, "openai", tmp_path / f"{name}{j}.jsonl", jobs=j, show=2).to_dict() for j in (1, 2))
        assert len(units) == 2 and all(u.array for u in units), name  # read in two element ranges
        assert (tmp_path / f"{name}1.jsonl").read_bytes() == (tmp_path / f"{name}2.jsonl").read_bytes(), name
        for report in (one, two):
            report.pop("output"), report.pop("seconds"), report.pop("jobs")
        assert one == two, name
        cut_off = {"unreadable:FMT403": 1} if name != "plain" else {}  # the half element the cut leaves
        assert two["skipped_by"] == {"invalid:FMT602": 1, "unreadable:FMT404": 1, **cut_off} and len(two["shown"]) == 2, name
        assert two["examples"]["unreadable:FMT404"][0]["record"] == 260, name



@pytest.mark.parametrize(("source", "target"), [("sharegpt", "openai"), ("alpaca", "sharegpt"), ("alpaca-kto", "trl-unpaired"),
                                                 ("sharegpt-preference", "trl-preference")])  # fmt: skip
def test_the_fused_fast_loop_writes_what_the_general_path_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, target: str):
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 3000)
    if source == "sharegpt":
        odd = [{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
               {"conversations": [{"from": "human", "value": "Q", "name": "ann"}, {"from": "gpt", "value": "A"}]},
               {"conversations": [{"from": "human", "value": [{"type": "text", "text": "parts"}]}, {"from": "gpt", "value": "A"}]},
               {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": "S", "id": 3}]  # fmt: skip
        rows = [odd[i % 4] if i % 5 == 0 else r for i, r in enumerate(tool_records(300))]
    elif source == "alpaca-kto":
        odd = [{"instruction": "I", "input": "", "output": "", "kto_tag": True}, {"instruction": "I", "input": "", "output": "O", "kto_tag": 1},
               {"instruction": "I", "input": "x", "output": "O", "kto_tag": False, "system": "S"}, {"instruction": "I", "input": "", "output": "O", "kto_tag": True, "id": 1}]  # fmt: skip
        rows = [odd[i % 4] if i % 5 == 0 else {"instruction": f"I{i}", "input": "x" if i % 3 else "", "output": "O", "kto_tag": i % 2 == 0} for i in range(300)]
    elif source == "sharegpt-preference":
        pair = {"chosen": {"from": "gpt", "value": "A"}, "rejected": {"from": "gpt", "value": "B"}}
        odd = [{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}], **pair},
               {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "function_call", "value": '{"name": "f", "arguments": {}}'}, "rejected": pair["rejected"]},
               {"conversations": [{"from": "human", "value": "Q"}], "chosen": "A", "rejected": "B"},
               {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}, {"from": "human", "value": "R"}], **pair, "id": 3}]  # fmt: skip
        rows = [odd[i % 4] if i % 5 == 0 else {"conversations": [{"from": "human", "value": f"Q{i}"}], **pair} for i in range(300)]
    else:
        odd = [{"instruction": "I", "input": "x", "output": "O", "history": [["a", "b"]]}, {"instruction": "I", "output": 3},
               {"instruction": "I", "output": "O", "system": "S"}, {"instruction": "I", "output": "O", "id": 1}]  # fmt: skip
        rows = [odd[i % 4] if i % 5 == 0 else {"instruction": f"I{i}", "input": "", "output": "O"} for i in range(300)]
    body = b"".join(orjson.dumps(r) + (b"\n \n" if i % 40 == 0 else b"\n") for i, r in enumerate(rows))
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + body + b"{broken\n" + body)
    factory, taken = FORMS[source].direct[target], []

    def counted(entry, columns):
        lane = factory(entry, columns)
        return None if lane is None else (lambda raw: taken.append(lane(raw)) or taken[-1])

    monkeypatch.setitem(FORMS[source].direct, target, counted)
    fast = [fmtkit.convert(src, target, tmp_path / f"fast{j}.jsonl", jobs=j, check=False) for j in (1, 3)]
    assert sum(t is not None for t in taken) >= 300  # the lane took the plain records (counted in this process: jobs=1)

    lane_range = engine.Converter.run_range

    def slow_range(self, *args):
        self.lane = None  # every record through read, then write
        return lane_range(self, *args)

    monkeypatch.setattr(engine.Converter, "run_range", slow_range)
    slow = fmtkit.convert(src, target, tmp_path / "slow.jsonl", jobs=1, check=False)
    assert slow.written > 500 and slow.skipped > 0
    for j, report in zip((1, 3), fast, strict=True):  # byte for byte: the input's strings are spelled as orjson spells them
        assert (tmp_path / f"fast{j}.jsonl").read_bytes() == (tmp_path / "slow.jsonl").read_bytes(), j
        for key in ("records_read", "written", "skipped", "skipped_by", "lost", "examples"):
            assert getattr(report, key) == getattr(slow, key), (j, key)

# ---- transforms --------------------------------------------------------------------------


def test_pairs_to_kto_and_extract_prompt(tmp_path: Path):
    src = write_jsonl(tmp_path / "p.jsonl", [{"chosen": "Sky is blue", "rejected": "Sky is green"}])
    report = fmtkit.convert(src, "trl-unpaired", tmp_path / "k.jsonl", pairs_to_kto=True, extract_prompt=True, conversational=False)
    assert report.written == 2
    assert rows_of(tmp_path / "k.jsonl") == [
        {"prompt": "Sky is", "completion": " blue", "label": True},
        {"prompt": "Sky is", "completion": " green", "label": False},
    ]
    report = fmtkit.convert(src, "trl-preference", tmp_path / "e.jsonl")
    assert report.skipped_by == {"not-expressible:implicit-prompt": 1}


def test_media_paths_still_resolve_from_another_folder(ds: Path, tmp_path: Path):
    out = tmp_path / "elsewhere" / "mm.jsonl"
    fmtkit.convert(ds, "sharegpt", out, entry="alpaca_mm_demo")
    for row in rows_of(out):
        for p in row["images"]:
            assert (out.parent / p).resolve().is_file(), p


# ---- the input check ---------------------------------------------------------------------


def test_records_with_validate_errors_are_skipped(tmp_path: Path):
    rows = [{"instruction": "<image>Q", "output": "A", "images": ["a.png", "b.png"]}, {"instruction": "Q", "output": "A", "images": []}]
    src = write_jsonl(tmp_path / "mm.jsonl", rows)
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    entry = {"file_name": "mm.jsonl", "columns": {"prompt": "instruction", "response": "output", "images": "images"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mm": entry}))
    report = fmtkit.convert(tmp_path, "sharegpt", tmp_path / "s.jsonl", entry="mm")
    assert report.checked
    assert report.written == 1 and report.skipped == 1
    (reason,) = report.skipped_by
    assert reason.startswith("invalid:")
    assert report.exit_code == 1
    unchecked = fmtkit.convert(tmp_path, "sharegpt", tmp_path / "u.jsonl", entry="mm", check=False)
    assert unchecked.written == 2
    # a bare file is checked through the same entry it is read with (its media column included)
    bare = fmtkit.convert(src, "sharegpt", tmp_path / "b.jsonl")
    assert bare.checked and bare.written == 1 and bare.skipped == 1


def test_an_entry_error_that_stops_the_check_is_reported_and_the_file_converted_unchecked(tmp_path: Path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "input": "", "output": "d"}])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"e": {"file_name": "a.jsonl", "split": "test"}}))
    report = fmtkit.convert(tmp_path, "sharegpt", tmp_path / "s.jsonl", entry="e")
    assert report.written == 2 and [f["code"] for f in report.findings] == ["FMT117"]
    assert any("not checked" in n for n in report.notes)
    assert report.exit_code == 1  # an error of the entry is an error of the input


def test_a_record_with_a_repaired_and_an_unrepaired_error_is_skipped(tmp_path: Path):
    # FMT405 (content parts, which the reader repairs) and FMT409 (weight 5) on one record: FMT409 must skip it
    rows = [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                      {"role": "assistant", "content": "yo", "weight": 5}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
    ]  # fmt: skip
    src = write_jsonl(tmp_path / "two.jsonl", rows)
    report = fmtkit.convert(src, "openai", tmp_path / "o.jsonl")
    assert report.checked and report.written == 1 and report.skipped_by == {"invalid:FMT409": 1}
    assert rows_of(tmp_path / "o.jsonl") == [rows[1]]


def test_openai_content_parts_are_converted_not_skipped_as_invalid(tmp_path: Path):
    rows = [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is "},
                                                   {"type": "image_url", "image_url": {"url": "a.png", "detail": "high"}}]},
                      {"role": "assistant", "content": "A cat.", "name": "bot", "reasoning_content": "whiskers"}]},
        {"messages": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]},
                      {"role": "assistant", "content": "?"}]},
        {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "A"}]},
    ]  # fmt: skip
    (tmp_path / "a.png").write_bytes(b"x")
    src = write_jsonl(tmp_path / "parts.jsonl", rows)
    report = fmtkit.convert(src, "sharegpt", tmp_path / "s.jsonl")
    assert report.checked and report.written == 1
    # validate's FMT405 (content not a string) is about the spelling the reader repaired; file ids and numbers are not read
    assert report.skipped_by == {"unreadable:FMT405": 2}
    assert report.dropped == {"part-fields": 1}
    (row,) = rows_of(tmp_path / "s.jsonl")
    assert row["conversations"] == [{"from": "human", "value": "What is <image>"},
                                    {"from": "gpt", "value": "A cat.", "name": "bot", "reasoning_content": "whiskers"}]  # fmt: skip
    assert row["images"] == ["a.png"]
    again = fmtkit.convert(src, "openai", tmp_path / "o.jsonl")
    assert rows_of(tmp_path / "o.jsonl")[0]["messages"][1] == rows[0]["messages"][1]  # message keys kept
    report = fmtkit.convert(src, "alpaca", tmp_path / "a.jsonl")
    assert report.written == 1 and report.dropped == {"part-fields": 1, "message-fields": 1}
    assert again.written == 1
    # written elsewhere, relative paths are rebased; URLs and data: URIs are not paths
    audio = [{"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "QUJD", "format": "wav"}},
                                                        {"type": "image_url", "image_url": {"url": "a.png"}}]},
                           {"role": "assistant", "content": "A"}]}]  # fmt: skip
    fmtkit.convert(write_jsonl(tmp_path / "audio.jsonl", audio), "sharegpt", tmp_path / "out" / "s.jsonl")
    (row,) = rows_of(tmp_path / "out" / "s.jsonl")
    assert row["audios"] == ["data:audio/wav;base64,QUJD"] and row["images"] == ["../a.png"]


# ---- the command ---------------------------------------------------------------------------


def test_cli_convert_report_json_and_show(ds: Path):
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", str(ds), "--entry", "sharegpt_demo", "--to", "alpaca", "-o", str(ds / "a.jsonl"), "--output-format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["written"] == 4 and data["skipped_by"] == {"not-expressible:tool-results": 1}
    result = runner.invoke(cli, ["convert", str(ds), "--entry", "sharegpt_demo", "--to", "openai", "-o", str(ds / "o.jsonl"), "--show", "2"])
    assert result.exit_code == 0, result.output
    assert "input" in result.output and "openai" in result.output
    result = runner.invoke(cli, ["convert", str(ds), "--entry", "sharegpt_demo", "--to", "alpaca", "-o", str(ds / "b.jsonl"), "--strict"])
    assert result.exit_code == 1


def test_cli_report_prints_markup_in_data_as_text(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths, printed whole
    rows = [{"conversations": [{"from": "human", "value": "hi"}, {"from": "[/INST]", "value": "yo"}]},
            {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "[/bold]"}]}]  # fmt: skip
    write_jsonl(tmp_path / "d[x].jsonl", rows)
    result = CliRunner().invoke(cli, ["convert", "d[x].jsonl", "--to", "openai", "-o", "o[/x].jsonl", "--show", "2"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)  # 1: a record skipped
    assert "d[x].jsonl" in result.output and "o[/x].jsonl" in result.output and "'[/INST]'" in result.output
    roles = [{"messages": [{"role": "user", "content": "hi"}, {"role": "[/bold]", "content": "yo"}]}]
    write_jsonl(tmp_path / "o.jsonl", roles)
    result = CliRunner().invoke(cli, ["convert", "o.jsonl", "--to", "sharegpt", "-o", "s.jsonl", "--show", "1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    assert "role '[/bold]'" in result.output


def test_cli_name_needs_register(ds: Path):
    result = CliRunner().invoke(cli, ["convert", str(ds), "--entry", "alpaca_demo", "--to", "sharegpt", "--name", "x"])
    assert result.exit_code == 2


def test_checked_records_are_found_in_later_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 3000)
    rows = [{"instruction": f"<image>Q{i}", "output": "A", "images": ["a.png"]} for i in range(300)]
    rows[250]["images"] = ["a.png", "a.png"]  # two images, one placeholder: an error for validate
    (tmp_path / "a.png").write_bytes(b"x")
    write_jsonl(tmp_path / "mm.jsonl", rows)
    entry = {"file_name": "mm.jsonl", "columns": {"prompt": "instruction", "response": "output", "images": "images"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mm": entry}))
    report = fmtkit.convert(tmp_path, "sharegpt", tmp_path / "s.jsonl", entry="mm", jobs=3)
    assert report.written == 299 and report.skipped == 1
    (key,) = report.skipped_by
    assert report.examples[key][0]["record"] == 250
    out = rows_of(tmp_path / "s.jsonl")
    assert "Q250" not in {r["conversations"][0]["value"][7:] for r in out} and len(out) == 299


def test_the_check_runs_over_jobs_and_finds_records_in_its_later_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fmtkit import record_loop

    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 3000)  # the input is read (converted and checked) in byte ranges
    rows = [{"conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": "A"}], "images": []} for i in range(300)]
    rows[260]["conversations"][0]["value"] = "<image>Q"  # one placeholder, two images: an error for validate only
    rows[260]["images"] = ["a.png", "a.png"]
    (tmp_path / "a.png").write_bytes(b"x")
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    reports = [fmtkit.convert(src, "openai", tmp_path / f"o{j}.jsonl", jobs=j) for j in (1, 3)]
    for report in reports:
        assert report.checked and report.written == 299 and report.skipped == 1
        assert report.skipped_by == {"invalid:FMT602": 1}
        assert report.examples["invalid:FMT602"][0]["record"] == 260
    assert (tmp_path / "o1.jsonl").read_bytes() == (tmp_path / "o3.jsonl").read_bytes()
    assert len(rows_of(tmp_path / "o3.jsonl")) == 299


def test_a_folder_entry_is_converted_and_checked_file_by_file_over_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 3000)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        rows = [{"conversations": [{"from": "human", "value": f"Q{k}-{i}"}, {"from": "gpt", "value": "A"}]} for i in range(120)]
        if k == 1:
            rows[70]["conversations"][1]["value"] = 5  # FMT405 in the second file, in its second half
        write_jsonl(folder / f"p{k}.jsonl", rows)
    (tmp_path / "dataset_info.json").write_text(json.dumps({"chat": {"file_name": "parts", "formatting": "sharegpt"}}))
    reports = [fmtkit.convert(tmp_path, "openai", tmp_path / f"o{j}.jsonl", entry="chat", jobs=j) for j in (1, 3)]
    for report in reports:
        assert report.checked and report.records_read == 360 and report.written == 359
        (reason,) = report.skipped_by
        (example,) = report.examples[reason]
        assert Path(example["file"]).name == "p1.jsonl" and example["record"] == 70 and example["line"] == 71
    assert (tmp_path / "o1.jsonl").read_bytes() == (tmp_path / "o3.jsonl").read_bytes()


def test_columnar_and_array_inputs(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"instruction": "Q", "input": "", "output": "A"}] * 3
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    (tmp_path / "a.json").write_text(json.dumps(rows))
    for name in ("a.parquet", "a.json"):
        report = fmtkit.convert(tmp_path / name, "openai", tmp_path / f"{name}.jsonl", jobs=2)
        assert report.written == 3, name


def test_dash_is_standard_input_and_output(capsys, monkeypatch, tmp_path):
    """`convert - -o -`: records in on stdin, JSON Lines out on stdout, the report on stderr; --register refuses '-'."""
    import io

    from cli_runner import run_cli

    rows = [{"instruction": "Hi", "input": "", "output": "Hello"}, {"instruction": "Bye", "input": "", "output": "Ciao"}]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode())))
    code, out, err = run_cli(capsys, "convert", "-", "--to", "sharegpt", "-o", "-", "--output-format", "json")
    assert code == 0, err
    assert [json.loads(line)["conversations"][1]["value"] for line in out.splitlines()] == ["Hello", "Ciao"]
    assert json.loads(err)["written"] == 2 and json.loads(err)["output"] == "-"
    code, _, err = run_cli(capsys, "convert", "dataset", "--entry", "alpaca_demo", "--to", "sharegpt", "-o", "-", "--register")
    assert code == 2 and "--register" in err

"""The Arrow layer (FMT802, FMT807, FMT808, FMT809, FMT810) against what ``datasets`` really loads.

Each case is a small JSON Lines or JSON array file, a folder of two files, or a
JSON Lines file just over datasets' 10 MB chunk, with the verdict of
``datasets.load_dataset("json", ...)`` measured with ``tests/arrow_probe.py``:

- ``loads``: datasets 4.0.0, the newest LLaMA-Factory 0.9.5 allows. fmtkit's
  model must agree: no FMT802/807/808/809 exactly when it loads. Where the
  real LLaMA-Factory environment exists (``.venv-lf``, or
  ``FMTKIT_LF_PYTHON``), the verdict is measured again on every run.
- ``alters``: datasets 4.0.0 loads it but changes a value LLaMA-Factory writes
  into the prompt (a tool call's ``function``, ``tools``): FMT810 exactly then.
- ``loads_json``: a datasets release with the ``Json`` feature type (5.2.0
  measured), which stores a path whose type varies within a chunk as JSON.
  Checked where the test's own python has such a release.

A folder is loaded in directory order, which is not sorted, so a folder case
loads only when both orders load, and fmtkit reports it when either fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_llamafactory_real import _clean_env, require_lf_python

import fmtkit
from fmtkit.rules.arrow_types import CHUNK_BYTES, arrow_conflicts

PROBE = Path(__file__).resolve().parent / "arrow_probe.py"
LOAD_CODES = {"FMT802", "FMT807", "FMT808", "FMT809"}  # datasets fails
ARROW_CODES = LOAD_CODES | {"FMT810"}  # or changes a value LLaMA-Factory renders
BIG = 2**63
ROW = 1 << 17  # bytes per row of the chunk cases: 80 rows make 10 MB exactly


@dataclass(frozen=True)
class Case:
    name: str
    rows: list = field(default_factory=list)  # one file's records (lines or array)
    loads: bool = True  # datasets 4.0.0
    loads_json: bool = True  # datasets with the Json type
    alters: bool = False  # datasets 4.0 changes a tool call's function or the tools (a small single file)
    alters_json: bool = False
    array: bool = False  # a JSON array file, not JSON Lines
    folder: tuple = ()  # two files' records: a folder entry
    later: list | None = None  # chunk case: rows of the second 10 MB chunk (rows are the first's)
    blank: bool = False  # chunk case: the file starts with a blank line (fmtkit's reader skips it, datasets does not)
    finding: tuple | None = None  # (code, record, text of the message) fmtkit reports first

    @property
    def kind(self) -> str:
        return "folder" if self.folder else "chunk" if self.later is not None else "array" if self.array else "lines"


def _both(name: str, rows: list, loads: bool, loads_json: bool = True, **more) -> list[Case]:
    """The case as JSON Lines and as a JSON array (datasets 4.0 reads arrays through pandas, with the same verdicts here)."""
    return [Case(name, rows, loads, loads_json, **more), Case(name + "-array", rows, loads, loads_json, array=True, **more)]


def _tool_call(arguments) -> dict:
    return {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": arguments}}]}


CASES = [
    # numbers, booleans, strings
    *_both("int-then-float", [{"a": 1}, {"a": 1.5}], True),
    *_both("float-then-int", [{"a": 1.5}, {"a": 1}], True),
    *_both("int-then-string", [{"a": 1}, {"a": "x"}], False, finding=("FMT802", 1, "column 'a'")),
    *_both("string-then-int", [{"a": "x"}, {"a": 1}], False),
    *_both("int-then-numeric-string", [{"a": 1}, {"a": "1"}], False),
    *_both("bool-then-int", [{"a": True}, {"a": 1}], False),
    *_both("int-then-bool", [{"a": 1}, {"a": True}], False),
    *_both("int-null-string", [{"a": 1}, {"a": None}, {"a": "x"}], False, finding=("FMT802", 2, "column 'a'")),
    # null and missing keys
    *_both("null-everywhere", [{"a": None}, {"a": None}], True),
    *_both("null-then-int", [{"a": None}, {"a": 1}], True),
    *_both("null-then-object", [{"m": None}, {"m": {"a": 1}}], True),
    *_both("empty-record-then-column", [{}, {"a": 1}], True),
    *_both("object-key-in-one-row-only", [{"x": 1, "m": {"a": 1}}, {"x": 2}, {"x": 3}], True),
    *_both("object-key-after-absent", [{"x": 1}, {"x": 2, "m": {"a": 1}}], True),
    # objects (structs)
    *_both("empty-object-then-object", [{"m": {}}, {"m": {"a": 1}}], True),
    *_both("struct-field-missing-later", [{"m": {"a": 1, "b": 2}}, {"m": {"a": 1}}], True),
    *_both("struct-field-added-later", [{"m": {"a": 1}}, {"m": {"a": 1, "b": 2}}], True),
    *_both("nested-int-then-string", [{"meta": {"score": 1}}, {"meta": {"score": "high"}}], False, finding=("FMT807", 1, "/meta/score")),
    *_both("nested-int-then-float", [{"meta": {"score": 1}}, {"meta": {"score": 1.5}}], True),
    *_both("nested-null-then-string", [{"m": {"a": None}}, {"m": {"a": "x"}}], True),
    *_both("nested-null-int-string", [{"m": {"a": None}}, {"m": {"a": 1}}, {"m": {"a": "x"}}], False),
    *_both("nested-object-then-string", [{"m": {"s": {"a": 1}}}, {"m": {"s": "x"}}], False),
    *_both("object-then-string", [{"m": {"a": 1}}, {"m": "x"}], False),
    *_both("string-then-object", [{"m": "x"}, {"m": {"a": 1}}], False),
    # lists
    *_both("empty-list-then-list", [{"l": []}, {"l": [1]}], True),
    *_both("empty-list-everywhere", [{"l": []}, {"l": []}], True),
    *_both("empty-list-then-object", [{"l": []}, {"l": {}}], False),
    *_both("list-int-then-list-string", [{"l": [1]}, {"l": ["a"]}], False, finding=("FMT807", 1, "/l/0")),
    *_both("list-mixed-in-one-row", [{"l": [1, "a"]}], False, finding=("FMT807", 0, "/l/1")),
    *_both("list-with-nulls", [{"l": [1, None]}, {"l": [None]}], True),
    *_both("list-then-string", [{"m": [1]}, {"m": "x"}], False),
    *_both("string-then-list", [{"m": "x"}, {"m": ["x"]}], False),
    *_both("object-then-list", [{"m": {"a": 1}}, {"m": [1]}], False),
    *_both("nested-list-depths", [{"l": [[1]]}, {"l": [1]}], False),
    *_both("nested-list-depths-in-one-row", [{"l": [1, [2]]}], False),
    *_both("list-of-empty-lists-then-values", [{"l": [[]]}, {"l": [[1]]}], True),
    *_both("empty-list-then-empty-struct-list", [{"t": []}, {"t": [{"a": 1}]}], True),
    *_both("list-of-structs-conflict-in-row", [{"t": [{"a": 1}, {"a": "x"}]}], False),
    # OpenAI tool calls and tools: they load, but LLaMA-Factory writes what Arrow made of them into the prompt
    *_both("tool-arguments-of-different-shapes", [{"m": [_tool_call({"city": "Paris"})]}, {"m": [_tool_call({"n": 1})]}], True, alters=True,
           finding=("FMT810", 1, "/m/0/tool_calls/0/function/arguments: objects here differ in their keys ('city')")),  # fmt: skip
    *_both("tool-arguments-shapes-in-one-row", [{"m": [_tool_call({"city": "Paris"}), _tool_call({"n": 1})]}], True, alters=True),
    *_both("tool-arguments-of-one-shape", [{"m": [_tool_call({"city": "Paris"})]}, {"m": [_tool_call({"city": "Rome"})]}], True),
    *_both("tool-arguments-int-and-float", [{"m": [_tool_call({"x": 1})]}, {"m": [_tool_call({"x": 1.5})]}], True, alters=True, alters_json=True),
    *_both("tool-arguments-as-text", [{"m": [_tool_call('{"city": "Paris"}')]}, {"m": [_tool_call('{"n": 1}')]}], True),
    *_both("tools-of-different-shapes", [{"tools": [{"name": "a", "parameters": {"x": {"type": "string"}}}, {"name": "b", "parameters": {"y": {"type": "integer"}}}]}],
           True, alters=True),  # fmt: skip
    *_both("tools-as-text", [{"tools": '[{"name": "a", "parameters": {"x": {}}}]'}, {"tools": '[{"name": "b"}]'}], True),
    *_both("meta-of-different-shapes", [{"meta": {"a": 1}}, {"meta": {"b": 2}}], True),  # filled with null too, but never rendered
    *_both("tool-arguments-key-types-differ", [{"m": [_tool_call({"x": 1})]}, {"m": [_tool_call({"x": "a"})]}], False,
           finding=("FMT807", 1, "/m/0/tool_calls/0/function/arguments/x")),  # fmt: skip
    *_both("tool-arguments-string-then-object", [{"m": [_tool_call("{}")]}, {"m": [_tool_call({"n": 1})]}], False, alters_json=True),
    # integers beyond 64 bits: a float in JSON Lines, pandas in a JSON array
    Case("int-beyond-int64", [{"a": 1}, {"a": BIG}]),
    Case("int-beyond-int64-array", [{"a": 1}, {"a": BIG}], array=True),
    Case("int-beyond-uint64", [{"a": 2**64}]),
    Case("int-beyond-uint64-array", [{"a": 2**64}], False, False, array=True, finding=("FMT809", 0, "/a")),
    Case("negative-int-beyond-int64", [{"a": -BIG - 1}]),
    Case("negative-int-beyond-int64-array", [{"a": -BIG - 1}], False, False, array=True),
    Case("nested-int-beyond-int64", [{"m": {"a": BIG}}]),
    Case("nested-int-beyond-int64-array", [{"m": {"a": BIG}}], False, True, array=True, finding=("FMT809", 0, "/m/a")),
    # nesting depth: Arrow takes 63 levels below the record
    Case("nested-62-deep", [{"x": json.loads("[" * 62 + "1" + "]" * 62)}]),
    Case("nested-63-deep", [{"x": json.loads("[" * 63 + "1" + "]" * 63)}], False, False, finding=("FMT809", 0, "/x" + "/0" * 62)),
    # folder entries: files are cast to the first one's types, and either file may come first
    Case("folder-same-types", folder=([{"a": 1, "m": {"s": "x"}}], [{"a": 2, "m": {"s": "y"}}])),
    Case("folder-int-and-float", folder=([{"a": 1}], [{"a": 1.5}]), loads=False, loads_json=False),
    Case("folder-floats", folder=([{"a": 1.5}], [{"a": 2.5}])),
    Case("folder-string-and-int", folder=([{"a": "x"}], [{"a": 1}]), loads=False, loads_json=False),
    Case("folder-int-and-bool", folder=([{"a": 1}], [{"a": True}])),
    Case("folder-new-column", folder=([{"a": 1}], [{"a": 1, "b": "x"}]), loads=False, loads_json=False),
    Case("folder-struct-field-in-one-file", folder=([{"m": {"a": 1, "b": 2}}], [{"m": {"a": 1}}]), loads=False, loads_json=False),
    Case("folder-null-and-string", folder=([{"a": None}], [{"a": "x"}]), loads=False, loads_json=False),
    Case("folder-empty-list-and-list", folder=([{"l": []}], [{"l": [1]}]), loads=False, loads_json=False),
    # JSON Lines over 10 MB: the first chunk (81 rows here) fixes the types of the later ones
    Case("chunk-int-then-float", [{"a": 1}], later=[{"a": 1.5}], loads=False, loads_json=False, finding=("FMT808", 81, "column 'a' has a fraction here")),
    Case("chunk-float-then-int", [{"a": 1.5}], later=[{"a": 1}]),
    Case("chunk-string-then-int", [{"a": "x"}], later=[{"a": 1}]),
    Case("chunk-int-then-string", [{"a": 1}], later=[{"a": "x"}], loads=False, loads_json=False),
    Case("chunk-new-column", [{"a": 1}], later=[{"a": 1, "b": "x"}], loads=False, loads_json=False, finding=("FMT808", 81, "column 'b' is not in the first 10 MB")),
    Case("chunk-column-left-out", [{"a": 1, "b": "x"}], later=[{"a": 1}]),
    Case("chunk-null-then-string", [{"a": None}], later=[{"a": "x"}], loads=False, loads_json=False),
    Case("chunk-new-column-after-a-blank-line", [{"a": 1}], later=[{"a": 1, "b": "x"}], loads=False, loads_json=False, blank=True,
         finding=("FMT808", 81, "column 'b' is not in the first 10 MB")),  # fmt: skip
    Case("chunk-column-left-out-after-a-blank-line", [{"a": 1, "b": "x"}], later=[{"a": 1}], blank=True),
    Case("chunk-new-nested-field", [{"m": {"a": 1}}], later=[{"m": {"a": 1, "b": 2}}], loads=False, loads_json=False, finding=("FMT808", 81, "/m/b is not in the first 10 MB")),
]
IDS = [c.name for c in CASES]
assert len(set(IDS)) == len(IDS)


def _line(rec: dict, size: int = 0) -> str:
    """``rec`` as one JSON line, padded with a ``pad`` column to ``size`` bytes (newline included)."""
    if not size:
        return json.dumps(rec) + "\n"
    bare = json.dumps({**rec, "pad": ""})
    return json.dumps({**rec, "pad": "x" * (size - len(bare) - 1)}) + "\n"


def _write(case: Case, folder: Path) -> tuple[Path, list[list[Path]]]:
    """Write the case; return what fmtkit validates and the file lists datasets loads (both orders for a folder)."""
    folder.mkdir(parents=True)
    if case.folder:
        entry = folder / "demo"
        entry.mkdir()
        files = []
        for name, rows in zip(("a.jsonl", "b.jsonl"), case.folder, strict=True):
            (entry / name).write_text("".join(map(_line, rows)), encoding="utf-8")
            files.append(entry / name)
        (folder / "dataset_info.json").write_text(json.dumps({"demo": {"file_name": "demo"}}), encoding="utf-8")
        return folder, [files, files[::-1]]
    if case.later is not None:
        rows = [case.rows[0]] * 81 + case.later * 2  # datasets reads 10 MB (80 rows), then the rest of the line (row 81)
        path = folder / "d.jsonl"
        text = "".join(_line(r, ROW) for r in rows)
        if case.blank:
            text = "\n" + _line(rows[0], ROW - 1) + text[ROW:]
        path.write_text(text, encoding="utf-8")
        assert 80 * ROW == CHUNK_BYTES and len(text) == 83 * ROW
    elif case.array:
        path = folder / "d.json"
        path.write_text(json.dumps(case.rows, indent=1), encoding="utf-8")
    else:
        path = folder / "d.jsonl"
        path.write_text("".join(map(_line, case.rows)), encoding="utf-8")
    return path, [[path]]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, list[list[Path]]]]:
    root = tmp_path_factory.mktemp("arrow")
    return {c.name: _write(c, root / c.name) for c in CASES}


def _arrow_findings(target: Path) -> list:
    return [f for f in fmtkit.validate(target).findings if f.code in ARROW_CODES]


def _rendered(row: dict) -> list:
    """What LLaMA-Factory's openai reader writes into the prompt with json.dumps: tool call functions and tools."""
    calls = [call.get("function") for key, msgs in row.items() if type(msgs) is list
             for m in msgs if type(m) is dict for call in m.get("tool_calls") or ()]  # fmt: skip
    return [json.dumps(calls, sort_keys=True), json.dumps(row.get("tools"), sort_keys=True)]


def _altered(case: Case, loaded: list[dict]) -> bool:
    return [_rendered(r) for r in loaded] != [_rendered(r) for r in case.rows]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_model_agrees_with_datasets(case: Case, written):
    found = _arrow_findings(written[case.name][0])
    assert (not [f for f in found if f.code in LOAD_CODES]) == case.loads, found
    assert ("FMT810" in {f.code for f in found}) == case.alters, found
    if case.finding is not None:
        f = found[0]
        assert (f.code, f.record) == case.finding[:2], f
        assert f.message.startswith(case.finding[2]), f.message


def _probe(python: str, written: dict) -> dict:
    cases = {f"{name}#{i}": [str(p) for p in files] for name, (_, orders) in written.items() for i, files in enumerate(orders)}
    run = subprocess.run([python, str(PROBE)], input=json.dumps(cases), capture_output=True, text=True, env=_clean_env(), timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    verdicts = json.loads(run.stdout)["cases"]
    return {name: [verdicts[f"{name}#{i}"] for i in range(len(orders))] for name, (_, orders) in written.items()}


@pytest.fixture(scope="module")
def datasets_4(written) -> dict:
    return _probe(str(require_lf_python()), written)  # datasets 4.0, as LLaMA-Factory pins it


@pytest.fixture(scope="module")
def datasets_json(written) -> dict:
    datasets = pytest.importorskip("datasets")
    assert hasattr(datasets, "Json"), f"datasets {datasets.__version__} has no Json feature type: the table's last column is for one that has"
    return _probe(sys.executable, written)


def _check_verdict(case: Case, verdicts: list[dict], loads: bool, alters: bool) -> None:
    assert all(v["ok"] for v in verdicts) == loads, verdicts
    rows = verdicts[0].get("rows")
    if loads and case.kind in ("lines", "array"):
        assert rows is not None and _altered(case, rows) == alters, rows


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_table_is_what_datasets_4_does(case: Case, datasets_4):
    _check_verdict(case, datasets_4[case.name], case.loads, case.alters)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_table_is_what_datasets_with_json_type_does(case: Case, datasets_json):
    _check_verdict(case, datasets_json[case.name], case.loads_json, case.alters_json)


def test_every_order_of_a_folder_is_reported(tmp_path):
    """Which file of a folder datasets reads first is up to the directory: both orders are checked."""
    entry = tmp_path / "demo"
    entry.mkdir()
    (entry / "a.jsonl").write_text('{"instruction": "Hi", "input": "", "output": "Hello", "meta": {"score": 1.5}}\n')
    (entry / "b.jsonl").write_text('{"instruction": "Bye", "input": "", "output": "Goodbye", "meta": {"score": 2}}\n')
    (tmp_path / "dataset_info.json").write_text('{"demo": {"file_name": "demo"}}')
    (found,) = _arrow_findings(tmp_path)
    assert (found.code, found.file, found.record) == ("FMT808", "demo/a.jsonl", 0)
    assert found.message.startswith("/meta/score has a fraction here, but is an integer in demo/b.jsonl (if read first)")


def test_jobs_shards_join_to_the_same_findings(tmp_path):
    """A file split over --jobs workers (byte ranges, across a 10 MB chunk) reports what one process does."""
    path = tmp_path / "d.jsonl"
    rows = [{"a": 1, "meta": {"s": "x"}}] * 81 + [{"a": 1, "meta": {"s": 2}}] * 2 + [{"a": 1.5, "meta": {"s": "y"}, "new": 1}] * 3
    with path.open("w", encoding="utf-8") as fh:
        fh.write("\n{bad\n")  # lines the reader does not yield still count for datasets' 10 MB
        for i, rec in enumerate(rows):
            fh.write(_line({**rec, "i": i}, ROW - 7 if i == 0 else ROW))
    one = [(f.code, f.record, f.line, f.message) for f in _arrow_findings(path)]
    many = [(f.code, f.record, f.line, f.message) for f in fmtkit.validate(path, jobs=3).findings if f.code in ARROW_CODES]
    assert one == many
    assert [f[:3] for f in one] == [("FMT807", 84, 86), ("FMT808", 84, 86)]  # record 0 is the bad line


def test_arrow_conflicts_checks_records_before_they_are_written():
    out = arrow_conflicts([{"messages": [_tool_call({"x": 1})]}, {"messages": [_tool_call({"x": "a"})]}])
    assert [(p.code, p.record, p.pointer) for p in out] == [("FMT807", 1, "/messages/0/tool_calls/0/function/arguments/x")]
    assert "ShareGPT with function_call turns" in out[0].fix
    (altered,) = arrow_conflicts([{"messages": [_tool_call({"city": "Paris"})]}, {"messages": [_tool_call({"n": 1})]}])
    assert (altered.code, altered.record) == ("FMT810", 1)
    assert arrow_conflicts([{"messages": [_tool_call({"city": "Paris"})]}, {"messages": [_tool_call({"city": "Rome"})]}]) == []


def _function_call_turns(args: dict) -> list[dict]:
    call = json.dumps({"name": "f", "arguments": args})
    return [{"from": "human", "value": "Go"}, {"from": "function_call", "value": call}, {"from": "observation", "value": "ok"}, {"from": "gpt", "value": "Done."}]


def test_an_openai_entry_convert_registers_from_sharegpt_tool_calls_is_caught(tmp_path):
    """ShareGPT function_call turns whose arguments differ from call to call, converted to OpenAI form: the
    registered entry's tool_calls give `arguments` objects of different keys and key types, which datasets 4.0
    refuses (FMT807) or fills with nulls that LLaMA-Factory then trains on (FMT810)."""
    rows = [{"conversations": _function_call_turns(args)} for args in ({"city": "Paris"}, {"a": 1, "b": 2}, {"city": 7})]
    (tmp_path / "tc.jsonl").write_text("".join(map(_line, rows)), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"tc": {"file_name": "tc.jsonl", "formatting": "sharegpt"}}), encoding="utf-8")
    assert not _arrow_findings(tmp_path)  # function_call turns are JSON text: nothing for Arrow to change
    report = fmtkit.convert(tmp_path, "openai", entry="tc", register=True)
    assert report.exit_code == 1 and report.registered is None and "[FMT810]" in report.refused
    assert not (tmp_path / "tc.openai.jsonl").exists() and "tc_openai" not in json.loads((tmp_path / "dataset_info.json").read_text())
    # ShareGPT function_call turns hold each call as JSON text: they load in any shape
    fmtkit.convert(tmp_path, "sharegpt", tmp_path / "sg.jsonl", entry="tc", register=True)  # the form that loads
    assert not _arrow_findings(tmp_path)


# -- message content that is JSON text: datasets with the Json type decodes it where content varies in type ----------

_PARTS = [{"type": "text", "text": "a"}]


def _chat(content) -> dict:
    return {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": content}]}


# (case, content text, what datasets 5.2 reads back), each in a file whose other record's content is a list of parts
DECODED = [
    ("integer", "42", 42),
    ("negative-number", "-1.5", -1.5),
    ("lenient-number", "1.", 1.0),  # pandas' ujson reads numbers leniently ("-", "01", "1." too)
    ("true", "true", True),
    ("false", "false", False),
    ("null", "null", None),
    ("nan", "NaN", None),
    ("array", "[1, 2]", [1, 2]),
    ("object", '{"a": 1}', {"a": 1}),
    ("quoted-string", '"x"', "x"),
    ("spaces-around", "\ttrue\n", True),
]
KEPT = ["hello", "True", "nan", "1 2", "42abc", "+1", ".5", "0x10", "[1,", "99999999999999999999999", "", " "]  # strings it keeps


def _content_files(root: Path) -> dict[str, Path]:
    files = {}
    for name, text, _ in DECODED:
        files[name] = root / f"{name}.jsonl"
        files[name].write_text(json.dumps(_chat(_PARTS)) + "\n" + json.dumps(_chat(text)) + "\n", encoding="utf-8")
    files["string-first"] = root / "string-first.jsonl"  # the strings come before the list of parts
    files["string-first"].write_text(json.dumps(_chat("42")) + "\n" + json.dumps(_chat(_PARTS)) + "\n", encoding="utf-8")
    files["kept"] = root / "kept.jsonl"
    files["kept"].write_text("".join(json.dumps(_chat(c)) + "\n" for c in [_PARTS, *KEPT]), encoding="utf-8")
    return files


@pytest.fixture(scope="module")
def content_files(tmp_path_factory) -> dict[str, Path]:
    return _content_files(tmp_path_factory.mktemp("content"))


def _fmt810(path: Path, form: str | None) -> list:
    return [(f.record, f.message) for f in fmtkit.validate(path, form=form).findings if f.code == "FMT810"]


@pytest.mark.parametrize(("name", "text", "decoded"), DECODED, ids=[d[0] for d in DECODED])
@pytest.mark.parametrize("form", ["trl-messages", None])  # None: a bare messages file (TRL's side of it)
def test_content_that_is_json_text_is_reported(content_files, name, text, decoded, form):
    ((record, message),) = _fmt810(content_files[name], form)
    assert record == 1 and message.startswith(f"/messages/1/content is the string {json.dumps(text)}, JSON text"), message
    assert f"reads it back as {'null' if decoded is None else ''}" in message and f"{json.dumps(decoded)}, and the chat template renders" in message, message


def test_content_that_is_json_text_before_the_lists_is_reported(content_files):
    ((record, message),) = _fmt810(content_files["string-first"], "trl-messages")
    assert record == 0 and message.startswith("/messages/1/content is the string \"42\""), message


def test_mixed_content_without_json_text_is_clean(content_files):
    assert _fmt810(content_files["kept"], "trl-messages") == []
    assert _fmt810(content_files["kept"], None) == []


def test_a_bare_files_loader_warning_says_what_trl_does_with_the_path(content_files):
    """FMT813 (only LLaMA-Factory's datasets fails on the mixed path) says TRL's decodes it where FMT810 says so, else that it loads as written."""
    def fmt813(name):
        [message] = [f.message for f in fmtkit.validate(content_files[name]).findings if f.code == "FMT813"]
        return message

    assert "TRL's datasets 4.7+ decodes its JSON-text strings (FMT810)" in fmt813("integer")
    assert "TRL's datasets 4.7+ loads it as written" in fmt813("kept")


def test_content_table_is_what_datasets_with_json_type_does(content_files):
    import datasets  # TRL's (the test environment's): the reference this table is about, never skipped
    assert hasattr(datasets, "Json"), f"datasets {datasets.__version__} has no Json feature type"
    verdicts = _probe(sys.executable, {name: (path, [[path]]) for name, path in content_files.items()})
    for name, _, decoded in DECODED:
        (v,) = verdicts[name]
        assert "Json" in v["features"] and v["rows"][1]["messages"][1]["content"] == decoded, (name, v)
    assert verdicts["string-first"][0]["rows"][0]["messages"][1]["content"] == 42
    kept = verdicts["kept"][0]
    assert "Json" in kept["features"] and [r["messages"][1]["content"] for r in kept["rows"][1:]] == KEPT, kept

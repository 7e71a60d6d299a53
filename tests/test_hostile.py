"""Hostile input: values that broke fmtkit once, and a fuzzer that keeps every command free of tracebacks.

Every command must end with a documented exit code (0, 1 or 2) and a clear
message, whatever ``dataset_info.json``, the data or the options hold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from cli_runner import run_cli

DATASET = Path(__file__).resolve().parent.parent / "dataset"
BIG = 12345678901234567890123  # beyond 64 bits: orjson reads it as a float, and refuses to write it


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    shutil.copytree(DATASET, tmp_path / "ds")
    return tmp_path / "ds"


# ---- values JSON allows and fast JSON libraries do not ------------------------------------


@pytest.mark.parametrize("source", ["a.jsonl", "a.json"])
@pytest.mark.parametrize("output", ["o.jsonl", "o.json"])
def test_big_integers_in_kept_fields_stay_exact(tmp_path: Path, capsys, source: str, output: str):
    rows = [{"instruction": "q", "output": "a", "id": BIG, "meta": {"n": -BIG}}, {"instruction": "q2", "output": "b", "id": 5, "meta": {"n": 1}}]
    text = json.dumps(rows) if source.endswith(".json") else "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / source).write_text(text)
    code, _, err = run_cli(capsys, "convert", tmp_path / source, "--to", "sharegpt", "-o", tmp_path / output)
    assert code == 0, err
    raw = (tmp_path / output).read_text()
    got = json.loads(raw) if output.endswith(".json") else [json.loads(line) for line in raw.splitlines()]
    assert [(r["id"], r["meta"]["n"]) for r in got] == [(BIG, -BIG), (5, 1)]
    assert str(BIG) in raw and "e+22" not in raw


def test_big_integers_are_a_clear_error_for_parquet(tmp_path: Path, capsys):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.jsonl").write_text(json.dumps({"instruction": "q", "output": "a", "id": BIG}) + "\n")
    code, _, err = run_cli(capsys, "convert", tmp_path / "a.jsonl", "--to", "sharegpt", "-o", tmp_path / "o.parquet")
    assert code == 2 and "cannot write parquet" in err and "write .jsonl instead" in err
    assert not (tmp_path / "o.parquet").exists()


def test_an_extra_field_nested_300_deep_is_converted(tmp_path: Path, capsys):
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    (tmp_path / "a.jsonl").write_text(json.dumps({"instruction": "q", "output": "a", "extra": deep}) + "\n")
    code, _, err = run_cli(capsys, "convert", tmp_path / "a.jsonl", "--to", "sharegpt", "-o", tmp_path / "o.jsonl")
    assert code == 0, err
    assert json.loads((tmp_path / "o.jsonl").read_text())["extra"] == deep


def test_an_all_empty_object_column_is_a_clear_error_for_parquet(tmp_path: Path, capsys):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.jsonl").write_bytes(b"".join(orjson.dumps({"instruction": f"q{i}", "output": "a", "meta": {}}) + b"\n" for i in range(3)))
    code, _, err = run_cli(capsys, "convert", tmp_path / "a.jsonl", "--to", "sharegpt", "-o", tmp_path / "o.parquet")
    assert code == 2 and "cannot write parquet" in err, err

"""Malformed input: every case ends in findings or one clear error with the documented exit code, never a traceback.

Each case runs through the console entry point (:func:`fmtkit.cli.main`) in
this process, so an unexpected exception fails the test with its traceback;
a few run as real subprocesses to check that stderr holds no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli

ALPACA = b'{"instruction": "Hi", "input": "", "output": "Hello"}'
ALPACA2 = b'{"instruction": "Bye", "input": "", "output": "Goodbye"}'


def run(capsys, *args: str) -> tuple[int, dict | str, str]:
    """Run ``fmtkit ARGS``; return (exit code, parsed JSON output or raw stdout, stderr)."""
    code, out, err = run_cli(capsys, *args)
    if "json" in args and out.strip():
        return code, json.loads(out), err
    return code, out, err


def validate_json(capsys, path: Path, *extra: str) -> tuple[int, dict]:
    code, data, err = run(capsys, "validate", path, "--output-format", "json", *extra)
    assert "Traceback" not in err
    assert isinstance(data, dict), (code, data, err)
    return code, data


def codes(data: dict) -> set[str]:
    return {f["code"] for f in data["findings"]}


def errors(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f["severity"] == "error"]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- data files ---------------------------------------------------------------


def test_truncated_jsonl(tmp_path, capsys):
    p = write(tmp_path, "d.jsonl", ALPACA + b"\n" + b'{"instruction": "Bye", "input": "", "out')
    code, data = validate_json(capsys, p)
    assert code == 1
    [f] = errors(data)
    assert (f["code"], f["line"], f["record"], f["file"]) == ("FMT201", 2, 1, "d.jsonl")


def test_truncated_json_array(tmp_path, capsys):
    p = write(tmp_path, "d.json", b"[\n" + ALPACA + b",\n" + b'{"instruction": "Bye", "input": "", "out')
    code, data = validate_json(capsys, p)
    assert code == 1
    [f] = errors(data)
    assert (f["code"], f["line"], f["record"]) == ("FMT201", 3, 1)
    assert data["summary"]["records"] == 1


def test_json_array_without_end(tmp_path, capsys):
    p = write(tmp_path, "d.json", b"[\n" + ALPACA + b",\n")
    code, data = validate_json(capsys, p)
    assert code == 1
    assert codes(data) == {"FMT201"}
    assert "truncated" in errors(data)[0]["message"]


def test_extra_data_after_json_array(tmp_path, capsys):
    p = write(tmp_path, "d.json", b"[" + ALPACA + b"]\n\n]garbage\n")
    code, data = validate_json(capsys, p, "--form", "alpaca")
    assert code == 1
    [f] = errors(data)
    assert f["code"] == "FMT201" and f["line"] == 3 and "after the top-level array" in f["message"]


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_invalid_utf8(tmp_path, capsys, name):
    body = b'{"instruction": "caf\xe9", "input": "", "output": "Hello"}'
    p = write(tmp_path, name, (b"[" + body + b"]") if name.endswith(".json") else body + b"\n")
    code, data = validate_json(capsys, p, "--form", "alpaca")
    assert code == 1
    assert "FMT203" in codes(data)
    assert "0xe9" in next(f["message"] for f in data["findings"] if f["code"] == "FMT203")


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_bom_is_a_warning_and_records_still_read(tmp_path, capsys, name):
    body = (b"[" + ALPACA + b"]") if name.endswith(".json") else ALPACA + b"\n"
    p = write(tmp_path, name, b"\xef\xbb\xbf" + body)
    code, data = validate_json(capsys, p)
    assert code == 0
    assert codes(data) == {"FMT204"}
    assert data["summary"]["records"] == 1
    assert data["summary"]["detected_forms"] == {name: "alpaca"}


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_crlf_line_ends_are_clean(tmp_path, capsys, name):
    if name.endswith(".json"):
        body = b"[\r\n  " + ALPACA + b",\r\n  " + ALPACA2 + b"\r\n]\r\n"
    else:
        body = ALPACA + b"\r\n" + ALPACA2 + b"\r\n"
    code, data = validate_json(capsys, write(tmp_path, name, body))
    assert code == 0
    assert data["findings"] == []
    assert data["summary"]["records"] == 2


def test_crlf_lines_keep_their_numbers(tmp_path, capsys):
    p = write(tmp_path, "d.jsonl", ALPACA + b"\r\n\r\n" + b'{"instruction": 5, "input": "", "output": "x"}\r\n')
    code, data = validate_json(capsys, p)
    assert code == 1
    assert {(f["line"], f["record"]) for f in errors(data)} == {(3, 1)}


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_non_object_rows(tmp_path, capsys, name):
    rows = [b"1", b'"text"', b"null", b"[1, 2]", ALPACA]
    body = (b"[" + b",\n".join(rows) + b"]") if name.endswith(".json") else b"\n".join(rows) + b"\n"
    code, data = validate_json(capsys, write(tmp_path, name, body), "--form", "alpaca")
    assert code == 1
    found = {(f["record"], f["line"]) for f in data["findings"] if f["code"] == "FMT202"}
    assert found == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert "null" in next(f["message"] for f in data["findings"] if f["record"] == 2)


@pytest.mark.parametrize("name", ["deep.jsonl", "deep.json"])
def test_deep_nesting_does_not_crash(tmp_path, capsys, name):
    deep = b"[" * 100_000 + b"]" * 100_000
    body = (b"[" + ALPACA + b",\n" + deep + b"]") if name.endswith(".json") else ALPACA + b"\n" + deep + b"\n"
    code, data = validate_json(capsys, write(tmp_path, name, body), "--form", "alpaca")
    assert code == 1
    [f] = errors(data)
    assert (f["code"], f["record"], f["line"]) == ("FMT201", 1, 2)


@pytest.mark.parametrize("depth", [300, 1000])
@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_nesting_that_parses_but_is_too_deep_to_re_encode(tmp_path, capsys, name, depth):
    # orjson parses up to 1024 levels but encodes only 255: the duplicate check must cope
    rec = b'{"instruction": "Hi", "input": "", "output": "Hello", "meta": ' + b"[" * depth + b"]" * depth + b"}"
    body = (b"[" + rec + b",\n" + rec + b"]") if name.endswith(".json") else rec + b"\n" + rec + b"\n"
    code, data = validate_json(capsys, write(tmp_path, name, body), "--form", "alpaca")
    assert "Traceback" not in json.dumps(data)
    assert code in (0, 1)
    if code == 0 and depth == 300:
        assert codes(data) == {"FMT803"}  # still found as a duplicate


@pytest.mark.parametrize(
    "value",
    [b"123456789012345678901234567890", b'"lone \\ud800 surrogate"', b"1e400"],
    ids=["int-over-64-bits", "lone-surrogate", "float-overflow"],
)
@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_values_orjson_cannot_encode(tmp_path, capsys, name, value):
    rec = b'{"instruction": "Hi", "input": "", "output": "Hello", "meta": ' + value + b"}"
    body = (b"[" + rec + b"]") if name.endswith(".json") else rec + b"\n"
    code, data = validate_json(capsys, write(tmp_path, name, body), "--form", "alpaca")
    assert code in (0, 1)
    # datasets reads a JSON array file through pandas, which cannot hold an integer beyond 64 bits (FMT809)
    assert codes(data) <= ({"FMT201", "FMT809"} if name.endswith(".json") and value.isdigit() else {"FMT201"})


def test_single_large_line(tmp_path, capsys):
    big = b"x" * (20 << 20)
    p = write(tmp_path, "big.jsonl", b'{"instruction": "' + big + b'", "input": "", "output": "Hello"}\n' + ALPACA + b"\n")
    code, data = validate_json(capsys, p)
    assert code == 0
    assert data["summary"]["records"] == 2


def test_single_large_array_element(tmp_path, capsys):
    big = "\u4e2d".encode() * (7 << 20)  # ~20 MB of 3-byte characters: chunk cuts land inside them
    p = write(tmp_path, "big.json", b'[{"instruction": "' + big + b'", "output": "Hello"},\n' + ALPACA + b"]")
    code, data = validate_json(capsys, p)
    assert code == 0, data["findings"]
    assert data["summary"]["records"] == 2


@pytest.mark.parametrize("name", ["bin.json", "bin.jsonl"])
def test_binary_file(tmp_path, capsys, name):
    rnd = bytes(range(256)) * 64 + os.urandom(4096)
    code, data = validate_json(capsys, write(tmp_path, name, rnd))
    assert code == 1
    assert codes(data) & {"FMT201", "FMT203"}


def test_nul_bytes(tmp_path, capsys):
    code, data = validate_json(capsys, write(tmp_path, "d.jsonl", b"\x00\x00\x00\n" + ALPACA + b"\n"), "--form", "alpaca")
    assert code == 1
    [f] = errors(data)
    assert f["code"] == "FMT201" and "NUL" in f["message"] and f["line"] == 1


def test_utf16_file(tmp_path, capsys):
    p = write(tmp_path, "d.json", ("[" + ALPACA.decode() + "]").encode("utf-16"))
    code, data = validate_json(capsys, p)
    assert code == 1
    assert codes(data) & {"FMT201", "FMT203"}


@pytest.mark.parametrize("body", [b"", b"\n\n  \n"], ids=["empty", "blank-lines"])
@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_empty_file(tmp_path, capsys, name, body):
    code, data = validate_json(capsys, write(tmp_path, name, body))
    assert code == 1
    assert codes(data) == {"FMT205"}


def test_empty_json_array(tmp_path, capsys):
    code, data = validate_json(capsys, write(tmp_path, "d.json", b"[ ]\n"))
    assert code == 1
    assert codes(data) == {"FMT205"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("form", [None, "alpaca"])
def test_fifo_is_unreadable_not_a_hang(tmp_path, form):
    # a subprocess with a timeout: opening a FIFO for reading blocks until a writer comes
    p = tmp_path / "pipe.jsonl"
    os.mkfifo(p)
    r = _run_entry(p, "--output-format", "json", *(["--form", form] if form else []), timeout=30)
    assert r.returncode == 1, r.stderr
    assert codes(json.loads(r.stdout)) == {"FMT206"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_read_by_an_entry(tmp_path):
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "dataset_info.json").write_text('{"d": {"file_name": "pipe.jsonl"}}')
    r = _run_entry(tmp_path, "--output-format", "json", timeout=30)
    assert r.returncode == 1, r.stderr
    assert [(f["code"], f["file"]) for f in errors(json.loads(r.stdout))] == [("FMT206", "pipe.jsonl")]


def test_directory_named_like_a_data_file(tmp_path, capsys):
    d = tmp_path / "x.jsonl"
    d.mkdir()
    code, out, err = run(capsys, "validate", d)
    assert code == 2
    assert "error:" in err and "Traceback" not in err


def test_entry_reading_an_empty_directory_named_like_a_file(tmp_path, capsys):
    (tmp_path / "x.jsonl").mkdir()
    (tmp_path / "dataset_info.json").write_text('{"d": {"file_name": "x.jsonl"}}')
    code, data = validate_json(capsys, tmp_path)
    assert code == 1
    assert codes(data) == {"FMT113"}


@pytest.mark.parametrize("role", ["[]", "{}", '["gpt"]'])
def test_conversation_with_a_list_role(tmp_path, capsys, role):
    body = '{"conversations": [{"from": "human", "value": "Hi"}, {"from": %s, "value": "Hello"}]}\n' % role
    code, data = validate_json(capsys, write(tmp_path, "d.jsonl", body.encode()), "--form", "sharegpt")
    assert code == 1
    assert "FMT402" in codes(data)


def test_preference_pair_with_a_list_role(tmp_path, capsys):
    body = b'{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": [], "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}\n'
    code, data = validate_json(capsys, write(tmp_path, "d.jsonl", body), "--form", "sharegpt-preference")
    assert code == 1
    assert "FMT501" in codes(data)


@pytest.mark.parametrize("value", [b"1.0", b"true", b'{"path": "a.wav"}'])
def test_media_column_holding_a_number(tmp_path, capsys, value):
    body = b'{"instruction": "Hi", "input": "", "output": "Hello", "audios": ' + value + b"}\n"
    code, data = validate_json(capsys, write(tmp_path, "d.jsonl", body), "--form", "alpaca")
    assert code == 1
    assert "FMT300" in codes(data)


# -- dataset_info.json ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"[1, 2]", "FMT102"),
        (b'"a string"', "FMT102"),
        (b"null", "FMT102"),
        (b'{"d": {"file_name": "d.jsonl"},}', "FMT101"),
        (b"{'d': 1}", "FMT101"),
        (b"", "FMT101"),
        (b"   \n", "FMT101"),
        (b"\xff\xfe{}", "FMT101"),
    ],
    ids=["array", "string", "null", "trailing-comma", "single-quotes", "empty", "blank", "binary"],
)
def test_broken_dataset_info(tmp_path, capsys, text, code):
    (tmp_path / "d.jsonl").write_bytes(ALPACA + b"\n")
    (tmp_path / "dataset_info.json").write_bytes(text)
    exit_code, data = validate_json(capsys, tmp_path)
    assert exit_code == 1
    assert [(f["code"], f["file"]) for f in data["findings"]] == [(code, "dataset_info.json")]


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (5, "FMT102"),
        ({"file_name": 5}, "FMT100"),
        ({}, "FMT104"),
        ({"file_name": "nope.jsonl"}, "FMT112"),
        ({"file_name": "d.jsonl", "formatting": "weird"}, "FMT105"),
        ({"file_name": "d.jsonl", "columns": 5}, "FMT100"),
    ],
    ids=["not-object", "file-name-not-string", "no-source", "missing-file", "bad-formatting", "columns-not-object"],
)
def test_broken_entry(tmp_path, capsys, entry, code):
    (tmp_path / "d.jsonl").write_bytes(ALPACA + b"\n")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": entry}, indent=2))
    exit_code, data = validate_json(capsys, tmp_path)
    assert exit_code == 1
    assert code in codes(data)


def test_dataset_info_given_as_the_path(tmp_path, capsys):
    (tmp_path / "dataset_info.json").write_bytes(b"{")
    code, data = validate_json(capsys, tmp_path / "dataset_info.json")
    assert code == 1
    assert codes(data) == {"FMT101"}


# -- the real process: no traceback on stderr -----------------------------------


@pytest.mark.parametrize(
    ("name", "body", "exit_code"),
    [
        ("t.jsonl", ALPACA + b'\n{"instruction": ', 1),
        ("b.json", b"\x00\xff" * 100, 1),
        ("e.jsonl", b"", 1),
        ("n.json", b"[" + b"[" * 50_000 + b"]" * 50_000 + b"]", 1),
    ],
)
def test_subprocess_has_no_traceback(tmp_path, name, body, exit_code):
    p = write(tmp_path, name, body)
    r = _run_entry(p)
    assert r.returncode == exit_code, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def _run_entry(p: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``fmtkit validate P EXTRA`` in a fresh interpreter (the console script's code path)."""
    code = "import sys; from fmtkit.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, "validate", str(p), *extra], capture_output=True, text=True, timeout=timeout)


def test_subprocess_missing_path_exit_2(tmp_path):
    r = _run_entry(tmp_path / "nope.jsonl")
    assert r.returncode == 2
    assert "no such file or folder" in r.stderr and "Traceback" not in r.stderr

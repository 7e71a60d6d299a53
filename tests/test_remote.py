"""``validate --remote`` over fsspec URLs that need no network: ``memory://`` and ``file://``.

The hub (``hf://datasets/...``) is tested against the loopback stand-in hub in tests/test_download.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_validate_cli import DATASET, defect_file

import fmtkit
from fmtkit.locate import locate

fsspec = pytest.importorskip("fsspec")


def local_dataset(tmp_path: Path) -> Path:
    """The bundled dataset folder without its hub entry (with --remote that entry would be read from the hub)."""
    ds = tmp_path / "ds"
    shutil.copytree(DATASET, ds)
    info = json.loads((ds / "dataset_info.json").read_text(encoding="utf-8"))
    (ds / "dataset_info.json").write_text(json.dumps({k: v for k, v in info.items() if "hf_hub_url" not in v}, indent=2), encoding="utf-8")
    with (ds / "sharegpt_demo.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"conversations": [{"from": "human", "value": "hi"}]}\n{broken\n')
    return ds


def same(a: dict, b: dict) -> bool:
    """The same findings, files and summary, wherever the root is."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    a["summary"].pop("root"), b["summary"].pop("root")
    return a == b


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/", recursive=True) if fs.ls("/") else None


def test_memory_folder_reports_what_the_local_folder_reports(tmp_path, memory):
    ds = local_dataset(tmp_path)
    for p in ds.rglob("*"):
        if p.is_file():
            memory.pipe(f"/ds/{p.relative_to(ds).as_posix()}", p.read_bytes())
    here = fmtkit.validate(ds)
    locate(here.root, here.findings)  # the remote run locates its findings' columns while it can read the files
    there = fmtkit.validate("memory://ds", remote=True)
    assert there.root == "memory://ds" and here.summary["errors"] >= 2
    assert same(there.to_dict(), here.to_dict()) and all(f.column for f in there.findings if f.line)


def test_file_url_of_a_bare_file(tmp_path, capsys, monkeypatch):
    from fmtkit import remote

    monkeypatch.setattr(remote, "HEAD", 4096)  # most of the file streams from the store
    p = defect_file(tmp_path / "chat.jsonl", 20_000)
    code, out, err = run_cli(capsys, "validate", p.as_uri(), "--remote", "--output-format", "json")
    _, local, _ = run_cli(capsys, "validate", p, "--output-format", "json")
    there, here = json.loads(out), json.loads(local)
    assert code == 1 and there["summary"]["root"] == tmp_path.as_uri()
    unplaced = [{k: v for k, v in f.items() if k != "path"} for f in there["findings"]]  # path: the URL, or the local path
    assert unplaced == [{k: v for k, v in f.items() if k != "path"} for f in here["findings"]]
    assert any(f["column"] > 1 for f in there["findings"])  # columns are located in remote files too
    code, out, _ = run_cli(capsys, "validate", p.as_uri(), "--remote")
    assert f"{tmp_path.as_uri()}/chat.jsonl:" in out  # the human report names the URL


def test_url_errors(capsys, memory, tmp_path):
    code, _, err = run_cli(capsys, "validate", "memory://nowhere/x.jsonl", "--remote")
    assert code == 2 and "memory://nowhere/x.jsonl: no such file or folder" in err
    code, _, err = run_cli(capsys, "validate", "memory://nowhere/x.jsonl")
    assert code == 2 and "is a URL: add --remote to read it" in err
    code, _, err = run_cli(capsys, "validate", "nosuchproto://a/b.jsonl", "--remote")
    assert code == 2 and "nosuchproto" in err and "Traceback" not in err
    memory.pipe("/empty/readme.md", b"# nothing to check\n")
    code, _, err = run_cli(capsys, "validate", "memory://empty", "--remote")
    assert code == 2 and "no dataset_info.json and no data file here" in err


# -- convert at scale: a folder of shards out -----------------------------------------------


def test_convert_to_a_folder_writes_one_shard_per_input_file(tmp_path, capsys):
    """The shards hold, in order, what one output file holds; a manifest lists them; --register registers the folder."""
    from test_ray import shards_folder

    ds = shards_folder(tmp_path / "ds")
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "chat", "--to", "openai", "-o", ds / "one.jsonl")
    assert code == 1, err  # records with errors are skipped, and reported
    code, out, err = run_cli(capsys, "convert", ds, "--entry", "chat", "--to", "openai", "-o", f"{ds / 'out'}/", "--register", "--name", "chat_openai")
    assert code == 1, err
    names = [f"part-{k:05d}.jsonl" for k in range(4)]
    assert sorted(p.name for p in (ds / "out").iterdir()) == names
    assert b"".join((ds / "out" / n).read_bytes() for n in names) == (ds / "one.jsonl").read_bytes()
    manifest = json.loads((ds / "out.manifest.json").read_text(encoding="utf-8"))
    assert [s["file"] for s in manifest["shards"]] == names and manifest["form"] == "openai"
    assert manifest["records"] == (ds / "one.jsonl").read_bytes().count(b"\n") == sum(s["records"] for s in manifest["shards"])
    assert json.loads((ds / "dataset_info.json").read_text(encoding="utf-8"))["chat_openai"]["file_name"] == "out"
    report = fmtkit.validate(ds, entries=["chat_openai"])
    assert not report.has_errors and [f.file for f in report.files] == [f"out/{n}" for n in names]


def test_convert_to_a_memory_url(tmp_path, capsys, memory):
    from test_ray import shards_folder

    ds = shards_folder(tmp_path / "ds")
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "chat", "--to", "openai", "-o", f"{ds / 'out'}/")
    code2, out, err2 = run_cli(capsys, "convert", ds, "--entry", "chat", "--to", "openai", "-o", "memory://bucket/chat-openai/")
    assert (code, code2) == (1, 1), err2
    names = [f"part-{k:05d}.jsonl" for k in range(4)]
    assert sorted(p.rsplit("/", 1)[1] for p in memory.ls("/bucket/chat-openai", detail=False)) == names
    assert all(memory.cat(f"/bucket/chat-openai/{n}") == (ds / "out" / n).read_bytes() for n in names)
    assert json.loads(memory.cat("/bucket/chat-openai.manifest.json"))["shards"] == json.loads((ds / "out.manifest.json").read_text())["shards"]
    assert "memory://bucket/chat-openai.manifest.json" in out
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "chat", "--to", "openai", "-o", "memory://bucket/x.jsonl")
    assert code == 2 and "a URL output is a folder of shards: end it with /" in err


def test_files_larger_than_the_head_stream_from_the_store(tmp_path, memory, monkeypatch):
    """JSON arrays (pretty-printed, and on one line: the exact reader, which seeks back), JSON Lines and CSV past the head read
    from the store in blocks report what the local files report, columns included."""
    from fmtkit import remote

    (tmp_path / "ds").mkdir()
    lines = defect_file(tmp_path / "ds" / "chat.jsonl", 60_000).read_text(encoding="utf-8").splitlines()
    records = [json.loads(x) for x in lines if x.strip() and x != "{broken"]
    records[7]["conversations"] = "not a list"
    ds = tmp_path / "ds"
    (ds / "pretty.json").write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    (ds / "flat.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    (ds / "table.csv").write_text("instruction,output\n" + "".join(f"q{i},{'' if i % 50 == 3 else 'a'}\n" for i in range(3000)), encoding="utf-8")
    for p in ds.iterdir():
        memory.pipe(f"/ds/{p.name}", p.read_bytes())
    monkeypatch.setattr(remote, "HEAD", 4096)
    monkeypatch.setattr(remote, "BLOCK", 8192)
    here = fmtkit.validate(ds)
    locate(here.root, here.findings)
    there = fmtkit.validate("memory://ds", remote=True)
    assert {f.file for f in here.findings} == {"chat.jsonl", "pretty.json", "flat.json", "table.csv"}
    assert same(there.to_dict(), here.to_dict())


def _without(report: dict, *keys: str) -> dict:
    return {k: v for k, v in report.items() if k not in keys}


def test_convert_and_stats_read_a_memory_url(tmp_path, capsys, memory):
    ds = local_dataset(tmp_path)
    for p in ds.rglob("*"):
        if p.is_file():
            memory.pipe(f"/ds/{p.relative_to(ds).as_posix()}", p.read_bytes())
    args = ("--entry", "sharegpt_demo", "--to", "openai", "--output-format", "json")
    code, out, err = run_cli(capsys, "convert", "memory://ds", *args, "-o", tmp_path / "there.jsonl", "--remote")
    code_here, out_here, _ = run_cli(capsys, "convert", ds, *args, "-o", tmp_path / "here.jsonl")
    there, here = json.loads(out), json.loads(out_here)
    assert code == code_here == 1, err  # the broken record is skipped, and reported
    assert (tmp_path / "there.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    assert there["source"] == "memory://ds" and "fmtkit-remote-" not in out
    assert _without(there, "source", "output", "seconds") == json.loads(json.dumps(_without(here, "source", "output", "seconds")).replace(str(ds), "memory://ds"))
    code, out, err = run_cli(capsys, "stats", "memory://ds", "--remote", "--output-format", "json")
    _, out_here, _ = run_cli(capsys, "stats", ds, "--output-format", "json")
    assert code == 0 and json.loads(out)["source"] == "memory://ds" and "fmtkit-remote-" not in out
    assert json.loads(out)["entries"] == json.loads(out_here.replace(str(ds), "memory://ds"))["entries"]
    for command in (("convert", "memory://ds", "--entry", "sharegpt_demo", "--to", "openai", "-o", tmp_path / "x.jsonl"), ("stats", "memory://ds")):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and "is a URL: add --remote to read it" in err
    code, _, err = run_cli(capsys, "convert", "memory://ds", "--entry", "sharegpt_demo", "--to", "openai", "--remote")
    assert code == 2 and "a URL SOURCE is read, not written beside: give -o" in err


def test_jobs_split_a_remote_file_in_byte_ranges_each_worker_streams(tmp_path, memory, monkeypatch):
    from fmtkit import record_loop, remote

    big = defect_file(tmp_path / "big.jsonl", 300_000)
    memory.pipe("/b/big.jsonl", big.read_bytes())
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 100_000)
    monkeypatch.setattr(remote, "HEAD", 4096)
    monkeypatch.setattr(remote, "BLOCK", 16384)
    here = fmtkit.validate(big)
    locate(here.root, here.findings)
    ranges, run = [], record_loop.run_in_workers
    monkeypatch.setattr(record_loop, "run_in_workers", lambda fn, tasks, jobs, **kw: ranges.extend(t[0][1:3] for t in tasks) or run(fn, tasks, jobs, **kw))
    there = fmtkit.validate("memory://b/big.jsonl", remote=True, jobs=2)
    # 2 workers, each reading its byte ranges from the store, back to back
    assert len(ranges) == 2 * record_loop.RANGES_PER_JOB and ranges[0][0] == 0 and all(b[0] == a[1] > 0 for a, b in zip(ranges, ranges[1:]))
    assert same(there.to_dict(), here.to_dict()) and here.has_errors


def test_stats_streams_json_arrays_lines_and_csv_from_the_store(tmp_path, capsys, memory, monkeypatch):
    """stats --remote reads JSON arrays, JSON Lines and CSV from the store as it measures (Parquet is copied): the report is the local folder's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fmtkit import remote

    ds = tmp_path / "ds"
    ds.mkdir()
    lines = defect_file(ds / "chat.jsonl", 60_000).read_text(encoding="utf-8").splitlines()
    records = [json.loads(x) for x in lines if x.strip() and x != "{broken"]
    (ds / "pretty.json").write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    (ds / "table.csv").write_text("instruction,output\n" + "".join(f"q{i},{'' if i % 50 == 3 else 'a'}\n" for i in range(3000)), encoding="utf-8")
    pq.write_table(pa.table({"instruction": [f"q{i}" for i in range(100)], "output": ["a"] * 100}), ds / "table.parquet")
    sharegpt = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}
    (ds / "dataset_info.json").write_text(json.dumps({"chat": {"file_name": "chat.jsonl", **sharegpt}, "pretty": {"file_name": "pretty.json", **sharegpt},
                                                      "table": {"file_name": "table.csv"}, "columnar": {"file_name": "table.parquet"}}), encoding="utf-8")  # fmt: skip
    for p in ds.iterdir():
        memory.pipe(f"/ds/{p.name}", p.read_bytes())
    monkeypatch.setattr(remote, "HEAD", 4096)  # most of each file is read from the store
    monkeypatch.setattr(remote, "BLOCK", 8192)
    opened, open_ = [], remote.RemoteFile.open
    monkeypatch.setattr(remote.RemoteFile, "open", lambda self, *a, **k: opened.append(self.name) or open_(self, *a, **k))
    code, out, err = run_cli(capsys, "stats", "memory://ds", "--remote", "--jobs", "1", "--output-format", "json")
    _, here, _ = run_cli(capsys, "stats", ds, "--jobs", "1", "--output-format", "json")
    there = json.loads(out)
    assert code == 0 and list(there["entries"]) == ["chat", "pretty", "table", "columnar"], err
    assert there["entries"] == json.loads(here.replace(str(ds), "memory://ds"))["entries"]
    assert there["entries"]["chat"]["skipped"]["first"][0].startswith("memory://ds/chat.jsonl:")
    assert {"chat.jsonl", "pretty.json", "table.csv"} <= set(opened) and "table.parquet" not in opened  # streamed; Parquet copied

"""``--engine ray``: the same units of work as ``--jobs``, run as Ray tasks, give the same report.

One local Ray instance with 2 CPUs serves the whole module (starting one takes
seconds); each test compares a Ray run with a ``--jobs 1`` run of the same data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_validate_cli import DATASET, REPO, defect_file

import fmtkit

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance (2 CPUs) for the module; the engine fmtkit starts joins it."""
    import logging

    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture
def units(monkeypatch) -> list[str]:
    """The function of every task sent to Ray during the test."""
    from fmtkit.engines.ray_engine import RayEngine

    sent, submit, stream = [], RayEngine.submit, RayEngine.stream

    def spy(self, fn, tasks, *args):
        sent.extend(fn.__name__ for _ in tasks)
        return submit(self, fn, tasks, *args)

    def spy_stream(self, fn, tasks, *args):
        return stream(self, fn, (sent.append(fn.__name__) or t for t in tasks), *args)

    monkeypatch.setattr(RayEngine, "submit", spy)
    monkeypatch.setattr(RayEngine, "stream", spy_stream)
    return sent


def on_ray(fn, *args, **kwargs):
    from fmtkit.engines import start, using

    with using(start("ray", 2)):
        return fn(*args, **kwargs)


def shards_folder(root: Path) -> Path:
    """A dataset folder: one folder entry of four ShareGPT shards with defects in each, and a KTO entry with one label."""
    shards = root / "shards"
    shards.mkdir(parents=True)
    for k in range(4):
        defect_file(shards / f"part-{k:05d}.jsonl", 60_000 if k != 2 else 200_000, seed=k)
    with (shards / "part-00003.jsonl").open("a", encoding="utf-8") as fh:  # type drift across files: system a number here
        fh.write(json.dumps({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}], "system": 3}) + "\n")
    kto = root / "kto.jsonl"
    kto.write_text("".join(json.dumps({"messages": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}], "label": True}) + "\n"
                           for i in range(200)), encoding="utf-8")  # fmt: skip
    (root / "dataset_info.json").write_text(json.dumps({
        "chat": {"file_name": "shards", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}},
        "kto": {"file_name": "kto.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages", "kto_tag": "label"}},
    }), encoding="utf-8")  # fmt: skip
    return root


def test_bundled_dataset_same_report_on_ray(cluster):
    local = fmtkit.validate(DATASET, stage="sft").to_dict()
    assert on_ray(fmtkit.validate, DATASET, stage="sft").to_dict() == local


def test_shards_with_defects_same_report_on_ray(cluster, tmp_path, monkeypatch, units):
    """Files run at once and big ones split in byte ranges: findings, order, duplicates, drift and KTO balance as --jobs 1."""
    from fmtkit import record_loop

    root = shards_folder(tmp_path / "ds")
    local = [fmtkit.validate(root, stage="kto").to_dict(), fmtkit.validate(root / "shards").to_dict()]
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 100_000)  # part-00002 is split into byte ranges
    ray_runs = [on_ray(fmtkit.validate, root, stage="kto").to_dict(), on_ray(fmtkit.validate, root / "shards").to_dict()]
    ranges = 2 * record_loop.RANGES_PER_JOB  # part-00002 in this many ranges (2 jobs), twice; the other 7 files whole
    assert units.count("run_unit") == 2 * ranges + 7 == len(units)
    found = local[0]["summary"]["by_rule"]
    assert {"FMT201", "FMT402", "FMT404", "FMT504", "FMT802", "FMT803", "FMT808"} <= set(found), found
    assert len({f["file"] for f in local[0]["findings"] if f["code"] in ("FMT201", "FMT803")}) == 4  # every shard has defects
    assert ray_runs == local


def test_cli_engine_ray_same_json_as_jobs_1(cluster, capsys, tmp_path):
    root = shards_folder(tmp_path / "ds")
    code1, out1, _ = run_cli(capsys, "validate", root, "--output-format", "json")
    code2, out2, err2 = run_cli(capsys, "validate", root, "--output-format", "json", "--engine", "ray", "--jobs", "2")
    assert (code2, out2) == (code1, out1) and code1 == 1, err2


def test_address_connects_to_a_running_cluster(cluster, tmp_path):
    """A second process joins the module's Ray instance by its address and reports what --jobs 1 reports."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "fmtkit", "validate", str(DATASET), "--output-format", "json"]
    local = subprocess.run(cmd, capture_output=True, text=True, env=env)
    joined = subprocess.run([*cmd, "--engine", "ray", "--address", cluster], capture_output=True, text=True, env=env)
    assert joined.returncode == local.returncode == 0, joined.stderr
    assert json.loads(joined.stdout) == json.loads(local.stdout)
    nowhere = subprocess.run([*cmd, "--engine", "ray", "--address", "127.0.0.1:9"], capture_output=True, text=True, env=env)
    assert nowhere.returncode == 2 and "cannot start or reach the Ray cluster at 127.0.0.1:9" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_without_ray_says_how_to_install():
    probe = "import sys; sys.modules['ray'] = None\nfrom fmtkit.cli import main\nmain(['validate', %r, '--engine', 'ray'])" % str(DATASET)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 2 and "pip install 'fmtkit[ray]'" in done.stderr and "Traceback" not in done.stderr


def test_address_without_ray_engine_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "validate", DATASET, "--address", "auto")
    assert code == 2 and "--address names a Ray cluster: it goes with --engine ray" in err


def test_convert_on_ray_writes_what_jobs_1_writes(cluster, capsys, tmp_path, monkeypatch, units):
    """convert --engine ray: the byte ranges of a big file converted and checked as Ray tasks, joined in order."""
    from fmtkit import record_loop

    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 100_000)  # the 300 kB file splits in byte ranges
    src = defect_file(tmp_path / "chat.jsonl", 300_000)
    runs = []
    for extra in ([], ["--engine", "ray", "--jobs", "2"]):
        out = tmp_path / f"out{len(runs)}.jsonl"
        code, text, err = run_cli(capsys, "convert", src, "--from", "sharegpt", "--to", "openai", "-o", out, "--output-format", "json", *extra)
        report = json.loads(text)
        runs.append((code, out.read_bytes(), {k: v for k, v in report.items() if k not in ("output", "jobs", "seconds", "elapsed")}))
    assert runs[0][0] == 1 and runs[0][1].count(b"\n") > 200  # records with errors skipped, the rest written
    assert runs[1] == runs[0]
    assert units == ["run_unit"] * 2 * record_loop.RANGES_PER_JOB  # the byte ranges of 2 jobs


def test_a_worker_that_dies_ends_the_run_with_a_clear_message(cluster):
    """A Ray worker killed mid-task (out of memory, say) is exit 2 and a sentence, never a hang or a traceback."""
    from fmtkit.engines import start, using
    from fmtkit.errors import FmtkitError

    with using(start("ray", 2)) as engine, pytest.raises(FmtkitError) as caught:
        engine.map(os._exit, [3], 1)
    assert caught.value.exit_code == 2 and "a Ray worker ended unexpectedly" in str(caught.value)


def test_remote_files_are_read_by_the_ray_tasks_themselves(cluster, tmp_path, monkeypatch, units):
    """With --remote each task streams its file (or byte range) from the store, not from this machine: the report is the local one."""
    from fmtkit import record_loop, remote
    from fmtkit.locate import locate

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = shards_folder(tmp_path / "ds")
    pq.write_table(pa.table({"instruction": ["q", ""], "output": ["a", "b"]}), root / "shards" / "table.parquet")  # copied here, checked here
    monkeypatch.setattr(record_loop, "SHARD_MIN_BYTES", 100_000)  # part-00002 is split into byte ranges
    monkeypatch.setattr(remote, "HEAD", 4096)  # what this machine keeps of each file: its first 4 KiB
    here = fmtkit.validate(root / "shards")
    locate(here.root, here.findings)
    from fmtkit.engines.ray_engine import RayEngine

    read, submit = [], RayEngine.submit
    monkeypatch.setattr(RayEngine, "submit", lambda self, fn, tasks, *args: read.extend(str(t[0].path) for t in tasks) or submit(self, fn, tasks, *args))
    there = on_ray(fmtkit.validate, (root / "shards").as_uri(), remote=True)
    ranges = 2 * record_loop.RANGES_PER_JOB  # part-00002 in this many ranges (2 jobs); the other 3 files whole
    assert units.count("run_unit") == ranges + 3 == len(units)
    assert sorted(set(read)) == [f"{(root / 'shards').as_uri()}/part-{k:05d}.jsonl" for k in range(4)]  # the URLs, not local paths
    a, b = there.to_dict(), here.to_dict()
    assert a["summary"].pop("root") == (root / "shards").as_uri() and b["summary"].pop("root")
    assert a == b and here.has_errors and "table.parquet" in {f["file"] for f in a["findings"]}


def test_stats_on_ray_same_report_as_jobs_1(cluster, capsys, tmp_path, units):
    """stats --engine ray: the batches of samples measured as Ray tasks, streamed back in order; the report is --jobs 1's."""
    root = shards_folder(tmp_path / "ds")
    for k in range(4, 10):  # the folder entry grows to ten shards, ~3,000 records: more batches than Ray runs at once
        defect_file(root / "shards" / f"part-{k:05d}.jsonl", 450_000, seed=k)
    for source in (DATASET, root):
        code1, out1, err1 = run_cli(capsys, "stats", source, "--output-format", "json", "--jobs", "1")
        code2, out2, err2 = run_cli(capsys, "stats", source, "--output-format", "json", "--engine", "ray")
        assert code1 == 0 and json.loads(out1)["entries"], err1
        assert (code2, out2) == (code1, out1), err2
    chat = json.loads(out1)["entries"]["chat"]
    assert chat["counts"]["records"] > 5 * 512 and chat["duplicates"]["exact"] and chat["skipped"]["records"], chat["counts"]
    assert units.count("_measure_in_worker") > 2 * 5  # the chat entry alone is 6 batches, past the window of 2 per CPU


def test_a_stream_on_ray_keeps_order_and_takes_tasks_as_results_are_used(cluster, units):
    """stream_in_workers under --engine ray: results in task order, and at most two tasks per CPU taken ahead (bounded memory)."""
    from fmtkit.engines import start, using
    from fmtkit.workers import stream_in_workers

    pulled: list[int] = []

    def tasks():
        for i in range(20):
            pulled.append(i)
            yield -i

    with using(start("ray", 2)):
        results = stream_in_workers(abs, tasks(), jobs=2)
        assert next(results) == 0 and len(pulled) == 4
        assert [0, *results] == list(range(20))
    assert units == ["abs"] * 20  # every task ran on Ray


def test_stats_with_a_tokenizer_on_ray(cluster, capsys, tiny_model, units):
    """The tokenizer goes to each Ray worker once; token counts and cut-off losses are --jobs 1's."""
    args = ("stats", DATASET, "--entry", "alpaca_demo", "--tokenizer", str(tiny_model), "--cutoff-len", "32", "--output-format", "json")
    code1, out1, err1 = run_cli(capsys, *args, "--jobs", "1")
    code2, out2, err2 = run_cli(capsys, *args, "--engine", "ray")
    assert code1 == 0 and json.loads(out1)["entries"]["alpaca_demo"]["tokens"], err1
    assert (code2, out2) == (code1, out1), err2
    assert "_measure_in_worker" in units


def _free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that nothing listens on now."""
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_address_ray_client_connects_from_outside_the_cluster(tmp_path, capsys):
    """``--address ray://HOST:PORT`` (Ray Client) gives --jobs 1's report.

    A head started with ``ray start`` on its own ports, temp dir and process group (``ray stop`` would stop every Ray
    instance on the machine), and a Ray Client server in ``legacy`` mode in front of it: the head's own client server
    (``proxy`` mode) starts a server process per client, which here dies at start more often than not ("Initialization
    failure from server"). Ray >= 2.5x turns token authentication on where a token exists (``~/.ray/auth_token``); the
    client then needs ``RAY_AUTH_MODE=token`` and the token too, as set here for all of them."""
    import secrets
    import shutil
    import signal
    import socket
    import tempfile
    import time

    psutil = pytest.importorskip("psutil")
    head_port, client_port, *others = _free_ports(9)
    temp = tempfile.mkdtemp(prefix="fmtkit-rc-", dir="/tmp")  # short: Ray's socket paths live under it
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), PYTHONPATH=str(REPO))
    ports = dict(zip(("--ray-client-server-port", "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                      "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"), map(str, others), strict=True))  # fmt: skip
    started = []

    def start(*cmd: str) -> None:
        started.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True))

    def wait_for(port: int) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                assert all(p.poll() is None for p in started) and time.monotonic() < deadline, f"nothing answers on {port}"
                time.sleep(0.2)

    start(str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--num-cpus", "2", "--port", str(head_port), "--temp-dir", temp,
          "--include-dashboard", "false", "--disable-usage-stats", *(x for kv in ports.items() for x in kv))  # fmt: skip
    try:
        code1, out1, _ = run_cli(capsys, "validate", DATASET, "--output-format", "json", "--jobs", "1")  # while the head starts
        wait_for(int(ports["--ray-client-server-port"]))  # the head is up
        start(sys.executable, "-m", "ray.util.client.server", "--address", f"127.0.0.1:{head_port}", "--host", "127.0.0.1", "--port", str(client_port), "--mode", "legacy")
        wait_for(client_port)
        cmd = [sys.executable, "-m", "fmtkit", "validate", str(DATASET), "--output-format", "json", "--engine", "ray", "--address", f"ray://127.0.0.1:{client_port}"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == code1 == 0, done.stderr[-3000:]
        assert json.loads(done.stdout) == json.loads(out1)
    finally:  # stop what this test started only: each process group, then any process of it that is left
        procs = [psutil.Process(p.pid) for p in started if p.poll() is None]
        procs += [c for p in procs for c in p.children(recursive=True)]
        for p in started:
            os.killpg(p.pid, signal.SIGTERM)
        for p in psutil.wait_procs(procs, timeout=10)[1]:
            p.kill()
        for p in started:
            p.wait(10)
        shutil.rmtree(temp, ignore_errors=True)

"""The one write path (``fmtkit.writing``) and the one worker pool (``fmtkit.workers``), through real commands.

Concurrency with real processes, interruption with real signals: what a CI job
or a pre-commit hook would do to fmtkit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "dataset"


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    shutil.copytree(DATASET, tmp_path / "ds")
    return tmp_path / "ds"


def fmtkit_process(*args: object, **kw) -> subprocess.Popen:
    """``fmtkit ARGS`` as its own process (this checkout's code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "fmtkit", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


def big_jsonl(path: Path, mb: int) -> Path:
    """A ShareGPT JSON Lines file of about ``mb`` megabytes (enough for a run that lasts a few seconds)."""
    row = orjson.dumps({"conversations": [{"from": "human", "value": "Q " * 40}, {"from": "gpt", "value": "A " * 40}]}) + b"\n"
    path.write_bytes(row * (mb * (1 << 20) // len(row)))
    return path


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".fmtkit-" in p.name)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# ---- registering in dataset_info.json --------------------------------------------


def test_eight_concurrent_registrations_all_survive(ds: Path):
    runs = [fmtkit_process("convert", ds, "--entry", "alpaca_demo", "--to", "sharegpt", "-o", ds / f"out{k}.jsonl",
                           "--register", "--name", f"copy{k}") for k in range(8)]  # fmt: skip
    for p in runs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    info = json.loads((ds / "dataset_info.json").read_text())
    assert {f"copy{k}" for k in range(8)} <= set(info)
    assert temp_files(ds) == []


def test_register_keeps_the_mode_of_dataset_info_and_writes_through_a_symlink(ds: Path, tmp_path: Path, capsys):
    real = tmp_path / "elsewhere" / "registry.json"
    real.parent.mkdir()
    shutil.move(ds / "dataset_info.json", real)
    (ds / "dataset_info.json").symlink_to(real)
    real.chmod(0o640)
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "alpaca_demo", "--to", "sharegpt", "-o", ds / "o.jsonl", "--register")
    assert code == 0, err
    assert (ds / "dataset_info.json").is_symlink()
    assert "alpaca_demo_sharegpt" in json.loads(real.read_text())
    assert real.stat().st_mode & 0o777 == 0o640
    assert temp_files(real.parent) == [] and temp_files(ds) == []


def test_an_output_keeps_the_mode_of_the_file_it_replaces(ds: Path, capsys):
    out = ds / "o.jsonl"
    out.write_text("old\n")
    out.chmod(0o604)
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "alpaca_demo", "--to", "sharegpt", "-o", out)
    assert code == 0, err
    assert out.stat().st_mode & 0o777 == 0o604 and out.read_text() != "old\n"


def test_an_output_that_is_a_symlink_is_written_at_its_destination(ds: Path, tmp_path: Path, capsys):
    real = tmp_path / "elsewhere" / "o.jsonl"
    real.parent.mkdir()
    real.write_text("old\n")
    (ds / "o.jsonl").symlink_to(real)
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "alpaca_demo", "--to", "sharegpt", "-o", ds / "o.jsonl", "--jobs", "2")
    assert code == 0, err
    assert (ds / "o.jsonl").is_symlink() and real.read_text() != "old\n"
    assert temp_files(real.parent) == [] and temp_files(ds) == []


# ---- outputs that would destroy the user's data ---------------------------------------


@pytest.mark.parametrize("target", ["dataset_info.json", "alpaca_demo.json", "pretrain_demo.jsonl"])
def test_convert_refuses_to_write_onto_the_registry_or_another_entrys_data(ds: Path, capsys, target: str):
    before = {p: p.read_bytes() for p in ds.rglob("*") if p.is_file()}
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "sharegpt_demo", "--to", "alpaca", "-o", ds / target, "--register")
    assert code == 2 and "write the output to another file" in err, err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in ds.rglob("*") if p.is_file()} == before


def test_convert_of_a_bare_file_refuses_a_dataset_folders_data(ds: Path, tmp_path: Path, capsys):
    src = tmp_path / "s.jsonl"
    shutil.copy(ds / "sharegpt_demo.jsonl", src)
    code, _, err = run_cli(capsys, "convert", src, "--to", "alpaca", "-o", ds / "alpaca_demo.json")
    assert code == 2 and "'alpaca_demo'" in err


def test_infer_refuses_to_write_onto_its_dataset(ds: Path, capsys):
    data = ds / "alpaca_demo.json"
    before = data.read_bytes()
    code, _, err = run_cli(capsys, "infer", "no-such-model", "--dataset", data, "-o", data)
    assert code == 2 and "that is the input" in err
    code, _, err = run_cli(capsys, "infer", "no-such-model", "--dataset", ds, "--entry", "sharegpt_demo", "-o", ds / "alpaca_demo.json")
    assert code == 2 and "'alpaca_demo'" in err
    assert data.read_bytes() == before


# ---- temporary files: signals and leftovers ------------------------------------------------


def test_sigterm_during_a_parallel_convert_leaves_no_temporary_file(tmp_path: Path):
    (tmp_path / "in").mkdir()
    src = big_jsonl(tmp_path / "in" / "s.jsonl", 120)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = fmtkit_process("convert", src, "--to", "openai", "-o", out_dir / "o.jsonl", "--jobs", "2")
    wait_for(lambda: temp_files(out_dir) or run.poll() is not None)
    assert run.poll() is None, "the run ended before it could be interrupted; use a bigger input"
    run.send_signal(signal.SIGTERM)  # at once: the temporary files exist, and the run must remove them
    _, err = run.communicate(timeout=60)
    assert run.returncode == 143, err
    assert "Traceback" not in err
    wait_for(lambda: all(not Path(f"/proc/{c}").exists() for c in children(run.pid)), 10)
    assert temp_files(out_dir) == [] and not (out_dir / "o.jsonl").exists()


def test_temporary_files_of_killed_runs_are_swept_and_no_others(tmp_path: Path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    src = tmp_path / "s.jsonl"
    shutil.copy(DATASET / "sharegpt_demo.jsonl", src)
    stale = tmp_path / f".o.jsonl.fmtkit-{dead.pid}-0.tmp"
    live = tmp_path / f".o.jsonl.fmtkit-{os.getppid()}-0.tmp"  # a process that still runs
    other = tmp_path / f".o.jsonl.{dead.pid}.0.part"  # not fmtkit's name
    for p in (stale, live, other):
        p.write_text("x")
    code, _, err = run_cli(capsys, "convert", src, "--to", "alpaca", "-o", tmp_path / "o.jsonl")
    assert code == 0, err
    assert not stale.exists() and live.exists() and other.exists()


def test_a_folder_output_lands_whole_or_not_at_all(tmp_path: Path):
    from fmtkit.writing import atomic_folder

    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("old")
    (target / "NOTES.md").write_text("the user's")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:  # a save that fails half way
        (tmp / "config.json").write_text("half")
        raise RuntimeError("disk trouble")
    assert (target / "config.json").read_text() == "old"
    with atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("new")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "w.bin").write_bytes(b"w")
    assert (target / "config.json").read_text() == "new" and (target / "sub" / "w.bin").read_bytes() == b"w"
    assert (target / "NOTES.md").read_text() == "the user's"  # files fmtkit did not write stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left


def test_a_temporary_folder_of_a_killed_run_is_swept(tmp_path: Path):
    from fmtkit.writing import atomic_folder

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".model.fmtkit-{dead.pid}-0.tmp"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "model.safetensors").write_bytes(b"x" * 100)
    with atomic_folder(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# ---- the worker pool ------------------------------------------------------------------------


ARGS = {"convert": ["--to", "openai", "-o", "o.jsonl"], "validate": ["--form", "sharegpt"], "stats": ["--output-format", "json"]}


@pytest.mark.parametrize("command", ["convert", "validate", "stats"])
def test_a_killed_worker_stops_the_run_with_a_clear_message(tmp_path: Path, command: str):
    src = big_jsonl(tmp_path / "s.jsonl", 10 if command == "stats" else 160)  # validate reads ~100 MB/s a core
    args = [tmp_path / a if a == "o.jsonl" else a for a in ARGS[command]]
    run = fmtkit_process(command, src, *args, "--jobs", "2")
    wait_for(lambda: len(children(run.pid)) >= 2 or run.poll() is not None)
    workers = children(run.pid)
    assert run.poll() is None and workers, "the run ended before a worker could be killed; use a bigger input"
    os.kill(workers[0], signal.SIGKILL)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    assert "worker process ended unexpectedly" in err and "Traceback" not in err
    assert temp_files(tmp_path) == [] and not (tmp_path / "o.jsonl").exists()
    assert command != "stats" or out == ""  # no half report


def test_jobs_are_capped_at_the_cores_available(tmp_path: Path):
    src = big_jsonl(tmp_path / "s.jsonl", 40)
    run = fmtkit_process("convert", src, "--to", "openai", "-o", tmp_path / "o.jsonl", "--jobs", "64")
    most = 0
    while run.poll() is None:
        most = max(most, len(children(run.pid)))
        time.sleep(0.02)
    assert run.returncode == 0, run.stderr.read()
    assert 1 <= most <= len(os.sched_getaffinity(0))


# ---- outputs that cannot be written ----------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_size_limit_is_a_clear_error_and_leaves_nothing(tmp_path: Path, jobs: str):
    import resource

    src = big_jsonl(tmp_path / "s.jsonl", 9)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    limit = 1 << 20  # the output is several MB: writing it must hit the limit (ulimit -f)
    run = fmtkit_process("convert", src, "--to", "openai", "-o", out_dir / "o.jsonl", "--jobs", jobs,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))  # fmt: skip
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    assert "file size limit" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_an_output_folder_fmtkit_cannot_write_in_is_a_usage_error(tmp_path: Path, capsys):
    src = tmp_path / "s.jsonl"
    shutil.copy(DATASET / "sharegpt_demo.jsonl", src)
    code, _, err = run_cli(capsys, "convert", src, "--to", "alpaca", "-o", "/proc/o.jsonl")
    assert code == 2 and "cannot write /proc/o.jsonl" in err, err
    code, _, err = run_cli(capsys, "convert", src, "--to", "alpaca", "-o", "/proc/no/such/o.jsonl")
    assert code == 2 and "cannot write /proc/no/such/o.jsonl" in err, err

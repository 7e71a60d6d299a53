"""Files fmtkit may not read and folders it may not write in: a clear message and exit 2, never a traceback.

Permissions do not stop root, so where the tests run as root (CI does) each
command runs without the capabilities that let root past them
(``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``, dropped from its bounding set
before exec); elsewhere the permissions already apply to the user running the
tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # <linux/prctl.h>, <linux/capability.h>
SAMPLE = '{"instruction": "Hi", "input": "", "output": "Hello"}\n'


@pytest.fixture
def place():
    """A folder every user may enter (pytest's own tmp folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="fmtkit-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def fmtkit_as_other_user(*args: object) -> subprocess.CompletedProcess:
    """``fmtkit ARGS`` as a process the permissions apply to."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}

    def drop() -> None:
        if os.geteuid() == 0:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
                if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "cannot drop a capability")

    return subprocess.run(
        [sys.executable, "-m", "fmtkit", *map(str, args)], env=env, capture_output=True, text=True,
        preexec_fn=drop, cwd=tempfile.gettempdir(), timeout=120, check=False,
    )  # fmt: skip


def assert_clear(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    for word in words:
        assert word in run.stderr + run.stdout, run.stderr


def test_an_unreadable_data_file(place: Path):
    data = place / "data.jsonl"
    data.write_text(SAMPLE)
    data.chmod(0o000)
    for command in (["validate", data], ["stats", data], ["convert", data, "--to", "sharegpt", "-o", place / "o.jsonl"]):
        assert_clear(fmtkit_as_other_user(*command), "data.jsonl")
    assert not (place / "o.jsonl").exists()


def test_an_unreadable_dataset_info(place: Path):
    (place / "d.jsonl").write_text(SAMPLE)
    info = place / "dataset_info.json"
    info.write_text('{"d": {"file_name": "d.jsonl"}}')
    info.chmod(0o000)
    for command in (["validate", place], ["stats", place], ["convert", place, "--entry", "d", "--to", "sharegpt", "-o", place / "o.jsonl"]):
        assert_clear(fmtkit_as_other_user(*command), "dataset_info.json")


def test_an_output_folder_fmtkit_may_not_write_in(place: Path):
    data = place / "data.jsonl"
    data.write_text(SAMPLE)
    data.chmod(0o644)
    closed = place / "closed"
    closed.mkdir()
    closed.chmod(0o555)
    run = fmtkit_as_other_user("convert", data, "--to", "sharegpt", "-o", closed / "o.jsonl")
    assert_clear(run, "o.jsonl")
    run = fmtkit_as_other_user("stats", data, "--output-format", "json", "-o", closed / "s.json")
    assert_clear(run, "s.json")
    assert list(closed.iterdir()) == []

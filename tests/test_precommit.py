"""The pre-commit hook (.pre-commit-hooks.yaml), run by real pre-commit on a temporary git repository.

pre-commit clones this repository at its HEAD commit and pip-installs it into
the hook's own environment, so these tests check the *committed* code and
hook definition. The environment is built once per module (PRE_COMMIT_HOME in
a temporary folder); that needs a package index and takes a while the first
time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "dataset"
INSTALL_TIMEOUT = 600


def _pre_commit() -> list[str]:
    exe = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
    if exe is None:
        pytest.fail("pre-commit is not installed (it is in the test extra: pip install -e '.[test]')")
    return [exe]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def hook_home(tmp_path_factory) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is needed for the pre-commit tests")
    if not (REPO / ".git").exists():
        pytest.fail(f"{REPO} is not a git checkout: pre-commit needs it as the hook source")
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def data_repo(tmp_path: Path, hook_home: Path):
    """A git repository with a copy of the bundled dataset folder and a config using this repository's hook."""
    repo = tmp_path / "data-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "fmtkit tests")
    _git(repo, "config", "user.email", "tests@fmtkit.invalid")
    _git(repo, "config", "commit.gpgsign", "false")
    shutil.copytree(DATASET, repo / "data")
    rev = _git(REPO, "rev-parse", "HEAD")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {REPO.as_posix()}\n    rev: {rev}\n    hooks:\n      - id: fmtkit-validate\n",
        encoding="utf-8",
    )
    _git(repo, "add", "-A")
    env = dict(os.environ, PRE_COMMIT_HOME=str(hook_home), PRE_COMMIT_COLOR="never", GIT_CONFIG_NOSYSTEM="1")
    env.pop("VIRTUAL_ENV", None)

    def run(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*_pre_commit(), "run", "--files", *files],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )

    return repo, run


def test_valid_dataset_passes(data_repo):
    repo, run = data_repo
    files = sorted(p.relative_to(repo).as_posix() for p in (repo / "data").rglob("*") if p.is_file())
    result = run(*files)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "fmtkit validate" in out
    assert "Passed" in out


def _break_second_record(repo: Path) -> None:
    """A role that is not one of the entry's tags (FMT402) on line 2 of data/sharegpt_demo.jsonl."""
    bad = repo / "data" / "sharegpt_demo.jsonl"
    lines = bad.read_text(encoding="utf-8").splitlines()
    lines[1] = '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}'
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_broken_data_file_fails_with_rule_code(data_repo):
    repo, run = data_repo
    _break_second_record(repo)
    _git(repo, "add", "data/sharegpt_demo.jsonl")
    result = run("data/sharegpt_demo.jsonl")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Failed" in out
    assert "FMT402" in out
    assert "sharegpt_demo.jsonl:2" in out


def test_unrelated_files_are_skipped(data_repo):
    repo, run = data_repo
    (repo / "notes.txt").write_text("not data: no dataset_info.json reads me\n", encoding="utf-8")
    _git(repo, "add", "notes.txt")
    result = run("notes.txt")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hook_honours_the_config_file(data_repo):
    """The hook reads the repository's fmtkit.toml like any other run: an ignore holds, fail-on tightens."""
    repo, run = data_repo
    _break_second_record(repo)
    (repo / "fmtkit.toml").write_text('ignore = ["FMT402"]\n', encoding="utf-8")
    _git(repo, "add", "-A")
    result = run("data/sharegpt_demo.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    (repo / "fmtkit.toml").write_text('ignore = ["FMT402"]\nfail-on = "info"\n', encoding="utf-8")
    _git(repo, "add", "-A")
    result = run("data/sharegpt_demo.jsonl")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "FMT805" in out and "FMT402" not in out
